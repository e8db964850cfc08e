//! Recording a batch of results in one statement (`tasker.record_results`, one
//! transaction): the Rust rules decide what each result means before it is sent — once
//! for a task that is still open, once for one that no longer starts steps — and the
//! statement applies the decision that holds on the locked task row, fenced by event id.
//!
//! What the database cannot store never blocks the pipeline: a result whose JSON holds a
//! NUL character (jsonb refuses `\u0000`) is recorded as a failed attempt saying so, NULs
//! in error texts are replaced, and a batch the database refuses for any other reason
//! that is not transient is split until the one result it refuses is recorded as a failed
//! attempt naming the database's error (or, if even that is refused, left to its lease).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde_json::Value;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

use super::claim::ClaimInfo;
use super::sql;
use super::store::PostgresStore;
use crate::messages::{StepExecutionError, StepExecutionResult};
use crate::rules::{attempt_outcome, decide_attempt, AttemptDecision, TaskProgress};
use crate::store::{AttemptRecord, RecordOutcome, RecordedStep, StoreError, TaskStatus};
use crate::template::WorkflowTemplate;

/// `error_type` of an attempt whose result the database could not store.
pub const RESULT_NOT_STORABLE: &str = "result_not_storable";

/// The status rule of `tasker.task_status_of`: `rules::TaskProgress::status` for every
/// combination of (all steps complete, nothing in flight, failed, cancel requested,
/// started), at `1 + a + 2i + 4f + 8c + 16s`.
pub fn status_rule() -> Vec<String> {
    (0..32u32)
        .map(|bits| {
            let on = |bit: u32| bits & (1 << bit) != 0;
            let progress = TaskProgress {
                steps: 1,
                complete: usize::from(on(0)),
                in_flight: usize::from(!on(1)),
                failed: on(2),
                cancel_requested: on(3),
                started: on(4),
            };
            progress.status().as_str().to_owned()
        })
        .collect()
}

/// A result ready to be sent: its step's template and what the rules decided.
#[derive(Debug)]
struct Prepared {
    /// Position in the caller's batch.
    position: usize,
    template: Arc<WorkflowTemplate>,
    index: usize,
    task_uuid: Uuid,
    step_uuid: Uuid,
    event_id: Uuid,
    open: AttemptDecision,
    closed: AttemptDecision,
    result: Option<Value>,
    error: Option<Value>,
    history: Value,
}

/// What the statement said about one prepared result.
#[derive(Debug, Clone)]
struct Applied {
    opened: bool,
    finished: Option<TaskStatus>,
}

impl PostgresStore {
    pub(super) async fn record_batch(
        &self,
        batch: &mut Vec<StepExecutionResult>,
    ) -> Result<Vec<RecordOutcome>, StoreError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let located = self.locate(batch).await?;
        let mut prepared = Vec::with_capacity(batch.len());
        for (position, result) in batch.iter().enumerate() {
            let Some((info, template)) = located.get(&position) else { continue };
            prepared.push(self.prepare(position, result, *info, Arc::clone(template)));
        }
        let applied = self.apply_resilient(&mut prepared).await?;

