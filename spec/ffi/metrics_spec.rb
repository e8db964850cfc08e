# frozen_string_literal: true

require "fileutils"
require "tmpdir"

RSpec.describe "TaskerCore::FFI.ffi_dispatch_metrics" do
  let(:ffi) { TaskerCore::FFI }
  let(:metric_keys) do
    %w[pending_count oldest_pending_age_ms waiting_in_dispatch oldest_waiting_ms starvation_detected
       starvation_threshold_ms total_dispatched total_completed total_timed_out total_rejected_completions
       late_completions total_released timeout_lag_ms_p50 timeout_lag_ms_p99 timeout_lag_samples running]
  end

  it "has every documented key, with Integer counts, Float lags and boolean flags" do
    m = metrics
    flags = %w[running starvation_detected]
    lags = %w[timeout_lag_ms_p50 timeout_lag_ms_p99]

    expect(m.keys).to contain_exactly(*metric_keys)
    expect(m.values_at(*flags)).to all(be(true).or(be(false)))
    expect(m.values_at(*lags)).to all(be_a(Float))
    expect(m.reject { |k, _| flags.include?(k) || lags.include?(k) }.values).to all(be_a(Integer))
    expect(m["running"]).to be(true)
    expect(m["starvation_threshold_ms"]).to eq(2000) # environments/test/mpsc_channels.toml
  end

  it "follows events from the dispatch channel to pending to completed" do
    restart_core # fresh counters
    ref = define_workflow("three", steps: %w[a b c].map { |n| { name: n, handler: "SpecHandlers::Echo" } })
    uuid = create_task(ref)

    waiting = wait_until("three events wait unpolled") { (m = metrics)["waiting_in_dispatch"] == 3 && m }
    expect(waiting).to include("pending_count" => 0, "total_dispatched" => 0, "starvation_detected" => false)

    first = next_event(uuid)
    after_poll = metrics
    expect(after_poll).to include("pending_count" => 1, "waiting_in_dispatch" => 2, "total_dispatched" => 1)
    expect(after_poll["oldest_pending_age_ms"]).to be >= 0

    second = next_event(uuid)
    expect(metrics).to include("pending_count" => 2, "waiting_in_dispatch" => 1, "total_dispatched" => 2)

    complete_ok(first)
    expect(metrics).to include("pending_count" => 1, "total_completed" => 1)
    complete_ok(second)
    complete_ok(next_event(uuid))
    expect(wait_for(uuid)["status"]).to eq("complete")
    expect(metrics).to include("pending_count" => 0, "waiting_in_dispatch" => 0, "oldest_pending_age_ms" => 0,
                               "oldest_waiting_ms" => 0, "total_dispatched" => 3, "total_completed" => 3,
                               "total_timed_out" => 0, "total_rejected_completions" => 0, "late_completions" => 0)
  end

  it "reports how long the oldest event has waited unpolled and been pending" do
    ref = define_workflow("ages", steps: %w[a b].map { |n| { name: n, handler: "SpecHandlers::Echo" } })
    uuid = create_task(ref)
    first = next_event(uuid)
    aged = wait_until("the waiting and pending events age 100 ms") do
      m = metrics
      m["oldest_waiting_ms"] >= 100 && m["oldest_pending_age_ms"] >= 100 && m
    end

    expect(aged["oldest_waiting_ms"]).to be < 2000
    expect(aged["starvation_detected"]).to be(false)
    complete_ok(first)
    complete_ok(next_event(uuid))
  end

  it "keeps deadlines on the core's own threads: a Ruby thread holding the GVL does not delay a timeout" do
    restart_core # fresh metrics
    ref = define_workflow("gvl", steps: [{ name: "only", handler: "SpecHandlers::Echo", timeout_seconds: 0.1,
                                          retry: { max_attempts: 1 } }])
    uuid = create_task(ref)
    event = next_event(uuid)

    # Busy Ruby code on this thread, well past the deadline, with no blocking call.
    spin_until = monotonic + 0.4
    spins = 0
    spins += 1 while monotonic < spin_until

    m = metrics
    expect(spins).to be_positive
    expect(m).to include("total_timed_out" => 1, "timeout_lag_samples" => 1)
    expect(m["timeout_lag_ms_p99"]).to be < 100
    expect(ffi.event_pending?(event["event_id"])).to be(false)
    expect(step_of(wait_for(uuid), "only")["error"]).to include("error_type" => "handler_timeout")
  end

  it "reports running false and zeros while no worker runs" do
    ffi.stop_worker
    m = metrics

    expect(m).to include("running" => false, "pending_count" => 0, "waiting_in_dispatch" => 0,
                         "total_dispatched" => 0)
  end

  it "raises the starvation flag past the configured threshold (a config root with a 50 ms threshold)" do
    root = Dir.mktmpdir("tasker_core_spec_config")
    FileUtils.cp_r(File.join(File.expand_path("../../config/tasker", __dir__), "."), root)
    File.write(File.join(root, "environments/test/mpsc_channels.toml"), <<~TOML)
      [mpsc_channels.worker.ffi_dispatch]
      starvation_threshold_ms = 50
    TOML
    set = new_template_set
    ref = set.add("starving", steps: [{ name: "only", handler: "SpecHandlers::Echo" }])

    report = RubySubprocess.json(<<~RUBY)
      require "json"
      require "tasker_core"
      f = TaskerCore::FFI
      boot = f.bootstrap_worker(config_root: #{root.inspect}, environment: "test", template_path: #{set.dir.inspect})
      before = f.ffi_dispatch_metrics
      uuid = f.create_task(#{ref.namespace.inspect}, #{ref.name.inspect}, nil, {})
      started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
      starving = nil
      until (starving = f.ffi_dispatch_metrics)["starvation_detected"] ||
            Process.clock_gettime(Process::CLOCK_MONOTONIC) - started > 5
        sleep 0.01
      end
      event = f.poll_step_events(1)
      f.complete_step_event(event["event_id"], { "success" => true })
      fed = f.ffi_dispatch_metrics
      done = f.wait_for_task(uuid, 5)
      puts JSON.dump("boot" => boot, "before" => before, "starving" => starving, "fed" => fed,
                     "status" => done && done["status"])
    RUBY

    expect(report["before"]).to include("starvation_detected" => false, "starvation_threshold_ms" => 50)
    expect(report["starving"]).to include("starvation_detected" => true, "waiting_in_dispatch" => 1)
    expect(report["starving"]["oldest_waiting_ms"]).to be >= 50
    expect(report["fed"]).to include("starvation_detected" => false, "waiting_in_dispatch" => 0)
    expect(report["status"]).to eq("complete")
  ensure
    FileUtils.rm_rf(root) if root
  end
end

RSpec.describe "TaskerCore::FFI.send_step_completion_event" do
  it "is removed: it raises RemovedApiError naming complete_step_event(event['event_id'], result)" do
    expect { TaskerCore::FFI.send_step_completion_event("step-uuid", { "success" => true }) }
      .to raise_error(TaskerCore::Errors::RemovedApiError,
                      /send_step_completion_event was removed.*complete_step_event\(event\['event_id'\], result\)/)
    expect { TaskerCore::FFI.send_step_completion_event }.to raise_error(TaskerCore::Errors::RemovedApiError)
  end
end
