# frozen_string_literal: true

require_relative "unit_helper"

# Handlers written the upstream tasker-core way (call(context), its readers, results and
# error classes), run through the StepRunner against a fake core.
module UpstreamStyle
  # Reads the task through upstream's readers and returns a StepHandlerCallResult.
  class SquareHandler < TaskerCore::StepHandler::Base
    def call(context)
      n = context.get_input("even_number")
      logger.info("squaring #{n}")
      raise "odd" unless context.task.context[:even_number] == n

      TaskerCore::Types::StepHandlerCallResult.success(
        result: n * n,
        metadata: { step: context.workflow_step.name, retry_count: context.retry_count, config: context.step_config }
      )
    end
  end

  # Reads an ancestor's field and a missing one.
  class TotalHandler < TaskerCore::StepHandler::Base
    def call(context)
      success(result: { total: context.get_dependency_field("validate_cart", :total),
                        missing: context.get_dependency_result("nope"),
                        item: context.get_dependency_field("validate_cart", :items, 0, :sku),
                        own_results: context.workflow_step.results.dig("retry_count") })
    end
  end

  class DeclinedHandler < TaskerCore::StepHandler::Base
    def call(_context)
      raise TaskerCore::Errors::PermanentError.new("card declined", error_code: "CARD_DECLINED",
                                                                    context: { card: "visa" })
    end
  end

  class BusyHandler < TaskerCore::StepHandler::Base
    def call(_context)
      raise TaskerCore::Errors::RetryableError.new("busy", retry_after: 7, context: { queue: 3 })
    end
  end

  # A typo in an error's keywords: must fail permanently, not be retried.
  class TypoHandler < TaskerCore::StepHandler::Base
    def call(_context)
      raise TaskerCore::Errors::PermanentError.new("bad input", eror_code: "X")
    end
  end

  class CallResultErrorHandler < TaskerCore::StepHandler::Base
    def call(_context)
      TaskerCore::Types::StepHandlerCallResult.error(error_type: "ValidationError", message: "no items",
                                                     error_code: "NO_ITEMS", metadata: { context: { n: 0 } })
    end
  end

  class FlatFailureHandler < TaskerCore::StepHandler::Base
    def call(_context)
      { success: false, error_type: "PermanentError", message: "flat", error_code: "FLAT", retryable: false }
    end
  end

  class LogStepHandler < TaskerCore::StepHandler::Base
    def call(context)
      TaskerCore::Logger.instance.log_step(:warn, "step_ran", step_uuid: context.step_uuid,
                                                             step_name: context.workflow_step.name)
      success(result_data: "logged")
    end
  end
end

