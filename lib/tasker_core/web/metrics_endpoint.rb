# frozen_string_literal: true

require "rack/response"

module TaskerCore
  class Web
    # GET /metrics: this process's counters, histograms and gauges as Prometheus text
    # exposition (format 0.0.4), for a Prometheus scrape job. A plain GET: no cookie, no
    # CSRF token, nothing to post. Each worker process serves its own figures
    # (`tasker-worker --web-port`); Prometheus adds them up across processes.
    class MetricsEndpoint
      # The Content-Type Prometheus' own clients send with format 0.0.4 (the core exports
      # the same string as TaskerCore::FFI::METRICS_CONTENT_TYPE).
      CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

      # @param source [Source]
      def initialize(source:)
        @source = source
      end

      # GET /metrics
      def metrics(_call)
        Rack::Response.new([@source.metrics_text.to_s], 200, "content-type" => CONTENT_TYPE)
      end
    end
  end
end
