//! Task templates end to end: YAML parsing, checking and compiling, the registry, and the
//! sample templates shipped in `config/templates`.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::json;
use tasker_worker::RetryDefaults;
use tasker_worker::{compile, parse_yaml, Problem};
use tasker_worker::{TemplateError, TemplateRegistry, WorkflowTemplate};

const FILE: &str = "templates/sample.yaml";

fn file() -> PathBuf {
    PathBuf::from(FILE)
}

fn compile_with(yaml: &str, defaults: &RetryDefaults) -> Result<WorkflowTemplate, TemplateError> {
    let template = parse_yaml(yaml, Some(&file()))?;
    compile(template, defaults, Some(file()))
}

fn compile_yaml(yaml: &str) -> Result<WorkflowTemplate, TemplateError> {
    compile_with(yaml, &RetryDefaults::default())
}

/// Compiles `yaml`, expects an error, and returns its message.
fn error_of(yaml: &str) -> String {
    match compile_yaml(yaml) {
        Ok(t) => panic!("expected an error, compiled {}/{} with {} steps", t.namespace, t.name, t.steps.len()),
        Err(err) => err.to_string(),
    }
}

fn assert_mentions(message: &str, parts: &[&str]) {
    for part in parts {
        assert!(message.contains(part), "expected {part:?} in error message:\n{message}");
    }
}

/// A template header followed by `steps`.
fn with_steps(steps: &str) -> String {
    format!("name: sample\nnamespace_name: demo\nversion: 1.0.0\nsteps:\n{steps}")
}

const DIAMOND: &str = "\
name: diamond
namespace_name: demo
version: 1.2.3
description: a diamond
steps:
  - name: start
    handler: { callable: Demo::Start }
  - name: left
    handler: { callable: Demo::Left }
    dependencies: [start]
    timeout_seconds: 2.5
  - name: right
    handler: { callable: Demo::Right, initialization: { speed: fast } }
    dependencies: [start]
    inputs: { factor: 3, tags: [a, b] }
  - name: join
    handler: { callable: '  Demo::Join  ' }
    dependencies: [right, left]
";

// ---------------------------------------------------------------- compiling valid templates

#[test]
fn diamond_compiles_with_dependency_indices_dependents_and_roots() {
    let t = compile_yaml(DIAMOND).unwrap();
    assert_eq!((t.namespace.as_str(), t.name.as_str(), t.version.as_str()), ("demo", "diamond", "1.2.3"));
    assert_eq!(t.version_key, semver::Version::new(1, 2, 3));
    assert_eq!(t.source.as_deref(), Some(Path::new(FILE)));
    let names: Vec<&str> = t.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["start", "left", "right", "join"]);

    // Dependencies keep the YAML order (join lists right before left).
    assert_eq!(t.dependencies, vec![vec![], vec![0], vec![0], vec![2, 1]]);
    // Dependents are in step order.
    assert_eq!(t.dependents, vec![vec![1, 2], vec![3], vec![3], vec![]]);
    assert_eq!(t.root_steps().collect::<Vec<_>>(), vec![0]);
    assert_eq!(t.step_index("join"), Some(3));
    assert_eq!(t.steps[3].dependencies, ["right", "left"]);
}

#[test]
fn compiled_steps_carry_handler_timeout_and_inputs() {
    let t = compile_yaml(DIAMOND).unwrap();
    assert_eq!(t.steps[3].handler.callable, "Demo::Join", "callable is trimmed");
    assert_eq!(t.steps[2].handler.initialization, Some(json!({"speed": "fast"})));
    assert_eq!(t.steps[1].timeout_seconds, Some(2.5));
    assert_eq!(t.steps[0].timeout_seconds, None);
    assert_eq!(*t.steps[2].inputs, json!({"factor": 3, "tags": ["a", "b"]}));
    assert_eq!(*t.steps[0].inputs, json!({}), "absent inputs are an empty object");
}

#[test]
fn null_inputs_are_an_empty_object() {
    let t = compile_yaml(&with_steps("  - name: a\n    handler: { callable: A }\n    inputs: ~\n")).unwrap();
    assert_eq!(*t.steps[0].inputs, json!({}));
}

