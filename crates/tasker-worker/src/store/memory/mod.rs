//! `MemoryStore`: the embedded backend. Every task lives in this process's memory
//! (`state::MemoryState` behind one lock); templates in a `TemplateRegistry`; wake-ups go
//! straight to the `ChangeFeed`. Needs no server and is the default.
//!
//! Every call holds the state lock for a few microseconds and never across an `.await`,
//! so it is as cheap from a Ruby thread as from a tokio task.

mod state;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use parking_lot::{Mutex, RwLock};
use uuid::Uuid;

pub use state::{MemoryCounts, MemoryLimits, MemoryState};

use super::{
    Backend, CancelOutcome, ChangeFeed, Claimed, CreatedTask, NewTask, RecordOutcome, RetryOutcome, StoreError,
    StoreStats, TaskFilter, TaskStatusView, TaskStore, TaskSummary, WorkerRegistration, WorkerView, MAX_LIST_LIMIT,
};
use crate::messages::{StepExecutionEvent, StepExecutionResult};
use crate::rules::AttemptDecision;
use crate::template::{TemplateRegistry, WorkflowTemplate};

/// See the module documentation.
#[derive(Debug)]
pub struct MemoryStore {
    state: Mutex<MemoryState>,
    templates: RwLock<TemplateRegistry>,
    feed: Arc<ChangeFeed>,
    /// Workers of this process, by id, with when they last beat.
    workers: Mutex<HashMap<String, (WorkerRegistration, Instant)>>,
}

impl MemoryStore {
    pub fn new(limits: MemoryLimits) -> Self {
        Self::with_state(MemoryState::new(limits))
    }

    /// A store over a given state (tests use a seeded one).
    pub fn with_state(state: MemoryState) -> Self {
        Self {
            state: Mutex::new(state),
            templates: RwLock::new(TemplateRegistry::new()),
            feed: Arc::new(ChangeFeed::new(None)),
            workers: Mutex::new(HashMap::new()),
        }
    }

    /// Counts including the memory the finished tasks take.
    pub fn counts(&self) -> MemoryCounts {
        self.state.lock().counts()
    }

    fn find_template(&self, task: &NewTask) -> Result<Arc<WorkflowTemplate>, StoreError> {
        Ok(self.templates.read().find(&task.namespace, &task.name, task.version.as_deref())?)
    }
}

#[async_trait::async_trait]
impl TaskStore for MemoryStore {
    fn backend(&self) -> Backend {
        Backend::Embedded
    }

    fn feed(&self) -> &Arc<ChangeFeed> {
        &self.feed
    }

    fn blocks_on_io(&self) -> bool {
        false
    }

    async fn register_templates(&self, templates: Vec<Arc<WorkflowTemplate>>) -> Result<(), StoreError> {
        let mut registry = self.templates.write();
        for template in templates {
            registry.register_shared(template);
        }
        Ok(())
    }

    async fn templates(&self) -> Result<Vec<Arc<WorkflowTemplate>>, StoreError> {
        Ok(self.templates.read().iter().cloned().collect())
    }

    async fn create_task(&self, task: NewTask) -> Result<CreatedTask, StoreError> {
        let template = self.find_template(&task)?;
        check_context(&template, &task.context)?;
        let (task_uuid, created) = self.state.lock().create_task(template, task, Instant::now(), SystemTime::now())?;
        if created {
            self.feed.notify_ready();
        }
        Ok(CreatedTask { task_uuid, created })
    }

    async fn claim(
        &self,
        _worker_id: &str,
        _claim_id: Uuid,
        max: usize,
        default_timeout: Duration,
        out: &mut Vec<StepExecutionEvent>,
    ) -> Result<Claimed, StoreError> {
        let now = Instant::now();
        let next = self.state.lock().claim(now, SystemTime::now(), max, default_timeout, out);
        Ok(Claimed { next_due: next.map(|at| at.saturating_duration_since(now)) })
    }

    async fn record(&self, batch: &mut Vec<StepExecutionResult>) -> Result<Vec<RecordOutcome>, StoreError> {
        let now = Instant::now();
        let wall = SystemTime::now();
        let mut finished = Vec::new();
        let outcomes: Vec<RecordOutcome> = {
            let mut state = self.state.lock();
            let outcomes: Vec<RecordOutcome> = batch
                .drain(..)
                .map(|result| {
                    let task = result.step.task_uuid;
                    let outcome = state.record(result, now, wall);
                    if outcome.finished().is_some() {
                        finished.push(task);
                    }
                    outcome
                })
                .collect();
            if !finished.is_empty() {
                state.enforce_retention(wall, &|uuid| self.feed.is_watched(uuid));
            }
            outcomes
        };
        let wake_executor = outcomes.iter().any(|o| matches!(o.decision(), Some(d) if d != AttemptDecision::Fail));
        if wake_executor {
            self.feed.notify_ready();
        }
        if !finished.is_empty() {
            self.feed.notify_finished(finished);
        }
        Ok(outcomes)
    }

