# frozen_string_literal: true

require "tasker_core/cli/inspect_command"
require "tasker_core/cli/report"

module TaskerCore
  class CLI
    # `tasker-worker tasks`: the newest tasks, filtered, one line each.
    class TasksCommand < InspectCommand
      LIMIT = 20

      private

      def command_name = "tasks"

      def usage = "tasks [--status S] [--namespace N] [--name N] [--limit N] [--before UUID]"

      def summary = "Prints the newest tasks, one line each: uuid, status, template, created, took."

      def parser(options)
        super.tap do |opts|
          opts.separator ""
          opts.on("--status STATUS", "Only tasks in this status (#{Report::TASK_STATUSES.join(', ')})") do |s|
            raise CLI::UsageError, "--status #{s}: not a task status" unless Report::TASK_STATUSES.include?(s)

            options[:status] = s
          end
          opts.on("--namespace NAME", "Only tasks of this namespace") { |n| options[:namespace] = n }
          opts.on("--name NAME", "Only tasks of this template name") { |n| options[:name] = n }
          opts.on("--limit N", Integer, "How many (default #{LIMIT}, at most 1000)") do |n|
            raise CLI::UsageError, "--limit must be 1..1000, got #{n}" unless n.between?(1, 1000)

            options[:limit] = n
          end
          opts.on("--before UUID", "The page after this task (the last uuid printed)") { |u| options[:before] = u }
        end
      end

      def report(source, options)
        filters = options.slice(:status, :namespace, :name, :before).merge(limit: options.fetch(:limit, LIMIT))
        tasks = source.tasks(**filters)
        options[:json] ? json(tasks) : Report.tasks(tasks)
      end
    end
  end
end
