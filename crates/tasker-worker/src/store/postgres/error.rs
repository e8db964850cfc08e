//! Errors of the PostgreSQL store. Every variant that involves the server names the
//! database URL in its redacted form (never the password), and says whether trying
//! again later can help (`is_transient`), which is what the reconnect logic acts on.

use tokio_postgres::error::SqlState;

/// Something the PostgreSQL store could not do.
#[derive(Debug, thiserror::Error)]
pub enum PgStoreError {
    #[error("invalid database URL {url}: {reason}")]
    InvalidUrl { url: String, reason: String },

    #[error("cannot reach PostgreSQL at {url}: {reason}")]
    Unreachable { url: String, reason: String },

    #[error("PostgreSQL at {url} refused the connection: {reason}")]
    Refused { url: String, reason: String },

    #[error(
        "the database at {url} has tasker schema version {database}, newer than this tasker_core \
         knows (up to {code}): upgrade tasker_core before pointing it at this database"
    )]
    SchemaTooNew { url: String, database: i32, code: i32 },

    #[error(
        "migration {version} ({name}) applied to the database at {url} differs from the one compiled \
         into this tasker_core (checksum {recorded} in the database, {compiled} here); migrations must \
         never change once released"
    )]
    MigrationChanged { url: String, version: i32, name: &'static str, recorded: String, compiled: String },

    #[error("migration {version} ({name}) failed on {url}: {reason}")]
    Migration { url: String, version: i32, name: &'static str, reason: String },

    /// A statement failed; `what` says which operation it was part of.
    #[error("PostgreSQL error during {what} on {url}: {reason}")]
    Query { url: String, what: &'static str, reason: String, code: Option<String>, transient: bool },
}

impl PgStoreError {
    /// Whether the same call may succeed later (the server was down, a connection broke,
    /// a transaction lost a deadlock or serialization race): callers keep their batch
    /// and retry with backoff. Everything else needs a person.
    pub fn is_transient(&self) -> bool {
        match self {
            PgStoreError::Unreachable { .. } => true,
            PgStoreError::Query { transient, .. } => *transient,
            _ => false,
        }
    }

    /// The SQLSTATE of the failed statement, when the server sent one.
    pub fn sql_state(&self) -> Option<&str> {
        match self {
            PgStoreError::Query { code, .. } => code.as_deref(),
            _ => None,
        }
    }

    /// Wraps a client error of operation `what`.
    pub(crate) fn query(url: &super::url::DatabaseUrl, what: &'static str, err: &tokio_postgres::Error) -> Self {
        let code = err.code().map(|c| c.code().to_owned());
        PgStoreError::Query {
            url: url.redacted().to_owned(),
            what,
            reason: url.scrub(&describe(err)),
            transient: is_transient_client_error(err),
            code,
        }
    }
}

impl From<PgStoreError> for crate::store::StoreError {
    /// Transient failures become `Unavailable` (callers keep their work and retry); a
    /// schema this code cannot use becomes `Schema`; a refused login and a bad URL stay
    /// `Unavailable` and `InvalidRequest` with their message; the rest is `Internal`.
    fn from(error: PgStoreError) -> Self {
        use crate::store::StoreError;
        let message = error.to_string();
        match error {
            PgStoreError::Unreachable { .. } | PgStoreError::Refused { .. } => {
                StoreError::Unavailable { backend: "postgres", message }
            }
            PgStoreError::Query { transient: true, .. } => StoreError::Unavailable { backend: "postgres", message },
            PgStoreError::SchemaTooNew { .. }
            | PgStoreError::MigrationChanged { .. }
            | PgStoreError::Migration { .. } => StoreError::Schema(message),
            PgStoreError::InvalidUrl { .. } => StoreError::InvalidRequest(message),
            PgStoreError::Query { .. } => StoreError::Internal(message),
        }
    }
}

/// The server's message with its detail and hint, or the client's own description.
pub(crate) fn describe(err: &tokio_postgres::Error) -> String {
    match err.as_db_error() {
        Some(db) => {
            let mut text = format!("{} ({})", db.message(), db.code().code());
            if let Some(detail) = db.detail() {
                text.push_str("; ");
                text.push_str(detail);
            }
            if let Some(hint) = db.hint() {
                text.push_str("; hint: ");
                text.push_str(hint);
            }
            text
        }
        None => {
            // tokio-postgres says "error connecting to server" and keeps the cause apart.
            let mut text = err.to_string();
            let mut source = std::error::Error::source(err);
            while let Some(cause) = source {
                let cause_text = cause.to_string();
                if !text.contains(&cause_text) {
                    text.push_str(": ");
                    text.push_str(&cause_text);
                }
                source = cause.source();
            }
            text
        }
    }
}

/// Lost connections, a server shutting down or starting up, too many clients, deadlocks
/// and serialization failures pass; constraint violations, syntax errors and the like do not.
pub(crate) fn is_transient_client_error(err: &tokio_postgres::Error) -> bool {
    if err.is_closed() {
        return true;
    }
    match err.code() {
        // No SQLSTATE: a client-side failure. I/O (a socket that broke or never opened) and
        // timeouts pass; a value that could not be encoded or decoded does not.
        None => has_io_cause(err) || err.to_string().starts_with("timeout"),
        Some(code) => {
            let text = code.code();
            text.starts_with("08") // connection exception
                || text.starts_with("57P") // admin shutdown, crash shutdown, cannot connect now
                || *code == SqlState::T_R_SERIALIZATION_FAILURE
                || *code == SqlState::T_R_DEADLOCK_DETECTED
                || *code == SqlState::TOO_MANY_CONNECTIONS
        }
    }
}

fn has_io_cause(err: &tokio_postgres::Error) -> bool {
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        if cause.is::<std::io::Error>() {
            return true;
        }
        source = cause.source();
    }
    false
}