#[test]
fn retry_fields_merge_over_defaults_and_jitter_comes_from_defaults() {
    let defaults =
        RetryDefaults { retryable: false, max_attempts: 7, backoff_base_ms: 20, max_backoff_ms: 900, jitter: 0.35 };
    let yaml = with_steps(
        "  - name: full
    handler: { callable: A }
    retry: { retryable: true, max_attempts: 2, backoff_base_ms: 10, max_backoff_ms: 40 }
  - name: partial
    handler: { callable: B }
    retry: { max_attempts: 5 }
  - name: none
    handler: { callable: C }
",
    );
    let t = compile_with(&yaml, &defaults).unwrap();
    let r = |i: usize| &t.steps[i].retry;
    assert_eq!((r(0).retryable, r(0).max_attempts, r(0).backoff_base_ms, r(0).max_backoff_ms), (true, 2, 10, 40));
    assert_eq!((r(1).retryable, r(1).max_attempts, r(1).backoff_base_ms, r(1).max_backoff_ms), (false, 5, 20, 900));
    assert_eq!((r(2).retryable, r(2).max_attempts, r(2).backoff_base_ms, r(2).max_backoff_ms), (false, 7, 20, 900));
    for i in 0..3 {
        assert_eq!(r(i).jitter, 0.35);
    }
}

#[test]
fn limits_are_inclusive() {
    let t = compile_yaml(&with_steps(
        "  - name: a
    handler: { callable: A }
    retry: { max_attempts: 1000, backoff_base_ms: 86400000, max_backoff_ms: 86400000 }
    timeout_seconds: 86400
  - name: b
    handler: { callable: B }
    retry: { max_attempts: 1 }
    timeout_seconds: 0.001
",
    ))
    .unwrap();
    assert_eq!(t.steps[0].retry.max_attempts, 1000);
    assert_eq!(t.steps[0].timeout_seconds, Some(86400.0));
    assert_eq!(t.steps[1].retry.max_attempts, 1);
}

#[test]
fn prerelease_versions_are_semver() {
    let t = compile_yaml(&with_steps("  - name: a\n    handler: { callable: A }\n").replace("1.0.0", "2.0.0-beta.1"))
        .unwrap();
    assert_eq!(t.version_key, semver::Version::parse("2.0.0-beta.1").unwrap());
}

#[test]
fn compile_without_a_source_still_names_the_template_and_step() {
    let template =
        parse_yaml(&with_steps("  - name: a\n    handler: { callable: A }\n    dependencies: [zzz]\n"), None).unwrap();
    let err = compile(template, &RetryDefaults::default(), None).unwrap_err();
    assert!(err.file().is_none());
    assert_eq!(
        err.to_string(),
        "template demo/sample@1.0.0: step \"a\": `dependencies` names unknown step \"zzz\" (steps in this template: a)"
    );
}

// ---------------------------------------------------------------- template-level rejections

#[test]
fn rejects_an_empty_name() {
    let msg =
        error_of(&with_steps("  - name: a\n    handler: { callable: A }\n").replace("name: sample", "name: '  '"));
    assert_mentions(&msg, &[FILE, "template demo/?@1.0.0", "`name` is empty"]);
}

#[test]
fn rejects_an_empty_namespace() {
    let msg = error_of(
        &with_steps("  - name: a\n    handler: { callable: A }\n")
            .replace("namespace_name: demo", "namespace_name: ''"),
    );
    assert_mentions(&msg, &[FILE, "template ?/sample@1.0.0", "`namespace_name` is empty"]);
}

#[test]
fn rejects_versions_that_are_not_full_semver() {
    for version in ["1.0", "1", "v1.0.0", "latest", "1.0.0.0"] {
        let yaml = with_steps("  - name: a\n    handler: { callable: A }\n").replace("1.0.0", version);
        let msg = error_of(&yaml);
        assert_mentions(
            &msg,
            &[
                FILE,
                &format!("demo/sample@{version}"),
                &format!("`version` {version:?} is not a semantic version"),
                "1.0.0",
            ],
        );
    }
}

#[test]
fn rejects_a_template_without_steps() {
    let msg = error_of("name: sample\nnamespace_name: demo\nversion: 1.0.0\nsteps: []\n");
    assert_mentions(&msg, &[FILE, "demo/sample@1.0.0", "`steps` is empty"]);
}

#[test]
fn rejects_a_missing_required_top_level_key() {
    let msg = error_of("name: sample\nversion: 1.0.0\nsteps: []\n");
    assert_mentions(&msg, &[FILE, "missing field `namespace_name`"]);
}

#[test]
fn rejects_an_empty_file() {
    for text in ["", "   \n", "# only a comment\n", "~\n"] {
        let err = parse_yaml(text, Some(&file())).unwrap_err();
        assert!(matches!(err, TemplateError::Empty { .. }), "{err:?}");
        assert_mentions(&err.to_string(), &[FILE, "no task template in the file: it is empty"]);
    }
}

