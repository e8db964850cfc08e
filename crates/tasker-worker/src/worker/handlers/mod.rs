//! The consumers of the dispatch channel: `HandlerDispatchService` runs Rust handlers,
//! `FfiDispatchChannel` hands events to a foreign (Ruby) polling loop.

pub mod ffi_dispatch_channel;
pub mod handler_dispatch_service;
pub mod registry;

pub use ffi_dispatch_channel::{FfiDispatchChannel, FfiDispatchChannelConfig, FfiDispatchMetrics};
pub use handler_dispatch_service::{HandlerDispatchHandle, HandlerDispatchService};
pub use registry::{HandlerError, HandlerRegistry, StepHandler};
