//! `System`: what one process runs — a tokio runtime, the store (`Arc<dyn TaskStore>`:
//! embedded or PostgreSQL), at most one running worker (executor + channels + a
//! consumer), the process's counters and metrics, and a maintenance task (worker heartbeat, expiry
//! of dead workers' leases, retention of finished tasks). The Ruby gem runs one per
//! process; a Rust program can use it the same way with Rust handlers.
//!
//! Stopping the worker stops dispatch only: task state stays readable, tasks can still
//! be created (their steps wait), and a worker can be started again.
//!
//! Task calls are async; a thread outside the runtime (a Ruby thread) runs them with
//! `run_blocking`, which can be cancelled, and waits for a task with
//! `wait_for_task_blocking`, which can be interrupted.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use parking_lot::Mutex;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::bootstrap::BootstrapRequest;
use crate::config::{ConfigError, ConfigSource, HandlerDispatchConfig, TaskerConfig};
use crate::metrics::{AttemptFacts, LiveFigures, Metrics, MetricsError};
use crate::store::memory::{MemoryLimits, MemoryStore};
use crate::store::postgres::{PostgresStore, StoreSettings};
use crate::store::{
    Backend, CancelOutcome, CreatedTask, FinishWait, NewTask, RetryOutcome, StoreError, StoreStats, TaskFilter,
    TaskStatusView, TaskStore, TaskSummary, WorkerRegistration, WorkerView,
};
use crate::template::{TemplateError, TemplateRegistry, WorkflowTemplate};
use crate::worker::counters::{CounterSnapshot, PipelineCounters};
use crate::worker::handlers::ffi_dispatch_channel::FfiChannelTasks;
use crate::worker::handlers::{
    FfiDispatchChannel, FfiDispatchChannelConfig, HandlerDispatchHandle, HandlerDispatchService, HandlerRegistry,
};
use crate::worker::slots::DispatchSlots;
use crate::worker::{DispatchHandles, WorkerCore};

/// Why a system could not be built or used as asked.
#[derive(Debug, thiserror::Error)]
pub enum SystemError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("could not start the tokio runtime: {0}")]
    Runtime(#[from] std::io::Error),
    /// A second bootstrap asked for something the process's system cannot change.
    #[error("{0}")]
    Incompatible(String),
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

/// A snapshot of the worker and the process's counters.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerStatus {
    pub running: bool,
    pub worker_id: Option<String>,
    /// `"ffi"` or `"rust"` while running.
    pub consumer: Option<&'static str>,
    pub backend: Backend,
    pub environment: String,
    pub in_flight: usize,
    pub dispatch: Option<HandlerDispatchConfig>,
    pub started_at: Option<SystemTime>,
    pub pid: u32,
    /// Templates registered by this process (a reload of the same ones counts again).
    pub templates_loaded: u64,
    pub counters: CounterSnapshot,
    /// The embedded store's counts (cheap to read; `None` for stores that would need a
    /// query — use `stats`).
    pub store_stats: Option<StoreStats>,
}

/// How a blocking wait for a task ended. (Returned once per wait and never stored, so
/// the size of the finished view does not matter.)
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)]
pub enum WaitOutcome {
    Finished(TaskStatusView),
    TimedOut,
    Interrupted,
}

/// How often the maintenance task beats, expires dead workers and purges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Liveness {
    pub heartbeat_interval: Duration,
    /// A worker silent for longer is dead: its steps fail as `worker_lost`.
    pub worker_lost_after: Duration,
    pub purge_interval: Duration,
}

impl Liveness {
    /// The settings of a store's backend: the defaults for the embedded store,
    /// `[storage.postgres]` for PostgreSQL.
    pub fn for_backend(config: &TaskerConfig, backend: Backend) -> Self {
        match backend {
            Backend::Embedded => Self::default(),
            Backend::Postgres => {
                let postgres = &config.storage.postgres;
                Self {
                    heartbeat_interval: Duration::from_millis(postgres.heartbeat_interval_ms.max(1)),
                    worker_lost_after: Duration::from_millis(postgres.worker_lost_after_ms),
                    purge_interval: Duration::from_millis(postgres.purge_interval_ms.max(1)),
                }
            }
        }
    }
}

