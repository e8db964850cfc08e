# frozen_string_literal: true

require "time"
require "tasker_core"

module Bench
  # Raised when a measure sees something that makes its number meaningless (a task
  # that did not complete, a counter that never reached its target, ...).
  class MeasureError < StandardError; end

  # Small tools every measure uses: clocks, RSS, percentiles, and the orchestrator's
  # counters to tell when a batch of tasks has finished.
  module Helper
    module_function

    # @return [Float] seconds on the monotonic clock
    def now
      Process.clock_gettime(Process::CLOCK_MONOTONIC)
    end

    # @return [Float] seconds since the epoch (wall clock)
    def wall
      Process.clock_gettime(Process::CLOCK_REALTIME)
    end

    # Seconds the block took.
    # @return [Float]
    def time
      started = now
      yield
      now - started
    end

    # @return [Integer] resident set size of this process in bytes
    def rss_bytes
      kb = File.read("/proc/self/status")[/^VmRSS:\s+(\d+)\s+kB/, 1]
      raise MeasureError, "no VmRSS line in /proc/self/status" unless kb

      Integer(kb) * 1024
    end

    # RSS after a full GC, so Ruby garbage does not count.
    # @return [Integer] bytes
    def settled_rss_bytes
      GC.start(full_mark: true, immediate_sweep: true)
      rss_bytes
    end

    # Nearest-rank percentile.
    # @param values [Array<Numeric>]
    # @param pct [Numeric] 0..100
    # @return [Numeric, nil]
    def percentile(values, pct)
      return nil if values.empty?

      sorted = values.sort
      rank = ((pct / 100.0) * sorted.size).ceil.clamp(1, sorted.size)
      sorted[rank - 1]
    end

    # @return [Hash{String=>Integer}] the orchestrator's counters (tasks_created,
    #   tasks_completed, tasks_failed, steps_succeeded, ...)
    def orchestrator_counters
      counters = TaskerCore::FFI.worker_status["orchestrator"]
      raise MeasureError, "TaskerCore::FFI.worker_status has no \"orchestrator\" counters" unless counters.is_a?(Hash)

      counters
    end

    # @return [Integer] tasks that completed or failed since the core started
    def finished_tasks
      counters = orchestrator_counters
      counters.fetch("tasks_completed").to_i + counters.fetch("tasks_failed").to_i
    end

    # Waits until `target` tasks have finished (counted from the core's start), checking
    # every `interval` seconds.
    # @param target [Integer]
    # @param timeout [Numeric] seconds
    # @param interval [Float] seconds between checks
    # @return [Float] monotonic time at which the target was seen
    # @raise [MeasureError] not reached in time
    def wait_for_finished_tasks(target, timeout:, interval: 0.002)
      deadline = now + timeout
      loop do
        finished = finished_tasks
        return now if finished >= target
        if now > deadline
          raise MeasureError, "only #{finished} of #{target} tasks finished within #{timeout}s " \
                              "(counters: #{orchestrator_counters.inspect})"
        end

        sleep interval
      end
    end

    # Checks that no task failed: a failed no-op step means the number is wrong.
    # @return [void]
    # @raise [MeasureError]
    def assert_no_failures!(what)
      counters = orchestrator_counters
      failed = counters.fetch("tasks_failed").to_i
      failures = counters.fetch("step_failures").to_i
      return if failed.zero? && failures.zero?

      raise MeasureError, "#{what}: #{failed} tasks failed, #{failures} failed attempts (counters: #{counters.inspect})"
    end

    # Bootstraps the core, stops its worker at once and leaves the system (the
    # orchestrator and its templates) in place: tasks created now wait, undispatched,
    # for the next worker. This is how the measures create their tasks "up front".
    # @param template_path [String]
    # @return [void]
    def bootstrap_idle_core(template_path:)
      TaskerCore::FFI.bootstrap_worker(template_path: template_path)
      TaskerCore::FFI.stop_worker(5)
    end

    # Creates `count` tasks and returns how long it took.
    # @param count [Integer]
    # @param namespace [String]
    # @param name [String]
    # @param context [Proc] index -> context Hash
    # @return [Float] seconds
    def create_tasks(count, namespace:, name:, context: ->(i) { { "i" => i } })
      time do
        count.times { |i| TaskerCore::FFI.create_task(namespace, name, nil, context.call(i)) }
      end
    end

    # Runs a TaskerCore::Worker for the block.
    # @param concurrency [Integer]
    # @param template_path [String]
    # @param options [Hash] more TaskerCore::Worker options
    # @yieldparam worker [TaskerCore::Worker]
    # @return [Object] the block's value
    def with_worker(concurrency:, template_path:, **options)
      worker = TaskerCore::Worker.new(concurrency: concurrency, template_path: template_path, **options)
      started = now
      worker.start
      yield worker, started
    ensure
      worker&.stop(timeout: 5)
    end

    # Parses the RFC 3339 (milliseconds) timestamps of task_status.
    # @param text [String]
    # @return [Float] seconds since the epoch
    def parse_time(text)
      Time.iso8601(text).to_f
    end
  end
end
