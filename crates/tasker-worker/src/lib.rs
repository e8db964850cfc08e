//! tasker-worker: the Rust core of tasker_core.
//!
//! A ready step flows one way: the orchestrator marks it ready, the `StepExecutorActor`
//! claims it when an in-flight slot is free and sends it on the bounded dispatch channel,
//! a consumer (`HandlerDispatchService` for Rust handlers, `FfiDispatchChannel` for a
//! Ruby polling loop) runs it, and its `StepExecutionResult` comes back on the bounded
//! completion channel through the `CompletionProcessorService` and the
//! `FFICompletionActor` to the orchestrator, which records it, retries or advances the DAG.

pub mod config;
pub mod embedded;
pub mod messages;
pub mod orchestrator;
pub mod store;
pub mod template;
pub mod time_format;
pub mod worker;
