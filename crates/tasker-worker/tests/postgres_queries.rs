//! The PostgreSQL store's SQL, statement by statement, on a real server: task creation
//! through the SQL function (inside the caller's transaction), template resolution,
//! idempotency under concurrency, the batched claim (priority order, templates, SKIP
//! LOCKED, max_in_flight), the fenced completion that advances a DAG and stops failing
//! tasks, scheduled steps, listing with cursors, retention and lapsed leases.

mod pg;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio_postgres::Client;
use uuid::Uuid;

use tasker_worker::postgres::listener::{ChangeListener, ListenerSettings, Notice};
use tasker_worker::postgres::{open, sql, DatabaseUrl, PostgresConfig};

const PATIENCE: Duration = Duration::from_secs(10);

/// A fresh, migrated database and a client of it.
async fn setup() -> (pg::TestDatabase, Client) {
    let db = pg::server().fresh_database().await;
    open(&db.url, &PostgresConfig::default()).await.expect("migrate");
    let client = db.connect().await;
    (db, client)
}

async fn create(client: &Client, namespace: &str, name: &str, version: Option<&str>, context: Value) -> Uuid {
    create_with(client, namespace, name, version, context, None, None, 0).await.0
}

#[allow(clippy::too_many_arguments)]
async fn create_with(
    client: &Client,
    namespace: &str,
    name: &str,
    version: Option<&str>,
    context: Value,
    key: Option<&str>,
    run_at: Option<SystemTime>,
    priority: i32,
) -> (Uuid, bool) {
    let statement = client.prepare(sql::CREATE_TASK).await.unwrap();
    let row = client
        .query_one(&statement, &[&namespace, &name, &version, &context, &key, &run_at, &priority])
        .await
        .unwrap_or_else(|e| panic!("create {namespace}/{name}: {e:?}"));
    (row.get(0), row.get(1))
}

#[derive(Debug, Clone)]
struct Claimed {
    task: Uuid,
    index: i32,
    step_uuid: Uuid,
    attempts: i32,
    event_id: Uuid,
    context: Value,
    parent_results: Option<Vec<Option<Value>>>,
}

async fn claim(client: &Client, templates: &[i64], max: i64, worker: &str) -> Vec<Claimed> {
    let statement = client.prepare(sql::CLAIM_STEPS).await.unwrap();
    let rows = client.query(&statement, &[&templates, &max, &worker]).await.expect("claim");
    rows.iter()
        .map(|r| Claimed {
            task: r.get(0),
            index: r.get(1),
            step_uuid: r.get(2),
            attempts: r.get(3),
            event_id: r.get(4),
            context: r.get(6),
            parent_results: r.get(9),
        })
        .collect()
}

/// What one accepted result becomes (the rules' decision, made by hand here).
struct StepChange {
    task: Uuid,
    index: i32,
    status: &'static str,
    result: Option<Value>,
    error: Option<Value>,
    delay_ms: Option<i64>,
}

struct TaskChange {
    task: Uuid,
    template: i64,
    completed: i32,
    status: Option<&'static str>,
    halt: Option<&'static str>,
    skip: bool,
}

fn done(task: Uuid, index: i32, result: Value) -> StepChange {
    StepChange { task, index, status: "complete", result: Some(result), error: None, delay_ms: None }
}

