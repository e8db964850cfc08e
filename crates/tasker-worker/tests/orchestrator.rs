//! The embedded orchestrator: readiness over DAGs, retries and backoff, failure, stale
//! results, worker shutdown, retention, step deadlines, and the blocking wait. The
//! `Store` is driven with explicit instants and a seeded random source.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use serde_json::{json, Value};
use uuid::Uuid;

use common::{failure_for, no_jitter, success_for, template, template_with, PATIENCE};
use tasker_worker::config::{OrchestrationConfig, RetryDefaults};
use tasker_worker::messages::{error_types, StepExecutionEvent, StepExecutionResult, StepIdentity};
use tasker_worker::orchestrator::{
    Orchestrator, OrchestratorError, RecordOutcome, Store, TaskRequest, TaskStatusView, WaitOutcome,
};
use tasker_worker::template::{TemplateError, WorkflowTemplate};

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

const LINEAR: &str = "\
name: linear
namespace_name: shapes
version: 1.0.0
steps:
  - { name: a, handler: { callable: A } }
  - { name: b, handler: { callable: B }, dependencies: [a] }
  - { name: c, handler: { callable: C }, dependencies: [b] }
";

const DIAMOND: &str = "\
name: diamond
namespace_name: shapes
version: 1.0.0
steps:
  - { name: start, handler: { callable: Start } }
  - { name: left, handler: { callable: Left }, dependencies: [start] }
  - { name: right, handler: { callable: Right }, dependencies: [start] }
  - { name: join, handler: { callable: Join }, dependencies: [left, right] }
";

const TREE: &str = "\
name: tree
namespace_name: shapes
version: 1.0.0
steps:
  - { name: root, handler: { callable: R } }
  - { name: l, handler: { callable: L }, dependencies: [root] }
  - { name: r, handler: { callable: R }, dependencies: [root] }
  - { name: ll, handler: { callable: LL }, dependencies: [l] }
  - { name: lr, handler: { callable: LR }, dependencies: [l] }
  - { name: rl, handler: { callable: RL }, dependencies: [r] }
  - { name: rr, handler: { callable: RR }, dependencies: [r] }
";

/// Two roots, a three-way join, a leaf off the second root, and a final join.
const MIXED: &str = "\
name: mixed
namespace_name: shapes
version: 1.0.0
steps:
  - { name: final, handler: { callable: F }, dependencies: [d, e] }
  - { name: r1, handler: { callable: R1 } }
  - { name: r2, handler: { callable: R2 } }
  - { name: a, handler: { callable: A }, dependencies: [r1] }
  - { name: b, handler: { callable: B }, dependencies: [r1, r2] }
  - { name: c, handler: { callable: C }, dependencies: [a] }
  - { name: d, handler: { callable: D }, dependencies: [a, b, c] }
  - { name: e, handler: { callable: E }, dependencies: [r2] }
";

fn store() -> Store {
    Store::with_seed(1000, 7)
}

fn create(store: &mut Store, template: &Arc<WorkflowTemplate>) -> Uuid {
    store.create_task(Arc::clone(template), json!({"order": 1}), SystemTime::now())
}

fn claim_all(store: &mut Store, now: Instant) -> Vec<StepExecutionEvent> {
    std::iter::from_fn(|| store.claim(now, DEFAULT_TIMEOUT)).collect()
}

fn names(events: &[StepExecutionEvent]) -> Vec<&str> {
    let mut names: Vec<&str> = events.iter().map(|e| e.payload.workflow_step.name.as_str()).collect();
    names.sort();
    names
}

fn view(store: &Store, task: &Uuid) -> TaskStatusView {
    store.task_status(task).expect("task is known")
}

fn step_status<'a>(view: &'a TaskStatusView, name: &str) -> &'a str {
    view.step(name).unwrap_or_else(|| panic!("no step {name}")).status
}

fn record_ok(store: &mut Store, event: &StepExecutionEvent, value: Value) -> RecordOutcome {
    store.record(success_for(event, value), Instant::now(), SystemTime::now())
}

fn value_of(name: &str) -> Value {
    json!({ "from": name })
}

