//! Ruby bindings of tasker_core: defines `TaskerCore::FFI`.
use magnus::{prelude::*, Error, Ruby};

#[magnus::init]
fn init(ruby: &Ruby) -> Result<(), Error> {
    let core = ruby.define_module("TaskerCore")?;
    let _ffi = core.define_module("FFI")?;
    Ok(())
}
