# frozen_string_literal: true

module TaskerCore
  # Every error tasker_core raises. The native extension looks these classes up when it
  # loads, so this file must be required before `tasker_core/tasker_core`.
  module Errors
    # Base class of all tasker_core errors.
    class Error < StandardError; end

    # Invalid configuration (TOML file, key or value, or a bad worker option).
    class ConfigurationError < Error; end

    # An invalid or missing task template.
    class TemplateError < Error; end

    # No task with the given uuid.
    class TaskNotFoundError < Error; end

    # The task finished and was removed by retention (its message says when and which
    # limit); distinct from a uuid that was never created.
    class TaskEvictedError < TaskNotFoundError; end

    # create_task refused: too many unfinished tasks (storage.embedded.max_unfinished_tasks).
    # Nothing was created; try again once tasks have finished.
    class BackpressureError < Error; end

    # create_task's idempotency key already belongs to a task of another template.
    class IdempotencyConflictError < Error; end

    # create_task's context is not acceptable (not a Hash, or breaks the template's
    # input_schema); the message names the path and the rule.
    class InvalidContextError < Error; end

    # The store (PostgreSQL) cannot be reached now; the same call may work later.
    class StoreUnavailableError < Error; end

    # The worker core is not running (not bootstrapped, or already stopped).
    class NotRunningError < Error; end

    # A bug in the native core (a Rust panic caught at the FFI boundary).
    class InternalError < Error; end

    # Something did not finish in time: {TaskerCore.wait_for_task}, or a step handler
    # interrupted by the worker's watchdog after its deadline.
    class TimeoutError < Error; end

    # A removed API was called; the message names its replacement.
    class RemovedApiError < Error; end

    # Raised by step handlers to fail a step with a chosen error type and retry flag.
    class StepHandlerError < Error
      # @return [String] the error type recorded with the step (the class name by default)
      attr_reader :error_type
      # @return [Boolean] whether the orchestrator may retry the step
      attr_reader :retryable
      # @return [Hash] extra data recorded in the result's metadata "custom"
      attr_reader :metadata

      # @param message [String, nil]
      # @param error_type [String, nil] defaults to the exception's class name
      # @param retryable [Boolean]
      # @param metadata [Hash, nil]
      def initialize(message = nil, error_type: nil, retryable: true, metadata: nil)
        super(message)
        unless [true, false].include?(retryable)
          raise ArgumentError, "retryable must be true or false, got #{retryable.inspect}"
        end
        unless metadata.nil? || metadata.is_a?(Hash)
          raise ArgumentError, "metadata must be a Hash, got #{metadata.class}"
        end

        @error_type = (error_type || self.class.name || "StepHandlerError").to_s
        @retryable = retryable
        @metadata = metadata || {}
      end

      # @return [Boolean]
      def retryable?
        @retryable
      end
    end

    # A failure the orchestrator should retry (network blip, lock contention, ...).
    class RetryableError < StepHandlerError
      # @return [Numeric, nil] seconds the handler suggests waiting before the retry
      attr_reader :retry_after

      # @param message [String, nil]
      # @param retry_after [Numeric, nil] suggested delay in seconds (recorded in the
      #   result metadata as "retry_after_seconds")
      # @param error_type [String, nil]
      # @param metadata [Hash, nil]
      def initialize(message = nil, retry_after: nil, error_type: nil, metadata: nil)
        unless retry_after.nil? || (retry_after.is_a?(Numeric) && retry_after >= 0)
          raise ArgumentError, "retry_after must be a non-negative number of seconds, got #{retry_after.inspect}"
        end

        super(message, error_type: error_type, retryable: true, metadata: metadata)
        @retry_after = retry_after
      end
    end

    # A failure that retrying cannot fix (invalid input, business rule violation, ...).
    class PermanentError < StepHandlerError
      # @param message [String, nil]
      # @param error_type [String, nil]
      # @param metadata [Hash, nil]
      def initialize(message = nil, error_type: nil, metadata: nil)
        super(message, error_type: error_type, retryable: false, metadata: metadata)
      end
    end

    # A step's handler callable names no loaded constant (error_type "handler_not_found").
    class HandlerNotFoundError < PermanentError
      # @param message [String]
      def initialize(message)
        super(message, error_type: "handler_not_found")
      end
    end

    # A step's handler callable names something that is not a handler class
    # (error_type "invalid_handler").
    class InvalidHandlerError < PermanentError
      # @param message [String]
      def initialize(message)
        super(message, error_type: "invalid_handler")
      end
    end
  end
end
