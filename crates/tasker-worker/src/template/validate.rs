//! Reading and checking task templates.
//!
//! This module owns the path from YAML text to a [`WorkflowTemplate`]:
//! [`parse_yaml`] reads the text into a [`TaskTemplate`] (syntax, types, missing and
//! unknown keys), and [`compile_for`] applies the running environment's overrides, checks
//! the rules serde cannot express and builds the orchestrator's form (dependency and
//! ancestor indices, effective retry policies, inputs, the compiled input schema).
//! It also owns [`TemplateError`], the error type of the whole `template` module.
//!
//! Every error says where the problem is: the file (when known) with line and column
//! when the YAML parser knows them, the template as `namespace/name@version`, the step,
//! and the key.
//!
//! Versions are strict semantic versions (`MAJOR.MINOR.PATCH`, e.g. `1.0.0`, optionally
//! with a pre-release or build suffix). Short forms such as `1.0` or `1` are rejected
//! rather than padded, so the version a template declares is exactly the version a
//! caller asks for.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Map, Value};

use super::environment;
use super::{InputSchema, RetryPolicy, StepDefinition, StepTemplate, TaskTemplate, WorkflowTemplate};
use crate::config::RetryDefaults;

/// Largest `retry.max_attempts` a step may have.
pub const MAX_ATTEMPTS_LIMIT: u32 = 1000;
/// Largest `retry.max_backoff_ms` a step may have (one day).
pub const MAX_BACKOFF_LIMIT_MS: u64 = 86_400_000;
/// Smallest `timeout_seconds` a step may have: deadlines are kept in whole milliseconds.
pub const MIN_TIMEOUT_SECONDS: f64 = 0.001;
/// Largest `timeout_seconds` a step may have (one day).
pub const MAX_TIMEOUT_SECONDS: f64 = 86_400.0;

/// What went wrong with a task template: reading, checking, loading or finding it.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// The YAML could not be read into a template: bad syntax, a value of the wrong type,
    /// a missing key or an unknown key. `message` is the YAML reader's own description.
    #[error("{context}: {message}")]
    Syntax { context: Box<ErrorContext>, message: String },

    /// The text holds no template: it is empty, only comments, or a YAML null.
    #[error("{context}: no task template in the file: it is empty, only comments, or null (expected a mapping with name, namespace_name, version and steps)")]
    Empty { context: Box<ErrorContext> },

    /// The template was read but breaks a rule.
    #[error("{context}: {problem}")]
    Invalid { context: Box<ErrorContext>, problem: Problem },

    /// A template file or directory could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The template directory does not exist.
    #[error("template directory {} does not exist", path.display())]
    DirectoryNotFound { path: PathBuf },

    /// The template directory is not a directory.
    #[error("template directory {} is not a directory", path.display())]
    NotADirectory { path: PathBuf },

    /// Two files of one directory define the same namespace, name and version.
    #[error("template {template} is defined twice: in {} and in {}", first.display(), second.display())]
    DuplicateTemplate { template: String, first: PathBuf, second: PathBuf },

    /// No template is registered in the namespace asked for.
    #[error(
        "no task template {namespace}/{name}: namespace {namespace:?} is unknown ({})",
        list_or(known_namespaces, "known namespaces", "no templates are loaded")
    )]
    UnknownNamespace { namespace: String, name: String, known_namespaces: Vec<String> },

    /// The namespace exists but has no template of that name.
    #[error("no task template {namespace}/{name} (templates in namespace {namespace}: {})", known.join(", "))]
    UnknownTemplate { namespace: String, name: String, known: Vec<String> },

    /// The template exists but not in the version asked for.
    #[error("task template {namespace}/{name} has no version {version} (available versions: {})", available.join(", "))]
    UnknownVersion { namespace: String, name: String, version: String, available: Vec<String> },

    /// No version was asked for and every version is a prerelease, which runs only when
    /// named.
    #[error("task template {namespace}/{name} has only prerelease versions ({}); a prerelease runs only when its version is named", available.join(", "))]
    OnlyPrereleases { namespace: String, name: String, available: Vec<String> },

    /// The version asked for is not a semantic version.
    #[error("task template {namespace}/{name}: requested version {version:?} is not a semantic version (MAJOR.MINOR.PATCH, e.g. 1.0.0): {reason} (available versions: {})", available.join(", "))]
    InvalidRequestedVersion { namespace: String, name: String, version: String, reason: String, available: Vec<String> },
}

