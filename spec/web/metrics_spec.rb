# frozen_string_literal: true

RSpec.describe "TaskerCore::Web GET /metrics on the real core" do
  include WebHelpers

  # fetch -> charge (retryable, 3 attempts) -> ship (a short deadline, no retry). fetch's
  # deadline is long: an example holds its event while it scrapes, and on a loaded machine
  # the test environment's 5 s default expired it once (the completion was then refused).
  def shop_workflow
    @shop_workflow ||= define_workflow("web_metrics_shop", steps: [
                                         { name: "fetch", handler: "SpecHandlers::Echo", timeout_seconds: 60 },
                                         { name: "charge", handler: "SpecHandlers::Echo", dependencies: ["fetch"],
                                           retry: { retryable: true, max_attempts: 3, backoff_base_ms: 10,
                                                    max_backoff_ms: 20 } },
                                         { name: "ship", handler: "SpecHandlers::Echo", dependencies: ["charge"],
                                           retry: { retryable: true, max_attempts: 1 }, timeout_seconds: 0.5 }
                                       ])
  end

  def failure(retryable:)
    { "success" => false,
      "error" => { "message" => "card declined", "error_type" => "CardDeclined", "retryable" => retryable } }
  end

  def fail_event(event, retryable:)
    raise "the core refused the failure" unless TaskerCore::FFI.complete_step_event(event["event_id"], failure(retryable: retryable))
  end

  def scrape
    expect_ok(visit("/metrics"))
    PrometheusText.parse(last_response.body)
  end

  def step_labels(step)
    { "namespace" => shop_workflow.namespace, "task" => shop_workflow.name, "step" => step }
  end

  def attempts(text, step, outcome)
    text.value("tasker_step_attempts_total", step_labels(step).merge("outcome" => outcome))
  end

  # Counters the whole process shares (other examples ran before): this example's share.
  def process_counters(text)
    { created: text.value("tasker_tasks_created_total"),
      complete: text.value("tasker_tasks_finished_total", "status" => "complete"),
      error: text.value("tasker_tasks_finished_total", "status" => "error"),
      retries: text.value("tasker_step_retries_total") }
  end

  it "counts tasks and attempts by step and outcome after tasks succeed, fail, retry and time out" do
    before = process_counters(scrape)

    succeeded = create_task(shop_workflow)
    run_to_completion(succeeded)

    retried = create_task(shop_workflow)
    complete_ok(next_event(retried))
    fail_event(next_event(retried), retryable: true)
    second_charge = next_event(retried)
    expect(event_attempts(second_charge)).to eq(2)
    complete_ok(second_charge)
    complete_ok(next_event(retried))
    expect(wait_for(retried)["status"]).to eq("complete")

    failed = create_task(shop_workflow)
    complete_ok(next_event(failed))
    fail_event(next_event(failed), retryable: false)
    expect(wait_for(failed)["status"]).to eq("error")

    timed_out = create_task(shop_workflow)
    complete_ok(next_event(timed_out))
    complete_ok(next_event(timed_out))
    next_event(timed_out) # ship: polled and never answered; the core fails it at its deadline
    expect(wait_for(timed_out)["status"]).to eq("error")

    # Counted once the completion path has recorded each batch.
    text = wait_until("the timed-out attempt is counted") do
      scraped = scrape
      scraped if attempts(scraped, "ship", "timeout") == 1
    end

    expected = {
      # step => success, failure, timeout, worker_lost, worker_shutdown
      "fetch" => [4, 0, 0, 0, 0],
      "charge" => [3, 2, 0, 0, 0],
      "ship" => [2, 0, 1, 0, 0]
    }
    expected.each do |step, counts|
      %w[success failure timeout worker_lost worker_shutdown].zip(counts).each do |outcome, count|
        expect(attempts(text, step, outcome)).to eq(count), "#{step} #{outcome}"
      end
    end
    expect(text.matching("tasker_step_attempts_total", "task" => shop_workflow.name).size).to eq(15)

    after = process_counters(text)
    expect(after.to_h { |key, value| [key, value - before.fetch(key)] })
      .to eq(created: 4, complete: 2, error: 2, retries: 1)

    # A duration for every answered attempt (the FFI channel stamps it); none for the
    # timed-out one. A queue wait for every poll.
    { "fetch" => [4, 4], "charge" => [5, 5], "ship" => [2, 3] }.each do |step, (durations, waits)|
      expect(text.value("tasker_step_duration_seconds_count", step_labels(step))).to eq(durations), step
      expect(text.value("tasker_step_queue_wait_seconds_count", step_labels(step))).to eq(waits), step
      bounds = text.buckets("tasker_step_duration_seconds", step_labels(step)).map(&:first)
      expect(bounds).to eq([0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300,
                            Float::INFINITY])
    end
    expect(text.types).to include("tasker_step_attempts_total" => "counter",
                                  "tasker_tasks_finished_total" => "counter",
                                  "tasker_step_duration_seconds" => "histogram",
                                  "tasker_step_queue_wait_seconds" => "histogram",
                                  "tasker_steps_in_flight" => "gauge", "tasker_pending_events" => "gauge",
                                  "tasker_workers_alive" => "gauge")
    expect(last_response.body).not_to include(succeeded)
  end

  it "shows the events a Ruby thread holds as in flight and pending, then none" do
    uuid = create_task(shop_workflow)
    held = next_event(uuid)
    text = scrape

    expect(text.value("tasker_worker_running")).to eq(1)
    expect(text.value("tasker_pending_events")).to eq(1)
    expect(text.value("tasker_steps_in_flight")).to eq(1)
    expect(text.value("tasker_workers_alive")).to eq(1)
    expect(text.value("tasker_store_up")).to eq(1)

    complete_ok(held)
    run_to_completion(uuid)
    text = wait_until("nothing is in flight") do
      scraped = scrape
      scraped if scraped.value("tasker_steps_in_flight").zero?
    end
    expect(text.value("tasker_pending_events")).to eq(0)
  end

  it "answers GET and HEAD with the Prometheus text content type, sets no cookie and refuses POST" do
    expect_ok(visit("/metrics"))
    expect(last_response.headers["content-type"]).to eq("text/plain; version=0.0.4; charset=utf-8")
    expect(TaskerCore::Web::MetricsEndpoint::CONTENT_TYPE).to eq(TaskerCore::FFI::METRICS_CONTENT_TYPE)
    expect(last_response.headers).not_to have_key("set-cookie")
    expect(last_response.headers["cache-control"]).to eq("no-store")

    head "/metrics"
    expect([last_response.status, last_response.body]).to eq([200, ""])

    post "/metrics"
    expect(last_response.status).to eq(405)
    expect(last_response.headers["allow"]).to eq("GET, HEAD")
  end

  it "is served under the mount point and matches TaskerCore.metrics_text" do
    mounted_at("/tasker")
    expect_ok(visit("/tasker/metrics"))

    served = PrometheusText.parse(last_response.body)
    direct = PrometheusText.parse(TaskerCore.metrics_text)
    expect(served.types).to eq(direct.types)
    expect(served.value("tasker_tasks_created_total")).to eq(direct.value("tasker_tasks_created_total"))
  end

  it "is served as the README's metrics-only config.ru writes it" do
    readme = File.read(File.expand_path("../../README.md", __dir__))
    snippet = readme.scan(/^```ruby\n(.*?)^```/m).flatten.find { |block| block.include?('map "/metrics"') }
    expect(snippet).not_to be_nil
    @app = Rack::Builder.new { instance_eval(snippet) }.to_app

    expect_ok(visit("/metrics"))
    expect(last_response.headers["content-type"]).to eq(TaskerCore::FFI::METRICS_CONTENT_TYPE)
    expect(PrometheusText.parse(last_response.body).value("tasker_worker_running")).to eq(1)
  end

  it "passes Rack::Lint" do
    lint = Rack::Lint.new(TaskerCore::Web.new(secret: WebHelpers::SECRET))
    status, headers, body = lint.call(Rack::MockRequest.env_for("/metrics"))
    text = +""
    body.each { |chunk| text << chunk }
    body.close if body.respond_to?(:close)

    expect(status).to eq(200)
    expect(headers["content-type"]).to start_with("text/plain; version=0.0.4")
    expect(PrometheusText.parse(text).value("tasker_worker_running")).to eq(1)
  end
