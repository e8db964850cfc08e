//! Ruby bindings of tasker_core: defines the `TaskerCore::FFI` module functions.
//!
//! This crate is thin on purpose: argument checks and conversions (`convert`,
//! `options`), GVL handling (`gvl`), Ruby exceptions (`errors`), the per-process system
//! slot (`system`) and the function bodies (`ffi`). All behaviour lives in the
//! `tasker-worker` crate.
//!
//! GC and threads: no Ruby object is stored in a Rust structure except the `Lazy`
//! statics in `errors` and `convert`, which magnus marks for the life of the process.
//! Ruby APIs are only called from Ruby threads holding the GVL; code on tokio threads and
//! code run without the GVL (`gvl::without_gvl`) only touches Rust data.

mod boundary;
mod convert;
mod errors;
mod event;
mod ffi;
mod gvl;
mod logging;
mod migrate;
mod options;
mod raw;
mod step_event;
mod system;
mod templates;

use magnus::{function, prelude::*, Error, Ruby, Value};

/// The core's own allocations (events, results, task state) go through mimalloc: they are
/// made on tokio threads and freed on Ruby threads and back, which glibc's malloc
/// serves slowly (arena locks, consolidation). Ruby's objects keep Ruby's allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[magnus::init]
fn init(ruby: &Ruby) -> Result<(), Error> {
    logging::install();
    errors::define_classes(ruby)?;
    system::install_fork_hook();
    event::init(ruby)?;
    // The handler-facing Hash class, when lib/tasker_core/types/indifferent_hash.rb came first.
    let indifferent: Value =
        ruby.eval("defined?(TaskerCore::Types::IndifferentHash) && TaskerCore::Types::IndifferentHash")?;
    if let Some(class) = magnus::RClass::from_value(indifferent) {
        raw::set_indifferent_class(magnus::rb_sys::AsRawValue::as_raw(class));
    }
    let core = ruby.define_module("TaskerCore")?;
    step_event::define(ruby, core)?;
    let module = core.define_module("FFI")?;
    boundary::define(ruby, module)?;
    module.define_module_function("bootstrap_worker", function!(ffi::bootstrap_worker, -1))?;
    module.define_module_function("poll_step_events", function!(ffi::poll_step_events, -1))?;
    module.define_module_function("next_step_event", function!(ffi::next_step_event, -1))?;
    module.define_module_function("complete_step_event", function!(ffi::complete_step_event, 2))?;
    module.define_module_function("event_pending?", function!(ffi::event_pending, 1))?;
    module.define_module_function("event_cancelled?", function!(ffi::event_cancelled, 1))?;
    module.define_module_function("connect", function!(ffi::connect, 1))?;
    module.define_module_function("ffi_dispatch_metrics", function!(ffi::ffi_dispatch_metrics, 0))?;
    module.define_module_function("worker_status", function!(ffi::worker_status, 0))?;
    module.define_module_function("stop_worker", function!(ffi::stop_worker, -1))?;
    module.define_module_function("create_task", function!(ffi::create_task, -1))?;
    module.define_module_function("task_status", function!(ffi::task_status, 1))?;
    module.define_module_function("wait_for_task", function!(ffi::wait_for_task, 2))?;
    module.define_module_function("templates", function!(templates::templates, 0))?;
    module.define_module_function("cancel_task", function!(ffi::cancel_task, 2))?;
    module.define_module_function("retry_task", function!(ffi::retry_task, 1))?;
    module.define_module_function("tasks", function!(ffi::tasks, 1))?;
    module.define_module_function("stats", function!(ffi::stats, 0))?;
    module.define_module_function("workers", function!(ffi::workers, 0))?;
    module.define_module_function("migrate_database", function!(migrate::migrate_database, 1))?;
    module.define_module_function("metrics_text", function!(ffi::metrics_text, 0))?;
    Ok(())
}