#[test]
fn rejects_a_document_that_is_not_a_mapping() {
    let msg = error_of("- just\n- a list\n");
    assert_mentions(&msg, &[FILE, "invalid type: sequence, expected a task template"]);
    assert!(!msg.contains("struct"), "no Rust type names: {msg}");
}

#[test]
fn rejects_yaml_syntax_errors_with_file_and_line() {
    let yaml = with_steps("  - name: a\n    handler: { callable: A\n");
    let msg = error_of(&yaml);
    assert_mentions(&msg, &[&format!("{FILE}:7:"), "did not find expected ',' or '}'"]);
    assert!(!msg.contains('?') && !msg.contains("unnamed"), "{msg}");
}

// ---------------------------------------------------------------- step-level rejections

#[test]
fn rejects_an_empty_step_name() {
    let err = compile_yaml(&with_steps(
        "  - name: a\n    handler: { callable: A }\n  - name: ' '\n    handler: { callable: B }\n",
    ))
    .unwrap_err();
    assert!(matches!(err, TemplateError::Invalid { problem: Problem::EmptyStepName, .. }), "{err:?}");
    assert_mentions(&err.to_string(), &[FILE, "demo/sample@1.0.0", "steps[1] (unnamed step)", "step `name` is empty"]);
}

#[test]
fn rejects_duplicate_step_names_naming_both_positions() {
    let msg = error_of(&with_steps(
        "  - name: a\n    handler: { callable: A }\n  - name: b\n    handler: { callable: B }\n  - name: a\n    handler: { callable: C }\n",
    ));
    assert_mentions(&msg, &[FILE, "step \"a\"", "used by more than one step (steps[0] and steps[2])"]);
}

#[test]
fn rejects_a_missing_handler_naming_file_line_and_step() {
    let yaml = with_steps("  - name: a\n    handler: { callable: A }\n  - name: reserve\n    dependencies: [a]\n");
    let err = compile_yaml(&yaml).unwrap_err();
    assert!(matches!(err, TemplateError::Syntax { .. }), "{err:?}");
    let msg = err.to_string();
    assert_mentions(
        &msg,
        &[
            &format!("{FILE}:7:"),
            "template demo/sample@1.0.0",
            "step \"reserve\"",
            "steps[1]",
            "missing field `handler`",
        ],
    );
    // serde_yaml's own location and path are not repeated in the message.
    assert!(!msg.contains("at line"), "{msg}");
    assert_eq!(msg.matches("steps[1]").count(), 1, "{msg}");
}

#[test]
fn rejects_a_handler_that_is_not_a_mapping() {
    let msg = error_of(&with_steps("  - name: a\n    handler: Demo::A\n"));
    assert_mentions(
        &msg,
        &[FILE, "step \"a\"", "steps[0].handler", "invalid type: string \"Demo::A\"", "{ callable: Demo::MyHandler }"],
    );
}

#[test]
fn rejects_an_empty_or_blank_callable() {
    for callable in ["''", "'   '"] {
        let msg = error_of(&with_steps(&format!("  - name: a\n    handler: {{ callable: {callable} }}\n")));
        assert_mentions(&msg, &[FILE, "demo/sample@1.0.0", "step \"a\"", "`handler.callable` is empty"]);
    }
}

#[test]
fn rejects_an_unknown_dependency_naming_it_and_the_step() {
    let msg = error_of(&with_steps(
        "  - name: a\n    handler: { callable: A }\n  - name: b\n    handler: { callable: B }\n    dependencies: [a, ghost]\n",
    ));
    assert_mentions(&msg, &[FILE, "step \"b\"", "unknown step \"ghost\"", "steps in this template: a, b"]);
}

#[test]
fn rejects_a_self_dependency() {
    let msg = error_of(&with_steps("  - name: a\n    handler: { callable: A }\n    dependencies: [a]\n"));
    assert_mentions(&msg, &[FILE, "step \"a\"", "`dependencies` lists the step itself"]);
}

#[test]
fn rejects_a_duplicate_dependency_entry() {
    let msg = error_of(&with_steps(
        "  - name: a\n    handler: { callable: A }\n  - name: b\n    handler: { callable: B }\n    dependencies: [a, a]\n",
    ));
    assert_mentions(&msg, &[FILE, "step \"b\"", "lists \"a\" more than once"]);
}