impl Default for Liveness {
    fn default() -> Self {
        Self {
            heartbeat_interval: Duration::from_secs(1),
            worker_lost_after: Duration::from_secs(5),
            purge_interval: Duration::from_secs(1),
        }
    }
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

/// The running worker as the maintenance task sees it: what to heartbeat.
#[derive(Debug, Default)]
struct Beat {
    worker: Option<(WorkerRegistration, DispatchSlots)>,
}

/// See the module documentation.
#[derive(Debug)]
pub struct System {
    runtime: tokio::runtime::Runtime,
    store: Arc<dyn TaskStore>,
    config: TaskerConfig,
    environment: String,
    config_source: ConfigSource,
    database_url: Option<String>,
    worker: Mutex<Option<RunningWorker>>,
    counters: Arc<PipelineCounters>,
    /// The Prometheus exposition of the counters, with per-step series.
    metrics: Arc<Metrics>,
    beat: Arc<Mutex<Beat>>,
    maintenance_stop: CancellationToken,
    maintenance: Mutex<Option<JoinHandle<()>>>,
    workers_started: AtomicU64,
    /// Templates this process loaded (what its workers can run).
    templates_loaded: AtomicU64,
    pid: u32,
    host: String,
}

impl System {
    /// Builds the system a bootstrap request asks for: its configuration, a runtime
    /// (`[worker] runtime_threads`) and its store (PostgreSQL when a database URL is
    /// given, else embedded).
    pub fn build(request: &BootstrapRequest) -> Result<Self, SystemError> {
        let (config, environment, source) = request.load_config()?;
        let database_url = request.database_url();
        let runtime = runtime(&config)?;
        let store = open_store(&config, database_url.as_deref(), runtime.handle())?;
        Ok(Self::assemble(runtime, store, config, environment, source, database_url))
    }

    /// An embedded system with `config` (for Rust programs and tests).
    pub fn embedded(config: TaskerConfig, environment: impl Into<String>) -> Result<Self, SystemError> {
        let runtime = runtime(&config)?;
        let store: Arc<dyn TaskStore> = Arc::new(MemoryStore::new(MemoryLimits::from(&config.storage.embedded)));
        Ok(Self::assemble(runtime, store, config, environment.into(), ConfigSource::Embedded, None))
    }

    /// A system over a given store (for Rust programs and tests).
    pub fn with_store(
        config: TaskerConfig,
        environment: impl Into<String>,
        store: Arc<dyn TaskStore>,
    ) -> Result<Self, SystemError> {
        let runtime = runtime(&config)?;
        Ok(Self::assemble(runtime, store, config, environment.into(), ConfigSource::Embedded, None))
    }

    fn assemble(
        runtime: tokio::runtime::Runtime,
        store: Arc<dyn TaskStore>,
        config: TaskerConfig,
        environment: String,
        config_source: ConfigSource,
        database_url: Option<String>,
    ) -> Self {
        let counters = Arc::new(PipelineCounters::default());
        let metrics = Arc::new(Metrics::new(Arc::clone(&counters)));
        let system = Self {
            runtime,
            store,
            config,
            environment,
            config_source,
            database_url,
            worker: Mutex::new(None),
            counters,
            metrics,
            beat: Arc::new(Mutex::new(Beat::default())),
            maintenance_stop: CancellationToken::new(),
            maintenance: Mutex::new(None),
            workers_started: AtomicU64::new(0),
            templates_loaded: AtomicU64::new(0),
            pid: std::process::id(),
            host: hostname(),
        };
        let liveness = Liveness::for_backend(&system.config, system.store.backend());
        let task = system.runtime.spawn(maintain(
            Arc::clone(&system.store),
            Arc::clone(&system.beat),
            Arc::clone(&system.metrics),
            Arc::clone(&system.counters),
            liveness,
            system.maintenance_stop.clone(),
        ));
        *system.maintenance.lock() = Some(task);
        system
    }

    /// Drops the system without waiting for its runtime threads (a system built in vain by
    /// a thread that lost a race to install its own).
    pub fn shut_down_in_background(self) {
        self.maintenance_stop.cancel();
        let System { runtime, .. } = self;
        runtime.shutdown_background();
    }

