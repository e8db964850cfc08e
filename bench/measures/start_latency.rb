# frozen_string_literal: true

require_relative "../support/helper"
require_relative "../support/handlers"
require_relative "../support/templates"

module Bench
  module Measures
    # Line 5a: create_task -> handler start on an idle worker. One task at a time: the
    # clock is read just before create_task; the handler (Bench::Handlers::StampStart)
    # reads it again first thing; the next task is created once this one has finished.
    # The worker (concurrency 5) is idle in between: its threads wait in the GVL-free
    # poll.
    class StartLatency
      CONCURRENCY = 5
      WARMUP = 10

      # @param sizes [Hash] see Bench::Sizes
      def initialize(sizes:)
        @samples = sizes.fetch(:latency_samples)
      end

      # @return [Hash]
      def call
        Templates.with_directory do |dir|
          samples, round_trips = Helper.with_worker(concurrency: CONCURRENCY, template_path: dir) do
            sleep 0.2 # let every thread reach its poll
            WARMUP.times { sample }
            Array.new(@samples) { sample }.transpose
          end
          Helper.assert_no_failures!("start latency")
          starts_ms = samples.map { |s| s * 1000 }
          round_ms = round_trips.map { |s| s * 1000 }
          { samples: @samples, concurrency: CONCURRENCY,
            p50_ms: Helper.percentile(starts_ms, 50), p99_ms: Helper.percentile(starts_ms, 99),
            max_ms: starts_ms.max, finished_p50_ms: Helper.percentile(round_ms, 50),
            finished_p99_ms: Helper.percentile(round_ms, 99) }
        end
      end

      private

      # @return [Array(Float, Float)] create -> handler start, create -> task finished (seconds)
      def sample
        starts = Handlers::StampStart.starts
        before = Helper.now
        uuid = TaskerCore::FFI.create_task(Templates::NAMESPACE, "stamp", nil, { "probe" => true })
        status = TaskerCore::FFI.wait_for_task(uuid, 10.0)
        finished = Helper.now
        raise MeasureError, "task #{uuid} did not finish within 10s" unless status
        raise MeasureError, "task #{uuid} ended #{status['status']}" unless status["status"] == "complete"

        task_uuid, started = starts.pop
        raise MeasureError, "handler start recorded for #{task_uuid}, expected #{uuid}" unless task_uuid == uuid

        [started - before, finished - before]
      end
    end
  end
end
