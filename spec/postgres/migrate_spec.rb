# frozen_string_literal: true

require "open3"
require "pg"
require "rbconfig"

# `tasker-worker migrate`: applies the schema once however many processes run it at once,
# says the version, and refuses a database whose schema is newer than the code.
RSpec.describe "tasker-worker migrate" do
  let(:server) { PrivatePostgres.shared }
  let(:url) { server.fresh_database(prefix: "migrate") }

  def migrate(database_url)
    command = [RbConfig.ruby, "-I", WorkerFleet::LIB, WorkerFleet::EXE, "migrate", "--database-url", database_url]
    Open3.capture3({ "TASKER_DATABASE_URL" => nil }, *command)
  end

  it "applies each migration once when two processes migrate at the same time" do
    runs = Array.new(2) { Thread.new { migrate(url) } }.map(&:value)
    expect(runs.map { |_, _, status| status.exitstatus }).to eq([0, 0]), runs.map { |_, err, _| err }.join
    outputs = runs.map(&:first)
    expect(outputs).to all(match(/schema version 5 /))
    expect(outputs.count { |out| out.include?("applied: 1 initial, 2 status_counts, 3 record_results_linear, 4 completion_writes_in_place, 5 record_completions") }).to eq(1)
    expect(outputs.count { |out| out.include?("already up to date") }).to eq(1)
    versions = PG.connect(url) { |conn| conn.exec("SELECT version FROM tasker.schema_migrations").values.flatten }
    expect(versions.sort).to eq(%w[1 2 3 4 5])
  end

  it "refuses a database whose schema is newer than this code, by name" do
    migrate(url)
    PG.connect(url) do |conn|
      conn.exec("INSERT INTO tasker.schema_migrations (version, name, checksum) VALUES (99, 'future', 'x')")
    end
    out, err, status = migrate(url.sub("postgres@", "postgres:hunter2@"))
    expect(status.exitstatus).to eq(1)
    expect(out).to eq("")
    expect(err).to include("schema version 99, newer than this tasker_core knows (up to 5)")
    expect(err).to include("postgres:***@")
    expect(err).not_to include("hunter2")
  end
end
