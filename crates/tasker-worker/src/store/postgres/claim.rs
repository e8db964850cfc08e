//! Claiming steps: one statement for the templates without a cap (`sql::CLAIM_STEPS`:
//! also promotes due steps, answers a repeated claim id, says when the next scheduled
//! step is due), then one short transaction per capped template this process runs
//! (`sql::CLAIM_CAPPED_STEPS` under the template's advisory lock). Each claimed row
//! becomes the same `StepExecutionEvent` the embedded store builds, and this process
//! remembers what its result will need (`ClaimBook`), so recording it needs no read.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use parking_lot::Mutex;
use serde_json::Value;
use tokio_postgres::Row;
use uuid::Uuid;

use super::sql;
use super::store::PostgresStore;
use crate::messages::StepExecutionEvent;
use crate::store::events::{ancestor_results, step_event, ClaimedStep};
use crate::store::{Claimed, StoreError};
use crate::time_format::hex;

/// What recording an attempt needs that the claim knew.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClaimInfo {
    pub revision_id: i64,
    pub index: usize,
    pub attempts: u32,
}

/// Claims of this process whose results are not recorded yet, by event id. Bounded: past
/// `LIMIT` entries (results that never came back) it starts over, and a result it no
/// longer remembers is located with one read instead.
#[derive(Debug, Default)]
pub struct ClaimBook {
    open: Mutex<HashMap<Uuid, ClaimInfo>>,
}

impl ClaimBook {
    const LIMIT: usize = 200_000;

    pub fn remember(&self, event_id: Uuid, info: ClaimInfo) {
        let mut open = self.open.lock();
        if open.len() >= Self::LIMIT {
            open.clear();
        }
        open.insert(event_id, info);
    }

    pub fn get(&self, event_id: &Uuid) -> Option<ClaimInfo> {
        self.open.lock().get(event_id).copied()
    }

    pub fn forget(&self, event_ids: impl IntoIterator<Item = Uuid>) {
        let mut open = self.open.lock();
        for event_id in event_ids {
            open.remove(&event_id);
        }
    }
}

impl PostgresStore {
    pub(super) async fn claim_steps(
        &self,
        worker_id: &str,
        claim_id: Uuid,
        max: usize,
        default_timeout: Duration,
        out: &mut Vec<StepExecutionEvent>,
    ) -> Result<Claimed, StoreError> {
        let claimable = self.book.claimable();
        let want = max.min(self.settings.claim_batch_size);
        if want == 0 {
            return Ok(Claimed::default());
        }
        let db = &self.db;
        let mut rows = Vec::new();
        let (promoted, next_due, repeated) = {
            let what = "claiming steps";
            // One statement, its own transaction (the planner settings are the session's).
            let client = db.client().await?;
            let statement = client.prepare_cached(sql::CLAIM_STEPS).await.map_err(|e| db.failed(what, &e))?;
            let answer = client
                .query(&statement, &[&claimable.uncapped, &(want as i64), &worker_id, &claim_id])
                .await
                .map_err(|e| db.failed(what, &e))?;
            let Some(first) = answer.first() else {
                return Err(StoreError::Internal("the claim statement answered no summary row".into()));
            };
            let promoted: i64 = first.get("promoted");
            let next_due: Option<f64> = first.get("next_due_ms");
            let repeated: bool = first.get("repeated");
            rows.extend(answer.into_iter().filter(|r| r.get::<_, Option<Uuid>>(0).is_some()));
            (promoted, next_due, repeated)
        };
        if !repeated {
            for capped in &claimable.capped {
                let room = want.saturating_sub(rows.len());
                if room == 0 {
                    break;
                }
                rows.extend(self.claim_capped(worker_id, claim_id, room, capped).await?);
            }
        }
        if promoted > 0 {
            // Due steps became claimable: look again at once.
            self.feed.notify_ready();
        }
        self.events_from(rows, default_timeout, out).await?;
        let next_due = next_due.map(|ms| Duration::from_secs_f64((ms / 1000.0).max(0.0)));
        Ok(Claimed { next_due })
    }

