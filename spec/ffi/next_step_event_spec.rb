# frozen_string_literal: true

RSpec.describe "TaskerCore::FFI.next_step_event and TaskerCore::StepEvent" do
  let(:ffi) { TaskerCore::FFI }

  let(:workflow) do
    define_workflow("lazy", steps: [
      { name: "parent", handler: "SpecHandlers::Echo" },
      { name: "child", handler: "SpecHandlers::ContextProbe", dependencies: ["parent"],
        initialization: { "region" => "eu" }, inputs: { "carrier" => "post" }, timeout_seconds: 1.5 }
    ])
  end
  let(:context) { { "order" => { "id" => "A-1", "items" => [{ "sku" => "x", "qty" => 2 }] } } }

  # Takes the next StepEvent of this example's task (the cleanup fails it if left pending).
  def next_step_event(task_uuid, timeout: 5)
    deadline = monotonic + timeout
    while monotonic < deadline
      event = ffi.next_step_event(0.05)
      next unless event

      @spec_events << event.to_h
      return event if event.task_uuid == task_uuid

      ffi.complete_step_event(event, { "success" => false, "error" => { "message" => "not this spec's" } })
    end
    raise "no StepEvent for task #{task_uuid} within #{timeout}s"
  end

  it "answers every field exactly as the poll_step_events Hash does" do
    uuid = create_task(workflow, context)
    complete_ok(next_event(uuid), { "total" => 3 })
    event = next_step_event(uuid)
    hash = event.to_h
    sequence = hash["task_sequence_step"]

    expect(event).to be_a(TaskerCore::StepEvent)
    expect([event.event_id, event.task_uuid, event.step_uuid, event.correlation_id, event.trace_id, event.span_id,
            event.timeout_ms]).to eq(hash.values_at("event_id", "task_uuid", "step_uuid", "correlation_id",
                                                    "trace_id", "span_id", "timeout_ms"))
    expect(event.timeout_ms).to eq(1500)
    expect([event.namespace, event.task_name, event.task_version, event.task_context])
      .to eq(sequence["task"].values_at("namespace", "name", "version", "context"))
    expect(event.task_context).to eq(context)
    expect([event.step_name, event.attempts, event.max_attempts, event.retryable, event.inputs])
      .to eq(sequence["workflow_step"].values_at("name", "attempts", "max_attempts", "retryable", "inputs"))
    expect(event.dependency_results).to eq("parent" => { "total" => 3 })
    expect(event.step_definition).to eq(sequence["step_definition"])
    expect(event.handler_callable).to eq("SpecHandlers::ContextProbe")
    expect(event.handler_initialization).to eq("region" => "eu")
    expect(ffi.complete_step_event(event, success_result)).to be(true)
    expect(wait_for(uuid)["status"]).to eq("complete")
  end

  it "converts a field anew on each call, and shares the frozen step definition" do
    uuid = create_task(workflow, context)
    event = next_step_event(uuid)

    first = event.task_context
    first["order"]["id"] = "changed"
    expect(event.task_context).to eq(context)
    expect(event.step_definition).to be_frozen
    expect(event.step_definition).to equal(event.step_definition)
    expect { event.step_definition["name"] = "x" }.to raise_error(FrozenError)
    complete_ok(event.to_h)
  end

  it "is completed with the event itself, once" do
    uuid = create_task(workflow, context)
    event = next_step_event(uuid)

    expect(ffi.event_pending?(event.event_id)).to be(true)
    expect(ffi.complete_step_event(event, success_result(1))).to be(true)
    expect(ffi.complete_step_event(event, success_result(1))).to be(false)
    expect(ffi.event_pending?(event.event_id)).to be(false)
  end

  it "keeps a malformed completion's event pending" do
    uuid = create_task(workflow, context)
    event = next_step_event(uuid)

    expect { ffi.complete_step_event(event, { "success" => "yes" }) }
      .to raise_error(TypeError, /result\["success"\] must be true or false/)
    expect(ffi.event_pending?(event.event_id)).to be(true)
    expect(ffi.complete_step_event(event, success_result)).to be(true)
  end

  it "cannot be made from Ruby, and takes a timeout like poll_step_events" do
    expect { TaskerCore::StepEvent.new }.to raise_error(TypeError)
    expect(ffi.next_step_event).to be_nil
    expect(elapsed { expect(ffi.next_step_event(0.2)).to be_nil }).to be_between(0.18, 1.0)
    expect { ffi.next_step_event(-1) }.to raise_error(ArgumentError, /timeout_seconds/)
  end

  it "gives the event back when a wait is interrupted with it in hand, so it is not lost" do
    uuid = create_task(workflow, context)
    complete_ok(next_event(uuid))
    thread = Thread.new { ffi.next_step_event(5) }
    thread.report_on_exception = false
    thread.kill.join(5)

    event = next_step_event(uuid)
    expect(event.step_name).to eq("child")
    expect(event.attempts).to eq(1)
    complete_ok(event.to_h)
    expect(wait_for(uuid)["status"]).to eq("complete")
  end
end
