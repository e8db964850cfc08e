//! The completion path: completion channel → `CompletionProcessorService` →
//! `FFICompletionActor` → store.

pub mod completion_processor;
pub mod ffi_completion_actor;

pub use completion_processor::{CompletionProcessorHandle, CompletionProcessorService};
pub use ffi_completion_actor::FFICompletionActor;
