# frozen_string_literal: true

require_relative "fault_helper"

# A Ruby process that ends without stopping its worker must still end promptly: no Ruby
# thread may stay blocked in Rust, and nothing may hang at exit.
RSpec.describe "Process exit with the core running" do
  # Writes the template of SCRIPT_HANDLER into a temp dir and returns that dir (Ruby source).
  setup = <<~RUBY
    require "json"
    require "tmpdir"
    require "tasker_core"
    $stdout.sync = true
    class ExitNap < TaskerCore::StepHandler::Base
      STARTED = Queue.new
      def call(context)
        STARTED << context.step_name
        sleep 0.3
        success(result: 1)
      end
    end
    templates = Dir.mktmpdir
    File.write(File.join(templates, "nap.yaml"), <<~YAML)
      name: exit_nap
      namespace_name: exit_fault
      version: 1.0.0
      steps:
        - name: nap
          handler: { callable: ExitNap }
          dependencies: []
          timeout_seconds: 30
    YAML
  RUBY

  it "exits promptly when it ends with a Worker running, handlers busy and tasks queued" do
    script = <<~RUBY
      #{setup}
      worker = TaskerCore::Worker.new(template_path: templates, concurrency: 8)
      worker.start
      40.times { TaskerCore.create_task(namespace: "exit_fault", name: "exit_nap") }
      ExitNap::STARTED.pop
      busy = worker.stats[:threads].count { |t| t[:busy] }
      puts JSON.dump("busy" => busy, "exiting_at" => Process.clock_gettime(Process::CLOCK_MONOTONIC))
    RUBY

    result = run_ruby(script, timeout: 30)
    exited = monotonic

    expect(result.killed).to be false
    expect(result.status.success?).to be(true), "exit #{result.status.inspect}; stderr: #{result.err}"
    report = result.json
    expect(report["busy"]).to be >= 1
    # CLOCK_MONOTONIC is the same clock in every process of this machine.
    expect(exited - report["exiting_at"]).to be < 5
    expect(result.elapsed).to be < 10
  end

  it "exits promptly when the main thread calls exit while 16 threads are blocked in poll_step_events" do
    script = <<~RUBY
      #{setup}
      TaskerCore::FFI.bootstrap_worker(template_path: templates)
      pollers = Array.new(16) { Thread.new { TaskerCore::FFI.poll_step_events(120) } }
      deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + 10
      sleep 0.01 until pollers.all? { |t| t.status == "sleep" } || Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline
      puts JSON.dump("statuses" => pollers.map(&:status), "exiting_at" => Process.clock_gettime(Process::CLOCK_MONOTONIC))
      exit
    RUBY

    result = run_ruby(script, timeout: 30)
    exited = monotonic

    expect(result.killed).to be false
    expect(result.status.success?).to be(true), "exit #{result.status.inspect}; stderr: #{result.err}"
    report = result.json
    expect(report["statuses"]).to eq(["sleep"] * 16)
    expect(exited - report["exiting_at"]).to be < 5
  end

  it "exits promptly when the main thread calls exit while threads wait in wait_for_task and a worker polls" do
    script = <<~RUBY
      #{setup}
      TaskerCore::FFI.bootstrap_worker(template_path: templates)
      # Tasks nobody runs: their waiters block until the timeout.
      uuids = Array.new(8) { TaskerCore.create_task(namespace: "exit_fault", name: "exit_nap") }
      waiters = uuids.map { |uuid| Thread.new { TaskerCore::FFI.wait_for_task(uuid, 120) } }
      deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + 10
      sleep 0.01 until waiters.all? { |t| t.status == "sleep" } || Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline
      worker = TaskerCore::Worker.new(template_path: templates, concurrency: 8)
      worker.start
      ExitNap::STARTED.pop
      puts JSON.dump("statuses" => waiters.map(&:status), "exiting_at" => Process.clock_gettime(Process::CLOCK_MONOTONIC))
      exit
    RUBY

    result = run_ruby(script, timeout: 30)
    exited = monotonic

    expect(result.killed).to be false
    expect(result.status.success?).to be(true), "exit #{result.status.inspect}; stderr: #{result.err}"
    report = result.json
    expect(report["statuses"]).to eq(["sleep"] * 8)
    expect(exited - report["exiting_at"]).to be < 5
  end
end
