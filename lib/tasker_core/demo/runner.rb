# frozen_string_literal: true

require "optparse"
require "tasker_core"
require "tasker_core/demo/handlers"

module TaskerCore
  module Demo
    # The main job: runs the sample workflows of config/templates on the embedded core
    # with a TaskerCore::Worker, shows progress while steps finish, checks every task's
    # result against its formula, and prints a summary.
    class Runner
      TEMPLATE_PATH = File.expand_path("../../../config/templates", __dir__)

      # One sample workflow: how to build a task's context and what its result must be.
      Workflow = Struct.new(:namespace, :name, :final_step, :context, :expected, keyword_init: true)

      ORDER_ITEMS = [
        { "sku" => "BOOK-1", "quantity" => 2, "price" => 12.5 },
        { "sku" => "MUG-7", "quantity" => 1, "price" => 8.0 }
      ].freeze

      WORKFLOWS = [
        Workflow.new(namespace: "demo", name: "linear_workflow", final_step: "subtract_four",
                     context: ->(n) { { "number" => n } }, expected: ->(n) { (6 * n) + 26 }),
        Workflow.new(namespace: "demo", name: "diamond_workflow", final_step: "join",
                     context: ->(n) { { "number" => n } }, expected: ->(n) { (8 * n) + 3 }),
        Workflow.new(namespace: "demo", name: "tree_workflow", final_step: "merge",
                     context: ->(n) { { "number" => n } }, expected: ->(n) { (20 * n) + 15 }),
        Workflow.new(namespace: "demo", name: "mixed_dag_workflow", final_step: "finalize",
                     context: ->(n) { { "number" => n } },
                     expected: ->(n) { i = n + 1; (3 * i * i) + (7 * i) + 7 }),
        Workflow.new(namespace: "ecommerce", name: "order_fulfillment", final_step: "ship_order",
                     context: ->(n) { { "order" => { "id" => "ORD-#{n}", "customer_email" => "c#{n}@example.com",
                                                     "items" => ORDER_ITEMS } } },
                     expected: ->(n) { { "shipped" => true, "order_id" => "ORD-#{n}", "carrier" => "demo-post",
                                         "tracking_number" => "TRACK-ORD-#{n}" } })
      ].freeze

      # @param argv [Array<String>] --tasks N, --concurrency N, --seed N
      # @param out [IO]
      def initialize(argv = [], out: $stdout)
        @out = out
        @tasks_per_workflow = 200
        @concurrency = 8
        @seed = 42
        parse(argv)
      end

      # @return [Integer] exit status: 0 when every task completed with the right result
      def run
        worker = TaskerCore::Worker.new(template_path: TEMPLATE_PATH, concurrency: @concurrency)
        info = worker.start
        banner(info)
        orchestrator_stats # the baseline
        started = monotonic
        tasks = create_tasks
        finished = watch_progress(tasks, started)
        wall = monotonic - started
        trace_first_tasks(tasks, finished)
        summary(tasks, finished, wall)
      ensure
        worker&.stop(timeout: 5)
      end

      private

      def parse(argv)
        OptionParser.new do |o|
          o.banner = "usage: bin/demo [--tasks N] [--concurrency N] [--seed N]"
          o.on("--tasks N", Integer, "tasks per workflow (default 200)") { |v| @tasks_per_workflow = positive(v) }
          o.on("--concurrency N", Integer, "Ruby handler threads (default 8)") { |v| @concurrency = positive(v) }
          o.on("--seed N", Integer, "seed of the task inputs (default 42)") { |v| @seed = v }
        end.parse!(argv)
      end

      def positive(value)
        raise OptionParser::InvalidArgument, value.to_s unless value.positive?

        value
      end

      def monotonic
        Process.clock_gettime(Process::CLOCK_MONOTONIC)
      end

      def banner(info)
        @out.puts "tasker_core demo: #{WORKFLOWS.size} workflows x #{@tasks_per_workflow} tasks on the embedded core"
        @out.puts "  worker #{info['worker_id']}, #{@concurrency} Ruby handler threads, " \
                  "max #{info.dig('config', 'max_concurrent_handlers')} steps in flight, " \
                  "#{info['templates_loaded']} templates from #{info['template_path']}"
        @out.puts
      end

      # @return [Array<Array(Workflow, Integer, String)>] workflow, input, task uuid
      def create_tasks
        random = Random.new(@seed)
        WORKFLOWS.flat_map do |workflow|
          Array.new(@tasks_per_workflow) do
            n = random.rand(1..1000)
            uuid = TaskerCore.create_task(namespace: workflow.namespace, name: workflow.name,
                                          context: workflow.context.call(n))
            [workflow, n, uuid]
          end
        end
      end

      # Prints a progress line while steps finish; returns each task's final status.
      def watch_progress(tasks, started)
        total_steps = tasks.sum { |(workflow, _, _)| steps_of(workflow, tasks) }
        loop do
          stats = orchestrator_stats
          progress(started, stats, total_steps, tasks.size)
          break if finished_tasks(stats) >= tasks.size

          sleep 0.05
        end
        @out.puts
        tasks.to_h { |(_, _, uuid)| [uuid, TaskerCore.wait_for_task(uuid, timeout: 60)] }
      end

      # Steps per task of each workflow, read off its first task.
      def steps_of(workflow, tasks)
        @steps_of ||= {}
        @steps_of[workflow.name] ||= begin
          _, _, uuid = tasks.find { |(w, _, _)| w.equal?(workflow) }
          TaskerCore.task_status(uuid)["steps"].size
        end
      end

      # The orchestrator's counters, relative to when this run began.
      def orchestrator_stats
        now = TaskerCore::FFI.worker_status["orchestrator"] || {}
        @baseline ||= now
        now.to_h { |key, value| [key, value.to_i - @baseline.fetch(key, 0).to_i] }
      end

      def finished_tasks(stats)
        stats["tasks_completed"] + stats["tasks_failed"]
      end

      def progress(started, stats, total_steps, total_tasks)
        line = format("[%6.2fs] steps %d/%d done, %d failed attempts, %d retries scheduled, tasks %d/%d finished",
                      monotonic - started, stats["steps_succeeded"], total_steps, stats["step_failures"],
                      stats["retries_scheduled"], finished_tasks(stats), total_tasks)
        @out.tty? ? @out.print("\r#{line}") : @out.puts(line)
      end

      def trace_first_tasks(tasks, finished)
        @out.puts "First task of each workflow, step by step:"
        tasks.uniq { |(workflow, _, _)| workflow.name }.each do |(workflow, n, uuid)|
          status = finished.fetch(uuid)
          mark = correct?(workflow, n, status) ? "ok" : "WRONG"
          @out.puts "  #{workflow.namespace}/#{workflow.name} (input #{n}): #{status['status']}, result #{mark}"
          status["steps"].each do |step|
            shown = step["error"] ? "error: #{step['error']['message']}" : step["result"].inspect
            @out.puts format("    %-18s attempts %d  %s", step["name"], step["attempts"], shown)
          end
        end
        @out.puts
      end

      def correct?(workflow, n, status)
        return false unless status["status"] == "complete"

        final = status["steps"].find { |s| s["name"] == workflow.final_step }
        final && final["result"] == workflow.expected.call(n)
      end

      def summary(tasks, finished, wall)
        stats = orchestrator_stats
        complete = finished.values.count { |s| s["status"] == "complete" }
        verified = tasks.count { |(workflow, n, uuid)| correct?(workflow, n, finished[uuid]) }
        steps = stats["steps_succeeded"].to_i
        @out.puts "Summary"
        @out.puts format("  tasks       %d (%d complete, %d error)", tasks.size, complete, tasks.size - complete)
        @out.puts format("  steps       %d completed", steps)
        @out.puts format("  retries     %d", stats["retries_scheduled"].to_i)
        @out.puts format("  failures    %d failed attempts, %d steps failed for good",
                         stats["step_failures"].to_i, stats["steps_failed_permanently"].to_i)
        @out.puts format("  wall time   %.3f s", wall)
        @out.puts format("  throughput  %.0f steps/s", steps / wall)
        @out.puts format("  results     %d/%d tasks checked against their formula", verified, tasks.size)
        verified == tasks.size ? 0 : 1
      end
    end
  end
end