    async fn heartbeat(&self, worker: &WorkerRegistration) -> Result<(), StoreError> {
        self.workers.lock().insert(worker.worker_id.clone(), (worker.clone(), Instant::now()));
        Ok(())
    }

    async fn deregister_worker(&self, worker_id: &str) -> Result<(), StoreError> {
        self.workers.lock().remove(worker_id);
        Ok(())
    }

    /// In one process a dead worker means a dead process, which took its steps with it:
    /// nothing to expire.
    async fn expire_dead_workers(&self, _older_than: Duration) -> Result<Vec<RecordOutcome>, StoreError> {
        Ok(Vec::new())
    }

    async fn workers(&self) -> Result<Vec<WorkerView>, StoreError> {
        let now = Instant::now();
        let mut views: Vec<WorkerView> = self
            .workers
            .lock()
            .values()
            .map(|(w, beat)| WorkerView {
                worker_id: w.worker_id.clone(),
                host: w.host.clone(),
                pid: w.pid,
                started_at: w.started_at,
                heartbeat_age: now.saturating_duration_since(*beat),
                concurrency: w.concurrency,
                in_flight: w.in_flight,
            })
            .collect();
        views.sort_by_key(|w| w.heartbeat_age);
        Ok(views)
    }

    async fn task_status(&self, task_uuid: Uuid) -> Result<TaskStatusView, StoreError> {
        self.state.lock().task_status(&task_uuid)
    }

    async fn list_tasks(&self, filter: TaskFilter) -> Result<Vec<TaskSummary>, StoreError> {
        check_limit(filter.limit)?;
        self.state.lock().list(&filter)
    }

    async fn cancel_task(&self, task_uuid: Uuid, reason: Option<String>) -> Result<CancelOutcome, StoreError> {
        let outcome = self.state.lock().cancel(&task_uuid, reason, SystemTime::now())?;
        if !matches!(outcome, CancelOutcome::AlreadyFinished(_)) {
            self.feed.notify_cancelled([task_uuid]);
        }
        if outcome == CancelOutcome::Cancelled {
            self.feed.notify_finished([task_uuid]);
        }
        Ok(outcome)
    }

    async fn retry_task(&self, task_uuid: Uuid) -> Result<RetryOutcome, StoreError> {
        let outcome = self.state.lock().retry(&task_uuid, SystemTime::now())?;
        if matches!(outcome, RetryOutcome::Retrying { .. }) {
            self.feed.notify_ready();
        }
        Ok(outcome)
    }

    async fn stats(&self) -> Result<StoreStats, StoreError> {
        let now = SystemTime::now();
        let (counts, throughput) = {
            let state = self.state.lock();
            (state.counts(), state.throughput(now))
        };
        Ok(StoreStats {
            tasks: counts.tasks,
            steps_in_flight: counts.steps_in_flight,
            steps_ready: counts.steps_ready,
            steps_waiting_for_retry: counts.steps_waiting_for_retry,
            throughput,
            workers_alive: self.workers.lock().len() as u64,
        })
    }

    async fn purge_finished(&self) -> Result<usize, StoreError> {
        Ok(self.state.lock().enforce_retention(SystemTime::now(), &|uuid| self.feed.is_watched(uuid)))
    }
}

/// The context must be a JSON object, and match the template's `input_schema` (unless
/// the template was loaded with `orchestration.input_schema = "warn"`).
pub(crate) fn check_context(template: &WorkflowTemplate, context: &serde_json::Value) -> Result<(), StoreError> {
    if !context.is_object() {
        return Err(StoreError::InvalidContext(format!(
            "task context must be a JSON object (a Hash), got {}",
            super::events::json_kind(context)
        )));
    }
    template.admit_context(context).map_err(|error| {
        StoreError::InvalidContext(format!(
            "task {}/{}@{}: {error}",
            template.namespace, template.name, template.version
        ))
    })
}

/// A listing's limit must be 1..=1000.
pub(crate) fn check_limit(limit: usize) -> Result<(), StoreError> {
    if limit == 0 || limit > MAX_LIST_LIMIT {
        return Err(StoreError::InvalidRequest(format!("limit must be between 1 and {MAX_LIST_LIMIT}, got {limit}")));
    }
    Ok(())
}
