//! The embedded system: one tokio runtime, one in-memory orchestrator, and at most one
//! running worker (executor + channels + a consumer) at a time. This is what the Ruby
//! gem runs in-process; a Rust program can use it the same way with Rust handlers.
//!
//! Stopping the worker stops dispatch only: task state stays readable, tasks can still
//! be created (their steps wait), and a worker can be started again.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use parking_lot::Mutex;

use crate::config::{HandlerDispatchConfig, TaskerConfig};
use crate::orchestrator::{Orchestrator, OrchestratorStats};
use crate::worker::handlers::ffi_dispatch_channel::FfiChannelTasks;
use crate::worker::handlers::{
    FfiDispatchChannel, FfiDispatchChannelConfig, HandlerDispatchHandle, HandlerDispatchService, HandlerRegistry,
};
use crate::worker::{DispatchHandles, WorkerCore};

/// Why the embedded system could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SystemError {
    #[error("could not start the tokio runtime: {0}")]
    Runtime(#[from] std::io::Error),
}

/// How `start_*_worker` went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartOutcome {
    Started { worker_id: String },
    AlreadyRunning { worker_id: String },
}

impl StartOutcome {
    pub fn worker_id(&self) -> &str {
        match self {
            StartOutcome::Started { worker_id } | StartOutcome::AlreadyRunning { worker_id } => worker_id,
        }
    }
}

/// What stopping a worker did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StopReport {
    pub worker_id: String,
    /// Steps that were dispatched but not finished, reported as `worker_shutdown`.
    pub unfinished_reported: usize,
}

/// A snapshot of the worker and the orchestrator.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerStatus {
    pub running: bool,
    pub worker_id: Option<String>,
    /// `"ffi"` or `"rust"` while running.
    pub consumer: Option<&'static str>,
    pub environment: String,
    pub in_flight: usize,
    pub dispatch: Option<HandlerDispatchConfig>,
    pub started_at: Option<SystemTime>,
    pub pid: u32,
    pub orchestrator: OrchestratorStats,
}

#[derive(Debug)]
enum Consumer {
    Ffi { channel: Arc<FfiDispatchChannel>, tasks: Option<FfiChannelTasks> },
    Rust(HandlerDispatchHandle),
}

#[derive(Debug)]
struct RunningWorker {
    worker_id: String,
    core: WorkerCore,
    consumer: Consumer,
    dispatch: HandlerDispatchConfig,
    started_at: SystemTime,
}

/// See the module documentation.
#[derive(Debug)]
pub struct EmbeddedSystem {
    runtime: tokio::runtime::Runtime,
    orchestrator: Orchestrator,
    config: TaskerConfig,
    environment: String,
    worker: Mutex<Option<RunningWorker>>,
    workers_started: AtomicU64,
    pid: u32,
}

