# frozen_string_literal: true

require_relative "unit_helper"

RSpec.describe TaskerCore::StepHandler::Base do
  subject(:handler) { described_class.new(config: { "gateway" => "test" }) }

  it "keeps its initialization as config" do
    expect(handler.config).to eq("gateway" => "test")
    expect(described_class.new(config: nil).config).to eq({})
  end

  it "builds a success result with string keys" do
    expect(handler.success(result: { "id" => 1 }, metadata: { "source" => "cache" }))
      .to eq("success" => true, "result" => { "id" => 1 },
             "metadata" => { "retryable" => false, "custom" => { "source" => "cache" } })
  end

  it "builds a failure result with defaults" do
    result = handler.failure(message: "boom")
    expect(result).to eq("success" => false,
                         "error" => { "message" => "boom", "error_type" => "StepFailure", "retryable" => true,
                                      "backtrace" => [] },
                         "metadata" => { "retryable" => true, "custom" => {} })
  end

  it "builds a failure with a chosen type, retry flag and metadata" do
    result = handler.failure(message: "declined", error_type: "CardDeclined", retryable: false, metadata: { "c" => 1 })
    expect(result["error"].values_at("error_type", "retryable")).to eq(["CardDeclined", false])
    expect(result["metadata"]).to eq("retryable" => false, "custom" => { "c" => 1 })
  end

  it "rejects malformed builder arguments with clear errors" do
    expect { handler.failure(message: nil) }.to raise_error(ArgumentError, /message must be a String/)
    expect { handler.failure(message: "x", retryable: "no") }.to raise_error(ArgumentError, /retryable must be true or false/)
    expect { handler.success(metadata: []) }.to raise_error(ArgumentError, /metadata must be a Hash/)
  end

  it "raises NotImplementedError naming the subclass when #call is missing" do
    expect { UnitHandlers::NotImplemented.new.call(nil) }
      .to raise_error(NotImplementedError, /UnitHandlers::NotImplemented#call\(context\) is not implemented/)
  end
end

RSpec.describe TaskerCore::StepHandler::Context do
  let(:now) { [100.0] }
  let(:clock) { -> { now.first } }
  let(:ffi) { UnitSupport::FakeFFI.new }
  let(:stopping) { [false] }
  let(:event) do
    UnitSupport.build_event(step_name: "reserve", timeout_ms: 2_000, inputs: { "qty" => 2 }, attempts: 2,
                            dependency_results: { "validate" => { "ok" => true }, "price" => 12.5 })
  end
  let(:context) do
    described_class.new(event, received_at: 100.0, ffi: ffi, stopping: -> { stopping.first }, clock: clock)
  end

  it "exposes the event's identifiers and task data" do
    expect(context.event_id).to eq(event["event_id"])
    expect([context.task_uuid, context.step_uuid, context.correlation_id])
      .to eq(event.values_at("task_uuid", "step_uuid", "correlation_id"))
    expect([context.step_name, context.attempt, context.max_attempts]).to eq(["reserve", 2, 3])
    expect([context.namespace, context.task_name, context.task_version]).to eq(%w[ecommerce order_fulfillment 1.0.0])
    expect(context.task_context).to eq("order" => { "id" => 7 })
    expect(context.inputs).to eq("qty" => 2)
    expect(context.trace_id).to eq("4bf92f3577b34da6a3ce929d0e0e4736")
    expect(context.event).to equal(event)
  end

  it "returns dependency results by name (string or symbol)" do
    expect(context.dependency_result("validate")).to eq("ok" => true)
    expect(context.dependency_result(:price)).to eq(12.5)
    expect(context.dependency_results.keys).to contain_exactly("validate", "price")
  end

  it "names the missing parent and lists the available ones" do
    expect { context.dependency_result("ship") }
      .to raise_error(KeyError, "step 'reserve' has no dependency result for 'ship' (available: price, validate)")
  end

  it "computes the deadline from the receipt time and timeout_ms" do
    expect(context.deadline).to eq(102.0)
    now[0] = 101.25
    expect(context.remaining_seconds).to be_within(1e-9).of(0.75)
    now[0] = 103.0
    expect(context.remaining_seconds).to eq(0.0)
    expect(context).to be_expired
  end

  it "has no deadline when the event carries no timeout" do
    event.delete("timeout_ms")
    expect(context.deadline).to eq(Float::INFINITY)
    expect(context.remaining_seconds).to eq(Float::INFINITY)
  end

  describe "#cancelled?" do
    before { ffi.push(event) && ffi.poll_step_events }

    it "is false while the event is pending, in time, and the worker runs" do
      expect(context.cancelled?).to be(false)
    end

    it "is true once the deadline has passed" do
      now[0] = 102.0
      expect(context.cancelled?).to be(true)
    end

    it "is true when the worker is stopping" do
      stopping[0] = true
      expect(context.cancelled?).to be(true)
    end

    it "is true when the core no longer waits for the event, and stays true" do
      ffi.expire(event["event_id"])
      expect(context.cancelled?).to be(true)
      ffi.push(event) && ffi.poll_step_events # pending again: the answer is latched
      expect(context.cancelled?).to be(true)
    end

    it "asks the core at most once per check interval" do
      calls = 0
      allow(ffi).to receive(:event_cancelled?).and_wrap_original { |original, id| calls += 1; original.call(id) }
      3.times { context.cancelled? }
      expect(calls).to eq(1)
      now[0] += described_class::PENDING_CHECK_INTERVAL * 2
      context.cancelled?
      expect(calls).to eq(2)
    end
  end
end
