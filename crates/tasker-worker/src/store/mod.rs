//! The storage seam: one async contract, [`TaskStore`], for everything the worker
//! pipeline, the system and the Ruby binding need from where tasks live, and its two
//! implementations — [`memory::MemoryStore`] (embedded, the default, no server) and
//! `postgres::PostgresStore` (durable, shared by many processes).
//!
//! Callers hold an `Arc<dyn TaskStore>` and never know which one it is. What both must do
//! is pinned down by the contract test suite (`tests/store_contract/`); the DAG rules they
//! share (attempt decisions, task progress, backoff) are pure code in `crate::rules`.

mod error;
pub mod events;
mod feed;
pub mod memory;
pub mod postgres;
mod views;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde_json::Value;
use uuid::Uuid;

pub use error::StoreError;
pub use feed::{ChangeFeed, FinishWait, TaskWatch};
pub use views::{AttemptRecord, StepStatusView, TaskStatusView, TaskSummary};

use crate::messages::{StepExecutionEvent, StepExecutionResult};
use crate::rules::AttemptDecision;
use crate::template::WorkflowTemplate;

/// Which implementation a store is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Embedded,
    Postgres,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Embedded => "embedded",
            Backend::Postgres => "postgres",
        }
    }
}

/// Where a task is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TaskStatus {
    /// Created; no step has started yet (it may be waiting for its `run_at`).
    Pending,
    /// A step has started; also while a failing or cancelled task waits for the steps
    /// still running.
    InProgress,
    Complete,
    Error,
    Cancelled,
}

impl TaskStatus {
    pub const ALL: [TaskStatus; 5] =
        [TaskStatus::Pending, TaskStatus::InProgress, TaskStatus::Complete, TaskStatus::Error, TaskStatus::Cancelled];

    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Pending => "pending",
            TaskStatus::InProgress => "in_progress",
            TaskStatus::Complete => "complete",
            TaskStatus::Error => "error",
            TaskStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// Whether the task will not change any more (unless retried).
    pub fn is_finished(self) -> bool {
        matches!(self, TaskStatus::Complete | TaskStatus::Error | TaskStatus::Cancelled)
    }
}

/// Where a step is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StepStatus {
    /// Waiting for its dependencies, or for its task's `run_at`.
    Pending,
    /// Ready, waiting to be claimed.
    Enqueued,
    /// Claimed: dispatched to a handler, result not yet recorded.
    InProgress,
    /// Failed; runs again when its backoff has passed.
    WaitingForRetry,
    Complete,
    Error,
    /// Will never run: its task failed or was cancelled first.
    Skipped,
}

impl StepStatus {
    pub const ALL: [StepStatus; 7] = [
        StepStatus::Pending,
        StepStatus::Enqueued,
        StepStatus::InProgress,
        StepStatus::WaitingForRetry,
        StepStatus::Complete,
        StepStatus::Error,
        StepStatus::Skipped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StepStatus::Pending => "pending",
            StepStatus::Enqueued => "enqueued",
            StepStatus::InProgress => "in_progress",
            StepStatus::WaitingForRetry => "waiting_for_retry",
            StepStatus::Complete => "complete",
            StepStatus::Error => "error",
            StepStatus::Skipped => "skipped",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// What `create_task` asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct NewTask {
    pub namespace: String,
    pub name: String,
    /// `None`: the highest version that is not a prerelease.
    pub version: Option<String>,
    /// Must be a JSON object; checked against the template's `input_schema`.
    pub context: Value,
    /// A second `create_task` with the same key answers the first task's uuid and creates
    /// nothing, for as long as that task is retained.
    pub idempotency_key: Option<String>,
    /// No step is dispatched before this time.
    pub run_at: Option<SystemTime>,
    /// Ready steps of higher-priority tasks are claimed first.
    pub priority: i32,
}

impl NewTask {
    /// A task of `namespace/name` (highest version) with `context` and no options.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>, context: Value) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
            version: None,
            context,
            idempotency_key: None,
            run_at: None,
            priority: 0,
        }
    }
}

/// What `create_task` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CreatedTask {
    pub task_uuid: Uuid,
    /// `false` when the idempotency key named a task that already existed.
    pub created: bool,
}

/// What an idle executor needs to know after a claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Claimed {
    /// How long until the earliest scheduled step (a retry, a `run_at`) becomes due;
    /// `None` when nothing is scheduled (or the store cannot tell cheaply).
    pub next_due: Option<Duration>,
}

/// The step a recorded result belonged to (for counters and metrics labels).
#[derive(Debug, Clone)]
pub struct RecordedStep {
    pub template: Arc<WorkflowTemplate>,
    pub index: usize,
}