/// Locks the results' steps (the fence) and applies the changes in one transaction, as
/// the completion batch does. Returns (fenced rows, ready, finished tasks).
async fn record(
    client: &mut Client,
    fence: &[&Claimed],
    steps: &[StepChange],
    children: &[(Uuid, i32, i32)],
    tasks: &[TaskChange],
) -> (usize, i32, Vec<Uuid>) {
    let tx = client.transaction().await.unwrap();
    let lock = tx.prepare(sql::LOCK_RESULTS).await.unwrap();
    let task_ids: Vec<Uuid> = fence.iter().map(|c| c.task).collect();
    let step_ids: Vec<Uuid> = fence.iter().map(|c| c.step_uuid).collect();
    let events: Vec<Uuid> = fence.iter().map(|c| c.event_id).collect();
    let fenced = tx.query(&lock, &[&task_ids, &step_ids, &events]).await.expect("lock results").len();

    let apply = tx.prepare(sql::APPLY_RESULTS).await.unwrap();
    let s_task: Vec<Uuid> = steps.iter().map(|s| s.task).collect();
    let s_index: Vec<i32> = steps.iter().map(|s| s.index).collect();
    let s_status: Vec<&str> = steps.iter().map(|s| s.status).collect();
    let s_result: Vec<Option<Value>> = steps.iter().map(|s| s.result.clone()).collect();
    let s_error: Vec<Option<Value>> = steps.iter().map(|s| s.error.clone()).collect();
    let s_delta: Vec<i32> = steps.iter().map(|_| 0).collect();
    let s_delay: Vec<Option<i64>> = steps.iter().map(|s| s.delay_ms).collect();
    let s_history: Vec<Option<Value>> =
        steps.iter().map(|s| s.error.as_ref().map(|e| json!({"outcome": "failed", "error": e}))).collect();
    let s_started: Vec<Option<SystemTime>> = steps.iter().map(|_| None).collect();
    let s_ended: Vec<Option<SystemTime>> = steps.iter().map(|_| Some(SystemTime::now())).collect();
    let c_task: Vec<Uuid> = children.iter().map(|c| c.0).collect();
    let c_index: Vec<i32> = children.iter().map(|c| c.1).collect();
    let c_done: Vec<i32> = children.iter().map(|c| c.2).collect();
    let t_task: Vec<Uuid> = tasks.iter().map(|t| t.task).collect();
    let t_template: Vec<i64> = tasks.iter().map(|t| t.template).collect();
    let t_completed: Vec<i32> = tasks.iter().map(|t| t.completed).collect();
    let t_status: Vec<Option<&str>> = tasks.iter().map(|t| t.status).collect();
    let t_halt: Vec<Option<&str>> = tasks.iter().map(|t| t.halt).collect();
    let t_skip: Vec<bool> = tasks.iter().map(|t| t.skip).collect();
    let row = tx
        .query_one(
            &apply,
            &[
                &s_task,
                &s_index,
                &s_status,
                &s_result,
                &s_error,
                &s_delta,
                &s_delay,
                &s_history,
                &s_started,
                &s_ended,
                &c_task,
                &c_index,
                &c_done,
                &t_task,
                &t_template,
                &t_completed,
                &t_status,
                &t_halt,
                &t_skip,
            ],
        )
        .await
        .expect("apply results");
    tx.commit().await.unwrap();
    (fenced, row.get(0), row.get(1))
}

async fn step_statuses(client: &Client, task: Uuid) -> Vec<String> {
    client
        .query("SELECT status FROM tasker.steps WHERE task_uuid = $1 ORDER BY step_index", &[&task])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

async fn task_status(client: &Client, task: Uuid) -> (String, Option<String>, bool) {
    let row = client
        .query_one("SELECT status, halt, completed_at IS NOT NULL FROM tasker.tasks WHERE task_uuid = $1", &[&task])
        .await
        .unwrap();
    (row.get(0), row.get(1), row.get(2))
}

/// A change listener whose notices arrive on a channel, connected before it returns.
async fn listen(url: &str) -> (ChangeListener, mpsc::UnboundedReceiver<Notice>) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let listener = ChangeListener::spawn(
        DatabaseUrl::parse(url).unwrap(),
        ListenerSettings::default(),
        Arc::new(move |notice| {
            let _ = tx.send(notice);
        }),
    );
    let first = tokio::time::timeout(PATIENCE, rx.recv()).await.expect("listener connects");
    assert_eq!(first, Some(Notice::Resync));
    (listener, rx)
}

