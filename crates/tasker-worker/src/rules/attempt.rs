//! What the result of one attempt means for its step: done, retried after a delay,
//! put back at once (the worker stopped under it), or failed for good.

use std::time::Duration;

use super::backoff::retry_delay;
use crate::messages::{error_types, StepExecutionResult};
use crate::template::RetryPolicy;

/// The step's next state after an attempt's result.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AttemptDecision {
    /// The step is complete; its dependents' counters fall.
    Complete,
    /// The step runs again once `delay` has passed.
    Retry { delay: Duration },
    /// The worker stopped under the attempt (`worker_shutdown`): it does not count as an
    /// attempt or a failure, and the step is ready again at once.
    Requeue,
    /// The step failed for good: no retries left, not retryable, or its task no longer
    /// starts steps.
    Fail,
}

impl AttemptDecision {
    /// Whether the attempt counts as a failed attempt (for counters and metrics).
    pub fn is_failure(self) -> bool {
        matches!(self, AttemptDecision::Retry { .. } | AttemptDecision::Fail)
    }
}

/// Decides what `result` means for a step that has now run `attempts` times (this
/// attempt included) under `policy`. `task_open` is false once the task is failing or
/// cancelled: a failed attempt is then not retried. `unit` is a random number in
/// `0.0..1.0` for the backoff's jitter.
///
/// A handler's `retry_after` replaces the computed backoff (capped at the policy's
/// `max_backoff_ms` only when the handler asks for more than a day, so a typo cannot park a
/// step forever).
pub fn decide_attempt(
    result: &StepExecutionResult,
    attempts: u32,
    policy: &RetryPolicy,
    task_open: bool,
    unit: f64,
) -> AttemptDecision {
    if result.success {
        return AttemptDecision::Complete;
    }
    if is_worker_shutdown(result) {
        return AttemptDecision::Requeue;
    }
    let retry = task_open && policy.retryable && result.is_retryable_failure() && attempts < policy.max_attempts;
    if !retry {
        return AttemptDecision::Fail;
    }
    // A step whose worker died did nothing wrong: it runs again at once (and the stores
    // keep its place in line), though the attempt counts.
    if result.error.as_ref().is_some_and(|e| e.error_type == error_types::WORKER_LOST) {
        return AttemptDecision::Retry { delay: Duration::ZERO };
    }
    let suggested = result.error.as_ref().and_then(|e| e.retry_after);
    let delay = match suggested {
        Some(delay) => delay.min(MAX_SUGGESTED_DELAY),
        None => retry_delay(policy, attempts, unit),
    };
    AttemptDecision::Retry { delay }
}

/// The longest delay a handler's `retry_after` may ask for.
pub const MAX_SUGGESTED_DELAY: Duration = Duration::from_secs(86_400);

/// How an attempt ended, as history and metrics name it: `success`, `timeout`,
/// `worker_lost`, `worker_shutdown` or `failure`.
pub fn attempt_outcome(result: &StepExecutionResult) -> &'static str {
    if result.success {
        return "success";
    }
    match result.error.as_ref().map(|e| e.error_type.as_str()) {
        Some(error_types::HANDLER_TIMEOUT) => "timeout",
        Some(error_types::WORKER_LOST) => "worker_lost",
        Some(error_types::WORKER_SHUTDOWN) => "worker_shutdown",
        _ => "failure",
    }
}

/// Whether the result reports that the worker stopped under the attempt.
pub fn is_worker_shutdown(result: &StepExecutionResult) -> bool {
    !result.success && result.error.as_ref().is_some_and(|e| e.error_type == error_types::WORKER_SHUTDOWN)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::StepExecutionError;

    fn policy(max_attempts: u32) -> RetryPolicy {
        RetryPolicy {
            retryable: true,
            max_attempts,
            backoff: crate::template::BackoffShape::Exponential,
            backoff_base_ms: 100,
            max_backoff_ms: 10_000,
            jitter: 0.0,
        }
    }

    fn failure(retryable: bool) -> StepExecutionResult {
        StepExecutionResult::failure(StepExecutionError::new("boom", "Boom", retryable))
    }

    #[test]
    fn a_lost_worker_s_step_retries_at_once_while_attempts_last() {
        let lost = StepExecutionResult::failure(StepExecutionError::new("gone", error_types::WORKER_LOST, true));
        assert_eq!(decide_attempt(&lost, 2, &policy(3), true, 0.5), AttemptDecision::Retry { delay: Duration::ZERO });
        assert_eq!(decide_attempt(&lost, 3, &policy(3), true, 0.5), AttemptDecision::Fail);
        assert_eq!(decide_attempt(&lost, 1, &policy(3), false, 0.5), AttemptDecision::Fail, "a stopped task");
    }

    #[test]
    fn a_success_completes_whatever_the_attempt() {
        let ok = StepExecutionResult::success(serde_json::json!(1));
        assert_eq!(decide_attempt(&ok, 9, &policy(3), false, 0.5), AttemptDecision::Complete);
    }

    #[test]
    fn a_retryable_failure_retries_with_backoff_until_attempts_run_out() {
        assert_eq!(
            decide_attempt(&failure(true), 1, &policy(3), true, 0.5),
            AttemptDecision::Retry { delay: Duration::from_millis(100) }
        );
        assert_eq!(
            decide_attempt(&failure(true), 2, &policy(3), true, 0.5),
            AttemptDecision::Retry { delay: Duration::from_millis(200) }
        );
        assert_eq!(decide_attempt(&failure(true), 3, &policy(3), true, 0.5), AttemptDecision::Fail);
    }

    #[test]
    fn a_non_retryable_failure_or_policy_fails_at_once() {
        assert_eq!(decide_attempt(&failure(false), 1, &policy(3), true, 0.5), AttemptDecision::Fail);
        let mut never = policy(3);
        never.retryable = false;
        assert_eq!(decide_attempt(&failure(true), 1, &never, true, 0.5), AttemptDecision::Fail);
    }

    #[test]
    fn a_failure_of_a_closed_task_is_not_retried() {
        assert_eq!(decide_attempt(&failure(true), 1, &policy(3), false, 0.5), AttemptDecision::Fail);
    }

    #[test]
    fn worker_shutdown_requeues_even_on_the_last_attempt() {
        let stopped =
            StepExecutionResult::failure(StepExecutionError::new("stopped", error_types::WORKER_SHUTDOWN, true));
        assert_eq!(decide_attempt(&stopped, 3, &policy(3), true, 0.5), AttemptDecision::Requeue);
    }

    #[test]
    fn retry_after_replaces_the_backoff_and_is_capped_at_a_day() {
        let mut result = failure(true);
        result.error.as_mut().unwrap().retry_after = Some(Duration::from_secs(7));
        assert_eq!(
            decide_attempt(&result, 1, &policy(3), true, 0.5),
            AttemptDecision::Retry { delay: Duration::from_secs(7) }
        );
        result.error.as_mut().unwrap().retry_after = Some(Duration::from_secs(10 * 86_400));
        assert_eq!(
            decide_attempt(&result, 1, &policy(3), true, 0.5),
            AttemptDecision::Retry { delay: MAX_SUGGESTED_DELAY }
        );
    }
}
