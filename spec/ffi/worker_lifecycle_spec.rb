# frozen_string_literal: true

RSpec.describe "TaskerCore::FFI.worker_status and stop_worker" do
  let(:ffi) { TaskerCore::FFI }
  let(:workflow) do
    define_workflow("lifecycle", steps: [
      { name: "a", handler: "SpecHandlers::Echo" },
      { name: "b", handler: "SpecHandlers::Echo" },
      { name: "after", handler: "SpecHandlers::Echo", dependencies: %w[a b] }
    ])
  end

  it "describes the running worker" do
    info = ffi.bootstrap_worker(environment: "test")
    status = ffi.worker_status

    expect(status).to include("running" => true, "bootstrapped" => true, "worker_id" => info["worker_id"],
                              "consumer" => "ffi", "environment" => "test", "pid" => Process.pid,
                              "max_concurrent_handlers" => info["config"]["max_concurrent_handlers"],
                              "handler_timeout_ms" => 5000)
    expect(status["started_at"]).to match(/\A\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\z/)
    expect(status["templates"]).to be_a(Integer)
    expect(status["in_flight"]).to be_a(Integer)
    expect(status["orchestrator"].keys).to include("tasks_created", "tasks_completed", "tasks_failed",
                                                   "steps_dispatched", "retries_scheduled", "tasks_in_memory")
  end

  it "counts polled, unfinished steps as in flight" do
    restart_core
    uuid = create_task(workflow)
    event = next_event(uuid)

    expect(ffi.worker_status["in_flight"]).to be >= 1
    complete_ok(event)
    complete_ok(next_event(uuid))
    complete_ok(next_event(uuid))
    wait_for(uuid)
    wait_until("nothing is in flight") { ffi.worker_status["in_flight"].zero? }
  end

  it "reports unfinished steps as worker_shutdown without using up attempts, keeps task state, and " \
     "finishes the task after a new bootstrap" do
    uuid = create_task(workflow)
    wait_until("both root steps wait unpolled") { metrics["waiting_in_dispatch"] == 2 }
    polled = next_event(uuid)

    report = ffi.stop_worker

    expect(report).to include("status" => "stopped", "unfinished_reported" => 2)
    expect(ffi.worker_status).to include("running" => false, "bootstrapped" => true)
    status = ffi.task_status(uuid)
    expect(status["status"]).to eq("in_progress")
    %w[a b].each do |name|
      step = step_of(status, name)
      expect(step).to include("status" => "enqueued", "attempts" => 0)
      expect(step["error"]).to include("error_type" => "worker_shutdown", "retryable" => true,
                                       "message" => /worker stopped before step '#{name}' finished/)
    end
    expect(step_of(status, "after")).to include("status" => "pending", "attempts" => 0)
    expect(ffi.complete_step_event(polled["event_id"], success_result(1))).to be(false)
    expect(ffi.event_pending?(polled["event_id"])).to be(false)
    expect(ffi.stop_worker).to eq("status" => "not_running")

    restarted = ffi.bootstrap_worker(environment: "test")
    expect(restarted["status"]).to eq("started")
    expect(restarted["worker_id"]).not_to eq(report["worker_id"])
    3.times { complete_ok(next_event(uuid), "done") }
    final = wait_for(uuid)
    expect(final["status"]).to eq("complete")
    expect(final["steps"].map { |s| [s["name"], s["status"], s["attempts"], s["error"]] })
      .to contain_exactly(["a", "complete", 1, nil], ["b", "complete", 1, nil], ["after", "complete", 1, nil])
  end

  it "wakes a thread blocked in poll_step_events with nil when the worker stops" do
    poller = Thread.new { ffi.poll_step_events(10) }
    wait_until("the poller blocks") { poller.status == "sleep" }

    took = elapsed do
      ffi.stop_worker
      expect(poller.join(2)).to eq(poller)
    end
    expect(poller.value).to be_nil
    expect(took).to be < 1
  end

  it "still creates tasks while stopped; their steps wait for the next worker" do
    ref = workflow
    ffi.stop_worker
    uuid = create_task(ref)

    expect(ffi.task_status(uuid)["status"]).to eq("pending")
    expect(ffi.wait_for_task(uuid, 0.1)).to be_nil
    ffi.bootstrap_worker(environment: "test")
    3.times { complete_ok(next_event(uuid)) }
    expect(wait_for(uuid)["status"]).to eq("complete")
  end

  it "rejects a bad grace period" do
    expect { ffi.stop_worker(-1) }.to raise_error(ArgumentError, /grace_seconds/)
    expect { ffi.stop_worker("1") }.to raise_error(TypeError, /grace_seconds/)
    expect { ffi.stop_worker(1, 2) }.to raise_error(ArgumentError, /0\.\.1 arguments/)
    expect(ffi.worker_status["running"]).to be(true)
  end
end