/// The next notice matching `want`, within PATIENCE.
async fn expect_notice(rx: &mut mpsc::UnboundedReceiver<Notice>, want: impl Fn(&Notice) -> bool) -> Notice {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(notice)) if want(&notice) => return notice,
            Ok(Some(_)) => continue,
            other => panic!("no matching notice within {PATIENCE:?}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn create_task_exists_only_when_the_callers_transaction_commits() {
    let (db, mut client) = setup().await;
    let (template, _) = pg::register_template(&client, "shop", "order", "1.0.0", &[("charge", &[])], None).await;
    let (_listener, mut notices) = listen(&db.url).await;

    let tx = client.transaction().await.unwrap();
    let rolled_back: Uuid =
        tx.query_one("SELECT tasker.create_task('shop', 'order', NULL, '{\"n\": 1}')", &[]).await.unwrap().get(0);
    tx.rollback().await.unwrap();
    let count: i64 = client.query_one("SELECT count(*) FROM tasker.tasks", &[]).await.unwrap().get(0);
    assert_eq!(count, 0, "a rolled-back create leaves no task");
    let steps: i64 = client.query_one("SELECT count(*) FROM tasker.steps", &[]).await.unwrap().get(0);
    assert_eq!(steps, 0);

    let tx = client.transaction().await.unwrap();
    let committed: Uuid =
        tx.query_one("SELECT tasker.create_task('shop', 'order', NULL, '{\"n\": 2}')", &[]).await.unwrap().get(0);
    // Not delivered before the commit: the rolled-back one never is.
    assert!(notices.try_recv().is_err(), "no notification before commit");
    tx.commit().await.unwrap();
    let notice = expect_notice(&mut notices, |n| matches!(n, Notice::StepsReady { .. })).await;
    assert_eq!(notice, Notice::StepsReady { template_id: Some(template) });

    assert_ne!(rolled_back, committed);
    let row = client
        .query_one("SELECT status, context, steps_total FROM tasker.tasks WHERE task_uuid = $1", &[&committed])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "pending");
    assert_eq!(row.get::<_, Value>(1), json!({"n": 2}));
    assert_eq!(row.get::<_, i32>(2), 1);
    assert_eq!(step_statuses(&client, committed).await, ["enqueued"]);
}

#[tokio::test]
async fn version_null_means_the_highest_release_and_errors_say_what_exists() {
    let (_db, client) = setup().await;
    let one: &[(&str, &[i32])] = &[("a", &[])];
    for version in ["1.0.0", "1.10.0", "2.0.0-beta.1", "1.9.3"] {
        pg::register_template(&client, "ns", "flow", version, one, None).await;
    }
    pg::register_template(&client, "ns", "preview", "0.1.0-alpha", one, None).await;

    let task = create(&client, "ns", "flow", None, json!({})).await;
    let version: String =
        client.query_one("SELECT version FROM tasker.tasks WHERE task_uuid = $1", &[&task]).await.unwrap().get(0);
    assert_eq!(version, "1.10.0", "highest release, not the 2.0.0 prerelease nor 1.9.3 (text order)");

    let task = create(&client, "ns", "flow", Some("2.0.0-beta.1"), json!({})).await;
    let version: String =
        client.query_one("SELECT version FROM tasker.tasks WHERE task_uuid = $1", &[&task]).await.unwrap().get(0);
    assert_eq!(version, "2.0.0-beta.1", "a prerelease runs when named");

    let statement = client.prepare(sql::CREATE_TASK).await.unwrap();
    let no_key: Option<&str> = None;
    let no_time: Option<SystemTime> = None;
    let cases: [(&str, &str, Option<&str>, &str, &str); 4] = [
        ("nope", "flow", None, "TK001", "known namespaces: ns"),
        ("ns", "nope", None, "TK002", "known templates: flow, preview"),
        ("ns", "flow", Some("3.0.0"), "TK003", "available versions: 1.0.0, 1.9.3, 1.10.0, 2.0.0-beta.1"),
        ("ns", "preview", None, "TK004", "available versions: 0.1.0-alpha"),
    ];
    for (namespace, name, version, code, detail) in cases {
        let err = client
            .query_one(&statement, &[&namespace, &name, &version, &json!({}), &no_key, &no_time, &0i32])
            .await
            .expect_err("unknown template");
        let db_error = err.as_db_error().expect("a server error");
        assert_eq!(db_error.code().code(), code, "{namespace}/{name}: {}", db_error.message());
        assert_eq!(db_error.detail(), Some(detail), "{namespace}/{name}");
    }

    let err = client
        .query_one(&statement, &[&"ns", &"flow", &no_key, &json!([1]), &no_key, &no_time, &0i32])
        .await
        .expect_err("an Array context");
    assert!(err.as_db_error().unwrap().message().contains("must be a JSON object, got array"), "{err:?}");
}

