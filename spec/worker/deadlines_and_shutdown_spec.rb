# frozen_string_literal: true

RSpec.describe "TaskerCore::Worker deadlines and shutdown on the real core" do
  let(:ffi) { TaskerCore::FFI }

  describe "#stop(timeout:)" do
    it "fails a handler still running after the timeout as retryable worker_shutdown, and returns in time" do
      ref = define_workflow("long", steps: [
        { name: "long", handler: "SpecHandlers::Sleeper", inputs: { "seconds" => 4 }, timeout_seconds: 10 }
      ])
      worker = start_worker(concurrency: 2)
      uuid = create_task(ref)
      wait_until("the handler runs") { worker.stats[:threads].any? { |t| t[:busy] } }

      report = nil
      took = elapsed { report = worker.stop(timeout: 0.3) }

      expect(took).to be < 1.3
      expect(report[:abandoned]).to contain_exactly(include(step_name: "long", accepted: true))
      expect(report[:stopped_core]).to be(false)
      expect(worker.running?).to be(false)
      # The failure is accepted at once and recorded by the core's completion path.
      step = wait_until("the shutdown failure is recorded") { (s = step_of(ffi.task_status(uuid), "long"))["error"] && s }
      expect(step["error"]).to include("error_type" => "worker_shutdown", "retryable" => true,
                                       "message" => /step 'long' .*still running after the 0\.3s shutdown timeout/)
      expect(step["attempts"]).to be <= 1 # the shutdown did not use up an attempt
      expect(step["status"]).not_to eq("error")

      SpecHandlers.observations.flag!("no_sleep")
      start_worker(concurrency: 1)
      final = wait_for(uuid)
      expect(final["status"]).to eq("complete")
      expect(step_of(final, "long")).to include("status" => "complete", "attempts" => 1, "error" => nil)
    end

    it "lets handlers that finish within the timeout complete normally" do
      ref = define_workflow("short", steps: [{ name: "short", handler: "SpecHandlers::Sleeper",
                                               inputs: { "seconds" => 0.2 } }])
      worker = start_worker(concurrency: 1)
      uuid = create_task(ref)
      wait_until("the handler runs") { worker.stats[:threads].any? { |t| t[:busy] } }

      expect(worker.stop(timeout: 3)).to eq(abandoned: [], stopped_core: false)
      expect(wait_for(uuid, timeout: 2)["status"]).to eq("complete")
    end

    it "is idempotent and answers the first report again" do
      worker = start_worker(concurrency: 1)
      first = worker.stop(timeout: 1)

      expect(worker.stop(timeout: 1)).to equal(first)
    end
  end

  describe "step deadlines kept by the core" do
    it "fails an overrunning handler as handler_timeout, retries it, counts the late completion, and completes" do
      restart_core # fresh metrics
      ref = define_workflow("overrun", steps: [
        { name: "slow_once", handler: "SpecHandlers::Sleeper", timeout_seconds: 0.3,
          inputs: { "seconds" => 1.0, "first_attempt_only" => true }, retry: { max_attempts: 3, backoff_base_ms: 10 } }
      ])
      worker = start_worker(concurrency: 2)
      uuid = create_task(ref)

      status = wait_for(uuid)
      expect(status["status"]).to eq("complete")
      expect(step_of(status, "slow_once")).to include("status" => "complete", "attempts" => 2,
                                                      "result" => { "slept" => 0, "attempt" => 2 })

      late = wait_until("the first attempt's late completion is counted") do
        (m = metrics)["late_completions"] >= 1 && m
      end
      expect(late).to include("total_timed_out" => 1, "late_completions" => 1)
      expect(SpecHandlers.observations.records(uuid).map { |r| r["attempt"] }).to eq([2, 1])
      wait_until("the worker counts the rejected completion") { worker.stats[:rejected_completions] == 1 }
    end

    it "records handler_timeout (retryable) when the deadline passes on the last attempt" do
      ref = define_workflow("overrun_once", steps: [
        { name: "too_slow", handler: "SpecHandlers::Sleeper", timeout_seconds: 0.3, inputs: { "seconds" => 2.0 },
          retry: { max_attempts: 1 } }
      ])
      start_worker(concurrency: 1)
      uuid = create_task(ref)

      status = nil
      took = elapsed { status = wait_for(uuid) }
      expect(took).to be < 1.2 # the core failed it at its deadline, not when the handler returned (2 s)
      expect(status["status"]).to eq("error")
      expect(step_of(status, "too_slow")).to include("status" => "error", "attempts" => 1)
      expect(step_of(status, "too_slow")["error"]).to include(
        "error_type" => "handler_timeout", "retryable" => true,
        "message" => /step 'too_slow' exceeded its deadline of 300 ms/
      )
    end

    it "tells a running handler it is cancelled once the core has failed its attempt" do
      ref = define_workflow("cancellable", steps: [
        { name: "patient", handler: "SpecHandlers::WaitsForCancellation", timeout_seconds: 0.3,
          retry: { max_attempts: 2, backoff_base_ms: 10 } }
      ])
      start_worker(concurrency: 2)
      uuid = create_task(ref)

      status = wait_for(uuid)
      expect(status["status"]).to eq("complete")
      expect(step_of(status, "patient")).to include("attempts" => 2, "result" => { "attempt" => 2 })
      record = wait_until("attempt 1 notices the cancellation") { SpecHandlers.observations.records(uuid).first }
      expect(record).to include("cancelled" => true, "expired" => true, "remaining_seconds" => 0.0)
      expect(record["cancelled_after"]).to be_between(0.2, 1.5)
    end
  end
end
