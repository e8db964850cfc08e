//! `StepMetrics`: the per-step series of the exposition — attempts by outcome, attempt
//! duration and queue wait, each labelled `namespace`, `task`, `step` (never a uuid, so
//! the number of series is bounded by the templates, not by the tasks).
//!
//! Recording is on the hot path (every step attempt), so the label set is built once per
//! template step: the first attempt of a step looks its series up in the families (hashing
//! three strings, allocating the labels) and caches them under the address of the step's
//! shared `Arc<StepDefinition>`; every later attempt finds them with one pointer-keyed
//! lookup and touches only atomics and a histogram's lock. The completion path takes the
//! cache's read lock once per batch.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use parking_lot::RwLock;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;

use crate::messages::{StepExecutionEvent, StepExecutionResult};
use crate::rules::attempt_outcome;
use crate::store::RecordOutcome;
use crate::template::StepDefinition;

/// The outcome words of `tasker_step_attempts_total`, as `rules::attempt_outcome` names
/// them; every step's series start with all five at zero.
pub const OUTCOMES: [&str; 5] = ["success", "failure", "timeout", "worker_lost", "worker_shutdown"];

/// Upper bounds (seconds) of `tasker_step_duration_seconds`. Handlers report whole
/// milliseconds, so nothing finer than 1 ms is told apart.
pub const DURATION_BUCKETS: [f64; 17] =
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0];

/// Upper bounds (seconds) of `tasker_step_queue_wait_seconds`: from 100 µs (an idle
/// worker hands a ready step over in tens of microseconds) to a minute (a saturated one).
pub const QUEUE_WAIT_BUCKETS: [f64; 18] =
    [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

/// Most template steps whose series are cached; past it the cache starts over (only a
/// process that reloads templates without end gets there, and it costs one slow lookup
/// per step).
const CACHE_LIMIT: usize = 10_000;

/// The labels of the duration and queue-wait histograms.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StepLabels {
    pub namespace: String,
    pub task: String,
    pub step: String,
}

/// The labels of the attempt counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AttemptLabels {
    pub namespace: String,
    pub task: String,
    pub step: String,
    /// One of [`OUTCOMES`].
    pub outcome: &'static str,
}

/// What the metrics need from one result, read before the store drains the batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttemptFacts {
    /// Index into [`OUTCOMES`].
    outcome: usize,
    /// The result's `metadata.execution_time_ms` (a timed-out FFI attempt has none).
    duration: Option<Duration>,
}

impl AttemptFacts {
    pub fn of(result: &StepExecutionResult) -> Self {
        let word = attempt_outcome(result);
        Self {
            outcome: OUTCOMES.iter().position(|o| *o == word).unwrap_or(1),
            duration: result.metadata.execution_time_ms.map(Duration::from_millis),
        }
    }

    /// A step failed because its worker stopped heartbeating (no duration is known).
    pub fn worker_lost() -> Self {
        let word = crate::messages::error_types::WORKER_LOST;
        Self { outcome: OUTCOMES.iter().position(|o| *o == word).unwrap_or(1), duration: None }
    }

    pub fn outcome(&self) -> &'static str {
        OUTCOMES[self.outcome]
    }

    pub fn duration(&self) -> Option<Duration> {
        self.duration
    }
}

/// The series of one template step, resolved once.
#[derive(Debug)]
struct StepSeries {
    /// Keeps the definition alive, so its address (the cache key) cannot be reused by
    /// another step while the entry exists.
    _definition: Arc<StepDefinition>,
    /// Checked on every hit: a definition shared by two templates must not mix their series.
    namespace: String,
    task: String,
    /// By index of [`OUTCOMES`].
    attempts: [Counter; 5],
    duration: Histogram,
    queue_wait: Histogram,
}

impl StepSeries {
    fn matches(&self, namespace: &str, task: &str) -> bool {
        self.namespace == namespace && self.task == task
    }
}

/// Hashes a pointer-sized key by Fibonacci multiplication (spreads aligned addresses over
/// the high bits the hash table looks at). The key is an address, never user input.
#[derive(Debug, Default)]
struct AddressHasher(u64);

impl Hasher for AddressHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*byte)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_usize(&mut self, n: usize) {
        self.0 = (n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

type SeriesCache = HashMap<usize, Arc<StepSeries>, BuildHasherDefault<AddressHasher>>;

fn duration_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS)
}

fn queue_wait_histogram() -> Histogram {
    Histogram::new(QUEUE_WAIT_BUCKETS)
}

