# frozen_string_literal: true

module TaskerCore
  # Clocks of the worker: a monotonic one for deadlines and durations, and UTC wall-clock
  # timestamps (ISO 8601 with milliseconds) for result metadata.
  module Clock
    module_function

    # @return [Float] seconds on a monotonic clock
    def monotonic
      Process.clock_gettime(Process::CLOCK_MONOTONIC)
    end

    # The current UTC time as "2026-11-26T07:33:20.123Z". The date-and-seconds part is
    # formatted once per second and reused: this runs twice for every step.
    # @return [String]
    def iso8601_now
      millis = Process.clock_gettime(Process::CLOCK_REALTIME, :millisecond)
      second, milli = millis.divmod(1000)
      cached = @second_prefix
      unless cached && cached[0] == second
        cached = [second, Time.at(second).utc.strftime("%Y-%m-%dT%H:%M:%S.").freeze].freeze
        @second_prefix = cached
      end
      milli_text = milli.to_s
      milli_text = milli_text.rjust(3, "0") if milli_text.length < 3
      "#{cached[1]}#{milli_text}Z"
    end

    # @param time [Time]
    # @return [String] `time` in UTC as ISO 8601 with milliseconds
    def iso8601(time = nil)
      return iso8601_now if time.nil?

      time.getutc.strftime("%Y-%m-%dT%H:%M:%S.%LZ")
    end
  end
end
