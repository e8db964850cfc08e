//! Templates in upstream tasker-core's format: every upstream key is accepted and
//! type-checked, unknown keys are still errors naming file, line and key, the running
//! environment's overrides are applied, `retry.backoff` picks the delay shape,
//! `max_attempts: 0` is one attempt, `input_schema` is compiled and enforced, and the
//! compiled template survives a serde round trip.

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::json;
use tasker_worker::{
    compile, compile_for, parse_yaml, BackoffShape, InputSchemaMode, MemoryLimits, MemoryStore, NewTask,
    OrchestrationConfig, RetryDefaults, StoreError, TaskStore, TemplateError, TemplateRegistry, WorkflowTemplate,
};

const FILE: &str = "templates/refunds.yaml";

/// An upstream-style template written for these tests: documentation data, an input
/// schema, a null `system_dependency`, several backoff shapes and `test` overrides.
const REFUNDS: &str = r#"---
name: refund_flow
namespace_name: payments
version: 2.1.0
description: "Check a refund, pay it out, tell the customer"
metadata:
  author: Payments Team
  tags:
    - namespace:payments
    - pattern:linear
  documentation_url:
  created_at: "2026-01-05T00:00:00Z"
  updated_at: "2026-01-06T00:00:00Z"
  notes: "written for the compatibility tests"
task_handler:
  callable: Payments::RefundFlowHandler
  initialization:
    audit: true
system_dependencies:
  primary: ledger
  secondary: [mailer]
domain_events:
  - name: refund_paid
    description: "a refund left the building"
    schema:
      type: object
      required: [refund_id]
input_schema:
  type: object
  required: [refund_id, amount_cents]
  properties:
    refund_id:
      type: string
    amount_cents:
      type: integer
      minimum: 1
steps:
  - name: check_refund
    description: "Is the refund allowed?"
    handler:
      callable: Payments::CheckRefundHandler
      initialization:
        limit_cents: 50000
    system_dependency:
    dependencies: []
    retry:
      retryable: true
      max_attempts: 3
      backoff: linear
      backoff_base_ms: 200
      max_backoff_ms: 2000
    timeout_seconds: 30
    publishes_events: []
  - name: pay_out
    handler:
      callable: Payments::PayOutHandler
    system_dependency: ledger
    dependencies: [check_refund]
    retry:
      retryable: true
      max_attempts: 0
      backoff: fibonacci
      backoff_base_ms: 100
      max_backoff_ms: 1000
    timeout_seconds: 60
    publishes_events: [refund_paid]
  - name: notify_customer
    handler:
      callable: Payments::NotifyCustomerHandler
    dependencies: [pay_out]
    retry:
      backoff: none
environments:
  test:
    steps:
      - name: check_refund
        timeout_seconds: 5
        retry:
          max_attempts: 2
      - name: ALL
        handler:
          initialization:
            sandbox: true
  production:
    steps:
      - name: pay_out
        timeout_seconds: 120
"#;

fn file() -> PathBuf {
    PathBuf::from(FILE)
}

fn compiled(yaml: &str, environment: Option<&str>) -> Result<WorkflowTemplate, TemplateError> {
    compile_for(parse_yaml(yaml, Some(&file()))?, &RetryDefaults::default(), Some(file()), environment)
}

fn error_of(yaml: &str) -> String {
    match compiled(yaml, Some("test")) {
        Ok(t) => panic!("expected an error, compiled {}/{}", t.namespace, t.name),
        Err(e) => e.to_string(),
    }
}

fn assert_mentions(message: &str, parts: &[&str]) {
    for part in parts {
        assert!(message.contains(part), "expected {part:?} in:\n{message}");
    }
}

/// REFUNDS with `from` replaced by `to` (which must be there once).
fn with(from: &str, to: &str) -> String {
    assert_eq!(REFUNDS.matches(from).count(), 1, "{from:?} must occur once");
    REFUNDS.replacen(from, to, 1)
}