#[tokio::test]
async fn an_idempotency_key_creates_one_task_under_concurrent_calls() {
    let (db, client) = setup().await;
    pg::register_template(&client, "shop", "order", "1.0.0", &[("a", &[])], None).await;
    pg::register_template(&client, "shop", "refund", "1.0.0", &[("a", &[])], None).await;

    let calls = (0..12).map(|i| {
        let db = db.clone();
        tokio::spawn(async move {
            let client = db.connect().await;
            create_with(&client, "shop", "order", None, json!({"i": i}), Some("order-42"), None, 0).await
        })
    });
    let results: Vec<(Uuid, bool)> = futures::future::join_all(calls).await.into_iter().map(|r| r.unwrap()).collect();
    let uuids: HashSet<Uuid> = results.iter().map(|r| r.0).collect();
    assert_eq!(uuids.len(), 1, "every caller gets the same task: {results:?}");
    assert_eq!(results.iter().filter(|r| r.1).count(), 1, "exactly one call created it");
    let tasks: i64 = client.query_one("SELECT count(*) FROM tasker.tasks", &[]).await.unwrap().get(0);
    assert_eq!(tasks, 1);

    // The key is per namespace/name: another workflow with the same key is another task.
    let (refund, created) = create_with(&client, "shop", "refund", None, json!({}), Some("order-42"), None, 0).await;
    assert!(created);
    assert!(!uuids.contains(&refund));
}

#[tokio::test]
async fn claims_take_priority_first_only_loaded_templates_and_never_the_same_step_twice() {
    let (db, client) = setup().await;
    let one: &[(&str, &[i32])] = &[("a", &[])];
    let (mine, _) = pg::register_template(&client, "ns", "mine", "1.0.0", one, None).await;
    let (other, _) = pg::register_template(&client, "ns", "other", "1.0.0", one, None).await;
    let low = create_with(&client, "ns", "mine", None, json!({"p": 0}), None, None, 0).await.0;
    let high = create_with(&client, "ns", "mine", None, json!({"p": 5}), None, None, 5).await.0;
    let not_mine = create_with(&client, "ns", "other", None, json!({}), None, None, 9).await.0;

    let first = claim(&client, &[mine], 1, "w1").await;
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].task, high, "the higher priority first, though created later");
    assert_eq!(first[0].attempts, 1);
    assert_eq!(first[0].context, json!({"p": 5}));
    assert_eq!(task_status(&client, high).await.0, "in_progress", "the first claim starts the task");
    let second = claim(&client, &[mine], 64, "w1").await;
    assert_eq!(second.iter().map(|c| c.task).collect::<Vec<_>>(), [low]);
    assert!(claim(&client, &[mine], 64, "w1").await.is_empty());
    assert_eq!(step_statuses(&client, not_mine).await, ["enqueued"], "a template not loaded stays unclaimed");
    assert_eq!(claim(&client, &[other], 64, "w2").await[0].task, not_mine);

    // Two workers claiming 64 at a time from 150 steps at once: each step exactly once.
    for i in 0..150 {
        create(&client, "ns", "mine", None, json!({"i": i})).await;
    }
    let claimers = (0..2).map(|w| {
        let db = db.clone();
        tokio::spawn(async move {
            let client = db.connect().await;
            let mut got = Vec::new();
            loop {
                let batch = claim(&client, &[mine], 64, &format!("w{w}")).await;
                if batch.is_empty() {
                    return got;
                }
                got.extend(batch.into_iter().map(|c| c.step_uuid));
            }
        })
    });
    let all: Vec<Uuid> = futures::future::join_all(claimers).await.into_iter().flat_map(|r| r.unwrap()).collect();
    assert_eq!(all.len(), 150);
    assert_eq!(all.iter().collect::<HashSet<_>>().len(), 150, "no step claimed twice");
}

