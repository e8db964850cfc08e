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
    #
    # Takes today's keywords (`error_type:`, `retryable:`, `metadata:`) and upstream
    # tasker-core's (`error_code:`, `context:`, `error_category:`). `error_code` and
    # `context` reach the recorded error that `task_status` shows.
    #
    # A constructor given arguments it does not take does not raise ArgumentError (which
    # the worker would treat as an ordinary, retryable failure, silently retrying what was
    # meant to be permanent): it raises {InvalidErrorArguments}, a permanent failure
    # naming the class, the bad argument and the original message.
    class StepHandlerError < Error
      # The keywords this class takes.
      OPTIONS = %i[error_type retryable metadata error_code context error_category].freeze

      # @return [String] the error type recorded with the step (the class name by default)
      attr_reader :error_type
      # @return [Boolean] whether the orchestrator may retry the step
      attr_reader :retryable
      # @return [Hash] extra data recorded in the result's metadata "custom"
      attr_reader :metadata
      # @return [String, nil] a machine-readable code for the failure
      attr_reader :error_code
      # @return [Hash, nil] structured data about the failure (recorded as the error's context)
      attr_reader :context
      # @return [String, nil] upstream's free-form category (kept in metadata "error_category")
      attr_reader :error_category

      # @param message [String, nil]
      # @param error_type [String, nil] defaults to the exception's class name
      # @param retryable [Boolean]
      # @param metadata [Hash, nil]
      # @param error_code [String, Symbol, nil]
      # @param context [Hash, nil]
      # @param error_category [String, Symbol, nil]
      def initialize(*args, **options)
        problem = argument_problem(args, options)
        raise InvalidErrorArguments.new(self.class, problem, args.first) if problem

        super(args.first)
        assign(options)
      end

      # @return [Boolean]
      def retryable?
        @retryable
      end

      private

      def options_allowed
        self.class::OPTIONS
      end

      def default_retryable
        true
      end

      def assign(options)
        @error_type = (options[:error_type] || self.class.name || "StepHandlerError").to_s
        @retryable = options.fetch(:retryable, default_retryable)
        @metadata = options[:metadata] || {}
        @error_code = options[:error_code]&.to_s
        @context = options[:context]
        @error_category = options[:error_category]&.to_s
      end

      # @return [String, nil] what is wrong with the arguments, or nil
      def argument_problem(args, options)
        return "takes at most one positional argument (the message), got #{args.size}" if args.size > 1

        unknown = options.keys - options_allowed
        unless unknown.empty?
          return "unknown keyword#{'s' if unknown.size > 1} #{unknown.map(&:inspect).join(', ')} " \
                 "(takes #{options_allowed.map { |k| "#{k}:" }.join(', ')})"
        end
        type_problem(options)
      end

      def type_problem(options)
        if options.key?(:retryable) && ![true, false].include?(options[:retryable])
          return "retryable must be true or false, got #{options[:retryable].inspect}"
        end

        { metadata: Hash, context: Hash }.each do |key, type|
          value = options[key]
          return "#{key} must be a #{type} or nil, got #{value.class}" unless value.nil? || value.is_a?(type)
        end
        %i[error_type error_code error_category].each do |key|
          value = options[key]
          unless value.nil? || value.is_a?(String) || value.is_a?(Symbol)
            return "#{key} must be a String or nil, got #{value.class}"
          end
        end
        nil
      end
    end

    # A failure the orchestrator should retry (network blip, lock contention, ...).
    class RetryableError < StepHandlerError
      OPTIONS = (StepHandlerError::OPTIONS - %i[retryable] + %i[retry_after]).freeze

      # @return [Numeric, nil] seconds to wait before the next attempt (replaces the backoff)
      attr_reader :retry_after

      # @param message [String, nil]
      # @param retry_after [Numeric, nil] seconds before the next attempt; the core waits
      #   exactly this long instead of the step's backoff
      # @param context [Hash, nil]
      # @param error_code [String, nil]
      # @param error_type [String, nil]
      # @param metadata [Hash, nil]
      # @param error_category [String, nil]
      def initialize(*args, **options)
        super
      end

      private

      def assign(options)
        super
        @retry_after = options[:retry_after]
      end

      def type_problem(options)
        after = options[:retry_after]
        unless after.nil? || (after.is_a?(Numeric) && after.real? && after.finite? && after >= 0)
          return "retry_after must be a non-negative number of seconds, got #{after.inspect}"
        end

        super
      end
    end

    # A failure that retrying cannot fix (invalid input, business rule violation, ...).
    class PermanentError < StepHandlerError
      OPTIONS = (StepHandlerError::OPTIONS - %i[retryable]).freeze

      # @param message [String, nil]
      # @param error_code [String, nil]
      # @param context [Hash, nil]
      # @param error_type [String, nil]
      # @param metadata [Hash, nil]
      # @param error_category [String, nil]
      def initialize(*args, **options)
        super
      end

      private

      def default_retryable
        false
      end
    end

    # Upstream's validation failure: permanent, with the offending field.
    class ValidationError < PermanentError
      OPTIONS = (PermanentError::OPTIONS + %i[field]).freeze

      # @return [String, nil] the field that failed validation
      attr_reader :field

      private

      def assign(options)
        super
        @field = options[:field]&.to_s
        @context = (@context || {}).merge("field" => @field) if @field
      end
    end

    # An error class constructed with arguments it does not take. Permanent on purpose:
    # the handler's intent is unknown, and a programming error is not cured by retrying.
    class InvalidErrorArguments < PermanentError
      # @param error_class [Class] the class that was being constructed
      # @param problem [String] what was wrong
      # @param original [Object] the message it was given
      def initialize(error_class, problem, original)
        text = "#{error_class.name || error_class.inspect}.new #{problem}"
        text += " (its message was: #{original})" unless original.nil?
        super(text, error_type: "invalid_error_arguments", context: { "error_class" => error_class.name.to_s })
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

  # Upstream tasker-core also names the handler errors at the top level.
  PermanentError = Errors::PermanentError
  RetryableError = Errors::RetryableError
  ValidationError = Errors::ValidationError
end
