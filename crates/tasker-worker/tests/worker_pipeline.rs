//! End to end through `System` on the embedded store: store → executor → dispatch
//! channel → Rust handlers or a foreign-style polling loop → completion path → store.
//!
//! `System` owns a tokio runtime, so these are plain `#[test]`s: a runtime must
//! not be dropped inside an async context.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use uuid::Uuid;

use common::{eventually_blocking, template, PATIENCE};
use tasker_worker::{
    error_types, HandlerDispatchConfig, HandlerError, HandlerRegistry, NewTask, StartOutcome, StepExecutionResult,
    StepStatus, System, TaskSequenceStep, TaskStatus, TaskStatusView, TaskerConfig, WaitOutcome,
};

const SUMS: &str = "\
name: sums
namespace_name: math
version: 1.0.0
steps:
  - { name: seed, handler: { callable: Math::Seed } }
  - { name: double, handler: { callable: Math::Double }, dependencies: [seed] }
  - { name: add_ten, handler: { callable: Math::AddTen }, dependencies: [seed] }
  - { name: total, handler: { callable: Math::Sum }, dependencies: [double, add_ten] }
";

fn system() -> System {
    System::embedded(TaskerConfig::default(), "test").expect("runtime starts")
}

fn dispatch(max_concurrent_handlers: usize) -> HandlerDispatchConfig {
    HandlerDispatchConfig { max_concurrent_handlers, handler_timeout_ms: 10_000, ..HandlerDispatchConfig::default() }
}

fn create(system: &System, namespace: &str, name: &str, context: Value) -> Uuid {
    let task = NewTask::new(namespace, name, context);
    system.run_blocking(system.create_task(task), None).expect("not cancelled").expect("task created").task_uuid
}

fn status(system: &System, task: &Uuid) -> TaskStatusView {
    system.run_blocking(system.task_status(*task), None).expect("not cancelled").expect("task is readable")
}

fn wait(system: &System, task: &Uuid) -> TaskStatusView {
    match system.wait_for_task_blocking(*task, PATIENCE, &|| false) {
        Ok(WaitOutcome::Finished(view)) => view,
        other => panic!("task {task} did not finish: {other:?}; now {:?}", status(system, task)),
    }
}

fn register(system: &System, template: tasker_worker::WorkflowTemplate) {
    system.register_template(template).expect("template registers");
}

fn int(value: &Value) -> i64 {
    value.as_i64().unwrap_or_else(|| panic!("not an integer: {value}"))
}

/// What each step of SUMS computes, shared by the Rust handlers and the polling loop.
fn compute_sums(step: &TaskSequenceStep) -> Value {
    let parent = |name: &str| int(step.dependency_results.get(name).map(|v| v.as_ref()).unwrap_or(&Value::Null));
    match step.workflow_step.name.as_str() {
        "seed" => json!(int(&step.task.context["n"])),
        "double" => json!(2 * parent("seed")),
        "add_ten" => json!(parent("seed") + 10),
        "total" => json!(step.dependency_results.values().map(|v| int(v)).sum::<i64>()),
        other => panic!("unexpected step {other}"),
    }
}

fn sums_registry() -> HandlerRegistry {
    let mut registry = HandlerRegistry::new();
    for callable in ["Math::Seed", "Math::Double", "Math::AddTen", "Math::Sum"] {
        registry.register(callable, |step: TaskSequenceStep| async move { Ok(compute_sums(&step)) });
    }
    registry
}

fn assert_sums(view: &TaskStatusView, n: i64) {
    assert_eq!(view.status, TaskStatus::Complete, "{view:?}");
    let result = |name: &str| int(view.step(name).unwrap().result.as_deref().expect("a result"));
    assert_eq!(result("seed"), n);
    assert_eq!(result("double"), 2 * n);
    assert_eq!(result("add_ten"), n + 10);
    assert_eq!(result("total"), 3 * n + 10);
    assert!(view.steps.iter().all(|s| s.attempts == 1 && s.error.is_none()));
}

