//! Messages that flow through the worker: what a ready step looks like when it is
//! dispatched (`StepExecutionEvent`, `DispatchHandlerMessage`, `FfiStepEvent`) and what
//! comes back on the completion channel (`StepExecutionResult`).
//!
//! Every type here is plain data. Capacity (`DispatchSlot`) travels with a dispatched
//! message so that dropping a message can never leak an in-flight slot.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use crate::template::StepDefinition;
use crate::worker::slots::DispatchSlot;

/// The task a step belongs to, as the handler sees it.
#[derive(Debug, Clone, Serialize)]
pub struct TaskInfo {
    pub task_uuid: Uuid,
    pub namespace: String,
    pub name: String,
    pub version: String,
    /// The context given to `create_task`, shared by every step of the task.
    pub context: Arc<Value>,
}

/// The workflow step being executed, as the handler sees it.
#[derive(Debug, Clone, Serialize)]
pub struct WorkflowStepInfo {
    pub step_uuid: Uuid,
    pub name: String,
    /// Attempts so far, this one included (1 on the first run).
    pub attempts: u32,
    pub max_attempts: u32,
    pub retryable: bool,
    pub inputs: Arc<Value>,
}

/// Everything a handler needs to run one step: the task, the step, its parents'
/// results and the step's definition from the template.
#[derive(Debug, Clone, Serialize)]
pub struct TaskSequenceStep {
    pub task: TaskInfo,
    pub workflow_step: WorkflowStepInfo,
    /// Parent step name → that step's result value.
    pub dependency_results: BTreeMap<String, Arc<Value>>,
    /// Every other ancestor (grandparents and further up) → its result value. Upstream
    /// handlers read any ancestor by name; these are shared, and converted for a
    /// handler only when it asks for one.
    pub ancestor_results: BTreeMap<String, Arc<Value>>,
    pub step_definition: Arc<StepDefinition>,
}

/// A claimed step on its way to a handler.
#[derive(Debug, Clone)]
pub struct StepExecutionEvent {
    pub event_id: Uuid,
    pub task_uuid: Uuid,
    pub step_uuid: Uuid,
    pub correlation_id: Uuid,
    pub payload: TaskSequenceStep,
    /// W3C trace context (32 hex digits), shared by every step of a task.
    pub trace_id: Option<String>,
    /// W3C span id (16 hex digits), one per event.
    pub span_id: Option<String>,
    /// How long the handler may run before the core fails the attempt.
    pub timeout: Duration,
    /// When the step became ready to run (for the queue-wait measure).
    pub ready_at: Option<SystemTime>,
}

impl StepExecutionEvent {
    /// The identity every result for this event must carry.
    pub fn identity(&self) -> StepIdentity {
        StepIdentity {
            event_id: self.event_id,
            task_uuid: self.task_uuid,
            step_uuid: self.step_uuid,
            attempt: self.payload.workflow_step.attempts,
        }
    }
}

/// What travels on the dispatch channel: the event plus the in-flight slot it holds.
#[derive(Debug)]
pub struct DispatchHandlerMessage {
    pub event: StepExecutionEvent,
    /// The capacity this step occupies; released when the step's result is produced.
    pub slot: Option<DispatchSlot>,
    /// When the executor put the message on the dispatch channel.
    pub dispatched_at: Instant,
}

impl DispatchHandlerMessage {
    pub fn new(event: StepExecutionEvent, slot: Option<DispatchSlot>) -> Self {
        Self { event, slot, dispatched_at: Instant::now() }
    }
}

/// The event handed to a foreign-language (Ruby) handler loop by `FfiDispatchChannel::poll`.
/// `event_id` is at the top level: it is what `complete(event_id, result)` correlates on.
#[derive(Debug, Clone)]
pub struct FfiStepEvent {
    pub event_id: Uuid,
    pub task_uuid: Uuid,
    pub step_uuid: Uuid,
    pub correlation_id: Uuid,
    pub execution_event: StepExecutionEvent,
    pub trace_id: Option<String>,
    pub span_id: Option<String>,
    /// Milliseconds the handler has, counted from the poll that returned this event.
    pub timeout_ms: u64,
}

