# frozen_string_literal: true

require_relative "unit_helper"
require "tasker_core/cli"
require "tasker_core/cli/migrate_command"

RSpec.describe "tasker-worker migrate and --database-url" do
  let(:out) { StringIO.new }
  let(:err) { StringIO.new }

  describe TaskerCore::CLI::MigrateCommand do
    def command(argv, env: {}, &migrate)
      described_class.new(argv, out: out, err: err, env: env, migrate: migrate)
    end

    it "migrates the database named by --database-url and prints what it applied" do
      seen = nil
      run = command(%w[--database-url postgresql://app@db/tasks]) do |url|
        seen = url
        { "version" => 1, "applied" => [{ "version" => 1, "name" => "initial" }] }
      end
      expect(run.run).to eq(0)
      expect(seen).to eq("postgresql://app@db/tasks")
      expect(out.string).to eq("tasker-worker migrate: schema version 1 (applied: 1 initial)\n")
    end

    it "falls back to TASKER_DATABASE_URL and says when nothing was left to do" do
      run = command([], env: { "TASKER_DATABASE_URL" => "postgresql://app@db/tasks" }) do |_url|
        { "version" => 1, "applied" => [] }
      end
      expect(run.run).to eq(0)
      expect(out.string).to eq("tasker-worker migrate: schema version 1 (already up to date)\n")
    end

    it "exits 2 with the usage without a database, 1 naming the error when migrating fails" do
      expect(command([]) { raise "not called" }.run).to eq(2)
      expect(err.string).to include("--database-url is required (or set TASKER_DATABASE_URL)",
                                    "Usage: tasker-worker migrate --database-url URL")
      failing = command(%w[--database-url postgresql://app:***@db/x]) do |_url|
        raise TaskerCore::Errors::StoreUnavailableError, "cannot reach PostgreSQL at postgresql://app:***@db/x"
      end
      expect(failing.run).to eq(1)
      expect(err.string).to include("tasker-worker migrate: TaskerCore::Errors::StoreUnavailableError: cannot reach")
      expect(command(%w[extra]) { raise "not called" }.run).to eq(2)
    end
  end

  describe TaskerCore::CLI do
    it "dispatches migrate to its command" do
      expect(described_class.new(%w[migrate -h], out: out, err: err).run).to eq(0)
      expect(out.string).to include("Usage: tasker-worker migrate --database-url URL")
    end

    it "passes --database-url to the worker, and refuses an empty one" do
      seen = nil
      factory = lambda do |**options|
        seen = options
        raise TaskerCore::Errors::ConfigurationError, "stop here"
      end
      described_class.new(%w[--database-url postgresql://app@db/tasks -c 2], out: out, err: err,
                                                                              worker_factory: factory).run
      expect(seen).to eq(concurrency: 2, database_url: "postgresql://app@db/tasks")
      expect { described_class.new([]).parse(["--database-url", " "]) }
        .to raise_error(TaskerCore::CLI::UsageError, /--database-url must not be empty/)
    end
  end
end
