# frozen_string_literal: true

RSpec.describe "The step event Hash of TaskerCore::FFI.poll_step_events" do
  let(:ffi) { TaskerCore::FFI }
  let(:uuid_format) { CoreHelpers::UUID }

  let(:workflow) do
    define_workflow("layout", steps: [
      { name: "parent", handler: "SpecHandlers::Echo", retry: { retryable: true, max_attempts: 4, backoff_base_ms: 20,
                                                                max_backoff_ms: 300 },
        timeout_seconds: 2.5 },
      { name: "child", handler: "SpecHandlers::ContextProbe", dependencies: ["parent"],
        initialization: { "region" => "eu" }, inputs: { "carrier" => "post", "limits" => [1, 2.5, nil] },
        retry: { retryable: false, max_attempts: 1 } }
    ])
  end
  let(:context) { { "order" => { "id" => "A-1", "items" => [{ "sku" => "x", "qty" => 2 }] }, "flag" => true } }

  # Every Hash key at any depth.
  def all_keys(value)
    case value
    when Hash then value.keys + value.values.flat_map { |v| all_keys(v) }
    when Array then value.flat_map { |v| all_keys(v) }
    else []
    end
  end

  it "has exactly the documented keys, all Strings, with UUID and W3C trace identifiers" do
    uuid = create_task(workflow, context)
    event = next_event(uuid)

    expect(event.keys).to contain_exactly("event_id", "task_uuid", "step_uuid", "correlation_id", "trace_id",
                                          "span_id", "timeout_ms", "task_sequence_step")
    expect(all_keys(event)).to all(be_a(String))
    expect(event.values_at("event_id", "task_uuid", "step_uuid", "correlation_id")).to all(match(uuid_format))
    expect(event["task_uuid"]).to eq(uuid)
    expect(event["trace_id"]).to match(/\A\h{32}\z/)
    expect(event["trace_id"]).not_to eq("0" * 32)
    expect(event["span_id"]).to match(/\A\h{16}\z/)
    expect(event["span_id"]).not_to eq("0" * 16)
    expect(event["timeout_ms"]).to eq(2500)
    expect(event["task_sequence_step"].keys).to contain_exactly("task", "workflow_step", "dependency_results",
                                                                "step_definition")
    complete_ok(event)
  end

  it "describes the task, the step, its parents' results and its definition" do
    uuid = create_task(workflow, context)
    parent = next_event(uuid)
    complete_ok(parent, { "total" => 12.5, "tags" => %w[a b], "nested" => { "ok" => true, "none" => nil } })
    child = next_event(uuid)
    sequence = child["task_sequence_step"]
    status = ffi.task_status(uuid)

    expect(sequence["task"]).to eq("task_uuid" => uuid, "namespace" => workflow.namespace, "name" => workflow.name,
                                   "version" => "1.0.0", "context" => context)
    expect(sequence["workflow_step"]).to eq(
      "step_uuid" => step_of(status, "child")["step_uuid"], "name" => "child", "attempts" => 1,
      "max_attempts" => 1, "retryable" => false, "inputs" => { "carrier" => "post", "limits" => [1, 2.5, nil] }
    )
    expect(sequence["dependency_results"]).to eq(
      "parent" => { "total" => 12.5, "tags" => %w[a b], "nested" => { "ok" => true, "none" => nil } }
    )
    expect(sequence["step_definition"]).to eq(
      "name" => "child",
      "handler" => { "callable" => "SpecHandlers::ContextProbe", "initialization" => { "region" => "eu" } },
      "dependencies" => ["parent"],
      "retry" => { "retryable" => false, "max_attempts" => 1, "backoff_base_ms" => 10, "max_backoff_ms" => 200 },
      "timeout_seconds" => 5.0
    )
    expect(child["step_uuid"]).to eq(step_of(status, "child")["step_uuid"])
    complete_ok(child)
  end

  it "carries the step's own retry policy and the task-wide correlation and trace ids" do
    uuid = create_task(workflow, context)
    parent = next_event(uuid)
    definition = parent.dig("task_sequence_step", "step_definition")

    expect(definition["retry"]).to eq("retryable" => true, "max_attempts" => 4, "backoff_base_ms" => 20,
                                      "max_backoff_ms" => 300)
    expect(definition["timeout_seconds"]).to eq(2.5)
    expect(definition["dependencies"]).to eq([])
    expect(definition["handler"]).to eq("callable" => "SpecHandlers::Echo", "initialization" => nil)
    expect(parent.dig("task_sequence_step", "dependency_results")).to eq({})
    expect(parent.dig("task_sequence_step", "workflow_step", "inputs")).to eq({})

    complete_ok(parent, 1)
    child = next_event(uuid)
    expect(child["correlation_id"]).to eq(parent["correlation_id"])
    expect(child["correlation_id"]).to eq(ffi.task_status(uuid)["correlation_id"])
    expect(child["trace_id"]).to eq(parent["trace_id"])
    expect(child["span_id"]).not_to eq(parent["span_id"])
    expect(child["event_id"]).not_to eq(parent["event_id"])
    complete_ok(child)
  end

  it "gives every attempt a new event id and the attempt number" do
    uuid = create_task(workflow, context)
    first = next_event(uuid)
    failure = { "success" => false, "error" => { "message" => "try again", "retryable" => true } }
    expect(ffi.complete_step_event(first["event_id"], failure)).to be(true)
    second = next_event(uuid)

    expect(event_attempts(first)).to eq(1)
    expect(event_attempts(second)).to eq(2)
    expect(second["step_uuid"]).to eq(first["step_uuid"])
    expect(second["event_id"]).not_to eq(first["event_id"])
    complete_ok(second)
  end

  it "hands out Hashes the caller owns (mutating one changes nothing in the core)" do
    uuid = create_task(workflow, context)
    parent = next_event(uuid)
    parent["task_sequence_step"]["task"]["context"]["order"]["id"] = "CHANGED"
    complete_ok(parent, 1)
    child = next_event(uuid)

    expect(child.dig("task_sequence_step", "task", "context")).to eq(context)
    complete_ok(child)
  end
end