    /// Refuses a second bootstrap that asks this process's system to be something else:
    /// another environment, another configuration root, another database. The system is
    /// built once per process (start another process to change these).
    pub fn check_compatible(&self, request: &BootstrapRequest) -> Result<(), SystemError> {
        let mismatch = |what: &str, asked: String, running: String| {
            Err(SystemError::Incompatible(format!(
                "{what} {asked} was asked for, but this process's tasker_core already runs with {running}; \
                 it is built once per process (start another process to change it)"
            )))
        };
        if let Some(environment) = &request.environment {
            if environment != &self.environment {
                return mismatch("environment", format!("{environment:?}"), format!("{:?}", self.environment));
            }
        }
        if let Some(root) = &request.config_root {
            let asked = ConfigSource::Directory(root.clone());
            if asked != self.config_source {
                return mismatch("config_root", root.display().to_string(), describe_source(&self.config_source));
            }
        }
        let asked_url = request.database_url();
        if request.database_url.is_some() && asked_url != self.database_url {
            let shown = |url: &Option<String>| match url {
                Some(url) => redact_url(url),
                None => "the embedded store".to_string(),
            };
            return mismatch("database_url", shown(&asked_url), shown(&self.database_url));
        }
        Ok(())
    }

    pub fn store(&self) -> &Arc<dyn TaskStore> {
        &self.store
    }

    pub fn backend(&self) -> Backend {
        self.store.backend()
    }

    pub fn config(&self) -> &TaskerConfig {
        &self.config
    }

    pub fn environment(&self) -> &str {
        &self.environment
    }

    pub fn counters(&self) -> &Arc<PipelineCounters> {
        &self.counters
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The gauges of the exposition now: the running worker's in-flight steps, its FFI
    /// channel's pending and waiting events (constant-time reads) and the store's live
    /// workers (one query on PostgreSQL; `None` when it failed).
    pub async fn live_figures(&self) -> LiveFigures {
        let (worker_running, steps_in_flight, channel) = {
            let worker = self.worker.lock();
            let running = worker.as_ref();
            let channel = match running.map(|w| &w.consumer) {
                Some(Consumer::Ffi { channel, .. }) => Some(Arc::clone(channel)),
                _ => None,
            };
            (running.is_some(), running.map_or(0, |w| w.core.slots().in_flight()), channel)
        };
        let (pending_events, waiting_in_dispatch) =
            channel.map_or((0, 0), |c| (c.pending_count() as u64, c.waiting_count() as u64));
        let workers_alive = match self.store.workers().await {
            Ok(workers) => Some(workers.len() as u64),
            Err(error) => {
                tracing::warn!("metrics: the store did not list the live workers ({error})");
                None
            }
        };
        LiveFigures {
            worker_running,
            steps_in_flight: steps_in_flight as u64,
            pending_events,
            waiting_in_dispatch,
            workers_alive,
        }
    }

    /// This process's metrics as Prometheus text exposition (`METRICS_CONTENT_TYPE`).
    pub async fn metrics_text(&self) -> Result<String, MetricsError> {
        let live = self.live_figures().await;
        self.metrics.encode(live)
    }

    /// The process that built this system. After `fork` the child must not use it: its
    /// runtime threads exist only in the parent.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    pub fn runtime(&self) -> &tokio::runtime::Handle {
        self.runtime.handle()
    }

    /// Runs a store call on the calling thread (never a runtime thread).
    ///
    /// The future is first polled once in place, inside the runtime's context: a call
    /// of the embedded store is ready at once (it takes a lock and returns), and this
    /// saves it the runtime's park-and-enter machinery on every `create_task` and
    /// `task_status` from Ruby. Only a future that is not ready is handed to `block_on`,
    /// which polls it again with a waker that can wake this thread.
    fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        let mut future = std::pin::pin!(future);
        {
            let _context = self.runtime.handle().enter();
            let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
            if let std::task::Poll::Ready(output) = future.as_mut().poll(&mut cx) {
                return output;
            }
        }
        self.runtime.handle().block_on(future)
    }

    // ------------------------------------------------------------------ templates

