# frozen_string_literal: true

require "logger"
require "stringio"

# Helpers of the end-to-end specs, which all share the one embedded core of this
# process (TaskerCore::FFI allows one per process).
#
# Isolation between examples: every task an example creates is tracked, and so is every
# event it polls and every TaskerCore::Worker it starts. After the example,
# #finish_core_example stops those workers, fails (non-retryably) every event still
# pending or still to come for those tasks until each task is finished and the core holds
# no event, removes the example's template directories, and restores the default core if
# the example reconfigured it. An example that leaves something the cleanup cannot finish
# fails.
module CoreHelpers
  FFI = TaskerCore::FFI
  # Options of the default core: the "test" environment (short timeouts), on PostgreSQL
  # when TASKER_SPEC_DATABASE_URL names a database (spec/postgres runs spec files again
  # that way, in a child process of their own).
  SPEC_DATABASE_URL = ENV.fetch("TASKER_SPEC_DATABASE_URL", nil)
  DEFAULT_CORE = { environment: "test", database_url: SPEC_DATABASE_URL }.compact.freeze
  # Longest the cleanup waits for leftovers (spec templates use deadlines of a few seconds).
  CLEANUP_TIMEOUT = 15.0
  UUID = /\A\h{8}-\h{4}-\h{4}-\h{4}-\h{12}\z/.freeze
  CLEANUP_FAILURE = {
    "success" => false,
    "error" => { "message" => "discarded by the spec cleanup", "error_type" => "spec_cleanup", "retryable" => false }
  }.freeze

  # --------------------------------------------------------------- lifecycle

  def start_core_example
    @spec_tasks = []
    @spec_events = []
    @spec_stash = []
    @spec_workers = []
    @spec_template_sets = []
    @core_reconfigured = false
    SpecHandlers.reset!
    ensure_core
  end

  def finish_core_example
    @spec_workers.each { |worker| worker.stop(timeout: 1) }
    ensure_core
    @spec_events.each { |event| discard(event) if FFI.event_pending?(event["event_id"]) }
    drain_leftovers
    if @core_reconfigured
      FFI.stop_worker
      ensure_core
    end
  ensure
    @spec_template_sets&.each(&:cleanup)
  end

  # Starts the default core unless one runs.
  # @return [Hash] bootstrap_worker's answer
  def ensure_core
    FFI.bootstrap_worker(DEFAULT_CORE)
  end

  # Stops the core's worker and starts a new one with these options (fresh channels and
  # metrics, same tasks and templates). The default core comes back after the example.
  # @return [Hash] bootstrap_worker's answer
  def restart_core(**options)
    FFI.stop_worker
    @core_reconfigured = true
    FFI.bootstrap_worker(DEFAULT_CORE.merge(options))
  end

  # ---------------------------------------------------------------- templates

  # @return [TemplateSet] a new template directory, removed after the example
  def new_template_set(namespace: "spec")
    TemplateSet.new(namespace: namespace).tap { |set| @spec_template_sets << set }
  end

  # @return [TemplateSet] this example's default template directory
  def templates
    @templates ||= new_template_set
  end

  # Writes a template into this example's directory and loads that directory.
  # @return [TemplateSet::Ref]
  def define_workflow(base_name, steps:, **options)
    ref = templates.add(base_name, steps: steps, **options)
    load_templates(templates.dir)
    ref
  end

  # @return [Integer] templates loaded
  def load_templates(dir)
    FFI.bootstrap_worker(DEFAULT_CORE.merge(template_path: dir.to_s)).fetch("templates_loaded")
  end

  # The directory of the shipped sample workflows.
  def sample_templates_dir
    File.expand_path("../../config/templates", __dir__)
  end

  # ---------------------------------------------------------------- tasks

  # Creates a task (tracked for the cleanup).
  # @param ref [TemplateSet::Ref, Hash] namespace and name
  # @return [String] the task uuid
  def create_task(ref, context = {}, version: nil)
    namespace, name = ref.is_a?(Hash) ? ref.values_at(:namespace, :name) : [ref.namespace, ref.name]
    track_task(FFI.create_task(namespace, name, version, context))
  end

  # @return [String] the uuid, now cleaned up after the example
  def track_task(task_uuid)
    @spec_tasks << task_uuid
    task_uuid
  end

  # @return [Hash] the task's final status
  def wait_for(task_uuid, timeout: 10)
    status = FFI.wait_for_task(task_uuid, timeout)
    return status if status

    raise "task #{task_uuid} did not finish within #{timeout}s: #{FFI.task_status(task_uuid).inspect}"
  end

  # @return [Hash] the named step of a task_status Hash
  def step_of(status, name)
    status.fetch("steps").find { |step| step["name"] == name } ||
      raise(KeyError, "no step #{name.inspect} in #{status['steps'].map { |s| s['name'] }}")
  end

  # ---------------------------------------------------------------- events

  # Polls until an event for `task_uuid` (any task of this example when nil) arrives.
  # Events of this example's other tasks are kept for later calls; events of unknown tasks
  # (leftovers) are failed. Every event returned is failed by the cleanup if the example
  # leaves it pending.
  # @return [Hash, nil] nil when none arrived within `timeout`
  def poll_event(task_uuid = nil, timeout: 5)
    stashed = @spec_stash.find { |event| task_uuid.nil? || event["task_uuid"] == task_uuid }
    return @spec_stash.delete(stashed) if stashed

    deadline = monotonic + timeout
    loop do
      remaining = deadline - monotonic
      return nil unless remaining.positive?

      event = FFI.poll_step_events(remaining)
      next unless event

      @spec_events << event
      return event if task_uuid.nil? || event["task_uuid"] == task_uuid

      if @spec_tasks.include?(event["task_uuid"])
        @spec_stash << event
      else
        discard(event)
      end
    end
  end

  # Polls the next event of a task and fails the example if none comes.
  # @return [Hash]
  def next_event(task_uuid, timeout: 5)
    poll_event(task_uuid, timeout: timeout) || raise("no step event for task #{task_uuid} within #{timeout}s")
  end

  # @return [Hash] a success result for complete_step_event
  def success_result(value = nil)
    { "success" => true, "result" => value }
  end

  # Completes an event successfully and checks the core accepted it.
  def complete_ok(event, value = nil)
    accepted = FFI.complete_step_event(event.fetch("event_id"), success_result(value))
    raise "complete_step_event refused event #{event['event_id']} (#{event_step_name(event)})" unless accepted

    accepted
  end

  # @return [String]
  def event_step_name(event)
    event.dig("task_sequence_step", "workflow_step", "name")
  end

  # @return [Integer]
  def event_attempts(event)
    event.dig("task_sequence_step", "workflow_step", "attempts")
  end

  # @return [Hash] TaskerCore::FFI.ffi_dispatch_metrics
  def metrics
    FFI.ffi_dispatch_metrics
  end

  # ---------------------------------------------------------------- workers

  # Starts a TaskerCore::Worker joined to the core (stopped after the example).
  # @return [TaskerCore::Worker]
  def start_worker(**options)
    worker = TaskerCore::Worker.new(logger: spec_logger, environment: "test", **options)
    @spec_workers << worker
    worker.start
    worker
  end

  # @return [Logger] writing to #log_output
  def spec_logger
    @spec_logger ||= Logger.new(log_output, progname: "tasker_core")
  end

  # @return [StringIO] what this example's workers logged
  def log_output
    @log_output ||= StringIO.new
  end

  # ---------------------------------------------------------------- time

  # @return [Float] seconds on the monotonic clock
  def monotonic
    Process.clock_gettime(Process::CLOCK_MONOTONIC)
  end

  # @return [Float] seconds the block took
  def elapsed
    started = monotonic
    yield
    monotonic - started
  end

  # For conditions that no event signals (metrics): checks every `interval` until true.
  # @return [Object] the block's truthy value
  def wait_until(what, timeout: 5, interval: 0.01)
    deadline = monotonic + timeout
    loop do
      value = yield
      return value if value
      raise "timed out after #{timeout}s waiting until #{what}" if monotonic >= deadline

      sleep interval
    end
  end

  private

  def discard(event)
    FFI.complete_step_event(event["event_id"], CLEANUP_FAILURE)
  end

  def finished?(task_uuid)
    FFI::FINISHED_TASK_STATUSES.include?(FFI.task_status(task_uuid)["status"])
  rescue TaskerCore::Errors::TaskNotFoundError
    true
  end

  # Fails events until every tracked task is finished and the core holds no event.
  def drain_leftovers
    deadline = monotonic + CLEANUP_TIMEOUT
    loop do
      event = FFI.poll_step_events(0.02)
      if event
        discard(event)
        next
      end
      state = metrics
      unfinished = @spec_tasks.reject { |uuid| finished?(uuid) }
      return if unfinished.empty? && state["pending_count"].zero? && state["waiting_in_dispatch"].zero?
      next if monotonic < deadline

      raise "spec cleanup: tasks #{unfinished.inspect} still unfinished or events still held " \
            "after #{CLEANUP_TIMEOUT}s (metrics: #{state.inspect})"
    end
  end
end
