# frozen_string_literal: true

require "rexml/document"
require "cgi"
require "rack/lint"
require "time"

RSpec.describe "TaskerCore::Web overview, task list, workers and their JSON" do
  include WebHelpers

  # Statuses and counts as the overview's cards show them.
  def status_cards(body)
    body.scan(%r{<span class="card-value" data-stat="tasks\.([a-z_]+)" data-format="int">([\d,]+)</span>})
        .to_h { |status, count| [status, Integer(count.delete(","))] }
  end

  # Task uuids of a page's task table, in order.
  def listed(body)
    body.scan(/<tr data-task="(\h{8}-\h{4}-\h{4}-\h{4}-\h{12})">/).flatten
  end

  describe "GET /" do
    it "shows the tasks by status as TaskerCore.stats counts them, and the other figures" do
      finished = create_task(diamond_workflow)
      run_to_completion(finished)
      running = create_task(diamond_workflow)
      next_event(running) # polled and held: nothing moves while the page and the stats are read
      body = expect_ok(visit("/")).body
      stats = TaskerCore.stats

      expect(status_cards(body)).to eq(%w[pending in_progress complete error cancelled].to_h { |s| [s, stats["tasks"].fetch(s, 0)] })
      expect(stats["tasks"]["complete"]).to be >= 1
      %w[steps_in_flight steps_ready steps_waiting_for_retry pending_events waiting_in_dispatch workers_alive].each do |key|
        expect(body).to include(%(data-stat="#{key}" data-format="int">#{stats[key]}<))
      end
      expect(body).to include(%(data-stat="starvation_detected" data-format="flag">#{stats['starvation_detected'] ? 'detected' : 'none'}<))
      expect(body).to include(%(<p class="live" id="live" data-api="/api/stats" data-interval="2000">))
    end

    it "draws the last hour's throughput as an SVG chart of 60 minutes with the failure rate" do
      ok = create_task(diamond_workflow)
      run_to_completion(ok)
      failed = create_task(payment_workflow)
      fail_second_step(failed)
      body = expect_ok(visit("/")).body
      svg = REXML::Document.new(body[%r{<svg class="chart".*?</svg>}m] || raise("no chart"))
      throughput = TaskerCore.stats["throughput"]
      bars = REXML::XPath.match(svg, "//g[@class='chart-bar']")

      expect(throughput.size).to eq(60)
      expect(bars.size).to eq(60)
      latest = throughput.last
      expect(latest["succeeded"]).to be >= 5
      expect(latest["failed"]).to be >= 1
      expect(REXML::XPath.first(bars.last, "title").text).to eq(
        "#{Time.iso8601(latest['minute']).utc.strftime('%H:%M UTC')}: #{latest['succeeded']} succeeded, #{latest['failed']} failed"
      )
      expect(REXML::XPath.first(bars.last, "rect[@class='bar-failed']").attributes["height"].to_f).to be > 0
      with_attempts = throughput.count { |b| (b["succeeded"] + b["failed"]).positive? }
      rate_points = REXML::XPath.first(svg, "//path[@class='rate-line']").attributes["d"].scan(/[ML] [\d.]+ [\d.]+/)
      expect(rate_points.size).to eq(with_attempts + REXML::XPath.first(svg, "//path[@class='rate-line']").attributes["d"].scan("M").size)
      succeeded = throughput.sum { |b| b["succeeded"] }
      failures = throughput.sum { |b| b["failed"] }
      expect(body).to include(%(data-stat="hour.succeeded" data-format="int">#{succeeded.to_s.reverse.scan(/\d{1,3}/).join(',').reverse}<))
      expect(body).to include(%(data-stat="hour.failure_rate" data-format="percent">#{format('%.1f %%', failures * 100.0 / (succeeded + failures))}<))
    end

    it "lists the newest tasks, linked to their pages, with names escaped" do
      uuid = create_task(diamond_workflow, { "note" => WebHelpers::SCRIPT })
      body = expect_ok(visit("/")).body

      expect(listed(body).first).to eq(uuid)
      expect(body).to include(%(<a class="mono" href="/tasks/#{uuid}"))
      expect(body).not_to include(WebHelpers::SCRIPT)
    end
  end

  describe "GET /tasks" do
    let!(:other) { new_template_set(namespace: "web_other") }

    it "lists tasks newest first and filters by status, namespace and name" do
      first = create_task(diamond_workflow)
      run_to_completion(first)
      second = create_task(diamond_workflow)
      ref = other.add("other", steps: [{ name: "only", handler: "SpecHandlers::Echo" }])
      load_templates(other.dir)
      third = create_task(ref)

      expect(listed(expect_ok(visit("/tasks", "name" => diamond_workflow.name)).body)).to eq([second, first])
      expect(listed(visit("/tasks", "name" => diamond_workflow.name, "status" => "complete").body)).to eq([first])
      expect(listed(visit("/tasks", "namespace" => "web_other", "name" => ref.name).body)).to eq([third])
      expect(listed(visit("/tasks", "namespace" => "web_other", "name" => diamond_workflow.name).body)).to eq([])
      expect(last_response.body).to include("No tasks match.")
      expect(last_response.body).to include(%(<option value="complete">complete</option>))
      expect(listed(visit("/tasks").body).first(3)).to eq([third, second, first])
    end

    it "keeps the filters in the form and pages with an exclusive `before` cursor" do
      mounted_at("/tasker", page_size: 2)
      uuids = Array.new(5) { create_task(diamond_workflow) }.reverse
      body = expect_ok(visit("/tasker/tasks", "name" => diamond_workflow.name)).body

      expect(listed(body)).to eq(uuids[0, 2])
      expect(body).to include(%(name="name" value="#{diamond_workflow.name}"))
      older = CGI.unescapeHTML(body[/<a class="button button-quiet" rel="next" href="([^"]+)">/, 1])
      expect(older).to eq("/tasker/tasks?name=#{diamond_workflow.name}&before=#{uuids[1]}")
      body = expect_ok(visit(older)).body
      expect(listed(body)).to eq(uuids[2, 2])
      expect(body).to include(%(href="/tasker/tasks?name=#{diamond_workflow.name}">← Newest</a>))
      last_page = visit(CGI.unescapeHTML(body[/rel="next" href="([^"]+)"/, 1])).body
      expect(listed(last_page)).to eq([uuids[4]])
      expect(last_page).not_to include('rel="next"')
    end

    it "answers 400 naming a bad filter, without asking the core" do
      expect(visit("/tasks", "status" => "finished").status).to eq(400)
      expect(last_response.body).to include("status must be one of pending, in_progress, complete, error, cancelled; " \
                                            "got &quot;finished&quot;")
      expect(visit("/tasks", "before" => "<x>").status).to eq(400)
      expect(last_response.body).to include("before must be a task uuid; got &quot;&lt;x&gt;&quot;")
      expect(visit("/api/tasks", "limit" => "5000").status).to eq(400)
      expect(json_body).to eq("error" => "limit must be an integer from 1 to 200; got \"5000\"", "status" => 400)
      expect(visit("/api/tasks", "status" => %w[a b]).status).to eq(400)
    end
  end

  describe "GET /workers" do
    it "shows this process's worker and, on the embedded backend, says it has only that one" do
      worker_id = TaskerCore::FFI.worker_status["worker_id"]
      body = expect_ok(visit("/workers")).body

      expect(body).to include(%(<tr data-worker="#{worker_id}">))
      expect(body).to include(%(<td class="num mono">#{Process.pid}</td>))
      if CoreHelpers::SPEC_DATABASE_URL
        expect(body).not_to include("Embedded backend.")
      else
        expect(body).to include("Embedded backend.")
      end
    end
  end

  describe "JSON" do
    it "GET /api/stats answers TaskerCore.stats with every documented key" do
      visit("/api/stats")

      expect(last_response.status).to eq(200)
      expect(last_response.content_type).to eq("application/json; charset=utf-8")
      expect(json_body.keys).to include("backend", "tasks", "steps_in_flight", "steps_ready", "steps_waiting_for_retry",
                                        "pending_events", "waiting_in_dispatch", "oldest_waiting_ms",
                                        "starvation_detected", "timeout_lag_ms_p50", "timeout_lag_ms_p99",
                                        "throughput", "workers_alive")
      expect(json_body["backend"]).to eq(CoreHelpers::SPEC_DATABASE_URL ? "postgres" : "embedded")
      expect(json_body["tasks"].keys).to include("pending", "in_progress", "complete", "error", "cancelled")
      expect(json_body["throughput"].size).to eq(60)
      expect(json_body["throughput"].first.keys).to contain_exactly("minute", "succeeded", "failed")
    end

    it "GET /api/tasks answers a page of task summaries and the next cursor, with the same filters" do
      uuids = Array.new(3) { create_task(diamond_workflow) }.reverse
      visit("/api/tasks", "name" => diamond_workflow.name, "limit" => "2")

      expect(last_response.status).to eq(200)
      expect(json_body.keys).to contain_exactly("tasks", "next_before", "limit")
      expect(json_body["tasks"].map { |t| t["task_uuid"] }).to eq(uuids[0, 2])
      expect(json_body["tasks"].first.keys).to include("task_uuid", "status", "namespace", "name", "version",
                                                       "created_at", "completed_at", "priority")
      expect(json_body["next_before"]).to eq(uuids[1])
      visit("/api/tasks", "name" => diamond_workflow.name, "before" => uuids[1])
      expect(json_body).to include("tasks" => [a_hash_including("task_uuid" => uuids[2],
                                                                "status" => TaskerCore.task_status(uuids[2])["status"])],
                                   "next_before" => nil)
    end

    it "GET /api/workers answers TaskerCore.workers" do
      visit("/api/workers")

      expect(last_response.status).to eq(200)
      expect(json_body).to be_an(Array)
      expect(json_body.map { |w| w["worker_id"] }).to include(TaskerCore::FFI.worker_status["worker_id"])
      expect(json_body.first.keys).to include("worker_id", "host", "pid", "started_at", "heartbeat_age_ms", "in_flight",
                                              "concurrency")
    end
  end

  describe "every response" do
    it "carries a strict Content-Security-Policy and the other security headers" do
      uuid = create_task(diamond_workflow)
      ["/tasks/#{uuid}", "/api/tasks/#{uuid}", "/no/such/page", "/tasks?status=bogus"].each do |path|
        headers = visit(path).headers
        expect(headers["content-security-policy"]).to eq(TaskerCore::Web::CONTENT_SECURITY_POLICY)
        expect(headers["content-security-policy"]).to include("script-src 'self'", "default-src 'none'")
        expect(headers["content-security-policy"]).not_to include("unsafe-inline")
        expect(headers).to include("x-content-type-options" => "nosniff", "x-frame-options" => "DENY",
                                   "cache-control" => "no-store")
      end
      expect(last_response.status).to eq(400)
    end

    it "follows the Rack specification (Rack::Lint) for pages, JSON, assets, errors and controls" do
      uuid = create_task(diamond_workflow)
      linted = Rack::MockRequest.new(Rack::Lint.new(TaskerCore::Web.new(secret: WebHelpers::SECRET)))
      answers = ["/tasks/#{uuid}", "/api/tasks/#{uuid}", "/assets/tasker.js", "/tasks?status=bad", "/nowhere"].map do |path|
        linted.get(path).status
      end
      answers << linted.request("HEAD", "/tasks/#{uuid}").status
      answers << linted.post("/tasks/#{uuid}/cancel").status

      expect(answers).to eq([200, 200, 200, 400, 404, 200, 403])
    end

    it "puts no inline script or style on a page" do
      uuid = create_task(payment_workflow)
      fail_second_step(uuid)
      body = expect_ok(visit("/tasks/#{uuid}")).body

      expect(body.scan(/<script\b[^>]*>/)).to eq([%(<script src="/assets/tasker.js?v=#{TaskerCore::Web::Assets.digest('tasker.js')}" defer>)])
      tags = body.scan(/<([a-zA-Z]+)([^>]*)>/)
      attributes = tags.flat_map { |_, rest| rest.scan(/\s([\w:-]+)=(?:"[^"]*"|'[^']*')/).flatten }
      expect(tags.size).to be > 100
      expect(tags.map(&:first)).not_to include("style")
      expect(attributes).to include("class", "href", "data-step")
      expect(attributes.grep(/\A(style|on.*)\z/i)).to eq([])
    end
  end

  describe "GET /assets/:name" do
    it "serves the stylesheet and script from the gem, cached for good under the current digest" do
      visit("/assets/tasker.css", "v" => TaskerCore::Web::Assets.digest("tasker.css"))
      expect(last_response.status).to eq(200)
      expect(last_response.content_type).to eq("text/css; charset=utf-8")
      expect(last_response.body).to eq(File.read(File.join(TaskerCore::Web::Assets::DIR, "tasker.css")))
      expect(last_response.headers["cache-control"]).to eq("public, max-age=31536000, immutable")

      visit("/assets/tasker.js")
      expect(last_response.content_type).to eq("text/javascript; charset=utf-8")
      expect(last_response.body).to include("textContent")
      expect(last_response.headers["cache-control"]).to eq("no-cache")
    end

    it "answers 404 for anything else" do
      expect(visit("/assets/secret.rb").status).to eq(404)
      expect(visit("/assets/..%2Fweb.rb").status).to eq(404)
    end
  end

  it "answers HEAD like GET without a body" do
    uuid = create_task(diamond_workflow)
    head("/tasks/#{uuid}")

    expect(last_response.status).to eq(200)
    expect(last_response.body).to eq("")
    expect(last_response.content_type).to eq("text/html; charset=utf-8")
  end
end
