# frozen_string_literal: true

require "fileutils"
require "socket"
require "tmpdir"

module Bench
  # A private redis-server for the Sidekiq comparison: loopback only, a free port
  # picked at random, no persistence (--save '' --appendonly no), its files in a
  # temporary directory. Always stopped (and its directory removed) by {.run}.
  class RedisServer
    STARTUP_TIMEOUT = 10

    # @return [Integer]
    attr_reader :port

    # Starts a server, yields it, stops it.
    # @yieldparam server [RedisServer]
    # @return [Object] the block's value
    def self.run
      server = new
      server.start
      yield server
    ensure
      server&.stop
    end

    # @param executable [String]
    def initialize(executable: "redis-server")
      @executable = executable
      @pid = nil
      @dir = nil
      @port = nil
    end

    # @return [String]
    def url
      "redis://127.0.0.1:#{@port}/0"
    end

    # @return [String] e.g. "7.0.15"
    def self.version(executable: "redis-server")
      `#{executable} --version 2>/dev/null`[/v=(\S+)/, 1] || "unknown"
    rescue SystemCallError
      "not installed"
    end

    # @return [self]
    # @raise [MeasureError] when it does not accept connections in time
    def start
      @dir = Dir.mktmpdir("tasker-bench-redis-")
      @port = free_port
      log = File.join(@dir, "redis.log")
      @pid = Process.spawn(@executable, "--port", @port.to_s, "--bind", "127.0.0.1", "--save", "",
                           "--appendonly", "no", "--dir", @dir, "--daemonize", "no", "--logfile", log,
                           in: File::NULL, out: File::NULL, err: File::NULL)
      wait_until_ready(log)
      self
    rescue SystemCallError => e
      raise MeasureError, "could not start #{@executable} (#{e.message}); run bin/setup --bench"
    end

    # Kills the server and removes its directory.
    # @return [void]
    def stop
      if @pid
        begin
          Process.kill("KILL", @pid)
          Process.wait(@pid)
        rescue Errno::ESRCH, Errno::ECHILD
          nil
        end
        @pid = nil
      end
      FileUtils.rm_rf(@dir) if @dir
      @dir = nil
    end

    private

    def free_port
      server = TCPServer.new("127.0.0.1", 0)
      server.addr[1]
    ensure
      server&.close
    end

    def wait_until_ready(log)
      deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + STARTUP_TIMEOUT
      loop do
        return if ping

        if Process.waitpid(@pid, Process::WNOHANG)
          @pid = nil
          raise MeasureError, "redis-server exited at startup: #{log_tail(log)}"
        end
        raise MeasureError, "redis-server did not answer PING within #{STARTUP_TIMEOUT}s" if
          Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline

        sleep 0.02
      end
    end

    def log_tail(log)
      return "no log" unless File.exist?(log)

      text = File.read(log)
      text.size > 2000 ? text[-2000..] : text
    end

    def ping
      socket = TCPSocket.new("127.0.0.1", @port)
      socket.write("PING\r\n")
      socket.gets&.start_with?("+PONG")
    rescue SystemCallError
      false
    ensure
      socket&.close
    end
  end
end
