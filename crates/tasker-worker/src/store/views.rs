//! Read-only snapshots of tasks, as `task_status` and `list_tasks` return them.

use std::sync::Arc;
use std::time::SystemTime;

use serde_json::Value;
use uuid::Uuid;

use super::{StepStatus, TaskStatus};
use crate::messages::StepExecutionError;

/// A task and each of its steps at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskStatusView {
    pub task_uuid: Uuid,
    pub namespace: String,
    pub name: String,
    pub version: String,
    pub status: TaskStatus,
    pub priority: i32,
    pub correlation_id: Uuid,
    pub context: Arc<Value>,
    pub created_at: SystemTime,
    /// When it became `complete`, `error` or `cancelled`.
    pub finished_at: Option<SystemTime>,
    /// No step starts before this time.
    pub run_at: Option<SystemTime>,
    pub idempotency_key: Option<String>,
    /// Set once a cancel was asked for (also while running steps finish).
    pub cancel_requested_at: Option<SystemTime>,
    pub cancel_reason: Option<String>,
    /// In template order.
    pub steps: Vec<StepStatusView>,
}

/// One step of a task at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct StepStatusView {
    pub name: String,
    pub step_uuid: Uuid,
    pub status: StepStatus,
    pub attempts: u32,
    pub max_attempts: u32,
    /// Names of the steps it waits for.
    pub dependencies: Vec<String>,
    pub result: Option<Arc<Value>>,
    /// The last failure, kept while the step waits for a retry or after it failed.
    pub error: Option<StepExecutionError>,
    /// Every attempt that ended, oldest first.
    pub history: Vec<AttemptRecord>,
}

/// One ended attempt of a step.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AttemptRecord {
    pub attempt: u32,
    /// `success`, `failure`, `timeout`, `worker_lost` or `worker_shutdown` (borrowed from
    /// the rules' words, so recording an attempt allocates nothing for it).
    pub outcome: std::borrow::Cow<'static, str>,
    pub started_at: Option<String>,
    pub completed_at: Option<String>,
    pub duration_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl TaskStatusView {
    pub fn is_finished(&self) -> bool {
        self.status.is_finished()
    }

    pub fn step(&self, name: &str) -> Option<&StepStatusView> {
        self.steps.iter().find(|s| s.name == name)
    }
}

/// One task of a listing.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskSummary {
    pub task_uuid: Uuid,
    pub namespace: String,
    pub name: String,
    pub version: String,
    pub status: TaskStatus,
    pub priority: i32,
    pub created_at: SystemTime,
    pub finished_at: Option<SystemTime>,
}
