//! Worker liveness and retention: heartbeats (on the database's clock), the expiry of
//! dead workers' leases — each step becomes a retryable `worker_lost` attempt recorded
//! through the same path and rules as any result — the purge of finished tasks, and the
//! fold of appended status-count changes into the totals.

use std::time::{Duration, Instant};

use uuid::Uuid;

use super::claim::ClaimInfo;
use super::sql;
use super::store::PostgresStore;
use crate::messages::{error_types, StepExecutionError, StepExecutionResult, StepIdentity};
use crate::store::{RecordOutcome, StoreError, WorkerRegistration};

/// How long one `purge_finished` call keeps deleting full batches.
const PURGE_PATIENCE: Duration = Duration::from_secs(2);

/// Status-count changes one fold statement moves (a burst of a million created tasks
/// appends two million: folded in a few seconds of ticks, each statement short).
const FOLD_BATCH: i32 = 100_000;

/// How long one `fold_counts` call keeps folding full batches.
const FOLD_PATIENCE: Duration = Duration::from_secs(1);

impl PostgresStore {
    pub(super) async fn beat(&self, worker: &WorkerRegistration) -> Result<(), StoreError> {
        let db = &self.db;
        let client = db.client().await?;
        let statement = client.prepare_cached(sql::HEARTBEAT).await.map_err(|e| db.failed("heartbeat", &e))?;
        client
            .execute(
                &statement,
                &[
                    &worker.worker_id,
                    &worker.host,
                    &(worker.pid.min(i32::MAX as u32) as i32),
                    &worker.started_at,
                    &(worker.in_flight.min(i32::MAX as usize) as i32),
                    &(worker.concurrency.min(i32::MAX as usize) as i32),
                ],
            )
            .await
            .map_err(|e| db.failed("heartbeat", &e))?;
        Ok(())
    }

    pub(super) async fn leave(&self, worker_id: &str) -> Result<(), StoreError> {
        let db = &self.db;
        let client = db.client().await?;
        let statement =
            client.prepare_cached(sql::DEREGISTER_WORKER).await.map_err(|e| db.failed("deregistering", &e))?;
        client.execute(&statement, &[&worker_id]).await.map_err(|e| db.failed("deregistering", &e))?;
        Ok(())
    }

    /// Fails the steps of workers whose heartbeat is older than `older_than` — unless this
    /// process itself could not reach the database within that time: then the others'
    /// heartbeats failed for the same reason (the server was down), and they get
    /// `older_than` to beat again before anyone is called dead.
    pub(super) async fn expire(&self, older_than: Duration) -> Result<Vec<RecordOutcome>, StoreError> {
        let db = &self.db;
        if db.reachable_for() < older_than {
            return Ok(Vec::new());
        }
        let what = "expiring the leases of dead workers";
        let seconds = older_than.as_secs_f64();
        let rows = {
            let client = db.client().await?;
            let statement = client.prepare_cached(sql::LAPSED_LEASES).await.map_err(|e| db.failed(what, &e))?;
            client.query(&statement, &[&seconds]).await.map_err(|e| db.failed(what, &e))?
        };
        let mut failed = Vec::new();
        if !rows.is_empty() {
            let mut batch = Vec::with_capacity(rows.len());
            for row in &rows {
                let event_id: Uuid = row.get(2);
                let attempts = row.get::<_, i32>(4).max(0) as u32;
                let worker: Option<String> = row.get(6);
                let worker = worker.unwrap_or_else(|| "an unknown worker".into());
                self.claims.remember(
                    event_id,
                    ClaimInfo { revision_id: row.get(5), index: row.get::<_, i32>(3).max(0) as usize, attempts },
                );
                let error = StepExecutionError::new(
                    format!(
                        "worker {worker} stopped heartbeating for more than {} ms while running this step; \
                         it runs again on another worker",
                        older_than.as_millis()
                    ),
                    error_types::WORKER_LOST,
                    true,
                );
                batch.push(StepExecutionResult::failure(error).with_identity(StepIdentity {
                    event_id,
                    task_uuid: row.get(0),
                    step_uuid: row.get(1),
                    attempt: attempts,
                }));
            }
            let outcomes = self.record_batch(&mut batch).await?;
            // Counted (and logged) by the maintenance task.
            failed = outcomes.into_iter().filter(|o| !o.is_stale()).collect();
        }
        let client = db.client().await?;
        let statement = client.prepare_cached(sql::FORGET_DEAD_WORKERS).await.map_err(|e| db.failed(what, &e))?;
        client.execute(&statement, &[&seconds]).await.map_err(|e| db.failed(what, &e))?;
        Ok(failed)
    }

