//! The DAG rules every store obeys, as pure functions of plain data: what an attempt's
//! result means for its step (`attempt`), when a task is finished and with which status
//! (`progress`), and how long a retry waits (`backoff`).
//!
//! Both the in-memory store and the PostgreSQL store call these; neither writes its own
//! version of a rule, so the two backends cannot drift apart.

pub mod attempt;
pub mod backoff;
pub mod progress;

pub use attempt::{attempt_outcome, decide_attempt, AttemptDecision};
pub use backoff::retry_delay;
pub use progress::TaskProgress;
