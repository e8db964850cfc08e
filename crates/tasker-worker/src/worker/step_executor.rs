//! `StepExecutorActor`: claims ready steps from the store and puts them on the bounded
//! dispatch channel — fire-and-forget, it never runs a handler itself.
//!
//! Capacity is taken before work is claimed: for every step it claims it first holds an
//! in-flight `DispatchSlot` and a reserved place in the dispatch channel. With no slot
//! free or the channel full it simply waits; it never spawns or buffers unbounded work.
//!
//! Busy, it claims in batches: while more than `refill_below` steps are still held
//! (running or waiting for a handler thread) it waits for further slots instead of
//! claiming each one as it frees up, so a store whose every call is a round trip (and a
//! commit) sees few, large claims. The embedded store refills at once (`refill_below` =
//! capacity): its claims cost no round trip.
//!
//! Idle, it sleeps until the store's feed says steps may be ready, the earliest scheduled
//! step is due, or the feed's poll interval passes (a lost notification costs only that).
//! An unavailable store is retried with a growing backoff; nothing is claimed meanwhile.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::counters::PipelineCounters;
use super::retry_backoff::StoreBackoff;
use super::slots::{DispatchSlot, DispatchSlots};
use crate::messages::{DispatchHandlerMessage, StepExecutionEvent};
use crate::store::TaskStore;

/// Most steps claimed in one call of the store.
const CLAIM_BATCH: usize = 64;

/// See the module documentation.
#[derive(Debug)]
pub struct StepExecutorActor {
    store: Arc<dyn TaskStore>,
    /// The lease owner named on every claim.
    worker_id: String,
    slots: DispatchSlots,
    dispatch_sender: mpsc::Sender<DispatchHandlerMessage>,
    default_timeout: Duration,
    /// Claim only once the steps held (excluding the reservations for the claim) are at
    /// or below this; see the module documentation.
    refill_below: usize,
    counters: Arc<PipelineCounters>,
    stop: CancellationToken,
}

/// Controls a running `StepExecutorActor`.
#[derive(Debug)]
pub struct StepExecutorHandle {
    stop: CancellationToken,
    join: JoinHandle<()>,
}

impl StepExecutorActor {
    pub fn new(
        store: Arc<dyn TaskStore>,
        worker_id: String,
        slots: DispatchSlots,
        dispatch_sender: mpsc::Sender<DispatchHandlerMessage>,
        default_timeout: Duration,
        counters: Arc<PipelineCounters>,
    ) -> Self {
        // A store that blocks on I/O refills at half its capacity: the other half keeps
        // the handler threads busy during the claim's round trip.
        let capacity = slots.capacity();
        let refill_below = if store.blocks_on_io() { capacity / 2 } else { capacity };
        Self {
            store,
            worker_id,
            slots,
            dispatch_sender,
            default_timeout,
            refill_below,
            counters,
            stop: CancellationToken::new(),
        }
    }

    pub fn spawn(self, runtime: &tokio::runtime::Handle) -> StepExecutorHandle {
        let stop = self.stop.clone();
        StepExecutorHandle { stop, join: runtime.spawn(self.run()) }
    }

    async fn run(self) {
        let mut events: Vec<StepExecutionEvent> = Vec::with_capacity(CLAIM_BATCH);
        let mut backoff = StoreBackoff::default();
        let feed = Arc::clone(self.store.feed());
        // Kept across a failed claim, so a claim that committed but whose answer was lost
        // is answered again (not leaked) when tried again.
        let mut claim_id = uuid::Uuid::new_v4();
        loop {
            // 1. Capacity for at least one step: a slot, then room in the channel.
            let Some(first) = self.reserve_one().await else { return };
            let mut reserved = vec![first];
            // Until the claimed steps are sent, these slots are reservations, not steps
            // in flight (what the heartbeat, the status and the metrics report).
            let reservations = self.slots.reservations();
            reservations.set(reserved.len());
            // 2. While enough steps are still held, wait for more capacity (a batch).
            while reserved.len() < CLAIM_BATCH && self.slots.taken().saturating_sub(reserved.len()) > self.refill_below
            {
                match self.reserve_one().await {
                    Some(more) => reserved.push(more),
                    None => return,
                }
                reservations.set(reserved.len());
            }
            // 3. Claim as many ready steps as we hold capacity for.
            while reserved.len() < CLAIM_BATCH {
                match self.try_reserve_one() {
                    Some(more) => reserved.push(more),
                    None => break,
                }
            }
            reservations.set(reserved.len());
            let claimed =
                self.store.claim(&self.worker_id, claim_id, reserved.len(), self.default_timeout, &mut events).await;
            let next_due = match claimed {
                Ok(claimed) => {
                    backoff.reset();
                    claim_id = uuid::Uuid::new_v4();
                    claimed.next_due
                }
                Err(error) => {
                    drop(reservations);
                    drop(reserved);
                    events.clear();
                    let wait = backoff.next_wait();
                    self.counters.store_retry();
                    tracing::warn!("claiming steps failed ({error}); trying again in {wait:?}");
                    tokio::select! {
                        biased;
                        _ = self.stop.cancelled() => return,
                        _ = tokio::time::sleep(wait) => {}
                    }
                    continue;
                }
            };
            if events.is_empty() {
                // Idle: give every reservation back, so an idle worker shows nothing in
                // flight, and wait for a step to become ready. A wake-up that comes in
                // between is kept by the feed's `Notify`, so none is lost.
                drop(reservations);
                drop(reserved);
                let wake_after = match (next_due, feed.poll_interval()) {
                    (Some(due), Some(poll)) => Some(due.min(poll)),
                    (due, poll) => due.or(poll),
                };
                let due = async {
                    match wake_after {
                        Some(after) => tokio::time::sleep(after).await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    biased;
                    _ = self.stop.cancelled() => return,
                    _ = feed.ready() => {}
                    _ = due => {}
                }
                continue;
            }
            self.counters.dispatched(events.len());
            debug_assert!(events.len() <= reserved.len(), "the store claimed more steps than asked for");
            // 4. Send each claimed step with the capacity reserved for it.
            for (event, (slot, permit)) in events.drain(..).zip(reserved.drain(..)) {
                permit.send(DispatchHandlerMessage::new(event, Some(slot)));
            }
        }
    }

    async fn reserve_one(&self) -> Option<(DispatchSlot, mpsc::OwnedPermit<DispatchHandlerMessage>)> {
        tokio::select! {
            biased;
            _ = self.stop.cancelled() => None,
            reserved = async {
                let slot = self.slots.acquire().await?;
                let permit = self.dispatch_sender.clone().reserve_owned().await.ok()?;
                Some((slot, permit))
            } => reserved,
        }
    }

    fn try_reserve_one(&self) -> Option<(DispatchSlot, mpsc::OwnedPermit<DispatchHandlerMessage>)> {
        let slot = self.slots.try_acquire()?;
        let permit = self.dispatch_sender.clone().try_reserve_owned().ok()?;
        Some((slot, permit))
    }
}

impl StepExecutorHandle {
    /// Stops claiming; returns once the actor has stopped. Steps already sent stay sent.
    pub async fn stop(self) {
        self.stop.cancel();
        let _ = self.join.await;
    }
}