#[test]
fn an_upstream_template_compiles_and_keeps_what_it_does_not_run() {
    let t = compiled(REFUNDS, None).unwrap();
    assert_eq!((t.namespace.as_str(), t.name.as_str(), t.version.as_str()), ("payments", "refund_flow", "2.1.0"));
    assert_eq!(t.description.as_deref(), Some("Check a refund, pay it out, tell the customer"));
    let metadata = t.metadata.as_ref().unwrap();
    assert_eq!(metadata.author.as_deref(), Some("Payments Team"));
    assert_eq!(metadata.tags, vec!["namespace:payments", "pattern:linear"]);
    assert_eq!(metadata.documentation_url, None);
    assert_eq!(metadata.notes.as_deref(), Some("written for the compatibility tests"));
    let systems = t.system_dependencies.as_ref().unwrap();
    assert_eq!((systems.primary.as_deref(), systems.secondary.clone()), (Some("ledger"), vec!["mailer".to_string()]));
    assert_eq!(t.domain_events.len(), 1);
    assert_eq!(t.domain_events[0].name, "refund_paid");
    assert_eq!(t.domain_events[0].schema, Some(json!({"type": "object", "required": ["refund_id"]})));
    assert_eq!(t.task_handler.as_ref().unwrap().callable, "Payments::RefundFlowHandler");
    assert_eq!(t.steps[0].system_dependency, None, "an empty system_dependency is null");
    assert_eq!(t.steps[1].system_dependency.as_deref(), Some("ledger"));
    assert_eq!(t.steps[1].publishes_events, vec!["refund_paid"]);
    assert_eq!(t.steps[0].description.as_deref(), Some("Is the refund allowed?"));
    assert_eq!(t.environment, None);
}

#[test]
fn backoff_names_the_delay_shape_and_exponential_is_the_default() {
    let t = compiled(REFUNDS, None).unwrap();
    assert_eq!(t.steps[0].retry.backoff, BackoffShape::Linear);
    assert_eq!(t.steps[1].retry.backoff, BackoffShape::Fibonacci);
    assert_eq!(t.steps[2].retry.backoff, BackoffShape::None);
    let plain = compiled(&with("    retry:\n      backoff: none\n", ""), None).unwrap();
    assert_eq!(plain.steps[2].retry.backoff, BackoffShape::Exponential);
}

#[test]
fn an_unknown_backoff_shape_is_an_error_listing_the_known_ones() {
    let msg = error_of(&with("backoff: linear", "backoff: quadratic"));
    assert_mentions(&msg, &[FILE, "steps[0].retry.backoff", "quadratic", "none", "linear", "exponential", "fibonacci"]);
}

#[test]
fn max_attempts_zero_is_one_attempt() {
    let t = compiled(REFUNDS, None).unwrap();
    assert_eq!(t.steps[1].retry.max_attempts, 1);
}

#[test]
fn the_running_environment_overrides_are_applied_and_others_are_not() {
    let plain = compiled(REFUNDS, None).unwrap();
    assert_eq!(plain.steps[0].timeout_seconds, Some(30.0));
    assert_eq!(plain.steps[0].retry.max_attempts, 3);
    assert_eq!(plain.steps[0].handler.initialization, Some(json!({"limit_cents": 50000})));

    let test = compiled(REFUNDS, Some("test")).unwrap();
    assert_eq!(test.environment.as_deref(), Some("test"));
    assert_eq!(test.steps[0].timeout_seconds, Some(5.0));
    assert_eq!(test.steps[0].retry.max_attempts, 2);
    // Fields the override does not set keep the step's values.
    assert_eq!(test.steps[0].retry.backoff, BackoffShape::Linear);
    assert_eq!(test.steps[0].retry.backoff_base_ms, 200);
    // `ALL` reaches every step.
    for step in &test.steps {
        assert_eq!(step.handler.initialization, Some(json!({"sandbox": true})), "{}", step.name);
    }
    assert_eq!(test.steps[1].timeout_seconds, Some(60.0), "production's override is not applied in test");

    let production = compiled(REFUNDS, Some("production")).unwrap();
    assert_eq!(production.steps[1].timeout_seconds, Some(120.0));
    let staging = compiled(REFUNDS, Some("staging")).unwrap();
    assert_eq!(staging.environment, None);
    assert_eq!(staging.steps[1].timeout_seconds, Some(60.0));
}

#[test]
fn an_override_of_an_unknown_step_names_environment_step_and_known_steps() {
    let msg = error_of(&with(
        "      - name: check_refund\n        timeout_seconds: 5",
        "      - name: chek_refund\n        timeout_seconds: 5",
    ));
    assert_mentions(
        &msg,
        &[FILE, "environments.test.steps[0].name", "chek_refund", "check_refund, pay_out, notify_customer"],
    );
}

#[test]
fn overridden_values_are_checked_like_written_ones() {
    let msg = error_of(&with("        timeout_seconds: 5\n", "        timeout_seconds: -5\n"));
    assert_mentions(&msg, &[FILE, "step \"check_refund\"", "timeout_seconds", "got -5"]);
}

