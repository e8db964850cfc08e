# frozen_string_literal: true

require_relative "fault_helper"

# Deadlines are kept by the Rust core on its own threads: a Ruby thread spinning on the
# CPU (holding the GVL whenever it runs) must not delay the failure of an attempt that
# overruns its deadline.
RSpec.describe "Deadlines under GVL load", :core do
  let(:ffi) { TaskerCore::FFI }
  let(:recorder) { FaultHandlers.recorder }
  let(:deadline) { 0.2 }

  it "fails overrunning handlers (retryable handler_timeout) within 100 ms of their deadline while a Ruby thread spins" do
    restart_core(concurrency: 5) # a fresh channel: its timeout lag samples are this example's
    ref = define_workflow("overrun_once",
                          steps: [fault_step("slow", "Overrun", timeout: deadline, max_attempts: 1,
                                                                inputs: { "seconds" => 0.8 })])
    worker = start_worker(concurrency: 5)
    # The time before create_task is a lower bound of when the core handed the event out,
    # so created_at + deadline is a lower bound of the deadline the core keeps.
    created = Array.new(5) do
      created_at = Time.now.to_f
      [create_task(ref), created_at]
    end
    recorder.wait_for("started", count: 5)

    statuses, spun = with_spinners do
      finals = created.map { |uuid, _| wait_for(uuid, timeout: 5) }
      wait_until("the late completions are rejected") { metrics["late_completions"] >= 5 }
      finals
    end

    expect(spun).to be > 0
    lags = statuses.zip(created).map do |status, (_uuid, created_at)|
      step = step_of(status, "slow")
      expect(status["status"]).to eq("error")
      expect(step).to include("status" => "error", "attempts" => 1)
      expect(step["error"]).to include("error_type" => "handler_timeout", "retryable" => true)
      expect(step["error"]["message"]).to include("exceeded its deadline of 200 ms")
      # completed_at is the core's clock when it recorded the failure: an upper bound of
      # the lag that needs no GVL to observe (millisecond resolution).
      epoch_seconds(status["completed_at"]) - (created_at + deadline)
    end
    expect(lags.max).to be <= FaultHelpers::DEADLINE_MARGIN
    expect(lags.min).to be >= -0.002 # never before the deadline

    # The core's own measurement: reap time minus deadline, on its timer thread.
    lag = timeout_lag
    expect(lag).not_to be_nil, "ffi_dispatch_metrics reports no timeout_lag_ms_* figures"
    expect(lag["timeout_lag_samples"]).to eq(5)
    expect(lag["timeout_lag_ms_p99"]).to be <= FaultHelpers::DEADLINE_MARGIN * 1000
    expect(lag["timeout_lag_ms_p50"]).to be <= lag["timeout_lag_ms_p99"]

    # Every handler ran on past its deadline and its completion was refused.
    expect(recorder.records("finished").map { |r| r["cancelled"] }).to eq([true] * 5)
    expect(metrics).to include("total_timed_out" => 5, "late_completions" => 5, "total_rejected_completions" => 5)
    expect(worker.stats).to include(rejected_completions: 5, interrupts: 0)
  end

  it "runs the retry of a timed-out attempt while the first still runs, completes the task, and rejects the late completion" do
    restart_core(concurrency: 4)
    # The retry must start and finish within the same deadline while the spinner holds the
    # GVL for 100 ms slices: 400 ms leaves it several slices (at 200 ms it once timed out
    # too, on a busy CI machine, and attempt 3 completed the step). The first attempt's
    # 0.9 s sleep ends 0.5 s before the watchdog would interrupt it (deadline + the test
    # environment's hung_handler_grace_ms of 1 s), so its late completion still comes.
    ref = define_workflow("overrun_then_retry",
                          steps: [fault_step("slow", "Overrun", timeout: 0.4, inputs: { "seconds" => 0.9 }),
                                  fault_step("after", "Quick", dependencies: ["slow"])])
    worker = start_worker(concurrency: 4)

    status, spun = with_spinners do
      uuid = create_task(ref)
      final = wait_for(uuid, timeout: 5)
      recorder.wait_for("finished", timeout: 5)
      wait_until("the late completion is counted") { metrics["late_completions"] >= 1 }
      final
    end

    expect(spun).to be > 0
    expect(status["status"]).to eq("complete")
    expect(step_of(status, "slow")).to include("status" => "complete", "attempts" => 2, "result" => { "attempt" => 2 })
    expect(step_of(status, "after")).to include("status" => "complete", "attempts" => 1)

    first = recorder.records("started").first
    retry_run = recorder.records("ran").find { |r| r["step"] == "slow" }
    finished = recorder.records("finished").first
    expect(first).to include("attempt" => 1)
    expect(retry_run).to include("attempt" => 2, "step_uuid" => first["step_uuid"])
    expect(retry_run["thread"]).not_to eq(first["thread"]) # the first attempt's thread was still busy
    expect(retry_run["at"]).to be < finished["at"]
    expect(finished["cancelled"]).to be true

    expect(metrics).to include("total_timed_out" => 1, "late_completions" => 1, "total_rejected_completions" => 1)
    expect(worker.stats).to include(rejected_completions: 1, steps_run: 3)
  end

  it "rejects a completion that comes just after the deadline, before the core's timer has failed the attempt" do
    restart_core(concurrency: 4)
    ref = define_workflow("finish_at_deadline", steps: [fault_step("edge", "FinishAtDeadline", timeout: 0.1)])
    worker = start_worker(concurrency: 4)

    statuses = Array.new(8) { create_task(ref) }.map { |uuid| wait_for(uuid, timeout: 10) }

    expect(recorder.records("finished").size).to eq(8)
    # Every first attempt was late: refused, failed as handler_timeout, and run again.
    expect(statuses.map { |s| step_of(s, "edge").values_at("status", "attempts") }).to eq([["complete", 2]] * 8)
    expect(metrics).to include("total_timed_out" => 8, "late_completions" => 8, "total_rejected_completions" => 8)
    expect(worker.stats).to include(rejected_completions: 8)
  end

  it "answers false to a completion after the core failed the attempt, and counts it as late (a duplicate is not late)" do
    ref = define_workflow("manual_deadline", steps: [fault_step("only", "Quick", timeout: deadline, max_attempts: 1)])
    before = metrics
    uuid = create_task(ref)
    event = next_event(uuid)

    accepted, spun = with_spinners do
      wait_until("the core fails the attempt", timeout: 2) { !ffi.event_pending?(event["event_id"]) }
      ffi.complete_step_event(event["event_id"], success_result("too late"))
    end

    expect(spun).to be > 0
    expect(accepted).to be false
    status = wait_for(uuid)
    expect(step_of(status, "only")["error"]).to include("error_type" => "handler_timeout", "retryable" => true)
    after_late = metrics
    expect(after_late["late_completions"] - before["late_completions"]).to eq(1)
    expect(after_late["total_rejected_completions"] - before["total_rejected_completions"]).to eq(1)
    expect(after_late["total_timed_out"] - before["total_timed_out"]).to eq(1)

    other = create_task(ref)
    second = next_event(other)
    complete_ok(second, "on time")
    expect(ffi.complete_step_event(second["event_id"], success_result("again"))).to be false
    expect(wait_for(other)["steps"].first).to include("status" => "complete", "result" => "on time")
    after_duplicate = metrics
    expect(after_duplicate["late_completions"]).to eq(after_late["late_completions"])
    expect(after_duplicate["total_rejected_completions"] - after_late["total_rejected_completions"]).to eq(1)
  end
end