#[tokio::test]
async fn a_completion_batch_is_fenced_advances_the_dag_and_finishes_the_task() {
    let (db, mut client) = setup().await;
    let diamond: &[(&str, &[i32])] = &[("a", &[]), ("b", &[0]), ("c", &[0]), ("d", &[1, 2])];
    let (template, _) = pg::register_template(&client, "ns", "diamond", "1.0.0", diamond, None).await;
    let task = create(&client, "ns", "diamond", None, json!({"x": 3})).await;
    let (_listener, mut notices) = listen(&db.url).await;

    let a = claim(&client, &[template], 64, "w").await.remove(0);
    assert_eq!(a.index, 0);
    assert_eq!(a.parent_results, None);

    // A result for another event id is stale: the fence returns nothing for it.
    let forged = Claimed { event_id: Uuid::new_v4(), ..a.clone() };
    let (fenced, ready, finished) = record(&mut client, &[&forged], &[], &[], &[]).await;
    assert_eq!((fenced, ready, finished.len()), (0, 0, 0));
    assert_eq!(step_statuses(&client, task).await, ["in_progress", "pending", "pending", "pending"]);

    let one_step = |completed| TaskChange { task, template, completed, status: None, halt: None, skip: false };
    let (fenced, ready, _) =
        record(&mut client, &[&a], &[done(task, 0, json!(6))], &[(task, 1, 1), (task, 2, 1)], &[one_step(1)]).await;
    assert_eq!((fenced, ready), (1, 2));
    assert_eq!(step_statuses(&client, task).await, ["complete", "enqueued", "enqueued", "pending"]);
    expect_notice(&mut notices, |n| *n == Notice::StepsReady { template_id: Some(template) }).await;

    let mut bc = claim(&client, &[template], 64, "w").await;
    bc.sort_by_key(|c| c.index);
    assert_eq!(bc.len(), 2);
    assert_eq!(bc[0].parent_results, Some(vec![Some(json!(6))]), "b sees a's result");

    let (_, ready, _) =
        record(&mut client, &[&bc[0]], &[done(task, 1, json!("b"))], &[(task, 3, 1)], &[one_step(1)]).await;
    assert_eq!(ready, 0, "d still waits for c");
    let (_, ready, _) =
        record(&mut client, &[&bc[1]], &[done(task, 2, json!("c"))], &[(task, 3, 1)], &[one_step(1)]).await;
    assert_eq!(ready, 1);

    let d = claim(&client, &[template], 64, "w").await.remove(0);
    assert_eq!(d.index, 3);
    assert_eq!(d.parent_results, Some(vec![Some(json!("b")), Some(json!("c"))]), "in the order of its dependencies");
    let finish = TaskChange { task, template, completed: 1, status: Some("complete"), halt: None, skip: false };
    let (_, _, finished) = record(&mut client, &[&d], &[done(task, 3, json!("d"))], &[], &[finish]).await;
    assert_eq!(finished, vec![task]);
    assert_eq!(task_status(&client, task).await, ("complete".to_owned(), None, true));
    let unfinished: i32 = client
        .query_one("SELECT steps_unfinished FROM tasker.tasks WHERE task_uuid = $1", &[&task])
        .await
        .unwrap()
        .get(0);
    assert_eq!(unfinished, 0);
    assert_eq!(
        expect_notice(&mut notices, |n| matches!(n, Notice::TasksFinished(_))).await,
        Notice::TasksFinished(vec![task])
    );

    // Recording d again (a duplicate delivery) is fenced out.
    let (fenced, _, finished) = record(&mut client, &[&d], &[], &[], &[]).await;
    assert_eq!((fenced, finished.len()), (0, 0));
}