#[test]
fn unknown_keys_anywhere_are_errors_naming_file_line_and_key() {
    let cases = [
        ("  notes: \"written", "  nots: \"written", "metadata.nots", "nots"),
        ("  primary: ledger", "  primry: ledger", "system_dependencies.primry", "primry"),
        ("    description: \"a refund", "    desc: \"a refund", "domain_events[0].desc", "desc"),
        ("    publishes_events: [refund_paid]", "    publishes: [refund_paid]", "steps[1].publishes", "publishes"),
        ("      backoff: fibonacci", "      backof: fibonacci", "steps[1].retry.backof", "backof"),
        ("        timeout_seconds: 120", "        timeout: 120", "environments.production.steps[0].timeout", "timeout"),
        (
            "          max_attempts: 2",
            "          max_attempt: 2",
            "environments.test.steps[0].retry.max_attempt",
            "max_attempt",
        ),
    ];
    for (from, to, key, bad) in cases {
        let yaml = with(from, to);
        let line = yaml.lines().position(|l| l.contains(to.trim_start())).unwrap() + 1;
        let msg = error_of(&yaml);
        assert_mentions(&msg, &[&format!("{FILE}:{line}:"), key, &format!("unknown field `{bad}`")]);
    }
}

#[test]
fn wrong_types_of_upstream_keys_are_errors() {
    for (from, to, key) in [
        ("    - pattern:linear", "    - 7: x", "metadata.tags[1]"),
        ("  secondary: [mailer]", "  secondary: mailer", "system_dependencies.secondary"),
        ("    publishes_events: [refund_paid]", "    publishes_events: refund_paid", "steps[1].publishes_events"),
        ("    system_dependency: ledger", "    system_dependency: [ledger]", "steps[1].system_dependency"),
    ] {
        let msg = error_of(&with(from, to));
        assert_mentions(&msg, &[FILE, key]);
    }
}

#[test]
fn an_invalid_input_schema_is_a_template_error() {
    let msg = error_of(&with("      type: integer\n      minimum: 1", "      type: whole_number\n      minimum: 1"));
    assert_mentions(&msg, &[FILE, "template payments/refund_flow@2.1.0", "input_schema", "not a usable JSON Schema"]);
}

#[test]
fn the_input_schema_checks_contexts_naming_path_and_rule() {
    let t = compiled(REFUNDS, None).unwrap();
    assert_eq!(t.check_context(&json!({"refund_id": "r-1", "amount_cents": 250})), Ok(()));
    let err = t.check_context(&json!({"refund_id": 7, "amount_cents": 0})).unwrap_err();
    let text = err.to_string();
    assert_mentions(&text, &["at /refund_id (rule `type`)", "at /amount_cents (rule `minimum`)"]);
    let missing = t.check_context(&json!({"refund_id": "r-1"})).unwrap_err().to_string();
    assert_mentions(&missing, &["at / (rule `required`)", "amount_cents"]);
}

async fn store_with(template: WorkflowTemplate) -> MemoryStore {
    let store = MemoryStore::new(MemoryLimits::default());
    store.register_templates(vec![Arc::new(template)]).await.unwrap();
    store
}

fn refund(context: serde_json::Value) -> NewTask {
    NewTask::new("payments", "refund_flow", context)
}

#[tokio::test]
async fn create_task_enforces_the_input_schema_and_creates_nothing_on_refusal() {
    let store = store_with(compiled(REFUNDS, None).unwrap()).await;
    let err = store.create_task(refund(json!({"refund_id": "r-1", "amount_cents": -3}))).await.unwrap_err();
    assert!(matches!(err, StoreError::InvalidContext(_)), "{err:?}");
    assert_mentions(&err.to_string(), &["payments/refund_flow@2.1.0", "/amount_cents", "minimum"]);
    assert!(store.list_tasks(Default::default()).await.unwrap().is_empty());
    let created = store.create_task(refund(json!({"refund_id": "r-1", "amount_cents": 3}))).await.unwrap();
    assert_eq!(store.task_status(created.task_uuid).await.unwrap().steps.len(), 3);
}

#[tokio::test]
async fn input_schema_warn_mode_creates_the_task_anyway() {
    let mut template = compiled(REFUNDS, None).unwrap();
    template.input_schema_mode = InputSchemaMode::Warn;
    let store = store_with(template).await;
    let created = store.create_task(refund(json!({"refund": "not the schema's keys"}))).await.unwrap();
    assert_eq!(store.task_status(created.task_uuid).await.unwrap().steps.len(), 3);
}