impl FfiStepEvent {
    pub fn from_execution_event(event: StepExecutionEvent) -> Self {
        Self {
            event_id: event.event_id,
            task_uuid: event.task_uuid,
            step_uuid: event.step_uuid,
            correlation_id: event.correlation_id,
            trace_id: event.trace_id.clone(),
            span_id: event.span_id.clone(),
            timeout_ms: event.timeout.as_millis().min(u64::MAX as u128) as u64,
            execution_event: event,
        }
    }
}

/// Which attempt of which step a result belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
pub struct StepIdentity {
    pub event_id: Uuid,
    pub task_uuid: Uuid,
    pub step_uuid: Uuid,
    pub attempt: u32,
}

/// Timing and free-form data a handler reports with its result.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ResultMetadata {
    pub execution_time_ms: Option<u64>,
    pub started_at: Option<String>,
    pub completed_at: Option<String>,
    pub retryable: Option<bool>,
    pub custom: Option<Value>,
}

/// Why a step attempt failed.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct StepExecutionError {
    pub message: String,
    pub error_type: String,
    pub retryable: bool,
    pub backtrace: Vec<String>,
    /// A machine-readable code the handler chose (e.g. `"CARD_DECLINED"`), kept with the
    /// recorded error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    /// Free-form data the handler attached to the error, kept with the recorded error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<Value>,
    /// How long the handler asks to wait before the next attempt; replaces the backoff.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "optional_millis")]
    pub retry_after: Option<Duration>,
}

impl StepExecutionError {
    pub fn new(message: impl Into<String>, error_type: impl Into<String>, retryable: bool) -> Self {
        Self {
            message: message.into(),
            error_type: error_type.into(),
            retryable,
            backtrace: Vec::new(),
            error_code: None,
            context: None,
            retry_after: None,
        }
    }
}

/// `Option<Duration>` as whole milliseconds (how a stored error keeps `retry_after`).
mod optional_millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &Option<Duration>, serializer: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(d) => serializer.serialize_u64(d.as_millis().min(u64::MAX as u128) as u64),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<u64>::deserialize(deserializer)?.map(Duration::from_millis))
    }
}

/// Error types the core itself produces (handlers may use any string).
pub mod error_types {
    pub const HANDLER_TIMEOUT: &str = "handler_timeout";
    pub const HANDLER_PANIC: &str = "handler_panic";
    pub const HANDLER_NOT_FOUND: &str = "handler_not_found";
    pub const WORKER_SHUTDOWN: &str = "worker_shutdown";
    /// The worker holding the step stopped heartbeating (killed, lost its host); the step
    /// runs again elsewhere.
    pub const WORKER_LOST: &str = "worker_lost";
    pub const HANDLER_ERROR: &str = "handler_error";
}

/// The outcome of one step attempt, as it travels on the completion channel.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepExecutionResult {
    /// Filled in by whoever sends the result (the dispatch service or the FFI channel),
    /// never trusted from a handler.
    pub step: StepIdentity,
    pub success: bool,
    pub result: Value,
    pub metadata: ResultMetadata,
    pub error: Option<StepExecutionError>,
}

impl StepExecutionResult {
    pub fn success(result: Value) -> Self {
        Self { step: StepIdentity::default(), success: true, result, metadata: ResultMetadata::default(), error: None }
    }

    pub fn failure(error: StepExecutionError) -> Self {
        Self {
            step: StepIdentity::default(),
            success: false,
            result: Value::Null,
            metadata: ResultMetadata::default(),
            error: Some(error),
        }
    }

    pub fn with_identity(mut self, step: StepIdentity) -> Self {
        self.step = step;
        self
    }

    /// Whether a failed attempt may be retried (a success is never retried).
    /// A handler's `retryable: false` ends the step at once.
    pub fn is_retryable_failure(&self) -> bool {
        if self.success {
            return false;
        }
        match &self.error {
            Some(e) => e.retryable && self.metadata.retryable != Some(false),
            None => self.metadata.retryable.unwrap_or(true),
        }
    }
}
