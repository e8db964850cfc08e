# frozen_string_literal: true

require "tasker_core/clock"

module TaskerCore
  class Worker
    # Watches the processors for hung handlers.
    #
    # The core fails an attempt at its deadline on its own (and may retry it elsewhere);
    # the watchdog only gets the Ruby thread back. A handler still running `grace`
    # seconds after its deadline is interrupted with Errors::TimeoutError through its
    # HandlerGate. If it is still running `grace` seconds after that (it rescued the
    # interrupt, or sits in C code that ignores it), its processor is retired and a
    # replacement thread restores capacity.
    class Watchdog
      # @param manager [Manager]
      # @param grace [Float] seconds (the core's hung_handler_grace_ms / 1000)
      # @param stats [Stats]
      # @param logger [Logger]
      # @param interval [Float, nil] seconds between checks (from grace when nil)
      def initialize(manager:, grace:, stats:, logger:, interval: nil)
        unless grace.is_a?(Numeric) && grace >= 0
          raise ArgumentError, "grace must be a non-negative number of seconds, got #{grace.inspect}"
        end

        @manager = manager
        @grace = grace
        @stats = stats
        @logger = logger
        @interval = interval || (grace / 4.0).clamp(0.01, 0.5)
        @lock = Mutex.new
        @wakeup = ConditionVariable.new
        @stopped = false
        @thread = nil
      end

      # @return [self]
      def start
        @thread ||= Thread.new { run }.tap do |thread|
          thread.name = "tasker-watchdog"
          thread.report_on_exception = false
        end
        self
      end

      # @return [void]
      def stop
        @lock.synchronize do
          @stopped = true
          @wakeup.signal
        end
        @thread&.join unless @thread == Thread.current
      end

      # One pass over the processors.
      # @param now [Float] monotonic time
      # @return [void]
      def check(now = Clock.monotonic)
        @manager.processors.each { |processor| check_processor(processor, now) }
      end

      private

      def run
        until @lock.synchronize { @stopped }
          begin
            check
          rescue StandardError => e
            @logger.error("watchdog check failed: #{e.class}: #{e.message}")
          end
          @lock.synchronize { @wakeup.wait(@lock, @interval) unless @stopped }
        end
      end

      def check_processor(processor, now)
        snapshot = processor.gate.snapshot
        return unless snapshot

        context = snapshot.context
        if snapshot.interrupted_at.nil?
          interrupt(processor, context) if now >= context.deadline + @grace
        elsif now >= snapshot.interrupted_at + @grace
          @manager.retire(processor, reason: "step '#{context.step_name}' (event #{context.event_id}) ignored the " \
                                             "watchdog's interrupt for #{@grace}s")
        end
      end

      def interrupt(processor, context)
        message = "step '#{context.step_name}' (event #{context.event_id}) was still running #{@grace}s after its " \
                  "#{context.timeout_ms} ms deadline; interrupted by the worker watchdog (the core has already " \
                  "failed this attempt)"
        return unless processor.gate.interrupt(context, message)

        @stats.increment(:interrupts)
        @logger.warn("#{message}")
      end
    end
  end
end
