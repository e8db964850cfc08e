//! `TaskerCore::StepEvent`: a polled event kept as Rust data and converted to Ruby one
//! field at a time, when asked (`next_step_event` returns it). A handler that reads
//! two fields pays for two conversions, not for the whole event Hash; `to_h` gives the
//! Hash `poll_step_events` returns.
//!
//! What handlers read (the task context, inputs, results of parents and other ancestors)
//! comes as `TaskerCore::Types::IndifferentHash`es, answering String and Symbol keys.
//! Ancestors beyond the parents are converted one at a time, by name
//! (`ancestor_result`), so handlers that do not ask pay nothing for them.
//!
//! The object holds only Rust data (no Ruby object), so it needs no GC marking; it is
//! freed when Ruby collects it. Dropping it does not lose the step: the event stays
//! pending in the channel until it is completed or its deadline passes.

use magnus::{method, prelude::*, Error, RClass, RHash, RModule, Ruby, Value};

use tasker_worker::FfiStepEvent;

use crate::event;
use crate::raw::{self, build};

/// See the module documentation.
#[magnus::wrap(class = "TaskerCore::StepEvent", free_immediately, size)]
pub struct StepEvent {
    event: FfiStepEvent,
}

impl StepEvent {
    pub fn new(event: FfiStepEvent) -> Self {
        Self { event }
    }

    pub fn event(&self) -> &FfiStepEvent {
        &self.event
    }

    fn convert(&self, f: impl FnOnce(&FfiStepEvent) -> rb_sys::VALUE) -> Result<Value, Error> {
        build(|| f(&self.event))
    }

    fn event_id(&self) -> Result<Value, Error> {
        // SAFETY (for every field below): `build` runs the closure on this Ruby thread
        // under rb_protect, and the closures only borrow.
        self.convert(|e| unsafe { raw::uuid(&e.event_id) })
    }

    fn task_uuid(&self) -> Result<Value, Error> {
        self.convert(|e| unsafe { raw::uuid(&e.task_uuid) })
    }

    fn step_uuid(&self) -> Result<Value, Error> {
        self.convert(|e| unsafe { raw::uuid(&e.step_uuid) })
    }

    fn correlation_id(&self) -> Result<Value, Error> {
        self.convert(|e| unsafe { raw::uuid(&e.correlation_id) })
    }

    fn trace_id(&self) -> Result<Value, Error> {
        self.convert(|e| unsafe { raw::opt_string(e.trace_id.as_deref()) })
    }

    fn span_id(&self) -> Result<Value, Error> {
        self.convert(|e| unsafe { raw::opt_string(e.span_id.as_deref()) })
    }

    fn timeout_ms(&self) -> u64 {
        self.event.timeout_ms
    }

    fn attempts(&self) -> u32 {
        self.event.execution_event.payload.workflow_step.attempts
    }

    fn max_attempts(&self) -> u32 {
        self.event.execution_event.payload.workflow_step.max_attempts
    }

    fn retryable(&self) -> bool {
        self.event.execution_event.payload.workflow_step.retryable
    }

    fn task_context(&self) -> Result<Value, Error> {
        self.convert(|e| unsafe { raw::json_indifferent(&e.execution_event.payload.task.context) })
    }

    fn inputs(&self) -> Result<Value, Error> {
        self.convert(|e| unsafe { raw::json_indifferent(&e.execution_event.payload.workflow_step.inputs) })
    }

    fn dependency_results(&self) -> Result<Value, Error> {
        self.convert(|e| unsafe {
            // The outer Hash too: `dependency_results[:parent]` works.
            let out = raw::json_indifferent(&serde_json::Value::Object(serde_json::Map::new()));
            for (name, result) in &e.execution_event.payload.dependency_results {
                raw::aset(out, raw::interned(name), raw::json_indifferent(result));
            }
            out
        })
    }

    /// The result of ancestor `name` (a grandparent or further up, or a parent), or nil
    /// when the step has no finished ancestor of that name.
    fn ancestor_result(ruby: &Ruby, rb_self: &Self, name: Value) -> Result<Value, Error> {
        let name = crate::convert::string_or_symbol(ruby, name, "ancestor name must be a String or Symbol")?;
        let payload = &rb_self.event.execution_event.payload;
        match payload.dependency_results.get(&name).or_else(|| payload.ancestor_results.get(&name)) {
            Some(result) => rb_self.convert(|_| unsafe { raw::json_indifferent(result) }),
            None => Ok(ruby.qnil().as_value()),
        }
    }

