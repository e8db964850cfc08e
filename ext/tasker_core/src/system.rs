//! The one `System` of this process, as the FFI functions see it.
//!
//! Fork: a child inherits the parent's memory but none of its threads, so the parent's
//! system (its tokio runtime, its locks) must never be used or dropped in the child —
//! dropping would wait for threads that do not exist. On first use in a child the
//! inherited system is forgotten (leaked on purpose) and the child must bootstrap its
//! own; until it does, every call that needs the system is told it runs in a fork (not
//! merely that nothing was started). A `pthread_atfork` child handler flags the fork,
//! so the pid is only compared (a syscall) on the first call after one. The global
//! lock is only ever held briefly by a thread that holds the GVL, so no other Ruby
//! thread can hold it while `fork` runs.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use tasker_worker::System;

/// The system of this process; and, once a system inherited through `fork` has been
/// forgotten, the pid it came from (until this process bootstraps its own).
struct Slot {
    system: Option<Arc<System>>,
    forked_from: Option<u32>,
}

static SYSTEM: Mutex<Slot> = Mutex::new(Slot { system: None, forked_from: None });

/// Why no system is available.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unavailable {
    NeverStarted,
    /// Inherited through `fork` from this parent pid.
    Forked {
        parent: u32,
    },
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

/// After a fork, forgets the system inherited from the parent, remembering its pid.
fn take_if_forked(slot: &mut Slot) {
    if !FORK_PENDING.swap(false, Ordering::AcqRel) {
        return;
    }
    let inherited_from = slot.system.as_ref().map(|s| s.pid()).filter(|pid| *pid != std::process::id());
    if let Some(parent) = inherited_from {
        if let Some(inherited) = slot.system.take() {
            std::mem::forget(inherited);
        }
        slot.forked_from = Some(parent);
    }
}

fn unavailable(slot: &Slot) -> Unavailable {
    match slot.forked_from {
        Some(parent) => Unavailable::Forked { parent },
        None => Unavailable::NeverStarted,
    }
}

/// The running system of this process.
pub fn current() -> Result<Arc<System>, Unavailable> {
    let mut slot = SYSTEM.lock();
    take_if_forked(&mut slot);
    slot.system.clone().ok_or_else(|| unavailable(&slot))
}

/// Makes `built` the system of this process unless another thread installed one while
/// it was being built; answers the installed system and whether it is `built`.
pub fn install(built: System) -> (Arc<System>, bool) {
    let mut slot = SYSTEM.lock();
    take_if_forked(&mut slot);
    if let Some(system) = slot.system.as_ref() {
        let winner = Arc::clone(system);
        drop(slot);
        // Built in vain: its runtime threads are told to stop without waiting for them.
        built.shut_down_in_background();
        return (winner, false);
    }
    let system = Arc::new(built);
    slot.system = Some(Arc::clone(&system));
    slot.forked_from = None;
    (system, true)
}
