//! The embedded store's state and every transition of it: tasks and their steps, the
//! priority-ordered ready queue, the schedule of retries and delayed starts, per-template
//! in-flight limits, and the retention of finished tasks (by time and by a memory budget).
//!
//! Pure data and logic with an explicit clock and a seeded random source, so readiness,
//! retries, limits and retention are tested without threads or timers. `MemoryStore`
//! (the parent module) wraps it in a lock and adds the wake-ups. The decisions themselves
//! (what a result does to its step, when a task is finished) are `crate::rules`.

use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeMap, BinaryHeap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use uuid::Uuid;

use crate::messages::{StepExecutionError, StepExecutionEvent, StepExecutionResult};
use crate::rules::{attempt_outcome, decide_attempt, AttemptDecision, TaskProgress};
use crate::store::events::{approx_json_bytes, step_event, ClaimedStep};
use crate::store::{
    AttemptRecord, CancelOutcome, MinuteThroughput, NewTask, RecordOutcome, RecordedStep, RetryOutcome, StepStatus,
    StepStatusView, StoreError, TaskCursor, TaskFilter, TaskStatus, TaskStatusView, TaskSummary,
};
use crate::template::WorkflowTemplate;
use crate::time_format::hex;
use crate::uuid_map::UuidMap;

/// The limits of the embedded store (from `[storage.embedded]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryLimits {
    /// How long a finished task stays readable.
    pub retention: Duration,
    /// Bytes finished tasks may take before the oldest are evicted.
    pub memory_budget: u64,
    /// Unfinished tasks accepted at once.
    pub max_unfinished: usize,
}

impl Default for MemoryLimits {
    fn default() -> Self {
        let config = crate::config::EmbeddedStoreConfig::default();
        Self::from(&config)
    }
}

impl From<&crate::config::EmbeddedStoreConfig> for MemoryLimits {
    fn from(c: &crate::config::EmbeddedStoreConfig) -> Self {
        Self {
            retention: Duration::from_secs(c.finished_task_retention_seconds),
            memory_budget: c.finished_task_memory_budget_bytes,
            max_unfinished: c.max_unfinished_tasks,
        }
    }
}

/// Evicted task uuids remembered, so `task_status` can say "evicted" instead of "unknown"
/// (40 bytes each; the oldest are forgotten first).
pub(super) const EVICTION_MEMORY: usize = 16_384;
/// Fixed bytes counted per task and per step on top of their JSON: the records, their
/// index entries, the attempt history and the allocator's share, as measured (a
/// finished one-step no-op task takes about 2.6 KB of resident memory).
const TASK_OVERHEAD: usize = 1600;
const STEP_OVERHEAD: usize = 800;
/// Minutes of throughput kept.
const THROUGHPUT_MINUTES: usize = 60;

/// A step of a task, by position in the task's template.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct StepRef {
    task: Uuid,
    index: u32,
}

/// A ready step in the queue: higher priority first, then first ready first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ReadyEntry {
    priority: i32,
    seq: u64,
    step: StepRef,
}

impl Ord for ReadyEntry {
    fn cmp(&self, other: &Self) -> Ordering {
        self.priority.cmp(&other.priority).then_with(|| other.seq.cmp(&self.seq))
    }
}

impl PartialOrd for ReadyEntry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// The in-flight count of a template with a `max_in_flight`, and its ready steps that
/// wait for room.
#[derive(Debug, Default)]
struct TemplateGate {
    in_flight: u32,
    parked: VecDeque<ReadyEntry>,
}

#[derive(Debug)]
struct StepRecord {
    uuid: Uuid,
    status: StepStatus,
    attempts: u32,
    /// Dependencies not yet complete.
    waiting_on: u32,
    result: Option<Arc<Value>>,
    /// Boxed: most steps never fail, and a step record is allocated for every step of
    /// every task created (the error inline tripled its size).
    error: Option<Box<StepExecutionError>>,
    /// The event of the attempt in progress; results for any other event are stale.
    event_id: Option<Uuid>,
    /// When it last became ready.
    ready_at: Option<SystemTime>,
    history: Vec<AttemptRecord>,
}

#[derive(Debug)]
struct CancelRequest {
    at: SystemTime,
    reason: Option<String>,
}