/// Runs a task of `template` to completion, completing in-flight steps in a seeded random
/// order, and checks at every claim that the step's parents are all complete and that its
/// dependency results are exactly its parents' results.
fn run_checking_readiness(template: &Arc<WorkflowTemplate>, seed: u64) {
    let mut store = Store::with_seed(100, seed);
    let mut rng = fastrand::Rng::with_seed(seed);
    let task = create(&mut store, template);
    let mut completed: HashSet<String> = HashSet::new();
    let mut claimed_once: HashSet<String> = HashSet::new();
    let mut in_flight: Vec<StepExecutionEvent> = Vec::new();
    loop {
        for event in claim_all(&mut store, Instant::now()) {
            let name = event.payload.workflow_step.name.clone();
            assert!(claimed_once.insert(name.clone()), "{name} claimed twice");
            let index = template.step_index(&name).unwrap();
            let parents: BTreeMap<String, Value> = template.dependencies[index]
                .iter()
                .map(|&p| (template.steps[p].name.clone(), value_of(&template.steps[p].name)))
                .collect();
            for parent in parents.keys() {
                assert!(
                    completed.contains(parent),
                    "{name} claimed before its parent {parent} completed (seed {seed})"
                );
            }
            let got: BTreeMap<String, Value> =
                event.payload.dependency_results.iter().map(|(k, v)| (k.clone(), Value::clone(v))).collect();
            assert_eq!(got, parents, "dependency results of {name}");
            assert_eq!(event.payload.step_definition.dependencies.len(), parents.len());
            in_flight.push(event);
        }
        if in_flight.is_empty() {
            break;
        }
        let event = in_flight.swap_remove(rng.usize(0..in_flight.len()));
        let name = event.payload.workflow_step.name.clone();
        let outcome = record_ok(&mut store, &event, value_of(&name));
        completed.insert(name);
        let all_done = completed.len() == template.steps.len();
        assert_eq!(outcome, RecordOutcome::Completed { task_finished: all_done });
    }
    assert_eq!(completed.len(), template.steps.len(), "every step ran (seed {seed})");
    let v = view(&store, &task);
    assert_eq!(v.status, "complete");
    assert!(v.steps.iter().all(|s| s.status == "complete" && s.attempts == 1));
    for s in &v.steps {
        assert_eq!(s.result.as_deref(), Some(&value_of(&s.name)));
    }
}

#[test]
fn linear_chain_runs_one_step_at_a_time_and_task_moves_pending_in_progress_complete() {
    let t = Arc::new(template(LINEAR));
    let mut s = store();
    let task = create(&mut s, &t);
    let v = view(&s, &task);
    assert_eq!(v.status, "pending");
    assert_eq!(v.steps.iter().map(|s| s.status).collect::<Vec<_>>(), vec!["enqueued", "pending", "pending"]);
    assert!(v.finished_at.is_none());

    let a = claim_all(&mut s, Instant::now());
    assert_eq!(names(&a), vec!["a"]);
    assert_eq!(a[0].payload.workflow_step.attempts, 1);
    assert!(a[0].payload.dependency_results.is_empty());
    assert_eq!(*a[0].payload.task.context, json!({"order": 1}));
    assert_eq!(view(&s, &task).status, "in_progress");
    assert_eq!(step_status(&view(&s, &task), "a"), "in_progress");
    assert!(claim_all(&mut s, Instant::now()).is_empty(), "b waits for a");

    assert_eq!(record_ok(&mut s, &a[0], json!(1)), RecordOutcome::Completed { task_finished: false });
    let b = claim_all(&mut s, Instant::now());
    assert_eq!(names(&b), vec!["b"]);
    assert_eq!(b[0].payload.dependency_results.get("a").map(|v| Value::clone(v)), Some(json!(1)));
    assert!(claim_all(&mut s, Instant::now()).is_empty(), "c waits for b");
    record_ok(&mut s, &b[0], json!(2));

    let c = claim_all(&mut s, Instant::now());
    assert_eq!(names(&c), vec!["c"]);
    assert_eq!(c[0].payload.dependency_results.keys().collect::<Vec<_>>(), vec!["b"], "only direct parents");
    assert_eq!(record_ok(&mut s, &c[0], json!(3)), RecordOutcome::Completed { task_finished: true });

    let v = view(&s, &task);
    assert_eq!(v.status, "complete");
    assert!(v.finished_at.is_some());
    assert!(claim_all(&mut s, Instant::now()).is_empty());
    let stats = s.stats();
    assert_eq!(
        (stats.tasks_created, stats.tasks_completed, stats.steps_dispatched, stats.steps_succeeded),
        (1, 1, 3, 3)
    );
}

