# frozen_string_literal: true

require_relative "unit_helper"

RSpec.describe TaskerCore::TaskClient do
  let(:core) do
    Class.new do
      attr_reader :calls
      attr_accessor :waited, :status

      def initialize
        @calls = []
        @status = { "status" => "in_progress",
                    "steps" => [{ "name" => "validate", "status" => "complete" },
                                { "name" => "charge", "status" => "in_progress" }] }
      end

      def create_task(*args) = (@calls << [:create_task, *args]) && "task-uuid-1"
      def task_status(uuid) = (@calls << [:task_status, uuid]) && @status
      def wait_for_task(uuid, timeout) = (@calls << [:wait_for_task, uuid, timeout]) && @waited
    end.new
  end
  let(:client) { described_class.new(ffi: core) }

  it "creates a task, passing positional arguments to the core" do
    uuid = client.create_task(namespace: :ecommerce, name: "order_fulfillment", context: { "order" => 1 })
    expect(uuid).to eq("task-uuid-1")
    expect(core.calls).to eq([[:create_task, "ecommerce", "order_fulfillment", nil, { "order" => 1 }]])
  end

  it "validates create_task arguments with clear errors" do
    expect { client.create_task(namespace: "", name: "x") }.to raise_error(ArgumentError, /namespace must be a non-empty String/)
    expect { client.create_task(namespace: "a", name: nil) }.to raise_error(ArgumentError, /name must be a non-empty String, got nil/)
    expect { client.create_task(namespace: "a", name: "b", version: 1) }.to raise_error(ArgumentError, /version must be/)
    expect { client.create_task(namespace: "a", name: "b", context: [1]) }
      .to raise_error(ArgumentError, "context must be a Hash, got Array")
    expect(core.calls).to be_empty
  end

  it "returns the final status when the task finishes in time" do
    core.waited = { "status" => "complete", "steps" => [] }
    expect(client.wait_for_task("task-uuid-1", timeout: 2)).to eq("status" => "complete", "steps" => [])
    expect(core.calls).to eq([[:wait_for_task, "task-uuid-1", 2.0]])
  end

  it "raises TimeoutError naming the task, the timeout and its current state" do
    expect { client.wait_for_task("task-uuid-1", timeout: 0.5) }.to raise_error(
      TaskerCore::Errors::TimeoutError,
      "task task-uuid-1 did not finish within 0.5s (status: in_progress; steps: validate=complete, charge=in_progress)"
    )
  end

  it "returns the status when the task finished just after the wait gave up" do
    core.status = { "status" => "error", "steps" => [] }
    expect(client.wait_for_task("task-uuid-1", timeout: 0)["status"]).to eq("error")
  end

  it "validates the uuid and timeout" do
    expect { client.task_status(nil) }.to raise_error(ArgumentError, /task_uuid must be a non-empty String/)
    expect { client.wait_for_task("t", timeout: -1) }.to raise_error(ArgumentError, /timeout must be a non-negative number/)
    expect { client.wait_for_task("t", timeout: "5") }.to raise_error(ArgumentError, /timeout/)
  end
end
