# frozen_string_literal: true

require "tasker_core/clock"
require "tasker_core/errors"
require "tasker_core/handler_registry"
require "tasker_core/logging"
require "tasker_core/step_handler/result"
require "tasker_core/worker/handler_gate"

module TaskerCore
  class Worker
    # Runs one step event end to end: resolves the handler, calls it, turns whatever
    # happened into exactly one result Hash, and completes the event with the core.
    #
    # It never raises (short of Thread#kill): every exception the handler raises,
    # including non-StandardError ones such as NotImplementedError, SystemStackError or
    # SystemExit, becomes a failure result.
    class StepRunner
      # error_type of a handler return value that is not a success/failure Hash, or
      # of a result the core could not convert.
      INVALID_RESULT = "invalid_handler_result"
      BACKTRACE_LIMIT = 50
      INSPECT_LIMIT = 200
      # Errors complete_step_event raises for a result it cannot convert.
      CONVERSION_ERRORS = [ArgumentError, TypeError, RangeError, EncodingError].freeze
      # The error fields of upstream's flat failure Hash (no "error" Hash).
      UPSTREAM_ERROR_KEYS = %w[message error_type error_code retryable context].freeze

      # The result sent for one step and whether the core accepted it.
      Outcome = Struct.new(:result, :accepted) do
        # @return [Boolean]
        def success?
          result["success"] == true
        end

        # @return [String, nil]
        def error_type
          result.dig("error", "error_type")
        end
      end

      # @param ffi [#complete_step_event] the core (TaskerCore::FFI)
      # @param registry [HandlerRegistry]
      # @param stats [Stats, nil] counts conversion and completion errors
      # @param logger [Logger]
      def initialize(ffi:, registry: HandlerRegistry.new, stats: nil, logger: TaskerCore.logger)
        @ffi = ffi
        @registry = registry
        @stats = stats
        @logger = logger
      end

      # @param context [TaskerCore::StepHandler::Context]
      # @param gate [#guard] wraps the handler call (see HandlerGate)
      # @return [Outcome]
      def run(context, gate: OpenGate, deferred: false)
        started = Clock.monotonic
        result = execute(context, gate, deferred)
        # The core adds started_at (when it handed the event out) and completed_at.
        timing = { "execution_time_ms" => ((Clock.monotonic - started) * 1000).round }
        result = with_metadata(result, timing)
        accepted, sent = complete(context, result, timing)
        Outcome.new(sent, accepted)
      end

      # Completes an event the worker gives up on (shutdown, dead thread) with a failure.
      # @param context [TaskerCore::StepHandler::Context]
      # @param error_type [String]
      # @param message [String]
      # @param retryable [Boolean]
      # @return [Boolean] whether the core accepted it (false when already completed or timed out)
      def fail_event(context, error_type:, message:, retryable:)
        timing = { "execution_time_ms" => 0 }
        result = with_metadata(failure(message, error_type, retryable), timing)
        complete(context, result, timing).first
      end

      private

      def execute(context, gate, deferred)
        handler = @registry.resolve(context.handler_callable, context.handler_initialization)
        value =
          if deferred
            gate.guard_deferred(context) { handler.call(context) }
          else
            gate.guard(context) { handler.call(context) }
          end
        normalize(value, context, handler)
      rescue Exception => e # rubocop:disable Lint/RescueException -- a handler must never kill its thread
        exception_failure(e)
      end

      # @return [Array(Boolean, Hash)] accepted, and the result actually sent
      def complete(context, result, timing)
        [deliver(context, result), result]
      rescue *CONVERSION_ERRORS => e
        @stats&.increment(:conversion_errors)
        message = "the handler's result for step '#{context.step_name}' could not be sent to the core " \
                  "(#{e.class}: #{e.message}); results must be JSON-like (nil, true/false, Integer, " \
                  "finite Float, String, Array, Hash)"
        @logger.warn("#{message}")
        fallback = with_metadata(failure(message, INVALID_RESULT, false), timing)
        begin
          [deliver(context, fallback), fallback]
        rescue StandardError => e2
          completion_failed(context, e2)
          [false, fallback]
        end
      rescue StandardError => e
        completion_failed(context, e)
        [false, result]
      end

      def deliver(context, result)
        @ffi.complete_step_event(context.completion_id, result) == true
      end

      def completion_failed(context, error)
        @stats&.increment(:completion_errors)
        @logger.error("could not complete step '#{context.step_name}' (event #{context.event_id}): " \
                      "#{error.class}: #{error.message}; the core will fail it at its deadline")
      end

      def normalize(value, context, handler)
        # Upstream's TaskerCore::Types::StepHandlerCallResult objects.
        value = value.to_result_hash if !value.is_a?(Hash) && value.respond_to?(:to_result_hash)
        return invalid_result(value, context, handler) unless value.is_a?(Hash)

        # The common case, a success as Base#success builds it: String keys only.
        if value["success"] == true && !value.key?(:success)
          metadata = value["metadata"]
          if metadata.nil? || (metadata.instance_of?(Hash) && string_keyed?(metadata))
            return { "success" => true, "result" => value.fetch("result") { value[:result] },
                     "metadata" => metadata ? metadata.dup : {} }
          end
        end

        success = pick(value, "success")
        return invalid_result(value, context, handler) unless StepHandler::Result.boolean?(success)

        metadata = pick(value, "metadata") || {}
        return invalid_result(value, context, handler, "its \"metadata\" is not a Hash") unless metadata.is_a?(Hash)

        # A copy: the metadata is completed in place below, and may be the handler's own Hash.
        metadata = metadata.any? { |key, _| key.is_a?(Symbol) } ? stringify_keys(metadata) : metadata.dup
        return { "success" => true, "result" => pick(value, "result"), "metadata" => metadata } if success

        normalize_failure(value, metadata, context, handler)
      end

      def normalize_failure(value, metadata, context, handler)
        error = pick(value, "error")
        # Upstream's flat failure Hash: message, error_type, error_code, retryable beside "success".
        error ||= UPSTREAM_ERROR_KEYS.to_h { |key| [key, pick(value, key)] }.compact
        return invalid_result(value, context, handler, "its \"error\" is not a Hash") unless error.is_a?(Hash)

        error = stringify_keys(error)
        retryable = error.fetch("retryable") { metadata.fetch("retryable", true) }
        unless StepHandler::Result.boolean?(retryable)
          return invalid_result(value, context, handler, "its error \"retryable\" is not true or false")
        end

        message = error["message"].nil? ? "the step failed (the handler gave no message)" : utf8(error["message"])
        error_type = error["error_type"].nil? ? "StepFailure" : utf8(error["error_type"])
        {
          "success" => false,
          "error" => {
            "message" => message,
            "error_type" => error_type.empty? ? "StepFailure" : error_type,
            "retryable" => retryable,
            "backtrace" => Array(error["backtrace"]).map { |line| utf8(line) }
          }.merge(error.slice("error_code", "context", "retry_after").compact),
          "metadata" => metadata.merge("retryable" => retryable)
        }
      end

      def invalid_result(value, context, handler, problem = nil)
        problem ||= value.is_a?(Hash) ? "a Hash without a boolean \"success\"" : "#{value.class}"
        message = "handler #{handler_name(handler)} for step '#{context.step_name}' returned #{problem} " \
                  "(#{short_inspect(value)}); return success(...) or failure(...), " \
                  "or a Hash with a boolean \"success\""
        failure(message, INVALID_RESULT, false)
      end

      def exception_failure(error)
        case error
        when Errors::StepHandlerError
          handler_error_failure(error)
        else
          failure(exception_message(error), class_name(error), error.is_a?(StandardError), {}, error)
        end
      end

      # error_code, context and retry_after go on the error itself, where the core records
      # them (task_status shows the first two; retry_after is the next attempt's delay).
      def handler_error_failure(error)
        custom = error.metadata.dup
        retry_after = error.respond_to?(:retry_after) ? error.retry_after : nil
        custom["retry_after_seconds"] = retry_after if retry_after
        custom["error_category"] = error.error_category if error.error_category
        result = failure(exception_message(error), utf8(error.error_type), error.retryable, custom, error)
        details = result["error"]
        details["error_code"] = utf8(error.error_code) if error.error_code
        details["context"] = error.context if error.context
        details["retry_after"] = retry_after if retry_after
        result
      end

      def failure(message, error_type, retryable, custom = {}, error = nil)
        backtrace = (error&.backtrace || []).first(BACKTRACE_LIMIT).map { |line| utf8(line) }
        error_type = "StepFailure" if error_type.to_s.empty?
        StepHandler::Result.failure(message: utf8(message), error_type: error_type, retryable: retryable,
                                    metadata: custom, backtrace: backtrace)
      end

      # Completes the result's metadata in place (every result reaching here was built by
      # this class): "retryable" and "custom" when missing, then the timing.
      def with_metadata(result, timing)
        metadata = result["metadata"]
        metadata = result["metadata"] = {} unless metadata.is_a?(Hash)
        unless metadata.key?("retryable")
          retryable = result["error"] && result["error"]["retryable"]
          metadata["retryable"] = retryable.nil? ? false : retryable
        end
        metadata["custom"] = {} unless metadata.key?("custom")
        metadata.update(timing)
        result
      end

      def string_keyed?(hash)
        hash.each_key { |key| return false unless key.instance_of?(String) }
        true
      end

      def pick(hash, key)
        hash.key?(key) ? hash[key] : hash[key.to_sym]
      end

      def stringify_keys(hash)
        hash.to_h { |key, val| [key.is_a?(Symbol) ? key.to_s : key, val] }
      end

      def exception_message(error)
        message = error.message
        message.nil? || message.to_s.empty? ? class_name(error) : message
      rescue Exception # rubocop:disable Lint/RescueException -- a broken #message must not kill the thread
        class_name(error)
      end

      def class_name(error)
        named = error.class.ancestors.find { |mod| mod.is_a?(Class) && mod.name }
        error.class.name || "#{named&.name || 'Exception'} (anonymous subclass)"
      end

      def handler_name(handler)
        handler.class.name || handler.class.inspect
      end

      def short_inspect(value)
        text = value.inspect.to_s
        text.length > INSPECT_LIMIT ? "#{text[0, INSPECT_LIMIT]}..." : text
      rescue Exception # rubocop:disable Lint/RescueException -- a broken #inspect must not kill the thread
        "#<#{value.class}>"
      end

      def utf8(value)
        text = value.to_s
        case text.encoding
        when Encoding::UTF_8 then text.valid_encoding? ? text : text.scrub
        when Encoding::BINARY then text.dup.force_encoding(Encoding::UTF_8).scrub
        else text.encode(Encoding::UTF_8, invalid: :replace, undef: :replace)
        end
      end
    end
  end
end