#[test]
fn diamond_join_waits_for_both_parents_and_sees_both_results() {
    let t = Arc::new(template(DIAMOND));
    let mut s = store();
    let task = create(&mut s, &t);
    let start = claim_all(&mut s, Instant::now());
    assert_eq!(names(&start), vec!["start"]);
    record_ok(&mut s, &start[0], json!(10));

    let branches = claim_all(&mut s, Instant::now());
    assert_eq!(names(&branches), vec!["left", "right"], "both branches are ready together");
    for b in &branches {
        assert_eq!(b.payload.dependency_results.get("start").map(|v| Value::clone(v)), Some(json!(10)));
    }
    let left = branches.iter().find(|e| e.payload.workflow_step.name == "left").unwrap();
    let right = branches.iter().find(|e| e.payload.workflow_step.name == "right").unwrap();
    record_ok(&mut s, left, json!(11));
    assert!(claim_all(&mut s, Instant::now()).is_empty(), "join must wait for right too");
    assert_eq!(step_status(&view(&s, &task), "join"), "pending");
    record_ok(&mut s, right, json!(12));

    let join = claim_all(&mut s, Instant::now());
    assert_eq!(names(&join), vec!["join"]);
    let deps: BTreeMap<&str, Value> =
        join[0].payload.dependency_results.iter().map(|(k, v)| (k.as_str(), Value::clone(v))).collect();
    assert_eq!(deps, BTreeMap::from([("left", json!(11)), ("right", json!(12))]));
    assert_eq!(record_ok(&mut s, &join[0], json!(33)), RecordOutcome::Completed { task_finished: true });
    assert_eq!(view(&s, &task).status, "complete");
}

#[test]
fn tree_leaves_become_ready_as_their_own_parent_completes() {
    let t = Arc::new(template(TREE));
    let mut s = store();
    create(&mut s, &t);
    let root = claim_all(&mut s, Instant::now());
    record_ok(&mut s, &root[0], json!("root"));
    let level1 = claim_all(&mut s, Instant::now());
    assert_eq!(names(&level1), vec!["l", "r"]);
    let l = level1.iter().find(|e| e.payload.workflow_step.name == "l").unwrap();
    record_ok(&mut s, l, json!("l"));
    assert_eq!(names(&claim_all(&mut s, Instant::now())), vec!["ll", "lr"], "only l's children");
    let r = level1.iter().find(|e| e.payload.workflow_step.name == "r").unwrap();
    record_ok(&mut s, r, json!("r"));
    assert_eq!(names(&claim_all(&mut s, Instant::now())), vec!["rl", "rr"]);
}

#[test]
fn mixed_dag_three_way_join_waits_for_all_parents() {
    let t = Arc::new(template(MIXED));
    let mut s = store();
    let task = create(&mut s, &t);
    let roots = claim_all(&mut s, Instant::now());
    assert_eq!(names(&roots), vec!["r1", "r2"], "a root may be listed after its dependents");
    let by_name: HashMap<String, StepExecutionEvent> =
        roots.into_iter().map(|e| (e.payload.workflow_step.name.clone(), e)).collect();
    record_ok(&mut s, &by_name["r1"], json!(1));
    assert_eq!(names(&claim_all(&mut s, Instant::now())), vec!["a"], "b also needs r2");
    record_ok(&mut s, &by_name["r2"], json!(2));
    let next = claim_all(&mut s, Instant::now());
    assert_eq!(names(&next), vec!["b", "e"]);
    let b = next.iter().find(|e| e.payload.workflow_step.name == "b").unwrap();
    assert_eq!(b.payload.dependency_results.len(), 2);
    record_ok(&mut s, b, json!("b"));
    assert!(claim_all(&mut s, Instant::now()).is_empty(), "d needs a and c as well");
    assert_eq!(step_status(&view(&s, &task), "d"), "pending");
}

#[test]
fn readiness_holds_in_every_shape_and_completion_order() {
    for yaml in [LINEAR, DIAMOND, TREE, MIXED] {
        let t = Arc::new(template(yaml));
        for seed in 0..25 {
            run_checking_readiness(&t, seed);
        }
    }
}

const RETRYING: &str = "\
name: retrying
namespace_name: payments
version: 1.0.0
steps:
  - { name: charge, handler: { callable: Charge } }
  - { name: notify, handler: { callable: Notify }, dependencies: [charge] }
";

