# frozen_string_literal: true

require "date"
require "securerandom"
require "time"
require "tasker_core/version"
# Errors and the handler-facing Hash class first: the native extension looks them up
# when it loads.
require "tasker_core/errors"
require "tasker_core/types/indifferent_hash"
require "tasker_core/tasker_core"
require "tasker_core/ffi"
require "tasker_core/logging"
require "tasker_core/logger"
require "tasker_core/types"
require "tasker_core/clock"
require "tasker_core/step_handler/result"
require "tasker_core/step_handler/base"
require "tasker_core/step_handler/context"
require "tasker_core/handler_registry"
require "tasker_core/task_client"
require "tasker_core/worker"

# Workflow steps (DAGs) run by a Rust core, with step handlers written in Ruby.
# See TaskerCore::Worker, TaskerCore::StepHandler::Base and the task functions below.
module TaskerCore
  class << self
    # Creates a task from a task template.
    # @param namespace [String, Symbol]
    # @param name [String, Symbol]
    # @param version [String, nil] the highest version that is not a prerelease when nil
    # @param context [Hash] the task's context (JSON-like)
    # @param idempotency_key [String, nil] a second call with the same key answers the
    #   first task's uuid and creates nothing (for as long as that task is retained)
    # @param run_at [Time, nil] no step starts before then
    # @param delay [Numeric, nil] seconds from now (instead of run_at)
    # @param priority [Integer] ready steps of higher-priority tasks are claimed first
    # @return [String] the task uuid
    # @raise [TaskerCore::Errors::BackpressureError] too many unfinished tasks (embedded)
    def create_task(namespace:, name:, version: nil, context: {}, idempotency_key: nil, run_at: nil, delay: nil,
                    priority: 0)
      TaskClient.new.create_task(namespace: namespace, name: name, version: version, context: context,
                                 idempotency_key: idempotency_key, run_at: run_at, delay: delay, priority: priority)
    end

    # Every loaded task template, ordered by namespace, name and version: "namespace",
    # "name", "version", "description", "metadata", "task_handler",
    # "system_dependencies", "domain_events", "input_schema", "environment" (whose
    # overrides were applied), "source" and "steps" (each with "name", "description",
    # "handler", "dependencies", "retry" (with "backoff"), "timeout_seconds", "inputs",
    # "system_dependency", "publishes_events").
    # @return [Array<Hash>]
    # @raise [TaskerCore::Errors::NotRunningError] before the core is started
    def templates
      FFI.templates
    end

    # @param task_uuid [String]
    # @return [Hash] "status" and "steps"
    # @raise [TaskerCore::Errors::TaskNotFoundError] (TaskEvictedError when retention removed it)
    def task_status(task_uuid)
      TaskClient.new.task_status(task_uuid)
    end

    # @param task_uuid [String]
    # @param timeout [Numeric] seconds
    # @return [Hash] the status once "complete", "error" or "cancelled"
    # @raise [TaskerCore::Errors::TimeoutError] when not finished in time
    def wait_for_task(task_uuid, timeout:)
      TaskClient.new.wait_for_task(task_uuid, timeout: timeout)
    end

    # Cancels a task: no new step starts; running handlers see `context.cancelled?`;
    # once they finish the task is "cancelled" and its other steps "skipped".
    # @param task_uuid [String]
    # @param reason [String, nil] kept as the task's "cancel_reason"
    # @return [Hash] "outcome" ("cancelled", "cancelling", "already_finished"), "status", "in_flight"
    def cancel_task(task_uuid, reason: nil)
      TaskClient.new.cancel_task(task_uuid, reason: reason)
    end

    # Runs a task in "error" again: its failed steps get a fresh attempt budget, then its
    # skipped steps run.
    # @param task_uuid [String]
    # @return [Hash] "outcome" ("retrying" or "not_failed"), "status", "failed_steps", "skipped_steps"
    def retry_task(task_uuid)
      TaskClient.new.retry_task(task_uuid)
    end

    # Tasks, newest first.
    # @param status [String, nil] one of TaskerCore::FFI::TASK_STATUSES
    # @param namespace [String, nil]
    # @param name [String, nil]
    # @param limit [Integer] 1..1000
    # @param before [String, Time, nil] a task uuid (the last of the previous page) or a time
    # @return [Array<Hash>] "task_uuid", "status", "namespace", "name", "version",
    #   "priority", "created_at", "completed_at"
    def tasks(status: nil, namespace: nil, name: nil, limit: 50, before: nil)
      TaskClient.new.tasks(status: status, namespace: namespace, name: name, limit: limit, before: before)
    end

    # Counts of the store and of this process's dispatch channel.
    # @return [Hash] "backend", "tasks" (status => count), "steps_in_flight", "steps_ready",
    #   "steps_waiting_for_retry", "workers_alive", "throughput" (60 minutes of
    #   {"minute", "succeeded", "failed"}), "pending_events", "waiting_in_dispatch",
    #   "oldest_waiting_ms", "starvation_detected", "timeout_lag_ms_p50", "timeout_lag_ms_p99"
    def stats
      TaskerCore::FFI.stats
    end

    # @return [Array<Hash>] live workers: "worker_id", "host", "pid", "started_at",
    #   "heartbeat_age_ms", "in_flight", "concurrency"
    def workers
      TaskerCore::FFI.workers
    end

    # This process's counters, histograms and gauges as Prometheus text exposition
    # (format 0.0.4): tasks created and finished, step attempts by outcome, step duration
    # and queue wait per namespace/task/step, steps in flight, pending events, live
    # workers. TaskerCore::Web serves it at /metrics.
    # @return [String]
    # @raise [TaskerCore::Errors::NotRunningError] before the core is started
    def metrics_text
      TaskerCore::FFI.metrics_text
    end

    # Sets up a process that only creates and reads tasks (a web app) on PostgreSQL: no
    # worker threads. create_task, task_status, wait_for_task and the rest work across
    # processes.
    # @param database_url [String, nil] TASKER_DATABASE_URL when nil
    # @param template_path [String, nil] templates to store (and so make creatable)
    # @return [Hash] "status", "backend", "templates_loaded"
    def connect(database_url: nil, template_path: nil, environment: nil, config_root: nil)
      options = { database_url: database_url, template_path: template_path&.to_s, environment: environment,
                  config_root: config_root&.to_s }.compact
      TaskerCore::FFI.connect(options)
    end
  end
end
