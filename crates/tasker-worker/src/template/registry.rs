//! STUB: replaced by the template registry.
use std::sync::Arc;
use super::{WorkflowTemplate, TemplateError};

#[derive(Debug, Default)]
pub struct TemplateRegistry { templates: Vec<Arc<WorkflowTemplate>> }

impl TemplateRegistry {
    pub fn new() -> Self { Self::default() }
    pub fn register(&mut self, t: WorkflowTemplate) -> Arc<WorkflowTemplate> { let t = Arc::new(t); self.templates.push(t.clone()); t }
    pub fn find(&self, namespace: &str, name: &str, _version: Option<&str>) -> Result<Arc<WorkflowTemplate>, TemplateError> {
        self.templates.iter().find(|t| t.namespace == namespace && t.name == name).cloned().ok_or_else(|| TemplateError::Invalid(format!("no template {namespace}/{name}")))
    }
}
