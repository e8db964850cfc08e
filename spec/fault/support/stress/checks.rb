# frozen_string_literal: true

module FaultStress
  # @param report [Hash] what Run#call returned
  # @return [Array<String>] every broken invariant (empty when the run is clean)
  def self.failures(report)
    Checks.new(report).failures
  end

  # The invariants of a stress run, checked on its report.
  class Checks
    # @param report [Hash] what Run#call returned
    def initialize(report)
      @report = report
      @log = report.fetch("log")
      @metrics = report.fetch("metrics")
      @orchestrator = report.fetch("orchestrator")
    end

    # @return [Array<String>]
    def failures
      @failures = []
      executions
      outcomes
      nothing_left
      counts_agree
      memory
      @failures
    end

    private

    def check(ok, message)
      @failures << message unless ok
    end

    # Every (step_uuid, attempt) ran exactly once, and completed exactly once.
    def executions
      check(@log["duplicates"].zero?, "#{@log['duplicates']} duplicate executions: #{@log['duplicate_examples']}")
      check(@log["executions_after_check"].zero?,
            "#{@log['executions_after_check']} executions after their task was final")
      check(@log["unknown_completions"].zero?, "#{@log['unknown_completions']} completions of unlogged events")
      check(@log["open_executions"].zero?, "#{@log['open_executions']} executions never completed")
      check(@log["unchecked_executions"].zero?, "#{@log['unchecked_executions']} executions of unchecked tasks")
      check(@orchestrator["steps_dispatched"] == @log["executions"],
            "core dispatched #{@orchestrator['steps_dispatched']} steps, handlers ran #{@log['executions']}")
    end

    # Every task ended complete or error, as planned, with attempts matching executions.
    def outcomes
      expected = @report.fetch("tasks") + @report.fetch("warmup")
      statuses = @report["statuses"]
      check(statuses.values_at("complete", "error").compact.sum == expected && (statuses.keys - %w[complete error]).empty?,
            "task statuses #{statuses} (expected #{expected} complete or error)")
      check(@report["stuck"].empty?, "stuck tasks: #{@report['stuck'].first(10)}")
      check(@report["problems"].empty?, "problems: #{@report['problems'].first(10)}")
      check(@report["deferred"].zero?, "#{@report['deferred']} tasks whose executions never all completed")
    end

    def nothing_left
      stats = @report.fetch("worker_stats")
      %w[processor_deaths poll_errors completion_errors conversion_errors].each do |counter|
        check(stats[counter].zero?, "worker #{counter}: #{stats[counter]}")
      end
      check(@metrics["pending_count"].zero?, "pending_count #{@metrics['pending_count']} after the run")
      check(@metrics["waiting_in_dispatch"].zero?, "waiting_in_dispatch #{@metrics['waiting_in_dispatch']} after the run")
      check(@report["in_flight"].zero?, "worker in_flight #{@report['in_flight']} after the run")
    end

    # Nothing dropped between the handlers, the channel and the orchestrator.
    def counts_agree
      recorded = @orchestrator.values_at("steps_succeeded", "step_failures", "stale_results").sum
      sent = @metrics["total_completed"] + @metrics["total_timed_out"]
      check(recorded == sent, "results recorded by the orchestrator (#{recorded}) != results sent (#{sent})")
      check(@metrics["total_completed"] == @log["accepted_completions"],
            "core counted #{@metrics['total_completed']} completions, handlers had " \
            "#{@log['accepted_completions']} accepted")
      rejected = @log["rejected_by_kind"].values.sum
      check(@metrics.values_at("total_timed_out", "late_completions", "total_rejected_completions").uniq == [rejected],
            "timed out #{@metrics['total_timed_out']}, late #{@metrics['late_completions']}, rejected " \
            "#{@metrics['total_rejected_completions']}, handlers saw #{rejected} rejections")
      overruns = @log["by_kind"].fetch("overrun", 0)
      check(@log["rejected_by_kind"].fetch("overrun", 0) == overruns,
            "#{overruns} overruns, #{@log['rejected_by_kind'].fetch('overrun', 0)} rejected")
    end

    # Without a warm-up there is no steady state to compare against.
    def memory
      return if @report["warmup"].zero?

      rss = @report.fetch("rss_kb")
      check(rss["after"] <= rss["before"] * (1 + @report["rss_tolerance"]),
            "RSS grew from #{rss['before']} kB to #{rss['after']} kB (more than #{(@report['rss_tolerance'] * 100).round} %)")
    end
  end
end
