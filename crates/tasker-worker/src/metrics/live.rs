//! `LiveFigures`: the gauges of the exposition, read at scrape time from the running
//! worker, its FFI channel and the store — each a constant-time read, never a scan of
//! tasks.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;

/// What the gauges show at one scrape.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LiveFigures {
    /// Whether this process runs a worker now.
    pub worker_running: bool,
    /// Steps this process's worker holds: claimed and not finished (dispatched, polled or
    /// running), at most `max_concurrent_handlers`.
    pub steps_in_flight: u64,
    /// Events a Ruby thread polled and has not completed (nor timed out).
    pub pending_events: u64,
    /// Events dispatched to the FFI channel and not yet polled.
    pub waiting_in_dispatch: u64,
    /// Live workers the store knows, in every process; `None` when the store did not
    /// answer (the gauge is left out and `tasker_store_up` is 0).
    pub workers_alive: Option<u64>,
}

/// Encodes one `LiveFigures` (a collector of a registry made for one scrape).
#[derive(Debug)]
pub struct LiveCollector(pub LiveFigures);

fn gauge(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: u64) -> std::fmt::Result {
    let metric = ConstGauge::new(value);
    let descriptor = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    metric.encode(descriptor)
}

impl Collector for LiveCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        let f = self.0;
        gauge(
            &mut encoder,
            "tasker_worker_running",
            "1 while this process runs a worker.",
            u64::from(f.worker_running),
        )?;
        gauge(
            &mut encoder,
            "tasker_steps_in_flight",
            "Steps this process's worker holds: claimed and not yet finished.",
            f.steps_in_flight,
        )?;
        gauge(
            &mut encoder,
            "tasker_pending_events",
            "Step events polled by a Ruby thread and not yet completed.",
            f.pending_events,
        )?;
        gauge(
            &mut encoder,
            "tasker_steps_waiting_in_dispatch",
            "Step events dispatched to the FFI channel and not yet polled.",
            f.waiting_in_dispatch,
        )?;
        gauge(
            &mut encoder,
            "tasker_store_up",
            "1 when the store answered this scrape's queries.",
            u64::from(f.workers_alive.is_some()),
        )?;
        if let Some(workers) = f.workers_alive {
            gauge(&mut encoder, "tasker_workers_alive", "Live workers the store knows, in every process.", workers)?;
        }
        Ok(())
    }
}
