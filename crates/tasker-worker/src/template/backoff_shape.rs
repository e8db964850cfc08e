//! The shapes a step's retry delay can grow by (`retry.backoff`), as pure arithmetic.
//!
//! A shape turns the step's `backoff_base_ms` and the number of attempts that already
//! failed into an uncapped delay; the retry rule then caps it at `max_backoff_ms` and
//! adds jitter. The names are upstream tasker-core's: `none`, `linear`, `exponential`
//! (the default) and `fibonacci`.

use serde::{Deserialize, Serialize};

/// How the delay before a retry grows with each failed attempt.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackoffShape {
    /// Retry at once: no delay whatever the base.
    None,
    /// `base × n` after the n-th failure.
    Linear,
    /// `base × 2^(n-1)` after the n-th failure.
    #[default]
    Exponential,
    /// `base × fib(n)` after the n-th failure (1, 1, 2, 3, 5, 8, ...).
    Fibonacci,
}

impl BackoffShape {
    /// The name as written in templates.
    pub fn as_str(self) -> &'static str {
        match self {
            BackoffShape::None => "none",
            BackoffShape::Linear => "linear",
            BackoffShape::Exponential => "exponential",
            BackoffShape::Fibonacci => "fibonacci",
        }
    }

    /// The uncapped delay in milliseconds after `failed_attempts` failures (1 after the
    /// first). `failed_attempts` of 0 is read as 1. Large counts saturate instead of
    /// overflowing (the caller caps the result anyway).
    pub fn delay_ms(self, base_ms: u64, failed_attempts: u32) -> f64 {
        let n = failed_attempts.max(1);
        let base = base_ms as f64;
        match self {
            BackoffShape::None => 0.0,
            BackoffShape::Linear => base * f64::from(n),
            BackoffShape::Exponential => base * 2f64.powi(n.saturating_sub(1).min(1023) as i32),
            BackoffShape::Fibonacci => base * fibonacci(n),
        }
    }
}

/// fib(1) = fib(2) = 1; as a float, so it saturates to infinity rather than overflowing.
fn fibonacci(n: u32) -> f64 {
    let (mut previous, mut current) = (0.0_f64, 1.0_f64);
    for _ in 1..n.min(1500) {
        let next = previous + current;
        previous = current;
        current = next;
    }
    current
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(shape: BackoffShape) -> Vec<f64> {
        (1..=6).map(|n| shape.delay_ms(100, n)).collect()
    }

    #[test]
    fn each_shape_grows_as_named() {
        assert_eq!(series(BackoffShape::None), vec![0.0; 6]);
        assert_eq!(series(BackoffShape::Linear), vec![100.0, 200.0, 300.0, 400.0, 500.0, 600.0]);
        assert_eq!(series(BackoffShape::Exponential), vec![100.0, 200.0, 400.0, 800.0, 1600.0, 3200.0]);
        assert_eq!(series(BackoffShape::Fibonacci), vec![100.0, 100.0, 200.0, 300.0, 500.0, 800.0]);
    }

    #[test]
    fn zero_failures_reads_as_one_and_huge_counts_do_not_overflow() {
        assert_eq!(BackoffShape::Exponential.delay_ms(50, 0), 50.0);
        assert!(BackoffShape::Exponential.delay_ms(50, u32::MAX).is_infinite());
        assert!(BackoffShape::Fibonacci.delay_ms(50, u32::MAX).is_infinite());
        assert_eq!(BackoffShape::Linear.delay_ms(u64::MAX, u32::MAX), u64::MAX as f64 * u32::MAX as f64);
    }

    #[test]
    fn names_round_trip_through_serde_and_exponential_is_the_default() {
        for shape in [BackoffShape::None, BackoffShape::Linear, BackoffShape::Exponential, BackoffShape::Fibonacci] {
            let text = serde_json::to_string(&shape).unwrap();
            assert_eq!(text, format!("\"{}\"", shape.as_str()));
            assert_eq!(serde_json::from_str::<BackoffShape>(&text).unwrap(), shape);
        }
        assert_eq!(BackoffShape::default(), BackoffShape::Exponential);
        assert!(serde_json::from_str::<BackoffShape>("\"quadratic\"").is_err());
    }
}
