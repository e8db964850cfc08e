//! `FFICompletionActor`: the last hop of the completion path. It owns nothing but a
//! mailbox and hands batches of step results to the orchestrator, which records them,
//! schedules retries and advances each task's DAG.

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::messages::StepExecutionResult;
use crate::orchestrator::Orchestrator;

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
    orchestrator: Orchestrator,
}

impl FFICompletionActor {
    /// Starts the actor; it stops once every handle is dropped and its mailbox is empty.
    pub fn spawn(
        orchestrator: Orchestrator,
        mailbox_size: usize,
        runtime: &tokio::runtime::Handle,
    ) -> (FFICompletionHandle, JoinHandle<()>) {
        let (sender, receiver) = mpsc::channel(mailbox_size.max(1));
        let actor = Self { mailbox: receiver, orchestrator };
        (FFICompletionHandle { mailbox: sender }, runtime.spawn(actor.run()))
    }

    async fn run(mut self) {
        while let Some(batch) = self.mailbox.recv().await {
            self.orchestrator.record_results(batch);
        }
    }
}
