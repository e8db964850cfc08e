//! `HandlerDispatchService` on its own: its dispatch channel is fed directly, Rust
//! handlers are closures in a `HandlerRegistry`, and every result is read off the
//! completion channel.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::sync::mpsc;

use common::{assert_quiet, error_of, eventually, recv_result};
use tasker_worker::DispatchHandles;
use tasker_worker::DispatchSlots;
use tasker_worker::{error_types, DispatchHandlerMessage, StepExecutionEvent, StepExecutionResult};
use tasker_worker::{HandlerDispatchHandle, HandlerDispatchService, HandlerError, HandlerRegistry};

const LONG: Duration = Duration::from_secs(60);

struct Harness {
    handle: Option<HandlerDispatchHandle>,
    dispatch_tx: mpsc::Sender<DispatchHandlerMessage>,
    completions: mpsc::Receiver<StepExecutionResult>,
    slots: DispatchSlots,
}

fn start(registry: HandlerRegistry, max_concurrent_handlers: usize) -> Harness {
    let (dispatch_tx, dispatch_receiver) = mpsc::channel(256);
    let (completion_sender, completions) = mpsc::channel(256);
    let handle = HandlerDispatchService::new(
        DispatchHandles { dispatch_receiver, completion_sender },
        registry,
        max_concurrent_handlers,
    )
    .spawn(&tokio::runtime::Handle::current());
    Harness { handle: Some(handle), dispatch_tx, completions, slots: DispatchSlots::new(256) }
}

impl Harness {
    async fn dispatch(&self, callable: &str, timeout: Duration) -> StepExecutionEvent {
        let event = common::event_with_callable(callable, timeout);
        let slot = self.slots.try_acquire().expect("a free slot");
        self.dispatch_tx
            .send(DispatchHandlerMessage::new(event.clone(), Some(slot)))
            .await
            .expect("dispatch channel open");
        event
    }

