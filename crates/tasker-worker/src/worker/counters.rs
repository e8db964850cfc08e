//! `PipelineCounters`: what this process's worker pipeline has done since it started —
//! tasks created and finished, steps dispatched, attempt outcomes — counted the same way
//! whichever store holds the tasks. Read by `worker_status` and the metrics.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use crate::rules::AttemptDecision;
use crate::store::{RecordOutcome, TaskStatus};

/// See the module documentation. Every field only grows.
#[derive(Debug, Default)]
pub struct PipelineCounters {
    tasks_created: AtomicU64,
    tasks_completed: AtomicU64,
    tasks_failed: AtomicU64,
    tasks_cancelled: AtomicU64,
    steps_dispatched: AtomicU64,
    steps_succeeded: AtomicU64,
    step_failures: AtomicU64,
    retries_scheduled: AtomicU64,
    steps_failed_permanently: AtomicU64,
    stale_results: AtomicU64,
    shutdown_interruptions: AtomicU64,
    /// Store writes that failed and were tried again (the store was unavailable).
    store_retries: AtomicU64,
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CounterSnapshot {
    pub tasks_created: u64,
    pub tasks_completed: u64,
    pub tasks_failed: u64,
    pub tasks_cancelled: u64,
    pub steps_dispatched: u64,
    pub steps_succeeded: u64,
    /// Failed attempts, retried or not.
    pub step_failures: u64,
    pub retries_scheduled: u64,
    /// Steps that ended in `error`.
    pub steps_failed_permanently: u64,
    /// Results for an attempt that was no longer in progress (ignored).
    pub stale_results: u64,
    /// Attempts cut short by a stopping worker (not counted as attempts or failures).
    pub shutdown_interruptions: u64,
    pub store_retries: u64,
}

fn add(counter: &AtomicU64, n: u64) {
    if n > 0 {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

impl PipelineCounters {
    pub fn task_created(&self) {
        add(&self.tasks_created, 1);
    }

    pub fn dispatched(&self, steps: usize) {
        add(&self.steps_dispatched, steps as u64);
    }

    pub fn store_retry(&self) {
        add(&self.store_retries, 1);
    }

    /// Counts what a batch of results did.
    pub fn observe(&self, outcomes: &[RecordOutcome]) {
        let mut c = CounterSnapshot::default();
        for outcome in outcomes {
            match outcome {
                RecordOutcome::Stale => c.stale_results += 1,
                RecordOutcome::Recorded { decision, finished, .. } => {
                    match decision {
                        AttemptDecision::Complete => c.steps_succeeded += 1,
                        AttemptDecision::Retry { .. } => {
                            c.step_failures += 1;
                            c.retries_scheduled += 1;
                        }
                        AttemptDecision::Requeue => c.shutdown_interruptions += 1,
                        AttemptDecision::Fail => {
                            c.step_failures += 1;
                            c.steps_failed_permanently += 1;
                        }
                    }
                    match finished {
                        Some(TaskStatus::Complete) => c.tasks_completed += 1,
                        Some(TaskStatus::Error) => c.tasks_failed += 1,
                        Some(TaskStatus::Cancelled) => c.tasks_cancelled += 1,
                        _ => {}
                    }
                }
            }
        }
        add(&self.stale_results, c.stale_results);
        add(&self.steps_succeeded, c.steps_succeeded);
        add(&self.step_failures, c.step_failures);
        add(&self.retries_scheduled, c.retries_scheduled);
        add(&self.shutdown_interruptions, c.shutdown_interruptions);
        add(&self.steps_failed_permanently, c.steps_failed_permanently);
        add(&self.tasks_completed, c.tasks_completed);
        add(&self.tasks_failed, c.tasks_failed);
        add(&self.tasks_cancelled, c.tasks_cancelled);
    }

    /// A task finished outside the completion path (a cancel with nothing running).
    pub fn task_finished(&self, status: TaskStatus) {
        match status {
            TaskStatus::Complete => add(&self.tasks_completed, 1),
            TaskStatus::Error => add(&self.tasks_failed, 1),
            TaskStatus::Cancelled => add(&self.tasks_cancelled, 1),
            _ => {}
        }
    }

    pub fn snapshot(&self) -> CounterSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        CounterSnapshot {
            tasks_created: get(&self.tasks_created),
            tasks_completed: get(&self.tasks_completed),
            tasks_failed: get(&self.tasks_failed),
            tasks_cancelled: get(&self.tasks_cancelled),
            steps_dispatched: get(&self.steps_dispatched),
            steps_succeeded: get(&self.steps_succeeded),
            step_failures: get(&self.step_failures),
            retries_scheduled: get(&self.retries_scheduled),
            steps_failed_permanently: get(&self.steps_failed_permanently),
            stale_results: get(&self.stale_results),
            shutdown_interruptions: get(&self.shutdown_interruptions),
            store_retries: get(&self.store_retries),
        }
    }
}
