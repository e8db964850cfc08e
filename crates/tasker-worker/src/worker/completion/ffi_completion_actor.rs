//! `FFICompletionActor`: the last hop of the completion path. It owns nothing but a
//! mailbox and hands batches of step results to the store, which records them,
//! schedules retries and advances each task's DAG.
//!
//! Batches that wait in the mailbox while the store is busy are joined (up to
//! `MAX_RECORD_BATCH` results) into the next call.
//!
//! A batch the store could not record (it was unavailable) is kept and tried again with
//! a growing backoff until it is recorded; fencing by `event_id` makes the repeat safe.
//! Meanwhile the mailbox fills and back-pressure reaches the senders: results wait, none
//! is dropped. Once stopping, it keeps trying for `drain_patience` and then logs what it
//! could not write (the store's lease expiry runs those steps again).
//!
//! Each recorded batch is counted twice over: by the `PipelineCounters` (what the store
//! did) and by the `StepMetrics` (each attempt's outcome and duration, labelled by step),
//! whose facts are read from the results before the store drains the batch.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::super::counters::PipelineCounters;
use super::super::retry_backoff::StoreBackoff;
use crate::messages::StepExecutionResult;
use crate::metrics::{AttemptFacts, StepMetrics};
use crate::store::TaskStore;

/// How long a stopping actor keeps trying an unavailable store.
const DRAIN_PATIENCE: Duration = Duration::from_secs(30);
/// Most results handed to the store in one call: the batches waiting in the mailbox are
/// joined up to this many, so a store with a round trip per call (PostgreSQL) records
/// what piled up while it was busy in one go instead of falling further behind.
const MAX_RECORD_BATCH: usize = 512;

/// Sends batches of results to a running `FFICompletionActor`.
#[derive(Debug, Clone)]
pub struct FFICompletionHandle {
    mailbox: mpsc::Sender<Vec<StepExecutionResult>>,
}

/// The mailbox was closed: the actor has stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the FFI completion actor has stopped")]
pub struct CompletionActorStopped;

impl FFICompletionHandle {
    /// Waits for room in the mailbox; results are never dropped.
    pub async fn send(&self, batch: Vec<StepExecutionResult>) -> Result<(), CompletionActorStopped> {
        self.mailbox.send(batch).await.map_err(|_| CompletionActorStopped)
    }
}

/// See the module documentation.
#[derive(Debug)]
pub struct FFICompletionActor {
    mailbox: mpsc::Receiver<Vec<StepExecutionResult>>,
    store: Arc<dyn TaskStore>,
    counters: Arc<PipelineCounters>,
    metrics: Arc<StepMetrics>,
    /// The facts of the batch being recorded, kept between batches to reuse its memory.
    facts: Vec<AttemptFacts>,
}

impl FFICompletionActor {
    /// Starts the actor; it stops once every handle is dropped and its mailbox is empty.
    pub fn spawn(
        store: Arc<dyn TaskStore>,
        counters: Arc<PipelineCounters>,
        metrics: Arc<StepMetrics>,
        mailbox_size: usize,
        runtime: &tokio::runtime::Handle,
    ) -> (FFICompletionHandle, JoinHandle<()>) {
        let (sender, receiver) = mpsc::channel(mailbox_size.max(1));
        let actor = Self { mailbox: receiver, store, counters, metrics, facts: Vec::new() };
        (FFICompletionHandle { mailbox: sender }, runtime.spawn(actor.run()))
    }

    async fn run(mut self) {
        let mut backoff = StoreBackoff::default();
        while let Some(mut batch) = self.mailbox.recv().await {
            while batch.len() < MAX_RECORD_BATCH {
                match self.mailbox.try_recv() {
                    Ok(more) => batch.extend(more),
                    Err(_) => break,
                }
            }
            let mut stopping_since: Option<Instant> = None;
            // A batch that failed to record is left as it was, so these stay valid.
            self.facts.clear();
            self.facts.extend(batch.iter().map(AttemptFacts::of));
            loop {
                match self.store.record(&mut batch).await {
                    Ok(outcomes) => {
                        backoff.reset();
                        self.counters.observe(&outcomes);
                        self.metrics.observe_recorded(&self.facts, &outcomes);
                        break;
                    }
                    Err(error) => {
                        self.counters.store_retry();
                        // Closed and drained by the sender side: the worker is stopping.
                        if self.mailbox.is_closed() {
                            let since = *stopping_since.get_or_insert_with(Instant::now);
                            if since.elapsed() > DRAIN_PATIENCE {
                                tracing::error!(
                                    "{} step results could not be recorded before the worker stopped ({error}); \
                                     their steps run again when their leases expire",
                                    batch.len()
                                );
                                break;
                            }
                        }
                        let wait = backoff.next_wait();
                        tracing::warn!(
                            "recording {} step results failed ({error}); keeping them and trying again in {wait:?}",
                            batch.len()
                        );
                        tokio::time::sleep(wait).await;
                    }
                }
            }
        }
    }
}
