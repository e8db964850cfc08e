//! Semantics upstream handlers rely on, at the store: every ancestor's result travels
//! with a step's event (parents in `dependency_results`, the rest in
//! `ancestor_results`), and a handler's `retry_after` is the next attempt's delay.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use serde_json::{json, Value};
use tasker_worker::messages::{StepExecutionError, StepExecutionEvent, StepExecutionResult};
use tasker_worker::orchestrator::{RecordOutcome, Store, TaskStatus};
use tasker_worker::template::WorkflowTemplate;

use common::{no_jitter, success_for, template, template_with};

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// cart -> payment -> inventory -> order, plus an unrelated side step.
const CHAIN: &str = "\
name: checkout
namespace_name: shop
version: 1.0.0
steps:
  - name: cart
    handler: { callable: Shop::Cart }
  - name: payment
    handler: { callable: Shop::Payment }
    dependencies: [cart]
  - name: inventory
    handler: { callable: Shop::Inventory }
    dependencies: [payment]
  - name: order
    handler: { callable: Shop::Order }
    dependencies: [inventory, cart]
  - name: side
    handler: { callable: Shop::Side }
";

fn claim_named(store: &mut Store, name: &str) -> StepExecutionEvent {
    let now = Instant::now();
    let mut skipped = Vec::new();
    let found = loop {
        let event = store.claim(now, DEFAULT_TIMEOUT).unwrap_or_else(|| panic!("{name} is not ready"));
        if event.payload.workflow_step.name == name {
            break event;
        }
        skipped.push(event);
    };
    for other in skipped {
        store.record(success_for(&other, json!(null)), now, SystemTime::now());
    }
    found
}

fn names(map: &std::collections::BTreeMap<String, Arc<Value>>) -> Vec<&str> {
    map.keys().map(String::as_str).collect()
}

#[test]
fn every_ancestor_result_reaches_the_event_parents_apart_from_the_rest() {
    let t: Arc<WorkflowTemplate> = Arc::new(template(CHAIN));
    let mut store = Store::with_seed(10, 1);
    store.create_task(Arc::clone(&t), json!({}), SystemTime::now());
    let now = Instant::now();

    let cart = claim_named(&mut store, "cart");
    assert!(cart.payload.ancestor_results.is_empty());
    store.record(success_for(&cart, json!({"total": 124.76})), now, SystemTime::now());

    let payment = claim_named(&mut store, "payment");
    assert_eq!(names(&payment.payload.dependency_results), ["cart"]);
    assert!(payment.payload.ancestor_results.is_empty(), "a parent is not repeated among the ancestors");
    store.record(success_for(&payment, json!({"payment_id": "p-1"})), now, SystemTime::now());

    let inventory = claim_named(&mut store, "inventory");
    assert_eq!(names(&inventory.payload.dependency_results), ["payment"]);
    assert_eq!(names(&inventory.payload.ancestor_results), ["cart"]);
    assert_eq!(*inventory.payload.ancestor_results["cart"], json!({"total": 124.76}));
    store.record(success_for(&inventory, json!([1, 2])), now, SystemTime::now());

    let order = claim_named(&mut store, "order");
    assert_eq!(names(&order.payload.dependency_results), ["cart", "inventory"]);
    assert_eq!(names(&order.payload.ancestor_results), ["payment"], "cart is a parent here, not an ancestor");
    assert_eq!(*order.payload.ancestor_results["payment"], json!({"payment_id": "p-1"}));
    // The side step is no ancestor of anything.
    assert!(!order.payload.ancestor_results.contains_key("side"));
}

#[test]
fn ancestor_results_share_the_stored_value() {
    let t = Arc::new(template(CHAIN));
    let mut store = Store::with_seed(10, 1);
    store.create_task(Arc::clone(&t), json!({}), SystemTime::now());
    let now = Instant::now();
    let cart = claim_named(&mut store, "cart");
    store.record(success_for(&cart, json!({"big": "x".repeat(1000)})), now, SystemTime::now());
    let payment = claim_named(&mut store, "payment");
    store.record(success_for(&payment, json!(1)), now, SystemTime::now());
    let first = claim_named(&mut store, "inventory");
    // Held by the store and by this event: shared, not copied.
    assert!(Arc::strong_count(&first.payload.ancestor_results["cart"]) >= 2);
}

