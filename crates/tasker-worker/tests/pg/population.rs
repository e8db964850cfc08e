//! A realistic `tasker` database of N single-step tasks for query-plan checks (the plan
//! test at a small N, `examples/pg_query_plans.rs` at a million): mostly finished work,
//! a backlog, retries, scheduled tasks and steps in flight, two templates in one
//! namespace and a rare status, then ANALYZE.
//!
//! Of every 100 tasks by number: 0-89 finished (complete; one in a thousand error),
//! 90-95 enqueued, 96-97 waiting for a retry (half of them due), 98 scheduled for later,
//! 99 in progress on a live worker. One task in ten is of template `bench/other`.
#![allow(dead_code)]

use tokio_postgres::Client;

use super::register_template;

/// Template ids of the population.
#[derive(Debug, Clone, Copy)]
pub struct Population {
    pub one: i64,
    pub other: i64,
    pub tasks: i64,
}

/// Bulk-inserted rows (generate_series), not created one by one: this builds the shape
/// of a large database quickly, it does not exercise creation.
const INSERT_TASKS: &str = "
INSERT INTO tasker.tasks (task_uuid, template_id, revision_id, namespace, name, version, status, context,
                          priority, created_at, completed_at, correlation_id, trace_id, steps_total, steps_unfinished)
SELECT md5(i::text)::uuid,
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
       CASE WHEN i % 100 < 90 THEN 0 ELSE 1 END
FROM generate_series(1, $5::bigint) AS i";

const INSERT_STEPS: &str = "
INSERT INTO tasker.steps (task_uuid, step_index, step_uuid, template_id, priority, status, attempts, remaining_deps,
                          ready_at, event_id, worker_id, claimed_at, result, error)
SELECT md5(i::text)::uuid, 0, md5(('s' || i)::text)::uuid,
       CASE WHEN i % 10 = 0 THEN $2::bigint ELSE $1::bigint END,
       CASE WHEN i % 50 = 0 THEN 5 ELSE 0 END,
       CASE WHEN i % 100 < 90 THEN (CASE WHEN i % 1000 = 1 THEN 'error' ELSE 'complete' END)
            WHEN i % 100 BETWEEN 90 AND 95 THEN 'enqueued'
            WHEN i % 100 IN (96, 97) THEN 'waiting_for_retry'
            WHEN i % 100 = 98 THEN 'pending'
            ELSE 'in_progress' END,
       CASE WHEN i % 100 < 90 OR i % 100 = 99 THEN 1 WHEN i % 100 IN (96, 97) THEN 1 ELSE 0 END,
       0,
       CASE WHEN i % 100 BETWEEN 90 AND 95 THEN now() - (($3 - i) * interval '100 milliseconds')
            WHEN i % 100 = 96 THEN now() - interval '1 second'
            WHEN i % 100 = 97 THEN now() + interval '1 hour'
            WHEN i % 100 = 98 THEN now() + interval '1 day'
            ELSE now() - (($3 - i) * interval '100 milliseconds') END,
       CASE WHEN i % 100 = 99 THEN md5(('e' || i)::text)::uuid END,
       CASE WHEN i % 100 = 99 THEN 'w-alive' END,
       CASE WHEN i % 100 = 99 THEN now() - interval '1 second' END,
       CASE WHEN i % 100 < 90 THEN jsonb_build_object('ok', true, 'n', i) END,
       CASE WHEN i % 1000 = 1 THEN '{\"message\": \"declined\", \"error_type\": \"PaymentError\"}'::jsonb END
FROM generate_series(1, $3::bigint) AS i";

/// Fills a freshly migrated database with `tasks` tasks (and as many steps).
pub async fn populate(client: &Client, tasks: i64) -> Population {
    let (one, one_rev) = register_template(client, "bench", "one", "1.0.0", &[("work", &[])], None).await;
    let (other, other_rev) = register_template(client, "bench", "other", "1.0.0", &[("work", &[])], Some(100)).await;
    client.batch_execute("SET synchronous_commit = off").await.expect("population session setting");
    let insert_tasks = client.prepare(INSERT_TASKS).await.expect("prepare task population");
    client.execute(&insert_tasks, &[&one, &other, &one_rev, &other_rev, &tasks]).await.expect("populate tasks");
    let insert_steps = client.prepare(INSERT_STEPS).await.expect("prepare step population");
    client.execute(&insert_steps, &[&one, &other, &tasks]).await.expect("populate steps");
    // One statement per call: VACUUM refuses the implicit transaction of a multi-statement batch.
    for statement in [
        "INSERT INTO tasker.workers (worker_id, host, pid) VALUES ('w-alive', 'bench', 1)",
        "VACUUM ANALYZE tasker.tasks",
        "VACUUM ANALYZE tasker.steps",
        "VACUUM ANALYZE tasker.workers",
        "SET synchronous_commit = on",
    ] {
        client.batch_execute(statement).await.unwrap_or_else(|e| panic!("{statement}: {e}"));
    }
    Population { one, other, tasks }
}

/// One of the store's hot statements and the index its plan must use.
pub struct PlannedStatement {
    pub label: &'static str,
    pub sql: &'static str,
    pub index: &'static str,
}

