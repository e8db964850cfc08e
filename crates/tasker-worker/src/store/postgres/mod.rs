//! The PostgreSQL task store: tasks, steps, templates and workers in the `tasker` schema
//! of one database, shared by every process pointed at it.
//!
//! - [`url`]: the database URL and its redacted form (errors and logs never show the password).
//! - [`database`]: the connection pool, prepared statements, outage logging.
//! - [`migrate`]: the schema's versioned migrations, applied under an advisory lock.
//! - [`sql`]: the statements of the hot paths (claim, completion, listing, retention).
//! - [`listener`]: LISTEN/NOTIFY wake-ups on a dedicated connection.
//! - [`config`]: the store's settings.
//!
//! Task creation and result recording are SQL functions of the schema
//! (`tasker.create_task_with`, `tasker.apply_results`), so an application's own
//! transaction can create tasks (`SELECT tasker.create_task(...)`) exactly as the store does.

pub mod backoff;
pub mod config;
pub mod database;
pub mod error;
pub mod listener;
pub mod migrate;
pub mod sql;
pub mod url;

pub use config::PostgresConfig;
pub use database::{Database, PoolSettings};
pub use error::PgStoreError;
pub use listener::{ChangeListener, Notice};
pub use migrate::MigrationReport;
pub use url::DatabaseUrl;

/// Opens the database at `url` and brings its schema up to date: a clear error now for a
/// bad URL, an unreachable server, a refused login or a schema newer than this code.
pub async fn open(url: &str, config: &PostgresConfig) -> Result<(Database, MigrationReport), PgStoreError> {
    config.validate().map_err(PgStoreError::InvalidConfig)?;
    let url = DatabaseUrl::parse(url)?;
    let db = Database::new(url, config.pool_settings())?;
    db.check().await?;
    let report = migrate::ensure_schema(&db).await?;
    Ok((db, report))
}
