# frozen_string_literal: true

# Support of the fault suite (spec/fault): its step handlers, CPU spinners, subprocess
# runners that kill what overruns, and a few measurements. Required by every spec/fault
# file after spec_helper. The in-process examples are tagged :core and so get
# CoreHelpers and its per-example cleanup (see spec/support/core_helpers.rb).

require "json"
require "open3"
require "rbconfig"
require "time"

require "spec_helper"
require_relative "support/fault_handlers"
require_relative "support/stress"

# Helpers of the fault examples.
module FaultHelpers
  REPO_ROOT = File.expand_path("../..", __dir__)
  LIB = File.join(REPO_ROOT, "lib")
  EXE = File.join(REPO_ROOT, "exe", "tasker-worker")
  FIXTURES = File.join(__dir__, "fixtures")
  # The deadline-keeping margin the issue asks for.
  DEADLINE_MARGIN = 0.1

  # What a finished subprocess did.
  Finished = Struct.new(:status, :out, :err, :elapsed, :killed, keyword_init: true) do
    # @return [Boolean]
    def success?
      !killed && status.success?
    end

    # @return [Object] the JSON document on the last line of stdout
    def json
      line = out.lines.last or raise "subprocess printed nothing (stderr: #{err})"
      JSON.parse(line)
    rescue JSON::ParserError
      raise "subprocess did not end with a JSON line:\n#{out}\n--- stderr:\n#{err}"
    end
  end

  # A child process whose stdout is read line by line while it runs.
  class Spawned
    attr_reader :pid

    # @param env [Hash]
    # @param command [Array<String>]
    def initialize(env, command, chdir:)
      # Its own process group, so that a kill also reaches whatever it forked.
      stdin, @stdout, @stderr, @wait = Open3.popen3(env, *command, chdir: chdir, pgroup: true)
      stdin.close
      @pid = @wait.pid
      @lock = Mutex.new
      @changed = ConditionVariable.new
      @lines = []
      @out_reader = Thread.new { read_lines }
      @err_reader = Thread.new { @stderr.read }
    end

    # Waits for a stdout line matching `pattern`.
    # @return [String] the line
    # @raise [RuntimeError] when none comes within `timeout` (or the process ends first)
    def wait_for_line(pattern, timeout: 10)
      deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + timeout
      @lock.synchronize do
        loop do
          line = @lines.find { |l| pattern.match?(l) }
          return line if line

          remaining = deadline - Process.clock_gettime(Process::CLOCK_MONOTONIC)
          if @eof || !remaining.positive?
            raise "no line matching #{pattern.inspect} within #{timeout}s; stdout so far:\n#{@lines.join("\n")}"
          end

          @changed.wait(@lock, remaining)
        end
      end
    end

    # @param signal [String, Symbol]
    def signal(signal)
      Process.kill(signal, @pid)
    end

    # Waits for the process to exit; kills it (KILL) after `timeout`.
    # @return [Array(Process::Status, Boolean)] its status and whether it had to be killed
    def wait(timeout:)
      killed = !@wait.join(timeout)
      if killed
        begin
          Process.kill(:KILL, -@pid)
        rescue Errno::ESRCH
          nil
        end
      end
      [@wait.value, killed]
    end

    # @return [String] stdout so far
    def out
      @lock.synchronize { @lines.join("\n") }
    end

    # @return [String] stderr (once the process has exited)
    def err
      @err_reader.value
    end

    # Kills the process if it still runs.
    def close
      wait(timeout: 0)
      @out_reader.join(1)
    end

    private

    def read_lines
      @stdout.each_line do |line|
        @lock.synchronize do
          @lines << line.chomp
          @changed.broadcast
        end
      end
    ensure
      @lock.synchronize do
        @eof = true
        @changed.broadcast
      end
    end
  end

  # Starts `ruby -I lib command...` with stdout read as it comes (see Spawned).
  # @return [Spawned]
  def spawn_ruby(*command, env: {})
    Spawned.new(fault_env.merge(env), [RbConfig.ruby, "-I", LIB, *command], chdir: REPO_ROOT).tap do |spawned|
      (@fault_spawned ||= []) << spawned
    end
  end

  # Kills what the example spawned and left running.
  def reap_spawned
    (@fault_spawned || []).each(&:close)
  end

  # Runs `ruby -I lib -e script` (or a file) in a fresh process (group); kills the group
  # (KILL) when it runs longer than `timeout`, so a hang fails the example instead of
  # hanging the run.
  # @return [Finished]
  def run_ruby(script = nil, file: nil, args: [], env: {}, timeout: 30)
    env = fault_env.merge(env)
    command = [RbConfig.ruby, "-I", LIB] + (file ? [file] : ["-e", script]) + args
    started = monotonic
    Open3.popen3(env, *command, chdir: REPO_ROOT, pgroup: true) do |stdin, stdout, stderr, wait|
      stdin.close
      out = Thread.new { stdout.read }
      err = Thread.new { stderr.read }
      killed = !wait.join(timeout)
      kill_group(wait.pid) if killed
      Finished.new(status: wait.value, out: out.value, err: err.value, elapsed: monotonic - started, killed: killed)
    end
  end

  # The environment of a subprocess: the shipped config, "test" environment.
  def fault_env
    { "TASKER_ENV" => "test", "TASKER_CONFIG_ROOT" => nil, "TASKER_TEMPLATE_PATH" => nil }
  end

  # Kills the process group led by `pid`.
  # @return [void]
  def kill_group(pid)
    Process.kill(:KILL, -pid)
  rescue Errno::ESRCH
    nil
  end

  # Runs the block while `count` pure-Ruby threads spin on the CPU (holding the GVL
  # whenever they run).
  # @return [Array(Object, Integer)] the block's value and the spinners' loop iterations
  def with_spinners(count: 1)
    spinners = Array.new(count) { FaultStress::Spinner.new.start }
    value = yield
    [value, spinners.sum(&:stop)]
  ensure
    spinners&.each(&:stop)
  end

  # @param iso [String] an RFC 3339 timestamp of the core
  # @return [Float] seconds since the epoch
  def epoch_seconds(iso)
    Time.iso8601(iso).to_f
  end

  # @return [Hash, nil] the core's timeout lag figures (nil when it does not report them)
  def timeout_lag(metrics = TaskerCore::FFI.ffi_dispatch_metrics)
    return nil unless metrics.key?("timeout_lag_ms_p99")

    metrics.slice("timeout_lag_ms_p50", "timeout_lag_ms_p99", "timeout_lag_samples")
  end

  # @return [Float] seconds on the monotonic clock
  def monotonic
    Process.clock_gettime(Process::CLOCK_MONOTONIC)
  end

  # The TemplateSet step of a FaultHandlers handler.
  def fault_step(name, handler, timeout: 5, max_attempts: 3, dependencies: [], inputs: nil)
    step = {
      name: name, handler: "FaultHandlers::#{handler}", dependencies: dependencies, timeout_seconds: timeout,
      retry: { retryable: true, max_attempts: max_attempts, backoff_base_ms: 10, max_backoff_ms: 20 }
    }
    step[:inputs] = inputs if inputs
    step
  end
end

RSpec.configure do |config|
  config.define_derived_metadata(file_path: %r{/spec/fault/}) do |metadata|
    metadata[:fault] = true
  end
  config.include FaultHelpers, :fault
  config.before(:each, :fault) { FaultHandlers.reset! }
  config.after(:each, :fault) { reap_spawned }
end
