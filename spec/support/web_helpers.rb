# frozen_string_literal: true

require "rack/test"
require "tasker_core/web"

# Helpers of the dashboard specs (spec/web): a TaskerCore::Web over the real core, driven
# with rack-test, and tasks brought to known states by polling and completing their events
# by hand (CoreHelpers), so every page shows what the core really holds.
module WebHelpers
  include Rack::Test::Methods

  # A fixed key, so tokens minted by one app instance verify in another.
  SECRET = "web-spec-secret-0123456789abcdef"
  # A message no page may emit unescaped.
  SCRIPT = "<script>alert('xss')</script>"
  # A step name that would break out of an SVG attribute if not escaped.
  MARKUP_STEP = %(notify "ops" <b onmouseover=alert(1)>now</b>)

  # The app rack-test calls (the dashboard at the root; see #mounted_at).
  def app
    @app ||= TaskerCore::Web.new(secret: SECRET)
  end

  # Mounts the dashboard under `prefix` ("/tasker") the way Rails' `mount` or Rack's
  # `map` does (SCRIPT_NAME = prefix); requests then name the full path.
  def mounted_at(prefix, **options)
    @app = Rack::URLMap.new(prefix => TaskerCore::Web.new(secret: SECRET, **options))
  end

  # GETs a page.
  # @return [Rack::MockResponse]
  def visit(path, params = {}, env = {})
    get(path, params, env)
    last_response
  end

  # A four-step diamond: fetch -> (left, right) -> join.
  def diamond_workflow
    @diamond_workflow ||= define_workflow("web_diamond", steps: [
                                            { name: "fetch", handler: "SpecHandlers::Echo" },
                                            { name: "left", handler: "SpecHandlers::Echo", dependencies: ["fetch"] },
                                            { name: "right", handler: "SpecHandlers::Echo", dependencies: ["fetch"] },
                                            { name: "join", handler: "SpecHandlers::Echo", dependencies: %w[left right] }
                                          ])
  end

  # validate -> charge -> a step whose name carries markup, for failures and escaping.
  def payment_workflow
    @payment_workflow ||= define_workflow("web_payment", steps: [
                                            { name: "validate", handler: "SpecHandlers::Echo" },
                                            { name: "charge", handler: "SpecHandlers::Echo", dependencies: ["validate"],
                                              retry: { retryable: false, max_attempts: 1 } },
                                            { name: MARKUP_STEP, handler: "SpecHandlers::Echo", dependencies: ["charge"] }
                                          ])
  end

  # Fails the response's example with the page's error message unless it is a 200.
  def expect_ok(response = last_response)
    message = response.body[/<p class="error-box[^>]*>(.*?)<\/p>/m, 1] || response.body[0, 300]
    expect(response.status).to eq(200), "HTTP #{response.status}: #{message}"
    response
  end

  # Completes every step of a task successfully, in dependency order.
  # @return [Hash] the final task_status
  def run_to_completion(task_uuid)
    each_event_until_finished(task_uuid) do |event|
      complete_ok(event, { "step" => event_step_name(event), "note" => "<b>bold</b>" })
    end
  end

  # Completes the task's first step (validate), then fails the next one (charge) for good
  # with `message`.
  # @return [Hash] the final task_status
  def fail_second_step(task_uuid, message: SCRIPT)
    complete_ok(next_event(task_uuid), { "fetched" => true })
    failing = next_event(task_uuid)
    failure = {
      "success" => false,
      "error" => { "message" => message, "error_type" => "<img src=x onerror=alert(1)>", "retryable" => false,
                   "backtrace" => ["app/handlers/#{SCRIPT}.rb:12:in `call'", "lib/worker.rb:3"] }
    }
    raise "the core refused the failure" unless TaskerCore::FFI.complete_step_event(failing["event_id"], failure)

    drain_task(task_uuid)
  end

  # Fails every remaining event of the task (non-retryably) until it is finished.
  # @return [Hash] the final task_status
  def drain_task(task_uuid)
    each_event_until_finished(task_uuid) do |event|
      TaskerCore::FFI.complete_step_event(event["event_id"], CoreHelpers::CLEANUP_FAILURE)
    end
  end

  # Yields the task's events until it is finished (completions are recorded
  # asynchronously, so the status is polled between events).
  # @return [Hash] the final task_status
  def each_event_until_finished(task_uuid, timeout: 10)
    deadline = monotonic + timeout
    loop do
      status = TaskerCore::FFI.task_status(task_uuid)
      return status if %w[complete error cancelled].include?(status["status"])
      raise "task #{task_uuid} did not finish within #{timeout}s: #{status.inspect}" if monotonic > deadline

      event = poll_event(task_uuid, timeout: 0.05)
      yield event if event
    end
  end

  # @return [String] the CSRF token the last page put in its forms
  def form_token
    last_response.body[/name="_csrf" value="([^"]+)"/, 1] || raise("no CSRF field on the page")
  end

  # @return [Hash] the last response's JSON
  def json_body
    JSON.parse(last_response.body)
  end
end
