//! `MemoryState` with an explicit clock: what needs time to pass (backoff, delayed
//! starts, retention), the embedded-only limits (memory budget, backlog), and the
//! bookkeeping that must stay exact (status counts). Behaviour every store shares is in
//! the contract suite (`tests/store_contract/`).

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use serde_json::{json, Value};
use uuid::Uuid;

use super::state::{MemoryLimits, MemoryState, EVICTION_MEMORY};
use crate::config::RetryDefaults;
use crate::messages::{StepExecutionError, StepExecutionEvent, StepExecutionResult};
use crate::store::{NewTask, RecordOutcome, StepStatus, StoreError, TaskStatus};
use crate::template::{compile, parse_yaml, WorkflowTemplate};

const TIMEOUT: Duration = Duration::from_secs(30);

fn template(yaml: &str) -> Arc<WorkflowTemplate> {
    let defaults =
        RetryDefaults { retryable: true, max_attempts: 3, backoff_base_ms: 100, max_backoff_ms: 10_000, jitter: 0.0 };
    Arc::new(compile(parse_yaml(yaml, None).expect("parses"), &defaults, None).expect("compiles"))
}

fn one_step() -> Arc<WorkflowTemplate> {
    template("name: one\nnamespace_name: t\nversion: 1.0.0\nsteps:\n  - { name: only, handler: { callable: X } }\n")
}

fn chain() -> Arc<WorkflowTemplate> {
    template(
        "name: chain\nnamespace_name: t\nversion: 1.0.0\nsteps:\n  - { name: a, handler: { callable: A } }\n  - { name: b, handler: { callable: B }, dependencies: [a] }\n",
    )
}

fn limits() -> MemoryLimits {
    MemoryLimits { retention: Duration::from_secs(3600), memory_budget: u64::MAX, max_unfinished: 1_000_000 }
}

fn create(state: &mut MemoryState, template: &Arc<WorkflowTemplate>, now: Instant, wall: SystemTime) -> Uuid {
    create_with(state, template, NewTask::new("t", "x", json!({})), now, wall)
}

fn create_with(
    state: &mut MemoryState,
    template: &Arc<WorkflowTemplate>,
    task: NewTask,
    now: Instant,
    wall: SystemTime,
) -> Uuid {
    state.create_task(Arc::clone(template), task, now, wall).expect("created").0
}

fn claim(state: &mut MemoryState, now: Instant, max: usize) -> Vec<StepExecutionEvent> {
    let mut out = Vec::new();
    state.claim(now, SystemTime::now(), max, TIMEOUT, &mut out);
    out
}

fn ok(event: &StepExecutionEvent, value: Value) -> StepExecutionResult {
    StepExecutionResult::success(value).with_identity(event.identity())
}

fn fail(event: &StepExecutionEvent) -> StepExecutionResult {
    StepExecutionResult::failure(StepExecutionError::new("boom", "Boom", true)).with_identity(event.identity())
}

#[test]
fn a_retry_is_not_claimable_before_its_backoff_has_passed() {
    let mut state = MemoryState::with_seed(limits(), 1);
    let t0 = Instant::now();
    create(&mut state, &one_step(), t0, SystemTime::now());
    let first = claim(&mut state, t0, 10);
    assert_eq!(first.len(), 1);
    let outcome = state.record(fail(&first[0]), t0, SystemTime::now());
    assert!(matches!(outcome, RecordOutcome::Recorded { .. }));
    assert!(claim(&mut state, t0 + Duration::from_millis(99), 10).is_empty(), "claimed before the 100 ms backoff");
    assert_eq!(state.next_due(), Some(t0 + Duration::from_millis(100)));
    let second = claim(&mut state, t0 + Duration::from_millis(100), 10);
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].payload.workflow_step.attempts, 2);
}

