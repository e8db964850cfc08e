# frozen_string_literal: true

module TaskerCore
  module StepHandler
    # Builds the result Hashes sent to the core with
    # `TaskerCore::FFI.complete_step_event`. All keys are Strings.
    #
    #   success: {"success" => true, "result" => value, "metadata" => {"custom" => {...}}}
    #   failure: {"success" => false,
    #             "error" => {"message", "error_type", "retryable", "backtrace" => [String]},
    #             "metadata" => {"retryable" => Boolean, "custom" => {...}}}
    #
    # The worker adds execution_time_ms, started_at and completed_at to "metadata".
    module Result
      module_function

      # @param result [Object] any JSON-like value
      # @param metadata [Hash] recorded as metadata "custom"
      # @return [Hash]
      def success(result: nil, metadata: {})
        check_metadata!(metadata)
        { "success" => true, "result" => result, "metadata" => { "retryable" => false, "custom" => metadata } }
      end

      # @param message [String]
      # @param error_type [String]
      # @param retryable [Boolean]
      # @param metadata [Hash] recorded as metadata "custom"
      # @param backtrace [Array<String>]
      # @return [Hash]
      def failure(message:, error_type:, retryable:, metadata: {}, backtrace: [])
        raise ArgumentError, "failure message must be a String, got #{message.class}" unless message.is_a?(String)
        unless error_type.is_a?(String) && !error_type.empty?
          raise ArgumentError, "failure error_type must be a non-empty String, got #{error_type.inspect}"
        end
        raise ArgumentError, "failure retryable must be true or false, got #{retryable.inspect}" unless boolean?(retryable)

        check_metadata!(metadata)
        {
          "success" => false,
          "error" => {
            "message" => message,
            "error_type" => error_type,
            "retryable" => retryable,
            "backtrace" => Array(backtrace).map(&:to_s)
          },
          "metadata" => { "retryable" => retryable, "custom" => metadata }
        }
      end

      # @return [Boolean]
      def boolean?(value)
        value == true || value == false
      end

      def check_metadata!(metadata)
        raise ArgumentError, "metadata must be a Hash, got #{metadata.class}" unless metadata.is_a?(Hash)
      end
      private_class_method :check_metadata!
    end
  end
end
