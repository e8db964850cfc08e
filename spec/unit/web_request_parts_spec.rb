# frozen_string_literal: true

require_relative "unit_helper"
require "tasker_core/web"

RSpec.describe TaskerCore::Web::TaskQuery do
  def query(params, default_limit: 25)
    described_class.from_params(params, default_limit: default_limit)
  end

  it "reads the filters, trims them and asks the source for one task more than a page" do
    q = query({ "status" => "error", "namespace" => " shop ", "name" => "checkout",
                "before" => "0BDB3902-A75F-433E-BC5B-3685762C45AE", "limit" => "10" })

    expect(q.source_arguments).to eq(status: "error", namespace: "shop", name: "checkout",
                                     before: "0bdb3902-a75f-433e-bc5b-3685762c45ae", limit: 11)
    expect(q.filter_params).to eq("status" => "error", "namespace" => "shop", "name" => "checkout")
    expect(q).to be_filtered
  end

  it "treats blank parameters as absent and uses the default page size" do
    q = query({ "status" => "", "namespace" => "  ", "limit" => "" })

    expect(q.source_arguments).to eq(status: nil, namespace: nil, name: nil, before: nil, limit: 26)
    expect(q).not_to be_filtered
  end

  it "splits the source's answer into the page and the cursor of the older page" do
    q = query({ "limit" => "2" })
    rows = [{ "task_uuid" => "a" }, { "task_uuid" => "b" }, { "task_uuid" => "c" }]

    expect(q.page(rows)).to eq([rows.first(2), "b"])
    expect(q.page(rows.first(2))).to eq([rows.first(2), nil])
    expect(q.page(nil)).to eq([[], nil])
  end

  {
    { "status" => "done" } => /status must be one of pending, in_progress, complete, error, cancelled; got "done"/,
    { "name" => "x" * 201 } => /name must be at most 200 characters/,
    { "before" => "yesterday" } => /before must be a task uuid; got "yesterday"/,
    { "limit" => "0" } => /limit must be an integer from 1 to 200; got "0"/,
    { "limit" => "2.5" } => /limit must be an integer/,
    { "namespace" => %w[a b] } => /filters take one value each/
  }.each do |params, message|
    it "refuses #{params.inspect}" do
      expect { query(params) }.to raise_error(TaskerCore::Web::BadRequest, message)
    end
  end
end

RSpec.describe TaskerCore::Web::CsrfGuard do
  let(:guard) { described_class.new(secret: "0123456789abcdef-secret") }

  def request(cookie: nil, field: nil, header: nil)
    env = Rack::MockRequest.env_for("/tasks/x/cancel", method: "POST", params: field ? { "_csrf" => field } : {})
    env["HTTP_COOKIE"] = "tasker_csrf=#{cookie}" if cookie
    env["HTTP_X_CSRF_TOKEN"] = header if header
    Rack::Request.new(env)
  end

  it "mints a signed token when the request has none, and keeps a valid one" do
    token = guard.token_for(request)

    expect(token).to match(/\A[\w-]{32}--\h{64}\z/)
    expect(guard.token_for(request(cookie: token))).to eq(token)
    expect(guard.token_for(request(cookie: "forged--#{'0' * 64}"))).not_to eq("forged--#{'0' * 64}")
  end

  it "accepts a POST whose field or header equals its valid cookie, and nothing else" do
    token = guard.token_for(request)
    other = guard.token_for(request)
    foreign = described_class.new(secret: "another-secret-of-16+").token_for(request)

    expect(guard.valid?(request(cookie: token, field: token))).to be(true)
    expect(guard.valid?(request(cookie: token, header: token))).to be(true)
    expect(guard.valid?(request(cookie: token))).to be(false)
    expect(guard.valid?(request(field: token))).to be(false)
    expect(guard.valid?(request(cookie: token, field: other))).to be(false)
    expect(guard.valid?(request(cookie: foreign, field: foreign))).to be(false)
    expect(guard.valid?(request(cookie: "x", field: "x"))).to be(false)
  end

  it "sets an HttpOnly, SameSite=Strict cookie scoped to the mount point, only when needed" do
    token = guard.token_for(request)
    env = Rack::MockRequest.env_for("/tasker/tasks", "SCRIPT_NAME" => "/tasker")
    response = Rack::Response.new
    guard.issue(Rack::Request.new(env), response, token)

    expect(response.get_header("set-cookie")).to eq("tasker_csrf=#{token}; path=/tasker; HttpOnly; SameSite=Strict")
    again = Rack::Response.new
    guard.issue(request(cookie: token), again, token)
    expect(again.get_header("set-cookie")).to be_nil
  end

  it "refuses a short secret" do
    expect { described_class.new(secret: "short") }.to raise_error(ArgumentError, /at least 16 bytes/)
  end
end

RSpec.describe TaskerCore::Web::Router do
  let(:router) { described_class.new }
  let(:uuid) { "0bdb3902-a75f-433e-bc5b-3685762c45ae" }

  it "routes every page, control, API and asset path, HEAD as GET, with or without a trailing slash" do
    expect(router.match("GET", "").action).to eq(:overview)
    expect(router.match("HEAD", "/tasks/").action).to eq(:tasks)
    expect(router.match("GET", "/tasks/#{uuid.upcase}").to_h).to eq(action: :task, params: { "uuid" => uuid })
    expect(router.match("POST", "/tasks/#{uuid}/retry").action).to eq(:retry_task)
    expect(router.match("POST", "/tasks/#{uuid}/cancel").action).to eq(:cancel_task)
    expect(%w[/api/stats /api/tasks /api/workers /workers].map { |p| router.match("GET", p).action })
      .to eq(%i[api_stats api_tasks api_workers workers])
    expect(router.match("GET", "/api/tasks/#{uuid}").action).to eq(:api_task)
    expect(router.match("GET", "/assets/tasker.css").params).to eq("name" => "tasker.css")
  end

  it "answers the allowed methods for a known path and nil for an unknown one" do
    expect(router.match("GET", "/tasks/#{uuid}/cancel")).to eq(["POST"])
    expect(router.match("DELETE", "/tasks")).to eq(["GET"])
    expect(router.match("GET", "/tasks/123")).to be_nil
    expect(router.match("GET", "/assets/../web.rb")).to be_nil
  end
end

RSpec.describe TaskerCore::Web do
  it "refuses a bad refresh interval or page size" do
    expect { described_class.new(refresh_seconds: 0) }.to raise_error(ArgumentError, /refresh_seconds must be a positive number/)
    expect { described_class.new(page_size: 500) }.to raise_error(ArgumentError, /page_size must be an Integer from 1 to 200/)
  end

  it "answers 503 naming the missing function when the core lacks it" do
    core = Module.new
    def core.name = "FakeCore"
    app = described_class.new(source: TaskerCore::Web::Source.new(core: core), secret: "0123456789abcdef-secret")
    response = Rack::MockRequest.new(app).get("/api/stats")

    expect(response.status).to eq(503)
    expect(JSON.parse(response.body)["error"]).to start_with("FakeCore.stats is not available in this build")
  end
end
