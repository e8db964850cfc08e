# frozen_string_literal: true

require_relative "figures"
require_relative "registry"

module Bench
  # Turns the measures' results into the suite's one table: a line per number, its
  # target and whether the target was met. A missed target never fails the run.
  class Report
    include Figures

    Row = Struct.new(:id, :label, :result, :target, :status, keyword_init: true)

    # The short explanation of each line, for docs/benchmarks.md.
    EXPLANATIONS = {
      "ffi" => "One Ruby thread drains a full ready queue of four-step diamond tasks (validate -> reserve, " \
               "charge -> ship), created up front, with the core bootstrapped at max_concurrent_handlers 1000: " \
               "non-blocking `poll_step_events` (falling back to `poll_step_events(0.01)` when it answers nil), " \
               "then `complete_step_event` with a success Hash. Every poll that returned an event and every " \
               "completion is timed on its own; the number is for the `ship` events, which carry an 11-key task " \
               "context (a nested Hash and Arrays), step inputs and two parent results. In brackets: microseconds " \
               "per poll and per completion (mean, which the rate is made of, and median), Ruby objects allocated " \
               "per poll, and the FFI floor: the time of `event_pending?`, the cheapest call that reaches the " \
               "channel.",
      "step_event" => "The same events (new tasks, same template and context) through `next_step_event`, which " \
                      "returns a `TaskerCore::StepEvent` converting each field only when read, completed with " \
                      "the StepEvent itself: once reading what `TaskerCore::Worker` reads of every event (handler " \
                      "class, initialization, deadline), once also reading the task context and both parents' " \
                      "results as a handler would. Poll + reads + complete of each `ship` event, timed.",
      "queue" => "Plain Ruby on one thread: push the same event Hash onto a `Thread::Queue`, pop it, push the same " \
                 "result Hash onto a second queue, pop it. The percentage is the FFI round-trip rate as a share of " \
                 "this one.",
      "concurrency" => "Single-step tasks whose handler sleeps 10 ms, created up front (enough for 2.5 s at the " \
                       "ideal rate at full size), drained by a `TaskerCore::Worker` with that many threads; timed " \
                       "from just before `Worker#start` until the orchestrator counts them all finished. Ideal = " \
                       "concurrency / 10 ms. Concurrency 1 is the old blocking one-step-at-a-time loop; the " \
                       "multiplier is the gain over it.",
      "tasker_noop" => "N single-step no-op tasks created up front with no worker running, then drained by a " \
                       "`TaskerCore::Worker` at concurrency 5; timed from just before `Worker#start` until " \
                       "`TaskerCore::FFI.worker_status[\"orchestrator\"]` counts N finished tasks (read every 2 ms). " \
                       "In brackets: what a worker thread's Ruby code costs per step without the core (Context, " \
                       "StepRunner, HandlerGate, result building, Stats, with a stub that accepts every " \
                       "completion), run 20,000 times on one thread with one real no-op event.",
      "sidekiq_noop" => "The same N no-op jobs pushed with `Sidekiq::Client.push_bulk` (1000 per call) to a private " \
                        "loopback redis-server (random port, no persistence), drained by Sidekiq at concurrency 5 " \
                        "running in the benchmark process (`Sidekiq::Launcher`); timed from just before " \
                        "`Launcher#run` until every job has run (an in-process counter each job increments). " \
                        "Sidekiq's per-job INFO logging and redis-rb's deprecation warnings are silenced.",
      "ratio" => "TaskerCore steps/s divided by Sidekiq jobs/s, both measured above in the same run.",
      "creation" => "How fast the N items were created up front: `TaskerCore::FFI.create_task` (no worker running) " \
                    "against `Sidekiq::Client.push_bulk`.",
      "dag" => "Five-step diamond tasks (a -> b, c, d -> e) with no-op handlers, created up front and drained by a " \
               "`TaskerCore::Worker` at concurrency 5; steps/s from `Worker#start` until all are finished.",
      "start_latency" => "On an idle worker (concurrency 5, threads waiting in the GVL-free poll), one task at a " \
                         "time: clock read just before `create_task`, again first thing in the handler; the next " \
                         "task is created after this one finished. In brackets: create -> task finished.",
      "timeout_lag" => "While another Ruby thread spins in a pure-Ruby loop (holding the GVL), events of a step " \
                       "with `timeout_seconds: 0.05` are polled and their \"handler\" sleeps past the deadline. The " \
                       "lag is when the core failed the attempt minus the deadline: from the core's " \
                       "`ffi_dispatch_metrics` (`timeout_lag_ms_p50/p99`) when it reports them, otherwise " \
                       "(\"fallback\") the task's `completed_at` (millisecond resolution, so + 0.5 ms) minus (poll time + 50 ms). " \
                       "Late completions must be rejected.",
      "rss_idle" => "RSS (/proc/self/status, after a full GC) of a process with a started `TaskerCore::Worker` " \
                    "(concurrency 5) before any task.",
      "rss_growth" => "RSS after that worker ran N single-step no-op tasks created in batches and drained batch by " \
                      "batch, each RSS the median of three readings after a full GC. Growth is judged against the " \
                      "RSS after the first 20% of the steps, when the retained tasks, the Ruby heap and the " \
                      "allocators' caches are warm: growth past that is what a leak would show. Growth over idle is " \
                      "reported too: it is mostly the last `finished_task_retention` (10,000 by default) finished " \
                      "tasks the core keeps readable, by design.",
      "pg_floor" => "The raw-SQL floor on the same private PostgreSQL (fsync on, unix socket): N one-step jobs " \
                    "inserted up front into a bare queue table, drained by 4 threads with a connection each, " \
                    "looping over one `UPDATE ... WHERE ctid = ANY(ARRAY(SELECT ... FOR UPDATE SKIP LOCKED " \
                    "LIMIT 64)) RETURNING id` and one `UPDATE ... WHERE id = ANY($1)` (no engine, no handler); " \
                    "timed from the threads' start until every job is done.",
      "delayed_job" => "DelayedJob (Debian's ruby-delayed-job with ActiveRecord and ruby-pg) on the same " \
                       "PostgreSQL: N no-op jobs enqueued with `Delayed::Job.enqueue`, drained by 2 forked worker " \
                       "processes looping over `Delayed::Worker#work_off(100)`; timed from the fork until both " \
                       "exited with the table empty.",
      "pg_noop" => "TaskerCore on the same private PostgreSQL: `tasker-worker` processes (concurrency 5 each) " \
                   "start and go idle; then N single-step no-op tasks are created in one transaction, so all become " \
                   "claimable at its commit; timed from the commit until every task is finished (the store's " \
                   "NOTIFY of finished tasks, counted by a listening connection). In brackets, per step: CPU of " \
                   "the server's processes and of the worker processes (/proc), and transactions committed " \
                   "(pg_stat_database; the store sends each statement on its own, so this is its round trips per " \
                   "step as well).",
      "pg_ratios" => "The PostgreSQL line with one worker process against Sidekiq, DelayedJob (2 processes) and the " \
                     "raw-SQL floor, all measured above in the same run.",
      "pg_dag" => "The same with two-step chains (a -> b) and with the five-step diamonds of line 4, one worker " \
                  "process at concurrency 5.",
      "pg_create" => "`TaskerCore.create_task` from a client process (`TaskerCore.connect`, no worker): one thread " \
                     "creating one task at a time (each its own transaction and fsync), then 4 threads at once.",
      "pg_latency" => "An idle worker process (concurrency 5, woken by LISTEN/NOTIFY) and a client process: the " \
                      "client reads the wall clock, calls `create_task`; the handler answers the wall clock when " \
                      "it started; the next task is created once this one finished. In brackets: create -> " \
                      "finished as the client's `wait_for_task` sees it, and the floor, measured right after " \
                      "with the same worker running: a plain `pg` connection runs `SELECT tasker.create_task(...)` " \
                      "(its own transaction) and a second one, listening as a worker does, reads the wake-up " \
                      "NOTIFY; from before the create until then. No engine is involved in the floor.",
      "pg_recovery" => "Two worker processes (concurrency 4) run 50 ms steps; one is killed with SIGKILL while it " \
                       "holds some. From the steps' attempt history: how long after the kill the last of its steps " \
                       "started again on the other worker (the first in brackets), with the default liveness " \
                       "settings (heartbeat every 1 s, lost after 5 s).",
      "pg_bloat" => "N single-step no-op tasks created in one transaction, then run by one worker process with " \
                    "nothing purged during the run: steps/s over the last window of tasks against the first, from " \
                    "when each task finished (`finished_tasks.completed_at`; each window from one task's finish to " \
                    "the finish of the task a window later). The dashboard's server time on that database, right " \
                    "after the creating commit (N tasks waiting) and again once all have finished: every page and " \
                    "JSON route answered by " \
                    "`TaskerCore::Web` in-process (Rack::MockRequest) from a client process, 7 requests each; the " \
                    "median (and the slowest) per route.",
      "pending" => "RSS with N events polled and not completed minus RSS before polling (the tasks already " \
                   "created, no worker running), divided by N; after a warm-up cycle of the same size. Includes " \
                   "whatever the Ruby heap kept from converting the events."
    }.freeze

    # @param results [Hash{String=>Hash}] measure name -> its result, or {"error" => message}
    # @param sizes [Hash] the sizes the results were measured at
    def initialize(results, sizes:)
      @results = results
      @sizes = sizes
    end

    # @return [Array<Row>]
    def rows
      [*ffi_rows, *concurrency_rows, *noop_rows, dag_row, start_latency_row, timeout_lag_row, *memory_rows,
       *postgres_peer_rows, *postgres_rows]
    end

    # @return [String] the table (Markdown, padded so it reads in a terminal too)
    def table
      header = ["#", "Measure", "Result", "Target", "Status"]
      lines = rows.map { |row| [row.id, row.label, row.result, row.target, row.status] }
      widths = header.each_index.map { |i| ([header] + lines).map { |line| line[i].to_s.length }.max }
      format_line = ->(cells) { "| #{cells.each_with_index.map { |c, i| c.to_s.ljust(widths[i]) }.join(' | ')} |" }
      [format_line.call(header), "|#{widths.map { |w| '-' * (w + 2) }.join('|')}|", *lines.map(&format_line)].join("\n")
    end

    # @return [Boolean] whether some measure raised instead of giving a number
    def errors?
      @results.values.any? { |r| r.key?("error") }
    end

    private

    def result(name)
      @results[name]
    end

    # A row for one measure's result, or an error/not-run row when it has none.
    # @param data [Hash, nil] the result, {"error" => message}, or nil (not run)
    def row(id, label, data, target: "—")
      return Row.new(id: id, label: label, result: "not run", target: target, status: "—") if data.nil?
      if data.key?("error")
        message = data["error"].to_s.lines.first.to_s.strip[0, 200]
        return Row.new(id: id, label: label, result: "error: #{message}", target: target, status: "error")
      end

      text, status = yield(data)
      Row.new(id: id, label: label, result: text, target: target, status: status || "—")
    end

    def ffi_rows
      [
        row("1", "FFI round trip, event Hash (poll_step_events)", result("ffi_round_trip"), target: "≥ 100k/s") do |d|
          trips = d["join_round_trips_per_s"]
          ["#{rate(trips)} round trips/s (µs mean/median: poll #{num(d['join_poll_us'], 1)}/" \
           "#{num(d['join_poll_p50_us'], 1)}, complete #{num(d['join_complete_us'], 1)}/" \
           "#{num(d['join_complete_p50_us'], 1)}; #{num(d['join_poll_objects'], 0)} objects/poll; " \
           "FFI floor #{num(d['ffi_floor_us'], 2)} µs)",
           pass(trips >= 100_000)]
        end,
        row("1", "FFI round trip, StepEvent as the worker reads it", result("ffi_round_trip"),
            target: "≥ 100k/s") do |d|
          trips = d["step_event_worker_round_trips_per_s"]
          ["#{rate(trips)} round trips/s (next_step_event: fields converted when read)", pass(trips >= 100_000)]
        end,
        row("1", "FFI round trip, StepEvent + context and both parents read", result("ffi_round_trip")) do |d|
          ["#{rate(d['step_event_handler_round_trips_per_s'])} round trips/s"]
        end,
        row("1", "Thread::Queue round trip, same Hashes", result("ffi_round_trip")) do |d|
          ["#{rate(d['queue_round_trips_per_s'])}/s (FFI = #{num(d['ratio_to_queue'] * 100, 1)}% of it)"]
        end
      ]
    end

    def concurrency_rows
      base = result("concurrency_1")
      base_rate = base && !base.key?("error") ? base["steps_per_s"] : nil
      Registry::CONCURRENCY_LEVELS.map do |level|
        target = level == 64 ? "≥ 90% of ideal" : "—"
        row("2", "10 ms handlers, concurrency #{level}", result("concurrency_#{level}"), target: target) do |d|
          gain = level > 1 && base_rate ? ", #{num(d['steps_per_s'] / base_rate, 1)}× c=1" : ""
          text = "#{rate(d['steps_per_s'])} steps/s (#{num(d['fraction_of_ideal'] * 100, 0)}% of " \
                 "#{rate(d['ideal_steps_per_s'])}#{gain})"
          [text, level == 64 ? pass(d["fraction_of_ideal"] >= 0.9) : nil]
        end
      end
    end

    def noop_rows
      tasks = @sizes[:e2e_tasks]
      tasker = row("3", "#{count(tasks)} no-op tasks, TaskerCore worker c=5", result("tasker_noop")) do |d|
        ["#{rate(d['steps_per_s'])} steps/s (Ruby worker code alone: #{num(d['ruby_step_us'], 1)} µs/step)"]
      end
      sidekiq = row("3", "#{count(tasks)} no-op jobs, Sidekiq c=5", result("sidekiq_noop")) do |d|
        ["#{rate(d['jobs_per_s'])} jobs/s"]
      end
      [tasker, sidekiq, ratio_row, creation_row]
    end

    def both(first, second)
      a = result(first)
      b = result(second)
      return nil if a.nil? || b.nil?
      return { "error" => [a["error"], b["error"]].compact.join("; ") } if a.key?("error") || b.key?("error")

      { "a" => a, "b" => b }
    end

    def ratio_row
      row("3", "TaskerCore steps/s ÷ Sidekiq jobs/s", both("tasker_noop", "sidekiq_noop"), target: "≥ 5×") do |d|
        ratio = d["a"]["steps_per_s"] / d["b"]["jobs_per_s"]
        ["#{num(ratio, 2)}×", pass(ratio >= 5)]
      end
    end

    def creation_row
      row("3", "create_task rate vs push_bulk rate", both("tasker_noop", "sidekiq_noop")) do |d|
        a = d["a"]["creation_per_s"]
        b = d["b"]["push_per_s"]
        ["#{rate(a)} tasks/s vs #{rate(b)} jobs/s (#{num(a / b, 2)}×)"]
      end
    end

    def dag_row
      row("4", "#{count(@sizes[:dag_tasks])} diamond tasks a→b,c,d→e, c=5", result("dag")) do |d|
        ["#{rate(d['steps_per_s'])} steps/s (#{rate(d['tasks_per_s'])} tasks/s)"]
      end
    end

    def start_latency_row
      target = "p50 < 1 ms, p99 < 5 ms"
      row("5", "create_task → handler start, idle worker", result("start_latency"), target: target) do |d|
        ["p50 #{ms(d['p50_ms'])}, p99 #{ms(d['p99_ms'])} (finished: p50 #{ms(d['finished_p50_ms'])}, " \
         "p99 #{ms(d['finished_p99_ms'])}; #{d['samples']} samples)",
         pass(d["p50_ms"] < 1 && d["p99_ms"] < 5)]
      end
    end

    def timeout_lag_row
      row("5", "Timeout detection lag, GVL held by a Ruby thread", result("timeout_lag"), target: "p99 < 100 ms") do |d|
        fallback = if d["source"] == "fallback"
                     ""
                   else
                     "; fallback p50 #{ms(d['fallback_p50_ms'])}, p99 #{ms(d['fallback_p99_ms'])}"
                   end
        ["p50 #{ms(d['p50_ms'])}, p99 #{ms(d['p99_ms'])} (#{d['source']}, #{d['samples']} samples#{fallback})",
         pass(d["p99_ms"] < 100)]
      end
    end

    def memory_rows
      steps = @sizes[:memory_steps]
      [
        row("6", "RSS idle (worker started, no work)", result("memory_growth"), target: "< 60 MB") do |d|
          ["#{num(d['idle_rss_mb'], 1)} MB", pass(d["idle_rss_mb"] < 60)]
        end,
        row("6", "RSS after #{count(steps)} no-op steps", result("memory_growth"),
            target: "growth < 10%") do |d|
          ["#{num(d['final_rss_mb'], 1)} MB: #{signed(d['growth_since_warm_pct'])}% vs " \
           "#{num(d['warm_rss_mb'], 1)} MB after the first #{count(d['warm_steps'] || steps / 5)} steps " \
           "(#{signed(d['growth_pct'])}% vs idle: #{count(d['tasks_in_memory'])} finished tasks retained)",
           pass(d["growth_since_warm_pct"] < 10)]
        end,
        row("6", "Memory per pending event", result("pending_memory")) do |d|
          ["#{count(d['bytes_per_event'].round)} bytes (#{count(d['events'])} events pending)"]
        end
      ]
    end

    def postgres_rows
      tasks = @sizes[:pg_tasks]
      [
        *[1, 2].map do |workers|
          row("8", "#{count(tasks)} no-op tasks, PostgreSQL, #{workers} worker process#{workers > 1 ? 'es' : ''} c=5",
              result("pg_noop_#{workers}")) do |d|
            ["#{rate(d['steps_per_s'])} steps/s (per step: postgres #{num(d['postgres_cpu_us_per_step'], 0)} µs CPU, " \
             "workers #{num(d['worker_cpu_us_per_step'], 0)} µs CPU, #{num(d['commits_per_step'], 3)} commits)"]
          end
        end,
        pg_ratio_row("sidekiq_noop", "jobs_per_s", "vs Sidekiq c=5", 1.5, "≥ 1.5×"),
        pg_ratio_row("delayed_job_noop", "jobs_per_s", "vs DelayedJob, 2 processes", 15, "≥ 15×"),
        pg_ratio_row("pg_floor", "jobs_per_s", "vs the raw-SQL floor", 0.4, "≥ 40 %"),
        row("8", "#{count(@sizes[:pg_dag_tasks])} two-step and diamond tasks, PostgreSQL, 1 process c=5",
            result("pg_dag")) do |d|
          ["two-step #{rate(d['chain_steps_per_s'])} steps/s, diamond #{rate(d['diamond_steps_per_s'])} steps/s " \
           "(#{num(d['chain_commits_per_step'], 3)} / #{num(d['diamond_commits_per_step'], 3)} commits/step)"]
        end,
        row("8", "create_task rate, PostgreSQL client", result("pg_create")) do |d|
          ["#{rate(d['per_s'])} tasks/s on one thread, #{rate(d['threads_per_s'])} tasks/s on #{d['threads']}"]
        end,
        row("8", "create_task → handler start, idle worker process (LISTEN/NOTIFY)", result("pg_latency"),
            target: "p50 < 2 ms, p99 < 10 ms") do |d|
          ["p50 #{ms(d['p50_ms'])}, p99 #{ms(d['p99_ms'])} (finished: p50 #{ms(d['finished_p50_ms'])}, " \
           "p99 #{ms(d['finished_p99_ms'])}; #{d['samples']} samples; floor, SQL create -> NOTIFY read: " \
           "p50 #{ms(d['floor_p50_ms'])}, p99 #{ms(d['floor_p99_ms'])})",
           pass(d["p50_ms"] < 2 && d["p99_ms"] < 10)]
        end,
        row("8", "SIGKILLed worker: its steps run again elsewhere", result("pg_recovery"), target: "≤ 10 s") do |d|
          ["#{num(d['recovery_s'], 1)} s after the kill (first #{num(d['first_rerun_s'], 1)} s; " \
           "#{d['lost_steps']} steps)", pass(d["recovery_s"] <= 10)]
        end,
        dashboard_row("pages_backlog", "waiting (just created in one transaction)"),
        dashboard_row("pages", "finished, a worker running"),
        row("8", "steps/s of the last #{count(@sizes[:pg_bloat_window])} of #{count(@sizes[:pg_bloat_tasks])} " \
                 "vs the first", result("pg_bloat"), target: "≥ 80%") do |d|
          ["#{num(d['last_vs_first'] * 100, 0)}% (#{rate(d['last_steps_per_s'])} vs #{rate(d['first_steps_per_s'])} " \
           "steps/s)", pass(d["last_vs_first"] >= 0.8)]
        end
      ]
    end

    # The dashboard's slowest route (by median) on the bloat run's database at one moment.
    def dashboard_row(key, moment)
      row("8", "dashboard server time, slowest route, #{count(@sizes[:pg_bloat_tasks])} PostgreSQL tasks #{moment}",
          result("pg_bloat"), target: "< 200 ms") do |d|
        pages = d.fetch(key)
        slowest = pages.max_by { |_, t| t["median_ms"] }
        ["#{slowest[0]} median #{ms(slowest[1]['median_ms'])} (max #{ms(slowest[1]['max_ms'])}); every route: " +
         pages.map { |route, t| "#{route} #{num(t['median_ms'], 1)}" }.join(", ") + " ms",
         pass(pages.values.all? { |t| t["median_ms"] < 200 })]
      end
    end

    # The one-process PostgreSQL rate against a peer's.
    def pg_ratio_row(peer, key, label, minimum, target)
      row("8", "PostgreSQL steps/s (1 process) #{label}", both("pg_noop_1", peer), target: target) do |d|
        ratio = d["a"]["steps_per_s"] / d["b"][key]
        text = minimum < 1 ? "#{num(ratio * 100, 0)} %" : "#{num(ratio, 2)}×"
        [text, pass(ratio >= minimum)]
      end
    end

    def postgres_peer_rows
      [
        row("7", "#{count(@sizes[:e2e_tasks])} one-step jobs, raw SQL floor (SKIP LOCKED 64 + batch complete, " \
                 "4 connections)", result("pg_floor")) do |d|
          ["#{rate(d['jobs_per_s'])} jobs/s (#{num(d['commits_per_job'], 3)} commits/job, PostgreSQL " \
           "#{d['server_version']})"]
        end,
        row("7", "#{count(@sizes[:dj_jobs])} no-op jobs, DelayedJob, 2 worker processes", result("delayed_job_noop")) do |d|
          ["#{rate(d['jobs_per_s'])} jobs/s (enqueue #{rate(d['enqueue_per_s'])}/s; delayed_job " \
           "#{d['delayed_job_version']}, ActiveRecord #{d['activerecord_version']})"]
        end
      ]
    end

    def pass(condition)
      condition ? "pass" : "MISS"
    end

    def num(value, digits)
      format("%.#{digits}f", value)
    end

    def signed(value)
      format("%+.1f", value)
    end

    def ms(value)
      value < 1 ? format("%.3f ms", value) : format("%.1f ms", value)
    end
  end
end
