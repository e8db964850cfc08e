# frozen_string_literal: true

# An experiment, not part of bin/bench: what parts of the completion path cost. Each
# round gets a fresh private server and one tasker-worker at concurrency 5, then applies
# one variant (SQL run before the drain), creates N single-step no-op tasks in one
# transaction and times their drain. A drain of successes is recorded by
# tasker.record_completions, so that is the function the variants change. The variants are measurements only: without the
# task's UPDATE the tasks never read as finished (the worker is told they finished, which
# is all the drain waits for), without the task lock concurrent writers could deadlock,
# and so on. Nothing here is a working design.
#
#   ruby -Ilib bench/experiments/completion_variants.rb  # N=60000 ROUNDS=shipped,no_task_update,...
#
# Variants (the record_completions ones derived from the migration that defines it):
#   shipped          as the migrations leave it
#   no_task_update   the task's counters and status are not written (finished_tasks still is)
#   no_bookkeeping   neither the task row nor finished_tasks is written
#   no_task_lock     record_completions does not lock its tasks before its main statement
#   generic_plan     record_completions with plan_cache_mode = force_generic_plan
#   custom_plan      record_completions with plan_cache_mode = force_custom_plan
#   fewer_writes     steps_unfinished without in-progress steps, no finished_by_time and no
#                    statement triggers that count updates of steps and tasks
require_relative "../support/pg_workers"
require_relative "../support/templates"

module CompletionVariants
  MIGRATION = File.expand_path("../../crates/tasker-worker/migrations/0005_record_completions.sql", __dir__)

  # The CTEs that write the task row and finished_tasks, and what stands in for them: the
  # same columns, so the rest of the function (the answer, the notifications) is unchanged.
  TASK_UPDATE = /    \), moved AS \(\n.*?(?=    \), appended AS \()/m
  FINISHED_APPEND = /    \), appended AS \(\n.*?(?=    \), counters AS \()/m
  MOVED_UNWRITTEN = <<-SQL
    ), moved AS (
        SELECT p.task_uuid, 'complete'::text AS status, now() AS created_at, 0::bigint AS task_seq,
               now() AS completed_at, p.last_ord
        FROM per_task p
  SQL
  APPENDED_UNWRITTEN = <<-SQL
    ), appended AS (
        SELECT m.task_uuid FROM moved m WHERE m.completed_at IS NOT NULL
  SQL

  # @return [String] the CREATE OR REPLACE FUNCTION statement of record_completions
  def self.shipped
    sql = File.read(MIGRATION)
    start = sql.index("CREATE FUNCTION tasker.record_completions(") or
      raise "#{MIGRATION}: no record_completions definition"
    sql[start..].sub("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION")
  end

  def self.replaced(sql, pattern, with)
    raise "record_completions changed: #{pattern.source[0, 30]}... not found" unless sql.match?(pattern)

    sql.sub(pattern, with)
  end

  # The lock statement, replaced by the same read without FOR UPDATE.
  TASK_LOCK = /^          ORDER BY t\.task_uuid FOR UPDATE\) x;\n/
  SIGNATURE = "tasker.record_completions(uuid[], integer[], uuid[], uuid[], jsonb[], jsonb[], integer[], integer[], " \
              "integer[], text[], text)"
  FEWER_WRITES = <<~SQL
    DROP INDEX tasker.steps_unfinished;
    CREATE INDEX steps_unfinished ON tasker.steps (task_created_at DESC, task_seq DESC)
        WHERE status IN ('pending', 'enqueued', 'waiting_for_retry') AND ready_at IS NOT NULL;
    DROP INDEX tasker.finished_by_time;
    DROP TRIGGER steps_counted_moved ON tasker.steps;
    DROP TRIGGER tasks_counted_moved ON tasker.tasks;
  SQL

  VARIANTS = {
    "shipped" => -> { shipped },
    "no_task_update" => -> { replaced(shipped, TASK_UPDATE, MOVED_UNWRITTEN) },
    "no_bookkeeping" => -> { replaced(replaced(shipped, TASK_UPDATE, MOVED_UNWRITTEN), FINISHED_APPEND, APPENDED_UNWRITTEN) },
    "no_task_lock" => -> { replaced(shipped, TASK_LOCK, "          ) x;\n") },
    "generic_plan" => -> { "ALTER FUNCTION #{SIGNATURE} SET plan_cache_mode = force_generic_plan" },
    "custom_plan" => -> { "ALTER FUNCTION #{SIGNATURE} SET plan_cache_mode = force_custom_plan" },
    "fewer_writes" => -> { FEWER_WRITES }
  }.freeze

  def self.round(variant, tasks:, template_dir:)
    pg = Bench::PgWorkers.new(prefix: "completion_variants")
    PG.connect(pg.url) do |conn|
      pg.start_workers(1, concurrency: 5, template_dir: template_dir)
      conn.exec(VARIANTS.fetch(variant).call)
      created = pg.create_at_once(conn, tasks, name: "noop")
      cpu_before = pg.cpu_seconds
      drained = pg.wait_drained(conn, tasks: tasks, timeout: 600)
      cpu = pg.cpu_seconds.to_h { |side, seconds| [side, seconds - cpu_before.fetch(side)] }
      { steps_per_second: tasks / (drained - created), server_us: cpu[:postgres] / tasks * 1e6,
        worker_us: cpu[:workers] / tasks * 1e6 }
    end
  ensure
    pg&.stop
  end

  def self.run(tasks:, rounds:)
    Bench::Templates.with_directory do |dir|
      rounds.each do |variant|
        figures = round(variant, tasks: tasks, template_dir: dir)
        puts format("%-14s %d tasks  %7.0f steps/s  server %5.1f us/step  worker %5.1f us/step", variant, tasks,
                    figures[:steps_per_second], figures[:server_us], figures[:worker_us])
        $stdout.flush
      end
    end
  end
end

if $PROGRAM_NAME == __FILE__
  rounds = ENV.fetch("ROUNDS", "#{CompletionVariants::VARIANTS.keys.join(",")}," * 3).split(",")
  unknown = rounds - CompletionVariants::VARIANTS.keys
  abort "completion_variants: unknown variant #{unknown.join(', ')} (known: #{CompletionVariants::VARIANTS.keys.join(', ')})" unless unknown.empty?
  CompletionVariants.run(tasks: Integer(ENV.fetch("N", "60000")), rounds: rounds)
end
