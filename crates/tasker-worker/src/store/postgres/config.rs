//! Settings of the PostgreSQL store (`[store.postgres]` of the configuration; the URL
//! itself comes from `TASKER_DATABASE_URL` or the `database_url:` option, never a file).

use std::time::Duration;

use serde::Deserialize;

use super::database::PoolSettings;
use super::listener::ListenerSettings;

/// Every tunable of the PostgreSQL store, with the defaults a deployment starts from.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PostgresConfig {
    /// Connections per process (claims, completions, heartbeats and reads share them; the
    /// change listener has its own).
    pub pool_size: usize,
    /// How long a call waits for a free connection before it fails.
    pub pool_wait_timeout_ms: u64,
    /// Most steps one claim statement takes (one round trip for up to this many).
    pub claim_batch_size: usize,
    /// How often a worker process refreshes its heartbeat.
    pub heartbeat_interval_ms: u64,
    /// A worker silent this long is dead: its steps fail as retryable `worker_lost` and
    /// run again elsewhere. Several heartbeat intervals, so one slow beat is not death.
    pub worker_lost_after_ms: u64,
    /// Fallback polling when no notification arrives (a lost NOTIFY costs at most this).
    pub poll_interval_ms: u64,
    /// Finished tasks older than this are deleted (with their steps).
    pub finished_task_retention_seconds: u64,
    /// Tasks deleted per retention statement (short transactions, no long locks).
    pub purge_batch_size: usize,
    /// How often retention runs.
    pub purge_interval_ms: u64,
    /// First reconnect delay after the database became unreachable.
    pub reconnect_initial_ms: u64,
    /// Longest reconnect delay.
    pub reconnect_max_ms: u64,
    /// How often the change listener pings its connection.
    pub listener_ping_interval_ms: u64,
}

impl Default for PostgresConfig {
    fn default() -> Self {
        Self {
            pool_size: 8,
            pool_wait_timeout_ms: 10_000,
            claim_batch_size: 64,
            heartbeat_interval_ms: 1_000,
            worker_lost_after_ms: 5_000,
            poll_interval_ms: 1_000,
            // A week: long enough to look at what happened, short enough to stay small.
            finished_task_retention_seconds: 7 * 24 * 3600,
            purge_batch_size: 500,
            purge_interval_ms: 10_000,
            reconnect_initial_ms: 50,
            reconnect_max_ms: 5_000,
            listener_ping_interval_ms: 10_000,
        }
    }
}

impl PostgresConfig {
    /// Checks the values that have to be in range; the message names the key.
    pub fn validate(&self) -> Result<(), String> {
        let positive = [
            ("pool_size", self.pool_size as u64),
            ("pool_wait_timeout_ms", self.pool_wait_timeout_ms),
            ("claim_batch_size", self.claim_batch_size as u64),
            ("heartbeat_interval_ms", self.heartbeat_interval_ms),
            ("worker_lost_after_ms", self.worker_lost_after_ms),
            ("poll_interval_ms", self.poll_interval_ms),
            ("purge_batch_size", self.purge_batch_size as u64),
            ("purge_interval_ms", self.purge_interval_ms),
            ("reconnect_initial_ms", self.reconnect_initial_ms),
            ("reconnect_max_ms", self.reconnect_max_ms),
            ("listener_ping_interval_ms", self.listener_ping_interval_ms),
        ];
        if let Some((key, _)) = positive.iter().find(|(_, value)| *value == 0) {
            return Err(format!("{key}: must be greater than 0"));
        }
        if self.claim_batch_size > 1000 {
            return Err(format!("claim_batch_size: {} is more than 1000", self.claim_batch_size));
        }
        if self.worker_lost_after_ms < 2 * self.heartbeat_interval_ms {
            return Err(format!(
                "worker_lost_after_ms: {} must be at least twice heartbeat_interval_ms ({})",
                self.worker_lost_after_ms, self.heartbeat_interval_ms
            ));
        }
        if self.reconnect_max_ms < self.reconnect_initial_ms {
            return Err(format!(
                "reconnect_max_ms: {} is less than reconnect_initial_ms ({})",
                self.reconnect_max_ms, self.reconnect_initial_ms
            ));
        }
        Ok(())
    }

    pub fn pool_settings(&self) -> PoolSettings {
        PoolSettings {
            max_size: self.pool_size,
            wait_timeout: Duration::from_millis(self.pool_wait_timeout_ms),
            reconnect_initial: Duration::from_millis(self.reconnect_initial_ms),
            reconnect_max: Duration::from_millis(self.reconnect_max_ms),
        }
    }

    pub fn listener_settings(&self) -> ListenerSettings {
        ListenerSettings {
            ping_interval: Duration::from_millis(self.listener_ping_interval_ms),
            ping_timeout: Duration::from_millis(self.listener_ping_interval_ms.clamp(1_000, 5_000)),
            reconnect_initial: Duration::from_millis(self.reconnect_initial_ms),
            reconnect_max: Duration::from_millis(self.reconnect_max_ms),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert_eq!(PostgresConfig::default().validate(), Ok(()));
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named() {
        let err = toml::from_str::<PostgresConfig>("pool_sise = 3").unwrap_err().to_string();
        assert!(err.contains("pool_sise"), "{err}");
        let config: PostgresConfig = toml::from_str("heartbeat_interval_ms = 4000").unwrap();
        assert!(config.validate().unwrap_err().starts_with("worker_lost_after_ms"));
        let config: PostgresConfig = toml::from_str("claim_batch_size = 0").unwrap();
        assert_eq!(config.validate().unwrap_err(), "claim_batch_size: must be greater than 0");
    }
}
