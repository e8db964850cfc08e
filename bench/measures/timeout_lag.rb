# frozen_string_literal: true

require_relative "../support/helper"
require_relative "../support/templates"

module Bench
  module Measures
    # Line 5b: how late the core fails an attempt that overran its deadline while another
    # Ruby thread holds the GVL (a thread spinning in a pure-Ruby loop for the whole
    # measurement).
    #
    # The step (template deadline50ms) has timeout_seconds 0.05 and no retry. A driver
    # thread creates tasks in rounds of ROUND, polls their events with the non-blocking
    # poll (so the core starts each deadline while the driver holds the GVL, and the
    # driver's clock reading right after is the poll time), "runs the handler" by
    # sleeping past the deadline, completes (the core must answer false: too late), and
    # waits for each task to end in error.
    #
    # The lag is taken from the core's ffi_dispatch_metrics keys timeout_lag_ms_p50,
    # timeout_lag_ms_p99 and timeout_lag_samples when the core has them. Otherwise (the
    # fallback) it is the task's completed_at (the orchestrator's wall clock when it
    # recorded the failure; millisecond resolution, so + 0.5 ms) minus (poll time +
    # timeout_ms).
    class TimeoutLag
      ROUND = 10
      OVERRUN = 0.1
      METRIC_KEYS = %w[timeout_lag_ms_p50 timeout_lag_ms_p99 timeout_lag_samples].freeze

      # @param sizes [Hash] see Bench::Sizes
      def initialize(sizes:)
        @samples = sizes.fetch(:timeout_samples)
      end

      # @return [Hash]
      def call
        Templates.with_directory do |dir|
          TaskerCore::FFI.bootstrap_worker(template_path: dir, max_concurrent_handlers: ROUND * 2)
          begin
            lags, late_answers, spins = with_gvl_held { measure }
            metrics = TaskerCore::FFI.ffi_dispatch_metrics
          ensure
            TaskerCore::FFI.stop_worker(5)
          end
          report(lags, late_answers, spins, metrics)
        end
      end

      private

      # Runs the block while a second Ruby thread spins; returns the block's value plus
      # the spinner's loop count (proof it ran).
      def with_gvl_held
        spinning = true
        spins = 0
        spinner = Thread.new do
          spins += 1 while spinning
        end
        sleep 0.05
        [*yield, spins]
      ensure
        spinning = false
        spinner&.join
      end

      # @return [Array(Array<Float>, Integer)] fallback lags in ms, completions answered true
      def measure
        lags = []
        accepted_late = 0
        (@samples.to_f / ROUND).ceil.times do
          uuids = Array.new(ROUND) { TaskerCore::FFI.create_task(Templates::NAMESPACE, "deadline50ms", nil, {}) }
          polled = poll_round(uuids.size)
          last_deadline = polled.map { |event, at| at + (event.fetch("timeout_ms") / 1000.0) }.max
          sleep [last_deadline + OVERRUN - Helper.wall, 0].max
          polled.each do |event, at|
            accepted_late += 1 if TaskerCore::FFI.complete_step_event(event["event_id"], late_result)
            lags << lag_ms(event, at)
          end
        end
        [lags.first(@samples), accepted_late]
      end

      # @return [Array<Array(Hash, Float)>] each event with the wall time right after its poll
      def poll_round(count)
        polled = []
        deadline = Helper.now + 30
        while polled.size < count
          event = TaskerCore::FFI.poll_step_events
          if event
            polled << [event, Helper.wall]
          else
            raise MeasureError, "only #{polled.size} of #{count} events arrived within 30s" if Helper.now > deadline

            Thread.pass
          end
        end
        polled
      end

      def lag_ms(event, polled_at)
        status = TaskerCore::FFI.wait_for_task(event.fetch("task_uuid"), 10.0)
        raise MeasureError, "task #{event['task_uuid']} did not end within 10s" unless status
        unless status["status"] == "error"
          raise MeasureError, "task #{event['task_uuid']} ended #{status['status']}, expected error (timed out)"
        end

        deadline = polled_at + (event.fetch("timeout_ms") / 1000.0)
        # completed_at is truncated to the millisecond: its midpoint is the unbiased guess.
        finished = Helper.parse_time(status.fetch("completed_at")) + 0.0005
        (finished - deadline) * 1000
      end

      def late_result
        { "success" => true, "result" => nil, "metadata" => {} }
      end

      def report(lags, accepted_late, spins, metrics)
        if accepted_late.positive?
          raise MeasureError, "the core accepted #{accepted_late} completions after their deadline"
        end

        fallback = { fallback_p50_ms: Helper.percentile(lags, 50), fallback_p99_ms: Helper.percentile(lags, 99),
                     fallback_max_ms: lags.max, fallback_samples: lags.size }
        core = metrics.is_a?(Hash) && METRIC_KEYS.all? { |key| metrics.key?(key) }
        headline = if core
                     { source: "core metrics", p50_ms: metrics["timeout_lag_ms_p50"],
                       p99_ms: metrics["timeout_lag_ms_p99"], samples: metrics["timeout_lag_samples"] }
                   else
                     { source: "fallback", p50_ms: fallback[:fallback_p50_ms], p99_ms: fallback[:fallback_p99_ms],
                       samples: lags.size }
                   end
        timed_out = metrics.is_a?(Hash) ? metrics["total_timed_out"] : nil
        headline.merge(fallback).merge(spinner_loops: spins, timed_out: timed_out)
      end
    end
  end
end
