//! The store contract: every behaviour of `TaskStore` that callers rely on, written once
//! and run against each implementation (`contract_memory.rs`, `contract_postgres.rs`).
//!
//! Each test is an `async fn(Arc<dyn TaskStore>)` given a fresh, empty store; the
//! `contract_tests!` macro turns the list into `#[tokio::test]`s for a factory. Tests use
//! real time with millisecond backoffs, and wait with generous limits (`PATIENCE`) that
//! only bound a failing test — nothing here is a timing assertion.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use serde_json::{json, Value};
use uuid::Uuid;

use tasker_worker::{
    compile, error_types, parse_yaml, rules::AttemptDecision, CancelOutcome, NewTask, RecordOutcome, RetryDefaults,
    RetryOutcome, StepExecutionError, StepExecutionEvent, StepExecutionResult, StepIdentity, StepStatus, StoreError,
    TaskCursor, TaskFilter, TaskStatus, TaskStatusView, TaskStore, WorkerRegistration, WorkflowTemplate,
};

/// How long any wait may take before the test fails.
pub const PATIENCE: Duration = Duration::from_secs(15);
const TIMEOUT: Duration = Duration::from_secs(30);
const WORKER: &str = "contract-worker";

/// What a factory is asked for.
#[derive(Debug, Clone, Copy)]
pub struct StoreSettings {
    /// How long finished tasks stay readable.
    pub retention: Duration,
}

impl Default for StoreSettings {
    fn default() -> Self {
        Self { retention: Duration::from_secs(3600) }
    }
}

/// Retry defaults with millisecond backoff and no jitter.
pub fn defaults() -> RetryDefaults {
    RetryDefaults { retryable: true, max_attempts: 3, backoff_base_ms: 5, max_backoff_ms: 20, jitter: 0.0 }
}

pub fn template(yaml: &str) -> Arc<WorkflowTemplate> {
    let parsed = parse_yaml(yaml, None).unwrap_or_else(|e| panic!("test template does not parse: {e}\n{yaml}"));
    Arc::new(compile(parsed, &defaults(), None).unwrap_or_else(|e| panic!("test template does not compile: {e}")))
}

pub const LINEAR: &str = "\
name: linear
namespace_name: shapes
version: 1.0.0
steps:
  - { name: a, handler: { callable: A } }
  - { name: b, handler: { callable: B }, dependencies: [a] }
  - { name: c, handler: { callable: C }, dependencies: [b] }
";

pub const DIAMOND: &str = "\
name: diamond
namespace_name: shapes
version: 1.0.0
steps:
  - { name: start, handler: { callable: Start } }
  - { name: left, handler: { callable: Left }, dependencies: [start] }
  - { name: right, handler: { callable: Right }, dependencies: [start] }
  - { name: join, handler: { callable: Join }, dependencies: [left, right] }
";

pub const MIXED: &str = "\
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

/// Three roots; `a` fails at once; `d` waits for `b`.
pub const THREE_ROOTS: &str = "\
name: three_roots
namespace_name: shapes
version: 1.0.0
steps:
  - { name: a, handler: { callable: A }, retry: { max_attempts: 1 } }
  - { name: b, handler: { callable: B } }
  - { name: c, handler: { callable: C } }
  - { name: d, handler: { callable: D }, dependencies: [b] }
";

pub fn one_step(namespace: &str, name: &str, version: &str) -> String {
    format!("name: {name}\nnamespace_name: {namespace}\nversion: {version}\nsteps:\n  - {{ name: only, handler: {{ callable: Only }} }}\n")
}

// ------------------------------------------------------------------ helpers

pub async fn register(store: &dyn TaskStore, yaml: &str) -> Arc<WorkflowTemplate> {
    let t = template(yaml);
    store.register_templates(vec![Arc::clone(&t)]).await.expect("templates register");
    t
}

pub async fn create(store: &dyn TaskStore, t: &WorkflowTemplate, context: Value) -> Uuid {
    let created = store.create_task(NewTask::new(&t.namespace, &t.name, context)).await.expect("task is created");
    assert!(created.created);
    created.task_uuid
}

pub async fn claim(store: &dyn TaskStore, max: usize) -> Vec<StepExecutionEvent> {
    let mut out = Vec::new();
    store.claim(WORKER, Uuid::new_v4(), max, TIMEOUT, &mut out).await.expect("claim works");
    assert!(out.len() <= max, "claimed {} steps, asked for at most {max}", out.len());
    out
}