#[test]
fn a_delayed_task_starts_no_step_before_its_run_at() {
    let mut state = MemoryState::with_seed(limits(), 2);
    let (t0, wall) = (Instant::now(), SystemTime::now());
    let task = NewTask { run_at: Some(wall + Duration::from_secs(60)), ..NewTask::new("t", "one", json!({})) };
    let uuid = create_with(&mut state, &one_step(), task, t0, wall);
    assert!(claim(&mut state, t0 + Duration::from_secs(59), 10).is_empty());
    assert_eq!(state.task_status(&uuid).unwrap().status, TaskStatus::Pending);
    assert_eq!(claim(&mut state, t0 + Duration::from_secs(60), 10).len(), 1);
}

#[test]
fn a_finished_task_is_evicted_once_its_retention_passes_and_says_so() {
    let mut state = MemoryState::with_seed(MemoryLimits { retention: Duration::from_secs(10), ..limits() }, 3);
    let (t0, wall) = (Instant::now(), SystemTime::now());
    let uuid = create(&mut state, &one_step(), t0, wall);
    let event = claim(&mut state, t0, 1).remove(0);
    state.record(ok(&event, json!(1)), t0, wall);
    assert_eq!(state.enforce_retention(wall + Duration::from_secs(9), &|_| false), 0);
    assert_eq!(state.task_status(&uuid).unwrap().status, TaskStatus::Complete);
    assert_eq!(state.enforce_retention(wall + Duration::from_secs(10), &|_| false), 1);
    match state.task_status(&uuid) {
        Err(StoreError::TaskEvicted { uuid: evicted, why, .. }) => {
            assert_eq!(evicted, uuid);
            assert!(why.contains("retention of 10 s"), "{why}");
        }
        other => panic!("expected an eviction error, got {other:?}"),
    }
    assert!(matches!(state.task_status(&Uuid::new_v4()), Err(StoreError::TaskNotFound(_))));
}

#[test]
fn only_the_latest_evictions_are_remembered_the_older_become_unknown() {
    let mut state = MemoryState::with_seed(MemoryLimits { retention: Duration::ZERO, ..limits() }, 5);
    let (t0, wall) = (Instant::now(), SystemTime::now());
    let template = one_step();
    let uuids: Vec<Uuid> = (0..=EVICTION_MEMORY)
        .map(|_| {
            let uuid = create(&mut state, &template, t0, wall);
            let event = claim(&mut state, t0, 1).remove(0);
            state.record(ok(&event, json!(1)), t0, wall);
            assert_eq!(state.enforce_retention(wall, &|_| false), 1);
            uuid
        })
        .collect();
    assert!(matches!(state.task_status(&uuids[0]), Err(StoreError::TaskNotFound(_))), "the oldest is still known");
    for uuid in [uuids[1], uuids[EVICTION_MEMORY / 2], uuids[EVICTION_MEMORY]] {
        match state.task_status(&uuid) {
            Err(StoreError::TaskEvicted { uuid: evicted, why, .. }) => {
                assert_eq!(evicted, uuid);
                assert!(why.contains("retention of 0 s"), "{why}");
            }
            other => panic!("expected an eviction error, got {other:?}"),
        }
    }
}

#[test]
fn over_the_memory_budget_the_oldest_finished_go_first_but_never_a_watched_one() {
    let big = json!({ "blob": "x".repeat(10_000) });
    let mut state = MemoryState::with_seed(MemoryLimits { memory_budget: 30_000, ..limits() }, 4);
    let (t0, wall) = (Instant::now(), SystemTime::now());
    let template = one_step();
    let tasks: Vec<Uuid> = (0..4).map(|_| create(&mut state, &template, t0, wall)).collect();
    let events = claim(&mut state, t0, 10);
    // The first task is waited for: it must survive however old it is.
    let watched = tasks[0];
    for event in &events {
        state.record(ok(event, big.clone()), t0, wall);
        state.enforce_retention(wall, &|uuid| *uuid == watched);
    }
    assert!(state.task_status(&watched).is_ok(), "a watched task was evicted");
    assert!(matches!(state.task_status(&tasks[1]), Err(StoreError::TaskEvicted { .. })));
    assert!(state.task_status(&tasks[3]).is_ok(), "the newest finished task was evicted");
    assert!(state.counts().finished_bytes <= 30_000, "{}", state.counts().finished_bytes);
}

