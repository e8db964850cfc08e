# frozen_string_literal: true

# What the core hands upstream-style handlers, at the FFI: ancestors beyond the parents
# by name, handler data that answers Symbol keys, and Integers of any size both ways.
RSpec.describe "TaskerCore::StepEvent for upstream handlers" do
  let(:ffi) { TaskerCore::FFI }
  let(:chain) do
    define_workflow("chain", steps: [
      { name: "first", handler: "SpecHandlers::Echo" },
      { name: "second", handler: "SpecHandlers::Echo", dependencies: ["first"] },
      { name: "third", handler: "SpecHandlers::Echo", dependencies: ["second"],
        initialization: { "mode" => "strict" }, inputs: { "limit" => 3 } }
    ])
  end

  def step_event(task_uuid, timeout: 5)
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

  it "gives a grandparent's result by name, converted on request, and nil for others" do
    uuid = create_task(chain, { "order" => { "id" => 7 } })
    ffi.complete_step_event(step_event(uuid), success_result({ "total" => 12.5, "items" => [{ "sku" => "A" }] }))
    ffi.complete_step_event(step_event(uuid), success_result(2))
    third = step_event(uuid)

    expect(third.dependency_results.keys).to eq(["second"])
    expect(third.ancestor_names).to eq(["first"])
    expect(third.ancestor_result("first")).to eq("total" => 12.5, "items" => [{ "sku" => "A" }])
    expect(third.ancestor_result(:first)[:items][0][:sku]).to eq("A")
    expect(third.ancestor_result("second")).to eq(2)
    expect(third.ancestor_result("zeroth")).to be_nil
    expect(third.ancestor_result("first")).not_to equal(third.ancestor_result("first"))
    ffi.complete_step_event(third, success_result(nil))
  end

  it "hands context, inputs, results and initialization over as IndifferentHashes" do
    uuid = create_task(chain, { "order" => { "id" => 7 } })
    ffi.complete_step_event(step_event(uuid), success_result({ "a" => { "b" => 1 } }))
    ffi.complete_step_event(step_event(uuid), success_result({ "c" => 2 }))
    third = step_event(uuid)

    indifferent = TaskerCore::Types::IndifferentHash
    expect(third.task_context).to be_an_instance_of(indifferent)
    expect(third.task_context[:order]).to be_an_instance_of(indifferent)
    expect(third.task_context[:order][:id]).to eq(7)
    expect(third.inputs[:limit]).to eq(3)
    expect(third.dependency_results[:second][:c]).to eq(2)
    expect(third.handler_initialization[:mode]).to eq("strict")
    expect(third.handler_initialization).to be_frozen
    # The poll_step_events Hash stays plain.
    expect(third.to_h["task_sequence_step"]["task"]["context"]).to be_an_instance_of(Hash)
    ffi.complete_step_event(third, success_result(nil))
  end

  it "keeps Integers beyond 64 bits exact in context and results, negative ones too" do
    big = (2**100) + 7
    uuid = create_task(chain, { "big" => big, "small" => -(2**80), "fraction" => 0.1 })
    first = step_event(uuid)
    expect(first.task_context["big"]).to eq(big)
    expect(first.task_context["small"]).to eq(-(2**80))
    expect(first.task_context["fraction"]).to eq(0.1)
    ffi.complete_step_event(first, success_result({ "square" => big * big, "list" => [2**64, -(2**64) - 1] }))
    second = step_event(uuid)
    expect(second.dependency_results["first"]["square"]).to eq(big * big)
    expect(second.to_h.dig("task_sequence_step", "dependency_results", "first", "list")).to eq([2**64, -(2**64) - 1])
    ffi.complete_step_event(second, success_result(2**64))
    ffi.complete_step_event(step_event(uuid), success_result(nil))
    status = wait_for(uuid)
    expect(step_of(status, "first")["result"]["square"]).to eq(big * big)
    expect(step_of(status, "second")["result"]).to eq(2**64)
  end

  it "still refuses what is not JSON-like, leaving the event completable" do
    uuid = create_task(chain, {})
    event = step_event(uuid)
    expect { ffi.complete_step_event(event, success_result(Float::NAN)) }.to raise_error(ArgumentError, /NaN/)
    expect(ffi.complete_step_event(event, success_result(1))).to be(true)
  end
end
