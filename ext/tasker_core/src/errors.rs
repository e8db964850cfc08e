//! Ruby exceptions raised by the binding: lookup of `TaskerCore::Errors::*`, the mapping
//! of core errors to them, and the guard that keeps Rust panics out of Ruby.
//!
//! The classes are normally defined by `lib/tasker_core/errors.rb` before the extension
//! loads; `define_classes` defines any that are missing so the extension also works on
//! its own. Looked-up classes live in `Lazy` statics, which magnus registers with Ruby's
//! GC as permanently marked — the only Ruby objects this crate keeps beyond a call.

use std::panic::{catch_unwind, AssertUnwindSafe};

use magnus::value::Lazy;
use magnus::{prelude::*, Error, ExceptionClass, RModule, Ruby};

use tasker_worker::config::ConfigError;
use tasker_worker::orchestrator::OrchestratorError;
use tasker_worker::template::TemplateError;

/// The classes the binding raises, each `< TaskerCore::Errors::Error < StandardError`.
const CLASSES: &[&str] =
    &["ConfigurationError", "TemplateError", "TaskNotFoundError", "NotRunningError", "InternalError"];

fn errors_module(ruby: &Ruby) -> Result<RModule, Error> {
    let core = ruby.define_module("TaskerCore")?;
    core.define_module("Errors")
}

fn class(ruby: &Ruby, name: &str) -> ExceptionClass {
    errors_module(ruby)
        .and_then(|m| m.const_get::<_, ExceptionClass>(name))
        .unwrap_or_else(|_| ruby.exception_runtime_error())
}

/// Makes sure every class this crate raises exists.
pub fn define_classes(ruby: &Ruby) -> Result<(), Error> {
    let module = errors_module(ruby)?;
    let base: ExceptionClass = match module.const_get::<_, ExceptionClass>("Error") {
        Ok(base) => base,
        Err(_) => module.define_error("Error", ruby.exception_standard_error())?,
    };
    for name in CLASSES {
        if module.const_get::<_, ExceptionClass>(*name).is_err() {
            module.define_error(*name, base)?;
        }
    }
    for lazy in [&CONFIGURATION_ERROR, &TEMPLATE_ERROR, &TASK_NOT_FOUND, &NOT_RUNNING, &INTERNAL_ERROR] {
        Lazy::force(lazy, ruby);
    }
    Ok(())
}

static CONFIGURATION_ERROR: Lazy<ExceptionClass> = Lazy::new(|ruby| class(ruby, "ConfigurationError"));
static TEMPLATE_ERROR: Lazy<ExceptionClass> = Lazy::new(|ruby| class(ruby, "TemplateError"));
static TASK_NOT_FOUND: Lazy<ExceptionClass> = Lazy::new(|ruby| class(ruby, "TaskNotFoundError"));
static NOT_RUNNING: Lazy<ExceptionClass> = Lazy::new(|ruby| class(ruby, "NotRunningError"));
static INTERNAL_ERROR: Lazy<ExceptionClass> = Lazy::new(|ruby| class(ruby, "InternalError"));

pub fn configuration(ruby: &Ruby, message: impl Into<String>) -> Error {
    Error::new(ruby.get_inner(&CONFIGURATION_ERROR), message.into())
}

pub fn template(ruby: &Ruby, error: &TemplateError) -> Error {
    Error::new(ruby.get_inner(&TEMPLATE_ERROR), error.to_string())
}

pub fn not_running(ruby: &Ruby, message: impl Into<String>) -> Error {
    Error::new(ruby.get_inner(&NOT_RUNNING), message.into())
}

pub fn internal(ruby: &Ruby, message: impl Into<String>) -> Error {
    Error::new(ruby.get_inner(&INTERNAL_ERROR), message.into())
}

pub fn argument(ruby: &Ruby, message: impl Into<String>) -> Error {
    Error::new(ruby.exception_arg_error(), message.into())
}

pub fn type_error(ruby: &Ruby, message: impl Into<String>) -> Error {
    Error::new(ruby.exception_type_error(), message.into())
}

pub fn config(ruby: &Ruby, error: &ConfigError) -> Error {
    configuration(ruby, error.to_string())
}

pub fn orchestrator(ruby: &Ruby, error: &OrchestratorError) -> Error {
    match error {
        OrchestratorError::Template(e) => template(ruby, e),
        OrchestratorError::ContextNotAnObject { .. } => type_error(ruby, format!("context: {error}")),
        OrchestratorError::InvalidContext { .. } => argument(ruby, error.to_string()),
        OrchestratorError::TaskNotFound(_) => Error::new(ruby.get_inner(&TASK_NOT_FOUND), error.to_string()),
    }
}

/// The text of a panic payload.
pub fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    tasker_worker::worker::handlers::handler_dispatch_service::panic_message(payload)
}

/// Runs one FFI function body; a panic becomes `TaskerCore::Errors::InternalError`
/// instead of crossing into Ruby.
pub fn guard<T>(ruby: &Ruby, name: &str, body: impl FnOnce() -> Result<T, Error>) -> Result<T, Error> {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(result) => result,
        Err(payload) => Err(internal(ruby, format!("tasker_core bug in {name}: {}", panic_text(payload.as_ref())))),
    }
}

/// The class name of a Ruby value, for error messages.
pub fn class_name(value: magnus::Value) -> String {
    // SAFETY: `classname` returns a borrowed C string owned by Ruby; it is copied at once.
    unsafe { value.classname() }.into_owned()
}

/// A short `inspect` of a value for error messages (at most 80 characters).
pub fn short_inspect(value: magnus::Value) -> String {
    let text = value.inspect();
    if text.chars().count() > 80 {
        let cut: String = text.chars().take(77).collect();
        format!("{cut}...")
    } else {
        text
    }
}
