# frozen_string_literal: true

require "set"
require "tasker_core/clock"
require "tasker_core/worker/processor"

module TaskerCore
  class Worker
    # Owns the pool of processor threads: starts them, replaces dead or retired ones,
    # and stops them (gracefully until a deadline, then by killing the ones still busy
    # and failing their events as retryable "worker_shutdown").
    class Manager
      # How long killed threads get to run their ensure blocks.
      KILL_GRACE = 2.0

      # @return [Integer]
      attr_reader :concurrency

      # @param concurrency [Integer] number of processor threads
      # @param ffi [Object] the core
      # @param runner [StepRunner]
      # @param stats [Stats]
      # @param logger [Logger]
      # @param poll_timeout [Float] seconds
      def initialize(concurrency:, ffi:, runner:, stats:, logger:, poll_timeout:)
        unless concurrency.is_a?(Integer) && concurrency.positive?
          raise ArgumentError, "concurrency must be a positive Integer, got #{concurrency.inspect}"
        end

        @concurrency = concurrency
        @ffi = ffi
        @runner = runner
        @stats = stats
        @logger = logger
        @poll_timeout = poll_timeout
        @lock = Mutex.new
        @processors = Set.new
        @retired = Set.new
        @sequence = 0
        @done = false
      end

      # @return [void]
      def start
        @lock.synchronize { @concurrency.times { spawn } }
      end

      # @return [Boolean] true once stopping has begun
      def stopping?
        @done
      end

      # Stops all threads from polling.
      # @return [void]
      def quiet
        @lock.synchronize do
          @done = true
          (@processors.to_a + @retired.to_a).each(&:quiet)
        end
      end

      # @return [Array<Processor>] active (not retired) processors
      def processors
        @lock.synchronize { @processors.to_a }
      end

      # @return [Array<Processor>] retired processors whose threads still run
      def retired
        @lock.synchronize { @retired.to_a }
      end

      # @return [Array<Hash>] per-thread state (see Processor#snapshot)
      def snapshot
        now = Clock.monotonic
        @lock.synchronize { (@processors.to_a + @retired.to_a) }.map { |processor| processor.snapshot(now) }
      end

      # Replaces a processor whose handler ignores interrupts: it leaves the pool (its
      # thread exits when the handler eventually returns) and a new thread takes its place.
      # @param processor [Processor]
      # @param reason [String]
      # @return [Boolean] whether it was replaced
      def retire(processor, reason:)
        @lock.synchronize do
          return false if @done || !@processors.include?(processor)

          @processors.delete(processor)
          processor.retire!
          @retired << processor if processor.alive?
          spawn
        end
        @stats.increment(:replacements)
        @logger.warn("retired #{processor.name} (#{reason}); started a replacement thread")
        true
      end

      # Called by a processor's thread as it exits.
      # @param processor [Processor]
      # @param error [Exception, nil] what ended the thread, when not a clean stop
      # @param clean [Boolean] whether it left its loop normally
      # @return [void]
      def processor_exited(processor, error:, clean:)
        replaced = false
        @lock.synchronize do
          was_active = @processors.delete?(processor)
          @retired.delete(processor)
          if was_active && !clean && !@done && !processor.killed?
            spawn
            replaced = true
          end
        end
        return unless replaced

        @stats.increment(:processor_deaths)
        cause = error ? "#{error.class}: #{error.message}" : "thread killed"
        @logger.error("#{processor.name} died (#{cause}); started a replacement thread")
      end

      # Stops polling, waits for busy threads until `deadline`, then kills the ones still
      # running and fails their events as retryable "worker_shutdown".
      # @param deadline [Float] monotonic time
      # @param timeout [Numeric] the shutdown timeout (for messages)
      # @return [Array<Hash>] the abandoned steps: {event_id:, step_name:, accepted:}
      def stop(deadline:, timeout:)
        quiet
        processors.each do |processor|
          thread = processor.thread
          next if thread.nil? || thread == Thread.current

          remaining = deadline - Clock.monotonic
          break unless remaining.positive?

          thread.join(remaining)
        end
        hard_shutdown(timeout)
      end

      private

      def spawn
        @sequence += 1
        processor = Processor.new(manager: self, ffi: @ffi, runner: @runner, stats: @stats, logger: @logger,
                                  poll_timeout: @poll_timeout, name: "tasker-worker-#{@sequence}")
        @processors << processor
        processor.start
      end

      def hard_shutdown(timeout)
        victims = @lock.synchronize { @processors.to_a + @retired.to_a }
        victims = victims.select { |processor| processor.alive? && processor.thread != Thread.current }
        return [] if victims.empty?

        @logger.warn("#{victims.size} worker thread(s) still busy after #{timeout}s; stopping them")
        victims.each(&:kill)
        grace_deadline = Clock.monotonic + KILL_GRACE
        victims.each { |processor| processor.thread.join([grace_deadline - Clock.monotonic, 0].max) }
        victims.filter_map { |processor| report_abandoned(processor, timeout) }
      end

      def report_abandoned(processor, timeout)
        context = processor.current
        return unless context

        message = "step '#{context.step_name}' (event #{context.event_id}) was still running after the " \
                  "#{timeout}s shutdown timeout; the worker stopped it"
        accepted = @runner.fail_event(context, error_type: FFI::ERROR_TYPES.fetch(:worker_shutdown), retryable: true,
                                                message: message)
        @stats.increment(:shutdown_failures) if accepted
        { event_id: context.event_id, step_name: context.step_name, accepted: accepted }
      end
    end
  end
end
