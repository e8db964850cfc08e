# frozen_string_literal: true

require_relative "../support/helper"
require_relative "../support/handlers"
require_relative "../support/templates"
require "fileutils"
require "tmpdir"

module Bench
  module Measures
    # Line 6a: RSS of an idle worker (after Worker#start, before any task) and after
    # `memory_steps` single-step no-op tasks, created in batches of `memory_batch` and
    # drained batch by batch (so they are never all in memory at once). The core keeps
    # finished tasks readable within a memory budget; this measure sets the budget to
    # RETAINED_BUDGET_BYTES, about 10,000 finished no-op tasks, as many as the core kept
    # before retention was counted in bytes, so the figure compares like with like (the
    # default budget is 64 MiB).
    # RSS is read from /proc/self/status after a full GC. The growth is reported against
    # the idle RSS and against the RSS after the first 10% of the steps (once the
    # retention is full and the heaps are warm), which is what a leak would show in.
    class MemoryGrowth
      CONCURRENCY = 5
      # storage.embedded.finished_task_memory_budget_bytes for this measure.
      RETAINED_BUDGET_BYTES = 26_000_000

      # @param sizes [Hash] see Bench::Sizes
      def initialize(sizes:)
        @steps = sizes.fetch(:memory_steps)
        @batch = sizes.fetch(:memory_batch)
      end

      # @return [Hash]
      def call
        with_budget do
          measure
        end
      end

      private

      def measure
        Templates.with_directory do |dir|
          Helper.with_worker(concurrency: CONCURRENCY, template_path: dir) do
            sleep 0.2
            idle = median_rss
            warm, seconds = run_batches
            final = median_rss
            Helper.assert_no_failures!("memory growth")
            counters = Helper.orchestrator_counters
            { steps: @steps, batch: @batch, seconds: seconds, idle_rss_mb: mb(idle), warm_rss_mb: mb(warm),
              final_rss_mb: mb(final), growth_pct: pct(final, idle), growth_since_warm_pct: pct(final, warm),
              warm_steps: @warm_steps,
              tasks_in_memory: counters["tasks_in_memory"], budget_bytes: RETAINED_BUDGET_BYTES }
          end
        end
      end

      # Runs the block with a configuration root whose environment sets the budget (this
      # measure runs in a process of its own, before the core is built).
      def with_budget
        Dir.mktmpdir("tasker_bench_config") do |root|
          shipped = File.expand_path("../../config/tasker", __dir__)
          FileUtils.cp_r(File.join(shipped, "base"), root)
          environment = ENV.fetch("TASKER_ENV", "development")
          env_dir = File.join(root, "environments", environment)
          FileUtils.mkdir_p(env_dir)
          shipped_env = File.join(shipped, "environments", environment)
          FileUtils.cp_r(Dir[File.join(shipped_env, "*")], env_dir) if File.directory?(shipped_env)
          File.write(File.join(env_dir, "storage.toml"),
                     "[storage.embedded]\nfinished_task_memory_budget_bytes = #{RETAINED_BUDGET_BYTES}\n")
          previous = ENV["TASKER_CONFIG_ROOT"]
          ENV["TASKER_CONFIG_ROOT"] = root
          begin
            yield
          ensure
            ENV["TASKER_CONFIG_ROOT"] = previous
          end
        end
      end

      # @return [Array(Integer, Float)] RSS after the first 10% of the steps, seconds
      def run_batches
        base = Helper.finished_tasks
        warm_at = [(@steps / 5.0).ceil, @batch].max
        warm = nil
        done = 0
        seconds = Helper.time do
          while done < @steps
            count = [@batch, @steps - done].min
            Helper.create_tasks(count, namespace: Templates::NAMESPACE, name: "noop")
            done += count
            Helper.wait_for_finished_tasks(base + done, timeout: 600, interval: 0.005)
            if done >= warm_at && warm.nil?
              warm = median_rss
              @warm_steps = done
            end
          end
        end
        [warm, seconds]
      end

      # The median of three settled readings 100 ms apart: one reading can catch an
      # allocator between releasing and reusing memory.
      def median_rss
        Array.new(3) { |i| sleep(0.1) if i.positive?; Helper.settled_rss_bytes }.sort[1]
      end

      def mb(bytes)
        bytes / (1024.0 * 1024)
      end

      def pct(after, before)
        (after - before) * 100.0 / before
      end
    end
  end
end