#[test]
fn rejects_a_cycle_naming_the_steps_on_it() {
    let yaml = with_steps(
        "  - name: a
    handler: { callable: A }
    dependencies: [c]
  - name: b
    handler: { callable: B }
    dependencies: [a]
  - name: c
    handler: { callable: C }
    dependencies: [b]
  - name: outside
    handler: { callable: D }
",
    );
    let err = compile_yaml(&yaml).unwrap_err();
    match &err {
        TemplateError::Invalid { problem: Problem::Cycle { steps }, .. } => assert_eq!(steps, &["a", "c", "b", "a"]),
        other => panic!("expected a cycle error, got {other:?}"),
    }
    assert_mentions(&err.to_string(), &[FILE, "demo/sample@1.0.0", "dependency cycle of 3 steps: a -> c -> b -> a"]);
}

#[test]
fn rejects_a_cycle_that_is_not_reachable_from_a_root() {
    let yaml = with_steps(
        "  - name: root
    handler: { callable: A }
  - name: x
    handler: { callable: B }
    dependencies: [root, y]
  - name: y
    handler: { callable: C }
    dependencies: [x]
",
    );
    assert_mentions(&error_of(&yaml), &["dependency cycle of 2 steps: x -> y -> x"]);
}

#[test]
fn a_cycle_through_ten_thousand_steps_is_reported_in_a_short_message() {
    let mut steps = String::new();
    for i in 0..10_000 {
        let parent = if i == 0 { 9_999 } else { i - 1 };
        steps.push_str(&format!("  - {{ name: s{i}, handler: {{ callable: A }}, dependencies: [s{parent}] }}\n"));
    }
    let msg = error_of(&with_steps(&steps));
    assert!(msg.len() < 1_000, "{} bytes: {msg}", msg.len());
    assert_mentions(&msg, &["dependency cycle of 10000 steps", "... (9989 more) ->"]);
}

#[test]
fn rejects_max_attempts_out_of_range() {
    for value in [1001, 5000] {
        let msg = error_of(&with_steps(&format!(
            "  - name: pay\n    handler: {{ callable: A }}\n    retry: {{ max_attempts: {value} }}\n"
        )));
        assert_mentions(
            &msg,
            &[FILE, "step \"pay\"", "`retry.max_attempts` must be between 1 and 1000", &format!("got {value}")],
        );
        assert!(!msg.contains("default_retry"), "{msg}");
    }
}

#[test]
fn rejects_a_negative_max_attempts_as_a_type_error() {
    let msg = error_of(&with_steps("  - name: pay\n    handler: { callable: A }\n    retry: { max_attempts: -1 }\n"));
    assert_mentions(&msg, &[FILE, "step \"pay\"", "steps[0].retry.max_attempts", "expected u32"]);
}

#[test]
fn rejects_backoff_base_above_max() {
    let msg = error_of(&with_steps(
        "  - name: pay\n    handler: { callable: A }\n    retry: { backoff_base_ms: 600, max_backoff_ms: 500 }\n",
    ));
    assert_mentions(
        &msg,
        &[FILE, "step \"pay\"", "`retry.backoff_base_ms` (600) is greater than `retry.max_backoff_ms` (500)"],
    );
}

#[test]
fn backoff_check_names_values_that_came_from_defaults() {
    // The default max_backoff_ms is 5000; the step raises only the base.
    let msg =
        error_of(&with_steps("  - name: pay\n    handler: { callable: A }\n    retry: { backoff_base_ms: 6000 }\n"));
    assert_mentions(
        &msg,
        &["step \"pay\"", "(6000) is greater than `retry.max_backoff_ms` (5000 from [orchestration.default_retry])"],
    );
}

#[test]
fn rejects_max_backoff_above_one_day() {
    let msg =
        error_of(&with_steps("  - name: pay\n    handler: { callable: A }\n    retry: { max_backoff_ms: 86400001 }\n"));
    assert_mentions(&msg, &[FILE, "step \"pay\"", "`retry.max_backoff_ms` must be at most 86400000", "got 86400001"]);
}

#[test]
fn rejects_bad_defaults_and_says_they_are_defaults() {
    let defaults = RetryDefaults { max_attempts: 0, ..RetryDefaults::default() };
    let msg =
        compile_with(&with_steps("  - name: a\n    handler: { callable: A }\n"), &defaults).unwrap_err().to_string();
    assert_mentions(&msg, &["step \"a\"", "got 0 from [orchestration.default_retry]"]);
}

#[test]
fn rejects_timeouts_out_of_range() {
    for (value, shown) in [
        ("0", "got 0"),
        ("0.0001", "got 0.0001"),
        ("-1", "got -1"),
        (".nan", "got NaN"),
        (".inf", "got inf"),
        ("86400.5", "got 86400.5"),
    ] {
        let msg = error_of(&with_steps(&format!(
            "  - name: slow\n    handler: {{ callable: A }}\n    timeout_seconds: {value}\n"
        )));
        assert_mentions(&msg, &[FILE, "step \"slow\"", "`timeout_seconds` must be a finite number", shown]);
    }
}

