//! The embedded (in-process, in-memory) orchestrator: the templates it knows, task and
//! step state, readiness, retries and the DAG's advance.
//!
//! `Orchestrator` is a cheap, cloneable handle over the `Store` behind one lock. It is
//! called from Ruby threads (create, status, wait), from the `StepExecutorActor` (claim)
//! and from the `FFICompletionActor` (record); every call holds the lock for a few
//! microseconds and never across an `.await` or a blocking wait.

pub mod backoff;
pub mod status;
pub mod store;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use parking_lot::{Condvar, Mutex, RwLock};
use serde_json::Value;
use tokio::sync::Notify;
use uuid::Uuid;

pub use status::{StepStatusView, TaskStatusView};
pub use store::{OrchestratorStats, RecordOutcome, StepStatus, Store, TaskStatus};

use crate::config::{InputSchemaMode, OrchestrationConfig};
use crate::messages::{StepExecutionEvent, StepExecutionResult};
use crate::template::{TemplateError, TemplateRegistry, WorkflowTemplate};

/// Errors of the orchestrator's public operations.
#[derive(Debug, thiserror::Error)]
pub enum OrchestratorError {
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error("task context must be a JSON object (a Hash), got {found}")]
    ContextNotAnObject { found: &'static str },
    /// The context breaks the template's `input_schema`.
    #[error("task {template}: {error}")]
    InvalidContext { template: String, error: crate::template::ContextError },
    #[error("unknown task {0} (never created here, or finished and no longer retained)")]
    TaskNotFound(Uuid),
}

/// What a task creation asks for.
#[derive(Debug, Clone)]
pub struct TaskRequest {
    pub namespace: String,
    pub name: String,
    /// `None`: the template's highest version.
    pub version: Option<String>,
    /// Must be a JSON object.
    pub context: Value,
}

/// How a blocking wait for a task ended.
#[derive(Debug, Clone, PartialEq)]
pub enum WaitOutcome {
    Finished(TaskStatusView),
    TimedOut,
    Interrupted,
}

#[derive(Debug)]
struct Inner {
    store: Mutex<Store>,
    /// Blocking waiters (Ruby threads without the GVL) wait here for a task to finish.
    finished: Condvar,
    /// Async waiters wait here for a task to finish.
    finished_async: Notify,
    /// Wakes the executor: a step became ready or a retry was scheduled.
    ready: Notify,
    templates: RwLock<TemplateRegistry>,
    config: OrchestrationConfig,
}

/// Handle to the embedded orchestrator. Clones share one state.
#[derive(Debug, Clone)]
pub struct Orchestrator {
    inner: Arc<Inner>,
}

impl Orchestrator {
    pub fn new(config: OrchestrationConfig) -> Self {
        Self::with_store(Store::new(config.finished_task_retention), config)
    }