#[tokio::test]
async fn a_failing_task_ends_only_when_its_running_steps_have_finished() {
    let (_db, mut client) = setup().await;
    // Two roots running at once, and a step after each.
    let shape: &[(&str, &[i32])] = &[("a", &[]), ("b", &[]), ("after_a", &[0]), ("after_b", &[1])];
    let (template, _) = pg::register_template(&client, "ns", "pair", "1.0.0", shape, None).await;
    let task = create(&client, "ns", "pair", None, json!({})).await;
    let mut roots = claim(&client, &[template], 64, "w").await;
    roots.sort_by_key(|c| c.index);
    assert_eq!(roots.len(), 2);

    // a fails for good: the task asks to end in error, which must wait for b.
    let failed = StepChange {
        task,
        index: 0,
        status: "error",
        result: None,
        error: Some(json!({"message": "card declined", "error_type": "PaymentError", "retryable": false})),
        delay_ms: None,
    };
    let halt = TaskChange { task, template, completed: 0, status: Some("error"), halt: Some("failing"), skip: true };
    let (_, _, finished) = record(&mut client, &[&roots[0]], &[failed], &[], &[halt]).await;
    assert!(finished.is_empty(), "b is still running: the task is not finished");
    assert_eq!(task_status(&client, task).await, ("in_progress".to_owned(), Some("failing".to_owned()), false));
    assert_eq!(step_statuses(&client, task).await, ["error", "in_progress", "skipped", "skipped"]);
    assert!(claim(&client, &[template], 64, "w").await.is_empty(), "nothing new starts");

    // b finishes (its result is kept, its dependent stays skipped): now the task ends.
    let end = TaskChange { task, template, completed: 1, status: Some("error"), halt: None, skip: true };
    let (_, _, finished) = record(&mut client, &[&roots[1]], &[done(task, 1, json!("b"))], &[], &[end]).await;
    assert_eq!(finished, vec![task]);
    assert_eq!(task_status(&client, task).await, ("error".to_owned(), None, true));
    assert_eq!(step_statuses(&client, task).await, ["error", "complete", "skipped", "skipped"]);
    let history: Value = client
        .query_one("SELECT history FROM tasker.steps WHERE task_uuid = $1 AND step_index = 0", &[&task])
        .await
        .unwrap()
        .get(0);
    assert_eq!(history[0]["error"]["error_type"], "PaymentError");
}

#[tokio::test]
async fn a_retry_waits_for_its_backoff_then_promotion_makes_it_claimable() {
    let (_db, mut client) = setup().await;
    let (template, _) = pg::register_template(&client, "ns", "flaky", "1.0.0", &[("a", &[])], None).await;
    let task = create(&client, "ns", "flaky", None, json!({})).await;
    let first = claim(&client, &[template], 64, "w").await.remove(0);
    let retry = StepChange {
        task,
        index: 0,
        status: "waiting_for_retry",
        result: None,
        error: Some(json!({"message": "busy", "error_type": "Busy", "retryable": true})),
        delay_ms: Some(300),
    };
    record(&mut client, &[&first], &[retry], &[], &[]).await;
    assert_eq!(step_statuses(&client, task).await, ["waiting_for_retry"]);
    assert!(claim(&client, &[template], 64, "w").await.is_empty(), "not claimable during the backoff");

    let promote = client.prepare(sql::PROMOTE_DUE_STEPS).await.unwrap();
    let row = client.query_one(&promote, &[&100i64]).await.unwrap();
    assert_eq!(row.get::<_, i64>(0), 0);
    let next_due: SystemTime = row.get::<_, Option<SystemTime>>(2).expect("the retry's due time");
    assert!(next_due > SystemTime::now() - Duration::from_secs(1));

    // Once due (waiting by the reported time, not a guess), promotion enqueues it.
    let wait = next_due.duration_since(SystemTime::now()).unwrap_or_default();
    tokio::time::sleep(wait + Duration::from_millis(20)).await;
    let row = client.query_one(&promote, &[&100i64]).await.unwrap();
    assert_eq!(row.get::<_, i64>(0), 1);
    assert_eq!(row.get::<_, Option<Vec<i64>>>(1), Some(vec![template]));
    assert_eq!(row.get::<_, Option<SystemTime>>(2), None, "nothing else scheduled");
    let again = claim(&client, &[template], 64, "w").await.remove(0);
    assert_eq!(again.attempts, 2);
}

