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

use tasker_worker::{ConfigError, StoreError, SystemError, TemplateError};

/// The classes the binding raises, each `< TaskerCore::Errors::Error < StandardError`
/// (`TaskEvictedError < TaskNotFoundError`).
const CLASSES: &[&str] = &[
    "ConfigurationError",
    "TemplateError",
    "TaskNotFoundError",
    "NotRunningError",
    "InternalError",
    "BackpressureError",
    "IdempotencyConflictError",
    "InvalidContextError",
    "StoreUnavailableError",
];

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
    if module.const_get::<_, ExceptionClass>("TaskEvictedError").is_err() {
        let not_found: ExceptionClass = module.const_get("TaskNotFoundError")?;
        module.define_error("TaskEvictedError", not_found)?;
    }
    for lazy in [
        &CONFIGURATION_ERROR,
        &TEMPLATE_ERROR,
        &TASK_NOT_FOUND,
        &TASK_EVICTED,
        &NOT_RUNNING,
        &INTERNAL_ERROR,
        &BACKPRESSURE,
        &IDEMPOTENCY_CONFLICT,
        &INVALID_CONTEXT,
        &STORE_UNAVAILABLE,
    ] {
        Lazy::force(lazy, ruby);
    }
    Ok(())
}

static CONFIGURATION_ERROR: Lazy<ExceptionClass> = Lazy::new(|ruby| class(ruby, "ConfigurationError"));
static TEMPLATE_ERROR: Lazy<ExceptionClass> = Lazy::new(|ruby| class(ruby, "TemplateError"));
static TASK_NOT_FOUND: Lazy<ExceptionClass> = Lazy::new(|ruby| class(ruby, "TaskNotFoundError"));
static NOT_RUNNING: Lazy<ExceptionClass> = Lazy::new(|ruby| class(ruby, "NotRunningError"));
static INTERNAL_ERROR: Lazy<ExceptionClass> = Lazy::new(|ruby| class(ruby, "InternalError"));
static TASK_EVICTED: Lazy<ExceptionClass> = Lazy::new(|ruby| class(ruby, "TaskEvictedError"));
static BACKPRESSURE: Lazy<ExceptionClass> = Lazy::new(|ruby| class(ruby, "BackpressureError"));
static IDEMPOTENCY_CONFLICT: Lazy<ExceptionClass> = Lazy::new(|ruby| class(ruby, "IdempotencyConflictError"));
static INVALID_CONTEXT: Lazy<ExceptionClass> = Lazy::new(|ruby| class(ruby, "InvalidContextError"));
static STORE_UNAVAILABLE: Lazy<ExceptionClass> = Lazy::new(|ruby| class(ruby, "StoreUnavailableError"));

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

/// The Ruby exception of a store error.
pub fn store(ruby: &Ruby, error: &StoreError) -> Error {
    let message = error.to_string();
    let class = match error {
        StoreError::Template(e) => return template(ruby, e),
        StoreError::InvalidContext(_) => &INVALID_CONTEXT,
        StoreError::InvalidRequest(_) => return argument(ruby, message),
        StoreError::TaskNotFound(_) => &TASK_NOT_FOUND,
        StoreError::TaskEvicted { .. } => &TASK_EVICTED,
        StoreError::Backpressure { .. } => &BACKPRESSURE,
        StoreError::IdempotencyConflict { .. } => &IDEMPOTENCY_CONFLICT,
        StoreError::Unavailable { .. } => &STORE_UNAVAILABLE,
        StoreError::Schema(_) => &CONFIGURATION_ERROR,
        StoreError::Internal(_) => &INTERNAL_ERROR,
    };
    Error::new(ruby.get_inner(class), message)
}

/// The Ruby exception of a system (bootstrap) error.
pub fn system(ruby: &Ruby, error: &SystemError) -> Error {
    match error {
        SystemError::Config(e) => config(ruby, e),
        SystemError::Template(e) => template(ruby, e),
        SystemError::Store(e) => store(ruby, e),
        SystemError::Incompatible(message) => configuration(ruby, message.clone()),
        SystemError::Runtime(e) => internal(ruby, e.to_string()),
    }
}

/// The text of a panic payload.
pub fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    tasker_worker::panic_message(payload)
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
