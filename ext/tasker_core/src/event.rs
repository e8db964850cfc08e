//! The event Hash `poll_step_events` returns, built on the hot path with `raw`.
//!
//! What is the same for every attempt of a template step — its `step_definition` Hash
//! and its names — is built once, deep-frozen and shared by all its events
//! (`StepConstants`). Everything else (ids, context, inputs, parents' results) is new
//! per event. UUID Strings are frozen and shared where the same id appears twice.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use magnus::rb_sys::FromRawValue;
use magnus::{Error, RHash, Ruby, Value};
use parking_lot::Mutex;
use rb_sys::VALUE;

use tasker_worker::FfiStepEvent;
use tasker_worker::StepDefinition;

use crate::raw::{self, build};

macro_rules! keys {
    ($($field:ident = $text:literal),* $(,)?) => {
        /// Interned, permanent Hash keys of the event.
        struct Keys { $($field: VALUE),* }

        // SAFETY: VALUEs of permanent objects are plain numbers valid in any Ruby thread.
        unsafe impl Send for Keys {}
        unsafe impl Sync for Keys {}

        unsafe fn make_keys() -> Keys {
            unsafe { Keys { $($field: raw::permanent(raw::interned($text))),* } }
        }
    };
}

keys! {
    event_id = "event_id", task_uuid = "task_uuid", step_uuid = "step_uuid",
    correlation_id = "correlation_id", trace_id = "trace_id", span_id = "span_id",
    timeout_ms = "timeout_ms", task_sequence_step = "task_sequence_step", task = "task",
    namespace = "namespace", name = "name", version = "version", context = "context",
    workflow_step = "workflow_step", attempts = "attempts", max_attempts = "max_attempts",
    retryable = "retryable", inputs = "inputs", dependency_results = "dependency_results",
    step_definition = "step_definition", handler = "handler", callable = "callable",
    initialization = "initialization", dependencies = "dependencies", retry = "retry",
    backoff_base_ms = "backoff_base_ms", max_backoff_ms = "max_backoff_ms",
    timeout_seconds = "timeout_seconds",
}

static KEYS: OnceLock<Keys> = OnceLock::new();

/// Creates the keys; called once from the extension's init (a Ruby thread).
pub fn init(_ruby: &Ruby) -> Result<(), Error> {
    if KEYS.get().is_none() {
        let mut made = None;
        build(|| {
            // SAFETY: inside `build`, on a Ruby thread.
            made = Some(unsafe { make_keys() });
            raw::QNIL
        })?;
        if let Some(keys) = made {
            let _ = KEYS.set(keys);
        }
    }
    Ok(())
}

/// Per template step: its frozen definition Hash and frozen name Strings.
#[derive(Clone, Copy)]
struct StepConstants {
    definition: VALUE,
    step_name: VALUE,
    namespace: VALUE,
    task_name: VALUE,
    version: VALUE,
    callable: VALUE,
    initialization: VALUE,
}

/// The shared, frozen parts of an event, as Ruby values.
pub struct SharedParts {
    pub definition: Value,
    pub step_name: Value,
    pub namespace: Value,
    pub task_name: Value,
    pub version: Value,
    pub callable: Value,
    pub initialization: Value,
}

/// The frozen parts every event of this event's template step shares.
pub fn constants(ruby: &Ruby, event: &FfiStepEvent) -> Result<SharedParts, Error> {
    let c = constants_for(ruby, event)?;
    // SAFETY: permanent objects (frozen and registered with the GC).
    let value = |raw: VALUE| unsafe { Value::from_raw(raw) };
    Ok(SharedParts {
        definition: value(c.definition),
        step_name: value(c.step_name),
        namespace: value(c.namespace),
        task_name: value(c.task_name),
        version: value(c.version),
        callable: value(c.callable),
        initialization: value(c.initialization),
    })
}

// SAFETY: as for `Keys`: VALUEs of permanent objects.
unsafe impl Send for StepConstants {}

