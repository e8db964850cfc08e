# frozen_string_literal: true

require "time"

module TaskerCore
  # Time helpers shared by the worker: a monotonic clock for deadlines and durations,
  # and wall-clock timestamps for result metadata.
  module Clock
    module_function

    # @return [Float] seconds on the monotonic clock
    def monotonic
      Process.clock_gettime(Process::CLOCK_MONOTONIC)
    end

    # @param time [Time]
    # @return [String] UTC ISO8601 with milliseconds, e.g. "2024-05-01T10:00:00.123Z"
    def iso8601(time = Time.now)
      time.utc.iso8601(3)
    end
  end
end
