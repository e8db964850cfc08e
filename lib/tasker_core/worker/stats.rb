# frozen_string_literal: true

module TaskerCore
  class Worker
    # Thread-safe counters of what a worker did.
    class Stats
      COUNTERS = %i[
        steps_run succeeded failed rejected_completions invalid_results conversion_errors
        completion_errors poll_errors interrupts replacements shutdown_failures processor_deaths
      ].freeze

      def initialize
        @lock = Mutex.new
        @counts = COUNTERS.to_h { |name| [name, 0] }
      end

      # @param name [Symbol] one of {COUNTERS}
      # @param by [Integer]
      # @return [void]
      def increment(name, by = 1)
        raise ArgumentError, "unknown counter #{name.inspect} (known: #{COUNTERS.join(', ')})" unless @counts.key?(name)

        @lock.synchronize { @counts[name] += by }
      end

      # Counts one finished step.
      # @param outcome [StepRunner::Outcome]
      # @return [void]
      def record(outcome)
        result = outcome.result
        succeeded = result["success"] == true
        invalid = !succeeded && result["error"]["error_type"] == StepRunner::INVALID_RESULT
        # lock/unlock rather than synchronize: this runs for every step.
        @lock.lock
        begin
          @counts[:steps_run] += 1
          @counts[succeeded ? :succeeded : :failed] += 1
          @counts[:rejected_completions] += 1 unless outcome.accepted
          @counts[:invalid_results] += 1 if invalid
        ensure
          @lock.unlock
        end
      end

      def [](name)
        @lock.synchronize { @counts.fetch(name) }
      end

      # @return [Hash{Symbol => Integer}]
      def to_h
        @lock.synchronize { @counts.dup }
      end
    end
  end
end
