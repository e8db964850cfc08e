//! In-flight capacity of a worker: at most `max_concurrent_handlers` steps are claimed
//! and not yet finished, whichever path (Rust handler or FFI) runs them.
//!
//! A `DispatchSlot` is taken before a step is claimed and travels with the step; it is
//! given back when it is dropped, so a lost message can never leak capacity.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The pool of in-flight slots of one worker.
#[derive(Debug, Clone)]
pub struct DispatchSlots {
    semaphore: Arc<Semaphore>,
    capacity: usize,
}

/// One unit of in-flight capacity; released on drop.
#[derive(Debug)]
pub struct DispatchSlot {
    _permit: OwnedSemaphorePermit,
}

impl DispatchSlots {
    pub fn new(capacity: usize) -> Self {
        Self { semaphore: Arc::new(Semaphore::new(capacity)), capacity }
    }

    /// Waits for a free slot. Fails only after `close`.
    pub async fn acquire(&self) -> Option<DispatchSlot> {
        self.semaphore.clone().acquire_owned().await.ok().map(|p| DispatchSlot { _permit: p })
    }

    /// Takes a free slot if there is one.
    pub fn try_acquire(&self) -> Option<DispatchSlot> {
        self.semaphore.clone().try_acquire_owned().ok().map(|p| DispatchSlot { _permit: p })
    }

    /// Wakes every waiter with `None`; used at shutdown.
    pub fn close(&self) {
        self.semaphore.close();
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Slots currently taken.
    pub fn in_flight(&self) -> usize {
        self.capacity.saturating_sub(self.semaphore.available_permits())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn slots_are_released_on_drop() {
        let slots = DispatchSlots::new(2);
        let a = slots.try_acquire().expect("first slot");
        let _b = slots.try_acquire().expect("second slot");
        assert!(slots.try_acquire().is_none());
        assert_eq!(slots.in_flight(), 2);
        drop(a);
        assert_eq!(slots.in_flight(), 1);
        assert!(slots.try_acquire().is_some());
    }
}
