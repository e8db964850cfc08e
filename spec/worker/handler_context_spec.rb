# frozen_string_literal: true

RSpec.describe "TaskerCore::StepHandler::Context against the real core" do
  let(:workflow) do
    define_workflow("probe", steps: [
      { name: "parent", handler: "SpecHandlers::Echo" },
      { name: "child", handler: "SpecHandlers::ContextProbe", dependencies: ["parent"], timeout_seconds: 4,
        inputs: { "carrier" => "demo-post", "tiers" => [1, 2] }, initialization: { "mode" => "strict" },
        retry: { max_attempts: 2 } }
    ])
  end

  it "answers every accessor from the step event" do
    start_worker(concurrency: 2)
    context = { "order" => { "id" => "O-7", "items" => [{ "sku" => "A", "qty" => 1 }] }, "vip" => true }
    uuid = create_task(workflow, context)

    status = wait_for(uuid)
    expect(status["status"]).to eq("complete")
    record = step_of(status, "child")["result"]

    expect(record).to include(
      "task_uuid" => uuid, "step_uuid" => step_of(status, "child")["step_uuid"], "step_name" => "child",
      "attempt" => 1, "max_attempts" => 2, "namespace" => workflow.namespace, "task_name" => workflow.name,
      "task_version" => "1.0.0", "task_context" => context,
      "inputs" => { "carrier" => "demo-post", "tiers" => [1, 2] },
      "dependency_results" => { "parent" => { "step" => "parent", "attempt" => 1 } },
      "parent" => { "step" => "parent", "attempt" => 1 },
      "timeout_ms" => 4000, "cancelled" => false, "handler_initialization" => { "mode" => "strict" }
    )
    expect(record["event_id"]).to match(CoreHelpers::UUID)
    expect(record["deadline_after_receipt"]).to be_within(0.001).of(4.0)
    expect(record["remaining_seconds"]).to be_between(3.0, 4.0)
    expect(record["missing_dependency_error"])
      .to eq("step 'child' has no dependency result for 'no_such_step' (available: parent)")
  end

  it "counts attempts across retries" do
    ref = define_workflow("attempts", steps: [
      { name: "flaky", handler: "SpecHandlers::Flaky", inputs: { "succeed_on" => 2 },
        retry: { max_attempts: 2, backoff_base_ms: 10 } }
    ])
    start_worker(concurrency: 1)

    expect(step_of(wait_for(create_task(ref)), "flaky")["result"]).to eq("attempt" => 2)
  end
end
