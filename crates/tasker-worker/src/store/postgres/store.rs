//! `PostgresStore`: the `TaskStore` over one PostgreSQL database, shared by every
//! process pointed at it. This module holds the store's parts and answers the trait by
//! handing each call to the module that owns it: `claim`, `record`, `reads`, `control`,
//! `upkeep`; `templates` for templates; `wakeups` for the change feed.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use uuid::Uuid;

use super::claim::ClaimBook;
use super::database::Database;
use super::listener::ChangeListener;
use super::migrate::{self, MigrationReport};
use super::record::status_rule;
use super::settings::StoreSettings;
use super::sql;
use super::templates::{describe, TemplateBook};
use super::url::DatabaseUrl;
use super::wakeups::{self, DueTimer};
use crate::messages::{StepExecutionEvent, StepExecutionResult};
use crate::store::events::json_kind;
use crate::store::{
    Backend, CancelOutcome, ChangeFeed, Claimed, CreatedTask, NewTask, RecordOutcome, RetryOutcome, StoreError,
    StoreStats, TaskFilter, TaskStatusView, TaskStore, TaskSummary, WorkerRegistration, WorkerView,
};
use crate::template::WorkflowTemplate;

/// See the module documentation.
pub struct PostgresStore {
    pub(super) db: Database,
    pub(super) book: Arc<TemplateBook>,
    pub(super) claims: ClaimBook,
    pub(super) feed: Arc<ChangeFeed>,
    pub(super) settings: StoreSettings,
    /// `rules::TaskProgress::status` tabulated for SQL (see `record::status_rule`).
    pub(super) rule: Vec<String>,
    /// Names this store's rows of `tasker.throughput` (one per process and minute).
    pub(super) source: String,
    pub(super) rng: Mutex<fastrand::Rng>,
    /// What the connect did to the schema.
    migration: MigrationReport,
    _timer: Arc<DueTimer>,
    _listener: ChangeListener,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore").field("db", &self.db).field("settings", &self.settings).finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Connects to `url`, brings the schema up to date (under an advisory lock) and starts
    /// listening for changes. Call inside a tokio runtime. A clear error now for a bad
    /// URL, an unreachable server, a refused login or a schema newer than this code.
    pub async fn connect(url: &str, settings: StoreSettings) -> Result<Self, StoreError> {
        let url = DatabaseUrl::parse(url)?;
        let db = Database::new(url.clone(), settings.pool.clone())?;
        db.check().await?;
        let migration = migrate::ensure_schema(&db).await?;
        let feed = Arc::new(ChangeFeed::new(Some(settings.poll_interval)));
        let book = Arc::new(TemplateBook::new(settings.input_schema_mode));
        let timer = Arc::new(DueTimer::spawn(Arc::clone(&feed)));
        let sink = wakeups::sink(Arc::clone(&feed), Arc::clone(&timer), Arc::clone(&book));
        let listener = ChangeListener::spawn(url, settings.listener.clone(), sink);
        let mut rng = fastrand::Rng::new();
        let source = format!("{}-{}-{:08x}", hostname(), std::process::id(), rng.u32(..));
        Ok(Self {
            db,
            book,
            claims: ClaimBook::default(),
            feed,
            settings,
            rule: status_rule(),
            source,
            rng: Mutex::new(rng),
            migration,
            _timer: timer,
            _listener: listener,
        })
    }

    /// What connecting did to the schema (the migrations it applied, the version now).
    pub fn migration(&self) -> &MigrationReport {
        &self.migration
    }

    pub fn database(&self) -> &Database {
        &self.db
    }

    async fn create(&self, task: NewTask) -> Result<CreatedTask, StoreError> {
        let (revision_id, template) =
            self.book.resolve(&self.db, &task.namespace, &task.name, task.version.as_deref()).await?;
        crate::store::memory::check_context(&template, &task.context)?;
        if let Some(path) = super::record::nul_path(&task.context, "$") {
            return Err(StoreError::InvalidContext(format!(
                "task {}: the context string at {path} contains a NUL character (\\u0000), which PostgreSQL \
                 cannot store",
                describe(&template)
            )));
        }
        let db = &self.db;
        let row = {
            let client = db.client().await?;
            let statement =
                client.prepare_cached(sql::CREATE_TASK).await.map_err(|e| db.failed("creating a task", &e))?;
            let key = task.idempotency_key.as_deref().map(|k| k.replace('\0', "\u{fffd}"));
            let version: Option<&str> = None;
            client
                .query_one(
                    &statement,
                    &[
                        &task.namespace,
                        &task.name,
                        &version,
                        &task.context,
                        &key,
                        &task.run_at,
                        &task.priority,
                        &revision_id,
                    ],
                )
                .await
                .map_err(|e| create_error(db, &e, &template, task.idempotency_key.as_deref()))?
        };
        let created = CreatedTask { task_uuid: row.get(0), created: row.get(1) };
        if created.created {
            self.feed.notify_ready();
        }
        Ok(created)
    }
}

