//! The connection pool to one database and how its failures are reported: a
//! `deadpool-postgres` pool of `tokio-postgres` connections (plain TCP or a unix socket),
//! every statement prepared once per connection and reused (`prepare_cached`), and an
//! outage log that says once when the database became unreachable, how long retries have
//! been failing, and when it came back. A broken connection is dropped by the pool when it
//! is next handed out; the next one is opened fresh, so a PostgreSQL restart costs the
//! calls in flight at that moment and nothing more.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod, Runtime, Timeouts};
use parking_lot::Mutex;
use tokio_postgres::error::SqlState;
use tokio_postgres::NoTls;

use super::backoff::{OutageStep, ReconnectBackoff};
use super::error::{describe, is_transient_client_error, PgStoreError};
use super::url::DatabaseUrl;

/// Sizes and timeouts of the pool.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolSettings {
    /// Most connections open at once (claim, record, heartbeat, reads share them).
    pub max_size: usize,
    /// How long a caller waits for a free connection before the call fails.
    pub wait_timeout: Duration,
    /// First reconnect delay after the database became unreachable.
    pub reconnect_initial: Duration,
    /// Longest reconnect delay.
    pub reconnect_max: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            max_size: 8,
            wait_timeout: Duration::from_secs(10),
            reconnect_initial: Duration::from_millis(50),
            reconnect_max: Duration::from_secs(5),
        }
    }
}

/// A pooled connection; statements go through `prepare_cached`.
pub type PooledClient = Object;

/// One database: its URL, its pool and the state of an outage, if one is going on.
#[derive(Clone)]
pub struct Database {
    inner: Arc<Inner>,
}

struct Inner {
    url: DatabaseUrl,
    pool: Pool,
    settings: PoolSettings,
    backoff: Mutex<ReconnectBackoff>,
}

impl fmt::Debug for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Database")
            .field("url", &self.inner.url.redacted())
            .field("settings", &self.inner.settings)
            .finish_non_exhaustive()
    }
}

/// The connection settings of `url` with the store's session settings added (see
/// `sql::session_options`): what every pooled and dedicated connection starts with.
fn session_config(url: &DatabaseUrl) -> tokio_postgres::Config {
    let mut config = url.config().clone();
    let options = super::sql::session_options(config.get_options());
    config.options(&options);
    config
}

impl Database {
    /// A pool for `url`; opens no connection yet (see [`Database::check`]).
    pub fn new(url: DatabaseUrl, settings: PoolSettings) -> Result<Self, PgStoreError> {
        let manager = Manager::from_config(
            session_config(&url),
            NoTls,
            ManagerConfig { recycling_method: RecyclingMethod::Fast },
        );
        let connect_timeout = url.config().get_connect_timeout().copied();
        let pool = Pool::builder(manager)
            .max_size(settings.max_size.max(1))
            .runtime(Runtime::Tokio1)
            .timeouts(Timeouts {
                wait: Some(settings.wait_timeout),
                create: connect_timeout.map(|t| t + Duration::from_secs(1)),
                recycle: Some(Duration::from_secs(5)),
            })
            .build()
            .map_err(|err| PgStoreError::InvalidUrl { url: url.redacted().to_owned(), reason: err.to_string() })?;
        let backoff = ReconnectBackoff::new(settings.reconnect_initial, settings.reconnect_max);
        Ok(Self { inner: Arc::new(Inner { url, pool, settings, backoff: Mutex::new(backoff) }) })
    }

    pub fn url(&self) -> &DatabaseUrl {
        &self.inner.url
    }

    /// Opens a connection and runs a trivial statement: a clear error now (bad URL, no
    /// server, wrong password, unknown database) rather than on the first task.
    pub async fn check(&self) -> Result<(), PgStoreError> {
        let client = self.client().await?;
        let statement = client.prepare_cached("SELECT 1").await.map_err(|e| self.failed("the connection check", &e))?;
        client.query_one(&statement, &[]).await.map_err(|e| self.failed("the connection check", &e))?;
        Ok(())
    }

    /// A connection from the pool (opening one when none is free). Failures are logged
    /// as an outage (see the module doc) and returned; the caller decides when to retry,
    /// [`Database::retry_delay`] says how long to wait.
    pub async fn client(&self) -> Result<PooledClient, PgStoreError> {
        match self.inner.pool.get().await {
            Ok(client) => {
                self.reachable();
                Ok(client)
            }
            Err(err) => {
                let error = self.pool_error(err);
                if error.is_transient() {
                    self.unreachable(&error);
                }
                Err(error)
            }
        }
    }

