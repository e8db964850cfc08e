# frozen_string_literal: true

require "tasker_core/clock"
require "tasker_core/step_handler/context"
require "tasker_core/worker/handler_gate"

module TaskerCore
  class Worker
    # One worker thread: polls the core for a step event, runs it with the StepRunner,
    # and repeats until told to stop.
    #
    # It publishes the event it holds ({#current}) so the manager can report it when it
    # kills the thread at shutdown, and owns the HandlerGate through which the watchdog
    # interrupts a hung handler.
    class Processor
      # Longest pause after a failed poll before polling again.
      MAX_POLL_ERROR_BACKOFF = 1.0

      # @return [String] the thread's name
      attr_reader :name
      # @return [HandlerGate]
      attr_reader :gate
      # @return [Thread, nil]
      attr_reader :thread

      # @param manager [Manager] told when the thread exits
      # @param ffi [#poll_step_events, #event_pending?] the core
      # @param runner [StepRunner]
      # @param stats [Stats]
      # @param logger [Logger]
      # @param poll_timeout [Float] seconds each poll waits for an event
      # @param name [String]
      def initialize(manager:, ffi:, runner:, stats:, logger:, poll_timeout:, name:)
        @manager = manager
        @ffi = ffi
        @runner = runner
        @stats = stats
        @logger = logger
        @poll_timeout = poll_timeout
        @name = name
        @gate = HandlerGate.new
        @stopping = -> { manager.stopping? }
        @done = false
        @retired = false
        @killed = false
        @current = nil
        @thread = nil
        @finished = false
        @death = nil
        @poll_failing = false
        # The core's StepEvent converts only the fields a handler reads; a core (or a
        # test double) without it hands out event Hashes.
        @poll_method = ffi.respond_to?(:next_step_event) ? :next_step_event : :poll_step_events
      end

      # Starts the thread.
      # @return [self]
      def start
        @thread ||= Thread.new { run }.tap do |thread|
          thread.name = @name
          thread.report_on_exception = false
        end
        self
      end

      # Stops polling; the thread exits after its current poll or step.
      # @return [void]
      def quiet
        @done = true
      end

      # Marks the thread as replaced: it exits once its (hung) handler returns.
      # @return [void]
      def retire!
        @retired = true
        @done = true
      end

      # Kills the thread (hard shutdown). The caller reports {#current} itself.
      # @return [void]
      def kill
        @killed = true
        @done = true
        @thread&.kill
      end

      # @return [Boolean]
      def retired?
        @retired
      end

      # @return [Boolean]
      def killed?
        @killed
      end

      # @return [Boolean]
      def alive?
        @thread ? @thread.alive? : false
      end

      # @return [TaskerCore::StepHandler::Context, nil] the event this thread holds
      def current
        @current
      end

      # @return [Hash] what the thread is doing, for Worker#stats
      def snapshot(now = Clock.monotonic)
        context = @current
        {
          name: @name,
          busy: !context.nil?,
          step_name: context&.step_name,
          event_id: context&.event_id,
          busy_seconds: context ? (now - context.received_at).round(3) : nil,
          retired: @retired,
          alive: alive?
        }
      end

      private

      def run
        # The watchdog's TimeoutError is deferred for the whole loop and let through only
        # inside handler code (HandlerGate#guard_deferred).
        Thread.handle_interrupt(HandlerGate::DEFER_TIMEOUT) { process_one until @done }
        @finished = true
      rescue Exception => e # rubocop:disable Lint/RescueException -- reported to the manager, which replaces the thread
        @death = e
      ensure
        abandon_current unless @killed
        @manager.processor_exited(self, error: @death, clean: @finished)
      end

      def process_one
        event = poll
        return unless event

        context = StepHandler::Context.new(event, ffi: @ffi, stopping: @stopping)
        @current = context
        outcome = @runner.run(context, gate: @gate, deferred: true)
        @current = nil
        @stats.record(outcome)
      end

      def poll
        event = @ffi.public_send(@poll_method, @poll_timeout)
        @poll_failing = false
        event
      rescue StandardError => e
        @stats.increment(:poll_errors)
        @logger.error("#{@name} could not poll for step events: #{e.class}: #{e.message}") unless @poll_failing
        @poll_failing = true
        sleep(@poll_timeout.clamp(0.05, MAX_POLL_ERROR_BACKOFF)) unless @done
        nil
      end

      # The thread is exiting while holding an event (killed by its own handler, or a bug):
      # fail the event now rather than leaving it to its deadline.
      def abandon_current
        context = @current
        return unless context

        cause = @death ? " (#{@death.class}: #{@death.message})" : ""
        @runner.fail_event(context, error_type: "worker_thread_terminated", retryable: true,
                                    message: "the worker thread running step '#{context.step_name}' ended " \
                                             "before the step finished#{cause}")
      rescue StandardError => e
        @logger.error("#{@name} could not report its abandoned step: #{e.class}: #{e.message}")
      end
    end
  end
end
