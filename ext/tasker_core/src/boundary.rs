//! The names that cross the Ruby boundary, exported once from the core's own
//! definitions as frozen constants of `TaskerCore::FFI`, so Ruby code reads them instead
//! of repeating the strings:
//!
//! - `ERROR_TYPES`: `{worker_shutdown: "worker_shutdown", ...}` — error types the core
//!   produces and the Ruby worker reports;
//! - `TASK_STATUSES`, `FINISHED_TASK_STATUSES`, `STEP_STATUSES`: the status words of
//!   `task_status` and `tasks`;
//! - `RESULT_KEYS`: `{result: [...], metadata: [...], error: [...]}` — the keys
//!   `complete_step_event` accepts at each level of a result Hash.
//! - `METRICS_CONTENT_TYPE`: the `Content-Type` of `metrics_text` (Prometheus text 0.0.4).

use magnus::{prelude::*, Error, RArray, RModule, Ruby};

use tasker_worker::{error_types, StepStatus, TaskStatus, METRICS_CONTENT_TYPE};

/// Keys of a result Hash, of its `"metadata"` and of its `"error"`.
pub const RESULT_KEYS: [&str; 4] = ["success", "result", "metadata", "error"];
pub const METADATA_KEYS: [&str; 5] = ["execution_time_ms", "started_at", "completed_at", "retryable", "custom"];
pub const ERROR_KEYS: [&str; 7] =
    ["message", "error_type", "retryable", "backtrace", "error_code", "context", "retry_after"];

fn frozen_strings(ruby: &Ruby, items: impl IntoIterator<Item = &'static str>) -> Result<RArray, Error> {
    let array = ruby.ary_new();
    for item in items {
        let s = ruby.str_new(item);
        s.freeze();
        array.push(s)?;
    }
    array.freeze();
    Ok(array)
}

/// Defines the constants under `module` (`TaskerCore::FFI`).
pub fn define(ruby: &Ruby, module: RModule) -> Result<(), Error> {
    let types = ruby.hash_new();
    for name in [
        error_types::HANDLER_TIMEOUT,
        error_types::HANDLER_PANIC,
        error_types::HANDLER_NOT_FOUND,
        error_types::WORKER_SHUTDOWN,
        error_types::WORKER_LOST,
        error_types::HANDLER_ERROR,
    ] {
        let value = ruby.str_new(name);
        value.freeze();
        types.aset(ruby.to_symbol(name), value)?;
    }
    types.freeze();
    module.const_set("ERROR_TYPES", types)?;
    module.const_set("TASK_STATUSES", frozen_strings(ruby, TaskStatus::ALL.iter().map(|s| s.as_str()))?)?;
    module.const_set(
        "FINISHED_TASK_STATUSES",
        frozen_strings(ruby, TaskStatus::ALL.iter().filter(|s| s.is_finished()).map(|s| s.as_str()))?,
    )?;
    module.const_set("STEP_STATUSES", frozen_strings(ruby, StepStatus::ALL.iter().map(|s| s.as_str()))?)?;
    let keys = ruby.hash_new();
    keys.aset(ruby.to_symbol("result"), frozen_strings(ruby, RESULT_KEYS)?)?;
    keys.aset(ruby.to_symbol("metadata"), frozen_strings(ruby, METADATA_KEYS)?)?;
    keys.aset(ruby.to_symbol("error"), frozen_strings(ruby, ERROR_KEYS)?)?;
    keys.freeze();
    module.const_set("RESULT_KEYS", keys)?;
    let content_type = ruby.str_new(METRICS_CONTENT_TYPE);
    content_type.freeze();
    module.const_set("METRICS_CONTENT_TYPE", content_type)?;
    Ok(())
}
