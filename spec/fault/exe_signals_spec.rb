# frozen_string_literal: true

require_relative "fault_helper"

# exe/tasker-worker as a subprocess: TERM stops it gracefully (exit 0); a second signal
# exits at once (non-zero). Every wait is bounded and the process is killed on overrun.
RSpec.describe "exe/tasker-worker under signals" do
  let(:template_set) { TemplateSet.new(namespace: "exe_fault") }
  let(:handlers) { File.join(FaultHelpers::FIXTURES, "exe_handlers.rb") }

  after { template_set.cleanup }

  # Starts the executable with one task whose handler sleeps `seconds`.
  def start_exe(seconds:, extra_args: [])
    ref = template_set.add("nap", steps: [{ name: "nap", handler: "ExeFault::Sleeper", timeout_seconds: 60,
                                            inputs: { "seconds" => seconds } }])
    spawn_ruby(FaultHelpers::EXE, "--require", handlers, "--templates", template_set.dir, "--concurrency", "2",
               *extra_args,
               env: { "FAULT_EXE_NAMESPACE" => ref.namespace, "FAULT_EXE_TEMPLATE" => ref.name,
                      "FAULT_EXE_TASKS" => "1" })
  end

  it "stops gracefully on TERM: the running handler finishes, then it exits 0" do
    exe = start_exe(seconds: 1.0)
    exe.wait_for_line(/tasker-worker .*started: worker_id=/, timeout: 20)
    exe.wait_for_line(/HANDLER_STARTED nap attempt=1/, timeout: 10)

    signalled = monotonic
    exe.signal("TERM")
    status, killed = exe.wait(timeout: 15)
    took = monotonic - signalled

    expect(killed).to be false
    expect(status.exitstatus).to eq(0), "exit #{status.inspect}; stderr: #{exe.err}"
    expect(exe.out).to include("SIGTERM received, stopping", "HANDLER_FINISHED nap", "tasker-worker: stopped")
    expect(exe.out).not_to include("unfinished step")
    expect(took).to be < 5
  end

  it "reports a handler still running at the stop timeout as worker_shutdown and exits 0" do
    exe = start_exe(seconds: 30, extra_args: ["--timeout", "0.5"])
    exe.wait_for_line(/HANDLER_STARTED nap attempt=1/, timeout: 20)

    signalled = monotonic
    exe.signal("TERM")
    status, killed = exe.wait(timeout: 15)
    took = monotonic - signalled

    expect(killed).to be false
    expect(status.exitstatus).to eq(0), "exit #{status.inspect}; stderr: #{exe.err}"
    expect(exe.out).to match(/stopped; 1 unfinished step\(s\) reported as worker_shutdown: nap/)
    expect(exe.out).not_to include("HANDLER_FINISHED")
    expect(took).to be_between(0.4, 0.5 + TaskerCore::Worker::Manager::KILL_GRACE + 2)
  end

  it "exits at once with a non-zero status on a second signal while a handler still sleeps" do
    exe = start_exe(seconds: 30)
    exe.wait_for_line(/HANDLER_STARTED nap attempt=1/, timeout: 20)

    exe.signal("TERM")
    exe.wait_for_line(/SIGTERM received, stopping/, timeout: 5)
    second = monotonic
    exe.signal("INT")
    status, killed = exe.wait(timeout: 10)
    took = monotonic - second

    expect(killed).to be false
    expect(status.success?).to be false
    expect(status.exitstatus).to eq(1)
    expect(exe.err).to include("second SIGINT received, exiting immediately")
    expect(exe.out).not_to include("HANDLER_FINISHED", "tasker-worker: stopped")
    expect(took).to be < 3
  end
end