/// A refused `create_task`: an idempotency key of another template (TK005), else the
/// database's error.
fn create_error(
    db: &Database,
    err: &tokio_postgres::Error,
    template: &WorkflowTemplate,
    key: Option<&str>,
) -> StoreError {
    if let Some(db_error) = err.as_db_error() {
        if db_error.code().code() == "TK005" {
            let detail = db_error.detail().unwrap_or_default();
            let (uuid, existing) = detail.split_once(' ').unwrap_or((detail, ""));
            if let Ok(task_uuid) = Uuid::parse_str(uuid) {
                return StoreError::IdempotencyConflict {
                    key: key.unwrap_or_default().to_owned(),
                    task_uuid,
                    existing: existing.to_owned(),
                    requested: describe(template),
                };
            }
        }
        if db_error.code().code() == "22023" && db_error.message().contains("JSON object") {
            return StoreError::InvalidContext(db_error.message().to_owned());
        }
    }
    db.failed("creating a task", err).into()
}

#[async_trait::async_trait]
impl TaskStore for PostgresStore {
    fn backend(&self) -> Backend {
        Backend::Postgres
    }

    fn feed(&self) -> &Arc<ChangeFeed> {
        &self.feed
    }

    fn blocks_on_io(&self) -> bool {
        true
    }

    async fn register_templates(&self, templates: Vec<Arc<WorkflowTemplate>>) -> Result<(), StoreError> {
        self.book.register(&self.db, templates).await
    }

    async fn templates(&self) -> Result<Vec<Arc<WorkflowTemplate>>, StoreError> {
        self.book.current(&self.db).await
    }

    async fn create_task(&self, task: NewTask) -> Result<CreatedTask, StoreError> {
        if !task.context.is_object() {
            return Err(StoreError::InvalidContext(format!(
                "task context must be a JSON object (a Hash), got {}",
                json_kind(&task.context)
            )));
        }
        self.create(task).await
    }

    async fn claim(
        &self,
        worker_id: &str,
        claim_id: Uuid,
        max: usize,
        default_timeout: Duration,
        out: &mut Vec<StepExecutionEvent>,
    ) -> Result<Claimed, StoreError> {
        self.claim_steps(worker_id, claim_id, max, default_timeout, out).await
    }

    async fn record(&self, batch: &mut Vec<StepExecutionResult>) -> Result<Vec<RecordOutcome>, StoreError> {
        self.record_batch(batch).await
    }

    async fn heartbeat(&self, worker: &WorkerRegistration) -> Result<(), StoreError> {
        self.beat(worker).await
    }

    async fn deregister_worker(&self, worker_id: &str) -> Result<(), StoreError> {
        self.leave(worker_id).await
    }

    async fn expire_dead_workers(&self, older_than: Duration) -> Result<Vec<RecordOutcome>, StoreError> {
        self.expire(older_than).await
    }

    async fn workers(&self) -> Result<Vec<WorkerView>, StoreError> {
        self.live_workers().await
    }

    async fn task_status(&self, task_uuid: Uuid) -> Result<TaskStatusView, StoreError> {
        self.read_task(task_uuid).await
    }

    async fn list_tasks(&self, filter: TaskFilter) -> Result<Vec<TaskSummary>, StoreError> {
        self.list(filter).await
    }

    async fn cancel_task(&self, task_uuid: Uuid, reason: Option<String>) -> Result<CancelOutcome, StoreError> {
        self.cancel(task_uuid, reason).await
    }

    async fn retry_task(&self, task_uuid: Uuid) -> Result<RetryOutcome, StoreError> {
        self.retry(task_uuid).await
    }

    async fn stats(&self) -> Result<StoreStats, StoreError> {
        self.counts().await
    }

    async fn purge_finished(&self) -> Result<usize, StoreError> {
        self.purge().await
    }

    async fn fold_counts(&self) -> Result<(), StoreError> {
        self.fold().await
    }

    async fn reclaim_dead_steps(&self) -> Result<Option<u64>, StoreError> {
        self.vacuum_steps().await
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}
