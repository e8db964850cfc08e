# frozen_string_literal: true

require "tasker_core/cli/inspect_command"
require "tasker_core/cli/report"

module TaskerCore
  class CLI
    # `tasker-worker status`: task counts by status, steps in flight, dispatch figures, the
    # last hour's throughput, and the live workers.
    class StatusCommand < InspectCommand
      private

      def command_name = "status"

      def summary = "Prints task counts, steps in flight, dispatch figures, the last hour's throughput and the workers."

      def report(source, options)
        stats = source.stats
        workers = Array(source.workers)
        options[:json] ? json("stats" => stats, "workers" => workers) : Report.status(stats: stats, workers: workers)
      end
    end
  end
end