#[derive(Debug)]
struct TaskRecord {
    uuid: Uuid,
    template: Arc<WorkflowTemplate>,
    context: Arc<Value>,
    correlation_id: Uuid,
    trace_id: String,
    priority: i32,
    idempotency_key: Option<String>,
    run_at: Option<SystemTime>,
    status: TaskStatus,
    steps: Vec<StepRecord>,
    complete: usize,
    in_flight: usize,
    failed: bool,
    started: bool,
    /// Boxed, like a step's error: rare, and the record is allocated for every task.
    cancel: Option<Box<CancelRequest>>,
    created_at: SystemTime,
    /// Position in creation order (the listing index).
    created_seq: u64,
    finished_at: Option<SystemTime>,
    /// Which finish this is (a retried task finishes again); stale queue entries differ.
    finish_seq: u64,
    /// Approximate bytes of its context, results and errors.
    bytes: usize,
}

impl TaskRecord {
    fn progress(&self) -> TaskProgress {
        TaskProgress {
            steps: self.steps.len(),
            complete: self.complete,
            in_flight: self.in_flight,
            failed: self.failed,
            cancel_requested: self.cancel.is_some(),
            started: self.started,
        }
    }

    fn is_open(&self) -> bool {
        !self.failed && self.cancel.is_none()
    }
}

/// Why a task was evicted (the limit itself is the state's, so a record stays one byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Eviction {
    Retention,
    MemoryBudget,
}

impl Eviction {
    fn describe(self, limits: &MemoryLimits) -> String {
        match self {
            Eviction::Retention => format!(
                "its retention of {} s (storage.embedded.finished_task_retention_seconds) had passed",
                limits.retention.as_secs()
            ),
            Eviction::MemoryBudget => format!(
                "finished tasks exceeded the memory budget of {} bytes \
                 (storage.embedded.finished_task_memory_budget_bytes); the oldest are evicted first",
                limits.memory_budget
            ),
        }
    }
}

/// One evicted task, remembered.
#[derive(Debug, Clone, Copy)]
struct EvictedTask {
    uuid: Uuid,
    at: SystemTime,
    why: Eviction,
}

/// The last `EVICTION_MEMORY` evicted tasks, oldest first. A plain ring, searched newest
/// first: it is read only when a uuid is not among the tasks (an error path), and a
/// map beside it would take four times the memory (about 3.5 MB instead of 0.6 MB at
/// this size) for every process, whether anyone ever asks or not.
#[derive(Debug, Default)]
struct EvictionMemory {
    tasks: VecDeque<EvictedTask>,
}

impl EvictionMemory {
    fn remember(&mut self, uuid: Uuid, at: SystemTime, why: Eviction) {
        if self.tasks.len() >= EVICTION_MEMORY {
            self.tasks.pop_front();
        }
        self.tasks.push_back(EvictedTask { uuid, at, why });
    }

    fn find(&self, uuid: &Uuid) -> Option<&EvictedTask> {
        self.tasks.iter().rev().find(|t| t.uuid == *uuid)
    }
}

/// Attempts that ended per minute, over the last hour.
#[derive(Debug, Default)]
struct Throughput {
    /// (minute since the epoch, succeeded, failed), oldest first.
    minutes: VecDeque<(u64, u64, u64)>,
}

impl Throughput {
    fn add(&mut self, wall: SystemTime, success: bool) {
        let minute = minute_of(wall);
        match self.minutes.back_mut() {
            Some((m, ok, failed)) if *m == minute => {
                if success {
                    *ok += 1;
                } else {
                    *failed += 1;
                }
            }
            _ => {
                self.minutes.push_back((minute, u64::from(success), u64::from(!success)));
                while self.minutes.len() > THROUGHPUT_MINUTES {
                    self.minutes.pop_front();
                }
            }
        }
    }

    fn last_hour(&self, now: SystemTime) -> Vec<MinuteThroughput> {
        let current = minute_of(now);
        let first = current.saturating_sub(THROUGHPUT_MINUTES as u64 - 1);
        (first..=current)
            .map(|minute| {
                let (succeeded, failed) =
                    self.minutes.iter().find(|(m, _, _)| *m == minute).map_or((0, 0), |(_, ok, failed)| (*ok, *failed));
                MinuteThroughput { minute: UNIX_EPOCH + Duration::from_secs(minute * 60), succeeded, failed }
            })
            .collect()
    }
}

fn minute_of(wall: SystemTime) -> u64 {
    wall.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs() / 60
}

/// Counts kept exact on every transition, so stats never scan.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    tasks: [u64; 5],
    enqueued: u64,
    in_flight: u64,
    waiting_for_retry: u64,
}

