# frozen_string_literal: true

# Pure-Ruby unit specs: loads the Ruby side of tasker_core WITHOUT the native extension.
# Every unit spec file requires this file with require_relative.

lib = File.expand_path("../../lib", __dir__)
$LOAD_PATH.unshift(lib) unless $LOAD_PATH.include?(lib)

require "json"
require "logger"
require "securerandom"
require "stringio"
require "tasker_core/errors"
require "tasker_core/ffi"
require "tasker_core/logging"
require "tasker_core/logger"
require "tasker_core/types"
require "tasker_core/step_handler/result"
require "tasker_core/step_handler/base"
require "tasker_core/step_handler/context"
require "tasker_core/handler_registry"
require "tasker_core/task_client"
require "tasker_core/worker"
require "tasker_core/cli"

module UnitSupport
  # A stand-in for TaskerCore::FFI: events come from a queue, completions are recorded,
  # results are checked for JSON-likeness the way the native conversion does.
  class FakeFFI
    DEFAULT_CONFIG = {
      "max_concurrent_handlers" => 4, "handler_timeout_ms" => 30_000, "dispatch_buffer_size" => 100,
      "completion_buffer_size" => 100, "concurrency" => 2, "poll_timeout_ms" => 20,
      "shutdown_timeout_ms" => 1000, "hung_handler_grace_ms" => 100
    }.freeze

    attr_reader :bootstrap_calls, :stop_calls, :poll_calls

    def initialize(config: {}, status: "started")
      @config = DEFAULT_CONFIG.merge(config)
      @status = status
      @lock = Mutex.new
      @ready = ConditionVariable.new
      @events = []
      @pending = {}
      @completions = []
      @bootstrap_calls = []
      @stop_calls = 0
      @poll_calls = 0
    end

    def bootstrap_worker(options = {})
      @lock.synchronize { @bootstrap_calls << options }
      config = @config.dup
      config["concurrency"] = options[:concurrency] if options[:concurrency]
      { "status" => @status, "worker_id" => "worker-test-1", "environment" => "test",
        "templates_loaded" => 3, "config" => config }
    end

    def push(event)
      @lock.synchronize do
        @events << event
        @ready.signal
      end
      event
    end

    def poll_step_events(timeout = nil)
      @lock.synchronize do
        @poll_calls += 1
        @ready.wait(@lock, timeout) if @events.empty? && timeout
        event = @events.shift
        @pending[event["event_id"]] = true if event
        event
      end
    end

    def complete_step_event(event_id, result)
      check_json_like!(result, "result")
      @lock.synchronize do
        @completions << { event_id: event_id, result: result }
        !@pending.delete(event_id).nil?
      end
    end

    def event_pending?(event_id)
      @lock.synchronize { @pending.key?(event_id) }
    end

    # The fake has no tasks to cancel: an event should stop once it is no longer pending.
    def event_cancelled?(event_id)
      !event_pending?(event_id)
    end

    # The core failing an event at its deadline.
    def expire(event_id)
      @lock.synchronize { @pending.delete(event_id) }
    end

    def stop_worker
      @lock.synchronize { @stop_calls += 1 }
      { "stopped" => true }
    end

    def completions
      @lock.synchronize { @completions.dup }
    end

    def completions_for(event_id)
      completions.select { |completion| completion[:event_id] == event_id }
    end

    private

    def check_json_like!(value, path)
      case value
      when nil, true, false, Integer, String, Symbol then nil
      when Float then raise ArgumentError, "#{path}: NaN and Infinity are not JSON" unless value.finite?
      when Array then value.each_with_index { |item, i| check_json_like!(item, "#{path}[#{i}]") }
      when Hash then value.each { |key, item| check_json_like!(item, "#{path}.#{key}") }
      else raise TypeError, "#{path}: cannot convert #{value.class} to a JSON value"
      end
    end
  end

  module_function

  def build_event(step_name: "do_work", callable: "UnitHandlers::Succeed", timeout_ms: 5_000, initialization: nil,
                  dependency_results: {}, task_context: { "order" => { "id" => 7 } }, inputs: {}, attempts: 1)
    {
      "event_id" => SecureRandom.uuid, "task_uuid" => SecureRandom.uuid, "step_uuid" => SecureRandom.uuid,
      "correlation_id" => SecureRandom.uuid, "trace_id" => "4bf92f3577b34da6a3ce929d0e0e4736",
      "span_id" => "00f067aa0ba902b7", "timeout_ms" => timeout_ms,
      "task_sequence_step" => {
        "task" => { "task_uuid" => "t", "namespace" => "ecommerce", "name" => "order_fulfillment",
                    "version" => "1.0.0", "context" => task_context },
        "workflow_step" => { "step_uuid" => "s", "name" => step_name, "attempts" => attempts,
                             "max_attempts" => 3, "retryable" => true, "inputs" => inputs },
        "dependency_results" => dependency_results,
        "step_definition" => { "name" => step_name,
                               "handler" => { "callable" => callable, "initialization" => initialization },
                               "dependencies" => dependency_results.keys, "retry" => {}, "timeout_seconds" => nil }
      }
    }
  end

  def null_logger
    Logger.new(IO::NULL)
  end

  # Waits until the block is truthy; returns its value or fails the example.
  def wait_until(timeout: 5, message: "condition")
    deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + timeout
    loop do
      value = yield
      return value if value
      raise "timed out after #{timeout}s waiting for #{message}" if Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline

      sleep 0.005
    end
  end
