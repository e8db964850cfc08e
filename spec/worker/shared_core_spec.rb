# frozen_string_literal: true

# Several TaskerCore::Workers in one process share its one core: stopping one leaves the
# others working, and running? is true only while a worker really takes work.
RSpec.describe "TaskerCore::Workers sharing the process's core" do
  let(:ref) { define_workflow("shared", steps: [{ name: "only", handler: "SpecHandlers::Echo" }]) }

  before do
    ref
    TaskerCore::FFI.stop_worker # so the first worker below starts the core itself
  end

  it "keeps working after another worker stops, and the last one out stops the core" do
    first = start_worker(concurrency: 1)
    second = start_worker(concurrency: 1)
    expect([first.started_core?, second.started_core?]).to eq([true, false])

    expect(first.stop(timeout: 1)).to include(stopped_core: false)
    expect(first.running?).to be(false)
    expect(second.running?).to be(true)
    expect(wait_for(create_task(ref))["status"]).to eq("complete")

    expect(second.stop(timeout: 1)).to include(stopped_core: true)
    expect(TaskerCore::FFI.worker_status["running"]).to be(false)
  end

  it "says it is not running once the core under it was stopped" do
    worker = start_worker(concurrency: 1)
    expect(worker.running?).to be(true)
    TaskerCore::FFI.stop_worker
    expect(worker.running?).to be(false)
  end

  it "is not running after a handler stopped it, though it said so before" do
    stopping = define_workflow("stopper", steps: [{ name: "only", handler: "SpecHandlers::StopsItsWorker" }])
    worker = start_worker(concurrency: 2)
    SpecHandlers.stop_target = worker
    create_task(stopping)
    wait_until("the handler stopped its worker") { SpecHandlers.observations.records.any? }
    expect(SpecHandlers.observations.records.first).to include("before" => true, "after" => false)
    expect(worker.running?).to be(false)
  ensure
    SpecHandlers.stop_target = nil
  end
end

RSpec.describe "TaskerCore::Worker#start checking the handlers of its templates" do
  it "refuses to start when a step names a handler class that is not defined, naming step, class and file" do
    set = new_template_set
    ref = set.add("typo", steps: [{ name: "charge", handler: "Payments::ChargeHandlr" }])
    worker = TaskerCore::Worker.new(logger: spec_logger, environment: "test", template_path: set.dir, concurrency: 1)

    expect { worker.start }.to raise_error(TaskerCore::Errors::ConfigurationError) { |error|
      expect(error.message).to include("step charge of spec/#{ref.name} 1.0.0", ref.path,
                                       "handler class Payments::ChargeHandlr is not defined")
    }
    expect(worker.running?).to be(false)
  end
end
