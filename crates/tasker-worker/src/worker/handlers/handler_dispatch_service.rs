//! `HandlerDispatchService`: the consumer of the dispatch channel for Rust handlers.
//!
//! For each message it takes a semaphore permit *before* spawning (so at most
//! `max_concurrent_handlers` handlers run at once), runs the handler under the step's
//! deadline with panics caught, releases the permit and the dispatch slot, and only then
//! sends the result on the completion channel. Every message ends in exactly one
//! result: success, handler error, `handler_timeout` (retryable), `handler_panic`
//! (not retryable), `handler_not_found` (not retryable) or `worker_shutdown`.
//!
//! Metrics: with `with_metrics`, each handler start observes the step's queue wait (from
//! its `ready_at` to the start).

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use futures::FutureExt;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

use super::registry::HandlerRegistry;
use crate::messages::{error_types, DispatchHandlerMessage, ResultMetadata, StepExecutionError, StepExecutionResult};
use crate::metrics::StepMetrics;
use crate::time_format::rfc3339_millis;
use crate::worker::core::DispatchHandles;

/// See the module documentation.
#[derive(Debug)]
pub struct HandlerDispatchService {
    dispatch_receiver: mpsc::Receiver<DispatchHandlerMessage>,
    completion_sender: mpsc::Sender<StepExecutionResult>,
    registry: Arc<HandlerRegistry>,
    permits: Arc<Semaphore>,
    max_concurrent_handlers: usize,
    /// Stop taking messages.
    stop: CancellationToken,
    /// Stop waiting for running handlers: each reports `worker_shutdown`.
    abandon: CancellationToken,
    /// Where each handler start's queue wait is observed (none: not measured).
    metrics: Option<Arc<StepMetrics>>,
}

/// Controls a running `HandlerDispatchService`.
#[derive(Debug)]
pub struct HandlerDispatchHandle {
    permits: Arc<Semaphore>,
    max_concurrent_handlers: usize,
    stop: CancellationToken,
    abandon: CancellationToken,
    /// Resolves to how many steps were reported as `worker_shutdown`.
    join: JoinHandle<usize>,
}

impl HandlerDispatchService {
    pub fn new(handles: DispatchHandles, registry: HandlerRegistry, max_concurrent_handlers: usize) -> Self {
        let max = max_concurrent_handlers.max(1);
        Self {
            dispatch_receiver: handles.dispatch_receiver,
            completion_sender: handles.completion_sender,
            registry: Arc::new(registry),
            permits: Arc::new(Semaphore::new(max)),
            max_concurrent_handlers: max,
            stop: CancellationToken::new(),
            abandon: CancellationToken::new(),
            metrics: None,
        }
    }

    /// Observes each step's queue wait in `metrics` when its handler starts.
    pub fn with_metrics(mut self, metrics: Arc<StepMetrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    pub fn spawn(self, runtime: &tokio::runtime::Handle) -> HandlerDispatchHandle {
        let permits = Arc::clone(&self.permits);
        let max_concurrent_handlers = self.max_concurrent_handlers;
        let stop = self.stop.clone();
        let abandon = self.abandon.clone();
        let join = runtime.spawn(self.run());
        HandlerDispatchHandle { permits, max_concurrent_handlers, stop, abandon, join }
    }

    /// Returns how many steps it reported as `worker_shutdown`.
    async fn run(mut self) -> usize {
        let mut running = JoinSet::new();
        let mut shutdown_reported = 0;
        loop {
            tokio::select! {
                biased;
                _ = self.stop.cancelled() => break,
                Some(joined) = running.join_next(), if !running.is_empty() => {
                    shutdown_reported += usize::from(joined.unwrap_or(false));
                }
                message = self.dispatch_receiver.recv() => {
                    let Some(message) = message else { break };
                    let permit = tokio::select! {
                        permit = Arc::clone(&self.permits).acquire_owned() => permit,
                        _ = self.stop.cancelled() => {
                            report_shutdown(message, &self.completion_sender).await;
                            shutdown_reported += 1;
                            break;
                        }
                    };
                    let Ok(permit) = permit else { break };
                    running.spawn(execute(
                        message,
                        permit,
                        Arc::clone(&self.registry),
                        self.completion_sender.clone(),
                        self.abandon.clone(),
                        self.metrics.clone(),
                    ));
                }
            }
        }
        // Nothing new is taken; whatever was dispatched and not started is reported.
        self.dispatch_receiver.close();
        while let Ok(message) = self.dispatch_receiver.try_recv() {
            report_shutdown(message, &self.completion_sender).await;
            shutdown_reported += 1;
        }
        while let Some(joined) = running.join_next().await {
            shutdown_reported += usize::from(joined.unwrap_or(false));
        }
        shutdown_reported
    }
}

impl HandlerDispatchHandle {
    /// Handlers running right now.
    pub fn running(&self) -> usize {
        self.max_concurrent_handlers - self.permits.available_permits()
    }

