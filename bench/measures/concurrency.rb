# frozen_string_literal: true

require_relative "../support/helper"
require_relative "../support/handlers"
require_relative "../support/templates"

module Bench
  module Measures
    # Line 2: handlers that sleep 10 ms, run by a TaskerCore::Worker with `concurrency`
    # threads. The ideal is concurrency / 10 ms steps per second; concurrency 1 is the
    # old blocking one-at-a-time loop.
    #
    # Enough single-step sleep10 tasks for `concurrency_seconds` at the ideal rate are
    # created up front with no worker running; the clock runs from just before
    # Worker#start until the orchestrator counts them all finished.
    class Concurrency
      HANDLER_SECONDS = 0.01

      # @param sizes [Hash] see Bench::Sizes
      # @param concurrency [Integer]
      def initialize(sizes:, concurrency:)
        @concurrency = concurrency
        @tasks = (concurrency / HANDLER_SECONDS * sizes.fetch(:concurrency_seconds)).ceil
      end

      # @return [Hash]
      def call
        Templates.with_directory do |dir|
          Helper.bootstrap_idle_core(template_path: dir)
          target = Helper.finished_tasks + @tasks
          Helper.create_tasks(@tasks, namespace: Templates::NAMESPACE, name: "sleep10")
          seconds = Helper.with_worker(concurrency: @concurrency, template_path: dir) do |_worker, started|
            Helper.wait_for_finished_tasks(target, timeout: 60 + (@tasks * HANDLER_SECONDS * 2)) - started
          end
          Helper.assert_no_failures!("concurrency #{@concurrency}")
          rate = @tasks / seconds
          ideal = @concurrency / HANDLER_SECONDS
          { concurrency: @concurrency, tasks: @tasks, seconds: seconds, steps_per_s: rate, ideal_steps_per_s: ideal,
            fraction_of_ideal: rate / ideal }
        end
      end
    end
  end
end