impl TemplateError {
    /// The file the error is about, when it is about a file.
    pub fn file(&self) -> Option<&Path> {
        match self {
            Self::Syntax { context, .. } | Self::Empty { context } | Self::Invalid { context, .. } => {
                context.file.as_deref()
            }
            Self::Io { path, .. } => Some(path),
            Self::DuplicateTemplate { second, .. } => Some(second),
            _ => None,
        }
    }
}

fn list_or(items: &[String], label: &str, empty: &str) -> String {
    if items.is_empty() {
        empty.to_owned()
    } else {
        format!("{label}: {}", items.join(", "))
    }
}

/// Where in which template an error is: rendered as
/// `file:line:column: template ns/name@version: step "x": key`, leaving out what is unknown.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErrorContext {
    pub file: Option<PathBuf>,
    /// 1-based line, when the YAML reader knows it.
    pub line: Option<usize>,
    /// 1-based column, when the YAML reader knows it.
    pub column: Option<usize>,
    /// `namespace/name@version`, with `?` for parts that are missing.
    pub template: Option<String>,
    pub step: Option<StepRef>,
    /// The key path inside the document, e.g. `steps[1].handler.callable`.
    pub key: Option<String>,
}

impl fmt::Display for ErrorContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = Vec::new();
        match (&self.file, self.line) {
            (Some(file), Some(line)) => match self.column {
                Some(column) => parts.push(format!("{}:{line}:{column}", file.display())),
                None => parts.push(format!("{}:{line}", file.display())),
            },
            (Some(file), None) => parts.push(file.display().to_string()),
            (None, Some(line)) => match self.column {
                Some(column) => parts.push(format!("line {line} column {column}")),
                None => parts.push(format!("line {line}")),
            },
            (None, None) => {}
        }
        if let Some(template) = &self.template {
            parts.push(format!("template {template}"));
        }
        if let Some(step) = &self.step {
            parts.push(step.to_string());
        }
        if let Some(key) = &self.key {
            parts.push(key.clone());
        }
        if parts.is_empty() {
            f.write_str("task template")
        } else {
            f.write_str(&parts.join(": "))
        }
    }
}

/// A step named in an error: its position in `steps` and its name when it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepRef {
    pub index: usize,
    pub name: Option<String>,
}

impl fmt::Display for StepRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name.as_deref() {
            Some(name) if !name.trim().is_empty() => write!(f, "step {name:?}"),
            _ => write!(f, "steps[{}] (unnamed step)", self.index),
        }
    }
}

