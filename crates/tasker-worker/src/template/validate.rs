//! STUB: replaced by template validation.
use std::path::PathBuf;
use super::{TaskTemplate, WorkflowTemplate};
use crate::config::RetryDefaults;

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("{0}")]
    Invalid(String),
}

pub fn compile(_t: TaskTemplate, _d: &RetryDefaults, _s: Option<PathBuf>) -> Result<WorkflowTemplate, TemplateError> { unimplemented!() }
