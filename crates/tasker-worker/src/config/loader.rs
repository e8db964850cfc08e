//! Loads a [`TaskerConfig`] from layered TOML and reports problems by file and key.
//!
//! Layers, later ones winning: every `base/*.toml` (sorted by file name), every
//! `environments/<env>/*.toml` (sorted), then the programmatic overrides given with
//! [`ConfigLoader::with_override`]. Tables merge key by key; a later scalar or array
//! replaces an earlier one. The loader remembers which layer last set each dotted key
//! (its provenance) so that an error always names the file, or the overrides' label.
//!
//! Each layer is first checked on its own against the shape of `TaskerConfig::default()`
//! (unknown keys, wrong types), so a mistake is reported against the file that made it
//! even when a later layer would hide it. The merged tree is then deserialized and its
//! ranges checked by [`super::validate`]. Every problem found is reported, not just the
//! first.
//!
//! The schema is the serialization of `TaskerConfig::default()`, so every field must
//! serialize to a value in its default (no `Option` that defaults to `None`, no empty
//! map); the tests of this crate check that the shipped base files set every key.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use toml::{Table, Value};

use super::validate::{validate, ConfigProblem};
use super::TaskerConfig;

/// Environment variable naming a configuration root (a directory holding `base/` and
/// `environments/`).
pub const CONFIG_ROOT_VAR: &str = "TASKER_CONFIG_ROOT";
/// Environment variable naming the environment.
pub const ENVIRONMENT_VAR: &str = "TASKER_ENV";
/// Environment used when `TASKER_ENV` is unset or empty.
pub const DEFAULT_ENVIRONMENT: &str = "development";
/// Source label of the overrides layer in error messages.
pub const OVERRIDES_LABEL: &str = "bootstrap_worker options";
/// Source label of a value that no layer set.
const BUILT_IN_DEFAULT: &str = "built-in default";

/// One shipped configuration file compiled into the binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmbeddedFile {
    /// Path relative to `config/tasker/`, e.g. `base/worker.toml`.
    pub path: &'static str,
    /// The file's text.
    pub contents: &'static str,
}

macro_rules! embedded_files {
    ($($path:literal),* $(,)?) => {
        &[$(EmbeddedFile {
            path: $path,
            contents: include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../config/tasker/", $path)),
        }),*]
    };
}

/// Every file under `config/tasker/base` and `config/tasker/environments`; a test
/// checks this list against the directory, so a new file must be added here.
static EMBEDDED: &[EmbeddedFile] = embedded_files![
    "base/mpsc_channels.toml",
    "base/orchestration.toml",
    "base/storage.toml",
    "base/worker.toml",
    "environments/development/worker.toml",
    "environments/production/mpsc_channels.toml",
    "environments/production/storage.toml",
    "environments/production/worker.toml",
    "environments/test/mpsc_channels.toml",
    "environments/test/orchestration.toml",
    "environments/test/worker.toml",
];

/// The shipped configuration files compiled into the binary.
pub fn embedded_files() -> &'static [EmbeddedFile] {
    EMBEDDED
}

/// Where the TOML files come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    /// The shipped files compiled into the binary; no files on disk needed.
    Embedded,
    /// A root directory holding `base/*.toml` and `environments/<env>/*.toml`.
    Directory(PathBuf),
}

/// Something wrong with one key in one layer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum KeyProblem {
    /// The key is not part of the configuration schema.
    #[error("unknown key{}", suggestion.as_ref().map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default())]
    Unknown {
        /// A known sibling key with a similar spelling.
        suggestion: Option<String>,
    },
    /// The value has the wrong TOML type.
    #[error("expected {expected}, found {found}")]
    WrongType {
        /// The type the schema wants, e.g. "an integer".
        expected: &'static str,
        /// The value found, e.g. `a string ("ten")`.
        found: String,
    },
    /// The value has the right type but cannot be represented (e.g. a negative count).
    #[error("{0}")]
    InvalidValue(String),
    /// The value is outside its allowed range (see [`super::validate`]).
    #[error("{0}")]
    OutOfRange(String),
}

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The `Directory` root does not exist.
    #[error("configuration root {} does not exist or is not a directory", path.display())]
    MissingRoot { path: PathBuf },
    /// The root has no `base/` directory.
    #[error("configuration directory {} does not exist (the configuration root must hold base/*.toml)", path.display())]
    MissingBaseDir { path: PathBuf },
    /// `base/` holds no TOML file.
    #[error("configuration directory {} holds no *.toml file", path.display())]
    EmptyBaseDir { path: PathBuf },
    /// The environment name is empty or not a plain directory name.
    #[error("invalid environment name {environment:?} (from {ENVIRONMENT_VAR} or the caller): use letters, digits, `_` and `-`")]
    InvalidEnvironmentName { environment: String },
    /// The environment has no directory (a typo in `TASKER_ENV` lands here).
    #[error("unknown environment `{environment}`: {location} does not exist (available: {available})")]
    UnknownEnvironment { environment: String, location: String, available: String },
    /// A file or directory could not be read.
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A file is not valid TOML.
    #[error("{file}{}: TOML syntax error: {message}", position_suffix(*line, *column))]
    Syntax { file: String, line: Option<usize>, column: Option<usize>, message: String },
    /// An override key is not a dotted key.
    #[error("{label}: malformed key `{key}`: {reason}")]
    MalformedOverrideKey { label: String, key: String, reason: &'static str },
    /// One key of one layer is wrong. `file` is the file's path, or the overrides' label.
    #[error("{file}: `{key}`: {problem}")]
    Key { file: String, key: String, problem: KeyProblem },
    /// Several of the above.
    #[error("{} configuration errors:{}", .0.len(), list_errors(.0))]
    Multiple(Vec<ConfigError>),
}

