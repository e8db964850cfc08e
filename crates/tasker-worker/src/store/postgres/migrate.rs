//! The `tasker` schema's migrations: SQL files compiled into the binary
//! (`migrations/NNNN_name.sql`), applied in order, each recorded in
//! `tasker.schema_migrations` with a checksum of its text.
//!
//! [`ensure_schema`] runs on the first connect of every process: when the database is up
//! to date it is one read; otherwise it takes a transaction-scoped advisory lock, so two
//! processes starting together apply each migration once (the second waits, then finds
//! nothing to do). A database whose schema is newer than this code, or whose applied
//! migration differs from the compiled one, is an error that says so.

use tokio_postgres::error::SqlState;

use super::database::Database;
use super::error::PgStoreError;

/// One migration: its version (the file's number), name and SQL.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    pub version: i32,
    pub name: &'static str,
    pub sql: &'static str,
}

impl Migration {
    /// FNV-1a (64 bit) of the SQL text, in hex: recorded when applied, compared afterwards.
    pub fn checksum(&self) -> String {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in self.sql.as_bytes() {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        format!("{hash:016x}")
    }
}

/// Every migration, in order. A released migration never changes; a change is a new file.
pub const MIGRATIONS: &[Migration] = &[
    Migration { version: 1, name: "initial", sql: include_str!("../../../migrations/0001_initial.sql") },
    Migration { version: 2, name: "status_counts", sql: include_str!("../../../migrations/0002_status_counts.sql") },
    Migration {
        version: 3,
        name: "record_results_linear",
        sql: include_str!("../../../migrations/0003_record_results_linear.sql"),
    },
    Migration {
        version: 4,
        name: "completion_writes_in_place",
        sql: include_str!("../../../migrations/0004_completion_writes_in_place.sql"),
    },
    Migration {
        version: 5,
        name: "record_completions",
        sql: include_str!("../../../migrations/0005_record_completions.sql"),
    },
];

/// The schema version this code needs (the last migration's).
pub fn code_version() -> i32 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

/// Key of the advisory lock migrations hold (the bytes of "taskrmig").
const MIGRATION_LOCK: i64 = 0x7461_736b_726d_6967;

const BOOTSTRAP: &str = "
    CREATE SCHEMA IF NOT EXISTS tasker;
    CREATE TABLE IF NOT EXISTS tasker.schema_migrations (
        version    integer PRIMARY KEY,
        name       text NOT NULL,
        checksum   text NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now()
    );";

const SELECT_APPLIED: &str = "SELECT version, name, checksum FROM tasker.schema_migrations ORDER BY version";
const LOCK: &str = "SELECT pg_advisory_xact_lock($1)";
const RECORD: &str = "INSERT INTO tasker.schema_migrations (version, name, checksum) VALUES ($1, $2, $3)";

/// What a migration run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationReport {
    /// Versions applied by this run, in order (empty: already up to date).
    pub applied: Vec<(i32, &'static str)>,
    /// The schema version now.
    pub version: i32,
}

/// A migration recorded in the database.
#[derive(Debug, Clone)]
struct Applied {
    version: i32,
    checksum: String,
}

/// Brings the database's `tasker` schema up to this code's version (see the module doc).
pub async fn ensure_schema(db: &Database) -> Result<MigrationReport, PgStoreError> {
    ensure_schema_with(db, MIGRATIONS).await
}

/// [`ensure_schema`] over a given list (tests use longer or changed lists).
pub async fn ensure_schema_with(db: &Database, migrations: &[Migration]) -> Result<MigrationReport, PgStoreError> {
    let code = migrations.last().map_or(0, |m| m.version);
    {
        let client = db.client().await?;
        if let Some(applied) = read_applied(db, &client).await? {
            if check(db, migrations, &applied)? {
                return Ok(MigrationReport { applied: Vec::new(), version: code });
            }
        }
    }
    apply_missing(db, migrations).await
}

/// The recorded migrations; None when the schema or its table does not exist yet.
async fn read_applied(db: &Database, client: &deadpool_postgres::Object) -> Result<Option<Vec<Applied>>, PgStoreError> {
    let statement = match client.prepare_cached(SELECT_APPLIED).await {
        Ok(statement) => statement,
        Err(err) if is_missing_schema(&err) => return Ok(None),
        Err(err) => return Err(db.failed("reading the schema version", &err)),
    };
    let rows = client.query(&statement, &[]).await.map_err(|e| db.failed("reading the schema version", &e))?;
    Ok(Some(rows.iter().map(|row| Applied { version: row.get(0), checksum: row.get(2) }).collect()))
}

fn is_missing_schema(err: &tokio_postgres::Error) -> bool {
    err.code().is_some_and(|c| *c == SqlState::UNDEFINED_TABLE || *c == SqlState::INVALID_SCHEMA_NAME)
}

/// Checks what the database recorded against the code; true when nothing is missing.
fn check(db: &Database, migrations: &[Migration], applied: &[Applied]) -> Result<bool, PgStoreError> {
    let code = migrations.last().map_or(0, |m| m.version);
    if let Some(newest) = applied.iter().map(|a| a.version).max() {
        if newest > code {
            return Err(PgStoreError::SchemaTooNew { url: db.url().redacted().to_owned(), database: newest, code });
        }
    }
    let mut missing = false;
    for migration in migrations {
        match applied.iter().find(|a| a.version == migration.version) {
            Some(recorded) if recorded.checksum != migration.checksum() => {
                return Err(PgStoreError::MigrationChanged {
                    url: db.url().redacted().to_owned(),
                    version: migration.version,
                    name: migration.name,
                    recorded: recorded.checksum.clone(),
                    compiled: migration.checksum(),
                })
            }
            Some(_) => {}
            None => missing = true,
        }
    }
    Ok(!missing)
}

async fn apply_missing(db: &Database, migrations: &[Migration]) -> Result<MigrationReport, PgStoreError> {
    let code = migrations.last().map_or(0, |m| m.version);
    let mut client = db.client().await?;
    let transaction = client.transaction().await.map_err(|e| db.failed("starting the migration", &e))?;
    let lock = transaction.prepare_cached(LOCK).await.map_err(|e| db.failed("taking the migration lock", &e))?;
    transaction.execute(&lock, &[&MIGRATION_LOCK]).await.map_err(|e| db.failed("taking the migration lock", &e))?;
    transaction.batch_execute(BOOTSTRAP).await.map_err(|e| db.failed("creating the tasker schema", &e))?;

    // Under the lock: what another process may have applied while we waited.
    let select = transaction.prepare_cached(SELECT_APPLIED).await.map_err(|e| db.failed("reading migrations", &e))?;
    let rows = transaction.query(&select, &[]).await.map_err(|e| db.failed("reading migrations", &e))?;
    let applied: Vec<Applied> = rows.iter().map(|row| Applied { version: row.get(0), checksum: row.get(2) }).collect();
    if check(db, migrations, &applied)? {
        transaction.commit().await.map_err(|e| db.failed("finishing the migration", &e))?;
        return Ok(MigrationReport { applied: Vec::new(), version: code });
    }

    let record = transaction.prepare_cached(RECORD).await.map_err(|e| db.failed("recording a migration", &e))?;
    let mut done = Vec::new();
    for migration in migrations {
        if applied.iter().any(|a| a.version == migration.version) {
            continue;
        }
        transaction.batch_execute(migration.sql).await.map_err(|err| PgStoreError::Migration {
            url: db.url().redacted().to_owned(),
            version: migration.version,
            name: migration.name,
            reason: db.url().scrub(&super::error::describe(&err)),
        })?;
        transaction
            .execute(&record, &[&migration.version, &migration.name, &migration.checksum()])
            .await
            .map_err(|e| db.failed("recording a migration", &e))?;
        done.push((migration.version, migration.name));
    }
    transaction.commit().await.map_err(|e| db.failed("committing the migrations", &e))?;
    for (version, name) in &done {
        tracing::info!(database = %db.url(), version, name, "applied tasker schema migration");
    }
    Ok(MigrationReport { applied: done, version: code })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_numbered_in_order_from_one() {
        for (i, migration) in MIGRATIONS.iter().enumerate() {
            assert_eq!(migration.version, i as i32 + 1, "{}", migration.name);
            assert!(!migration.sql.trim().is_empty(), "{}", migration.name);
        }
        assert_eq!(code_version(), MIGRATIONS.len() as i32);
    }

    #[test]
    fn checksum_follows_the_text() {
        let a = Migration { version: 1, name: "a", sql: "CREATE TABLE x ();" };
        let b = Migration { version: 1, name: "a", sql: "CREATE TABLE y ();" };
        assert_eq!(a.checksum(), a.checksum());
        assert_ne!(a.checksum(), b.checksum());
        assert_eq!(a.checksum().len(), 16);
    }
}
