# frozen_string_literal: true

require "logger"
require_relative "../support/helper"
require_relative "../support/redis_server"

module Bench
  module Measures
    # Line 3, Sidekiq side: the same N no-op jobs pushed with Sidekiq::Client.push_bulk
    # (1000 per call; timed: the push rate) into a private redis-server, then drained by
    # Sidekiq at concurrency 5, run in this process through Sidekiq::Launcher.
    #
    # Each job increments an in-process counter (a Mutex and an Integer, far cheaper
    # than a redis INCR); the clock runs from just before Launcher#run until the counter
    # reaches N. Afterwards the queue must be empty and the retry and dead sets too.
    #
    # Sidekiq's per-job INFO log lines are silenced (logger level WARN) and so are
    # redis-rb 4.8's deprecation warnings (Sidekiq 6.4.1 calls brpop the old way), so
    # neither side pays for writing logs.
    class SidekiqNoop
      CONCURRENCY = 5
      PUSH_SLICE = 1000
      QUEUE = "default"

      # The no-op job: counts its runs.
      class NoopJob
        LOCK = Mutex.new
        @performed = 0

        class << self
          # @return [Integer]
          def performed
            LOCK.synchronize { @performed }
          end

          # @return [void]
          def count!
            LOCK.synchronize { @performed += 1 }
          end
        end

        # @param _index [Integer]
        def perform(_index)
          self.class.count!
        end
      end

      # @param sizes [Hash] see Bench::Sizes
      def initialize(sizes:)
        @jobs = sizes.fetch(:e2e_tasks)
      end

      # @return [Hash]
      def call
        load_sidekiq
        RedisServer.run do |redis|
          configure(redis)
          push_seconds = push_jobs
          queued = Sidekiq::Queue.new(QUEUE).size
          raise MeasureError, "pushed #{@jobs} jobs but the queue holds #{queued}" unless queued == @jobs

          seconds = drain
          # Sidekiq flushes its stats at exit, after this redis is gone: nothing to report.
          Sidekiq.logger.level = Logger::FATAL
          { jobs: @jobs, concurrency: CONCURRENCY, seconds: seconds, jobs_per_s: @jobs / seconds,
            push_seconds: push_seconds, push_per_s: @jobs / push_seconds,
            sidekiq_version: Sidekiq::VERSION, redis_version: RedisServer.version }
        end
      end

      private

      def load_sidekiq
        require "redis"
        Redis.silence_deprecations = true if Redis.respond_to?(:silence_deprecations=)
        require "sidekiq"
        require "sidekiq/api"
        require "sidekiq/launcher"
        NoopJob.include(Sidekiq::Worker)
      rescue LoadError => e
        raise MeasureError, "Sidekiq could not be loaded (#{e.message}); run bin/setup --bench, and run the " \
                            "suite with plain `ruby -Ilib`, not under `bundle exec`"
      end

      def configure(redis)
        Sidekiq.redis = { url: redis.url, size: CONCURRENCY + 5 }
        Sidekiq.logger.level = Logger::WARN
        Sidekiq.options[:concurrency] = CONCURRENCY
        Sidekiq.options[:queues] = [QUEUE]
        Sidekiq.options[:timeout] = 5
      end

      def push_jobs
        Helper.time do
          (0...@jobs).each_slice(PUSH_SLICE) do |slice|
            Sidekiq::Client.push_bulk("class" => NoopJob, "queue" => QUEUE, "args" => slice.map { |i| [i] })
          end
        end
      end

      def drain
        launcher = Sidekiq::Launcher.new(Sidekiq.options)
        started = Helper.now
        launcher.run
        deadline = started + 600
        sleep 0.002 while NoopJob.performed < @jobs && Helper.now < deadline
        seconds = Helper.now - started
        performed = NoopJob.performed
        raise MeasureError, "Sidekiq ran #{performed} of #{@jobs} jobs within 600s" if performed < @jobs

        launcher.stop
        launcher = nil
        check_leftovers
        seconds
      ensure
        launcher&.stop
      end

      def check_leftovers
        left = Sidekiq::Queue.new(QUEUE).size
        retries = Sidekiq::RetrySet.new.size
        dead = Sidekiq::DeadSet.new.size
        return if left.zero? && retries.zero? && dead.zero?

        raise MeasureError, "after the drain: #{left} jobs queued, #{retries} retrying, #{dead} dead"
      end
    end
  end
end
