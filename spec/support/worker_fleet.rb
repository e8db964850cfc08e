# frozen_string_literal: true

require "fileutils"
require "rbconfig"
require "tmpdir"

# `tasker-worker` processes on one PostgreSQL database, for the multi-process specs
# (spec/postgres). Each runs the handlers of spec/postgres/fixtures/fleet_handlers.rb on
# the templates of spec/postgres/fixtures/templates, in the "test" environment of a copy
# of the shipped configuration whose [storage.postgres] liveness settings are short
# (`liveness:`), and logs every handler execution to one shared file
# ({#executions} reads it back).
#
#   fleet = WorkerFleet.new(database_url: url)
#   a = fleet.start("a")
#   fleet.wait_started(a)
#   fleet.signal(a, "KILL")
#   fleet.executions # => [#<Execution kind="START" event=... pid=...>, ...]
#   fleet.cleanup    # TERM (then KILL) every worker still running, remove the files
class WorkerFleet
  ROOT = File.expand_path("../..", __dir__)
  EXE = File.join(ROOT, "exe", "tasker-worker")
  LIB = File.join(ROOT, "lib")
  FIXTURES = File.join(ROOT, "spec", "postgres", "fixtures")
  HANDLERS = File.join(FIXTURES, "fleet_handlers.rb")
  TEMPLATES = File.join(FIXTURES, "templates")

  # Short enough for specs, long enough not to expire a busy but live worker.
  LIVENESS = { heartbeat_interval_ms: 250, worker_lost_after_ms: 1500, poll_interval_ms: 200 }.freeze

  # One worker process.
  Member = Struct.new(:name, :pid, :stdout, :stderr, :status, keyword_init: true) do
    # @return [String] what it wrote to stdout so far
    def out = File.read(stdout)

    # @return [String] what it wrote to stderr so far
    def err = File.read(stderr)

    def running? = status.nil?
  end

  # One line of the execution log.
  Execution = Struct.new(:kind, :event, :task, :step, :attempt, :pid, :at_ms, keyword_init: true)

  # @return [String]
  attr_reader :database_url, :log, :config_root

  # @param database_url [String]
  # @param liveness [Hash] [storage.postgres] keys written into the workers' configuration
  # @param env [Hash{String => String}] more environment for every worker
  def initialize(database_url:, liveness: LIVENESS, env: {})
    @database_url = database_url
    @dir = Dir.mktmpdir("tasker_fleet")
    @log = File.join(@dir, "executions.log")
    FileUtils.touch(@log)
    @config_root = write_config(liveness)
    @env = env
    @members = []
  end

  # Starts a worker (returns at once; see {#wait_started}).
  # @param name [String] letters and digits
  # @param concurrency [Integer]
  # @param args [Array<String>] more tasker-worker options
  # @param env [Hash{String => String}]
  # @return [Member]
  def start(name, concurrency: 4, args: [], env: {})
    stdout = File.join(@dir, "#{name}.out")
    stderr = File.join(@dir, "#{name}.err")
    command = [RbConfig.ruby, "-I", LIB, EXE, "--database-url", @database_url, "--require", HANDLERS,
               "--templates", TEMPLATES, "--concurrency", concurrency.to_s, "--config-root", @config_root,
               "--environment", "test", *args]
    environment = { "FLEET_LOG" => @log, "TASKER_DATABASE_URL" => nil, "TASKER_TEMPLATE_PATH" => nil }
                  .merge(@env).merge(env)
    pid = Process.spawn(environment, *command, out: stdout, err: stderr, pgroup: true)
    Member.new(name: name, pid: pid, stdout: stdout, stderr: stderr).tap { |member| @members << member }
  end

  # Waits for the worker's start banner.
  # @raise [RuntimeError] when it exits or takes longer than `timeout` seconds
  def wait_started(member, timeout: 30)
    wait_for(timeout, -> { "worker #{member.name} did not start:\n#{member.out}\n#{member.err}" }) do
      raise "worker #{member.name} exited (#{member.status.inspect}):\n#{member.err}" if reap(member)

      member.out.include?(" started: ")
    end
  end

  # @param signal [String] "KILL", "TERM", ...
  def signal(member, signal)
    Process.kill(signal, member.pid)
  end

  # Waits for the worker to exit.
  # @return [Process::Status]
  def wait_exit(member, timeout: 30)
    wait_for(timeout, -> { "worker #{member.name} did not exit:\n#{member.err}" }) { reap(member) }
    member.status
  end

  # Every handler execution logged so far, in log order.
  # @return [Array<Execution>]
  def executions
    File.readlines(@log).filter_map do |line|
      kind, event, task, step, attempt, pid, at = line.split
      next unless at

      Execution.new(kind: kind, event: event, task: task, step: step, attempt: Integer(attempt), pid: Integer(pid),
                    at_ms: Integer(at))
    end
  end

  # Stops every worker still running (TERM, then KILL after `grace` seconds) and removes
  # the files.
  def cleanup(grace: 10)
    @members.select(&:running?).each { |member| signal(member, "TERM") rescue Errno::ESRCH } # rubocop:disable Style/RescueModifier
    deadline = monotonic + grace
    @members.each do |member|
      sleep 0.05 until reap(member) || monotonic > deadline
      next if reap(member)

      Process.kill("KILL", member.pid)
      Process.wait(member.pid)
    rescue Errno::ESRCH, Errno::ECHILD
      nil
    end
    FileUtils.rm_rf(@dir)
  end

  private

  # Whether the worker has exited (its status is kept).
  def reap(member)
    return true unless member.running?

    _, status = Process.waitpid2(member.pid, Process::WNOHANG)
    member.status = status if status
    !member.running?
  end

  def wait_for(timeout, message)
    deadline = monotonic + timeout
    until yield
      raise message.call if monotonic > deadline

      sleep 0.02
    end
  end

  def monotonic = Process.clock_gettime(Process::CLOCK_MONOTONIC)

  # A copy of the shipped configuration whose test environment has `liveness`.
  def write_config(liveness)
    root = File.join(@dir, "config")
    FileUtils.cp_r(File.join(ROOT, "config", "tasker"), root)
    keys = liveness.map { |key, value| "#{key} = #{Integer(value)}" }.join("\n")
    File.write(File.join(root, "environments", "test", "storage.toml"), "[storage.postgres]\n#{keys}\n")
    root
  end
end
