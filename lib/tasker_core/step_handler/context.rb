# frozen_string_literal: true

require "tasker_core/clock"

module TaskerCore
  module StepHandler
    # What a step handler sees of one step event: the task's context, its parents'
    # results, identifiers, and the attempt's deadline.
    #
    # This is the only class that reads the raw event (with `[]` and `dig`), so the
    # event's representation can change without touching handlers or the worker.
    class Context
      # How long a {#cancelled?} answer from the core is reused before asking again.
      PENDING_CHECK_INTERVAL = 0.005

      # @return [Hash] the raw event as polled from the core
      attr_reader :event
      # @return [Float] monotonic time (Process::CLOCK_MONOTONIC) at which the event was received
      attr_reader :received_at
      # @return [Float] monotonic time at which this attempt's deadline passes
      #   (Float::INFINITY when the event carries no timeout)
      attr_reader :deadline

      # @param event [Hash] the event from TaskerCore::FFI.poll_step_events
      # @param received_at [Float, nil] monotonic receipt time (now when nil)
      # @param ffi [#event_pending?, nil] the core (TaskerCore::FFI when nil)
      # @param stopping [#call, nil] answers true once the worker is stopping
      # @param clock [#call, nil] monotonic clock (for tests)
      def initialize(event, received_at: nil, ffi: nil, stopping: nil, clock: nil)
        raise ArgumentError, "a step event must be a Hash-like object, got #{event.class}" unless event.respond_to?(:dig)

        @event = event
        @clock = clock
        @received_at = received_at || now
        @ffi = ffi
        @stopping = stopping
        @cancelled = false
        @pending_checked_at = nil
        timeout_ms = event["timeout_ms"]
        @deadline = timeout_ms.is_a?(Numeric) ? @received_at + (timeout_ms / 1000.0) : Float::INFINITY
      end

      # @return [String] the id to complete this event with
      def event_id
        event["event_id"]
      end

      # @return [String]
      def task_uuid
        event["task_uuid"]
      end

      # @return [String]
      def step_uuid
        event["step_uuid"]
      end

      # @return [String]
      def correlation_id
        event["correlation_id"]
      end

      # @return [String, nil] W3C trace id
      def trace_id
        event["trace_id"]
      end

      # @return [String, nil] W3C span id
      def span_id
        event["span_id"]
      end

      # @return [Integer, nil] this attempt's timeout in milliseconds
      def timeout_ms
        event["timeout_ms"]
      end

      # @return [Hash] the task's context (string keys)
      def task_context
        event.dig("task_sequence_step", "task", "context") || {}
      end

      # @return [String] the task's namespace
      def namespace
        event.dig("task_sequence_step", "task", "namespace")
      end

      # @return [String] the task's (template's) name
      def task_name
        event.dig("task_sequence_step", "task", "name")
      end

      # @return [String, nil] the task's template version
      def task_version
        event.dig("task_sequence_step", "task", "version")
      end

      # @return [String] this step's name
      def step_name
        event.dig("task_sequence_step", "workflow_step", "name")
      end

      # @return [Integer] this attempt's number (1 on the first run)
      def attempt
        event.dig("task_sequence_step", "workflow_step", "attempts")
      end

      # @return [Integer, nil]
      def max_attempts
        event.dig("task_sequence_step", "workflow_step", "max_attempts")
      end

      # @return [Boolean, nil] whether the step may be retried after a failure
      def retryable
        event.dig("task_sequence_step", "workflow_step", "retryable")
      end

      # @return [Hash] the step's inputs
      def inputs
        event.dig("task_sequence_step", "workflow_step", "inputs") || {}
      end

      # @return [Hash{String => Object}] parent step name => its result
      def dependency_results
        event.dig("task_sequence_step", "dependency_results") || {}
      end

      # @param name [String, Symbol] a parent step's name
      # @return [Object] that parent's result value
      # @raise [KeyError] when the step has no such parent result; lists the available ones
      def dependency_result(name)
        key = name.to_s
        results = dependency_results
        return results[key] if results.key?(key)

        available = results.keys.empty? ? "none" : results.keys.sort.join(", ")
        raise KeyError.new("step '#{step_name}' has no dependency result for '#{key}' " \
                           "(available: #{available})", receiver: results, key: key)
      end

      # @return [Hash] the step definition from the task template
      def step_definition
        event.dig("task_sequence_step", "step_definition") || {}
      end

      # @return [String, nil] the handler callable (a Ruby constant name)
      def handler_callable
        event.dig("task_sequence_step", "step_definition", "handler", "callable")
      end

      # @return [Hash] the handler's `initialization` from the template ({} when none)
      def handler_initialization
        event.dig("task_sequence_step", "step_definition", "handler", "initialization") || {}
      end

      # @return [Float] seconds left before the deadline (0.0 once passed; Infinity without a deadline)
      def remaining_seconds
        remaining = deadline - now
        remaining.positive? ? remaining : 0.0
      end

      # @return [Boolean] whether the deadline has passed
      def expired?
        now >= deadline
      end

      # True when the handler should give up: the deadline has passed, the worker is
      # stopping, or the core no longer waits for this event (it already failed it).
      # Long-running handlers should check it between units of work. Once true it stays
      # true. The core is asked at most every {PENDING_CHECK_INTERVAL} seconds.
      # @return [Boolean]
      def cancelled?
        return true if @cancelled
        return @cancelled = true if expired? || @stopping&.call

        @cancelled = !event_pending?
      end

      private

      def now
        @clock ? @clock.call : Clock.monotonic
      end

      def event_pending?
        checked_at = now
        return @last_pending if @pending_checked_at && checked_at - @pending_checked_at < PENDING_CHECK_INTERVAL

        @pending_checked_at = checked_at
        @last_pending = begin
          (@ffi || TaskerCore::FFI).event_pending?(event_id) == true
        rescue StandardError
          false # the core is gone or refused: nothing would accept this step's result
        end
      end
    end
  end
end
