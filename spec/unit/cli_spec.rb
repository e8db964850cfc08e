# frozen_string_literal: true

require_relative "unit_helper"
require "open3"
require "timeout"
require "tmpdir"

RSpec.describe TaskerCore::CLI do
  let(:out) { StringIO.new }
  let(:err) { StringIO.new }

  def cli(*argv, worker_factory: nil)
    described_class.new(argv, out: out, err: err, worker_factory: worker_factory)
  end

  describe "#parse" do
    it "reads every option" do
      Dir.mktmpdir do |dir|
        handlers = File.join(dir, "handlers.rb")
        File.write(handlers, "")
        options = cli.parse(["--require", handlers, "-r", File.join(dir, "handlers"), "--templates", dir,
                             "--concurrency", "4", "--environment", "production", "--timeout", "12.5",
                             "--config-root", dir])
        expect(options).to eq(requires: [handlers, handlers], templates: dir, concurrency: 4,
                              environment: "production", timeout: 12.5, config_root: dir)
      end
    end

    {
      %w[--bogus] => /invalid option: --bogus/,
      %w[--concurrency] => /missing argument: --concurrency/,
      %w[--concurrency many] => /invalid argument: --concurrency many/,
      %w[--concurrency 0] => /--concurrency must be at least 1/,
      %w[--timeout -1] => /--timeout must be a non-negative/,
      %w[--require /no/such/handlers.rb] => %r{--require /no/such/handlers.rb: no such file},
      %w[--templates /no/such/dir] => %r{--templates /no/such/dir: no such directory},
      %w[extra] => /unexpected argument\(s\): extra/
    }.each do |argv, message|
      it "rejects #{argv.join(' ')}" do
        expect { cli.parse(argv) }.to raise_error(described_class::UsageError, message)
      end
    end
  end

  describe "#run" do
    it "prints the error and the usage and returns 2 on a bad option" do
      expect(cli("--bogus").run).to eq(2)
      expect(err.string).to include("tasker-worker: invalid option: --bogus", "Usage: tasker-worker [options]",
                                    "--require FILE", "--concurrency N", "--timeout SECONDS")
    end

    it "names the file and line when a --require'd file raises" do
      Dir.mktmpdir do |dir|
        handlers = File.join(dir, "broken_handlers.rb")
        File.write(handlers, "# one\n# two\nraise ArgumentError, 'no PAYMENT_KEY set'\n")
        expect(cli("--require", handlers).run).to eq(1)
        expect(err.string).to include("tasker-worker: TaskerCore::CLI::HandlerFileError: --require #{handlers} failed " \
                                      "at #{handlers}:3:in", "ArgumentError: no PAYMENT_KEY set")
      end
    end

    it "names the file and line of a syntax error in a --require'd file" do
      Dir.mktmpdir do |dir|
        handlers = File.join(dir, "typo.rb")
        File.write(handlers, "class Foo\n  def call(\nend\n")
        expect(cli("--require", handlers).run).to eq(1)
        expect(err.string).to match(/--require #{Regexp.escape(handlers)} failed at .*SyntaxError: .*typo\.rb:\d+/m)
      end
    end

    it "prints the usage and returns 0 for -h" do
      expect(cli("-h").run).to eq(0)
      expect(out.string).to include("Usage: tasker-worker [options]", "--templates DIR", "--environment ENV")
    end

    it "returns 1 with the error when the worker cannot start" do
      factory = lambda do |**|
        Object.new.tap do |worker|
          def worker.start = raise(TaskerCore::Errors::ConfigurationError, "tasker/base/worker.toml: unknown key 'bogus'")
        end
      end
      expect(cli("--concurrency", "2", worker_factory: factory).run).to eq(1)
      expect(err.string).to include("TaskerCore::Errors::ConfigurationError: tasker/base/worker.toml: unknown key 'bogus'")
    end

    it "loads --require files before building the worker, passing the options through" do
      Dir.mktmpdir do |dir|
        file = File.join(dir, "cli_spec_handlers.rb")
        File.write(file, "module CliSpecLoaded; end\n")
        seen = nil
        factory = lambda do |**options|
          seen = [defined?(CliSpecLoaded), options]
          raise TaskerCore::Errors::ConfigurationError, "stop here"
        end
        cli("-r", file, "--templates", dir, "-c", "3", "-e", "test", worker_factory: factory).run
        expect(seen).to eq(["constant", { concurrency: 3, template_path: dir, environment: "test" }])
      end
    end
  end

  describe "signals (subprocess)" do
    let(:script) { File.expand_path("fixtures/cli_with_fake_worker.rb", __dir__) }

    def launch(env = {}, *argv)
      stdin, stdout, stderr, waiter = Open3.popen3(env, RbConfig.ruby, script, *argv)
      stdin.close
      banner = Timeout.timeout(10) { stdout.gets }
      [stdout, stderr, waiter, banner]
    end

    it "prints a banner, stops gracefully on the first TERM and exits 0" do
      stdout, stderr, waiter, banner = launch({}, "--concurrency", "3", "--timeout", "7")
      expect(banner).to include("started: worker_id=worker-fake", "concurrency=3", "templates_loaded=2")
      Process.kill("TERM", waiter.pid)
      status = Timeout.timeout(10) { waiter.value }
      output = stdout.read
      expect(status.exitstatus).to eq(0)
      expect(output).to include("SIGTERM received", "fake stop timeout=7.0",
                                "1 unfinished step(s) reported as worker_shutdown: slow_step")
      expect(stderr.read).to eq("")
    end

    it "exits 1 at once on a second signal during the graceful stop" do
      stdout, stderr, waiter, = launch({ "FAKE_STOP_SECONDS" => "30" })
      Process.kill("INT", waiter.pid)
      Timeout.timeout(10) do
        loop { break if stdout.gets.to_s.include?("fake stop") }
      end
      started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
      Process.kill("INT", waiter.pid)
      status = Timeout.timeout(10) { waiter.value }
      expect(Process.clock_gettime(Process::CLOCK_MONOTONIC) - started).to be < 5
      expect(status.exitstatus).to eq(1)
      expect(stderr.read).to include("second SIGINT received, exiting immediately")
    end
  end
end
