# frozen_string_literal: true

require "securerandom"
require "timeout"

RSpec.describe "TaskerCore::FFI task functions (create_task, task_status, wait_for_task)" do
  let(:ffi) { TaskerCore::FFI }
  let(:workflow) { define_workflow("tasks", steps: [{ name: "only", handler: "SpecHandlers::Echo" }]) }

  describe "create_task" do
    it "returns a UUID and a pending or running task with every step listed" do
      uuid = create_task(workflow, { "n" => 1 })
      status = ffi.task_status(uuid)

      expect(uuid).to match(CoreHelpers::UUID)
      expect(status).to include("task_uuid" => uuid, "namespace" => workflow.namespace, "name" => workflow.name,
                                "version" => "1.0.0", "completed_at" => nil)
      expect(%w[pending in_progress]).to include(status["status"])
      expect(status["created_at"]).to match(/\A\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\z/)
      expect(status["steps"].map { |s| s["name"] }).to eq(["only"])
      complete_ok(next_event(uuid))
      expect(wait_for(uuid)["completed_at"]).to match(/Z\z/)
    end

    it "raises TemplateError naming an unknown namespace" do
      expect { ffi.create_task("no_such_namespace", workflow.name, nil, {}) }
        .to raise_error(TaskerCore::Errors::TemplateError, /namespace "no_such_namespace" is unknown/)
    end

    it "raises TemplateError naming an unknown name and listing the namespace's templates" do
      expect { ffi.create_task(workflow.namespace, "no_such_template", nil, {}) }
        .to raise_error(TaskerCore::Errors::TemplateError, /no task template spec\/no_such_template.*#{workflow.name}/)
    end

    it "raises TemplateError naming an unknown or malformed version and listing the available ones" do
      expect { ffi.create_task(workflow.namespace, workflow.name, "9.9.9", {}) }
        .to raise_error(TaskerCore::Errors::TemplateError, /has no version 9\.9\.9 \(available versions: 1\.0\.0\)/)
      expect { ffi.create_task(workflow.namespace, workflow.name, "1.0", {}) }
        .to raise_error(TaskerCore::Errors::TemplateError, /requested version "1\.0" is not a semantic version/)
    end

    it "selects a version, and the highest one when none is given" do
      base = "versioned_#{SecureRandom.hex(4)}"
      %w[1.0.0 2.1.0 1.5.0].each do |version|
        templates.add(base, name: base, version: version,
                            steps: [{ name: "only", handler: "SpecHandlers::Echo", inputs: { "v" => version } }])
      end
      load_templates(templates.dir)
      ref = { namespace: "spec", name: base }

      { "1.5.0" => "1.5.0", nil => "2.1.0", "1.0.0" => "1.0.0" }.each do |asked, expected|
        uuid = create_task(ref, {}, version: asked)
        event = next_event(uuid)
        expect(event.dig("task_sequence_step", "task", "version")).to eq(expected)
        expect(event.dig("task_sequence_step", "workflow_step", "inputs")).to eq("v" => expected)
        expect(ffi.task_status(uuid)["version"]).to eq(expected)
        complete_ok(event)
      end
    end

    it "accepts Symbols for namespace and name" do
      uuid = track_task(ffi.create_task(workflow.namespace.to_sym, workflow.name.to_sym, nil, { a: :b }))
      event = next_event(uuid)

      expect(event.dig("task_sequence_step", "task", "context")).to eq("a" => "b")
      complete_ok(event)
    end

    it "raises TypeError for a context that is not a Hash" do
      expect { ffi.create_task(workflow.namespace, workflow.name, nil, [1, 2]) }
        .to raise_error(TypeError, /context must be a Hash, got Array/)
      expect { ffi.create_task(workflow.namespace, workflow.name, nil, nil) }
        .to raise_error(TypeError, /context must be a Hash, got NilClass/)
    end

    it "raises TypeError for a non-String namespace, name or version" do
      expect { ffi.create_task(1, workflow.name, nil, {}) }.to raise_error(TypeError, /namespace must be a String/)
      expect { ffi.create_task(workflow.namespace, nil, nil, {}) }.to raise_error(TypeError, /name must be a String/)
      expect { ffi.create_task(workflow.namespace, workflow.name, 1.0, {}) }
        .to raise_error(TypeError, /version must be a String/)
    end

    it "names the key path of a context value that is not JSON-like" do
      expect { ffi.create_task(workflow.namespace, workflow.name, nil, { "order" => { "items" => [1, Object.new] } }) }
        .to raise_error(TypeError, /\Acontext\["order"\]\["items"\]\[1\]: Object is not JSON-like/)
      expect { ffi.create_task(workflow.namespace, workflow.name, nil, { "price" => Float::NAN }) }
        .to raise_error(ArgumentError, /\Acontext\["price"\]: NaN is not a JSON number/)
      expect { ffi.create_task(workflow.namespace, workflow.name, nil, { 3 => "x" }) }
        .to raise_error(TypeError, /\Acontext: Hash keys must be Strings or Symbols, got Integer/)
    end

    it "creates no task when the context is refused" do
      created = ffi.worker_status["orchestrator"]["tasks_created"]

      expect { ffi.create_task(workflow.namespace, workflow.name, nil, { "p" => proc {} }) }.to raise_error(TypeError)
      expect(ffi.worker_status["orchestrator"]["tasks_created"]).to eq(created)
    end

    it "is checked in Ruby by TaskerCore.create_task before reaching the core" do
      expect { TaskerCore.create_task(namespace: "", name: "x") }.to raise_error(ArgumentError, /namespace/)
      expect { TaskerCore.create_task(namespace: "spec", name: "x", context: []) }
        .to raise_error(ArgumentError, /context must be a Hash, got Array/)
      uuid = track_task(TaskerCore.create_task(namespace: workflow.namespace, name: workflow.name,
                                               context: { "k" => 1 }))
      complete_ok(next_event(uuid))
      expect(TaskerCore.wait_for_task(uuid, timeout: 5)["status"]).to eq("complete")
    end
  end

  describe "task_status" do
    it "raises TaskNotFoundError for an unknown uuid" do
      unknown = SecureRandom.uuid

      expect { ffi.task_status(unknown) }.to raise_error(TaskerCore::Errors::TaskNotFoundError, /#{unknown}/)
      expect { TaskerCore.task_status(unknown) }.to raise_error(TaskerCore::Errors::TaskNotFoundError)
    end

    it "raises ArgumentError for a malformed uuid and TypeError for a non-String" do
      expect { ffi.task_status("1234") }.to raise_error(ArgumentError, /task_uuid is not a UUID: "1234"/)
      expect { ffi.task_status(1234) }.to raise_error(TypeError, /task_uuid must be a String/)
    end
  end

  describe "wait_for_task" do
    it "returns nil at the FFI level when the task is not finished in time" do
      uuid = create_task(workflow)
      result = :not_called
      took = elapsed { result = ffi.wait_for_task(uuid, 0.3) }

      expect(result).to be_nil
      expect(took).to be_between(0.28, 1.5)
    end

    it "raises TaskerCore::Errors::TimeoutError naming the task and its steps through TaskerCore.wait_for_task" do
      uuid = create_task(workflow)

      expect { TaskerCore.wait_for_task(uuid, timeout: 0.2) }
        .to raise_error(TaskerCore::Errors::TimeoutError, /task #{uuid} did not finish within 0\.2s.*only=/)
    end

    it "returns the final status as soon as the task finishes" do
      uuid = create_task(workflow)
      event = next_event(uuid)
      finisher = Thread.new do
        sleep 0.1
        complete_ok(event, 7)
      end
      status = nil
      took = elapsed { status = ffi.wait_for_task(uuid, 5) }
      finisher.join

      expect(status).to include("status" => "complete")
      expect(step_of(status, "only")["result"]).to eq(7)
      expect(took).to be < 2
    end

    it "is interruptible" do
      uuid = create_task(workflow)

      took = elapsed { expect { Timeout.timeout(0.2) { ffi.wait_for_task(uuid, 10) } }.to raise_error(Timeout::Error) }
      expect(took).to be < 1
    end

    it "is interrupted by Ctrl-C (SIGINT) while the process's only thread is blocked in it" do
      set = new_template_set
      ref = set.add("sigint", steps: [{ name: "only", handler: "SpecHandlers::Echo" }])
      report = RubySubprocess.interrupt_blocked_call(
        setup: <<~RUBY,
          TaskerCore::FFI.bootstrap_worker(environment: "test", template_path: #{set.dir.inspect})
          uuid = TaskerCore::FFI.create_task(#{ref.namespace.inspect}, #{ref.name.inspect}, nil, {})
        RUBY
        call: "TaskerCore::FFI.wait_for_task(uuid, 20)"
      )

      expect(report["outcome"]).to eq("Interrupt")
      expect(report["seconds"]).to be < 2
    end

    it "rejects a bad timeout and an unknown task" do
      uuid = create_task(workflow)

      expect { ffi.wait_for_task(uuid, nil) }.to raise_error(ArgumentError, /needs a timeout/)
      expect { ffi.wait_for_task(uuid, -1) }.to raise_error(ArgumentError, /timeout_seconds/)
      expect { ffi.wait_for_task(uuid, "1") }.to raise_error(TypeError, /timeout_seconds/)
      expect { ffi.wait_for_task(SecureRandom.uuid, 0.1) }.to raise_error(TaskerCore::Errors::TaskNotFoundError)
      expect { TaskerCore.wait_for_task(uuid, timeout: Float::NAN) }.to raise_error(ArgumentError, /timeout/)
    end
  end
end