#[test]
fn a_retryable_failure_waits_for_its_backoff_then_runs_again_until_max_attempts() {
    let t = Arc::new(template_with(RETRYING, &no_jitter(3, 100, 10_000)));
    let mut s = store();
    let task = create(&mut s, &t);
    let t0 = Instant::now();
    let wall = SystemTime::now();

    let first = s.claim(t0, DEFAULT_TIMEOUT).unwrap();
    assert_eq!(first.payload.workflow_step.attempts, 1);
    assert_eq!(first.payload.workflow_step.max_attempts, 3);
    let outcome = s.record(failure_for(&first, "gateway busy", "Busy", true), t0, wall);
    assert_eq!(outcome, RecordOutcome::RetryScheduled { delay: Duration::from_millis(100) });
    let v = view(&s, &task);
    assert_eq!(step_status(&v, "charge"), "waiting_for_retry");
    assert_eq!(v.status, "in_progress");
    let charge = v.step("charge").unwrap();
    assert_eq!(charge.attempts, 1);
    assert_eq!(charge.error.as_ref().unwrap().message, "gateway busy");
    assert_eq!(s.next_retry_due(), Some(t0 + Duration::from_millis(100)));

    assert!(s.claim(t0, DEFAULT_TIMEOUT).is_none(), "not before its backoff");
    assert!(s.claim(t0 + Duration::from_millis(99), DEFAULT_TIMEOUT).is_none(), "not before its backoff");
    let t1 = t0 + Duration::from_millis(100);
    let second = s.claim(t1, DEFAULT_TIMEOUT).expect("claimable once the backoff has passed");
    assert_eq!(second.payload.workflow_step.attempts, 2);
    assert_ne!(second.event_id, first.event_id);
    assert_eq!(second.step_uuid, first.step_uuid);
    assert_eq!(s.next_retry_due(), None);

    let outcome = s.record(failure_for(&second, "gateway busy", "Busy", true), t1, wall);
    assert_eq!(outcome, RecordOutcome::RetryScheduled { delay: Duration::from_millis(200) });
    assert!(s.claim(t1 + Duration::from_millis(199), DEFAULT_TIMEOUT).is_none());
    let t2 = t1 + Duration::from_millis(200);
    let third = s.claim(t2, DEFAULT_TIMEOUT).unwrap();
    assert_eq!(third.payload.workflow_step.attempts, 3);

    let outcome = s.record(failure_for(&third, "gateway still busy", "Busy", true), t2, wall);
    assert_eq!(outcome, RecordOutcome::Failed, "max_attempts reached");
    let v = view(&s, &task);
    assert_eq!(v.status, "error");
    assert!(v.finished_at.is_some());
    let charge = v.step("charge").unwrap();
    assert_eq!((charge.status, charge.attempts), ("error", 3));
    assert_eq!(charge.error.as_ref().unwrap().message, "gateway still busy");
    assert_eq!(step_status(&v, "notify"), "pending");
    assert!(s.claim(t2 + Duration::from_secs(3600), DEFAULT_TIMEOUT).is_none(), "dependents never become ready");
    assert_eq!(step_status(&view(&s, &task), "notify"), "pending");

    let stats = s.stats();
    assert_eq!(stats.steps_dispatched, 3);
    assert_eq!(stats.step_failures, 3);
    assert_eq!(stats.retries_scheduled, 2);
    assert_eq!(stats.steps_failed_permanently, 1);
    assert_eq!(stats.tasks_failed, 1);
    assert_eq!(stats.waiting_retries, 0);
}

#[test]
fn a_retry_that_succeeds_clears_the_error_and_readies_dependents() {
    let t = Arc::new(template_with(RETRYING, &no_jitter(3, 10, 1000)));
    let mut s = store();
    let task = create(&mut s, &t);
    let t0 = Instant::now();
    let first = s.claim(t0, DEFAULT_TIMEOUT).unwrap();
    s.record(failure_for(&first, "busy", "Busy", true), t0, SystemTime::now());
    let later = t0 + Duration::from_secs(1);
    let second = s.claim(later, DEFAULT_TIMEOUT).unwrap();
    assert_eq!(
        s.record(success_for(&second, json!("charged")), later, SystemTime::now()),
        RecordOutcome::Completed { task_finished: false }
    );
    let charge = view(&s, &task).step("charge").unwrap().clone();
    assert_eq!((charge.status, charge.attempts, charge.error.is_none()), ("complete", 2, true));
    let notify = s.claim(later, DEFAULT_TIMEOUT).unwrap();
    assert_eq!(notify.payload.workflow_step.name, "notify");
    assert_eq!(notify.payload.dependency_results["charge"].as_ref(), &json!("charged"));
}