    /// Loads every template under `dir` and registers them with the store; all or
    /// nothing. Returns how many. Each template's `environments.<env>` overrides for
    /// this system's environment are applied, and `orchestration.input_schema` decides
    /// how its `input_schema` is applied.
    pub fn load_templates(&self, dir: &Path) -> Result<usize, SystemError> {
        let mut fresh = TemplateRegistry::new();
        let count = fresh.load_dir_for(dir, &self.config.orchestration.default_retry, Some(&self.environment))?;
        let mode = self.config.orchestration.input_schema;
        let templates: Vec<Arc<WorkflowTemplate>> = fresh
            .iter()
            .map(|t| {
                let mut template = WorkflowTemplate::clone(t);
                template.input_schema_mode = mode;
                Arc::new(template)
            })
            .collect();
        self.block_on(self.store.register_templates(templates))?;
        self.templates_loaded.fetch_add(count as u64, Ordering::Relaxed);
        Ok(count)
    }

    /// Registers one checked template.
    pub fn register_template(&self, template: WorkflowTemplate) -> Result<Arc<WorkflowTemplate>, SystemError> {
        let template = Arc::new(template);
        self.block_on(self.store.register_templates(vec![Arc::clone(&template)]))?;
        self.templates_loaded.fetch_add(1, Ordering::Relaxed);
        Ok(template)
    }

    // ------------------------------------------------------------------ the worker

    /// Starts a worker whose consumer is an `FfiDispatchChannel` (a foreign loop polls).
    pub fn start_ffi_worker(
        &self,
        dispatch: HandlerDispatchConfig,
        concurrency: usize,
    ) -> Result<StartOutcome, SystemError> {
        let feed = Arc::clone(self.store.feed());
        let step_metrics = Arc::clone(self.metrics.steps());
        self.start_worker(dispatch, concurrency, move |handles, runtime, config| {
            let channel = Arc::new(
                FfiDispatchChannel::new(
                    handles.dispatch_receiver,
                    handles.completion_sender,
                    FfiDispatchChannelConfig::from(&config.mpsc_channels.worker.ffi_dispatch),
                    feed,
                )
                .with_metrics(step_metrics),
            );
            let tasks = channel.start(runtime);
            Consumer::Ffi { channel, tasks }
        })
    }

    /// Starts a worker whose consumer is a `HandlerDispatchService` over `registry`.
    pub fn start_rust_worker(
        &self,
        dispatch: HandlerDispatchConfig,
        registry: HandlerRegistry,
    ) -> Result<StartOutcome, SystemError> {
        let max = dispatch.max_concurrent_handlers;
        let step_metrics = Arc::clone(self.metrics.steps());
        self.start_worker(dispatch, max, move |handles, runtime, _| {
            Consumer::Rust(
                HandlerDispatchService::new(handles, registry, max).with_metrics(step_metrics).spawn(runtime),
            )
        })
    }

