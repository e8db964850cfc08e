# frozen_string_literal: true

require_relative "unit_helper"

RSpec.describe TaskerCore::Worker::StepRunner do
  let(:ffi) { UnitSupport::FakeFFI.new }
  let(:stats) { TaskerCore::Worker::Stats.new }
  let(:runner) { described_class.new(ffi: ffi, stats: stats, logger: UnitSupport.null_logger) }

  # Polls the event (so the fake core holds it pending), runs it, returns [outcome, completions].
  def run_step(callable, **event_options)
    event = ffi.push(UnitSupport.build_event(callable: callable, **event_options))
    polled = ffi.poll_step_events
    outcome = runner.run(TaskerCore::StepHandler::Context.new(polled, ffi: ffi))
    [outcome, ffi.completions_for(event["event_id"])]
  end

  def error_of(outcome)
    outcome.result.fetch("error")
  end

  it "completes a success with the handler's result and timing metadata" do
    outcome, completions = run_step("UnitHandlers::Succeed", initialization: { "mode" => "fast" })
    expect(outcome.accepted).to be(true)
    expect(completions.size).to eq(1)
    result = completions.first[:result]
    expect(result).to include("success" => true, "result" => { "order_id" => 7, "config" => { "mode" => "fast" } })
    metadata = result["metadata"]
    expect(metadata["execution_time_ms"]).to be_a(Integer).and be >= 0
    # Wall-clock stamps are added by the core, which knows when it handed the event out.
    expect(metadata).not_to include("started_at", "completed_at")
    expect(metadata).to include("retryable" => false, "custom" => {})
  end

  it "passes a handler's failure through with its message intact" do
    outcome, completions = run_step("UnitHandlers::Fail")
    expect(completions.size).to eq(1)
    expect(error_of(outcome)).to include("message" => "out of stock", "error_type" => "OutOfStock", "retryable" => false)
    expect(outcome.result["metadata"]).to include("retryable" => false, "custom" => { "sku" => "A1" })
  end

  it "accepts a symbol-keyed Hash with a boolean success" do
    outcome, = run_step("UnitHandlers::ReturnSymbolKeys")
    expect(outcome.result).to include("success" => true, "result" => [1, 2])
    expect(outcome.result["metadata"]["custom"]).to eq("k" => 1)
  end

  {
    "UnitHandlers::ReturnNil" => /returned NilClass \(nil\)/,
    "UnitHandlers::ReturnString" => /returned String \("done"\)/,
    "UnitHandlers::ReturnHashWithoutSuccess" => /returned a Hash without a boolean "success" \(\{"result"=>42\}\)/
  }.each do |callable, message|
    it "fails #{callable.split('::').last} as a non-retryable invalid_handler_result" do
      outcome, completions = run_step(callable)
      expect(completions.size).to eq(1)
      expect(error_of(outcome)).to include("error_type" => "invalid_handler_result", "retryable" => false)
      expect(error_of(outcome)["message"]).to match(message).and include(callable, "'do_work'")
    end
  end

  it "turns a StandardError into a retryable failure with class, message and backtrace" do
    outcome, = run_step("UnitHandlers::RaiseStandard")
    error = error_of(outcome)
    expect(error).to include("message" => "bad order", "error_type" => "ArgumentError", "retryable" => true)
    expect(error["backtrace"]).to all(be_a(String))
    expect(error["backtrace"].first).to include("unit_helper.rb")
    expect(error["backtrace"].size).to be <= described_class::BACKTRACE_LIMIT
  end

  it "keeps RetryableError retryable and records retry_after" do
    outcome, = run_step("UnitHandlers::RaiseRetryable")
    expect(error_of(outcome)).to include("message" => "gateway busy", "retryable" => true,
                                         "error_type" => "TaskerCore::Errors::RetryableError")
    expect(outcome.result["metadata"]["custom"]).to eq("retry_after_seconds" => 2.5)
  end

  it "keeps PermanentError non-retryable with its error_type and metadata" do
    outcome, = run_step("UnitHandlers::RaisePermanent")
    expect(error_of(outcome)).to include("message" => "card declined", "error_type" => "CardDeclined", "retryable" => false)
    expect(outcome.result["metadata"]["custom"]).to eq("code" => 51)
  end

  it "fails a handler without #call (NotImplementedError) as non-retryable" do
    outcome, = run_step("UnitHandlers::NotImplemented")
    expect(error_of(outcome)).to include("error_type" => "NotImplementedError", "retryable" => false)
    expect(error_of(outcome)["message"]).to include("UnitHandlers::NotImplemented#call(context) is not implemented")
  end

  it "survives a non-StandardError exception (like SystemStackError) and fails it as non-retryable" do
    outcome, completions = run_step("UnitHandlers::RaiseNonStandard")
    expect(completions.size).to eq(1)
    expect(error_of(outcome)).to include("message" => "stack blown", "error_type" => "UnitHandlers::DeepException",
                                         "retryable" => false)
  end

  it "survives `exit` in a handler (SystemExit) and fails the step as non-retryable" do
    outcome, = run_step("UnitHandlers::CallsExit")
    expect(error_of(outcome)).to include("error_type" => "SystemExit", "retryable" => false, "message" => "exit")
  end

  it "fails an unknown handler class as handler_not_found naming the class" do
    outcome, completions = run_step("Nope::MissingHandler")
    expect(completions.size).to eq(1)
    expect(error_of(outcome)).to include("error_type" => "handler_not_found", "retryable" => false)
    expect(error_of(outcome)["message"]).to include("Nope::MissingHandler")
  end

  it "fails a constant that is not a handler as invalid_handler" do
    outcome, = run_step("UnitHandlers::NoCall")
    expect(error_of(outcome)).to include("error_type" => "invalid_handler", "retryable" => false)
  end

  it "completes again with invalid_handler_result when the core cannot convert the result (TypeError)" do
    outcome, completions = run_step("UnitHandlers::ReturnsProc")
    expect(completions.size).to eq(1) # the first, unconvertible result never reached the core
    sent = completions.first[:result]
    expect(sent).to equal(outcome.result)
    expect(sent["error"]).to include("error_type" => "invalid_handler_result", "retryable" => false)
    expect(sent["error"]["message"]).to include("TypeError", "cannot convert Proc", "'do_work'")
    expect(outcome.accepted).to be(true)
    expect(stats[:conversion_errors]).to eq(1)
  end

  it "completes again when the result holds NaN (ArgumentError)" do
    outcome, = run_step("UnitHandlers::ReturnsNaN")
    expect(outcome.result["error"]["message"]).to include("ArgumentError", "NaN")
  end

  it "reports a rejected completion (event already failed by the core) as not accepted" do
    event = ffi.push(UnitSupport.build_event(callable: "UnitHandlers::Succeed"))
    context = TaskerCore::StepHandler::Context.new(ffi.poll_step_events, ffi: ffi)
    ffi.expire(event["event_id"])
    expect(runner.run(context).accepted).to be(false)
  end

  it "does not raise when completing fails for another reason, and counts it" do
    allow(ffi).to receive(:complete_step_event).and_raise(TaskerCore::Errors::NotRunningError, "stopped")
    outcome, = run_step("UnitHandlers::Succeed")
    expect(outcome.accepted).to be(false)
    expect(stats[:completion_errors]).to eq(1)
  end

  it "fails an abandoned event with fail_event" do
    event = ffi.push(UnitSupport.build_event)
    context = TaskerCore::StepHandler::Context.new(ffi.poll_step_events, ffi: ffi)
    accepted = runner.fail_event(context, error_type: "worker_shutdown", message: "stopped", retryable: true)
    expect(accepted).to be(true)
    result = ffi.completions_for(event["event_id"]).first[:result]
    expect(result["error"]).to include("error_type" => "worker_shutdown", "retryable" => true, "message" => "stopped")
    expect(runner.fail_event(context, error_type: "worker_shutdown", message: "again", retryable: true)).to be(false)
  end
end
