//! tasker-worker: the Rust core of tasker_core.
//!
//! A ready step flows one way: the store (embedded or PostgreSQL, behind [`TaskStore`])
//! holds it ready, the `StepExecutorActor` claims it when an in-flight slot is free and
//! sends it on the bounded dispatch channel, a consumer ([`HandlerDispatchService`] for
//! Rust handlers, [`FfiDispatchChannel`] for a Ruby polling loop) runs it, and its
//! [`StepExecutionResult`] comes back on the bounded completion channel through the
//! `CompletionProcessorService` and the `FFICompletionActor` to the store, which records
//! it, retries or advances the DAG by the shared [`rules`].
//!
//! A process runs one [`System`]: runtime, store, worker, maintenance. The modules are
//! private; what a program or a binding uses is re-exported here.

mod bootstrap;
mod config;
mod messages;
mod metrics;
pub mod rules;
mod store;
mod system;
mod template;
mod time_format;
mod uuid_map;
mod worker;

pub use bootstrap::{BootstrapRequest, DATABASE_URL_ENV, DISPATCH_KEYS, TEMPLATE_PATH_ENV};
pub use config::{
    embedded_files, CompletionConfig, ConfigError, ConfigLoader, ConfigSource, EmbeddedFile, EmbeddedStoreConfig,
    FfiDispatchConfig, HandlerDispatchConfig, InputSchemaMode, KeyProblem, MpscChannelsConfig, OrchestrationConfig,
    PostgresStoreConfig, RetryDefaults, StorageConfig, TaskerConfig, WorkerChannelsConfig, WorkerConfig,
    CONFIG_ROOT_VAR, DEFAULT_ENVIRONMENT, ENVIRONMENT_VAR, OVERRIDES_LABEL,
};
pub use messages::{
    error_types, DispatchHandlerMessage, FfiStepEvent, ResultMetadata, StepExecutionError, StepExecutionEvent,
    StepExecutionResult, StepIdentity, TaskInfo, TaskSequenceStep, WorkflowStepInfo,
};
pub use metrics::{
    AttemptFacts, AttemptLabels, LiveFigures, Metrics, MetricsError, StepLabels, StepMetrics,
    CONTENT_TYPE as METRICS_CONTENT_TYPE, DURATION_BUCKETS, OUTCOMES, QUEUE_WAIT_BUCKETS,
};
pub use store::events::{ancestor_results, approx_json_bytes, json_kind, step_event, ClaimedStep};
pub use store::memory::{MemoryCounts, MemoryLimits, MemoryState, MemoryStore};
/// The PostgreSQL backend: its store, settings, URL handling, migrations and (for `EXPLAIN`
/// and tests) the statements it runs.
pub use store::postgres;
pub use store::{
    AttemptRecord, Backend, CancelOutcome, ChangeFeed, Claimed, CreatedTask, FinishWait, MinuteThroughput, NewTask,
    RecordOutcome, RecordedStep, RetryOutcome, StepStatus, StepStatusView, StoreError, StoreStats, TaskCursor,
    TaskFilter, TaskStatus, TaskStatusView, TaskStore, TaskSummary, TaskWatch, WorkerRegistration, WorkerView,
    MAX_LIST_LIMIT,
};
pub use system::{
    redact_url, wait_for_task, Liveness, StartOutcome, StopReport, System, SystemError, WaitOutcome, WorkerStatus,
};
pub use template::{
    compile, compile_for, parse_yaml, template_id, BackoffShape, ContextError, DomainEventDefinition,
    EnvironmentOverride, ErrorContext, HandlerOverride, HandlerSpec, InputSchema, Problem, RetryPolicy, RetrySpec,
    StepDefinition, StepOverride, StepTemplate, SystemDependencies, TaskTemplate, TemplateError, TemplateMetadata,
    TemplateRegistry, Violation, WorkflowTemplate, MAX_ATTEMPTS_LIMIT, MAX_BACKOFF_LIMIT_MS, MAX_TIMEOUT_SECONDS,
};
pub use time_format::{hex, rfc3339_millis};
pub use worker::counters::{CounterSnapshot, PipelineCounters};
pub use worker::handlers::{
    panic_message, CompleteOutcome, CompletionChannelClosed, FfiChannelTasks, FfiDispatchChannel,
    FfiDispatchChannelConfig, FfiDispatchMetrics, HandlerDispatchHandle, HandlerDispatchService, HandlerError,
    HandlerFuture, HandlerRegistry, StepHandler, TryComplete,
};
pub use worker::slots::{DispatchSlot, DispatchSlots};
pub use worker::{DispatchHandles, WorkerCore};
