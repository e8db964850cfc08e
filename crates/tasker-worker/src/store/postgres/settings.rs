//! The PostgreSQL store's settings, from `[storage.postgres]` of the configuration
//! (`crate::config::PostgresStoreConfig`), turned into what each part of the store needs.

use std::time::Duration;

use super::database::PoolSettings;
use super::listener::ListenerSettings;
use crate::config::{InputSchemaMode, PostgresStoreConfig};

/// What a `PostgresStore` runs with.
#[derive(Debug, Clone, PartialEq)]
pub struct StoreSettings {
    pub pool: PoolSettings,
    pub listener: ListenerSettings,
    /// Most steps one claim statement takes.
    pub claim_batch_size: usize,
    /// Fallback polling of every waiter (a lost notification costs at most this).
    pub poll_interval: Duration,
    /// A worker silent this long is dead (its steps fail as `worker_lost`); also who
    /// `workers` and `stats` count as alive.
    pub worker_lost_after: Duration,
    /// Finished tasks older than this are purged.
    pub retention: Duration,
    /// Tasks purged per statement.
    pub purge_batch_size: usize,
    /// Dead step row versions past which this process vacuums the steps table (0: never).
    pub vacuum_dead_steps: u64,
    /// How `create_task` treats a context that breaks a template's `input_schema`, for
    /// templates this process reads back from the database (`orchestration.input_schema`).
    pub input_schema_mode: InputSchemaMode,
}

impl StoreSettings {
    pub fn from_config(config: &PostgresStoreConfig, input_schema_mode: InputSchemaMode) -> Self {
        let ms = Duration::from_millis;
        Self {
            pool: PoolSettings {
                max_size: config.pool_size.max(1),
                wait_timeout: ms(config.pool_wait_timeout_ms),
                reconnect_initial: ms(config.reconnect_initial_ms),
                reconnect_max: ms(config.reconnect_max_ms),
            },
            listener: ListenerSettings {
                ping_interval: ms(config.listener_ping_interval_ms),
                ping_timeout: ms(config.listener_ping_interval_ms.clamp(1_000, 5_000)),
                reconnect_initial: ms(config.reconnect_initial_ms),
                reconnect_max: ms(config.reconnect_max_ms),
            },
            claim_batch_size: config.claim_batch_size.max(1),
            poll_interval: ms(config.poll_interval_ms.max(1)),
            worker_lost_after: ms(config.worker_lost_after_ms),
            retention: Duration::from_secs(config.finished_task_retention_seconds),
            purge_batch_size: config.purge_batch_size.max(1),
            vacuum_dead_steps: config.vacuum_dead_steps,
            input_schema_mode,
        }
    }
}

impl Default for StoreSettings {
    fn default() -> Self {
        Self::from_config(&PostgresStoreConfig::default(), InputSchemaMode::default())
    }
}
