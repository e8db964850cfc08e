//! A bounded window of recent latencies (the last N samples) with percentiles, for
//! metrics such as how late the reaper fails an overdue event.

use std::collections::VecDeque;
use std::time::Duration;

/// The last `capacity` samples, in microseconds.
#[derive(Debug, Clone)]
pub struct LatencyWindow {
    samples: VecDeque<u64>,
    capacity: usize,
    total: u64,
}

impl LatencyWindow {
    pub fn new(capacity: usize) -> Self {
        Self { samples: VecDeque::with_capacity(capacity.min(4096)), capacity: capacity.max(1), total: 0 }
    }

    pub fn record(&mut self, latency: Duration) {
        if self.samples.len() == self.capacity {
            self.samples.pop_front();
        }
        self.samples.push_back(latency.as_micros().min(u64::MAX as u128) as u64);
        self.total += 1;
    }

    /// Samples ever recorded (not only those still in the window).
    pub fn total(&self) -> u64 {
        self.total
    }

    /// The `q` quantile (0.0..=1.0) of the window, nearest-rank; `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        if self.samples.is_empty() {
            return None;
        }
        let mut sorted: Vec<u64> = self.samples.iter().copied().collect();
        sorted.sort_unstable();
        let rank = (q.clamp(0.0, 1.0) * sorted.len() as f64).ceil() as usize;
        Some(Duration::from_micros(sorted[rank.saturating_sub(1).min(sorted.len() - 1)]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_use_nearest_rank_over_the_window() {
        let mut w = LatencyWindow::new(100);
        assert_eq!(w.quantile(0.5), None);
        for ms in 1..=100 {
            w.record(Duration::from_millis(ms));
        }
        assert_eq!(w.quantile(0.5), Some(Duration::from_millis(50)));
        assert_eq!(w.quantile(0.99), Some(Duration::from_millis(99)));
        assert_eq!(w.quantile(1.0), Some(Duration::from_millis(100)));
    }

    #[test]
    fn keeps_only_the_last_capacity_samples() {
        let mut w = LatencyWindow::new(3);
        for ms in [500, 1, 2, 3] {
            w.record(Duration::from_millis(ms));
        }
        assert_eq!(w.total(), 4);
        assert_eq!(w.quantile(1.0), Some(Duration::from_millis(3)), "the 500 ms sample left the window");
    }
}
