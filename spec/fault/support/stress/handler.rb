# frozen_string_literal: true

require "delegate"
require "tasker_core"

module FaultStress
  # The handler of every step: acts out the plan and logs the execution first.
  class Handler < TaskerCore::StepHandler::Base
    def call(context)
      index = context.task_context.fetch("i")
      kinds = context.task_context.fetch("plan").fetch(context.step_name)
      kind = kinds[context.attempt - 1] || "success"
      FaultStress.log.executed(index, context.step_uuid, context.attempt, context.event_id, kind)
      act(kind, context, index)
    end

    private

    def act(kind, context, index)
      case kind
      when "success" then done(context)
      when "sleep"
        sleep(0.001 * (1 + (((index * 7) + context.attempt) % 10)))
        done(context)
      when "standard_error" then raise "injected RuntimeError (task #{index})"
      when "retryable_error" then raise TaskerCore::Errors::RetryableError, "injected retryable error"
      when "soft_failure" then failure(message: "injected soft failure", error_type: "InjectedSoftFailure")
      when "overrun" then overrun(context)
      when "permanent_error" then raise TaskerCore::Errors::PermanentError, "injected permanent error"
      when "not_implemented" then raise NotImplementedError, "injected NotImplementedError"
      when "custom_exception" then raise CUSTOM_EXCEPTION, "injected non-StandardError exception"
      when "soft_permanent"
        failure(message: "injected permanent soft failure", error_type: "InjectedPermanent", retryable: false)
      else raise ArgumentError, "unknown planned behaviour #{kind.inspect}"
      end
    end

    def done(context)
      success(result: { "step" => context.step_name, "attempt" => context.attempt })
    end

    # Keeps running until the core has failed this attempt (its deadline passed), then
    # returns a success the core must reject.
    def overrun(context)
      give_up = Process.clock_gettime(Process::CLOCK_MONOTONIC) + SHORT_TIMEOUT + 10
      while TaskerCore::FFI.event_pending?(context.event_id)
        break if Process.clock_gettime(Process::CLOCK_MONOTONIC) > give_up

        sleep 0.005
      end
      done(context)
    end
  end

  # The core as the worker sees it, with every completion's answer logged.
  class RecordingCore < SimpleDelegator
    def initialize(log)
      super(TaskerCore::FFI)
      @log = log
    end

    # @param event [TaskerCore::StepEvent, String] the event, or its id
    def complete_step_event(event, result)
      accepted = __getobj__.complete_step_event(event, result)
      @log.completed(event.respond_to?(:event_id) ? event.event_id : event, accepted)
      accepted
    end
  end
end
