//! The task controls: cancel and retry, each one call of its SQL function (one
//! transaction that locks the task first), plus the wake-ups they cause here at once
//! (other processes hear of them through NOTIFY).

use uuid::Uuid;

use super::sql;
use super::store::PostgresStore;
use crate::store::{CancelOutcome, RetryOutcome, StoreError, TaskStatus};

impl PostgresStore {
    pub(super) async fn cancel(&self, task_uuid: Uuid, reason: Option<String>) -> Result<CancelOutcome, StoreError> {
        let db = &self.db;
        let row = {
            let client = db.client().await?;
            let statement =
                client.prepare_cached(sql::CANCEL_TASK).await.map_err(|e| db.failed("cancelling a task", &e))?;
            let reason = reason.map(|r| r.replace('\0', "\u{fffd}"));
            client
                .query_one(&statement, &[&task_uuid, &reason, &self.rule])
                .await
                .map_err(|e| db.failed("cancelling a task", &e))?
        };
        let outcome: String = row.get(0);
        let status = row.get::<_, Option<String>>(1).and_then(|s| TaskStatus::parse(&s));
        let in_flight = row.get::<_, Option<i32>>(2).unwrap_or(0).max(0) as usize;
        let outcome = match (outcome.as_str(), status) {
            ("not_found", _) => return Err(self.not_found(task_uuid).await),
            ("cancelled", _) => CancelOutcome::Cancelled,
            ("cancelling", _) => CancelOutcome::Cancelling { in_flight },
            (_, Some(status)) => CancelOutcome::AlreadyFinished(status),
            (other, None) => {
                return Err(StoreError::Internal(format!("cancel_task answered {other} without a status")))
            }
        };
        if !matches!(outcome, CancelOutcome::AlreadyFinished(_)) {
            self.feed.notify_cancelled([task_uuid]);
        }
        if outcome == CancelOutcome::Cancelled {
            self.feed.notify_finished([task_uuid]);
        }
        Ok(outcome)
    }

    pub(super) async fn retry(&self, task_uuid: Uuid) -> Result<RetryOutcome, StoreError> {
        let db = &self.db;
        let row = {
            let client = db.client().await?;
            let statement =
                client.prepare_cached(sql::RETRY_TASK).await.map_err(|e| db.failed("retrying a task", &e))?;
            client.query_one(&statement, &[&task_uuid]).await.map_err(|e| db.failed("retrying a task", &e))?
        };
        let outcome: String = row.get(0);
        let status = row.get::<_, Option<String>>(1).and_then(|s| TaskStatus::parse(&s));
        match (outcome.as_str(), status) {
            ("not_found", _) => Err(self.not_found(task_uuid).await),
            ("retrying", _) => {
                self.feed.notify_ready();
                Ok(RetryOutcome::Retrying {
                    failed_steps: row.get::<_, Option<i32>>(2).unwrap_or(0).max(0) as usize,
                    skipped_steps: row.get::<_, Option<i32>>(3).unwrap_or(0).max(0) as usize,
                })
            }
            (_, Some(status)) => Ok(RetryOutcome::NotFailed(status)),
            (other, None) => Err(StoreError::Internal(format!("retry_task answered {other} without a status"))),
        }
    }
}
