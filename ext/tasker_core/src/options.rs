//! The options Hash of `bootstrap_worker`: which keys exist, their types, and how they
//! become config overrides. Unknown keys and wrong types raise errors naming the key.

use std::path::PathBuf;

use magnus::{prelude::*, Error, Integer, RHash, RString, Ruby, Value};

use tasker_worker::config::{ConfigLoader, ConfigSource};

use crate::errors::{argument, class_name, type_error};

/// Options whose value overrides `[mpsc_channels.worker.handler_dispatch]`.
const DISPATCH_KEYS: [&str; 4] =
    ["max_concurrent_handlers", "handler_timeout_ms", "dispatch_buffer_size", "completion_buffer_size"];
const PATH_KEYS: [&str; 3] = ["template_path", "config_root", "environment"];
const OTHER_KEYS: [&str; 1] = ["concurrency"];

/// Parsed `bootstrap_worker` options.
#[derive(Debug, Default, Clone)]
pub struct BootstrapOptions {
    pub template_path: Option<PathBuf>,
    pub config_root: Option<PathBuf>,
    pub environment: Option<String>,
    /// Ruby handler threads; the core raises `max_concurrent_handlers` to at least this.
    pub concurrency: Option<usize>,
    /// (option name, integer value) for `[mpsc_channels.worker.handler_dispatch]`.
    pub dispatch_overrides: Vec<(&'static str, i64)>,
}

impl BootstrapOptions {
    pub fn parse(ruby: &Ruby, value: Option<Value>) -> Result<Self, Error> {
        let mut options = Self::default();
        let Some(value) = value.filter(|v| !v.is_nil()) else { return Ok(options) };
        let hash = RHash::from_value(value).ok_or_else(|| {
            type_error(ruby, format!("bootstrap_worker options must be a Hash, got {}", class_name(value)))
        })?;
        let mut entries = Vec::with_capacity(hash.len());
        hash.foreach(|k: Value, v: Value| {
            entries.push((k, v));
            Ok(magnus::r_hash::ForEach::Continue)
        })?;
        for (key, value) in entries {
            let name = option_name(ruby, key)?;
            if value.is_nil() {
                continue;
            }
            if let Some(known) = DISPATCH_KEYS.iter().find(|k| **k == name) {
                options.dispatch_overrides.push((known, integer_option(ruby, &name, value)?));
            } else if name == "concurrency" {
                let n = integer_option(ruby, &name, value)?;
                if !(1..=10_000).contains(&n) {
                    return Err(argument(
                        ruby,
                        format!("bootstrap_worker option :concurrency must be 1..=10000, got {n}"),
                    ));
                }
                options.concurrency = Some(n as usize);
            } else if name == "template_path" {
                options.template_path = Some(PathBuf::from(path_option(ruby, &name, value)?));
            } else if name == "config_root" {
                options.config_root = Some(PathBuf::from(path_option(ruby, &name, value)?));
            } else if name == "environment" {
                options.environment = Some(path_option(ruby, &name, value)?);
            } else {
                let known: Vec<&str> = PATH_KEYS.iter().chain(&DISPATCH_KEYS).chain(&OTHER_KEYS).copied().collect();
                return Err(argument(
                    ruby,
                    format!("unknown bootstrap_worker option :{name} (known: {})", known.join(", ")),
                ));
            }
        }
        Ok(options)
    }

    /// The config loader these options ask for, overrides included.
    pub fn loader(&self) -> ConfigLoader {
        let mut loader = ConfigLoader::from_env();
        if self.config_root.is_some() || self.environment.is_some() {
            let source = match &self.config_root {
                Some(root) => ConfigSource::Directory(root.clone()),
                None => loader.source().clone(),
            };
            let environment = self.environment.clone().unwrap_or_else(|| loader.environment().to_string());
            loader = ConfigLoader::new(source, environment);
        }
        for (name, value) in &self.dispatch_overrides {
            loader = loader
                .with_override(format!("mpsc_channels.worker.handler_dispatch.{name}"), toml::Value::Integer(*value));
        }
        loader
    }
}

fn option_name(ruby: &Ruby, key: Value) -> Result<String, Error> {
    crate::convert::string_or_symbol(ruby, key, "bootstrap_worker option names must be Symbols or Strings")
}

fn integer_option(ruby: &Ruby, name: &str, value: Value) -> Result<i64, Error> {
    Integer::from_value(value).and_then(|i| i.to_i64().ok()).ok_or_else(|| {
        type_error(ruby, format!("bootstrap_worker option :{name} must be an Integer, got {}", class_name(value)))
    })
}

/// A String, or anything answering `to_path` (Pathname).
fn path_option(ruby: &Ruby, name: &str, value: Value) -> Result<String, Error> {
    if let Some(s) = RString::from_value(value) {
        return s.to_string();
    }
    if value.respond_to("to_path", false)? {
        let path: RString = value.funcall("to_path", ())?;
        return path.to_string();
    }
    Err(type_error(
        ruby,
        format!("bootstrap_worker option :{name} must be a String or Pathname, got {}", class_name(value)),
    ))
}
