//! The PostgreSQL store through a server outage: the pool hands out fresh connections
//! once the server is back (no panic, a transient error meanwhile, a growing retry
//! delay); the change listener reconnects by itself, says so with a Resync and delivers
//! notifications sent after the restart; a batch of results recorded while the server is
//! down is kept and recorded once it is back; and a worker running through a restart
//! finishes every task, each step once. Its own test binary: it stops the server, which
//! would disturb the other PostgreSQL tests; its tests take turns (`one_at_a_time`).

mod pg;
mod store_contract;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::json;
use tokio::sync::mpsc;

use store_contract::{claim_n, create, one_step, register, status, success};
use tasker_worker::postgres::listener::{ChangeListener, ListenerSettings, Notice};
use tasker_worker::postgres::{open, Database, PostgresStore, StoreSettings};
use tasker_worker::{
    BootstrapRequest, HandlerDispatchConfig, HandlerRegistry, NewTask, PostgresStoreConfig, StoreError, System,
    TaskSequenceStep, TaskStatus, TaskStore, WaitOutcome,
};

/// The tests of this binary stop the one server: one at a time.
fn one_at_a_time() -> MutexGuard<'static, ()> {
    static TURN: Mutex<()> = Mutex::new(());
    TURN.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

const PATIENCE: Duration = Duration::from_secs(20);

async fn select_one(db: &Database) -> Result<i32, tasker_worker::postgres::PgStoreError> {
    let client = db.client().await?;
    let statement = client.prepare_cached("SELECT 1").await.map_err(|e| db.failed("select 1", &e))?;
    let row = client.query_one(&statement, &[]).await.map_err(|e| db.failed("select 1", &e))?;
    Ok(row.get(0))
}

/// Retries `select_one` with the pool's own delay until it succeeds; returns the failures.
async fn until_reachable(db: &Database) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let mut failures = Vec::new();
    loop {
        match select_one(db).await {
            Ok(1) => return failures,
            Ok(other) => panic!("SELECT 1 answered {other}"),
            Err(err) => {
                assert!(err.is_transient(), "an outage is transient: {err}");
                failures.push(err.to_string());
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "not reachable again within {PATIENCE:?}: {failures:?}"
                );
                tokio::time::sleep(db.retry_delay()).await;
            }
        }
    }
}

#[tokio::test]
// The guard only orders this binary's tests, each on a runtime of its own: nothing on this
// runtime waits for it while it is held.
#[allow(clippy::await_holding_lock)]
async fn the_pool_and_the_listener_come_back_after_an_outage() {
    let _turn = one_at_a_time();
    let server = pg::server();
    let test_db = server.fresh_database().await;
    let config = StoreSettings::from_config(
        &PostgresStoreConfig { reconnect_initial_ms: 20, reconnect_max_ms: 400, ..PostgresStoreConfig::default() },
        Default::default(),
    );
    let (db, _) = open(&test_db.url, &config).await.expect("open");
    assert_eq!(select_one(&db).await.expect("before the outage"), 1);

    let (tx, mut notices) = mpsc::unbounded_channel();
    let settings = ListenerSettings {
        reconnect_initial: Duration::from_millis(20),
        reconnect_max: Duration::from_millis(400),
        ..ListenerSettings::default()
    };
    let listener = ChangeListener::spawn(
        db.url().clone(),
        settings,
        Arc::new(move |notice| {
            let _ = tx.send(notice);
        }),
    );
    assert_eq!(tokio::time::timeout(PATIENCE, notices.recv()).await.unwrap(), Some(Notice::Resync));

    // Down: calls fail with a transient error naming the database, and the suggested
    // delay grows with the failures.
    server.pause();
    let first = select_one(&db).await.expect_err("the server is down");
    assert!(first.is_transient(), "{first}");
    assert!(first.to_string().contains(&test_db.name), "{first}");
    let early = db.retry_delay();
    for _ in 0..4 {
        let _ = select_one(&db).await;
    }
    assert!(db.retry_delay() > early, "the delay grows: {early:?} -> {:?}", db.retry_delay());

    server.resume();
    until_reachable(&db).await;

    // The listener noticed, reconnected and says everything may have changed...
    let resync = tokio::time::timeout(PATIENCE, async {
        loop {
            if notices.recv().await == Some(Notice::Resync) {
                return;
            }
        }
    })
    .await;
    assert!(resync.is_ok(), "the listener reconnected within {PATIENCE:?}");
    // ...and receives what is sent after the restart.
    let client = test_db.connect().await;
    client.execute("SELECT pg_notify('tasker_steps_ready', '7')", &[]).await.unwrap();
    let notice = tokio::time::timeout(PATIENCE, notices.recv()).await.expect("a notification after the restart");
    assert_eq!(notice, Some(Notice::StepsReady { template_id: Some(7) }));
    listener.stop().await;

    // A restart (connections broken, server back at once) costs at most a failed call.
    server.restart();
    let failures = until_reachable(&db).await;
    assert!(failures.len() <= db.pool_status().0 + 1, "{failures:?}");
}

fn fast_reconnect() -> StoreSettings {
    StoreSettings::from_config(
        &PostgresStoreConfig { reconnect_initial_ms: 20, reconnect_max_ms: 400, ..PostgresStoreConfig::default() },
        Default::default(),
    )
}

