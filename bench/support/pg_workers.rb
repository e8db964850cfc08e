# frozen_string_literal: true

require "open3"
require "rbconfig"
require "tmpdir"
require_relative "helper"
require_relative "process_cpu"
require_relative "../../spec/support/private_postgres"

module Bench
  # What the PostgreSQL measures share: a private server (fsync on, unix socket), a fresh
  # database each, `tasker-worker` processes running the benchmark handlers on the
  # benchmark templates, tasks created in one transaction (so they all become claimable
  # at one commit, with the workers already idle), a cheap probe for "everything done",
  # and the CPU time of the server's and the workers' processes.
  class PgWorkers
    ROOT = File.expand_path("../..", __dir__)
    EXE = File.join(ROOT, "exe", "tasker-worker")
    HANDLERS = File.join(ROOT, "bench", "support", "handlers.rb")
    # Where the store announces finished tasks (their uuids, comma-separated, up to 200 a
    # notification): counting them costs the server nothing, whatever the size of the
    # tables (a count read every few milliseconds competed with the workers for the server).
    FINISHED_CHANNEL = "tasker_task_finished"

    Worker = Struct.new(:pid, :log, keyword_init: true)

    attr_reader :url, :server

    # @param prefix [String] the database's name prefix
    def initialize(prefix:)
      require "pg"
      @server = PrivatePostgres.start
      @url = @server.fresh_database(prefix: prefix)
      @dir = Dir.mktmpdir("tasker-bench-pg")
      @workers = []
    end

    # Starts `count` worker processes and waits until each has started.
    # @param template_dir [String]
    # @return [Array<Worker>]
    def start_workers(count, concurrency:, template_dir:)
      started = Array.new(count) do |i|
        log = File.join(@dir, "worker-#{@workers.size + i}.log")
        command = [RbConfig.ruby, "-I", File.join(ROOT, "lib"), EXE, "--database-url", @url, "--require", HANDLERS,
                   "--templates", template_dir, "--concurrency", concurrency.to_s]
        pid = Process.spawn({ "TASKER_DATABASE_URL" => nil }, *command,
                            out: log, err: log)
        Worker.new(pid: pid, log: log)
      end
      @workers.concat(started)
      started.each { |worker| wait_started(worker) }
      started
    end

    # Creates `count` tasks of `name` in one transaction; they become claimable together
    # at its commit. `conn` listens for finished tasks from then on (see #wait_drained).
    # @return [Float] monotonic time right after the commit
    def create_at_once(conn, count, name:)
      listen_finished(conn)
      conn.exec("BEGIN")
      conn.exec_params("SELECT count(tasker.create_task('bench', $1, NULL, jsonb_build_object('i', i))) " \
                       "FROM generate_series(1, $2) AS i", [name, count])
      conn.exec("COMMIT")
      Helper.now
    end

    # Makes `conn` count finished tasks for #wait_drained; call before creating them.
    def listen_finished(conn)
      conn.exec("LISTEN #{FINISHED_CHANNEL}")
    end

    # Waits until `tasks` tasks finished, as announced to `conn` since #listen_finished.
    # @return [Float] monotonic time
    def wait_drained(conn, tasks:, timeout:)
      deadline = Helper.now + timeout
      finished = 0
      while finished < tasks
        left = deadline - Helper.now
        raise MeasureError, "#{tasks - finished} tasks still unfinished after #{timeout}s" if left <= 0

        conn.wait_for_notify(left) { |_channel, _pid, payload| finished += payload.count(",") + 1 }
      end
      done = Helper.now
      conn.exec("UNLISTEN #{FINISHED_CHANNEL}")
      done
    end

    # @return [Hash] "complete" => n, ... over the whole database
    def task_counts(conn)
      conn.exec("SELECT status, count(*) FROM tasker.finished_tasks GROUP BY status").to_h do |row|
        [row["status"], Integer(row["count"])]
      end
    end

    # CPU seconds used so far by the server's processes (the postmaster's children) and
    # by the workers.
    # @return [Hash] :postgres, :workers
    def cpu_seconds
      postmaster = Integer(File.read(File.join(@server.root, "data", "postmaster.pid")).lines.first)
      { postgres: children_of(postmaster).sum { |pid| ProcessCpu.seconds(pid) },
        workers: @workers.sum { |worker| ProcessCpu.seconds(worker.pid) } }
    end

    # Transactions committed in the database so far (the server flushes its statistics
    # about once a second: read after a pause).
    def commits(conn)
      Integer(conn.exec("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()")
                  .getvalue(0, 0))
    end

    # Stops the workers and the server. `server: false` leaves the server to its watchdog
    # (it stops when this process exits): for a process that is itself connected to it.
    def stop(server: true)
      stop_workers
      @server&.stop if server
      FileUtils.rm_rf(@dir)
    end

    # Stops the workers (TERM) and waits for them to exit.
    def stop_workers
      @workers.each do |worker|
        Process.kill("TERM", worker.pid)
      rescue Errno::ESRCH
        nil
      end
      @workers.each do |worker|
        Process.wait(worker.pid)
      rescue Errno::ECHILD
        nil
      end
      @workers.clear
    end

    # Kills a worker with SIGKILL. @return [Float] wall-clock seconds at the kill
    def kill(worker)
      Process.kill("KILL", worker.pid)
      killed_at = Helper.wall
      Process.wait(worker.pid)
      @workers.delete(worker)
      killed_at
    end

    private

    def wait_started(worker, timeout: 60)
      deadline = Helper.now + timeout
      until File.read(worker.log).include?(" started: ")
        if Process.waitpid(worker.pid, Process::WNOHANG) || Helper.now > deadline
          raise MeasureError, "a tasker-worker did not start:\n#{File.read(worker.log)}"
        end

        sleep 0.05
      end
    end

    def children_of(parent)
      Dir.glob("/proc/[0-9]*/stat").filter_map do |path|
        fields = File.read(path).split(") ").last.split
        Integer(path[%r{/proc/(\d+)/}, 1]) if Integer(fields[1]) == parent
      rescue Errno::ENOENT, Errno::ESRCH
        nil
      end
    end
  end
end
