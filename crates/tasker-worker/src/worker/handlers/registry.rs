//! Rust step handlers: the `StepHandler` trait and the registry that maps a template's
//! `handler.callable` to a handler.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde_json::Value;

use crate::messages::{StepExecutionError, TaskSequenceStep};

/// The future a Rust handler returns.
pub type HandlerFuture = Pin<Box<dyn Future<Output = Result<Value, HandlerError>> + Send + 'static>>;

/// Why a Rust handler failed one attempt.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum HandlerError {
    /// Worth another attempt (within the step's `max_attempts`).
    #[error("{message}")]
    Retryable { message: String, error_type: String },
    /// Will not get better: the step fails at once.
    #[error("{message}")]
    Permanent { message: String, error_type: String },
}

impl HandlerError {
    pub fn retryable(message: impl Into<String>) -> Self {
        Self::Retryable { message: message.into(), error_type: "RetryableError".into() }
    }

    pub fn permanent(message: impl Into<String>) -> Self {
        Self::Permanent { message: message.into(), error_type: "PermanentError".into() }
    }

    pub fn into_execution_error(self) -> StepExecutionError {
        match self {
            HandlerError::Retryable { message, error_type } => StepExecutionError::new(message, error_type, true),
            HandlerError::Permanent { message, error_type } => StepExecutionError::new(message, error_type, false),
        }
    }
}

/// A step handler written in Rust. It gets its own copy of the step and returns the
/// step's result value.
pub trait StepHandler: Send + Sync + 'static {
    fn call(&self, step: TaskSequenceStep) -> HandlerFuture;
}

impl<F, Fut> StepHandler for F
where
    F: Fn(TaskSequenceStep) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Value, HandlerError>> + Send + 'static,
{
    fn call(&self, step: TaskSequenceStep) -> HandlerFuture {
        Box::pin(self(step))
    }
}

/// Rust handlers by callable name.
#[derive(Clone, Default)]
pub struct HandlerRegistry {
    handlers: HashMap<String, Arc<dyn StepHandler>>,
}

impl std::fmt::Debug for HandlerRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<&String> = self.handlers.keys().collect();
        names.sort();
        f.debug_struct("HandlerRegistry").field("handlers", &names).finish()
    }
}

impl HandlerRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `handler` under `callable` (the name templates use); replaces any other.
    pub fn register(&mut self, callable: impl Into<String>, handler: impl StepHandler) -> &mut Self {
        self.handlers.insert(callable.into(), Arc::new(handler));
        self
    }

    pub fn get(&self, callable: &str) -> Option<Arc<dyn StepHandler>> {
        self.handlers.get(callable).cloned()
    }

    pub fn len(&self) -> usize {
        self.handlers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.handlers.is_empty()
    }
}