    fn start_worker(
        &self,
        dispatch: HandlerDispatchConfig,
        concurrency: usize,
        consumer: impl FnOnce(DispatchHandles, &tokio::runtime::Handle, &TaskerConfig) -> Consumer,
    ) -> Result<StartOutcome, SystemError> {
        let mut slot = self.worker.lock();
        if let Some(running) = slot.as_ref() {
            return Ok(StartOutcome::AlreadyRunning { worker_id: running.worker_id.clone() });
        }
        let n = self.workers_started.fetch_add(1, Ordering::Relaxed) + 1;
        let worker_id = match self.store.backend() {
            Backend::Embedded => format!("worker-{}-{}", self.pid, n),
            Backend::Postgres => format!("worker-{}-{}-{}", self.host, self.pid, n),
        };
        let started_at = SystemTime::now();
        let registration = WorkerRegistration {
            worker_id: worker_id.clone(),
            host: self.host.clone(),
            pid: self.pid,
            started_at,
            concurrency,
            in_flight: 0,
        };
        // Registered before it claims, so its leases always have a live owner.
        self.block_on(self.store.heartbeat(&registration))?;
        let runtime = self.runtime.handle();
        let mut core = WorkerCore::start(
            Arc::clone(&self.store),
            worker_id.clone(),
            Arc::clone(&self.counters),
            Arc::clone(self.metrics.steps()),
            &dispatch,
            &self.config.mpsc_channels.worker.completion,
            runtime,
        );
        let Some(handles) = core.take_dispatch_handles() else {
            unreachable!("a freshly started WorkerCore always holds its dispatch handles")
        };
        self.beat.lock().worker = Some((registration, core.slots().clone()));
        let consumer = consumer(handles, runtime, &self.config);
        *slot = Some(RunningWorker { worker_id: worker_id.clone(), core, consumer, dispatch, started_at });
        Ok(StartOutcome::Started { worker_id })
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
    /// `worker_shutdown` failure (so the next worker runs it at once); every result
    /// reaches the store before this returns, and the worker leaves the store's list.
    /// Blocks the calling thread (not a runtime thread). `None` if no worker ran.
    pub fn stop_worker(&self, grace: Duration) -> Option<StopReport> {
        let running = self.worker.lock().take()?;
        self.beat.lock().worker = None;
        let RunningWorker { worker_id, mut core, consumer, .. } = running;
        let store = Arc::clone(&self.store);
        let id = worker_id.clone();
        let unfinished_reported = self.block_on(async move {
            core.stop_claiming().await;
            let reported = match consumer {
                Consumer::Ffi { channel, tasks } => channel.shutdown(tasks).await,
                Consumer::Rust(handle) => handle.stop(grace).await,
            };
            core.finish().await;
            if let Err(error) = store.deregister_worker(&id).await {
                tracing::warn!("worker {id} stopped but could not leave the store's worker list: {error}");
            }
            reported
        });
        Some(StopReport { worker_id, unfinished_reported })
    }

    pub fn worker_status(&self) -> WorkerStatus {
        let store_stats = if self.store.blocks_on_io() { None } else { self.block_on(self.store.stats()).ok() };
        let worker = self.worker.lock();
        let running = worker.as_ref();
        WorkerStatus {
            running: running.is_some(),
            worker_id: running.map(|w| w.worker_id.clone()),
            consumer: running.map(|w| match w.consumer {
                Consumer::Ffi { .. } => "ffi",
                Consumer::Rust(_) => "rust",
            }),
            backend: self.store.backend(),
            environment: self.environment.clone(),
            in_flight: running.map_or(0, |w| w.core.slots().in_flight()),
            dispatch: running.map(|w| w.dispatch.clone()),
            started_at: running.map(|w| w.started_at),
            pid: self.pid,
            templates_loaded: self.templates_loaded.load(Ordering::Relaxed),
            counters: self.counters.snapshot(),
            store_stats,
        }
    }

    // ------------------------------------------------------------------ tasks

    /// Runs `future` to its end on the calling thread (never a runtime thread); with a
    /// `cancel` token, gives up (`None`) once it is cancelled.
    pub fn run_blocking<F: std::future::Future>(
        &self,
        future: F,
        cancel: Option<&CancellationToken>,
    ) -> Option<F::Output> {
        match cancel {
            None => Some(self.block_on(future)),
            Some(cancel) => self.block_on(async {
                tokio::select! {
                    biased;
                    _ = cancel.cancelled() => None,
                    output = future => Some(output),
                }
            }),
        }
    }

    pub async fn create_task(&self, task: NewTask) -> Result<CreatedTask, StoreError> {
        let created = self.store.create_task(task).await?;
        if created.created {
            self.counters.task_created();
        }
        Ok(created)
    }

    pub async fn task_status(&self, task_uuid: Uuid) -> Result<TaskStatusView, StoreError> {
        self.store.task_status(task_uuid).await
    }

    pub async fn list_tasks(&self, filter: TaskFilter) -> Result<Vec<TaskSummary>, StoreError> {
        self.store.list_tasks(filter).await
    }

    pub async fn cancel_task(&self, task_uuid: Uuid, reason: Option<String>) -> Result<CancelOutcome, StoreError> {
        let outcome = self.store.cancel_task(task_uuid, reason).await?;
        if outcome == CancelOutcome::Cancelled {
            self.counters.task_finished(crate::store::TaskStatus::Cancelled);
        }
        Ok(outcome)
    }

    pub async fn retry_task(&self, task_uuid: Uuid) -> Result<RetryOutcome, StoreError> {
        self.store.retry_task(task_uuid).await
    }

    pub async fn stats(&self) -> Result<StoreStats, StoreError> {
        self.store.stats().await
    }

    pub async fn workers(&self) -> Result<Vec<WorkerView>, StoreError> {
        self.store.workers().await
    }

    pub async fn templates(&self) -> Result<Vec<Arc<WorkflowTemplate>>, StoreError> {
        self.store.templates().await
    }

    /// Waits on the calling (non-async) thread until the task is finished, `timeout`
    /// passes, or `interrupted()` turns true. Whoever makes `interrupted()` true must then
    /// call `wake_blocking_waiters` so the wait notices at once. While it waits, the task
    /// is never evicted.
    pub fn wait_for_task_blocking(
        &self,
        task_uuid: Uuid,
        timeout: Duration,
        interrupted: &dyn Fn() -> bool,
    ) -> Result<WaitOutcome, StoreError> {
        let feed = self.store.feed();
        let _watch = feed.watch(task_uuid);
        let deadline =
            Instant::now().checked_add(timeout).unwrap_or_else(|| Instant::now() + Duration::from_secs(86_400));
        loop {
            let cursor = feed.finished_cursor();
            let view = self.block_on(self.store.task_status(task_uuid))?;
            if view.is_finished() {
                return Ok(WaitOutcome::Finished(view));
            }
            if interrupted() {
                return Ok(WaitOutcome::Interrupted);
            }
            if Instant::now() >= deadline {
                return Ok(WaitOutcome::TimedOut);
            }
            match feed.wait_finished_blocking(&task_uuid, cursor, deadline, interrupted) {
                FinishWait::Changed => {}
                FinishWait::TimedOut => {
                    // One last look: it may have finished right at the deadline.
                    let view = self.block_on(self.store.task_status(task_uuid))?;
                    return Ok(if view.is_finished() { WaitOutcome::Finished(view) } else { WaitOutcome::TimedOut });
                }
                FinishWait::Interrupted => return Ok(WaitOutcome::Interrupted),
            }
        }
    }

    /// Wakes every blocking waiter so it rechecks its interrupt flag.
    pub fn wake_blocking_waiters(&self) {
        self.store.feed().wake_blocking_waiters();
    }
}

/// Waits (async) until the task is finished; `Ok(None)` on timeout.
pub async fn wait_for_task(
    store: &dyn TaskStore,
    task_uuid: Uuid,
    timeout: Duration,
) -> Result<Option<TaskStatusView>, StoreError> {
    let feed = store.feed();
    let _watch = feed.watch(task_uuid);
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let cursor = feed.finished_cursor();
        let view = store.task_status(task_uuid).await?;
        if view.is_finished() {
            return Ok(Some(view));
        }
        if feed.wait_finished(&task_uuid, cursor, deadline).await == FinishWait::TimedOut {
            let view = store.task_status(task_uuid).await?;
            return Ok(view.is_finished().then_some(view));
        }
    }
}

