//! Read-only snapshots of a task's state, as `task_status` returns them.

use std::sync::Arc;
use std::time::SystemTime;

use serde_json::Value;
use uuid::Uuid;

use crate::messages::StepExecutionError;

/// A task and each of its steps at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskStatusView {
    pub task_uuid: Uuid,
    pub namespace: String,
    pub name: String,
    pub version: String,
    /// `pending`, `in_progress`, `complete` or `error`.
    pub status: &'static str,
    pub correlation_id: Uuid,
    pub created_at: SystemTime,
    pub finished_at: Option<SystemTime>,
    /// In template order.
    pub steps: Vec<StepStatusView>,
}

/// One step of a task at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct StepStatusView {
    pub name: String,
    pub step_uuid: Uuid,
    /// `pending`, `enqueued`, `in_progress`, `waiting_for_retry`, `complete` or `error`.
    pub status: &'static str,
    pub attempts: u32,
    pub max_attempts: u32,
    pub result: Option<Arc<Value>>,
    /// The last failure, kept while the step waits for a retry or after it failed.
    pub error: Option<StepExecutionError>,
}

impl TaskStatusView {
    pub fn is_finished(&self) -> bool {
        matches!(self.status, "complete" | "error")
    }

    pub fn step(&self, name: &str) -> Option<&StepStatusView> {
        self.steps.iter().find(|s| s.name == name)
    }
}