        // Recorded: from here on the batch is drained and nothing can fail.
        let mut outcomes: Vec<RecordOutcome> = (0..batch.len()).map(|_| RecordOutcome::Stale).collect();
        let mut finished = Vec::new();
        let mut wake = false;
        for item in &prepared {
            let Some(applied) = applied.get(&item.position) else { continue };
            let decision = if applied.opened { item.open } else { item.closed };
            wake |= decision != AttemptDecision::Fail;
            if applied.finished.is_some() {
                finished.push(item.task_uuid);
            }
            outcomes[item.position] = RecordOutcome::Recorded {
                decision,
                finished: applied.finished,
                step: RecordedStep { template: Arc::clone(&item.template), index: item.index },
            };
        }
        self.claims.forget(batch.drain(..).map(|r| r.step.event_id));
        if wake {
            self.feed.notify_ready();
        }
        if !finished.is_empty() {
            self.feed.notify_finished(finished);
        }
        Ok(outcomes)
    }

    /// The claim and template of each result still in progress, by position: from this
    /// process's claims, else read (a result of a step another store claimed). Results
    /// that are neither are stale.
    async fn locate(
        &self,
        batch: &[StepExecutionResult],
    ) -> Result<HashMap<usize, (ClaimInfo, Arc<WorkflowTemplate>)>, StoreError> {
        let mut located = HashMap::with_capacity(batch.len());
        let mut unknown = Vec::new();
        for (position, result) in batch.iter().enumerate() {
            match self.claims.get(&result.step.event_id) {
                Some(info) => {
                    let template = self.book.revision(&self.db, info.revision_id).await?;
                    located.insert(position, (info, template));
                }
                None => unknown.push(position),
            }
        }
        if unknown.is_empty() {
            return Ok(located);
        }
        let tasks: Vec<Uuid> = unknown.iter().map(|&p| batch[p].step.task_uuid).collect();
        let steps: Vec<Uuid> = unknown.iter().map(|&p| batch[p].step.step_uuid).collect();
        let events: Vec<Uuid> = unknown.iter().map(|&p| batch[p].step.event_id).collect();
        let db = &self.db;
        let rows = {
            let client = db.client().await?;
            let statement =
                client.prepare_cached(sql::LOCATE_RESULTS).await.map_err(|e| db.failed("locating results", &e))?;
            client.query(&statement, &[&tasks, &steps, &events]).await.map_err(|e| db.failed("locating results", &e))?
        };
        for row in rows {
            let ord = row.get::<_, i32>(0).max(1) as usize;
            let Some(&position) = unknown.get(ord - 1) else { continue };
            let info = ClaimInfo {
                index: row.get::<_, i32>(1).max(0) as usize,
                attempts: row.get::<_, i32>(2).max(0) as u32,
                revision_id: row.get(3),
            };
            let template = self.book.revision(db, info.revision_id).await?;
            if info.index < template.steps.len() {
                located.insert(position, (info, template));
            }
        }
        Ok(located)
    }

    /// Decides and converts one result (never fails: what cannot be stored becomes a
    /// failed attempt that says why).
    fn prepare(
        &self,
        position: usize,
        result: &StepExecutionResult,
        info: ClaimInfo,
        template: Arc<WorkflowTemplate>,
    ) -> Prepared {
        let mut result = result.clone();
        if result.success {
            if let Some(path) = nul_path(&result.result, "$") {
                let message = format!(
                    "the step's result cannot be stored in PostgreSQL: the JSON string at {path} contains a NUL \
                     character (\\u0000), which jsonb does not allow; remove it from the handler's result"
                );
                result = not_storable(result, message);
            }
        }
        if let Some(error) = result.error.as_mut() {
            scrub_error(error);
        }
        let policy = &template.steps[info.index].retry;
        let unit = self.rng.lock().f64();
        let open = decide_attempt(&result, info.attempts, policy, true, unit);
        let closed = decide_attempt(&result, info.attempts, policy, false, unit);
        let mut metadata = result.metadata.clone();
        let history = AttemptRecord {
            attempt: info.attempts,
            outcome: attempt_outcome(&result).into(),
            started_at: metadata.started_at.take().map(|s| s.replace('\0', "\u{fffd}")),
            completed_at: metadata.completed_at.take().map(|s| s.replace('\0', "\u{fffd}")),
            duration_ms: metadata.execution_time_ms,
            error_type: result.error.as_ref().map(|e| e.error_type.clone()),
            message: result.error.as_ref().map(|e| e.message.clone()),
        };
        Prepared {
            position,
            index: info.index,
            task_uuid: result.step.task_uuid,
            step_uuid: result.step.step_uuid,
            event_id: result.step.event_id,
            open,
            closed,
            result: result.success.then(|| std::mem::take(&mut result.result)),
            error: result.error.as_ref().map(error_json),
            history: serde_json::to_value(&history).unwrap_or(Value::Null),
            template,
        }
    }

    /// Applies the prepared results; a refusal that is not transient is narrowed down to
    /// the result that caused it (see the module documentation).
    async fn apply_resilient(&self, prepared: &mut [Prepared]) -> Result<HashMap<usize, Applied>, StoreError> {
        if prepared.is_empty() {
            return Ok(HashMap::new());
        }
        match self.apply(prepared).await {
            Ok(applied) => Ok(applied),
            Err(error) if error.is_transient() => Err(error),
            Err(error) if prepared.len() == 1 => {
                let item = &mut prepared[0];
                tracing::error!(
                    task = %item.task_uuid, step = %item.step_uuid, %error,
                    "PostgreSQL refused a step result; recording the attempt as failed instead"
                );
                let message = format!("the step's result could not be recorded: {error}").replace('\0', "\u{fffd}");
                let failure = StepExecutionError::new(message, RESULT_NOT_STORABLE, false);
                item.open = AttemptDecision::Fail;
                item.closed = AttemptDecision::Fail;
                item.result = None;
                item.error = Some(error_json(&failure));
                if let Value::Object(history) = &mut item.history {
                    history.insert("outcome".into(), Value::from("failure"));
                    history.insert("error_type".into(), Value::from(RESULT_NOT_STORABLE));
                    history.insert("message".into(), Value::from(failure.message.clone()));
                }
                match self.apply(prepared).await {
                    Ok(applied) => Ok(applied),
                    Err(again) if again.is_transient() => Err(again),
                    Err(again) => {
                        tracing::error!(
                            %again,
                            "PostgreSQL refused even the failure of that step; its lease expires and it runs again"
                        );
                        Ok(HashMap::new())
                    }
                }
            }
            Err(_) => {
                // Each half is its own transaction. Should the second half then fail
                // transiently, the whole batch is tried again and the first half's
                // results are fenced off as already recorded.
                let middle = prepared.len() / 2;
                let (first, second) = prepared.split_at_mut(middle);
                let mut applied = Box::pin(self.apply_resilient(first)).await?;
                applied.extend(Box::pin(self.apply_resilient(second)).await?);
                Ok(applied)
            }
        }
    }

    /// Sends the batch to `tasker.record_completions` when it holds only successes, each
    /// attempt once (the common batch, recorded without `record_results`' deciding), and
    /// to `tasker.record_results` otherwise.
    async fn apply(&self, prepared: &[Prepared]) -> Result<HashMap<usize, Applied>, StoreError> {
        let successes = prepared
            .iter()
            .all(|item| item.open == AttemptDecision::Complete && item.closed == AttemptDecision::Complete);
        let distinct = || {
            let mut seen = HashSet::with_capacity(prepared.len());
            prepared.iter().all(|item| seen.insert(item.event_id))
        };
        if successes && distinct() {
            self.apply_completions(prepared).await
        } else {
            self.apply_decided(prepared).await
        }
    }

    async fn apply_completions(&self, prepared: &[Prepared]) -> Result<HashMap<usize, Applied>, StoreError> {
        let tasks: Vec<Uuid> = prepared.iter().map(|item| item.task_uuid).collect();
        let indexes: Vec<i32> = prepared.iter().map(|item| item.index as i32).collect();
        let steps: Vec<Uuid> = prepared.iter().map(|item| item.step_uuid).collect();
        let events: Vec<Uuid> = prepared.iter().map(|item| item.event_id).collect();
        let results: Vec<Option<&Value>> = prepared.iter().map(|item| item.result.as_ref()).collect();
        let histories: Vec<&Value> = prepared.iter().map(|item| &item.history).collect();
        let mut child_from = Vec::with_capacity(prepared.len());
        let mut child_count = Vec::with_capacity(prepared.len());
        let mut child_index = Vec::new();
        for item in prepared {
            let children = &item.template.dependents[item.index];
            child_from.push(child_index.len() as i32 + 1);
            child_count.push(children.len() as i32);
            child_index.extend(children.iter().map(|&dependent| dependent as i32));
        }
        self.send(
            prepared,
            sql::RECORD_COMPLETIONS,
            &[
                &tasks,
                &indexes,
                &steps,
                &events,
                &results,
                &histories,
                &child_from,
                &child_count,
                &child_index,
                &self.rule,
                &self.source,
            ],
        )
        .await
    }

    async fn apply_decided(&self, prepared: &[Prepared]) -> Result<HashMap<usize, Applied>, StoreError> {
        let n = prepared.len();
        let mut tasks = Vec::with_capacity(n);
        let mut steps = Vec::with_capacity(n);
        let mut events = Vec::with_capacity(n);
        let mut open_kind = Vec::with_capacity(n);
        let mut open_delay = Vec::with_capacity(n);
        let mut closed_kind = Vec::with_capacity(n);
        let mut closed_delay = Vec::with_capacity(n);
        let mut results: Vec<Option<&Value>> = Vec::with_capacity(n);
        let mut errors: Vec<Option<&Value>> = Vec::with_capacity(n);
        let mut histories: Vec<&Value> = Vec::with_capacity(n);
        let mut child_ord = Vec::new();
        let mut child_index = Vec::new();
        for (i, item) in prepared.iter().enumerate() {
            tasks.push(item.task_uuid);
            steps.push(item.step_uuid);
            events.push(item.event_id);
            let (kind, delay) = decision_kind(item.open);
            open_kind.push(kind);
            open_delay.push(delay);
            let (kind, delay) = decision_kind(item.closed);
            closed_kind.push(kind);
            closed_delay.push(delay);
            results.push(item.result.as_ref());
            errors.push(item.error.as_ref());
            histories.push(&item.history);
            for &dependent in &item.template.dependents[item.index] {
                child_ord.push(i as i32 + 1);
                child_index.push(dependent as i32);
            }
        }
        self.send(
            prepared,
            sql::RECORD_RESULTS,
            &[
                &tasks,
                &steps,
                &events,
                &open_kind,
                &open_delay,
                &closed_kind,
                &closed_delay,
                &results,
                &errors,
                &histories,
                &child_ord,
                &child_index,
                &self.rule,
                &self.source,
            ],
        )
        .await
    }

    /// Runs one of the two recording statements and reads what it answered (position,
    /// opened, finished status) by caller position. A position may be answered twice
    /// (`record_completions` answers a task's finish in a row of its own): the finish is
    /// kept.
    async fn send(
        &self,
        prepared: &[Prepared],
        statement: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<HashMap<usize, Applied>, StoreError> {
        let db = &self.db;
        let rows = {
            let client = db.client().await?;
            let statement = client.prepare_cached(statement).await.map_err(|e| db.failed("recording results", &e))?;
            client.query(&statement, params).await.map_err(|e| db.failed("recording results", &e))?
        };
        let mut applied: HashMap<usize, Applied> = HashMap::with_capacity(rows.len());
        for row in rows {
            let ord = row.get::<_, i32>(0).max(1) as usize;
            let Some(item) = prepared.get(ord - 1) else { continue };
            let finished = row.get::<_, Option<String>>(2).and_then(|s| TaskStatus::parse(&s));
            let entry = applied.entry(item.position).or_insert(Applied { opened: row.get(1), finished: None });
            entry.finished = entry.finished.or(finished);
        }
        Ok(applied)
    }
}