#[test]
fn past_the_backlog_bound_create_fails_and_creates_nothing() {
    let mut state = MemoryState::with_seed(MemoryLimits { max_unfinished: 2, ..limits() }, 5);
    let (t0, wall) = (Instant::now(), SystemTime::now());
    create(&mut state, &one_step(), t0, wall);
    create(&mut state, &one_step(), t0, wall);
    let refused = state.create_task(one_step(), NewTask::new("t", "one", json!({})), t0, wall);
    assert!(matches!(refused, Err(StoreError::Backpressure { pending: 2, limit: 2 })), "{refused:?}");
    assert_eq!(state.counts().unfinished_tasks, 2);
    assert_eq!(state.counts().steps_ready, 2);
    // A task that finishes makes room.
    let event = claim(&mut state, t0, 1).remove(0);
    state.record(ok(&event, json!(null)), t0, wall);
    assert!(state.create_task(one_step(), NewTask::new("t", "one", json!({})), t0, wall).is_ok());
}

#[test]
fn higher_priority_steps_are_claimed_first_and_equal_ones_in_order() {
    let mut state = MemoryState::with_seed(limits(), 6);
    let (t0, wall) = (Instant::now(), SystemTime::now());
    let template = one_step();
    let with_priority = |priority| NewTask { priority, ..NewTask::new("t", "one", json!({})) };
    let low = create_with(&mut state, &template, with_priority(0), t0, wall);
    let low2 = create_with(&mut state, &template, with_priority(0), t0, wall);
    let high = create_with(&mut state, &template, with_priority(5), t0, wall);
    let order: Vec<Uuid> = claim(&mut state, t0, 10).iter().map(|e| e.task_uuid).collect();
    assert_eq!(order, vec![high, low, low2]);
}

#[test]
fn max_in_flight_caps_running_steps_of_a_template() {
    let capped = template(
        "name: capped\nnamespace_name: t\nversion: 1.0.0\nmax_in_flight: 2\nsteps:\n  - { name: only, handler: { callable: X } }\n",
    );
    let mut state = MemoryState::with_seed(limits(), 7);
    let (t0, wall) = (Instant::now(), SystemTime::now());
    for _ in 0..5 {
        create(&mut state, &capped, t0, wall);
    }
    let first = claim(&mut state, t0, 10);
    assert_eq!(first.len(), 2);
    assert!(claim(&mut state, t0, 10).is_empty(), "claimed past max_in_flight");
    state.record(ok(&first[0], json!(1)), t0, wall);
    assert_eq!(claim(&mut state, t0, 10).len(), 1);
}

#[test]
fn status_counts_stay_exact_through_a_mixed_run() {
    let mut state = MemoryState::with_seed(limits(), 8);
    let (t0, wall) = (Instant::now(), SystemTime::now());
    let template = chain();
    let uuids: Vec<Uuid> = (0..6).map(|_| create(&mut state, &template, t0, wall)).collect();
    let events = claim(&mut state, t0, 10);
    for (i, event) in events.iter().enumerate() {
        let result = if i % 3 == 0 { fail(event) } else { ok(event, json!(i)) };
        state.record(result, t0, wall);
    }
    for minute in 1..10 {
        let later = t0 + Duration::from_secs(60 * minute);
        for event in claim(&mut state, later, 100) {
            state.record(fail(&event), later, wall);
        }
    }
    let counts = state.counts();
    let mut recount = [0u64; 5];
    for uuid in &uuids {
        let status = state.task_status(uuid).unwrap().status;
        recount[TaskStatus::ALL.iter().position(|s| *s == status).unwrap()] += 1;
    }
    let reported: Vec<u64> = counts.tasks.iter().map(|(_, n)| *n).collect();
    assert_eq!(reported, recount.to_vec());
    assert_eq!(counts.steps_in_flight, 0);
    assert_eq!(counts.unfinished_tasks, 0, "every task should have ended in error: {counts:?}");
    let skipped = uuids
        .iter()
        .flat_map(|u| state.task_status(u).unwrap().steps)
        .filter(|s| s.status == StepStatus::Skipped)
        .count();
    // Tasks 0 and 3 failed at their first step, so their second step never ran.
    assert_eq!(skipped, 2);
}
