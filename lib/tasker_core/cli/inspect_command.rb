# frozen_string_literal: true

require "json"
require "optparse"
require "tasker_core/errors"
require "tasker_core/cli/client_connection"

module TaskerCore
  class CLI
    # What `tasker-worker status` and `tasker-worker task` share: where the figures come
    # from, and the options that say so.
    #
    # - `--url URL`: a running dashboard's JSON API (an embedded-backend worker started with
    #   `--web-port`, or any dashboard);
    # - `--database-url URL` (or TASKER_DATABASE_URL): the PostgreSQL store, read through
    #   TaskerCore.connect.
    class InspectCommand
      # @param argv [Array<String>] the arguments after the command's name
      # @param out [IO]
      # @param err [IO]
      # @param env [Hash] the environment (TASKER_DATABASE_URL)
      # @param connect [#call, nil] sets up a client-only core from keyword options
      #   (TaskerCore.connect when nil)
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

        @out.print(report(source(options), options))
        CLI::EXIT_OK
      rescue CLI::UsageError => e
        @err.puts("tasker-worker #{command_name}: #{e.message}")
        @err.puts(parser({}).help)
        CLI::EXIT_USAGE
      rescue StandardError, ScriptError => e
        @err.puts("tasker-worker #{command_name}: #{e.class}: #{e.message}")
        CLI::EXIT_FAILURE
      end

      # @param argv [Array<String>]
      # @return [Hash] :url, :database_url, :templates, :json, :help, :arguments
      # @raise [CLI::UsageError]
      def parse(argv)
        options = {}
        options[:arguments] = parser(options).parse(argv.dup)
        check_arguments(options) unless options[:help]
        options
      rescue OptionParser::ParseError => e
        raise CLI::UsageError, e.message
      end

      private

      # @return [String] the command's name in messages
      def command_name
        raise NotImplementedError
      end

      # @return [String] what the command prints
      def report(_source, _options)
        raise NotImplementedError
      end

      UUID = /\A\h{8}-\h{4}-\h{4}-\h{4}-\h{12}\z/.freeze

      # Checks that the positional arguments are exactly one task UUID.
      def check_one_task_uuid(options)
        arguments = options[:arguments]
        raise CLI::UsageError, "needs the task's UUID" if arguments.empty?
        raise CLI::UsageError, "takes one task UUID, got #{arguments.size} arguments" if arguments.size > 1
        raise CLI::UsageError, "not a task UUID: #{arguments.first}" unless UUID.match?(arguments.first)
      end

      # Checks the positional arguments (none by default).
      def check_arguments(options)
        return if options[:arguments].empty?

        raise CLI::UsageError, "unexpected argument(s): #{options[:arguments].join(' ')}"
      end

      # @return [String] the usage line after "tasker-worker "
      def usage
        command_name
      end

      # @return [String] one sentence on what the command prints
      def summary
        ""
      end

      def parser(options)
        OptionParser.new do |opts|
          opts.banner = "Usage: tasker-worker #{usage} (--url URL | --database-url URL) [options]"
          opts.separator ""
          opts.separator summary
          opts.separator ""
          opts.on("--url URL", "A running dashboard (e.g. a worker started with --web-port): http://127.0.0.1:9292") do |url|
            options[:url] = url
          end
          opts.on("--database-url URL", "The PostgreSQL store (default: TASKER_DATABASE_URL)") do |url|
            options[:database_url] = url
          end
          opts.on("-t", "--templates DIR", "Task template directory, with --database-url") do |dir|
            path = File.expand_path(dir)
            raise CLI::UsageError, "--templates #{dir}: no such directory" unless File.directory?(path)

            options[:templates] = path
          end
          opts.on("--json", "Print the data as JSON instead of text") { options[:json] = true }
          opts.on("-h", "--help", "Show this help") { options[:help] = true }
        end
      end

      # Where the data comes from: the dashboard at --url, or the store at --database-url.
      def source(options)
        database_url = options[:database_url] || @env["TASKER_DATABASE_URL"]
        if options[:url] && options[:database_url]
          raise CLI::UsageError, "give --url or --database-url, not both"
        elsif options[:url]
          require "tasker_core/cli/http_source"
          HttpSource.new(options[:url])
        elsif database_url && !database_url.empty?
          require "tasker_core/web/source"
          @connect.call(**{ database_url: database_url, template_path: options[:templates] }.compact)
          TaskerCore::Web::Source.new
        else
          raise CLI::UsageError, "needs --url of a running dashboard (the embedded backend keeps its state inside " \
                                 "the worker: start it with --web-port) or --database-url (PostgreSQL)"
        end
      end

      def json(value)
        "#{JSON.pretty_generate(value)}\n"
      end
    end
  end
end
