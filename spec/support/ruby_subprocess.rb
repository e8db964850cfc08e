# frozen_string_literal: true

require "json"
require "open3"
require "rbconfig"

# Runs Ruby code in a fresh process with lib/ on the load path, for what only a fresh
# process can show (the core before any bootstrap, a core built from another config
# root). The script prints one JSON document as the last line of its stdout.
module RubySubprocess
  LIB = File.expand_path("../../lib", __dir__)

  module_function

  # @param script [String] Ruby source
  # @param env [Hash{String => String}] extra environment (TASKER_ENV is "test")
  # @param timeout [Numeric] seconds before the child is killed and this raises
  # @return [Object] the parsed JSON of the last line of stdout
  def json(script, env: {}, timeout: 30)
    env = { "TASKER_ENV" => "test", "TASKER_CONFIG_ROOT" => nil, "TASKER_TEMPLATE_PATH" => nil }.merge(env)
    Open3.popen3(env, RbConfig.ruby, "-I", LIB, "-e", script) do |stdin, stdout, stderr, wait|
      stdin.close
      out_reader = Thread.new { stdout.read }
      err_reader = Thread.new { stderr.read }
      unless wait.join(timeout)
        Process.kill(:KILL, wait.pid)
        wait.join
        raise "subprocess did not finish within #{timeout}s; stderr: #{err_reader.value}"
      end
      out = out_reader.value
      err = err_reader.value
      raise "subprocess failed (#{wait.value.inspect}):\n#{err}\n#{out}" unless wait.value.success?

      line = out.lines.last or raise "subprocess printed nothing (stderr: #{err})"
      JSON.parse(line)
    end
  end

  # Runs `setup` and then the blocking `call` on the main thread of a fresh process,
  # sends it SIGINT (Ctrl-C) once that thread is blocked, and reports what happened:
  # {"outcome" => "Interrupt" | "returned", "seconds" => time spent in the call}.
  # @param setup [String] Ruby source run first (tasker_core is loaded)
  # @param call [String] Ruby source of the blocking call
  # @return [Hash]
  def interrupt_blocked_call(setup:, call:, timeout: 30)
    script = <<~RUBY
      require "json"
      require "tasker_core"
      #{setup}
      main = Thread.current
      Thread.new do
        sleep 0.01 until main.status == "sleep"
        $stdout.puts "blocked"
        $stdout.flush
      end
      started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
      begin
        #{call}
        outcome = "returned"
      rescue Interrupt
        outcome = "Interrupt"
      end
      puts JSON.dump("outcome" => outcome, "seconds" => Process.clock_gettime(Process::CLOCK_MONOTONIC) - started)
    RUBY
    env = { "TASKER_ENV" => "test", "TASKER_CONFIG_ROOT" => nil, "TASKER_TEMPLATE_PATH" => nil }
    IO.popen(env, [RbConfig.ruby, "-I", LIB, "-e", script], "r") do |io|
      ready = io.gets
      raise "subprocess did not block (printed #{ready.inspect})" unless ready == "blocked\n"

      Process.kill(:INT, io.pid)
      reader = Thread.new { io.gets }
      line = reader.join(timeout)&.value
      unless line
        Process.kill(:KILL, io.pid)
        raise "subprocess did not answer within #{timeout}s of SIGINT"
      end
      JSON.parse(line)
    end
  end
end
