# frozen_string_literal: true

require "open3"
require "rbconfig"

# Bad database URLs and servers that cannot be reached: every entry point (connect,
# bootstrap_worker, TaskerCore::Worker, the executable) fails at once with an error that
# names the URL without its password and says what is wrong.
RSpec.describe "Bad database URLs and unreachable servers" do
  let(:server) { PrivatePostgres.shared }
  let(:password) { "hunter2secret" }

  # What `call` raises in a fresh process: {"class", "message"}.
  def raised(call)
    RubySubprocess.json(<<~RUBY, timeout: 60)
      require "json"
      require "tasker_core"
      begin
        #{call}
        puts JSON.generate("class" => nil)
      rescue StandardError => e
        puts JSON.generate("class" => e.class.name, "message" => e.message)
      end
    RUBY
  end

  cases = {
    "a server that refuses TCP connections" => ["postgresql://app:%<pw>s@127.0.0.1:1/tasks?connect_timeout=3",
                                                 "TaskerCore::Errors::StoreUnavailableError", /cannot reach PostgreSQL/],
    "a unix socket directory with no server" => ["postgresql://app:%<pw>s@/tasks?host=/nonexistent/socket/dir",
                                                  "TaskerCore::Errors::StoreUnavailableError", /cannot reach PostgreSQL/],
    "a URL that does not parse" => ["postgresql://app:%<pw>s@db:notaport/tasks", "ArgumentError",
                                    /invalid database URL/],
    "another scheme" => ["mysql://app:%<pw>s@db/tasks", "ArgumentError", /unsupported scheme "mysql"/],
    "a URL asking for TLS" => ["postgresql://app:%<pw>s@db/tasks?sslmode=require", "ArgumentError",
                               /TLS, which this build of tasker_core does not support/]
  }

  cases.each do |what, (template, error_class, message)|
    it "names #{what} without the password, from connect and bootstrap_worker" do
      url = format(template, pw: password)
      shown = url.sub(password, "***")
      ["TaskerCore.connect(database_url: #{url.inspect})",
       "TaskerCore::FFI.bootstrap_worker(database_url: #{url.inspect})"].each do |call|
        answer = raised(call)
        expect(answer["class"]).to eq(error_class), "#{call}: #{answer}"
        expect(answer["message"]).to match(message)
        expect(answer["message"]).to include(shown)
        expect(answer["message"]).not_to include(password)
      end
    end
  end

  it "names a database that does not exist on a reachable server" do
    url = server.url("no_such_database", password: password)
    answer = raised("TaskerCore::Worker.new(database_url: #{url.inspect}).start")
    expect(answer["class"]).to eq("TaskerCore::Errors::StoreUnavailableError")
    expect(answer["message"]).to include("refused the connection", "no_such_database", "does not exist")
    expect(answer["message"]).not_to include(password)
  end

  it "makes tasker-worker exit 1 with the reason, the password hidden" do
    url = format(cases["a server that refuses TCP connections"].first, pw: password)
    command = [RbConfig.ruby, "-I", WorkerFleet::LIB, WorkerFleet::EXE, "--database-url", url,
               "--templates", WorkerFleet::TEMPLATES]
    out, err, status = Open3.capture3({ "TASKER_DATABASE_URL" => nil, "TASKER_ENV" => "test" }, *command)
    expect(status.exitstatus).to eq(1)
    expect(out).not_to include("started")
    expect(err).to include("cannot reach PostgreSQL at postgresql://app:***@127.0.0.1:1/tasks")
    expect(err + out).not_to include(password)
  end
end