/// See the module documentation. Shared (`Arc`) by the completion actor and the dispatch
/// consumers of a system; the families are registered in its `Metrics` registry.
#[derive(Debug)]
pub struct StepMetrics {
    pub(super) attempts: Family<AttemptLabels, Counter>,
    pub(super) durations: Family<StepLabels, Histogram, fn() -> Histogram>,
    pub(super) queue_waits: Family<StepLabels, Histogram, fn() -> Histogram>,
    series: RwLock<SeriesCache>,
}

impl Default for StepMetrics {
    fn default() -> Self {
        Self {
            attempts: Family::default(),
            durations: Family::new_with_constructor(duration_histogram),
            queue_waits: Family::new_with_constructor(queue_wait_histogram),
            series: RwLock::new(SeriesCache::default()),
        }
    }
}

impl StepMetrics {
    /// Counts the attempts of a recorded batch: `facts[i]` was read from the batch's
    /// `i`-th result before `record`, `outcomes[i]` is what recording it did. Stale results
    /// are not attempts and are skipped.
    pub fn observe_recorded(&self, facts: &[AttemptFacts], outcomes: &[RecordOutcome]) {
        let mut cache = self.series.read();
        for (facts, outcome) in facts.iter().zip(outcomes) {
            let RecordOutcome::Recorded { step, .. } = outcome else { continue };
            let template = &step.template;
            let Some(definition) = template.steps.get(step.index) else { continue };
            let series = match lookup(&cache, definition, &template.namespace, &template.name) {
                Some(series) => series,
                None => {
                    drop(cache);
                    let series = self.resolve(definition, &template.namespace, &template.name);
                    record_attempt(&series, facts);
                    cache = self.series.read();
                    continue;
                }
            };
            record_attempt(series, facts);
        }
    }

    /// Observes how long the step of `event` waited between becoming ready (`ready_at`,
    /// set by the store) and `handed_at`, when a handler got it. Nothing when the store did
    /// not say, or the clocks disagree (another host's `ready_at` in the future).
    pub fn observe_queue_wait(&self, event: &StepExecutionEvent, handed_at: SystemTime) {
        let Some(ready_at) = event.ready_at else { return };
        let Ok(wait) = handed_at.duration_since(ready_at) else { return };
        let definition = &event.payload.step_definition;
        let (namespace, task) = (&event.payload.task.namespace, &event.payload.task.name);
        let cache = self.series.read();
        match lookup(&cache, definition, namespace, task) {
            Some(series) => series.queue_wait.observe(wait.as_secs_f64()),
            None => {
                drop(cache);
                self.resolve(definition, namespace, task).queue_wait.observe(wait.as_secs_f64());
            }
        }
    }

    /// The slow path: the step's series from the families (created at zero on first use),
    /// cached for the next attempt unless the cache holds this definition for another
    /// template.
    fn resolve(&self, definition: &Arc<StepDefinition>, namespace: &str, task: &str) -> Arc<StepSeries> {
        let labels =
            StepLabels { namespace: namespace.to_string(), task: task.to_string(), step: definition.name.clone() };
        let attempts = OUTCOMES.map(|outcome| {
            self.attempts.get_or_create_owned(&AttemptLabels {
                namespace: labels.namespace.clone(),
                task: labels.task.clone(),
                step: labels.step.clone(),
                outcome,
            })
        });
        let series = Arc::new(StepSeries {
            _definition: Arc::clone(definition),
            namespace: labels.namespace.clone(),
            task: labels.task.clone(),
            attempts,
            duration: self.durations.get_or_create_owned(&labels),
            queue_wait: self.queue_waits.get_or_create_owned(&labels),
        });
        let mut cache = self.series.write();
        let key = address(definition);
        if cache.get(&key).is_some_and(|cached| !cached.matches(namespace, task)) {
            return series;
        }
        if cache.len() >= CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(key, Arc::clone(&series));
        series
    }
}

fn address(definition: &Arc<StepDefinition>) -> usize {
    Arc::as_ptr(definition) as usize
}

fn lookup<'c>(
    cache: &'c SeriesCache,
    definition: &Arc<StepDefinition>,
    namespace: &str,
    task: &str,
) -> Option<&'c StepSeries> {
    cache.get(&address(definition)).filter(|series| series.matches(namespace, task)).map(|series| series.as_ref())
}

fn record_attempt(series: &StepSeries, facts: &AttemptFacts) {
    series.attempts[facts.outcome].inc();
    if let Some(duration) = facts.duration {
        series.duration.observe(duration.as_secs_f64());
    }
}
