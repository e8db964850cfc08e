//! Task templates: the YAML a user writes (`TaskTemplate`), and the checked, compiled
//! form the orchestrator runs (`WorkflowTemplate`, one `StepDefinition` per step with its
//! dependency indices and effective retry policy).
//!
//! The written form is the one upstream tasker-core uses (`metadata`,
//! `system_dependencies`, `domain_events`, `input_schema`, `environments`, step
//! `system_dependency` and `publishes_events`, `retry.backoff`), read strictly: every key
//! is known and type-checked, and an unknown one is an error naming file, line and key.
//!
//! `validate` turns a `TaskTemplate` into a `WorkflowTemplate` or says what is wrong;
//! `environment` applies the running environment's step overrides; `input_schema` checks
//! a task's context against the template's JSON Schema; `backoff_shape` computes the
//! delay curve a step's `retry.backoff` names; `registry` loads a directory of templates
//! and finds them by namespace, name, version.

pub mod backoff_shape;
pub mod environment;
pub mod input_schema;
pub mod registry;
pub mod validate;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use backoff_shape::BackoffShape;
pub use environment::{EnvironmentOverride, HandlerOverride, StepOverride};
pub use input_schema::{ContextError, InputSchema, Violation};
pub use registry::TemplateRegistry;
pub use validate::{
    compile, compile_for, parse_yaml, template_id, ErrorContext, Problem, TemplateError, MAX_ATTEMPTS_LIMIT,
    MAX_BACKOFF_LIMIT_MS, MAX_TIMEOUT_SECONDS,
};

/// A task template as written in YAML.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskTemplate {
    pub name: String,
    pub namespace_name: String,
    pub version: String,
    #[serde(default)]
    pub description: Option<String>,
    /// Documentation and discovery data; kept and shown, never used to run the task.
    #[serde(default)]
    pub metadata: Option<TemplateMetadata>,
    /// Upstream's task-level handler. Steps are orchestrated by the core, so it is only
    /// kept and shown (never called).
    #[serde(default)]
    pub task_handler: Option<HandlerSpec>,
    /// External systems the task talks to; kept and shown.
    #[serde(default)]
    pub system_dependencies: Option<SystemDependencies>,
    /// Events the task's steps may publish; kept and shown.
    #[serde(default)]
    pub domain_events: Vec<DomainEventDefinition>,
    /// A JSON Schema every task context must match at `create_task`.
    #[serde(default)]
    pub input_schema: Option<Value>,
    /// At most this many steps of this template's tasks run at once, across every worker.
    #[serde(default)]
    pub max_in_flight: Option<u32>,
    pub steps: Vec<StepTemplate>,
    /// Per-environment step overrides; only the running environment's are applied.
    #[serde(default)]
    pub environments: BTreeMap<String, EnvironmentOverride>,
}

/// A template's documentation data (upstream's `metadata`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateMetadata {
    #[serde(default)]
    pub author: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub documentation_url: Option<String>,
    #[serde(default)]
    pub created_at: Option<String>,
    #[serde(default)]
    pub updated_at: Option<String>,
    #[serde(default)]
    pub notes: Option<String>,
}

/// The external systems a task uses (upstream's `system_dependencies`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SystemDependencies {
    #[serde(default)]
    pub primary: Option<String>,
    #[serde(default)]
    pub secondary: Vec<String>,
}

/// An event a task's steps may publish (one entry of upstream's `domain_events`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DomainEventDefinition {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// A JSON Schema of the event's payload; kept and shown.
    #[serde(default)]
    pub schema: Option<Value>,
}

/// One step as written in YAML.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepTemplate {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    pub handler: HandlerSpec,
    /// The system this step talks to (may be written empty, which is null).
    #[serde(default)]
    pub system_dependency: Option<String>,
    #[serde(default)]
    pub dependencies: Vec<String>,
    #[serde(default)]
    pub retry: Option<RetrySpec>,
    #[serde(default)]
    pub timeout_seconds: Option<f64>,
    /// Static inputs handed to the handler as `context.inputs`.
    #[serde(default)]
    pub inputs: Option<Value>,
    /// Names of the domain events this step publishes; kept and shown.
    #[serde(default)]
    pub publishes_events: Vec<String>,
}

/// Which handler runs a step: a Ruby constant name or a Rust handler name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HandlerSpec {
    pub callable: String,
    /// Free-form options handed to the handler's constructor.
    #[serde(default)]
    pub initialization: Option<Value>,
}

/// A step's retry policy as written; unset fields take `[orchestration.default_retry]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetrySpec {
    #[serde(default)]
    pub retryable: Option<bool>,
    /// Attempts in total, the first included; `0` is read as one attempt, as upstream does.
    #[serde(default)]
    pub max_attempts: Option<u32>,
    /// The delay curve between attempts (`exponential` when unset).
    #[serde(default)]
    pub backoff: Option<BackoffShape>,
    #[serde(default)]
    pub backoff_base_ms: Option<u64>,
    #[serde(default)]
    pub max_backoff_ms: Option<u64>,
}

/// A step's effective retry policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetryPolicy {
    pub retryable: bool,
    pub max_attempts: u32,
    /// How the delay grows from `backoff_base_ms` with each failed attempt.
    #[serde(default)]
    pub backoff: BackoffShape,
    pub backoff_base_ms: u64,
    pub max_backoff_ms: u64,
    /// Fraction of the backoff added or removed at random.
    #[serde(default)]
    pub jitter: f64,
}

