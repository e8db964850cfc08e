//! In-flight capacity of a worker: at most `max_concurrent_handlers` steps are claimed
//! and not yet finished, whichever path (Rust handler or FFI) runs them.
//!
//! A `DispatchSlot` is taken before a step is claimed and travels with the step; it is
//! given back when it is dropped, so a lost message can never leak capacity.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The pool of in-flight slots of one worker.
#[derive(Debug, Clone)]
pub struct DispatchSlots {
    semaphore: Arc<Semaphore>,
    capacity: usize,
    /// Slots the executor holds for a claim it has not made or finished yet: taken, but no
    /// step is in flight in them (on PostgreSQL a claim takes a round trip, and while busy
    /// the executor gathers slots for a batch), so they are not reported as in flight.
    reserved: Arc<AtomicUsize>,
}

/// The executor's reservations for its next claim; see [`DispatchSlots::reservations`].
/// Dropping it (the claimed steps sent, the rest given back) reports none again.
#[derive(Debug)]
pub struct Reservations {
    reserved: Arc<AtomicUsize>,
}

impl Reservations {
    /// How many slots are held for the claim now.
    pub fn set(&self, count: usize) {
        self.reserved.store(count, Ordering::Relaxed);
    }
}

impl Drop for Reservations {
    fn drop(&mut self) {
        self.reserved.store(0, Ordering::Relaxed);
    }
}

/// One unit of in-flight capacity; released on drop.
#[derive(Debug)]
pub struct DispatchSlot {
    _permit: OwnedSemaphorePermit,
}

impl DispatchSlots {
    pub fn new(capacity: usize) -> Self {
        Self { semaphore: Arc::new(Semaphore::new(capacity)), capacity, reserved: Arc::new(AtomicUsize::new(0)) }
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

    /// Slots currently taken, reservations for a claim included.
    pub fn taken(&self) -> usize {
        self.capacity.saturating_sub(self.semaphore.available_permits())
    }

    /// Steps in flight: slots taken by claimed steps (not by reservations for a claim).
    pub fn in_flight(&self) -> usize {
        self.taken().saturating_sub(self.reserved.load(Ordering::Relaxed))
    }

    /// The handle through which the (one) executor reports its reservations.
    pub fn reservations(&self) -> Reservations {
        Reservations { reserved: Arc::clone(&self.reserved) }
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

    #[test]
    fn reservations_for_a_claim_are_taken_but_not_in_flight() {
        let slots = DispatchSlots::new(4);
        let _step = slots.try_acquire().expect("a claimed step's slot");
        let held: Vec<_> = (0..2).map(|_| slots.try_acquire().expect("a reservation")).collect();
        let reservations = slots.reservations();
        reservations.set(held.len());
        assert_eq!((slots.taken(), slots.in_flight()), (3, 1));
        drop(reservations);
        assert_eq!(slots.in_flight(), 3, "once claimed, they are steps in flight");
    }
}
