//! Loading the layered TOML configuration: shipped files, layer order, and errors that
//! name the file and key.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};

use tasker_worker::{embedded_files, KeyProblem, OVERRIDES_LABEL};
use tasker_worker::{ConfigError, ConfigLoader, ConfigSource, TaskerConfig};
use tempfile::TempDir;
use toml::Value;

const HD: &str = "mpsc_channels.worker.handler_dispatch";

fn shipped_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/tasker")
}

/// A configuration root in a temporary directory, built from (relative path, text) pairs.
fn root_with(files: &[(&str, &str)]) -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in files {
        let path = dir.path().join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }
    dir
}

/// A root holding copies of the shipped base files plus the given extra files.
fn shipped_base_plus(files: &[(&str, &str)]) -> TempDir {
    let dir = root_with(files);
    let base = dir.path().join("base");
    fs::create_dir_all(&base).unwrap();
    for entry in fs::read_dir(shipped_root().join("base")).unwrap() {
        let path = entry.unwrap().path();
        let target = base.join(path.file_name().unwrap());
        if !target.exists() {
            fs::copy(&path, target).unwrap();
        }
    }
    fs::create_dir_all(dir.path().join("environments/plain")).unwrap();
    dir
}

fn load_dir(root: &Path, env: &str) -> Result<TaskerConfig, ConfigError> {
    ConfigLoader::new(ConfigSource::Directory(root.to_path_buf()), env).load()
}

fn path_str(root: &Path, rel: &str) -> String {
    root.join(rel).display().to_string()
}

/// The single `Key` error of `error`, as (file, key, problem).
fn single_key_error(error: &ConfigError) -> (&str, &str, &KeyProblem) {
    let errors = error.errors();
    assert_eq!(errors.len(), 1, "expected one error, got: {error}");
    match errors[0] {
        ConfigError::Key { file, key, problem } => (file.as_str(), key.as_str(), problem),
        other => panic!("expected a key error, got: {other}"),
    }
}

/// Dotted keys of every leaf of a TOML table.
fn leaf_keys(table: &toml::Table, prefix: &str, out: &mut BTreeSet<String>) {
    for (name, value) in table {
        let key = if prefix.is_empty() { name.clone() } else { format!("{prefix}.{name}") };
        match value {
            Value::Table(sub) => leaf_keys(sub, &key, out),
            _ => {
                out.insert(key);
            }
        }
    }
}

fn toml_files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

// --- shipped files ---------------------------------------------------------------

#[test]
fn embedded_development_equals_struct_defaults() {
    let config = ConfigLoader::new(ConfigSource::Embedded, "development").load().unwrap();
    assert_eq!(config, TaskerConfig::default());
}

#[test]
fn shipped_base_files_alone_equal_struct_defaults() {
    let root = shipped_base_plus(&[]);
    assert_eq!(load_dir(root.path(), "plain").unwrap(), TaskerConfig::default());
}

#[test]
fn shipped_base_files_set_every_leaf_key_of_the_defaults() {
    let Value::Table(defaults) = Value::try_from(TaskerConfig::default()).unwrap() else {
        panic!("defaults do not serialize to a table");
    };
    let mut expected = BTreeSet::new();
    leaf_keys(&defaults, "", &mut expected);

    let mut in_base = BTreeSet::new();
    for path in toml_files_under(&shipped_root().join("base")) {
        let table: toml::Table = toml::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
        leaf_keys(&table, "", &mut in_base);
    }
    let missing: Vec<_> = expected.difference(&in_base).collect();
    assert!(missing.is_empty(), "keys of TaskerConfig missing from config/tasker/base: {missing:?}");
    assert!(expected.contains(&format!("{HD}.max_concurrent_handlers")));
    assert_eq!(expected.len(), 37, "leaf count of TaskerConfig changed: {expected:?}");
}

#[test]
fn every_key_in_the_shipped_base_files_has_a_comment() {
    for path in toml_files_under(&shipped_root().join("base")) {
        for (number, line) in fs::read_to_string(&path).unwrap().lines().enumerate() {
            let trimmed = line.trim_start();
            if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with('[') {
                continue;
            }
            let comment = line.split_once('#').map(|(_, c)| c.trim()).unwrap_or("");
            assert!(comment.len() > 10, "{}:{}: key without a comment: {line}", path.display(), number + 1);
        }
    }
}