/// How a decision travels to SQL: its kind and, for a retry, the delay in milliseconds.
fn decision_kind(decision: AttemptDecision) -> (&'static str, i64) {
    match decision {
        AttemptDecision::Complete => ("complete", 0),
        AttemptDecision::Retry { delay } => ("retry", delay.as_millis().min(i64::MAX as u128) as i64),
        AttemptDecision::Requeue => ("requeue", 0),
        AttemptDecision::Fail => ("fail", 0),
    }
}

/// A failed, not retryable attempt in place of `result`, keeping its identity and timing.
fn not_storable(result: StepExecutionResult, message: String) -> StepExecutionResult {
    let StepExecutionResult { step, metadata, .. } = result;
    let mut failure = StepExecutionResult::failure(StepExecutionError::new(message, RESULT_NOT_STORABLE, false));
    failure.step = step;
    failure.metadata = metadata;
    failure
}

/// The stored form of an error (what `task_status` reads back).
fn error_json(error: &StepExecutionError) -> Value {
    serde_json::to_value(error).unwrap_or_else(|_| serde_json::json!({ "message": error.message }))
}

/// Replaces NUL characters in every text of an error (diagnostics, not data).
fn scrub_error(error: &mut StepExecutionError) {
    let clean = |s: &mut String| {
        if s.contains('\0') {
            *s = s.replace('\0', "\u{fffd}");
        }
    };
    clean(&mut error.message);
    clean(&mut error.error_type);
    error.backtrace.iter_mut().for_each(clean);
    if let Some(code) = error.error_code.as_mut() {
        clean(code);
    }
    if let Some(context) = error.context.as_mut() {
        scrub_value(context);
    }
}

