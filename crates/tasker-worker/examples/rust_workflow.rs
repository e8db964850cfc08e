//! A Rust program using the tasker core with Rust step handlers: an order-fulfilment
//! workflow (a DAG of five steps) run for 1000 orders on the embedded system.
//!
//! ```text
//! cargo run --release -p tasker-worker --example rust_workflow [-- ORDERS]
//! ```
//!
//! `validate_order` fans out to `reserve_inventory` and `charge_payment` (whose gateway
//! is flaky and gets retried with backoff), both join into `ship_order`, which is
//! followed by `send_confirmation`. Every 250th order has no items and fails validation
//! for good, so the summary shows both outcomes.

use std::error::Error;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tasker_worker::{
    compile, parse_yaml, HandlerError, HandlerRegistry, NewTask, System, TaskSequenceStep, TaskStatus, TaskerConfig,
    WaitOutcome,
};

const TEMPLATE: &str = "\
name: order_fulfillment
namespace_name: ecommerce
version: 1.0.0
description: validate, reserve and charge in parallel, ship, confirm
steps:
  - name: validate_order
    handler: { callable: Ecommerce::ValidateOrder }
    retry: { retryable: false, max_attempts: 1 }
  - name: reserve_inventory
    handler: { callable: Ecommerce::ReserveInventory }
    dependencies: [validate_order]
  - name: charge_payment
    handler: { callable: Ecommerce::ChargePayment }
    dependencies: [validate_order]
    retry: { max_attempts: 6, backoff_base_ms: 5, max_backoff_ms: 100 }
    timeout_seconds: 5
  - name: ship_order
    handler: { callable: Ecommerce::ShipOrder }
    dependencies: [reserve_inventory, charge_payment]
  - name: send_confirmation
    handler: { callable: Ecommerce::SendConfirmation }
    dependencies: [ship_order]
";

/// Share of payment attempts the pretend gateway turns away.
const GATEWAY_FLAKE_RATE: f64 = 0.1;

fn main() -> Result<(), Box<dyn Error>> {
    let orders: usize = match std::env::args().nth(1) {
        Some(arg) => arg.parse().map_err(|e| format!("ORDERS must be a whole number, got {arg:?}: {e}"))?,
        None => 1000,
    };

    let config = TaskerConfig::default();
    let dispatch = config.mpsc_channels.worker.handler_dispatch.clone();
    let system = System::embedded(config.clone(), "example")?;
    let template = compile(parse_yaml(TEMPLATE, None)?, &config.orchestration.default_retry, None)?;
    system.register_template(template)?;

    let worker = system.start_rust_worker(dispatch.clone(), handlers())?;
    println!(
        "worker {} started: {} handlers at once, {} ms default deadline",
        worker.worker_id(),
        dispatch.max_concurrent_handlers,
        dispatch.handler_timeout_ms
    );

    let started = Instant::now();
    let mut tasks = Vec::with_capacity(orders);
    for id in 0..orders {
        let task = NewTask::new("ecommerce", "order_fulfillment", order(id));
        let created = system.run_blocking(system.create_task(task), None).ok_or("create_task was cancelled")??;
        tasks.push(created.task_uuid);
    }

    let (mut complete, mut failed) = (0usize, 0usize);
    let mut first_failure: Option<String> = None;
    for task in &tasks {
        match system.wait_for_task_blocking(*task, Duration::from_secs(120), &|| false)? {
            WaitOutcome::Finished(view) if view.status == TaskStatus::Complete => complete += 1,
            WaitOutcome::Finished(view) => {
                failed += 1;
                if first_failure.is_none() {
                    first_failure = view.steps.iter().find_map(|s| {
                        s.error.as_ref().map(|e| format!("{}: {} ({})", s.name, e.message, e.error_type))
                    });
                }
            }
            other => return Err(format!("task {task} did not finish: {other:?}").into()),
        }
    }
    let wall = started.elapsed();

    let stats = system.counters().snapshot();
    system.stop_worker(Duration::from_secs(5));

    println!("tasks:   {orders} created, {complete} complete, {failed} error");
    if let Some(failure) = first_failure {
        println!("         first error: {failure}");
    }
    println!(
        "steps:   {} dispatched, {} succeeded, {} failed attempts, {} retries",
        stats.steps_dispatched, stats.steps_succeeded, stats.step_failures, stats.retries_scheduled
    );
    println!(
        "time:    {:.3} s wall, {:.0} steps/s, {:.0} tasks/s",
        wall.as_secs_f64(),
        stats.steps_dispatched as f64 / wall.as_secs_f64(),
        orders as f64 / wall.as_secs_f64()
    );
    Ok(())
}

