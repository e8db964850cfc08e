# frozen_string_literal: true

require_relative "unit_helper"

RSpec.describe TaskerCore::Errors do
  it "roots every error at TaskerCore::Errors::Error < StandardError" do
    %i[ConfigurationError TemplateError TaskNotFoundError NotRunningError InternalError TimeoutError
       RemovedApiError StepHandlerError RetryableError PermanentError].each do |name|
      expect(described_class.const_get(name).ancestors).to include(described_class::Error, StandardError)
    end
  end

  it "makes RetryableError retryable with an optional retry_after" do
    error = described_class::RetryableError.new("busy", retry_after: 3)
    expect([error.retryable, error.retry_after, error.error_type, error.message])
      .to eq([true, 3, "TaskerCore::Errors::RetryableError", "busy"])
    expect(error).to be_a(described_class::StepHandlerError)
  end

  it "makes PermanentError non-retryable and keeps a custom error_type and metadata" do
    error = described_class::PermanentError.new("declined", error_type: "CardDeclined", metadata: { "code" => 51 })
    expect([error.retryable, error.error_type, error.metadata]).to eq([false, "CardDeclined", { "code" => 51 }])
  end

  it "defaults error_type to the subclass name" do
    stub_const("OutOfStock", Class.new(described_class::PermanentError))
    expect(OutOfStock.new("none left").error_type).to eq("OutOfStock")
  end

  it "answers a non-boolean retryable and a negative retry_after with a permanent InvalidErrorArguments" do
    expect { described_class::StepHandlerError.new("x", retryable: "yes") }
      .to raise_error(described_class::InvalidErrorArguments, /retryable must be true or false/)
    expect { described_class::RetryableError.new("x", retry_after: -1) }
      .to raise_error(described_class::InvalidErrorArguments, /retry_after/) { |e| expect(e.retryable).to be(false) }
  end
end

RSpec.describe TaskerCore::FFI do
  it "names complete_step_event as the replacement of the removed send_step_completion_event" do
    expect { described_class.send_step_completion_event("step-uuid", { "success" => true }) }
      .to raise_error(TaskerCore::Errors::RemovedApiError,
                      /TaskerCore::FFI\.complete_step_event\(event\['event_id'\], result\)/)
  end
end