#[test]
fn diamond_workflow_with_rust_handlers_completes_with_summed_results() {
    let system = system();
    register(&system, template(SUMS));
    let started = system.start_rust_worker(dispatch(4), sums_registry()).expect("worker starts");
    assert!(matches!(started, StartOutcome::Started { .. }));
    assert!(matches!(
        system.start_rust_worker(dispatch(4), HandlerRegistry::new()),
        Ok(StartOutcome::AlreadyRunning { .. })
    ));
    let worker = system.worker_status();
    assert_eq!((worker.running, worker.consumer), (true, Some("rust")));

    let tasks: Vec<(Uuid, i64)> = (0..20).map(|n| (create(&system, "math", "sums", json!({ "n": n })), n)).collect();
    for (task, n) in &tasks {
        assert_sums(&wait(&system, task), *n);
    }
    // The counters count a batch after the store recorded it: stopping the worker drains
    // the completion path, so they are final then.
    let report = system.stop_worker(Duration::from_secs(1)).expect("a worker was running");
    assert_eq!(report.unfinished_reported, 0);
    let stats = system.counters().snapshot();
    assert_eq!((stats.tasks_completed, stats.steps_succeeded, stats.step_failures), (20, 80, 0));
    assert!(!system.worker_status().running);
}

#[test]
fn a_step_that_fails_twice_then_succeeds_completes_on_its_third_attempt() {
    let system = system();
    register(
        &system,
        template(
            "\
name: flaky
namespace_name: pay
version: 1.0.0
steps:
  - name: charge
    handler: { callable: Pay::Charge }
    retry: { max_attempts: 3, backoff_base_ms: 10, max_backoff_ms: 50 }
  - { name: receipt, handler: { callable: Pay::Receipt }, dependencies: [charge] }
",
        ),
    );
    let calls = Arc::new(AtomicUsize::new(0));
    let mut registry = HandlerRegistry::new();
    {
        let calls = Arc::clone(&calls);
        registry.register("Pay::Charge", move |step: TaskSequenceStep| {
            calls.fetch_add(1, Ordering::SeqCst);
            async move {
                let attempt = step.workflow_step.attempts;
                if attempt < 3 {
                    Err(HandlerError::retryable(format!("gateway busy on attempt {attempt}")))
                } else {
                    Ok(json!({ "charged_on_attempt": attempt }))
                }
            }
        });
    }
    registry.register("Pay::Receipt", |step: TaskSequenceStep| async move {
        Ok(json!({ "for": Value::clone(&step.dependency_results["charge"]) }))
    });
    system.start_rust_worker(dispatch(2), registry).expect("worker starts");
    let task = create(&system, "pay", "flaky", json!({}));
    let view = wait(&system, &task);
    assert_eq!(view.status, TaskStatus::Complete);
    let charge = view.step("charge").unwrap();
    assert_eq!(charge.attempts, 3);
    assert!(charge.error.is_none(), "a later success clears the error");
    assert_eq!(charge.result.as_deref(), Some(&json!({ "charged_on_attempt": 3 })));
    assert_eq!(view.step("receipt").unwrap().result.as_deref(), Some(&json!({ "for": { "charged_on_attempt": 3 } })));
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    system.stop_worker(Duration::from_secs(1));
    let stats = system.counters().snapshot();
    assert_eq!((stats.retries_scheduled, stats.step_failures), (2, 2));
}

#[test]
fn a_permanent_failure_ends_the_task_in_error_with_the_handlers_message_intact() {
    const MESSAGE: &str = "order 17 rejected: card declined (code 51) — «do not honor»";
    let system = system();
    register(
        &system,
        template(
            "\
name: checkout
namespace_name: shop
version: 1.0.0
steps:
  - { name: validate, handler: { callable: Shop::Validate }, retry: { max_attempts: 3 } }
  - { name: ship, handler: { callable: Shop::Ship }, dependencies: [validate] }
",
        ),
    );
    let shipped = Arc::new(AtomicUsize::new(0));
    let mut registry = HandlerRegistry::new();
    registry.register("Shop::Validate", |_step| async { Err(HandlerError::permanent(MESSAGE)) });
    {
        let shipped = Arc::clone(&shipped);
        registry.register("Shop::Ship", move |_step| {
            shipped.fetch_add(1, Ordering::SeqCst);
            async { Ok(json!("shipped")) }
        });
    }
    system.start_rust_worker(dispatch(2), registry).expect("worker starts");
    let task = create(&system, "shop", "checkout", json!({}));
    let view = wait(&system, &task);
    assert_eq!(view.status, TaskStatus::Error);
    let validate = view.step("validate").unwrap();
    assert_eq!((validate.status, validate.attempts), (StepStatus::Error, 1), "a permanent error is not retried");
    let error = validate.error.as_ref().unwrap();
    assert_eq!(error.message, MESSAGE);
    assert_eq!(error.error_type, "PermanentError");
    assert!(!error.retryable);
    assert_eq!(view.step("ship").unwrap().status, StepStatus::Skipped);
    assert_eq!(shipped.load(Ordering::SeqCst), 0, "the dependent never ran");
    system.stop_worker(Duration::from_secs(1));
}

