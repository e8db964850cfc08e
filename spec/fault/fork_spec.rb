# frozen_string_literal: true

require_relative "fault_helper"

# Process.fork with the core running (spec/fault/fixtures/fork_scenario.rb, in a fresh
# process): the child cannot use the parent's core and is told why; a Worker started in
# the child gets a fresh core; the parent keeps working; nothing deadlocks (every child
# wait is bounded and overruns are killed and reported).
RSpec.describe "Process.fork with the core running" do
  let(:forked) { /tasker_core was started in process (\d+), and this process \((\d+)\) is a fork of it/ }

  # The scenario runs once for all examples of this group.
  before(:context) { @scenario = run_scenario }

  attr_reader :scenario

  def run_scenario
    result = run_ruby(file: File.join(FaultHelpers::FIXTURES, "fork_scenario.rb"), timeout: 90)
    raise "the fork scenario hung and was killed; stderr:\n#{result.err}" if result.killed
    raise "the fork scenario failed (#{result.status.inspect}):\n#{result.err}\n#{result.out}" unless result.success?

    result.json
  end

  def expect_finished_child(child)
    expect(child).to include("exit" => 0, "killed" => false)
    expect(child["value"]).not_to have_key("crashed"), child["value"].inspect
  end

  it "makes FFI calls that need the core raise NotRunningError naming the fork, in every child" do
    parent = scenario.fetch("parent_pid")
    probes = scenario.fetch("probes")

    expect(probes.size).to eq(3)
    probes.each do |probe|
      expect_finished_child(probe)
      calls = probe.fetch("value")
      %w[poll_step_events poll_step_events(0.1) create_task task_status wait_for_task].each do |name|
        expect(calls[name]).to include("error" => "TaskerCore::Errors::NotRunningError"), "#{name}: #{calls[name]}"
        match = forked.match(calls[name]["message"])
        expect(match).not_to be_nil, "#{name}: #{calls[name]['message']}"
        expect(match[1].to_i).to eq(parent)
        expect(match[2].to_i).not_to eq(parent)
        expect(calls[name]["message"]).to include("call TaskerCore::FFI.bootstrap_worker again in this process")
      end
      # Calls that do not need the core answer without it.
      expect(calls["complete_step_event"]).to eq("value" => false)
      expect(calls["event_pending?"]).to eq("value" => false)
      expect(calls["ffi_dispatch_metrics"]).to eq("value" => false)
      expect(calls["stop_worker"]).to eq("value" => "not_running")
      expect(calls.dig("worker_status", "value", "running")).to be false
      expect(calls.dig("worker_status", "value", "message")).to match(forked)
    end
  end

  it "tells a grandchild about the fork as well" do
    outer = scenario.fetch("grandchild")
    expect_finished_child(outer)
    inner = outer.fetch("value")
    expect_finished_child(inner)
    expect(inner["value"].values).to all(include("error" => "TaskerCore::Errors::NotRunningError",
                                                 "message" => a_string_matching(forked)))
  end

  it "starts a fresh core for a Worker started in the child, which runs the child's tasks" do
    parent = scenario.fetch("parent_pid")
    child = scenario.fetch("child")

    expect_finished_child(child)
    value = child.fetch("value")
    expect(value["pid"]).not_to eq(parent)
    expect(value["bootstrap"]).to eq("started")
    expect(value["worker_id"]).to eq("worker-#{value['pid']}-1")
    expect(value["tasks"]).to eq([["complete", value["pid"]]] * 5)
    # Stopping the Worker inherited from the parent leaves the child's own core running.
    expect(value["inherited_stop"]).to eq("abandoned" => [], "stopped_core" => false)
    expect(value["running_after_inherited_stop"]).to be true
    expect(value["tasks_after"]).to eq([["complete", value["pid"]]] * 3)
    expect(value["own_stop"]).to eq("abandoned" => [], "stopped_core" => true)
  end

  it "keeps the parent working before, during and after its children run" do
    parent = scenario.fetch("parent_pid")

    expect(scenario["first"]).to eq("complete")
    expect(scenario["busy"]).to eq([["complete", parent]] * 60)
    expect(scenario["parent_during_child"]).to eq([["complete", parent]] * 20)
    expect(scenario["parent_after"]).to eq([["complete", parent]] * 5)
    expect(scenario["parent_stop"]).to eq("abandoned" => [], "stopped_core" => true)
  end
end
