//! Reading tasks: one task with its steps (`task_status`), listings newest first by the
//! index that serves each filter, and the counts of `stats`.
//!
//! A task whose first step was claimed but whose first result is not recorded yet is
//! stored as `pending` (claims do not write the task row); every read here reports it
//! `in_progress` from its running step. Counts by status come from `finished_tasks` and
//! the unfinished tasks' frontier steps, so they never scan the task table.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;
use uuid::Uuid;

use super::sql;
use super::store::PostgresStore;
use crate::messages::StepExecutionError;
use crate::store::{
    AttemptRecord, MinuteThroughput, StepStatus, StepStatusView, StoreError, StoreStats, TaskCursor, TaskFilter,
    TaskStatus, TaskStatusView, TaskSummary, WorkerView,
};

/// The top of every listing (year 9999): below any task's creation.
fn top() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(253_402_300_799)
}

impl PostgresStore {
    pub(super) async fn read_task(&self, task_uuid: Uuid) -> Result<TaskStatusView, StoreError> {
        let db = &self.db;
        let what = "reading a task";
        let (task, steps) = {
            let client = db.client().await?;
            let task_statement = client.prepare_cached(sql::TASK).await.map_err(|e| db.failed(what, &e))?;
            let steps_statement = client.prepare_cached(sql::TASK_STEPS).await.map_err(|e| db.failed(what, &e))?;
            // Both in one round trip (the client pipelines them).
            let params: [&(dyn ToSql + Sync); 1] = [&task_uuid];
            let (task, steps) =
                tokio::try_join!(client.query_opt(&task_statement, &params), client.query(&steps_statement, &params))
                    .map_err(|e| db.failed(what, &e))?;
            (task, steps)
        };
        let Some(task) = task else { return Err(self.not_found(task_uuid).await) };
        let template = self.book.revision(db, task.get(14)).await?;
        let mut step_views = Vec::with_capacity(steps.len());
        let mut running = false;
        for row in &steps {
            let index = row.get::<_, i32>(0).max(0) as usize;
            let Some(definition) = template.steps.get(index) else { continue };
            let status = StepStatus::parse(row.get(2)).unwrap_or(StepStatus::Pending);
            running |= status == StepStatus::InProgress;
            let history: Option<Value> = row.get(6);
            step_views.push(StepStatusView {
                name: definition.name.clone(),
                step_uuid: row.get(1),
                status,
                attempts: row.get::<_, i32>(3).max(0) as u32,
                max_attempts: definition.retry.max_attempts,
                dependencies: definition.dependencies.clone(),
                result: row.get::<_, Option<Value>>(4).map(Arc::new),
                error: row.get::<_, Option<Value>>(5).map(read_error),
                history: history.and_then(|h| serde_json::from_value::<Vec<AttemptRecord>>(h).ok()).unwrap_or_default(),
            });
        }
        let mut status = TaskStatus::parse(task.get(4)).unwrap_or(TaskStatus::Pending);
        if status == TaskStatus::Pending && running {
            status = TaskStatus::InProgress;
        }
        Ok(TaskStatusView {
            task_uuid,
            namespace: task.get(1),
            name: task.get(2),
            version: task.get(3),
            status,
            priority: task.get(5),
            correlation_id: task.get(6),
            context: Arc::new(task.get(7)),
            created_at: task.get(8),
            finished_at: task.get(9),
            run_at: task.get(10),
            idempotency_key: task.get(11),
            cancel_requested_at: task.get(12),
            cancel_reason: task.get(13),
            steps: step_views,
        })
    }

    /// What a missing task is: evicted by retention (when, and why), or unknown.
    pub(super) async fn not_found(&self, task_uuid: Uuid) -> StoreError {
        let db = &self.db;
        let evicted = async {
            let client = db.client().await?;
            let statement =
                client.prepare_cached(sql::EVICTED_TASK).await.map_err(|e| db.failed("reading a tombstone", &e))?;
            client.query_opt(&statement, &[&task_uuid]).await.map_err(|e| db.failed("reading a tombstone", &e))
        };
        match evicted.await {
            Ok(Some(row)) => {
                let retention: f64 = row.get(1);
                StoreError::TaskEvicted {
                    uuid: task_uuid,
                    at: row.get(0),
                    why: format!(
                        "its retention of {} s (storage.postgres.finished_task_retention_seconds) had passed",
                        retention.max(0.0).round() as u64
                    ),
                }
            }
            Ok(None) => StoreError::TaskNotFound(task_uuid),
            Err(error) => StoreError::from(error),
        }
    }

