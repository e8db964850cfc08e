# frozen_string_literal: true

require_relative "unit_helper"

RSpec.describe TaskerCore::HandlerRegistry do
  subject(:registry) { described_class.new }

  it "instantiates a handler class with its initialization as config" do
    handler = registry.resolve("UnitHandlers::Succeed", { "retries" => 2 })
    expect(handler).to be_a(UnitHandlers::Succeed)
    expect(handler.config).to eq("retries" => 2)
  end

  it "caches one instance per callable and initialization" do
    first = registry.resolve("UnitHandlers::Succeed", { "a" => 1 })
    expect(registry.resolve("UnitHandlers::Succeed", { "a" => 1 })).to equal(first)
    expect(registry.resolve("UnitHandlers::Succeed", { "a" => 2 })).not_to equal(first)
    expect(registry.resolve("::UnitHandlers::Succeed", nil)).to be_a(UnitHandlers::Succeed)
    expect(registry.size).to eq(3)
  end

  it "builds handlers whose initialize takes no config" do
    expect(registry.resolve("UnitHandlers::ReturnSymbolKeys")).to be_a(UnitHandlers::ReturnSymbolKeys)
  end

  it "reports an unknown constant as handler_not_found naming the class" do
    expect { registry.resolve("Missing::PaymentHandler") }.to raise_error(TaskerCore::Errors::HandlerNotFoundError) { |e|
      expect(e.message).to include("Missing::PaymentHandler is not defined")
      expect([e.error_type, e.retryable]).to eq(["handler_not_found", false])
    }
  end

  it "reports a constant that is not a class, or lacks #call, as invalid_handler" do
    expect { registry.resolve("UnitHandlers::NotAClass") }.to raise_error(TaskerCore::Errors::InvalidHandlerError) { |e|
      expect(e.message).to include("UnitHandlers::NotAClass is a Integer, not a class")
      expect([e.error_type, e.retryable]).to eq(["invalid_handler", false])
    }
    expect { registry.resolve("UnitHandlers::NoCall") }
      .to raise_error(TaskerCore::Errors::InvalidHandlerError, /does not define #call\(context\)/)
  end

  it "rejects callables that are not constant names" do
    expect { registry.resolve(nil) }.to raise_error(TaskerCore::Errors::InvalidHandlerError, /nil is not a Ruby class name/)
    expect { registry.resolve("rust_handler") }.to raise_error(TaskerCore::Errors::InvalidHandlerError, /"rust_handler"/)
  end
end
