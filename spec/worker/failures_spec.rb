# frozen_string_literal: true

RSpec.describe "TaskerCore::Worker turning handler failures into recorded step failures" do
  let(:misbehaving) do
    define_workflow("misbehaves", steps: [
      { name: "risky", handler: "SpecHandlers::Misbehaves", retry: { max_attempts: 1 } }
    ])
  end
  let(:healthy) { define_workflow("healthy", steps: [{ name: "fine", handler: "SpecHandlers::Echo" }]) }

  # kind => [error_type, message, retryable]
  {
    "standard_error" => ["RuntimeError", "boom from a plain RuntimeError", true],
    "argument_error" => ["ArgumentError", "the order id is malformed", true],
    "permanent_error" => ["TaskerCore::Errors::PermanentError", "the card was declined", false],
    "not_implemented_error" => ["NotImplementedError", "refunds are not implemented", false],
    "anonymous_exception" => ["Exception (anonymous subclass)", "a non-StandardError escaped", false],
    "exit" => ["SystemExit", "exit", false],
    "nil" => ["invalid_handler_result", /SpecHandlers::Misbehaves for step 'risky' returned NilClass/, false],
    "string" => ["invalid_handler_result", /returned String \("all done"\)/, false],
    "hash_without_success" => ["invalid_handler_result", /returned a Hash without a boolean "success"/, false],
    "proc_in_result" => ["invalid_handler_result",
                         /result for step 'risky' could not be sent to the core \(TypeError: .*Proc is not JSON-like/,
                         false]
  }.each do |kind, (error_type, message, retryable)|
    it "records #{kind} as a #{error_type} failure with its message, and keeps the worker threads alive" do
      worker = start_worker(concurrency: 2)
      uuid = create_task(misbehaving, { "kind" => kind })

      status = wait_for(uuid)
      step = step_of(status, "risky")

      expect(status["status"]).to eq("error")
      expect(step).to include("status" => "error", "attempts" => 1, "result" => nil)
      expect(step["error"]).to include("error_type" => error_type, "message" => message, "retryable" => retryable)
      expect(wait_for(create_task(healthy))["status"]).to eq("complete")
      expect(worker.stats).to include(processor_deaths: 0, replacements: 0)
      expect(worker.stats[:threads]).to all(include(alive: true))
    end
  end

  it "keeps the exception's backtrace with the failure" do
    start_worker(concurrency: 1)
    step = step_of(wait_for(create_task(misbehaving, { "kind" => "standard_error" })), "risky")

    expect(step["error"]["backtrace"]).to include(a_string_matching(%r{spec/support/spec_handlers\.rb:\d+}))
  end

  it "records NotImplementedError for a handler class that does not override #call" do
    ref = define_workflow("no_call", steps: [{ name: "todo", handler: "SpecHandlers::WithoutCall" }])
    start_worker(concurrency: 1)

    step = step_of(wait_for(create_task(ref)), "todo")
    expect(step["error"]).to include("error_type" => "NotImplementedError", "retryable" => false,
                                     "message" => "SpecHandlers::WithoutCall#call(context) is not implemented")
    expect(step["attempts"]).to eq(1)
  end

  it "retries RetryableError and completes when a later attempt succeeds" do
    ref = define_workflow("flaky", steps: [
      { name: "flaky", handler: "SpecHandlers::Flaky", inputs: { "succeed_on" => 3 },
        retry: { max_attempts: 3, backoff_base_ms: 10, max_backoff_ms: 50 } }
    ])
    start_worker(concurrency: 2)

    step = step_of(wait_for(create_task(ref)), "flaky")
    expect(step).to include("status" => "complete", "attempts" => 3, "result" => { "attempt" => 3 }, "error" => nil)
  end

  it "fails the task once RetryableError has used up max_attempts" do
    ref = define_workflow("hopeless", steps: [
      { name: "hopeless", handler: "SpecHandlers::Flaky", retry: { max_attempts: 3, backoff_base_ms: 10 } }
    ])
    start_worker(concurrency: 2)

    status = wait_for(create_task(ref))
    expect(status["status"]).to eq("error")
    expect(step_of(status, "hopeless")).to include("status" => "error", "attempts" => 3)
    expect(step_of(status, "hopeless")["error"]).to include(
      "error_type" => "TaskerCore::Errors::RetryableError", "retryable" => true,
      "message" => "still failing on attempt 3"
    )
  end

  it "does not retry PermanentError even with attempts left" do
    ref = define_workflow("permanent", steps: [
      { name: "risky", handler: "SpecHandlers::Misbehaves", retry: { max_attempts: 5, backoff_base_ms: 10 } }
    ])
    start_worker(concurrency: 1)

    step = step_of(wait_for(create_task(ref, { "kind" => "permanent_error" })), "risky")
    expect(step).to include("status" => "error", "attempts" => 1)
  end

  it "fails a step whose handler class does not exist as non-retryable handler_not_found naming the class" do
    ref = define_workflow("missing", steps: [
      { name: "ghost", handler: "SpecHandlers::NoSuchHandler", retry: { max_attempts: 3 } }
    ])
    start_worker(concurrency: 1)

    status = wait_for(create_task(ref))
    expect(status["status"]).to eq("error")
    expect(step_of(status, "ghost")).to include("status" => "error", "attempts" => 1)
    expect(step_of(status, "ghost")["error"]).to include(
      "error_type" => "handler_not_found", "retryable" => false,
      "message" => /handler class SpecHandlers::NoSuchHandler is not defined/
    )
  end

  it "fails a step whose callable is not a handler class as invalid_handler" do
    ref = define_workflow("not_a_class", steps: [{ name: "odd", handler: "SpecHandlers" }])
    start_worker(concurrency: 1)

    step = step_of(wait_for(create_task(ref)), "odd")
    expect(step["error"]).to include("error_type" => "invalid_handler", "retryable" => false,
                                     "message" => /handler SpecHandlers is a Module, not a class/)
  end

  it "leaves the rest of the DAG unrun when a step fails for good" do
    ref = define_workflow("dag_failure", steps: [
      { name: "first", handler: "SpecHandlers::Misbehaves", retry: { max_attempts: 1 } },
      { name: "second", handler: "SpecHandlers::Echo", dependencies: ["first"] },
      { name: "third", handler: "SpecHandlers::Echo", dependencies: ["second"] }
    ])
    start_worker(concurrency: 2)

    status = wait_for(create_task(ref, { "kind" => "permanent_error" }))
    expect(status["status"]).to eq("error")
    expect(status["steps"].map { |s| s.values_at("name", "status", "attempts") })
      .to eq([["first", "error", 1], ["second", "skipped", 0], ["third", "skipped", 0]])
  end
end
