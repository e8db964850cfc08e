//! A realistic `tasker` database of N single-step tasks for query-plan checks (the plan
//! test at a small N, `examples/pg_query_plans.rs` at a million): mostly finished work,
//! a backlog, retries, scheduled tasks and steps in flight, two templates in one
//! namespace and a rare status, then ANALYZE.
//!
//! Of every 100 tasks by number: 0-89 finished (complete; one in a thousand error),
//! 90-95 enqueued, 96-97 waiting for a retry (half of them due), 98 scheduled for later,
//! 99 in progress on a live worker. One task in ten is of template `bench/other`.
#![allow(dead_code)]

use std::collections::HashSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio_postgres::types::ToSql;
use tokio_postgres::Client;
use uuid::Uuid;

use super::register_template;

/// Template and revision ids of the population.
#[derive(Debug, Clone, Copy)]
pub struct Population {
    pub one: i64,
    pub one_revision: i64,
    pub other: i64,
    pub other_revision: i64,
    pub tasks: i64,
}

/// Bulk-inserted rows (generate_series), not created one by one: this builds the shape
/// of a large database quickly, it does not exercise creation.
const INSERT_TASKS: &str = "
INSERT INTO tasker.tasks (task_uuid, task_seq, template_id, revision_id, namespace, name, version, status, context,
                          priority, created_at, completed_at, correlation_id, trace_id, steps_total, steps_complete,
                          steps_ended, failed)
OVERRIDING SYSTEM VALUE
SELECT md5(i::text)::uuid, i,
       CASE WHEN i % 10 = 0 THEN $2::bigint ELSE $1::bigint END,
       CASE WHEN i % 10 = 0 THEN $4::bigint ELSE $3::bigint END,
       'bench', CASE WHEN i % 10 = 0 THEN 'other' ELSE 'one' END, '1.0.0',
       CASE WHEN i % 100 < 90 THEN (CASE WHEN i % 1000 = 1 THEN 'error' ELSE 'complete' END)
            WHEN i % 100 BETWEEN 90 AND 95 THEN 'pending'
            WHEN i % 100 = 98 THEN 'pending'
            ELSE 'in_progress' END,
       jsonb_build_object('order_id', i, 'items', jsonb_build_array(i % 7, i % 11)),
       CASE WHEN i % 50 = 0 THEN 5 ELSE 0 END,
       now() - (($5 - i) * interval '100 milliseconds'),
       CASE WHEN i % 100 < 90 THEN now() - (($5 - i) * interval '100 milliseconds') + interval '1 second' END,
       md5((-i)::text)::uuid, md5(i::text), 1,
       CASE WHEN i % 100 < 90 AND i % 1000 <> 1 THEN 1 ELSE 0 END,
       CASE WHEN i % 100 < 90 THEN 1 ELSE 0 END,
       i % 1000 = 1
FROM generate_series(1, $5::bigint) AS i";

const INSERT_FINISHED: &str = "
INSERT INTO tasker.finished_tasks (task_uuid, status, created_at, task_seq, completed_at)
SELECT task_uuid, status, created_at, task_seq, completed_at FROM tasker.tasks WHERE completed_at IS NOT NULL";

const INSERT_STEPS: &str = "
INSERT INTO tasker.steps (task_uuid, step_index, step_uuid, revision_id, priority, task_created_at, task_seq, status,
                          attempts, remaining_deps, ready_at, event_id, worker_id, claimed_at, claim_id, result,
                          error, history)
SELECT t.task_uuid, 0, md5(('s' || t.task_seq)::text)::uuid, t.revision_id, t.priority, t.created_at, t.task_seq,
       CASE WHEN i % 100 < 90 THEN (CASE WHEN i % 1000 = 1 THEN 'error' ELSE 'complete' END)
            WHEN i % 100 BETWEEN 90 AND 95 THEN 'enqueued'
            WHEN i % 100 IN (96, 97) THEN 'waiting_for_retry'
            WHEN i % 100 = 98 THEN 'pending'
            ELSE 'in_progress' END,
       CASE WHEN i % 100 < 90 OR i % 100 IN (96, 97, 99) THEN 1 ELSE 0 END,
       0,
       CASE WHEN i % 100 BETWEEN 90 AND 95 THEN t.created_at
            WHEN i % 100 = 96 THEN now() - interval '1 second'
            WHEN i % 100 = 97 THEN now() + interval '1 hour'
            WHEN i % 100 = 98 THEN now() + interval '1 day'
            ELSE t.created_at END,
       CASE WHEN i % 100 = 99 THEN md5(('e' || i)::text)::uuid END,
       CASE WHEN i % 100 = 99 THEN 'w-alive' END,
       CASE WHEN i % 100 = 99 THEN now() - interval '1 second' END,
       CASE WHEN i % 100 = 99 THEN md5(('c' || (i / 1000))::text)::uuid END,
       CASE WHEN i % 100 < 90 THEN jsonb_build_object('ok', true, 'n', i) END,
       CASE WHEN i % 1000 = 1 THEN '{\"message\": \"declined\", \"error_type\": \"PaymentError\"}'::jsonb END,
       CASE WHEN i % 100 < 90 THEN '[{\"attempt\": 1, \"outcome\": \"success\"}]'::jsonb END
