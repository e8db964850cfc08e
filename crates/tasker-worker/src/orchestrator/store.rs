//! The embedded orchestrator's state and every transition of it: tasks and their steps,
//! the ready queue, the retry schedule and the retention of finished tasks.
//!
//! Pure data and logic with an explicit clock and a seeded random source, so readiness,
//! retries, backoff and retention are tested without threads or timers. `Orchestrator`
//! (the parent module) wraps it in a lock and adds the wake-ups.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;
use uuid::Uuid;

use super::backoff::retry_delay;
use super::status::{StepStatusView, TaskStatusView};
use crate::messages::{
    StepExecutionError, StepExecutionEvent, StepExecutionResult, TaskInfo, TaskSequenceStep, WorkflowStepInfo,
};
use crate::template::WorkflowTemplate;
use crate::time_format::hex;

/// Where a task is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskStatus {
    Pending,
    InProgress,
    Complete,
    Error,
}

impl TaskStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Pending => "pending",
            TaskStatus::InProgress => "in_progress",
            TaskStatus::Complete => "complete",
            TaskStatus::Error => "error",
        }
    }

    pub fn is_finished(self) -> bool {
        matches!(self, TaskStatus::Complete | TaskStatus::Error)
    }
}

/// Where a step is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepStatus {
    /// Waiting for its dependencies (or never run because the task failed).
    Pending,
    /// Ready, in the queue for the executor.
    Enqueued,
    /// Claimed: dispatched to a handler, result not yet recorded.
    InProgress,
    /// Failed, will be enqueued again when its backoff has passed.
    WaitingForRetry,
    Complete,
    Error,
}

impl StepStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            StepStatus::Pending => "pending",
            StepStatus::Enqueued => "enqueued",
            StepStatus::InProgress => "in_progress",
            StepStatus::WaitingForRetry => "waiting_for_retry",
            StepStatus::Complete => "complete",
            StepStatus::Error => "error",
        }
    }
}

/// A step of a task, by position in the task's template.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct StepRef {
    task: Uuid,
    index: usize,
}

#[derive(Debug)]
struct StepRecord {
    uuid: Uuid,
    status: StepStatus,
    attempts: u32,
    /// Dependencies not yet complete.
    waiting_on: usize,
    result: Option<Arc<Value>>,
    error: Option<StepExecutionError>,
    /// The event of the attempt in progress; results for any other event are stale.
    event_id: Option<Uuid>,
}

#[derive(Debug)]
struct TaskRecord {
    uuid: Uuid,
    template: Arc<WorkflowTemplate>,
    context: Arc<Value>,
    correlation_id: Uuid,
    trace_id: String,
    status: TaskStatus,
    steps: Vec<StepRecord>,
    /// Steps not yet complete.
    unfinished: usize,
    created_at: SystemTime,
    finished_at: Option<SystemTime>,
}

/// Running totals of the orchestrator, for summaries and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct OrchestratorStats {
    pub tasks_created: u64,
    pub tasks_completed: u64,
    pub tasks_failed: u64,
    pub steps_dispatched: u64,
    pub steps_succeeded: u64,
    /// Failed attempts, retried or not.
    pub step_failures: u64,
    pub retries_scheduled: u64,
    /// Steps that ended in `error` (their task ended in `error`).
    pub steps_failed_permanently: u64,
    /// Results for an attempt that is no longer in progress (ignored).
    pub stale_results: u64,
    /// Attempts cut short by a stopping worker (not counted as attempts or failures).
    pub shutdown_interruptions: u64,
    pub tasks_in_memory: u64,
    pub ready_steps: u64,
    pub waiting_retries: u64,
}

/// What recording a result did.
#[derive(Debug, Clone, PartialEq)]
pub enum RecordOutcome {
    /// The step completed; `task_finished` if that completed its task.
    Completed { task_finished: bool },
    /// The attempt failed and the step will run again after `delay`.
    RetryScheduled { delay: Duration },
    /// The step failed for good and its task is now in `error`.
    Failed,
    /// Nothing to advance: not an attempt in progress (unknown task or step, old event,
    /// already recorded), or a shutdown-interrupted step of a task that already failed.
    Stale,
}

