//! How long a pipeline actor waits before calling an unavailable store again: doubling
//! from 50 ms to 5 s, so a restarting database is not hammered and a short blip costs
//! little.

use std::time::Duration;

const FIRST: Duration = Duration::from_millis(50);
const MAX: Duration = Duration::from_secs(5);

/// Successive waits after consecutive store failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreBackoff {
    next: Duration,
}

impl Default for StoreBackoff {
    fn default() -> Self {
        Self { next: FIRST }
    }
}

impl StoreBackoff {
    /// The wait before the next try; each call doubles the one after.
    pub fn next_wait(&mut self) -> Duration {
        let wait = self.next;
        self.next = (self.next * 2).min(MAX);
        wait
    }

    /// The store answered again.
    pub fn reset(&mut self) {
        self.next = FIRST;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_up_to_five_seconds_and_reset() {
        let mut backoff = StoreBackoff::default();
        let waits: Vec<u128> = (0..9).map(|_| backoff.next_wait().as_millis()).collect();
        assert_eq!(waits, [50, 100, 200, 400, 800, 1600, 3200, 5000, 5000]);
        backoff.reset();
        assert_eq!(backoff.next_wait(), FIRST);
    }
}
