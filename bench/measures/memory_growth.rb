# frozen_string_literal: true

require_relative "../support/helper"
require_relative "../support/handlers"
require_relative "../support/templates"

module Bench
  module Measures
    # Line 6a: RSS of an idle worker (after Worker#start, before any task) and after
    # `memory_steps` single-step no-op tasks, created in batches of `memory_batch` and
    # drained batch by batch (so they are never all in memory at once; the core still
    # retains the last finished_task_retention finished tasks, 10000 by default).
    # RSS is read from /proc/self/status after a full GC. The growth is reported against
    # the idle RSS and against the RSS after the first 10% of the steps (once the
    # retention is full and the heaps are warm), which is what a leak would show in.
    class MemoryGrowth
      CONCURRENCY = 5

      # @param sizes [Hash] see Bench::Sizes
      def initialize(sizes:)
        @steps = sizes.fetch(:memory_steps)
        @batch = sizes.fetch(:memory_batch)
      end

      # @return [Hash]
      def call
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
              tasks_in_memory: counters["tasks_in_memory"] }
          end
        end
      end

      private

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