/// A rule a template breaks.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Problem {
    #[error("`name` is empty")]
    EmptyName,
    #[error("`namespace_name` is empty")]
    EmptyNamespace,
    #[error("`version` {version:?} is not a semantic version (write MAJOR.MINOR.PATCH, e.g. 1.0.0): {reason}")]
    InvalidVersion { version: String, reason: String },
    #[error("`steps` is empty: a template needs at least one step")]
    NoSteps,
    #[error("`max_in_flight` must be at least 1 (leave it out for no limit)")]
    MaxInFlightZero,
    #[error("step `name` is empty")]
    EmptyStepName,
    #[error("step name {name:?} is used by more than one step (steps[{first}] and steps[{second}])")]
    DuplicateStepName { name: String, first: usize, second: usize },
    #[error("`handler.callable` is empty: name a Ruby handler class (e.g. Demo::MyHandler) or a Rust handler")]
    EmptyCallable,
    #[error("`dependencies` names unknown step {dependency:?} (steps in this template: {})", known.join(", "))]
    UnknownDependency { dependency: String, known: Vec<String> },
    #[error("`dependencies` lists the step itself")]
    SelfDependency,
    #[error("`dependencies` lists {dependency:?} more than once")]
    DuplicateDependency { dependency: String },
    #[error("dependency cycle of {} steps: {} (each step depends on the next)", steps.len().saturating_sub(1), cycle_path(steps))]
    Cycle {
        /// The steps on the cycle; the first is repeated at the end.
        steps: Vec<String>,
    },
    #[error("`retry.max_attempts` must be between 1 and {MAX_ATTEMPTS_LIMIT} (0 is read as 1), got {value}{}", origin(*.from_defaults))]
    MaxAttemptsOutOfRange { value: u32, from_defaults: bool },
    #[error("`retry.max_backoff_ms` must be at most {MAX_BACKOFF_LIMIT_MS} (one day), got {value}{}", origin(*.from_defaults))]
    MaxBackoffTooLarge { value: u64, from_defaults: bool },
    #[error("`retry.backoff_base_ms` ({base}{}) is greater than `retry.max_backoff_ms` ({max}{})", origin(*.base_from_defaults), origin(*.max_from_defaults))]
    BackoffBaseAboveMax { base: u64, max: u64, base_from_defaults: bool, max_from_defaults: bool },
    #[error("`timeout_seconds` must be a finite number of seconds from {MIN_TIMEOUT_SECONDS} (one millisecond) to {MAX_TIMEOUT_SECONDS}, got {value}")]
    TimeoutOutOfRange { value: f64 },
    #[error("`inputs` must be a mapping of key: value pairs, got {kind}")]
    InputsNotMapping { kind: &'static str },
    #[error("`input_schema` is not a usable JSON Schema: {reason}")]
    InvalidInputSchema { reason: String },
    #[error("`environments.{environment}.steps[{index}].name` names unknown step {step:?} (steps in this template: {}; or ALL for every step)", known.join(", "))]
    UnknownOverrideStep { environment: String, index: usize, step: String, known: Vec<String> },
}

fn origin(from_defaults: bool) -> &'static str {
    if from_defaults {
        " from [orchestration.default_retry]"
    } else {
        ""
    }
}

/// Parse YAML text into a [`TaskTemplate`]; `source` names the file in errors.
///
/// Reports syntax errors, values of the wrong type, missing keys and unknown keys with the
/// file, line, column, key path and (when the step's `name` is readable) the step.
pub fn parse_yaml(text: &str, source: Option<&Path>) -> Result<TaskTemplate, TemplateError> {
    // A lenient read first: it tells an empty file apart, and lets errors from the typed
    // read name the template and the step even when the typed read fails half-way.
    let loose: Option<serde_yaml::Value> = serde_yaml::from_str(text).ok();
    if matches!(loose, Some(serde_yaml::Value::Null)) {
        return Err(TemplateError::Empty {
            context: Box::new(ErrorContext { file: source.map(Path::to_path_buf), ..ErrorContext::default() }),
        });
    }

    let deserializer = serde_yaml::Deserializer::from_str(text);
    serde_path_to_error::deserialize(deserializer).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        syntax_error(inner, &path, source, loose.as_ref())
    })
}