/// Keyed by the address of the step's `Arc<StepDefinition>`; the entry holds a clone of
/// the `Arc`, so that address cannot be reused by another definition. Bounded by the
/// step definitions ever loaded (a template reload adds its steps once more).
type ConstantsCache = HashMap<usize, (Arc<StepDefinition>, StepConstants)>;
static CONSTANTS: Mutex<Option<ConstantsCache>> = Mutex::new(None);

fn constants_for(ruby: &Ruby, event: &FfiStepEvent) -> Result<StepConstants, Error> {
    let payload = &event.execution_event.payload;
    let definition = &payload.step_definition;
    let key = Arc::as_ptr(definition) as usize;
    // The lock is never held while Ruby runs (a Ruby exception would skip its release).
    if let Some((_, found)) = CONSTANTS.lock().as_ref().and_then(|c| c.get(&key)) {
        return Ok(*found);
    }
    let keys = keys(ruby)?;
    let mut made = None;
    build(|| {
        // SAFETY: inside `build`, on a Ruby thread; nothing here needs dropping.
        unsafe {
            let callable = raw::permanent(raw::string(&definition.handler.callable));
            let initialization =
                definition.handler.initialization.as_ref().map_or(raw::QNIL, |v| raw::json_indifferent(v));
            deep_freeze(initialization);
            made = Some(StepConstants {
                definition: raw::permanent(definition_hash(keys, definition, callable, initialization)),
                callable,
                initialization: raw::permanent(initialization),
                step_name: raw::permanent(raw::string(&definition.name)),
                namespace: raw::permanent(raw::string(&payload.task.namespace)),
                task_name: raw::permanent(raw::string(&payload.task.name)),
                version: raw::permanent(raw::string(&payload.task.version)),
            });
        }
        raw::QNIL
    })?;
    let made = made.ok_or_else(|| crate::errors::internal(ruby, "step constants were not built"))?;
    let mut cache = CONSTANTS.lock();
    let entry = cache.get_or_insert_with(HashMap::new).entry(key).or_insert((Arc::clone(definition), made));
    Ok(entry.1)
}

fn keys(ruby: &Ruby) -> Result<&'static Keys, Error> {
    KEYS.get().ok_or_else(|| crate::errors::internal(ruby, "event keys used before init"))
}

/// A deep-frozen `step_definition` Hash.
unsafe fn definition_hash(k: &Keys, d: &StepDefinition, callable: VALUE, initialization: VALUE) -> VALUE {
    unsafe {
        let handler = raw::hash();
        raw::aset(handler, k.callable, callable);
        raw::aset(handler, k.initialization, initialization);
        rb_sys::rb_obj_freeze(handler);

        let dependencies = raw::array(d.dependencies.len());
        for name in &d.dependencies {
            raw::push(dependencies, rb_sys::rb_obj_freeze(raw::string(name)));
        }
        rb_sys::rb_obj_freeze(dependencies);

        let retry = raw::hash();
        raw::aset(retry, k.retryable, raw::boolean(d.retry.retryable));
        raw::aset(retry, k.max_attempts, raw::uint(u64::from(d.retry.max_attempts)));
        raw::aset(retry, k.backoff_base_ms, raw::uint(d.retry.backoff_base_ms));
        raw::aset(retry, k.max_backoff_ms, raw::uint(d.retry.max_backoff_ms));
        rb_sys::rb_obj_freeze(retry);

        let out = raw::hash();
        raw::aset(out, k.name, rb_sys::rb_obj_freeze(raw::string(&d.name)));
        raw::aset(out, k.handler, handler);
        raw::aset(out, k.dependencies, dependencies);
        raw::aset(out, k.retry, retry);
        raw::aset(out, k.timeout_seconds, d.timeout_seconds.map_or(raw::QNIL, |t| raw::float(t)));
        out
    }
}

