//! `CompletionProcessorService`: drains the bounded completion channel (results from
//! every handler path) in batches and forwards them to the `FFICompletionActor`.
//! It waits when the actor is busy, so back-pressure reaches the senders and no result
//! is ever dropped.

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::ffi_completion_actor::FFICompletionHandle;
use crate::messages::StepExecutionResult;

/// See the module documentation.
#[derive(Debug)]
pub struct CompletionProcessorService {
    completion_receiver: mpsc::Receiver<StepExecutionResult>,
    actor: FFICompletionHandle,
    batch_size: usize,
    stop: CancellationToken,
}

/// Controls a running `CompletionProcessorService`.
#[derive(Debug)]
pub struct CompletionProcessorHandle {
    stop: CancellationToken,
    join: JoinHandle<()>,
}

impl CompletionProcessorService {
    pub fn new(
        completion_receiver: mpsc::Receiver<StepExecutionResult>,
        actor: FFICompletionHandle,
        batch_size: usize,
    ) -> Self {
        Self { completion_receiver, actor, batch_size: batch_size.max(1), stop: CancellationToken::new() }
    }

    pub fn spawn(self, runtime: &tokio::runtime::Handle) -> CompletionProcessorHandle {
        let stop = self.stop.clone();
        CompletionProcessorHandle { stop, join: runtime.spawn(self.run()) }
    }

    async fn run(mut self) {
        let mut batch = Vec::with_capacity(self.batch_size);
        loop {
            tokio::select! {
                biased;
                received = self.completion_receiver.recv_many(&mut batch, self.batch_size) => {
                    if received == 0 {
                        break;
                    }
                    if self.forward(&mut batch).await.is_err() {
                        return;
                    }
                }
                _ = self.stop.cancelled() => break,
            }
        }
        // Stopping: everything already in the channel still reaches the store.
        self.completion_receiver.close();
        while let Ok(result) = self.completion_receiver.try_recv() {
            batch.push(result);
        }
        let _ = self.forward(&mut batch).await;
    }

    async fn forward(&self, batch: &mut Vec<StepExecutionResult>) -> Result<(), ()> {
        if batch.is_empty() {
            return Ok(());
        }
        let full = std::mem::replace(batch, Vec::with_capacity(self.batch_size));
        self.actor.send(full).await.map_err(|e| tracing::error!("{e}: results could not be recorded"))
    }
}

impl CompletionProcessorHandle {
    /// Forwards what is left in the completion channel, then stops. Call it only after
    /// every handler path has sent its last result.
    pub async fn stop(self) {
        self.stop.cancel();
        let _ = self.join.await;
    }
}
