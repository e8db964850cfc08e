//! The worker: channels, the step executor, the dispatch consumers (Rust handlers and
//! the FFI channel), and the completion path back to the store.

pub mod completion;
pub mod core;
pub mod counters;
pub mod handlers;
pub mod latency_window;
mod retry_backoff;
pub mod slots;
pub mod step_executor;

pub use self::core::{DispatchHandles, WorkerCore};
