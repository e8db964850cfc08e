//! The worker: channels, the step executor, the dispatch consumers (Rust handlers and
//! the FFI channel), and the completion path back to the orchestrator.

pub mod completion;
pub mod core;
pub mod handlers;
pub mod latency_window;
pub mod slots;
pub mod step_executor;

pub use self::core::{DispatchHandles, WorkerCore};
pub use step_executor::{StepExecutorActor, StepExecutorHandle};