    async fn run_one(&mut self, callable: &str, timeout: Duration) -> (StepExecutionEvent, StepExecutionResult) {
        let event = self.dispatch(callable, timeout).await;
        let result = recv_result(&mut self.completions).await;
        assert_eq!(result.step, event.identity(), "the result carries the event's identity");
        (event, result)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn never_runs_more_than_max_concurrent_handlers_and_uses_all_of_them() {
    const MAX: usize = 4;
    const MESSAGES: usize = 50;
    let current = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let mut registry = HandlerRegistry::new();
    {
        let (current, peak) = (Arc::clone(&current), Arc::clone(&peak));
        registry.register("Tests::Sleepy", move |step: tasker_worker::TaskSequenceStep| {
            let (current, peak) = (Arc::clone(&current), Arc::clone(&peak));
            async move {
                let now = current.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(20)).await;
                current.fetch_sub(1, Ordering::SeqCst);
                Ok(json!({ "step": step.workflow_step.step_uuid.to_string() }))
            }
        });
    }
    let mut h = start(registry, MAX);
    let mut sent = HashSet::new();
    for _ in 0..MESSAGES {
        sent.insert(h.dispatch("Tests::Sleepy", LONG).await.event_id);
    }
    let mut seen = HashSet::new();
    for _ in 0..MESSAGES {
        let result = recv_result(&mut h.completions).await;
        assert!(result.success, "{result:?}");
        assert_eq!(result.result["step"], json!(result.step.step_uuid.to_string()));
        assert!(seen.insert(result.step.event_id), "two results for one event");
    }
    assert_eq!(seen, sent);
    assert_quiet(&mut h.completions, Duration::from_millis(50)).await;
    let peak = peak.load(Ordering::SeqCst);
    assert!(peak <= MAX, "{peak} handlers ran at once, limit {MAX}");
    assert_eq!(peak, MAX, "the service should use all {MAX} permits");
    assert_eq!(current.load(Ordering::SeqCst), 0);
    assert_eq!(h.slots.in_flight(), 0, "every slot is released");
    assert_eq!(h.handle.as_ref().unwrap().running(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_past_its_deadline_is_a_retryable_timeout() {
    let mut registry = HandlerRegistry::new();
    registry.register("Tests::Stuck", |_step| async {
        tokio::time::sleep(Duration::from_secs(30)).await;
        Ok(json!("never"))
    });
    let mut h = start(registry, 2);
    let start_at = Instant::now();
    let (_, result) = h.run_one("Tests::Stuck", Duration::from_millis(100)).await;
    let error = error_of(&result);
    assert_eq!(error.error_type, error_types::HANDLER_TIMEOUT);
    assert!(error.retryable);
    assert!(error.message.contains("only_step") && error.message.contains("100 ms"), "{}", error.message);
    assert!(start_at.elapsed() >= Duration::from_millis(100));
    assert!(start_at.elapsed() < Duration::from_secs(5), "deadline kept far too late");
    assert_eq!(result.metadata.retryable, Some(true));
    assert_eq!(h.slots.in_flight(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_handler_is_a_permanent_handler_panic_with_its_message() {
    let mut registry = HandlerRegistry::new();
    registry.register("Tests::Panics", |step: tasker_worker::TaskSequenceStep| async move {
        if step.workflow_step.attempts > 0 {
            panic!("ledger out of balance by {}", 42);
        }
        Ok(Value::Null)
    });
    let mut h = start(registry, 2);
    let (_, result) = h.run_one("Tests::Panics", LONG).await;
    let error = error_of(&result);
    assert_eq!(error.error_type, error_types::HANDLER_PANIC);
    assert!(!error.retryable);
    assert!(error.message.contains("ledger out of balance by 42"), "{}", error.message);
    assert!(error.message.contains("Tests::Panics"), "{}", error.message);
    // The service survives a panic and keeps running handlers.
    let (_, again) = h.run_one("Tests::Panics", LONG).await;
    assert_eq!(error_of(&again).error_type, error_types::HANDLER_PANIC);
    assert_eq!(h.slots.in_flight(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handler_errors_keep_their_message_type_and_retryability() {
    let mut registry = HandlerRegistry::new();
    registry.register("Tests::Declined", |_step| async {
        Err(HandlerError::permanent("card declined: insufficient funds"))
    });
    registry.register("Tests::Flaky", |_step| async { Err(HandlerError::retryable("gateway busy, try later")) });
    registry.register("Tests::Custom", |_step| async {
        Err(HandlerError::Permanent { message: "bad sku ABC".into(), error_type: "InvalidSku".into() })
    });
    let mut h = start(registry, 2);

    let (_, declined) = h.run_one("Tests::Declined", LONG).await;
    let error = error_of(&declined);
    assert_eq!(error.message, "card declined: insufficient funds");
    assert_eq!(error.error_type, "PermanentError");
    assert!(!error.retryable);
    assert!(!declined.is_retryable_failure());

    let (_, flaky) = h.run_one("Tests::Flaky", LONG).await;
    let error = error_of(&flaky);
    assert_eq!(error.message, "gateway busy, try later");
    assert_eq!(error.error_type, "RetryableError");
    assert!(error.retryable);
    assert!(flaky.is_retryable_failure());

    let (_, custom) = h.run_one("Tests::Custom", LONG).await;
    let error = error_of(&custom);
    assert_eq!(
        (error.message.as_str(), error.error_type.as_str(), error.retryable),
        ("bad sku ABC", "InvalidSku", false)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_callable_is_a_permanent_handler_not_found_naming_it() {
    let mut h = start(HandlerRegistry::new(), 2);
    let (_, result) = h.run_one("Billing::NoSuchHandler", LONG).await;
    let error = error_of(&result);
    assert_eq!(error.error_type, error_types::HANDLER_NOT_FOUND);
    assert!(!error.retryable);
    assert!(error.message.contains("Billing::NoSuchHandler"), "{}", error.message);
    assert!(error.message.contains("only_step"), "{}", error.message);
    assert_eq!(h.slots.in_flight(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_carry_timing_metadata() {
    let mut registry = HandlerRegistry::new();
    registry.register("Tests::Slow", |step: tasker_worker::TaskSequenceStep| async move {
        tokio::time::sleep(Duration::from_millis(30)).await;
        Ok(json!({ "name": step.workflow_step.name }))
    });
    let mut h = start(registry, 2);
    let (_, result) = h.run_one("Tests::Slow", LONG).await;
    assert!(result.success);
    assert_eq!(result.result, json!({ "name": "only_step" }));
    assert!(result.error.is_none());
    let meta = &result.metadata;
    let elapsed = meta.execution_time_ms.expect("execution_time_ms");
    assert!(elapsed >= 30, "execution_time_ms {elapsed} is shorter than the handler's sleep");
    let started = meta.started_at.as_deref().expect("started_at");
    let completed = meta.completed_at.as_deref().expect("completed_at");
    for stamp in [started, completed] {
        assert_eq!(stamp.len(), "2026-01-01T00:00:00.000Z".len(), "{stamp}");
        assert!(stamp.ends_with('Z') && stamp.as_bytes()[10] == b'T', "{stamp}");
    }
    assert!(started <= completed, "{started} after {completed}");
    assert_eq!(meta.retryable, None, "a success states no retryability");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_lets_quick_handlers_finish_and_reports_the_rest_as_worker_shutdown() {
    let started = Arc::new(AtomicUsize::new(0));
    let finish_quick = Arc::new(AtomicBool::new(false));
    let mut registry = HandlerRegistry::new();
    {
        let started = Arc::clone(&started);
        registry.register("Tests::Long", move |_step| {
            let started = Arc::clone(&started);
            async move {
                started.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_secs(30)).await;
                Ok(json!("never"))
            }
        });
    }
    {
        let started = Arc::clone(&started);
        let finish_quick = Arc::clone(&finish_quick);
        registry.register("Tests::Quick", move |_step| {
            let (started, finish_quick) = (Arc::clone(&started), Arc::clone(&finish_quick));
            async move {
                started.fetch_add(1, Ordering::SeqCst);
                while !finish_quick.load(Ordering::SeqCst) {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                Ok(json!("quick"))
            }
        });
    }
    // Two permits: the long and the quick handler run, the third message waits.
    let mut h = start(registry, 2);
    let long = h.dispatch("Tests::Long", LONG).await;
    let quick = h.dispatch("Tests::Quick", LONG).await;
    let counter = Arc::clone(&started);
    eventually("both handlers started", || counter.load(Ordering::SeqCst) == 2).await;
    let queued = h.dispatch("Tests::Quick", LONG).await;

    let handle = h.handle.take().unwrap();
    let stopper = tokio::spawn(async move { handle.stop(Duration::from_millis(800)).await });
    // The quick handler finishes inside the grace period.
    tokio::time::sleep(Duration::from_millis(20)).await;
    finish_quick.store(true, Ordering::SeqCst);
    let reported = tokio::time::timeout(common::PATIENCE, stopper).await.expect("stop returns").unwrap();
    assert_eq!(reported, 2, "the queued message and the abandoned long handler");

    let mut results = Vec::new();
    for _ in 0..3 {
        results.push(recv_result(&mut h.completions).await);
    }
    let by_event = |id| results.iter().find(|r: &&StepExecutionResult| r.step.event_id == id).expect("a result");
    let quick_result = by_event(quick.event_id);
    assert!(quick_result.success, "a handler finishing within grace reports its own result: {quick_result:?}");
    assert_eq!(quick_result.result, json!("quick"));
    for (event, what) in [(&long, "abandoned"), (&queued, "never started")] {
        let result = by_event(event.event_id);
        let error = error_of(result);
        assert_eq!(error.error_type, error_types::WORKER_SHUTDOWN, "{what}");
        assert!(error.retryable, "{what}");
        assert_eq!(result.step, event.identity());
    }
    assert_eq!(started.load(Ordering::SeqCst), 2, "the queued message never ran");
    assert_eq!(h.slots.in_flight(), 0);
    // Everything sent: the service dropped its sender.
    assert!(matches!(tokio::time::timeout(common::PATIENCE, h.completions.recv()).await, Ok(None)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_with_nothing_running_reports_nothing() {
    let mut h = start(HandlerRegistry::new(), 2);
    let reported = h.handle.take().unwrap().stop(Duration::from_millis(100)).await;
    assert_eq!(reported, 0);
    assert!(matches!(tokio::time::timeout(common::PATIENCE, h.completions.recv()).await, Ok(None)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_dispatch_channel_ends_the_service_after_running_what_it_got() {
    let mut registry = HandlerRegistry::new();
    registry.register("Tests::Echo", |step: tasker_worker::TaskSequenceStep| async move {
        Ok(json!(step.workflow_step.name))
    });
    let h = start(registry, 2);
    let event = h.dispatch("Tests::Echo", LONG).await;
    let Harness { handle, dispatch_tx, mut completions, .. } = h;
    drop(dispatch_tx);
    let result = recv_result(&mut completions).await;
    assert_eq!(result.step, event.identity());
    assert!(result.success);
    assert_eq!(result.result, json!("only_step"));
    assert!(matches!(tokio::time::timeout(common::PATIENCE, completions.recv()).await, Ok(None)));
    // The service has ended on its own; stopping it now reports nothing.
    assert_eq!(handle.unwrap().stop(Duration::from_millis(10)).await, 0);
}