#[test]
fn a_step_without_a_registered_handler_fails_the_task_naming_the_callable() {
    let system = system();
    register(&system, template(&common::single_step_yaml("shop", "lost", "find", "Shop::NotRegistered")));
    system.start_rust_worker(dispatch(2), HandlerRegistry::new()).expect("worker starts");
    let task = create(&system, "shop", "lost", json!({}));
    let view = wait(&system, &task);
    assert_eq!(view.status, TaskStatus::Error);
    let step = &view.steps[0];
    assert_eq!(step.attempts, 1, "a missing handler is not retried");
    let error = step.error.as_ref().unwrap();
    assert_eq!(error.error_type, error_types::HANDLER_NOT_FOUND);
    assert!(error.message.contains("Shop::NotRegistered"), "{}", error.message);
    system.stop_worker(Duration::from_secs(1));
}

#[test]
fn in_flight_steps_never_exceed_max_concurrent_handlers() {
    const MAX: usize = 4;
    const TASKS: usize = 200;
    let system = system();
    register(&system, template(&common::single_step_yaml("load", "one", "work", "Load::Work")));
    let current = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let mut registry = HandlerRegistry::new();
    {
        let (current, peak) = (Arc::clone(&current), Arc::clone(&peak));
        registry.register("Load::Work", move |_step| {
            let (current, peak) = (Arc::clone(&current), Arc::clone(&peak));
            async move {
                let now = current.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(2)).await;
                current.fetch_sub(1, Ordering::SeqCst);
                Ok(json!(now))
            }
        });
    }
    let tasks: Vec<Uuid> = (0..TASKS).map(|i| create(&system, "load", "one", json!({ "i": i }))).collect();
    system.start_rust_worker(dispatch(MAX), registry).expect("worker starts");

    let done = Arc::new(AtomicBool::new(false));
    let sampled_max = std::thread::scope(|scope| {
        let sampler = scope.spawn(|| {
            let mut max = 0;
            while !done.load(Ordering::SeqCst) {
                max = max.max(system.worker_status().in_flight);
                std::thread::sleep(Duration::from_micros(500));
            }
            max
        });
        for task in &tasks {
            assert_eq!(wait(&system, task).status, TaskStatus::Complete);
        }
        done.store(true, Ordering::SeqCst);
        sampler.join().unwrap()
    });
    let peak = peak.load(Ordering::SeqCst);
    assert!(peak <= MAX, "{peak} handlers ran at once, limit {MAX}");
    assert_eq!(peak, MAX, "the worker should use its {MAX} slots");
    assert!(sampled_max <= MAX, "in_flight reached {sampled_max}, limit {MAX}");
    assert!(sampled_max >= 1, "the sampler never saw work in flight");
    eventually_blocking("every task counted", || system.counters().snapshot().tasks_completed == TASKS as u64);
    // Idle, still running: nothing is in flight (no capacity is held while idle).
    eventually_blocking("an idle worker holds no slot", || system.worker_status().in_flight == 0);
    assert!(system.worker_status().running);
    // And it still picks up new work after idling.
    let more = create(&system, "load", "one", json!({}));
    assert_eq!(wait(&system, &more).status, TaskStatus::Complete);
    system.stop_worker(Duration::from_secs(1));
    assert_eq!(system.worker_status().in_flight, 0);
}