    async fn claim_capped(
        &self,
        worker_id: &str,
        claim_id: Uuid,
        room: usize,
        capped: &super::templates::CappedTemplate,
    ) -> Result<Vec<Row>, StoreError> {
        let db = &self.db;
        let what = "claiming steps of a template with max_in_flight";
        let mut client = db.client().await?;
        let transaction = client.transaction().await.map_err(|e| db.failed(what, &e))?;
        let lock = transaction.prepare_cached(sql::LOCK_TEMPLATE_CLAIMS).await.map_err(|e| db.failed(what, &e))?;
        transaction.execute(&lock, &[&capped.template_id]).await.map_err(|e| db.failed(what, &e))?;
        let statement = transaction.prepare_cached(sql::CLAIM_CAPPED_STEPS).await.map_err(|e| db.failed(what, &e))?;
        let rows = transaction
            .query(
                &statement,
                &[
                    &capped.revisions,
                    &(room as i64),
                    &worker_id,
                    &claim_id,
                    &i64::from(capped.cap),
                    &capped.template_id,
                ],
            )
            .await
            .map_err(|e| db.failed(what, &e))?;
        transaction.commit().await.map_err(|e| db.failed(what, &e))?;
        Ok(rows)
    }

    /// Turns claimed rows into events (and remembers their claims).
    async fn events_from(
        &self,
        rows: Vec<Row>,
        default_timeout: Duration,
        out: &mut Vec<StepExecutionEvent>,
    ) -> Result<(), StoreError> {
        let mut contexts: HashMap<Uuid, Arc<Value>> = HashMap::new();
        for row in rows {
            let task_uuid: Uuid = row.get(0);
            let index = row.get::<_, i32>(1).max(0) as usize;
            let step_uuid: Uuid = row.get(2);
            let attempts = row.get::<_, i32>(3).max(0) as u32;
            let event_id: Uuid = row.get(4);
            let ready_at: Option<SystemTime> = row.get(5);
            let revision_id: i64 = row.get(6);
            let template = self.book.revision(&self.db, revision_id).await?;
            if index >= template.steps.len() {
                return Err(StoreError::Internal(format!(
                    "step {index} of task {task_uuid} is not in its template {}",
                    super::templates::describe(&template)
                )));
            }
            let context = match contexts.get(&task_uuid) {
                Some(context) => Arc::clone(context),
                None => {
                    let context = Arc::new(row.get::<_, Value>(7));
                    contexts.insert(task_uuid, Arc::clone(&context));
                    context
                }
            };
            let read_index: Vec<i32> = row.get(10);
            let read_result: Vec<Option<Value>> = row.get(11);
            let results: HashMap<usize, Arc<Value>> = read_index
                .into_iter()
                .zip(read_result)
                .map(|(i, result)| (i.max(0) as usize, Arc::new(result.unwrap_or(Value::Null))))
                .collect();
            let dependency_results: BTreeMap<String, Arc<Value>> = template.dependencies[index]
                .iter()
                .map(|&parent| {
                    let value = results.get(&parent).cloned().unwrap_or_else(|| Arc::new(Value::Null));
                    (template.steps[parent].name.clone(), value)
                })
                .collect();
            let ancestors = ancestor_results(&template, index, |i| results.get(&i).cloned());
            let span = u128::from(self.rng.lock().u64(1..));
            self.claims.remember(event_id, ClaimInfo { revision_id, index, attempts });
            out.push(step_event(
                ClaimedStep {
                    template: &template,
                    index,
                    task_uuid,
                    correlation_id: row.get(8),
                    trace_id: row.get(9),
                    context,
                    step_uuid,
                    attempts,
                    event_id,
                    span_id: hex(span, 16),
                    dependency_results,
                    ancestor_results: ancestors,
                    ready_at,
                },
                default_timeout,
            ));
        }
        Ok(())
    }
}
