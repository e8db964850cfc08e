//! Building the event of a claimed step, the same way for every store: the task, the
//! step, its parents' results, the results of its other finished ancestors (shared, and
//! converted for a handler only when it asks) and its definition from the template.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde_json::Value;
use uuid::Uuid;

use crate::messages::{StepExecutionEvent, TaskInfo, TaskSequenceStep, WorkflowStepInfo};
use crate::template::WorkflowTemplate;

/// What a store knows about a claimed step.
#[derive(Debug)]
pub struct ClaimedStep<'a> {
    pub template: &'a Arc<WorkflowTemplate>,
    pub index: usize,
    pub task_uuid: Uuid,
    pub correlation_id: Uuid,
    pub trace_id: String,
    pub context: Arc<Value>,
    pub step_uuid: Uuid,
    /// Attempts so far, the claimed one included.
    pub attempts: u32,
    pub event_id: Uuid,
    pub span_id: String,
    /// Parent step name → that step's result.
    pub dependency_results: BTreeMap<String, Arc<Value>>,
    /// Every other finished ancestor's name → its result (see [`ancestor_results`]).
    pub ancestor_results: BTreeMap<String, Arc<Value>>,
    pub ready_at: Option<SystemTime>,
}

/// The results of step `index`'s ancestors beyond its parents (the template's
/// precomputed `ancestors` list) that have one; `result_of(i)` answers step `i`'s result.
pub fn ancestor_results(
    template: &WorkflowTemplate,
    index: usize,
    result_of: impl Fn(usize) -> Option<Arc<Value>>,
) -> BTreeMap<String, Arc<Value>> {
    template
        .ancestors
        .get(index)
        .into_iter()
        .flatten()
        .filter_map(|&ancestor| Some((template.steps[ancestor].name.clone(), result_of(ancestor)?)))
        .collect()
}

/// The event handed to a handler for `step`; its deadline is the step's own timeout, or
/// `default_timeout`.
pub fn step_event(step: ClaimedStep<'_>, default_timeout: Duration) -> StepExecutionEvent {
    let template = step.template;
    let definition = Arc::clone(&template.steps[step.index]);
    StepExecutionEvent {
        event_id: step.event_id,
        task_uuid: step.task_uuid,
        step_uuid: step.step_uuid,
        correlation_id: step.correlation_id,
        trace_id: Some(step.trace_id),
        span_id: Some(step.span_id),
        timeout: definition.timeout(default_timeout),
        ready_at: step.ready_at,
        payload: TaskSequenceStep {
            task: TaskInfo {
                task_uuid: step.task_uuid,
                namespace: template.namespace.clone(),
                name: template.name.clone(),
                version: template.version.clone(),
                context: step.context,
            },
            workflow_step: WorkflowStepInfo {
                step_uuid: step.step_uuid,
                name: definition.name.clone(),
                attempts: step.attempts,
                max_attempts: definition.retry.max_attempts,
                retryable: definition.retry.retryable,
                inputs: Arc::clone(&definition.inputs),
            },
            dependency_results: step.dependency_results,
            ancestor_results: step.ancestor_results,
            step_definition: definition,
        },
    }
}

/// A rough count of the bytes `value` takes in memory, for the embedded store's budget:
/// each node, map entry and string with its allocation overhead.
pub fn approx_json_bytes(value: &Value) -> usize {
    const NODE: usize = 48;
    match value {
        Value::Null | Value::Bool(_) | Value::Number(_) => NODE,
        Value::String(s) => NODE + s.len(),
        Value::Array(items) => NODE + items.iter().map(approx_json_bytes).sum::<usize>(),
        Value::Object(map) => NODE + map.iter().map(|(k, v)| NODE + k.len() + approx_json_bytes(v)).sum::<usize>(),
    }
}

/// What kind of JSON value `value` is, for error messages ("an array").
pub fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
