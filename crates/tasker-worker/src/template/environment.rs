//! Per-environment step overrides (`environments.<env>.steps`), as upstream tasker-core
//! writes them, and applying the running environment's ones to a template before it is
//! checked.
//!
//! Only the running environment's overrides are applied; other environments' entries
//! are read (so their typos are reported too) and otherwise ignored. An override names a
//! step, or `ALL` for every step, and replaces that step's `timeout_seconds` and
//! `handler.initialization` and any `retry` fields it sets.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{RetrySpec, TaskTemplate};

/// The step name an override uses to mean every step.
pub const ALL_STEPS: &str = "ALL";

/// One environment's overrides.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvironmentOverride {
    #[serde(default)]
    pub steps: Vec<StepOverride>,
}

/// What an environment changes in one step (or in all, with `name: ALL`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepOverride {
    pub name: String,
    #[serde(default)]
    pub handler: Option<HandlerOverride>,
    #[serde(default)]
    pub timeout_seconds: Option<f64>,
    /// Fields set here replace the step's; unset ones keep the step's.
    #[serde(default)]
    pub retry: Option<RetrySpec>,
}

/// What an environment may change in a step's handler.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HandlerOverride {
    #[serde(default)]
    pub initialization: Option<Value>,
}

/// An override names a step the template does not have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownOverrideStep {
    pub environment: String,
    /// Position in `environments.<env>.steps`.
    pub index: usize,
    pub step: String,
    pub known: Vec<String>,
}

/// Applies `environment`'s overrides to `template` in place. Returns whether the
/// template has an entry for that environment.
pub fn apply(template: &mut TaskTemplate, environment: &str) -> Result<bool, UnknownOverrideStep> {
    let Some(overrides) = template.environments.get(environment).cloned() else {
        return Ok(false);
    };
    for (index, step_override) in overrides.steps.iter().enumerate() {
        let all = step_override.name == ALL_STEPS;
        if !all && !template.steps.iter().any(|s| s.name == step_override.name) {
            return Err(UnknownOverrideStep {
                environment: environment.to_owned(),
                index,
                step: step_override.name.clone(),
                known: template.steps.iter().map(|s| s.name.clone()).collect(),
            });
        }
        for step in template.steps.iter_mut().filter(|s| all || s.name == step_override.name) {
            if let Some(timeout) = step_override.timeout_seconds {
                step.timeout_seconds = Some(timeout);
            }
            if let Some(initialization) = step_override.handler.as_ref().and_then(|h| h.initialization.clone()) {
                step.handler.initialization = Some(initialization);
            }
            if let Some(retry) = &step_override.retry {
                let merged = step.retry.get_or_insert_with(RetrySpec::default);
                merge_retry(merged, retry);
            }
        }
    }
    Ok(true)
}

fn merge_retry(into: &mut RetrySpec, from: &RetrySpec) {
    if from.retryable.is_some() {
        into.retryable = from.retryable;
    }
    if from.max_attempts.is_some() {
        into.max_attempts = from.max_attempts;
    }
    if from.backoff.is_some() {
        into.backoff = from.backoff;
    }
    if from.backoff_base_ms.is_some() {
        into.backoff_base_ms = from.backoff_base_ms;
    }
    if from.max_backoff_ms.is_some() {
        into.max_backoff_ms = from.max_backoff_ms;
    }
}