FROM (SELECT t.*, t.task_seq AS i FROM tasker.tasks t) t";

/// Fills a freshly migrated database with `tasks` tasks (and as many steps).
pub async fn populate(client: &Client, tasks: i64) -> Population {
    let (one, one_revision) = register_template(client, "bench", "one", "1.0.0", &[("work", &[])], None).await;
    let (other, other_revision) =
        register_template(client, "bench", "other", "1.0.0", &[("work", &[])], Some(100)).await;
    client.batch_execute("SET synchronous_commit = off").await.expect("population session setting");
    let insert_tasks = client.prepare(INSERT_TASKS).await.expect("prepare task population");
    client
        .execute(&insert_tasks, &[&one, &other, &one_revision, &other_revision, &tasks])
        .await
        .expect("populate tasks");
    client.batch_execute(INSERT_FINISHED).await.expect("populate finished tasks");
    client.batch_execute(INSERT_STEPS).await.expect("populate steps");
    // One statement per call: VACUUM refuses the implicit transaction of a multi-statement batch.
    for statement in [
        "SELECT setval(pg_get_serial_sequence('tasker.tasks', 'task_seq'), (SELECT max(task_seq) FROM tasker.tasks))",
        "INSERT INTO tasker.workers (worker_id, host, pid) VALUES ('w-alive', 'bench', 1)",
        "VACUUM ANALYZE tasker.tasks",
        "VACUUM ANALYZE tasker.steps",
        "VACUUM ANALYZE tasker.finished_tasks",
        "VACUUM ANALYZE tasker.workers",
        "SET synchronous_commit = on",
    ] {
        client.batch_execute(statement).await.unwrap_or_else(|e| panic!("{statement}: {e}"));
    }
    Population { one, one_revision, other, other_revision, tasks }
}

/// One of the store's hot statements and the index its plan must use.
pub struct PlannedStatement {
    pub label: &'static str,
    pub sql: &'static str,
    pub index: &'static str,
    /// Tables it may read whole (a count of all their rows).
    pub counts: &'static [&'static str],
}

/// Whether `statement` is one of the claims (a LIMITed walk of `steps_claim` in order).
pub fn is_claim(statement: &PlannedStatement) -> bool {
    use tasker_worker::postgres::sql;
    statement.sql == sql::CLAIM_STEPS || statement.sql == sql::CLAIM_CAPPED_STEPS
}

pub fn hot_statements() -> Vec<PlannedStatement> {
    use tasker_worker::postgres::sql;
    vec![
        PlannedStatement { label: "claim 64 (CLAIM_STEPS)", sql: sql::CLAIM_STEPS, index: "steps_claim", counts: &[] },
        PlannedStatement {
            label: "claim of a capped template (CLAIM_CAPPED_STEPS)",
            sql: sql::CLAIM_CAPPED_STEPS,
            index: "steps_claim",
            counts: &[],
        },
        PlannedStatement {
            label: "locate 64 results (LOCATE_RESULTS)",
            sql: sql::LOCATE_RESULTS,
            index: "steps_in_progress",
            counts: &[],
        },
        PlannedStatement { label: "one task (TASK)", sql: sql::TASK, index: "tasks_pkey", counts: &[] },
        PlannedStatement { label: "its steps (TASK_STEPS)", sql: sql::TASK_STEPS, index: "steps_pkey", counts: &[] },
        PlannedStatement {
            label: "list, no filter (LIST_TASKS)",
            sql: sql::LIST_TASKS,
            index: "tasks_newest",
            counts: &[],
        },
        PlannedStatement {
            label: "list, bench/other (LIST_TASKS_BY_TEMPLATE)",
            sql: sql::LIST_TASKS_BY_TEMPLATE,
            index: "tasks_by_template",
            counts: &[],
        },
        PlannedStatement {
            label: "list, status error (LIST_FINISHED_TASKS)",
            sql: sql::LIST_FINISHED_TASKS,
            index: "finished_by_status",
            counts: &[],
        },
        PlannedStatement {
            label: "list, a chunk of unfinished tasks (LIST_UNFINISHED_TASKS)",
            sql: sql::LIST_UNFINISHED_TASKS,
            index: "steps_unfinished",
            counts: &[],
        },
        PlannedStatement {
            label: "started pending tasks, live workers (STARTED_AND_ALIVE)",
            sql: sql::STARTED_AND_ALIVE,
            index: "steps_in_progress",
            counts: &[],
        },
        PlannedStatement {
            label: "lapsed leases (LAPSED_LEASES)",
            sql: sql::LAPSED_LEASES,
            index: "steps_in_progress",
            counts: &[],
        },
    ]
}

