# frozen_string_literal: true

require_relative "sizes"

module Bench
  # The measures of the suite: a name for each child process bench/run.rb starts, the
  # file that defines it, how to build it, and, for --repeat, the number that picks the
  # best of several runs (`best`: result key and :max or :min; nil = run once: memory
  # does not get better by retrying).
  module Registry
    Entry = Struct.new(:name, :file, :build, :best, keyword_init: true) do
      # @param results [Array<Hash>] results of several runs (errors included)
      # @return [Hash] the best one (the first error when no run succeeded)
      def pick(results)
        good = results.reject { |r| r.key?("error") }
        return results.first if good.empty? || best.nil?

        key, direction = best
        direction == :max ? good.max_by { |r| r.fetch(key) } : good.min_by { |r| r.fetch(key) }
      end

      # @return [Boolean] whether --repeat runs it more than once
      def repeatable?
        !best.nil?
      end
    end

    CONCURRENCY_LEVELS = [1, 4, 16, 64].freeze

    MEASURES = [
      Entry.new(name: "ffi_round_trip", file: "ffi_round_trip", best: ["join_round_trips_per_s", :max],
                build: ->(sizes) { Measures::FfiRoundTrip.new(sizes: sizes) }),
      *CONCURRENCY_LEVELS.map do |level|
        Entry.new(name: "concurrency_#{level}", file: "concurrency", best: ["steps_per_s", :max],
                  build: ->(sizes) { Measures::Concurrency.new(sizes: sizes, concurrency: level) })
      end,
      Entry.new(name: "tasker_noop", file: "tasker_noop", best: ["steps_per_s", :max],
                build: ->(sizes) { Measures::TaskerNoop.new(sizes: sizes) }),
      Entry.new(name: "sidekiq_noop", file: "sidekiq_noop", best: ["jobs_per_s", :max],
                build: ->(sizes) { Measures::SidekiqNoop.new(sizes: sizes) }),
      Entry.new(name: "pg_floor", file: "pg_floor", best: ["jobs_per_s", :max],
                build: ->(sizes) { Measures::PgFloor.new(sizes: sizes) }),
      Entry.new(name: "delayed_job_noop", file: "delayed_job_noop", best: ["jobs_per_s", :max],
                build: ->(sizes) { Measures::DelayedJobNoop.new(sizes: sizes) }),
      Entry.new(name: "pg_noop_1", file: "pg_tasker", best: ["steps_per_s", :max],
                build: ->(sizes) { Measures::PgDrain.new(sizes: sizes, workers: 1) }),
      Entry.new(name: "pg_noop_2", file: "pg_tasker", best: ["steps_per_s", :max],
                build: ->(sizes) { Measures::PgDrain.new(sizes: sizes, workers: 2) }),
      Entry.new(name: "pg_dag", file: "pg_tasker", best: ["diamond_steps_per_s", :max],
                build: ->(sizes) { Measures::PgDag.new(sizes: sizes) }),
      Entry.new(name: "pg_create", file: "pg_tasker", best: ["per_s", :max],
                build: ->(sizes) { Measures::PgCreate.new(sizes: sizes) }),
      Entry.new(name: "pg_latency", file: "pg_tasker", best: ["p99_ms", :min],
                build: ->(sizes) { Measures::PgLatency.new(sizes: sizes) }),
      Entry.new(name: "pg_recovery", file: "pg_tasker", best: ["recovery_s", :min],
                build: ->(sizes) { Measures::PgRecovery.new(sizes: sizes) }),
      Entry.new(name: "pg_bloat", file: "pg_tasker",
                build: ->(sizes) { Measures::PgBloat.new(sizes: sizes) }),
      Entry.new(name: "dag", file: "dag", best: ["steps_per_s", :max],
                build: ->(sizes) { Measures::Dag.new(sizes: sizes) }),
      Entry.new(name: "start_latency", file: "start_latency", best: ["p99_ms", :min],
                build: ->(sizes) { Measures::StartLatency.new(sizes: sizes) }),
      Entry.new(name: "timeout_lag", file: "timeout_lag", best: ["p99_ms", :min],
                build: ->(sizes) { Measures::TimeoutLag.new(sizes: sizes) }),
      Entry.new(name: "memory_growth", file: "memory_growth",
                build: ->(sizes) { Measures::MemoryGrowth.new(sizes: sizes) }),
      Entry.new(name: "pending_memory", file: "pending_memory",
                build: ->(sizes) { Measures::PendingMemory.new(sizes: sizes) })
    ].freeze

    module_function

    # @return [Array<String>]
    def names
      MEASURES.map(&:name)
    end

    # @param name [String]
    # @return [Entry]
    # @raise [ArgumentError] unknown name
    def fetch(name)
      MEASURES.find { |entry| entry.name == name } ||
        raise(ArgumentError, "unknown measure #{name.inspect} (known: #{names.join(', ')})")
    end

    # Loads and runs one measure in this process.
    # @param name [String]
    # @param size [String]
    # @return [Hash] the measure's result
    def run(name, size:)
      entry = fetch(name)
      sizes = Sizes.fetch(size)
      require_relative "../measures/#{entry.file}"
      entry.build.call(sizes).call
    end
  end
end
