//! What a process asks for when it starts tasker_core, and the rules that turn the ask
//! into settings: which configuration files, which template directory, which store, how
//! many steps in flight. Every binding (Ruby, a Rust program) goes through these, so the
//! rules live here once.

use std::path::PathBuf;

use crate::config::{ConfigError, ConfigLoader, ConfigSource, HandlerDispatchConfig, TaskerConfig};
use crate::store::Backend;

/// The environment variable naming the template directory.
pub const TEMPLATE_PATH_ENV: &str = "TASKER_TEMPLATE_PATH";
/// The environment variable naming the PostgreSQL database.
pub const DATABASE_URL_ENV: &str = "TASKER_DATABASE_URL";

/// Options of `bootstrap_worker` (and of `connect`), each `None` when not given.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BootstrapRequest {
    pub template_path: Option<PathBuf>,
    pub config_root: Option<PathBuf>,
    pub environment: Option<String>,
    /// Handler threads of the Ruby worker (or handler tasks of a Rust one).
    pub concurrency: Option<usize>,
    /// `(key, value)` overrides of `[mpsc_channels.worker.handler_dispatch]`.
    pub dispatch_overrides: Vec<(String, i64)>,
    /// `postgres://...`; `None` means `TASKER_DATABASE_URL`, and without it the embedded store.
    pub database_url: Option<String>,
}

/// Keys of `[mpsc_channels.worker.handler_dispatch]` a request may override.
pub const DISPATCH_KEYS: [&str; 4] =
    ["max_concurrent_handlers", "handler_timeout_ms", "dispatch_buffer_size", "completion_buffer_size"];

impl BootstrapRequest {
    /// The configuration loader: the shipped files (or `config_root`), the environment
    /// asked for (or `TASKER_ENV`), and the dispatch overrides on top.
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

    /// Loads the configuration this request asks for.
    pub fn load_config(&self) -> Result<(TaskerConfig, String, ConfigSource), ConfigError> {
        let loader = self.loader();
        let config = loader.load()?;
        Ok((config, loader.environment().to_string(), loader.source().clone()))
    }

    /// The template directory: the `template_path` option, else `TASKER_TEMPLATE_PATH`,
    /// else `[orchestration] template_path`; `None` when none is set.
    pub fn template_path(&self, config: &TaskerConfig) -> Option<PathBuf> {
        self.template_path
            .clone()
            .or_else(|| std::env::var_os(TEMPLATE_PATH_ENV).filter(|v| !v.is_empty()).map(PathBuf::from))
            .or_else(|| {
                let configured = &config.orchestration.template_path;
                (!configured.is_empty()).then(|| PathBuf::from(configured))
            })
    }

    /// The database: the `database_url` option, else `TASKER_DATABASE_URL`; `None` means
    /// the embedded store.
    pub fn database_url(&self) -> Option<String> {
        self.database_url
            .clone()
            .filter(|url| !url.is_empty())
            .or_else(|| std::env::var(DATABASE_URL_ENV).ok().filter(|v| !v.trim().is_empty()))
    }

    /// The handler threads a worker runs: the option, else `[worker] concurrency`.
    pub fn concurrency(&self, config: &TaskerConfig) -> usize {
        self.concurrency.unwrap_or(config.worker.concurrency).max(1)
    }

    /// The dispatch settings of a worker started with this request on `backend`. An
    /// explicit `max_concurrent_handlers` is honoured as given; otherwise there is room
    /// for every handler thread's step plus one waiting for each, so a thread that
    /// finishes a step finds the next one ready instead of waiting for a refill — and on
    /// PostgreSQL at least `[storage.postgres] prefetch`, so claims come in batches whose
    /// round trips overlap the handlers' work.
    pub fn dispatch(&self, config: &TaskerConfig, backend: Backend) -> HandlerDispatchConfig {
        let mut dispatch = config.mpsc_channels.worker.handler_dispatch.clone();
        let explicit_max = self.dispatch_overrides.iter().any(|(name, _)| name == "max_concurrent_handlers");
        if !explicit_max {
            let mut max = dispatch.max_concurrent_handlers.max(self.concurrency(config).saturating_mul(2));
            if backend == Backend::Postgres {
                max = max.max(config.storage.postgres.prefetch);
            }
            dispatch.max_concurrent_handlers = max;
        }
        dispatch
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unset_max_is_raised_to_twice_the_concurrency_but_an_explicit_one_is_kept() {
        let config = TaskerConfig::default();
        let request = BootstrapRequest { concurrency: Some(16), ..Default::default() };
        assert_eq!(request.dispatch(&config, Backend::Embedded).max_concurrent_handlers, 32);
        let explicit = BootstrapRequest {
            concurrency: Some(16),
            dispatch_overrides: vec![("max_concurrent_handlers".into(), 4)],
            ..Default::default()
        };
        let (config, _, _) = explicit.load_config().unwrap();
        assert_eq!(explicit.dispatch(&config, Backend::Postgres).max_concurrent_handlers, 4);
    }

    #[test]
    fn on_postgres_a_worker_holds_at_least_the_prefetch() {
        let config = TaskerConfig::default();
        let request = BootstrapRequest { concurrency: Some(5), ..Default::default() };
        assert_eq!(request.dispatch(&config, Backend::Embedded).max_concurrent_handlers, 10);
        let prefetch = config.storage.postgres.prefetch;
        assert_eq!(request.dispatch(&config, Backend::Postgres).max_concurrent_handlers, prefetch.max(10));
    }

    #[test]
    fn the_template_path_option_wins_over_the_config() {
        let mut config = TaskerConfig::default();
        config.orchestration.template_path = "from/config".into();
        let request = BootstrapRequest { template_path: Some("from/option".into()), ..Default::default() };
        assert_eq!(request.template_path(&config), Some(PathBuf::from("from/option")));
    }
}
