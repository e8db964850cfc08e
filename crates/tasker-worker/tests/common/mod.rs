//! Helpers shared by the dispatch, orchestrator and pipeline tests: templates from YAML
//! strings, hand-built step events, results stamped with an event's identity, and
//! event-based waits with generous limits (the limits only bound a failing test).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::sync::mpsc;
use uuid::Uuid;

use tasker_worker::RetryDefaults;
use tasker_worker::WorkflowTemplate;
use tasker_worker::{compile, parse_yaml};
use tasker_worker::{
    StepExecutionError, StepExecutionEvent, StepExecutionResult, TaskInfo, TaskSequenceStep, WorkflowStepInfo,
};

/// How long any wait in a test may take before the test fails. Never a timing assertion.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// Compiles a template from YAML with the default retry policy.
pub fn template(yaml: &str) -> WorkflowTemplate {
    template_with(yaml, &RetryDefaults::default())
}

/// Compiles a template from YAML with the given retry defaults.
pub fn template_with(yaml: &str, defaults: &RetryDefaults) -> WorkflowTemplate {
    let parsed = parse_yaml(yaml, None).unwrap_or_else(|e| panic!("test template does not parse: {e}\n{yaml}"));
    compile(parsed, defaults, None).unwrap_or_else(|e| panic!("test template does not compile: {e}\n{yaml}"))
}

/// Retry defaults without jitter, so delays are exact.
pub fn no_jitter(max_attempts: u32, backoff_base_ms: u64, max_backoff_ms: u64) -> RetryDefaults {
    RetryDefaults { retryable: true, max_attempts, backoff_base_ms, max_backoff_ms, jitter: 0.0 }
}

/// A one-step template whose step `step` runs `callable`.
pub fn single_step_yaml(namespace: &str, name: &str, step: &str, callable: &str) -> String {
    format!(
        "name: {name}\nnamespace_name: {namespace}\nversion: 1.0.0\nsteps:\n  - name: {step}\n    handler:\n      callable: {callable}\n"
    )
}

/// A step event for step `index` of `template`, built by hand (no orchestrator), with a
/// fresh event id and the given deadline.
pub fn event_for(template: &WorkflowTemplate, index: usize, timeout: Duration) -> StepExecutionEvent {
    let definition = Arc::clone(&template.steps[index]);
    let task_uuid = Uuid::new_v4();
    let step_uuid = Uuid::new_v4();
    StepExecutionEvent {
        event_id: Uuid::new_v4(),
        task_uuid,
        step_uuid,
        correlation_id: Uuid::new_v4(),
        trace_id: Some(format!("{:032x}", 1u128)),
        span_id: Some(format!("{:016x}", 2u64)),
        timeout,
        ready_at: None,
        payload: TaskSequenceStep {
            task: TaskInfo {
                task_uuid,
                namespace: template.namespace.clone(),
                name: template.name.clone(),
                version: template.version.clone(),
                context: Arc::new(json!({})),
            },
            workflow_step: WorkflowStepInfo {
                step_uuid,
                name: definition.name.clone(),
                attempts: 1,
                max_attempts: definition.retry.max_attempts,
                retryable: definition.retry.retryable,
                inputs: Arc::clone(&definition.inputs),
            },
            dependency_results: BTreeMap::new(),
            ancestor_results: BTreeMap::new(),
            step_definition: definition,
        },
    }
}

/// A step event for a one-step template running `callable`.
pub fn event_with_callable(callable: &str, timeout: Duration) -> StepExecutionEvent {
    let t = template(&single_step_yaml("tests", "single", "only_step", callable));
    event_for(&t, 0, timeout)
}

/// A success for `event`, carrying its identity.
pub fn success_for(event: &StepExecutionEvent, value: Value) -> StepExecutionResult {
    StepExecutionResult::success(value).with_identity(event.identity())
}

/// A failure for `event`, carrying its identity.
pub fn failure_for(
    event: &StepExecutionEvent,
    message: &str,
    error_type: &str,
    retryable: bool,
) -> StepExecutionResult {
    StepExecutionResult::failure(StepExecutionError::new(message, error_type, retryable))
        .with_identity(event.identity())
}

/// Receives the next result, failing the test if none comes within `PATIENCE`.
pub async fn recv_result(rx: &mut mpsc::Receiver<StepExecutionResult>) -> StepExecutionResult {
    match tokio::time::timeout(PATIENCE, rx.recv()).await {
        Ok(Some(result)) => result,
        Ok(None) => panic!("completion channel closed while a result was expected"),
        Err(_) => panic!("no result arrived within {PATIENCE:?}"),
    }
}

/// Asserts that nothing arrives on `rx` for `quiet`.
pub async fn assert_quiet(rx: &mut mpsc::Receiver<StepExecutionResult>, quiet: Duration) {
    if let Ok(Some(extra)) = tokio::time::timeout(quiet, rx.recv()).await {
        panic!("expected no further result, got {extra:?}");
    }
}

/// Polls `condition` (async callers) until it holds, failing after `PATIENCE`.
pub async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let start = Instant::now();
    while !condition() {
        assert!(start.elapsed() < PATIENCE, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Polls `condition` (plain threads) until it holds, failing after `PATIENCE`.
pub fn eventually_blocking(what: &str, mut condition: impl FnMut() -> bool) {
    let start = Instant::now();
    while !condition() {
        assert!(start.elapsed() < PATIENCE, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// The error of a failed result, failing the test if it has none.
pub fn error_of(result: &StepExecutionResult) -> &StepExecutionError {
    assert!(!result.success, "expected a failure, got a success: {result:?}");
    result.error.as_ref().unwrap_or_else(|| panic!("failure without an error: {result:?}"))
}