/// The orchestrator's state. Not thread-safe on its own.
#[derive(Debug)]
pub struct Store {
    tasks: HashMap<Uuid, TaskRecord>,
    ready: VecDeque<StepRef>,
    retries: BinaryHeap<Reverse<(Instant, u64, StepRef)>>,
    finished: VecDeque<Uuid>,
    retention: usize,
    retry_seq: u64,
    rng: fastrand::Rng,
    stats: OrchestratorStats,
}

impl Store {
    /// `retention`: how many finished tasks stay readable before the oldest is forgotten.
    pub fn new(retention: usize) -> Self {
        Self::with_rng(retention, fastrand::Rng::new())
    }

    /// A store whose jitter comes from a seeded generator (for tests).
    pub fn with_seed(retention: usize, seed: u64) -> Self {
        Self::with_rng(retention, fastrand::Rng::with_seed(seed))
    }

    fn with_rng(retention: usize, rng: fastrand::Rng) -> Self {
        Self {
            tasks: HashMap::new(),
            ready: VecDeque::new(),
            retries: BinaryHeap::new(),
            finished: VecDeque::new(),
            retention: retention.max(1),
            retry_seq: 0,
            rng,
            stats: OrchestratorStats::default(),
        }
    }

    /// Creates a task from a checked template; its root steps become ready at once.
    pub fn create_task(&mut self, template: Arc<WorkflowTemplate>, context: Value, now: SystemTime) -> Uuid {
        let uuid = Uuid::new_v4();
        let steps: Vec<StepRecord> = template
            .dependencies
            .iter()
            .map(|deps| StepRecord {
                uuid: Uuid::new_v4(),
                status: StepStatus::Pending,
                attempts: 0,
                waiting_on: deps.len(),
                result: None,
                error: None,
                event_id: None,
            })
            .collect();
        let mut task = TaskRecord {
            uuid,
            unfinished: steps.len(),
            steps,
            context: Arc::new(context),
            correlation_id: Uuid::new_v4(),
            trace_id: hex(self.rng.u128(1..), 32),
            status: TaskStatus::Pending,
            created_at: now,
            finished_at: None,
            template,
        };
        for index in task.template.root_steps() {
            task.steps[index].status = StepStatus::Enqueued;
            self.ready.push_back(StepRef { task: uuid, index });
        }
        self.tasks.insert(uuid, task);
        self.stats.tasks_created += 1;
        uuid
    }

    /// Claims the next ready step: `in_progress`, one more attempt, a new event id.
    /// Retries whose backoff has passed by `now` are made ready first.
    pub fn claim(&mut self, now: Instant, default_timeout: Duration) -> Option<StepExecutionEvent> {
        self.promote_due_retries(now);
        while let Some(step_ref) = self.ready.pop_front() {
            let Some(task) = self.tasks.get_mut(&step_ref.task) else { continue };
            let step = &mut task.steps[step_ref.index];
            if step.status != StepStatus::Enqueued {
                continue;
            }
            if task.status == TaskStatus::Error {
                // The task already failed: its remaining steps never run.
                step.status = StepStatus::Pending;
                continue;
            }
            step.status = StepStatus::InProgress;
            step.attempts += 1;
            let event_id = Uuid::new_v4();
            step.event_id = Some(event_id);
            if task.status == TaskStatus::Pending {
                task.status = TaskStatus::InProgress;
            }
            self.stats.steps_dispatched += 1;
            let span_id = hex(u128::from(self.rng.u64(1..)), 16);
            return Some(build_event(task, step_ref.index, event_id, span_id, default_timeout));
        }
        None
    }

    /// When the earliest scheduled retry becomes due, if any.
    pub fn next_retry_due(&self) -> Option<Instant> {
        self.retries.peek().map(|Reverse((due, _, _))| *due)
    }