#[test]
fn rejects_a_timeout_of_the_wrong_type() {
    let msg = error_of(&with_steps("  - name: slow\n    handler: { callable: A }\n    timeout_seconds: soon\n"));
    assert_mentions(
        &msg,
        &[&format!("{FILE}:7:"), "step \"slow\"", "steps[0].timeout_seconds", "invalid type: string \"soon\""],
    );
}

#[test]
fn rejects_inputs_that_are_not_a_mapping() {
    for (value, kind) in [("[1, 2]", "a sequence"), ("hello", "a string"), ("42", "a number"), ("true", "a boolean")] {
        let msg = error_of(&with_steps(&format!("  - name: a\n    handler: {{ callable: A }}\n    inputs: {value}\n")));
        assert_mentions(
            &msg,
            &[FILE, "step \"a\"", &format!("`inputs` must be a mapping of key: value pairs, got {kind}")],
        );
    }
}

// ---------------------------------------------------------------- unknown keys

#[test]
fn rejects_an_unknown_top_level_key() {
    let msg = error_of(
        &with_steps("  - name: a\n    handler: { callable: A }\n")
            .replace("version: 1.0.0\n", "version: 1.0.0\nowner: me\n"),
    );
    assert_mentions(&msg, &[FILE, "owner", "unknown field `owner`"]);
}

#[test]
fn rejects_an_unknown_step_key_naming_the_step() {
    let msg = error_of(&with_steps(
        "  - name: a\n    handler: { callable: A }\n  - name: b\n    handler: { callable: B }\n    timeout: 5\n",
    ));
    assert_mentions(&msg, &[FILE, "step \"b\"", "steps[1].timeout", "unknown field `timeout`", "timeout_seconds"]);
}

#[test]
fn rejects_an_unknown_handler_key() {
    let msg = error_of(&with_steps("  - name: a\n    handler: { callable: A, class: B }\n"));
    assert_mentions(&msg, &[FILE, "step \"a\"", "steps[0].handler.class", "unknown field `class`"]);
}

#[test]
fn rejects_an_unknown_retry_key() {
    let msg = error_of(&with_steps("  - name: a\n    handler: { callable: A }\n    retry: { attempts: 3 }\n"));
    assert_mentions(&msg, &[FILE, "step \"a\"", "steps[0].retry.attempts", "unknown field `attempts`", "max_attempts"]);
}

#[test]
fn syntax_errors_without_a_file_give_the_line() {
    let err = parse_yaml(&with_steps("  - name: a\n    handler: { callable: A }\n    bogus: 1\n"), None).unwrap_err();
    assert!(err.file().is_none());
    assert_mentions(&err.to_string(), &["line 7 column 5", "step \"a\"", "unknown field `bogus`"]);
}

// ---------------------------------------------------------------- registry

fn template(namespace: &str, name: &str, version: &str) -> WorkflowTemplate {
    let yaml = format!("name: {name}\nnamespace_name: {namespace}\nversion: {version}\nsteps:\n  - name: only\n    handler: {{ callable: A }}\n");
    compile(parse_yaml(&yaml, None).unwrap(), &RetryDefaults::default(), None).unwrap()
}

fn registry() -> TemplateRegistry {
    let mut r = TemplateRegistry::new();
    for (ns, name, v) in [
        ("demo", "flow", "1.2.0"),
        ("demo", "flow", "1.10.0"),
        ("demo", "flow", "1.9.3"),
        ("demo", "other", "0.1.0"),
        ("shop", "order", "2.0.0"),
    ] {
        r.register(template(ns, name, v));
    }
    r
}

#[test]
fn find_without_version_answers_the_highest_semver() {
    let r = registry();
    assert_eq!(r.find("demo", "flow", None).unwrap().version, "1.10.0");
    assert_eq!(r.find("shop", "order", None).unwrap().version, "2.0.0");
}

#[test]
fn find_with_version_answers_that_version() {
    let r = registry();
    let t = r.find("demo", "flow", Some("1.2.0")).unwrap();
    assert_eq!((t.namespace.as_str(), t.name.as_str(), t.version.as_str()), ("demo", "flow", "1.2.0"));
    assert_eq!(r.find("demo", "flow", Some("1.9.3")).unwrap().version_key, semver::Version::new(1, 9, 3));
}