impl RecordedStep {
    pub fn step_name(&self) -> &str {
        &self.template.steps[self.index].name
    }
}

/// What recording one result did.
#[derive(Debug, Clone)]
pub enum RecordOutcome {
    /// Accepted: `decision` is what it did to the step; `finished` is the task's final
    /// status when this result finished the task.
    Recorded { decision: AttemptDecision, finished: Option<TaskStatus>, step: RecordedStep },
    /// Not an attempt in progress (unknown task or step, another event id, already
    /// recorded): ignored.
    Stale,
}

impl RecordOutcome {
    pub fn is_stale(&self) -> bool {
        matches!(self, RecordOutcome::Stale)
    }

    pub fn decision(&self) -> Option<AttemptDecision> {
        match self {
            RecordOutcome::Recorded { decision, .. } => Some(*decision),
            RecordOutcome::Stale => None,
        }
    }

    pub fn finished(&self) -> Option<TaskStatus> {
        match self {
            RecordOutcome::Recorded { finished, .. } => *finished,
            RecordOutcome::Stale => None,
        }
    }
}

/// Where a listing starts (exclusive), newest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskCursor {
    /// Tasks created before this one.
    Task(Uuid),
    /// Tasks created before this time.
    Time(SystemTime),
}

/// A query of `list_tasks`.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskFilter {
    pub status: Option<TaskStatus>,
    pub namespace: Option<String>,
    pub name: Option<String>,
    /// At most this many (1..=1000).
    pub limit: usize,
    pub before: Option<TaskCursor>,
}

impl Default for TaskFilter {
    fn default() -> Self {
        Self { status: None, namespace: None, name: None, limit: 50, before: None }
    }
}

/// The most tasks one listing answers.
pub const MAX_LIST_LIMIT: usize = 1000;

/// What `cancel_task` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelOutcome {
    /// Nothing was running: the task is `cancelled` now.
    Cancelled,
    /// `in_flight` steps are still running; no new step starts, and the task becomes
    /// `cancelled` when they finish.
    Cancelling { in_flight: usize },
    /// The task had already finished with this status; nothing changed.
    AlreadyFinished(TaskStatus),
}

/// What `retry_task` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryOutcome {
    /// The task is running again: its failed steps have a fresh attempt budget, its
    /// skipped steps wait for their dependencies again.
    Retrying { failed_steps: usize, skipped_steps: usize },
    /// Only a task in `error` can be retried; this one is in another status.
    NotFailed(TaskStatus),
}

/// A worker process's record, refreshed by each heartbeat.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerRegistration {
    pub worker_id: String,
    pub host: String,
    pub pid: u32,
    pub started_at: SystemTime,
    pub concurrency: usize,
    /// Steps this worker holds now.
    pub in_flight: usize,
}

/// A live worker, as `workers` lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerView {
    pub worker_id: String,
    pub host: String,
    pub pid: u32,
    pub started_at: SystemTime,
    pub heartbeat_age: Duration,
    pub concurrency: usize,
    pub in_flight: usize,
}

/// Attempts that ended in one minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MinuteThroughput {
    /// The start of the minute.
    pub minute: SystemTime,
    pub succeeded: u64,
    pub failed: u64,
}

/// Counts of one moment, for the dashboard and `tasker-worker status`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StoreStats {
    /// Tasks the store holds, by status (every status present, zero or not).
    pub tasks: Vec<(TaskStatus, u64)>,
    pub steps_in_flight: u64,
    pub steps_ready: u64,
    pub steps_waiting_for_retry: u64,
    /// Attempts per minute over the last hour, oldest first (empty minutes included).
    pub throughput: Vec<MinuteThroughput>,
    pub workers_alive: u64,
}

impl StoreStats {
    pub fn tasks_with(&self, status: TaskStatus) -> u64 {
        self.tasks.iter().find(|(s, _)| *s == status).map_or(0, |(_, n)| *n)
    }
}