fn runtime(config: &TaskerConfig) -> Result<tokio::runtime::Runtime, std::io::Error> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.worker.runtime_threads.max(1))
        .thread_name("tasker-core")
        .enable_all()
        .build()
}

/// The store a database URL asks for: PostgreSQL (connected and migrated now, so a bad
/// URL or an unreachable server is an error here), or without one the embedded store.
fn open_store(
    config: &TaskerConfig,
    database_url: Option<&str>,
    runtime: &tokio::runtime::Handle,
) -> Result<Arc<dyn TaskStore>, StoreError> {
    match database_url {
        None => Ok(Arc::new(MemoryStore::new(MemoryLimits::from(&config.storage.embedded)))),
        Some(url) => {
            let settings = StoreSettings::from_config(&config.storage.postgres, config.orchestration.input_schema);
            let store = runtime.block_on(PostgresStore::connect(url, settings))?;
            Ok(Arc::new(store))
        }
    }
}

/// The maintenance task: heartbeats the running worker, fails the steps of workers that
/// stopped beating (counted in `metrics`), folds the store's status counts, purges
/// finished tasks past their retention, and has the store reclaim dead steps (on a task of
/// its own, at most one at a time: a vacuum may take seconds, and must not delay the
/// heartbeat).
/// Store errors are logged and the next tick tries again.
async fn maintain(
    store: Arc<dyn TaskStore>,
    beat: Arc<Mutex<Beat>>,
    metrics: Arc<Metrics>,
    counters: Arc<PipelineCounters>,
    liveness: Liveness,
    stop: CancellationToken,
) {
    let mut last_purge = tokio::time::Instant::now();
    let mut failing = false;
    let mut reclaiming: Option<tokio::task::JoinHandle<()>> = None;
    loop {
        tokio::select! {
            biased;
            _ = stop.cancelled() => {
                if let Some(task) = reclaiming {
                    task.abort();
                }
                return;
            }
            _ = tokio::time::sleep(liveness.heartbeat_interval) => {}
        }
        let registration = beat.lock().worker.as_ref().map(|(registration, slots)| {
            let mut registration = registration.clone();
            registration.in_flight = slots.in_flight();
            registration
        });
        let mut result = Ok(());
        if let Some(registration) = registration {
            result = store.heartbeat(&registration).await;
        }
        if result.is_ok() {
            result = store.expire_dead_workers(liveness.worker_lost_after).await.map(|expired| {
                if !expired.is_empty() {
                    let facts = vec![AttemptFacts::worker_lost(); expired.len()];
                    metrics.steps().observe_recorded(&facts, &expired);
                    metrics.lost_worker_steps(expired.len());
                    counters.observe(&expired);
                    tracing::warn!(
                        "{} steps of workers that stopped heartbeating were failed as worker_lost",
                        expired.len()
                    );
                }
            });
        }
        if result.is_ok() {
            result = store.fold_counts().await;
        }
        if result.is_ok() && last_purge.elapsed() >= liveness.purge_interval {
            last_purge = tokio::time::Instant::now();
            result = store.purge_finished().await.map(|_| ());
        }
        if result.is_ok() && reclaiming.as_ref().is_none_or(|task| task.is_finished()) {
            reclaiming = Some(tokio::spawn(reclaim_dead_steps(Arc::clone(&store))));
        }
        match result {
            Err(error) if !failing => {
                failing = true;
                tracing::warn!("store maintenance failed ({error}); retrying every {:?}", liveness.heartbeat_interval);
            }
            Ok(()) if failing => {
                failing = false;
                tracing::info!("store maintenance works again");
            }
            _ => {}
        }
    }
}