#[tokio::test]
async fn a_task_with_run_at_is_not_claimable_before_then() {
    let (_db, client) = setup().await;
    let (template, _) = pg::register_template(&client, "ns", "later", "1.0.0", &[("a", &[])], None).await;
    let run_at = SystemTime::now() + Duration::from_secs(3600);
    let (task, _) = create_with(&client, "ns", "later", None, json!({}), None, Some(run_at), 0).await;
    assert_eq!(step_statuses(&client, task).await, ["pending"]);
    assert!(claim(&client, &[template], 64, "w").await.is_empty());
    let promote = client.prepare(sql::PROMOTE_DUE_STEPS).await.unwrap();
    let row = client.query_one(&promote, &[&100i64]).await.unwrap();
    assert_eq!(row.get::<_, i64>(0), 0);
    let due: SystemTime = row.get::<_, Option<SystemTime>>(2).unwrap();
    let off = due.duration_since(run_at).unwrap_or_else(|e| e.duration());
    assert!(off < Duration::from_millis(1), "next due is the run_at ({off:?} off)");
}

#[tokio::test]
async fn max_in_flight_caps_claims_across_workers() {
    let (db, client) = setup().await;
    let (template, _) = pg::register_template(&client, "ns", "capped", "1.0.0", &[("a", &[])], Some(2)).await;
    for i in 0..5 {
        create(&client, "ns", "capped", None, json!({"i": i})).await;
    }
    async fn capped_claim(db: &pg::TestDatabase, template: i64, worker: &str) -> usize {
        let mut client = db.connect().await;
        let tx = client.transaction().await.unwrap();
        let lock = tx.prepare(sql::LOCK_TEMPLATE_CLAIMS).await.unwrap();
        tx.execute(&lock, &[&template]).await.unwrap();
        let claim = tx.prepare(sql::CLAIM_CAPPED_STEPS).await.unwrap();
        let n = tx.query(&claim, &[&template, &64i64, &worker, &2i64]).await.unwrap().len();
        tx.commit().await.unwrap();
        n
    }
    let claims = futures::future::join_all((0..4).map(|w| {
        let db = db.clone();
        async move { capped_claim(&db, template, &format!("w{w}")).await }
    }))
    .await;
    assert_eq!(claims.iter().sum::<usize>(), 2, "four workers at once take 2 in all: {claims:?}");
    let in_progress: i64 =
        client.query_one("SELECT count(*) FROM tasker.steps WHERE status = 'in_progress'", &[]).await.unwrap().get(0);
    assert_eq!(in_progress, 2);
}

#[tokio::test]
async fn listing_is_newest_first_filtered_and_paged_by_cursor() {
    let (_db, client) = setup().await;
    let one: &[(&str, &[i32])] = &[("a", &[])];
    pg::register_template(&client, "shop", "order", "1.0.0", one, None).await;
    pg::register_template(&client, "shop", "refund", "1.0.0", one, None).await;
    pg::register_template(&client, "mail", "digest", "1.0.0", one, None).await;
    let mut created = Vec::new();
    for name in ["order", "refund", "order", "order", "refund"] {
        created.push(create(&client, "shop", name, None, json!({})).await);
    }
    created.push(create(&client, "mail", "digest", None, json!({})).await);
    client.execute("UPDATE tasker.tasks SET status = 'error' WHERE task_uuid = $1", &[&created[2]]).await.unwrap();

    let top = UNIX_EPOCH + Duration::from_secs(253_402_300_799); // 9999-12-31: above every task
    let list = |rows: Vec<tokio_postgres::Row>| rows.iter().map(|r| r.get::<_, Uuid>(0)).collect::<Vec<_>>();
    let all = client.prepare(sql::LIST_TASKS).await.unwrap();
    let page1 = list(client.query(&all, &[&top, &0i64, &4i64]).await.unwrap());
    let newest: Vec<Uuid> = created.iter().rev().copied().collect();
    assert_eq!(page1, newest[..4]);

    let cursor = client.prepare(sql::LIST_CURSOR).await.unwrap();
    let at = client.query_one(&cursor, &[&page1[3]]).await.unwrap();
    let (created_at, seq): (SystemTime, i64) = (at.get(0), at.get(1));
    let page2 = list(client.query(&all, &[&created_at, &seq, &4i64]).await.unwrap());
    assert_eq!(page2, newest[4..], "the rest, after the cursor");

    let by_status = client.prepare(sql::LIST_TASKS_BY_STATUS).await.unwrap();
    assert_eq!(list(client.query(&by_status, &[&top, &0i64, &50i64, &"error"]).await.unwrap()), [created[2]]);

    let by_template = client.prepare(sql::LIST_TASKS_BY_TEMPLATE).await.unwrap();
    let any: Option<&str> = None;
    let orders = list(client.query(&by_template, &[&top, &0i64, &50i64, &"shop", &"order", &any]).await.unwrap());
    assert_eq!(orders, [created[3], created[2], created[0]]);
    let pending_orders =
        list(client.query(&by_template, &[&top, &0i64, &50i64, &"shop", &"order", &Some("pending")]).await.unwrap());
    assert_eq!(pending_orders, [created[3], created[0]]);

    let by_namespace = client.prepare(sql::LIST_TASKS_BY_NAMESPACE).await.unwrap();
    let shop = list(client.query(&by_namespace, &[&top, &0i64, &50i64, &"shop", &any]).await.unwrap());
    assert_eq!(shop, newest[1..]);
}