#[test]
fn reference_handler_dispatch_table_is_shipped_verbatim() {
    let text = fs::read_to_string(shipped_root().join("base/mpsc_channels.toml")).unwrap();
    let table: toml::Table = toml::from_str(&text).unwrap();
    let hd = &table["mpsc_channels"]["worker"]["handler_dispatch"];
    assert_eq!(hd["dispatch_buffer_size"].as_integer(), Some(1000));
    assert_eq!(hd["completion_buffer_size"].as_integer(), Some(1000));
    assert_eq!(hd["max_concurrent_handlers"].as_integer(), Some(10));
    assert_eq!(hd["handler_timeout_ms"].as_integer(), Some(30000));
}

#[test]
fn embedded_files_are_exactly_the_files_on_disk() {
    let root = shipped_root();
    let mut on_disk = BTreeSet::new();
    for path in toml_files_under(&root.join("base")) {
        on_disk.insert(path);
    }
    for env in fs::read_dir(root.join("environments")).unwrap() {
        let env = env.unwrap().path();
        if env.is_dir() {
            on_disk.extend(toml_files_under(&env));
        }
    }
    let on_disk: BTreeSet<String> =
        on_disk.iter().map(|p| p.strip_prefix(&root).unwrap().to_string_lossy().replace('\\', "/")).collect();
    let embedded: BTreeSet<String> = embedded_files().iter().map(|f| f.path.to_owned()).collect();
    assert_eq!(embedded, on_disk, "update the embedded_files! list in config/loader.rs");
    for file in embedded_files() {
        assert_eq!(file.contents, fs::read_to_string(root.join(file.path)).unwrap(), "{} is stale", file.path);
    }
}

#[test]
fn shipped_directory_and_embedded_agree_for_every_environment() {
    for env in ["development", "test", "production"] {
        let embedded = ConfigLoader::new(ConfigSource::Embedded, env).load().unwrap();
        let directory = load_dir(&shipped_root(), env).unwrap();
        assert_eq!(embedded, directory, "environment {env}");
    }
}

#[test]
fn test_environment_shortens_timeouts_and_keeps_the_rest() {
    let config = ConfigLoader::new(ConfigSource::Embedded, "test").load().unwrap();
    let mut expected = TaskerConfig::default();
    expected.mpsc_channels.worker.handler_dispatch.handler_timeout_ms = 5000;
    expected.mpsc_channels.worker.ffi_dispatch.starvation_threshold_ms = 2000;
    expected.orchestration.default_retry.backoff_base_ms = 10;
    expected.orchestration.default_retry.max_backoff_ms = 200;
    expected.worker.shutdown_timeout_ms = 5000;
    expected.worker.hung_handler_grace_ms = 1000;
    assert_eq!(config, expected);
}

#[test]
fn production_environment_enlarges_buffers_and_concurrency() {
    let config = ConfigLoader::new(ConfigSource::Embedded, "production").load().unwrap();
    let defaults = TaskerConfig::default();
    let hd = &config.mpsc_channels.worker.handler_dispatch;
    assert!(hd.dispatch_buffer_size > defaults.mpsc_channels.worker.handler_dispatch.dispatch_buffer_size);
    assert!(hd.max_concurrent_handlers > defaults.mpsc_channels.worker.handler_dispatch.max_concurrent_handlers);
    assert!(config.worker.concurrency > defaults.worker.concurrency);
    assert_eq!(hd.handler_timeout_ms, defaults.mpsc_channels.worker.handler_dispatch.handler_timeout_ms);
    assert_eq!(config.orchestration.default_retry, defaults.orchestration.default_retry);
}

// --- layering --------------------------------------------------------------------

