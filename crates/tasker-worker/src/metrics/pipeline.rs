//! `PipelineCollector`: the process's `PipelineCounters` (tasks created and finished,
//! steps dispatched, retries, stale results, store retries) encoded at scrape time, so
//! the counting itself stays where it is and costs nothing more.

use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::MetricType;

use crate::worker::counters::PipelineCounters;

/// See the module documentation.
#[derive(Debug)]
pub struct PipelineCollector {
    counters: Arc<PipelineCounters>,
}

impl PipelineCollector {
    pub fn new(counters: Arc<PipelineCounters>) -> Self {
        Self { counters }
    }
}

/// Writes one unlabelled counter (`name` without its `_total`, which the encoder adds).
pub(super) fn counter(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: u64) -> std::fmt::Result {
    let metric = ConstCounter::new(value);
    let descriptor = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
    metric.encode(descriptor)
}

impl Collector for PipelineCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        let c = self.counters.snapshot();
        counter(&mut encoder, "tasker_tasks_created", "Tasks created by this process.", c.tasks_created)?;
        {
            let mut finished = encoder.encode_descriptor(
                "tasker_tasks_finished",
                "Tasks this process saw finish, by final status.",
                None,
                MetricType::Counter,
            )?;
            for (status, value) in
                [("complete", c.tasks_completed), ("error", c.tasks_failed), ("cancelled", c.tasks_cancelled)]
            {
                let labels = [("status", status)];
                ConstCounter::new(value).encode(finished.encode_family(&labels)?)?;
            }
        }
        counter(
            &mut encoder,
            "tasker_steps_dispatched",
            "Steps this process's worker claimed and dispatched to a handler.",
            c.steps_dispatched,
        )?;
        counter(
            &mut encoder,
            "tasker_step_retries",
            "Failed attempts after which the step was scheduled to run again.",
            c.retries_scheduled,
        )?;
        counter(
            &mut encoder,
            "tasker_stale_results",
            "Results ignored because their attempt was no longer in progress.",
            c.stale_results,
        )?;
        counter(
            &mut encoder,
            "tasker_store_retries",
            "Store calls of the worker pipeline that failed and were tried again.",
            c.store_retries,
        )
    }
}
