//! Where the core's own log lines go in a Ruby process: standard error, one line each,
//! starting with `tasker_core` (`tasker_core  WARN PostgreSQL unreachable; retrying with
//! backoff database=postgresql://app:***@db/tasks ...`), at the level named by
//! `TASKER_LOG_LEVEL` (debug, info, warn, error; info when unset), the variable the Ruby
//! side's logger reads too. Libraries underneath (the connection pool, the PostgreSQL
//! client) only show their errors: the core already reports what their warnings are
//! about, once, in its own words. Installed once when the extension loads, unless the
//! process already has a tracing subscriber.

use std::io::Write;

use tracing::Level;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::Layer;

/// Installs the subscriber (a no-op when the process already has one).
pub fn install() {
    let level = match std::env::var("TASKER_LOG_LEVEL").unwrap_or_default().to_ascii_lowercase().as_str() {
        "trace" => Level::TRACE,
        "debug" => Level::DEBUG,
        "warn" | "warning" => Level::WARN,
        "error" | "fatal" => Level::ERROR,
        _ => Level::INFO,
    };
    let filter =
        Targets::new().with_target("tasker_worker", level).with_target("tasker_core", level).with_default(Level::ERROR);
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(|| PrefixedStderr)
        .with_ansi(false)
        .with_target(false)
        .without_time()
        .with_filter(filter);
    let subscriber = tracing_subscriber::registry().with(layer);
    // Err only when a subscriber is already set: that one stays.
    let _ = tracing::subscriber::set_global_default(subscriber);
}

/// Standard error, each formatted event (written in one call) prefixed with the name.
struct PrefixedStderr;

impl Write for PrefixedStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut line = Vec::with_capacity(buf.len() + 13);
        line.extend_from_slice(b"tasker_core ");
        line.extend_from_slice(buf);
        std::io::stderr().lock().write_all(&line)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}
