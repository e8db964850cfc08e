# frozen_string_literal: true

require "tasker_core/web/server"

# The dashboard served on 127.0.0.1 and loaded in real headless Chromium: what a user's
# browser renders (the script ran, the live refresh happened), not just the HTML sent.
# Saves a screenshot of each page under tmp/screenshots, or under TASKER_WEB_SCREENSHOTS
# (`rake web:screenshots` writes the README's, docs/images).
RSpec.describe "TaskerCore::Web in headless Chromium" do
  include WebHelpers

  SCREENSHOTS = File.expand_path(ENV.fetch("TASKER_WEB_SCREENSHOTS", "tmp/screenshots"), File.join(__dir__, "../.."))
  CHECKOUT_STEPS = %w[validate_cart reserve_stock charge_card ship_order send_receipt].freeze

  before do
    raise "chromium is missing at #{Chromium::BINARY} (bin/setup installs Debian's chromium)" unless Chromium.available?
  end

  after { @server&.stop }

  # Serves `rack_app` on an ephemeral port of 127.0.0.1.
  # @return [String] the base URL
  def serve(rack_app)
    @server = TaskerCore::Web::Server.new(app: rack_app, port: 0).start
    @server.url
  end

  # A checkout whose payment step always fails for good: validate -> (reserve, charge) -> ship -> receipt.
  def checkout_workflow
    @checkout_workflow ||= define_workflow("checkout", namespace: "shop", steps: [
                                             { name: "validate_cart", handler: "SpecHandlers::Echo" },
                                             { name: "reserve_stock", handler: "SpecHandlers::Echo",
                                               dependencies: ["validate_cart"] },
                                             { name: "charge_card", handler: "SpecHandlers::Misbehaves",
                                               dependencies: ["validate_cart"], retry: { retryable: false } },
                                             { name: "ship_order", handler: "SpecHandlers::Echo",
                                               dependencies: %w[reserve_stock charge_card] },
                                             { name: "send_receipt", handler: "SpecHandlers::Echo",
                                               dependencies: ["ship_order"] }
                                           ])
  end

  # Runs a mix of the sample workflows and failing checkouts on a real worker, to the end.
  # @return [Array<String>] the failed checkouts' uuids
  def run_workload
    checkout_workflow
    load_templates(sample_templates_dir)
    worker = start_worker(concurrency: 4)
    succeeding = Array.new(8) do |n|
      [create_task({ namespace: "demo", name: "mixed_dag_workflow" }, { "number" => n }),
       create_task({ namespace: "ecommerce", name: "order_fulfillment" },
                   { "order" => { "id" => "ORD-#{n}", "customer_email" => "c#{n}@example.com",
                                  "items" => [{ "sku" => "SKU-#{n}", "quantity" => 1 + n, "price" => 9.5 }] } })]
    end.flatten
    failing = Array.new(2) { create_task(checkout_workflow, { "kind" => "permanent_error", "cart" => "<b>cart</b>" }) }
    (succeeding + failing).each { |uuid| wait_for(uuid, timeout: 20) }
    worker.stop(timeout: 5)
    failing
  end

  # Fails with the page's error message when the dashboard answered an error page.
  def rendered!(dom)
    error = dom[%r{<p class="error-box panel">(.*?)</p>}m, 1]
    raise "the dashboard answered an error page: #{error}" if error

    dom
  end

  def screenshot(url, name, height:)
    path = Chromium.screenshot(url, File.join(SCREENSHOTS, "#{name}.png"), width: 1280, height: height)
    expect(File.binread(path, 8)).to eq("\x89PNG\r\n\x1A\n".b)
    expect(File.size(path)).to be > 10_000
  end

  it "renders a task's DAG as SVG with a node per step, its step names and the failed step's error" do
    failed = run_workload.first
    base = serve(TaskerCore::Web.new)
    page = Chromium.load("#{base}tasks/#{failed}")
    dom = rendered!(page.dom)

    svg = dom[%r{<svg class="dag".*?</svg>}m]
    expect(svg).not_to be_nil
    nodes = svg.scan(/<g class="dag-node status-([a-z_]+)" data-step="([^"]+)"/).to_h { |status, name| [name, status] }
    expect(nodes.keys).to eq(CHECKOUT_STEPS)
    expect(nodes.values_at("validate_cart", "charge_card")).to eq(%w[complete error])
    expect(svg.scan("<rect ").size).to eq(CHECKOUT_STEPS.size)
    CHECKOUT_STEPS.each { |name| expect(dom).to include(%(<strong>#{name}</strong>)) }
    expect(dom).to include(%(<p class="error-message">the card was declined</p>))
    expect(dom).to include('<span class="badge status-error">error</span>')
    expect(page.log).not_to match(/Content Security Policy|Refused to|Uncaught/)
    screenshot("#{base}tasks/#{failed}", "task", height: 1500)
  end

  it "shows the task page, its graph and controls with the script blocked" do
    failed = run_workload.first
    web = TaskerCore::Web.new
    # The browser is told to run no script at all (what a user with JavaScript off gets).
    base = serve(lambda do |env|
      status, headers, body = web.call(env)
      headers["content-security-policy"] = headers["content-security-policy"].sub("script-src 'self'", "script-src 'none'")
      [status, headers, body]
    end)
    page = Chromium.load("#{base}tasks/#{failed}")
    dom = rendered!(page.dom)

    expect(page.log).to match(/Loading the script .*tasker\.js.* violates the following Content Security Policy directive: "script-src 'none'"/)
    expect(dom.scan(/<g class="dag-node status-[a-z_]+" data-step="/).size).to eq(CHECKOUT_STEPS.size)
    expect(dom).to include(%(<form method="post" action="/tasks/#{failed}/retry"))
    expect(dom).to match(/<input type="hidden" name="_csrf" value="[^"]+--\h{64}">/)
  end

  it "refreshes the overview's counts live from /api/stats" do
    run_workload
    rendered = nil
    web = TaskerCore::Web.new(refresh_seconds: 0.5)
    # Hands out the overview, then creates a task, so only a refresh can show it.
    base = serve(lambda do |env|
      status, headers, body = web.call(env)
      next [status, headers, body] unless env["PATH_INFO"] == "/" && rendered.nil?

      rendered = +""
      body.each { |chunk| rendered << chunk }
      create_task(diamond_workflow)
      [status, headers, [rendered]]
    end)
    page = Chromium.load(base, budget_ms: 3000)
    dom = rendered!(page.dom)
    cards = lambda do |html|
      html.scan(%r{data-stat="tasks\.([a-z_]+)" data-format="int">([\d,]+)<}).to_h { |s, n| [s, Integer(n.delete(","))] }
    end
    stats = TaskerCore.stats

    expect(dom[/<p class="live on" id="live"[^>]*data-refreshes="(\d+)"/, 1].to_i).to be >= 1
    expect(dom).to include("Live · backend embedded · updated")
    expect(cards.call(dom).values.sum).to eq(cards.call(rendered).values.sum + 1)
    expect(cards.call(dom)).to eq(cards.call(dom).keys.to_h { |s| [s, stats["tasks"].fetch(s, 0)] })
    expect(dom).to include(%(data-stat="workers_alive" data-format="int">#{stats['workers_alive']}<))
    expect(dom.scan('<g class="chart-bar"').size).to eq(60)
    expect(page.log).not_to match(/Content Security Policy|Refused to|Uncaught/)
    screenshot(base, "overview", height: 1180)
  end

  it "renders the task list and the workers page" do
    failed = run_workload
    worker = start_worker(concurrency: 2)
    base = serve(TaskerCore::Web.new)
    list = rendered!(Chromium.dump_dom("#{base}tasks"))
    workers = rendered!(Chromium.dump_dom("#{base}workers"))

    expect(list.scan(/<tr data-task="/).size).to eq(25)
    expect(list).to include(%(<tr data-task="#{failed.last}">))
    expect(list).to include('rel="next"')
    expect(workers).to include(%(<tr data-worker="#{TaskerCore::FFI.worker_status['worker_id']}">), "Embedded backend.")
    screenshot("#{base}tasks", "tasks", height: 1100)
    screenshot("#{base}workers", "workers", height: 520)
    worker.stop(timeout: 5)
  end
end
