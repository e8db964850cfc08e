# frozen_string_literal: true

require "tasker_core/errors"

module TaskerCore
  # Creates tasks and reads their state through the core. Backs TaskerCore.create_task,
  # TaskerCore.task_status and TaskerCore.wait_for_task; validates arguments in Ruby so
  # mistakes get a clear ArgumentError before reaching the core.
  class TaskClient
    # Task statuses after which a task does not change any more.
    FINISHED = %w[complete error].freeze

    # @param ffi [Object, nil] the core (TaskerCore::FFI when nil)
    def initialize(ffi: nil)
      @ffi = ffi
    end

    # @param namespace [String, Symbol] the template's namespace_name
    # @param name [String, Symbol] the template's name
    # @param version [String, nil] the template version (the latest when nil)
    # @param context [Hash] the task's context, JSON-like
    # @return [String] the new task's uuid
    def create_task(namespace:, name:, version: nil, context: {})
      namespace = identifier!(:namespace, namespace)
      name = identifier!(:name, name)
      unless version.nil? || (version.is_a?(String) && !version.strip.empty?)
        raise ArgumentError, "version must be a non-empty String or nil, got #{version.inspect}"
      end
      raise ArgumentError, "context must be a Hash, got #{context.class}" unless context.is_a?(Hash)

      ffi.create_task(namespace, name, version, context)
    end

    # @param task_uuid [String]
    # @return [Hash] "status" and "steps" (see DESIGN.md)
    # @raise [TaskerCore::Errors::TaskNotFoundError]
    def task_status(task_uuid)
      ffi.task_status(uuid!(task_uuid))
    end

    # Waits until the task is complete or in error.
    # @param task_uuid [String]
    # @param timeout [Numeric] seconds
    # @return [Hash] the task's final status
    # @raise [TaskerCore::Errors::TimeoutError] when it has not finished by then (the
    #   message names the task, the timeout and the task's current state)
    def wait_for_task(task_uuid, timeout:)
      task_uuid = uuid!(task_uuid)
      unless timeout.is_a?(Numeric) && timeout >= 0 && timeout.to_f.finite?
        raise ArgumentError, "timeout must be a non-negative number of seconds, got #{timeout.inspect}"
      end

      status = ffi.wait_for_task(task_uuid, timeout.to_f)
      return status if status

      current = ffi.task_status(task_uuid)
      return current if FINISHED.include?(current["status"])

      raise Errors::TimeoutError, "task #{task_uuid} did not finish within #{timeout}s " \
                                  "(status: #{current['status']}; steps: #{describe_steps(current['steps'])})"
    end

    private

    def ffi
      @ffi || TaskerCore::FFI
    end

    def identifier!(key, value)
      text = value.is_a?(Symbol) ? value.to_s : value
      return text if text.is_a?(String) && !text.strip.empty?

      raise ArgumentError, "#{key} must be a non-empty String, got #{value.inspect}"
    end

    def uuid!(task_uuid)
      return task_uuid if task_uuid.is_a?(String) && !task_uuid.empty?

      raise ArgumentError, "task_uuid must be a non-empty String, got #{task_uuid.inspect}"
    end

    def describe_steps(steps)
      return "none" unless steps.is_a?(Array) && !steps.empty?

      steps.map { |step| "#{step['name']}=#{step['status']}" }.join(", ")
    end
  end
end