impl ConfigError {
    /// The individual errors: the members of `Multiple`, or this error alone.
    pub fn errors(&self) -> Vec<&ConfigError> {
        match self {
            ConfigError::Multiple(errors) => errors.iter().flat_map(ConfigError::errors).collect(),
            other => vec![other],
        }
    }

    fn from_list(mut errors: Vec<ConfigError>) -> Option<ConfigError> {
        match errors.len() {
            0 => None,
            1 => errors.pop(),
            _ => Some(ConfigError::Multiple(errors)),
        }
    }
}

fn position_suffix(line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(line), Some(column)) => format!(":{line}:{column}"),
        (Some(line), None) => format!(":{line}"),
        _ => String::new(),
    }
}

fn list_errors(errors: &[ConfigError]) -> String {
    errors.iter().map(|e| format!("\n  - {e}")).collect()
}

/// Builds a [`TaskerConfig`] from a [`ConfigSource`], an environment and overrides.
#[derive(Debug, Clone)]
pub struct ConfigLoader {
    source: ConfigSource,
    environment: String,
    overrides: Vec<(String, Value)>,
}

impl ConfigLoader {
    /// A loader reading `source` for `environment`, with no overrides.
    pub fn new(source: ConfigSource, environment: impl Into<String>) -> Self {
        Self { source, environment: environment.into(), overrides: Vec::new() }
    }

    /// `TASKER_CONFIG_ROOT` (a directory holding `base/` and `environments/`) if set and
    /// non-empty, else [`ConfigSource::Embedded`]; `TASKER_ENV`, default `development`.
    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var_os(name))
    }

    /// Like [`ConfigLoader::from_env`], reading variables through `lookup` instead of the
    /// process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<OsString>) -> Self {
        let source = match lookup(CONFIG_ROOT_VAR) {
            Some(root) if !root.is_empty() => ConfigSource::Directory(PathBuf::from(root)),
            _ => ConfigSource::Embedded,
        };
        let environment = lookup(ENVIRONMENT_VAR)
            .filter(|env| !env.is_empty())
            .map(|env| env.to_string_lossy().into_owned())
            .unwrap_or_else(|| DEFAULT_ENVIRONMENT.to_owned());
        Self::new(source, environment)
    }

    /// An extra layer applied last, e.g.
    /// `("mpsc_channels.worker.handler_dispatch.max_concurrent_handlers", toml::Value::Integer(20))`.
    /// Errors in it are reported with the source label `bootstrap_worker options`.
    pub fn with_override(mut self, key: impl Into<String>, value: Value) -> Self {
        self.overrides.push((key.into(), value));
        self
    }

    /// The environment whose files are layered over base.
    pub fn environment(&self) -> &str {
        &self.environment
    }

    /// Where the files come from.
    pub fn source(&self) -> &ConfigSource {
        &self.source
    }

    /// Reads, merges, type-checks and range-checks the configuration.
    pub fn load(&self) -> Result<TaskerConfig, ConfigError> {
        let mut layers = self.read_layers()?;
        layers.push(self.overrides_layer()?);

        let schema = schema();
        let mut errors = Vec::new();
        for layer in &layers {
            check_shape(&layer.table, &schema, "", &layer.label, &mut errors);
        }
        if let Some(error) = ConfigError::from_list(errors) {
            return Err(error);
        }

        let mut merged = Table::new();
        let mut provenance = Provenance::default();
        for layer in layers {
            merge(&mut merged, layer.table, "", &layer.label, &mut provenance);
        }

        let config: TaskerConfig = serde_path_to_error::deserialize(Value::Table(merged)).map_err(|error| {
            let key = error.path().to_string();
            ConfigError::Key {
                file: provenance.source_of(&key).to_owned(),
                problem: KeyProblem::InvalidValue(plain_serde_message(error.inner().message())),
                key,
            }
        })?;

        let errors = validate(&config).into_iter().map(|problem| range_error(problem, &provenance)).collect();
        match ConfigError::from_list(errors) {
            Some(error) => Err(error),
            None => Ok(config),
        }
    }

    fn read_layers(&self) -> Result<Vec<Layer>, ConfigError> {
        if !is_plain_name(&self.environment) {
            return Err(ConfigError::InvalidEnvironmentName { environment: self.environment.clone() });
        }
        match &self.source {
            ConfigSource::Embedded => embedded_layers(&self.environment),
            ConfigSource::Directory(root) => directory_layers(root, &self.environment),
        }
    }

    fn overrides_layer(&self) -> Result<Layer, ConfigError> {
        let mut table = Table::new();
        let mut scratch = Provenance::default();
        for (key, value) in &self.overrides {
            let nested = nest(key, value.clone())?;
            merge(&mut table, nested, "", OVERRIDES_LABEL, &mut scratch);
        }
        Ok(Layer { label: OVERRIDES_LABEL.to_owned(), table })
    }
}