    fn promote_due_retries(&mut self, now: Instant) {
        while let Some(Reverse((due, _, _))) = self.retries.peek() {
            if *due > now {
                break;
            }
            let Some(Reverse((_, _, step_ref))) = self.retries.pop() else { break };
            let Some(task) = self.tasks.get_mut(&step_ref.task) else { continue };
            let step = &mut task.steps[step_ref.index];
            if step.status == StepStatus::WaitingForRetry {
                step.status = StepStatus::Enqueued;
                self.ready.push_back(step_ref);
            }
        }
    }

    /// Records the result of an attempt: completes the step and readies its dependents,
    /// schedules a retry, or fails the step and its task.
    pub fn record(&mut self, result: StepExecutionResult, now: Instant, wall: SystemTime) -> RecordOutcome {
        let Some(task) = self.tasks.get_mut(&result.step.task_uuid) else {
            self.stats.stale_results += 1;
            return RecordOutcome::Stale;
        };
        let Some(index) = task.steps.iter().position(|s| s.uuid == result.step.step_uuid) else {
            self.stats.stale_results += 1;
            return RecordOutcome::Stale;
        };
        let step = &mut task.steps[index];
        if step.status != StepStatus::InProgress || step.event_id != Some(result.step.event_id) {
            self.stats.stale_results += 1;
            return RecordOutcome::Stale;
        }
        step.event_id = None;

        if result.success {
            step.status = StepStatus::Complete;
            step.result = Some(Arc::new(result.result));
            step.error = None;
            task.unfinished -= 1;
            self.stats.steps_succeeded += 1;
            if task.status != TaskStatus::Error {
                let template = Arc::clone(&task.template);
                for &dependent in &template.dependents[index] {
                    let child = &mut task.steps[dependent];
                    child.waiting_on = child.waiting_on.saturating_sub(1);
                    if child.waiting_on == 0 && child.status == StepStatus::Pending {
                        child.status = StepStatus::Enqueued;
                        self.ready.push_back(StepRef { task: task.uuid, index: dependent });
                    }
                }
            }
            let task_finished = task.unfinished == 0 && task.status != TaskStatus::Error;
            if task_finished {
                task.status = TaskStatus::Complete;
                task.finished_at = Some(wall);
                self.stats.tasks_completed += 1;
                let uuid = task.uuid;
                self.retain_finished(uuid);
            }
            return RecordOutcome::Completed { task_finished };
        }

        if is_worker_shutdown(&result) {
            // The worker stopped under this attempt: it does not count as an attempt or a
            // failure, and the step is ready again at once for whichever worker runs next
            // (unless its task already failed, in which case it simply never finishes).
            self.stats.shutdown_interruptions += 1;
            step.attempts = step.attempts.saturating_sub(1);
            step.error = result.error;
            if task.status == TaskStatus::Error {
                step.status = StepStatus::Pending;
                return RecordOutcome::Stale;
            }
            step.status = StepStatus::Enqueued;
            self.ready.push_back(StepRef { task: task.uuid, index });
            return RecordOutcome::RetryScheduled { delay: Duration::ZERO };
        }
        self.stats.step_failures += 1;
        let policy = &task.template.steps[index].retry;
        let retry = policy.retryable
            && result.is_retryable_failure()
            && step.attempts < policy.max_attempts
            && task.status != TaskStatus::Error;
        step.error = Some(
            result.error.unwrap_or_else(|| StepExecutionError::new("step failed without an error", "unknown", true)),
        );
        if retry {
            // A handler's own retry_after wins over the policy's backoff (capped at a day).
            let delay = match step.error.as_ref().and_then(|e| e.retry_after) {
                Some(after) => after.min(Duration::from_millis(crate::template::validate::MAX_BACKOFF_LIMIT_MS)),
                None => retry_delay(policy, step.attempts, self.rng.f64()),
            };
            step.status = StepStatus::WaitingForRetry;
            self.retry_seq += 1;
            self.retries.push(Reverse((now + delay, self.retry_seq, StepRef { task: task.uuid, index })));
            self.stats.retries_scheduled += 1;
            return RecordOutcome::RetryScheduled { delay };
        }
        step.status = StepStatus::Error;
        self.stats.steps_failed_permanently += 1;
        if task.status != TaskStatus::Error {
            task.status = TaskStatus::Error;
            task.finished_at = Some(wall);
            // Steps that were queued or waiting for a retry will never run now.
            for other in task.steps.iter_mut() {
                if matches!(other.status, StepStatus::Enqueued | StepStatus::WaitingForRetry) {
                    other.status = StepStatus::Pending;
                }
            }
            self.stats.tasks_failed += 1;
            let uuid = task.uuid;
            self.retain_finished(uuid);
        }
        RecordOutcome::Failed
    }