/// A completion batch of `n` steps in progress: (tasks, steps, events).
pub async fn in_progress(client: &Client, n: i64) -> (Vec<Uuid>, Vec<Uuid>, Vec<Uuid>) {
    let rows = client
        .query(
            "SELECT task_uuid, step_uuid, event_id FROM tasker.steps WHERE status = 'in_progress' \
             ORDER BY step_uuid LIMIT $1",
            &[&n],
        )
        .await
        .expect("steps in progress");
    (
        rows.iter().map(|r| r.get(0)).collect(),
        rows.iter().map(|r| r.get(1)).collect(),
        rows.iter().map(|r| r.get(2)).collect(),
    )
}

/// The parameters each statement needs on `population`.
pub async fn parameters(
    client: &Client,
    population: Population,
    statement: &PlannedStatement,
) -> Vec<Box<dyn ToSql + Sync + Send>> {
    use tasker_worker::postgres::sql;
    let top = UNIX_EPOCH + Duration::from_secs(253_402_300_799);
    let revisions = vec![population.one_revision, population.other_revision];
    let any: Option<&str> = None;
    let (tasks, steps, events) = in_progress(client, 64).await;
    let cursor = client
        .query_one(
            "SELECT created_at, task_seq FROM tasker.tasks ORDER BY task_seq DESC OFFSET $1 LIMIT 1",
            &[&(population.tasks / 2)],
        )
        .await
        .expect("a cursor in the middle");
    let (cursor_at, cursor_seq): (SystemTime, i64) = (cursor.get(0), cursor.get(1));
    let some_task: Uuid = tasks.first().copied().unwrap_or_else(Uuid::new_v4);
    match statement.sql {
        s if s == sql::CLAIM_STEPS => {
            vec![Box::new(revisions), Box::new(64i64), Box::new("w-bench"), Box::new(Uuid::new_v4())]
        }
        s if s == sql::CLAIM_CAPPED_STEPS => vec![
            Box::new(vec![population.other_revision]),
            Box::new(64i64),
            Box::new("w-bench"),
            Box::new(Uuid::new_v4()),
            Box::new(200i64),
            Box::new(population.other),
        ],
        s if s == sql::LOCATE_RESULTS => vec![Box::new(tasks), Box::new(steps), Box::new(events)],
        s if s == sql::TASK || s == sql::TASK_STEPS => vec![Box::new(some_task)],
        s if s == sql::LIST_TASKS => {
            vec![Box::new(cursor_at), Box::new(cursor_seq), Box::new(50i64), Box::new(any), Box::new(any)]
        }
        s if s == sql::LIST_TASKS_BY_TEMPLATE => {
            vec![Box::new(top), Box::new(0i64), Box::new(50i64), Box::new("bench"), Box::new("other")]
        }
        s if s == sql::LIST_FINISHED_TASKS => {
            vec![Box::new(top), Box::new(0i64), Box::new(50i64), Box::new("error"), Box::new(any), Box::new(any)]
        }
        s if s == sql::LIST_UNFINISHED_TASKS => vec![Box::new(top), Box::new(0i64), Box::new(100i64)],
        s if s == sql::STARTED_AND_ALIVE => vec![Box::new(5.0f64)],
        s if s == sql::LAPSED_LEASES => vec![Box::new(5.0f64)],
        _ => panic!("no parameters for {}", statement.label),
    }
}