/// One parsed file (or the overrides) with the label used in errors.
struct Layer {
    label: String,
    table: Table,
}

fn is_plain_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn embedded_layers(environment: &str) -> Result<Vec<Layer>, ConfigError> {
    let mut base: Vec<&EmbeddedFile> = EMBEDDED.iter().filter(|f| f.path.starts_with("base/")).collect();
    base.sort_by_key(|f| f.path);
    let env_prefix = format!("environments/{environment}/");
    let mut env: Vec<&EmbeddedFile> = EMBEDDED.iter().filter(|f| f.path.starts_with(&env_prefix)).collect();
    env.sort_by_key(|f| f.path);
    if env.is_empty() {
        let mut available: Vec<&str> =
            EMBEDDED.iter().filter_map(|f| f.path.strip_prefix("environments/")?.split('/').next()).collect();
        available.sort_unstable();
        available.dedup();
        return Err(ConfigError::UnknownEnvironment {
            environment: environment.to_owned(),
            location: format!("embedded config/tasker/{env_prefix}"),
            available: available.join(", "),
        });
    }
    base.into_iter()
        .chain(env)
        .map(|file| {
            let label = format!("embedded config/tasker/{}", file.path);
            Ok(Layer { table: parse(&label, file.contents)?, label })
        })
        .collect()
}

fn directory_layers(root: &Path, environment: &str) -> Result<Vec<Layer>, ConfigError> {
    if !root.is_dir() {
        return Err(ConfigError::MissingRoot { path: root.to_path_buf() });
    }
    let base_dir = root.join("base");
    if !base_dir.is_dir() {
        return Err(ConfigError::MissingBaseDir { path: base_dir });
    }
    let base_files = toml_files(&base_dir)?;
    if base_files.is_empty() {
        return Err(ConfigError::EmptyBaseDir { path: base_dir });
    }
    let environments_dir = root.join("environments");
    let env_dir = environments_dir.join(environment);
    if !env_dir.is_dir() {
        return Err(ConfigError::UnknownEnvironment {
            environment: environment.to_owned(),
            location: env_dir.display().to_string(),
            available: available_environments(&environments_dir),
        });
    }
    let env_files = toml_files(&env_dir)?;
    base_files
        .into_iter()
        .chain(env_files)
        .map(|path| {
            let text = fs::read_to_string(&path).map_err(|source| ConfigError::Read { path: path.clone(), source })?;
            let label = path.display().to_string();
            Ok(Layer { table: parse(&label, &text)?, label })
        })
        .collect()
}