fn scrub_value(value: &mut Value) {
    match value {
        Value::String(s) if s.contains('\0') => *s = s.replace('\0', "\u{fffd}"),
        Value::Array(items) => items.iter_mut().for_each(scrub_value),
        Value::Object(map) if map.keys().any(|k| k.contains('\0')) => {
            let entries = std::mem::take(map);
            for (key, mut inner) in entries {
                scrub_value(&mut inner);
                map.insert(key.replace('\0', "\u{fffd}"), inner);
            }
        }
        Value::Object(map) => map.values_mut().for_each(scrub_value),
        _ => {}
    }
}

/// Where in `value` a string (or key) holds a NUL character, as a JSON path.
pub fn nul_path(value: &Value, at: &str) -> Option<String> {
    match value {
        Value::String(s) => s.contains('\0').then(|| at.to_owned()),
        Value::Array(items) => items.iter().enumerate().find_map(|(i, v)| nul_path(v, &format!("{at}[{i}]"))),
        Value::Object(map) => map.iter().find_map(|(k, v)| {
            let here = format!("{at}.{}", k.replace('\0', "\\u0000"));
            if k.contains('\0') {
                Some(here)
            } else {
                nul_path(v, &here)
            }
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_status_rule_is_the_shared_rule_tabulated() {
        // Rust counts from 0; SQL's 1 + bits is the same entry.
        let rule = status_rule();
        assert_eq!(rule.len(), 32);
        // started, all complete, idle
        assert_eq!(rule[1 + 2 + 16], "complete");
        // started, idle, failed
        assert_eq!(rule[2 + 4 + 16], "error");
        // started, idle, failed and cancelled: the cancel wins
        assert_eq!(rule[2 + 4 + 8 + 16], "cancelled");
        // started, failed, still running
        assert_eq!(rule[4 + 16], "in_progress");
        // never started, idle, cancelled
        assert_eq!(rule[2 + 8], "cancelled");
    }

    #[test]
    fn nul_characters_are_found_by_path_and_scrubbed_from_errors() {
        assert_eq!(nul_path(&json!({"a": [1, "x\u{0}y"]}), "$"), Some("$.a[1]".to_owned()));
        assert_eq!(nul_path(&json!({"ok": "fine"}), "$"), None);
        let mut error = StepExecutionError::new("bad\u{0}", "Boom", true);
        error.context = Some(json!({"k\u{0}": "v\u{0}"}));
        scrub_error(&mut error);
        assert_eq!(error.message, "bad\u{fffd}");
        assert_eq!(error.context, Some(json!({"k\u{fffd}": "v\u{fffd}"})));
    }
}
