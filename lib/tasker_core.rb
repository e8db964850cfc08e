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
    # @param version [String, nil] latest when nil
    # @param context [Hash] the task's context (JSON-like)
    # @return [String] the task uuid
    def create_task(namespace:, name:, version: nil, context: {})
      TaskClient.new.create_task(namespace: namespace, name: name, version: version, context: context)
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
    # @raise [TaskerCore::Errors::TaskNotFoundError]
    def task_status(task_uuid)
      TaskClient.new.task_status(task_uuid)
    end

    # @param task_uuid [String]
    # @param timeout [Numeric] seconds
    # @return [Hash] the status once "complete" or "error"
    # @raise [TaskerCore::Errors::TimeoutError] when not finished in time
    def wait_for_task(task_uuid, timeout:)
      TaskClient.new.wait_for_task(task_uuid, timeout: timeout)
    end
  end
end