    /// Keeps at most `retention` finished tasks; the oldest are forgotten.
    fn retain_finished(&mut self, uuid: Uuid) {
        self.finished.push_back(uuid);
        while self.finished.len() > self.retention {
            if let Some(old) = self.finished.pop_front() {
                self.tasks.remove(&old);
            }
        }
    }

    pub fn task_status(&self, uuid: &Uuid) -> Option<TaskStatusView> {
        self.tasks.get(uuid).map(task_view)
    }

    pub fn stats(&self) -> OrchestratorStats {
        OrchestratorStats {
            tasks_in_memory: self.tasks.len() as u64,
            ready_steps: self.ready.len() as u64,
            waiting_retries: self.retries.len() as u64,
            ..self.stats
        }
    }
}

fn is_worker_shutdown(result: &StepExecutionResult) -> bool {
    result.error.as_ref().is_some_and(|e| e.error_type == crate::messages::error_types::WORKER_SHUTDOWN)
}

fn build_event(
    task: &TaskRecord,
    index: usize,
    event_id: Uuid,
    span_id: String,
    default_timeout: Duration,
) -> StepExecutionEvent {
    let template = &task.template;
    let definition = Arc::clone(&template.steps[index]);
    let step = &task.steps[index];
    let dependency_results: BTreeMap<String, Arc<Value>> = template.dependencies[index]
        .iter()
        .map(|&parent| {
            let value = task.steps[parent].result.clone().unwrap_or_else(|| Arc::new(Value::Null));
            (template.steps[parent].name.clone(), value)
        })
        .collect();
    // Only ancestors that finished have results; clones of shared values, converted for
    // a handler only when it asks.
    let ancestor_results: BTreeMap<String, Arc<Value>> = template
        .ancestors
        .get(index)
        .into_iter()
        .flatten()
        .filter_map(|&ancestor| {
            let value = task.steps[ancestor].result.clone()?;
            Some((template.steps[ancestor].name.clone(), value))
        })
        .collect();
    StepExecutionEvent {
        event_id,
        task_uuid: task.uuid,
        step_uuid: step.uuid,
        correlation_id: task.correlation_id,
        trace_id: Some(task.trace_id.clone()),
        span_id: Some(span_id),
        timeout: definition.timeout(default_timeout),
        payload: TaskSequenceStep {
            task: TaskInfo {
                task_uuid: task.uuid,
                namespace: template.namespace.clone(),
                name: template.name.clone(),
                version: template.version.clone(),
                context: Arc::clone(&task.context),
            },
            workflow_step: WorkflowStepInfo {
                step_uuid: step.uuid,
                name: definition.name.clone(),
                attempts: step.attempts,
                max_attempts: definition.retry.max_attempts,
                retryable: definition.retry.retryable,
                inputs: Arc::clone(&definition.inputs),
            },
            dependency_results,
            ancestor_results,
            step_definition: definition,
        },
    }
}

fn task_view(task: &TaskRecord) -> TaskStatusView {
    TaskStatusView {
        task_uuid: task.uuid,
        namespace: task.template.namespace.clone(),
        name: task.template.name.clone(),
        version: task.template.version.clone(),
        status: task.status.as_str(),
        correlation_id: task.correlation_id,
        created_at: task.created_at,
        finished_at: task.finished_at,
        steps: task
            .steps
            .iter()
            .zip(task.template.steps.iter())
            .map(|(step, def)| StepStatusView {
                name: def.name.clone(),
                step_uuid: step.uuid,
                status: step.status.as_str(),
                attempts: step.attempts,
                max_attempts: def.retry.max_attempts,
                result: step.result.clone(),
                error: step.error.clone(),
            })
            .collect(),
    }
}
