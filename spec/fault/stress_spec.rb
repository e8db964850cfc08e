# frozen_string_literal: true

require_relative "fault_helper"

# Load with injected faults (spec/fault/support/stress.rb, run through bin/stress in a
# fresh process so that its RSS and its core's settings are its own). Sized for CI by
# TASKER_STRESS_TASKS (default 1500) and TASKER_STRESS_THREADS (default 16);
# `bin/stress` alone runs the large version.
RSpec.describe "Load with injected faults" do
  tasks = Integer(ENV.fetch("TASKER_STRESS_TASKS", "1500"))
  threads = Integer(ENV.fetch("TASKER_STRESS_THREADS", "16"))
  warmup = Integer(ENV.fetch("TASKER_STRESS_WARMUP", "3000"))
  seed = Integer(ENV.fetch("TASKER_STRESS_SEED", "20240601"))

  def stress(*args, timeout:)
    result = run_ruby(file: File.join(FaultHelpers::REPO_ROOT, "bin", "stress"), args: [*args.map(&:to_s), "--json"],
                      timeout: timeout)
    raise "bin/stress hung and was killed; stderr:\n#{result.err}" if result.killed

    report = result.json
    expect(result.status.exitstatus).to eq(report["failures"].empty? ? 0 : 1)
    report
  end

  it "runs #{tasks} tasks on #{threads} threads next to a spinning thread: every attempt once, " \
     "every task complete or error as planned, nothing pending, RSS flat" do
    report = stress("--tasks", tasks, "--threads", threads, "--warmup", warmup, "--seed", seed, "--window", 128,
                    "--retention", 400, "--spinners", 1, timeout: 170)
    log = report.fetch("log")
    metrics = report.fetch("metrics")

    expect(report["failures"]).to eq([])
    expect(report["config"]).to include("concurrency" => threads)
    expect(report["config"]["max_concurrent_handlers"]).to be >= threads
    expect(report["spinner_iterations"]).to be > 0
    # Every kind of fault was injected.
    expect(log["by_kind"].keys).to match_array(FaultStress::KINDS)
    # No (step_uuid, attempt) ran twice; each ran once more than zero times per dispatch.
    expect(log["duplicates"]).to eq(0)
    expect(log["executions_after_check"]).to eq(0)
    expect(log["executions"]).to eq(report.dig("orchestrator", "steps_dispatched"))
    # Every task ended complete or error, and as its plan predicts unless a deadline it did
    # not plan for passed under load.
    expect(report["statuses"].keys).to match_array(%w[complete error])
    expect(report["statuses"].values.sum).to eq(tasks + warmup)
    expect(report["stuck"]).to eq([])
    expect(report["problems"]).to eq([])
    expect(report["deferred"]).to eq(0)
    expect(report["predicted_tasks"] + report["tasks_with_spurious_timeouts"]).to eq(tasks + warmup)
    expect(report["predicted_tasks"]).to be >= (tasks + warmup) * 0.95
    # Nothing left pending or in flight; every overrun timed out and its late completion was refused.
    expect(metrics).to include("pending_count" => 0, "waiting_in_dispatch" => 0)
    expect(report["in_flight"]).to eq(0)
    expect(log["open_executions"]).to eq(0)
    expect(metrics["total_timed_out"]).to eq(log["rejected_by_kind"].values.sum)
    expect(log["rejected_by_kind"]["overrun"]).to eq(log["by_kind"]["overrun"])
    expect(metrics["late_completions"]).to eq(metrics["total_timed_out"])
    expect(metrics["timeout_lag_samples"]).to eq(metrics["total_timed_out"])
    expect(metrics["timeout_lag_ms_p99"]).to be <= FaultHelpers::DEADLINE_MARGIN * 1000
    # Memory stays flat once warmed up.
    expect(report.dig("rss_kb", "after")).to be <= report.dig("rss_kb", "before") * 1.10
  end

  it "loses nothing with a completion channel (and a dispatch channel) of size 1: senders wait" do
    report = stress("--tasks", 600, "--threads", threads, "--warmup", 0, "--seed", seed + 1, "--window", 128,
                    "--retention", 400, "--spinners", 0, "--completion-buffer", 1, "--dispatch-buffer", 1,
                    timeout: 120)
    log = report.fetch("log")
    metrics = report.fetch("metrics")
    orchestrator = report.fetch("orchestrator")

    expect(report["failures"]).to eq([])
    expect(report["config"]).to include("completion_buffer_size" => 1, "dispatch_buffer_size" => 1)
    expect(report["statuses"].values.sum).to eq(600)
    expect(report["stuck"]).to eq([])
    # Every completion the handlers saw accepted reached the core's counters, and every
    # result sent (completions and timeouts) was recorded by the orchestrator.
    expect(metrics["total_completed"]).to eq(log["accepted_completions"])
    recorded = orchestrator.values_at("steps_succeeded", "step_failures", "stale_results").sum
    expect(recorded).to eq(metrics["total_completed"] + metrics["total_timed_out"])
    expect(orchestrator["tasks_completed"]).to eq(report["statuses"]["complete"])
    expect(orchestrator["tasks_failed"]).to eq(report["statuses"]["error"])
    expect(metrics).to include("pending_count" => 0, "waiting_in_dispatch" => 0)
    expect(report["in_flight"]).to eq(0)
  end
end
