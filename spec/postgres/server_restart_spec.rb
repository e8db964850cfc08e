# frozen_string_literal: true

require "json"
require "pg"

# PostgreSQL restarts (and is down for a moment) in the middle of a run of three worker
# processes: every task still completes with the right answer, each step once, nobody
# panics, and the logs say what happened (the outage and the reconnect). Its own server,
# so the restart disturbs no other spec.
RSpec.describe "A PostgreSQL restart in the middle of a run" do
  let(:server) { PrivatePostgres.start }
  let(:url) { server.fresh_database(prefix: "restart") }
  let(:fleet) { WorkerFleet.new(database_url: url) }
  let(:conn) { PG.connect(url) }

  after do
    fleet.cleanup
    conn.close unless conn.finished?
    server.stop
  end

  it "is survived by every worker: all tasks complete, each step once, with clear logs" do
    workers = %w[a b c].map { |name| fleet.start(name, concurrency: 4, env: { "FLEET_STEP_MS" => "20" }) }
    workers.each { |worker| fleet.wait_started(worker) }
    tasks = FleetTasks.create(conn, 150)
    conn.close

    sleep 0.02 until fleet.executions.count { |e| e.kind == "FINISH" } >= 60
    server.pause
    sleep 1.0
    server.resume

    conn = PG.connect(url)
    statuses = FleetTasks.wait_finished(conn, tasks.keys, timeout: 90)
    expect(statuses.values.tally).to eq("complete" => tasks.size)
    expect(FleetTasks.final_values(conn, tasks.keys)).to eq(tasks.transform_values { |n| (2 * n) + 5 })
    starts = fleet.executions.select { |e| e.kind == "START" }
    expect(starts.size).to eq(3 * tasks.size), "each step ran once"
    expect(workers).to all(satisfy(&:running?))

    logs = workers.map(&:err).join
    expect(logs).not_to match(/panic/i)
    expect(logs).to include("PostgreSQL unreachable")
    expect(logs).to match(/PostgreSQL reachable again|change listener reconnected/)
    # Once when it began, then rarely: not a line per failed call.
    expect(logs.scan("PostgreSQL still unreachable").size).to be <= 3 * 6
    # The pool's and the client's own warnings are not repeated.
    expect(logs).not_to include("Connection could not be recycled")
    conn.close
  end
end
