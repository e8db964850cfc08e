//! The worker: channels, the step executor, the dispatch consumers (Rust handlers and
//! the FFI channel), and the completion path back to the orchestrator.

pub mod slots;