RSpec.describe "Upstream-style handlers on TaskerCore::StepHandler::Base" do
  let(:ffi) { UnitSupport::FakeFFI.new }
  let(:log) { StringIO.new }
  let(:runner) { TaskerCore::Worker::StepRunner.new(ffi: ffi, logger: UnitSupport.null_logger) }

  around do |example|
    previous = TaskerCore.logger
    TaskerCore.logger = Logger.new(log)
    example.run
  ensure
    TaskerCore.logger = previous
  end

  def run_step(callable, **event_options)
    event = ffi.push(UnitSupport.build_event(callable: callable, **event_options))
    outcome = runner.run(TaskerCore::StepHandler::Context.new(ffi.poll_step_events, ffi: ffi))
    [outcome.result, ffi.completions_for(event["event_id"]).size]
  end

  it "runs a handler using get_input, task.context with a Symbol, logger, workflow_step and step_config" do
    result, completions = run_step("UpstreamStyle::SquareHandler", task_context: { "even_number" => 6 },
                                                                    step_name: "linear_step_1",
                                                                    initialization: { "operation" => "square" })
    expect(completions).to eq(1)
    expect(result).to include("success" => true, "result" => 36)
    expect(result.dig("metadata", "custom", :step)).to eq("linear_step_1")
    expect(result.dig("metadata", "custom", :retry_count)).to eq(0)
    expect(result.dig("metadata", "custom", :config)).to eq("operation" => "square")
    expect(log.string).to include("squaring 6")
  end

  it "reads dependency fields with Symbol paths and answers nil for a step that is not there" do
    results = { "validate_cart" => { "total" => 124.76, "items" => [{ "sku" => "A-1" }] } }
    result, = run_step("UpstreamStyle::TotalHandler", dependency_results: results)
    expect(result["result"]).to eq(total: 124.76, missing: nil, item: "A-1", own_results: nil)
  end

  it "puts PermanentError's error_code and context on the recorded error, not retryable" do
    result, = run_step("UpstreamStyle::DeclinedHandler")
    expect(result["error"]).to include("message" => "card declined", "retryable" => false,
                                       "error_code" => "CARD_DECLINED", "context" => { card: "visa" })
  end

  it "puts RetryableError's retry_after and context on the error, retryable" do
    result, = run_step("UpstreamStyle::BusyHandler")
    expect(result["error"]).to include("retryable" => true, "retry_after" => 7, "context" => { queue: 3 })
  end

  it "fails a mistyped error keyword permanently, naming it, instead of retrying an ArgumentError" do
    result, = run_step("UpstreamStyle::TypoHandler")
    expect(result["error"]).to include("error_type" => "invalid_error_arguments", "retryable" => false)
    expect(result["error"]["message"]).to include("eror_code", "PermanentError", "bad input")
  end

  it "turns StepHandlerCallResult.error into a failure keeping error_code and context" do
    result, = run_step("UpstreamStyle::CallResultErrorHandler")
    expect(result["error"]).to include("error_type" => "ValidationError", "message" => "no items",
                                       "retryable" => false, "error_code" => "NO_ITEMS", "context" => { n: 0 })
  end

  it "reads upstream's flat failure Hash" do
    result, = run_step("UpstreamStyle::FlatFailureHandler")
    expect(result["error"]).to include("error_type" => "PermanentError", "message" => "flat",
                                       "error_code" => "FLAT", "retryable" => false)
  end

  it "writes TaskerCore::Logger.instance.log_step lines to TaskerCore.logger" do
    result, = run_step("UpstreamStyle::LogStepHandler", step_name: "notify")
    expect(result["result"]).to eq("logged")
    expect(log.string).to match(/WARN -- : step_ran \{"step_uuid":"[^"]+","step_name":"notify"\}/)
  end

  it "keeps today's API beside it" do
    handler = UnitHandlers::Succeed.new
    expect(handler.failure(message: "m")["error"]).to include("error_type" => "StepFailure", "retryable" => true)
    expect(handler.failure(message: "m", error_code: "E")["error"]["error_code"]).to eq("E")
    error = TaskerCore::Errors::PermanentError.new("x", error_type: "Custom", metadata: { "a" => 1 })
    expect([error.error_type, error.metadata, error.retryable]).to eq(["Custom", { "a" => 1 }, false])
    expect(TaskerCore::Errors::RetryableError.new("y", retry_after: 2).retry_after).to eq(2)
    expect(TaskerCore::PermanentError).to equal(TaskerCore::Errors::PermanentError)
  end
end

RSpec.describe TaskerCore::StepHandler::Context do
  let(:event) do
    UnitSupport.build_event(task_context: { "customer" => { "email" => "a@b.c" } },
                            dependency_results: { "parent" => { "n" => 1 } }, attempts: 3,
                            inputs: { "limit" => 5 }, initialization: { "mode" => "x" })
  end
  let(:context) { described_class.new(event, ffi: UnitSupport::FakeFFI.new) }

  it "offers upstream's readers next to today's" do
    expect(context.context[:customer][:email]).to eq("a@b.c")
    expect(context.task.context).to equal(context.task_context)
    expect(context.task.task_uuid).to eq(event["task_uuid"])
    expect([context.task.namespace, context.task.name, context.task.version])
      .to eq(%w[ecommerce order_fulfillment 1.0.0])
    expect(context.get_input(:customer)).to eq("email" => "a@b.c")
    expect(context.get_input_or(:absent, 4)).to eq(4)
    expect(context.get_dependency_result(:parent)[:n]).to eq(1)
    expect(context.get_dependency_result("none")).to be_nil
    expect { context.dependency_result("none") }.to raise_error(KeyError)
    expect(context.input_data[:limit]).to eq(5)
    expect(context.step_config).to eq("mode" => "x")
    expect(context.get_config(:mode)).to eq("x")
    expect([context.retry_count, context.max_retries, context.workflow_step.attempts]).to eq([2, 3, 3])
    expect(context.workflow_step.workflow_step_uuid).to eq(event["step_uuid"])
    expect(context.workflow_step.results).to be_empty.and be_frozen
  end
end

RSpec.describe TaskerCore::Types::StepHandlerCallResult do
  it "builds success and error results as upstream, and refuses a non-boolean retryable" do
    ok = described_class.success(result: 1, metadata: { a: 1 })
    expect([ok.success?, ok.result, ok.metadata, ok.checkpoint?]).to eq([true, 1, { a: 1 }, false])
    failed = described_class.error(error_type: "PermanentError", message: "m")
    expect([failed.success?, failed.retryable, failed.error_code]).to eq([false, false, nil])
    expect { described_class.error(error_type: "E", message: "m", retryable: "no") }
      .to raise_error(ArgumentError, /retryable/)
  end
end
