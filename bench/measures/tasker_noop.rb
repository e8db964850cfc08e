# frozen_string_literal: true

require_relative "../support/helper"
require_relative "../support/handlers"
require_relative "../support/templates"

module Bench
  module Measures
    # Line 3, TaskerCore side: N single-step no-op tasks created up front (timed: the
    # task creation rate), then drained by a TaskerCore::Worker at concurrency 5. The
    # clock runs from just before Worker#start until the orchestrator's counters show
    # all N finished (TaskerCore::FFI.worker_status["orchestrator"], read every 2 ms).
    #
    # Also: the Ruby side of one step on its own (ruby_step_us): what a worker thread
    # does between poll and complete (StepHandler::Context, StepRunner with the handler
    # registry, the HandlerGate, result building, Stats), with a stub in place of the
    # core, on one real no-op event, RUBY_STEPS times on one thread.
    class TaskerNoop
      CONCURRENCY = 5
      RUBY_STEPS = 20_000

      # Stands in for TaskerCore::FFI: accepts every completion.
      module StubCore
        def self.complete_step_event(_event_id, _result)
          true
        end

        def self.event_pending?(_event_id)
          true
        end

        def self.event_cancelled?(_event_id)
          false
        end
      end

      # @param sizes [Hash] see Bench::Sizes
      def initialize(sizes:)
        @tasks = sizes.fetch(:e2e_tasks)
      end

      # @return [Hash]
      def call
        Templates.with_directory do |dir|
          Helper.bootstrap_idle_core(template_path: dir)
          target = Helper.finished_tasks + @tasks
          creation = Helper.create_tasks(@tasks, namespace: Templates::NAMESPACE, name: "noop")
          seconds, stats = Helper.with_worker(concurrency: CONCURRENCY, template_path: dir) do |worker, started|
            [Helper.wait_for_finished_tasks(target, timeout: 600) - started, worker.stats]
          end
          Helper.assert_no_failures!("no-op tasks")
          { tasks: @tasks, concurrency: CONCURRENCY, seconds: seconds, steps_per_s: @tasks / seconds,
            creation_seconds: creation, creation_per_s: @tasks / creation, steps_run_by_worker: stats[:steps_run],
            ruby_step_us: ruby_step_overhead_us(dir) }
        end
      end

      private

      def ruby_step_overhead_us(dir)
        event = one_event(dir)
        stats = TaskerCore::Worker::Stats.new
        runner = TaskerCore::Worker::StepRunner.new(ffi: StubCore, registry: TaskerCore::HandlerRegistry.new,
                                                    stats: stats, logger: TaskerCore.logger)
        gate = TaskerCore::Worker::HandlerGate.new
        stopping = -> { false }
        seconds = Helper.time do
          RUBY_STEPS.times do
            context = TaskerCore::StepHandler::Context.new(event, ffi: StubCore, stopping: stopping)
            stats.record(runner.run(context, gate: gate))
          end
        end
        raise MeasureError, "stubbed steps did not all succeed: #{stats.to_h}" unless stats[:succeeded] == RUBY_STEPS

        seconds / RUBY_STEPS * 1e6
      end

      # A real no-op event, polled and completed (so the core's counters stay clean).
      def one_event(dir)
        TaskerCore::FFI.bootstrap_worker(template_path: dir)
        TaskerCore::FFI.create_task(Templates::NAMESPACE, "noop", nil, { "i" => 0 })
        event = TaskerCore::FFI.poll_step_events(5.0) || raise(MeasureError, "no event within 5s")
        TaskerCore::FFI.complete_step_event(event["event_id"], { "success" => true, "result" => nil })
        event
      ensure
        TaskerCore::FFI.stop_worker(5)
      end
    end
  end
end
