# frozen_string_literal: true

require "tasker_core/logger"
require "tasker_core/step_handler/result"
require "tasker_core/types"

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
    #
    # Handlers written for upstream tasker-core run unchanged: `logger`,
    # `TaskerCore::Types::StepHandlerCallResult` results, the upstream context readers
    # (see Context) and upstream's error keywords all work here.
    class Base
      # @return [Hash] the step definition's handler `initialization` (empty when none)
      attr_reader :config

      # @param config [Hash, nil] the step's handler `initialization` from the template
      # @param logger [#info, nil] where {#logger} writes (TaskerCore::Logger.instance when nil)
      def initialize(config: {}, logger: nil)
        config ||= {}
        unless config.is_a?(Hash)
          raise ArgumentError, "#{self.class.name || 'handler'} config must be a Hash, got #{config.class}"
        end

        @config = config
        @logger = logger
      end

      # @return [TaskerCore::Logger, #info] the handler's logger (writes to TaskerCore.logger)
      def logger
        @logger || TaskerCore::Logger.instance
      end

      # @return [String] the class name in snake_case, as upstream names handlers
      def handler_name
        (self.class.name || "anonymous_handler").split("::").last.gsub(/([a-z\d])([A-Z])/, '\\1_\\2').downcase
      end

      # Runs the step. Subclasses implement it and return {#success} or {#failure}, or
      # raise (see TaskerCore::Errors::RetryableError and PermanentError).
      # @param context [TaskerCore::StepHandler::Context]
      # @return [Hash]
      def call(context) # rubocop:disable Lint/UnusedMethodArgument
        raise NotImplementedError, "#{self.class.name || self.class.inspect}#call(context) is not implemented"
      end

      # @param result [Object] any JSON-like value; becomes the step's result
      # @param result_data [Object] upstream's other name for `result`
      # @param metadata [Hash] extra data recorded in the result's metadata "custom"
      # @return [Hash] a success result
      def success(result: nil, result_data: nil, metadata: {})
        Result.success(result: result.nil? ? result_data : result, metadata: metadata)
      end

      # Defaults differ from upstream's on purpose: a failure is retryable unless said
      # otherwise (a transient fault retried beats a lost step), and its type is
      # "StepFailure". Pass `retryable: false` for a permanent one.
      # @param message [String] recorded as the step's error message
      # @param error_type [String]
      # @param retryable [Boolean] whether the orchestrator may retry the step
      # @param metadata [Hash] extra data recorded in the result's metadata "custom"
      # @param error_code [String, nil] recorded as the error's "error_code"
      # @return [Hash] a failure result
      def failure(message:, error_type: "StepFailure", retryable: true, metadata: {}, error_code: nil)
        result = Result.failure(message: message, error_type: error_type, retryable: retryable, metadata: metadata)
        result["error"]["error_code"] = error_code.to_s if error_code
        result
      end
    end
  end
end