fn syntax_error(
    inner: serde_yaml::Error,
    path: &str,
    source: Option<&Path>,
    loose: Option<&serde_yaml::Value>,
) -> TemplateError {
    let location = inner.location();
    let mut message = inner.to_string();
    // serde_yaml puts the location and its own path into the message; the context says
    // both, so take them out once.
    if let Some(loc) = &location {
        message = message.replacen(&format!(" at line {} column {}", loc.line(), loc.column()), "", 1);
    }
    // serde_path_to_error marks a position it could not name with `?`; say nothing there.
    let mut path = path;
    while let Some(rest) = path.strip_suffix(".?").or_else(|| path.strip_suffix('?')) {
        path = rest;
    }
    let key = (path != "." && !path.is_empty()).then(|| path.to_owned());
    if let Some(key) = &key {
        // serde_yaml names the map the error is in; serde_path_to_error may name a key below it.
        let mut prefix = key.as_str();
        loop {
            if let Some(rest) = message.strip_prefix(&format!("{prefix}: ")) {
                message = rest.to_owned();
                break;
            }
            match prefix.rfind(['.', '[']) {
                Some(cut) if cut > 0 => prefix = &prefix[..cut],
                _ => break,
            }
        }
    }

    // Speak in template terms, not Rust type names.
    for (rust, yaml) in [
        ("struct TaskTemplate", "a task template (a mapping with name, namespace_name, version and steps)"),
        ("struct StepTemplate", "a step (a mapping with name, handler, ...)"),
        ("struct HandlerSpec", "a handler mapping such as { callable: Demo::MyHandler }"),
        ("struct RetrySpec", "a retry mapping such as { max_attempts: 3, backoff: exponential }"),
        (
            "struct TemplateMetadata",
            "a metadata mapping (author, tags, documentation_url, created_at, updated_at, notes)",
        ),
        ("struct SystemDependencies", "a system_dependencies mapping such as { primary: default, secondary: [] }"),
        ("struct DomainEventDefinition", "a domain event mapping such as { name: order_placed }"),
        ("struct EnvironmentOverride", "an environment mapping such as { steps: [...] }"),
        ("struct StepOverride", "a step override such as { name: my_step, timeout_seconds: 10 }"),
        ("struct HandlerOverride", "a handler override such as { initialization: {...} }"),
    ] {
        message = message.replace(rust, yaml);
    }

    // The key path already says `steps[i]`; name the step only when its name is readable.
    let step = step_index_in_path(path).and_then(|index| {
        let name = loose.and_then(|doc| loose_step_name(doc, index))?;
        Some(StepRef { index, name: Some(name) })
    });
    TemplateError::Syntax {
        context: Box::new(ErrorContext {
            file: source.map(Path::to_path_buf),
            line: location.as_ref().map(|l| l.line()),
            column: location.as_ref().map(|l| l.column()),
            template: loose.and_then(loose_template_id),
            step,
            key,
        }),
        message,
    }
}

/// `steps[3].handler` → `Some(3)`.
fn step_index_in_path(path: &str) -> Option<usize> {
    let rest = path.strip_prefix("steps[")?;
    let end = rest.find(']')?;
    rest[..end].parse().ok()
}