/// Claims until `n` steps are claimed (retries and delays may make them due later).
pub async fn claim_n(store: &dyn TaskStore, n: usize) -> Vec<StepExecutionEvent> {
    let deadline = Instant::now() + PATIENCE;
    let mut got = Vec::new();
    while got.len() < n {
        got.extend(claim(store, n - got.len()).await);
        if got.len() < n {
            assert!(Instant::now() < deadline, "only {} of {n} steps became claimable", got.len());
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    got
}

/// Asserts nothing becomes claimable for `quiet`.
pub async fn assert_nothing_claimable(store: &dyn TaskStore, quiet: Duration) {
    let until = Instant::now() + quiet;
    loop {
        let got = claim(store, 10).await;
        assert!(got.is_empty(), "expected nothing claimable, got {:?}", names(&got));
        if Instant::now() >= until {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub fn names(events: &[StepExecutionEvent]) -> Vec<String> {
    let mut names: Vec<String> = events.iter().map(|e| e.payload.workflow_step.name.clone()).collect();
    names.sort();
    names
}

pub fn success(event: &StepExecutionEvent, value: Value) -> StepExecutionResult {
    StepExecutionResult::success(value).with_identity(event.identity())
}

pub fn failure(event: &StepExecutionEvent, message: &str, retryable: bool) -> StepExecutionResult {
    StepExecutionResult::failure(StepExecutionError::new(message, "Boom", retryable)).with_identity(event.identity())
}

pub async fn record(store: &dyn TaskStore, result: StepExecutionResult) -> RecordOutcome {
    let mut batch = vec![result];
    let mut outcomes = store.record(&mut batch).await.expect("record works");
    assert!(batch.is_empty(), "the batch was not drained");
    assert_eq!(outcomes.len(), 1);
    outcomes.remove(0)
}

pub async fn status(store: &dyn TaskStore, uuid: Uuid) -> TaskStatusView {
    store.task_status(uuid).await.expect("task is readable")
}

pub fn step_status(view: &TaskStatusView, name: &str) -> StepStatus {
    view.step(name).unwrap_or_else(|| panic!("no step {name}")).status
}

fn value_of(name: &str) -> Value {
    json!({ "from": name })
}

// ------------------------------------------------------------------ templates

pub async fn templates_are_listed_and_the_highest_stable_version_is_the_default(store: Arc<dyn TaskStore>) {
    for version in ["1.2.0", "1.10.0", "2.0.0-beta.1"] {
        register(store.as_ref(), &one_step("ver", "pick", version)).await;
    }
    let listed: Vec<String> =
        store.templates().await.unwrap().iter().filter(|t| t.namespace == "ver").map(|t| t.version.clone()).collect();
    assert_eq!(listed, ["1.2.0", "1.10.0", "2.0.0-beta.1"], "ordered by semantic version");

    let default = store.create_task(NewTask::new("ver", "pick", json!({}))).await.unwrap();
    assert_eq!(status(store.as_ref(), default.task_uuid).await.version, "1.10.0", "a prerelease runs only when named");
    let named = NewTask { version: Some("2.0.0-beta.1".into()), ..NewTask::new("ver", "pick", json!({})) };
    let named = store.create_task(named).await.unwrap();
    assert_eq!(status(store.as_ref(), named.task_uuid).await.version, "2.0.0-beta.1");
}

pub async fn create_names_an_unknown_template_and_rejects_a_context_that_is_not_an_object(store: Arc<dyn TaskStore>) {
    register(store.as_ref(), LINEAR).await;
    match store.create_task(NewTask::new("shapes", "nope", json!({}))).await {
        Err(StoreError::Template(e)) => assert!(e.to_string().contains("linear"), "names what is known: {e}"),
        other => panic!("expected a template error, got {other:?}"),
    }
    match store.create_task(NewTask::new("shapes", "linear", json!([1, 2]))).await {
        Err(StoreError::InvalidContext(message)) => assert!(message.contains("an array"), "{message}"),
        other => panic!("expected an invalid context, got {other:?}"),
    }
    let listed = store.list_tasks(TaskFilter::default()).await.unwrap();
    assert!(listed.is_empty(), "a refused task was created: {listed:?}");
}

// ------------------------------------------------------------------ readiness

pub async fn a_linear_chain_runs_one_step_at_a_time_and_the_task_moves_to_complete(store: Arc<dyn TaskStore>) {
    let t = register(store.as_ref(), LINEAR).await;
    let task = create(store.as_ref(), &t, json!({"order": 7})).await;
    let v = status(store.as_ref(), task).await;
    assert_eq!(v.status, TaskStatus::Pending);
    assert_eq!(v.context.as_ref(), &json!({"order": 7}));
    assert_eq!(
        v.steps.iter().map(|s| s.status).collect::<Vec<_>>(),
        [StepStatus::Enqueued, StepStatus::Pending, StepStatus::Pending]
    );

    for (name, parent) in [("a", None), ("b", Some("a")), ("c", Some("b"))] {
        let events = claim(store.as_ref(), 10).await;
        assert_eq!(names(&events), [name], "only {name} is ready");
        let event = &events[0];
        assert_eq!(event.task_uuid, task);
        assert_eq!(event.payload.task.context.as_ref(), &json!({"order": 7}));
        assert_eq!(event.payload.workflow_step.attempts, 1);
        let parents: Vec<&String> = event.payload.dependency_results.keys().collect();
        assert_eq!(parents, parent.into_iter().map(str::to_string).collect::<Vec<_>>().iter().collect::<Vec<_>>());
        if let Some(parent) = parent {
            assert_eq!(event.payload.dependency_results[parent].as_ref(), &value_of(parent));
        }
        assert_eq!(status(store.as_ref(), task).await.status, TaskStatus::InProgress);
        let outcome = record(store.as_ref(), success(event, value_of(name))).await;
        assert_eq!(outcome.finished(), if name == "c" { Some(TaskStatus::Complete) } else { None });
    }
    let v = status(store.as_ref(), task).await;
    assert_eq!(v.status, TaskStatus::Complete);
    assert!(v.finished_at.is_some());
    for step in &v.steps {
        assert_eq!((step.status, step.attempts), (StepStatus::Complete, 1));
        assert_eq!(step.result.as_deref(), Some(&value_of(&step.name)));
        assert_eq!(step.history.len(), 1);
        assert_eq!(step.history[0].outcome, "success");
    }
    assert_eq!(v.step("c").unwrap().dependencies, ["b"]);
}

/// Runs a task completing in-flight steps in a seeded random order, checking at every
/// claim that the step's parents are all complete and its dependency results are exactly
/// its parents' results.
async fn run_checking_readiness(store: &dyn TaskStore, t: &WorkflowTemplate, seed: u64) {
    let mut rng = fastrand::Rng::with_seed(seed);
    let task = create(store, t, json!({"seed": seed})).await;
    let mut completed: HashSet<String> = HashSet::new();
    let mut claimed_once: HashSet<String> = HashSet::new();
    let mut in_flight: Vec<StepExecutionEvent> = Vec::new();
    loop {
        for event in claim(store, 100).await {
            let name = event.payload.workflow_step.name.clone();
            assert!(claimed_once.insert(name.clone()), "{name} claimed twice");
            let index = t.step_index(&name).unwrap();
            let parents: BTreeMap<String, Value> =
                t.dependencies[index].iter().map(|&p| (t.steps[p].name.clone(), value_of(&t.steps[p].name))).collect();
            for parent in parents.keys() {
                assert!(
                    completed.contains(parent),
                    "{name} claimed before its parent {parent} completed (seed {seed})"
                );
            }
            let got: BTreeMap<String, Value> =
                event.payload.dependency_results.iter().map(|(k, v)| (k.clone(), Value::clone(v))).collect();
            assert_eq!(got, parents, "dependency results of {name}");
            in_flight.push(event);
        }
        if in_flight.is_empty() {
            break;
        }
        let event = in_flight.swap_remove(rng.usize(0..in_flight.len()));
        let name = event.payload.workflow_step.name.clone();
        record(store, success(&event, value_of(&name))).await;
        completed.insert(name);
    }
    assert_eq!(completed.len(), t.steps.len(), "every step ran (seed {seed})");
    assert_eq!(status(store, task).await.status, TaskStatus::Complete);
}

pub async fn readiness_holds_in_every_shape_and_completion_order(store: Arc<dyn TaskStore>) {
    for yaml in [LINEAR, DIAMOND, MIXED] {
        let t = register(store.as_ref(), yaml).await;
        for seed in 0..6 {
            run_checking_readiness(store.as_ref(), &t, seed).await;
        }
    }
}

pub async fn a_batch_records_in_order_and_a_join_sees_both_parents(store: Arc<dyn TaskStore>) {
    let t = register(store.as_ref(), DIAMOND).await;
    let task = create(store.as_ref(), &t, json!({})).await;
    let start = claim_n(store.as_ref(), 1).await.remove(0);
    record(store.as_ref(), success(&start, json!(1))).await;
    let branches = claim_n(store.as_ref(), 2).await;
    assert_eq!(names(&branches), ["left", "right"]);
    assert!(claim(store.as_ref(), 10).await.is_empty(), "join is not ready before both branches");
    let stale = StepExecutionResult::success(json!("x"))
        .with_identity(StepIdentity { event_id: Uuid::new_v4(), ..branches[0].identity() });
    let mut batch = vec![success(&branches[0], json!(2)), stale, success(&branches[1], json!(3))];
    let outcomes = store.record(&mut batch).await.unwrap();
    assert!(batch.is_empty());
    assert_eq!(outcomes.iter().map(RecordOutcome::is_stale).collect::<Vec<_>>(), [false, true, false]);
    let join = claim_n(store.as_ref(), 1).await.remove(0);
    let mut parents: Vec<(String, Value)> =
        join.payload.dependency_results.iter().map(|(k, v)| (k.clone(), Value::clone(v))).collect();
    parents.sort_by(|a, b| a.0.cmp(&b.0));
    let expected: Vec<(String, Value)> = vec![("left".into(), json!(2)), ("right".into(), json!(3))];
    assert_eq!(parents, expected);
    record(store.as_ref(), success(&join, json!(4))).await;
    assert_eq!(status(store.as_ref(), task).await.status, TaskStatus::Complete);
}

/// A batch of successes across tasks: each task finishes on its own last result, a task
/// with steps left does not, and the same result sent twice in one batch counts once.
pub async fn a_batch_of_successes_finishes_each_task_on_its_last_result(store: Arc<dyn TaskStore>) {
    let one = register(store.as_ref(), &one_step("batch", "single", "1.0.0")).await;
    let chain = register(store.as_ref(), LINEAR).await;
    let first = create(store.as_ref(), &one, json!({})).await;
    let second = create(store.as_ref(), &one, json!({})).await;
    let longer = create(store.as_ref(), &chain, json!({})).await;
    let mut events = claim_n(store.as_ref(), 3).await;
    events.sort_by_key(|e| [first, second, longer].iter().position(|&t| t == e.task_uuid));
    let mut batch = vec![
        success(&events[0], json!("one")),
        success(&events[2], json!("a")),
        success(&events[1], json!("two")),
        success(&events[0], json!("again")),
    ];
    let outcomes = store.record(&mut batch).await.unwrap();
    let finished: Vec<Option<TaskStatus>> = outcomes.iter().map(RecordOutcome::finished).collect();
    assert_eq!(finished, [Some(TaskStatus::Complete), None, Some(TaskStatus::Complete), None]);
    assert_eq!(outcomes.iter().map(RecordOutcome::is_stale).collect::<Vec<_>>(), [false, false, false, true]);
    let v = status(store.as_ref(), first).await;
    assert_eq!((v.status, v.steps[0].result.as_deref()), (TaskStatus::Complete, Some(&json!("one"))));
    assert_eq!(status(store.as_ref(), second).await.status, TaskStatus::Complete);
    assert_eq!(status(store.as_ref(), longer).await.status, TaskStatus::InProgress);
    let next = claim_n(store.as_ref(), 1).await;
    assert_eq!((names(&next), next[0].task_uuid), (vec!["b".to_string()], longer));

    // Without the repeat: the batch of successes finishes both tasks of its own.
    let third = create(store.as_ref(), &one, json!({})).await;
    let mut events = claim_n(store.as_ref(), 1).await;
    events.extend(next);
    let mut batch: Vec<StepExecutionResult> = events.iter().map(|e| success(e, json!(3))).collect();
    let outcomes = store.record(&mut batch).await.unwrap();
    let finished: Vec<Option<TaskStatus>> = outcomes.iter().map(RecordOutcome::finished).collect();
    assert_eq!(finished, [Some(TaskStatus::Complete), None]);
    assert_eq!(status(store.as_ref(), third).await.status, TaskStatus::Complete);
    assert_eq!(status(store.as_ref(), longer).await.steps[1].status, StepStatus::Complete);
}

// ------------------------------------------------------------------ retries and failure

pub async fn a_retryable_failure_runs_again_until_max_attempts_then_the_task_is_in_error(store: Arc<dyn TaskStore>) {
    let t = register(store.as_ref(), &one_step("retry", "flaky", "1.0.0")).await;
    let task = create(store.as_ref(), &t, json!({})).await;
    for attempt in 1..=3u32 {
        let event = claim_n(store.as_ref(), 1).await.remove(0);
        assert_eq!(event.payload.workflow_step.attempts, attempt);
        let outcome = record(store.as_ref(), failure(&event, &format!("busy {attempt}"), true)).await;
        let v = status(store.as_ref(), task).await;
        if attempt < 3 {
            assert!(matches!(outcome.decision(), Some(AttemptDecision::Retry { .. })), "{outcome:?}");
            assert_eq!(step_status(&v, "only"), StepStatus::WaitingForRetry);
            assert_eq!(v.step("only").unwrap().error.as_ref().unwrap().message, format!("busy {attempt}"));
        } else {
            assert_eq!(outcome.decision(), Some(AttemptDecision::Fail));
            assert_eq!(outcome.finished(), Some(TaskStatus::Error));
            assert_eq!(v.status, TaskStatus::Error);
            assert_eq!(step_status(&v, "only"), StepStatus::Error);
            let history: Vec<&str> = v.step("only").unwrap().history.iter().map(|h| h.outcome.as_ref()).collect();
            assert_eq!(history, ["failure", "failure", "failure"]);
        }
    }
    assert_nothing_claimable(store.as_ref(), Duration::from_millis(60)).await;
}

pub async fn a_handler_saying_not_retryable_ends_the_step_at_once(store: Arc<dyn TaskStore>) {
    let t = register(store.as_ref(), &one_step("retry", "final", "1.0.0")).await;
    let task = create(store.as_ref(), &t, json!({})).await;
    let event = claim_n(store.as_ref(), 1).await.remove(0);
    let outcome = record(store.as_ref(), failure(&event, "card declined", false)).await;
    assert_eq!(outcome.finished(), Some(TaskStatus::Error));
    let v = status(store.as_ref(), task).await;
    let step = v.step("only").unwrap();
    assert_eq!((step.status, step.attempts), (StepStatus::Error, 1));
    assert_eq!(step.error.as_ref().unwrap().message, "card declined");
}

pub async fn a_recorded_error_keeps_its_code_context_and_backtrace(store: Arc<dyn TaskStore>) {
    let t = register(store.as_ref(), &one_step("retry", "coded", "1.0.0")).await;
    let task = create(store.as_ref(), &t, json!({})).await;
    let event = claim_n(store.as_ref(), 1).await.remove(0);
    let mut error = StepExecutionError::new("declined", "PaymentError", false);
    error.error_code = Some("CARD_DECLINED".into());
    error.context = Some(json!({"card": "visa", "attempt": 1}));
    error.backtrace = vec!["pay.rb:10:in `call'".into()];
    record(store.as_ref(), StepExecutionResult::failure(error.clone()).with_identity(event.identity())).await;
    let recorded = status(store.as_ref(), task).await.step("only").unwrap().error.clone().unwrap();
    assert_eq!(recorded.error_code, error.error_code);
    assert_eq!(recorded.context, error.context);
    assert_eq!(recorded.backtrace, error.backtrace);
}

pub async fn a_retry_after_sets_the_next_attempts_delay(store: Arc<dyn TaskStore>) {
    let t = register(store.as_ref(), &one_step("retry", "after", "1.0.0")).await;
    create(store.as_ref(), &t, json!({})).await;
    let event = claim_n(store.as_ref(), 1).await.remove(0);
    let mut error = StepExecutionError::new("rate limited", "RateLimited", true);
    error.retry_after = Some(Duration::from_millis(400));
    let failed_at = Instant::now();
    let outcome = record(store.as_ref(), StepExecutionResult::failure(error).with_identity(event.identity())).await;
    assert_eq!(outcome.decision(), Some(AttemptDecision::Retry { delay: Duration::from_millis(400) }));
    let again = claim_n(store.as_ref(), 1).await.remove(0);
    assert!(failed_at.elapsed() >= Duration::from_millis(400), "ran again after {:?}", failed_at.elapsed());
    assert_eq!(again.payload.workflow_step.attempts, 2);
}

pub async fn a_failed_task_lets_running_siblings_finish_then_is_in_error_and_skips_the_rest(store: Arc<dyn TaskStore>) {
    let t = register(store.as_ref(), THREE_ROOTS).await;
    let task = create(store.as_ref(), &t, json!({})).await;
    let roots = claim_n(store.as_ref(), 3).await;
    assert_eq!(names(&roots), ["a", "b", "c"]);
    let by_name = |n: &str| roots.iter().find(|e| e.payload.workflow_step.name == n).unwrap().clone();

    let outcome = record(store.as_ref(), failure(&by_name("a"), "boom", true)).await;
    assert_eq!(outcome.decision(), Some(AttemptDecision::Fail));
    assert_eq!(outcome.finished(), None, "b and c are still running: the task is not finished");
    let v = status(store.as_ref(), task).await;
    assert_eq!(v.status, TaskStatus::InProgress);
    assert!(v.finished_at.is_none());

    // A sibling still running finishes and its result is kept; its dependent never starts.
    record(store.as_ref(), success(&by_name("b"), json!("b"))).await;
    assert_nothing_claimable(store.as_ref(), Duration::from_millis(30)).await;
    let outcome = record(store.as_ref(), failure(&by_name("c"), "c fails too", true)).await;
    assert_eq!(outcome.decision(), Some(AttemptDecision::Fail), "a closed task retries nothing");
    assert_eq!(outcome.finished(), Some(TaskStatus::Error));
    let v = status(store.as_ref(), task).await;
    assert_eq!(v.status, TaskStatus::Error);
    assert!(v.finished_at.is_some());
    assert_eq!(step_status(&v, "a"), StepStatus::Error);
    assert_eq!(step_status(&v, "b"), StepStatus::Complete);
    assert_eq!(v.step("b").unwrap().result.as_deref(), Some(&json!("b")));
    assert_eq!(step_status(&v, "c"), StepStatus::Error);
    assert_eq!(step_status(&v, "d"), StepStatus::Skipped);
}

pub async fn stale_results_change_nothing(store: Arc<dyn TaskStore>) {
    let t = register(store.as_ref(), &one_step("stale", "one", "1.0.0")).await;
    let task = create(store.as_ref(), &t, json!({})).await;
    let event = claim_n(store.as_ref(), 1).await.remove(0);
    for identity in [
        StepIdentity { event_id: Uuid::new_v4(), ..event.identity() },
        StepIdentity { task_uuid: Uuid::new_v4(), ..event.identity() },
        StepIdentity { step_uuid: Uuid::new_v4(), ..event.identity() },
    ] {
        let outcome = record(store.as_ref(), StepExecutionResult::success(json!("x")).with_identity(identity)).await;
        assert!(outcome.is_stale());
    }
    assert_eq!(step_status(&status(store.as_ref(), task).await, "only"), StepStatus::InProgress);
    record(store.as_ref(), failure(&event, "busy", true)).await;
    assert!(record(store.as_ref(), success(&event, json!("late"))).await.is_stale(), "already recorded");
    let retry = claim_n(store.as_ref(), 1).await.remove(0);
    assert!(record(store.as_ref(), success(&event, json!("old"))).await.is_stale(), "an old attempt");
    record(store.as_ref(), success(&retry, json!("new"))).await;
    let v = status(store.as_ref(), task).await;
    assert_eq!(v.step("only").unwrap().result.as_deref(), Some(&json!("new")));
}

pub async fn a_worker_shutdown_does_not_use_an_attempt_and_the_step_is_ready_at_once(store: Arc<dyn TaskStore>) {
    let yaml =
        one_step("stop", "once", "1.0.0").replace("callable: Only }", "callable: Only }, retry: { max_attempts: 1 }");
    let t = register(store.as_ref(), &yaml).await;
    let task = create(store.as_ref(), &t, json!({})).await;
    let event = claim_n(store.as_ref(), 1).await.remove(0);
    let stopped =
        StepExecutionResult::failure(StepExecutionError::new("worker stopped", error_types::WORKER_SHUTDOWN, true))
            .with_identity(event.identity());
    assert_eq!(record(store.as_ref(), stopped).await.decision(), Some(AttemptDecision::Requeue));
    let v = status(store.as_ref(), task).await;
    let step = v.step("only").unwrap();
    assert_eq!((step.status, step.attempts), (StepStatus::Enqueued, 0));
    let again = claim(store.as_ref(), 1).await;
    assert_eq!(again.len(), 1, "ready again at once, with no backoff");
    assert_eq!(again[0].payload.workflow_step.attempts, 1, "the interrupted attempt was not counted");
    record(store.as_ref(), success(&again[0], json!("ok"))).await;
    assert_eq!(status(store.as_ref(), task).await.status, TaskStatus::Complete);
}

pub async fn a_step_timeout_overrides_the_default_deadline(store: Arc<dyn TaskStore>) {
    let yaml = one_step("deadline", "t", "1.0.0").replace("callable: Only }", "callable: Only }, timeout_seconds: 2.5");
    let t = register(store.as_ref(), &yaml).await;
    create(store.as_ref(), &t, json!({})).await;
    let d = register(store.as_ref(), &one_step("deadline", "d", "1.0.0")).await;
    create(store.as_ref(), &d, json!({})).await;
    let events = claim_n(store.as_ref(), 2).await;
    for event in events {
        let expected = if event.payload.task.name == "t" { Duration::from_millis(2500) } else { TIMEOUT };
        assert_eq!(event.timeout, expected);
    }
}

// ------------------------------------------------------------------ controls

pub async fn cancelling_a_task_that_has_not_started_cancels_it_at_once(store: Arc<dyn TaskStore>) {
    let t = register(store.as_ref(), LINEAR).await;
    let task = create(store.as_ref(), &t, json!({})).await;
    let outcome = store.cancel_task(task, Some("customer changed their mind".into())).await.unwrap();
    assert_eq!(outcome, CancelOutcome::Cancelled);
    let v = status(store.as_ref(), task).await;
    assert_eq!(v.status, TaskStatus::Cancelled);
    assert_eq!(v.cancel_reason.as_deref(), Some("customer changed their mind"));
    assert!(v.steps.iter().all(|s| s.status == StepStatus::Skipped), "{:?}", v.steps);
    assert_nothing_claimable(store.as_ref(), Duration::from_millis(30)).await;
    assert_eq!(
        store.cancel_task(task, None).await.unwrap(),
        CancelOutcome::AlreadyFinished(TaskStatus::Cancelled),
        "a second cancel changes nothing"
    );
}

pub async fn a_cancelled_task_waits_for_its_running_steps_then_is_cancelled(store: Arc<dyn TaskStore>) {
    let t = register(store.as_ref(), DIAMOND).await;
    let task = create(store.as_ref(), &t, json!({})).await;
    let start = claim_n(store.as_ref(), 1).await.remove(0);
    record(store.as_ref(), success(&start, json!(1))).await;
    let branches = claim_n(store.as_ref(), 2).await;
    let outcome = store.cancel_task(task, None).await.unwrap();
    assert_eq!(outcome, CancelOutcome::Cancelling { in_flight: 2 });
    assert!(store.feed().is_cancelled(&task), "running handlers can see the cancel");
    assert_eq!(status(store.as_ref(), task).await.status, TaskStatus::InProgress);
    let first = record(store.as_ref(), success(&branches[0], json!("kept"))).await;
    assert_eq!(first.finished(), None);
    let last = record(store.as_ref(), failure(&branches[1], "interrupted", true)).await;
    assert_eq!(last.finished(), Some(TaskStatus::Cancelled));
    let v = status(store.as_ref(), task).await;
    assert_eq!(v.status, TaskStatus::Cancelled);
    let kept = &branches[0].payload.workflow_step.name;
    assert_eq!(v.step(kept).unwrap().result.as_deref(), Some(&json!("kept")), "a finished handler's result is kept");
    assert_eq!(step_status(&v, "join"), StepStatus::Skipped);
    assert_nothing_claimable(store.as_ref(), Duration::from_millis(40)).await;
}

pub async fn cancelling_a_finished_or_unknown_task_changes_nothing(store: Arc<dyn TaskStore>) {
    let t = register(store.as_ref(), &one_step("cancel", "done", "1.0.0")).await;
    let task = create(store.as_ref(), &t, json!({})).await;
    let event = claim_n(store.as_ref(), 1).await.remove(0);
    record(store.as_ref(), success(&event, json!(1))).await;
    assert_eq!(store.cancel_task(task, None).await.unwrap(), CancelOutcome::AlreadyFinished(TaskStatus::Complete));
    assert_eq!(status(store.as_ref(), task).await.status, TaskStatus::Complete);
    let unknown = Uuid::new_v4();
    assert!(matches!(store.cancel_task(unknown, None).await, Err(StoreError::TaskNotFound(u)) if u == unknown));
}

pub async fn retrying_a_failed_task_reruns_the_failed_step_with_a_fresh_budget_then_the_rest(
    store: Arc<dyn TaskStore>,
) {
    let yaml = "\
name: retried
namespace_name: ctl
version: 1.0.0
steps:
  - { name: a, handler: { callable: A } }
  - { name: b, handler: { callable: B }, dependencies: [a], retry: { max_attempts: 2 } }
  - { name: c, handler: { callable: C }, dependencies: [b] }
";
    let t = register(store.as_ref(), yaml).await;
    let task = create(store.as_ref(), &t, json!({})).await;
    let a = claim_n(store.as_ref(), 1).await.remove(0);
    record(store.as_ref(), success(&a, json!("a"))).await;
    for _ in 0..2 {
        let b = claim_n(store.as_ref(), 1).await.remove(0);
        record(store.as_ref(), failure(&b, "down", true)).await;
    }
    let v = status(store.as_ref(), task).await;
    assert_eq!((v.status, step_status(&v, "c")), (TaskStatus::Error, StepStatus::Skipped));
    assert_eq!(store.stats().await.unwrap().tasks_with(TaskStatus::Error), 1);

    let outcome = store.retry_task(task).await.unwrap();
    assert_eq!(outcome, RetryOutcome::Retrying { failed_steps: 1, skipped_steps: 1 });
    let v = status(store.as_ref(), task).await;
    assert_eq!(v.status, TaskStatus::InProgress);
    assert!(v.finished_at.is_none());
    assert_eq!(store.stats().await.unwrap().tasks_with(TaskStatus::Error), 0, "no longer counted as failed");
    assert_eq!((step_status(&v, "b"), step_status(&v, "c")), (StepStatus::Enqueued, StepStatus::Pending));
    let b = claim_n(store.as_ref(), 1).await.remove(0);
    assert_eq!(b.payload.workflow_step.name, "b");
    assert_eq!(b.payload.workflow_step.attempts, 1, "a fresh attempt budget");
    assert_eq!(b.payload.dependency_results["a"].as_ref(), &json!("a"), "a completed step is not run again");
    record(store.as_ref(), success(&b, json!("b"))).await;
    let c = claim_n(store.as_ref(), 1).await.remove(0);
    record(store.as_ref(), success(&c, json!("c"))).await;
    let v = status(store.as_ref(), task).await;
    assert_eq!(v.status, TaskStatus::Complete);
    assert_eq!(v.step("a").unwrap().attempts, 1);
    assert_eq!(v.step("b").unwrap().history.len(), 3, "the history keeps the failed attempts");
    let counted = store.stats().await.unwrap();
    assert_eq!((counted.tasks_with(TaskStatus::Complete), counted.tasks_with(TaskStatus::Error)), (1, 0));
    assert_eq!(store.retry_task(task).await.unwrap(), RetryOutcome::NotFailed(TaskStatus::Complete));
}

pub async fn an_idempotency_key_answers_the_first_task_and_creates_nothing_more(store: Arc<dyn TaskStore>) {
    let t = register(store.as_ref(), &one_step("idem", "order", "1.0.0")).await;
    let other = register(store.as_ref(), &one_step("idem", "refund", "1.0.0")).await;
    let keyed = |key: &str| NewTask { idempotency_key: Some(key.into()), ..NewTask::new("idem", "order", json!({})) };
    let first = store.create_task(keyed("order-42")).await.unwrap();
    assert!(first.created);
    let again = store.create_task(keyed("order-42")).await.unwrap();
    assert_eq!((again.task_uuid, again.created), (first.task_uuid, false));
    assert_eq!(status(store.as_ref(), first.task_uuid).await.idempotency_key.as_deref(), Some("order-42"));

    // Many at once, one key: one task.
    let calls = (0..16).map(|_| {
        let store = Arc::clone(&store);
        tokio::spawn(async move { store.create_task(keyed("order-43")).await.unwrap() })
    });
    let results: Vec<_> = futures::future::join_all(calls).await.into_iter().map(|r| r.unwrap()).collect();
    let uuids: HashSet<Uuid> = results.iter().map(|r| r.task_uuid).collect();
    assert_eq!(uuids.len(), 1, "one key made {} tasks", uuids.len());
    assert_eq!(results.iter().filter(|r| r.created).count(), 1);

    let conflicting =
        NewTask { idempotency_key: Some("order-42".into()), ..NewTask::new("idem", &other.name, json!({})) };
    assert!(matches!(store.create_task(conflicting).await, Err(StoreError::IdempotencyConflict { .. })));
    let tasks = store.list_tasks(TaskFilter { namespace: Some("idem".into()), ..TaskFilter::default() }).await.unwrap();
    assert_eq!(tasks.len(), 2);
    let _ = t;
}

pub async fn a_task_with_a_run_at_starts_no_step_before_then(store: Arc<dyn TaskStore>) {
    register(store.as_ref(), &one_step("later", "one", "1.0.0")).await;
    let run_at = SystemTime::now() + Duration::from_millis(500);
    let task = NewTask { run_at: Some(run_at), ..NewTask::new("later", "one", json!({})) };
    let uuid = store.create_task(task).await.unwrap().task_uuid;
    let v = status(store.as_ref(), uuid).await;
    assert_eq!((v.status, step_status(&v, "only")), (TaskStatus::Pending, StepStatus::Pending));
    assert!(v.run_at.is_some());
    assert_nothing_claimable(store.as_ref(), Duration::from_millis(250)).await;
    let event = claim_n(store.as_ref(), 1).await.remove(0);
    assert!(SystemTime::now() >= run_at, "dispatched before its run_at");
    assert_eq!(event.task_uuid, uuid);
}

pub async fn higher_priority_steps_are_claimed_first(store: Arc<dyn TaskStore>) {
    register(store.as_ref(), &one_step("prio", "one", "1.0.0")).await;
    let mut expected = Vec::new();
    for priority in [0, 0, 10, -5, 3] {
        let task = NewTask { priority, ..NewTask::new("prio", "one", json!({})) };
        expected.push((priority, store.create_task(task).await.unwrap().task_uuid));
    }
    // Stable by creation within a priority.
    expected.sort_by_key(|e| std::cmp::Reverse(e.0));
    let mut order = Vec::new();
    for _ in 0..5 {
        order.extend(claim(store.as_ref(), 1).await.into_iter().map(|e| e.task_uuid));
    }
    assert_eq!(order, expected.iter().map(|(_, u)| *u).collect::<Vec<_>>());
}

pub async fn max_in_flight_caps_the_running_steps_of_a_template(store: Arc<dyn TaskStore>) {
    let yaml = one_step("capped", "one", "1.0.0").replace("version: 1.0.0\n", "version: 1.0.0\nmax_in_flight: 2\n");
    let t = register(store.as_ref(), &yaml).await;
    for _ in 0..5 {
        create(store.as_ref(), &t, json!({})).await;
    }
    let running = claim(store.as_ref(), 10).await;
    assert_eq!(running.len(), 2);
    assert!(claim(store.as_ref(), 10).await.is_empty(), "claimed past max_in_flight");
    record(store.as_ref(), success(&running[0], json!(1))).await;
    assert_eq!(claim_n(store.as_ref(), 1).await.len(), 1);
    assert!(claim(store.as_ref(), 10).await.is_empty());
}

// ------------------------------------------------------------------ reads

pub async fn tasks_are_listed_newest_first_with_filters_and_a_cursor(store: Arc<dyn TaskStore>) {
    let a = register(store.as_ref(), &one_step("list", "a", "1.0.0")).await;
    let b = register(store.as_ref(), &one_step("list", "b", "1.0.0")).await;
    let mut created = Vec::new();
    for i in 0..6 {
        let t = if i % 2 == 0 { &a } else { &b };
        created.push(create(store.as_ref(), t, json!({"i": i})).await);
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    let event = claim(store.as_ref(), 10).await.into_iter().find(|e| e.task_uuid == created[0]).unwrap();
    record(store.as_ref(), success(&event, json!(1))).await;

    let all = store.list_tasks(TaskFilter::default()).await.unwrap();
    let newest_first: Vec<Uuid> = created.iter().rev().copied().collect();
    assert_eq!(all.iter().map(|t| t.task_uuid).collect::<Vec<_>>(), newest_first);
    assert_eq!(all[5].status, TaskStatus::Complete);
    assert!(all[5].finished_at.is_some());
    assert_eq!((all[0].namespace.as_str(), all[0].name.as_str(), all[0].version.as_str()), ("list", "b", "1.0.0"));

    let only_a = store.list_tasks(TaskFilter { name: Some("a".into()), ..TaskFilter::default() }).await.unwrap();
    assert_eq!(only_a.iter().map(|t| t.task_uuid).collect::<Vec<_>>(), [created[4], created[2], created[0]]);
    let complete =
        store.list_tasks(TaskFilter { status: Some(TaskStatus::Complete), ..TaskFilter::default() }).await.unwrap();
    assert_eq!(complete.iter().map(|t| t.task_uuid).collect::<Vec<_>>(), [created[0]]);
    let none = store.list_tasks(TaskFilter { namespace: Some("other".into()), ..TaskFilter::default() }).await.unwrap();
    assert!(none.is_empty());

    let page1 = store.list_tasks(TaskFilter { limit: 2, ..TaskFilter::default() }).await.unwrap();
    let cursor = TaskCursor::Task(page1[1].task_uuid);
    let page2 = store.list_tasks(TaskFilter { limit: 2, before: Some(cursor), ..TaskFilter::default() }).await.unwrap();
    assert_eq!(page2.iter().map(|t| t.task_uuid).collect::<Vec<_>>(), [created[3], created[2]]);
    let by_time = TaskCursor::Time(page1[1].created_at);
    let page2 =
        store.list_tasks(TaskFilter { limit: 2, before: Some(by_time), ..TaskFilter::default() }).await.unwrap();
    assert_eq!(page2.iter().map(|t| t.task_uuid).collect::<Vec<_>>(), [created[3], created[2]]);

    for limit in [0, 1001] {
        let refused = store.list_tasks(TaskFilter { limit, ..TaskFilter::default() }).await;
        assert!(matches!(refused, Err(StoreError::InvalidRequest(_))), "limit {limit}: {refused:?}");
    }
}

pub async fn stats_count_tasks_by_status_and_steps_in_flight(store: Arc<dyn TaskStore>) {
    let t = register(store.as_ref(), &one_step("stats", "one", "1.0.0")).await;
    for _ in 0..4 {
        create(store.as_ref(), &t, json!({})).await;
    }
    let events = claim_n(store.as_ref(), 3).await;
    record(store.as_ref(), success(&events[0], json!(1))).await;
    record(store.as_ref(), failure(&events[1], "no", false)).await;
    let stats = store.stats().await.unwrap();
    assert_eq!(stats.tasks_with(TaskStatus::Complete), 1);
    assert_eq!(stats.tasks_with(TaskStatus::Error), 1);
    assert_eq!(stats.tasks_with(TaskStatus::InProgress), 1);
    assert_eq!(stats.tasks_with(TaskStatus::Pending), 1);
    assert_eq!(stats.tasks.len(), TaskStatus::ALL.len(), "every status is listed");
    assert_eq!(stats.steps_in_flight, 1);
    assert_eq!(stats.steps_ready, 1);
    assert_eq!(stats.throughput.len(), 60);
    let last = stats.throughput.last().unwrap();
    assert!(last.succeeded + stats.throughput[58].succeeded >= 1, "the success shows in the last minutes");
    assert!(last.failed + stats.throughput[58].failed >= 1);
}

pub async fn an_unknown_task_is_not_found(store: Arc<dyn TaskStore>) {
    let unknown = Uuid::new_v4();
    assert!(matches!(store.task_status(unknown).await, Err(StoreError::TaskNotFound(u)) if u == unknown));
    assert!(matches!(store.retry_task(unknown).await, Err(StoreError::TaskNotFound(_))));
}

pub async fn workers_are_listed_by_heartbeat_and_leave_when_deregistered(store: Arc<dyn TaskStore>) {
    let worker = WorkerRegistration {
        worker_id: "w-1".into(),
        host: "host-a".into(),
        pid: 4242,
        started_at: SystemTime::now(),
        concurrency: 8,
        in_flight: 3,
    };
    store.heartbeat(&worker).await.unwrap();
    let listed = store.workers().await.unwrap();
    let w = listed.iter().find(|w| w.worker_id == "w-1").expect("the worker is listed");
    assert_eq!((w.host.as_str(), w.pid, w.concurrency, w.in_flight), ("host-a", 4242, 8, 3));
    assert!(w.heartbeat_age < Duration::from_secs(5));
    assert_eq!(store.stats().await.unwrap().workers_alive, listed.len() as u64);
    assert!(
        store.expire_dead_workers(Duration::from_secs(60)).await.unwrap().is_empty(),
        "a live worker is not expired"
    );
    store.deregister_worker("w-1").await.unwrap();
    assert!(store.workers().await.unwrap().iter().all(|w| w.worker_id != "w-1"));
}

pub async fn the_feed_wakes_a_claimer_when_a_task_is_created(store: Arc<dyn TaskStore>) {
    let t = register(store.as_ref(), &one_step("feed", "one", "1.0.0")).await;
    let feed = Arc::clone(store.feed());
    let waiter = tokio::spawn(async move { tokio::time::timeout(PATIENCE, feed.ready()).await.is_ok() });
    tokio::time::sleep(Duration::from_millis(20)).await;
    create(store.as_ref(), &t, json!({})).await;
    assert!(waiter.await.unwrap(), "no ready notification came");
}

pub async fn waiting_for_a_task_returns_once_it_finishes(store: Arc<dyn TaskStore>) {
    let t = register(store.as_ref(), &one_step("wait", "one", "1.0.0")).await;
    let task = create(store.as_ref(), &t, json!({})).await;
    let timed_out = tasker_worker::wait_for_task(store.as_ref(), task, Duration::from_millis(50)).await.unwrap();
    assert!(timed_out.is_none());
    let completer = {
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(30)).await;
            let event = claim_n(store.as_ref(), 1).await.remove(0);
            record(store.as_ref(), success(&event, json!("done"))).await;
        })
    };
    let view = tasker_worker::wait_for_task(store.as_ref(), task, PATIENCE).await.unwrap().expect("finished");
    assert_eq!(view.status, TaskStatus::Complete);
    completer.await.unwrap();
}

pub async fn purging_forgets_finished_tasks_past_their_retention_and_says_so(store: Arc<dyn TaskStore>) {
    // Run with `StoreSettings { retention: 0 }`.
    let t = register(store.as_ref(), &one_step("purge", "one", "1.0.0")).await;
    let done = create(store.as_ref(), &t, json!({})).await;
    let running = create(store.as_ref(), &t, json!({})).await;
    let events = claim_n(store.as_ref(), 2).await;
    let done_event = events.iter().find(|e| e.task_uuid == done).unwrap();
    record(store.as_ref(), success(done_event, json!(1))).await;
    let deadline = Instant::now() + PATIENCE;
    while store.task_status(done).await.is_ok() {
        store.purge_finished().await.unwrap();
        assert!(Instant::now() < deadline, "the finished task was never purged");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(matches!(store.task_status(done).await, Err(StoreError::TaskEvicted { .. })));
    assert_eq!(store.stats().await.unwrap().tasks_with(TaskStatus::Complete), 0, "a purged task is not counted");
    assert_eq!(status(store.as_ref(), running).await.status, TaskStatus::InProgress, "an unfinished task stays");
}

/// Expands to one `#[tokio::test]` per contract test, each given a fresh store from
/// `$factory(StoreSettings)`.
#[macro_export]
macro_rules! contract_tests {
    ($factory:path) => {
        $crate::contract_tests!(@each $factory, StoreSettings::default(),
            templates_are_listed_and_the_highest_stable_version_is_the_default,
            create_names_an_unknown_template_and_rejects_a_context_that_is_not_an_object,
            a_linear_chain_runs_one_step_at_a_time_and_the_task_moves_to_complete,
            readiness_holds_in_every_shape_and_completion_order,
            a_batch_records_in_order_and_a_join_sees_both_parents,
            a_batch_of_successes_finishes_each_task_on_its_last_result,
            a_retryable_failure_runs_again_until_max_attempts_then_the_task_is_in_error,
            a_handler_saying_not_retryable_ends_the_step_at_once,
            a_recorded_error_keeps_its_code_context_and_backtrace,
            a_retry_after_sets_the_next_attempts_delay,
            a_failed_task_lets_running_siblings_finish_then_is_in_error_and_skips_the_rest,
            stale_results_change_nothing,
            a_worker_shutdown_does_not_use_an_attempt_and_the_step_is_ready_at_once,
            a_step_timeout_overrides_the_default_deadline,
            cancelling_a_task_that_has_not_started_cancels_it_at_once,
            a_cancelled_task_waits_for_its_running_steps_then_is_cancelled,
            cancelling_a_finished_or_unknown_task_changes_nothing,
            retrying_a_failed_task_reruns_the_failed_step_with_a_fresh_budget_then_the_rest,
            an_idempotency_key_answers_the_first_task_and_creates_nothing_more,
            a_task_with_a_run_at_starts_no_step_before_then,
            higher_priority_steps_are_claimed_first,
            max_in_flight_caps_the_running_steps_of_a_template,
            tasks_are_listed_newest_first_with_filters_and_a_cursor,
            stats_count_tasks_by_status_and_steps_in_flight,
            an_unknown_task_is_not_found,
            workers_are_listed_by_heartbeat_and_leave_when_deregistered,
            the_feed_wakes_a_claimer_when_a_task_is_created,
            waiting_for_a_task_returns_once_it_finishes
        );
        $crate::contract_tests!(@each $factory, StoreSettings { retention: std::time::Duration::ZERO },
            purging_forgets_finished_tasks_past_their_retention_and_says_so
        );
    };
    (@each $factory:path, $settings:expr, $($name:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let store = $factory($settings).await;
                store_contract::$name(store).await;
            }
        )+
    };
}
