# frozen_string_literal: true

require_relative "fault_helper"

# Memory and GC safety of the FFI functions. With TASKER_GC_STRESS=1 (rake spec:gc_stress)
# every example runs with GC.stress on: a minor GC at every allocation for the whole
# example (GC.stress = 1), and a full GC at every allocation (GC.stress = true) around its
# FFI calls (with TASKER_GC_COMPACT=1, each of those GCs also compacts), so a Ruby object
# the extension holds without the GC knowing is collected or moved at once and shows up as
# a crash or a wrong value. (A full GC at every allocation of RSpec's
# own matchers and hooks would take minutes per example, so the expectations are checked
# after the stressed block, on what it returned.) Without TASKER_GC_STRESS the same
# examples run at normal speed. The compaction example moves every movable object
# (GC.verify_compaction_references, then GC.compact) and checks the values are still right.
RSpec.describe "FFI memory and GC safety", :core do
  let(:ffi) { TaskerCore::FFI }
  let(:stress) { ENV["TASKER_GC_STRESS"] == "1" }
  # Steps that may wait long: everything is slow under GC.stress.
  let(:step_timeout) { 600 }

  # Nested, mixed JSON-like data: what the task context and step results carry.
  let(:nested) do
    {
      "order" => { "id" => 42, "items" => [{ "sku" => "A-1", "qty" => 2, "price" => 9.5 }, { "sku" => "ß-✓", "qty" => 1 }] },
      "flags" => [true, false, nil], "big" => 2**62, "negative" => -7, "ratio" => 0.125,
      "deep" => { "a" => { "b" => { "c" => { "d" => ["e", { "f" => "g" }] } } } },
      "empty" => { "hash" => {}, "array" => [] }, "text" => "line\nbreak \u00e9\u4e2d"
    }
  end

  around do |example|
    previous = GC.stress
    GC.stress = 1 if stress # minor GC at every allocation
    example.run
  ensure
    GC.stress = previous
  end

  # Runs the block with a full GC at every allocation (under TASKER_GC_STRESS=1).
  # With TASKER_GC_COMPACT=1 as well, every one of those GCs also compacts the heap.
  def under_gc_stress
    previous = GC.stress
    compact = GC.auto_compact
    GC.auto_compact = true if stress && ENV["TASKER_GC_COMPACT"] == "1"
    GC.stress = true if stress
    yield
  ensure
    GC.stress = previous
    GC.auto_compact = compact
  end

  def chain_workflow
    define_workflow("gc_chain", steps: [fault_step("first", "Quick", timeout: step_timeout),
                                        fault_step("second", "Quick", dependencies: ["first"], timeout: step_timeout)])
  end

  # Polls (non-blocking first, then blocking) for the next event; the cleanup fails it if
  # the example leaves it pending.
  def poll_both_ways
    event = ffi.poll_step_events || ffi.poll_step_events(30)
    @spec_events << event if event
    event
  end

  # Runs a two-step task through the FFI alone under GC stress.
  # @return [Hash] what each call returned
  def run_chain(ref, context, first_result)
    under_gc_stress do
      uuid = track_task(ffi.create_task(ref.namespace, ref.name, nil, context))
      first = poll_both_ways
      accepted_first = ffi.complete_step_event(first["event_id"], success_result(first_result))
      second = poll_both_ways
      accepted_second = ffi.complete_step_event(second["event_id"], success_result("done"))
      { uuid: uuid, first: first, second: second, accepted: [accepted_first, accepted_second],
        waited: ffi.wait_for_task(uuid, 30), status: ffi.task_status(uuid) }
    end
  end

  def expect_chain(run, context, first_result)
    expect(run[:first]).to include("task_uuid" => run[:uuid])
    expect(run[:first].dig("task_sequence_step", "task", "context")).to eq(context)
    expect(run[:second].dig("task_sequence_step", "dependency_results")).to eq("first" => first_result)
    expect(run[:accepted]).to eq([true, true])
    expect(run[:waited]).to eq(run[:status])
    expect(run[:status]["status"]).to eq("complete")
    expect(run[:status]["steps"].map { |s| s["result"] }).to eq([first_result, "done"])
  end

  it "bootstraps and reports status and metrics" do
    dir = templates.dir
    info, status, metrics = under_gc_stress do
      [ffi.bootstrap_worker(environment: "test", template_path: dir), ffi.worker_status, ffi.ffi_dispatch_metrics]
    end
    expect(info).to include("status" => "already_running", "environment" => "test")
    expect(info["config"]).to include("poll_timeout_ms" => Integer, "hung_handler_grace_ms" => 1000)
    expect(status).to include("running" => true, "bootstrapped" => true, "pid" => Process.pid)
    expect(status["orchestrator"]).to include("tasks_created" => Integer)
    expect(metrics).to include("pending_count" => 0, "running" => true, "timeout_lag_samples" => Integer)
  end

  it "polls without blocking and with a timeout when nothing is waiting" do
    chain_workflow
    polled, took = under_gc_stress do
      started = monotonic
      [[ffi.poll_step_events, ffi.poll_step_events(0), ffi.poll_step_events(0.05)], monotonic - started]
    end
    expect(polled).to eq([nil, nil, nil])
    expect(took).to be >= 0.04
  end

  it "carries a nested context into the event and a nested result into the next step and the status" do
    ref = chain_workflow
    result = nested.merge("list" => Array.new(20) { |i| { "i" => i, "s" => "v#{i}" } })
    gcs = GC.count
    compactions = GC.stat(:compact_count)
    expect_chain(run_chain(ref, nested, result), nested, result)
    # The stress modes are really on when asked for.
    expect(GC.count - gcs).to be > 200 if stress
    expect(GC.stat(:compact_count) - compactions).to be > 200 if stress && ENV["TASKER_GC_COMPACT"] == "1"
  end

  it "rejects malformed results naming the problem, keeps the event pending, then accepts a good one" do
    ref = chain_workflow
    context = nested
    bad = [
      [nil, TypeError, /result must be a Hash/],
      [{ "result" => 1 }, ArgumentError, /missing required key "success"/],
      [{ "success" => "yes" }, TypeError, /success/],
      [{ "success" => true, "result" => { "callback" => -> { 1 } } }, TypeError, /result\["result"\]\["callback"\]/],
      [{ "success" => true, "result" => [1, 2, Float::NAN] }, ArgumentError, /result\["result"\]\[2\]/],
      [{ "success" => false }, ArgumentError, /needs "error"/],
      [{ "success" => true, "result" => { 1 => "integer key" } }, TypeError, /key/]
    ]
    seen = under_gc_stress do
      track_task(ffi.create_task(ref.namespace, ref.name, nil, context))
      id = poll_both_ways["event_id"]
      errors = bad.map do |result, _, _|
        ffi.complete_step_event(id, result)
        [nil, nil, ffi.event_pending?(id)]
      rescue StandardError => e
        [e.class, e.message, ffi.event_pending?(id)]
      end
      bad_id = begin
        ffi.complete_step_event("not-a-uuid", success_result)
      rescue StandardError => e
        [e.class, e.message]
      end
      { errors: errors, bad_id: bad_id, good: ffi.complete_step_event(id, success_result(context)),
        again: ffi.complete_step_event(id, success_result(context)) }
    end
    seen[:errors].zip(bad).each do |(klass, message, pending), (_, error, pattern)|
      expect(klass).to eq(error)
      expect(message).to match(pattern)
      expect(pending).to be true
    end
    expect(seen[:bad_id]).to match([ArgumentError, /event_id/])
    expect(seen[:good]).to be true
    expect(seen[:again]).to be false
  end

  it "raises the core's errors with the right classes" do
    context = nested
    raised = under_gc_stress do
      [
        -> { ffi.task_status("00000000-0000-4000-8000-000000000000") },
        -> { ffi.create_task("spec", "no_such_template_gc", nil, context) },
        -> { ffi.create_task("spec", "x", nil, [1]) }
      ].map do |call|
        call.call
        nil
      rescue StandardError => e
        [e.class, e.message]
      end
    end
    expect(raised[0].first).to eq(TaskerCore::Errors::TaskNotFoundError)
    expect(raised[1].first).to eq(TaskerCore::Errors::TemplateError)
    expect(raised[2]).to match([TypeError, /context must be a Hash/])
  end

  it "waits for a task with the GVL released while another thread runs its steps" do
    ref = chain_workflow
    context = nested
    status = under_gc_stress do
      uuid = track_task(ffi.create_task(ref.namespace, ref.name, nil, context))
      finisher = Thread.new do
        2.times do
          event = ffi.poll_step_events(30)
          ffi.complete_step_event(event["event_id"], success_result(event.dig("task_sequence_step", "workflow_step", "name")))
        end
      end
      waited = ffi.wait_for_task(uuid, 60)
      finisher.join
      waited
    end
    expect(status).to include("status" => "complete")
    expect(status["steps"].map { |s| s["result"] }).to eq(%w[first second])
  end

  it "keeps every value right after the heap is compacted (verify_compaction_references, GC.compact)" do
    ref = chain_workflow
    context = JSON.parse(JSON.generate(nested)) # fresh objects, free to move
    uuid = create_task(ref, context)
    event = poll_both_ways
    expected_event = Marshal.dump(event)

    GC.verify_compaction_references(double_heap: true, toward: :empty)

    expect(Marshal.dump(event)).to eq(expected_event)
    expect(event.keys).to eq(%w[event_id task_uuid step_uuid correlation_id trace_id span_id timeout_ms
                                task_sequence_step])
    expect(event["task_uuid"]).to eq(uuid)
    expect(ffi.complete_step_event(event["event_id"], success_result(context))).to be true
    second = poll_both_ways
    expect(second.dig("task_sequence_step", "dependency_results", "first")).to eq(nested)
    GC.compact
    expect(ffi.complete_step_event(second["event_id"], success_result("after compaction"))).to be true
    status = ffi.wait_for_task(uuid, 5)
    expect(status["steps"].map { |s| s["result"] }).to eq([nested, "after compaction"])
    expect { ffi.task_status("00000000-0000-4000-8000-000000000000") }
      .to raise_error(TaskerCore::Errors::TaskNotFoundError)
    GC.compact
    result = [1, "two", { "three" => 3.0 }]
    expect_chain(run_chain(ref, nested, result), nested, result)
  end
end