    /// Stops taking messages, lets running handlers finish for up to `grace`, then
    /// reports the rest as `worker_shutdown`. Returns once every result is sent, with
    /// how many steps (not started, or abandoned after `grace`) were reported so.
    pub async fn stop(self, grace: Duration) -> usize {
        self.stop.cancel();
        let abandon = self.abandon.clone();
        let mut join = self.join;
        let joined = match tokio::time::timeout(grace, &mut join).await {
            Ok(joined) => joined,
            Err(_) => {
                abandon.cancel();
                join.await
            }
        };
        joined.unwrap_or(0)
    }
}

/// Runs one step and sends its result; returns whether it was abandoned at shutdown.
async fn execute(
    message: DispatchHandlerMessage,
    permit: OwnedSemaphorePermit,
    registry: Arc<HandlerRegistry>,
    completion_sender: mpsc::Sender<StepExecutionResult>,
    abandon: CancellationToken,
    metrics: Option<Arc<StepMetrics>>,
) -> bool {
    let DispatchHandlerMessage { event, slot, .. } = message;
    let identity = event.identity();
    let step_name = event.payload.workflow_step.name.clone();
    let callable = event.payload.step_definition.handler.callable.clone();
    let timeout = event.timeout;
    let started = Instant::now();
    let started_at = SystemTime::now();
    if let Some(metrics) = &metrics {
        metrics.observe_queue_wait(&event, started_at);
    }
    let mut abandoned = false;

    let mut result = match registry.get(&callable) {
        None => StepExecutionResult::failure(StepExecutionError::new(
            format!("no Rust handler is registered for callable '{callable}' (step '{step_name}')"),
            error_types::HANDLER_NOT_FOUND,
            false,
        )),
        Some(handler) => {
            let payload = event.payload;
            let run = AssertUnwindSafe(async move { handler.call(payload).await }).catch_unwind();
            tokio::select! {
                outcome = tokio::time::timeout(timeout, run) => match outcome {
                    Err(_) => StepExecutionResult::failure(StepExecutionError::new(
                        format!("step '{step_name}' exceeded its deadline of {} ms", timeout.as_millis()),
                        error_types::HANDLER_TIMEOUT,
                        true,
                    )),
                    Ok(Err(panic)) => StepExecutionResult::failure(StepExecutionError::new(
                        format!("handler '{callable}' panicked: {}", panic_message(panic.as_ref())),
                        error_types::HANDLER_PANIC,
                        false,
                    )),
                    Ok(Ok(Err(error))) => StepExecutionResult::failure(error.into_execution_error()),
                    Ok(Ok(Ok(value))) => StepExecutionResult::success(value),
                },
                _ = abandon.cancelled() => {
                    abandoned = true;
                    StepExecutionResult::failure(StepExecutionError::new(
                        format!("worker stopped before step '{step_name}' finished; it will be retried"),
                        error_types::WORKER_SHUTDOWN,
                        true,
                    ))
                }
            }
        }
    };
    result.metadata = ResultMetadata {
        execution_time_ms: Some(started.elapsed().as_millis() as u64),
        started_at: Some(rfc3339_millis(started_at)),
        completed_at: Some(rfc3339_millis(SystemTime::now())),
        retryable: result.error.as_ref().map(|e| e.retryable),
        custom: None,
    };
    // Capacity goes back before the result is sent on.
    drop(permit);
    drop(slot);
    if completion_sender.send(result.with_identity(identity)).await.is_err() {
        tracing::error!(step = %step_name, "completion channel closed; result of a Rust handler could not be delivered");
    }
    abandoned
}

async fn report_shutdown(message: DispatchHandlerMessage, completion_sender: &mpsc::Sender<StepExecutionResult>) {
    let identity = message.event.identity();
    let name = message.event.payload.workflow_step.name.clone();
    drop(message);
    let failure = StepExecutionResult::failure(StepExecutionError::new(
        format!("worker stopped before step '{name}' started; it will be retried"),
        error_types::WORKER_SHUTDOWN,
        true,
    ))
    .with_identity(identity);
    if completion_sender.send(failure).await.is_err() {
        tracing::error!(step = %name, "completion channel closed while reporting a shutdown failure");
    }
}

/// The text of a panic payload (`&str` or `String`), or a placeholder.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    }
}
