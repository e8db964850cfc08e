# frozen_string_literal: true

require "tasker_core"

# Step handlers used by the end-to-end specs' own templates. What they saw is recorded in
# SpecHandlers.observations (reset before every example), because a handler whose
# completion the core rejects (late, after a timeout) leaves no trace in task_status.
module SpecHandlers
  # Thread-safe records of what handlers saw, and the peak of handlers running at once.
  class Observations
    def initialize
      @lock = Mutex.new
      @records = []
      @running = 0
      @peak = 0
      @flags = {}
    end

    # Sets a flag handlers can read (e.g. to stop sleeping).
    def flag!(name)
      @lock.synchronize { @flags[name] = true }
    end

    # @return [Boolean]
    def flag?(name)
      @lock.synchronize { @flags.key?(name) }
    end

    # @param record [Hash]
    def record(record)
      @lock.synchronize { @records << record }
    end

    # @return [Array<Hash>] records whose "task_uuid" is `task_uuid` (all when nil)
    def records(task_uuid = nil)
      @lock.synchronize { @records.select { |r| task_uuid.nil? || r["task_uuid"] == task_uuid } }
    end

    # Counts the block as one running handler.
    def running
      @lock.synchronize do
        @running += 1
        @peak = [@peak, @running].max
      end
      yield
    ensure
      @lock.synchronize { @running -= 1 }
    end

    # @return [Integer] most handlers that ran at the same time
    def peak
      @lock.synchronize { @peak }
    end
  end

  class << self
    # @return [Observations]
    attr_reader :observations

    def reset!
      @observations = Observations.new
    end

    # @return [Class] a non-StandardError exception class without a name (never assigned
    #   to a constant, which would name it)
    def anonymous_exception
      @anonymous_exception ||= Class.new(Exception) # rubocop:disable Lint/InheritException
    end
  end
  reset!

  # Result: {"step" => step name, "attempt" => attempt}.
  class Echo < TaskerCore::StepHandler::Base
    def call(context)
      success(result: { "step" => context.step_name, "attempt" => context.attempt })
    end
  end

  # Sleeps inputs["seconds"] (only on attempt 1 when inputs["first_attempt_only"]; not at
  # all once the "no_sleep" flag is set), counted in SpecHandlers.observations#peak.
  class Sleeper < TaskerCore::StepHandler::Base
    def call(context)
      seconds = context.inputs.fetch("seconds")
      seconds = 0 if context.inputs["first_attempt_only"] && context.attempt > 1
      seconds = 0 if SpecHandlers.observations.flag?("no_sleep")
      SpecHandlers.observations.running { sleep seconds }
      SpecHandlers.observations.record("task_uuid" => context.task_uuid, "step" => context.step_name,
                                       "attempt" => context.attempt)
      success(result: { "slept" => seconds, "attempt" => context.attempt })
    end
  end

  # Ignores the worker watchdog: rescues its interrupt and keeps sleeping, for up to
  # inputs["seconds"] or until the "release" flag is set.
  class Stubborn < TaskerCore::StepHandler::Base
    def call(context)
      clock = -> { Process.clock_gettime(Process::CLOCK_MONOTONIC) }
      until_time = clock.call + context.inputs.fetch("seconds")
      while clock.call < until_time && !SpecHandlers.observations.flag?("release")
        begin
          sleep 0.02
        rescue TaskerCore::Errors::TimeoutError => e
          SpecHandlers.observations.record("task_uuid" => context.task_uuid, "interrupted" => e.message)
        end
      end
      success(result: "finally")
    end
  end

  # Fails the way the task context's "kind" says.
  class Misbehaves < TaskerCore::StepHandler::Base
    def call(context)
      case context.task_context.fetch("kind")
      when "standard_error" then raise "boom from a plain RuntimeError"
      when "argument_error" then raise ArgumentError, "the order id is malformed"
      when "retryable_error" then raise TaskerCore::Errors::RetryableError, "the gateway timed out"
      when "permanent_error" then raise TaskerCore::Errors::PermanentError, "the card was declined"
      when "not_implemented_error" then raise NotImplementedError, "refunds are not implemented"
      when "anonymous_exception" then raise SpecHandlers.anonymous_exception, "a non-StandardError escaped"
      when "exit" then exit
      when "nil" then nil
      when "string" then "all done"
      when "hash_without_success" then { "result" => 42 }
      when "proc_in_result" then success(result: { "callback" => proc { 1 } })
      else raise ArgumentError, "unknown kind #{context.task_context['kind'].inspect}"
      end
    end
  end

  # Inherits TaskerCore::StepHandler::Base#call, which raises NotImplementedError.
  class WithoutCall < TaskerCore::StepHandler::Base
  end

  # Raises RetryableError until the attempt inputs["succeed_on"] (never when absent).
  class Flaky < TaskerCore::StepHandler::Base
    def call(context)
      succeed_on = context.inputs["succeed_on"]
      if succeed_on.nil? || context.attempt < succeed_on
        raise TaskerCore::Errors::RetryableError, "still failing on attempt #{context.attempt}"
      end

      success(result: { "attempt" => context.attempt })
    end
  end

  # Records every context accessor; the result is that record.
  class ContextProbe < TaskerCore::StepHandler::Base
    def call(context)
      record = {
        "task_uuid" => context.task_uuid, "step_uuid" => context.step_uuid, "event_id" => context.event_id,
        "step_name" => context.step_name, "attempt" => context.attempt, "namespace" => context.namespace,
        "task_name" => context.task_name, "task_version" => context.task_version,
        "task_context" => context.task_context, "inputs" => context.inputs,
        "dependency_results" => context.dependency_results,
        "parent" => context.dependency_results.empty? ? nil : context.dependency_result("parent"),
        "timeout_ms" => context.timeout_ms, "remaining_seconds" => context.remaining_seconds,
        "deadline_after_receipt" => context.deadline - context.received_at,
        "cancelled" => context.cancelled?, "max_attempts" => context.max_attempts,
        "handler_initialization" => context.handler_initialization
      }
      missing = begin
        context.dependency_result("no_such_step")
        nil
      rescue KeyError => e
        e.message
      end
      record["missing_dependency_error"] = missing
      SpecHandlers.observations.record(record)
      success(result: record)
    end
  end

  # On attempt 1: waits (up to 3 s) until context.cancelled? turns true, and records when;
  # later attempts succeed at once.
  class WaitsForCancellation < TaskerCore::StepHandler::Base
    def call(context)
      if context.attempt == 1
        started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
        sleep 0.01 until context.cancelled? || Process.clock_gettime(Process::CLOCK_MONOTONIC) - started > 3
        SpecHandlers.observations.record(
          "task_uuid" => context.task_uuid, "attempt" => 1, "cancelled" => context.cancelled?,
          "cancelled_after" => Process.clock_gettime(Process::CLOCK_MONOTONIC) - started,
          "remaining_seconds" => context.remaining_seconds, "expired" => context.expired?
        )
      end
      success(result: { "attempt" => context.attempt })
    end
  end

  # Stops the worker that runs it (SpecHandlers.stop_target) from inside the handler and
  # records what that worker said about itself before and after.
  class StopsItsWorker < TaskerCore::StepHandler::Base
    def call(_context)
      worker = SpecHandlers.stop_target
      before = worker.running?
      worker.stop(timeout: 1)
      SpecHandlers.observations.record("before" => before, "after" => worker.running?)
      success(result: "stopped")
    end
  end

  class << self
    # @return [TaskerCore::Worker, nil] the worker StopsItsWorker stops
    attr_accessor :stop_target
  end
end
