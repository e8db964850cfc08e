# frozen_string_literal: true

# The watchdog only gets Ruby threads back from handlers that overrun their deadline (the
# core has already failed those attempts on its own); hung_handler_grace_ms is 1000 in
# the test environment.
RSpec.describe "TaskerCore::Worker watchdog against the real core" do
  it "interrupts a handler still running a grace period after its deadline and reuses its thread" do
    hung = define_workflow("hung", steps: [
      { name: "hangs", handler: "SpecHandlers::Sleeper", inputs: { "seconds" => 10 }, timeout_seconds: 0.3,
        retry: { max_attempts: 1 } }
    ])
    quick = define_workflow("quick", steps: [{ name: "quick", handler: "SpecHandlers::Echo" }])
    worker = start_worker(concurrency: 1)
    started = monotonic

    status = wait_for(create_task(hung))
    expect(monotonic - started).to be < 1.0 # the core failed it at the deadline
    expect(step_of(status, "hangs")["error"]).to include("error_type" => "handler_timeout")

    later = wait_for(create_task(quick), timeout: 5) # needs the only thread back
    expect(later["status"]).to eq("complete")
    expect(monotonic - started).to be_between(1.0, 4.0)
    wait_until("the watchdog has counted its interrupt") { worker.stats[:interrupts] == 1 }
    expect(worker.stats).to include(interrupts: 1, replacements: 0, processor_deaths: 0)
    expect(log_output.string).to match(/step 'hangs' .* was still running 1\.0s after its 300 ms deadline/)
  end

  it "replaces the thread of a handler that ignores the interrupt" do
    stubborn = define_workflow("stubborn", steps: [
      { name: "ignores", handler: "SpecHandlers::Stubborn", inputs: { "seconds" => 8 }, timeout_seconds: 0.2,
        retry: { max_attempts: 1 } }
    ])
    quick = define_workflow("quick", steps: [{ name: "quick", handler: "SpecHandlers::Echo" }])
    worker = start_worker(concurrency: 1)
    stuck = create_task(stubborn)
    expect(wait_for(stuck)["status"]).to eq("error")

    later = wait_for(create_task(quick), timeout: 6)
    expect(later["status"]).to eq("complete")
    wait_until("the watchdog has counted the replacement") { worker.stats[:replacements] == 1 }
    expect(worker.stats).to include(interrupts: 1, replacements: 1)
    expect(SpecHandlers.observations.records(stuck)).to contain_exactly(include("interrupted" => /watchdog/))
    expect(worker.stats[:threads].count { |t| t[:retired] }).to eq(1)
    SpecHandlers.observations.flag!("release")
  end
end
