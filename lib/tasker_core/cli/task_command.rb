# frozen_string_literal: true

require "tasker_core/cli/inspect_command"
require "tasker_core/cli/report"

module TaskerCore
  class CLI
    # `tasker-worker task UUID`: one task with its steps, attempts and errors.
    class TaskCommand < InspectCommand
      UUID = /\A\h{8}-\h{4}-\h{4}-\h{4}-\h{12}\z/.freeze

      private

      def command_name = "task"

      def usage = "task UUID"

      def summary = "Prints the task, its steps (status, attempts, time, dependencies) and their errors."

      def check_arguments(options)
        arguments = options[:arguments]
        raise CLI::UsageError, "needs the task's UUID" if arguments.empty?
        raise CLI::UsageError, "takes one task UUID, got #{arguments.size} arguments" if arguments.size > 1
        raise CLI::UsageError, "not a task UUID: #{arguments.first}" unless UUID.match?(arguments.first)
      end

      def report(source, options)
        task = source.task(options[:arguments].first.downcase)
        options[:json] ? json(task) : Report.task(task)
      end
    end
  end
end
