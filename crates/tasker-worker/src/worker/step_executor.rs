//! `StepExecutorActor`: claims ready steps from the orchestrator and puts them on the
//! bounded dispatch channel — fire-and-forget, it never runs a handler itself.
//!
//! Capacity is taken before work is claimed: for every step it claims it first holds an
//! in-flight `DispatchSlot` and a reserved place in the dispatch channel. With no slot
//! free or the channel full it simply waits; it never spawns or buffers unbounded work.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::slots::{DispatchSlot, DispatchSlots};
use crate::messages::{DispatchHandlerMessage, StepExecutionEvent};
use crate::orchestrator::Orchestrator;

/// Most steps claimed under one lock of the orchestrator.
const CLAIM_BATCH: usize = 64;

/// See the module documentation.
#[derive(Debug)]
pub struct StepExecutorActor {
    orchestrator: Orchestrator,
    slots: DispatchSlots,
    dispatch_sender: mpsc::Sender<DispatchHandlerMessage>,
    default_timeout: Duration,
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
        orchestrator: Orchestrator,
        slots: DispatchSlots,
        dispatch_sender: mpsc::Sender<DispatchHandlerMessage>,
        default_timeout: Duration,
    ) -> Self {
        Self { orchestrator, slots, dispatch_sender, default_timeout, stop: CancellationToken::new() }
    }

    pub fn spawn(self, runtime: &tokio::runtime::Handle) -> StepExecutorHandle {
        let stop = self.stop.clone();
        StepExecutorHandle { stop, join: runtime.spawn(self.run()) }
    }

    async fn run(self) {
        let mut events: Vec<StepExecutionEvent> = Vec::with_capacity(CLAIM_BATCH);
        loop {
            // 1. Capacity for at least one step: a slot, then room in the channel.
            let Some(first) = self.reserve_one().await else { return };
            let mut reserved = vec![first];
            // 2. Claim as many ready steps as we hold capacity for.
            while reserved.len() < CLAIM_BATCH {
                match self.try_reserve_one() {
                    Some(more) => reserved.push(more),
                    None => break,
                }
            }
            let next_retry = self.orchestrator.claim_ready(reserved.len(), self.default_timeout, &mut events);
            if events.is_empty() {
                // Idle: give every reservation back, so an idle worker shows nothing in
                // flight, and wait for a step to become ready. A wake-up that comes in
                // between is kept by the orchestrator's `Notify`, so none is lost.
                drop(reserved);
                let retry_due = async {
                    match next_retry {
                        Some(at) => tokio::time::sleep_until(at.into()).await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    biased;
                    _ = self.stop.cancelled() => return,
                    _ = self.orchestrator.ready_changed() => {}
                    _ = retry_due => {}
                }
                continue;
            }
            // 3. Send each claimed step with the capacity reserved for it.
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