/// `EXPLAIN [(ANALYZE, BUFFERS)] <statement>` with the parameters each statement needs on
/// `population`, in a transaction that is rolled back (claims write). Returns the plan's
/// text. `generic`: the plan a prepared statement uses after its first runs, made without
/// the parameters' values (`plan_cache_mode = force_generic_plan`).
pub async fn explain(
    client: &mut Client,
    population: Population,
    statement: &PlannedStatement,
    analyze: bool,
    generic: bool,
) -> String {
    let params = parameters(client, population, statement).await;
    let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p.as_ref() as &(dyn ToSql + Sync)).collect();
    // Test and example code: an EXPLAIN prefix on one of the store's fixed statements.
    let text = if analyze {
        format!("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) {}", statement.sql)
    } else {
        format!("EXPLAIN (COSTS OFF) {}", statement.sql)
    };
    let transaction = client.transaction().await.expect("begin");
    let mode =
        if generic { "SET LOCAL plan_cache_mode = force_generic_plan" } else { "SET LOCAL plan_cache_mode = auto" };
    transaction.batch_execute(mode).await.expect("plan_cache_mode");
    // The store's sessions start with these settings.
    transaction.batch_execute(&tasker_worker::postgres::sql::planner_settings_local()).await.expect("planner settings");
    if statement.sql == tasker_worker::postgres::sql::CLAIM_CAPPED_STEPS {
        let lock = transaction.prepare(tasker_worker::postgres::sql::LOCK_TEMPLATE_CLAIMS).await.unwrap();
        transaction.execute(&lock, &[&population.other]).await.unwrap();
    }
    let rows =
        transaction.query(text.as_str(), &refs).await.unwrap_or_else(|e| panic!("EXPLAIN {}: {e:?}", statement.label));
    transaction.rollback().await.expect("rollback");
    rows.iter().map(|r| r.get::<_, String>(0)).collect::<Vec<_>>().join("\n")
}

