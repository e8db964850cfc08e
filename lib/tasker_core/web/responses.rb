# frozen_string_literal: true

require "json"
require "rack/response"

module TaskerCore
  class Web
    # One routed request as the actions see it: the Rack request, the route's parameters
    # (e.g. "uuid") and the view that renders the reply.
    Call = Struct.new(:request, :params, :view, keyword_init: true)

    # Builders of the responses the dashboard sends, and the mapping of errors to statuses.
    module Responses
      HTML = "text/html; charset=utf-8"
      JSON_TYPE = "application/json; charset=utf-8"
      TITLES = {
        400 => "Bad request", 403 => "Forbidden", 404 => "Not found", 405 => "Method not allowed",
        409 => "Conflict", 500 => "Internal error", 503 => "Unavailable"
      }.freeze

      module_function

      # @param body [String]
      # @param status [Integer]
      # @return [Rack::Response]
      def html(body, status: 200)
        Rack::Response.new([body.to_s], status, "content-type" => HTML)
      end

      # @param value [Object] JSON-like
      # @param status [Integer]
      # @return [Rack::Response]
      def json(value, status: 200)
        Rack::Response.new([JSON.generate(value)], status, "content-type" => JSON_TYPE)
      end

      # A 303 See Other, so the browser follows with a GET.
      # @param location [String]
      # @return [Rack::Response]
      def redirect(location)
        Rack::Response.new([], 303, "location" => location)
      end

      # @param view [View]
      # @param status [Integer]
      # @param message [String]
      # @param back [Array(String, String), nil] a link [path, label] to offer
      # @return [Rack::Response]
      def error_page(view, status, message, back: nil)
        title = TITLES.fetch(status, "Error")
        html(view.page(:error, title: title, status: status, message: message, back: back), status: status)
      end

      # @return [Rack::Response]
      def not_found(view, message)
        error_page(view, 404, message)
      end

      # @param allowed [Array<String>]
      # @return [Rack::Response]
      def method_not_allowed(view, allowed)
        error_page(view, 405, "This address answers #{allowed.join(', ')} only").tap do |response|
          response.set_header("allow", (allowed + (allowed.include?("GET") ? ["HEAD"] : [])).join(", "))
        end
      end

      # @param error [Exception]
      # @return [Array(Integer, String)] the status and the message to show
      def classify(error)
        case error
        when BadRequest, ArgumentError, TypeError then [400, error.message]
        when TaskerCore::Errors::TaskNotFoundError then [404, error.message]
        when Unavailable, TaskerCore::Errors::NotRunningError then [503, error.message]
        else [500, "#{error.class}: #{error.message}"]
        end
      end
    end
  end
end
