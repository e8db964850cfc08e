# frozen_string_literal: true

require "time"

module TaskerCore
  class Web
    # Plain-text formatting of the figures the dashboard and the inspect commands show:
    # durations, counts, percentages and times, one way everywhere.
    module Format
      module_function

      # @param milliseconds [Numeric, nil]
      # @return [String] e.g. "340 ms", "1.24 s", "3 min 12 s", "2 h 5 min"; "—" for nil
      def duration(milliseconds)
        return "—" unless milliseconds.is_a?(Numeric)
        return "#{trim(milliseconds.round(1))} ms" if milliseconds < 1000

        seconds = milliseconds / 1000.0
        return format("%.2f s", seconds) if seconds < 60

        minutes = (seconds / 60).floor
        return "#{minutes} min #{(seconds - (minutes * 60)).round} s" if minutes < 60

        "#{minutes / 60} h #{minutes % 60} min"
      end

      # @param from [String, nil] ISO 8601
      # @param to [String, nil] ISO 8601
      # @return [String] the time between them; "—" when either is missing
      def span(from, to)
        return "—" if from.nil? || to.nil?

        duration((Time.iso8601(to.to_s) - Time.iso8601(from.to_s)) * 1000.0)
      rescue ArgumentError
        "—"
      end

      # @param value [Numeric, nil]
      # @return [String] with thousands separators; "—" for nil
      def number(value)
        return "—" unless value.is_a?(Numeric)

        whole, fraction = value.abs.to_s.split(".")
        grouped = whole.reverse.scan(/\d{1,3}/).join(",").reverse
        text = fraction ? "#{grouped}.#{fraction}" : grouped
        value.negative? ? "-#{text}" : text
      end

      # @param value [Numeric, nil] a percentage
      # @return [String] e.g. "3.6 %"; "—" for nil
      def percent(value)
        value.is_a?(Numeric) ? format("%.1f %%", value) : "—"
      end

      # @param iso [String, nil] an ISO 8601 time
      # @return [String] "YYYY-MM-DD HH:MM:SS" in UTC; "—" for nil; the text itself when unparsable
      def time(iso)
        return "—" if iso.nil? || iso.to_s.empty?

        Time.iso8601(iso.to_s).utc.strftime("%Y-%m-%d %H:%M:%S")
      rescue ArgumentError
        iso.to_s
      end

      # @param throughput [Array<Hash>] "succeeded", "failed" per minute
      # @return [Array(Integer, Integer, Float or nil)] succeeded, failed and the failure rate in percent
      def hour_totals(throughput)
        buckets = Array(throughput)
        succeeded = buckets.sum { |bucket| count(bucket["succeeded"]) }
        failed = buckets.sum { |bucket| count(bucket["failed"]) }
        total = succeeded + failed
        [succeeded, failed, total.zero? ? nil : failed * 100.0 / total]
      end

      # @param value [Object]
      # @return [Integer] the value when it is a non-negative Integer, else 0
      def count(value)
        value.is_a?(Integer) && value.positive? ? value : 0
      end

      def trim(value)
        value == value.to_i ? value.to_i.to_s : value.to_s
      end
    end
  end
end
