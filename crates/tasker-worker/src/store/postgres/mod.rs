//! The PostgreSQL task store: tasks, steps, templates and workers in the `tasker` schema
//! of one database, shared by every process pointed at it.
//!
//! - [`store`]: `PostgresStore`, the `TaskStore`, and its parts:
//!   [`claim`], [`record`], [`reads`], [`control`] (cancel, retry), [`upkeep`]
//!   (heartbeats, dead workers, retention), [`templates`], [`wakeups`].
//! - [`url`]: the database URL and its redacted form (errors and logs never show the password).
//! - [`database`]: the connection pool, prepared statements, outage logging.
//! - [`migrate`]: the schema's versioned migrations, applied under an advisory lock.
//! - [`sql`]: every statement the store runs.
//! - [`listener`]: LISTEN/NOTIFY on a dedicated connection.
//! - [`settings`]: what the store runs with, from `[storage.postgres]`.
//!
//! Task creation, result recording, cancel, retry and retention are SQL functions of the
//! schema (`migrations/0001_initial.sql`), so an application's own transaction can create
//! tasks (`SELECT tasker.create_task(...)`) exactly as the store does.

pub mod backoff;
pub mod claim;
pub mod control;
pub mod database;
pub mod error;
pub mod listener;
pub mod migrate;
pub mod reads;
pub mod record;
pub mod settings;
pub mod sql;
pub mod store;
pub mod templates;
pub mod upkeep;
pub mod url;
pub mod wakeups;

pub use database::{Database, PoolSettings};
pub use error::PgStoreError;
pub use listener::{ChangeListener, Notice};
pub use migrate::MigrationReport;
pub use settings::StoreSettings;
pub use store::PostgresStore;
pub use url::{redact, DatabaseUrl};

/// Opens the database at `url` and brings its schema up to date, without starting a
/// store (what `tasker-worker migrate` does): a clear error for a bad URL, an unreachable
/// server, a refused login or a schema newer than this code.
pub async fn open(url: &str, settings: &StoreSettings) -> Result<(Database, MigrationReport), PgStoreError> {
    let url = DatabaseUrl::parse(url)?;
    let db = Database::new(url, settings.pool.clone())?;
    db.check().await?;
    let report = migrate::ensure_schema(&db).await?;
    Ok((db, report))
}

/// Brings the database at `url` to this code's schema on a runtime of its own and
/// answers what it did (`tasker-worker migrate`). Call from outside any tokio runtime.
pub fn migrate_database(url: &str) -> Result<MigrationReport, crate::store::StoreError> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| {
        crate::store::StoreError::Internal(format!("could not start a runtime to migrate {}: {e}", redact(url)))
    })?;
    runtime.block_on(async {
        let (db, report) = open(url, &StoreSettings::default()).await?;
        db.close();
        Ok(report)
    })
}
