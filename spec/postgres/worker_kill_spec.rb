# frozen_string_literal: true

require "json"
require "pg"

# Three tasker-worker processes on one database; one of them is killed with SIGKILL in
# the middle of a run. Every task still completes with the right answer, no claim runs
# twice (every handler execution is logged with its event id), and the killed worker's
# running steps run again elsewhere, as worker_lost, within the liveness limit.
RSpec.describe "A worker process killed with SIGKILL" do
  let(:url) { PrivatePostgres.shared.fresh_database(prefix: "kill") }
  let(:fleet) { WorkerFleet.new(database_url: url) }
  let(:conn) { PG.connect(url) }

  after do
    fleet.cleanup
    conn.close
  end

  it "loses no task, runs no claim twice and has its steps run again within the liveness limit" do
    # Long enough a run (240 tasks of 60 ms steps on 12 threads) that the victim, which may
    # hold up to its prefetch of claimed steps, is still busy when it is killed.
    workers = %w[a b c].map { |name| fleet.start(name, concurrency: 4, env: { "FLEET_STEP_MS" => "60" }) }
    workers.each { |worker| fleet.wait_started(worker) }
    tasks = FleetTasks.create(conn, 240)

    victim = workers.first
    sleep 0.02 until fleet.executions.count { |e| e.pid == victim.pid && e.kind == "START" } >= 10
    fleet.signal(victim, "KILL")
    killed_at = Process.clock_gettime(Process::CLOCK_REALTIME, :millisecond)
    expect(fleet.wait_exit(victim).termsig).to eq(9)

    statuses = FleetTasks.wait_finished(conn, tasks.keys, timeout: 60)
    expect(statuses.values.tally).to eq("complete" => tasks.size)
    expect(FleetTasks.final_values(conn, tasks.keys)).to eq(tasks.transform_values { |n| (2 * n) + 5 })

    executions = fleet.executions
    starts = executions.select { |e| e.kind == "START" }
    expect(starts.map(&:event).tally.select { |_, count| count > 1 }).to be_empty, "no claim runs twice"

    # What the killed worker was running: started, never finished.
    finished = executions.select { |e| e.kind == "FINISH" }.map(&:event)
    interrupted = starts.select { |e| e.pid == victim.pid && !finished.include?(e.event) }
    expect(interrupted).not_to be_empty, "the worker was killed in the middle of its steps"
    limit = WorkerFleet::LIVENESS[:worker_lost_after_ms] + (2 * WorkerFleet::LIVENESS[:heartbeat_interval_ms])
    histories = FleetTasks.histories(conn, tasks.keys)
    interrupted.each do |lost|
      rerun = starts.find { |e| e.task == lost.task && e.step == lost.step && e.at_ms > lost.at_ms }
      expect(rerun).not_to be_nil, "#{lost.step} of #{lost.task} ran again"
      expect(rerun.pid).not_to eq(victim.pid)
      expect(rerun.attempt).to eq(lost.attempt + 1)
      expect(rerun.at_ms - killed_at).to be <= limit + 1000
      expect(histories.fetch([lost.task, lost.step])).to include("worker_lost")
    end

    # The survivors say plainly what they did, and nothing panicked.
    logs = workers.drop(1).map(&:err).join
    expect(logs).to include("worker_lost")
    expect(logs).not_to match(/panic/i)
  end
end