    /// A connection of its own, outside the pool, for a statement that holds its
    /// connection for seconds (`VACUUM`): the pool's connections stay free for claims,
    /// completions and heartbeats, however small the pool. It has the pool's session
    /// settings and closes when the client is dropped. `what` names the caller in errors.
    pub async fn dedicated(&self, what: &'static str) -> Result<tokio_postgres::Client, PgStoreError> {
        let (client, connection) =
            session_config(&self.inner.url).connect(NoTls).await.map_err(|e| self.failed(what, &e))?;
        let url = self.inner.url.clone();
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::debug!(database = %url, error = %url.scrub(&describe(&err)), "{what}: connection closed");
            }
        });
        Ok(client)
    }

    /// Wraps a statement's error, logging an outage when it is a lost connection.
    pub fn failed(&self, what: &'static str, err: &tokio_postgres::Error) -> PgStoreError {
        let error = PgStoreError::query(&self.inner.url, what, err);
        if err.is_closed() || (is_transient_client_error(err) && err.code().is_none()) {
            self.unreachable(&error);
        }
        error
    }

    /// How long to wait before retrying after a transient failure (grows during an outage).
    pub fn retry_delay(&self) -> Duration {
        self.inner.backoff.lock().current_delay()
    }

    /// How long this process has reached the database without a break. After an outage,
    /// every worker's heartbeat is late until it has beaten again: expiry waits this long.
    pub fn reachable_for(&self) -> Duration {
        self.inner.backoff.lock().reachable_for()
    }

    /// Closes the pool: connections in use close when returned, none are opened again.
    pub fn close(&self) {
        self.inner.pool.close();
    }

    /// Connections open / idle in the pool.
    pub fn pool_status(&self) -> (usize, usize) {
        let status = self.inner.pool.status();
        (status.size, status.available)
    }

    fn pool_error(&self, err: PoolError) -> PgStoreError {
        let url = self.inner.url.redacted().to_owned();
        match err {
            PoolError::Backend(e) => {
                let reason = self.inner.url.scrub(&describe(&e));
                let refused = e.code().is_some_and(|code| {
                    *code == SqlState::INVALID_PASSWORD
                        || *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
                        || *code == SqlState::INVALID_CATALOG_NAME
                        || *code == SqlState::INSUFFICIENT_PRIVILEGE
                });
                if refused || !is_transient_client_error(&e) {
                    PgStoreError::Refused { url, reason }
                } else {
                    PgStoreError::Unreachable { url, reason }
                }
            }
            PoolError::Timeout(kind) => {
                PgStoreError::Unreachable { url, reason: format!("timed out ({kind:?}) waiting for a connection") }
            }
            PoolError::Closed => PgStoreError::Unreachable { url, reason: "the connection pool is closed".to_owned() },
            other => PgStoreError::Unreachable { url, reason: self.inner.url.scrub(&other.to_string()) },
        }
    }

    fn unreachable(&self, error: &PgStoreError) {
        let (delay, step, report) = {
            let mut backoff = self.inner.backoff.lock();
            let (delay, step) = backoff.failed();
            (delay, step, backoff.should_report())
        };
        match step {
            OutageStep::Began => {
                tracing::warn!(database = %self.inner.url, error = %error, retry_in_ms = delay.as_millis() as u64,
                    "PostgreSQL unreachable; retrying with backoff")
            }
            // The first few, then about once per reconnect_max: readable during a long outage.
            OutageStep::Continues { failures, down_for } if report => {
                tracing::warn!(database = %self.inner.url, error = %error, failures,
                    down_for_ms = down_for.as_millis() as u64, retry_in_ms = delay.as_millis() as u64,
                    "PostgreSQL still unreachable")
            }
            OutageStep::Continues { .. } => {}
        }
    }

    fn reachable(&self) {
        if let Some(down_for) = self.inner.backoff.lock().succeeded() {
            tracing::info!(database = %self.inner.url, down_for_ms = down_for.as_millis() as u64,
                "PostgreSQL reachable again");
        }
    }
}
