//! STUB: replaced by the config loader implementation.
use std::path::PathBuf;
use super::TaskerConfig;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: {key}: {message}")]
    InvalidValue { file: String, key: String, message: String },
}

#[derive(Debug, Clone)]
pub enum ConfigSource { Embedded, Directory(PathBuf) }

#[derive(Debug, Clone)]
pub struct ConfigLoader { pub source: ConfigSource, pub environment: String, pub overrides: Vec<(String, toml::Value)> }

impl ConfigLoader {
    pub fn new(source: ConfigSource, environment: impl Into<String>) -> Self {
        Self { source, environment: environment.into(), overrides: Vec::new() }
    }
    pub fn from_env() -> Self { Self::new(ConfigSource::Embedded, "development") }
    pub fn with_override(mut self, key: impl Into<String>, value: toml::Value) -> Self { self.overrides.push((key.into(), value)); self }
    pub fn load(&self) -> Result<TaskerConfig, ConfigError> { Ok(TaskerConfig::default()) }
}