impl Counts {
    fn task_index(status: TaskStatus) -> usize {
        match status {
            TaskStatus::Pending => 0,
            TaskStatus::InProgress => 1,
            TaskStatus::Complete => 2,
            TaskStatus::Error => 3,
            TaskStatus::Cancelled => 4,
        }
    }

    fn task_moved(&mut self, from: Option<TaskStatus>, to: Option<TaskStatus>) {
        if let Some(from) = from {
            let slot = &mut self.tasks[Self::task_index(from)];
            *slot = slot.saturating_sub(1);
        }
        if let Some(to) = to {
            self.tasks[Self::task_index(to)] += 1;
        }
    }

    fn step_slot(&mut self, status: StepStatus) -> Option<&mut u64> {
        match status {
            StepStatus::Enqueued => Some(&mut self.enqueued),
            StepStatus::InProgress => Some(&mut self.in_flight),
            StepStatus::WaitingForRetry => Some(&mut self.waiting_for_retry),
            _ => None,
        }
    }

    fn step_moved(&mut self, from: StepStatus, to: StepStatus) {
        if from == to {
            return;
        }
        if let Some(slot) = self.step_slot(from) {
            *slot = slot.saturating_sub(1);
        }
        if let Some(slot) = self.step_slot(to) {
            *slot += 1;
        }
    }
}

/// Puts a ready step in the queue, after every step that became ready before it.
fn push_ready(ready: &mut BinaryHeap<ReadyEntry>, seq: &mut u64, priority: i32, step: StepRef) {
    *seq += 1;
    ready.push(ReadyEntry { priority, seq: *seq, step });
}

/// Moves a step to `to`, keeping the counts exact.
fn set_step(counts: &mut Counts, step: &mut StepRecord, to: StepStatus) {
    counts.step_moved(step.status, to);
    step.status = to;
}

/// The counts of one moment (see `StoreStats`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryCounts {
    pub tasks: Vec<(TaskStatus, u64)>,
    pub steps_in_flight: u64,
    pub steps_ready: u64,
    pub steps_waiting_for_retry: u64,
    pub finished_bytes: u64,
    pub unfinished_tasks: usize,
}

/// The embedded store's state. Not thread-safe on its own.
#[derive(Debug)]
pub struct MemoryState {
    /// Boxed: the table then moves 8 bytes per task when it grows, not the whole record
    /// (most of the memory a burst of `create_task` first touched).
    tasks: UuidMap<Box<TaskRecord>>,
    ready: BinaryHeap<ReadyEntry>,
    /// Retries and delayed starts, by when they are due.
    scheduled: BinaryHeap<Reverse<(Instant, u64, StepRef)>>,
    /// Templates with a `max_in_flight`, by the address of their compiled template.
    gates: HashMap<usize, TemplateGate>,
    /// Finished tasks in the order they finished: (uuid, finish_seq).
    finished: VecDeque<(Uuid, u64)>,
    evicted: EvictionMemory,
    idempotency: HashMap<String, Uuid>,
    /// Creation order → task, newest last (the listing index).
    order: BTreeMap<u64, Uuid>,
    seq: u64,
    unfinished: usize,
    finished_bytes: u64,
    counts: Counts,
    throughput: Throughput,
    limits: MemoryLimits,
    rng: fastrand::Rng,
}

impl MemoryState {
    pub fn new(limits: MemoryLimits) -> Self {
        Self::with_rng(limits, fastrand::Rng::new())
    }

    /// A state whose jitter and ids come from a seeded generator (for tests).
    pub fn with_seed(limits: MemoryLimits, seed: u64) -> Self {
        Self::with_rng(limits, fastrand::Rng::with_seed(seed))
    }