/// A client whose server messages (auto_explain's plans, sent as LOG notices) are
/// collected as they come.
pub async fn connect_collecting(url: &str) -> (Client, std::sync::Arc<parking_lot::Mutex<Vec<String>>>) {
    use futures::StreamExt;
    let (client, mut connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.expect("connect");
    let collected = std::sync::Arc::new(parking_lot::Mutex::new(Vec::new()));
    let sink = std::sync::Arc::clone(&collected);
    let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
    tokio::spawn(async move {
        while let Some(Ok(message)) = messages.next().await {
            if let tokio_postgres::AsyncMessage::Notice(notice) = message {
                sink.lock().push(notice.message().to_owned());
            }
        }
    });
    (client, collected)
}

/// Runs, in one transaction that is rolled back, what the store's SQL functions do on a
/// busy database — a claim of 64 steps, a completion batch of them, a task creation, a
/// cancel, a retry of a failed task and a retention pass — with auto_explain logging the
/// plan of every statement inside those functions to `client` (collected by
/// [`connect_collecting`]). `analyze` adds timings and buffers.
/// What one claim of up to 64 steps took, column by column.
struct ClaimedSteps {
    tasks: Vec<Uuid>,
    indexes: Vec<i32>,
    steps: Vec<Uuid>,
    events: Vec<Uuid>,
}

/// Runs `claim` (CLAIM_STEPS, prepared) for a live worker under a fresh claim id.
async fn claim_64(
    transaction: &tokio_postgres::Transaction<'_>,
    claim: &tokio_postgres::Statement,
    revisions: &[i64],
) -> ClaimedSteps {
    let rows = transaction.query(claim, &[&revisions, &64i64, &"w-alive", &Uuid::new_v4()]).await.unwrap();
    // A claim that took nothing answers one row of NULLs.
    let rows: Vec<_> = rows.into_iter().filter(|r| r.get::<_, Option<Uuid>>(0).is_some()).collect();
    ClaimedSteps {
        tasks: rows.iter().map(|r| r.get(0)).collect(),
        indexes: rows.iter().map(|r| r.get(1)).collect(),
        steps: rows.iter().map(|r| r.get(2)).collect(),
        events: rows.iter().map(|r| r.get(4)).collect(),
    }
}

pub async fn run_functions(client: &mut Client, population: Population, analyze: bool) {
    use serde_json::json;
    use tasker_worker::postgres::{record::status_rule, sql};
    let transaction = client.transaction().await.unwrap();
    let on = if analyze { "on" } else { "off" };
    // Fixed text (only "on"/"off" is put in): the auto_explain settings of this session.
    transaction
        .batch_execute(&format!(
            "LOAD 'auto_explain';
             SET LOCAL auto_explain.log_min_duration = 0;
             SET LOCAL auto_explain.log_analyze = {on};
             SET LOCAL auto_explain.log_buffers = {on};
             SET LOCAL auto_explain.log_timing = {on};
             SET LOCAL auto_explain.log_nested_statements = on;
             SET LOCAL auto_explain.log_level = notice;
             SET LOCAL client_min_messages = notice"
        ))
        .await
        .expect("auto_explain (part of the PostgreSQL server package)");
    let claim = transaction.prepare(sql::CLAIM_STEPS).await.unwrap();
    let revisions = vec![population.one_revision, population.other_revision];
    let ClaimedSteps { tasks, steps, events, .. } = claim_64(&transaction, &claim, &revisions).await;
    let n = tasks.len();
    assert!(n > 0, "the population has claimable steps");
    let kinds = vec!["complete"; n];
    let delays = vec![0i64; n];
    let results: Vec<Option<serde_json::Value>> = vec![Some(json!({"ok": true})); n];
    let errors: Vec<Option<serde_json::Value>> = vec![None; n];
    let histories = vec![json!({"attempt": 1, "outcome": "success"}); n];
    let none: Vec<i32> = Vec::new();
    let record = transaction.prepare(sql::RECORD_RESULTS).await.unwrap();
    let recorded = transaction
        .query(
            &record,
            &[
                &tasks,
                &steps,
                &events,
                &kinds,
                &delays,
                &kinds,
                &delays,
                &results,
                &errors,
                &histories,
                &none,
                &none,
                &status_rule(),
                &"plans",
            ],
        )
        .await
        .expect("record the batch");
    assert_eq!(recorded.len(), n, "every claimed step is recorded");

    // A second claim, recorded as a batch of successes (without dependents: the plans are
    // what is looked at here, and the population's backlog steps have none).
    let ClaimedSteps { tasks, indexes, steps, events } = claim_64(&transaction, &claim, &revisions).await;
    let n = tasks.len();
    assert!(n > 0, "the population has more claimable steps");
    let results: Vec<Option<serde_json::Value>> = vec![Some(json!({"ok": true})); n];
    let histories = vec![json!({"attempt": 1, "outcome": "success"}); n];
    let from: Vec<i32> = (1..=n as i32).collect();
    let counts = vec![0i32; n];
    let record = transaction.prepare(sql::RECORD_COMPLETIONS).await.unwrap();
    let recorded = transaction
        .query(
            &record,
            &[&tasks, &indexes, &steps, &events, &results, &histories, &from, &counts, &none, &status_rule(), &"plans"],
        )
        .await
        .expect("record the successes");
    let applied: HashSet<i32> = recorded.iter().map(|r| r.get(0)).collect();
    assert_eq!(applied.len(), n, "every claimed step is recorded as a success");

    let create = transaction.prepare(sql::CREATE_TASK).await.unwrap();
    let no_text: Option<&str> = None;
    let no_time: Option<SystemTime> = None;
    let no_revision: Option<i64> = None;
    let created = transaction
        .query_one(
            &create,
            &[&"bench", &"one", &no_text, &json!({"order_id": 1}), &no_text, &no_time, &0i32, &no_revision],
        )
        .await
        .expect("create a task");
    let cancel = transaction.prepare(sql::CANCEL_TASK).await.unwrap();
    transaction
        .query_one(&cancel, &[&created.get::<_, Uuid>(0), &no_text, &status_rule()])
        .await
        .expect("cancel a task");
    let failed: Uuid = transaction
        .query_one(
            "/* not the store's */ SELECT task_uuid FROM tasker.finished_tasks WHERE status = 'error' LIMIT 1",
            &[],
        )
        .await
        .expect("a failed task")
        .get(0);
    let retry = transaction.prepare(sql::RETRY_TASK).await.unwrap();
    transaction.query_one(&retry, &[&failed]).await.expect("retry a task");
    let purge = transaction.prepare(sql::PURGE_FINISHED).await.unwrap();
    let keep: Vec<Uuid> = Vec::new();
    transaction.query_one(&purge, &[&0.0f64, &50i32, &keep]).await.expect("purge");
    transaction.rollback().await.unwrap();
    // The last notices arrive just after the answers.
    tokio::time::sleep(Duration::from_millis(200)).await;
}