#[test]
fn stopping_the_worker_reports_unfinished_steps_and_a_new_worker_finishes_them() {
    const TASKS: usize = 5;
    let system = system();
    register(&system, template(&common::single_step_yaml("ops", "slow", "work", "Ops::Work")));
    let started = Arc::new(AtomicUsize::new(0));
    let mut stuck = HandlerRegistry::new();
    {
        let started = Arc::clone(&started);
        stuck.register("Ops::Work", move |_step| {
            started.fetch_add(1, Ordering::SeqCst);
            async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                Ok(json!("too late"))
            }
        });
    }
    let tasks: Vec<Uuid> = (0..TASKS).map(|_| create(&system, "ops", "slow", json!({}))).collect();
    system.start_rust_worker(dispatch(2), stuck).expect("worker starts");
    eventually_blocking("two handlers running", || started.load(Ordering::SeqCst) == 2);
    assert_eq!(system.worker_status().in_flight, 2);

    let report = system.stop_worker(Duration::from_millis(50)).expect("a worker was running");
    assert_eq!(report.unfinished_reported, 2, "both running handlers were abandoned and reported");
    let worker = system.worker_status();
    assert!(!worker.running);
    assert_eq!(worker.in_flight, 0);
    assert_eq!(started.load(Ordering::SeqCst), 2, "no more than the two were dispatched");

    let views: Vec<TaskStatusView> = tasks.iter().map(|t| status(&system, t)).collect();
    let interrupted: Vec<&TaskStatusView> = views.iter().filter(|v| v.steps[0].error.is_some()).collect();
    assert_eq!(interrupted.len(), 2);
    for view in &views {
        let step = &view.steps[0];
        assert_eq!(step.status, StepStatus::Enqueued, "every step waits for the next worker");
        assert_eq!(step.attempts, 0, "an interrupted attempt does not count");
        if let Some(error) = &step.error {
            assert_eq!(error.error_type, error_types::WORKER_SHUTDOWN);
            assert!(error.retryable);
        }
    }
    // Tasks can still be created while no worker runs; they wait.
    let late = create(&system, "ops", "slow", json!({}));

    let mut quick = HandlerRegistry::new();
    quick.register("Ops::Work", |_step| async { Ok(json!("done")) });
    assert!(matches!(system.start_rust_worker(dispatch(2), quick), Ok(StartOutcome::Started { .. })));
    for task in tasks.iter().chain([&late]) {
        let view = wait(&system, task);
        assert_eq!(view.status, TaskStatus::Complete);
        assert_eq!(view.steps[0].attempts, 1);
        assert!(view.steps[0].error.is_none());
        assert_eq!(view.steps[0].result.as_deref(), Some(&json!("done")));
    }
    system.stop_worker(Duration::from_secs(1));
}

/// A foreign-style loop on a plain thread: poll with a timeout, run, complete.
fn polling_loop(system: &System, stop: &AtomicBool, handled: &AtomicUsize) {
    let channel = system.ffi_channel().expect("the FFI worker runs");
    while !stop.load(Ordering::SeqCst) {
        let Some(event) = channel.poll_wait(Duration::from_millis(50), &|| stop.load(Ordering::SeqCst)) else {
            continue;
        };
        let value = compute_sums(&event.execution_event.payload);
        assert!(channel.complete(event.event_id, StepExecutionResult::success(value)), "completion accepted");
        handled.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn an_ffi_worker_driven_by_plain_polling_threads_completes_tasks() {
    const TASKS: i64 = 50;
    let system = system();
    register(&system, template(SUMS));
    assert!(system.ffi_channel().is_none(), "no worker yet");
    system.start_ffi_worker(dispatch(4), 4).expect("worker starts");
    assert_eq!(system.worker_status().consumer, Some("ffi"));
    let channel = system.ffi_channel().expect("the FFI worker has a channel");

    let stop = AtomicBool::new(false);
    let handled = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| polling_loop(&system, &stop, &handled));
        }
        let tasks: Vec<(Uuid, i64)> =
            (0..TASKS).map(|n| (create(&system, "math", "sums", json!({ "n": n })), n)).collect();
        for (task, n) in &tasks {
            assert_sums(&wait(&system, task), *n);
        }
        stop.store(true, Ordering::SeqCst);
        channel.wake_waiters();
    });
    assert_eq!(handled.load(Ordering::SeqCst), 4 * TASKS as usize);
    let m = channel.metrics();
    assert_eq!((m.total_dispatched, m.total_completed), (4 * TASKS as u64, 4 * TASKS as u64));
    assert_eq!((m.pending_count, m.total_timed_out, m.total_rejected_completions), (0, 0, 0));
    let report = system.stop_worker(Duration::from_secs(1)).unwrap();
    assert_eq!(report.unfinished_reported, 0);
    assert!(system.ffi_channel().is_none(), "the channel goes with the worker");
}