#[test]
fn layers_apply_in_order_base_then_environment_then_overrides() {
    let root = root_with(&[
        (
            "base/a.toml",
            "[mpsc_channels.worker.handler_dispatch]\nhandler_timeout_ms = 1000\nmax_concurrent_handlers = 3\n",
        ),
        ("environments/e/x.toml", "[mpsc_channels.worker.handler_dispatch]\nhandler_timeout_ms = 2000\n"),
    ]);
    let loader = ConfigLoader::new(ConfigSource::Directory(root.path().to_path_buf()), "e");

    let config = loader.load().unwrap();
    assert_eq!(config.mpsc_channels.worker.handler_dispatch.handler_timeout_ms, 2000);
    assert_eq!(config.mpsc_channels.worker.handler_dispatch.max_concurrent_handlers, 3);
    // Keys no file sets keep their defaults.
    assert_eq!(config.worker, TaskerConfig::default().worker);

    let config = loader
        .clone()
        .with_override(format!("{HD}.handler_timeout_ms"), Value::Integer(3000))
        .with_override("worker.concurrency", Value::Integer(4))
        .load()
        .unwrap();
    assert_eq!(config.mpsc_channels.worker.handler_dispatch.handler_timeout_ms, 3000);
    assert_eq!(config.mpsc_channels.worker.handler_dispatch.max_concurrent_handlers, 3);
    assert_eq!(config.worker.concurrency, 4);
}

#[test]
fn files_of_a_layer_apply_in_name_order() {
    let root = root_with(&[
        ("base/b.toml", "[worker]\nconcurrency = 2\n"),
        ("base/a.toml", "[worker]\nconcurrency = 1\nruntime_threads = 3\n"),
        ("environments/e/z.toml", "[worker]\npoll_timeout_ms = 7\n"),
        ("environments/e/y.toml", "[worker]\npoll_timeout_ms = 5\n"),
        ("environments/e/notes.txt", "not toml at all ["),
    ]);
    let config = load_dir(root.path(), "e").unwrap();
    assert_eq!(config.worker.concurrency, 2);
    assert_eq!(config.worker.runtime_threads, 3);
    assert_eq!(config.worker.poll_timeout_ms, 7);
}

#[test]
fn an_override_may_set_a_whole_table() {
    let mut retry = toml::Table::new();
    retry.insert("max_attempts".into(), Value::Integer(7));
    let config = ConfigLoader::new(ConfigSource::Embedded, "test")
        .with_override("orchestration.default_retry", Value::Table(retry))
        .load()
        .unwrap();
    assert_eq!(config.orchestration.default_retry.max_attempts, 7);
    // The environment's other keys in that table survive the deep merge.
    assert_eq!(config.orchestration.default_retry.backoff_base_ms, 10);
}

#[test]
fn from_lookup_reads_root_and_environment() {
    let loader = ConfigLoader::from_lookup(|_| None);
    assert_eq!(loader.source(), &ConfigSource::Embedded);
    assert_eq!(loader.environment(), "development");

    let loader = ConfigLoader::from_lookup(|name| match name {
        "TASKER_CONFIG_ROOT" => Some(OsString::from("/etc/tasker")),
        "TASKER_ENV" => Some(OsString::from("production")),
        _ => None,
    });
    assert_eq!(loader.source(), &ConfigSource::Directory(PathBuf::from("/etc/tasker")));
    assert_eq!(loader.environment(), "production");

    let loader = ConfigLoader::from_lookup(|_| Some(OsString::new()));
    assert_eq!(loader.source(), &ConfigSource::Embedded);
    assert_eq!(loader.environment(), "development");
}

// --- errors ----------------------------------------------------------------------

#[test]
fn unknown_key_names_file_and_dotted_key_and_suggests_the_spelling() {
    let root = shipped_base_plus(&[(
        "base/mpsc_channels.toml",
        "[mpsc_channels.worker.handler_dispatch]\nmax_concurent_handlers = 20\n",
    )]);
    let error = load_dir(root.path(), "plain").unwrap_err();
    let (file, key, problem) = single_key_error(&error);
    assert_eq!(file, path_str(root.path(), "base/mpsc_channels.toml"));
    assert_eq!(key, format!("{HD}.max_concurent_handlers"));
    assert!(matches!(problem, KeyProblem::Unknown { suggestion: Some(s) } if s == "max_concurrent_handlers"));
    let text = error.to_string();
    assert!(text.contains(&path_str(root.path(), "base/mpsc_channels.toml")), "{text}");
    assert!(text.contains("mpsc_channels.worker.handler_dispatch.max_concurent_handlers"), "{text}");
}

