# frozen_string_literal: true

require_relative "fault_helper"

# A handler that keeps running past its deadline: the core fails the attempt at the
# deadline; the worker's watchdog gets the Ruby thread back (an interrupt after
# hung_handler_grace_ms, then a replacement thread if the handler ignores it).
RSpec.describe "Hung handlers", :core do
  let(:recorder) { FaultHandlers.recorder }
  # The "test" environment's hung_handler_grace_ms.
  let(:grace) { 1.0 }
  let(:deadline) { 0.2 }

  def quick_workflow
    define_workflow("after_hang", steps: [fault_step("only", "Quick")])
  end

  def runs_of(step)
    recorder.records("ran").select { |r| r["step"] == step }
  end

  it "interrupts a handler stuck past its deadline plus the grace with TimeoutError, and the thread serves the next task" do
    restart_core(concurrency: 1, max_concurrent_handlers: 1)
    hang = define_workflow("hang", steps: [fault_step("stuck", "Hang", timeout: deadline)])
    quick = quick_workflow
    worker = start_worker(concurrency: 1)
    expect(worker.bootstrap_info["config"]).to include("hung_handler_grace_ms" => 1000, "max_concurrent_handlers" => 1)

    hung = create_task(hang)
    recorder.wait_for("started")
    other = create_task(quick)
    statuses = [wait_for(hung, timeout: 10), wait_for(other, timeout: 10)]

    interrupted = recorder.wait_for("interrupted").first
    expect(interrupted["error_class"]).to eq("TaskerCore::Errors::TimeoutError")
    expect(interrupted["message"]).to include("interrupted by the worker watchdog")
    stuck_for = interrupted["at"] - interrupted["received_at"]
    expect(stuck_for).to be_between(deadline + grace - 0.05, deadline + grace + 2.0)
    expect(recorder.records("woke")).to be_empty

    expect(statuses.map { |s| s["status"] }).to eq(%w[complete complete])
    expect(step_of(statuses.first, "stuck")).to include("attempts" => 2, "result" => { "attempt" => 2 })
    # One thread: the other task and the retry could only run once the interrupt freed it.
    expect(runs_of("only").size).to eq(1)
    expect([runs_of("only").first["at"], runs_of("stuck").first["at"]].min).to be > interrupted["at"]

    stats = worker.stats
    expect(stats).to include(interrupts: 1, replacements: 0, processor_deaths: 0, rejected_completions: 1)
    expect(stats[:threads].size).to eq(1)
    expect(stats[:threads].first).to include(alive: true, retired: false)
  end

  it "retires the thread of a handler that swallows the interrupt, starts a replacement, and other tasks still complete" do
    restart_core(concurrency: 1, max_concurrent_handlers: 1)
    swallow = define_workflow("swallow", steps: [fault_step("stubborn", "SwallowInterrupt", timeout: deadline,
                                                                                           inputs: { "after" => 2.5 })])
    quick = quick_workflow
    worker = start_worker(concurrency: 1)

    stubborn = create_task(swallow)
    recorder.wait_for("started")
    others = Array.new(3) { create_task(quick) }
    statuses = ([stubborn] + others).map { |uuid| wait_for(uuid, timeout: 10) }

    expect(statuses.map { |s| s["status"] }).to eq(%w[complete] * 4)
    expect(step_of(statuses.first, "stubborn")).to include("attempts" => 2, "result" => { "attempt" => 2 })
    interrupted = recorder.wait_for("interrupted").first
    expect(runs_of("only").size).to eq(3)
    expect(runs_of("only").map { |r| r["at"] }.min).to be > interrupted["at"]
    expect(recorder.records("returned")).to be_empty # still sleeping after it swallowed the interrupt

    stats = worker.stats
    expect(stats).to include(interrupts: 1, replacements: 1, processor_deaths: 0)
    retired = stats[:threads].select { |t| t[:retired] }
    expect(retired.size).to eq(1)
    expect(retired.first).to include(alive: true, busy: true, step_name: "stubborn")
    expect(stats[:threads].count { |t| !t[:retired] }).to eq(1)

    # When it finally returns, its completion is refused and its thread leaves.
    recorder.wait_for("returned", timeout: 5)
    wait_until("the retired thread exits") { worker.stats[:threads].none? { |t| t[:retired] } }
    expect(worker.stats).to include(rejected_completions: 1)
    expect(worker.stats[:threads].size).to eq(1)
  end

  it "turns context.cancelled? true once the deadline has passed" do
    ref = define_workflow("cancel_watch", steps: [fault_step("watcher", "WatchCancellation", timeout: 0.3)])
    start_worker(concurrency: 2)

    status = wait_for(create_task(ref), timeout: 5)

    started = recorder.wait_for("started").first
    cancelled = recorder.wait_for("cancelled").first
    expect(started).to include("cancelled" => false, "pending" => true)
    # True at the deadline: by the worker's clock, or because the core (whose deadline
    # started at the poll, a little earlier) no longer waits for the event.
    expect(cancelled).to include("cancelled" => true)
    expect(cancelled["remaining"]).to be < 0.05
    expect(cancelled["after"]).to be_between(0.25, 0.3 + 0.5)
    expect(status["status"]).to eq("complete")
    expect(step_of(status, "watcher")).to include("attempts" => 2, "result" => { "attempt" => 2 })
  end
end
