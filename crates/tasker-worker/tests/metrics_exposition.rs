//! The Prometheus exposition of a `System` after real tasks ran through the embedded
//! store with Rust handlers: names, labels and exact counts of every series, histogram
//! buckets, the gauges, and the text's grammar (a small parser of format 0.0.4 below).
//!
//! `System` owns a tokio runtime, so these are plain `#[test]`s.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::future::pending;
use std::time::Duration;

use serde_json::{json, Value};
use uuid::Uuid;

use common::{eventually_blocking, template, PATIENCE};
use tasker_worker::{
    HandlerDispatchConfig, HandlerError, HandlerRegistry, NewTask, StepStatus, System, TaskSequenceStep, TaskStatus,
    TaskerConfig, WaitOutcome, DURATION_BUCKETS, METRICS_CONTENT_TYPE, OUTCOMES, QUEUE_WAIT_BUCKETS,
};

const ORDERS: &str = "\
name: orders
namespace_name: shop
version: 1.0.0
steps:
  - name: validate
    handler: { callable: Shop::Validate }
    retry: { retryable: false, max_attempts: 1 }
  - name: charge
    handler: { callable: Shop::Charge }
    dependencies: [validate]
    retry: { retryable: true, max_attempts: 3, backoff_base_ms: 1, max_backoff_ms: 5 }
  - name: ship
    handler: { callable: Shop::Ship }
    dependencies: [charge]
    retry: { retryable: true, max_attempts: 1 }
    timeout_seconds: 0.05
";

const STUCK: &str = "\
name: stuck
namespace_name: shop
version: 1.0.0
steps:
  - { name: wait_forever, handler: { callable: Shop::WaitForever } }
";

/// Answered by a polling loop (the test itself), with a short deadline and no retry.
const POLLED: &str = "\
name: polled
namespace_name: shop
version: 1.0.0
steps:
  - { name: answer, handler: { callable: Shop::Answer }, timeout_seconds: 0.5, retry: { retryable: true, max_attempts: 1 } }
";

fn flag(step: &TaskSequenceStep, key: &str) -> bool {
    step.task.context.get(key).and_then(Value::as_bool).unwrap_or(false)
}

/// `bad` fails validation for good; `flaky` fails the first charge (retryable); `slow`
/// overruns the ship deadline once (no retry left, the task fails).
fn handlers() -> HandlerRegistry {
    let mut registry = HandlerRegistry::new();
    registry.register("Shop::Validate", |step: TaskSequenceStep| async move {
        if flag(&step, "bad") {
            return Err(HandlerError::permanent("no items"));
        }
        Ok(json!("valid"))
    });
    registry.register("Shop::Charge", |step: TaskSequenceStep| async move {
        if flag(&step, "flaky") && step.workflow_step.attempts == 1 {
            return Err(HandlerError::retryable("gateway busy"));
        }
        Ok(json!("charged"))
    });
    registry.register("Shop::Ship", |step: TaskSequenceStep| async move {
        if flag(&step, "slow") {
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
        Ok(json!("shipped"))
    });
    registry.register("Shop::WaitForever", |_step: TaskSequenceStep| async move {
        pending::<()>().await;
        Ok(Value::Null)
    });
    registry
}

fn system() -> System {
    let system = System::embedded(TaskerConfig::default(), "test").expect("runtime starts");
    system.register_template(template(ORDERS)).expect("template registers");
    system.register_template(template(STUCK)).expect("template registers");
    system
}

fn dispatch() -> HandlerDispatchConfig {
    HandlerDispatchConfig { max_concurrent_handlers: 4, handler_timeout_ms: 10_000, ..HandlerDispatchConfig::default() }
}

fn create(system: &System, name: &str, context: Value) -> Uuid {
    let task = NewTask::new("shop", name, context);
    system.run_blocking(system.create_task(task), None).expect("not cancelled").expect("task created").task_uuid
}

fn wait(system: &System, task: &Uuid) -> TaskStatus {
    match system.wait_for_task_blocking(*task, PATIENCE, &|| false) {
        Ok(WaitOutcome::Finished(view)) => view.status,
        other => panic!("task {task} did not finish: {other:?}"),
    }
}

fn scrape(system: &System) -> Exposition {
    let text = system.run_blocking(system.metrics_text(), None).expect("not cancelled").expect("metrics encode");
    if std::env::var_os("SHOW_METRICS").is_some() {
        println!("{text}");
    }
    Exposition::parse(&text)
}

// ------------------------------------------------------------------ a parser of format 0.0.4

/// One sample line: `name{label="value",...} value`.
#[derive(Debug, Clone, PartialEq)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// A parsed exposition: its samples, and the `# TYPE` and `# HELP` of each family.
#[derive(Debug)]
struct Exposition {
    text: String,
    samples: Vec<Sample>,
    types: HashMap<String, String>,
    helps: HashMap<String, String>,
}

fn is_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Parses `{a="x",b="y"}` (the braces included) at the start of `text`; answers the labels
/// and the rest of the line.
fn parse_labels(text: &str, line: &str) -> (BTreeMap<String, String>, String) {
    let mut labels = BTreeMap::new();
    let mut rest = text.strip_prefix('{').unwrap_or_else(|| panic!("labels must open with {{: {line}"));
    loop {
        if let Some(after) = rest.strip_prefix('}') {
            return (labels, after.to_string());
        }
        let (name, after) = rest.split_once("=\"").unwrap_or_else(|| panic!("label without =\": {line}"));
        assert!(is_label_name(name), "bad label name {name:?} in {line}");
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next() {
                Some((_, '\\')) => match chars.next() {
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    Some((_, 'n')) => value.push('\n'),
                    other => panic!("bad escape {other:?} in {line}"),
                },
                Some((i, '"')) => break i,
                Some((_, c)) => value.push(c),
                None => panic!("unterminated label value in {line}"),
            }
        };
        assert!(labels.insert(name.to_string(), value).is_none(), "label {name} twice in {line}");
        rest = &after[end + 1..];
        rest = rest.strip_prefix(',').unwrap_or(rest);
    }
}

