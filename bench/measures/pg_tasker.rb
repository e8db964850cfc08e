# frozen_string_literal: true

require "json"
require "time"
require_relative "../support/helper"
require_relative "../support/pg_workers"
require_relative "../support/templates"

module Bench
  module Measures
    # Section 8: TaskerCore on PostgreSQL, `tasker-worker` processes on a private server
    # (fsync on). Tasks are created in one transaction while the workers are already
    # running and idle, so the clock starts at its commit (all become claimable at once)
    # and stops when every task is finished (the store's NOTIFY of finished tasks, counted
    # by a listening connection). With each run: the CPU the server's processes and the
    # workers used per step, and the transactions committed per step (each statement the
    # store sends outside a transaction commits on its own, so this is about its round
    # trips per step too).
    class PgDrain
      CONCURRENCY = 5

      # @param sizes [Hash] see Bench::Sizes
      # @param workers [Integer] worker processes
      # @param template [String] a template of Bench::Templates
      # @param tasks_key [Symbol] the size key of how many tasks
      def initialize(sizes:, workers: 1, template: "noop", tasks_key: :pg_tasks)
        @tasks = sizes.fetch(tasks_key)
        @workers = workers
        @template = template
      end

      # @return [Hash]
      def call
        Templates.with_directory do |dir|
          pg = PgWorkers.new(prefix: "bench_#{@template}")
          begin
            pg.start_workers(@workers, concurrency: CONCURRENCY, template_dir: dir)
            PG.connect(pg.url) { |conn| drain(pg, conn) }
          ensure
            pg.stop
          end
        end
      end

      private

      def drain(pg, conn)
        steps_per_task = Templates::DEFINITIONS.fetch(@template).size
        sleep 1.5 # the statistics of the start (migrations, registration) are flushed
        commits_before = pg.commits(conn)
        committed = pg.create_at_once(conn, @tasks, name: @template)
        cpu_before = pg.cpu_seconds
        done = pg.wait_drained(conn, tasks: @tasks, timeout: 1200)
        cpu = pg.cpu_seconds.to_h { |key, value| [key, value - cpu_before.fetch(key)] }
        counts = pg.task_counts(conn)
        raise MeasureError, "not every task completed: #{counts}" unless counts == { "complete" => @tasks }

        sleep 1.5
        steps = @tasks * steps_per_task
        # The creating transaction is one commit; the rest are the workers'.
        commits = pg.commits(conn) - commits_before - 1
        seconds = done - committed
        { tasks: @tasks, workers: @workers, concurrency: CONCURRENCY, template: @template, steps: steps,
          seconds: seconds, steps_per_s: steps / seconds, tasks_per_s: @tasks / seconds,
          postgres_cpu_us_per_step: cpu[:postgres] / steps * 1e6, worker_cpu_us_per_step: cpu[:workers] / steps * 1e6,
          commits_per_step: commits.to_f / steps }
      end
    end

    # Two-step chains and five-step diamonds on one worker process (the steps/s of each).
    class PgDag
      # @param sizes [Hash] see Bench::Sizes
      def initialize(sizes:)
        @sizes = sizes
      end

      # @return [Hash]
      def call
        chain = PgDrain.new(sizes: @sizes, template: "chain2", tasks_key: :pg_dag_tasks).call
        diamond = PgDrain.new(sizes: @sizes, template: "dag5", tasks_key: :pg_dag_tasks).call
        { chain_steps_per_s: chain[:steps_per_s], chain_tasks: chain[:tasks],
          diamond_steps_per_s: diamond[:steps_per_s], diamond_tasks: diamond[:tasks],
          chain_commits_per_step: chain[:commits_per_step], diamond_commits_per_step: diamond[:commits_per_step] }
      end
    end

    # create_task from a client process (TaskerCore.connect): one thread, one task at a
    # time (each its own transaction: one commit, one fsync), then four threads at once.
    class PgCreate
      THREADS = 4

      # @param sizes [Hash] see Bench::Sizes
      def initialize(sizes:)
        @tasks = sizes.fetch(:pg_create_tasks)
      end

      # @return [Hash]
      def call
        Templates.with_directory do |dir|
          pg = PgWorkers.new(prefix: "bench_create")
          begin
            TaskerCore.connect(database_url: pg.url, template_path: dir)
            one = Helper.time { @tasks.times { |i| create(i) } }
            many = Helper.time do
              Array.new(THREADS) { |t| Thread.new { (@tasks / THREADS).times { |i| create((t * @tasks) + i) } } }
                   .each(&:join)
            end
            { tasks: @tasks, per_s: @tasks / one, threads: THREADS,
              threads_per_s: (@tasks / THREADS) * THREADS / many }
          ensure
            pg.stop(server: false)
          end
        end
      end

      private

      def create(i)
        TaskerCore.create_task(namespace: Templates::NAMESPACE, name: "noop", context: { "i" => i })
      end
    end

    # create_task (a client process) -> handler start (an idle worker process, woken by
    # LISTEN/NOTIFY): the handler answers the wall-clock time it started; one task at a
    # time, the next created once this one finished.
    #
    # Then, with the same worker still running, the database's part alone (the floor):
    # a plain `pg` connection creates the task with `tasker.create_task` (its own
    # transaction), and a second one, listening as a worker does, receives the wake-up
    # NOTIFY; the time from before the create until the notification is read. No engine
    # is involved on either side, so the engine's share is the difference.
    class PgLatency
      WARMUP = 10
      READY_CHANNEL = "tasker_steps_ready"

      # @param sizes [Hash] see Bench::Sizes
      def initialize(sizes:)
        @samples = sizes.fetch(:latency_samples)
      end

      # @return [Hash]
      def call
        Templates.with_directory do |dir|
          pg = PgWorkers.new(prefix: "bench_latency")
          begin
            pg.start_workers(1, concurrency: 5, template_dir: dir)
            TaskerCore.connect(database_url: pg.url)
            sleep 0.5 # its threads reach their poll, its executor its wait
            WARMUP.times { sample }
            starts, rounds = Array.new(@samples) { sample }.transpose
            floor = floor_samples(pg.url)
            { samples: @samples, p50_ms: Helper.percentile(starts, 50), p99_ms: Helper.percentile(starts, 99),
              max_ms: starts.max, finished_p50_ms: Helper.percentile(rounds, 50),
              finished_p99_ms: Helper.percentile(rounds, 99),
              floor_p50_ms: Helper.percentile(floor, 50), floor_p99_ms: Helper.percentile(floor, 99) }
          ensure
            pg.stop(server: false)
          end
        end
      end

      private

      # @return [Array(Float, Float)] ms: create -> handler start, create -> finished (seen here)
      def sample
        before = Process.clock_gettime(Process::CLOCK_REALTIME, :nanosecond)
        uuid = TaskerCore.create_task(namespace: Templates::NAMESPACE, name: "stamp_wall")
        task = TaskerCore.wait_for_task(uuid, timeout: 10)
        finished = Process.clock_gettime(Process::CLOCK_REALTIME, :nanosecond)
        raise MeasureError, "task #{uuid} ended #{task['status']}" unless task["status"] == "complete"

        started = task["steps"].first.dig("result", "started_ns")
        [(started - before) / 1e6, (finished - before) / 1e6]
      end

      # @return [Array<Float>] ms: SQL create -> its NOTIFY read by a listening connection
      def floor_samples(url)
        creator = PG.connect(url)
        listener = PG.connect(url)
        listener.exec("LISTEN #{READY_CHANNEL}")
        (WARMUP + @samples).times.map do
          before = Helper.now
          uuid = creator.exec("SELECT tasker.create_task('#{Templates::NAMESPACE}', 'stamp_wall', NULL, '{}')")
                        .getvalue(0, 0)
          raise MeasureError, "no NOTIFY on #{READY_CHANNEL} within 10 s of a commit" unless listener.wait_for_notify(10)

          notified = Helper.now
          drain_notifications(listener)
          TaskerCore.wait_for_task(uuid, timeout: 10)
          (notified - before) * 1e3
        end.drop(WARMUP)
      ensure
        creator&.close
        listener&.close
      end

      # Reads the notifications that came since (other processes' wake-ups).
      def drain_notifications(conn)
        nil while conn.wait_for_notify(0)
      end
    end

    # Two worker processes run 50 ms steps; one is killed with SIGKILL while it holds
    # some. Recovery: how long after the kill its steps started again on the other worker
    # (the latest of them), from the steps' attempt history; with the default liveness
    # settings (a worker is lost after 5 s without a heartbeat, beating every second).
    class PgRecovery
      # @param sizes [Hash] see Bench::Sizes
      def initialize(sizes:)
        @tasks = sizes.fetch(:pg_recovery_tasks)
      end

      # @return [Hash]
      def call
        Templates.with_directory do |dir|
          pg = PgWorkers.new(prefix: "bench_recovery")
          begin
            victim, = pg.start_workers(2, concurrency: 4, template_dir: dir)
            PG.connect(pg.url) { |conn| recover(pg, conn, victim) }
          ensure
            pg.stop
          end
        end
      end

      private

      def recover(pg, conn, victim)
        pg.create_at_once(conn, @tasks, name: "sleep50")
        sleep 0.5
        killed_at = pg.kill(victim)
        pg.wait_drained(conn, tasks: @tasks, timeout: 120)
        counts = pg.task_counts(conn)
        raise MeasureError, "not every task completed: #{counts}" unless counts == { "complete" => @tasks }

        waits = rerun_starts(conn).map { |started| started - killed_at }
        raise MeasureError, "the killed worker held no step when it died" if waits.empty?

        { tasks: @tasks, lost_steps: waits.size, recovery_s: waits.max, first_rerun_s: waits.min }
      end

      # When each step that had a worker_lost attempt started its next attempt (epoch s).
      def rerun_starts(conn)
        conn.exec("SELECT history FROM tasker.steps WHERE history::text LIKE '%worker_lost%'").filter_map do |row|
          history = JSON.parse(row["history"])
          lost = history.index { |attempt| attempt["outcome"] == "worker_lost" }
          rerun = history[(lost + 1)..].find { |attempt| attempt["started_at"] }
          rerun && Time.iso8601(rerun["started_at"]).to_f
        end
      end
    end

    # The dashboard's server time on the bloat run's database (N tasks waiting, or N
    # finished with a live worker): each page and JSON route answered in-process by
    # TaskerCore::Web through Rack::MockRequest from a client process (TaskerCore.connect);
    # the median and the slowest of REPEATS requests per route, in ms.
    class PgDashboard
      REPEATS = 7

      # @param url [String] the database
      # @param conn [PG::Connection] to pick a task and a filter
      def initialize(url, conn)
        @url = url
        @conn = conn
      end

      # @return [Hash] route => { "median_ms" =>, "max_ms" => }
      def call
        require "rack/mock"
        require "tasker_core/web"
        TaskerCore.connect(database_url: @url)
        app = Rack::MockRequest.new(TaskerCore::Web.new)
        routes.to_h do |label, path|
          times = Array.new(REPEATS) do
            started = Helper.now
            response = app.get(path)
            raise MeasureError, "GET #{path} answered #{response.status}" unless response.status == 200

            (Helper.now - started) * 1000
          end.sort
          [label, { "median_ms" => times[REPEATS / 2], "max_ms" => times.last }]
        end
      end

      private

      def routes
        uuid = @conn.exec("SELECT task_uuid FROM tasker.tasks ORDER BY created_at DESC, task_seq DESC LIMIT 1")
                    .getvalue(0, 0)
        page2 = @conn.exec("SELECT task_uuid FROM tasker.tasks ORDER BY created_at DESC, task_seq DESC " \
                           "OFFSET 24 LIMIT 1").getvalue(0, 0)
        {
          "/" => "/", "/tasks" => "/tasks", "/tasks?status=complete" => "/tasks?status=complete",
          "/tasks?status=error" => "/tasks?status=error", "/tasks?status=pending" => "/tasks?status=pending",
          "/tasks?namespace&name" => "/tasks?namespace=bench&name=noop",
          "/tasks (page 2)" => "/tasks?before=#{page2}", "/tasks/:uuid" => "/tasks/#{uuid}",
          "/workers" => "/workers", "/api/stats" => "/api/stats", "/api/tasks" => "/api/tasks",
          "/api/tasks/:uuid" => "/api/tasks/#{uuid}", "/metrics" => "/metrics"
        }
      end
    end

    # Bloat: N single-step tasks on one worker process, all kept (no retention in the
    # run): the steps/s of the last window of tasks against the first, from when each
    # task finished (finished_tasks.completed_at, the server's clock). The N tasks are
    # created in one transaction before the worker starts; the dashboard is timed right
    # after that commit (N tasks waiting, their status counts not folded yet) and again
    # once all have finished.
    class PgBloat
      # @param sizes [Hash] see Bench::Sizes
      def initialize(sizes:)
        @tasks = sizes.fetch(:pg_bloat_tasks)
        @window = sizes.fetch(:pg_bloat_window)
      end

      # @return [Hash]
      def call
        Templates.with_directory do |dir|
          pg = PgWorkers.new(prefix: "bench_bloat")
          begin
            PG.connect(pg.url) { |conn| measure(pg, conn, dir) }
          ensure
            # This process is connected to the server (the dashboard's client).
            pg.stop(server: false)
          end
        end
      end

      private

      def measure(pg, conn, dir)
        # The schema and the template, as a worker would leave them, before the burst.
        pg.start_workers(1, concurrency: 5, template_dir: dir)
        pg.stop_workers
        pg.create_at_once(conn, @tasks, name: "noop")
        backlog = PgDashboard.new(pg.url, conn).call
        pg.start_workers(1, concurrency: 5, template_dir: dir)
        pg.wait_drained(conn, tasks: @tasks, timeout: 3600)
        # Both windows alike: from one task's finish to the finish of the task `@window`
        # places later (not from the worker's start, which would add its first claim and
        # first batch to the first window only).
        first = finished_at(conn, @window) - finished_at(conn, 0)
        last = finished_at(conn, @tasks - 1) - finished_at(conn, @tasks - @window - 1)
        # A window inside one completion batch (its tasks share the batch's completed_at)
        # has no duration: the window must be larger than a batch (512 results).
        unless first.positive? && last.positive?
          raise MeasureError, "a window of #{@window} tasks finished within one batch (first #{first} s, " \
                              "last #{last} s); use a larger window"
        end
        { tasks: @tasks, window: @window, first_steps_per_s: @window / first, last_steps_per_s: @window / last,
          last_vs_first: first / last, pages_backlog: backlog, pages: PgDashboard.new(pg.url, conn).call }
      end

      # When the task that finished `offset`-th (from 0) finished, epoch seconds.
      def finished_at(conn, offset)
        Float(conn.exec_params("SELECT extract(epoch FROM completed_at) FROM tasker.finished_tasks " \
                               "ORDER BY completed_at OFFSET $1 LIMIT 1", [offset]).getvalue(0, 0))
      end
    end
  end
end
