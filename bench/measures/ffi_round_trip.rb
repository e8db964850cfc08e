# frozen_string_literal: true

require "time"
require_relative "../support/helper"
require_relative "../support/templates"

module Bench
  module Measures
    # Line 1: the cost of one FFI round trip (poll_step_events + complete_step_event) on
    # one Ruby thread, with a realistic event, against plain Ruby passing the same Hash
    # through a Thread::Queue and back.
    #
    # Many ffi_diamond tasks (validate -> reserve, charge -> ship) are created up front;
    # the core is bootstrapped with max_concurrent_handlers 1000 so the ready queue stays
    # full, and one thread drains it in a tight loop: a non-blocking poll, falling back to
    # poll(0.01) when it answers nil, then complete with a success Hash. Each poll that
    # returned an event and each completion is timed on its own; the headline is the
    # "ship" events, which carry the 11-key task context, step inputs and two parent
    # results. Events that needed the poll(0.01) fallback are counted (fallback_polls)
    # and left out of the timings.
    class FfiRoundTrip
      MAX_CONCURRENT_HANDLERS = 1000

      CONTEXT = lambda do |i|
        {
          "order_id" => "ORD-#{i}",
          "customer" => { "id" => i, "email" => "customer#{i}@example.com", "tier" => "gold" },
          "items" => [
            { "sku" => "BOOK-1", "quantity" => 2, "price" => 12.5 },
            { "sku" => "MUG-7", "quantity" => 1, "price" => 8.0 }
          ],
          "currency" => "EUR",
          "total" => 33.0,
          "priority" => 3,
          "express" => false,
          "coupon" => nil,
          "tags" => %w[web promo],
          "channel" => "storefront",
          "region" => "eu-west-1"
        }
      end

      # What each step "returns": the parents' small Hashes become the join's
      # dependency results.
      RESULT_VALUES = {
        "validate" => { "valid" => true, "item_count" => 3 },
        "reserve" => { "reserved" => 3, "skus" => %w[BOOK-1 MUG-7] },
        "charge" => { "charged" => 33.0, "transaction_id" => "txn-0001", "gateway" => "demo-pay" },
        "ship" => { "shipped" => true, "tracking_number" => "TRACK-0001" }
      }.freeze

      # @param sizes [Hash] see Bench::Sizes
      def initialize(sizes:)
        @tasks = sizes.fetch(:ffi_tasks)
        @queue_iterations = sizes.fetch(:queue_iterations)
      end

      # @return [Hash]
      def call
        Templates.with_directory do |dir|
          Helper.bootstrap_idle_core(template_path: dir)
          creation = Helper.create_tasks(@tasks, namespace: Templates::NAMESPACE, name: "ffi_diamond",
                                                 context: CONTEXT)
          TaskerCore::FFI.bootstrap_worker(template_path: dir, max_concurrent_handlers: MAX_CONCURRENT_HANDLERS)
          begin
            drained = drain(@tasks * 4)
            drained[:ffi_floor_us] = ffi_floor(drained[:sample_event]["event_id"])
            # The same events again through TaskerCore::StepEvent (next_step_event): as the
            # worker reads one (handler class, initialization, deadline), and as a handler
            # that also reads the task context and both parents' results.
            %i[worker handler].each do |reads|
              Helper.create_tasks(@tasks, namespace: Templates::NAMESPACE, name: "ffi_diamond", context: CONTEXT)
              drained.merge!(drain_step_events(@tasks * 4, reads: reads))
            end
          ensure
            TaskerCore::FFI.stop_worker(5)
          end
          Helper.assert_no_failures!("FFI round trip")
          queue = queue_baseline(drained.delete(:sample_event), drained.delete(:sample_result))
          drained.merge(queue).merge(tasks: @tasks, task_creation_per_s: @tasks / creation,
                                     ratio_to_queue: drained[:join_round_trips_per_s] / queue[:queue_round_trips_per_s])
        end
      end

      private

      def completion_results
        @completion_results ||= RESULT_VALUES.to_h do |name, value|
          now = Time.now.utc.iso8601(3)
          [name, {
            "success" => true,
            "result" => value,
            "metadata" => { "execution_time_ms" => 0, "started_at" => now, "completed_at" => now,
                            "retryable" => false, "custom" => {} }
          }]
        end
      end

      # Per-call timings of the drain, grouped by how many parent results the event
      # carried (0, 1 or 2).
      class Timings
        def initialize
          @poll = Hash.new(0.0)
          @complete = Hash.new(0.0)
          @poll_objects = Hash.new(0)
          @complete_objects = Hash.new(0)
          @counts = Hash.new(0)
          @join_polls = []
          @join_completes = []
        end

        # @param parents [Integer]
        # @param poll [Float] seconds
        # @param complete [Float] seconds
        # @param poll_objects [Integer] Ruby objects allocated by the poll
        # @param complete_objects [Integer]
        def record(parents, poll:, complete:, poll_objects:, complete_objects:)
          @poll[parents] += poll
          @complete[parents] += complete
          @poll_objects[parents] += poll_objects
          @complete_objects[parents] += complete_objects
          @counts[parents] += 1
          return unless parents == 2

          @join_polls << poll
          @join_completes << complete
        end

        # @return [Hash]
        def summary
          joins = @counts[2]
          raise MeasureError, "no timed event with two parent results" if joins.zero?

          {
            join_events: joins,
            join_round_trips_per_s: joins / (@poll[2] + @complete[2]),
            join_poll_us: @poll[2] / joins * 1e6,
            join_complete_us: @complete[2] / joins * 1e6,
            join_poll_p50_us: Helper.percentile(@join_polls, 50) * 1e6,
            join_complete_p50_us: Helper.percentile(@join_completes, 50) * 1e6,
            join_poll_objects: @poll_objects[2].fdiv(joins),
            join_complete_objects: @complete_objects[2].fdiv(joins),
            all_round_trips_per_s: @counts.values.sum / (@poll.values.sum + @complete.values.sum),
            by_parents: @counts.keys.sort.to_h { |parents| [parents, kind_summary(parents)] }
          }
        end

        private

        def kind_summary(parents)
          count = @counts[parents]
          { events: count, poll_us: @poll[parents] / count * 1e6, complete_us: @complete[parents] / count * 1e6,
            poll_objects: @poll_objects[parents].fdiv(count) }
        end
      end

      # Drains `steps` events on this thread, timing each poll that returned an event and
      # each completion.
      def drain(steps)
        ffi = TaskerCore::FFI
        timings = Timings.new
        waits = 0
        done = 0
        sample_event = nil
        gc_before = GC.stat.slice(:count, :time)
        started = Helper.now
        while done < steps
          a0 = GC.stat(:total_allocated_objects)
          t0 = Helper.now
          event = ffi.poll_step_events
          t1 = Helper.now
          a1 = GC.stat(:total_allocated_objects)
          timed = !event.nil?
          unless event
            waits += 1
            # Waited for the core: this event is completed but left out of the timings.
            event = ffi.poll_step_events(0.01)
            next unless event
          end
          sequence = event["task_sequence_step"]
          parents = sequence["dependency_results"].size
          result = completion_results.fetch(sequence["workflow_step"]["name"])
          sample_event ||= event if parents == 2
          a2 = GC.stat(:total_allocated_objects)
          t2 = Helper.now
          accepted = ffi.complete_step_event(event["event_id"], result)
          t3 = Helper.now
          a3 = GC.stat(:total_allocated_objects)
          raise MeasureError, "complete_step_event rejected event #{event['event_id']}" unless accepted

          done += 1
          next unless timed

          timings.record(parents, poll: t1 - t0, complete: t3 - t2, poll_objects: a1 - a0, complete_objects: a3 - a2)
        end
        wall = Helper.now - started
        timings.summary.merge(
          steps: done,
          drain_wall_steps_per_s: done / wall,
          drain_gc_count: GC.stat(:count) - gc_before[:count],
          drain_gc_ms: GC.stat(:time) - gc_before[:time],
          drain_seconds: wall,
          fallback_polls: waits,
          sample_event: sample_event,
          sample_result: completion_results.fetch("ship")
        )
      end

      # Drains `steps` events as TaskerCore::StepEvent objects, timing poll + reads +
      # complete of each two-parent ("ship") event that was waiting when polled.
      # @param reads [Symbol] :worker (what TaskerCore::Worker reads of every event) or
      #   :handler (that, plus the task context and the parents' results)
      def drain_step_events(steps, reads:)
        ffi = TaskerCore::FFI
        results = completion_results
        seconds = 0.0
        joins = 0
        done = 0
        while done < steps
          t0 = Helper.now
          event = ffi.next_step_event
          unless event
            event = ffi.next_step_event(0.01)
            next unless event

            t0 = nil # waited for the core: completed, not timed
          end
          event.handler_callable
          event.handler_initialization
          event.timeout_ms
          if reads == :handler
            event.task_context
            event.dependency_results
          end
          name = event.step_name
          raise MeasureError, "complete_step_event rejected a #{name} event" unless ffi.complete_step_event(event, results.fetch(name))

          done += 1
          next unless t0 && name == "ship"

          seconds += Helper.now - t0
          joins += 1
        end
        raise MeasureError, "no timed two-parent StepEvent" if joins.zero?

        { "step_event_#{reads}_round_trips_per_s": joins / seconds, "step_event_#{reads}_events": joins }
      end

      # The cheapest FFI call that reaches the channel (event_pending?, a UUID argument
      # and a lock): the fixed cost any call pays, in microseconds.
      def ffi_floor(event_id)
        calls = [@queue_iterations / 10, 1000].max
        Helper.time { calls.times { TaskerCore::FFI.event_pending?(event_id) } } / calls * 1e6
      end

      # The same Hashes through two Thread::Queues on one thread: push event, pop,
      # push result, pop.
      def queue_baseline(event, result)
        events = Thread::Queue.new
        results = Thread::Queue.new
        iterations = @queue_iterations
        seconds = Helper.time do
          iterations.times do
            events.push(event)
            events.pop
            results.push(result)
            results.pop
          end
        end
        { queue_round_trips_per_s: iterations / seconds, queue_iterations: iterations }
      end
    end
  end
end