#[test]
fn ancestors_beyond_parents_are_precomputed() {
    let t = compiled(REFUNDS, None).unwrap();
    assert_eq!(t.ancestors, vec![vec![], vec![], vec![0]]);
}

#[test]
fn the_compiled_template_round_trips_through_serde_json() {
    let original = compiled(REFUNDS, Some("test")).unwrap();
    let text = serde_json::to_string(&original).unwrap();
    let back: WorkflowTemplate = serde_json::from_str(&text).unwrap();
    assert_eq!(serde_json::to_value(&back).unwrap(), serde_json::to_value(&original).unwrap());
    assert_eq!(back.version_key, original.version_key);
    assert_eq!(back.steps, original.steps);
    assert_eq!(back.dependencies, original.dependencies);
    assert_eq!(back.dependents, original.dependents);
    assert_eq!(back.ancestors, original.ancestors);
    assert_eq!(back.steps[0].retry.jitter, RetryDefaults::default().jitter);
    assert_eq!(back.environment.as_deref(), Some("test"));
    // The schema is compiled again and still enforced.
    assert!(back.check_context(&json!({"refund_id": "r"})).is_err());
    assert!(back.check_context(&json!({"refund_id": "r", "amount_cents": 1})).is_ok());
}

#[test]
fn the_summary_shows_documentation_data_and_effective_step_policies() {
    let t = compiled(REFUNDS, Some("test")).unwrap();
    let summary = t.summary();
    assert_eq!(summary["namespace"], "payments");
    assert_eq!(summary["metadata"]["author"], "Payments Team");
    assert_eq!(summary["system_dependencies"]["secondary"], json!(["mailer"]));
    assert_eq!(summary["domain_events"][0]["name"], "refund_paid");
    assert_eq!(summary["input_schema"]["required"], json!(["refund_id", "amount_cents"]));
    assert_eq!(summary["task_handler"]["callable"], "Payments::RefundFlowHandler");
    assert_eq!(summary["environment"], "test");
    assert_eq!(summary["source"], FILE);
    let pay_out = &summary["steps"][1];
    assert_eq!(pay_out["publishes_events"], json!(["refund_paid"]));
    assert_eq!(pay_out["system_dependency"], "ledger");
    assert_eq!(pay_out["retry"]["backoff"], "fibonacci");
    assert_eq!(pay_out["retry"]["max_attempts"], 1);
    assert_eq!(pay_out["dependencies"], json!(["check_refund"]));
    assert_eq!(summary["steps"][0]["timeout_seconds"], 5.0);
}

#[test]
fn the_registry_applies_the_environment_when_loading_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("refunds.yaml"), REFUNDS).unwrap();
    let mut registry = TemplateRegistry::new();
    registry.load_dir_for(dir.path(), &RetryDefaults::default(), Some("test")).unwrap();
    let t = registry.find("payments", "refund_flow", None).unwrap();
    assert_eq!(t.steps[0].timeout_seconds, Some(5.0));
    let mut plain = TemplateRegistry::new();
    plain.load_dir(dir.path(), &RetryDefaults::default()).unwrap();
    assert_eq!(plain.find("payments", "refund_flow", None).unwrap().steps[0].timeout_seconds, Some(30.0));
}

#[test]
fn compile_without_environment_is_compile_for_none() {
    let a = compile(parse_yaml(REFUNDS, None).unwrap(), &RetryDefaults::default(), None).unwrap();
    let b = compile_for(parse_yaml(REFUNDS, None).unwrap(), &RetryDefaults::default(), None, None).unwrap();
    assert_eq!(serde_json::to_value(&a).unwrap(), serde_json::to_value(&b).unwrap());
}

#[test]
fn input_schema_mode_is_read_from_config_and_rejects_unknown_values() {
    let ok: OrchestrationConfig = toml::from_str("input_schema = \"warn\"").unwrap();
    assert_eq!(ok.input_schema, InputSchemaMode::Warn);
    assert_eq!(OrchestrationConfig::default().input_schema, InputSchemaMode::Enforce);
    let err = toml::from_str::<OrchestrationConfig>("input_schema = \"ignore\"").unwrap_err().to_string();
    assert!(err.contains("enforce") && err.contains("warn"), "{err}");
}
