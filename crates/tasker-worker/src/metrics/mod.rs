//! Metrics: this process's own counters as Prometheus text exposition (format 0.0.4), the
//! body of the dashboard's `/metrics`.
//!
//! Three sources, each read the cheapest way:
//! - `steps`: per-step series (attempts by outcome, attempt duration, queue wait),
//!   recorded on the hot path by the completion actor and the dispatch consumers;
//! - `pipeline`: the `PipelineCounters` the worker pipeline keeps anyway, encoded at
//!   scrape time;
//! - `live`: gauges read at scrape time from the worker, its FFI channel and the store.
//!
//! Everything is process-local (each worker process exposes its own; Prometheus sums
//! them) except `tasker_workers_alive`, which the store answers for every process.

mod live;
mod pipeline;
mod steps;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::{Registry, Unit};

pub use live::LiveFigures;
pub use steps::{AttemptFacts, AttemptLabels, StepLabels, StepMetrics, DURATION_BUCKETS, OUTCOMES, QUEUE_WAIT_BUCKETS};

use crate::worker::counters::PipelineCounters;

/// The `Content-Type` of the exposition (what Prometheus' own clients send).
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// The exposition could not be written (a bug: writing to a `String` does not fail).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the metrics could not be encoded as Prometheus text")]
pub struct MetricsError;

impl From<std::fmt::Error> for MetricsError {
    fn from(_: std::fmt::Error) -> Self {
        MetricsError
    }
}

/// See the module documentation. One per `System`.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    steps: Arc<StepMetrics>,
    /// Steps the maintenance task failed as `worker_lost` (their worker stopped
    /// heartbeating). The store does not say which steps, so it has no step labels.
    lost_worker_steps: Counter,
}

impl Metrics {
    /// Metrics over `counters` (the system's pipeline counters).
    pub fn new(counters: Arc<PipelineCounters>) -> Self {
        let steps = Arc::new(StepMetrics::default());
        let lost_worker_steps = Counter::default();
        let mut registry = Registry::default();
        registry.register_collector(Box::new(pipeline::PipelineCollector::new(counters)));
        registry.register(
            "tasker_step_attempts",
            "Step attempts whose result this process recorded, by outcome",
            steps.attempts.clone(),
        );
        registry.register_with_unit(
            "tasker_step_duration",
            "How long step handlers ran, as their results report it",
            Unit::Seconds,
            steps.durations.clone(),
        );
        registry.register_with_unit(
            "tasker_step_queue_wait",
            "How long a step waited from becoming ready until a handler got it",
            Unit::Seconds,
            steps.queue_waits.clone(),
        );
        registry.register(
            "tasker_lost_worker_steps",
            "Steps this process failed as worker_lost because their worker stopped heartbeating",
            lost_worker_steps.clone(),
        );
        Self { registry, steps, lost_worker_steps }
    }

    /// The per-step series, for the completion actor and the dispatch consumers.
    pub fn steps(&self) -> &Arc<StepMetrics> {
        &self.steps
    }

    /// Counts steps failed as `worker_lost` by this process's maintenance.
    pub fn lost_worker_steps(&self, steps: usize) {
        self.lost_worker_steps.inc_by(steps as u64);
    }

    /// The exposition: every counter and histogram, then the gauges of `live`.
    pub fn encode(&self, live: LiveFigures) -> Result<String, MetricsError> {
        let mut text = String::with_capacity(4096);
        prometheus_text::encode(&mut text, &self.registry)?;
        let mut gauges = Registry::default();
        gauges.register_collector(Box::new(live::LiveCollector(live)));
        prometheus_text::encode(&mut text, &gauges)?;
        Ok(text)
    }
}
