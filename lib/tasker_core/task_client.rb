# frozen_string_literal: true

require "tasker_core/errors"

module TaskerCore
  # Creates tasks and reads their state through the core. Backs TaskerCore.create_task,
  # TaskerCore.task_status and TaskerCore.wait_for_task; validates arguments in Ruby so
  # mistakes get a clear ArgumentError before reaching the core.
  class TaskClient
    # Task statuses after which a task does not change any more (unless retried).
    FINISHED = TaskerCore::FFI::FINISHED_TASK_STATUSES

    # @param ffi [Object, nil] the core (TaskerCore::FFI when nil)
    def initialize(ffi: nil)
      @ffi = ffi
    end

    # @param namespace [String, Symbol] the template's namespace_name
    # @param name [String, Symbol] the template's name
    # @param version [String, nil] the template version (the latest when nil)
    # @param context [Hash] the task's context, JSON-like
    # @param idempotency_key [String, nil]
    # @param run_at [Time, nil]
    # @param delay [Numeric, nil] seconds from now
    # @param priority [Integer]
    # @return [String] the new task's uuid (or the existing one of its idempotency key)
    def create_task(namespace:, name:, version: nil, context: {}, idempotency_key: nil, run_at: nil, delay: nil,
                    priority: 0)
      namespace = identifier!(:namespace, namespace)
      name = identifier!(:name, name)
      unless version.nil? || (version.is_a?(String) && !version.strip.empty?)
        raise ArgumentError, "version must be a non-empty String or nil, got #{version.inspect}"
      end
      raise ArgumentError, "context must be a Hash, got #{context.class}" unless context.is_a?(Hash)
      raise ArgumentError, "give run_at: or delay:, not both" if run_at && delay

      options = schedule_options(idempotency_key, run_at, delay, priority)
      options.empty? ? ffi.create_task(namespace, name, version, context) : ffi.create_task(namespace, name, version, context, options)
    end

    # @param task_uuid [String]
    # @param reason [String, nil]
    # @return [Hash]
    def cancel_task(task_uuid, reason: nil)
      raise ArgumentError, "reason must be a String or nil, got #{reason.class}" unless reason.nil? || reason.is_a?(String)

      ffi.cancel_task(uuid!(task_uuid), reason)
    end

    # @param task_uuid [String]
    # @return [Hash]
    def retry_task(task_uuid)
      ffi.retry_task(uuid!(task_uuid))
    end

    # @return [Array<Hash>] newest first
    def tasks(status: nil, namespace: nil, name: nil, limit: 50, before: nil)
      unless limit.is_a?(Integer) && limit.between?(1, 1000)
        raise ArgumentError, "limit must be an Integer between 1 and 1000, got #{limit.inspect}"
      end

      filter = { status: status&.to_s, namespace: namespace&.to_s, name: name&.to_s, limit: limit, before: before }
      ffi.tasks(filter.compact)
    end

    # @param task_uuid [String]
    # @return [Hash] "status" and "steps" (see TaskerCore.task_status)
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

    def schedule_options(idempotency_key, run_at, delay, priority)
      unless idempotency_key.nil? || (idempotency_key.is_a?(String) && !idempotency_key.empty?)
        raise ArgumentError, "idempotency_key must be a non-empty String or nil, got #{idempotency_key.inspect}"
      end
      unless run_at.nil? || run_at.is_a?(Time)
        raise ArgumentError, "run_at must be a Time or nil, got #{run_at.class}"
      end
      unless delay.nil? || (delay.is_a?(Numeric) && delay >= 0 && delay.to_f.finite?)
        raise ArgumentError, "delay must be a non-negative number of seconds or nil, got #{delay.inspect}"
      end
      raise ArgumentError, "priority must be an Integer, got #{priority.inspect}" unless priority.is_a?(Integer)

      options = {}
      options[:idempotency_key] = idempotency_key if idempotency_key
      options[:run_at] = run_at.to_f if run_at
      options[:delay] = delay.to_f if delay
      options[:priority] = priority unless priority.zero?
      options
    end

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