#[test]
fn stopping_an_ffi_worker_reports_polled_and_unpolled_events_and_a_rust_worker_finishes_them() {
    let system = system();
    register(&system, template(&common::single_step_yaml("ops", "one", "work", "Ops::Work")));
    let tasks: Vec<Uuid> = (0..5).map(|_| create(&system, "ops", "one", json!({}))).collect();
    system.start_ffi_worker(dispatch(3), 3).expect("worker starts");
    let channel = system.ffi_channel().unwrap();
    // Three slots: three events are dispatched; one is polled and never completed.
    eventually_blocking("three events dispatched", || channel.metrics().waiting_in_dispatch == 3);
    let held = channel.poll().expect("an event");
    assert_eq!(system.worker_status().in_flight, 3);

    let report = system.stop_worker(Duration::from_millis(50)).unwrap();
    assert_eq!(report.unfinished_reported, 3, "one pending and two unpolled");
    assert!(!channel.complete(held.event_id, StepExecutionResult::success(json!("late"))), "too late after stop");
    let shutdown_errors = tasks
        .iter()
        .map(|t| status(&system, t))
        .filter(|v| v.steps[0].error.as_ref().is_some_and(|e| e.error_type == error_types::WORKER_SHUTDOWN))
        .count();
    assert_eq!(shutdown_errors, 3);

    let mut registry = HandlerRegistry::new();
    registry.register("Ops::Work", |step: TaskSequenceStep| async move { Ok(json!(step.workflow_step.attempts)) });
    system.start_rust_worker(dispatch(3), registry).expect("worker starts");
    let attempts: HashMap<Uuid, u32> = tasks.iter().map(|t| (*t, wait(&system, t).steps[0].attempts)).collect();
    assert!(attempts.values().all(|&a| a == 1), "shutdown did not use up attempts: {attempts:?}");
    system.stop_worker(Duration::from_secs(1));
}

#[test]
fn a_rust_handler_past_its_step_deadline_is_retried_then_fails_as_a_timeout() {
    let system = system();
    register(
        &system,
        template(
            "\
name: stuck
namespace_name: ops
version: 1.0.0
steps:
  - name: hang
    handler: { callable: Ops::Hang }
    timeout_seconds: 0.05
    retry: { max_attempts: 2, backoff_base_ms: 10, max_backoff_ms: 10 }
",
        ),
    );
    let calls = Arc::new(AtomicUsize::new(0));
    let mut registry = HandlerRegistry::new();
    {
        let calls = Arc::clone(&calls);
        registry.register("Ops::Hang", move |_step| {
            calls.fetch_add(1, Ordering::SeqCst);
            async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                Ok(json!("never"))
            }
        });
    }
    system.start_rust_worker(dispatch(2), registry).expect("worker starts");
    let task = create(&system, "ops", "stuck", json!({}));
    let view = wait(&system, &task);
    assert_eq!(view.status, TaskStatus::Error);
    let step = &view.steps[0];
    assert_eq!(step.attempts, 2, "the timeout is retryable, so the step ran twice");
    let error = step.error.as_ref().unwrap();
    assert_eq!(error.error_type, error_types::HANDLER_TIMEOUT);
    assert!(error.message.contains("50 ms"), "{}", error.message);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    let report = system.stop_worker(Duration::from_millis(100)).unwrap();
    assert_eq!(report.unfinished_reported, 0);
}

#[test]
fn an_ffi_event_not_completed_by_its_deadline_is_retried_and_the_late_completion_is_refused() {
    let system = system();
    register(
        &system,
        template(
            "\
name: slow_ffi
namespace_name: ops
version: 1.0.0
steps:
  - name: work
    handler: { callable: Ops::Work }
    timeout_seconds: 0.2
    retry: { max_attempts: 3, backoff_base_ms: 10, max_backoff_ms: 10 }
",
        ),
    );
    system.start_ffi_worker(dispatch(2), 2).expect("worker starts");
    let channel = system.ffi_channel().unwrap();
    let task = create(&system, "ops", "slow_ffi", json!({}));

    let first = channel.poll_wait(PATIENCE, &|| false).expect("the first attempt");
    assert_eq!(first.timeout_ms, 200);
    assert_eq!(first.execution_event.payload.workflow_step.attempts, 1);
    // Not completed: the core fails it at its deadline and dispatches a second attempt.
    let second = channel.poll_wait(PATIENCE, &|| false).expect("a second attempt after the timeout");
    assert_ne!(second.event_id, first.event_id);
    assert_eq!(second.step_uuid, first.step_uuid);
    assert_eq!(second.execution_event.payload.workflow_step.attempts, 2);
    assert!(!channel.complete(first.event_id, StepExecutionResult::success(json!("late"))), "late completion refused");
    assert!(channel.complete(second.event_id, StepExecutionResult::success(json!("on time"))));

    let view = wait(&system, &task);
    assert_eq!(view.status, TaskStatus::Complete);
    assert_eq!(view.steps[0].attempts, 2);
    assert_eq!(view.steps[0].result.as_deref(), Some(&json!("on time")));
    let m = channel.metrics();
    assert_eq!((m.total_timed_out, m.late_completions, m.total_completed), (1, 1, 1));
    system.stop_worker(Duration::from_millis(100));
}