    fn with_rng(limits: MemoryLimits, rng: fastrand::Rng) -> Self {
        Self {
            tasks: UuidMap::default(),
            ready: BinaryHeap::new(),
            scheduled: BinaryHeap::new(),
            gates: HashMap::new(),
            finished: VecDeque::new(),
            evicted: EvictionMemory::default(),
            idempotency: HashMap::new(),
            order: BTreeMap::new(),
            seq: 0,
            unfinished: 0,
            finished_bytes: 0,
            counts: Counts::default(),
            throughput: Throughput::default(),
            limits,
            rng,
        }
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    // ------------------------------------------------------------------ create

    /// Creates a task of a checked template (its context already checked). Returns the
    /// uuid and whether it was created (`false`: the idempotency key named an existing
    /// task). Root steps become ready at once, or at `run_at`.
    pub fn create_task(
        &mut self,
        template: Arc<WorkflowTemplate>,
        task: NewTask,
        now: Instant,
        wall: SystemTime,
    ) -> Result<(Uuid, bool), StoreError> {
        if let Some(key) = &task.idempotency_key {
            if let Some(existing) = self.idempotency.get(key).and_then(|uuid| self.tasks.get(uuid)) {
                if !Arc::ptr_eq(&existing.template, &template)
                    && (existing.template.namespace != template.namespace || existing.template.name != template.name)
                {
                    return Err(StoreError::IdempotencyConflict {
                        key: key.clone(),
                        task_uuid: existing.uuid,
                        existing: describe(&existing.template),
                        requested: describe(&template),
                    });
                }
                return Ok((existing.uuid, false));
            }
        }
        if self.unfinished >= self.limits.max_unfinished {
            return Err(StoreError::Backpressure { pending: self.unfinished, limit: self.limits.max_unfinished });
        }
        let uuid = Uuid::new_v4();
        let created_seq = self.next_seq();
        let context_bytes = approx_json_bytes(&task.context);
        let steps: Vec<StepRecord> = template
            .dependencies
            .iter()
            .map(|deps| StepRecord {
                uuid: Uuid::new_v4(),
                status: StepStatus::Pending,
                attempts: 0,
                waiting_on: deps.len() as u32,
                result: None,
                error: None,
                event_id: None,
                ready_at: None,
                history: Vec::new(),
            })
            .collect();
        let delay = task.run_at.and_then(|at| at.duration_since(wall).ok()).filter(|d| !d.is_zero());
        let mut record = TaskRecord {
            uuid,
            bytes: TASK_OVERHEAD + STEP_OVERHEAD * steps.len() + context_bytes,
            steps,
            context: Arc::new(task.context),
            correlation_id: Uuid::new_v4(),
            trace_id: hex(self.rng.u128(1..), 32),
            priority: task.priority,
            idempotency_key: task.idempotency_key.clone(),
            run_at: task.run_at,
            status: TaskStatus::Pending,
            complete: 0,
            in_flight: 0,
            failed: false,
            started: false,
            cancel: None,
            created_at: wall,
            created_seq,
            finished_at: None,
            finish_seq: 0,
            template,
        };
        let roots: Vec<usize> = record.template.root_steps().collect();
        for index in roots {
            let step_ref = StepRef { task: uuid, index: index as u32 };
            match delay {
                Some(delay) => {
                    let seq = self.next_seq();
                    self.scheduled.push(Reverse((now + delay, seq, step_ref)));
                }
                None => {
                    let step = &mut record.steps[index];
                    set_step(&mut self.counts, step, StepStatus::Enqueued);
                    step.ready_at = Some(wall);
                    push_ready(&mut self.ready, &mut self.seq, record.priority, step_ref);
                }
            }
        }
        if let Some(key) = task.idempotency_key {
            self.idempotency.insert(key, uuid);
        }
        self.order.insert(created_seq, uuid);
        self.counts.task_moved(None, Some(TaskStatus::Pending));
        self.tasks.insert(uuid, Box::new(record));
        self.unfinished += 1;
        Ok((uuid, true))
    }

    // ------------------------------------------------------------------ claim

    /// Claims up to `max` ready steps into `out`. Returns when the earliest scheduled step
    /// becomes due, so an idle executor knows how long it may sleep.
    pub fn claim(
        &mut self,
        now: Instant,
        wall: SystemTime,
        max: usize,
        default_timeout: Duration,
        out: &mut Vec<StepExecutionEvent>,
    ) -> Option<Instant> {
        self.promote_due(now, wall);
        let mut claimed = 0;
        while claimed < max {
            let Some(entry) = self.ready.pop() else { break };
            let Some(task) = self.tasks.get_mut(&entry.step.task) else { continue };
            let index = entry.step.index as usize;
            if task.steps[index].status != StepStatus::Enqueued || !task.is_open() {
                // Stale (claimed already), or its task stopped starting steps: it will be
                // skipped when the task finishes.
                continue;
            }
            if let Some(limit) = task.template.max_in_flight {
                let gate = self.gates.entry(template_key(&task.template)).or_default();
                if gate.in_flight >= limit {
                    gate.parked.push_back(entry);
                    continue;
                }
                gate.in_flight += 1;
            }
            let step = &mut task.steps[index];
            set_step(&mut self.counts, step, StepStatus::InProgress);
            step.attempts += 1;
            let event_id = Uuid::new_v4();
            step.event_id = Some(event_id);
            let (step_uuid, attempts, ready_at) = (step.uuid, step.attempts, step.ready_at);
            task.in_flight += 1;
            task.started = true;
            if task.status == TaskStatus::Pending {
                self.counts.task_moved(Some(TaskStatus::Pending), Some(TaskStatus::InProgress));
                task.status = TaskStatus::InProgress;
            }
            let template = &task.template;
            let dependency_results: BTreeMap<String, Arc<Value>> = template.dependencies[index]
                .iter()
                .map(|&parent| {
                    let value = task.steps[parent].result.clone().unwrap_or_else(|| Arc::new(Value::Null));
                    (template.steps[parent].name.clone(), value)
                })
                .collect();
            let ancestor_results =
                crate::store::events::ancestor_results(template, index, |i| task.steps[i].result.clone());
            let event = step_event(
                ClaimedStep {
                    template,
                    index,
                    task_uuid: task.uuid,
                    correlation_id: task.correlation_id,
                    trace_id: task.trace_id.clone(),
                    context: Arc::clone(&task.context),
                    step_uuid,
                    attempts,
                    event_id,
                    span_id: hex(u128::from(self.rng.u64(1..)), 16),
                    dependency_results,
                    ancestor_results,
                    ready_at,
                },
                default_timeout,
            );
            out.push(event);
            claimed += 1;
        }
        self.next_due()
    }

    /// When the earliest scheduled step becomes due, if any.
    pub fn next_due(&self) -> Option<Instant> {
        self.scheduled.peek().map(|Reverse((due, _, _))| *due)
    }

    fn promote_due(&mut self, now: Instant, wall: SystemTime) {
        while let Some(Reverse((due, _, _))) = self.scheduled.peek() {
            if *due > now {
                break;
            }
            let Some(Reverse((_, _, step_ref))) = self.scheduled.pop() else { break };
            let Some(task) = self.tasks.get_mut(&step_ref.task) else { continue };
            let open = task.is_open();
            let step = &mut task.steps[step_ref.index as usize];
            let due_now = match step.status {
                StepStatus::WaitingForRetry => true,
                // A root step of a task created with a later `run_at`.
                StepStatus::Pending => step.waiting_on == 0 && step.attempts == 0,
                _ => false,
            };
            if due_now && open {
                set_step(&mut self.counts, step, StepStatus::Enqueued);
                step.ready_at = Some(wall);
                push_ready(&mut self.ready, &mut self.seq, task.priority, step_ref);
            }
        }
    }

    // ------------------------------------------------------------------ record

    /// Records the result of an attempt: completes the step and readies its dependents,
    /// schedules a retry, puts it back, or fails it; finishes the task when nothing is
    /// left in flight and it is done, failed or cancelled.
    pub fn record(&mut self, mut result: StepExecutionResult, now: Instant, wall: SystemTime) -> RecordOutcome {
        let Some(task) = self.tasks.get_mut(&result.step.task_uuid) else { return RecordOutcome::Stale };
        let Some(index) = task.steps.iter().position(|s| s.uuid == result.step.step_uuid) else {
            return RecordOutcome::Stale;
        };
        {
            let step = &task.steps[index];
            if step.status != StepStatus::InProgress || step.event_id != Some(result.step.event_id) {
                return RecordOutcome::Stale;
            }
        }
        let template = Arc::clone(&task.template);
        let definition = &template.steps[index];
        let decision =
            decide_attempt(&result, task.steps[index].attempts, &definition.retry, task.is_open(), self.rng.f64());
        task.in_flight -= 1;
        if template.max_in_flight.is_some() {
            if let Some(gate) = self.gates.get_mut(&template_key(&template)) {
                gate.in_flight = gate.in_flight.saturating_sub(1);
                if let Some(parked) = gate.parked.pop_front() {
                    self.ready.push(parked);
                }
            }
        }

        let open = task.is_open();
        let step = &mut task.steps[index];
        step.event_id = None;
        // One attempt is the common case: grow by one, not to the four records (576
        // bytes) a first push would reserve.
        step.history.reserve_exact(1);
        step.history.push(AttemptRecord {
            attempt: step.attempts,
            outcome: std::borrow::Cow::Borrowed(attempt_outcome(&result)),
            started_at: result.metadata.started_at.take(),
            completed_at: result.metadata.completed_at.take(),
            duration_ms: result.metadata.execution_time_ms,
            error_type: result.error.as_ref().map(|e| e.error_type.clone()),
            message: result.error.as_ref().map(|e| e.message.clone()),
        });
        let mut bytes = 96;
        match decision {
            AttemptDecision::Complete => {
                let value = std::mem::take(&mut result.result);
                bytes += approx_json_bytes(&value);
                set_step(&mut self.counts, step, StepStatus::Complete);
                step.result = Some(Arc::new(value));
                step.error = None;
                task.complete += 1;
                self.throughput.add(wall, true);
                if open {
                    for &dependent in &template.dependents[index] {
                        let child = &mut task.steps[dependent];
                        child.waiting_on = child.waiting_on.saturating_sub(1);
                        if child.waiting_on == 0 && child.status == StepStatus::Pending {
                            set_step(&mut self.counts, child, StepStatus::Enqueued);
                            child.ready_at = Some(wall);
                            let step_ref = StepRef { task: task.uuid, index: dependent as u32 };
                            push_ready(&mut self.ready, &mut self.seq, task.priority, step_ref);
                        }
                    }
                }
            }
            AttemptDecision::Retry { delay } => {
                bytes += error_bytes(result.error.as_ref());
                set_step(&mut self.counts, step, StepStatus::WaitingForRetry);
                step.error = Some(Box::new(recorded_error(result.error.take())));
                self.throughput.add(wall, false);
                self.seq += 1;
                self.scheduled.push(Reverse((now + delay, self.seq, StepRef { task: task.uuid, index: index as u32 })));
            }
            AttemptDecision::Requeue => {
                step.attempts = step.attempts.saturating_sub(1);
                step.error = Some(Box::new(recorded_error(result.error.take())));
                set_step(&mut self.counts, step, StepStatus::Enqueued);
                if open {
                    step.ready_at = Some(wall);
                    let step_ref = StepRef { task: task.uuid, index: index as u32 };
                    push_ready(&mut self.ready, &mut self.seq, task.priority, step_ref);
                }
            }
            AttemptDecision::Fail => {
                bytes += error_bytes(result.error.as_ref());
                set_step(&mut self.counts, step, StepStatus::Error);
                step.error = Some(Box::new(recorded_error(result.error.take())));
                task.failed = true;
                self.throughput.add(wall, false);
            }
        }
        task.bytes += bytes;
        let uuid = task.uuid;
        let finished = self.settle(&uuid, wall);
        RecordOutcome::Recorded { decision, finished, step: RecordedStep { template, index } }
    }

    /// Brings a task's status up to date; returns its status if that finished it.
    fn settle(&mut self, uuid: &Uuid, wall: SystemTime) -> Option<TaskStatus> {
        let task = self.tasks.get_mut(uuid)?;
        let status = task.progress().status();
        if status == task.status {
            return None;
        }
        self.counts.task_moved(Some(task.status), Some(status));
        task.status = status;
        if !status.is_finished() {
            return None;
        }
        for step in task.steps.iter_mut() {
            if matches!(step.status, StepStatus::Pending | StepStatus::Enqueued | StepStatus::WaitingForRetry) {
                set_step(&mut self.counts, step, StepStatus::Skipped);
            }
        }
        task.finished_at = Some(wall);
        self.seq += 1;
        task.finish_seq = self.seq;
        self.finished.push_back((task.uuid, task.finish_seq));
        self.finished_bytes += task.bytes as u64;
        self.unfinished = self.unfinished.saturating_sub(1);
        Some(status)
    }

    // ------------------------------------------------------------------ controls

    /// Cancels a task: nothing new starts; it is `cancelled` once its running steps end.
    pub fn cancel(
        &mut self,
        uuid: &Uuid,
        reason: Option<String>,
        wall: SystemTime,
    ) -> Result<CancelOutcome, StoreError> {
        let task = self.find_mut(uuid)?;
        if task.status.is_finished() {
            return Ok(CancelOutcome::AlreadyFinished(task.status));
        }
        if task.cancel.is_none() {
            task.bytes += reason.as_ref().map_or(0, String::len);
            task.cancel = Some(Box::new(CancelRequest { at: wall, reason }));
        }
        let in_flight = task.in_flight;
        Ok(match self.settle(uuid, wall) {
            Some(TaskStatus::Cancelled) => CancelOutcome::Cancelled,
            Some(other) => CancelOutcome::AlreadyFinished(other),
            None => CancelOutcome::Cancelling { in_flight },
        })
    }

    /// Runs a task in `error` again: its failed steps get a fresh attempt budget, its
    /// skipped steps wait for their dependencies again.
    pub fn retry(&mut self, uuid: &Uuid, wall: SystemTime) -> Result<RetryOutcome, StoreError> {
        let status = self.find_mut(uuid)?.status;
        if status != TaskStatus::Error {
            return Ok(RetryOutcome::NotFailed(status));
        }
        let Some(task) = self.tasks.get_mut(uuid) else { return Err(StoreError::TaskNotFound(*uuid)) };
        let (mut failed_steps, mut skipped_steps) = (0, 0);
        let mut ready = Vec::new();
        for index in 0..task.steps.len() {
            let waiting_on = task.template.dependencies[index]
                .iter()
                .filter(|&&d| task.steps[d].status != StepStatus::Complete)
                .count() as u32;
            let step = &mut task.steps[index];
            match step.status {
                StepStatus::Error => {
                    failed_steps += 1;
                    step.attempts = 0;
                    step.error = None;
                }
                StepStatus::Skipped => skipped_steps += 1,
                _ => continue,
            }
            step.waiting_on = waiting_on;
            if waiting_on == 0 {
                set_step(&mut self.counts, step, StepStatus::Enqueued);
                step.ready_at = Some(wall);
                ready.push(index);
            } else {
                set_step(&mut self.counts, step, StepStatus::Pending);
            }
        }
        task.failed = false;
        task.finished_at = None;
        task.finish_seq = 0;
        self.counts.task_moved(Some(TaskStatus::Error), Some(TaskStatus::InProgress));
        task.status = TaskStatus::InProgress;
        self.finished_bytes = self.finished_bytes.saturating_sub(task.bytes as u64);
        self.unfinished += 1;
        let priority = task.priority;
        for index in ready {
            push_ready(&mut self.ready, &mut self.seq, priority, StepRef { task: *uuid, index: index as u32 });
        }
        Ok(RetryOutcome::Retrying { failed_steps, skipped_steps })
    }

    // ------------------------------------------------------------------ retention

    /// Evicts finished tasks whose retention passed, then the oldest finished tasks while
    /// over the memory budget; never a task `watched` says someone waits for. Returns how
    /// many it evicted.
    pub fn enforce_retention(&mut self, wall: SystemTime, watched: &dyn Fn(&Uuid) -> bool) -> usize {
        let mut evicted = 0;
        let mut kept = Vec::new();
        while let Some(&(uuid, finish_seq)) = self.finished.front() {
            let Some(task) = self.tasks.get(&uuid).filter(|t| t.finish_seq == finish_seq) else {
                self.finished.pop_front();
                continue;
            };
            let finished_at = task.finished_at.unwrap_or(wall);
            let expired = finished_at + self.limits.retention <= wall;
            let over_budget = self.finished_bytes > self.limits.memory_budget;
            if !expired && !over_budget {
                break;
            }
            self.finished.pop_front();
            if watched(&uuid) {
                kept.push((uuid, finish_seq));
                continue;
            }
            let why = if expired { Eviction::Retention } else { Eviction::MemoryBudget };
            self.evict(&uuid, wall, why);
            evicted += 1;
        }
        for entry in kept.into_iter().rev() {
            self.finished.push_front(entry);
        }
        evicted
    }

    fn evict(&mut self, uuid: &Uuid, wall: SystemTime, why: Eviction) {
        let Some(task) = self.tasks.remove(uuid) else { return };
        self.finished_bytes = self.finished_bytes.saturating_sub(task.bytes as u64);
        self.counts.task_moved(Some(task.status), None);
        self.order.remove(&task.created_seq);
        if let Some(key) = &task.idempotency_key {
            if self.idempotency.get(key) == Some(uuid) {
                self.idempotency.remove(key);
            }
        }
        self.evicted.remember(*uuid, wall, why);
    }

    // ------------------------------------------------------------------ reads

    fn not_found(&self, uuid: &Uuid) -> StoreError {
        match self.evicted.find(uuid) {
            Some(t) => StoreError::TaskEvicted { uuid: *uuid, at: t.at, why: t.why.describe(&self.limits) },
            None => StoreError::TaskNotFound(*uuid),
        }
    }

    fn find_mut(&mut self, uuid: &Uuid) -> Result<&mut TaskRecord, StoreError> {
        if !self.tasks.contains_key(uuid) {
            return Err(self.not_found(uuid));
        }
        self.tasks.get_mut(uuid).map(|task| &mut **task).ok_or(StoreError::TaskNotFound(*uuid))
    }

    pub fn task_status(&self, uuid: &Uuid) -> Result<TaskStatusView, StoreError> {
        self.tasks.get(uuid).map(|task| task_view(task)).ok_or_else(|| self.not_found(uuid))
    }

    /// Tasks newest first, filtered.
    pub fn list(&self, filter: &TaskFilter) -> Result<Vec<TaskSummary>, StoreError> {
        let upper = match filter.before {
            None => u64::MAX,
            Some(TaskCursor::Task(uuid)) => self.tasks.get(&uuid).map(|t| t.created_seq).ok_or_else(|| {
                StoreError::InvalidRequest(format!("before: task {uuid} is not (or no longer) in the store"))
            })?,
            Some(TaskCursor::Time(_)) => u64::MAX,
        };
        let before_time = match filter.before {
            Some(TaskCursor::Time(t)) => Some(t),
            _ => None,
        };
        let mut out = Vec::with_capacity(filter.limit.min(1000));
        for uuid in self.order.range(..upper).rev().map(|(_, u)| u) {
            if out.len() >= filter.limit {
                break;
            }
            let Some(task) = self.tasks.get(uuid) else { continue };
            if before_time.is_some_and(|t| task.created_at >= t)
                || filter.status.is_some_and(|s| s != task.status)
                || filter.namespace.as_deref().is_some_and(|n| n != task.template.namespace)
                || filter.name.as_deref().is_some_and(|n| n != task.template.name)
            {
                continue;
            }
            out.push(TaskSummary {
                task_uuid: task.uuid,
                namespace: task.template.namespace.clone(),
                name: task.template.name.clone(),
                version: task.template.version.clone(),
                status: task.status,
                priority: task.priority,
                created_at: task.created_at,
                finished_at: task.finished_at,
            });
        }
        Ok(out)
    }

    pub fn counts(&self) -> MemoryCounts {
        MemoryCounts {
            tasks: TaskStatus::ALL.iter().map(|s| (*s, self.counts.tasks[Counts::task_index(*s)])).collect(),
            steps_in_flight: self.counts.in_flight,
            steps_ready: self.counts.enqueued,
            steps_waiting_for_retry: self.counts.waiting_for_retry,
            finished_bytes: self.finished_bytes,
            unfinished_tasks: self.unfinished,
        }
    }

    pub fn throughput(&self, now: SystemTime) -> Vec<MinuteThroughput> {
        self.throughput.last_hour(now)
    }

    /// The in-progress steps (task, step, event id) — what a stopping worker holds.
    pub fn in_flight_events(&self) -> Vec<(Uuid, Uuid, Uuid)> {
        self.tasks
            .values()
            .filter(|t| t.in_flight > 0)
            .flat_map(|t| t.steps.iter().filter_map(move |s| s.event_id.map(|e| (t.uuid, s.uuid, e))))
            .collect()
    }
}

fn template_key(template: &Arc<WorkflowTemplate>) -> usize {
    Arc::as_ptr(template) as usize
}

fn describe(template: &WorkflowTemplate) -> String {
    format!("{}/{} {}", template.namespace, template.name, template.version)
}

fn recorded_error(error: Option<StepExecutionError>) -> StepExecutionError {
    error.unwrap_or_else(|| StepExecutionError::new("step failed without an error", "unknown", true))
}

fn error_bytes(error: Option<&StepExecutionError>) -> usize {
    error.map_or(0, |e| {
        e.message.len()
            + e.error_type.len()
            + e.backtrace.iter().map(|l| l.len() + 24).sum::<usize>()
            + e.context.as_ref().map_or(0, approx_json_bytes)
    })
}

fn task_view(task: &TaskRecord) -> TaskStatusView {
    let template = &task.template;
    TaskStatusView {
        task_uuid: task.uuid,
        namespace: template.namespace.clone(),
        name: template.name.clone(),
        version: template.version.clone(),
        status: task.status,
        priority: task.priority,
        correlation_id: task.correlation_id,
        context: Arc::clone(&task.context),
        created_at: task.created_at,
        finished_at: task.finished_at,
        run_at: task.run_at,
        idempotency_key: task.idempotency_key.clone(),
        cancel_requested_at: task.cancel.as_ref().map(|c| c.at),
        cancel_reason: task.cancel.as_ref().and_then(|c| c.reason.clone()),
        steps: task
            .steps
            .iter()
            .zip(template.steps.iter())
            .map(|(step, def)| StepStatusView {
                name: def.name.clone(),
                step_uuid: step.uuid,
                status: step.status,
                attempts: step.attempts,
                max_attempts: def.retry.max_attempts,
                dependencies: def.dependencies.clone(),
                result: step.result.clone(),
                error: step.error.as_deref().cloned(),
                history: step.history.clone(),
            })
            .collect(),
    }
}
