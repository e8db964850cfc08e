# frozen_string_literal: true

require "securerandom"

# The task controls: cancel, retry, idempotency keys, delayed starts, priorities,
# per-template limits, listing and stats. On the embedded store here; spec/postgres runs
# this file again on PostgreSQL (TASKER_SPEC_DATABASE_URL), except the embedded store's own
# limits. The same behaviours are checked for every store by the Rust contract suite
# (crates/tasker-worker/tests).
RSpec.describe "Task controls (TaskerCore.cancel_task, retry_task, tasks, stats, create_task options)" do
  let(:ffi) { TaskerCore::FFI }

  def create(ref, context = {}, **options)
    track_task(TaskerCore.create_task(namespace: ref.namespace, name: ref.name, context: context, **options))
  end

  describe "finishing" do
    let(:workflow) do
      define_workflow("three_roots", steps: [
                        { name: "a", handler: "SpecHandlers::Echo", retry: { max_attempts: 1 } },
                        { name: "b", handler: "SpecHandlers::Echo" },
                        { name: "c", handler: "SpecHandlers::Echo", dependencies: ["b"] }
                      ])
    end

    it "keeps a failed task in_progress until its running siblings finish, then error with the rest skipped" do
      uuid = create(workflow)
      a = next_event(uuid)
      b = next_event(uuid)
      a, b = b, a if event_step_name(a) == "b"
      failure = { "success" => false, "error" => { "message" => "boom", "retryable" => false } }
      expect(ffi.complete_step_event(a["event_id"], failure)).to be(true)

      status = ffi.task_status(uuid)
      expect(status).to include("status" => "in_progress", "completed_at" => nil)
      expect(ffi.wait_for_task(uuid, 0.1)).to be_nil, "wait_for_task returned while b was still running"

      complete_ok(b, "charged")
      final = wait_for(uuid)
      expect(final["status"]).to eq("error")
      expect(final["completed_at"]).not_to be_nil
      expect(step_of(final, "b")).to include("status" => "complete", "result" => "charged")
      expect(step_of(final, "c")).to include("status" => "skipped", "attempts" => 0)
    end
  end

  describe "cancel_task" do
    let(:workflow) do
      define_workflow("cancel", steps: [
                        { name: "first", handler: "SpecHandlers::Echo" },
                        { name: "second", handler: "SpecHandlers::Echo", dependencies: ["first"] }
                      ])
    end

    it "cancels a task whose steps have not started at once, with the reason kept" do
      uuid = create(workflow, {}, delay: 60)
      answer = TaskerCore.cancel_task(uuid, reason: "order withdrawn")
      expect(answer).to include("task_uuid" => uuid, "outcome" => "cancelled", "status" => "cancelled")
      status = ffi.task_status(uuid)
      expect(status).to include("status" => "cancelled", "cancel_reason" => "order withdrawn")
      expect(status["steps"].map { |s| s["status"] }).to eq(%w[skipped skipped])
      expect(TaskerCore.wait_for_task(uuid, timeout: 1)["status"]).to eq("cancelled")
    end

    it "lets a running handler see cancelled? turn true, keeps its result, then cancels the rest" do
      uuid = create(workflow)
      event = next_event(uuid)
      expect(ffi.event_cancelled?(event["event_id"])).to be(false)

      answer = TaskerCore.cancel_task(uuid)
      expect(answer).to include("outcome" => "cancelling", "status" => "in_progress", "in_flight" => 1)
      expect(ffi.event_cancelled?(event["event_id"])).to be(true)
      context = TaskerCore::StepHandler::Context.new(event)
      expect(context.cancelled?).to be(true)

      complete_ok(event, "partial")
      final = wait_for(uuid)
      expect(final["status"]).to eq("cancelled")
      expect(step_of(final, "first")).to include("status" => "complete", "result" => "partial")
      expect(step_of(final, "second")["status"]).to eq("skipped")
      expect(poll_event(uuid, timeout: 0.2)).to be_nil
    end

    it "answers already_finished for a finished task and TaskNotFoundError for an unknown one" do
      uuid = create(workflow)
      2.times { complete_ok(next_event(uuid)) }
      wait_for(uuid)
      expect(TaskerCore.cancel_task(uuid)).to include("outcome" => "already_finished", "status" => "complete")
      expect { TaskerCore.cancel_task(SecureRandom.uuid) }.to raise_error(TaskerCore::Errors::TaskNotFoundError)
      expect { TaskerCore.cancel_task("nope") }.to raise_error(ArgumentError, /not a UUID/)
    end
  end

  describe "retry_task" do
    it "runs the failed step again with a fresh attempt budget, then what was skipped" do
      workflow = define_workflow("retried", steps: [
                                   { name: "pay", handler: "SpecHandlers::Echo", retry: { max_attempts: 1 } },
                                   { name: "ship", handler: "SpecHandlers::Echo", dependencies: ["pay"] }
                                 ])
      uuid = create(workflow)
      failure = { "success" => false, "error" => { "message" => "gateway down", "retryable" => true } }
      ffi.complete_step_event(next_event(uuid)["event_id"], failure)
      expect(wait_for(uuid)["status"]).to eq("error")
      expect(TaskerCore.retry_task(uuid)).to include("outcome" => "retrying", "failed_steps" => 1,
                                                     "skipped_steps" => 1)

      again = next_event(uuid)
      expect([event_step_name(again), event_attempts(again)]).to eq(["pay", 1])
      complete_ok(again)
      complete_ok(next_event(uuid))
      final = wait_for(uuid)
      expect(final["status"]).to eq("complete")
      expect(step_of(final, "pay")["history"].map { |h| h["outcome"] }).to eq(%w[failure success])
      expect(TaskerCore.retry_task(uuid)).to include("outcome" => "not_failed", "status" => "complete")
    end
  end

  describe "create_task options" do
    let(:workflow) { define_workflow("options", steps: [{ name: "only", handler: "SpecHandlers::Echo" }]) }

    it "answers the first task for a repeated idempotency key, also from many threads at once" do
      key = "order-#{SecureRandom.hex(4)}"
      uuids = Array.new(8) { Thread.new { create(workflow, {}, idempotency_key: key) } }.map(&:value)
      expect(uuids.uniq.size).to eq(1)
      expect(ffi.task_status(uuids.first)["idempotency_key"]).to eq(key)
      complete_ok(next_event(uuids.first))
      wait_for(uuids.first)
      expect(create(workflow, {}, idempotency_key: key)).to eq(uuids.first)
      expect(poll_event(uuids.first, timeout: 0.1)).to be_nil, "the repeated key ran the task again"
    end

    it "starts no step before run_at (or delay)" do
      uuid = create(workflow, {}, run_at: Time.now + 0.4)
      expect(ffi.task_status(uuid)["run_at"]).to match(/Z\z/)
      expect(poll_event(uuid, timeout: 0.2)).to be_nil
      started = monotonic
      complete_ok(next_event(uuid, timeout: 5))
      expect(monotonic - started).to be > 0.05
      delayed = create(workflow, {}, delay: 0.3)
      expect(poll_event(delayed, timeout: 0.1)).to be_nil
      complete_ok(next_event(delayed))
    end

    it "claims ready steps of higher-priority tasks first" do
      restart_core(max_concurrent_handlers: 1)
      blocker = create(workflow)
      held = next_event(blocker)
      low = create(workflow, {}, priority: 0)
      high = create(workflow, {}, priority: 9)
      complete_ok(held)
      first = next_event(nil)
      expect(first["task_uuid"]).to eq(high)
      complete_ok(first)
      complete_ok(next_event(low))
    end

    it "rejects bad options with errors naming them" do
      expect { create(workflow, {}, run_at: Time.now, delay: 1) }.to raise_error(ArgumentError, /not both/)
      expect { create(workflow, {}, priority: 2**40) }.to raise_error(ArgumentError, /priority must be an Integer between/)
      expect { create(workflow, {}, idempotency_key: "") }.to raise_error(ArgumentError, /idempotency_key/)
      expect { create(workflow, { a: 1, "a" => 2 }) }
        .to raise_error(ArgumentError, /context: the key "a" appears twice, as a String and as a Symbol/)
      expect { ffi.create_task(workflow.namespace, workflow.name, nil, {}, { colour: 1 }) }
        .to raise_error(ArgumentError, /unknown create_task option :colour/)
    end
  end

  describe "max_in_flight" do
    it "runs at most that many steps of the template at once" do
      ref = templates.add("capped", steps: [{ name: "only", handler: "SpecHandlers::Echo" }],
                                    extra: { max_in_flight: 2 })
      load_templates(templates.dir)
      uuids = Array.new(4) { create(ref) }
      held = [next_event(nil), next_event(nil)]
      expect(poll_event(nil, timeout: 0.2)).to be_nil, "a third step started past max_in_flight: 2"
      complete_ok(held.first)
      third = next_event(nil)
      [held.last, third].each { |e| complete_ok(e) }
      complete_ok(next_event(nil))
      uuids.each { |uuid| expect(wait_for(uuid)["status"]).to eq("complete") }
    end
  end

  describe "tasks and stats" do
    let(:workflow) { define_workflow("listed", steps: [{ name: "only", handler: "SpecHandlers::Echo" }]) }

    it "lists tasks newest first, filtered, a page at a time" do
      uuids = Array.new(5) { create(workflow).tap { sleep 0.002 } }
      complete_ok(next_event(uuids.first))
      wait_for(uuids.first)

      listed = TaskerCore.tasks(name: workflow.name)
      expect(listed.map { |t| t["task_uuid"] }).to eq(uuids.reverse)
      expect(listed.last).to include("status" => "complete", "namespace" => workflow.namespace,
                                     "version" => "1.0.0", "priority" => 0)
      expect(listed.last.keys).to contain_exactly("task_uuid", "status", "namespace", "name", "version", "priority",
                                                  "created_at", "completed_at")
      page = TaskerCore.tasks(name: workflow.name, limit: 2)
      rest = TaskerCore.tasks(name: workflow.name, limit: 2, before: page.last["task_uuid"])
      expect((page + rest).map { |t| t["task_uuid"] }).to eq(uuids.reverse.first(4))
      expect(TaskerCore.tasks(name: workflow.name, status: "complete").map { |t| t["task_uuid"] }).to eq([uuids.first])
      expect { TaskerCore.tasks(status: "finished") }.to raise_error(ArgumentError, /not a task status/)
      expect { TaskerCore.tasks(limit: 0) }.to raise_error(ArgumentError, /limit/)
    end

    it "counts tasks by status and steps in flight, and lists this process's worker" do
      uuid = create(workflow)
      event = next_event(uuid)
      stats = TaskerCore.stats
      expect(stats["backend"]).to eq(CoreHelpers::SPEC_DATABASE_URL ? "postgres" : "embedded")
      expect(stats["tasks"].keys).to match_array(ffi::TASK_STATUSES)
      expect(stats["tasks"]["in_progress"]).to be >= 1
      expect(stats["steps_in_flight"]).to be >= 1
      expect(stats["pending_events"]).to be >= 1
      expect(stats["throughput"].size).to eq(60)
      expect(stats.keys).to include("waiting_in_dispatch", "starvation_detected", "timeout_lag_ms_p99", "workers_alive")
      complete_ok(event)
      wait_for(uuid)
      expect(TaskerCore.stats["throughput"].last(2).sum { |m| m["succeeded"] }).to be >= 1

      workers = TaskerCore.workers
      expect(workers.size).to eq(1)
      expect(workers.first).to include("pid" => Process.pid, "worker_id" => ffi.worker_status["worker_id"])
      expect(workers.first["heartbeat_age_ms"]).to be < 5000
    end
  end

  describe "limits of the embedded store", :embedded_only do
    def with_storage(toml)
      Dir.mktmpdir("tasker_core_storage") do |root|
        FileUtils.cp_r(File.expand_path("../../config/tasker/base", __dir__), root)
        FileUtils.mkdir_p(File.join(root, "environments", "test"))
        File.write(File.join(root, "environments", "test", "storage.toml"), toml)
        yield root
      end
    end

    let(:script_prelude) do
      <<~RUBY
        require "json"
        require "tmpdir"
        require "tasker_core"
        dir = Dir.mktmpdir
        File.write(File.join(dir, "one.yaml"), <<~YAML)
          name: one
          namespace_name: limits
          version: 1.0.0
          steps:
            - { name: only, handler: { callable: Noop } }
        YAML
        TaskerCore::FFI.bootstrap_worker(template_path: dir)
        ffi = TaskerCore::FFI
      RUBY
    end

    it "says an evicted task was evicted, and when, unlike an unknown one" do
      with_storage("[storage.embedded]\nfinished_task_retention_seconds = 0\n") do |root|
        out = RubySubprocess.json(<<~RUBY, env: { "TASKER_CONFIG_ROOT" => root })
          #{script_prelude}
          uuid = TaskerCore.create_task(namespace: "limits", name: "one")
          event = ffi.poll_step_events(5)
          ffi.complete_step_event(event["event_id"], { "success" => true })
          deadline = Time.now + 10
          evicted = nil
          until evicted || Time.now > deadline
            begin
              ffi.task_status(uuid)
              sleep 0.05
            rescue TaskerCore::Errors::TaskEvictedError => e
              evicted = e
            end
          end
          unknown = begin
            ffi.task_status("00000000-0000-4000-8000-000000000000")
          rescue TaskerCore::Errors::TaskNotFoundError => e
            e
          end
          puts JSON.generate("evicted" => evicted&.message, "evicted_class" => evicted&.class&.name,
                             "unknown" => unknown.message, "unknown_class" => unknown.class.name)
        RUBY
        expect(out["evicted_class"]).to eq("TaskerCore::Errors::TaskEvictedError")
        expect(out["evicted"]).to match(/finished and was evicted at \d{4}-.*retention of 0 s/)
        expect(out["unknown_class"]).to eq("TaskerCore::Errors::TaskNotFoundError")
        expect(out["unknown"]).to match(/unknown task .*no task with this uuid exists/)
      end
    end

    it "refuses create_task past max_unfinished_tasks with BackpressureError, creating nothing" do
      with_storage("[storage.embedded]\nmax_unfinished_tasks = 2\n") do |root|
        out = RubySubprocess.json(<<~RUBY, env: { "TASKER_CONFIG_ROOT" => root })
          #{script_prelude}
          2.times { TaskerCore.create_task(namespace: "limits", name: "one", delay: 60) }
          error = begin
            TaskerCore.create_task(namespace: "limits", name: "one")
            nil
          rescue TaskerCore::Errors::BackpressureError => e
            e.message
          end
          puts JSON.generate("error" => error, "tasks" => TaskerCore.tasks.size)
        RUBY
        expect(out["error"]).to match(/too many unfinished tasks \(2, the limit is 2\).*max_unfinished_tasks/)
        expect(out["tasks"]).to eq(2)
      end
    end
  end
end
