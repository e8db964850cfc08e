# frozen_string_literal: true

require "json"
require "pg"

# A tasker-worker process stopped with TERM in the middle of a run: its unfinished steps
# are released as worker_shutdown (the attempt not counted) and another worker runs them
# at once, without waiting for any lease to expire.
RSpec.describe "A worker process stopped with TERM" do
  let(:url) { PrivatePostgres.shared.fresh_database(prefix: "term") }
  # A liveness limit far beyond the run: only the release can make the steps run again.
  let(:fleet) do
    WorkerFleet.new(database_url: url,
                    liveness: WorkerFleet::LIVENESS.merge(worker_lost_after_ms: 60_000, heartbeat_interval_ms: 1000))
  end
  let(:conn) { PG.connect(url) }

  after do
    fleet.cleanup
    conn.close
  end

  it "hands its unfinished steps to another worker at once as worker_shutdown" do
    slow = { "FLEET_STEP_MS" => "400" }
    leaving = fleet.start("leaving", concurrency: 4, args: %w[--timeout 0], env: slow)
    staying = fleet.start("staying", concurrency: 4, env: slow)
    [leaving, staying].each { |worker| fleet.wait_started(worker) }
    tasks = FleetTasks.create(conn, 16)

    sleep 0.02 until fleet.executions.count { |e| e.pid == leaving.pid && e.kind == "START" } >= 2
    fleet.signal(leaving, "TERM")
    termed_at = Process.clock_gettime(Process::CLOCK_REALTIME, :millisecond)
    expect(fleet.wait_exit(leaving).exitstatus).to eq(0)
    expect(leaving.out).to match(/unfinished step\(s\) reported as worker_shutdown/)

    statuses = FleetTasks.wait_finished(conn, tasks.keys, timeout: 60)
    expect(statuses.values.tally).to eq("complete" => tasks.size)
    expect(FleetTasks.final_values(conn, tasks.keys)).to eq(tasks.transform_values { |n| (2 * n) + 5 })

    executions = fleet.executions
    starts = executions.select { |e| e.kind == "START" }
    finished = executions.select { |e| e.kind == "FINISH" }.map(&:event)
    released = starts.select { |e| e.pid == leaving.pid && !finished.include?(e.event) }
    expect(released).not_to be_empty, "the worker stopped in the middle of its steps"
    histories = FleetTasks.histories(conn, tasks.keys)
    released.each do |step|
      rerun = starts.find { |e| e.task == step.task && e.step == step.step && e.at_ms > step.at_ms }
      expect(rerun.pid).to eq(staying.pid)
      expect(rerun.attempt).to eq(step.attempt), "a released attempt is not counted"
      # At once: long before any lease could lapse (60 s), as soon as a thread is free.
      expect(rerun.at_ms - termed_at).to be < 10_000
      expect(histories.fetch([step.task, step.step])).to include("worker_shutdown")
    end
  end
end
