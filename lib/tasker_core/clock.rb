# frozen_string_literal: true

module TaskerCore
  # The worker's clock for deadlines and durations. (Wall-clock timestamps of results
  # are added by the core.)
  module Clock
    module_function

    # @return [Float] seconds on a monotonic clock
    def monotonic
      Process.clock_gettime(Process::CLOCK_MONOTONIC)
    end
  end
end
