# frozen_string_literal: true

module TaskerCore
  class Web
    # Raised when the core lacks a function the dashboard needs (an older build).
    class Unavailable < StandardError; end

    # Everything the dashboard and the inspect commands read from or ask of the core, in one
    # place: each method is one call of the public Ruby API (TaskerCore.tasks, .task_status,
    # .stats, .workers, .cancel_task, .retry_task, .metrics_text). Nothing else in
    # TaskerCore::Web touches the core, so a test or another process can hand in any object
    # answering these calls.
    class Source
      # @param core [Module, Object] what answers the API calls (TaskerCore when nil)
      def initialize(core: nil)
        @core = core
      end

      # One page of tasks, newest first.
      # @param status [String, nil]
      # @param namespace [String, nil]
      # @param name [String, nil]
      # @param limit [Integer]
      # @param before [String, nil] the uuid of the last task of the previous page (exclusive)
      # @return [Array<Hash>] "task_uuid", "status", "namespace", "name", "version", "created_at",
      #   "completed_at", "priority"
      def tasks(limit:, status: nil, namespace: nil, name: nil, before: nil)
        call(:tasks, status: status, namespace: namespace, name: name, limit: limit, before: before)
      end

      # @param task_uuid [String]
      # @return [Hash] the task with its "steps"
      # @raise [TaskerCore::Errors::TaskNotFoundError]
      def task(task_uuid)
        call(:task_status, task_uuid)
      end

      # @return [Hash] counts by task status, steps in flight, dispatch and throughput figures
      def stats
        call(:stats)
      end

      # @return [Array<Hash>] the live workers
      def workers
        call(:workers)
      end

      # @param task_uuid [String]
      # @param reason [String, nil]
      # @return [Hash] "status" and what the core did
      def cancel_task(task_uuid, reason: nil)
        call(:cancel_task, task_uuid, reason: reason)
      end

      # @param task_uuid [String]
      # @return [Hash] "status" and what the core did
      def retry_task(task_uuid)
        call(:retry_task, task_uuid)
      end

      # @return [String] Prometheus text exposition of this process's counters
      def metrics_text
        call(:metrics_text)
      end

      private

      def core
        @core || TaskerCore
      end

      def call(function, *args, **kwargs)
        unless core.respond_to?(function)
          raise Unavailable, "#{core_name}.#{function} is not available in this build of tasker_core " \
                             "(tasker_core #{defined?(TaskerCore::VERSION) ? TaskerCore::VERSION : 'unknown'})"
        end

        kwargs.empty? ? core.public_send(function, *args) : core.public_send(function, *args, **kwargs)
      end

      def core_name
        core.is_a?(Module) ? core.name : core.class.name
      end
    end
  end
end
