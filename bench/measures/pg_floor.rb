# frozen_string_literal: true

require_relative "../support/helper"
require_relative "../../spec/support/private_postgres"

module Bench
  module Measures
    # The raw-SQL floor: what PostgreSQL itself allows for one-step jobs with the pattern
    # the PostgreSQL store uses, with no engine around it. N jobs are inserted up front
    # into a bare queue table on the private server (fsync on), then CONNECTIONS threads,
    # each with its own connection, loop: claim up to 64 with one
    # `UPDATE ... WHERE ctid = ANY(ARRAY(SELECT ... FOR UPDATE SKIP LOCKED LIMIT 64))`,
    # then complete them all with one `UPDATE ... WHERE id = ANY($1)` (two autocommit
    # statements, two round trips and two commits per batch). The clock runs from the
    # threads' start until every job is done; afterwards none may be left unfinished.
    class PgFloor
      CONNECTIONS = 4
      BATCH = 64

      SCHEMA = <<~SQL
        CREATE SCHEMA bench_floor;
        CREATE TABLE bench_floor.jobs (
          id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
          status     smallint NOT NULL DEFAULT 0,
          attempts   integer NOT NULL DEFAULT 0,
          claimed_by text,
          payload    jsonb NOT NULL,
          result     jsonb
        );
        CREATE INDEX jobs_ready ON bench_floor.jobs (id) WHERE status = 0;
      SQL
      INSERT = "INSERT INTO bench_floor.jobs (payload) SELECT jsonb_build_object('i', i) FROM generate_series(1, $1) AS i"
      CLAIM = <<~SQL
        UPDATE bench_floor.jobs j SET status = 1, attempts = j.attempts + 1, claimed_by = $1
        WHERE j.ctid = ANY(ARRAY(SELECT q.ctid FROM bench_floor.jobs q WHERE q.status = 0
                                 ORDER BY q.id LIMIT #{BATCH} FOR UPDATE SKIP LOCKED))
        RETURNING j.id
      SQL
      COMPLETE = "UPDATE bench_floor.jobs SET status = 2, result = '{}' WHERE id = ANY($1::bigint[]) AND status = 1"

      # @param sizes [Hash] see Bench::Sizes
      def initialize(sizes:)
        @jobs = sizes.fetch(:e2e_tasks)
      end

      # @return [Hash]
      def call
        require "pg"
        server = PrivatePostgres.start
        url = server.fresh_database(prefix: "bench_floor")
        prepare(url)
        seconds, batches = drain(url)
        check(url)
        { jobs: @jobs, connections: CONNECTIONS, batch: BATCH, seconds: seconds, jobs_per_s: @jobs / seconds,
          batches: batches, commits_per_job: 2.0 * batches / @jobs, server_version: server_version(url) }
      ensure
        server&.stop
      end

      private

      def prepare(url)
        PG.connect(url) do |conn|
          conn.exec(SCHEMA)
          conn.exec_params(INSERT, [@jobs])
          conn.exec("VACUUM ANALYZE bench_floor.jobs")
        end
      end

      # @return [Array(Float, Integer)] seconds, claim batches run
      def drain(url)
        connections = Array.new(CONNECTIONS) { PG.connect(url).tap { |c| prepare_statements(c) } }
        started = Helper.now
        threads = connections.each_with_index.map do |conn, i|
          Thread.new { work(conn, "floor-#{i}") }
        end
        batches = threads.sum(&:value)
        [Helper.now - started, batches]
      ensure
        connections&.each(&:close)
      end

      def prepare_statements(conn)
        conn.prepare("claim", CLAIM)
        conn.prepare("complete", COMPLETE)
      end

      def work(conn, name)
        batches = 0
        encoder = PG::TextEncoder::Array.new
        loop do
          ids = conn.exec_prepared("claim", [name]).column_values(0)
          return batches if ids.empty?

          batches += 1
          conn.exec_prepared("complete", [encoder.encode(ids)])
        end
      end

      def check(url)
        PG.connect(url) do |conn|
          left = conn.exec("SELECT count(*) FROM bench_floor.jobs WHERE status <> 2").getvalue(0, 0).to_i
          raise MeasureError, "#{left} of #{@jobs} floor jobs not done after the drain" unless left.zero?
        end
      end

      def server_version(url)
        PG.connect(url) { |conn| conn.exec("SHOW server_version").getvalue(0, 0).split.first }
      end
    end
  end
end