fn failure_after(event: &StepExecutionEvent, retry_after: Option<Duration>) -> StepExecutionResult {
    let mut error = StepExecutionError::new("busy", "RetryableError", true);
    error.retry_after = retry_after;
    error.error_code = Some("BUSY".into());
    error.context = Some(json!({"attempt": event.payload.workflow_step.attempts}));
    StepExecutionResult::failure(error).with_identity(event.identity())
}

const ONE_STEP: &str = "\
name: single
namespace_name: shop
version: 1.0.0
steps:
  - name: only
    handler: { callable: Shop::Only }
";

#[test]
fn retry_after_replaces_the_backoff_for_the_next_attempt() {
    let t = Arc::new(template_with(ONE_STEP, &no_jitter(3, 100, 10_000)));
    let mut store = Store::with_seed(10, 1);
    let task = store.create_task(Arc::clone(&t), json!({}), SystemTime::now());
    let t0 = Instant::now();

    let first = store.claim(t0, DEFAULT_TIMEOUT).unwrap();
    let outcome = store.record(failure_after(&first, Some(Duration::from_secs(5))), t0, SystemTime::now());
    assert_eq!(outcome, RecordOutcome::RetryScheduled { delay: Duration::from_secs(5) });
    assert!(store.claim(t0 + Duration::from_millis(4_999), DEFAULT_TIMEOUT).is_none(), "not before retry_after");
    let second = store.claim(t0 + Duration::from_secs(5), DEFAULT_TIMEOUT).expect("due at retry_after");

    // Without retry_after the policy's backoff applies again (100 ms * 2 after two failures).
    let t1 = t0 + Duration::from_secs(5);
    let outcome = store.record(failure_after(&second, None), t1, SystemTime::now());
    assert_eq!(outcome, RecordOutcome::RetryScheduled { delay: Duration::from_millis(200) });

    // The recorded error keeps the handler's code and context.
    let view = store.task_status(&task).unwrap();
    let error = view.steps[0].error.clone().unwrap();
    assert_eq!(error.error_code.as_deref(), Some("BUSY"));
    assert_eq!(error.context, Some(json!({"attempt": 2})));
    assert_eq!(view.status, TaskStatus::InProgress.as_str());
}

#[test]
fn retry_after_is_capped_at_a_day() {
    let t = Arc::new(template_with(ONE_STEP, &no_jitter(3, 100, 10_000)));
    let mut store = Store::with_seed(10, 1);
    store.create_task(Arc::clone(&t), json!({}), SystemTime::now());
    let now = Instant::now();
    let first = store.claim(now, DEFAULT_TIMEOUT).unwrap();
    let outcome = store.record(failure_after(&first, Some(Duration::from_secs(90 * 86_400))), now, SystemTime::now());
    assert_eq!(outcome, RecordOutcome::RetryScheduled { delay: Duration::from_secs(86_400) });
}

#[test]
fn retry_after_never_makes_a_permanent_failure_retry() {
    let t = Arc::new(template_with(ONE_STEP, &no_jitter(3, 100, 10_000)));
    let mut store = Store::with_seed(10, 1);
    store.create_task(Arc::clone(&t), json!({}), SystemTime::now());
    let now = Instant::now();
    let first = store.claim(now, DEFAULT_TIMEOUT).unwrap();
    let mut error = StepExecutionError::new("bad card", "PermanentError", false);
    error.retry_after = Some(Duration::from_secs(1));
    let outcome =
        store.record(StepExecutionResult::failure(error).with_identity(first.identity()), now, SystemTime::now());
    assert_eq!(outcome, RecordOutcome::Failed);
}
