# frozen_string_literal: true

require "tasker_core/clock"
require "tasker_core/types/indifferent_hash"
require "tasker_core/step_handler/hash_event"
require "tasker_core/step_handler/views"

module TaskerCore
  module StepHandler
    # What a step handler sees of one step event: the task's context, its parents'
    # results, identifiers, and the attempt's deadline.
    #
    # This is the only class that reads the raw event (a StepEvent, or a Hash through
    # HashEvent), so the event's representation can change without touching handlers.
    #
    # Upstream tasker-core's readers work too: `context.task.context`, `context.context`,
    # `get_input`, `get_dependency_result` (any ancestor, nil when absent),
    # `get_dependency_field`, `workflow_step.name` / `.results`, `step_config`,
    # `retry_count`. The task context, inputs and results answer String and Symbol keys
    # alike (TaskerCore::Types::IndifferentHash).
    class Context
      # How long a {#cancelled?} answer from the core is reused before asking again.
      PENDING_CHECK_INTERVAL = 0.005

      # @return [TaskerCore::StepEvent, Hash] the event as the core handed it over
      attr_reader :event
      # @return [Float] monotonic time (Process::CLOCK_MONOTONIC) at which the event was received
      attr_reader :received_at
      # @return [Float] monotonic time at which this attempt's deadline passes
      #   (Float::INFINITY when the event carries no timeout)
      attr_reader :deadline

      # @param event [TaskerCore::StepEvent, Hash] from TaskerCore::FFI.next_step_event
      #   or TaskerCore::FFI.poll_step_events
      # @param received_at [Float, nil] monotonic receipt time (now when nil)
      # @param ffi [#event_cancelled?, nil] the core (TaskerCore::FFI when nil)
      # @param stopping [#call, nil] answers true once the worker is stopping
      # @param clock [#call, nil] monotonic clock (for tests)
      def initialize(event, received_at: nil, ffi: nil, stopping: nil, clock: nil)
        @source =
          if event.respond_to?(:handler_callable) then event
          elsif event.respond_to?(:dig) then HashEvent.new(event)
          else raise ArgumentError, "a step event must be a TaskerCore::StepEvent or a Hash, got #{event.class}"
          end
        @event = event
        @clock = clock
        @received_at = received_at || now
        @ffi = ffi
        @stopping = stopping
        @cancelled = false
        @pending_checked_at = nil
        timeout_ms = @source.timeout_ms
        @deadline = timeout_ms.is_a?(Numeric) ? @received_at + (timeout_ms / 1000.0) : Float::INFINITY
      end

      # Readers convert a field of a StepEvent once, on first use.

      # @return [String] the id to complete this event with
      def event_id
        @event_id ||= @source.event_id
      end

      # What to complete this event with: the StepEvent itself (no id to convert and
      # parse back), or the event id of an event Hash.
      # @return [TaskerCore::StepEvent, String]
      def completion_id
        @source.is_a?(HashEvent) ? event_id : @event
      end

      # @return [String]
      def task_uuid
        @task_uuid ||= @source.task_uuid
      end

      # @return [String]
      def step_uuid
        @step_uuid ||= @source.step_uuid
      end

      # @return [String]
      def correlation_id
        @correlation_id ||= @source.correlation_id
      end

      # @return [String, nil] W3C trace id
      def trace_id
        @source.trace_id
      end

      # @return [String, nil] W3C span id
      def span_id
        @source.span_id
      end

      # @return [Integer, nil] this attempt's deadline in milliseconds, from receipt
      def timeout_ms
        @source.timeout_ms
      end

      # @return [TaskerCore::Types::IndifferentHash] the task's context
      def task_context
        @task_context ||= @source.task_context || Types::IndifferentHash.new
      end
      # Upstream's name for {#task_context}.
      alias context task_context

      # @return [String]
      def namespace
        @source.namespace
      end

      # @return [String] the task (template) name
      def task_name
        @source.task_name
      end

      # @return [String]
      def task_version
        @source.task_version
      end

      # @return [String]
      def step_name
        @step_name ||= @source.step_name
      end

      # @return [Integer] this attempt's number (1 on the first run)
      def attempt
        @source.attempts
      end

      # @return [Integer]
      def max_attempts
        @source.max_attempts
      end

      # @return [Boolean] whether the step's policy allows retries
      def retryable
        @source.retryable
      end

      # @return [TaskerCore::Types::IndifferentHash] the step's static inputs from the template
      def inputs
        @inputs ||= @source.inputs || Types::IndifferentHash.new
      end
      # Upstream's name for {#inputs}.
      alias input_data inputs

      # @return [TaskerCore::Types::IndifferentHash] parent step name => that step's result
      def dependency_results
        @dependency_results ||= @source.dependency_results || Types::IndifferentHash.new
      end

      # @param name [String, Symbol] a parent step's name
      # @return [Object] that step's result value
      # @raise [KeyError] naming the step and the parents that do have results
      def dependency_result(name)
        key = name.to_s
        results = dependency_results
        return results[key] if results.key?(key)

        available = results.keys.empty? ? "none" : results.keys.sort.join(", ")
        raise KeyError.new("step '#{step_name}' has no dependency result for '#{key}' " \
                           "(available: #{available})", receiver: results, key: key)
      end

      # Upstream: a field of the task context (String or Symbol), nil when absent.
      # @param key [String, Symbol]
      # @return [Object]
      def get_input(key)
        task_context[key]
      end

      # @param key [String, Symbol]
      # @param default [Object] answered when the context has no such key
      # @return [Object]
      def get_input_or(key, default)
        context = task_context
        context.key?(key) ? context[key] : default
      end

      # Upstream: the result of any ancestor step by name (a parent, a grandparent or
      # further up), or nil when the step has no finished ancestor of that name. Unlike
      # {#dependency_result}, which is for parents only and raises when absent.
      # @param name [String, Symbol]
      # @return [Object]
      def get_dependency_result(name)
        key = name.to_s
        parents = dependency_results
        return parents[key] if parents.key?(key)

        @source.ancestor_result(key)
      end

      # Upstream: a field inside an ancestor's result, e.g.
      # `get_dependency_field("validate_cart", "total")` or a deeper path.
      # @param name [String, Symbol] the ancestor step
      # @param path [Array<String, Symbol, Integer>] keys (and Array indices) to dig
      # @return [Object, nil]
      def get_dependency_field(name, *path)
        result = get_dependency_result(name)
        return result if path.empty?
        return nil unless result.respond_to?(:dig)

        result.dig(*path)
      end

      # Upstream: the handler's `initialization` from the template.
      # @return [Hash]
      def step_config
        handler_initialization
      end

      # @param key [String, Symbol]
      # @return [Object] one entry of {#step_config}
      def get_config(key)
        config = step_config
        config[key.to_s] if config.respond_to?(:[])
      end

      # @return [Integer] attempts before this one (0 on the first run)
      def retry_count
        attempt.to_i - 1
      end

      # @return [Integer] upstream's name for {#max_attempts}
      def max_retries
        max_attempts
      end

      # @return [TaskView] upstream's `context.task`
      def task
        @task ||= TaskView.new(self)
      end

      # @return [WorkflowStepView] upstream's `context.workflow_step`
      def workflow_step
        @workflow_step ||= WorkflowStepView.new(self)
      end

      # @return [Hash] the step's definition from the template (frozen)
      def step_definition
        @source.step_definition || {}
      end

      # @return [String] the handler class name
      def handler_callable
        @source.handler_callable
      end

      # @return [Hash] the handler's initialization from the template
      def handler_initialization
        @source.handler_initialization || {}
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
      # stopping, the task is being cancelled, or the core no longer waits for this event
      # (it already failed it).
      # Long-running handlers should check it between units of work. Once true it stays
      # true. The core is asked at most every {PENDING_CHECK_INTERVAL} seconds.
      # @return [Boolean]
      def cancelled?
        return true if @cancelled
        return @cancelled = true if expired? || @stopping&.call

        @cancelled = event_cancelled?
      end

      private

      def now
        @clock ? @clock.call : Clock.monotonic
      end

      def event_cancelled?
        checked_at = now
        return @last_cancelled if @pending_checked_at && checked_at - @pending_checked_at < PENDING_CHECK_INTERVAL

        @pending_checked_at = checked_at
        @last_cancelled = begin
          (@ffi || TaskerCore::FFI).event_cancelled?(event_id) != false
        rescue StandardError
          true # the core is gone or refused: nothing would accept this step's result
        end
      end
    end
  end
end
