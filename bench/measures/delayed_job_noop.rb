# frozen_string_literal: true

require "rbconfig"
require_relative "../support/helper"
require_relative "../../spec/support/private_postgres"

module Bench
  module Measures
    # The DelayedJob peer: N no-op jobs enqueued with `Delayed::Job.enqueue` (timed: the
    # enqueue rate) into the private PostgreSQL (fsync on) through ActiveRecord and
    # ruby-pg, then drained by WORKERS forked worker processes, each a
    # `Delayed::Worker#work_off` loop until the queue is empty. The clock runs from the
    # fork until both have exited; they report how many jobs they ran, which must add up
    # to N with the table empty afterwards (DelayedJob deletes a job once it succeeded).
    class DelayedJobNoop
      WORKERS = 2
      # Jobs per work_off call (DelayedJob's own default is 100).
      WORK_OFF = 100

      # The no-op job.
      class NoopJob
        # @param index [Integer]
        def initialize(index)
          @index = index
        end

        # @return [void]
        def perform; end
      end

      # @param sizes [Hash] see Bench::Sizes
      def initialize(sizes:)
        @jobs = sizes.fetch(:dj_jobs)
      end

      # @return [Hash]
      def call
        load_delayed_job
        server = PrivatePostgres.start
        url = server.fresh_database(prefix: "bench_dj")
        @database = { adapter: "postgresql", host: server.root, database: url[%r{@/([^?]+)}, 1],
                      username: "postgres", pool: 2 }
        connect
        create_table
        enqueue_seconds = Helper.time { @jobs.times { |i| Delayed::Job.enqueue(NoopJob.new(i)) } }
        queued = Delayed::Job.count
        raise MeasureError, "enqueued #{@jobs} jobs but the table holds #{queued}" unless queued == @jobs

        ActiveRecord::Base.connection_pool.disconnect!
        seconds, ran = drain
        connect
        left = Delayed::Job.count
        raise MeasureError, "DelayedJob ran #{ran} of #{@jobs} jobs; #{left} left in the table" unless
          ran == @jobs && left.zero?

        { jobs: @jobs, workers: WORKERS, seconds: seconds, jobs_per_s: @jobs / seconds,
          enqueue_seconds: enqueue_seconds, enqueue_per_s: @jobs / enqueue_seconds,
          delayed_job_version: Gem.loaded_specs["delayed_job"]&.version.to_s,
          activerecord_version: ActiveRecord::VERSION::STRING }
      ensure
        ActiveRecord::Base.connection_pool.disconnect! if defined?(ActiveRecord::Base)
        server&.stop
      end

      private

      def load_delayed_job
        require "logger"
        require "active_record"
        require "delayed_job"
        require "delayed_job_active_record"
      rescue LoadError => e
        raise MeasureError, "DelayedJob could not be loaded (#{e.message}); run bin/setup --bench"
      end

      # ActiveRecord gets the socket directory as host (it reads no ?host= from a URL).
      def connect
        ActiveRecord::Base.logger = nil
        ActiveRecord::Base.establish_connection(@database)
        Delayed::Worker.logger = Logger.new(File::NULL)
        Delayed::Worker.backend = :active_record
        Delayed::Worker.sleep_delay = 0.05
        Delayed::Worker.max_attempts = 1
        Delayed::Worker.destroy_failed_jobs = false
      end

      # The delayed_jobs table as DelayedJob's generator creates it.
      def create_table
        ActiveRecord::Schema.verbose = false
        ActiveRecord::Schema.define do
          create_table :delayed_jobs, force: true do |t|
            t.integer :priority, default: 0, null: false
            t.integer :attempts, default: 0, null: false
            t.text :handler, null: false
            t.text :last_error
            t.datetime :run_at
            t.datetime :locked_at
            t.datetime :failed_at
            t.string :locked_by
            t.string :queue
            t.timestamps null: true
          end
          add_index :delayed_jobs, %i[priority run_at], name: "delayed_jobs_priority"
        end
      end

      # @return [Array(Float, Integer)] seconds, jobs the workers ran
      def drain
        pipes = []
        started = Helper.now
        pids = Array.new(WORKERS) do |i|
          reader, writer = IO.pipe
          pipes << reader
          fork do
            reader.close
            writer.puts(work(i))
            writer.close
            exit!(0)
          end.tap { writer.close }
        end
        statuses = pids.map { |pid| Process.wait2(pid).last }
        seconds = Helper.now - started
        raise MeasureError, "a DelayedJob worker failed: #{statuses.inspect}" unless statuses.all?(&:success?)

        [seconds, pipes.sum { |pipe| Integer(pipe.read.strip) }]
      ensure
        pipes.each(&:close)
      end

      # One worker process: work_off until a call finds nothing. Returns the jobs it ran.
      def work(index)
        connect
        worker = Delayed::Worker.new(quiet: true)
        worker.name = "bench-dj-#{index}"
        ran = 0
        loop do
          succeeded, failed = worker.work_off(WORK_OFF)
          raise "#{failed} no-op jobs failed" if failed.positive?
          break if succeeded.zero?

          ran += succeeded
        end
        ran
      rescue StandardError => e
        warn "DelayedJob worker #{index}: #{e.class}: #{e.message}"
        exit!(1)
      end
    end
  end
end
