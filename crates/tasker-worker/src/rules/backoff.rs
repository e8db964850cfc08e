//! Retry delay: the step's backoff shape (exponential unless the template names another)
//! from its policy, capped, with random jitter so that steps that failed together do not
//! all come back at the same instant.

use std::time::Duration;

use crate::template::RetryPolicy;

/// The delay before attempt `failed_attempts + 1`, given that `failed_attempts` have
/// already run (1 after the first failure). `unit` is a random number in `0.0..1.0`.
///
/// The shape's delay (`backoff_base_ms * 2^(failed_attempts - 1)` for the default
/// exponential one), capped at `max_backoff_ms`, then moved by up to `± jitter` of itself
/// and capped again.
pub fn retry_delay(policy: &RetryPolicy, failed_attempts: u32, unit: f64) -> Duration {
    let base = policy.backoff.delay_ms(policy.backoff_base_ms, failed_attempts);
    let capped = base.min(policy.max_backoff_ms as f64);
    let jitter = policy.jitter.clamp(0.0, 1.0);
    let factor = 1.0 + jitter * (2.0 * unit.clamp(0.0, 1.0) - 1.0);
    let ms = (capped * factor).clamp(0.0, policy.max_backoff_ms as f64);
    Duration::from_micros((ms * 1000.0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::BackoffShape;

    fn policy(base: u64, max: u64, jitter: f64) -> RetryPolicy {
        RetryPolicy {
            retryable: true,
            max_attempts: 5,
            backoff: BackoffShape::Exponential,
            backoff_base_ms: base,
            max_backoff_ms: max,
            jitter,
        }
    }

    #[test]
    fn doubles_per_attempt_without_jitter() {
        let p = policy(100, 10_000, 0.0);
        assert_eq!(retry_delay(&p, 1, 0.5), Duration::from_millis(100));
        assert_eq!(retry_delay(&p, 2, 0.5), Duration::from_millis(200));
        assert_eq!(retry_delay(&p, 3, 0.5), Duration::from_millis(400));
    }

    #[test]
    fn is_capped_at_max_backoff() {
        let p = policy(100, 250, 0.0);
        assert_eq!(retry_delay(&p, 3, 0.5), Duration::from_millis(250));
        assert_eq!(retry_delay(&p, 60, 0.5), Duration::from_millis(250));
        // Jitter never pushes past the cap either.
        let p = policy(100, 250, 0.5);
        assert!(retry_delay(&p, 10, 0.999) <= Duration::from_millis(250));
    }

    #[test]
    fn jitter_stays_within_its_fraction() {
        let p = policy(1000, 100_000, 0.2);
        assert_eq!(retry_delay(&p, 1, 0.0), Duration::from_millis(800));
        assert_eq!(retry_delay(&p, 1, 1.0), Duration::from_millis(1200));
        for i in 0..100 {
            let d = retry_delay(&p, 1, i as f64 / 100.0);
            assert!(d >= Duration::from_millis(800) && d <= Duration::from_millis(1200), "{d:?}");
        }
    }

    #[test]
    fn follows_the_policy_shape_and_still_caps() {
        let mut p = policy(100, 450, 0.0);
        p.backoff = BackoffShape::Linear;
        let linear: Vec<Duration> = (1..=5).map(|n| retry_delay(&p, n, 0.5)).collect();
        assert_eq!(linear, [100, 200, 300, 400, 450].map(Duration::from_millis));
        p.backoff = BackoffShape::Fibonacci;
        let fib: Vec<Duration> = (1..=6).map(|n| retry_delay(&p, n, 0.5)).collect();
        assert_eq!(fib, [100, 100, 200, 300, 450, 450].map(Duration::from_millis));
        p.backoff = BackoffShape::None;
        p.jitter = 0.5;
        assert_eq!(retry_delay(&p, 3, 0.9), Duration::ZERO);
    }
}
