# frozen_string_literal: true

require "tasker_core/clock"
require "tasker_core/errors"
require "tasker_core/handler_registry"
require "tasker_core/logging"
require "tasker_core/worker/stats"
require "tasker_core/worker/handler_gate"
require "tasker_core/worker/step_runner"
require "tasker_core/worker/processor"
require "tasker_core/worker/manager"
require "tasker_core/worker/watchdog"
require "tasker_core/worker/core_share"

module TaskerCore
  # Runs Ruby step handlers for the Rust core on a bounded pool of threads.
  #
  #   worker = TaskerCore::Worker.new(template_path: "config/templates", concurrency: 8)
  #   worker.start
  #   ...
  #   worker.stop(timeout: 30)
  #
  # Structure: the Worker bootstraps the core and owns the lifecycle; a Manager owns the
  # Processor threads (each loops poll -> StepRunner -> complete); a Watchdog interrupts
  # and replaces threads whose handlers hang past their deadline.
  #
  # Delivery semantics: at-least-once. The core keeps every deadline itself: when an
  # attempt overruns its timeout the core fails it (retryable) at the deadline and may
  # dispatch a retry to another thread or process while the original handler is still
  # running here. The late completion of the original is rejected (complete_step_event
  # returns false). Handlers must therefore be idempotent, and should check
  # `context.cancelled?` between units of long work. Steps still running when the
  # worker stops are failed as retryable "worker_shutdown", so they run again too.
  class Worker
    # Options passed through to TaskerCore::FFI.bootstrap_worker.
    BOOTSTRAP_OPTIONS = %i[
      config_root environment max_concurrent_handlers handler_timeout_ms dispatch_buffer_size completion_buffer_size
      database_url
    ].freeze
    # Keys the worker reads from bootstrap_worker's "config".
    CONFIG_KEYS = %w[concurrency poll_timeout_ms shutdown_timeout_ms hung_handler_grace_ms].freeze

    # @return [Hash, nil] what bootstrap_worker returned on the last #start
    attr_reader :bootstrap_info

    # @param concurrency [Integer, nil] handler threads (the core's config "concurrency" when nil)
    # @param template_path [String, nil] task template directory (TASKER_TEMPLATE_PATH when nil)
    # @param ffi [Object, nil] the core (TaskerCore::FFI when nil)
    # @param registry [HandlerRegistry, nil]
    # @param logger [Logger, nil] (TaskerCore.logger when nil)
    # @param options [Hash] passed to bootstrap_worker: config_root:, environment:,
    #   max_concurrent_handlers:, handler_timeout_ms:, dispatch_buffer_size:, completion_buffer_size:,
    #   database_url: (PostgreSQL; TASKER_DATABASE_URL when not given, else the embedded store)
    def initialize(concurrency: nil, template_path: nil, ffi: nil, registry: nil, logger: nil, **options)
      unknown = options.keys - BOOTSTRAP_OPTIONS
      unless unknown.empty?
        raise ArgumentError, "unknown TaskerCore::Worker option(s) #{unknown.map(&:inspect).join(', ')} " \
                             "(known: concurrency, template_path, #{BOOTSTRAP_OPTIONS.join(', ')})"
      end
      unless concurrency.nil? || (concurrency.is_a?(Integer) && concurrency.positive?)
        raise ArgumentError, "concurrency must be a positive Integer or nil, got #{concurrency.inspect}"
      end
      unless template_path.nil? || template_path.is_a?(String) || template_path.respond_to?(:to_path)
        raise ArgumentError, "template_path must be a String or Pathname, got #{template_path.class}"
      end

      @requested_concurrency = concurrency
      @template_path = template_path&.to_s
      @options = options
      @ffi = ffi
      @registry = registry || HandlerRegistry.new
      @logger = logger
      @lifecycle = Mutex.new
      @state = :new
      @started_core = false
      @core_pid = nil
      @stats = Stats.new
      @manager = nil
      @watchdog = nil
      @config = nil
      @last_stop = nil
    end

    # Bootstraps the core (or joins the one already running) and starts the threads.
    # @return [Hash] bootstrap_worker's answer ("status", "worker_id", "environment",
    #   "templates_loaded", "config")
    # @raise [TaskerCore::Errors::Error] already running, or the core refused to start
    def start
      @lifecycle.synchronize do
        raise Errors::Error, "this TaskerCore::Worker is already running" if @state == :running

        info = ffi.bootstrap_worker(bootstrap_options)
        @started_core = info["status"] == "started"
        @core_pid = Process.pid
        @share = CoreShare.for(ffi)
        @share.attach(self, started_core: @started_core)
        begin
          check_handlers(info)
          launch(info)
        rescue Exception # rubocop:disable Lint/RescueException -- undo the bootstrap, then re-raise
          leave_core
          raise
        end
        @bootstrap_info = info
        @state = :running
        info
      end
    end

    # Stops the worker: no more polling at once; handlers already running get until
    # `timeout` to finish; threads still busy then are killed and their steps failed as
    # retryable "worker_shutdown". Stops the core if this worker started it.
    # Idempotent; may be called from any thread except a signal trap context.
    # @param timeout [Numeric, nil] seconds (config shutdown_timeout_ms when nil)
    # @return [Hash, nil] {abandoned: [{event_id:, step_name:, accepted:}], stopped_core: Boolean}
    #   (the first stop's report on later calls; nil if never started)
    def stop(timeout: nil)
      unless timeout.nil? || (timeout.is_a?(Numeric) && timeout >= 0 && timeout.finite?)
        raise ArgumentError, "timeout must be a non-negative number of seconds, got #{timeout.inspect}"
      end

      @lifecycle.synchronize do
        return @last_stop unless @state == :running

        timeout = @config.fetch("shutdown_timeout_ms") / 1000.0 if timeout.nil?
        @state = :stopping
        abandoned = @manager.stop(deadline: Clock.monotonic + timeout, timeout: timeout)
        @watchdog.stop
        stopped_core = leave_core
        @state = :stopped
        @last_stop = { abandoned: abandoned, stopped_core: stopped_core ? true : false }
      end
    end

    # True while this worker takes work: started, not stopping, and the core it runs on
    # is running (false once someone stopped the core under it).
    # @return [Boolean]
    def running?
      @state == :running && core_running?
    end

    # @return [Boolean] whether the last #start bootstrapped the core (rather than joining it)
    def started_core?
      @started_core
    end

    # @return [Integer, nil] handler threads (nil before #start)
    def concurrency
      @manager&.concurrency
    end

    # @return [String, nil]
    def worker_id
      @bootstrap_info && @bootstrap_info["worker_id"]
    end

    # @return [Hash] counters (steps_run, succeeded, failed, rejected_completions,
    #   invalid_results, conversion_errors, completion_errors, poll_errors, interrupts,
    #   replacements, shutdown_failures, processor_deaths), running:, concurrency:, and
    #   threads: [{name:, busy:, step_name:, event_id:, busy_seconds:, retired:, alive:}]
    def stats
      @stats.to_h.merge(running: running?, concurrency: concurrency, threads: @manager ? @manager.snapshot : [])
    end

    private

    def ffi
      @ffi || TaskerCore::FFI
    end

    def logger
      @logger || TaskerCore.logger
    end

    def bootstrap_options
      options = @options.dup
      options[:template_path] = @template_path if @template_path
      options[:concurrency] = @requested_concurrency if @requested_concurrency
      options
    end

    def launch(info)
      @config = read_config(info)
      concurrency = @requested_concurrency || @config.fetch("concurrency")
      @stats = Stats.new
      runner = StepRunner.new(ffi: ffi, registry: @registry, stats: @stats, logger: logger)
      @manager = Manager.new(concurrency: concurrency, ffi: ffi, runner: runner, stats: @stats, logger: logger,
                             poll_timeout: @config.fetch("poll_timeout_ms") / 1000.0)
      @watchdog = Watchdog.new(manager: @manager, grace: @config.fetch("hung_handler_grace_ms") / 1000.0,
                               stats: @stats, logger: logger)
      @manager.start
      @watchdog.start
    end

    # Every step of the templates this worker loaded must name a handler class that is
    # defined now: a typo fails here, at start, not when a task reaches the step.
    def check_handlers(info)
      path = info.is_a?(Hash) && info["template_path"]
      return unless path && ffi.respond_to?(:templates)

      root = File.expand_path(path)
      problems = ffi.templates.filter_map do |template|
        source = template["source"]
        next unless source && File.expand_path(source).start_with?("#{root}/")

        template["steps"].filter_map do |step|
          problem = @registry.problem_with(step.dig("handler", "callable"))
          "step #{step['name']} of #{template['namespace']}/#{template['name']} #{template['version']} " \
            "(#{source}): #{problem}" if problem
        end
      end.flatten
      return if problems.empty?

      raise Errors::ConfigurationError,
            "#{problems.size} step(s) name a handler this worker cannot run:\n  #{problems.join("\n  ")}"
    end

    def read_config(info)
      config = info.is_a?(Hash) ? info["config"] : nil
      unless config.is_a?(Hash)
        raise Errors::ConfigurationError, "bootstrap_worker returned no \"config\" Hash (got #{info.inspect[0, 200]})"
      end

      CONFIG_KEYS.each do |key|
        value = config[key]
        zero_ok = key == "hung_handler_grace_ms"
        next if value.is_a?(Integer) && (zero_ok ? value >= 0 : value.positive?)

        raise Errors::ConfigurationError,
              "bootstrap_worker config \"#{key}\" must be a #{zero_ok ? 'non-negative' : 'positive'} Integer, " \
              "got #{value.inspect}"
      end
      config
    end

    # Leaves the core's share; the last worker out stops a core that a worker started.
    # Never in a forked child: the core belongs to the parent.
    # @return [Boolean] whether the core was stopped
    def leave_core
      return false unless @share && @core_pid == Process.pid

      @share.detach(self) { stop_core_quietly }
    end

    def stop_core_quietly
      ffi.stop_worker
    rescue StandardError => e
      logger.error("stopping the worker core failed: #{e.class}: #{e.message}")
    end

    def core_running?
      return true unless ffi.respond_to?(:worker_status)

      ffi.worker_status["running"] == true
    rescue StandardError
      false
    end
  end
end
