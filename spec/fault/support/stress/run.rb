# frozen_string_literal: true

require "json"
require "logger"
require "tmpdir"
require "tasker_core"

module FaultStress
  # One run. See the module documentation.
  class Run
    DEFAULTS = {
      tasks: 1500, warmup: 600, threads: 16, seed: 20_240_601, window: 128, retention: 400, spinners: 1,
      completion_buffer_size: nil, dispatch_buffer_size: nil, task_timeout: 60, rss_tolerance: 0.10, malloc_arenas: 2
    }.freeze

    # @param options [Hash] see DEFAULTS
    def initialize(**options)
      unknown = options.keys - DEFAULTS.keys
      raise ArgumentError, "unknown FaultStress::Run option(s): #{unknown.join(', ')}" unless unknown.empty?

      @options = DEFAULTS.merge(options.compact)
      # A task is checked at the latest when 2 * window - 1 other tasks have finished after
      # it; the core must still hold it then.
      if @options[:retention] < 2 * @options[:window]
        raise ArgumentError, "retention (#{@options[:retention]}) must be at least twice window (#{@options[:window]})"
      end

      @statuses = Hash.new(0)
      @problems = []
      @stuck = []
      @deferred = []
      @anomalies = 0
      @predicted = 0
    end

    # @return [Hash] the report (string keys, JSON-ready)
    def call
      @arenas = Malloc.cap_arenas(@options[:malloc_arenas]) if @options[:malloc_arenas].positive?
      Dir.mktmpdir("tasker_core_stress") do |dir|
        config_root = Setup.write_config(File.join(dir, "config"), retention: @options[:retention])
        templates = Setup.write_templates(File.join(dir, "templates"))
        run_in(config_root, templates)
      end
    end

    private

    def run_in(config_root, templates)
      log = Log.new(@options[:warmup] + @options[:tasks])
      FaultStress.log = log
      worker = TaskerCore::Worker.new(
        concurrency: @options[:threads], template_path: templates, config_root: config_root, environment: "stress",
        ffi: RecordingCore.new(log), logger: Logger.new($stderr, level: Logger::ERROR),
        completion_buffer_size: @options[:completion_buffer_size], dispatch_buffer_size: @options[:dispatch_buffer_size]
      )
      info = worker.start
      begin
        batch(0...@options[:warmup])
        rss_before, raw_before = settled_rss
        spinners = Array.new(@options[:spinners]) { Spinner.new.start }
        started = monotonic
        batch(@options[:warmup]...(@options[:warmup] + @options[:tasks]))
        elapsed = monotonic - started
        spin = spinners.sum(&:stop)
        quiesce(log)
        rss_after, raw_after = settled_rss
        report(log, info, worker, elapsed, spin, { "before" => rss_before, "after" => rss_after,
                                                   "before_untrimmed" => raw_before, "after_untrimmed" => raw_after })
      ensure
        worker.stop(timeout: 5)
        FaultStress.log = nil
      end
    end

    def batch(range)
      outstanding = []
      index = range.begin
      while index < range.end || !outstanding.empty?
        while index < range.end && outstanding.size < @options[:window]
          plan = Plan.new(@options[:seed], index)
          outstanding << [index, TaskerCore.create_task(namespace: NAMESPACE, name: plan.template, context: plan.context)]
          index += 1
        end
        finish(*outstanding.shift)
        recheck_deferred(limit: 4)
      end
    end

    def finish(index, uuid)
      status = begin
        TaskerCore.wait_for_task(uuid, timeout: @options[:task_timeout])
      rescue TaskerCore::Errors::TimeoutError => e
        @stuck << "task #{index} (#{uuid}): #{e.message[0, 300]}"
        return
      rescue TaskerCore::Errors::TaskNotFoundError => e
        @problems << "task #{index} (#{uuid}) was forgotten before it was checked: #{e.message}"
        return
      end
      status = settle(index, uuid, status) or return
      @statuses[status["status"]] += 1
      verify(index, status["status"], status["steps"])
    end

    # Waits until no step of the finished task can change any more.
    def settle(index, uuid, status)
      deadline = monotonic + 10
      while status["steps"].any? { |step| %w[in_progress enqueued waiting_for_retry].include?(step["status"]) }
        if monotonic > deadline
          @stuck << "task #{index} (#{uuid}) finished as #{status['status']} with steps still moving: " \
                    "#{status['steps'].map { |s| "#{s['name']}=#{s['status']}" }.join(', ')}"
          return nil
        end
        sleep 0.005
        status = TaskerCore.task_status(uuid)
      end
      status
    end

    def verify(index, task_status, steps)
      verdict, detail = FaultStress.log.check(index, steps)
      case verdict
      when :defer then @deferred << [index, task_status, steps, detail]
      when :mismatch then @problems << "task #{index}: #{detail}"
      else predict(index, task_status, steps, detail)
      end
    end

    def recheck_deferred(limit:)
      @deferred.shift([limit, @deferred.size].min).each { |entry| verify(*entry.first(3)) }
    end

    # Compares the task with its plan, unless an attempt's deadline passed where the plan
    # did not say so (a spurious timeout under load: the attempts then shift).
    def predict(index, task_status, steps, executions)
      spurious = executions.values.flatten.any? { |e| e.kind != "overrun" && !e.accepted }
      if spurious
        @anomalies += 1
        return
      end

      @predicted += 1
      plan = Plan.new(@options[:seed], index)
      if task_status != plan.expected_status
        @problems << "task #{index}: #{task_status}, plan says #{plan.expected_status} (#{plan.kinds})"
      elsif task_status == "complete"
        actual = steps.to_h { |step| [step["name"], step["attempts"]] }
        @problems << "task #{index}: attempts #{actual}, plan says #{plan.expected_attempts}" if actual != plan.expected_attempts
      end
    end

    def quiesce(log)
      deadline = monotonic + 30
      loop do
        metrics = TaskerCore::FFI.ffi_dispatch_metrics
        idle = metrics["pending_count"].zero? && metrics["waiting_in_dispatch"].zero? &&
               TaskerCore::FFI.worker_status["in_flight"].zero? && log.open_count.zero?
        recheck_deferred(limit: @deferred.size) if idle || monotonic > deadline
        return if (idle && @deferred.empty?) || monotonic > deadline

        sleep 0.02
      end
    end

    # RSS once garbage is collected and malloc has handed its free pages back to the OS
    # (malloc_trim), so that what is compared is memory in use, not the free lists of
    # glibc's per-thread arenas. Also returns the RSS before the trim.
    # @return [Array(Integer, Integer)] kB after and before malloc_trim
    def settled_rss
      3.times { GC.start(full_mark: true, immediate_sweep: true) }
      sleep 0.2
      untrimmed = rss_kb
      Malloc.trim
      [rss_kb, untrimmed]
    end

    def rss_kb
      File.read("/proc/self/status")[/^VmRSS:\s+(\d+)\s+kB/, 1].to_i
    end

    def report(log, info, worker, elapsed, spin, rss)
      metrics = TaskerCore::FFI.ffi_dispatch_metrics
      status = TaskerCore::FFI.worker_status
      stats = worker.stats
      {
        "tasks" => @options[:tasks], "warmup" => @options[:warmup], "threads" => @options[:threads],
        "seed" => @options[:seed], "spinners" => @options[:spinners], "spinner_iterations" => spin,
        "config" => info["config"], "elapsed_seconds" => elapsed.round(2),
        "tasks_per_second" => (@options[:tasks] / elapsed).round(1),
        "statuses" => @statuses, "stuck" => @stuck, "problems" => @problems.first(50),
        "problem_count" => @problems.size, "deferred" => @deferred.size,
        "deferred_examples" => @deferred.first(5).map(&:last),
        "predicted_tasks" => @predicted, "tasks_with_spurious_timeouts" => @anomalies,
        "log" => log.summary, "metrics" => metrics, "in_flight" => status["in_flight"],
        "orchestrator" => status["orchestrator"],
        "worker_stats" => stats.reject { |key, _| key == :threads }.transform_keys(&:to_s),
        "rss_kb" => rss, "malloc_arena_max" => @arenas || "default",
        "rss_tolerance" => @options[:rss_tolerance]
      }
    end

    def monotonic
      Process.clock_gettime(Process::CLOCK_MONOTONIC)
    end
  end
end
