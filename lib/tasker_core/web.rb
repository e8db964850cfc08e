# frozen_string_literal: true

begin
  require "rack"
rescue LoadError => e
  raise LoadError, "TaskerCore::Web needs the rack gem (Debian: apt-get install ruby-rack): #{e.message}"
end
require "securerandom"
require "tasker_core/version"
require "tasker_core/errors"
require "tasker_core/web/source"
require "tasker_core/web/task_query"
require "tasker_core/web/html"
require "tasker_core/web/assets"
require "tasker_core/web/csrf_guard"
require "tasker_core/web/router"
require "tasker_core/web/view"
require "tasker_core/web/dag_diagram"
require "tasker_core/web/throughput_chart"
require "tasker_core/web/responses"
require "tasker_core/web/pages"
require "tasker_core/web/api"
require "tasker_core/web/controls"
require "tasker_core/web/metrics_endpoint"

module TaskerCore
  # The dashboard: a Rack app showing tasks, steps, workers and throughput, with retry and
  # cancel controls and a JSON API.
  #
  # Mount it in a Rails or Sinatra app (behind your authentication; see the README):
  #
  #   mount TaskerCore::Web.new => "/tasker"
  #
  # or run it standalone (`tasker-worker web`, `tasker-worker --web-port 9292`). GET /metrics
  # answers Prometheus text exposition of the serving process's counters. Every URL
  # it writes starts with the mount point (SCRIPT_NAME). Pages are server-rendered HTML that
  # work without JavaScript; the overview refreshes itself from /api/stats when script runs.
  # All data comes from a Web::Source (the public TaskerCore API by default).
  class Web
    # Content-Security-Policy of every response: scripts and styles from the dashboard
    # only, no inline script, no framing, forms only to the dashboard.
    CONTENT_SECURITY_POLICY = [
      "default-src 'none'", "script-src 'self'", "style-src 'self'", "img-src 'self'", "connect-src 'self'",
      "form-action 'self'", "frame-ancestors 'none'", "base-uri 'none'"
    ].join("; ").freeze
    SECURITY_HEADERS = {
      "content-security-policy" => CONTENT_SECURITY_POLICY,
      "x-content-type-options" => "nosniff",
      "x-frame-options" => "DENY",
      "referrer-policy" => "same-origin"
    }.freeze

    # @param source [Web::Source, nil] where the data comes from (Web::Source.new when nil)
    # @param secret [String, nil] key of the CSRF tokens; give every process serving the same
    #   dashboard the same one (default: TASKER_WEB_SECRET, else a random key per app)
    # @param refresh_seconds [Numeric] how often the overview refreshes itself
    # @param page_size [Integer] tasks per page of the task list
    def initialize(source: nil, secret: nil, refresh_seconds: 2, page_size: 25)
      unless refresh_seconds.is_a?(Numeric) && refresh_seconds.positive?
        raise ArgumentError, "refresh_seconds must be a positive number, got #{refresh_seconds.inspect}"
      end
      unless page_size.is_a?(Integer) && page_size.between?(1, TaskQuery::MAX_LIMIT)
        raise ArgumentError, "page_size must be an Integer from 1 to #{TaskQuery::MAX_LIMIT}, got #{page_size.inspect}"
      end

      source ||= Source.new
      @refresh_seconds = refresh_seconds
      @guard = CsrfGuard.new(secret: secret || ENV["TASKER_WEB_SECRET"] || SecureRandom.hex(32))
      @router = Router.new
      @pages = Pages.new(source: source, page_size: page_size)
      @api = Api.new(source: source, page_size: page_size)
      @controls = Controls.new(source: source, guard: @guard)
      @metrics = MetricsEndpoint.new(source: source)
    end

    # @param env [Hash] the Rack environment
    # @return [Array(Integer, Hash, #each)]
    def call(env)
      request = Rack::Request.new(env)
      response = respond(request)
      SECURITY_HEADERS.each { |name, value| response.set_header(name, value) }
      response.set_header("cache-control", "no-store") unless response.get_header("cache-control")
      status, headers, body = response.finish
      return [status, headers, body] unless request.head?

      body.close if body.respond_to?(:close)
      [status, headers, []]
    end

    private

    # What one request gets: the action's response, or an error page/document.
    def respond(request)
      path = request.path_info.to_s
      api = path.start_with?("/api/") || path == "/metrics" # machine readers get JSON errors
      view = nil
      token = @guard.token_for(request)
      view = View.new(script_name: request.script_name, path: path.empty? ? "/" : path, csrf_token: token,
                      refresh_seconds: @refresh_seconds)
      response = dispatch(request, view)
      @guard.issue(request, response, token) if html?(response)
      response
    rescue StandardError => e
      error_response(e, api: api, view: view, request: request)
    end

    def dispatch(request, view)
      match = @router.match(request.request_method, request.path_info)
      return Responses.not_found(view, "No page at #{request.path_info}") if match.nil?
      return Responses.method_not_allowed(view, match) if match.is_a?(Array)

      call = Call.new(request: request, params: match.params, view: view)
      handler_for(match.action).public_send(match.action, call)
    end

    def handler_for(action)
      if action == :asset
        Assets
      elsif action == :metrics
        @metrics
      elsif action.to_s.start_with?("api_")
        @api
      elsif Controls::ACTIONS.include?(action)
        @controls
      else
        @pages
      end
    end

    def html?(response)
      response.get_header("content-type").to_s.start_with?("text/html")
    end

    def error_response(error, api:, view:, request:)
      status, message = Responses.classify(error)
      log_error(request, error) if status == 500
      if api || view.nil?
        Responses.json({ "error" => message, "status" => status }, status: status)
      else
        Responses.error_page(view, status, message)
      end
    end

    def log_error(request, error)
      stream = request.get_header("rack.errors")
      return unless stream

      stream.puts("TaskerCore::Web: #{error.class}: #{error.message}")
      Array(error.backtrace).first(10).each { |line| stream.puts("  #{line}") }
    end
  end
end