    pub(super) async fn list(&self, filter: TaskFilter) -> Result<Vec<TaskSummary>, StoreError> {
        crate::store::memory::check_limit(filter.limit)?;
        let db = &self.db;
        let what = "listing tasks";
        let client = db.client().await?;
        let (cursor_at, cursor_seq): (SystemTime, i64) = match filter.before {
            None => (top(), 0),
            Some(TaskCursor::Time(at)) => (at, 0),
            Some(TaskCursor::Task(uuid)) => {
                let statement = client.prepare_cached(sql::LIST_CURSOR).await.map_err(|e| db.failed(what, &e))?;
                let row = client.query_opt(&statement, &[&uuid]).await.map_err(|e| db.failed(what, &e))?;
                let row = row.ok_or_else(|| {
                    StoreError::InvalidRequest(format!("before: task {uuid} is not (or no longer) in the store"))
                })?;
                (row.get(0), row.get(1))
            }
        };
        let limit = filter.limit as i64;
        let namespace = filter.namespace.as_deref();
        let name = filter.name.as_deref();
        let rows = match filter.status {
            Some(status) if !status.is_finished() => {
                return self.list_unfinished(&client, status, (cursor_at, cursor_seq), &filter).await;
            }
            Some(status) => {
                let statement =
                    client.prepare_cached(sql::LIST_FINISHED_TASKS).await.map_err(|e| db.failed(what, &e))?;
                client.query(&statement, &[&cursor_at, &cursor_seq, &limit, &status.as_str(), &namespace, &name]).await
            }
            None => match (namespace, name) {
                (Some(namespace), Some(name)) => {
                    let statement =
                        client.prepare_cached(sql::LIST_TASKS_BY_TEMPLATE).await.map_err(|e| db.failed(what, &e))?;
                    client.query(&statement, &[&cursor_at, &cursor_seq, &limit, &namespace, &name]).await
                }
                _ => {
                    let statement = client.prepare_cached(sql::LIST_TASKS).await.map_err(|e| db.failed(what, &e))?;
                    client.query(&statement, &[&cursor_at, &cursor_seq, &limit, &namespace, &name]).await
                }
            },
        }
        .map_err(|e| db.failed(what, &e))?;
        Ok(rows.iter().map(summary).collect())
    }

    /// Pending or in-progress tasks, chunk by chunk of unfinished tasks (see
    /// `sql::LIST_UNFINISHED_TASKS`) until the page is full or none is left.
    async fn list_unfinished(
        &self,
        client: &super::database::PooledClient,
        status: TaskStatus,
        mut cursor: (SystemTime, i64),
        filter: &TaskFilter,
    ) -> Result<Vec<TaskSummary>, StoreError> {
        let db = &self.db;
        let what = "listing unfinished tasks";
        let statement = client.prepare_cached(sql::LIST_UNFINISHED_TASKS).await.map_err(|e| db.failed(what, &e))?;
        let chunk = (filter.limit * 2).clamp(100, 2000) as i64;
        let mut page = Vec::with_capacity(filter.limit);
        loop {
            let rows =
                client.query(&statement, &[&cursor.0, &cursor.1, &chunk]).await.map_err(|e| db.failed(what, &e))?;
            for row in &rows {
                cursor = (row.get(0), row.get(1));
                let task = summary_at(row, 2);
                let wanted = task.status == status
                    && filter.namespace.as_deref().is_none_or(|n| n == task.namespace)
                    && filter.name.as_deref().is_none_or(|n| n == task.name);
                if wanted {
                    page.push(task);
                    if page.len() >= filter.limit {
                        return Ok(page);
                    }
                }
            }
            if (rows.len() as i64) < chunk {
                return Ok(page);
            }
        }
    }