/// One reclaim of dead steps (see `TaskStore::reclaim_dead_steps`), logged at debug: a
/// failure is the database's, which the maintenance tick reports itself.
async fn reclaim_dead_steps(store: Arc<dyn TaskStore>) {
    let started = std::time::Instant::now();
    match store.reclaim_dead_steps().await {
        Ok(Some(dead)) => {
            tracing::debug!("vacuumed the steps table ({dead} dead row versions) in {:?}", started.elapsed())
        }
        Ok(None) => {}
        Err(error) => tracing::debug!("reclaiming dead steps failed: {error}"),
    }
}

fn describe_source(source: &ConfigSource) -> String {
    match source {
        ConfigSource::Directory(dir) => format!("config_root {}", dir.display()),
        ConfigSource::Embedded => "the shipped configuration".to_string(),
    }
}

/// `url` without its password (in the user part, a `password=` parameter or the
/// key/value form's `password` key), for messages.
pub fn redact_url(url: &str) -> String {
    crate::store::postgres::redact(url)
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_is_shown_without_its_password() {
        assert_eq!(redact_url("postgres://app:s3cret@db.example:5432/prod"), "postgres://app:***@db.example:5432/prod");
        assert_eq!(redact_url("postgres://app@db/prod"), "postgres://app@db/prod");
        assert_eq!(redact_url("postgres:///prod?host=/tmp"), "postgres:///prod?host=/tmp");
        assert_eq!(
            redact_url("postgresql://u:p@h/d?sslmode=off&password=x"),
            "postgresql://u:***@h/d?sslmode=off&password=***"
        );
        assert_eq!(redact_url("host=/tmp password=x"), "host=/tmp password=***");
    }
}
