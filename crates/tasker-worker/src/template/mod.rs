//! Task templates: the YAML a user writes (`TaskTemplate`), and the checked, compiled
//! form the orchestrator runs (`WorkflowTemplate`, one `StepDefinition` per step with its
//! dependency indices and effective retry policy).
//!
//! `validate` turns a `TaskTemplate` into a `WorkflowTemplate` or says what is wrong;
//! `registry` loads a directory of templates and finds them by namespace, name, version.

pub mod registry;
pub mod validate;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use registry::TemplateRegistry;
pub use validate::{
    compile, parse_yaml, template_id, ErrorContext, Problem, TemplateError, MAX_ATTEMPTS_LIMIT, MAX_BACKOFF_LIMIT_MS,
    MAX_TIMEOUT_SECONDS,
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
    /// At most this many steps of this template's tasks run at once, across every worker.
    #[serde(default)]
    pub max_in_flight: Option<u32>,
    pub steps: Vec<StepTemplate>,
}

/// One step as written in YAML.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepTemplate {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    pub handler: HandlerSpec,
    #[serde(default)]
    pub dependencies: Vec<String>,
    #[serde(default)]
    pub retry: Option<RetrySpec>,
    #[serde(default)]
    pub timeout_seconds: Option<f64>,
    /// Static inputs handed to the handler as `context.inputs`.
    #[serde(default)]
    pub inputs: Option<Value>,
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
    #[serde(default)]
    pub max_attempts: Option<u32>,
    #[serde(default)]
    pub backoff_base_ms: Option<u64>,
    #[serde(default)]
    pub max_backoff_ms: Option<u64>,
}

/// A step's effective retry policy.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RetryPolicy {
    pub retryable: bool,
    pub max_attempts: u32,
    pub backoff_base_ms: u64,
    pub max_backoff_ms: u64,
    /// Fraction of the backoff added or removed at random.
    #[serde(skip)]
    pub jitter: f64,
}

/// A checked step, as handed to handlers (`step_definition`) and used by the orchestrator.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepDefinition {
    pub name: String,
    pub handler: HandlerSpec,
    pub dependencies: Vec<String>,
    pub retry: RetryPolicy,
    pub timeout_seconds: Option<f64>,
    #[serde(skip)]
    pub inputs: Arc<Value>,
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
#[derive(Debug, Clone)]
pub struct WorkflowTemplate {
    pub name: String,
    pub namespace: String,
    pub version: String,
    pub version_key: semver::Version,
    pub steps: Vec<Arc<StepDefinition>>,
    /// `dependencies[i]`: indices of the steps step `i` waits for.
    pub dependencies: Vec<Vec<usize>>,
    /// `dependents[i]`: indices of the steps that wait for step `i`.
    pub dependents: Vec<Vec<usize>>,
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
}
