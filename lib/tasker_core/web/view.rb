# frozen_string_literal: true

require "json"
require "rack/utils"
require "time"
require "tasker_core/web/html"
require "tasker_core/web/assets"
require "tasker_core/web/format"

module TaskerCore
  class Web
    # The rendering context of one request: the page templates (compiled from views/*.erb
    # into `render_<name>` methods) and the helpers they use. Every link, form and asset URL
    # is built by #url, which starts with the mount point (SCRIPT_NAME).
    class View
      VIEWS = File.expand_path("views", __dir__)
      # Largest JSON value shown in full on a page; the JSON API always has all of it.
      JSON_PREVIEW_BYTES = 16 * 1024
      # Task statuses, in the order the dashboard lists them.
      TASK_STATUSES = %w[pending in_progress complete error cancelled].freeze
      # Step statuses, in the order the dashboard lists them.
      STEP_STATUSES = %w[pending enqueued in_progress waiting_for_retry complete error skipped].freeze

      # Compiled page templates.
      module Templates; end
      Dir[File.join(VIEWS, "*.erb")].sort.each do |path|
        Html::Template.define(Templates, File.basename(path, ".erb"), path)
      end
      include Templates

      attr_reader :csrf_token

      # @param script_name [String] the mount point ("" at the root)
      # @param path [String] the request's path below it (for the navigation)
      # @param csrf_token [String]
      # @param refresh_seconds [Numeric] interval of the overview's live refresh
      def initialize(script_name:, path:, csrf_token:, refresh_seconds:)
        @script_name = script_name.to_s.chomp("/")
        @path = path
        @csrf_token = csrf_token
        @refresh_seconds = refresh_seconds
      end

      # Renders a page inside the layout.
      # @param name [Symbol] the template (views/<name>.erb)
      # @param title [String]
      # @param locals [Hash]
      # @return [SafeHtml]
      def page(name, title:, **locals)
        content = public_send("render_#{name}", locals)
        render_layout(title: title, content: content, page: name)
      end

      # @param path [String] a path of the dashboard ("/tasks")
      # @param params [Hash] query parameters (nil values left out)
      # @return [String]
      def url(path, params = {})
        query = params.compact.reject { |_, value| value.to_s.empty? }
        base = "#{@script_name}#{path}"
        query.empty? ? base : "#{base}?#{Rack::Utils.build_query(query)}"
      end

      # @param name [String] a file of web/assets
      # @return [String] its URL, with a digest of its content so caches refresh on change
      def asset_url(name)
        url("/assets/#{name}", "v" => Assets.digest(name))
      end

      # @return [Numeric]
      attr_reader :refresh_seconds

      # @param target [String] a navigation path
      # @return [Boolean] whether the current page is under it
      def current?(target)
        target == "/" ? @path == "/" : @path.start_with?(target)
      end

      # @return [Array<String>] task statuses in display order
      def task_statuses = TASK_STATUSES

      # @return [Array<String>] step statuses in display order
      def step_statuses = STEP_STATUSES

      # @param status [Integer] an HTTP status
      # @return [String] its title ("Not found")
      def status_title(status)
        Responses::TITLES.fetch(status, "Error")
      end

      # @param markup [String] trusted markup (never data)
      # @return [SafeHtml]
      def raw(markup)
        Html.raw(markup)
      end

      # @return [SafeHtml] the hidden field carrying the CSRF token
      def csrf_field
        Html.raw(%(<input type="hidden" name="#{CsrfGuard::FIELD}" value="#{Html.escape(csrf_token)}">))
      end

      # @param status [String, nil]
      # @return [SafeHtml] a coloured status label
      def badge(status)
        text = status.to_s.empty? ? "unknown" : status.to_s
        Html.raw(%(<span class="badge status-#{css_token(text)}">#{Html.escape(text.tr('_', ' '))}</span>))
      end

      # @param text [String]
      # @return [String] letters, digits, - and _ only (for class names built from data)
      def css_token(text)
        text.to_s.gsub(/[^A-Za-z0-9_-]/, "")
      end

      # @param iso [String, nil] an ISO 8601 time
      # @return [SafeHtml] a <time> element, or a dash
      def time_tag(iso)
        return Html.raw('<span class="muted">—</span>') if iso.nil? || iso.to_s.empty?

        Html.raw(%(<time datetime="#{Html.escape(iso)}">#{Html.escape(Format.time(iso))}</time>))
      end

      # @see Format.duration
      def duration(milliseconds) = Format.duration(milliseconds)

      # @see Format.span
      def span(from, to) = Format.span(from, to)

      # @see Format.number
      def number(value) = Format.number(value)

      # @see Format.percent
      def percent(value) = Format.percent(value)

      # @param uuid [String]
      # @return [String] the first 8 characters
      def short_uuid(uuid)
        uuid.to_s[0, 8]
      end

      # @param value [Object] a JSON-like value
      # @return [Array(String, Integer)] pretty JSON (at most JSON_PREVIEW_BYTES) and how many
      #   bytes were left out
      def json_preview(value)
        text = JSON.pretty_generate(value)
        return [text, 0] if text.bytesize <= JSON_PREVIEW_BYTES

        shown = text.byteslice(0, JSON_PREVIEW_BYTES).scrub("")
        [shown, text.bytesize - shown.bytesize]
      rescue JSON::GeneratorError, TypeError
        [value.inspect, 0]
      end

      # @param step [Hash]
      # @param index [Integer]
      # @return [String] the id of a step's section on the task page
      def step_anchor(index)
        "step-#{index + 1}"
      end

      # @param task [Hash]
      # @return [Boolean] whether cancel applies to the task's status
      def cancellable?(task)
        %w[pending in_progress].include?(task["status"])
      end

      # @param task [Hash]
      # @return [Boolean] whether retry applies to the task's status
      def retryable?(task)
        task["status"] == "error"
      end

      # @param step [Hash]
      # @return [Numeric, nil] total time of the step's attempts
      def step_duration(step)
        times = Array(step["history"]).filter_map { |attempt| attempt["duration_ms"] if attempt["duration_ms"].is_a?(Numeric) }
        times.empty? ? nil : times.sum
      end
    end
  end
end
