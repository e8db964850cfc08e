# frozen_string_literal: true

require "optparse"
require "tasker_core/errors"

module TaskerCore
  class CLI
    # `tasker-worker migrate --database-url URL`: brings a PostgreSQL database to this
    # version's `tasker` schema (the migrations compiled into the extension, applied under
    # an advisory lock, so several processes may run it at once) and prints the schema
    # version. Workers and clients also migrate on their first connect; this runs it ahead
    # of a deploy. A database whose schema is newer than this code is an error.
    class MigrateCommand
      # @param argv [Array<String>] the arguments after "migrate"
      # @param out [IO]
      # @param err [IO]
      # @param env [Hash] the environment (TASKER_DATABASE_URL)
      # @param migrate [#call, nil] migrates the database at a URL and answers
      #   {"version", "applied"} (TaskerCore::FFI.migrate_database when nil)
      def initialize(argv, out: $stdout, err: $stderr, env: ENV, migrate: nil)
        @argv = argv.dup
        @out = out
        @err = err
        @env = env
        @migrate = migrate || ->(url) { TaskerCore::FFI.migrate_database(url) }
      end

      # @return [Integer] the exit status
      def run
        options = parse(@argv)
        if options[:help]
          @out.puts(parser({}).help)
          return CLI::EXIT_OK
        end

        url = options[:database_url] || @env["TASKER_DATABASE_URL"].to_s.strip
        raise CLI::UsageError, "--database-url is required (or set TASKER_DATABASE_URL)" if url.empty?

        @out.puts(describe(@migrate.call(url)))
        CLI::EXIT_OK
      rescue CLI::UsageError => e
        @err.puts("tasker-worker migrate: #{e.message}")
        @err.puts(parser({}).help)
        CLI::EXIT_USAGE
      rescue StandardError, ScriptError => e
        @err.puts("tasker-worker migrate: #{e.class}: #{e.message}")
        CLI::EXIT_FAILURE
      end

      # @param argv [Array<String>]
      # @return [Hash] :database_url, :help
      # @raise [CLI::UsageError]
      def parse(argv)
        options = {}
        rest = parser(options).parse(argv.dup)
        raise CLI::UsageError, "unexpected argument(s): #{rest.join(' ')}" unless rest.empty?

        options
      rescue OptionParser::ParseError => e
        raise CLI::UsageError, e.message
      end

      private

      def parser(options)
        OptionParser.new do |opts|
          opts.banner = "Usage: tasker-worker migrate --database-url URL"
          opts.separator ""
          opts.separator "Applies the tasker schema's migrations to a PostgreSQL database and prints its version."
          opts.separator ""
          opts.on("--database-url URL", "PostgreSQL database (default: TASKER_DATABASE_URL)") do |url|
            raise CLI::UsageError, "--database-url must not be empty" if url.strip.empty?

            options[:database_url] = url
          end
          opts.on("-h", "--help", "Show this help") { options[:help] = true }
        end
      end

      def describe(report)
        applied = Array(report["applied"])
        version = report["version"]
        return "tasker-worker migrate: schema version #{version} (already up to date)" if applied.empty?

        names = applied.map { |m| "#{m['version']} #{m['name']}" }.join(", ")
        "tasker-worker migrate: schema version #{version} (applied: #{names})"
      end
    end
  end
end
