# frozen_string_literal: true

require "tasker_core"

module Bench
  # Step handlers of the benchmark templates (bench/support/templates.rb).
  module Handlers
    # Does nothing and succeeds.
    class Noop < TaskerCore::StepHandler::Base
      # @return [Hash]
      def call(_context)
        success
      end
    end

    # Sleeps 10 ms (an I/O-bound handler) and succeeds.
    class Sleep10ms < TaskerCore::StepHandler::Base
      # @return [Hash]
      def call(_context)
        sleep 0.01
        success
      end
    end

    # Sleeps 50 ms and succeeds.
    class Sleep50ms < TaskerCore::StepHandler::Base
      # @return [Hash]
      def call(_context)
        sleep 0.05
        success
      end
    end

    # Answers the wall-clock time (ns since the epoch) it started, for a client in another
    # process to compare with when it created the task.
    class StampWall < TaskerCore::StepHandler::Base
      # @return [Hash]
      def call(_context)
        success(result: { "started_ns" => Process.clock_gettime(Process::CLOCK_REALTIME, :nanosecond) })
      end
    end

    # Records [task_uuid, monotonic start time] in {.starts} and succeeds.
    class StampStart < TaskerCore::StepHandler::Base
      STARTS = Thread::Queue.new

      # @return [Thread::Queue] of [task_uuid, Float]
      def self.starts
        STARTS
      end

      # @return [Hash]
      def call(context)
        started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
        STARTS.push([context.task_uuid, started])
        success
      end
    end
  end
end
