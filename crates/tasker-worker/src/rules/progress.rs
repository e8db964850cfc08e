//! When a task is finished, and how: a task is finished only when none of its steps is
//! in flight. A failed step or a cancel closes the task to new steps at once; it then
//! ends (`error` or `cancelled`) when the steps already running have finished.

use crate::store::TaskStatus;

/// The counts that decide a task's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TaskProgress {
    /// Steps in the task.
    pub steps: usize,
    /// Steps complete.
    pub complete: usize,
    /// Steps claimed by a worker whose result is not recorded yet.
    pub in_flight: usize,
    /// A step has failed for good.
    pub failed: bool,
    /// Someone asked to cancel the task.
    pub cancel_requested: bool,
    /// At least one step has been claimed once.
    pub started: bool,
}

impl TaskProgress {
    /// Whether new steps of the task may start.
    pub fn is_open(&self) -> bool {
        !self.failed && !self.cancel_requested
    }

    /// The task's status: finished only when nothing is in flight. A task whose every
    /// step completed is `complete` even if a cancel came while its last step ran (nothing
    /// was left to cancel); otherwise a cancel wins over a failure that happened while the
    /// task was cancelling.
    pub fn status(&self) -> TaskStatus {
        if self.in_flight == 0 {
            if self.complete >= self.steps {
                return TaskStatus::Complete;
            }
            if self.cancel_requested {
                return TaskStatus::Cancelled;
            }
            if self.failed {
                return TaskStatus::Error;
            }
        }
        if self.started || self.complete > 0 || self.in_flight > 0 {
            TaskStatus::InProgress
        } else {
            TaskStatus::Pending
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn progress(complete: usize, in_flight: usize) -> TaskProgress {
        TaskProgress { steps: 3, complete, in_flight, started: complete + in_flight > 0, ..Default::default() }
    }

    #[test]
    fn a_task_is_pending_until_a_step_starts_and_complete_when_all_are() {
        assert_eq!(progress(0, 0).status(), TaskStatus::Pending);
        assert_eq!(progress(0, 1).status(), TaskStatus::InProgress);
        assert_eq!(progress(2, 0).status(), TaskStatus::InProgress);
        assert_eq!(progress(3, 0).status(), TaskStatus::Complete);
    }

    #[test]
    fn a_failed_task_is_in_progress_while_a_step_runs_then_error() {
        let mut p = progress(1, 1);
        p.failed = true;
        assert!(!p.is_open());
        assert_eq!(p.status(), TaskStatus::InProgress);
        p.in_flight = 0;
        assert_eq!(p.status(), TaskStatus::Error);
    }

    #[test]
    fn a_cancel_ends_in_cancelled_once_nothing_runs_even_after_a_failure() {
        let mut p = progress(0, 2);
        p.cancel_requested = true;
        p.failed = true;
        assert_eq!(p.status(), TaskStatus::InProgress);
        p.in_flight = 0;
        assert_eq!(p.status(), TaskStatus::Cancelled);
    }

    #[test]
    fn a_cancel_that_came_while_the_last_step_ran_leaves_the_task_complete() {
        let mut p = progress(2, 1);
        p.cancel_requested = true;
        p.in_flight = 0;
        p.complete = 3;
        assert_eq!(p.status(), TaskStatus::Complete);
    }

    #[test]
    fn a_cancel_of_a_task_that_never_started_is_cancelled_at_once() {
        let p = TaskProgress { steps: 2, cancel_requested: true, ..Default::default() };
        assert_eq!(p.status(), TaskStatus::Cancelled);
    }
}
