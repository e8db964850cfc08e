//! Typed configuration of the worker and the stores (embedded and PostgreSQL).
//!
//! The structs here mirror `config/tasker/base/*.toml` one to one; every field is read
//! somewhere in the crate or in the Ruby worker (no dead config). `loader` merges the
//! base files with `environments/<env>/*.toml` and reports errors by file and key;
//! `validate` checks ranges.

pub mod loader;
pub mod validate;

use serde::{Deserialize, Serialize};

pub use loader::{
    embedded_files, ConfigError, ConfigLoader, ConfigSource, EmbeddedFile, KeyProblem, CONFIG_ROOT_VAR,
    DEFAULT_ENVIRONMENT, ENVIRONMENT_VAR, OVERRIDES_LABEL,
};

/// The whole configuration tree.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TaskerConfig {
    pub mpsc_channels: MpscChannelsConfig,
    pub orchestration: OrchestrationConfig,
    pub storage: StorageConfig,
    pub worker: WorkerConfig,
}

/// `[mpsc_channels]`: sizes of the bounded channels.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MpscChannelsConfig {
    pub worker: WorkerChannelsConfig,
}

/// `[mpsc_channels.worker]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkerChannelsConfig {
    pub handler_dispatch: HandlerDispatchConfig,
    pub ffi_dispatch: FfiDispatchConfig,
    pub completion: CompletionConfig,
}

/// `[mpsc_channels.worker.handler_dispatch]`: the reference document's table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HandlerDispatchConfig {
    /// Capacity of the dispatch channel (executor → handlers).
    pub dispatch_buffer_size: usize,
    /// Capacity of the completion channel (handlers → completion processor).
    pub completion_buffer_size: usize,
    /// Steps in flight at once per worker, on every path (Rust handlers and FFI).
    pub max_concurrent_handlers: usize,
    /// Deadline of one handler attempt unless the step sets `timeout_seconds`.
    pub handler_timeout_ms: u64,
}

impl Default for HandlerDispatchConfig {
    fn default() -> Self {
        Self {
            dispatch_buffer_size: 1000,
            completion_buffer_size: 1000,
            max_concurrent_handlers: 10,
            handler_timeout_ms: 30_000,
        }
    }
}

/// `[mpsc_channels.worker.ffi_dispatch]`: the channel a Ruby polling loop reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FfiDispatchConfig {
    /// An event waiting unpolled longer than this raises the starvation flag.
    pub starvation_threshold_ms: u64,
    /// How many timed-out event ids are remembered so a late completion is counted as late.
    pub late_completion_memory: usize,
}

impl Default for FfiDispatchConfig {
    fn default() -> Self {
        Self { starvation_threshold_ms: 10_000, late_completion_memory: 4096 }
    }
}

/// `[mpsc_channels.worker.completion]`: the completion processor and FFICompletionActor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CompletionConfig {
    /// Capacity of the FFICompletionActor mailbox.
    pub actor_buffer_size: usize,
    /// Most results the completion processor forwards in one batch.
    pub batch_size: usize,
}

impl Default for CompletionConfig {
    fn default() -> Self {
        Self { actor_buffer_size: 1000, batch_size: 64 }
    }
}

/// `[orchestration]`: templates and the retry policy, whichever store runs them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OrchestrationConfig {
    /// Directory of task templates (YAML) used when neither `template_path:` nor
    /// `TASKER_TEMPLATE_PATH` is given. Relative paths are relative to the process's
    /// working directory. Empty means none.
    pub template_path: String,
    /// Retry policy of steps whose template does not set one.
    pub default_retry: RetryDefaults,
    /// What `create_task` does with a context that breaks its template's `input_schema`.
    pub input_schema: InputSchemaMode,
}

/// `[storage]`: where tasks live. The embedded store is used unless a database URL is
/// given (`TASKER_DATABASE_URL` or `database_url:`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    pub embedded: EmbeddedStoreConfig,
    pub postgres: PostgresStoreConfig,
}

/// `[storage.embedded]`: the in-memory store's limits. Finished tasks stay readable for
/// a time, within a memory budget; unfinished tasks are bounded so a runaway producer
/// gets an error instead of exhausting memory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmbeddedStoreConfig {
    /// How long a finished task stays readable (`task_status`, `wait_for_task`).
    pub finished_task_retention_seconds: u64,
    /// Bytes finished tasks (their context, results and errors) may take; past it the
    /// oldest finished tasks are evicted first, never one someone is waiting for.
    pub finished_task_memory_budget_bytes: u64,
    /// Tasks not yet finished the store accepts; `create_task` past it fails and creates
    /// nothing.
    pub max_unfinished_tasks: usize,
}

impl Default for EmbeddedStoreConfig {
    fn default() -> Self {
        Self {
            finished_task_retention_seconds: 3600,
            finished_task_memory_budget_bytes: 64 * 1024 * 1024,
            max_unfinished_tasks: 100_000,
        }
    }
}