    pub(super) async fn counts(&self) -> Result<StoreStats, StoreError> {
        let db = &self.db;
        let what = "counting tasks and steps";
        let alive_secs = self.settings.worker_lost_after.as_secs_f64();
        let (counts, started, minutes) = {
            let client = db.client().await?;
            let counts = client.prepare_cached(sql::STATUS_COUNTS).await.map_err(|e| db.failed(what, &e))?;
            let started = client.prepare_cached(sql::STARTED_AND_ALIVE).await.map_err(|e| db.failed(what, &e))?;
            let minutes = client.prepare_cached(sql::THROUGHPUT).await.map_err(|e| db.failed(what, &e))?;
            let alive: [&(dyn ToSql + Sync); 1] = [&alive_secs];
            tokio::try_join!(
                client.query(&counts, &[]),
                client.query_one(&started, &alive),
                client.query(&minutes, &[])
            )
            .map_err(|e| db.failed(what, &e))?
        };
        let counted = |relation: &str, status: &str| -> u64 {
            counts
                .iter()
                .filter(|r| r.get::<_, &str>(0) == relation && r.get::<_, &str>(1) == status)
                .map(|r| r.get::<_, i64>(2))
                .sum::<i64>()
                .max(0) as u64
        };
        // Pending tasks whose first step runs are in progress (see sql::STARTED_AND_ALIVE).
        let started_pending = started.get::<_, i64>(0).max(0) as u64;
        let by_status: Vec<(TaskStatus, u64)> = TaskStatus::ALL
            .iter()
            .map(|status| {
                let n = counted("tasks", status.as_str());
                let n = match status {
                    TaskStatus::Pending => n.saturating_sub(started_pending),
                    TaskStatus::InProgress => n + started_pending,
                    _ => n,
                };
                (*status, n)
            })
            .collect();
        let now_minute = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs() / 60;
        let throughput = (now_minute.saturating_sub(59)..=now_minute)
            .map(|minute| {
                let (succeeded, failed) = minutes
                    .iter()
                    .find(|r| r.get::<_, i64>(0).max(0) as u64 / 60 == minute)
                    .map_or((0, 0), |r| (r.get::<_, i64>(1).max(0) as u64, r.get::<_, i64>(2).max(0) as u64));
                MinuteThroughput { minute: UNIX_EPOCH + Duration::from_secs(minute * 60), succeeded, failed }
            })
            .collect();
        Ok(StoreStats {
            tasks: by_status,
            steps_in_flight: counted("steps", "in_progress"),
            steps_ready: counted("steps", "enqueued"),
            steps_waiting_for_retry: counted("steps", "waiting_for_retry"),
            throughput,
            workers_alive: started.get::<_, i64>(1).max(0) as u64,
        })
    }

    pub(super) async fn live_workers(&self) -> Result<Vec<WorkerView>, StoreError> {
        let db = &self.db;
        let client = db.client().await?;
        let statement = client.prepare_cached(sql::WORKERS).await.map_err(|e| db.failed("listing workers", &e))?;
        let rows = client
            .query(&statement, &[&self.settings.worker_lost_after.as_secs_f64()])
            .await
            .map_err(|e| db.failed("listing workers", &e))?;
        Ok(rows
            .iter()
            .map(|row| WorkerView {
                worker_id: row.get(0),
                host: row.get(1),
                pid: row.get::<_, i32>(2).max(0) as u32,
                started_at: row.get(3),
                heartbeat_age: Duration::from_secs_f64((row.get::<_, f64>(4) / 1000.0).max(0.0)),
                concurrency: row.get::<_, i32>(5).max(0) as usize,
                in_flight: row.get::<_, i32>(6).max(0) as usize,
            })
            .collect())
    }
}

fn summary(row: &Row) -> TaskSummary {
    summary_at(row, 0)
}

/// The listing columns (`sql::LIST_COLUMNS`) of a row, from column `at` on.
fn summary_at(row: &Row, at: usize) -> TaskSummary {
    TaskSummary {
        task_uuid: row.get(at),
        status: TaskStatus::parse(row.get(at + 1)).unwrap_or(TaskStatus::Pending),
        namespace: row.get(at + 2),
        name: row.get(at + 3),
        version: row.get(at + 4),
        created_at: row.get(at + 5),
        finished_at: row.get(at + 6),
        priority: row.get(at + 7),
    }
}

/// A stored error; one this code cannot read keeps at least its message.
fn read_error(value: Value) -> StepExecutionError {
    match serde_json::from_value::<StepExecutionError>(value.clone()) {
        Ok(error) => error,
        Err(_) => {
            let message = value.get("message").and_then(Value::as_str).unwrap_or("unreadable error").to_owned();
            StepExecutionError::new(message, "unknown", true)
        }
    }
}