fn loose_scalar(value: &serde_yaml::Value) -> Option<String> {
    match value {
        serde_yaml::Value::String(s) => Some(s.clone()),
        serde_yaml::Value::Number(n) => Some(n.to_string()),
        serde_yaml::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn loose_step_name(doc: &serde_yaml::Value, index: usize) -> Option<String> {
    doc.get("steps")?.get(index)?.get("name").and_then(loose_scalar)
}

fn loose_template_id(doc: &serde_yaml::Value) -> Option<String> {
    if !doc.is_mapping() {
        return None;
    }
    let part = |key: &str| doc.get(key).and_then(loose_scalar);
    let (name, namespace, version) = (part("name"), part("namespace_name"), part("version"));
    if name.is_none() && namespace.is_none() && version.is_none() {
        return None;
    }
    Some(template_id(namespace.as_deref(), name.as_deref(), version.as_deref()))
}

/// `namespace/name@version`, with `?` for a missing or empty part.
pub fn template_id(namespace: Option<&str>, name: Option<&str>, version: Option<&str>) -> String {
    let shown = |part: Option<&str>| match part {
        Some(p) if !p.trim().is_empty() => p.to_owned(),
        _ => "?".to_owned(),
    };
    format!("{}/{}@{}", shown(namespace), shown(name), shown(version))
}

/// [`compile_for`] without an environment: no `environments` override is applied.
pub fn compile(
    template: TaskTemplate,
    defaults: &RetryDefaults,
    source: Option<PathBuf>,
) -> Result<WorkflowTemplate, TemplateError> {
    compile_for(template, defaults, source, None)
}

/// Check a template and compile it into the orchestrator's form.
///
/// `environment`'s overrides (from the template's `environments`) are applied first, so
/// every rule is checked on the values that will run. Unset retry fields take
/// `defaults`; `jitter` always comes from `defaults`; `max_attempts: 0` means one
/// attempt. `inputs` must be a mapping and defaults to an empty one; `input_schema` must
/// be a valid JSON Schema. Reports the first rule broken, naming `source` (when given),
/// the template and the step.
pub fn compile_for(
    mut template: TaskTemplate,
    defaults: &RetryDefaults,
    source: Option<PathBuf>,
    environment: Option<&str>,
) -> Result<WorkflowTemplate, TemplateError> {
    let base = ErrorContext {
        file: source.clone(),
        template: Some(template_id(Some(&template.namespace_name), Some(&template.name), Some(&template.version))),
        ..ErrorContext::default()
    };
    let invalid = |problem: Problem| TemplateError::Invalid { context: Box::new(base.clone()), problem };
    let invalid_step = |index: usize, step: &StepTemplate, problem: Problem| TemplateError::Invalid {
        context: Box::new(ErrorContext {
            step: Some(StepRef { index, name: Some(step.name.clone()) }),
            ..base.clone()
        }),
        problem,
    };

    if template.name.trim().is_empty() {
        return Err(invalid(Problem::EmptyName));
    }
    if template.namespace_name.trim().is_empty() {
        return Err(invalid(Problem::EmptyNamespace));
    }
    let version_key = semver::Version::parse(&template.version).map_err(|err| {
        invalid(Problem::InvalidVersion { version: template.version.clone(), reason: err.to_string() })
    })?;
    if template.steps.is_empty() {
        return Err(invalid(Problem::NoSteps));
    }
    let applied = match environment {
        Some(env) => environment::apply(&mut template, env).map_err(|e| TemplateError::Invalid {
            context: Box::new(ErrorContext {
                key: Some(format!("environments.{}.steps[{}].name", e.environment, e.index)),
                ..base.clone()
            }),
            problem: Problem::UnknownOverrideStep {
                environment: e.environment,
                index: e.index,
                step: e.step,
                known: e.known,
            },
        })?,
        None => false,
    };
    let input_schema = match template.input_schema.take() {
        Some(Value::Null) | None => None,
        Some(schema) => Some(InputSchema::compile(schema).map_err(|reason| TemplateError::Invalid {
            context: Box::new(ErrorContext { key: Some("input_schema".to_owned()), ..base.clone() }),
            problem: Problem::InvalidInputSchema { reason },
        })?),
    };
    if template.max_in_flight == Some(0) {
        return Err(invalid(Problem::MaxInFlightZero));
    }

    // Names first, so dependency errors can rely on a unique, non-empty name per step.
    let mut index_of: HashMap<&str, usize> = HashMap::with_capacity(template.steps.len());
    for (index, step) in template.steps.iter().enumerate() {
        if step.name.trim().is_empty() {
            return Err(invalid_step(index, step, Problem::EmptyStepName));
        }
        if let Some(&first) = index_of.get(step.name.as_str()) {
            return Err(invalid_step(
                index,
                step,
                Problem::DuplicateStepName { name: step.name.clone(), first, second: index },
            ));
        }
        index_of.insert(step.name.as_str(), index);
    }

    let mut dependencies: Vec<Vec<usize>> = Vec::with_capacity(template.steps.len());
    let mut policies: Vec<RetryPolicy> = Vec::with_capacity(template.steps.len());
    for (index, step) in template.steps.iter().enumerate() {
        if step.handler.callable.trim().is_empty() {
            return Err(invalid_step(index, step, Problem::EmptyCallable));
        }
        let mut deps = Vec::with_capacity(step.dependencies.len());
        for dependency in &step.dependencies {
            let Some(&dep) = index_of.get(dependency.as_str()) else {
                return Err(invalid_step(
                    index,
                    step,
                    Problem::UnknownDependency {
                        dependency: dependency.clone(),
                        known: template.steps.iter().map(|s| s.name.clone()).collect(),
                    },
                ));
            };
            if dep == index {
                return Err(invalid_step(index, step, Problem::SelfDependency));
            }
            if deps.contains(&dep) {
                return Err(invalid_step(index, step, Problem::DuplicateDependency { dependency: dependency.clone() }));
            }
            deps.push(dep);
        }
        policies.push(effective_retry(step, defaults).map_err(|p| invalid_step(index, step, p))?);
        check_timeout(step.timeout_seconds).map_err(|p| invalid_step(index, step, p))?;
        if let Some(inputs) = &step.inputs {
            if !inputs.is_object() && !inputs.is_null() {
                return Err(invalid_step(index, step, Problem::InputsNotMapping { kind: json_kind(inputs) }));
            }
        }
        dependencies.push(deps);
    }

    if let Some(cycle) = find_cycle(&dependencies) {
        return Err(invalid(Problem::Cycle { steps: cycle.iter().map(|&i| template.steps[i].name.clone()).collect() }));
    }

    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); template.steps.len()];
    for (index, deps) in dependencies.iter().enumerate() {
        for &dep in deps {
            dependents[dep].push(index);
        }
    }
    let ancestors = ancestors_beyond_parents(&dependencies);

    let mut steps = Vec::with_capacity(template.steps.len());
    for (step, retry) in template.steps.into_iter().zip(policies) {
        let inputs = match step.inputs {
            Some(Value::Object(map)) => Value::Object(map),
            _ => Value::Object(Map::new()),
        };
        let mut handler = step.handler;
        handler.callable = handler.callable.trim().to_owned();
        steps.push(Arc::new(StepDefinition {
            name: step.name,
            description: step.description,
            handler,
            dependencies: step.dependencies,
            retry,
            timeout_seconds: step.timeout_seconds,
            inputs: Arc::new(inputs),
            system_dependency: step.system_dependency,
            publishes_events: step.publishes_events,
        }));
    }

    Ok(WorkflowTemplate {
        name: template.name,
        namespace: template.namespace_name,
        version: template.version,
        version_key,
        description: template.description,
        steps,
        dependencies,
        dependents,
        ancestors,
        input_schema,
        input_schema_mode: Default::default(),
        metadata: template.metadata,
        task_handler: template.task_handler,
        system_dependencies: template.system_dependencies,
        domain_events: template.domain_events,
        environment: if applied { environment.map(str::to_owned) } else { None },
        max_in_flight: template.max_in_flight,
        source,
    })
}

