# frozen_string_literal: true

RSpec.describe "Bounded dispatch through TaskerCore::FFI" do
  let(:ffi) { TaskerCore::FFI }
  let(:workflow) do
    define_workflow("wide", steps: Array.new(5) { |i| { name: "s#{i}", handler: "SpecHandlers::Echo" } })
  end

  it "hands out at most max_concurrent_handlers events until one is completed" do
    restart_core(max_concurrent_handlers: 2)
    uuid = create_task(workflow)

    first = next_event(uuid)
    second = next_event(uuid)
    expect(poll_event(uuid, timeout: 0.3)).to be_nil
    expect(metrics).to include("pending_count" => 2, "waiting_in_dispatch" => 0)
    expect(ffi.task_status(uuid)["steps"].map { |s| s["status"] }.tally).to eq("in_progress" => 2, "enqueued" => 3)

    complete_ok(first)
    third = next_event(uuid)
    expect(poll_event(uuid, timeout: 0.2)).to be_nil
    [second, third].each { |event| complete_ok(event) }
    2.times { complete_ok(next_event(uuid)) }
    expect(wait_for(uuid)["status"]).to eq("complete")
  end

  it "gives capacity back when the core times an event out" do
    restart_core(max_concurrent_handlers: 1)
    ref = define_workflow("one_slot", steps: [
      { name: "stuck", handler: "SpecHandlers::Echo", timeout_seconds: 0.2,
        retry: { max_attempts: 2, backoff_base_ms: 10 } },
      { name: "free", handler: "SpecHandlers::Echo" }
    ])
    uuid = create_task(ref)

    held = next_event(uuid)
    expect(event_step_name(held)).to eq("stuck")
    other = next_event(uuid) # comes only once the core has failed "stuck" at its deadline
    expect(event_step_name(other)).to eq("free")
    expect(ffi.event_pending?(held["event_id"])).to be(false)
    expect(metrics).to include("total_timed_out" => 1, "pending_count" => 1)
    complete_ok(other)
    retried = next_event(uuid)
    expect([event_step_name(retried), event_attempts(retried)]).to eq(["stuck", 2])
    complete_ok(retried)
    expect(wait_for(uuid)["status"]).to eq("complete")
  end

  it "accepts every completion while the completion channel is full (senders wait, nothing is dropped)" do
    restart_core(completion_buffer_size: 1, dispatch_buffer_size: 1, max_concurrent_handlers: 8)
    ref = define_workflow("single", steps: [{ name: "only", handler: "SpecHandlers::Echo" }])
    uuids = Array.new(60) { create_task(ref) }
    accepted = Queue.new

    took = elapsed do
      pollers = Array.new(6) do
        Thread.new do
          while (event = ffi.poll_step_events(0.3))
            accepted << ffi.complete_step_event(event["event_id"], success_result(event["task_uuid"]))
          end
        end
      end
      pollers.each(&:join)
    end

    answers = Array.new(accepted.size) { accepted.pop }
    # Well under the steps' 5 s deadline: no completer waited for room until it timed out.
    expect(took).to be < 3
    expect(answers.size).to eq(60)
    expect(answers).to all(be(true))
    finals = uuids.map { |uuid| wait_for(uuid) }
    expect(finals.map { |s| s["status"] }).to all(eq("complete"))
    expect(finals.map { |s| s["steps"][0]["result"] }).to eq(uuids)
    expect(metrics).to include("total_completed" => 60, "total_rejected_completions" => 0, "pending_count" => 0)
  end
end