end

# Handlers used across the unit specs.
module UnitHandlers
  class Succeed < TaskerCore::StepHandler::Base
    def call(context)
      success(result: { "order_id" => context.task_context["order"]["id"], "config" => config })
    end
  end

  class Fail < TaskerCore::StepHandler::Base
    def call(_context)
      failure(message: "out of stock", error_type: "OutOfStock", retryable: false, metadata: { "sku" => "A1" })
    end
  end

  class ReturnNil < TaskerCore::StepHandler::Base
    def call(_context) = nil
  end

  class ReturnString < TaskerCore::StepHandler::Base
    def call(_context) = "done"
  end

  class ReturnHashWithoutSuccess < TaskerCore::StepHandler::Base
    def call(_context) = { "result" => 42 }
  end

  class ReturnSymbolKeys
    def call(_context) = { success: true, result: [1, 2], metadata: { custom: { "k" => 1 } } }
  end

  class RaiseStandard < TaskerCore::StepHandler::Base
    def call(_context) = raise(ArgumentError, "bad order")
  end

  class RaiseRetryable < TaskerCore::StepHandler::Base
    def call(_context) = raise(TaskerCore::Errors::RetryableError.new("gateway busy", retry_after: 2.5))
  end

  class RaisePermanent < TaskerCore::StepHandler::Base
    def call(_context)
      raise TaskerCore::Errors::PermanentError.new("card declined", error_type: "CardDeclined",
                                                                    metadata: { "code" => 51 })
    end
  end

  class NotImplemented < TaskerCore::StepHandler::Base; end

  DeepException = Class.new(Exception) # rubocop:disable Lint/InheritException -- a non-StandardError like SystemStackError

  class RaiseNonStandard < TaskerCore::StepHandler::Base
    def call(_context) = raise(DeepException, "stack blown")
  end

  class CallsExit < TaskerCore::StepHandler::Base
    def call(_context) = exit(3)
  end

  class ReturnsProc < TaskerCore::StepHandler::Base
    def call(_context) = success(result: { "callback" => -> { 1 } })
  end

  class ReturnsNaN < TaskerCore::StepHandler::Base
    def call(_context) = success(result: Float::NAN)
  end

  NotAClass = 42

  class NoCall; end

  # Sleeps (interruptibly) until released or for `seconds`.
  class Sleeper < TaskerCore::StepHandler::Base
    def call(context)
      sleep((context.inputs["sleep"] || 10).to_f)
      success(result: "woke")
    end
  end

  # Rescues the watchdog's interrupt and keeps sleeping.
  class Stubborn < TaskerCore::StepHandler::Base
    INTERRUPTS = Queue.new

    def call(context)
      sleep(context.inputs["sleep"] || 10)
      success(result: "never")
    rescue TaskerCore::Errors::TimeoutError => e
      INTERRUPTS << e.message
      sleep(context.inputs["after_interrupt"] || 10)
      success(result: "late")
    end
  end
end

module UnitHandlers
  # Kills its own thread (Thread#kill is not an exception; no rescue sees it).
  class KillsThread < TaskerCore::StepHandler::Base
    def call(_context)
      Thread.current.kill
      success(result: "unreachable")
    end
  end

  # Polls context.cancelled? until it turns true.
  class Cooperative < TaskerCore::StepHandler::Base
    def call(context)
      sleep 0.005 until context.cancelled?
      failure(message: "gave up: cancelled", error_type: "Cancelled")
    end
  end
end