/// `[storage.postgres]`: the PostgreSQL store (used when a database URL is given; the URL
/// itself never comes from a file). Its liveness settings also drive the process's
/// heartbeat and the expiry of dead workers' steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PostgresStoreConfig {
    /// Connections per process (claims, completions, heartbeats and reads share them; the
    /// change listener has its own).
    pub pool_size: usize,
    /// How long a call waits for a free connection before it fails (and is retried).
    pub pool_wait_timeout_ms: u64,
    /// Most steps one claim statement takes: one round trip for up to this many.
    pub claim_batch_size: usize,
    /// Steps a worker may hold at once on PostgreSQL (running, or claimed and waiting for a
    /// handler thread): raises `max_concurrent_handlers` to at least this unless it was set
    /// explicitly, so claims come in batches and their round trips overlap the handlers'
    /// work. A SIGKILLed worker's held steps run again after `worker_lost_after_ms`.
    pub prefetch: usize,
    /// How often a worker process refreshes its heartbeat (and looks for dead workers).
    pub heartbeat_interval_ms: u64,
    /// A worker silent this long is dead: its steps fail as retryable `worker_lost` and
    /// run again elsewhere. At least twice the heartbeat interval, so one slow beat is
    /// not death.
    pub worker_lost_after_ms: u64,
    /// Fallback polling when no notification arrives: a lost NOTIFY costs at most this.
    pub poll_interval_ms: u64,
    /// Finished tasks older than this are deleted, with their steps (a tombstone says
    /// when, for as long again).
    pub finished_task_retention_seconds: u64,
    /// Tasks deleted per retention statement (short transactions, no long locks).
    pub purge_batch_size: usize,
    /// How often retention runs.
    pub purge_interval_ms: u64,
    /// Dead row versions of `tasker.steps` (each claim and each result leaves one) past
    /// which a process vacuums the table itself instead of waiting for autovacuum (which
    /// visits a database about once a minute, and by then a burst has left claims walking
    /// over hundreds of thousands of dead claim-index entries). Also at least 1 % of the
    /// table's rows, so a large table is not vacuumed for every small change. 0 leaves it
    /// to autovacuum alone.
    pub vacuum_dead_steps: u64,
    /// First reconnect delay after the database became unreachable.
    pub reconnect_initial_ms: u64,
    /// Longest reconnect delay.
    pub reconnect_max_ms: u64,
    /// How often the change listener pings its connection (a half-open TCP connection
    /// would otherwise stay silent).
    pub listener_ping_interval_ms: u64,
}

impl Default for PostgresStoreConfig {
    fn default() -> Self {
        Self {
            pool_size: 8,
            pool_wait_timeout_ms: 10_000,
            claim_batch_size: 64,
            prefetch: 128,
            heartbeat_interval_ms: 1_000,
            worker_lost_after_ms: 5_000,
            poll_interval_ms: 1_000,
            // A week: long enough to look at what happened, short enough to stay small.
            finished_task_retention_seconds: 7 * 24 * 3600,
            purge_batch_size: 500,
            purge_interval_ms: 10_000,
            vacuum_dead_steps: 100_000,
            reconnect_initial_ms: 50,
            reconnect_max_ms: 5_000,
            listener_ping_interval_ms: 10_000,
        }
    }
}

/// `orchestration.input_schema`: how a template's `input_schema` is applied.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InputSchemaMode {
    /// Refuse the task, naming every violation (the default).
    #[default]
    Enforce,
    /// Create the task anyway and log the violations as a warning. For workflows brought
    /// from upstream tasker-core, which does not check contexts against the schema.
    Warn,
}

/// `[orchestration.default_retry]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryDefaults {
    pub retryable: bool,
    pub max_attempts: u32,
    pub backoff_base_ms: u64,
    pub max_backoff_ms: u64,
    /// Fraction of the backoff added or removed at random (0.0 ..= 1.0).
    pub jitter: f64,
}

impl Default for RetryDefaults {
    fn default() -> Self {
        Self { retryable: true, max_attempts: 3, backoff_base_ms: 100, max_backoff_ms: 5_000, jitter: 0.2 }
    }
}

/// `[worker]`: the process-level worker (tokio runtime and the Ruby handler loop).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkerConfig {
    /// Threads of the core's tokio runtime.
    pub runtime_threads: usize,
    /// Ruby handler threads of `TaskerCore::Worker` when `concurrency:` is not given.
    pub concurrency: usize,
    /// How long an idle Ruby thread waits in the GVL-free poll before it rechecks for stop.
    pub poll_timeout_ms: u64,
    /// Default `timeout:` of `Worker#stop` and of the executable's graceful stop.
    pub shutdown_timeout_ms: u64,
    /// How long past its deadline a handler may keep running before the worker
    /// interrupts it and, failing that, replaces its thread.
    pub hung_handler_grace_ms: u64,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            runtime_threads: 2,
            concurrency: 10,
            poll_timeout_ms: 100,
            shutdown_timeout_ms: 30_000,
            hung_handler_grace_ms: 5_000,
        }
    }
}
