# frozen_string_literal: true

require "tasker_core"

# Step handlers of the fault specs. What they do is recorded in FaultHandlers.recorder
# (reset before every example), because a handler whose completion the core rejects
# leaves no trace in task_status.
module FaultHandlers
  # Thread-safe records of handler events, with waiting for them.
  class Recorder
    def initialize
      @lock = Mutex.new
      @changed = ConditionVariable.new
      @records = []
      @released = false
    end

    # @param event [String] what happened ("started", "interrupted", ...)
    # @param context [TaskerCore::StepHandler::Context]
    # @return [Hash] the record
    def record(event, context, **data)
      record = {
        "event" => event, "task_uuid" => context.task_uuid, "step_uuid" => context.step_uuid,
        "step" => context.step_name, "attempt" => context.attempt, "event_id" => context.event_id,
        "thread" => Thread.current.name, "at" => Process.clock_gettime(Process::CLOCK_MONOTONIC),
        "wall" => Time.now.to_f, "received_at" => context.received_at
      }.merge(data.transform_keys(&:to_s))
      @lock.synchronize do
        @records << record
        @changed.broadcast
      end
      record
    end

    # @return [Array<Hash>] records of `event` (all when nil)
    def records(event = nil)
      @lock.synchronize { @records.select { |r| event.nil? || r["event"] == event } }
    end

    # Waits until `count` records of `event` exist.
    # @return [Array<Hash>] those records
    # @raise [RuntimeError] when they do not come within `timeout` seconds
    def wait_for(event, count: 1, timeout: 5)
      deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + timeout
      @lock.synchronize do
        loop do
          found = @records.select { |r| r["event"] == event }
          return found if found.size >= count

          remaining = deadline - Process.clock_gettime(Process::CLOCK_MONOTONIC)
          raise "only #{found.size} of #{count} #{event.inspect} records after #{timeout}s: #{@records}" unless remaining.positive?

          @changed.wait(@lock, remaining)
        end
      end
    end

    # Lets StuckUntilReleased handlers run normally from now on.
    def release!
      @lock.synchronize { @released = true }
    end

    # @return [Boolean]
    def released?
      @lock.synchronize { @released ? true : false }
    end
  end

  class << self
    # @return [Recorder]
    attr_reader :recorder

    # @return [void]
    def reset!
      @recorder = Recorder.new
    end
  end
  reset!

  # Attempts up to inputs["overrun_attempts"] (1 when absent) sleep inputs["seconds"]
  # (past their deadline); later attempts succeed at once.
  class Overrun < TaskerCore::StepHandler::Base
    def call(context)
      if context.attempt <= context.inputs.fetch("overrun_attempts", 1)
        FaultHandlers.recorder.record("started", context)
        sleep context.inputs.fetch("seconds")
        FaultHandlers.recorder.record("finished", context, cancelled: context.cancelled?)
      else
        FaultHandlers.recorder.record("ran", context)
      end
      success(result: { "attempt" => context.attempt })
    end
  end

  # Attempt 1 sleeps inputs["seconds"] (30 when absent) unless the worker interrupts it,
  # which is recorded (and re-raised); later attempts succeed.
  class Hang < TaskerCore::StepHandler::Base
    def call(context)
      return ran(context) if context.attempt > 1

      FaultHandlers.recorder.record("started", context)
      begin
        sleep context.inputs.fetch("seconds", 30)
      rescue TaskerCore::Errors::TimeoutError => e
        FaultHandlers.recorder.record("interrupted", context, message: e.message, error_class: e.class.name)
        raise
      end
      FaultHandlers.recorder.record("woke", context)
      success(result: "woke")
    end

    private

    def ran(context)
      FaultHandlers.recorder.record("ran", context)
      success(result: { "attempt" => context.attempt })
    end
  end

  # Attempt 1 swallows the watchdog's interrupt and keeps sleeping inputs["after"]
  # seconds; later attempts succeed.
  class SwallowInterrupt < TaskerCore::StepHandler::Base
    def call(context)
      if context.attempt > 1
        FaultHandlers.recorder.record("ran", context)
        return success(result: { "attempt" => context.attempt })
      end

      FaultHandlers.recorder.record("started", context)
      begin
        sleep 30
      rescue TaskerCore::Errors::TimeoutError => e
        FaultHandlers.recorder.record("interrupted", context, message: e.message)
      end
      sleep context.inputs.fetch("after")
      FaultHandlers.recorder.record("returned", context)
      success(result: "returned late")
    end
  end

  # Attempt 1 waits (up to 3 s) for context.cancelled?, records what it saw and gives up
  # (a retryable failure, as a well-behaved handler would); later attempts succeed at once.
  class WatchCancellation < TaskerCore::StepHandler::Base
    def call(context)
      if context.attempt == 1
        FaultHandlers.recorder.record("started", context, cancelled: context.cancelled?,
                                                          pending: TaskerCore::FFI.event_pending?(context.event_id))
        sleep 0.005 until context.cancelled? || Process.clock_gettime(Process::CLOCK_MONOTONIC) - context.received_at > 3
        FaultHandlers.recorder.record(
          "cancelled", context,
          cancelled: context.cancelled?, expired: context.expired?, remaining: context.remaining_seconds,
          after: Process.clock_gettime(Process::CLOCK_MONOTONIC) - context.received_at
        )
        raise TaskerCore::Errors::RetryableError, "gave up: the attempt was cancelled" if context.cancelled?
      end
      success(result: { "attempt" => context.attempt })
    end
  end

  # Attempt 1 spins until the worker's clock says the deadline has passed (the core's
  # deadline, counted from the poll, is a little earlier still), then succeeds at once:
  # a completion that comes just after the deadline, likely before the core's timer has
  # failed the attempt. Later attempts succeed at once.
  class FinishAtDeadline < TaskerCore::StepHandler::Base
    def call(context)
      if context.attempt == 1
        Thread.pass until context.expired?
        FaultHandlers.recorder.record("finished", context)
      else
        FaultHandlers.recorder.record("ran", context)
      end
      success(result: { "attempt" => context.attempt })
    end
  end

  # Records that it ran and succeeds.
  class Quick < TaskerCore::StepHandler::Base
    def call(context)
      FaultHandlers.recorder.record("ran", context)
      success(result: { "step" => context.step_name, "attempt" => context.attempt })
    end
  end

  # Sleeps inputs["seconds"], then succeeds.
  class Sleeper < TaskerCore::StepHandler::Base
    def call(context)
      FaultHandlers.recorder.record("started", context)
      sleep context.inputs.fetch("seconds")
      FaultHandlers.recorder.record("finished", context)
      success(result: { "slept" => context.inputs.fetch("seconds") })
    end
  end

  # Sleeps 30 s (a step a stopping worker must give up on) until the example calls
  # FaultHandlers.recorder.release!; from then on it succeeds at once.
  class StuckUntilReleased < TaskerCore::StepHandler::Base
    def call(context)
      if FaultHandlers.recorder.released?
        FaultHandlers.recorder.record("ran", context)
      else
        FaultHandlers.recorder.record("started", context)
        sleep 30
        FaultHandlers.recorder.record("woke", context)
      end
      success(result: { "attempt" => context.attempt })
    end
  end
end
