//! `TaskerCore::FFI.migrate_database(url)`: brings a PostgreSQL database to this build's
//! `tasker` schema (what `tasker-worker migrate` runs) without starting a core. Runs
//! without the GVL; answers `{"version" => Integer, "applied" => [{"version", "name"}]}`.

use magnus::{Error, RHash, RString, Ruby};

use crate::errors::{self, guard};
use crate::gvl::without_gvl;

/// `migrate_database(url)`.
pub fn migrate_database(ruby: &Ruby, url: RString) -> Result<RHash, Error> {
    guard(ruby, "migrate_database", || {
        let url = url.to_string()?;
        let unlocked = without_gvl(|| tasker_worker::postgres::migrate_database(&url), || {});
        if let Some(interrupt) = unlocked.interrupt {
            return Err(interrupt);
        }
        let report = match unlocked.value {
            Some(Ok(report)) => report.map_err(|e| errors::store(ruby, &e))?,
            Some(Err(panic)) => {
                return Err(errors::internal(
                    ruby,
                    format!("tasker_core bug in migrate_database: {}", errors::panic_text(panic.as_ref())),
                ))
            }
            None => return Err(errors::internal(ruby, "migrate_database was interrupted before it began")),
        };
        let applied = ruby.ary_new_capa(report.applied.len());
        for (version, name) in &report.applied {
            let entry = ruby.hash_new();
            entry.aset("version", *version)?;
            entry.aset("name", *name)?;
            applied.push(entry)?;
        }
        let hash = ruby.hash_new();
        hash.aset("version", report.version)?;
        hash.aset("applied", applied)?;
        Ok(hash)
    })
}
