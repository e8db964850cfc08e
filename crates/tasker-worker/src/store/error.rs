//! What can go wrong with a store call, for both implementations.

use std::time::SystemTime;

use uuid::Uuid;

use crate::template::TemplateError;
use crate::time_format::rfc3339_millis;

/// Errors of `TaskStore` calls.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Unknown template or version, or a template that could not be stored.
    #[error(transparent)]
    Template(#[from] TemplateError),
    /// The context given to `create_task` is not acceptable (not an object, or it breaks
    /// the template's `input_schema`); the message names the path and the rule.
    #[error("{0}")]
    InvalidContext(String),
    /// A request argument is out of range (a listing limit, a cursor task that does not
    /// exist, ...).
    #[error("{0}")]
    InvalidRequest(String),
    #[error("unknown task {0}: no task with this uuid exists in this store")]
    TaskNotFound(Uuid),
    /// The task finished and was removed; `why` says which limit removed it.
    #[error("task {uuid} finished and was evicted at {} ({why}); its result is no longer readable", rfc3339_millis(*.at))]
    TaskEvicted { uuid: Uuid, at: SystemTime, why: String },
    /// The embedded backlog bound was reached; nothing was created.
    #[error(
        "too many unfinished tasks ({pending}, the limit is {limit}): task not created; wait for tasks to finish \
         or raise orchestration.max_unfinished_tasks"
    )]
    Backpressure { pending: usize, limit: usize },
    /// The idempotency key belongs to a task of another template.
    #[error("idempotency key {key:?} already belongs to task {task_uuid} of {existing}, not of {requested}")]
    IdempotencyConflict { key: String, task_uuid: Uuid, existing: String, requested: String },
    /// The backend cannot be reached now (connection lost, server restarting). Transient:
    /// the same call may succeed later.
    #[error("{backend} store unavailable: {message}")]
    Unavailable { backend: &'static str, message: String },
    /// The database is not usable by this version of the code (schema too new, missing).
    #[error("{0}")]
    Schema(String),
    /// A fault inside the store (a bug, or data it cannot read).
    #[error("store error: {0}")]
    Internal(String),
}

impl StoreError {
    /// Whether the same call may succeed if tried again later.
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Unavailable { .. })
    }
}
