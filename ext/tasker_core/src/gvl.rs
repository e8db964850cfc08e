//! Running Rust code without Ruby's GVL, interruptibly.
//!
//! Rules kept here:
//! - The closure run without the GVL touches no Ruby object and calls no Ruby API.
//! - Ruby calls the unblock function (on another thread, holding the GVL) when it wants
//!   this thread back — `Thread#kill`, `Thread#raise`, `Timeout`, a signal such as
//!   Ctrl-C. The unblock function only sets flags and wakes waiters.
//! - `rb_thread_call_without_gvl` checks for pending interrupts before and after the
//!   closure and may raise (a non-local jump). It is called under `rb_protect`, so the
//!   jump stops there, every Rust frame unwinds normally, and the interrupt is handed
//!   back as an `Error` for magnus to re-raise when the method returns.
//! - Neither closure may unwind into C: panics are caught inside the trampolines.

use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use magnus::Error;

/// Longest stretch a blocking wait spends without the GVL before it takes Ruby's pending
/// interrupts and goes on waiting. Ruby calls the unblock function for `Thread#kill`,
/// `Thread#raise` and `Timeout`, but not for a signal (Ctrl-C) that arrives while every
/// Ruby thread is blocked: the signal is only acted on when a thread next checks its
/// interrupts, so long waits are cut into slices of this length.
pub const INTERRUPT_CHECK_INTERVAL: Duration = Duration::from_millis(100);

/// What a GVL-free call produced.
pub struct Unlocked<R> {
    /// The closure's result, or `None` if Ruby had an interrupt pending before it could
    /// run; `Err` holds a panic payload.
    pub value: Option<std::thread::Result<R>>,
    /// The Ruby interrupt (exception, kill, throw) pending when the call ended.
    pub interrupt: Option<Error>,
}

struct Call<F, R> {
    work: Option<F>,
    value: Option<std::thread::Result<R>>,
}

unsafe extern "C" fn run_work<F, R>(data: *mut c_void) -> *mut c_void
where
    F: FnOnce() -> R,
{
    // SAFETY: `data` is the `Call` on the stack of `without_gvl`, alive for this call.
    let call = unsafe { &mut *(data as *mut Call<F, R>) };
    if let Some(work) = call.work.take() {
        call.value = Some(catch_unwind(AssertUnwindSafe(work)));
    }
    ptr::null_mut()
}

unsafe extern "C" fn run_unblock<U>(data: *mut c_void)
where
    U: Fn() + Sync,
{
    // SAFETY: `data` is the `unblock` closure borrowed by `without_gvl`; Ruby calls the
    // unblock function only while the blocking region (inside that call) is active.
    let unblock = unsafe { &*(data as *const U) };
    let _ = catch_unwind(AssertUnwindSafe(unblock));
}

/// Runs `work` with the GVL released; see the module documentation.
pub fn without_gvl<R, F, U>(work: F, unblock: U) -> Unlocked<R>
where
    F: FnOnce() -> R,
    U: Fn() + Sync,
{
    let mut call = Call { work: Some(work), value: None };
    let call_ptr = &mut call as *mut Call<F, R> as *mut c_void;
    let unblock_ptr = &unblock as *const U as *mut c_void;
    let protected = magnus::rb_sys::protect(|| {
        // SAFETY: both pointers outlive the call; the trampolines match their data.
        unsafe {
            rb_sys::rb_thread_call_without_gvl(Some(run_work::<F, R>), call_ptr, Some(run_unblock::<U>), unblock_ptr);
        }
        rb_sys::Qnil as rb_sys::VALUE
    });
    Unlocked { value: call.value, interrupt: protected.err() }
}

/// `without_gvl` for a wait that watches an interrupt flag: `work` gets the flag's
/// reader; the unblock function sets the flag, then calls `wake` so the wait notices.
pub fn without_gvl_interruptible<R>(work: impl FnOnce(&dyn Fn() -> bool) -> R, wake: impl Fn() + Sync) -> Unlocked<R> {
    let interrupted = AtomicBool::new(false);
    let is_interrupted = || interrupted.load(Ordering::Acquire);
    without_gvl(
        || work(&is_interrupted),
        || {
            interrupted.store(true, Ordering::Release);
            wake();
        },
    )
}

/// A blocking wait of `timeout` cut into slices of at most `INTERRUPT_CHECK_INTERVAL`,
/// so that Ruby takes pending interrupts (signals included) between them.
pub struct SlicedWait {
    deadline: Option<Instant>,
    started: std::cell::Cell<bool>,
}

impl SlicedWait {
    pub fn new(timeout: Duration) -> Self {
        Self { deadline: Instant::now().checked_add(timeout), started: std::cell::Cell::new(false) }
    }

    /// How long the next slice may wait; `None` once the whole wait is over. The first
    /// slice is always given (it may be zero long), so a zero timeout still looks once.
    pub fn next_slice(&self) -> Option<Duration> {
        let first = !self.started.replace(true);
        match self.deadline {
            None => Some(INTERRUPT_CHECK_INTERVAL),
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                (first || !left.is_zero()).then(|| left.min(INTERRUPT_CHECK_INTERVAL))
            }
        }
    }
}
