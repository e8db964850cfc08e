# frozen_string_literal: true

# An experiment, not part of bin/bench: what the step row's layout alone costs the
# server per step, with no engine around it. Each layout gets a fresh database on a
# private server (fsync on), N single-step rows inserted up front, then one connection
# claims up to 64 at a time and a second completes what was claimed in batches (up to
# 8 claims per statement), as the store's worker does. Prints steps/s and the two
# backends' CPU per step; afterwards every step must have been claimed once and completed.
# The drain's connections run with sequential scans off (see `drain`).
#
#   ruby bench/experiments/step_layouts.rb                 # N=100000 ROUNDS=today,queue,claim_index_only,...
#
# Layouts:
#   today             tasker.steps as migrations 0001-0004 leave it: the claim and the
#                     completion update the step row, which four partial indexes follow
#   claim_index_only  the same without steps_in_progress and steps_unfinished (what the
#                     two indexes cost; the store needs what they serve)
#   queue             steps with the primary key only (its updates are heap-only), a
#                     narrow queue of claimable steps and a lease table: a claim deletes
#                     from the queue and inserts leases, a completion deletes its lease
require "pg"
require_relative "../../spec/support/private_postgres"
require_relative "../support/process_cpu"

module StepLayouts
  STEPS = <<~SQL
    CREATE TABLE steps (
      task_uuid uuid NOT NULL, step_index int NOT NULL, step_uuid uuid NOT NULL, revision_id bigint NOT NULL,
      priority int NOT NULL, task_created_at timestamptz NOT NULL, task_seq bigint NOT NULL, status text NOT NULL,
      attempts int NOT NULL DEFAULT 0, remaining_deps int NOT NULL, parents int[], ready_at timestamptz,
      event_id uuid, worker_id text, claimed_at timestamptz, claim_id uuid, result jsonb, error jsonb, history jsonb,
      PRIMARY KEY (task_uuid, step_index)
    ) WITH (fillfactor = 80);
  SQL
  NEW_STEPS = "SELECT gen_random_uuid(), 0, gen_random_uuid(), 1, 0, now(), i, 'enqueued', 0, 0, NULL, now() " \
              "FROM generate_series(1, $1) i"

  CLAIM_INDEX = "CREATE INDEX steps_claim ON steps (priority DESC, ready_at) INCLUDE (revision_id) WHERE status = 'enqueued';\n" \
                "CREATE INDEX steps_scheduled ON steps (ready_at) " \
                "WHERE status IN ('pending', 'waiting_for_retry') AND ready_at IS NOT NULL;\n"
  LEASE_INDEXES = "CREATE INDEX steps_in_progress ON steps (worker_id, claim_id) INCLUDE (revision_id) " \
                  "WHERE status = 'in_progress';\n" \
                  "CREATE INDEX steps_unfinished ON steps (task_created_at DESC, task_seq DESC) " \
                  "WHERE status IN ('pending', 'enqueued', 'in_progress', 'waiting_for_retry') AND ready_at IS NOT NULL;\n"

  IN_PLACE = {
    fill: "INSERT INTO steps #{NEW_STEPS}",
    claim: <<~SQL,
      UPDATE steps s
      SET status = 'in_progress', attempts = s.attempts + 1, event_id = gen_random_uuid(), worker_id = 'w',
          claim_id = gen_random_uuid(), claimed_at = now()
      WHERE s.ctid = ANY(ARRAY(SELECT p.ctid FROM steps p WHERE p.status = 'enqueued' AND p.revision_id = ANY('{1}')
                               ORDER BY p.priority DESC, p.ready_at LIMIT 64 FOR UPDATE SKIP LOCKED))
      RETURNING s.task_uuid, s.step_index, s.event_id
    SQL
    complete: <<~SQL
      UPDATE steps s
      SET status = 'complete', result = '{}', history = '[{}]', event_id = NULL, worker_id = NULL, claim_id = NULL
      FROM unnest($1::uuid[], $2::int[], $3::uuid[]) b(task_uuid, step_index, event_id)
      WHERE s.task_uuid = b.task_uuid AND s.step_index = b.step_index AND s.status = 'in_progress'
        AND s.event_id = b.event_id
    SQL
  }.freeze

  LAYOUTS = {
    "today" => IN_PLACE.merge(ddl: STEPS + CLAIM_INDEX + LEASE_INDEXES),
    "claim_index_only" => IN_PLACE.merge(ddl: STEPS + CLAIM_INDEX),
    "queue" => {
      ddl: STEPS + <<~SQL,
        CREATE TABLE ready (task_uuid uuid NOT NULL, step_index int NOT NULL, priority int NOT NULL,
                            ready_at timestamptz NOT NULL, revision_id bigint NOT NULL);
        CREATE INDEX ready_claim ON ready (priority DESC, ready_at) INCLUDE (revision_id);
        CREATE TABLE leases (task_uuid uuid NOT NULL, step_index int NOT NULL, event_id uuid NOT NULL,
                             worker_id text NOT NULL, claim_id uuid NOT NULL, claimed_at timestamptz NOT NULL,
                             revision_id bigint NOT NULL, PRIMARY KEY (task_uuid, step_index));
        CREATE INDEX leases_worker ON leases (worker_id, claim_id);
      SQL
      fill: "WITH s AS (INSERT INTO steps #{NEW_STEPS} RETURNING task_uuid, step_index, ready_at) " \
            "INSERT INTO ready SELECT task_uuid, step_index, 0, ready_at, 1 FROM s",
      claim: <<~SQL,
        WITH taken AS (
          DELETE FROM ready r
          WHERE r.ctid = ANY(ARRAY(SELECT p.ctid FROM ready p WHERE p.revision_id = ANY('{1}')
                                   ORDER BY p.priority DESC, p.ready_at LIMIT 64 FOR UPDATE SKIP LOCKED))
          RETURNING r.task_uuid, r.step_index, r.revision_id
        ), leased AS (
          INSERT INTO leases
          SELECT t.task_uuid, t.step_index, gen_random_uuid(), 'w', gen_random_uuid(), now(), t.revision_id FROM taken t
          RETURNING task_uuid, step_index, event_id
        ), moved AS (  -- runs although nothing reads it, as every data-modifying WITH does
          UPDATE steps s SET status = 'in_progress', attempts = s.attempts + 1, event_id = l.event_id
          FROM leased l WHERE s.task_uuid = l.task_uuid AND s.step_index = l.step_index
        )
        SELECT l.task_uuid, l.step_index, l.event_id FROM leased l
      SQL
      complete: <<~SQL
        WITH gone AS (
          DELETE FROM leases l USING unnest($1::uuid[], $2::int[], $3::uuid[]) b(task_uuid, step_index, event_id)
          WHERE l.task_uuid = b.task_uuid AND l.step_index = b.step_index AND l.event_id = b.event_id
          RETURNING l.task_uuid, l.step_index
        )
        UPDATE steps s SET status = 'complete', result = '{}', history = '[{}]', event_id = NULL
        FROM gone g WHERE s.task_uuid = g.task_uuid AND s.step_index = g.step_index
      SQL
    }
  }.freeze

  # One column of claimed rows as a PostgreSQL array literal (uuids and integers only).
  def self.pg_array(rows, field)
    "{#{rows.map { |row| row.fetch(field) }.join(',')}}"
  end

  # Drains `steps` rows of `layout` on a fresh database of `server`; answers the figures.
  def self.drain(server, layout, steps:)
    url = server.fresh_database(prefix: "step_layouts")
    connections = Array.new(3) { PG.connect(url) }
    setup, claimer, completer = connections
    setup.exec(layout.fetch(:ddl))
    setup.exec_params(layout.fetch(:fill), [steps])
    setup.exec("VACUUM ANALYZE")
    # Index plans only: the statistics taken after the fill say no step is in progress,
    # and with no index that names in-progress steps (claim_index_only) the planner then
    # joins a completion batch to a sequential scan per row (a second per batch).
    [claimer, completer].each { |connection| connection.exec("SET enable_seqscan = off") }
    backends = [claimer, completer].map(&:backend_pid)
    cpu_before = backends.sum { |pid| Bench::ProcessCpu.seconds(pid) }
    started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
    claims = Queue.new
    completing = Thread.new do
      done = 0
      while done < steps
        batch = [claims.pop]
        batch << claims.pop until claims.empty? || batch.size >= 8
        rows = batch.flatten(1)
        completer.exec_params(layout.fetch(:complete),
                              [pg_array(rows, "task_uuid"), pg_array(rows, "step_index"), pg_array(rows, "event_id")])
        done += rows.size
      end
    end
    claimed = 0
    while claimed < steps
      rows = claimer.exec(layout.fetch(:claim)).to_a
      claimed += rows.size
      claims << rows unless rows.empty?
    end
    completing.join
    elapsed = Process.clock_gettime(Process::CLOCK_MONOTONIC) - started
    cpu = backends.sum { |pid| Bench::ProcessCpu.seconds(pid) } - cpu_before
    wrong = Integer(setup.exec("SELECT count(*) FROM steps WHERE status <> 'complete' OR attempts <> 1").getvalue(0, 0))
    raise "#{wrong} steps not claimed exactly once and completed" unless wrong.zero?

    { steps_per_second: steps / elapsed, cpu_per_step_us: cpu / steps * 1e6 }
  ensure
    connections&.each(&:close)
  end

  def self.run(steps:, rounds:)
    server = PrivatePostgres.start
    rounds.each do |name|
      figures = drain(server, LAYOUTS.fetch(name), steps: steps)
      puts format("%-17s %d steps  %8.0f steps/s  server CPU %5.1f us/step", name, steps,
                  figures[:steps_per_second], figures[:cpu_per_step_us])
      $stdout.flush
    end
  ensure
    server&.stop
  end
end

if $PROGRAM_NAME == __FILE__
  rounds = ENV.fetch("ROUNDS", "today,queue,claim_index_only,today,queue,claim_index_only").split(",")
  unknown = rounds - StepLayouts::LAYOUTS.keys
  abort "step_layouts: unknown layout #{unknown.join(', ')} (known: #{StepLayouts::LAYOUTS.keys.join(', ')})" unless unknown.empty?
  StepLayouts.run(steps: Integer(ENV.fetch("N", "100000")), rounds: rounds)
end
