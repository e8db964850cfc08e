# frozen_string_literal: true

require "securerandom"

RSpec.describe "TaskerCore::FFI.complete_step_event" do
  let(:ffi) { TaskerCore::FFI }
  let(:workflow) do
    define_workflow("complete", steps: [{ name: "only", handler: "SpecHandlers::Echo", retry: { max_attempts: 2 } }])
  end

  def polled_event
    next_event(create_task(workflow))
  end

  it "returns true and records the result" do
    event = polled_event

    expect(ffi.complete_step_event(event["event_id"], "success" => true, "result" => { "n" => [1, 2.5, "x", nil] }))
      .to be(true)
    status = wait_for(event["task_uuid"])
    expect(status["status"]).to eq("complete")
    expect(step_of(status, "only")).to include("status" => "complete", "attempts" => 1,
                                               "result" => { "n" => [1, 2.5, "x", nil] }, "error" => nil)
  end

  it "accepts symbol keys anywhere and stores them as Strings" do
    event = polled_event

    expect(ffi.complete_step_event(event["event_id"], { success: true, result: { a: 1, b: :sym },
                                                        metadata: { execution_time_ms: 3, custom: { k: :v } } }))
      .to be(true)
    expect(step_of(wait_for(event["task_uuid"]), "only")["result"]).to eq("a" => 1, "b" => "sym")
  end

  it "returns false for an event id nobody handed out, and counts it" do
    before = metrics["total_rejected_completions"]

    expect(ffi.complete_step_event(SecureRandom.uuid, success_result(1))).to be(false)
    expect(metrics["total_rejected_completions"]).to eq(before + 1)
  end

  it "returns false for a second completion of the same event" do
    event = polled_event
    complete_ok(event, 1)

    expect(ffi.complete_step_event(event["event_id"], success_result(2))).to be(false)
    expect(step_of(wait_for(event["task_uuid"]), "only")["result"]).to eq(1)
  end

  it "returns false for an event the core timed out, counts it as late, and retries the step" do
    restart_core # fresh metrics
    ref = define_workflow("deadline", steps: [
      { name: "slow", handler: "SpecHandlers::Echo", timeout_seconds: 0.2, retry: { max_attempts: 3, backoff_base_ms: 10 } }
    ])
    uuid = create_task(ref)
    event = next_event(uuid)
    polled_at = monotonic

    wait_until("the core times the event out") { !ffi.event_pending?(event["event_id"]) }
    expect(monotonic - polled_at).to be_between(0.15, 2.0)
    expect(metrics).to include("total_timed_out" => 1, "pending_count" => 0)
    error = wait_until("the timeout is recorded") { step_of(ffi.task_status(uuid), "slow")["error"] }
    expect(error).to include(
      "error_type" => "handler_timeout", "retryable" => true, "message" => /step 'slow' exceeded its deadline of 200 ms/
    )

    expect(ffi.complete_step_event(event["event_id"], success_result("late"))).to be(false)
    expect(metrics).to include("late_completions" => 1, "total_rejected_completions" => 1, "total_completed" => 0)

    retry_event = next_event(uuid)
    expect(retry_event["step_uuid"]).to eq(event["step_uuid"])
    expect(event_attempts(retry_event)).to eq(2)
    complete_ok(retry_event, "on time")
    expect(step_of(wait_for(uuid), "slow")).to include("status" => "complete", "attempts" => 2, "result" => "on time")
  end

  it "keeps the result a handler gives with a failure intact in task_status" do
    event = polled_event
    message = "card ✗ declined: \"insufficient funds\"\nsecond line\ttab — #{'x' * 2000}"
    failure = { "success" => false,
                "error" => { "message" => message, "error_type" => "PaymentDeclined", "retryable" => false,
                             "backtrace" => ["app/payment.rb:10:in `charge'", "app/worker.rb:3"] },
                "metadata" => { "retryable" => false, "custom" => { "gateway" => "x" } } }

    expect(ffi.complete_step_event(event["event_id"], failure)).to be(true)
    status = wait_for(event["task_uuid"])
    expect(status["status"]).to eq("error")
    expect(step_of(status, "only")).to include("status" => "error", "attempts" => 1)
    expect(step_of(status, "only")["error"]).to eq(
      "message" => message, "error_type" => "PaymentDeclined", "retryable" => false,
      "backtrace" => ["app/payment.rb:10:in `charge'", "app/worker.rb:3"], "error_code" => nil, "context" => nil
    )
  end

  it "defaults a failure's error_type to StepFailure and retryable to true" do
    event = polled_event
    expect(ffi.complete_step_event(event["event_id"], { success: false, error: { message: "nope" } })).to be(true)

    retry_event = next_event(event["task_uuid"])
    expect(event_attempts(retry_event)).to eq(2)
    expect(step_of(ffi.task_status(event["task_uuid"]), "only")["error"])
      .to include("message" => "nope", "error_type" => "StepFailure", "retryable" => true)
    complete_ok(retry_event)
  end

  deep = ->(levels) { (1..levels).reduce(1) { |inner, _| [inner] } }
  self_key = ->(key) { Regexp.escape(key) }

  {
    "an Integer event id" => [-> { 42 }, -> { { "success" => true } }, TypeError, /event_id must be a String/],
    "a nil event id" => [-> { nil }, -> { { "success" => true } }, TypeError, /event_id must be a String.*NilClass/],
    "a malformed event id" => [-> { "not-a-uuid" }, -> { { "success" => true } }, ArgumentError,
                               /event_id is not a UUID: "not-a-uuid"/],
    "a nil result" => [nil, -> { nil }, TypeError, /result must be a Hash.*NilClass/],
    "a String result" => [nil, -> { "ok" }, TypeError, /result must be a Hash.*String/],
    "an Array result" => [nil, -> { [true] }, TypeError, /result must be a Hash.*Array/],
    "a result without success" => [nil, -> { { "result" => 1 } }, ArgumentError,
                                   /missing required key "success"/],
    "success \"true\"" => [nil, -> { { "success" => "true" } }, TypeError,
                           /result\["success"\] must be true or false, got String/],
    "success 1" => [nil, -> { { "success" => 1 } }, TypeError, /result\["success"\] must be true or false, got Integer/],
    "a failure without error" => [nil, -> { { "success" => false } }, ArgumentError, /needs "error"/],
    "an error without message" => [nil, -> { { "success" => false, "error" => { "error_type" => "X" } } },
                                   ArgumentError, /result\["error"\]: missing required key "message"/],
    "an error that is not a Hash" => [nil, -> { { "success" => false, "error" => "boom" } }, TypeError,
                                      /result\["error"\] must be a Hash/],
    "an error on a success" => [nil, -> { { "success" => true, "error" => { "message" => "x" } } }, ArgumentError,
                                /"error" is only allowed when "success" is false/],
    "an unknown top-level key" => [nil, -> { { "success" => true, "reslt" => 1 } }, ArgumentError,
                                   /result: unknown key "reslt" \(allowed: success, result, metadata, error\)/],
    "an unknown metadata key" => [nil, -> { { "success" => true, "metadata" => { "elapsed" => 1 } } }, ArgumentError,
                                  /result\["metadata"\]: unknown key "elapsed"/],
    "an unknown error key" => [nil, -> { { "success" => false, "error" => { "message" => "m", "code" => 7 } } },
                               ArgumentError, /result\["error"\]: unknown key "code"/],
    "a metadata that is not a Hash" => [nil, -> { { "success" => true, "metadata" => [] } }, TypeError,
                                        /result\["metadata"\] must be a Hash/],
    "a negative execution_time_ms" => [nil, -> { { "success" => true, "metadata" => { "execution_time_ms" => -1 } } },
                                       ArgumentError, /execution_time_ms.*non-negative/],
    "an Object in the result" => [nil, -> { { "success" => true, "result" => { "a" => [Object.new] } } }, TypeError,
                                  /#{self_key.call('result["result"]["a"][0]')}: Object is not JSON-like/],
    "a Proc in the result" => [nil, -> { { "success" => true, "result" => { "cb" => proc {} } } }, TypeError,
                               /#{self_key.call('result["result"]["cb"]')}: Proc is not JSON-like/],
    "NaN in the result" => [nil, -> { { "success" => true, "result" => { "x" => Float::NAN } } }, ArgumentError,
                            /#{self_key.call('result["result"]["x"]')}: NaN is not a JSON number/],
    "Infinity in the result" => [nil, -> { { "success" => true, "result" => [-Float::INFINITY] } }, ArgumentError,
                                 /#{self_key.call('result["result"][0]')}: -inf is not a JSON number/],
    "an Integer Hash key in the result" => [nil, -> { { "success" => true, "result" => { 1 => "one" } } }, TypeError,
                                            /result\["result"\]: Hash keys must be Strings or Symbols, got Integer/],
    "an Object in metadata custom" => [nil, -> { { "success" => true, "metadata" => { "custom" => { "t" => Time.now } } } },
                                       TypeError, /#{self_key.call('result["metadata"]["custom"]["t"]')}: Time/],
    "200 levels of nesting" => [nil, -> { { "success" => true, "result" => deep.call(200) } }, ArgumentError,
                                /\Aresult\["result"\](\[0\]){4}\.\.\.\(57 levels\)\.\.\.(\[0\]){4}: nested deeper than 64 levels\z/],
    "the same key as a Symbol and a String" => [nil, -> { { "success" => true, "result" => { a: 1, "a" => 2 } } },
                                                 ArgumentError, /result\["result"\]: the key "a" appears twice/],
    "a 40 MB string" => [nil, -> { { "success" => true, "result" => "x" * (40 * 1024 * 1024) } }, ArgumentError,
                         /result\["result"\]: value is too large/],
    "a non-UTF-8 string" => [nil, -> { { "success" => true, "result" => "\xFF\xFE".b.force_encoding("UTF-8") } },
                             ArgumentError, /result\["result"\]: string is not valid UTF-8/]
  }.each do |what, (event_id, result, error, message)|
    it "raises #{error} for #{what}, leaving the event pending and completable" do
      event = polled_event
      id = event_id ? event_id.call : event["event_id"]

      expect { ffi.complete_step_event(id, result.call) }.to raise_error(error, message)
      expect(ffi.event_pending?(event["event_id"])).to be(true)
      expect(ffi.complete_step_event(event["event_id"], success_result("fine"))).to be(true)
      expect(step_of(wait_for(event["task_uuid"]), "only")).to include("status" => "complete", "result" => "fine")
    end
  end

  it "names an offending key deep inside nested Arrays and Hashes" do
    event = polled_event
    result = { success: true, result: { "orders" => [{ "lines" => [1, { "price" => Float::NAN }] }] } }

    expect { ffi.complete_step_event(event["event_id"], result) }
      .to raise_error(ArgumentError, /\Aresult\["result"\]\["orders"\]\[0\]\["lines"\]\[1\]\["price"\]: NaN/)
    complete_ok(event)
  end

  it "accepts 64 levels of nesting and a 1 MB string" do
    event = polled_event
    nested = (1..60).reduce("leaf") { |inner, _| { "n" => inner } }

    expect(ffi.complete_step_event(event["event_id"], success_result([nested, "y" * 1_000_000]))).to be(true)
    result = step_of(wait_for(event["task_uuid"]), "only")["result"]
    expect(result[1].bytesize).to eq(1_000_000)
    expect((1..60).reduce(result[0]) { |inner, _| inner.fetch("n") }).to eq("leaf")
  end

  it "answers false (not an error) while no worker runs, and event_pending? is false" do
    event = polled_event
    ffi.stop_worker

    expect(ffi.complete_step_event(event["event_id"], success_result(1))).to be(false)
    expect(ffi.event_pending?(event["event_id"])).to be(false)
  end

  it "event_pending? checks its argument like complete_step_event" do
    expect { ffi.event_pending?(1) }.to raise_error(TypeError, /event_id must be a String/)
    expect { ffi.event_pending?("zzz") }.to raise_error(ArgumentError, /event_id is not a UUID/)
    expect(ffi.event_pending?(SecureRandom.uuid)).to be(false)
  end
end
