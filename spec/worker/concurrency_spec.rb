# frozen_string_literal: true

RSpec.describe "TaskerCore::Worker running handlers on the real core" do
  it "overlaps I/O-bound handlers: 8 steps of 0.3 s at concurrency 8 take far less than 8 x 0.3 s" do
    ref = define_workflow("fan_out", steps: Array.new(8) do |i|
      { name: "sleep_#{i}", handler: "SpecHandlers::Sleeper", inputs: { "seconds" => 0.3 } }
    end)
    worker = start_worker(concurrency: 8)
    expect(worker.concurrency).to eq(8)

    status = nil
    took = elapsed { status = wait_for(create_task(ref), timeout: 10) }

    expect(status["status"]).to eq("complete")
    expect(status["steps"].map { |s| s["result"] }).to all(include("slept" => 0.3))
    expect(took).to be < 1.5
    expect(SpecHandlers.observations.peak).to be >= 4
  end

  it "never runs more handlers at once than its concurrency" do
    ref = define_workflow("fan_out", steps: Array.new(6) do |i|
      { name: "sleep_#{i}", handler: "SpecHandlers::Sleeper", inputs: { "seconds" => 0.1 } }
    end)
    start_worker(concurrency: 2)

    expect(wait_for(create_task(ref))["status"]).to eq("complete")
    expect(SpecHandlers.observations.peak).to eq(2)
  end

  it "runs many tasks to completion and counts them" do
    ref = define_workflow("chain", steps: [
      { name: "one", handler: "SpecHandlers::Echo" },
      { name: "two", handler: "SpecHandlers::Echo", dependencies: ["one"] }
    ])
    worker = start_worker(concurrency: 4)
    uuids = Array.new(40) { create_task(ref) }

    expect(uuids.map { |uuid| wait_for(uuid)["status"] }).to all(eq("complete"))
    # A thread counts its step after the core has accepted it, so the count may trail.
    wait_until("the worker has counted every step") { worker.stats[:steps_run] == 80 }
    expect(worker.stats).to include(steps_run: 80, succeeded: 80, failed: 0, rejected_completions: 0)
  end

  it "joins a running core without stopping it, and leaves it running when stopped" do
    worker = start_worker(concurrency: 1)

    expect(worker.bootstrap_info["status"]).to eq("already_running")
    expect(worker.started_core?).to be(false)
    expect(worker.stop(timeout: 1)).to eq(abandoned: [], stopped_core: false)
    expect(TaskerCore::FFI.worker_status["running"]).to be(true)
  end

  it "starts and stops the core itself when none runs" do
    TaskerCore::FFI.stop_worker
    worker = start_worker(concurrency: 1)

    expect(worker.started_core?).to be(true)
    expect(worker.stop(timeout: 1)).to eq(abandoned: [], stopped_core: true)
    expect(TaskerCore::FFI.worker_status["running"]).to be(false)
  end
end