/// Records `batch` until the store takes it, asserting every failure is transient and
/// leaves the batch whole; returns how many tries failed.
async fn record_through(store: &dyn TaskStore, batch: &mut Vec<tasker_worker::StepExecutionResult>) -> usize {
    let size = batch.len();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let mut failures = 0;
    loop {
        match store.record(batch).await {
            Ok(outcomes) => {
                assert!(outcomes.iter().all(|o| !o.is_stale()), "every result was recorded once: {outcomes:?}");
                return failures;
            }
            Err(error) => {
                assert!(matches!(error, StoreError::Unavailable { .. }), "an outage is Unavailable: {error}");
                assert_eq!(batch.len(), size, "a failed record keeps the batch");
                failures += 1;
                assert!(tokio::time::Instant::now() < deadline, "not recorded within {PATIENCE:?}: {error}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::await_holding_lock)] // as above: the guard orders this binary's tests
async fn results_recorded_while_the_server_is_down_are_kept_and_recorded_once_it_is_back() {
    let _turn = one_at_a_time();
    let server = pg::server();
    let db = server.fresh_database().await;
    let store = PostgresStore::connect(&db.url, fast_reconnect()).await.expect("open");
    let t = register(&store, &one_step("outage", "one", "1.0.0")).await;
    let tasks: Vec<_> = futures::future::join_all((0..6).map(|_| create(&store, &t, json!({})))).await;
    let events = claim_n(&store, 6).await;

    // Down: the batch stays whole and the error says Unavailable.
    server.pause();
    let mut batch: Vec<_> = events[..3].iter().map(|e| success(e, json!("kept"))).collect();
    let error = store.record(&mut batch).await.expect_err("the server is down");
    assert!(error.is_transient(), "{error}");
    assert!(error.to_string().contains(&db.name), "the error names the database: {error}");
    assert_eq!(batch.len(), 3);
    server.resume();
    record_through(&store, &mut batch).await;

    // A restart while recording: the first try may lose its connection; fencing makes the
    // repeat safe, and each result counts once.
    let mut batch: Vec<_> = events[3..].iter().map(|e| success(e, json!("kept"))).collect();
    server.restart();
    record_through(&store, &mut batch).await;
    for task in tasks {
        let v = status(&store, task).await;
        assert_eq!((v.status, v.step("only").unwrap().result.as_deref()), (TaskStatus::Complete, Some(&json!("kept"))));
    }
}

#[test]
fn a_worker_running_through_a_server_restart_finishes_every_task_running_each_step_once() {
    let _turn = one_at_a_time();
    let server = pg::server();
    let url = tokio::runtime::Runtime::new().unwrap().block_on(server.fresh_database()).url;
    let request = BootstrapRequest { database_url: Some(url), ..BootstrapRequest::default() };
    let system = System::build(&request).expect("a system on PostgreSQL");
    system
        .register_template(store_contract::template(&one_step("restart", "count", "1.0.0")).as_ref().clone())
        .unwrap();
    let runs: Arc<Mutex<HashMap<uuid::Uuid, usize>>> = Arc::default();
    let mut registry = HandlerRegistry::new();
    let seen = Arc::clone(&runs);
    registry.register("Only", move |step: TaskSequenceStep| {
        let seen = Arc::clone(&seen);
        async move {
            *seen.lock().unwrap().entry(step.task.task_uuid).or_default() += 1;
            tokio::time::sleep(Duration::from_millis(20)).await;
            Ok(json!({"n": step.task.context["n"]}))
        }
    });
    let dispatch = HandlerDispatchConfig { max_concurrent_handlers: 8, ..HandlerDispatchConfig::default() };
    system.start_rust_worker(dispatch, registry).expect("the worker starts");
    let create = |n: i64| {
        let task = NewTask::new("restart", "count", json!({ "n": n }));
        system.run_blocking(system.create_task(task), None).unwrap().expect("created").task_uuid
    };
    let tasks: Vec<_> = (0..300).map(create).collect();
    // Mid-run (a fifth of the steps ran): down for a moment, then back.
    let started = std::time::Instant::now();
    while runs.lock().unwrap().len() < tasks.len() / 5 {
        assert!(started.elapsed() < PATIENCE, "the worker did not get going");
        std::thread::sleep(Duration::from_millis(5));
    }
    server.pause();
    std::thread::sleep(Duration::from_millis(700));
    server.resume();
    for (n, task) in tasks.iter().enumerate() {
        match system.wait_for_task_blocking(*task, PATIENCE, &|| false) {
            Ok(WaitOutcome::Finished(view)) => {
                assert_eq!(view.status, TaskStatus::Complete, "{view:?}");
                assert_eq!(view.step("only").unwrap().result.as_deref(), Some(&json!({ "n": n })));
            }
            other => panic!("task {n} did not finish after the restart: {other:?}"),
        }
    }
    let runs = runs.lock().unwrap();
    assert_eq!(runs.len(), tasks.len());
    assert!(
        runs.values().all(|&n| n == 1),
        "a step ran twice: {:?}",
        runs.iter().filter(|(_, n)| **n > 1).collect::<Vec<_>>()
    );
    let report = system.stop_worker(Duration::from_secs(5)).expect("a worker ran");
    assert_eq!(report.unfinished_reported, 0);
    assert!(system.counters().snapshot().store_retries > 0, "the outage was noticed and retried");
}