    /// Names of the finished ancestors beyond the parents.
    fn ancestor_names(ruby: &Ruby, rb_self: &Self) -> Result<Value, Error> {
        let names = ruby.ary_new_capa(rb_self.event.execution_event.payload.ancestor_results.len());
        for name in rb_self.event.execution_event.payload.ancestor_results.keys() {
            names.push(ruby.str_new(name))?;
        }
        Ok(names.as_value())
    }

    fn step_name(ruby: &Ruby, rb_self: &Self) -> Result<Value, Error> {
        Ok(event::constants(ruby, &rb_self.event)?.step_name)
    }

    fn namespace(ruby: &Ruby, rb_self: &Self) -> Result<Value, Error> {
        Ok(event::constants(ruby, &rb_self.event)?.namespace)
    }

    fn task_name(ruby: &Ruby, rb_self: &Self) -> Result<Value, Error> {
        Ok(event::constants(ruby, &rb_self.event)?.task_name)
    }

    fn task_version(ruby: &Ruby, rb_self: &Self) -> Result<Value, Error> {
        Ok(event::constants(ruby, &rb_self.event)?.version)
    }

    fn step_definition(ruby: &Ruby, rb_self: &Self) -> Result<Value, Error> {
        Ok(event::constants(ruby, &rb_self.event)?.definition)
    }

    fn handler_callable(ruby: &Ruby, rb_self: &Self) -> Result<Value, Error> {
        Ok(event::constants(ruby, &rb_self.event)?.callable)
    }

    fn handler_initialization(ruby: &Ruby, rb_self: &Self) -> Result<Value, Error> {
        Ok(event::constants(ruby, &rb_self.event)?.initialization)
    }

    /// The whole event as the Hash `poll_step_events` returns.
    fn to_h(ruby: &Ruby, rb_self: &Self) -> Result<RHash, Error> {
        event::event_to_hash(ruby, &rb_self.event)
    }
}

/// Defines `TaskerCore::StepEvent` and its readers.
pub fn define(ruby: &Ruby, core: RModule) -> Result<RClass, Error> {
    let class = core.define_class("StepEvent", ruby.class_object())?;
    class.undef_default_alloc_func();
    class.define_method("event_id", method!(StepEvent::event_id, 0))?;
    class.define_method("task_uuid", method!(StepEvent::task_uuid, 0))?;
    class.define_method("step_uuid", method!(StepEvent::step_uuid, 0))?;
    class.define_method("correlation_id", method!(StepEvent::correlation_id, 0))?;
    class.define_method("trace_id", method!(StepEvent::trace_id, 0))?;
    class.define_method("span_id", method!(StepEvent::span_id, 0))?;
    class.define_method("timeout_ms", method!(StepEvent::timeout_ms, 0))?;
    class.define_method("attempts", method!(StepEvent::attempts, 0))?;
    class.define_method("max_attempts", method!(StepEvent::max_attempts, 0))?;
    class.define_method("retryable", method!(StepEvent::retryable, 0))?;
    class.define_method("task_context", method!(StepEvent::task_context, 0))?;
    class.define_method("inputs", method!(StepEvent::inputs, 0))?;
    class.define_method("dependency_results", method!(StepEvent::dependency_results, 0))?;
    class.define_method("ancestor_result", method!(StepEvent::ancestor_result, 1))?;
    class.define_method("ancestor_names", method!(StepEvent::ancestor_names, 0))?;
    class.define_method("step_name", method!(StepEvent::step_name, 0))?;
    class.define_method("namespace", method!(StepEvent::namespace, 0))?;
    class.define_method("task_name", method!(StepEvent::task_name, 0))?;
    class.define_method("task_version", method!(StepEvent::task_version, 0))?;
    class.define_method("step_definition", method!(StepEvent::step_definition, 0))?;
    class.define_method("handler_callable", method!(StepEvent::handler_callable, 0))?;
    class.define_method("handler_initialization", method!(StepEvent::handler_initialization, 0))?;
    class.define_method("to_h", method!(StepEvent::to_h, 0))?;
    Ok(class)
}
