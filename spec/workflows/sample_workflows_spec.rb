# frozen_string_literal: true

require "securerandom"

# The sample workflows of config/templates, run end to end by TaskerCore::Worker with
# the demo handlers (lib/tasker_core/demo/handlers.rb).
RSpec.describe "The sample workflows" do
  let(:number) { rand(-50..500) }
  let(:order) do
    {
      "id" => "ORD-#{SecureRandom.hex(3)}",
      "customer_email" => "buyer@example.com",
      "items" => [
        { "sku" => "SKU-#{rand(100..999)}", "quantity" => rand(1..4), "price" => rand(100..9999) / 100.0 },
        { "sku" => "SKU-#{rand(100..999)}", "quantity" => rand(1..4), "price" => rand(100..9999) / 100.0 }
      ]
    }
  end

  before do
    load_templates(sample_templates_dir)
    start_worker(concurrency: 4)
  end

  def run_task(namespace, name, context)
    uuid = track_task(TaskerCore.create_task(namespace: namespace, name: name, context: context))
    TaskerCore.wait_for_task(uuid, timeout: 10)
  end

  def results(status)
    status["steps"].to_h { |step| [step["name"], step["result"]] }
  end

  def expect_complete(status)
    expect(status["status"]).to eq("complete"), "task failed: #{status.inspect}"
    expect(status["steps"]).to all(include("status" => "complete", "attempts" => 1, "error" => nil))
  end

  it "linear_workflow computes 6n + 26 through its chain" do
    status = run_task("demo", "linear_workflow", { "number" => number })

    expect_complete(status)
    expect(results(status)).to eq(
      "double_number" => 2 * number, "add_ten" => (2 * number) + 10, "triple_number" => ((2 * number) + 10) * 3,
      "subtract_four" => (6 * number) + 26
    )
  end

  it "diamond_workflow computes 8n + 3 by joining two branches" do
    status = run_task("demo", "diamond_workflow", { "number" => number })

    expect_complete(status)
    expect(results(status)).to eq("start" => 2 * number, "left" => (2 * number) + 3, "right" => 6 * number,
                                  "join" => (8 * number) + 3)
  end

  it "tree_workflow computes 20n + 15 from four leaves" do
    status = run_task("demo", "tree_workflow", { "number" => number })

    expect_complete(status)
    expect(results(status)["merge"]).to eq((20 * number) + 15)
    expect(results(status)).to include("root" => 2 * number, "left_branch" => (2 * number) + 1,
                                       "right_leaf_triple" => ((2 * number) + 2) * 3)
  end

  it "mixed_dag_workflow computes 3i² + 7i + 7 with i = n + 1" do
    status = run_task("demo", "mixed_dag_workflow", { "number" => number })
    i = number + 1

    expect_complete(status)
    expect(results(status)).to eq(
      "init" => i, "double" => 2 * i, "triple" => 3 * i, "offset" => (2 * i) + 7,
      "combine" => (2 * i) + (3 * i) + (2 * i) + 7, "scale" => 3 * i * i, "finalize" => (3 * i * i) + (7 * i) + 7
    )
  end

  it "runs the four arithmetic workflows side by side" do
    uuids = %w[linear_workflow diamond_workflow tree_workflow mixed_dag_workflow].flat_map do |name|
      Array.new(5) { |k| [name, k, track_task(TaskerCore.create_task(namespace: "demo", name: name,
                                                                      context: { "number" => number + k }))] }
    end
    finals = uuids.map do |name, k, uuid|
      status = TaskerCore.wait_for_task(uuid, timeout: 10)
      n = number + k
      i = n + 1
      expected = { "linear_workflow" => (6 * n) + 26, "diamond_workflow" => (8 * n) + 3,
                   "tree_workflow" => (20 * n) + 15, "mixed_dag_workflow" => (3 * i * i) + (7 * i) + 7 }
      [status["status"], status["steps"].last["result"], expected.fetch(name)]
    end

    expect(finals.map(&:first)).to all(eq("complete"))
    expect(finals.map { |_, got, want| got == want }).to all(be(true))
  end

  describe "order_fulfillment" do
    it "validates, reserves and charges (after one gateway timeout), then ships with a tracking number" do
      status = run_task("ecommerce", "order_fulfillment", { "order" => order })
      total = order["items"].sum { |item| item["quantity"] * item["price"] }.round(2)
      item_count = order["items"].sum { |item| item["quantity"] }

      expect(status["status"]).to eq("complete")
      steps = status["steps"].to_h { |step| [step["name"], step] }
      expect(steps["validate_order"]["result"]).to eq("order_id" => order["id"], "item_count" => item_count,
                                                      "total" => total)
      expect(steps["reserve_inventory"]["result"]).to eq("reserved" => item_count,
                                                         "skus" => order["items"].map { |i| i["sku"] })
      expect(steps["process_payment"]).to include("status" => "complete", "attempts" => 2, "error" => nil,
                                                  "result" => { "charged" => total, "attempt" => 2 })
      expect(steps["ship_order"]["result"]).to eq("shipped" => true, "order_id" => order["id"],
                                                  "carrier" => "demo-post", "tracking_number" => "TRACK-#{order['id']}")
      expect(steps.values_at("validate_order", "reserve_inventory", "ship_order").map { |s| s["attempts"] })
        .to eq([1, 1, 1])
    end

    it "fails an order without items at validate_order and never runs the later steps" do
      order["items"] = []
      status = run_task("ecommerce", "order_fulfillment", { "order" => order })

      expect(status["status"]).to eq("error")
      validate = step_of(status, "validate_order")
      expect(validate).to include("status" => "error", "attempts" => 1, "result" => nil)
      expect(validate["error"]).to include("message" => "order #{order['id'].inspect} has no items",
                                           "error_type" => "InvalidOrder", "retryable" => false)
      %w[reserve_inventory process_payment ship_order].each do |name|
        expect(step_of(status, name)).to include("status" => "skipped", "attempts" => 0, "result" => nil,
                                                 "error" => nil)
      end
    end

    it "fails an order with a non-positive quantity, naming the item" do
      order["items"][1]["quantity"] = 0
      status = run_task("ecommerce", "order_fulfillment", { "order" => order })

      expect(step_of(status, "validate_order")["error"]["message"])
        .to eq("item #{order['items'][1]['sku'].inspect} has quantity 0")
    end

    it "ends in error when the payment step may not retry (max_attempts: 1)" do
      source = YAML.safe_load(File.read(File.join(sample_templates_dir, "order_fulfillment.yaml")))
      source["name"] = "order_fulfillment_no_retry_#{SecureRandom.hex(3)}"
      source["steps"].find { |s| s["name"] == "process_payment" }["retry"]["max_attempts"] = 1
      File.write(File.join(templates.dir, "no_retry.yaml"), YAML.dump(source))
      load_templates(templates.dir)

      status = run_task("ecommerce", source["name"], { "order" => order })

      expect(status["status"]).to eq("error")
      expect(step_of(status, "process_payment")).to include("status" => "error", "attempts" => 1)
      expect(step_of(status, "process_payment")["error"]).to include(
        "message" => "payment gateway timeout", "error_type" => "TaskerCore::Errors::RetryableError",
        "retryable" => true
      )
      expect(step_of(status, "validate_order")["status"]).to eq("complete")
      expect(step_of(status, "ship_order")).to include("status" => "skipped", "attempts" => 0)
    end
  end
end