/// The `*.toml` files directly in `dir`, sorted by name.
fn toml_files(dir: &Path) -> Result<Vec<PathBuf>, ConfigError> {
    let read_error = |source| ConfigError::Read { path: dir.to_path_buf(), source };
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).map_err(read_error)? {
        let path = entry.map_err(read_error)?.path();
        if path.extension().is_some_and(|ext| ext == "toml") && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

fn available_environments(environments_dir: &Path) -> String {
    let mut names: Vec<String> = fs::read_dir(environments_dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|entry| entry.path().is_dir())
                .map(|entry| entry.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}

fn parse(label: &str, text: &str) -> Result<Table, ConfigError> {
    toml::from_str::<Table>(text).map_err(|error| {
        let (line, column) = match error.span() {
            Some(span) => {
                let (line, column) = line_and_column(text, span.start);
                (Some(line), Some(column))
            }
            None => (None, None),
        };
        let message = error.message().lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join("; ");
        ConfigError::Syntax { file: label.to_owned(), line, column, message }
    })
}

/// Serde's message with Rust type names spelled out for a TOML author, e.g.
/// "invalid value: integer `-1`, expected a non-negative integer".
fn plain_serde_message(message: &str) -> String {
    let message = message.trim();
    let plain = [
        ("expected usize", "expected a non-negative integer"),
        ("expected u64", "expected a non-negative integer"),
        ("expected u32", "expected an integer between 0 and 4294967295"),
    ];
    for (rust, toml) in plain {
        if let Some(head) = message.strip_suffix(rust) {
            return format!("{head}{toml}");
        }
    }
    message.to_owned()
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset.min(text.len())).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// Turns `a.b.c = value` into `{a = {b = {c = value}}}`.
fn nest(key: &str, value: Value) -> Result<Table, ConfigError> {
    let malformed =
        |reason| ConfigError::MalformedOverrideKey { label: OVERRIDES_LABEL.to_owned(), key: key.to_owned(), reason };
    if key.is_empty() {
        return Err(malformed("the key is empty"));
    }
    let segments: Vec<&str> = key.split('.').collect();
    if segments.iter().any(|s| s.is_empty()) {
        return Err(malformed("a dotted key must not have empty segments"));
    }
    let mut value = value;
    for segment in segments.iter().skip(1).rev() {
        let mut table = Table::new();
        table.insert((*segment).to_owned(), value);
        value = Value::Table(table);
    }
    let mut root = Table::new();
    root.insert(segments[0].to_owned(), value);
    Ok(root)
}

/// The shape every layer must conform to: the serialization of the defaults.
fn schema() -> Table {
    match Value::try_from(TaskerConfig::default()) {
        Ok(Value::Table(table)) => table,
        // The config structs are plain tables of scalars; serializing them cannot fail.
        _ => Table::new(),
    }
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_owned()
    } else {
        format!("{prefix}.{key}")
    }
}

/// Reports keys of `table` that `schema` lacks and values whose type differs.
fn check_shape(table: &Table, schema: &Table, prefix: &str, label: &str, errors: &mut Vec<ConfigError>) {
    for (name, value) in table {
        let key = join(prefix, name);
        let problem = match (schema.get(name), value) {
            (None, _) => Some(KeyProblem::Unknown { suggestion: suggest(name, schema.keys()) }),
            (Some(Value::Table(sub_schema)), Value::Table(sub_table)) => {
                check_shape(sub_table, sub_schema, &key, label, errors);
                None
            }
            (Some(expected), found) if !same_type(expected, found) => {
                Some(KeyProblem::WrongType { expected: type_name(expected), found: describe(found) })
            }
            _ => None,
        };
        if let Some(problem) = problem {
            errors.push(ConfigError::Key { file: label.to_owned(), key, problem });
        }
    }
}

fn same_type(expected: &Value, found: &Value) -> bool {
    matches!(
        (expected, found),
        (Value::String(_), Value::String(_))
            | (Value::Integer(_), Value::Integer(_))
            | (Value::Float(_), Value::Float(_) | Value::Integer(_))
            | (Value::Boolean(_), Value::Boolean(_))
            | (Value::Datetime(_), Value::Datetime(_))
            | (Value::Array(_), Value::Array(_))
            | (Value::Table(_), Value::Table(_))
    )
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::String(_) => "a string",
        Value::Integer(_) => "an integer",
        Value::Float(_) => "a number",
        Value::Boolean(_) => "a boolean (true or false)",
        Value::Datetime(_) => "a datetime",
        Value::Array(_) => "an array",
        Value::Table(_) => "a table",
    }
}

fn describe(value: &Value) -> String {
    match value {
        Value::Table(_) => "a table".to_owned(),
        Value::Array(_) => "an array".to_owned(),
        scalar => format!("{} ({scalar})", type_name(scalar)),
    }
}