#[test]
fn unknown_namespace_lists_the_known_namespaces() {
    let err = registry().find("billing", "flow", None).unwrap_err();
    assert!(matches!(err, TemplateError::UnknownNamespace { .. }), "{err:?}");
    assert_mentions(
        &err.to_string(),
        &["billing/flow", "namespace \"billing\" is unknown", "known namespaces: demo, shop"],
    );
}

#[test]
fn unknown_namespace_in_an_empty_registry_says_nothing_is_loaded() {
    let msg = TemplateRegistry::new().find("demo", "flow", None).unwrap_err().to_string();
    assert_mentions(&msg, &["demo/flow", "no templates are loaded"]);
}

#[test]
fn unknown_template_lists_the_templates_of_the_namespace() {
    let err = registry().find("demo", "flwo", Some("1.2.0")).unwrap_err();
    assert!(matches!(err, TemplateError::UnknownTemplate { .. }), "{err:?}");
    assert_mentions(&err.to_string(), &["no task template demo/flwo", "templates in namespace demo: flow, other"]);
}

#[test]
fn unknown_version_lists_the_available_versions() {
    let err = registry().find("demo", "flow", Some("3.0.0")).unwrap_err();
    assert!(matches!(err, TemplateError::UnknownVersion { .. }), "{err:?}");
    assert_mentions(&err.to_string(), &["demo/flow has no version 3.0.0", "available versions: 1.2.0, 1.9.3, 1.10.0"]);
}

#[test]
fn a_requested_version_that_is_not_semver_is_explained() {
    let err = registry().find("demo", "flow", Some("1.2")).unwrap_err();
    assert!(matches!(err, TemplateError::InvalidRequestedVersion { .. }), "{err:?}");
    assert_mentions(
        &err.to_string(),
        &["demo/flow", "\"1.2\" is not a semantic version", "available versions: 1.2.0, 1.9.3, 1.10.0"],
    );
}

#[test]
fn register_replaces_the_same_namespace_name_and_version() {
    let mut r = registry();
    assert_eq!(r.len(), 5);
    let mut replacement = template("demo", "flow", "1.2.0");
    replacement.source = Some(PathBuf::from("elsewhere.yaml"));
    let returned = r.register(replacement);
    assert_eq!(r.len(), 5);
    let found = r.find("demo", "flow", Some("1.2.0")).unwrap();
    assert!(std::sync::Arc::ptr_eq(&returned, &found));
    assert_eq!(found.source.as_deref(), Some(Path::new("elsewhere.yaml")));
}

#[test]
fn iter_is_ordered_by_namespace_name_and_version() {
    let r = registry();
    let ids: Vec<String> = r.iter().map(|t| format!("{}/{}@{}", t.namespace, t.name, t.version)).collect();
    assert_eq!(ids, ["demo/flow@1.2.0", "demo/flow@1.9.3", "demo/flow@1.10.0", "demo/other@0.1.0", "shop/order@2.0.0"]);
    assert!(!r.is_empty());
    assert!(TemplateRegistry::new().is_empty());
}

// ---------------------------------------------------------------- loading files and directories

fn write(dir: &Path, relative: &str, text: &str) -> PathBuf {
    let path = dir.join(relative);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(&path, text).unwrap();
    path
}

fn valid_yaml(name: &str, version: &str) -> String {
    format!("name: {name}\nnamespace_name: demo\nversion: {version}\nsteps:\n  - name: a\n    handler: {{ callable: Demo::A }}\n")
}

#[test]
fn load_dir_loads_yaml_files_recursively_and_ignores_others() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "one.yaml", &valid_yaml("one", "1.0.0"));
    write(dir.path(), "nested/deeper/two.yml", &valid_yaml("two", "1.0.0"));
    write(dir.path(), "nested/three.yaml", &valid_yaml("one", "2.0.0"));
    write(dir.path(), "README.md", "not a template");
    let mut r = TemplateRegistry::new();
    assert_eq!(r.load_dir(dir.path(), &RetryDefaults::default()).unwrap(), 3);
    assert_eq!(r.len(), 3);
    assert_eq!(r.find("demo", "one", None).unwrap().version, "2.0.0");
    let two = r.find("demo", "two", Some("1.0.0")).unwrap();
    assert_eq!(two.source.as_deref(), Some(dir.path().join("nested/deeper/two.yml").as_path()));
}