impl EmbeddedSystem {
    /// Builds the runtime (`[worker] runtime_threads`) and an empty orchestrator.
    pub fn new(config: TaskerConfig, environment: impl Into<String>) -> Result<Self, SystemError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(config.worker.runtime_threads.max(1))
            .thread_name("tasker-core")
            .enable_time()
            .build()?;
        Ok(Self {
            runtime,
            orchestrator: Orchestrator::new(config.orchestration.clone()),
            config,
            environment: environment.into(),
            worker: Mutex::new(None),
            workers_started: AtomicU64::new(0),
            pid: std::process::id(),
        })
    }

    pub fn orchestrator(&self) -> &Orchestrator {
        &self.orchestrator
    }

    pub fn config(&self) -> &TaskerConfig {
        &self.config
    }

    pub fn environment(&self) -> &str {
        &self.environment
    }

    /// The process that built this system. After `fork` the child must not use it: its
    /// runtime threads exist only in the parent.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    pub fn runtime(&self) -> &tokio::runtime::Handle {
        self.runtime.handle()
    }

    /// Starts a worker whose consumer is an `FfiDispatchChannel` (a foreign loop polls).
    pub fn start_ffi_worker(&self, dispatch: HandlerDispatchConfig) -> StartOutcome {
        self.start_worker(dispatch, |handles, runtime, config| {
            let channel = Arc::new(FfiDispatchChannel::new(
                handles.dispatch_receiver,
                handles.completion_sender,
                FfiDispatchChannelConfig::from(&config.mpsc_channels.worker.ffi_dispatch),
            ));
            let tasks = channel.start(runtime);
            Consumer::Ffi { channel, tasks }
        })
    }

    /// Starts a worker whose consumer is a `HandlerDispatchService` over `registry`.
    pub fn start_rust_worker(&self, dispatch: HandlerDispatchConfig, registry: HandlerRegistry) -> StartOutcome {
        let max = dispatch.max_concurrent_handlers;
        self.start_worker(dispatch, move |handles, runtime, _| {
            Consumer::Rust(HandlerDispatchService::new(handles, registry, max).spawn(runtime))
        })
    }

    fn start_worker(
        &self,
        dispatch: HandlerDispatchConfig,
        consumer: impl FnOnce(DispatchHandles, &tokio::runtime::Handle, &TaskerConfig) -> Consumer,
    ) -> StartOutcome {
        let mut slot = self.worker.lock();
        if let Some(running) = slot.as_ref() {
            return StartOutcome::AlreadyRunning { worker_id: running.worker_id.clone() };
        }
        let runtime = self.runtime.handle();
        let mut core = WorkerCore::start(
            self.orchestrator.clone(),
            &dispatch,
            &self.config.mpsc_channels.worker.completion,
            runtime,
        );
        let Some(handles) = core.take_dispatch_handles() else {
            unreachable!("a freshly started WorkerCore always holds its dispatch handles")
        };
        let consumer = consumer(handles, runtime, &self.config);
        let n = self.workers_started.fetch_add(1, Ordering::Relaxed) + 1;
        let worker_id = format!("worker-{}-{}", self.pid, n);
        *slot = Some(RunningWorker {
            worker_id: worker_id.clone(),
            core,
            consumer,
            dispatch,
            started_at: SystemTime::now(),
        });
        StartOutcome::Started { worker_id }
    }

    /// The running worker's FFI channel, if the running worker has one.
    pub fn ffi_channel(&self) -> Option<Arc<FfiDispatchChannel>> {
        match self.worker.lock().as_ref().map(|w| &w.consumer) {
            Some(Consumer::Ffi { channel, .. }) => Some(Arc::clone(channel)),
            _ => None,
        }
    }

    /// Stops the running worker: no more claims; Rust handlers get `grace` to finish;
    /// every step dispatched and not finished is reported as a retryable
    /// `worker_shutdown` failure; every result reaches the orchestrator before this
    /// returns. Blocks the calling thread (not a runtime thread). `None` if no worker ran.
    pub fn stop_worker(&self, grace: Duration) -> Option<StopReport> {
        let running = self.worker.lock().take()?;
        let RunningWorker { worker_id, mut core, consumer, .. } = running;
        let unfinished_reported = self.runtime.block_on(async move {
            core.stop_claiming().await;
            let reported = match consumer {
                Consumer::Ffi { channel, tasks } => channel.shutdown(tasks).await,
                Consumer::Rust(handle) => handle.stop(grace).await,
            };
            core.finish().await;
            reported
        });
        Some(StopReport { worker_id, unfinished_reported })
    }

    pub fn worker_status(&self) -> WorkerStatus {
        let worker = self.worker.lock();
        let running = worker.as_ref();
        WorkerStatus {
            running: running.is_some(),
            worker_id: running.map(|w| w.worker_id.clone()),
            consumer: running.map(|w| match w.consumer {
                Consumer::Ffi { .. } => "ffi",
                Consumer::Rust(_) => "rust",
            }),
            environment: self.environment.clone(),
            in_flight: running.map_or(0, |w| w.core.slots().in_flight()),
            dispatch: running.map(|w| w.dispatch.clone()),
            started_at: running.map(|w| w.started_at),
            pid: self.pid,
            orchestrator: self.orchestrator.stats(),
        }
    }
}