fn parse_value(text: &str, line: &str) -> f64 {
    match text {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        _ => text.parse().unwrap_or_else(|e| panic!("bad sample value {text:?} ({e}) in {line}")),
    }
}

/// The family a sample belongs to: histograms' `_bucket`, `_sum` and `_count` series
/// belong to the histogram's name.
fn family_of<'a>(name: &'a str, types: &HashMap<String, String>) -> &'a str {
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix) {
            if types.get(base).is_some_and(|t| t == "histogram") {
                return base;
            }
        }
    }
    name
}

impl Exposition {
    /// Parses and checks the grammar of every line: `# HELP name text`, `# TYPE name type`
    /// (once per family, before its samples), samples with valid names, labels and values,
    /// and each family's samples together.
    fn parse(text: &str) -> Self {
        assert!(text.ends_with('\n'), "the exposition ends with a newline");
        let mut exposition =
            Exposition { text: text.to_string(), samples: Vec::new(), types: HashMap::new(), helps: HashMap::new() };
        let mut finished_families: Vec<String> = Vec::new();
        let mut current: Option<String> = None;
        for line in text.lines() {
            assert!(!line.is_empty(), "no blank lines in the exposition");
            if let Some(rest) = line.strip_prefix("# ") {
                let (keyword, rest) = rest.split_once(' ').unwrap_or_else(|| panic!("bad comment line {line}"));
                let (name, value) = rest.split_once(' ').unwrap_or_else(|| panic!("bad {keyword} line {line}"));
                assert!(is_metric_name(name), "bad metric name in {line}");
                match keyword {
                    "HELP" => {
                        assert!(!value.ends_with(".."), "a HELP text ends in one period at most: {line}");
                        assert!(
                            exposition.helps.insert(name.to_string(), value.to_string()).is_none(),
                            "HELP twice: {line}"
                        )
                    }
                    "TYPE" => {
                        assert!(
                            ["counter", "gauge", "histogram", "summary", "untyped"].contains(&value),
                            "bad type in {line}"
                        );
                        assert!(
                            exposition.types.insert(name.to_string(), value.to_string()).is_none(),
                            "TYPE twice: {line}"
                        );
                    }
                    _ => panic!("unexpected comment {line}"),
                }
                continue;
            }
            let name_end = line.find(['{', ' ']).unwrap_or_else(|| panic!("sample without value: {line}"));
            let name = &line[..name_end];
            assert!(is_metric_name(name), "bad metric name {name:?} in {line}");
            let (labels, rest) = if line[name_end..].starts_with('{') {
                parse_labels(&line[name_end..], line)
            } else {
                (BTreeMap::new(), line[name_end..].to_string())
            };
            let value = rest.strip_prefix(' ').unwrap_or_else(|| panic!("no space before the value in {line}"));
            assert!(!value.contains(' '), "no timestamps are written: {line}");
            let family = family_of(name, &exposition.types).to_string();
            assert!(exposition.types.contains_key(&family), "sample before its # TYPE: {line}");
            if current.as_deref() != Some(family.as_str()) {
                assert!(!finished_families.contains(&family), "family {family} is split: {line}");
                if let Some(done) = current.replace(family.clone()) {
                    finished_families.push(done);
                }
            }
            exposition.samples.push(Sample { name: name.to_string(), labels, value: parse_value(value, line) });
        }
        for (name, kind) in &exposition.types {
            assert!(exposition.helps.contains_key(name), "family {name} has no HELP");
            if kind == "counter" {
                assert!(name.ends_with("_total"), "counter {name} must end in _total");
            }
        }
        exposition
    }

