# frozen_string_literal: true

require "fileutils"
require "json"
require "open3"
require "optparse"
require_relative "support/figures"

module Bench
  # This checkout against an earlier commit of tasker_core, measure by measure, in one
  # script: the earlier commit is checked out into tmp/compare/<sha> (a git worktree) and
  # built there, then each round runs the same `bin/bench --only ...` in both trees, one
  # after the other, alternating which goes first. Interleaved rounds see the same
  # machine: a busy minute slows both sides, not one. Prints the median of every headline
  # figure on each side and their ratio (this checkout as a share of the baseline: above
  # 1 is better, whichever way the figure points).
  class Compare
    ROOT = File.expand_path("..", __dir__)

    # Headline figures per measure: [key, label, :higher or :lower is better].
    FIGURES = {
      "ffi_round_trip" => [["join_round_trips_per_s", "FFI round trips/s (event Hash)", :higher],
                           ["step_event_worker_round_trips_per_s", "FFI round trips/s (StepEvent)", :higher]],
      "concurrency_1" => [["steps_per_s", "10 ms handlers c=1, steps/s", :higher]],
      "concurrency_4" => [["steps_per_s", "10 ms handlers c=4, steps/s", :higher]],
      "concurrency_16" => [["steps_per_s", "10 ms handlers c=16, steps/s", :higher]],
      "concurrency_64" => [["steps_per_s", "10 ms handlers c=64, steps/s", :higher]],
      "tasker_noop" => [["steps_per_s", "no-op tasks c=5, steps/s", :higher],
                        ["creation_per_s", "create_task, tasks/s", :higher]],
      "dag" => [["steps_per_s", "diamond tasks c=5, steps/s", :higher]],
      "start_latency" => [["p50_ms", "create -> handler start p50, ms", :lower],
                          ["p99_ms", "create -> handler start p99, ms", :lower]],
      "timeout_lag" => [["p99_ms", "timeout detection lag p99, ms", :lower]],
      "memory_growth" => [["final_rss_mb", "RSS after the no-op run, MB", :lower]],
      "pending_memory" => [["bytes_per_event", "memory per pending event, bytes", :lower]],
      "pg_noop_1" => [["steps_per_s", "PostgreSQL no-op, 1 worker c=5, steps/s", :higher]],
      "pg_noop_2" => [["steps_per_s", "PostgreSQL no-op, 2 workers c=5, steps/s", :higher]],
      "pg_dag" => [["chain_steps_per_s", "PostgreSQL two-step chain, steps/s", :higher],
                   ["diamond_steps_per_s", "PostgreSQL diamond, steps/s", :higher]]
    }.freeze

    DEFAULT_MEASURES = %w[ffi_round_trip concurrency_64 tasker_noop dag start_latency timeout_lag memory_growth
                          pending_memory].freeze

    def initialize(argv)
      @rounds = 3
      @size = "full"
      @measures = DEFAULT_MEASURES
      parser = OptionParser.new do |o|
        o.banner = "usage: bin/bench-compare [--rounds N] [--size tiny|small|full] [--only NAME,...] REF"
        o.on("--rounds N", Integer, "interleaved rounds (default 3); the medians are compared") { |n| @rounds = n }
        o.on("--size SIZE", %w[tiny small full], "bin/bench size (default full)") { |s| @size = s }
        o.on("--only NAMES", Array, "measures (default #{DEFAULT_MEASURES.join(',')})") { |m| @measures = m }
      end
      rest = parser.parse(argv)
      raise OptionParser::InvalidArgument, "give one REF (a commit to compare against)\n#{parser}" unless rest.size == 1

      unknown = @measures - FIGURES.keys
      raise OptionParser::InvalidArgument, "no headline figures for #{unknown.join(', ')}" unless unknown.empty?
      raise OptionParser::InvalidArgument, "--rounds must be at least 1" if @rounds < 1

      @ref = rest.first
    end

    def run
      sha = git("rev-parse", "--verify", "#{@ref}^{commit}").strip
      baseline = prepare(sha)
      trees = { "baseline" => baseline, "this" => ROOT }
      samples = Hash.new { |h, k| h[k] = [] }
      @rounds.times do |round|
        order = round.even? ? trees.keys : trees.keys.reverse
        order.each do |side|
          warn "bench-compare: round #{round + 1}/#{@rounds}, #{side}"
          samples[side] << bench(trees.fetch(side), "#{side}-#{round}")
        end
      end
      report(sha, samples)
    end

    private

    def git(*args, chdir: ROOT)
      out, err, status = Open3.capture3("git", *args, chdir: chdir)
      raise "git #{args.join(' ')} failed: #{err.strip}" unless status.success?

      out
    end

    # The baseline's worktree, built (rake compile), reused when it is already there.
    def prepare(sha)
      dir = File.join(ROOT, "tmp", "compare", sha[0, 12])
      unless File.exist?(File.join(dir, "bin", "bench"))
        FileUtils.mkdir_p(File.dirname(dir))
        git("worktree", "add", "--detach", dir, sha)
      end
      log = File.join(dir, "compile.log")
      unless system("rake", "compile", chdir: dir, out: log, err: log)
        raise "building #{sha[0, 12]} failed; see #{log}"
      end

      dir
    end

    def bench(tree, label)
      json = File.join(ROOT, "tmp", "compare", "#{label}.json")
      log = File.join(ROOT, "tmp", "compare", "#{label}.log")
      command = ["bin/bench", "--size", @size, "--only", @measures.join(","), "--json", json]
      raise "#{command.join(' ')} failed in #{tree}; see #{log}" unless system(*command, chdir: tree, out: log, err: log)

      JSON.parse(File.read(json)).fetch("results")
    end

    def report(sha, samples)
      puts "# #{@rounds} interleaved round(s) of bin/bench --size #{@size}: this checkout " \
           "(#{git('rev-parse', '--short', 'HEAD').strip}) against #{sha[0, 12]}"
      puts format("%-40s %14s %14s %9s", "figure (median)", "baseline", "this", "ratio")
      @measures.each do |measure|
        FIGURES.fetch(measure).each do |key, label, better|
          base = median(samples["baseline"].map { |r| r.dig(measure, key) })
          mine = median(samples["this"].map { |r| r.dig(measure, key) })
          puts format("%-40s %14s %14s %9s", label, number(base), number(mine), ratio(base, mine, better))
        end
      end
    end

    # The middle value (the mean of the two middle ones for an even count). Not
    # Helper.percentile: that file loads the native extension, and this script runs
    # outside both trees' builds.
    def median(values)
      values = values.compact
      return nil if values.empty?

      sorted = values.sort
      mid = sorted.size / 2
      sorted.size.odd? ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2.0
    end

    def number(value)
      return "n/a" if value.nil?

      value >= 100 ? Figures.rate(value) : format("%.3f", value)
    end

    # This side as a share of the baseline, oriented so that above 1 is better.
    def ratio(base, mine, better)
      return "n/a" if base.nil? || mine.nil? || base.zero? || mine.zero?

      format("%.3f", better == :higher ? mine / base : base / mine)
    end
  end
end

if $PROGRAM_NAME == __FILE__
  begin
    Bench::Compare.new(ARGV).run
  rescue OptionParser::ParseError => e
    warn "bin/bench-compare: #{e.message}"
    exit 2
  rescue RuntimeError => e
    warn "bin/bench-compare: #{e.message}"
    exit 1
  end
end