#[test]
fn backoff_doubles_per_attempt_and_is_capped() {
    let yaml = RETRYING.replace(
        "{ name: charge, handler: { callable: Charge } }",
        "{ name: charge, handler: { callable: Charge }, retry: { max_attempts: 6, backoff_base_ms: 100, max_backoff_ms: 500 } }",
    );
    let t = Arc::new(template_with(&yaml, &no_jitter(3, 1, 1)));
    let mut s = store();
    create(&mut s, &t);
    let mut now = Instant::now();
    let mut delays = Vec::new();
    loop {
        let event = s.claim(now, DEFAULT_TIMEOUT).expect("claimable after its backoff");
        match s.record(failure_for(&event, "busy", "Busy", true), now, SystemTime::now()) {
            RecordOutcome::RetryScheduled { delay } => {
                delays.push(delay.as_millis() as u64);
                now += delay;
            }
            RecordOutcome::Failed => {
                assert_eq!(event.payload.workflow_step.attempts, 6);
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(delays, vec![100, 200, 400, 500, 500]);
}

#[test]
fn jitter_is_bounded_and_reproducible_with_a_seed() {
    let defaults = RetryDefaults {
        retryable: true,
        max_attempts: 10,
        backoff_base_ms: 1000,
        max_backoff_ms: 1_000_000,
        jitter: 0.5,
    };
    let t = Arc::new(template_with(RETRYING, &defaults));
    let run = |seed: u64| -> Vec<Duration> {
        let mut s = Store::with_seed(10, seed);
        create(&mut s, &t);
        let mut now = Instant::now();
        let mut delays = Vec::new();
        for _ in 0..5 {
            let event = s.claim(now, DEFAULT_TIMEOUT).unwrap();
            let RecordOutcome::RetryScheduled { delay } =
                s.record(failure_for(&event, "busy", "Busy", true), now, SystemTime::now())
            else {
                panic!("expected a retry");
            };
            delays.push(delay);
            now += delay;
        }
        delays
    };
    let a = run(42);
    assert_eq!(a, run(42), "the same seed gives the same delays");
    for (i, delay) in a.iter().enumerate() {
        let nominal = 1000.0 * 2f64.powi(i as i32);
        let ms = delay.as_secs_f64() * 1000.0;
        assert!(
            ms >= nominal * 0.5 - 1.0 && ms <= nominal * 1.5 + 1.0,
            "attempt {}: {ms} ms vs nominal {nominal}",
            i + 1
        );
    }
}

#[test]
fn a_handler_saying_not_retryable_ends_the_step_at_once() {
    let t = Arc::new(template_with(RETRYING, &no_jitter(5, 10, 100)));
    let mut s = store();
    let task = create(&mut s, &t);
    let e = s.claim(Instant::now(), DEFAULT_TIMEOUT).unwrap();
    let outcome = s.record(failure_for(&e, "card declined", "Declined", false), Instant::now(), SystemTime::now());
    assert_eq!(outcome, RecordOutcome::Failed);
    let v = view(&s, &task);
    assert_eq!(v.status, "error");
    let charge = v.step("charge").unwrap();
    assert_eq!((charge.status, charge.attempts), ("error", 1));
    let error = charge.error.as_ref().unwrap();
    assert_eq!((error.message.as_str(), error.error_type.as_str()), ("card declined", "Declined"));

    // `metadata.retryable: false` also ends it, even when the error says retryable.
    let task = create(&mut s, &t);
    let e = s.claim(Instant::now(), DEFAULT_TIMEOUT).unwrap();
    let mut result = failure_for(&e, "no", "No", true);
    result.metadata.retryable = Some(false);
    assert_eq!(s.record(result, Instant::now(), SystemTime::now()), RecordOutcome::Failed);
    assert_eq!(view(&s, &task).status, "error");
}

#[test]
fn a_step_whose_policy_is_not_retryable_never_retries() {
    let yaml = RETRYING.replace(
        "{ name: charge, handler: { callable: Charge } }",
        "{ name: charge, handler: { callable: Charge }, retry: { retryable: false, max_attempts: 5 } }",
    );
    let t = Arc::new(template_with(&yaml, &no_jitter(5, 10, 100)));
    let mut s = store();
    let task = create(&mut s, &t);
    let e = s.claim(Instant::now(), DEFAULT_TIMEOUT).unwrap();
    assert!(!e.payload.workflow_step.retryable);
    let outcome = s.record(failure_for(&e, "busy", "Busy", true), Instant::now(), SystemTime::now());
    assert_eq!(outcome, RecordOutcome::Failed);
    assert_eq!(view(&s, &task).step("charge").unwrap().attempts, 1);
}

const THREE_ROOTS: &str = "\
name: fan
namespace_name: shapes
version: 1.0.0
steps:
  - { name: a, handler: { callable: A }, retry: { max_attempts: 1 } }
  - { name: b, handler: { callable: B } }
  - { name: c, handler: { callable: C } }
  - { name: d, handler: { callable: D }, dependencies: [b] }
";

#[test]
fn after_a_task_fails_its_other_ready_steps_are_not_dispatched() {
    let t = Arc::new(template(THREE_ROOTS));
    let mut s = store();
    let task = create(&mut s, &t);
    let now = Instant::now();
    let a = s.claim(now, DEFAULT_TIMEOUT).unwrap();
    let b = s.claim(now, DEFAULT_TIMEOUT).unwrap();
    assert_eq!((a.payload.workflow_step.name.as_str(), b.payload.workflow_step.name.as_str()), ("a", "b"));
    assert_eq!(step_status(&view(&s, &task), "c"), "enqueued");

    assert_eq!(s.record(failure_for(&a, "boom", "Boom", true), now, SystemTime::now()), RecordOutcome::Failed);
    assert_eq!(view(&s, &task).status, "error");
    assert!(claim_all(&mut s, now).is_empty(), "c must not be dispatched after the task failed");
    assert_eq!(step_status(&view(&s, &task), "c"), "pending");

    // The step already in flight may still finish; the task stays in error and b's
    // dependent never becomes ready.
    assert_eq!(record_ok(&mut s, &b, json!("b")), RecordOutcome::Completed { task_finished: false });
    let v = view(&s, &task);
    assert_eq!(v.status, "error");
    assert_eq!(step_status(&v, "b"), "complete");
    assert!(claim_all(&mut s, now + Duration::from_secs(60)).is_empty());
    assert_eq!(step_status(&view(&s, &task), "d"), "pending");
    assert_eq!(s.stats().steps_dispatched, 2);
    assert_eq!(s.stats().tasks_failed, 1);
}

#[test]
fn stale_results_are_ignored_and_counted() {
    let t = Arc::new(template_with(RETRYING, &no_jitter(3, 10, 100)));
    let mut s = store();
    let task = create(&mut s, &t);
    let now = Instant::now();
    let e = s.claim(now, DEFAULT_TIMEOUT).unwrap();

    // Wrong event id for a step in progress.
    let wrong = StepExecutionResult::success(json!("x"))
        .with_identity(StepIdentity { event_id: Uuid::new_v4(), ..e.identity() });
    assert_eq!(s.record(wrong, now, SystemTime::now()), RecordOutcome::Stale);
    assert_eq!(step_status(&view(&s, &task), "charge"), "in_progress", "a stale result changes nothing");
    // Unknown task, unknown step.
    let unknown_task = StepExecutionResult::success(json!("x"))
        .with_identity(StepIdentity { task_uuid: Uuid::new_v4(), ..e.identity() });
    assert_eq!(s.record(unknown_task, now, SystemTime::now()), RecordOutcome::Stale);
    let unknown_step = StepExecutionResult::success(json!("x"))
        .with_identity(StepIdentity { step_uuid: Uuid::new_v4(), ..e.identity() });
    assert_eq!(s.record(unknown_step, now, SystemTime::now()), RecordOutcome::Stale);

    // The real result, once; the second copy is stale.
    assert!(matches!(
        s.record(failure_for(&e, "busy", "Busy", true), now, SystemTime::now()),
        RecordOutcome::RetryScheduled { .. }
    ));
    assert_eq!(
        s.record(success_for(&e, json!("late")), now, SystemTime::now()),
        RecordOutcome::Stale,
        "already recorded"
    );
    let v = view(&s, &task);
    assert_eq!(step_status(&v, "charge"), "waiting_for_retry");
    assert!(v.step("charge").unwrap().result.is_none());

    // An old attempt's result cannot complete the new attempt.
    let retry = s.claim(now + Duration::from_secs(1), DEFAULT_TIMEOUT).unwrap();
    assert_eq!(s.record(success_for(&e, json!("old")), now, SystemTime::now()), RecordOutcome::Stale);
    assert_eq!(
        s.record(success_for(&retry, json!("new")), now, SystemTime::now()),
        RecordOutcome::Completed { task_finished: false }
    );
    assert_eq!(view(&s, &task).step("charge").unwrap().result.as_deref(), Some(&json!("new")));
    assert_eq!(s.stats().stale_results, 5);
}

#[test]
fn a_worker_shutdown_failure_does_not_use_an_attempt_and_requeues_at_once() {
    let yaml = RETRYING.replace(
        "{ name: charge, handler: { callable: Charge } }",
        "{ name: charge, handler: { callable: Charge }, retry: { max_attempts: 1 } }",
    );
    let t = Arc::new(template(&yaml));
    let mut s = store();
    let task = create(&mut s, &t);
    let now = Instant::now();
    let e = s.claim(now, DEFAULT_TIMEOUT).unwrap();
    let outcome =
        s.record(failure_for(&e, "worker stopped", error_types::WORKER_SHUTDOWN, true), now, SystemTime::now());
    assert_eq!(outcome, RecordOutcome::RetryScheduled { delay: Duration::ZERO });
    let v = view(&s, &task);
    let charge = v.step("charge").unwrap();
    assert_eq!((charge.status, charge.attempts), ("enqueued", 0));
    assert_eq!(charge.error.as_ref().unwrap().error_type, error_types::WORKER_SHUTDOWN);
    assert_eq!(v.status, "in_progress");

    let again = s.claim(now, DEFAULT_TIMEOUT).expect("ready again at once, with no backoff");
    assert_eq!(again.payload.workflow_step.attempts, 1, "the interrupted attempt was not counted");
    assert_eq!(record_ok(&mut s, &again, json!("ok")), RecordOutcome::Completed { task_finished: false });
    assert!(view(&s, &task).step("charge").unwrap().error.is_none());
}

#[test]
fn retention_forgets_the_oldest_finished_task_but_never_an_unfinished_one() {
    let t = Arc::new(template(&common::single_step_yaml("ret", "one", "only", "Only")));
    let mut s = Store::with_seed(2, 1);
    let unfinished = create(&mut s, &t);
    let _held = s.claim(Instant::now(), DEFAULT_TIMEOUT).unwrap();
    let mut finished = Vec::new();
    for i in 0..3 {
        let task = create(&mut s, &t);
        let e = s.claim(Instant::now(), DEFAULT_TIMEOUT).unwrap();
        assert_eq!(e.task_uuid, task);
        let result = if i == 1 { failure_for(&e, "nope", "Nope", false) } else { success_for(&e, json!(i)) };
        s.record(result, Instant::now(), SystemTime::now());
        finished.push(task);
    }
    assert!(s.task_status(&finished[0]).is_none(), "the oldest finished task is forgotten");
    assert_eq!(view(&s, &finished[1]).status, "error");
    assert_eq!(view(&s, &finished[2]).status, "complete");
    assert_eq!(view(&s, &unfinished).status, "in_progress", "unfinished tasks are never forgotten");
    assert_eq!(s.stats().tasks_in_memory, 3);
}

#[test]
fn step_timeout_seconds_overrides_the_default_deadline() {
    let yaml = "\
name: deadlines
namespace_name: shapes
version: 1.0.0
steps:
  - { name: quick, handler: { callable: Q }, timeout_seconds: 2.5 }
  - { name: default, handler: { callable: D } }
";
    let t = Arc::new(template(yaml));
    let mut s = store();
    create(&mut s, &t);
    let events = claim_all(&mut s, Instant::now());
    let by_name: HashMap<&str, Duration> =
        events.iter().map(|e| (e.payload.workflow_step.name.as_str(), e.timeout)).collect();
    assert_eq!(by_name["quick"], Duration::from_millis(2500));
    assert_eq!(by_name["default"], DEFAULT_TIMEOUT);
}

// --- the Orchestrator handle ----------------------------------------------------------

fn orchestrator(retention: usize) -> Orchestrator {
    let config = OrchestrationConfig { finished_task_retention: retention, ..OrchestrationConfig::default() };
    let o = Orchestrator::with_store(Store::with_seed(retention, 3), config);
    o.register_template(template(&common::single_step_yaml("ops", "single", "only", "Only")));
    o
}

fn request(context: Value) -> TaskRequest {
    TaskRequest { namespace: "ops".into(), name: "single".into(), version: None, context }
}

/// Claims the task's step and records a success through the handle.
fn finish_one(o: &Orchestrator) -> StepExecutionEvent {
    let mut events = Vec::new();
    o.claim_ready(1, DEFAULT_TIMEOUT, &mut events);
    let event = events.pop().expect("a ready step");
    assert!(matches!(
        o.record_result(success_for(&event, json!("done"))),
        RecordOutcome::Completed { task_finished: true }
    ));
    event
}

#[test]
fn retention_through_the_handle_answers_task_not_found_for_forgotten_tasks() {
    let o = orchestrator(2);
    let tasks: Vec<Uuid> = (0..3)
        .map(|_| {
            let task = o.create_task(request(json!({}))).unwrap();
            assert_eq!(finish_one(&o).task_uuid, task);
            task
        })
        .collect();
    match o.task_status(&tasks[0]) {
        Err(OrchestratorError::TaskNotFound(id)) => assert_eq!(id, tasks[0]),
        other => panic!("expected TaskNotFound, got {other:?}"),
    }
    assert_eq!(o.task_status(&tasks[1]).unwrap().status, "complete");
    assert_eq!(o.task_status(&tasks[2]).unwrap().status, "complete");
    let message = o.task_status(&tasks[0]).unwrap_err().to_string();
    assert!(message.contains(&tasks[0].to_string()), "{message}");
}

#[test]
fn create_task_rejects_a_context_that_is_not_an_object() {
    let o = orchestrator(10);
    for (context, kind) in
        [(json!([1, 2]), "an array"), (json!("text"), "a string"), (json!(3), "a number"), (Value::Null, "null")]
    {
        match o.create_task(request(context)) {
            Err(OrchestratorError::ContextNotAnObject { found }) => assert_eq!(found, kind),
            other => panic!("expected ContextNotAnObject, got {other:?}"),
        }
    }
    assert_eq!(o.stats().tasks_created, 0);
}

#[test]
fn create_task_names_an_unknown_template() {
    let o = orchestrator(10);
    let unknown_ns = o.create_task(TaskRequest { namespace: "nope".into(), ..request(json!({})) }).unwrap_err();
    assert!(
        matches!(unknown_ns, OrchestratorError::Template(TemplateError::UnknownNamespace { .. })),
        "{unknown_ns:?}"
    );
    assert!(unknown_ns.to_string().contains("nope"), "{unknown_ns}");
    let unknown_name = o.create_task(TaskRequest { name: "missing".into(), ..request(json!({})) }).unwrap_err();
    assert!(
        matches!(unknown_name, OrchestratorError::Template(TemplateError::UnknownTemplate { .. })),
        "{unknown_name:?}"
    );
    assert!(unknown_name.to_string().contains("missing"), "{unknown_name}");
    let unknown_version =
        o.create_task(TaskRequest { version: Some("9.9.9".into()), ..request(json!({})) }).unwrap_err();
    assert!(unknown_version.to_string().contains("9.9.9"), "{unknown_version}");
    assert_eq!(o.stats().tasks_created, 0);
}

#[test]
fn claim_ready_reports_when_the_next_retry_is_due() {
    let o = Orchestrator::with_store(Store::with_seed(10, 1), OrchestrationConfig::default());
    o.register_template(template_with(RETRYING, &no_jitter(3, 60_000, 60_000)));
    o.create_task(TaskRequest {
        namespace: "payments".into(),
        name: "retrying".into(),
        version: None,
        context: json!({}),
    })
    .unwrap();
    let mut events = Vec::new();
    assert_eq!(o.claim_ready(10, DEFAULT_TIMEOUT, &mut events), None);
    assert_eq!(events.len(), 1);
    let before = Instant::now();
    let outcome = o.record_result(failure_for(&events[0], "busy", "Busy", true));
    assert_eq!(outcome, RecordOutcome::RetryScheduled { delay: Duration::from_secs(60) });
    let mut more = Vec::new();
    let due = o.claim_ready(10, DEFAULT_TIMEOUT, &mut more).expect("a retry is scheduled");
    assert!(more.is_empty());
    assert!(due >= before + Duration::from_secs(60) && due <= Instant::now() + Duration::from_secs(60), "{due:?}");
}

#[test]
fn wait_for_task_blocking_returns_once_the_task_finishes() {
    let o = orchestrator(10);
    let task = o.create_task(request(json!({}))).unwrap();
    let worker = {
        let o = o.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            finish_one(&o);
        })
    };
    let outcome = o.wait_for_task_blocking(&task, PATIENCE, &|| false).unwrap();
    worker.join().unwrap();
    match outcome {
        WaitOutcome::Finished(view) => {
            assert_eq!(view.status, "complete");
            assert_eq!(view.steps[0].result.as_deref(), Some(&json!("done")));
        }
        other => panic!("expected Finished, got {other:?}"),
    }
    // A finished task answers at once.
    assert!(matches!(o.wait_for_task_blocking(&task, Duration::ZERO, &|| true).unwrap(), WaitOutcome::Finished(_)));
}

#[test]
fn wait_for_task_blocking_times_out_on_an_unfinished_task() {
    let o = orchestrator(10);
    let task = o.create_task(request(json!({}))).unwrap();
    let start = Instant::now();
    assert_eq!(o.wait_for_task_blocking(&task, Duration::from_millis(100), &|| false).unwrap(), WaitOutcome::TimedOut);
    assert!(start.elapsed() >= Duration::from_millis(100));
    assert!(start.elapsed() < Duration::from_secs(5));
    assert!(matches!(
        o.wait_for_task_blocking(&Uuid::new_v4(), Duration::from_millis(1), &|| false),
        Err(OrchestratorError::TaskNotFound(_))
    ));
}

#[test]
fn wait_for_task_blocking_is_interrupted_from_another_thread() {
    let o = orchestrator(10);
    let task = o.create_task(request(json!({}))).unwrap();
    let interrupted = Arc::new(AtomicBool::new(false));
    let interrupter = {
        let (o, flag) = (o.clone(), Arc::clone(&interrupted));
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            flag.store(true, Ordering::SeqCst);
            o.wake_blocking_waiters();
        })
    };
    let start = Instant::now();
    let outcome =
        o.wait_for_task_blocking(&task, Duration::from_secs(30), &|| interrupted.load(Ordering::SeqCst)).unwrap();
    interrupter.join().unwrap();
    assert_eq!(outcome, WaitOutcome::Interrupted);
    assert!(start.elapsed() >= Duration::from_millis(45), "returned before the interrupt");
    assert!(start.elapsed() < Duration::from_secs(5), "the interrupt was not noticed promptly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_wait_for_task_returns_the_finished_view_or_none_on_timeout() {
    let o = orchestrator(10);
    let task = o.create_task(request(json!({}))).unwrap();
    assert_eq!(o.wait_for_task(&task, Duration::from_millis(50)).await.unwrap(), None);
    let finisher = {
        let o = o.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(30)).await;
            finish_one(&o);
        })
    };
    let view = o.wait_for_task(&task, PATIENCE).await.unwrap().expect("finished");
    finisher.await.unwrap();
    assert_eq!(view.status, "complete");
}
