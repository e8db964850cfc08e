//! Reconnect backoff: how long to wait before the next attempt to reach the database,
//! doubling from `initial` to `max` with jitter, and the bookkeeping that keeps the logs
//! readable during an outage (one warning when it starts, one line per retry at a growing
//! interval, one info when it ends with how long it lasted).

use std::time::{Duration, Instant};

/// Delays between attempts to reach an unreachable database.
#[derive(Debug, Clone)]
pub struct ReconnectBackoff {
    /// First delay after a failure.
    initial: Duration,
    /// Longest delay; also how often an outage is logged once it lasts.
    max: Duration,
    /// The delay the next failure waits.
    next: Duration,
    /// When the current outage began (None: the database is reachable).
    outage_since: Option<Instant>,
    /// Failures in the current outage.
    failures: u32,
    /// The delay the last failure asked for (what a caller that retries should wait).
    last_delay: Duration,
    /// When the outage was last reported (see `should_report`).
    last_report: Option<Instant>,
    /// Since when the database has been reachable without a break (the end of the last
    /// outage, or when this backoff was made).
    reachable_since: Instant,
    rng: fastrand::Rng,
}

/// What a failure means for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutageStep {
    /// The first failure: an outage began.
    Began,
    /// Another failure of the same outage.
    Continues { failures: u32, down_for: Duration },
}

impl ReconnectBackoff {
    pub fn new(initial: Duration, max: Duration) -> Self {
        let initial = initial.max(Duration::from_millis(1));
        Self {
            initial,
            max: max.max(initial),
            next: initial,
            outage_since: None,
            failures: 0,
            last_delay: initial,
            last_report: None,
            reachable_since: Instant::now(),
            rng: fastrand::Rng::new(),
        }
    }

    /// Records a failure; returns how long to wait before trying again and what it means.
    pub fn failed(&mut self) -> (Duration, OutageStep) {
        let step = match self.outage_since {
            None => {
                self.outage_since = Some(Instant::now());
                OutageStep::Began
            }
            Some(since) => OutageStep::Continues { failures: self.failures + 1, down_for: since.elapsed() },
        };
        self.failures += 1;
        let base = self.next;
        self.next = (self.next * 2).min(self.max);
        // ±20 %: processes that lost the server together do not all come back at once.
        let factor = 0.8 + 0.4 * self.rng.f64();
        self.last_delay = base.mul_f64(factor).min(self.max);
        (self.last_delay, step)
    }

    /// How long a caller should wait before its next attempt: the delay of the last
    /// failure during an outage, the initial delay otherwise.
    pub fn current_delay(&self) -> Duration {
        if self.in_outage() {
            self.last_delay
        } else {
            self.initial
        }
    }

    /// Whether a failure of the current outage should be logged now: the first ones (while
    /// the delay still doubles), then at most once per `max`, however many callers fail.
    pub fn should_report(&mut self) -> bool {
        let due = match self.last_report {
            None => true,
            Some(at) => self.failures <= 4 || at.elapsed() >= self.max,
        };
        if due {
            self.last_report = Some(Instant::now());
        }
        due
    }

    /// How long the database has been reachable without a break (zero during an outage).
    pub fn reachable_for(&self) -> Duration {
        if self.in_outage() {
            Duration::ZERO
        } else {
            self.reachable_since.elapsed()
        }
    }

    /// Records a success; returns how long the outage that just ended lasted, if any.
    pub fn succeeded(&mut self) -> Option<Duration> {
        self.next = self.initial;
        self.failures = 0;
        self.last_delay = self.initial;
        self.last_report = None;
        let ended = self.outage_since.take().map(|since| since.elapsed());
        if ended.is_some() {
            self.reachable_since = Instant::now();
        }
        ended
    }

    /// Whether an outage is going on.
    pub fn in_outage(&self) -> bool {
        self.outage_since.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_and_resets_on_success() {
        let mut backoff = ReconnectBackoff::new(Duration::from_millis(100), Duration::from_millis(1000));
        let delays: Vec<Duration> = (0..6).map(|_| backoff.failed().0).collect();
        let bases = [100, 200, 400, 800, 1000, 1000];
        for (delay, base) in delays.iter().zip(bases) {
            let base = Duration::from_millis(base);
            assert!(*delay >= base.mul_f64(0.8) && *delay <= base.mul_f64(1.2).min(Duration::from_millis(1000)));
        }
        assert!(backoff.in_outage());
        assert_eq!(backoff.current_delay(), delays[5]);
        assert!(backoff.succeeded().is_some());
        assert_eq!(backoff.current_delay(), Duration::from_millis(100));
        assert!(!backoff.in_outage());
        assert!(backoff.succeeded().is_none());
        assert!(backoff.failed().0 <= Duration::from_millis(120));
    }

    #[test]
    fn a_long_outage_is_reported_at_most_once_per_max_delay() {
        let mut backoff = ReconnectBackoff::new(Duration::from_millis(1), Duration::from_secs(60));
        let reported = (0..50).filter(|_| {
            backoff.failed();
            backoff.should_report()
        });
        assert_eq!(reported.count(), 4, "the first failures, then nothing within a minute");
        backoff.succeeded();
        backoff.failed();
        assert!(backoff.should_report(), "a new outage is reported again");
    }

    #[test]
    fn reports_when_an_outage_begins_and_continues() {
        let mut backoff = ReconnectBackoff::new(Duration::from_millis(1), Duration::from_millis(2));
        assert_eq!(backoff.failed().1, OutageStep::Began);
        assert!(matches!(backoff.failed().1, OutageStep::Continues { failures: 2, .. }));
        backoff.succeeded();
        assert_eq!(backoff.failed().1, OutageStep::Began);
    }
}
