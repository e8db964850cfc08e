# frozen_string_literal: true

require "io/wait"
require "optparse"
require "tasker_core/errors"

module TaskerCore
  # The `tasker-worker` command: loads handler files, starts a TaskerCore::Worker and
  # runs until TERM or INT. The first signal stops gracefully (exit 0); a second one
  # exits at once (exit 1). Bad options print the usage and exit 2. `--web-port` also
  # serves the dashboard from the worker's process.
  #
  # Subcommands, each its own class: `web` (CLI::WebCommand), `status`
  # (CLI::StatusCommand), `task UUID` (CLI::TaskCommand), `migrate` (CLI::MigrateCommand).
  class CLI
    EXIT_OK = 0
    EXIT_FAILURE = 1
    EXIT_USAGE = 2
    SIGNALS = %w[TERM INT].freeze
    # How often the main thread checks that the worker still runs while it waits.
    WAIT_INTERVAL = 1.0

    # A bad command line.
    class UsageError < StandardError; end

    # A --require'd file raised while loading; says which file and where.
    class HandlerFileError < StandardError
      # @param file [String] the required path
      # @param cause [Exception] what it raised
      def initialize(file, cause)
        where = (cause.backtrace || []).find { |line| line.start_with?(file) } ||
                cause.backtrace&.first || file
        super("--require #{file} failed at #{where}: #{cause.class}: #{cause.message}")
      end
    end

    # Subcommand name => [file to require, class name under TaskerCore::CLI].
    SUBCOMMANDS = {
      "web" => ["tasker_core/cli/web_command", :WebCommand],
      "status" => ["tasker_core/cli/status_command", :StatusCommand],
      "task" => ["tasker_core/cli/task_command", :TaskCommand],
      "migrate" => ["tasker_core/cli/migrate_command", :MigrateCommand],
      "tasks" => ["tasker_core/cli/tasks_command", :TasksCommand],
      "cancel" => ["tasker_core/cli/control_command", :CancelCommand],
      "retry" => ["tasker_core/cli/control_command", :RetryCommand]
    }.freeze

    # @param argv [Array<String>]
    # @param out [IO] banner and progress
    # @param err [IO] errors and usage on bad options
    # @param worker_factory [#call, nil] builds the worker from keyword options
    #   (TaskerCore::Worker.new when nil)
    # @param dashboard_factory [#call, nil] starts the dashboard for `--web-port` from
    #   `host:` and `port:` and returns something answering `url` and `stop`
    #   (a TaskerCore::Web::Server of TaskerCore::Web when nil)
    def initialize(argv, out: $stdout, err: $stderr, worker_factory: nil, dashboard_factory: nil)
      @argv = argv.dup
      @out = out
      @err = err
      @worker_factory = worker_factory || ->(**options) { TaskerCore::Worker.new(**options) }
      @dashboard_factory = dashboard_factory || method(:start_dashboard)
    end

    # @return [Integer] the exit status
    def run
      subcommand = SUBCOMMANDS[@argv.first]
      return run_subcommand(*subcommand) if subcommand

      options = parse(@argv)
      if options[:help]
        @out.puts(parser({}).help)
        return EXIT_OK
      end

      load_handlers(options[:requires])
      worker = @worker_factory.call(**worker_options(options))
      with_signal_pipe { |signals| serve(worker, options, signals) }
    rescue UsageError => e
      @err.puts("tasker-worker: #{e.message}")
      @err.puts(parser({}).help)
      EXIT_USAGE
    rescue StandardError, ScriptError => e
      @err.puts("tasker-worker: #{e.class}: #{e.message}")
      EXIT_FAILURE
    end

    # @param argv [Array<String>]
    # @return [Hash] :requires, :templates, :concurrency, :database_url, :environment,
    #   :config_root, :timeout, :web_port, :web_host, :help
    # @raise [UsageError]
    def parse(argv)
      options = { requires: [] }
      rest = parser(options).parse(argv.dup)
      raise UsageError, "unexpected argument(s): #{rest.join(' ')}" unless rest.empty?

      options
    rescue OptionParser::ParseError => e
      raise UsageError, e.message
    end

    private

    def parser(options)
      OptionParser.new do |opts|
        opts.banner = "Usage: tasker-worker [options]\n       tasker-worker web|status|task|tasks|cancel|retry|migrate ... (--help for each)"
        opts.separator ""
        opts.separator "Runs TaskerCore step handlers until TERM or INT (a second signal exits at once)."
        opts.separator ""
        opts.on("-r", "--require FILE", "Ruby file defining step handlers (repeatable)") do |file|
          options[:requires] << require_path!(file)
        end
        opts.on("-t", "--templates DIR", "Task template directory (default: TASKER_TEMPLATE_PATH)") do |dir|
          options[:templates] = directory!("--templates", dir)
        end
        opts.on("-c", "--concurrency N", Integer, "Handler threads (default: the config's concurrency)") do |count|
          raise UsageError, "--concurrency must be at least 1, got #{count}" unless count.positive?

          options[:concurrency] = count
        end
        opts.on("--database-url URL", "PostgreSQL database (default: TASKER_DATABASE_URL, else the embedded store)") do |url|
          raise UsageError, "--database-url must not be empty" if url.strip.empty?

          options[:database_url] = url
        end
        opts.on("-e", "--environment ENV", "Config environment (default: TASKER_ENV or development)") do |env|
          raise UsageError, "--environment must not be empty" if env.strip.empty?

          options[:environment] = env
        end
        opts.on("--config-root DIR", "Config directory holding base/ and environments/") do |dir|
          options[:config_root] = directory!("--config-root", dir)
        end
        opts.on("--timeout SECONDS", Float, "Graceful stop timeout (default: the config's shutdown_timeout_ms)") do |secs|
          raise UsageError, "--timeout must be a non-negative finite number, got #{secs}" unless secs.finite? && secs >= 0

          options[:timeout] = secs
        end
        opts.on("--web-port PORT", Integer, "Also serve the dashboard from this worker (0 picks a free port)") do |port|
          raise UsageError, "--web-port must be from 0 to 65535, got #{port}" unless port.between?(0, 65_535)

          options[:web_port] = port
        end
        opts.on("--web-host HOST", "Address the dashboard binds (default 127.0.0.1)") do |host|
          raise UsageError, "--web-host must not be empty" if host.strip.empty?

          options[:web_host] = host
        end
        opts.on("-h", "--help", "Show this help") do
          options[:help] = true
        end
      end
    end

    def require_path!(file)
      path = File.expand_path(file)
      return path if File.file?(path)
      return "#{path}.rb" if File.file?("#{path}.rb")

      raise UsageError, "--require #{file}: no such file"
    end

    def directory!(flag, dir)
      path = File.expand_path(dir)
      raise UsageError, "#{flag} #{dir}: no such directory" unless File.directory?(path)

      path
    end

    # Requires each handler file; an error inside one names the file and the line.
    def load_handlers(files)
      files.each do |file|
        require file
      rescue ScriptError, StandardError => e
        raise HandlerFileError.new(file, e)
      end
    end

    def worker_options(options)
      {
        concurrency: options[:concurrency],
        template_path: options[:templates],
        environment: options[:environment],
        config_root: options[:config_root],
        database_url: options[:database_url]
      }.compact
    end

    def banner(info, worker)
      version = defined?(TaskerCore::VERSION) ? " #{TaskerCore::VERSION}" : ""
      "tasker-worker#{version} started: worker_id=#{info['worker_id']} environment=#{info['environment']} " \
        "concurrency=#{worker.concurrency} templates_loaded=#{info['templates_loaded']} pid=#{Process.pid} " \
        "(TERM or INT to stop)"
    end

    # Traps TERM and INT for the duration of the block. The trap handlers only write the
    # signal name to a pipe; all work happens in the main thread, outside the trap context.
    def with_signal_pipe
      reader, writer = IO.pipe
      previous = SIGNALS.to_h do |signal|
        [signal, Signal.trap(signal) { writer.write_nonblock("#{signal}\n", exception: false) }]
      end
      yield reader
    ensure
      previous&.each { |signal, handler| Signal.trap(signal, handler || "DEFAULT") }
      [reader, writer].each { |io| io.close if io && !io.closed? }
    end

    def run_subcommand(file, class_name)
      require file
      self.class.const_get(class_name).new(@argv.drop(1), out: @out, err: @err).run
    end

    # Starts the worker (and the dashboard with --web-port), waits for a signal, stops
    # gracefully; exits at once on a second signal.
    def serve(worker, options, signals)
      timeout = options[:timeout]
      info = worker.start
      dashboard = nil
      begin
        @out.puts(banner(info, worker))
        dashboard = serve_dashboard(options)
        signal = wait_for_signal(signals, worker)
        return EXIT_OK unless signal

        @out.puts("tasker-worker: SIG#{signal} received, stopping " \
                  "(#{timeout ? "timeout #{timeout}s" : 'configured timeout'}); send it again to exit immediately")
        report = stop_watching_signals(worker, timeout, signals)
        @out.puts("tasker-worker: stopped#{abandoned_note(report)}")
        EXIT_OK
      rescue StandardError
        worker.stop if worker.running?
        raise
      ensure
        dashboard&.stop
      end
    end

    # @return [#stop, nil] the running dashboard, when --web-port was given
    def serve_dashboard(options)
      return nil unless options.key?(:web_port)

      dashboard = @dashboard_factory.call(host: options[:web_host] || "127.0.0.1", port: options[:web_port])
      @out.puts("tasker-worker: dashboard at #{dashboard.url}")
      dashboard
    end

    def start_dashboard(host:, port:)
      require "tasker_core/web"
      require "tasker_core/web/server"
      TaskerCore::Web::Server.new(app: TaskerCore::Web.new, host: host, port: port, log: @err).start
    end

    # @return [String, nil] the signal name, or nil when the worker stopped on its own
    def wait_for_signal(reader, worker)
      loop do
        return reader.gets&.chomp if reader.wait_readable(WAIT_INTERVAL)
        return nil unless worker.running?
      end
    end

    def stop_watching_signals(worker, timeout, reader)
      stopper = Thread.new { worker.stop(timeout: timeout) }
      stopper.report_on_exception = false
      until stopper.join(0.1)
        next unless reader.wait_readable(0)

        signal = reader.gets&.chomp
        @err.puts("tasker-worker: second SIG#{signal} received, exiting immediately")
        @err.flush
        exit!(EXIT_FAILURE)
      end
      stopper.value
    end

    def abandoned_note(report)
      abandoned = report.is_a?(Hash) ? Array(report[:abandoned]) : []
      return "" if abandoned.empty?

      steps = abandoned.map { |step| step[:step_name] }.join(", ")
      "; #{abandoned.size} unfinished step(s) reported as worker_shutdown: #{steps}"
    end
  end
end