end

RSpec.describe PrometheusText do
  it "reads samples, labels with escapes, and histograms" do
    text = PrometheusText.parse(<<~TEXT)
      # HELP a_total Things.
      # TYPE a_total counter
      a_total{x="say \\"hi\\" \\\\ \\n",y="2"} 3
      # HELP h Seconds.
      # TYPE h histogram
      h_bucket{le="0.5"} 1
      h_bucket{le="+Inf"} 2
      h_sum 1.5
      h_count 2
    TEXT

    expect(text.value("a_total", "x" => "say \"hi\" \\ \n", "y" => "2")).to eq(3)
    expect(text.buckets("h")).to eq([[0.5, 1], [Float::INFINITY, 2]])
  end

  {
    "a sample before its TYPE" => "a 1\n",
    "a counter not named _total" => "# HELP a A.\n# TYPE a counter\na 1\n",
    "a bad escape" => "# HELP a_total A.\n# TYPE a_total counter\na_total{x=\"\\t\"} 1\n",
    "a value that is no float" => "# HELP g G.\n# TYPE g gauge\ng one\n",
    "a split family" => "# HELP g G.\n# TYPE g gauge\n# HELP f F.\n# TYPE f gauge\ng 1\nf 1\ng{a=\"b\"} 2\n",
    "falling buckets" => "# HELP h H.\n# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n",
    "no final newline" => "# HELP g G.\n# TYPE g gauge\ng 1"
  }.each do |what, text|
    it "refuses #{what}" do
      expect { PrometheusText.parse(text) }.to raise_error(PrometheusText::Malformed)
    end
  end
end