/// For each step of an acyclic graph, every step it transitively depends on that is not
/// one of its direct parents, in index order.
fn ancestors_beyond_parents(deps: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let n = deps.len();
    let mut all: Vec<Option<Vec<bool>>> = vec![None; n];
    // Iterative post-order so a long chain cannot overflow the stack.
    for start in 0..n {
        let mut stack = vec![(start, false)];
        while let Some((node, expanded)) = stack.pop() {
            if all[node].is_some() {
                continue;
            }
            if !expanded {
                stack.push((node, true));
                stack.extend(deps[node].iter().filter(|&&d| all[d].is_none()).map(|&d| (d, false)));
                continue;
            }
            let mut seen = vec![false; n];
            for &parent in &deps[node] {
                seen[parent] = true;
                if let Some(theirs) = &all[parent] {
                    for (i, &reached) in theirs.iter().enumerate() {
                        seen[i] |= reached;
                    }
                }
            }
            all[node] = Some(seen);
        }
    }
    all.into_iter()
        .enumerate()
        .map(|(node, seen)| {
            let seen = seen.unwrap_or_default();
            (0..n).filter(|&i| seen[i] && !deps[node].contains(&i)).collect()
        })
        .collect()
}

/// The step's retry fields over `defaults`, checked.
fn effective_retry(step: &StepTemplate, defaults: &RetryDefaults) -> Result<RetryPolicy, Problem> {
    let spec = step.retry.clone().unwrap_or_default();
    let policy = RetryPolicy {
        retryable: spec.retryable.unwrap_or(defaults.retryable),
        // Upstream runs a step with `max_attempts: 0` once; so does this core.
        max_attempts: spec.max_attempts.map(|n| n.max(1)).unwrap_or(defaults.max_attempts),
        backoff: spec.backoff.unwrap_or_default(),
        backoff_base_ms: spec.backoff_base_ms.unwrap_or(defaults.backoff_base_ms),
        max_backoff_ms: spec.max_backoff_ms.unwrap_or(defaults.max_backoff_ms),
        jitter: defaults.jitter,
    };
    if policy.max_attempts == 0 || policy.max_attempts > MAX_ATTEMPTS_LIMIT {
        return Err(Problem::MaxAttemptsOutOfRange {
            value: policy.max_attempts,
            from_defaults: spec.max_attempts.is_none(),
        });
    }
    if policy.max_backoff_ms > MAX_BACKOFF_LIMIT_MS {
        return Err(Problem::MaxBackoffTooLarge {
            value: policy.max_backoff_ms,
            from_defaults: spec.max_backoff_ms.is_none(),
        });
    }
    if policy.backoff_base_ms > policy.max_backoff_ms {
        return Err(Problem::BackoffBaseAboveMax {
            base: policy.backoff_base_ms,
            max: policy.max_backoff_ms,
            base_from_defaults: spec.backoff_base_ms.is_none(),
            max_from_defaults: spec.max_backoff_ms.is_none(),
        });
    }
    Ok(policy)
}

