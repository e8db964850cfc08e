# frozen_string_literal: true

RSpec.describe "TaskerCore::FFI in a process that never bootstrapped" do
  it "raises NotRunningError for task functions and polling, and reports not running elsewhere" do
    report = RubySubprocess.json(<<~'RUBY')
      require "json"
      require "securerandom"
      require "tasker_core"
      f = TaskerCore::FFI
      def outcome
        { "value" => yield }
      rescue StandardError => e
        { "error" => e.class.name, "message" => e.message }
      end
      puts JSON.dump(
        "create_task" => outcome { f.create_task("demo", "linear_workflow", nil, {}) },
        "ruby_create_task" => outcome { TaskerCore.create_task(namespace: "demo", name: "linear_workflow") },
        "task_status" => outcome { f.task_status(SecureRandom.uuid) },
        "wait_for_task" => outcome { f.wait_for_task(SecureRandom.uuid, 0.1) },
        "poll" => outcome { f.poll_step_events },
        "complete" => outcome { f.complete_step_event(SecureRandom.uuid, { "success" => true }) },
        "pending" => outcome { f.event_pending?(SecureRandom.uuid) },
        "metrics" => outcome { f.ffi_dispatch_metrics["running"] },
        "status" => outcome { f.worker_status },
        "stop" => outcome { f.stop_worker }
      )
    RUBY

    not_running = { "error" => "TaskerCore::Errors::NotRunningError", "message" => /bootstrap_worker/ }
    %w[create_task ruby_create_task task_status wait_for_task poll].each do |call|
      expect(report[call]).to include(not_running), "#{call}: #{report[call].inspect}"
    end
    expect(report["complete"]).to eq("value" => false)
    expect(report["pending"]).to eq("value" => false)
    expect(report["metrics"]).to eq("value" => false)
    expect(report["status"]["value"]).to include("running" => false, "bootstrapped" => false,
                                                 "message" => /bootstrap_worker/)
    expect(report["stop"]).to eq("value" => { "status" => "not_running" })
  end
end
