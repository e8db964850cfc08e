# frozen_string_literal: true

require "tasker_core/web/format"

module TaskerCore
  class CLI
    # The text that `tasker-worker status` and `tasker-worker task` print: figures on
    # labelled lines and aligned tables. Strings from the data have their control
    # characters escaped so an error message cannot rewrite the terminal.
    module Report
      Format = TaskerCore::Web::Format
      TASK_STATUSES = %w[pending in_progress complete error cancelled].freeze
      # Backtrace lines printed per failed step.
      BACKTRACE_LINES = 10

      module_function

      # @param stats [Hash] TaskerCore.stats
      # @param workers [Array<Hash>] TaskerCore.workers
      # @return [String]
      def status(stats:, workers:)
        counts = stats["tasks"].is_a?(Hash) ? stats["tasks"] : {}
        succeeded, failed, rate = Format.hour_totals(stats["throughput"])
        lines = [
          "backend    #{clean(stats['backend'])} · #{Format.number(stats['workers_alive'])} worker(s) alive",
          "tasks      #{TASK_STATUSES.map { |s| "#{s.tr('_', ' ')} #{Format.number(counts.fetch(s, 0))}" }.join(' · ')}",
          "steps      in flight #{Format.number(stats['steps_in_flight'])} · ready #{Format.number(stats['steps_ready'])} · " \
          "waiting for retry #{Format.number(stats['steps_waiting_for_retry'])}",
          "dispatch   pending events #{Format.number(stats['pending_events'])} · waiting " \
          "#{Format.number(stats['waiting_in_dispatch'])} (oldest #{Format.duration(stats['oldest_waiting_ms'])}) · " \
          "starvation #{stats['starvation_detected'] == true ? 'DETECTED' : 'none'}",
          "timeouts   lag p50 #{Format.duration(stats['timeout_lag_ms_p50'])} · p99 #{Format.duration(stats['timeout_lag_ms_p99'])}",
          "last hour  #{Format.number(succeeded)} succeeded · #{Format.number(failed)} failed · " \
          "failure rate #{Format.percent(rate)}",
          ""
        ]
        lines << (workers.empty? ? "no live workers" : workers_table(workers))
        "#{lines.join("\n")}\n"
      end

      # @param task [Hash] TaskerCore.task_status
      # @return [String]
      def task(task)
        steps = Array(task["steps"])
        lines = [
          "task       #{clean(task['task_uuid'])}",
          "template   #{clean(task['namespace'])}/#{clean(task['name'])} #{clean(task['version'])}",
          "status     #{clean(task['status'])}#{task['priority'].nil? ? '' : " · priority #{task['priority']}"}",
          "created    #{Format.time(task['created_at'])} UTC · completed #{Format.time(task['completed_at'])} · " \
          "took #{Format.span(task['created_at'], task['completed_at'])}"
        ]
        lines << "reason     #{clean(task['cancel_reason'])}" if task["cancel_reason"]
        lines << ""
        lines << (steps.empty? ? "no steps" : steps_table(steps))
        "#{lines.join("\n")}\n"
      end

      # @param tasks [Array<Hash>] TaskerCore.tasks
      # @return [String]
      def tasks(tasks)
        return "no tasks\n" if tasks.empty?

        rows = [%w[TASK STATUS TEMPLATE CREATED TOOK]]
        tasks.each do |t|
          rows << [clean(t["task_uuid"]), clean(t["status"]),
                   "#{clean(t['namespace'])}/#{clean(t['name'])} #{clean(t['version'])}",
                   "#{Format.time(t['created_at'])} UTC", Format.span(t["created_at"], t["completed_at"])]
        end
        "#{table(rows)}\n"
      end

      # @param rows [Array<Array<String>>] the first row is the header
      # @return [String] left-aligned columns two spaces apart
      def table(rows)
        widths = rows.transpose.map { |column| column.map(&:length).max }
        rows.map { |row| row.each_with_index.map { |cell, i| cell.ljust(widths[i]) }.join("  ").rstrip }.join("\n")
      end

      # @param value [Object]
      # @return [String] the text with control characters (but not newlines) shown as \xNN
      def clean(value)
        value.to_s.gsub(/[\u0000-\u0009\u000b-\u001f\u007f\u009b]/) { |char| format("\\x%02x", char.ord) }
      end

      def workers_table(workers)
        rows = [%w[WORKER HOST PID STARTED\ (UTC) HEARTBEAT IN\ FLIGHT]]
        workers.each do |worker|
          in_flight = worker["concurrency"] ? "#{worker['in_flight']}/#{worker['concurrency']}" : worker["in_flight"].to_s
          rows << [clean(worker["worker_id"]), clean(worker["host"]), clean(worker["pid"]), Format.time(worker["started_at"]),
                   "#{Format.duration(worker['heartbeat_age_ms'])} ago", in_flight]
        end
        table(rows)
      end

      def steps_table(steps)
        rows = [%w[STEP STATUS ATTEMPTS TIME DEPENDS\ ON]]
        steps.each do |step|
          attempts = step["max_attempts"] ? "#{step['attempts']}/#{step['max_attempts']}" : step["attempts"].to_s
          times = Array(step["history"]).filter_map { |attempt| attempt["duration_ms"] if attempt["duration_ms"].is_a?(Numeric) }
          rows << [clean(step["name"]), clean(step["status"]), attempts, Format.duration(times.empty? ? nil : times.sum),
                   Array(step["dependencies"]).map { |name| clean(name) }.join(", ")]
        end
        [table(rows), *steps.filter_map { |step| step_error(step) }].join("\n")
      end

      def step_error(step)
        error = step["error"]
        return nil unless error.is_a?(Hash)

        retry_note = error["retryable"] ? "retryable" : "not retryable"
        lines = ["", "#{clean(step['name'])}: #{clean(error['error_type'])} (#{retry_note}): " \
                     "#{clean(error['message']).gsub("\n", "\n    ")}"]
        Array(error["backtrace"]).first(BACKTRACE_LINES).each { |line| lines << "    #{clean(line)}" }
        lines.join("\n")
      end
    end
  end
end
