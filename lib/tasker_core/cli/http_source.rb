# frozen_string_literal: true

require "json"
require "net/http"
require "uri"
require "tasker_core/errors"

module TaskerCore
  class CLI
    # Reads stats, workers and tasks from a running dashboard's JSON API (`/api/...`), for
    # `tasker-worker status --url` and `task --url`: the way to inspect an embedded-backend
    # worker from another terminal. Answers the same calls as TaskerCore::Web::Source.
    # Credentials in the URL (http://user:password@host/tasker) are sent as basic auth.
    class HttpSource
      # The dashboard could not be reached or answered something unexpected.
      class Error < StandardError; end

      # Seconds to wait for the dashboard.
      TIMEOUT = 10

      # @param url [String] the dashboard's address, with its mount point
      # @raise [ArgumentError] for a URL that is not http(s)
      def initialize(url)
        @base = URI.parse(url.to_s)
        unless @base.is_a?(URI::HTTP) && @base.host && !@base.host.empty?
          raise ArgumentError, "--url must be an http:// or https:// address, got #{url.inspect}"
        end

        @base.path = @base.path.to_s.chomp("/")
      rescue URI::InvalidURIError => e
        raise ArgumentError, "--url #{url}: #{e.message}"
      end

      # @return [Hash] TaskerCore.stats as the dashboard serves it
      def stats
        get("/api/stats")
      end

      # @return [Array<Hash>]
      def workers
        get("/api/workers")
      end

      # @param task_uuid [String]
      # @return [Hash]
      # @raise [TaskerCore::Errors::TaskNotFoundError]
      def task(task_uuid)
        get("/api/tasks/#{URI.encode_www_form_component(task_uuid)}")
      end

      private

      def get(path)
        uri = @base.dup
        uri.path = "#{@base.path}#{path}"
        request = Net::HTTP::Get.new(uri)
        request["accept"] = "application/json"
        request.basic_auth(URI.decode_www_form_component(@base.user), URI.decode_www_form_component(@base.password.to_s)) if @base.user
        response = Net::HTTP.start(uri.host, uri.port, use_ssl: uri.scheme == "https",
                                                       open_timeout: TIMEOUT, read_timeout: TIMEOUT) do |http|
          http.request(request)
        end
        decode(uri, response)
      rescue SystemCallError, IOError, SocketError, Timeout::Error, OpenSSL::SSL::SSLError => e
        raise Error, "cannot reach the dashboard at #{display(uri)}: #{e.message}"
      end

      def decode(uri, response)
        body = begin
          JSON.parse(response.body.to_s)
        rescue JSON::ParserError
          nil
        end
        message = body.is_a?(Hash) ? body["error"] : nil
        case response.code.to_i
        when 200 then return body unless body.nil?
        when 404 then raise TaskerCore::Errors::TaskNotFoundError, message || "not found: #{display(uri)}" if message
        end
        raise Error, "#{display(uri)} answered HTTP #{response.code}#{message ? ": #{message}" : ''}"
      end

      # The URL without its credentials.
      def display(uri)
        shown = uri.dup
        shown.user = nil
        shown.password = nil
        shown.to_s
      end
    end
  end
end
