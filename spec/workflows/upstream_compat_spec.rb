# frozen_string_literal: true

require "securerandom"

# Handlers written here in upstream tasker-core's style: call(context), its readers,
# StepHandlerCallResult, Symbol-keyed results read back with Symbols, keyword errors.
module CompatSpecHandlers
  class ValidateCart < TaskerCore::StepHandler::Base
    def call(context)
      items = context.get_input("cart_items")
      total = items.sum { |item| item[:price] * item[:quantity] }
      TaskerCore::Types::StepHandlerCallResult.success(
        result: { validated_items: items.map { |i| { sku: i[:sku], quantity: i[:quantity] } }, total: total,
                  big: context.task.context[:big] * 2 }
      )
    end
  end

  class ChargePayment < TaskerCore::StepHandler::Base
    def call(context)
      cart = context.get_dependency_result("validate_cart")
      success(result: { payment_id: "pay-1", amount: cart[:total] })
    end
  end

  # Reads its grandparent (validate_cart) as upstream handlers do.
  class UpdateInventory < TaskerCore::StepHandler::Base
    def call(context)
      items = context.get_dependency_field("validate_cart", :validated_items)
      paid = context.get_dependency_result(:charge_payment)[:amount]
      success(result: { reserved: items.sum { |i| i[:quantity] }, paid: paid,
                        big: context.get_dependency_field("validate_cart", :big) + 1,
                        nothing: context.get_dependency_result("no_such_step") })
    end
  end

  class Declined < TaskerCore::StepHandler::Base
    def call(_context)
      raise TaskerCore::Errors::PermanentError.new("card declined", error_code: "CARD_DECLINED",
                                                                    context: { card: "visa", attempt: 1 })
    end
  end

  # Fails its first attempt asking for a short retry_after, then succeeds.
  class BusyOnce < TaskerCore::StepHandler::Base
    def call(context)
      if context.retry_count.zero?
        raise TaskerCore::Errors::RetryableError.new("busy", retry_after: 0.2, context: { queue: 9 })
      end

      success(result: { attempt: context.workflow_step.attempts })
    end
  end

  class AlwaysBusy < TaskerCore::StepHandler::Base
    def call(_context)
      raise TaskerCore::Errors::RetryableError.new("still busy")
    end
  end

  class Typo < TaskerCore::StepHandler::Base
    def call(_context)
      raise TaskerCore::Errors::PermanentError.new("no such customer", eror_code: "NO_CUSTOMER")
    end
  end
end