/// Everything the worker pipeline, the system and the binding need from where tasks
/// live. See the module documentation; each method's contract is what the contract test
/// suite checks for both implementations.
#[async_trait::async_trait]
pub trait TaskStore: Send + Sync + std::fmt::Debug + 'static {
    fn backend(&self) -> Backend;

    /// Wake-ups the store produces: steps may be ready, tasks finished or cancelled.
    fn feed(&self) -> &Arc<ChangeFeed>;

    /// Whether calls wait on I/O (a binding then releases its interpreter lock around them).
    fn blocks_on_io(&self) -> bool;

    /// Makes templates known to the store (so any process can create tasks of them) and
    /// marks them loaded in this process: `claim` only returns steps of templates
    /// registered here. A template with the same namespace, name and version replaces the
    /// one registered before.
    async fn register_templates(&self, templates: Vec<Arc<WorkflowTemplate>>) -> Result<(), StoreError>;

    /// Every template the store knows, ordered by namespace, name, version.
    async fn templates(&self) -> Result<Vec<Arc<WorkflowTemplate>>, StoreError>;

    /// Creates a task: resolves its template, checks its context, honours the idempotency
    /// key, `run_at` and priority. Its root steps become ready (at `run_at` when given).
    async fn create_task(&self, task: NewTask) -> Result<CreatedTask, StoreError>;

    /// Claims up to `max` ready steps for `worker_id`, highest task priority first, then
    /// in the order they became ready, and pushes one event per claimed step into `out`:
    /// the step is `in_progress`, its attempts grew by one, and it carries a fresh
    /// `event_id` (the fencing token its result must name). Steps of tasks that no longer
    /// start steps, steps not yet due, and steps over their template's `max_in_flight` are
    /// never claimed. Each event's `timeout` is the step's own, or `default_timeout`.
    ///
    /// `claim_id` makes a claim safe to repeat: when a call fails after the store may have
    /// claimed steps (a lost answer), the caller calls again with the same `claim_id` and
    /// gets the steps claimed under it, instead of leaving them leased to nobody.
    async fn claim(
        &self,
        worker_id: &str,
        claim_id: Uuid,
        max: usize,
        default_timeout: Duration,
        out: &mut Vec<StepExecutionEvent>,
    ) -> Result<Claimed, StoreError>;

    /// Records a batch of results, all or nothing. A result is accepted only if its step
    /// is still `in_progress` under the same `event_id`; otherwise it is `Stale`. Accepted
    /// results follow `rules::decide_attempt`; a completed step readies the dependents
    /// whose dependencies are now all complete; a task finishes as `rules::TaskProgress`
    /// says. On `Ok` the batch has been drained and the outcomes are in its order; on
    /// `Err` nothing was recorded and the batch is left as it was, to be retried.
    async fn record(&self, batch: &mut Vec<StepExecutionResult>) -> Result<Vec<RecordOutcome>, StoreError>;

    /// Registers a worker, or refreshes its heartbeat and in-flight count.
    async fn heartbeat(&self, worker: &WorkerRegistration) -> Result<(), StoreError>;

    /// Removes a worker that stopped gracefully (its steps were already released).
    async fn deregister_worker(&self, worker_id: &str) -> Result<(), StoreError>;

    /// Fails every step held by a worker whose last heartbeat is older than `older_than`
    /// as a retryable `worker_lost` attempt (through the same rules as `record`), and
    /// removes those workers. Returns what recording each of those failures did.
    async fn expire_dead_workers(&self, older_than: Duration) -> Result<Vec<RecordOutcome>, StoreError>;

    /// Live workers, newest heartbeat first.
    async fn workers(&self) -> Result<Vec<WorkerView>, StoreError>;

    /// The task and each of its steps now.
    async fn task_status(&self, task_uuid: Uuid) -> Result<TaskStatusView, StoreError>;

    /// Tasks newest first, filtered, at most `filter.limit`.
    async fn list_tasks(&self, filter: TaskFilter) -> Result<Vec<TaskSummary>, StoreError>;

    /// Stops a task: no new step starts; it is `cancelled` once running steps finish.
    async fn cancel_task(&self, task_uuid: Uuid, reason: Option<String>) -> Result<CancelOutcome, StoreError>;

    /// Runs a task in `error` again from where it failed.
    async fn retry_task(&self, task_uuid: Uuid) -> Result<RetryOutcome, StoreError>;

    async fn stats(&self) -> Result<StoreStats, StoreError>;

    /// Forgets finished tasks whose retention has passed (a bounded batch per call).
    /// Returns how many it removed.
    async fn purge_finished(&self) -> Result<usize, StoreError>;

    /// Folds the status counts that writers appended into the totals `stats` starts from
    /// (maintenance calls it every tick). A store whose counts are always folded has
    /// nothing to do.
    async fn fold_counts(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Reclaims what finished attempts left behind (dead row versions, and the index
    /// entries claims would otherwise walk over) once enough has piled up; answers how
    /// many dead rows there were when it did, `None` when it had nothing to do. It may
    /// take seconds, so maintenance runs it on a task of its own. A store that frees as
    /// it goes has nothing to do.
    async fn reclaim_dead_steps(&self) -> Result<Option<u64>, StoreError> {
        Ok(None)
    }
}
