# frozen_string_literal: true

require_relative "../support/helper"
require_relative "../support/templates"

module Bench
  module Measures
    # Line 6b: bytes per pending event: RSS with N events polled and not completed,
    # minus RSS before, divided by N.
    #
    # The worker is stopped while N tasks (template long_deadline: a one-hour deadline)
    # are created, so none is dispatched yet; RSS is read (after a full GC); a worker
    # with max_concurrent_handlers N is started and N events are polled and dropped on
    # the Ruby side (not completed, so the core keeps each one pending); RSS is read
    # again. The difference is everything the core holds per in-flight step (the claim,
    # the dispatch message, the pending entry) plus whatever the Ruby heap kept from
    # converting the events. A warm-up cycle (the same, but completing each event) runs
    # first, so heaps and allocator pools have already grown once.
    class PendingMemory
      # @param sizes [Hash] see Bench::Sizes
      def initialize(sizes:)
        @events = sizes.fetch(:pending_events)
      end

      # @return [Hash]
      def call
        Templates.with_directory do |dir|
          Helper.bootstrap_idle_core(template_path: dir)
          cycle(dir, complete: true)
          before, after, pending = cycle(dir, complete: false)
          { events: @events, rss_before_mb: before / 1_048_576.0, rss_after_mb: after / 1_048_576.0,
            bytes_per_event: (after - before).fdiv(@events), pending_count: pending }
        end
      end

      private

      # @return [Array(Integer, Integer, Integer)] RSS before, RSS after, pending count
      def cycle(dir, complete:)
        Helper.create_tasks(@events, namespace: Templates::NAMESPACE, name: "long_deadline")
        before = Helper.settled_rss_bytes
        TaskerCore::FFI.bootstrap_worker(template_path: dir, max_concurrent_handlers: @events)
        begin
          poll(complete: complete)
          after = Helper.settled_rss_bytes
          pending = TaskerCore::FFI.ffi_dispatch_metrics["pending_count"]
          unless complete || pending == @events
            raise MeasureError, "#{pending.inspect} events pending, expected #{@events}"
          end
        ensure
          TaskerCore::FFI.stop_worker(5)
        end
        [before, after, pending]
      end

      def poll(complete:)
        result = { "success" => true, "result" => nil, "metadata" => {} }
        polled = 0
        deadline = Helper.now + 120
        while polled < @events
          event = TaskerCore::FFI.poll_step_events || TaskerCore::FFI.poll_step_events(0.01)
          unless event
            raise MeasureError, "only #{polled} of #{@events} events arrived within 120s" if Helper.now > deadline

            next
          end
          polled += 1
          TaskerCore::FFI.complete_step_event(event["event_id"], result) if complete
        end
      end
    end
  end
end
