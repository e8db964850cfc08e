//! The one embedded system of this process, as the FFI functions see it.
//!
//! Fork: a child inherits the parent's memory but none of its threads, so the parent's
//! system (its tokio runtime, its locks) must never be used or dropped in the child —
//! dropping would wait for threads that do not exist. On first use in a child the
//! inherited system is forgotten (leaked on purpose) and the child must bootstrap its
//! own. A `pthread_atfork` child handler flags the fork, so the pid is only compared
//! (a syscall) on the first call after one. The global lock is only ever held briefly by a thread that holds the GVL, so
//! no other Ruby thread can hold it while `fork` runs.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use tasker_worker::embedded::EmbeddedSystem;

static SYSTEM: Mutex<Option<Arc<EmbeddedSystem>>> = Mutex::new(None);

/// Why no system is available.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unavailable {
    NeverStarted,
    /// Inherited through `fork` from this parent pid.
    Forked { parent: u32 },
}

impl Unavailable {
    pub fn message(self) -> String {
        match self {
            Unavailable::NeverStarted => {
                "tasker_core is not running: call TaskerCore::FFI.bootstrap_worker (or start a TaskerCore::Worker) first"
                    .to_string()
            }
            Unavailable::Forked { parent } => format!(
                "tasker_core was started in process {parent}, and this process ({}) is a fork of it: \
                 call TaskerCore::FFI.bootstrap_worker again in this process",
                std::process::id()
            ),
        }
    }
}

/// Set in a freshly forked child (by the `pthread_atfork` handler) until the next FFI
/// call notices it; keeps `getpid` off the hot path.
static FORK_PENDING: AtomicBool = AtomicBool::new(false);
/// The parent's pid once an inherited system was discarded; 0 otherwise.
static FORKED_FROM: AtomicU32 = AtomicU32::new(0);

extern "C" fn note_fork_in_child() {
    FORK_PENDING.store(true, Ordering::Release);
}

/// Registers the fork hook; called once when the extension loads.
pub fn install_fork_hook() {
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::pthread_atfork(None, None, Some(note_fork_in_child));
    }
}

fn take_if_forked(slot: &mut Option<Arc<EmbeddedSystem>>) {
    if !FORK_PENDING.swap(false, Ordering::AcqRel) {
        return;
    }
    let Some(parent) = slot.as_ref().map(|s| s.pid()).filter(|pid| *pid != std::process::id()) else { return };
    if let Some(inherited) = slot.take() {
        std::mem::forget(inherited);
    }
    FORKED_FROM.store(parent, Ordering::Release);
}

fn unavailable() -> Unavailable {
    match FORKED_FROM.load(Ordering::Acquire) {
        0 => Unavailable::NeverStarted,
        parent => Unavailable::Forked { parent },
    }
}

/// The running system of this process.
pub fn current() -> Result<Arc<EmbeddedSystem>, Unavailable> {
    let mut slot = SYSTEM.lock();
    take_if_forked(&mut slot);
    slot.clone().ok_or_else(unavailable)
}

/// The system of this process, built by `create` if there is none yet. The flag is
/// `true` when it was built by this call.
pub fn get_or_create<E>(create: impl FnOnce() -> Result<EmbeddedSystem, E>) -> Result<(Arc<EmbeddedSystem>, bool), E> {
    let mut slot = SYSTEM.lock();
    take_if_forked(&mut slot);
    if let Some(system) = slot.as_ref() {
        return Ok((Arc::clone(system), false));
    }
    let system = Arc::new(create()?);
    *slot = Some(Arc::clone(&system));
    FORKED_FROM.store(0, Ordering::Release);
    Ok((system, true))
}
