# frozen_string_literal: true

begin
  require "webrick"
rescue LoadError => e
  raise LoadError, "the dashboard's server needs the webrick gem (Debian: apt-get install ruby-webrick): #{e.message}"
end
begin
  require "rack/handler/webrick" # rack 2
rescue LoadError
  require "rackup/handler/webrick" # rack 3 moved the handlers to the rackup gem
end
require "stringio"

module TaskerCore
  class Web
    # Serves a Rack app (the dashboard) with WEBrick, on 127.0.0.1 unless told otherwise:
    # in the foreground (`tasker-worker web`) or on a background thread inside a worker
    # (`tasker-worker --web-port`). Port 0 picks a free port (see #port).
    class Server
      HANDLER = defined?(Rack::Handler::WEBrick) ? Rack::Handler::WEBrick : Rackup::Handler::WEBrick
      DEFAULT_HOST = "127.0.0.1"

      # @param app [#call] the Rack app
      # @param host [String] the address to bind
      # @param port [Integer] 0 for any free port
      # @param log [IO, nil] where WEBrick's own warnings and errors go (discarded when nil)
      # @raise [Errno::EADDRINUSE, SocketError] when the address cannot be bound
      def initialize(app:, host: DEFAULT_HOST, port: 9292, log: nil)
        unless port.is_a?(Integer) && port.between?(0, 65_535)
          raise ArgumentError, "port must be an Integer from 0 to 65535, got #{port.inspect}"
        end

        @host = host
        @server = WEBrick::HTTPServer.new(
          BindAddress: host, Port: port, DoNotReverseLookup: true, AccessLog: [],
          Logger: WEBrick::Log.new(log || StringIO.new, WEBrick::BasicLog::WARN)
        )
        @server.mount("/", HANDLER, app)
        @thread = nil
      end

      # @return [Integer] the bound port
      def port
        @server.listeners.first.addr[1]
      end

      # @return [String] the dashboard's address
      def url
        host = @host.include?(":") ? "[#{@host}]" : @host
        "http://#{host}:#{port}/"
      end

      # Serves on a background thread.
      # @return [self]
      def start
        @thread = Thread.new { @server.start }
        @thread.name = "tasker-web"
        @thread.report_on_exception = false
        self
      end

      # Serves on this thread until #stop is called (e.g. from a signal's handler thread).
      # @return [void]
      def run
        @server.start
      end

      # Stops accepting requests, lets running ones finish and closes the socket.
      # @param timeout [Numeric] seconds to wait for the serving thread
      # @return [void]
      def stop(timeout: 5)
        @server.shutdown
        @thread&.join(timeout)
      end
    end
  end
end
