//! The recording rules of the metrics, fed by hand-made results and outcomes: which
//! outcome word each result gets, which bucket a duration or a wait lands in, what is
//! skipped, how labels are escaped, and that a step definition shared by two templates
//! does not mix their series.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde_json::json;
use uuid::Uuid;

use super::*;
use crate::config::RetryDefaults;
use crate::messages::{
    error_types, StepExecutionError, StepExecutionEvent, StepExecutionResult, TaskInfo, TaskSequenceStep,
    WorkflowStepInfo,
};
use crate::rules::AttemptDecision;
use crate::store::{RecordOutcome, RecordedStep, TaskStatus};
use crate::template::{compile, parse_yaml, WorkflowTemplate};

fn template(namespace: &str, name: &str, step: &str) -> Arc<WorkflowTemplate> {
    let yaml = format!(
        "name: {name}\nnamespace_name: {namespace}\nversion: 1.0.0\nsteps:\n  - name: {step}\n    handler: {{ callable: X }}\n"
    );
    let parsed = parse_yaml(&yaml, None).expect("test template parses");
    Arc::new(compile(parsed, &RetryDefaults::default(), None).expect("test template compiles"))
}

fn recorded(template: &Arc<WorkflowTemplate>) -> RecordOutcome {
    RecordOutcome::Recorded {
        decision: AttemptDecision::Complete,
        finished: Some(TaskStatus::Complete),
        step: RecordedStep { template: Arc::clone(template), index: 0 },
    }
}

fn success_in(ms: u64) -> StepExecutionResult {
    let mut result = StepExecutionResult::success(json!(1));
    result.metadata.execution_time_ms = Some(ms);
    result
}

fn failure(error_type: &str) -> StepExecutionResult {
    StepExecutionResult::failure(StepExecutionError::new("boom", error_type, true))
}

fn event(template: &Arc<WorkflowTemplate>, ready_at: Option<SystemTime>) -> StepExecutionEvent {
    let definition = Arc::clone(&template.steps[0]);
    StepExecutionEvent {
        event_id: Uuid::new_v4(),
        task_uuid: Uuid::new_v4(),
        step_uuid: Uuid::new_v4(),
        correlation_id: Uuid::new_v4(),
        trace_id: None,
        span_id: None,
        timeout: Duration::from_secs(1),
        ready_at,
        payload: TaskSequenceStep {
            task: TaskInfo {
                task_uuid: Uuid::new_v4(),
                namespace: template.namespace.clone(),
                name: template.name.clone(),
                version: template.version.clone(),
                context: Arc::new(json!({})),
            },
            workflow_step: WorkflowStepInfo {
                step_uuid: Uuid::new_v4(),
                name: definition.name.clone(),
                attempts: 1,
                max_attempts: 3,
                retryable: true,
                inputs: Arc::new(json!({})),
            },
            dependency_results: BTreeMap::new(),
            ancestor_results: BTreeMap::new(),
            step_definition: definition,
        },
    }
}

fn exposition() -> (Metrics, Arc<StepMetrics>) {
    let metrics = Metrics::new(Arc::new(crate::worker::counters::PipelineCounters::default()));
    let steps = Arc::clone(metrics.steps());
    (metrics, steps)
}

fn text(metrics: &Metrics) -> String {
    metrics.encode(LiveFigures::default()).expect("encodes")
}