#[test]
fn unknown_table_is_reported_too() {
    let root = shipped_base_plus(&[("environments/plain/extra.toml", "[mpsc_channels.workers]\nx = 1\n")]);
    let error = load_dir(root.path(), "plain").unwrap_err();
    let (file, key, problem) = single_key_error(&error);
    assert_eq!(file, path_str(root.path(), "environments/plain/extra.toml"));
    assert_eq!(key, "mpsc_channels.workers");
    assert!(matches!(problem, KeyProblem::Unknown { .. }));
}

#[test]
fn wrong_type_names_file_key_and_that_an_integer_was_expected() {
    let root = shipped_base_plus(&[(
        "environments/plain/mpsc_channels.toml",
        "[mpsc_channels.worker.handler_dispatch]\nmax_concurrent_handlers = \"ten\"\n",
    )]);
    let error = load_dir(root.path(), "plain").unwrap_err();
    let (file, key, problem) = single_key_error(&error);
    assert_eq!(file, path_str(root.path(), "environments/plain/mpsc_channels.toml"));
    assert_eq!(key, format!("{HD}.max_concurrent_handlers"));
    assert_eq!(problem, &KeyProblem::WrongType { expected: "an integer", found: "a string (\"ten\")".to_owned() });
    let text = error.to_string();
    assert!(text.contains("expected an integer"), "{text}");
}

#[test]
fn a_table_where_a_value_belongs_is_a_wrong_type() {
    let root = shipped_base_plus(&[("environments/plain/w.toml", "[worker.concurrency]\nx = 1\n")]);
    let error = load_dir(root.path(), "plain").unwrap_err();
    let (_, key, problem) = single_key_error(&error);
    assert_eq!(key, "worker.concurrency");
    assert!(matches!(problem, KeyProblem::WrongType { expected: "an integer", .. }), "{error}");
}

#[test]
fn a_mistake_is_reported_even_when_a_later_layer_overrides_it() {
    let root = shipped_base_plus(&[
        ("base/worker.toml", "[worker]\nconcurrency = \"many\"\n"),
        ("environments/plain/worker.toml", "[worker]\nconcurrency = 4\n"),
    ]);
    let error = load_dir(root.path(), "plain").unwrap_err();
    let (file, key, _) = single_key_error(&error);
    assert_eq!(file, path_str(root.path(), "base/worker.toml"));
    assert_eq!(key, "worker.concurrency");
}

#[test]
fn an_integer_is_accepted_where_a_float_is_expected() {
    let root = shipped_base_plus(&[("environments/plain/r.toml", "[orchestration.default_retry]\njitter = 0\n")]);
    assert_eq!(load_dir(root.path(), "plain").unwrap().orchestration.default_retry.jitter, 0.0);
}

#[test]
fn unrepresentable_integer_names_file_and_key() {
    let root = shipped_base_plus(&[("environments/plain/w.toml", "[worker]\nruntime_threads = -2\n")]);
    let error = load_dir(root.path(), "plain").unwrap_err();
    let (file, key, problem) = single_key_error(&error);
    assert_eq!(file, path_str(root.path(), "environments/plain/w.toml"));
    assert_eq!(key, "worker.runtime_threads");
    assert_eq!(
        problem,
        &KeyProblem::InvalidValue("invalid value: integer `-2`, expected a non-negative integer".into())
    );

    let root = shipped_base_plus(&[(
        "environments/plain/r.toml",
        "[orchestration.default_retry]\nmax_attempts = 5000000000\n",
    )]);
    let error = load_dir(root.path(), "plain").unwrap_err();
    let (file, key, problem) = single_key_error(&error);
    assert_eq!(file, path_str(root.path(), "environments/plain/r.toml"));
    assert_eq!(key, "orchestration.default_retry.max_attempts");
    assert!(matches!(problem, KeyProblem::InvalidValue(m) if m.contains("5000000000")), "{error}");
}