/// Freezes a JSON-built value and everything inside it.
unsafe fn deep_freeze(value: VALUE) {
    unsafe {
        rb_sys::rb_obj_freeze(value);
        if rb_sys::RB_TYPE_P(value, rb_sys::ruby_value_type::RUBY_T_ARRAY) {
            for i in 0..rb_sys::RARRAY_LEN(value) {
                deep_freeze(rb_sys::rb_ary_entry(value, i as _));
            }
        } else if rb_sys::RB_TYPE_P(value, rb_sys::ruby_value_type::RUBY_T_HASH) {
            rb_sys::rb_hash_foreach(value, Some(freeze_entry), 0);
        }
    }
}

unsafe extern "C" fn freeze_entry(_key: VALUE, value: VALUE, _arg: VALUE) -> std::os::raw::c_int {
    // SAFETY: called by rb_hash_foreach on a Ruby thread, inside the caller's `build`.
    unsafe { deep_freeze(value) };
    0 // ST_CONTINUE
}

/// The event Hash `poll_step_events` returns (the README shows its layout).
pub fn event_to_hash(ruby: &Ruby, event: &FfiStepEvent) -> Result<RHash, Error> {
    let constants = constants_for(ruby, event)?;
    let keys = keys(ruby)?;
    let value = build(|| {
        // SAFETY: inside `build`, on a Ruby thread; nothing here needs dropping.
        unsafe { event_value(keys, &constants, event) }
    })?;
    RHash::from_value(value).ok_or_else(|| crate::errors::internal(ruby, "event is not a Hash"))
}

unsafe fn frozen(value: VALUE) -> VALUE {
    unsafe { rb_sys::rb_obj_freeze(value) }
}

unsafe fn event_value(k: &Keys, c: &StepConstants, e: &FfiStepEvent) -> VALUE {
    let p = &e.execution_event.payload;
    let step = &p.workflow_step;
    unsafe {
        let task_uuid = frozen(raw::uuid(&e.task_uuid));
        let step_uuid = frozen(raw::uuid(&e.step_uuid));

        let task = raw::hash();
        raw::aset(task, k.task_uuid, task_uuid);
        raw::aset(task, k.namespace, c.namespace);
        raw::aset(task, k.name, c.task_name);
        raw::aset(task, k.version, c.version);
        raw::aset(task, k.context, raw::json(&p.task.context));

        let workflow_step = raw::hash();
        raw::aset(workflow_step, k.step_uuid, step_uuid);
        raw::aset(workflow_step, k.name, c.step_name);
        raw::aset(workflow_step, k.attempts, raw::uint(u64::from(step.attempts)));
        raw::aset(workflow_step, k.max_attempts, raw::uint(u64::from(step.max_attempts)));
        raw::aset(workflow_step, k.retryable, raw::boolean(step.retryable));
        raw::aset(workflow_step, k.inputs, raw::json(&step.inputs));

        let dependency_results = raw::hash();
        for (name, result) in &p.dependency_results {
            raw::aset(dependency_results, raw::interned(name), raw::json(result));
        }

        let sequence = raw::hash();
        raw::aset(sequence, k.task, task);
        raw::aset(sequence, k.workflow_step, workflow_step);
        raw::aset(sequence, k.dependency_results, dependency_results);
        raw::aset(sequence, k.step_definition, c.definition);

        let out = raw::hash();
        raw::aset(out, k.event_id, frozen(raw::uuid(&e.event_id)));
        raw::aset(out, k.task_uuid, task_uuid);
        raw::aset(out, k.step_uuid, step_uuid);
        raw::aset(out, k.correlation_id, frozen(raw::uuid(&e.correlation_id)));
        raw::aset(out, k.trace_id, raw::opt_string(e.trace_id.as_deref()));
        raw::aset(out, k.span_id, raw::opt_string(e.span_id.as_deref()));
        raw::aset(out, k.timeout_ms, raw::uint(e.timeout_ms));
        raw::aset(out, k.task_sequence_step, sequence);
        out
    }
}