#[test]
fn load_dir_is_all_or_nothing_and_names_the_bad_file() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a_good.yaml", &valid_yaml("good", "1.0.0"));
    let bad = write(
        dir.path(),
        "b_bad.yaml",
        "name: bad\nnamespace_name: demo\nversion: 1.0.0\nsteps:\n  - name: a\n    handler: { callable: A }\n    dependencies: [nope]\n",
    );
    write(dir.path(), "c_good.yaml", &valid_yaml("other", "1.0.0"));

    let mut r = TemplateRegistry::new();
    r.register(template("keep", "me", "1.0.0"));
    let err = r.load_dir(dir.path(), &RetryDefaults::default()).unwrap_err();
    assert_eq!(err.file(), Some(bad.as_path()));
    assert_mentions(
        &err.to_string(),
        &[&bad.display().to_string(), "demo/bad@1.0.0", "step \"a\"", "unknown step \"nope\""],
    );
    assert_eq!(r.len(), 1, "nothing from the failed directory is registered");
    assert!(r.find("demo", "good", None).is_err());
    assert!(r.find("keep", "me", None).is_ok());
}

#[test]
fn load_dir_rejects_a_template_defined_in_two_files_naming_both() {
    let dir = tempfile::tempdir().unwrap();
    let first = write(dir.path(), "a.yaml", &valid_yaml("same", "1.0.0"));
    let second = write(dir.path(), "sub/b.yaml", &valid_yaml("same", "1.0.0"));
    let mut r = TemplateRegistry::new();
    let err = r.load_dir(dir.path(), &RetryDefaults::default()).unwrap_err();
    assert!(matches!(err, TemplateError::DuplicateTemplate { .. }), "{err:?}");
    assert_mentions(
        &err.to_string(),
        &["demo/same@1.0.0", &first.display().to_string(), &second.display().to_string()],
    );
    assert!(r.is_empty());
}

#[test]
fn load_dir_twice_replaces_rather_than_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a.yaml", &valid_yaml("a", "1.0.0"));
    let mut r = TemplateRegistry::new();
    assert_eq!(r.load_dir(dir.path(), &RetryDefaults::default()).unwrap(), 1);
    assert_eq!(r.load_dir(dir.path(), &RetryDefaults::default()).unwrap(), 1);
    assert_eq!(r.len(), 1);
}

#[test]
fn load_dir_of_an_empty_directory_loads_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = TemplateRegistry::new();
    assert_eq!(r.load_dir(dir.path(), &RetryDefaults::default()).unwrap(), 0);
    assert!(r.is_empty());
}

#[test]
fn load_dir_of_a_missing_directory_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no_such_dir");
    let err = TemplateRegistry::new().load_dir(&missing, &RetryDefaults::default()).unwrap_err();
    assert!(matches!(err, TemplateError::DirectoryNotFound { .. }), "{err:?}");
    assert_mentions(&err.to_string(), &[&missing.display().to_string(), "does not exist"]);
}

#[test]
fn load_dir_of_a_file_says_it_is_not_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "a.yaml", &valid_yaml("a", "1.0.0"));
    let err = TemplateRegistry::new().load_dir(&path, &RetryDefaults::default()).unwrap_err();
    assert_mentions(&err.to_string(), &[&path.display().to_string(), "is not a directory"]);
}

#[test]
fn load_file_registers_and_returns_the_template() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "a.yaml", &valid_yaml("a", "1.0.0"));
    let mut r = TemplateRegistry::new();
    let t = r.load_file(&path, &RetryDefaults::default()).unwrap();
    assert_eq!(t.source.as_deref(), Some(path.as_path()));
    assert!(std::sync::Arc::ptr_eq(&t, &r.find("demo", "a", Some("1.0.0")).unwrap()));
}

#[test]
fn load_file_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.yaml");
    let err = TemplateRegistry::new().load_file(&missing, &RetryDefaults::default()).unwrap_err();
    assert!(matches!(err, TemplateError::Io { .. }), "{err:?}");
    assert!(std::error::Error::source(&err).is_some());
    assert_mentions(&err.to_string(), &[&missing.display().to_string()]);

    let bad = write(
        dir.path(),
        "bad.yaml",
        "name: x\nnamespace_name: demo\nversion: 1.0.0\nsteps:\n  - name: a\n    handler: {}\n",
    );
    let err = TemplateRegistry::new().load_file(&bad, &RetryDefaults::default()).unwrap_err();
    assert_mentions(&err.to_string(), &[&format!("{}:6:", bad.display()), "step \"a\"", "missing field `callable`"]);
}

// ---------------------------------------------------------------- shipped sample templates

fn samples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/templates")
}

fn samples() -> TemplateRegistry {
    let mut r = TemplateRegistry::new();
    r.load_dir(&samples_dir(), &RetryDefaults::default()).unwrap();
    r
}

