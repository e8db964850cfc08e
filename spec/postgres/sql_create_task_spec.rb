# frozen_string_literal: true

require "pg"

# tasker.create_task from the application's own transaction (ruby-pg): the task exists,
# and a worker wakes for it, only when that transaction commits.
RSpec.describe "tasker.create_task in the caller's transaction" do
  let(:url) { PrivatePostgres.shared.fresh_database(prefix: "sqlcreate") }
  # Fallback polling every 30 s: a worker that starts the task sooner was woken by NOTIFY.
  let(:fleet) { WorkerFleet.new(database_url: url, liveness: WorkerFleet::LIVENESS.merge(poll_interval_ms: 30_000)) }
  let(:conn) { PG.connect(url) }

  after do
    fleet.cleanup
    conn.close
  end

  def started(task)
    fleet.executions.find { |e| e.kind == "START" && e.task == task }
  end

  it "creates nothing on rollback, and on commit a task that wakes an idle worker at once" do
    worker = fleet.start("a", concurrency: 2)
    fleet.wait_started(worker)
    sleep 0.5 # idle: its executor waits for a notification

    conn.exec("BEGIN")
    rolled_back = conn.exec("SELECT tasker.create_task('fleet', 'chain', NULL, '{\"n\": 1}')").getvalue(0, 0)
    conn.exec("ROLLBACK")
    expect(conn.exec_params("SELECT count(*) FROM tasker.tasks WHERE task_uuid = $1", [rolled_back]).getvalue(0, 0))
      .to eq("0")

    conn.exec("BEGIN")
    committed = conn.exec("SELECT tasker.create_task('fleet', 'chain', NULL, '{\"n\": 4}')").getvalue(0, 0)
    sleep 0.5
    expect(started(committed)).to be_nil, "a worker started a task its creator had not committed"
    conn.exec("COMMIT")
    committed_at = Process.clock_gettime(Process::CLOCK_REALTIME, :millisecond)

    FleetTasks.wait_finished(conn, [committed], timeout: 20)
    expect(started(committed).at_ms - committed_at).to be < 2_000
    expect(FleetTasks.final_values(conn, [committed])).to eq(committed => 13)
    sleep 0.3
    expect(fleet.executions.map(&:task)).not_to include(rolled_back)
  end

  it "answers an unknown template with the error code and what exists" do
    worker = fleet.start("a", concurrency: 1)
    fleet.wait_started(worker)
    expect { conn.exec("SELECT tasker.create_task('fleet', 'nope', NULL, '{}')") }
      .to raise_error(PG::ServerError) { |e|
        expect(e.result.error_field(PG::PG_DIAG_SQLSTATE)).to eq("TK002")
        expect(e.result.error_field(PG::PG_DIAG_MESSAGE_DETAIL)).to eq("chain")
      }
  end
end
