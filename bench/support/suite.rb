# frozen_string_literal: true

require "json"
require "optparse"
require "rbconfig"
require "shellwords"
require "time"
require_relative "machine"
require_relative "registry"
require_relative "report"
require_relative "sizes"

module Bench
  # The benchmark suite: runs every measure in its own child process (a fresh Ruby heap,
  # core and RSS for each), one after the other, prints the table, and with --write
  # writes it to docs/benchmarks.md with the machine, versions, command and date.
  class Suite
    ROOT = File.expand_path("../..", __dir__)
    DOC = File.join(ROOT, "docs", "benchmarks.md")
    MEASURE_SCRIPT = File.join(ROOT, "bench", "measure.rb")
    RESULT_PREFIX = "BENCH-RESULT "
    # Longest a single measure may run before it is killed, per size.
    CHILD_TIMEOUT = { "tiny" => 120, "small" => 600, "full" => 1800 }.freeze
    USAGE = "usage: bin/bench [--size tiny|small|full] [--repeat N] [--write] [--only NAME,...] [--json PATH]"

    # @param argv [Array<String>]
    # @param out [IO] the table
    # @param err [IO] progress
    def initialize(argv, out: $stdout, err: $stderr)
      @argv = argv.dup
      @out = out
      @err = err
      @size = "full"
      @write = false
      @only = nil
      @json = nil
      @repeat = 1
      parse(argv.dup)
    end

    # @return [Integer] exit status: 0, or 1 when a measure could not produce its number
    #   (a missed target never fails the run)
    def run
      sizes = Sizes.fetch(@size)
      started_at = Time.now.utc
      load_before = Machine.load_average
      warn_if_busy(load_before)
      started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
      results = run_measures
      wall = Process.clock_gettime(Process::CLOCK_MONOTONIC) - started
      report = Report.new(results, sizes: sizes)
      @out.puts report.table
      context = { started_at: started_at, wall: wall, load_before: load_before, load_after: Machine.load_average,
                  results: results }
      write_json(context) if @json
      write_doc(report, context) if @write
      @err.puts "bench: done in #{duration(wall)}"
      report.errors? ? 1 : 0
    end

    private

    def parse(argv)
      OptionParser.new do |o|
        o.banner = USAGE
        o.on("--size SIZE", Sizes::NAMES, "tiny (CI smoke), small, or full (default)") { |v| @size = v }
        o.on("--write", "also write the table to docs/benchmarks.md") { @write = true }
        o.on("--only NAMES", Array, "run only these measures (#{Registry.names.join(', ')})") do |names|
          names.each { |name| Registry.fetch(name) }
          @only = names
        end
        o.on("--repeat N", Integer, "run the throughput and latency measures N times (passes over the suite) " \
                                    "and keep the best of each; for a busy machine (default 1)") do |n|
          raise OptionParser::InvalidArgument, "--repeat #{n} (must be 1..10)" unless (1..10).cover?(n)

          @repeat = n
        end
        o.on("--json PATH", "also write every measure's raw result to PATH") { |v| @json = v }
        o.on("-h", "--help") do
          @out.puts o
          exit 0
        end
      end.parse!(argv)
      raise OptionParser::InvalidArgument, "unexpected argument(s) #{argv.join(' ')}" unless argv.empty?
      raise OptionParser::InvalidOption, "--write needs the whole suite: drop --only" if @write && @only
    end

    def warn_if_busy(load)
      one_minute = load.split.first.to_f
      return unless one_minute > Machine.cores * 0.5

      @err.puts "bench: warning: load average #{load} on #{Machine.cores} cores; other work is running, " \
                "so the numbers will be low and noisy#{@repeat == 1 ? ' (--repeat 3 keeps the best of 3 passes)' : ''}"
    end

    # Runs the selected measures once, then (--repeat) the repeatable ones again in
    # further passes over the suite, and keeps the best result of each.
    # @return [Hash{String=>Hash}] name -> result (with "runs" and "elapsed_seconds")
    def run_measures
      entries = Registry::MEASURES.select { |entry| @only.nil? || @only.include?(entry.name) }
      runs = Hash.new { |hash, key| hash[key] = [] }
      plan = (1..@repeat).flat_map do |pass|
        entries.select { |entry| pass == 1 || entry.repeatable? }.map { |entry| [pass, entry] }
      end
      plan.each_with_index do |(pass, entry), index|
        runs[entry.name] << run_one(entry, index, plan.size, pass)
      end
      entries.to_h do |entry|
        results = runs[entry.name]
        picked = entry.pick(results).merge("runs" => results.size)
        picked["all_runs"] = results.map { |r| r[entry.best.first] } if entry.repeatable? && results.size > 1
        [entry.name, picked]
      end
    end

    def run_one(entry, index, total, pass)
      label = @repeat > 1 ? " pass #{pass}" : ""
      @err.print "bench: [#{index + 1}/#{total}] #{entry.name} (#{@size}#{label}) ... "
      started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
      result = run_child(entry.name)
      elapsed = Process.clock_gettime(Process::CLOCK_MONOTONIC) - started
      @err.puts result.key?("error") ? "ERROR after #{duration(elapsed)}: #{result['error']}" : duration(elapsed)
      result.merge("elapsed_seconds" => elapsed)
    end

    # Runs one measure in a child Ruby (plain `ruby -Ilib`, outside any bundle, so
    # Debian's Sidekiq is loadable); its stderr passes through.
    # @return [Hash] the result, or {"error" => message}
    def run_child(name)
      command = [RbConfig.ruby, "-I", File.join(ROOT, "lib"), MEASURE_SCRIPT, name, @size]
      reader, writer = IO.pipe
      pid = Process.spawn(child_env, *command, chdir: ROOT, out: writer, in: File::NULL)
      writer.close
      output = read_with_timeout(reader, pid, CHILD_TIMEOUT.fetch(@size), name)
      _, status = Process.wait2(pid)
      pid = nil
      parse_child(output, status)
    rescue ChildTimeout => e
      pid = nil
      { "error" => e.message }
    ensure
      reader&.close
      stop_child(pid) if pid # interrupted (Ctrl-C, TERM): the child must not outlive the suite
    end

    # Asks a child to stop (it stops its redis-server and core on the way out), then kills it.
    def stop_child(pid)
      Process.kill("TERM", pid)
      10.times do
        return if Process.waitpid(pid, Process::WNOHANG)

        sleep 0.5
      end
      Process.kill("KILL", pid)
      Process.wait(pid)
    rescue Errno::ESRCH, Errno::ECHILD
      nil
    end

    class ChildTimeout < StandardError; end

    def read_with_timeout(reader, pid, timeout, name)
      output = +""
      deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + timeout
      loop do
        remaining = deadline - Process.clock_gettime(Process::CLOCK_MONOTONIC)
        if remaining <= 0
          stop_child(pid)
          raise ChildTimeout, "#{name} did not finish within #{timeout}s (stopped)"
        end
        next unless IO.select([reader], nil, nil, remaining)

        chunk = reader.read_nonblock(65_536, exception: false)
        break if chunk.nil?

        output << chunk unless chunk == :wait_readable
      end
      output
    end

    def parse_child(output, status)
      line = output.lines.reverse.find { |l| l.start_with?(RESULT_PREFIX) }
      return JSON.parse(line.delete_prefix(RESULT_PREFIX)) if line && (status.success? || line.include?('"error"'))

      tail = output.lines.last(5).join.strip
      { "error" => "exited with #{status.exitstatus || "signal #{status.termsig}"}#{tail.empty? ? '' : ": #{tail}"}" }
    end

    # The environment of a child: the caller's, minus Bundler's (a `bundle exec` parent
    # would otherwise hide the Debian gems Sidekiq comes from).
    def child_env
      env = {}
      %w[BUNDLE_GEMFILE BUNDLE_BIN_PATH BUNDLER_SETUP BUNDLER_VERSION BUNDLER_ORIG_RUBYOPT].each { |k| env[k] = nil }
      rubyopt = ENV.fetch("RUBYOPT", "").split.reject { |opt| opt.include?("bundler") }.join(" ")
      env["RUBYOPT"] = rubyopt.empty? ? nil : rubyopt
      rubylib = ENV.fetch("RUBYLIB", "").split(File::PATH_SEPARATOR).reject { |dir| dir.include?("bundler") }
      env["RUBYLIB"] = rubylib.empty? ? nil : rubylib.join(File::PATH_SEPARATOR)
      env
    end

    def command_line
      ENV.fetch("BENCH_COMMAND") { Shellwords.join(["ruby", "-Ilib", "bench/run.rb", *@argv]) }
    end

    def duration(seconds)
      seconds < 60 ? format("%.1fs", seconds) : format("%dm %02ds", seconds / 60, seconds % 60)
    end

    def write_json(context)
      data = context.merge(started_at: context[:started_at].iso8601, size: @size, command: command_line)
      File.write(@json, JSON.pretty_generate(data))
      @err.puts "bench: raw results written to #{@json}"
    end

    def write_doc(report, context)
      Dir.mkdir(File.dirname(DOC)) unless Dir.exist?(File.dirname(DOC))
      File.write(DOC, doc(report, context))
      @err.puts "bench: table written to #{DOC.delete_prefix("#{ROOT}/")}"
    end

    def doc(report, context)
      sidekiq = context[:results].dig("sidekiq_noop", "sidekiq_version") || Machine.gem_version("sidekiq")
      redis = context[:results].dig("sidekiq_noop", "redis_version") || "unknown"
      <<~MARKDOWN
        # Benchmarks

        Written by the benchmark suite (`bin/bench --write`); run it again rather than editing
        this file. Every line comes from the same run: each measure runs in its own child
        process, one after the other. A missed target ("MISS") does not fail the run. On a
        #{Machine.cores}-core machine, ratios measured side by side say more than absolute
        numbers.

        - Command: `#{command_line}` (size `#{@size}`#{repeat_note})
        - Date: #{context[:started_at].iso8601} (suite wall time #{duration(context[:wall])})
        - Machine: #{Machine.summary}; load average #{context[:load_before]} at the start#{busy_note(context)},
          #{context[:load_after]} at the end (the suite's own load included)
        - Ruby: #{Machine.ruby}
        - Rust: #{Machine.rust}
        - Sidekiq #{sidekiq} (redis-rb #{Machine.gem_version('redis')}), redis-server #{redis}
        - tasker_core #{tasker_version}, commit #{Machine.commit(ROOT)}

        #{report.table}

        ## What each line measures

        #{explanations}
      MARKDOWN
    end

    # Says so when other work was running as the suite started (1-minute load average
    # above half the cores). The load at the end is mostly the suite's own.
    def busy_note(context)
      load = context[:load_before].split.first.to_f
      load > Machine.cores * 0.5 ? " (other work was running: the numbers are low and noisy)" : ""
    end

    def repeat_note
      @repeat > 1 ? "; throughput and latency lines: best of #{@repeat} passes, memory lines: one run" : ""
    end

    def tasker_version
      File.read(File.join(ROOT, "lib", "tasker_core", "version.rb"))[/VERSION\s*=\s*"([^"]+)"/, 1] || "unknown"
    end

    def explanations
      groups = [
        ["1. FFI round trip", %w[ffi step_event queue]],
        ["2. Concurrency", %w[concurrency]],
        ["3. End to end against Sidekiq", %w[tasker_noop sidekiq_noop ratio creation]],
        ["4. DAG throughput", %w[dag]],
        ["5. Latency", %w[start_latency timeout_lag]],
        ["6. Memory", %w[rss_idle rss_growth pending]],
        ["7. PostgreSQL peers", %w[pg_floor delayed_job]],
        ["8. TaskerCore on PostgreSQL", %w[pg_noop pg_ratios pg_dag pg_create pg_latency pg_recovery pg_bloat]]
      ]
      groups.map do |title, keys|
        "### #{title}\n\n#{keys.map { |key| "- #{Report::EXPLANATIONS.fetch(key)}" }.join("\n")}"
      end.join("\n\n")
    end
  end
end