fn check_timeout(timeout: Option<f64>) -> Result<(), Problem> {
    match timeout {
        Some(value) if !(value.is_finite() && (MIN_TIMEOUT_SECONDS..=MAX_TIMEOUT_SECONDS).contains(&value)) => {
            Err(Problem::TimeoutOutOfRange { value })
        }
        _ => Ok(()),
    }
}

/// Steps on a cycle, at most 12 of them named: a long cycle shows its first and last
/// steps around a count of the rest, so the message stays short.
fn cycle_path(steps: &[String]) -> String {
    const SHOWN: usize = 12;
    if steps.len() <= SHOWN {
        return steps.join(" -> ");
    }
    let head = steps[..SHOWN / 2].join(" -> ");
    let tail = steps[steps.len() - SHOWN / 2..].join(" -> ");
    format!("{head} -> ... ({} more) -> {tail}", steps.len() - SHOWN)
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a sequence",
        Value::Object(_) => "a mapping",
    }
}

/// A cycle in the graph `deps` (step → the steps it depends on), as step indices with the
/// first repeated at the end; `None` when the graph is acyclic. Iterative, so a long chain
/// cannot overflow the stack; steps are visited in file order, so the answer is stable.
fn find_cycle(deps: &[Vec<usize>]) -> Option<Vec<usize>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        OnPath,
        Done,
    }
    let mut mark = vec![Mark::New; deps.len()];
    let mut path: Vec<(usize, usize)> = Vec::new(); // (step, next dependency to look at)
    for start in 0..deps.len() {
        if mark[start] != Mark::New {
            continue;
        }
        mark[start] = Mark::OnPath;
        path.push((start, 0));
        while let Some((node, next)) = path.last_mut() {
            let node = *node;
            match deps[node].get(*next) {
                Some(&dep) => {
                    *next += 1;
                    match mark[dep] {
                        Mark::New => {
                            mark[dep] = Mark::OnPath;
                            path.push((dep, 0));
                        }
                        Mark::OnPath => {
                            let from = path.iter().position(|&(n, _)| n == dep).unwrap_or(0);
                            let mut cycle: Vec<usize> = path[from..].iter().map(|&(n, _)| n).collect();
                            cycle.push(dep);
                            return Some(cycle);
                        }
                        Mark::Done => {}
                    }
                }
                None => {
                    mark[node] = Mark::Done;
                    path.pop();
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn find_cycle_reports_the_steps_on_the_cycle_in_dependency_order() {
        // 0 <- 1 <- 2 <- 3, and 1 depends on 3: cycle 1 -> 3 -> 2 -> 1
        let deps = vec![vec![], vec![0, 3], vec![1], vec![2]];
        assert_eq!(find_cycle(&deps), Some(vec![1, 3, 2, 1]));
    }

    #[test]
    fn find_cycle_accepts_a_dag_with_shared_ancestors() {
        let deps = vec![vec![], vec![0], vec![0], vec![1, 2, 0]];
        assert_eq!(find_cycle(&deps), None);
    }

    #[test]
    fn find_cycle_handles_a_long_chain_without_recursion() {
        let n = 200_000;
        let deps: Vec<Vec<usize>> = (0..n).map(|i| if i == 0 { vec![n - 1] } else { vec![i - 1] }).collect();
        let cycle = find_cycle(&deps).unwrap();
        assert_eq!(cycle.len(), n + 1);
        assert_eq!(cycle.first(), cycle.last());
    }

    #[test]
    fn ancestors_leave_out_direct_parents_and_cover_every_path() {
        // 0 -> 1 -> 2 -> 3, and 0 -> 3 directly; 4 is unrelated.
        let deps = vec![vec![], vec![0], vec![1], vec![2, 0], vec![]];
        assert_eq!(ancestors_beyond_parents(&deps), vec![vec![], vec![], vec![0], vec![1], vec![]]);
        // diamond: 0 -> (1, 2) -> 3
        let diamond = vec![vec![], vec![0], vec![0], vec![1, 2]];
        assert_eq!(ancestors_beyond_parents(&diamond)[3], vec![0]);
    }

    #[test]
    fn ancestors_of_a_long_chain_do_not_recurse() {
        let n = 3000;
        let deps: Vec<Vec<usize>> = (0..n).map(|i| if i == 0 { vec![] } else { vec![i - 1] }).collect();
        let ancestors = ancestors_beyond_parents(&deps);
        assert_eq!(ancestors[n - 1].len(), n - 2);
    }

    #[test]
    fn step_index_is_read_from_the_key_path() {
        assert_eq!(step_index_in_path("steps[12].handler.callable"), Some(12));
        assert_eq!(step_index_in_path("steps[0]"), Some(0));
        assert_eq!(step_index_in_path("steps"), None);
        assert_eq!(step_index_in_path("name"), None);
    }

    #[test]
    fn context_renders_file_position_template_step_and_key() {
        let context = ErrorContext {
            file: Some(PathBuf::from("t/a.yaml")),
            line: Some(7),
            column: Some(5),
            template: Some("demo/a@1.0.0".into()),
            step: Some(StepRef { index: 1, name: Some("b".into()) }),
            key: Some("steps[1]".into()),
        };
        assert_eq!(context.to_string(), r#"t/a.yaml:7:5: template demo/a@1.0.0: step "b": steps[1]"#);
        let unnamed = StepRef { index: 3, name: Some("  ".into()) };
        assert_eq!(unnamed.to_string(), "steps[3] (unnamed step)");
        assert_eq!(ErrorContext::default().to_string(), "task template");
    }

    #[test]
    fn template_id_marks_missing_parts() {
        assert_eq!(template_id(Some("demo"), Some(""), None), "demo/?@?");
    }
}
