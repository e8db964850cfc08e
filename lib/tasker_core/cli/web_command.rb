# frozen_string_literal: true

require "optparse"
require "tasker_core/errors"
require "tasker_core/cli/client_connection"

module TaskerCore
  class CLI
    # `tasker-worker web`: serves the dashboard in its own process, reading the PostgreSQL
    # store (an embedded-backend worker serves it itself: `tasker-worker --web-port`). Runs
    # until TERM or INT.
    class WebCommand
      SIGNALS = %w[TERM INT].freeze

      # @param argv [Array<String>] the arguments after "web"
      # @param out [IO]
      # @param err [IO]
      # @param env [Hash] the environment (TASKER_DATABASE_URL)
      # @param connect [#call, nil] sets up a client-only core (TaskerCore.connect when nil)
      def initialize(argv, out: $stdout, err: $stderr, env: ENV, connect: nil)
        @argv = argv.dup
        @out = out
        @err = err
        @env = env
        @connect = connect || ClientConnection.method(:connect)
      end

      # @return [Integer] the exit status
      def run
        options = parse(@argv)
        if options[:help]
          @out.puts(parser({}).help)
          return CLI::EXIT_OK
        end

        @connect.call(**{ database_url: options[:database_url], template_path: options[:templates] }.compact)
        serve(options)
      rescue CLI::UsageError => e
        @err.puts("tasker-worker web: #{e.message}")
        @err.puts(parser({}).help)
        CLI::EXIT_USAGE
      rescue StandardError, ScriptError => e
        @err.puts("tasker-worker web: #{e.class}: #{e.message}")
        CLI::EXIT_FAILURE
      end

      # @param argv [Array<String>]
      # @return [Hash] :port, :host, :database_url, :templates, :help
      # @raise [CLI::UsageError]
      def parse(argv)
        options = { port: 9292, host: "127.0.0.1" }
        rest = parser(options).parse(argv.dup)
        raise CLI::UsageError, "unexpected argument(s): #{rest.join(' ')}" unless rest.empty?
        return options if options[:help]

        options[:database_url] ||= @env["TASKER_DATABASE_URL"]
        if options[:database_url].nil? || options[:database_url].empty?
          raise CLI::UsageError, "needs --database-url (or TASKER_DATABASE_URL): the embedded backend keeps its " \
                                 "state inside the worker process, so serve it from there with " \
                                 "`tasker-worker --web-port #{options[:port]}`"
        end
        options
      rescue OptionParser::ParseError => e
        raise CLI::UsageError, e.message
      end

      private

      def parser(options)
        OptionParser.new do |opts|
          opts.banner = "Usage: tasker-worker web --database-url URL [--port 9292] [--host 127.0.0.1]"
          opts.separator ""
          opts.separator "Serves the dashboard of a PostgreSQL store until TERM or INT."
          opts.separator ""
          opts.on("-p", "--port PORT", Integer, "Port to listen on (default 9292; 0 picks a free one)") do |port|
            raise CLI::UsageError, "--port must be from 0 to 65535, got #{port}" unless port.between?(0, 65_535)

            options[:port] = port
          end
          opts.on("--host HOST", "Address to bind (default 127.0.0.1; put authentication in front before widening)") do |host|
            raise CLI::UsageError, "--host must not be empty" if host.strip.empty?

            options[:host] = host
          end
          opts.on("--database-url URL", "The PostgreSQL store (default: TASKER_DATABASE_URL)") do |url|
            options[:database_url] = url
          end
          opts.on("-t", "--templates DIR", "Task template directory") do |dir|
            path = File.expand_path(dir)
            raise CLI::UsageError, "--templates #{dir}: no such directory" unless File.directory?(path)

            options[:templates] = path
          end
          opts.on("-h", "--help", "Show this help") { options[:help] = true }
        end
      end

      def serve(options)
        require "tasker_core/web"
        require "tasker_core/web/server"
        server = TaskerCore::Web::Server.new(app: TaskerCore::Web.new, host: options[:host], port: options[:port],
                                             log: @err)
        previous = SIGNALS.to_h { |signal| [signal, Signal.trap(signal) { server.stop(timeout: 0) }] }
        @out.puts("tasker-worker web: dashboard at #{server.url} (pid #{Process.pid}; TERM or INT to stop)")
        server.run
        @out.puts("tasker-worker web: stopped")
        CLI::EXIT_OK
      ensure
        previous&.each { |signal, handler| Signal.trap(signal, handler || "DEFAULT") }
      end
    end
  end
end