/// The context of order `id`: a few items, and none at all for every 250th order.
fn order(id: usize) -> Value {
    let items: Vec<Value> = if id % 250 == 249 {
        Vec::new()
    } else {
        (0..(id % 3 + 1))
            .map(|i| json!({ "sku": format!("SKU-{:04}", (id * 7 + i) % 1000), "qty": i + 1, "price_cents": 499 + 100 * i }))
            .collect()
    };
    json!({ "order": { "id": id, "email": format!("customer{id}@example.com"), "items": items } })
}

fn handlers() -> HandlerRegistry {
    let mut registry = HandlerRegistry::new();
    registry
        .register("Ecommerce::ValidateOrder", |step: TaskSequenceStep| async move { validate_order(&step) })
        .register("Ecommerce::ReserveInventory", |step: TaskSequenceStep| async move { reserve_inventory(&step) })
        .register("Ecommerce::ChargePayment", |step: TaskSequenceStep| async move {
            // A pretend network call to the payment gateway.
            tokio::time::sleep(Duration::from_millis(1)).await;
            charge_payment(&step)
        })
        .register("Ecommerce::ShipOrder", |step: TaskSequenceStep| async move { ship_order(&step) })
        .register("Ecommerce::SendConfirmation", |step: TaskSequenceStep| async move { send_confirmation(&step) });
    registry
}

fn order_of(step: &TaskSequenceStep) -> &Value {
    &step.task.context["order"]
}

fn parent<'a>(step: &'a TaskSequenceStep, name: &str) -> Result<&'a Value, HandlerError> {
    step.dependency_results
        .get(name)
        .map(|v| v.as_ref())
        .ok_or_else(|| HandlerError::permanent(format!("step {} has no result from {name}", step.workflow_step.name)))
}

fn validate_order(step: &TaskSequenceStep) -> Result<Value, HandlerError> {
    let order = order_of(step);
    let items = order["items"].as_array().map(Vec::as_slice).unwrap_or_default();
    if items.is_empty() {
        return Err(HandlerError::Permanent {
            message: format!("order {} has no items", order["id"]),
            error_type: "InvalidOrder".into(),
        });
    }
    let total: u64 =
        items.iter().map(|i| i["qty"].as_u64().unwrap_or(0) * i["price_cents"].as_u64().unwrap_or(0)).sum();
    Ok(json!({ "order_id": order["id"], "item_count": items.len(), "total_cents": total }))
}

fn reserve_inventory(step: &TaskSequenceStep) -> Result<Value, HandlerError> {
    let validated = parent(step, "validate_order")?;
    Ok(json!({ "reserved_items": validated["item_count"], "warehouse": "north" }))
}

fn charge_payment(step: &TaskSequenceStep) -> Result<Value, HandlerError> {
    if fastrand::f64() < GATEWAY_FLAKE_RATE {
        return Err(HandlerError::retryable(format!(
            "payment gateway busy (attempt {} of {})",
            step.workflow_step.attempts, step.workflow_step.max_attempts
        )));
    }
    let validated = parent(step, "validate_order")?;
    Ok(json!({ "charged_cents": validated["total_cents"], "attempt": step.workflow_step.attempts }))
}

fn ship_order(step: &TaskSequenceStep) -> Result<Value, HandlerError> {
    let reserved = parent(step, "reserve_inventory")?;
    let charged = parent(step, "charge_payment")?;
    let id = order_of(step)["id"].as_u64().unwrap_or(0);
    Ok(json!({
        "tracking": format!("TRK{id:08}"),
        "items": reserved["reserved_items"],
        "paid_cents": charged["charged_cents"],
    }))
}

fn send_confirmation(step: &TaskSequenceStep) -> Result<Value, HandlerError> {
    let shipped = parent(step, "ship_order")?;
    Ok(json!({ "sent_to": order_of(step)["email"], "tracking": shipped["tracking"] }))
}
