# frozen_string_literal: true

require "tasker_core/step_handler/result"

module TaskerCore
  module StepHandler
    # Base class of Ruby step handlers.
    #
    #   class Ecommerce::ReserveInventoryHandler < TaskerCore::StepHandler::Base
    #     def call(context)
    #       order = context.task_context["order"]
    #       return failure(message: "empty order", error_type: "EmptyOrder", retryable: false) if order["items"].empty?
    #       success(result: { "reserved" => order["items"].size })
    #     end
    #   end
    #
    # One instance is created per handler class and `initialization` Hash, and is shared
    # by all worker threads: keep per-step state in local variables, not in instance
    # variables.
    class Base
      # @return [Hash] the step definition's handler `initialization` (empty when none)
      attr_reader :config

      # @param config [Hash, nil] the step's handler `initialization` from the template
      def initialize(config: {})
        config ||= {}
        unless config.is_a?(Hash)
          raise ArgumentError, "#{self.class.name || 'handler'} config must be a Hash, got #{config.class}"
        end

        @config = config
      end

      # Runs the step. Subclasses implement it and return {#success} or {#failure}, or
      # raise (see TaskerCore::Errors::RetryableError and PermanentError).
      # @param context [TaskerCore::StepHandler::Context]
      # @return [Hash]
      def call(context) # rubocop:disable Lint/UnusedMethodArgument
        raise NotImplementedError, "#{self.class.name || self.class.inspect}#call(context) is not implemented"
      end

      # @param result [Object] any JSON-like value; becomes the step's result
      # @param metadata [Hash] extra data recorded in the result's metadata "custom"
      # @return [Hash] a success result
      def success(result: nil, metadata: {})
        Result.success(result: result, metadata: metadata)
      end

      # @param message [String] recorded as the step's error message
      # @param error_type [String]
      # @param retryable [Boolean] whether the orchestrator may retry the step
      # @param metadata [Hash] extra data recorded in the result's metadata "custom"
      # @return [Hash] a failure result
      def failure(message:, error_type: "StepFailure", retryable: true, metadata: {})
        Result.failure(message: message, error_type: error_type, retryable: retryable, metadata: metadata)
      end
    end
  end
end