/// The lines of `text` for `series`, with the label block given exactly.
fn line_value(text: &str, series: &str) -> Option<String> {
    text.lines().find_map(|line| line.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')).map(str::to_string))
}

#[test]
fn each_result_gets_the_outcome_word_of_the_attempt_rules() {
    let cases = [
        (StepExecutionResult::success(json!(1)), "success"),
        (failure("SomethingBroke"), "failure"),
        (failure(error_types::HANDLER_PANIC), "failure"),
        (failure(error_types::HANDLER_TIMEOUT), "timeout"),
        (failure(error_types::WORKER_LOST), "worker_lost"),
        (failure(error_types::WORKER_SHUTDOWN), "worker_shutdown"),
    ];
    for (result, word) in cases {
        assert_eq!(AttemptFacts::of(&result).outcome(), word, "{result:?}");
    }
    assert_eq!(AttemptFacts::of(&success_in(42)).duration(), Some(Duration::from_millis(42)));
    assert_eq!(AttemptFacts::of(&failure("x")).duration(), None, "no duration reported, none observed");
}

#[test]
fn durations_land_in_their_buckets_and_stale_results_are_not_attempts() {
    let (metrics, steps) = exposition();
    let t = template("shop", "orders", "charge");
    let batch = [success_in(3), success_in(40), success_in(2000), failure("Declined"), success_in(1)];
    let facts: Vec<AttemptFacts> = batch.iter().map(AttemptFacts::of).collect();
    let outcomes = [recorded(&t), recorded(&t), recorded(&t), recorded(&t), RecordOutcome::Stale];
    steps.observe_recorded(&facts, &outcomes);

    let text = text(&metrics);
    let labels = r#"namespace="shop",task="orders",step="charge""#;
    let bucket = |le: &str| line_value(&text, &format!("tasker_step_duration_seconds_bucket{{{labels},le=\"{le}\"}}"));
    let expected =
        [("0.001", "0"), ("0.0025", "0"), ("0.005", "1"), ("0.025", "1"), ("0.05", "2"), ("1", "2"), ("2.5", "3")];
    for (le, count) in expected {
        assert_eq!(bucket(le).as_deref(), Some(count), "le={le}\n{text}");
    }
    assert_eq!(bucket("+Inf").as_deref(), Some("3"), "the failure reported no duration; the stale one is skipped");
    assert_eq!(line_value(&text, &format!("tasker_step_duration_seconds_sum{{{labels}}}")).as_deref(), Some("2.043"));
    let attempts =
        |outcome: &str| line_value(&text, &format!("tasker_step_attempts_total{{{labels},outcome=\"{outcome}\"}}"));
    assert_eq!(attempts("success").as_deref(), Some("3"));
    assert_eq!(attempts("failure").as_deref(), Some("1"));
    for outcome in ["timeout", "worker_lost", "worker_shutdown"] {
        assert_eq!(attempts(outcome).as_deref(), Some("0"), "every outcome of a step starts at zero");
    }
}

#[test]
fn queue_wait_is_measured_from_ready_at_and_skipped_without_one_or_across_skewed_clocks() {
    let (metrics, steps) = exposition();
    let t = template("shop", "orders", "ship");
    let handed_at = SystemTime::now();
    steps.observe_queue_wait(&event(&t, Some(handed_at - Duration::from_micros(300))), handed_at);
    steps.observe_queue_wait(&event(&t, Some(handed_at - Duration::from_secs(3))), handed_at);
    steps.observe_queue_wait(&event(&t, None), handed_at);
    steps.observe_queue_wait(&event(&t, Some(handed_at + Duration::from_secs(1))), handed_at);

    let text = text(&metrics);
    let labels = r#"namespace="shop",task="orders",step="ship""#;
    let bucket =
        |le: &str| line_value(&text, &format!("tasker_step_queue_wait_seconds_bucket{{{labels},le=\"{le}\"}}"));
    assert_eq!(bucket("0.00025").as_deref(), Some("0"));
    assert_eq!(bucket("0.0005").as_deref(), Some("1"));
    assert_eq!(bucket("2.5").as_deref(), Some("1"));
    assert_eq!(bucket("5").as_deref(), Some("2"));
    assert_eq!(line_value(&text, &format!("tasker_step_queue_wait_seconds_count{{{labels}}}")).as_deref(), Some("2"));
}

#[test]
fn a_definition_shared_by_two_templates_keeps_their_series_apart() {
    let (metrics, steps) = exposition();
    let first = template("shop", "orders", "charge");
    let mut renamed = WorkflowTemplate::clone(&first);
    renamed.name = "refunds".to_string();
    let second = Arc::new(renamed);
    assert!(Arc::ptr_eq(&first.steps[0], &second.steps[0]), "the clone shares the step definition");

    let facts = [AttemptFacts::of(&success_in(1))];
    for _ in 0..2 {
        steps.observe_recorded(&facts, &[recorded(&first)]);
    }
    steps.observe_recorded(&facts, &[recorded(&second)]);
    steps.observe_recorded(&facts, &[recorded(&first)]);

    let text = text(&metrics);
    let count = |task: &str| {
        line_value(
            &text,
            &format!(r#"tasker_step_attempts_total{{namespace="shop",task="{task}",step="charge",outcome="success"}}"#),
        )
    };
    assert_eq!(count("orders").as_deref(), Some("3"));
    assert_eq!(count("refunds").as_deref(), Some("1"));
}

#[test]
fn label_values_are_escaped_as_the_text_format_requires() {
    let (metrics, steps) = exposition();
    let t = template("shop", "orders", r#"'say "hi" \ now'"#);
    assert_eq!(t.steps[0].name, r#"say "hi" \ now"#);
    steps.observe_recorded(&[AttemptFacts::of(&success_in(1))], &[recorded(&t)]);

    let text = text(&metrics);
    assert!(
        text.contains(r#"step="say \"hi\" \\ now",outcome="success"} 1"#),
        "quotes and backslashes are escaped:\n{text}"
    );
}

#[test]
fn the_gauges_show_the_live_figures_and_leave_out_what_the_store_did_not_answer() {
    let (metrics, _) = exposition();
    let live = LiveFigures {
        worker_running: true,
        steps_in_flight: 7,
        pending_events: 5,
        waiting_in_dispatch: 2,
        workers_alive: Some(3),
    };
    let text = metrics.encode(live).expect("encodes");
    for (series, value) in [
        ("tasker_worker_running", "1"),
        ("tasker_steps_in_flight", "7"),
        ("tasker_pending_events", "5"),
        ("tasker_steps_waiting_in_dispatch", "2"),
        ("tasker_store_up", "1"),
        ("tasker_workers_alive", "3"),
    ] {
        assert_eq!(line_value(&text, series).as_deref(), Some(value), "{series}\n{text}");
    }
    let text = metrics.encode(LiveFigures { workers_alive: None, ..live }).expect("encodes");
    assert_eq!(line_value(&text, "tasker_store_up").as_deref(), Some("0"));
    assert!(!text.contains("tasker_workers_alive"), "no made-up value when the store did not answer");
}

#[test]
fn steps_failed_as_worker_lost_by_maintenance_are_counted() {
    let (metrics, _) = exposition();
    metrics.lost_worker_steps(4);
    metrics.lost_worker_steps(0);
    assert_eq!(line_value(&text(&metrics), "tasker_lost_worker_steps_total").as_deref(), Some("4"));
}