/// The candidate closest in spelling to `name`, if it is close enough to be a typo.
fn suggest<'a>(name: &str, candidates: impl Iterator<Item = &'a String>) -> Option<String> {
    let limit = (name.chars().count() / 3).max(1);
    candidates
        .map(|candidate| (edit_distance(name, candidate), candidate))
        .filter(|(distance, _)| *distance <= limit)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate.clone())
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        previous = current;
    }
    previous[b.len()]
}

/// Which layer last set each dotted key (tables and leaves).
#[derive(Default)]
struct Provenance {
    sources: HashMap<String, String>,
}

impl Provenance {
    fn record(&mut self, key: &str, label: &str, value: &Value) {
        self.sources.insert(key.to_owned(), label.to_owned());
        if let Value::Table(table) = value {
            for (name, child) in table {
                self.record(&join(key, name), label, child);
            }
        }
    }

    fn forget_below(&mut self, key: &str) {
        let prefix = format!("{key}.");
        self.sources.retain(|k, _| !k.starts_with(&prefix));
    }

    fn source_of(&self, key: &str) -> &str {
        self.sources.get(key).map_or(BUILT_IN_DEFAULT, String::as_str)
    }
}

/// Deep-merges `layer` into `into`, recording provenance.
fn merge(into: &mut Table, layer: Table, prefix: &str, label: &str, provenance: &mut Provenance) {
    for (name, value) in layer {
        let key = join(prefix, &name);
        match (into.get_mut(&name), value) {
            (Some(Value::Table(existing)), Value::Table(incoming)) => {
                provenance.sources.insert(key.clone(), label.to_owned());
                merge(existing, incoming, &key, label, provenance);
            }
            (_, value) => {
                provenance.forget_below(&key);
                provenance.record(&key, label, &value);
                into.insert(name, value);
            }
        }
    }
}

fn range_error(problem: ConfigProblem, provenance: &Provenance) -> ConfigError {
    let file = provenance.source_of(&problem.key);
    let mut message = problem.message;
    if let Some(related) = &problem.related_key {
        let related_file = provenance.source_of(related);
        if related_file != file {
            message = format!("{message}; `{related}` comes from {related_file}");
        }
    }
    ConfigError::Key { file: file.to_owned(), key: problem.key, problem: KeyProblem::OutOfRange(message) }
}

impl fmt::Display for ConfigSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigSource::Embedded => f.write_str("embedded config/tasker"),
            ConfigSource::Directory(root) => write!(f, "{}", root.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_are_one_based_and_count_characters() {
        let text = "a = 1\nbé = x\n";
        assert_eq!(line_and_column(text, 0), (1, 1));
        assert_eq!(line_and_column(text, 6), (2, 1));
        let x = text.find('x').unwrap();
        assert_eq!(line_and_column(text, x), (2, 6));
    }

    #[test]
    fn nest_builds_tables_and_rejects_empty_segments() {
        let table = nest("a.b.c", Value::Integer(1)).unwrap();
        assert_eq!(table["a"]["b"]["c"], Value::Integer(1));
        assert!(matches!(nest("a..c", Value::Integer(1)), Err(ConfigError::MalformedOverrideKey { .. })));
        assert!(matches!(nest("", Value::Integer(1)), Err(ConfigError::MalformedOverrideKey { .. })));
    }

    #[test]
    fn suggestion_finds_a_typo_but_not_an_unrelated_word() {
        let keys = ["max_concurrent_handlers".to_owned(), "handler_timeout_ms".to_owned()];
        assert_eq!(suggest("max_concurent_handlers", keys.iter()).as_deref(), Some("max_concurrent_handlers"));
        assert_eq!(suggest("colour", keys.iter()), None);
    }

    #[test]
    fn merge_replaces_scalars_merges_tables_and_tracks_the_last_setter() {
        let mut merged = Table::new();
        let mut provenance = Provenance::default();
        merge(&mut merged, toml::from_str("[t]\na = 1\nb = 2").unwrap(), "", "first", &mut provenance);
        merge(&mut merged, toml::from_str("[t]\nb = 3").unwrap(), "", "second", &mut provenance);
        assert_eq!(merged["t"]["a"], Value::Integer(1));
        assert_eq!(merged["t"]["b"], Value::Integer(3));
        assert_eq!(provenance.source_of("t.a"), "first");
        assert_eq!(provenance.source_of("t.b"), "second");
        assert_eq!(provenance.source_of("t.c"), BUILT_IN_DEFAULT);
    }

    #[test]
    fn embedded_environments_are_listed_when_one_is_unknown() {
        let error = embedded_layers("prodution").err().unwrap();
        let text = error.to_string();
        assert!(text.contains("`prodution`"), "{text}");
        assert!(text.contains("development, production, test"), "{text}");
    }
}
