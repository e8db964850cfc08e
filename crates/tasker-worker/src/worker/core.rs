//! `WorkerCore`: creates the worker's bounded channels, starts the `StepExecutorActor`
//! and the completion path, and hands the consumer ends out as `DispatchHandles`
//! (`take_dispatch_handles`) to whichever consumer runs handlers — the
//! `HandlerDispatchService` for Rust handlers or the `FfiDispatchChannel` for Ruby.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::completion::{CompletionProcessorHandle, CompletionProcessorService, FFICompletionActor};
use super::counters::PipelineCounters;
use super::slots::DispatchSlots;
use super::step_executor::{StepExecutorActor, StepExecutorHandle};
use crate::config::{CompletionConfig, HandlerDispatchConfig};
use crate::messages::{DispatchHandlerMessage, StepExecutionResult};
use crate::metrics::StepMetrics;
use crate::store::TaskStore;

/// The consumer ends of the worker's channels: take dispatched steps from
/// `dispatch_receiver`, send every result on `completion_sender`.
#[derive(Debug)]
pub struct DispatchHandles {
    pub dispatch_receiver: mpsc::Receiver<DispatchHandlerMessage>,
    pub completion_sender: mpsc::Sender<StepExecutionResult>,
}

/// See the module documentation.
#[derive(Debug)]
pub struct WorkerCore {
    slots: DispatchSlots,
    dispatch_handles: Option<DispatchHandles>,
    executor: Option<StepExecutorHandle>,
    completion: CompletionProcessorHandle,
    completion_actor: JoinHandle<()>,
}

impl WorkerCore {
    /// Creates the channels and starts the executor (claiming as `worker_id`) and the
    /// completion path on `runtime`; the completion path counts into `counters` and
    /// `metrics`.
    pub fn start(
        store: Arc<dyn TaskStore>,
        worker_id: String,
        counters: Arc<PipelineCounters>,
        metrics: Arc<StepMetrics>,
        dispatch: &HandlerDispatchConfig,
        completion: &CompletionConfig,
        runtime: &tokio::runtime::Handle,
    ) -> Self {
        let (dispatch_sender, dispatch_receiver) = mpsc::channel(dispatch.dispatch_buffer_size.max(1));
        let (completion_sender, completion_receiver) = mpsc::channel(dispatch.completion_buffer_size.max(1));
        let slots = DispatchSlots::new(dispatch.max_concurrent_handlers.max(1));

        let (actor, completion_actor) = FFICompletionActor::spawn(
            Arc::clone(&store),
            Arc::clone(&counters),
            metrics,
            completion.actor_buffer_size,
            runtime,
        );
        let completion =
            CompletionProcessorService::new(completion_receiver, actor, completion.batch_size).spawn(runtime);
        let executor = StepExecutorActor::new(
            store,
            worker_id,
            slots.clone(),
            dispatch_sender,
            Duration::from_millis(dispatch.handler_timeout_ms),
            counters,
        )
        .spawn(runtime);

        Self {
            slots,
            dispatch_handles: Some(DispatchHandles { dispatch_receiver, completion_sender }),
            executor: Some(executor),
            completion,
            completion_actor,
        }
    }

    /// The consumer ends of the channels; `None` after the first call.
    pub fn take_dispatch_handles(&mut self) -> Option<DispatchHandles> {
        self.dispatch_handles.take()
    }

    pub fn slots(&self) -> &DispatchSlots {
        &self.slots
    }

    /// Stops claiming new steps. Steps already dispatched are left to their consumer.
    pub async fn stop_claiming(&mut self) {
        if let Some(executor) = self.executor.take() {
            executor.stop().await;
        }
    }

    /// Stops the completion path once everything in it is recorded. Call after the
    /// consumer has stopped and sent its last result.
    pub async fn finish(mut self) {
        self.stop_claiming().await;
        // Unused handles (no consumer was ever attached) must not keep the channel open.
        drop(self.dispatch_handles.take());
        self.completion.stop().await;
        let _ = self.completion_actor.await;
    }
}