    /// The value of the one sample with this name and exactly these labels.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let wanted: BTreeMap<String, String> = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let found: Vec<&Sample> = self.samples.iter().filter(|s| s.name == name && s.labels == wanted).collect();
        match found.as_slice() {
            [one] => one.value,
            [] => panic!("no sample {name}{wanted:?} in\n{}", self.text),
            _ => panic!("sample {name}{wanted:?} appears {} times", found.len()),
        }
    }

    fn has(&self, name: &str) -> bool {
        self.samples.iter().any(|s| s.name == name)
    }

    /// Every sample of `name` whose labels include `labels`.
    fn matching(&self, name: &str, labels: &[(&str, &str)]) -> Vec<&Sample> {
        self.samples
            .iter()
            .filter(|s| s.name == name && labels.iter().all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v)))
            .collect()
    }

    /// The buckets of one histogram series, as (upper bound, cumulative count).
    fn buckets(&self, name: &str, labels: &[(&str, &str)]) -> Vec<(f64, f64)> {
        let mut buckets: Vec<(f64, f64)> = self
            .matching(&format!("{name}_bucket"), labels)
            .into_iter()
            .map(|s| (parse_value(&s.labels["le"], "le"), s.value))
            .collect();
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        buckets
    }
}

fn step(name: &str) -> [(&'static str, &str); 3] {
    [("namespace", "shop"), ("task", "orders"), ("step", name)]
}

fn attempts(exposition: &Exposition, step_name: &str, outcome: &str) -> f64 {
    let [ns, task, step] = step(step_name);
    exposition.value("tasker_step_attempts_total", &[ns, task, step, ("outcome", outcome)])
}

/// A histogram series is well formed: the buckets the constants name plus +Inf, counts
/// that never fall, +Inf equal to `_count`.
fn assert_histogram(exposition: &Exposition, name: &str, labels: &[(&str, &str)], bounds: &[f64], count: f64) {
    let buckets = exposition.buckets(name, labels);
    let mut expected_bounds: Vec<f64> = bounds.to_vec();
    expected_bounds.push(f64::INFINITY);
    assert_eq!(buckets.iter().map(|b| b.0).collect::<Vec<_>>(), expected_bounds, "{name}{labels:?} buckets");
    assert!(buckets.windows(2).all(|w| w[0].1 <= w[1].1), "{name}{labels:?}: cumulative counts fall: {buckets:?}");
    assert_eq!(buckets.last().map(|b| b.1), Some(count), "{name}{labels:?}: +Inf bucket");
    assert_eq!(exposition.value(&format!("{name}_count"), labels), count, "{name}{labels:?}: _count");
    assert!(exposition.value(&format!("{name}_sum"), labels) >= 0.0);
}

#[test]
fn counts_every_attempt_by_step_and_outcome_after_tasks_succeed_fail_retry_and_time_out() {
    let system = system();
    system.start_rust_worker(dispatch(), handlers()).expect("worker starts");
    let contexts = [
        json!({}),
        json!({}),
        json!({}),
        json!({ "flaky": true }),
        json!({ "flaky": true }),
        json!({ "bad": true }),
        json!({ "slow": true }),
    ];
    let tasks: Vec<Uuid> = contexts.iter().map(|c| create(&system, "orders", c.clone())).collect();
    let statuses: Vec<TaskStatus> = tasks.iter().map(|t| wait(&system, t)).collect();
    assert_eq!(
        statuses,
        [vec![TaskStatus::Complete; 5], vec![TaskStatus::Error; 2]].concat(),
        "three plain and two flaky tasks complete; the bad and the slow one fail"
    );

    // Counted once the batch is recorded: wait until the last attempt shows.
    eventually_blocking("the last attempt is counted", || attempts(&scrape(&system), "ship", "success") == 5.0);
    let running = scrape(&system);
    assert_eq!(running.value("tasker_worker_running", &[]), 1.0);
    assert_eq!(running.value("tasker_workers_alive", &[]), 1.0, "the store knows this worker");
    assert_eq!(running.value("tasker_store_up", &[]), 1.0);

    system.stop_worker(Duration::from_secs(1)).expect("a worker was running");
    let m = scrape(&system);

    assert_eq!(m.value("tasker_tasks_created_total", &[]), 7.0);
    assert_eq!(m.value("tasker_tasks_finished_total", &[("status", "complete")]), 5.0);
    assert_eq!(m.value("tasker_tasks_finished_total", &[("status", "error")]), 2.0);
    assert_eq!(m.value("tasker_tasks_finished_total", &[("status", "cancelled")]), 0.0);
    assert_eq!(m.value("tasker_steps_dispatched_total", &[]), 21.0, "7 validate + 8 charge + 6 ship");
    assert_eq!(m.value("tasker_step_retries_total", &[]), 2.0, "the two flaky charges");
    assert_eq!(m.value("tasker_stale_results_total", &[]), 0.0);

    let expected: [(&str, [f64; 5]); 3] = [
        // success, failure, timeout, worker_lost, worker_shutdown
        ("validate", [6.0, 1.0, 0.0, 0.0, 0.0]),
        ("charge", [6.0, 2.0, 0.0, 0.0, 0.0]),
        ("ship", [5.0, 0.0, 1.0, 0.0, 0.0]),
    ];
    for (step_name, counts) in expected {
        for (outcome, count) in OUTCOMES.iter().zip(counts) {
            assert_eq!(attempts(&m, step_name, outcome), count, "{step_name} {outcome}");
        }
    }
    assert_eq!(
        m.matching("tasker_step_attempts_total", &[("task", "orders")]).len(),
        15,
        "three steps, five outcomes each; no other label sets"
    );

    // Rust handlers report a duration for every attempt (the timed-out one too), and each
    // attempt started once: one queue wait each.
    for (step_name, attempts) in [("validate", 7.0), ("charge", 8.0), ("ship", 6.0)] {
        assert_histogram(&m, "tasker_step_duration_seconds", &step(step_name), &DURATION_BUCKETS, attempts);
        assert_histogram(&m, "tasker_step_queue_wait_seconds", &step(step_name), &QUEUE_WAIT_BUCKETS, attempts);
    }
    // The timed-out ship ran its full 50 ms deadline (never in a bucket below 50 ms), and
    // no handler of this workflow runs for a second.
    let ship = m.buckets("tasker_step_duration_seconds", &step("ship"));
    let at = |bound: f64| ship.iter().find(|b| b.0 == bound).map(|b| b.1).expect("bucket exists");
    assert!(at(0.025) <= 5.0, "the timed-out ship is not below 50 ms: {ship:?}");
    assert_eq!(at(1.0), 6.0);
    assert!(m.value("tasker_step_duration_seconds_sum", &step("ship")) >= 0.05);

    assert_eq!(m.value("tasker_worker_running", &[]), 0.0);
    assert_eq!(m.value("tasker_steps_in_flight", &[]), 0.0);
    assert_eq!(m.value("tasker_pending_events", &[]), 0.0);
    assert_eq!(m.value("tasker_workers_alive", &[]), 0.0, "a stopped worker leaves the store's list");
    assert_eq!(m.value("tasker_lost_worker_steps_total", &[]), 0.0);

    assert_eq!(m.types["tasker_step_attempts_total"], "counter");
    assert_eq!(m.types["tasker_tasks_finished_total"], "counter");
    assert_eq!(m.types["tasker_step_duration_seconds"], "histogram");
    assert_eq!(m.types["tasker_step_queue_wait_seconds"], "histogram");
    assert_eq!(m.types["tasker_steps_in_flight"], "gauge");
    assert_eq!(m.types["tasker_workers_alive"], "gauge");
    assert!(!m.text.contains(&tasks[0].to_string()), "no task uuid in any label");
}

#[test]
fn a_polling_loop_is_measured_from_the_poll_and_a_timed_out_event_counts_without_a_duration() {
    let system = system();
    system.register_template(template(POLLED)).expect("template registers");
    system.start_ffi_worker(dispatch(), 4).expect("worker starts");
    let channel = system.ffi_channel().expect("an FFI worker runs");
    let answered = create(&system, "polled", json!({}));
    let abandoned = create(&system, "polled", json!({}));
    let poll = || channel.poll_wait(PATIENCE, &|| false).expect("an event is dispatched");
    let first = poll();
    let second = poll();
    let (done, left) = if first.task_uuid == answered { (first, second) } else { (second, first) };
    assert_eq!(left.task_uuid, abandoned);
    assert!(channel.complete(done.event_id, tasker_worker::StepExecutionResult::success(json!("ok"))));
    assert_eq!(wait(&system, &answered), TaskStatus::Complete);
    assert_eq!(wait(&system, &abandoned), TaskStatus::Error, "the core fails the overdue event");

    system.stop_worker(Duration::from_secs(1)).expect("a worker was running");
    let m = scrape(&system);
    let labels = [("namespace", "shop"), ("task", "polled"), ("step", "answer")];
    let count = |outcome: &str| {
        let [ns, task, step] = labels;
        m.value("tasker_step_attempts_total", &[ns, task, step, ("outcome", outcome)])
    };
    assert_eq!((count("success"), count("timeout"), count("failure")), (1.0, 1.0, 0.0));
    assert_histogram(&m, "tasker_step_queue_wait_seconds", &labels, &QUEUE_WAIT_BUCKETS, 2.0);
    assert_histogram(&m, "tasker_step_duration_seconds", &labels, &DURATION_BUCKETS, 1.0);
    assert_eq!(m.value("tasker_tasks_finished_total", &[("status", "error")]), 1.0);
}

#[test]
fn a_stopping_worker_counts_the_attempt_it_cut_short_as_worker_shutdown() {
    let system = system();
    system.start_rust_worker(dispatch(), handlers()).expect("worker starts");
    let task = create(&system, "stuck", json!({}));
    eventually_blocking("the handler is running", || scrape(&system).value("tasker_steps_in_flight", &[]) == 1.0);

    let report = system.stop_worker(Duration::from_millis(50)).expect("a worker was running");
    assert_eq!(report.unfinished_reported, 1);
    let m = scrape(&system);
    let labels = [("namespace", "shop"), ("task", "stuck"), ("step", "wait_forever")];
    let count = |outcome: &str| {
        let [ns, task, step] = labels;
        m.value("tasker_step_attempts_total", &[ns, task, step, ("outcome", outcome)])
    };
    assert_eq!(count("worker_shutdown"), 1.0);
    assert_eq!(count("success") + count("failure") + count("timeout") + count("worker_lost"), 0.0);
    assert_eq!(m.value("tasker_step_queue_wait_seconds_count", &labels), 1.0);
    assert_eq!(m.value("tasker_tasks_finished_total", &[("status", "complete")]), 0.0);
    let view = system.run_blocking(system.task_status(task), None).expect("not cancelled").expect("readable");
    assert_eq!(view.steps[0].status, StepStatus::Enqueued, "requeued for the next worker");
}

#[test]
fn a_fresh_system_exposes_its_counters_at_zero_and_no_step_series() {
    let system = system();
    let m = scrape(&system);
    assert_eq!(m.value("tasker_tasks_created_total", &[]), 0.0);
    assert_eq!(m.value("tasker_worker_running", &[]), 0.0);
    assert!(!m.has("tasker_step_attempts_total"), "step series appear with a step's first attempt");
    assert!(!m.has("tasker_step_duration_seconds_count"));
    assert_eq!(METRICS_CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8");
}
