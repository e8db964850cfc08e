# frozen_string_literal: true

RSpec.describe "TaskerCore::FFI under GC stress and across fork" do
  let(:ffi) { TaskerCore::FFI }
  let(:workflow) do
    define_workflow("parent", steps: [
      { name: "first", handler: "SpecHandlers::Echo" },
      { name: "second", handler: "SpecHandlers::Echo", dependencies: ["first"] }
    ])
  end

  it "converts events, results, statuses and errors correctly with a GC at every allocation" do
    # In a fresh process: GC.stress costs a full collection per allocation, which is cheap
    # only with a small heap.
    set = new_template_set
    ref = set.add("gc", steps: [
      { name: "first", handler: "SpecHandlers::Echo", inputs: { "list" => [1, "two", { "three" => 3.0 }] } },
      { name: "second", handler: "SpecHandlers::Echo", dependencies: ["first"] }
    ])
    report = RubySubprocess.json(<<~RUBY, timeout: 60)
      require "json"
      require "tasker_core"
      f = TaskerCore::FFI
      f.bootstrap_worker(environment: "test", template_path: #{set.dir.inspect})
      context = { "order" => { "id" => "G-1", "lines" => Array.new(3) { |i| { "n" => i, "tag" => "t\#{i}" } } } }
      result = { success: true, result: { "echo" => [:sym, 1.5, nil, true, { "deep" => ["x" * 100] }] },
                 metadata: { execution_time_ms: 1, custom: { "k" => "v" } } }
      GC.stress = true
      uuid = f.create_task(#{ref.namespace.inspect}, #{ref.name.inspect}, nil, context)
      first = f.poll_step_events(5)
      bad = begin
        f.complete_step_event(first["event_id"], { success: true, result: { "o" => Object.new } })
      rescue TypeError => e
        e.message
      end
      accepted = f.complete_step_event(first["event_id"], result)
      second = f.poll_step_events(5)
      f.complete_step_event(second["event_id"], { "success" => true, "result" => second["task_sequence_step"] })
      status = f.wait_for_task(uuid, 5)
      metrics = f.ffi_dispatch_metrics
      worker = f.worker_status
      GC.stress = false
      puts JSON.dump("first" => first, "second" => second, "bad" => bad, "accepted" => accepted, "status" => status,
                     "context" => context, "metrics" => metrics["total_completed"], "worker" => worker["running"])
    RUBY

    first = report["first"]
    second = report["second"]
    expect(first.dig("task_sequence_step", "task", "context")).to eq(report["context"])
    expect(first.dig("task_sequence_step", "workflow_step", "inputs")).to eq("list" => [1, "two", { "three" => 3.0 }])
    expect(report["bad"]).to match(/result\["result"\]\["o"\]: Object is not JSON-like/)
    expect(report["accepted"]).to be(true)
    expect(second.dig("task_sequence_step", "dependency_results", "first"))
      .to eq("echo" => ["sym", 1.5, nil, true, { "deep" => ["x" * 100] }])
    expect(report["status"]["status"]).to eq("complete")
    expect(step_of(report["status"], "second")["result"]).to eq(second["task_sequence_step"])
    expect(report.values_at("metrics", "worker")).to eq([2, true])
  end

  it "makes a forked child bootstrap its own core and leaves the parent's alone" do
    parent_task = create_task(workflow)
    set = new_template_set
    ref = set.add("child", steps: [{ name: "only", handler: "SpecHandlers::Echo" }])
    reader, writer = IO.pipe

    pid = fork do
      reader.close
      report = {}
      begin
        report["status"] = ffi.worker_status
        begin
          ffi.create_task(ref.namespace, ref.name, nil, {})
        rescue StandardError => e
          report["create_before_bootstrap"] = e.class.name
        end
        report["bootstrap"] = ffi.bootstrap_worker(environment: "test", template_path: set.dir)["status"]
        uuid = ffi.create_task(ref.namespace, ref.name, nil, {})
        event = ffi.poll_step_events(5)
        ffi.complete_step_event(event["event_id"], { "success" => true, "result" => Process.pid })
        done = ffi.wait_for_task(uuid, 5)
        report["child_task"] = [done["status"], done["steps"][0]["result"]]
        report["stop"] = ffi.stop_worker["status"]
      rescue Exception => e # rubocop:disable Lint/RescueException -- reported to the parent
        report["error"] = "#{e.class}: #{e.message}"
      end
      writer.write(Marshal.dump([report, Process.pid]))
      writer.close
      exit!(0)
    end
    writer.close
    report, child_pid = Marshal.load(reader.read) # rubocop:disable Security/MarshalLoad -- our own child
    Process.wait(pid)

    expect(report["error"]).to be_nil
    expect(report["status"]).to include("running" => false, "bootstrapped" => false,
                                         "message" => /is a fork of it.*bootstrap_worker again/)
    expect(report["create_before_bootstrap"]).to eq("TaskerCore::Errors::NotRunningError")
    expect(report["bootstrap"]).to eq("started")
    expect(report["child_task"]).to eq(["complete", child_pid])
    expect(report["stop"]).to eq("stopped")

    expect(ffi.worker_status).to include("running" => true, "pid" => Process.pid)
    2.times { complete_ok(next_event(parent_task)) }
    expect(wait_for(parent_task)["status"]).to eq("complete")
  ensure
    reader&.close
  end
end