#[test]
fn out_of_range_value_names_the_file_that_set_it() {
    let root = shipped_base_plus(&[(
        "environments/plain/mpsc_channels.toml",
        "[mpsc_channels.worker.handler_dispatch]\nmax_concurrent_handlers = 0\n",
    )]);
    let error = load_dir(root.path(), "plain").unwrap_err();
    let (file, key, problem) = single_key_error(&error);
    assert_eq!(file, path_str(root.path(), "environments/plain/mpsc_channels.toml"));
    assert_eq!(key, format!("{HD}.max_concurrent_handlers"));
    assert_eq!(problem, &KeyProblem::OutOfRange("must be between 1 and 10000, got 0".to_owned()));
}

#[test]
fn backoff_base_above_max_backoff_names_both_files() {
    let root =
        shipped_base_plus(&[("environments/plain/r.toml", "[orchestration.default_retry]\nmax_backoff_ms = 50\n")]);
    let error = load_dir(root.path(), "plain").unwrap_err();
    let (file, key, problem) = single_key_error(&error);
    assert_eq!(file, path_str(root.path(), "base/orchestration.toml"));
    assert_eq!(key, "orchestration.default_retry.backoff_base_ms");
    let KeyProblem::OutOfRange(message) = problem else { panic!("not a range error: {error}") };
    assert!(message.contains("max_backoff_ms (50), got 100"), "{message}");
    assert!(message.contains(&path_str(root.path(), "environments/plain/r.toml")), "{message}");
}

#[test]
fn every_problem_is_reported_at_once() {
    let root = shipped_base_plus(&[
        ("environments/plain/a.toml", "[worker]\nthreads = 2\n"),
        ("environments/plain/b.toml", "[storage.embedded]\nmax_unfinished_tasks = true\n"),
    ]);
    let error = load_dir(root.path(), "plain").unwrap_err();
    let keys: Vec<_> = error
        .errors()
        .into_iter()
        .map(|e| match e {
            ConfigError::Key { file, key, .. } => (file.clone(), key.clone()),
            other => panic!("unexpected {other}"),
        })
        .collect();
    assert_eq!(
        keys,
        [
            (path_str(root.path(), "environments/plain/a.toml"), "worker.threads".to_owned()),
            (path_str(root.path(), "environments/plain/b.toml"), "storage.embedded.max_unfinished_tasks".to_owned()),
        ]
    );
    assert!(error.to_string().starts_with("2 configuration errors:"), "{error}");
}

#[test]
fn toml_syntax_error_names_file_and_line() {
    let root = shipped_base_plus(&[("environments/plain/broken.toml", "[worker]\nconcurrency = = 3\n")]);
    let error = load_dir(root.path(), "plain").unwrap_err();
    let ConfigError::Syntax { file, line, .. } = &error else { panic!("not a syntax error: {error}") };
    assert_eq!(file, &path_str(root.path(), "environments/plain/broken.toml"));
    assert_eq!(*line, Some(2));
    assert!(error.to_string().starts_with(&format!("{}:2:", path_str(root.path(), "environments/plain/broken.toml"))));
}

#[test]
fn unknown_environment_is_an_error_naming_the_directory() {
    let error = load_dir(&shipped_root(), "prodution").unwrap_err();
    let ConfigError::UnknownEnvironment { environment, location, available } = &error else {
        panic!("unexpected {error}")
    };
    assert_eq!(environment, "prodution");
    assert_eq!(location, &path_str(&shipped_root(), "environments/prodution"));
    assert_eq!(available, "development, production, test");

    let error = ConfigLoader::new(ConfigSource::Embedded, "prodution").load().unwrap_err();
    assert!(matches!(error, ConfigError::UnknownEnvironment { .. }), "{error}");
    assert!(error.to_string().contains("prodution"), "{error}");
}

#[test]
fn environment_names_that_are_not_plain_names_are_rejected() {
    for name in ["", "../base", "a/b", "."] {
        let error = load_dir(&shipped_root(), name).unwrap_err();
        assert!(matches!(error, ConfigError::InvalidEnvironmentName { .. }), "{name:?}: {error}");
    }
}

#[test]
fn missing_root_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("nowhere");
    let error = load_dir(&root, "development").unwrap_err();
    assert!(matches!(&error, ConfigError::MissingRoot { path } if path == &root), "{error}");
    assert!(error.to_string().contains(&root.display().to_string()));
}

