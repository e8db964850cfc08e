//! Semantics upstream handlers rely on, at the embedded store: every ancestor's result
//! travels with a step's event (parents in `dependency_results`, the rest in
//! `ancestor_results`, shared), and a handler's `retry_after`, `error_code` and `context`
//! are kept and used.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use serde_json::{json, Value};
use tasker_worker::rules::AttemptDecision;
use tasker_worker::{
    MemoryLimits, MemoryState, NewTask, StepExecutionError, StepExecutionEvent, StepExecutionResult, WorkflowTemplate,
};

use common::{no_jitter, success_for, template, template_with};

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// cart -> payment -> inventory -> order (which also waits for cart), plus a side step.
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

fn state_with(template: &Arc<WorkflowTemplate>) -> MemoryState {
    let mut state = MemoryState::with_seed(MemoryLimits::default(), 1);
    let task = NewTask::new(template.namespace.clone(), template.name.clone(), json!({}));
    state.create_task(Arc::clone(template), task, Instant::now(), SystemTime::now()).unwrap();
    state
}

/// Claims until the step named `name` comes; others are completed with null.
fn claim_named(state: &mut MemoryState, name: &str) -> StepExecutionEvent {
    for _ in 0..20 {
        let mut out = Vec::new();
        state.claim(Instant::now(), SystemTime::now(), 1, DEFAULT_TIMEOUT, &mut out);
        let event = out.pop().unwrap_or_else(|| panic!("{name} is not ready"));
        if event.payload.workflow_step.name == name {
            return event;
        }
        state.record(success_for(&event, json!(null)), Instant::now(), SystemTime::now());
    }
    panic!("{name} never came")
}

fn ok(state: &mut MemoryState, event: &StepExecutionEvent, value: Value) {
    assert!(!state.record(success_for(event, value), Instant::now(), SystemTime::now()).is_stale());
}

fn names(map: &std::collections::BTreeMap<String, Arc<Value>>) -> Vec<&str> {
    map.keys().map(String::as_str).collect()
}

#[test]
fn every_ancestor_result_reaches_the_event_parents_apart_from_the_rest() {
    let t = Arc::new(template(CHAIN));
    let mut state = state_with(&t);

    let cart = claim_named(&mut state, "cart");
    assert!(cart.payload.ancestor_results.is_empty());
    ok(&mut state, &cart, json!({"total": 124.76}));

    let payment = claim_named(&mut state, "payment");
    assert_eq!(names(&payment.payload.dependency_results), ["cart"]);
    assert!(payment.payload.ancestor_results.is_empty(), "a parent is not repeated among the ancestors");
    ok(&mut state, &payment, json!({"payment_id": "p-1"}));

    let inventory = claim_named(&mut state, "inventory");
    assert_eq!(names(&inventory.payload.dependency_results), ["payment"]);
    assert_eq!(names(&inventory.payload.ancestor_results), ["cart"]);
    assert_eq!(*inventory.payload.ancestor_results["cart"], json!({"total": 124.76}));
    // Shared with the store, not copied.
    assert!(Arc::strong_count(&inventory.payload.ancestor_results["cart"]) >= 2);
    ok(&mut state, &inventory, json!([1, 2]));

    let order = claim_named(&mut state, "order");
    assert_eq!(names(&order.payload.dependency_results), ["cart", "inventory"]);
    assert_eq!(names(&order.payload.ancestor_results), ["payment"], "cart is a parent here, not an ancestor");
    assert!(!order.payload.ancestor_results.contains_key("side"));
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
fn retry_after_replaces_the_backoff_and_the_error_keeps_code_and_context() {
    let t = Arc::new(template_with(ONE_STEP, &no_jitter(3, 60_000, 60_000)));
    let mut state = state_with(&t);
    let t0 = Instant::now();
    let mut out = Vec::new();
    state.claim(t0, SystemTime::now(), 1, DEFAULT_TIMEOUT, &mut out);
    let first = out.pop().unwrap();
    let mut error = StepExecutionError::new("busy", "RetryableError", true);
    error.retry_after = Some(Duration::from_millis(200));
    error.error_code = Some("BUSY".into());
    error.context = Some(json!({"queue": 9}));
    let outcome =
        state.record(StepExecutionResult::failure(error).with_identity(first.identity()), t0, SystemTime::now());
    assert_eq!(outcome.decision(), Some(AttemptDecision::Retry { delay: Duration::from_millis(200) }));
    let view = state.task_status(&first.task_uuid).unwrap();
    let recorded = view.steps[0].error.clone().unwrap();
    assert_eq!(recorded.error_code.as_deref(), Some("BUSY"));
    assert_eq!(recorded.context, Some(json!({"queue": 9})));
}