#[tokio::test]
async fn retention_deletes_old_finished_tasks_in_batches_with_their_steps() {
    let (_db, client) = setup().await;
    let two: &[(&str, &[i32])] = &[("a", &[]), ("b", &[0])];
    pg::register_template(&client, "ns", "two", "1.0.0", two, None).await;
    let mut tasks = Vec::new();
    for _ in 0..5 {
        tasks.push(create(&client, "ns", "two", None, json!({})).await);
    }
    // Three finished long ago, one just now, one still pending.
    for (task, ago) in tasks.iter().zip(["2 hours", "3 hours", "4 hours", "1 second"]) {
        client
            .execute(
                "UPDATE tasker.tasks SET status = 'complete', completed_at = now() - $2::text::interval WHERE task_uuid = $1",
                &[task, &ago],
            )
            .await
            .unwrap();
    }
    let purge = client.prepare(sql::PURGE_FINISHED).await.unwrap();
    let hour = 3600.0f64;
    assert_eq!(client.execute(&purge, &[&hour, &2i64]).await.unwrap(), 2, "a batch of 2");
    assert_eq!(client.execute(&purge, &[&hour, &2i64]).await.unwrap(), 1);
    assert_eq!(client.execute(&purge, &[&hour, &2i64]).await.unwrap(), 0);
    let left: Vec<Uuid> = client
        .query("SELECT task_uuid FROM tasker.tasks ORDER BY task_seq", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(left, tasks[3..]);
    let orphan_steps: i64 = client
        .query_one("SELECT count(*) FROM tasker.steps s WHERE s.task_uuid <> ALL($1)", &[&left])
        .await
        .unwrap()
        .get(0);
    assert_eq!(orphan_steps, 0, "the deleted tasks' steps went with them");
}

#[tokio::test]
async fn leases_lapse_when_their_worker_stops_heartbeating() {
    let (_db, client) = setup().await;
    let (template, _) = pg::register_template(&client, "ns", "job", "1.0.0", &[("a", &[])], None).await;
    for _ in 0..2 {
        create(&client, "ns", "job", None, json!({})).await;
    }
    client
        .execute(
            "INSERT INTO tasker.workers (worker_id, host, pid, heartbeat_at) VALUES
             ('alive', 'h', 1, now()), ('dead', 'h', 2, now() - interval '1 minute')",
            &[],
        )
        .await
        .unwrap();
    let alive = claim(&client, &[template], 1, "alive").await.remove(0);
    let dead = claim(&client, &[template], 1, "dead").await.remove(0);
    // Claimed "a while ago", as a lapsed lease would be.
    client.execute("UPDATE tasker.steps SET claimed_at = now() - interval '1 minute'", &[]).await.unwrap();

    let lapsed = client.prepare(sql::LAPSED_LEASES).await.unwrap();
    let rows = client.query(&lapsed, &[&5.0f64]).await.unwrap();
    let found: Vec<(Uuid, Uuid, String)> = rows.iter().map(|r| (r.get(1), r.get(2), r.get(3))).collect();
    assert_eq!(found, vec![(dead.step_uuid, dead.event_id, "dead".to_owned())]);
    assert_ne!(alive.step_uuid, dead.step_uuid);
}