#[test]
fn missing_or_empty_base_directory_is_an_error_naming_it() {
    let root = root_with(&[("environments/e/w.toml", "")]);
    let error = load_dir(root.path(), "e").unwrap_err();
    assert!(matches!(&error, ConfigError::MissingBaseDir { path } if path == &root.path().join("base")), "{error}");

    fs::create_dir(root.path().join("base")).unwrap();
    let error = load_dir(root.path(), "e").unwrap_err();
    assert!(matches!(&error, ConfigError::EmptyBaseDir { path } if path == &root.path().join("base")), "{error}");
}

#[test]
fn override_with_an_unknown_key_names_the_key_and_the_label() {
    let error = ConfigLoader::new(ConfigSource::Embedded, "development")
        .with_override(format!("{HD}.max_concurrent_handler"), Value::Integer(20))
        .load()
        .unwrap_err();
    let (file, key, problem) = single_key_error(&error);
    assert_eq!(file, OVERRIDES_LABEL);
    assert_eq!(key, format!("{HD}.max_concurrent_handler"));
    assert!(matches!(problem, KeyProblem::Unknown { .. }));
    assert!(error.to_string().starts_with("bootstrap_worker options: "), "{error}");
}

#[test]
fn override_with_a_wrong_type_or_range_names_the_label() {
    let error = ConfigLoader::new(ConfigSource::Embedded, "development")
        .with_override("worker.concurrency", Value::String("ten".into()))
        .load()
        .unwrap_err();
    assert_eq!(single_key_error(&error).0, OVERRIDES_LABEL);

    let error = ConfigLoader::new(ConfigSource::Embedded, "development")
        .with_override("worker.concurrency", Value::Integer(0))
        .load()
        .unwrap_err();
    let (file, key, problem) = single_key_error(&error);
    assert_eq!((file, key), (OVERRIDES_LABEL, "worker.concurrency"));
    assert!(matches!(problem, KeyProblem::OutOfRange(_)));

    let error = ConfigLoader::new(ConfigSource::Embedded, "development")
        .with_override("worker..concurrency", Value::Integer(4))
        .load()
        .unwrap_err();
    assert!(matches!(&error, ConfigError::MalformedOverrideKey { label, .. } if label == OVERRIDES_LABEL), "{error}");
}

#[test]
fn errors_in_embedded_files_carry_an_embedded_label() {
    let error = ConfigLoader::new(ConfigSource::Embedded, "test")
        .with_override("orchestration.default_retry.backoff_base_ms", Value::Integer(1000))
        .load()
        .unwrap_err();
    let (file, key, problem) = single_key_error(&error);
    assert_eq!((file, key), (OVERRIDES_LABEL, "orchestration.default_retry.backoff_base_ms"));
    let KeyProblem::OutOfRange(message) = problem else { panic!("{error}") };
    assert!(message.contains("embedded config/tasker/environments/test/orchestration.toml"), "{message}");
}

/// Every leaf key of the configuration, with its default value.
fn default_leaves() -> Vec<(String, toml::Value)> {
    fn walk(table: &toml::Table, prefix: &str, out: &mut Vec<(String, toml::Value)>) {
        for (key, value) in table {
            let dotted = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
            match value {
                toml::Value::Table(inner) => walk(inner, &dotted, out),
                leaf => out.push((dotted, leaf.clone())),
            }
        }
    }
    let toml::Value::Table(root) = toml::Value::try_from(TaskerConfig::default()).unwrap() else {
        panic!("the defaults are a table")
    };
    let mut out = Vec::new();
    walk(&root, "", &mut out);
    out
}

/// A one-key override file for `dotted` = `value` (TOML text).
fn override_file(dotted: &str, value: &str) -> String {
    let (table, key) = dotted.rsplit_once('.').unwrap();
    format!("[{table}]\n{key} = {value}\n")
}

#[test]
fn every_key_rejects_a_value_of_the_wrong_type_naming_file_and_key() {
    let leaves = default_leaves();
    assert!(leaves.len() >= 20, "{leaves:?}");
    for (key, default) in leaves {
        let wrong = match default {
            toml::Value::String(_) => "42",
            _ => "\"not a number or boolean\"",
        };
        let root = shipped_base_plus(&[("environments/plain/x.toml", &override_file(&key, wrong))]);
        let error = load_dir(root.path(), "plain").expect_err(&key);
        let (file, named, problem) = single_key_error(&error);
        assert_eq!(file, path_str(root.path(), "environments/plain/x.toml"), "{key}: {error}");
        assert_eq!(named, key, "{error}");
        assert!(matches!(problem, KeyProblem::WrongType { .. }), "{key}: {error}");
    }
}

