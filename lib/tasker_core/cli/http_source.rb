# frozen_string_literal: true

require "json"
require "net/http"
require "uri"
require "cgi"
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

      # @return [Array<Hash>] as TaskerCore.tasks, from /api/tasks
      def tasks(limit:, status: nil, namespace: nil, name: nil, before: nil)
        query = URI.encode_www_form({ limit: limit, status: status, namespace: namespace, name: name,
                                      before: before }.compact)
        body = get("/api/tasks?#{query}")
        body.is_a?(Hash) ? Array(body["tasks"]) : Array(body)
      end

      # Cancels through the dashboard's form, as a browser would: the task page hands out
      # the CSRF token, the POST carries it back.
      # @return [Hash] "outcome"
      def cancel_task(task_uuid, reason: nil)
        post_control(task_uuid, "cancel", reason ? { "reason" => reason } : {})
      end

      # @return [Hash] "outcome"
      def retry_task(task_uuid)
        post_control(task_uuid, "retry", {})
      end

      private

      def post_control(task_uuid, action, fields)
        path = "/tasks/#{URI.encode_www_form_component(task_uuid)}"
        page = request(Net::HTTP::Get.new(uri_for(path)))
        unless page.code.to_i == 200
          task(task_uuid) # raises TaskNotFoundError with the dashboard's message when unknown
          raise Error, "#{display(uri_for(path))} answered HTTP #{page.code}"
        end
        cookie = Array(page.get_fields("set-cookie")).map { |c| c.split(";", 2).first }
                                                     .find { |c| c.start_with?("tasker_csrf=") }
        token = page.body.to_s[/name="_csrf" value="([^"]+)"/, 1]
        unless token
          raise Error, "task #{task_uuid} is #{task(task_uuid)['status']}: the dashboard offers no #{action} for it"
        end

        post = Net::HTTP::Post.new(uri_for("#{path}/#{action}"))
        post["cookie"] = cookie || "tasker_csrf=#{token}"
        post["x-csrf-token"] = CGI.unescapeHTML(token)
        post.set_form_data(fields)
        answer = request(post)
        case answer.code.to_i
        when 302, 303 then { "outcome" => URI.decode_www_form(URI(answer["location"].to_s).query.to_s).to_h["outcome"] }
        else raise Error, "#{display(post.uri)} refused the #{action}: HTTP #{answer.code} #{answer.body.to_s[/<p[^>]*>(.*?)<\/p>/m, 1]}"
        end
      end

      def uri_for(path)
        uri = @base.dup
        path, query = path.split("?", 2)
        uri.path = "#{@base.path}#{path}"
        uri.query = query
        uri
      end

      def request(req)
        uri = req.uri
        req.basic_auth(URI.decode_www_form_component(@base.user), URI.decode_www_form_component(@base.password.to_s)) if @base.user
        Net::HTTP.start(uri.host, uri.port, use_ssl: uri.scheme == "https",
                                            open_timeout: TIMEOUT, read_timeout: TIMEOUT) { |http| http.request(req) }
      rescue SystemCallError, IOError, SocketError, Timeout::Error, OpenSSL::SSL::SSLError => e
        raise Error, "cannot reach the dashboard at #{display(uri)}: #{e.message}"
      end

      def get(path)
        uri = uri_for(path)
        request = Net::HTTP::Get.new(uri)
        request["accept"] = "application/json"
        decode(uri, request(request))
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
