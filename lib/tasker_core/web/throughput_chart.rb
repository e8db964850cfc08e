# frozen_string_literal: true

require "time"
require "tasker_core/web/html"

module TaskerCore
  class Web
    # Draws the last hour's step attempts per minute as an SVG chart: stacked bars of
    # succeeded (bottom) and failed attempts, and a line of the failure rate on a 0-100 %
    # axis at the right (broken where a minute had no attempts). The geometry is written into data attributes so that the
    # dashboard's script can redraw the same elements when fresh figures arrive.
    class ThroughputChart
      WIDTH = 1080
      HEIGHT = 230
      PLOT_LEFT = 48
      PLOT_RIGHT = 48
      PLOT_TOP = 14
      PLOT_BOTTOM = 30
      # Share of a minute's slot its bar fills.
      BAR_FILL = 0.72

      # Totals of a throughput series.
      Summary = Struct.new(:succeeded, :failed, keyword_init: true) do
        # @return [Float, nil] failed / attempts in percent, nil without attempts
        def failure_rate
          total = succeeded + failed
          total.zero? ? nil : failed * 100.0 / total
        end
      end

      # The top of the count axis: the smallest 1, 2 or 5 times a power of ten that is at
      # least `value` (1 for an empty hour).
      # @param value [Numeric]
      # @return [Integer]
      def self.axis_top(value)
        return 1 if value <= 1

        magnitude = 10**Math.log10(value).floor
        [1, 2, 5, 10].map { |step| step * magnitude }.find { |top| top >= value }
      end

      # @param throughput [Array<Hash>] "minute" (ISO 8601), "succeeded", "failed"; oldest first
      def initialize(throughput)
        @buckets = Array(throughput).map do |bucket|
          { minute: bucket["minute"].to_s, succeeded: count(bucket["succeeded"]), failed: count(bucket["failed"]) }
        end
      end

      # @return [Summary]
      def summary
        Summary.new(succeeded: @buckets.sum { |b| b[:succeeded] }, failed: @buckets.sum { |b| b[:failed] })
      end

      # @return [SafeHtml] the <svg> element
      def to_html
        Html.raw([open_tag, "<title>Step attempts per minute, last hour</title>", grid, bars, rate_line, axes,
                  "</svg>"].join("\n"))
      end

      private

      def count(value)
        value.is_a?(Integer) && value.positive? ? value : 0
      end

      def plot_width = WIDTH - PLOT_LEFT - PLOT_RIGHT
      def plot_height = HEIGHT - PLOT_TOP - PLOT_BOTTOM
      def slot = plot_width.to_f / [@buckets.size, 1].max
      def top = self.class.axis_top(@buckets.map { |b| b[:succeeded] + b[:failed] }.max || 0)

      def open_tag
        %(<svg class="chart" xmlns="http://www.w3.org/2000/svg" role="img" width="#{WIDTH}" height="#{HEIGHT}" ) +
          %(viewBox="0 0 #{WIDTH} #{HEIGHT}" data-plot-left="#{PLOT_LEFT}" data-plot-top="#{PLOT_TOP}" ) +
          %(data-plot-width="#{plot_width}" data-plot-height="#{plot_height}" data-bar-fill="#{BAR_FILL}">)
      end

      def grid
        lines = [0.0, 0.5, 1.0].map do |share|
          y = num(y_for(share))
          %(<line class="chart-grid" x1="#{PLOT_LEFT}" y1="#{y}" x2="#{PLOT_LEFT + plot_width}" y2="#{y}"/>)
        end
        lines.join("\n")
      end

      def bars
        axis = top
        @buckets.each_with_index.map do |bucket, index|
          x = num(PLOT_LEFT + (index * slot) + (slot * (1 - BAR_FILL) / 2))
          width = num(slot * BAR_FILL)
          ok_height = bucket[:succeeded] * plot_height.to_f / axis
          failed_height = bucket[:failed] * plot_height.to_f / axis
          ok_y = PLOT_TOP + plot_height - ok_height
          [%(<g class="chart-bar" data-i="#{index}">),
           %(<title>#{Html.escape(minute_label(bucket[:minute]))}: #{bucket[:succeeded]} succeeded, ) +
             %(#{bucket[:failed]} failed</title>),
           %(<rect class="bar-succeeded" x="#{x}" y="#{num(ok_y)}" width="#{width}" height="#{num(ok_height)}"/>),
           %(<rect class="bar-failed" x="#{x}" y="#{num(ok_y - failed_height)}" width="#{width}" ) +
             %(height="#{num(failed_height)}"/>),
           "</g>"].join
        end.join("\n")
      end

      # The failure rate of each minute that had attempts, as runs of connected points
      # (a minute without attempts has no rate, so the line breaks there).
      def rate_line
        commands = []
        previous = false
        @buckets.each_with_index do |bucket, index|
          total = bucket[:succeeded] + bucket[:failed]
          if total.zero?
            previous = false
            next
          end
          point = "#{num(PLOT_LEFT + ((index + 0.5) * slot))} #{num(y_for(bucket[:failed].to_f / total))}"
          commands << (previous ? "L #{point}" : "M #{point} L #{point}")
          previous = true
        end
        %(<path class="rate-line" d="#{commands.join(' ')}"/>)
      end

      def axes
        axis = top
        right = PLOT_LEFT + plot_width + 6
        labels = [
          [1.0, axis], [0.5, axis / 2.0], [0.0, 0]
        ].map do |share, value|
          %(<text class="chart-axis" data-axis="#{share}" x="#{PLOT_LEFT - 6}" y="#{num(y_for(share) + 4)}" ) +
            %(text-anchor="end">#{num(value)}</text>)
        end
        rates = [[1.0, "100%"], [0.5, "50%"], [0.0, "0%"]].map do |share, text|
          %(<text class="chart-axis chart-axis-rate" x="#{right}" y="#{num(y_for(share) + 4)}">#{text}</text>)
        end
        labels + rates + time_labels
      end

      def time_labels
        return [] if @buckets.empty?

        y = HEIGHT - 10
        [[0, "start"], [@buckets.size - 1, "end"]].map do |index, anchor|
          x = num(PLOT_LEFT + ((index + 0.5) * slot))
          %(<text class="chart-axis chart-time" data-time="#{anchor}" x="#{x}" y="#{y}" ) +
            %(text-anchor="#{anchor == 'start' ? 'start' : 'end'}">#{Html.escape(minute_label(@buckets[index][:minute]))}</text>)
        end
      end

      def y_for(share)
        PLOT_TOP + (plot_height * (1 - share))
      end

      def minute_label(minute)
        Time.iso8601(minute).utc.strftime("%H:%M UTC")
      rescue ArgumentError
        minute
      end

      def num(value)
        rounded = value.to_f.round(1)
        rounded == rounded.to_i ? rounded.to_i.to_s : rounded.to_s
      end
    end
  end
end