fn deps_of<'a>(t: &'a WorkflowTemplate, step: &str) -> Vec<&'a str> {
    let i = t.step_index(step).unwrap_or_else(|| panic!("{} has no step {step}", t.name));
    t.dependencies[i].iter().map(|&d| t.steps[d].name.as_str()).collect()
}

#[test]
fn every_shipped_sample_loads_and_compiles() {
    let dir = samples_dir();
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    assert!(files.len() >= 5, "{files:?}");
    for path in &files {
        let text = fs::read_to_string(path).unwrap();
        let parsed = parse_yaml(&text, Some(path)).unwrap_or_else(|e| panic!("{e}"));
        assert!(parsed.description.as_deref().is_some_and(|d| !d.is_empty()), "{} has a description", path.display());
        let t = compile(parsed, &RetryDefaults::default(), Some(path.clone())).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(t.version, "1.0.0", "{}", path.display());
        assert!(t.steps.iter().all(|s| s.handler.callable.starts_with("Demo::")), "{}", path.display());
        assert!(t.steps.iter().any(|s| s.timeout_seconds.is_some()), "{} sets a timeout somewhere", path.display());
    }
    assert_eq!(samples().len(), files.len());
}

#[test]
fn sample_linear_workflow_is_a_chain_of_four() {
    let r = samples();
    let t = r.find("demo", "linear_workflow", None).unwrap();
    assert_eq!(t.steps.len(), 4);
    assert_eq!(t.root_steps().collect::<Vec<_>>(), vec![0]);
    for i in 1..4 {
        assert_eq!(t.dependencies[i], vec![i - 1]);
    }
}

#[test]
fn sample_diamond_workflow_fans_out_and_joins() {
    let r = samples();
    let t = r.find("demo", "diamond_workflow", Some("1.0.0")).unwrap();
    assert_eq!(t.steps.len(), 4);
    assert_eq!(deps_of(&t, "left"), ["start"]);
    assert_eq!(deps_of(&t, "right"), ["start"]);
    assert_eq!(deps_of(&t, "join"), ["left", "right"]);
    assert_eq!(t.root_steps().map(|i| t.steps[i].name.clone()).collect::<Vec<_>>(), ["start"]);
}

#[test]
fn sample_tree_workflow_merges_four_leaves() {
    let r = samples();
    let t = r.find("demo", "tree_workflow", None).unwrap();
    assert_eq!(t.steps.len(), 8);
    let merge = t.step_index("merge").unwrap();
    assert_eq!(t.dependencies[merge].len(), 4);
    for &leaf in &t.dependencies[merge] {
        let branch = &t.dependencies[leaf];
        assert_eq!(branch.len(), 1, "a leaf has one parent");
        assert_eq!(deps_of(&t, &t.steps[branch[0]].name), ["root"], "the leaf's parent is a branch of root");
        assert_eq!(t.dependents[leaf], vec![merge]);
    }
    assert_eq!(t.dependents[t.step_index("root").unwrap()].len(), 2);
}

#[test]
fn sample_mixed_dag_has_a_three_parent_step_and_a_grandparent_edge() {
    let r = samples();
    let t = r.find("demo", "mixed_dag_workflow", None).unwrap();
    assert!((6..=7).contains(&t.steps.len()));
    assert!(t.dependencies.iter().any(|d| d.len() >= 3), "a step with three parents");
    // Some step depends directly on a step that is also the parent of another of its parents.
    let grandparent_edge = t
        .dependencies
        .iter()
        .any(|deps| deps.iter().any(|&p| deps.iter().any(|&q| p != q && t.dependencies[q].contains(&p))));
    assert!(grandparent_edge);
}

#[test]
fn sample_order_fulfillment_retries_payment() {
    let r = samples();
    let t = r.find("ecommerce", "order_fulfillment", None).unwrap();
    assert_eq!(deps_of(&t, "reserve_inventory"), ["validate_order"]);
    assert_eq!(deps_of(&t, "process_payment"), ["validate_order"]);
    assert_eq!(deps_of(&t, "ship_order"), ["reserve_inventory", "process_payment"]);
    let pay = &t.steps[t.step_index("process_payment").unwrap()];
    assert!(pay.retry.retryable);
    assert_eq!(pay.retry.max_attempts, 3);
    assert!(pay.retry.backoff_base_ms <= 100);
    assert!(pay.retry.backoff_base_ms <= pay.retry.max_backoff_ms);
    let ship = &t.steps[t.step_index("ship_order").unwrap()];
    assert_eq!(ship.inputs.get("carrier").and_then(|c| c.as_str()), Some("demo-post"));
}