#[test]
fn every_bounded_key_rejects_a_value_out_of_range_naming_file_and_key() {
    let out_of_range = [
        (format!("{HD}.dispatch_buffer_size"), "0"),
        (format!("{HD}.completion_buffer_size"), "1000001"),
        (format!("{HD}.max_concurrent_handlers"), "10001"),
        (format!("{HD}.handler_timeout_ms"), "0"),
        ("mpsc_channels.worker.ffi_dispatch.starvation_threshold_ms".to_owned(), "0"),
        ("mpsc_channels.worker.ffi_dispatch.late_completion_memory".to_owned(), "10000001"),
        ("mpsc_channels.worker.completion.actor_buffer_size".to_owned(), "0"),
        ("mpsc_channels.worker.completion.batch_size".to_owned(), "10001"),
        ("storage.embedded.finished_task_retention_seconds".to_owned(), "315360001"),
        ("storage.embedded.finished_task_memory_budget_bytes".to_owned(), "1099511627777"),
        ("storage.embedded.max_unfinished_tasks".to_owned(), "0"),
        ("storage.postgres.pool_size".to_owned(), "0"),
        ("storage.postgres.pool_wait_timeout_ms".to_owned(), "0"),
        ("storage.postgres.claim_batch_size".to_owned(), "1001"),
        ("storage.postgres.prefetch".to_owned(), "0"),
        ("storage.postgres.heartbeat_interval_ms".to_owned(), "9"),
        ("storage.postgres.worker_lost_after_ms".to_owned(), "1999"),
        ("storage.postgres.poll_interval_ms".to_owned(), "0"),
        ("storage.postgres.finished_task_retention_seconds".to_owned(), "315360001"),
        ("storage.postgres.purge_batch_size".to_owned(), "0"),
        ("storage.postgres.purge_interval_ms".to_owned(), "9"),
        ("storage.postgres.vacuum_dead_steps".to_owned(), "1000000001"),
        ("storage.postgres.reconnect_initial_ms".to_owned(), "60001"),
        ("storage.postgres.reconnect_max_ms".to_owned(), "600001"),
        ("storage.postgres.listener_ping_interval_ms".to_owned(), "99"),
        ("orchestration.default_retry.max_attempts".to_owned(), "0"),
        ("orchestration.default_retry.backoff_base_ms".to_owned(), "999999"),
        ("orchestration.default_retry.max_backoff_ms".to_owned(), "86400001"),
        ("orchestration.default_retry.jitter".to_owned(), "1.5"),
        ("worker.runtime_threads".to_owned(), "0"),
        ("worker.concurrency".to_owned(), "10001"),
        ("worker.poll_timeout_ms".to_owned(), "60001"),
        ("worker.shutdown_timeout_ms".to_owned(), "86400001"),
        ("worker.hung_handler_grace_ms".to_owned(), "86400001"),
    ];
    // Every numeric key has a bound, and each is exercised here.
    let numeric: BTreeSet<String> = default_leaves()
        .into_iter()
        .filter(|(_, v)| matches!(v, toml::Value::Integer(_) | toml::Value::Float(_)))
        .map(|(k, _)| k)
        .collect();
    let listed: BTreeSet<String> = out_of_range.iter().map(|(k, _)| k.clone()).collect();
    assert_eq!(listed, numeric);
    for (key, value) in &out_of_range {
        let root = shipped_base_plus(&[("environments/plain/x.toml", &override_file(key, value))]);
        let error = load_dir(root.path(), "plain").expect_err(key);
        let problems: Vec<&ConfigError> = error.errors();
        let named = problems.iter().any(|e| {
            let text = e.to_string();
            text.contains(key.as_str()) && text.contains(&path_str(root.path(), "environments/plain/x.toml"))
        });
        assert!(named, "{key} = {value}: {error}");
    }
}