/// A checked step, as handed to handlers (`step_definition`) and used by the orchestrator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepDefinition {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    pub handler: HandlerSpec,
    pub dependencies: Vec<String>,
    pub retry: RetryPolicy,
    pub timeout_seconds: Option<f64>,
    pub inputs: Arc<Value>,
    /// Kept from the template for readers (`TaskerCore.templates`); not used to run.
    #[serde(default)]
    pub system_dependency: Option<String>,
    /// Kept from the template for readers; not used to run.
    #[serde(default)]
    pub publishes_events: Vec<String>,
}

impl StepDefinition {
    /// The deadline of one attempt: the step's `timeout_seconds`, else the worker default.
    pub fn timeout(&self, default: Duration) -> Duration {
        match self.timeout_seconds {
            Some(secs) if secs.is_finite() && secs > 0.0 => Duration::from_secs_f64(secs),
            _ => default,
        }
    }
}

/// A checked template: steps in file order with their dependency graph as indices.
///
/// Serializable both ways, so a store can persist the compiled form (its input schema is
/// compiled again when read back).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkflowTemplate {
    pub name: String,
    pub namespace: String,
    pub version: String,
    pub version_key: semver::Version,
    #[serde(default)]
    pub description: Option<String>,
    pub steps: Vec<Arc<StepDefinition>>,
    /// `dependencies[i]`: indices of the steps step `i` waits for.
    pub dependencies: Vec<Vec<usize>>,
    /// `dependents[i]`: indices of the steps that wait for step `i`.
    pub dependents: Vec<Vec<usize>>,
    /// `ancestors[i]`: indices of every step step `i` transitively depends on, except its
    /// direct parents (those are `dependencies[i]`), in file order. Computed once here so
    /// that building an event only clones results.
    pub ancestors: Vec<Vec<usize>>,
    /// Checked against every task context at creation, when the template has one.
    #[serde(default)]
    pub input_schema: Option<InputSchema>,
    /// Whether a context breaking `input_schema` is refused or only logged
    /// (`orchestration.input_schema`, set when the template is loaded).
    #[serde(default)]
    pub input_schema_mode: crate::config::InputSchemaMode,
    #[serde(default)]
    pub metadata: Option<TemplateMetadata>,
    #[serde(default)]
    pub task_handler: Option<HandlerSpec>,
    #[serde(default)]
    pub system_dependencies: Option<SystemDependencies>,
    #[serde(default)]
    pub domain_events: Vec<DomainEventDefinition>,
    /// The environment whose `environments` overrides were applied, if any were.
    #[serde(default)]
    pub environment: Option<String>,
    /// At most this many of its steps in flight at once, across every worker.
    pub max_in_flight: Option<u32>,
    /// The file the template came from, when it came from a file.
    pub source: Option<PathBuf>,
}

impl WorkflowTemplate {
    /// Steps with no dependencies: the ones ready when a task is created.
    pub fn root_steps(&self) -> impl Iterator<Item = usize> + '_ {
        self.dependencies.iter().enumerate().filter(|(_, deps)| deps.is_empty()).map(|(i, _)| i)
    }

    pub fn step_index(&self, name: &str) -> Option<usize> {
        self.steps.iter().position(|s| s.name == name)
    }

    /// Checks a task context against the template's `input_schema` (always fine without one).
    pub fn check_context(&self, context: &Value) -> Result<(), ContextError> {
        match &self.input_schema {
            Some(schema) => schema.check(context),
            None => Ok(()),
        }
    }

    /// [`check_context`](Self::check_context) under `input_schema_mode`: in `warn` mode a
    /// violation is logged and the context admitted.
    pub fn admit_context(&self, context: &Value) -> Result<(), ContextError> {
        match (self.check_context(context), self.input_schema_mode) {
            (Err(error), crate::config::InputSchemaMode::Warn) => {
                tracing::warn!(
                    template = %format!("{}/{}@{}", self.namespace, self.name, self.version),
                    %error,
                    "task created although its context breaks the input_schema"
                );
                Ok(())
            }
            (outcome, _) => outcome,
        }
    }

    /// What `TaskerCore.templates` shows of this template: everything a reader needs
    /// (identity, documentation data, input schema, steps with their effective policy),
    /// without the internal index lists.
    pub fn summary(&self) -> Value {
        let steps: Vec<Value> = self
            .steps
            .iter()
            .map(|s| {
                serde_json::json!({
                    "name": s.name,
                    "description": s.description,
                    "handler": s.handler,
                    "dependencies": s.dependencies,
                    "retry": s.retry,
                    "timeout_seconds": s.timeout_seconds,
                    "inputs": *s.inputs,
                    "system_dependency": s.system_dependency,
                    "publishes_events": s.publishes_events,
                })
            })
            .collect();
        serde_json::json!({
            "namespace": self.namespace,
            "name": self.name,
            "version": self.version,
            "description": self.description,
            "metadata": self.metadata,
            "task_handler": self.task_handler,
            "system_dependencies": self.system_dependencies,
            "domain_events": self.domain_events,
            "input_schema": self.input_schema.as_ref().map(InputSchema::schema),
            "environment": self.environment,
            "input_schema_mode": self.input_schema_mode,
            "max_in_flight": self.max_in_flight,
            "source": self.source.as_ref().map(|p| p.display().to_string()),
            "steps": steps,
        })
    }
}
