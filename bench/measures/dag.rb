# frozen_string_literal: true

require_relative "../support/helper"
require_relative "../support/handlers"
require_relative "../support/templates"

module Bench
  module Measures
    # Line 4: DAG throughput. N five-step tasks shaped a -> b, c, d -> e with no-op
    # handlers, created up front, drained by a TaskerCore::Worker at concurrency 5;
    # steps/s from just before Worker#start until the orchestrator counts all N finished.
    class Dag
      CONCURRENCY = 5
      STEPS_PER_TASK = 5

      # @param sizes [Hash] see Bench::Sizes
      def initialize(sizes:)
        @tasks = sizes.fetch(:dag_tasks)
      end

      # @return [Hash]
      def call
        Templates.with_directory do |dir|
          Helper.bootstrap_idle_core(template_path: dir)
          target = Helper.finished_tasks + @tasks
          steps_before = Helper.orchestrator_counters.fetch("steps_succeeded").to_i
          creation = Helper.create_tasks(@tasks, namespace: Templates::NAMESPACE, name: "dag5")
          seconds = Helper.with_worker(concurrency: CONCURRENCY, template_path: dir) do |_worker, started|
            Helper.wait_for_finished_tasks(target, timeout: 600) - started
          end
          Helper.assert_no_failures!("DAG tasks")
          steps = Helper.orchestrator_counters.fetch("steps_succeeded").to_i - steps_before
          expected = @tasks * STEPS_PER_TASK
          raise MeasureError, "#{steps} steps succeeded, expected #{expected}" unless steps == expected

          { tasks: @tasks, steps: steps, concurrency: CONCURRENCY, seconds: seconds, steps_per_s: steps / seconds,
            tasks_per_s: @tasks / seconds, creation_per_s: @tasks / creation }
        end
      end
    end
  end
end