pub fn hot_statements() -> Vec<PlannedStatement> {
    use tasker_worker::postgres::sql;
    vec![
        PlannedStatement { label: "claim 64 (CLAIM_STEPS)", sql: sql::CLAIM_STEPS, index: "steps_claim" },
        PlannedStatement {
            label: "claim of a capped template (CLAIM_CAPPED_STEPS)",
            sql: sql::CLAIM_CAPPED_STEPS,
            index: "steps_claim",
        },
        PlannedStatement {
            label: "promote due steps (PROMOTE_DUE_STEPS)",
            sql: sql::PROMOTE_DUE_STEPS,
            index: "steps_scheduled",
        },
        PlannedStatement {
            label: "lock a completion batch of 64 (LOCK_RESULTS)",
            sql: sql::LOCK_RESULTS,
            index: "steps_in_progress",
        },
        PlannedStatement { label: "list, no filter (LIST_TASKS)", sql: sql::LIST_TASKS, index: "tasks_newest" },
        PlannedStatement {
            label: "list, status error (LIST_TASKS_BY_STATUS)",
            sql: sql::LIST_TASKS_BY_STATUS,
            index: "tasks_by_status",
        },
        PlannedStatement {
            label: "list, bench/other (LIST_TASKS_BY_TEMPLATE)",
            sql: sql::LIST_TASKS_BY_TEMPLATE,
            index: "tasks_by_template",
        },
        PlannedStatement {
            label: "list, namespace bench (LIST_TASKS_BY_NAMESPACE)",
            sql: sql::LIST_TASKS_BY_NAMESPACE,
            index: "tasks_newest",
        },
        PlannedStatement {
            label: "retention, 500 tasks older than a day (PURGE_FINISHED)",
            sql: sql::PURGE_FINISHED,
            index: "tasks_finished",
        },
        PlannedStatement {
            label: "lapsed leases (LAPSED_LEASES)",
            sql: sql::LAPSED_LEASES,
            index: "steps_in_progress",
        },
    ]
}

/// `EXPLAIN [(ANALYZE, BUFFERS)] <statement>` with the parameters each statement needs on
/// `population`, in a transaction that is rolled back (claims and retention write).
/// Returns the plan's text.
/// `generic`: the plan a prepared statement uses after its first runs, made without the
/// parameters' values (`plan_cache_mode = force_generic_plan`).
pub async fn explain(
    client: &mut Client,
    population: Population,
    statement: &PlannedStatement,
    analyze: bool,
    generic: bool,
) -> String {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};
    use tokio_postgres::types::ToSql;
    use uuid::Uuid;

    let top = UNIX_EPOCH + Duration::from_secs(253_402_300_799);
    let templates = vec![population.one, population.other];
    let any: Option<&str> = None;
    // A completion batch: 64 steps in progress with their event ids.
    let rows = client
        .query(
            "SELECT task_uuid, step_uuid, event_id FROM tasker.steps WHERE status = 'in_progress' ORDER BY step_uuid LIMIT 64",
            &[],
        )
        .await
        .expect("steps in progress");
    let batch_tasks: Vec<Uuid> = rows.iter().map(|r| r.get(0)).collect();
    let batch_steps: Vec<Uuid> = rows.iter().map(|r| r.get(1)).collect();
    let batch_events: Vec<Uuid> = rows.iter().map(|r| r.get(2)).collect();
    let cursor = client
        .query_one(
            "SELECT created_at, task_seq FROM tasker.tasks ORDER BY task_seq DESC OFFSET $1 LIMIT 1",
            &[&(population.tasks / 2)],
        )
        .await
        .expect("a cursor in the middle");
    let (cursor_at, cursor_seq): (SystemTime, i64) = (cursor.get(0), cursor.get(1));

    let params: Vec<Box<dyn ToSql + Sync + Send>> = match statement.sql {
        s if s == tasker_worker::postgres::sql::CLAIM_STEPS => {
            vec![Box::new(templates.clone()), Box::new(64i64), Box::new("w-bench")]
        }
        s if s == tasker_worker::postgres::sql::CLAIM_CAPPED_STEPS => {
            vec![Box::new(population.other), Box::new(64i64), Box::new("w-bench"), Box::new(200i64)]
        }
        s if s == tasker_worker::postgres::sql::PROMOTE_DUE_STEPS => vec![Box::new(1000i64)],
        s if s == tasker_worker::postgres::sql::LOCK_RESULTS => {
            vec![Box::new(batch_tasks), Box::new(batch_steps), Box::new(batch_events)]
        }
        s if s == tasker_worker::postgres::sql::LIST_TASKS => {
            vec![Box::new(cursor_at), Box::new(cursor_seq), Box::new(50i64)]
        }
        s if s == tasker_worker::postgres::sql::LIST_TASKS_BY_STATUS => {
            vec![Box::new(top), Box::new(0i64), Box::new(50i64), Box::new("error")]
        }
        s if s == tasker_worker::postgres::sql::LIST_TASKS_BY_TEMPLATE => {
            vec![Box::new(top), Box::new(0i64), Box::new(50i64), Box::new("bench"), Box::new("other"), Box::new(any)]
        }
        s if s == tasker_worker::postgres::sql::LIST_TASKS_BY_NAMESPACE => {
            vec![Box::new(top), Box::new(0i64), Box::new(50i64), Box::new("bench"), Box::new(any)]
        }
        s if s == tasker_worker::postgres::sql::PURGE_FINISHED => vec![Box::new(86_400.0f64), Box::new(500i64)],
        s if s == tasker_worker::postgres::sql::LAPSED_LEASES => vec![Box::new(5.0f64)],
        _ => panic!("no parameters for {}", statement.label),
    };
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
    if statement.sql == tasker_worker::postgres::sql::CLAIM_CAPPED_STEPS {
        let lock = transaction.prepare(tasker_worker::postgres::sql::LOCK_TEMPLATE_CLAIMS).await.unwrap();
        transaction.execute(&lock, &[&population.other]).await.unwrap();
    }
    let rows =
        transaction.query(text.as_str(), &refs).await.unwrap_or_else(|e| panic!("EXPLAIN {}: {e:?}", statement.label));
    transaction.rollback().await.expect("rollback");
    rows.iter().map(|r| r.get::<_, String>(0)).collect::<Vec<_>>().join("\n")
}
