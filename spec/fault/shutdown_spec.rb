# frozen_string_literal: true

require_relative "fault_helper"

# Worker#stop(timeout:) while handlers run: the ones that can finish in time finish; the
# others are failed as retryable "worker_shutdown" and run again later, never dropped.
RSpec.describe "Worker#stop while handlers run", :core do
  let(:ffi) { TaskerCore::FFI }
  let(:recorder) { FaultHandlers.recorder }

  def stuck_workflow
    define_workflow("stuck", steps: [fault_step("wedged", "StuckUntilReleased", timeout: 30)])
  end

  it "lets handlers that can finish within the timeout finish and reports the others as retryable worker_shutdown" do
    short = define_workflow("short", steps: [fault_step("nap", "Sleeper", inputs: { "seconds" => 0.3 })])
    stuck = stuck_workflow
    worker = start_worker(concurrency: 4)
    shorts = Array.new(2) { create_task(short) }
    stucks = Array.new(2) { create_task(stuck) }
    recorder.wait_for("started", count: 4)

    report = nil
    took = elapsed { report = worker.stop(timeout: 1.5) }

    expect(took).to be_between(1.4, 1.5 + TaskerCore::Worker::Manager::KILL_GRACE + 1)
    expect(report[:stopped_core]).to be false # it joined the core this process already ran
    expect(report[:abandoned].map { |a| a[:step_name] }).to eq(%w[wedged wedged])
    expect(report[:abandoned]).to all(include(accepted: true))
    expect(worker.stats).to include(shutdown_failures: 2, running: false)

    # The handlers that could finish did, during the stop.
    expect(recorder.records("finished").size).to eq(2)
    shorts.each { |uuid| expect(wait_for(uuid, timeout: 2)["status"]).to eq("complete") }

    # The others are not lost: failed as retryable worker_shutdown, without using up an
    # attempt (the core records results asynchronously: it has accepted them already)...
    wait_until("the shutdown failures are recorded") do
      stucks.all? { |uuid| step_of(ffi.task_status(uuid), "wedged")["error"] }
    end
    stucks.each do |uuid|
      status = ffi.task_status(uuid)
      step = step_of(status, "wedged")
      expect(%w[complete error]).not_to include(status["status"])
      expect(step["status"]).to eq("enqueued").or(eq("in_progress"))
      expect(step["error"]).to include("error_type" => "worker_shutdown", "retryable" => true)
      expect(step["error"]["message"]).to include("still running after the 1.5s shutdown timeout")
    end
    expect(recorder.records("woke")).to be_empty

    # ...and the next worker runs them to completion.
    recorder.release!
    start_worker(concurrency: 2)
    stucks.each do |uuid|
      status = wait_for(uuid, timeout: 5)
      expect(status["status"]).to eq("complete")
      expect(step_of(status, "wedged")).to include("attempts" => 1, "error" => nil)
    end
    expect(recorder.records("ran").size).to eq(2)
  end

  it "reports the killed step and the never-polled ones as worker_shutdown when it stops the core it started" do
    stuck = stuck_workflow # loads the templates (into the orchestrator, which outlives workers)
    ffi.stop_worker
    worker = start_worker(concurrency: 1)
    expect(worker.started_core?).to be true

    uuids = Array.new(3) { create_task(stuck) }
    recorder.wait_for("started")
    wait_until("two events wait unpolled") { metrics["waiting_in_dispatch"] == 2 }

    report = worker.stop(timeout: 0.5)

    expect(report[:stopped_core]).to be true
    expect(report[:abandoned].size).to eq(1)
    expect(ffi.worker_status["running"]).to be false
    steps = uuids.map { |uuid| step_of(ffi.task_status(uuid), "wedged") }
    expect(steps).to all(include("status" => "enqueued", "attempts" => 0))
    errors = steps.map { |step| step["error"] }
    expect(errors).to all(include("error_type" => "worker_shutdown", "retryable" => true))
    messages = errors.map { |e| e["message"] }
    # The killed step was failed by the worker; if the core claimed it again before it
    # stopped claiming, stopping the core failed it once more, as it did the two that were
    # never polled.
    expect(report[:abandoned].first).to include(step_name: "wedged", accepted: true)
    expect(worker.stats).to include(shutdown_failures: 1)
    expect(messages).to all(match(/worker stopped before step 'wedged' finished|still running after the 0.5s shutdown timeout/))
    expect(messages.count { |m| m.include?("it waited to be polled") }).to be >= 2

    recorder.release!
    replacement = start_worker(concurrency: 2)
    expect(replacement.started_core?).to be true
    expect(uuids.map { |uuid| wait_for(uuid, timeout: 5)["status"] }).to eq(%w[complete] * 3)
  end

  it "returns at once when nothing runs, and a second stop returns the first report" do
    worker = start_worker(concurrency: 3)
    first = nil
    took = elapsed { first = worker.stop(timeout: 5) }
    expect(took).to be < 1.0
    expect(first).to eq(abandoned: [], stopped_core: false)
    expect(worker.stop(timeout: 5)).to equal(first)
  end
end
