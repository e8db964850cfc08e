# frozen_string_literal: true

require "tasker_core/step_handler/result"

module TaskerCore
  module Types
    # Upstream tasker-core's result objects, for handlers written against it:
    #
    #   TaskerCore::Types::StepHandlerCallResult.success(result: 42, metadata: { op: "square" })
    #   TaskerCore::Types::StepHandlerCallResult.error(error_type: "PermanentError", message: "bad card",
    #                                                  error_code: "CARD_DECLINED", retryable: false)
    #
    # A handler may return either; the worker turns it into the result Hash the core
    # takes (see TaskerCore::StepHandler::Result) with {#to_result_hash}.
    module StepHandlerCallResult
      # A successful step: its result value and free-form metadata.
      Success = Struct.new(:result, :metadata, keyword_init: true) do
        # @return [true]
        def success?
          true
        end

        # @return [Boolean] always false (upstream's batch checkpoints are not supported)
        def checkpoint?
          false
        end

        # @return [Hash] the core's result Hash
        def to_result_hash
          StepHandler::Result.success(result: result, metadata: metadata || {})
        end
      end

      # A failed step: type, message, optional code, whether it may be retried, metadata.
      Error = Struct.new(:error_type, :message, :error_code, :retryable, :metadata, keyword_init: true) do
        # @return [false]
        def success?
          false
        end

        # @return [Boolean]
        def checkpoint?
          false
        end

        # @return [Hash] the core's result Hash; `error_code` and metadata "context" reach
        #   the recorded error
        def to_result_hash
          metadata = self.metadata || {}
          hash = StepHandler::Result.failure(message: message.to_s, error_type: error_type.to_s,
                                             retryable: retryable == true, metadata: metadata)
          hash["error"]["error_code"] = error_code.to_s if error_code
          context = metadata[:context] || metadata["context"]
          hash["error"]["context"] = context if context
          hash
        end
      end

      class << self
        # @param result [Object] any JSON-like value
        # @param metadata [Hash]
        # @return [Success]
        def success(result:, metadata: {})
          Success.new(result: result, metadata: metadata)
        end

        # @param error_type [String] e.g. "PermanentError", "RetryableError", "ValidationError"
        # @param message [String]
        # @param error_code [String, nil]
        # @param retryable [Boolean] false unless given, as upstream
        # @param metadata [Hash] a "context" entry becomes the recorded error's context
        # @return [Error]
        def error(error_type:, message:, error_code: nil, retryable: false, metadata: {})
          unless [true, false].include?(retryable)
            raise ArgumentError, "retryable must be true or false, got #{retryable.inspect}"
          end

          Error.new(error_type: error_type, message: message, error_code: error_code, retryable: retryable,
                    metadata: metadata)
        end
      end
    end
  end
end