    /// An orchestrator over a given store (tests use a seeded one).
    pub fn with_store(store: Store, config: OrchestrationConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                store: Mutex::new(store),
                finished: Condvar::new(),
                finished_async: Notify::new(),
                ready: Notify::new(),
                templates: RwLock::new(TemplateRegistry::new()),
                config,
            }),
        }
    }

    pub fn config(&self) -> &OrchestrationConfig {
        &self.inner.config
    }

    /// Loads every template under `dir`; all or nothing.
    pub fn load_templates(&self, dir: &Path) -> Result<usize, TemplateError> {
        self.load_templates_for(dir, None)
    }

    /// Loads every template under `dir`, applying its `environments.<environment>`
    /// overrides; all or nothing.
    pub fn load_templates_for(&self, dir: &Path, environment: Option<&str>) -> Result<usize, TemplateError> {
        // Parse outside the registry lock, then swap in: task creation never waits on disk.
        let mut fresh = TemplateRegistry::new();
        let count = fresh.load_dir_for(dir, &self.inner.config.default_retry, environment)?;
        let mut registry = self.inner.templates.write();
        for template in fresh.iter() {
            registry.register(WorkflowTemplate::clone(template));
        }
        Ok(count)
    }

    /// Adds (or replaces) one checked template.
    pub fn register_template(&self, template: WorkflowTemplate) -> Arc<WorkflowTemplate> {
        self.inner.templates.write().register(template)
    }

    pub fn template_count(&self) -> usize {
        self.inner.templates.read().len()
    }

    /// Every registered template, ordered by namespace, name, then version.
    pub fn templates(&self) -> Vec<Arc<WorkflowTemplate>> {
        self.inner.templates.read().iter().cloned().collect()
    }

    /// Creates a task; its root steps are ready at once.
    pub fn create_task(&self, request: TaskRequest) -> Result<Uuid, OrchestratorError> {
        if !request.context.is_object() {
            return Err(OrchestratorError::ContextNotAnObject { found: json_kind(&request.context) });
        }
        let template =
            self.inner.templates.read().find(&request.namespace, &request.name, request.version.as_deref())?;
        if let Err(error) = template.check_context(&request.context) {
            let template = format!("{}/{}@{}", template.namespace, template.name, template.version);
            match self.inner.config.input_schema {
                InputSchemaMode::Enforce => return Err(OrchestratorError::InvalidContext { template, error }),
                InputSchemaMode::Warn => {
                    tracing::warn!(%template, %error, "task created although its context breaks the input_schema")
                }
            }
        }
        let uuid = self.inner.store.lock().create_task(template, request.context, SystemTime::now());
        self.inner.ready.notify_one();
        Ok(uuid)
    }

    /// Claims up to `max` ready steps into `out`. Returns when the earliest scheduled
    /// retry is due, so an idle executor knows how long it may sleep.
    pub fn claim_ready(
        &self,
        max: usize,
        default_timeout: Duration,
        out: &mut Vec<StepExecutionEvent>,
    ) -> Option<Instant> {
        let now = Instant::now();
        let mut store = self.inner.store.lock();
        while out.len() < max {
            match store.claim(now, default_timeout) {
                Some(event) => out.push(event),
                None => break,
            }
        }
        store.next_retry_due()
    }

    /// Resolves when a step may have become ready (a permit is stored if nobody waits).
    pub async fn ready_changed(&self) {
        self.inner.ready.notified().await
    }

    /// Records results of attempts and advances their tasks.
    pub fn record_results(&self, results: impl IntoIterator<Item = StepExecutionResult>) -> Vec<RecordOutcome> {
        let now = Instant::now();
        let wall = SystemTime::now();
        let outcomes: Vec<RecordOutcome> = {
            let mut store = self.inner.store.lock();
            results.into_iter().map(|r| store.record(r, now, wall)).collect()
        };
        let finished = outcomes
            .iter()
            .any(|o| matches!(o, RecordOutcome::Completed { task_finished: true } | RecordOutcome::Failed));
        let wake_executor = outcomes.iter().any(|o| !matches!(o, RecordOutcome::Stale | RecordOutcome::Failed));
        if wake_executor {
            self.inner.ready.notify_one();
        }
        if finished {
            self.inner.finished.notify_all();
            self.inner.finished_async.notify_waiters();
        }
        outcomes
    }

    pub fn record_result(&self, result: StepExecutionResult) -> RecordOutcome {
        self.record_results(std::iter::once(result)).pop().unwrap_or(RecordOutcome::Stale)
    }

    pub fn task_status(&self, task_uuid: &Uuid) -> Result<TaskStatusView, OrchestratorError> {
        self.inner.store.lock().task_status(task_uuid).ok_or(OrchestratorError::TaskNotFound(*task_uuid))
    }

    /// Waits (async) until the task is `complete` or `error`; `Ok(None)` on timeout.
    pub async fn wait_for_task(
        &self,
        task_uuid: &Uuid,
        timeout: Duration,
    ) -> Result<Option<TaskStatusView>, OrchestratorError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.inner.finished_async.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let view = self.task_status(task_uuid)?;
            if view.is_finished() {
                return Ok(Some(view));
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Ok(None);
            }
        }
    }

    /// Waits on the calling (non-async) thread until the task finishes, `timeout`
    /// passes, or `interrupted()` turns true. Whoever makes `interrupted()` true must
    /// then call `wake_blocking_waiters` so the wait notices at once.
    pub fn wait_for_task_blocking(
        &self,
        task_uuid: &Uuid,
        timeout: Duration,
        interrupted: &dyn Fn() -> bool,
    ) -> Result<WaitOutcome, OrchestratorError> {
        let deadline = Instant::now() + timeout;
        let mut store = self.inner.store.lock();
        loop {
            let view = store.task_status(task_uuid).ok_or(OrchestratorError::TaskNotFound(*task_uuid))?;
            if view.is_finished() {
                return Ok(WaitOutcome::Finished(view));
            }
            if interrupted() {
                return Ok(WaitOutcome::Interrupted);
            }
            if Instant::now() >= deadline {
                return Ok(WaitOutcome::TimedOut);
            }
            self.inner.finished.wait_until(&mut store, deadline);
        }
    }

    /// Wakes every blocking waiter so it rechecks its interrupt flag.
    pub fn wake_blocking_waiters(&self) {
        let _store = self.inner.store.lock();
        self.inner.finished.notify_all();
    }

    pub fn stats(&self) -> OrchestratorStats {
        self.inner.store.lock().stats()
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
