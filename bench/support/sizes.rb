# frozen_string_literal: true

module Bench
  # How big each measure is at each --size. "full" holds the sizes the suite is
  # specified with; "tiny" is the CI smoke run (seconds, no meaningful numbers).
  module Sizes
    NAMES = %w[tiny small full].freeze

    TABLE = {
      "tiny" => {
        ffi_tasks: 300, queue_iterations: 20_000,
        concurrency_seconds: 0.3,
        e2e_tasks: 2_000, dag_tasks: 200,
        latency_samples: 30, timeout_samples: 10,
        memory_steps: 20_000, memory_batch: 2_000, pending_events: 1_000,
        dj_jobs: 300,
        pg_tasks: 2_000, pg_dag_tasks: 300, pg_create_tasks: 400, pg_recovery_tasks: 400,
        pg_bloat_tasks: 4_000, pg_bloat_window: 1_000
      },
      "small" => {
        ffi_tasks: 5_000, queue_iterations: 200_000,
        concurrency_seconds: 1.0,
        e2e_tasks: 20_000, dag_tasks: 4_000,
        latency_samples: 300, timeout_samples: 100,
        memory_steps: 200_000, memory_batch: 10_000, pending_events: 5_000,
        dj_jobs: 3_000,
        pg_tasks: 20_000, pg_dag_tasks: 4_000, pg_create_tasks: 4_000, pg_recovery_tasks: 2_000,
        pg_bloat_tasks: 100_000, pg_bloat_window: 10_000
      },
      "full" => {
        ffi_tasks: 25_000, queue_iterations: 1_000_000,
        concurrency_seconds: 2.5,
        e2e_tasks: 100_000, dag_tasks: 20_000,
        latency_samples: 1_000, timeout_samples: 300,
        memory_steps: 1_000_000, memory_batch: 10_000, pending_events: 10_000,
        dj_jobs: 20_000,
        pg_tasks: 100_000, pg_dag_tasks: 20_000, pg_create_tasks: 20_000, pg_recovery_tasks: 5_000,
        pg_bloat_tasks: 1_000_000, pg_bloat_window: 100_000
      }
    }.freeze

    # @param name [String] tiny, small or full
    # @return [Hash{Symbol=>Numeric}]
    # @raise [ArgumentError] unknown size
    def self.fetch(name)
      TABLE.fetch(name) { raise ArgumentError, "unknown --size #{name.inspect} (known: #{NAMES.join(', ')})" }
    end
  end
end