RSpec.describe "Upstream tasker-core workflows" do
  let(:suffix) { SecureRandom.hex(4) }
  let(:checkout) { "checkout_#{suffix}" }

  # An upstream-style template (written for this spec): documentation data, an input
  # schema, null system_dependency, backoff shapes and `test` environment overrides.
  def checkout_yaml(name)
    <<~YAML
      ---
      name: #{name}
      namespace_name: compat_shop
      version: 1.0.0
      description: "cart, payment, inventory"
      metadata:
        author: Compat Spec
        tags: [pattern:linear]
        documentation_url:
        created_at: "2026-01-01T00:00:00Z"
        notes: "written for the spec"
      task_handler:
        callable: CompatSpecHandlers::Checkout
      system_dependencies:
        primary: default
        secondary: [inventory_service]
      domain_events:
        - name: order_paid
      input_schema:
        type: object
        required: [cart_items, big]
        properties:
          cart_items:
            type: array
            items:
              type: object
              required: [sku, quantity, price]
              properties:
                quantity: { type: integer, minimum: 1 }
          big: { type: integer }
      steps:
        - name: validate_cart
          handler:
            callable: CompatSpecHandlers::ValidateCart
          system_dependency:
          dependencies: []
          retry: { retryable: true, max_attempts: 3, backoff: exponential, backoff_base_ms: 100, max_backoff_ms: 1000 }
          timeout_seconds: 30
          publishes_events: []
        - name: charge_payment
          handler:
            callable: CompatSpecHandlers::ChargePayment
          dependencies: [validate_cart]
          retry: { backoff: fibonacci, max_attempts: 2 }
          publishes_events: [order_paid]
        - name: update_inventory
          handler:
            callable: CompatSpecHandlers::UpdateInventory
          system_dependency: inventory_service
          dependencies: [charge_payment]
          retry: { backoff: linear }
      environments:
        test:
          steps:
            - name: validate_cart
              timeout_seconds: 7
            - name: ALL
              retry: { max_attempts: 2 }
        production:
          steps:
            - name: validate_cart
              timeout_seconds: 99
    YAML
  end

  def single_step_yaml(name, callable, retry_yaml)
    <<~YAML
      name: #{name}
      namespace_name: compat_errors
      version: 1.0.0
      metadata: { author: Compat Spec }
      system_dependencies: { primary: default, secondary: [] }
      domain_events: []
      steps:
        - name: only
          handler: { callable: #{callable} }
          system_dependency:
          dependencies: []
          retry: #{retry_yaml}
          timeout_seconds: 5
          publishes_events: []
    YAML
  end

  let(:context) do
    { cart_items: [{ sku: "A-1", quantity: 2, price: 10 }, { sku: "B-2", quantity: 1, price: 5 }],
      big: 2**70 }
  end

  before do
    templates.write_raw("#{checkout}.yaml", checkout_yaml(checkout))
    load_templates(templates.dir)
    start_worker(concurrency: 2)
  end

  def run(namespace, name, task_context)
    uuid = track_task(TaskerCore.create_task(namespace: namespace, name: name, context: task_context))
    TaskerCore.wait_for_task(uuid, timeout: 10)
  end

  def single(name, callable, retry_yaml)
    templates.write_raw("#{name}.yaml", single_step_yaml(name, callable, retry_yaml))
    load_templates(templates.dir)
    run("compat_errors", name, {})
  end

  it "runs an upstream-style workflow: ancestors by name, Symbol keys, Integers beyond 64 bits" do
    status = run("compat_shop", checkout, context)

    expect(status["status"]).to eq("complete"), status.inspect
    results = status["steps"].to_h { |s| [s["name"], s["result"]] }
    expect(results["validate_cart"]).to include("total" => 25, "big" => 2**71)
    expect(results["charge_payment"]).to eq("payment_id" => "pay-1", "amount" => 25)
    expect(results["update_inventory"]).to eq("reserved" => 3, "paid" => 25, "big" => (2**71) + 1, "nothing" => nil)
  end

  it "refuses a context that breaks input_schema, naming the path and the rule" do
    bad = context.merge(cart_items: [{ sku: "A-1", quantity: 0, price: 10 }])
    expect { TaskerCore.create_task(namespace: "compat_shop", name: checkout, context: bad) }
      .to raise_error(TaskerCore::Errors::InvalidContextError, %r{/cart_items/0/quantity \(rule `minimum`\)})
    expect { TaskerCore.create_task(namespace: "compat_shop", name: checkout, context: { cart_items: [] }) }
      .to raise_error(TaskerCore::Errors::InvalidContextError, /rule `required`.*big/)
  end

  it "lists templates with their metadata, dependencies, events, schema and the test overrides applied" do
    template = TaskerCore.templates.find { |t| t["name"] == checkout }

    expect(template).to include("namespace" => "compat_shop", "version" => "1.0.0", "environment" => "test",
                                "description" => "cart, payment, inventory")
    expect(template["metadata"]).to include("author" => "Compat Spec", "tags" => ["pattern:linear"],
                                            "notes" => "written for the spec")
    expect(template["system_dependencies"]).to eq("primary" => "default", "secondary" => ["inventory_service"])
    expect(template["domain_events"]).to eq([{ "name" => "order_paid", "description" => nil, "schema" => nil }])
    expect(template["input_schema"]["required"]).to eq(%w[cart_items big])
    expect(template["task_handler"]["callable"]).to eq("CompatSpecHandlers::Checkout")
    steps = template["steps"].to_h { |s| [s["name"], s] }
    expect(steps["validate_cart"]["timeout_seconds"]).to eq(7.0)
    expect(steps["validate_cart"]["system_dependency"]).to be_nil
    expect(steps["charge_payment"]["publishes_events"]).to eq(["order_paid"])
    expect(steps["update_inventory"]["system_dependency"]).to eq("inventory_service")
    expect(steps.values.map { |s| s["retry"]["max_attempts"] }).to eq([2, 2, 2])
    expect(steps.values.map { |s| s["retry"]["backoff"] }).to eq(%w[exponential fibonacci linear])
  end

  it "records a PermanentError's error_code and context in task_status, with one attempt" do
    status = single("declined_#{suffix}", "CompatSpecHandlers::Declined", "{ max_attempts: 3 }")

    step = step_of(status, "only")
    expect(step).to include("status" => "error", "attempts" => 1)
    expect(step["error"]).to include("message" => "card declined", "retryable" => false,
                                     "error_code" => "CARD_DECLINED", "context" => { "card" => "visa", "attempt" => 1 })
  end

  it "waits a RetryableError's retry_after instead of the backoff before the next attempt" do
    # A backoff of a minute would outlast the wait below; retry_after (0.2 s) is used instead.
    status = single("busy_#{suffix}", "CompatSpecHandlers::BusyOnce",
                    "{ max_attempts: 2, backoff_base_ms: 60000, max_backoff_ms: 60000 }")

    expect(status["status"]).to eq("complete"), status.inspect
    expect(step_of(status, "only")).to include("attempts" => 2, "result" => { "attempt" => 2 })
  end

  it "runs a step with max_attempts: 0 exactly once" do
    status = single("once_#{suffix}", "CompatSpecHandlers::AlwaysBusy", "{ retryable: true, max_attempts: 0 }")

    expect(step_of(status, "only")).to include("status" => "error", "attempts" => 1, "max_attempts" => 1)
    expect(step_of(status, "only")["error"]["retryable"]).to be(true)
  end

  it "fails a mistyped error keyword permanently instead of retrying it" do
    status = single("typo_#{suffix}", "CompatSpecHandlers::Typo", "{ max_attempts: 3 }")

    step = step_of(status, "only")
    expect(step).to include("status" => "error", "attempts" => 1)
    expect(step["error"]).to include("error_type" => "invalid_error_arguments", "retryable" => false)
    expect(step["error"]["message"]).to include("eror_code", "no such customer")
  end
end
