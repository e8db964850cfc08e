# frozen_string_literal: true

require "fileutils"
require "open3"
require "optparse"
require "rbconfig"
require "time"
require "tmpdir"
require "tasker_core"
require "tasker_core/demo/runner"

module TaskerCore
  module Demo
    # `bin/demo --postgres`: the sample workflows on PostgreSQL, across processes. Starts a
    # private PostgreSQL (bin/private-postgres: a temporary directory, a unix socket, no
    # system service), two `tasker-worker` processes, and makes this process the client
    # (TaskerCore.connect) that creates the tasks. In the middle of the run it kills one
    # worker with SIGKILL, then shows every task still finishing with the right result, and
    # how long the killed worker's steps waited before they ran again on the other one.
    class PostgresRunner
      ROOT = File.expand_path("../../..", __dir__)
      PRIVATE_POSTGRES = File.join(ROOT, "bin", "private-postgres")
      EXE = File.join(ROOT, "exe", "tasker-worker")
      HANDLERS = File.expand_path("handlers.rb", __dir__)

      # @param argv [Array<String>] --tasks N, --concurrency N, --kill-at FRACTION, --seed N
      # @param out [IO]
      def initialize(argv = [], out: $stdout)
        @out = out
        @tasks_per_workflow = 200
        @concurrency = 4
        @kill_at = 0.3
        @seed = 42
        parse(argv)
      end

      # @return [Integer] 0 when every task completed with the right result
      def run
        @dir = Dir.mktmpdir("tasker_demo_postgres")
        url = start_server
        workers = %w[worker-1 worker-2].map { |name| start_worker(name, url) }
        workers.each { |worker| wait_started(worker) }
        TaskerCore.connect(database_url: url)
        banner(url, workers)
        started = monotonic
        tasks = create_tasks
        killed_at = watch(tasks, started, victim: workers.first)
        finished = tasks.to_h { |(_, _, uuid)| [uuid, TaskerCore.wait_for_task(uuid, timeout: 120)] }
        summary(tasks, finished, killed_at, monotonic - started, workers)
      ensure
        workers&.each { |worker| stop_worker(worker) }
        FileUtils.rm_rf(@dir) if @dir
        # The server goes when this process does (its watchdog), after this process's own
        # connections have closed.
      end

      private

      Worker = Struct.new(:name, :pid, :log, keyword_init: true)

      def parse(argv)
        OptionParser.new do |o|
          o.banner = "usage: bin/demo --postgres [--tasks N] [--concurrency N] [--kill-at FRACTION] [--seed N]"
          o.on("--tasks N", Integer, "tasks per workflow (default 200)") { |v| @tasks_per_workflow = positive(v) }
          o.on("--concurrency N", Integer, "handler threads per worker process (default 4)") do |v|
            @concurrency = positive(v)
          end
          o.on("--kill-at FRACTION", Float, "share of tasks finished when a worker is killed (default 0.3)") do |v|
            raise OptionParser::InvalidArgument, v.to_s unless v.positive? && v < 1

            @kill_at = v
          end
          o.on("--seed N", Integer, "seed of the task inputs (default 42)") { |v| @seed = v }
        end.parse!(argv)
      end

      def positive(value)
        raise OptionParser::InvalidArgument, value.to_s unless value.positive?

        value
      end

      def monotonic = Process.clock_gettime(Process::CLOCK_MONOTONIC)

      # @return [String] the server's database URL
      def start_server
        out, err, status = Open3.capture3(PRIVATE_POSTGRES, "start", "--owner", Process.pid.to_s)
        raise Errors::Error, "could not start a private PostgreSQL: #{err.strip}" unless status.success?

        values = out.lines.to_h { |line| line.chomp.split("=", 2) }
        values.fetch("TASKER_PG_URL")
      end

      def start_worker(name, url)
        log = File.join(@dir, "#{name}.log")
        command = [RbConfig.ruby, "-I", File.join(ROOT, "lib"), EXE, "--database-url", url, "--require", HANDLERS,
                   "--templates", Runner::TEMPLATE_PATH, "--concurrency", @concurrency.to_s]
        pid = Process.spawn({ "TASKER_DATABASE_URL" => nil }, *command, out: log, err: log, pgroup: true)
        Worker.new(name: name, pid: pid, log: log)
      end

      def wait_started(worker, timeout: 60)
        deadline = monotonic + timeout
        until File.read(worker.log).include?(" started: ")
          if Process.waitpid(worker.pid, Process::WNOHANG) || monotonic > deadline
            raise Errors::Error, "#{worker.name} did not start:\n#{File.read(worker.log)}"
          end

          sleep 0.05
        end
      end

      def stop_worker(worker)
        Process.kill("TERM", worker.pid)
        Process.wait(worker.pid)
      rescue Errno::ESRCH, Errno::ECHILD
        nil
      end

      def banner(url, workers)
        @out.puts "tasker_core demo on PostgreSQL: #{Runner::WORKFLOWS.size} workflows x #{@tasks_per_workflow} " \
                  "tasks, #{workers.size} tasker-worker processes (#{@concurrency} threads each), " \
                  "this process the client"
        @out.puts "  database #{url} (a private server, removed when this process exits)"
        @out.puts "  workers  #{workers.map { |w| "#{w.name} pid #{w.pid}" }.join(', ')}"
        @out.puts
      end

      # @return [Array<Array(Runner::Workflow, Integer, String)>] workflow, input, task uuid
      def create_tasks
        random = Random.new(@seed)
        Runner::WORKFLOWS.flat_map do |workflow|
          Array.new(@tasks_per_workflow) do
            n = random.rand(1..1000)
            [workflow, n, TaskerCore.create_task(namespace: workflow.namespace, name: workflow.name,
                                                 context: workflow.context.call(n))]
          end
        end
      end

      # Shows progress until every task finished; kills `victim` once `@kill_at` of them
      # did. @return [Time] when it was killed
      def watch(tasks, started, victim:)
        killed_at = nil
        loop do
          counts = TaskerCore.stats["tasks"]
          done = counts.values_at("complete", "error", "cancelled").sum
          if killed_at.nil? && done >= tasks.size * @kill_at
            Process.kill("KILL", victim.pid)
            killed_at = Time.now
            Process.wait(victim.pid)
            @out.puts if @out.tty?
            @out.puts format("[%6.2fs] killed %s (pid %d) with SIGKILL at %d/%d tasks finished", monotonic - started,
                             victim.name, victim.pid, done, tasks.size)
          end
          line = format("[%6.2fs] tasks %d/%d finished, %d in progress, %d workers alive", monotonic - started, done,
                        tasks.size, counts["in_progress"], TaskerCore.stats["workers_alive"])
          @out.tty? ? @out.print("\r#{line}") : @out.puts(line)
          break if done >= tasks.size

          sleep(@out.tty? ? 0.1 : 0.5)
        end
        @out.puts if @out.tty?
        killed_at
      end

      # The steps the killed worker was running: their attempt after the worker_lost one,
      # and when it started.
      def recovered_steps(finished, killed_at)
        finished.values.flat_map do |task|
          task["steps"].filter_map do |step|
            history = step["history"]
            lost = history.index { |attempt| attempt["outcome"] == "worker_lost" }
            next unless lost

            rerun = history[(lost + 1)..].find { |attempt| attempt["started_at"] }
            rerun && [step["name"], Time.iso8601(rerun["started_at"]) - killed_at]
          end
        end
      end

      def summary(tasks, finished, killed_at, wall, workers)
        complete = finished.values.count { |s| s["status"] == "complete" }
        verified = tasks.count { |(workflow, n, uuid)| correct?(workflow, n, finished[uuid]) }
        recovered = recovered_steps(finished, killed_at)
        steps = finished.values.sum { |task| task["steps"].size }
        @out.puts
        @out.puts "Summary"
        @out.puts format("  tasks       %d (%d complete, %d not)", tasks.size, complete, tasks.size - complete)
        @out.puts format("  results     %d/%d tasks checked against their formula", verified, tasks.size)
        @out.puts format("  steps       %d", steps)
        if recovered.empty?
          @out.puts "  recovery    the killed worker held no step when it died"
        else
          waits = recovered.map(&:last)
          @out.puts format("  recovery    %d steps the killed worker was running ran again on %s: %.1f s after " \
                           "the kill at the latest, %.1f s at the earliest (a worker is lost after " \
                           "[storage.postgres] worker_lost_after_ms without a heartbeat, 5000 by default)",
                           recovered.size, workers.last.name, waits.max, waits.min)
        end
        @out.puts format("  wall time   %.1f s", wall)
        verified == tasks.size && complete == tasks.size ? 0 : 1
      end

      def correct?(workflow, n, status)
        return false unless status && status["status"] == "complete"

        final = status["steps"].find { |s| s["name"] == workflow.final_step }
        final && final["result"] == workflow.expected.call(n)
      end
    end
  end
end