    pub(super) async fn purge(&self) -> Result<usize, StoreError> {
        let db = &self.db;
        let what = "deleting finished tasks past their retention";
        let client = db.client().await?;
        let statement = client.prepare_cached(sql::PURGE_FINISHED).await.map_err(|e| db.failed(what, &e))?;
        let retention = self.settings.retention.as_secs_f64();
        let batch = self.settings.purge_batch_size.min(i32::MAX as usize) as i32;
        let started = Instant::now();
        let mut purged = 0;
        loop {
            let keep: Vec<Uuid> = self.feed.watched_tasks();
            let row =
                client.query_one(&statement, &[&retention, &batch, &keep]).await.map_err(|e| db.failed(what, &e))?;
            let deleted = row.get::<_, i32>(0).max(0) as usize;
            purged += deleted;
            if deleted < batch as usize || started.elapsed() >= PURGE_PATIENCE {
                return Ok(purged);
            }
        }
    }

    /// Vacuums `tasker.steps` when its dead row versions reach `vacuum_dead_steps` and 1 %
    /// of its rows. Every claim and every result leaves a dead version behind, and with it
    /// a dead entry at the front of the claim index: a claim walks over all of them
    /// (skipping each, but reading its page) until a vacuum removes them. Autovacuum visits
    /// a database about once a minute, and throttles itself; over a drain of a million
    /// steps created at once, claims slowed to half their speed before it came (measured:
    /// the server's CPU per step rose from 78 to 148 us). Vacuuming from here every
    /// hundred thousand dead rows kept it flat. A role that may not vacuum the table
    /// (not its owner) leaves it to autovacuum. The statistics are read on a pooled
    /// connection; the vacuum runs on one opened for it (see `Database::dedicated`).
    pub(super) async fn vacuum_steps(&self) -> Result<Option<u64>, StoreError> {
        let threshold = self.settings.vacuum_dead_steps;
        if threshold == 0 {
            return Ok(None);
        }
        let db = &self.db;
        let what = "vacuuming the steps table";
        let client = db.client().await?;
        let statement = client.prepare_cached(sql::STEP_QUEUE_DEAD_ROWS).await.map_err(|e| db.failed(what, &e))?;
        let row = client.query_one(&statement, &[]).await.map_err(|e| db.failed(what, &e))?;
        let (dead, live, may_vacuum) =
            (row.get::<_, i64>(0).max(0) as u64, row.get::<_, i64>(1).max(0) as u64, row.get::<_, bool>(2));
        drop(client);
        if !may_vacuum || dead < threshold.max(live / 100) {
            return Ok(None);
        }
        // A vacuum of a large table runs for seconds: not on a pooled connection, which a
        // small pool's heartbeat may be waiting for.
        let vacuum = db.dedicated(what).await?;
        vacuum.batch_execute(sql::VACUUM_STEP_QUEUE).await.map_err(|e| db.failed(what, &e))?;
        Ok(Some(dead))
    }

    pub(super) async fn fold(&self) -> Result<(), StoreError> {
        let db = &self.db;
        let what = "folding the status counts";
        let client = db.client().await?;
        let statement = client.prepare_cached(sql::FOLD_STATUS_COUNTS).await.map_err(|e| db.failed(what, &e))?;
        let started = Instant::now();
        loop {
            let row = client.query_one(&statement, &[&FOLD_BATCH]).await.map_err(|e| db.failed(what, &e))?;
            if row.get::<_, i32>(0) < FOLD_BATCH || started.elapsed() >= FOLD_PATIENCE {
                return Ok(());
            }
        }
    }
}
