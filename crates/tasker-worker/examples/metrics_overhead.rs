//! What recording the step metrics adds to the completion path, measured side by side in
//! one process: batches of claimed steps are recorded in the embedded store exactly as
//! the `FFICompletionActor` does it, alternately without the metrics (the counters only)
//! and with them (facts read before `record`, attempts and durations counted after, and
//! the queue wait each poll observes).
//!
//! ```text
//! cargo run --release -p tasker-worker --example metrics_overhead [-- ROUNDS]
//! ```
//!
//! Prints ns per step for both, their difference, and the difference as a share of one
//! step of the end-to-end no-op throughput (67,311 steps/s in docs/benchmarks.md).

use std::error::Error;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use serde_json::json;
use tasker_worker::{
    compile, parse_yaml, AttemptFacts, MemoryLimits, MemoryStore, Metrics, NewTask, PipelineCounters, RetryDefaults,
    StepExecutionEvent, StepExecutionResult, TaskStore,
};

const TEMPLATE: &str = "\
name: noop
namespace_name: bench
version: 1.0.0
steps:
  - { name: only, handler: { callable: Bench::Noop } }
";

/// Steps per recorded batch (the completion path's default batch size is 64).
const BATCH: usize = 64;
/// The end-to-end no-op figure the budget is taken against (steps per second).
const END_TO_END_STEPS_PER_SECOND: f64 = 67_311.0;

struct Bench {
    store: MemoryStore,
    counters: PipelineCounters,
    metrics: Metrics,
    facts: Vec<AttemptFacts>,
}

impl Bench {
    /// Creates and claims one batch of steps; answers their results (as a handler loop
    /// would send them) and the events (for the queue wait).
    async fn claimed_batch(&self) -> Result<(Vec<StepExecutionResult>, Vec<StepExecutionEvent>), Box<dyn Error>> {
        for _ in 0..BATCH {
            self.store.create_task(NewTask::new("bench", "noop", json!({}))).await?;
        }
        let mut events = Vec::with_capacity(BATCH);
        self.store.claim("bench", uuid::Uuid::new_v4(), BATCH, Duration::from_secs(30), &mut events).await?;
        let results = events
            .iter()
            .map(|event| {
                let mut result = StepExecutionResult::success(json!(null)).with_identity(event.identity());
                result.metadata.execution_time_ms = Some(0);
                result
            })
            .collect();
        Ok((results, events))
    }

    /// Records one batch; answers the nanoseconds it took.
    async fn record(&mut self, with_metrics: bool) -> Result<u128, Box<dyn Error>> {
        let (mut batch, events) = self.claimed_batch().await?;
        let polled_at = SystemTime::now();
        let started = Instant::now();
        if with_metrics {
            // What the FFI channel does at each poll.
            for event in &events {
                self.metrics.steps().observe_queue_wait(event, polled_at);
            }
            self.facts.clear();
            self.facts.extend(batch.iter().map(AttemptFacts::of));
        }
        let outcomes = self.store.record(&mut batch).await?;
        self.counters.observe(&outcomes);
        if with_metrics {
            self.metrics.steps().observe_recorded(&self.facts, &outcomes);
        }
        let elapsed = started.elapsed().as_nanos();
        if outcomes.len() != BATCH || outcomes.iter().any(|o| o.is_stale()) {
            return Err("a result was not recorded".into());
        }
        Ok(elapsed)
    }
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    values[values.len() / 2]
}

fn main() -> Result<(), Box<dyn Error>> {
    let rounds: usize = match std::env::args().nth(1) {
        Some(arg) => arg.parse().map_err(|e| format!("ROUNDS must be a whole number, got {arg:?}: {e}"))?,
        None => 2000,
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let template = compile(parse_yaml(TEMPLATE, None)?, &RetryDefaults::default(), None)?;
    let store = MemoryStore::new(MemoryLimits::default());
    runtime.block_on(store.register_templates(vec![Arc::new(template)]))?;
    let counters = Arc::new(PipelineCounters::default());
    let mut bench =
        Bench { store, counters: PipelineCounters::default(), metrics: Metrics::new(counters), facts: Vec::new() };

    let (mut without, mut with) = (Vec::with_capacity(rounds), Vec::with_capacity(rounds));
    runtime.block_on(async {
        // Warm up: the store's maps, the series cache, the allocator.
        for _ in 0..50 {
            bench.record(false).await?;
            bench.record(true).await?;
        }
        for round in 0..rounds {
            // Alternate which goes first, so neither always follows the other.
            let order = if round % 2 == 0 { [false, true] } else { [true, false] };
            for with_metrics in order {
                let per_step = bench.record(with_metrics).await? as f64 / BATCH as f64;
                if with_metrics {
                    with.push(per_step)
                } else {
                    without.push(per_step)
                }
            }
        }
        Ok::<(), Box<dyn Error>>(())
    })?;

    // The metrics calls alone, on a batch already recorded.
    let (results, events) = runtime.block_on(bench.claimed_batch())?;
    let mut batch = results.clone();
    let outcomes = runtime.block_on(bench.store.record(&mut batch))?;
    let facts: Vec<AttemptFacts> = results.iter().map(AttemptFacts::of).collect();
    let now = SystemTime::now();
    let repeats = 20_000;
    let started = Instant::now();
    for _ in 0..repeats {
        for event in &events {
            bench.metrics.steps().observe_queue_wait(event, now);
        }
        bench.metrics.steps().observe_recorded(&facts, &outcomes);
    }
    let alone = started.elapsed().as_nanos() as f64 / (repeats * BATCH) as f64;

    let (base, metered) = (median(&mut without), median(&mut with));
    let step_budget_ns = 1e9 / END_TO_END_STEPS_PER_SECOND;
    println!("completion path (record a batch of {BATCH} in the embedded store), median of {rounds} rounds each:");
    println!("  counters only            {base:8.1} ns/step");
    println!(
        "  counters + step metrics  {metered:8.1} ns/step   ({:+.1} ns, {:+.1} %)",
        metered - base,
        (metered / base - 1.0) * 100.0
    );
    println!("metrics calls alone (queue wait + attempt + duration): {alone:.1} ns/step");
    println!(
        "share of one end-to-end no-op step ({step_budget_ns:.0} ns at {END_TO_END_STEPS_PER_SECOND:.0} steps/s): \
         {:.2} % (side by side), {:.2} % (calls alone); budget 2 %",
        (metered - base) / step_budget_ns * 100.0,
        alone / step_budget_ns * 100.0
    );
    Ok(())
}
