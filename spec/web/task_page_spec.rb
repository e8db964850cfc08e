# frozen_string_literal: true

require "rexml/document"

RSpec.describe "TaskerCore::Web task page and task JSON (GET /tasks/:uuid, /api/tasks/:uuid)" do
  include WebHelpers

  # The task page's DAG as an XML document (the SVG must be well-formed on its own).
  def dag_svg(body)
    svg = body[%r{<svg class="dag".*?</svg>}m] or raise "no DAG SVG on the page"
    REXML::Document.new(svg)
  end

  def nodes(doc)
    REXML::XPath.match(doc, "//g[@data-step]").to_h do |g|
      rect = REXML::XPath.first(g, "rect")
      [g.attributes["data-step"], { "class" => g.attributes["class"], "x" => rect.attributes["x"].to_f,
                                    "y" => rect.attributes["y"].to_f, "title" => REXML::XPath.first(g, "title").text }]
    end
  end

  def edges(doc)
    REXML::XPath.match(doc, "//path[@class='dag-edge']").map { |p| [p.attributes["data-from"], p.attributes["data-to"]] }
  end

  it "draws one SVG node per step, coloured by the step's status" do
    uuid = create_task(diamond_workflow)
    complete_ok(next_event(uuid))
    # Completions are recorded asynchronously.
    wait_until("fetch is recorded complete") { step_of(TaskerCore::FFI.task_status(uuid), "fetch")["status"] == "complete" }
    visit("/tasks/#{uuid}")

    expect_ok
    drawn = nodes(dag_svg(last_response.body))
    expect(drawn.keys).to eq(%w[fetch left right join])
    expect(drawn["fetch"]["class"]).to eq("dag-node status-complete")
    expect(drawn.values_at("left", "right").map { |n| n["class"] }).to all(match(/\Adag-node status-(enqueued|in_progress|pending)\z/))
    expect(drawn["join"]["class"]).to eq("dag-node status-pending")
    run_to_completion(uuid)
    expect(nodes(dag_svg(visit("/tasks/#{uuid}").body)).values.map { |n| n["class"] }.uniq).to eq(["dag-node status-complete"])
  end

  it "draws an edge per dependency and lays the steps out by depth" do
    uuid = create_task(diamond_workflow)
    run_to_completion(uuid)
    doc = dag_svg(expect_ok(visit("/tasks/#{uuid}")).body)
    drawn = nodes(doc)

    expect(edges(doc)).to contain_exactly(%w[fetch left], %w[fetch right], %w[left join], %w[right join])
    expect(drawn["fetch"]["x"]).to be < drawn["left"]["x"]
    expect(drawn["left"]["x"]).to eq(drawn["right"]["x"])
    expect(drawn["left"]["y"]).not_to eq(drawn["right"]["y"])
    expect(drawn["join"]["x"]).to be > drawn["right"]["x"]
  end

  it "lists every step with its status, attempts and result, and links the nodes to the steps" do
    uuid = create_task(diamond_workflow)
    run_to_completion(uuid)
    body = expect_ok(visit("/tasks/#{uuid}")).body

    %w[fetch left right join].each_with_index do |name, index|
      expect(body).to match(%r{<tr id="step-#{index + 1}" data-step="#{name}">\s*<td><a href="#step-#{index + 1}-detail">#{name}</a>})
      expect(body).to include(%(<a href="#step-#{index + 1}" class="dag-link">))
    end
    expect(body.scan(%r{<td class="num">1 / 3</td>}).size).to eq(4)
    expect(body).to include("&quot;step&quot;: &quot;join&quot;")
    expect(body).to include("&quot;note&quot;: &quot;&lt;b&gt;bold&lt;/b&gt;&quot;")
    expect(body).not_to include("<b>bold</b>")
  end

  it "shows a failed step's error message, type and backtrace escaped, in the table and in the SVG" do
    uuid = create_task(payment_workflow)
    status = fail_second_step(uuid)
    body = expect_ok(visit("/tasks/#{uuid}")).body
    escaped = "&lt;script&gt;alert(&#39;xss&#39;)&lt;/script&gt;"

    expect(status["status"]).to eq("error")
    expect(body).not_to include(WebHelpers::SCRIPT)
    expect(body).not_to include("<img src=x")
    expect(body).to include(%(<p class="error-message">#{escaped}</p>))
    expect(body).to include(%(<span class="error-type">&lt;img src=x onerror=alert(1)&gt;</span>))
    expect(body).to include("app/handlers/#{escaped}.rb:12:in `call&#39;\nlib/worker.rb:3")
    expect(body).to include("not retryable")
    charge = nodes(dag_svg(body))["charge"]
    expect(charge["class"]).to eq("dag-node status-error")
    expect(charge["title"]).to eq("charge: error (<img src=x onerror=alert(1)>: #{WebHelpers::SCRIPT})")
    expect(body[%r{<svg class="dag".*?</svg>}m]).to include("&lt;script&gt;alert(&#39;xss&#39;)&lt;/script&gt;")
  end

  it "escapes step names inside the SVG, its attributes and the tables" do
    uuid = create_task(payment_workflow)
    fail_second_step(uuid)
    body = expect_ok(visit("/tasks/#{uuid}")).body
    name = WebHelpers::MARKUP_STEP

    expect(body).not_to include(name)
    expect(body).not_to include("<b onmouseover")
    expect(nodes(dag_svg(body)).keys).to include(name)
    expect(body).to include(%(data-step="notify &quot;ops&quot; &lt;b onmouseover=alert(1)&gt;now&lt;/b&gt;"))
  end

  it "escapes the task's context" do
    uuid = create_task(diamond_workflow, { "note" => WebHelpers::SCRIPT, "attr" => %("><svg onload=alert(1)>) })
    body = expect_ok(visit("/tasks/#{uuid}")).body

    expect(body).not_to include(WebHelpers::SCRIPT)
    expect(body).not_to include("<svg onload")
    expect(body).to include("&quot;note&quot;: &quot;&lt;script&gt;alert(&#39;xss&#39;)&lt;/script&gt;&quot;")
    expect(body).to include("&quot;attr&quot;: &quot;\\&quot;&gt;&lt;svg onload=alert(1)&gt;&quot;")
  end

  it "offers cancel (with a reason) for an unfinished task and retry for a failed one, each with a CSRF field" do
    running = create_task(diamond_workflow)
    body = expect_ok(visit("/tasks/#{running}")).body
    expect(body).to include(%(<form method="post" action="/tasks/#{running}/cancel"))
    expect(body).to include(%(name="reason"))
    expect(body).not_to include("/retry")
    expect(body).to match(/<input type="hidden" name="_csrf" value="[^"]+--\h{64}">/)

    failed = create_task(payment_workflow)
    fail_second_step(failed)
    body = expect_ok(visit("/tasks/#{failed}")).body
    expect(body).to include(%(<form method="post" action="/tasks/#{failed}/retry"))
    expect(body).not_to include("/cancel")
  end

  it "answers 404 for an unknown task and for a path that is not a task uuid" do
    unknown = SecureRandom.uuid
    visit("/tasks/#{unknown}")
    expect(last_response.status).to eq(404)
    expect(last_response.body).to include(unknown)

    expect(visit("/tasks/not-a-uuid").status).to eq(404)
    expect(visit("/api/tasks/#{unknown}").status).to eq(404)
    expect(json_body).to include("status" => 404, "error" => a_string_including(unknown))
  end

  it "serves the task as JSON, exactly what TaskerCore.task_status returns" do
    uuid = create_task(diamond_workflow, { "n" => 1 })
    run_to_completion(uuid)
    visit("/api/tasks/#{uuid}")

    expect(last_response.status).to eq(200)
    expect(last_response.content_type).to eq("application/json; charset=utf-8")
    expect(json_body).to eq(TaskerCore.task_status(uuid))
    expect(json_body).to include("task_uuid" => uuid, "status" => "complete", "namespace" => diamond_workflow.namespace,
                                 "name" => diamond_workflow.name, "version" => "1.0.0")
    expect(json_body["steps"].map { |s| s.values_at("name", "status", "attempts") })
      .to eq([["fetch", "complete", 1], ["left", "complete", 1], ["right", "complete", 1], ["join", "complete", 1]])
  end

  it "has the task JSON carry the fields the pages show (dependencies, history, context, priority)" do
    uuid = create_task(diamond_workflow, { "n" => 1 })
    run_to_completion(uuid)
    task = JSON.parse(visit("/api/tasks/#{uuid}").body)

    expect(task).to include("context" => { "n" => 1 }, "priority" => 0, "cancel_reason" => nil)
    join = task["steps"].find { |step| step["name"] == "join" }
    expect(join["dependencies"]).to eq(%w[left right])
    expect(join["history"].size).to eq(1)
    expect(join["history"].first).to include("attempt" => 1, "outcome" => "success")
    expect(join["history"].first["duration_ms"]).to be >= 0
  end

  context "when mounted under a prefix" do
    before { mounted_at("/tasker") }

    it "starts every link, form action and asset URL with the mount point" do
      uuid = create_task(diamond_workflow)
      body = expect_ok(visit("/tasker/tasks/#{uuid}")).body
      urls = body.scan(/(?:href|src|action)="([^"]*)"/).flatten

      expect(urls).not_to be_empty
      expect(urls.reject { |url| url.start_with?("#") }).to all(start_with("/tasker/"))
      expect(urls).to include("/tasker/tasks/#{uuid}/cancel", "/tasker/api/tasks/#{uuid}", "/tasker/tasks", "/tasker/")
      expect(body).to match(%r{<link rel="stylesheet" href="/tasker/assets/tasker\.css\?v=\h{12}">})
      expect(body).to match(%r{<script src="/tasker/assets/tasker\.js\?v=\h{12}" defer></script>})
      expect(last_response.headers["set-cookie"]).to include("path=/tasker;")
    end
  end
end
