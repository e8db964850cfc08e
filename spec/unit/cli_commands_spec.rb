# frozen_string_literal: true

require_relative "unit_helper"
require "tasker_core/cli/web_command"
require "tasker_core/cli/status_command"
require "tasker_core/cli/task_command"

RSpec.describe "tasker-worker web, status and task (parsing and where the data comes from)" do
  let(:out) { StringIO.new }
  let(:err) { StringIO.new }

  describe TaskerCore::CLI::WebCommand do
    def command(*argv, env: {}, connect: nil)
      described_class.new(argv, out: out, err: err, env: env, connect: connect)
    end

    it "reads the port, host, database URL and templates, with 9292 on 127.0.0.1 by default" do
      Dir.mktmpdir do |dir|
        expect(command.parse(%w[--database-url postgres://db/x])).to eq(port: 9292, host: "127.0.0.1",
                                                                         database_url: "postgres://db/x")
        expect(command.parse(["-p", "0", "--host", "0.0.0.0", "--database-url", "u", "-t", dir]))
          .to eq(port: 0, host: "0.0.0.0", database_url: "u", templates: dir)
      end
      expect(command(env: { "TASKER_DATABASE_URL" => "postgres://env" }).parse([])[:database_url]).to eq("postgres://env")
    end

    {
      [] => /needs --database-url \(or TASKER_DATABASE_URL\).*tasker-worker --web-port 9292/,
      %w[--database-url u --port 70000] => /--port must be from 0 to 65535, got 70000/,
      %w[--database-url u --port x] => /invalid argument: --port x/,
      %w[--database-url u --host] => /missing argument: --host/,
      %w[--database-url u extra] => /unexpected argument\(s\): extra/,
      %w[--database-url u -t /no/such/dir] => %r{--templates /no/such/dir: no such directory}
    }.each do |argv, message|
      it "refuses #{argv.join(' ')}" do
        expect { command.parse(argv) }.to raise_error(TaskerCore::CLI::UsageError, message)
      end
    end

    it "exits 2 with the usage on a bad command line, 1 naming the error when connecting fails" do
      expect(command.run).to eq(2)
      expect(err.string).to include("tasker-worker web: needs --database-url", "Usage: tasker-worker web --database-url URL")

      seen = nil
      failing = lambda do |**options|
        seen = options
        raise TaskerCore::Errors::ConfigurationError, "could not connect to postgres://db/x"
      end
      expect(command("--database-url", "postgres://db/x", connect: failing).run).to eq(1)
      expect(seen).to eq(database_url: "postgres://db/x")
      expect(err.string).to include("tasker-worker web: TaskerCore::Errors::ConfigurationError: could not connect to postgres://db/x")
    end
  end

  describe TaskerCore::CLI::TaskCommand do
    def command(*argv, env: {}, connect: nil)
      described_class.new(argv, out: out, err: err, env: env, connect: connect)
    end

    let(:uuid) { "0bdb3902-a75f-433e-bc5b-3685762c45ae" }

    it "takes exactly one task uuid" do
      expect(command.parse([uuid, "--url", "http://h:1"])).to eq(arguments: [uuid], url: "http://h:1")
      expect { command.parse([]) }.to raise_error(TaskerCore::CLI::UsageError, /needs the task's UUID/)
      expect { command.parse([uuid, uuid]) }.to raise_error(TaskerCore::CLI::UsageError, /takes one task UUID, got 2/)
      expect { command.parse(["12"]) }.to raise_error(TaskerCore::CLI::UsageError, /not a task UUID: 12/)
    end

    it "refuses both sources at once and a URL that is not http" do
      expect(command(uuid, "--url", "http://h:1", "--database-url", "u").run).to eq(2)
      expect(err.string).to include("give --url or --database-url, not both")
      expect(command(uuid, "--url", "ftp://h/").run).to eq(1)
      expect(err.string).to include("--url must be an http:// or https:// address, got \"ftp://h/\"")
    end

    it "connects to the store named by TASKER_DATABASE_URL before reading the task" do
      seen = nil
      connect = ->(**options) { seen = options }
      expect(command(uuid, "-t", Dir.tmpdir, env: { "TASKER_DATABASE_URL" => "postgres://env" }, connect: connect).run)
        .to eq(1)
      expect(seen).to eq(database_url: "postgres://env", template_path: Dir.tmpdir)
      expect(err.string).to start_with("tasker-worker task: ")
    end
  end

  describe TaskerCore::CLI::StatusCommand do
    it "says where the figures can come from when no source is given" do
      expect(described_class.new([], out: out, err: err, env: {}).run).to eq(2)
      expect(err.string).to include("tasker-worker status: needs --url of a running dashboard",
                                     "Usage: tasker-worker status (--url URL | --database-url URL)")
    end

    it "prints its help" do
      expect(described_class.new(["-h"], out: out, err: err, env: {}).run).to eq(0)
      expect(out.string).to include("--url URL", "--database-url URL", "--json")
    end
  end

  describe TaskerCore::CLI do
    it "dispatches web, status and task to their commands" do
      expect(TaskerCore::CLI.new(%w[status --help], out: out, err: err).run).to eq(0)
      expect(out.string).to include("Usage: tasker-worker status")
      expect(TaskerCore::CLI.new(%w[task], out: out, err: err).run).to eq(2)
      expect(err.string).to include("tasker-worker task: needs the task's UUID")
    end

    it "reads --web-port and --web-host, and refuses a port out of range" do
      options = TaskerCore::CLI.new([]).parse(%w[--web-port 0 --web-host ::1])
      expect(options).to include(web_port: 0, web_host: "::1")
      expect { TaskerCore::CLI.new([]).parse(%w[--web-port 65536]) }
        .to raise_error(TaskerCore::CLI::UsageError, /--web-port must be from 0 to 65535, got 65536/)
    end

    it "starts the dashboard after the worker, prints its address and stops it with the worker" do
      events = []
      worker = Object.new
      worker.define_singleton_method(:start) do
        events << :worker_started
        { "worker_id" => "w-1", "environment" => "test", "templates_loaded" => 0 }
      end
      worker.define_singleton_method(:concurrency) { 1 }
      worker.define_singleton_method(:running?) { events.count(:dashboard_started) < 1 }
      dashboard = Object.new
      dashboard.define_singleton_method(:url) { "http://127.0.0.1:4567/" }
      dashboard.define_singleton_method(:stop) { |**| events << :dashboard_stopped }
      factory = lambda do |host:, port:|
        events << [:dashboard, host, port] << :dashboard_started
        dashboard
      end
      cli = TaskerCore::CLI.new(%w[--web-port 4567], out: out, err: err, worker_factory: ->(**) { worker },
                                                      dashboard_factory: factory)

      expect(cli.run).to eq(0)
      expect(events).to eq([:worker_started, [:dashboard, "127.0.0.1", 4567], :dashboard_started, :dashboard_stopped])
      expect(out.string).to include("tasker-worker: dashboard at http://127.0.0.1:4567/")
    end
  end
end
