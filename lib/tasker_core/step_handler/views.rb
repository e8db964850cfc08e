# frozen_string_literal: true

module TaskerCore
  module StepHandler
    # What upstream handlers call `context.task`: the task's identity and context.
    class TaskView
      # @param context [Context]
      def initialize(context)
        @step_context = context
      end

      # @return [TaskerCore::Types::IndifferentHash] the task's context
      def context
        @step_context.task_context
      end

      # @return [String]
      def task_uuid
        @step_context.task_uuid
      end

      # @return [String]
      def namespace
        @step_context.namespace
      end

      # @return [String] the task (template) name
      def name
        @step_context.task_name
      end

      # @return [String]
      def version
        @step_context.task_version
      end
    end

    # What upstream handlers call `context.workflow_step`: the running step.
    class WorkflowStepView
      EMPTY_RESULTS = Types::IndifferentHash.new.freeze

      # @param context [Context]
      def initialize(context)
        @step_context = context
      end

      # @return [String]
      def name
        @step_context.step_name
      end

      # @return [String]
      def workflow_step_uuid
        @step_context.step_uuid
      end
      alias step_uuid workflow_step_uuid

      # @return [Integer] attempts so far, this one included
      def attempts
        @step_context.attempt
      end

      # @return [Integer]
      def max_attempts
        @step_context.max_attempts
      end

      # @return [Boolean]
      def retryable
        @step_context.retryable
      end

      # @return [Integer] attempts before this one
      def retry_count
        @step_context.retry_count
      end

      # @return [TaskerCore::Types::IndifferentHash] the step's static inputs
      def inputs
        @step_context.inputs
      end

      # The step's own results. A running step has none yet (its result is what the
      # handler returns), so this is an empty, frozen Hash.
      # @return [TaskerCore::Types::IndifferentHash]
      def results
        EMPTY_RESULTS
      end
    end
  end
end
