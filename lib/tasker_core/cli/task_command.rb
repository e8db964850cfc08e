# frozen_string_literal: true

require "tasker_core/cli/inspect_command"
require "tasker_core/cli/report"

module TaskerCore
  class CLI
    # `tasker-worker task UUID`: one task with its steps, attempts and errors.
    class TaskCommand < InspectCommand
      private

      def command_name = "task"

      def usage = "task UUID"

      def summary = "Prints the task, its steps (status, attempts, time, dependencies) and their errors."

      def check_arguments(options)
        check_one_task_uuid(options)
      end

      def report(source, options)
        task = source.task(options[:arguments].first.downcase)
        options[:json] ? json(task) : Report.task(task)
      end
    end
  end
end
