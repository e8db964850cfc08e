# frozen_string_literal: true

require "fileutils"
require "open3"

# A private PostgreSQL server for specs, the demo and the benchmarks: a Ruby face on
# bin/private-postgres (initdb into a temporary directory, unix socket only, fsync on,
# never the system service). {.shared} is one server for the whole process, started on
# first use and stopped at exit; the script's watchdog stops it even when this process
# is killed with SIGKILL, and every start sweeps servers whose owner is gone.
#
#   server = PrivatePostgres.shared
#   url = server.fresh_database            # => "postgresql://postgres@/spec_1_...?host=/tmp/tasker-pg-..."
#   server.restart                         # every connection breaks, data stays
#
# Loading this file starts nothing and does not load the pg gem.
class PrivatePostgres
  SCRIPT = File.expand_path("../../bin/private-postgres", __dir__)

  # Raised when the server cannot be started or controlled; the message has the script's.
  class Error < StandardError; end

  @shared = nil
  @shared_lock = Mutex.new

  class << self
    # The process's server, started on first call, stopped at exit.
    # @return [PrivatePostgres]
    def shared
      @shared_lock.synchronize do
        @shared ||= start.tap do |server|
          owner = Process.pid
          at_exit { server.stop if Process.pid == owner }
        end
      end
    end

    # Starts a new server owned by `owner` (the watchdog removes it when that process ends).
    # @param owner [Integer] pid
    # @return [PrivatePostgres]
    def start(owner: Process.pid)
      output = run_script("start", "--owner", owner.to_s)
      values = output.lines.to_h { |line| line.chomp.split("=", 2) }
      new(root: values.fetch("TASKER_PG_ROOT") { raise Error, "bin/private-postgres printed no root: #{output}" })
    end

    # @api private
    def run_script(*args)
      out, err, status = Open3.capture3(SCRIPT, *args)
      raise Error, "bin/private-postgres #{args.join(' ')} failed: #{err.strip}" unless status.success?

      out
    end
  end

  # @return [String] the server's directory: data, log and the unix socket
  attr_reader :root

  # @param root [String]
  def initialize(root:)
    @root = root
    @next_database = 0
    @lock = Mutex.new
  end

  # @param database [String]
  # @param password [String, nil] written into the URL (the server ignores it: local
  #   connections are trusted), for checking that errors never show it
  # @return [String]
  def url(database = "postgres", password: nil)
    user = password ? "postgres:#{password}" : "postgres"
    "postgresql://#{user}@/#{database}?host=#{@root}"
  end

  # Creates an empty database and returns its URL.
  # @param prefix [String] letters, digits and underscores
  # @return [String]
  def fresh_database(prefix: "spec")
    raise ArgumentError, "prefix #{prefix.inspect}: letters, digits and _ only" unless prefix.match?(/\A[a-z0-9_]+\z/)

    name = @lock.synchronize { "#{prefix}_#{Process.pid}_#{@next_database += 1}" }
    with_connection { |conn| conn.exec("CREATE DATABASE #{conn.quote_ident(name)}") }
    url(name)
  end

  # Yields a PG::Connection to `database`, closed afterwards.
  # @param database [String]
  # @yieldparam conn [PG::Connection]
  # @return [Object] the block's value
  def with_connection(database = "postgres")
    require "pg"
    conn = PG.connect(url(database))
    yield conn
  ensure
    conn&.close
  end

  # Stops the server but keeps its data: an outage until {#resume}.
  # @return [void]
  def pause
    self.class.run_script("pause", @root)
  end

  # @return [void]
  def resume
    self.class.run_script("resume", @root)
  end

  # A fast restart: every connection breaks, the data stays.
  # @return [void]
  def restart
    self.class.run_script("restart", @root)
  end

  # Stops the server and removes its directory (again: nothing happens).
  # @return [void]
  def stop
    return unless File.directory?(@root)

    self.class.run_script("stop", @root)
  end

  # @return [Boolean] whether its directory still exists
  def running?
    File.exist?(File.join(@root, "data", "postmaster.pid"))
  end
end
