//! The consumers of the dispatch channel: `HandlerDispatchService` runs Rust handlers,
//! `FfiDispatchChannel` hands events to a foreign (Ruby) polling loop.

pub mod ffi_dispatch_channel;
pub mod handler_dispatch_service;
pub mod registry;

pub use ffi_dispatch_channel::{
    CompleteOutcome, CompletionChannelClosed, FfiChannelTasks, FfiDispatchChannel, FfiDispatchChannelConfig,
    FfiDispatchMetrics, TryComplete,
};
pub use handler_dispatch_service::{panic_message, HandlerDispatchHandle, HandlerDispatchService};
pub use registry::{HandlerError, HandlerFuture, HandlerRegistry, StepHandler};
