//! What only the PostgreSQL store does, on a real server (each test its own database):
//! several stores (processes) sharing one database, the leases of dead workers, claims
//! repeated under the same claim id, tasks created by SQL inside the caller's
//! transaction, and results PostgreSQL cannot store.

mod pg;
mod store_contract;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use serde_json::json;
use uuid::Uuid;

use store_contract::{claim, claim_n, create, names, one_step, record, register, status, success, LINEAR, PATIENCE};
use tasker_worker::postgres::{PostgresStore, StoreSettings};
use tasker_worker::{
    error_types, rules::AttemptDecision, NewTask, PostgresStoreConfig, RecordOutcome, StepExecutionResult, StepStatus,
    StoreError, TaskStatus, TaskStore, WorkerRegistration,
};

const TIMEOUT: Duration = Duration::from_secs(30);

async fn store_on(url: &str) -> Arc<PostgresStore> {
    let config = PostgresStoreConfig { poll_interval_ms: 200, ..PostgresStoreConfig::default() };
    let store = PostgresStore::connect(url, StoreSettings::from_config(&config, Default::default()))
        .await
        .unwrap_or_else(|e| panic!("the store did not open on {url}: {e}"));
    Arc::new(store)
}

async fn fresh_store() -> (pg::TestDatabase, Arc<PostgresStore>) {
    let db = pg::server().fresh_database().await;
    let store = store_on(&db.url).await;
    (db, store)
}

fn worker(id: &str) -> WorkerRegistration {
    WorkerRegistration {
        worker_id: id.into(),
        host: "test-host".into(),
        pid: 1,
        started_at: SystemTime::now(),
        concurrency: 4,
        in_flight: 0,
    }
}

async fn claim_as(
    store: &dyn TaskStore,
    worker_id: &str,
    claim_id: Uuid,
    max: usize,
) -> Vec<tasker_worker::StepExecutionEvent> {
    let mut out = Vec::new();
    store.claim(worker_id, claim_id, max, TIMEOUT, &mut out).await.expect("claim works");
    out
}

#[tokio::test]
async fn a_task_created_by_one_process_is_claimed_by_the_process_that_loaded_its_template() {
    let db = pg::server().fresh_database().await;
    let (client, worker_a, worker_b) = (store_on(&db.url).await, store_on(&db.url).await, store_on(&db.url).await);
    let orders = register(worker_a.as_ref(), &one_step("shop", "order", "1.0.0")).await;
    register(worker_b.as_ref(), &one_step("shop", "refund", "1.0.0")).await;

    // The client registered nothing: the template is in the database.
    let task = create(client.as_ref(), &orders, json!({"order": 42})).await;
    assert!(claim(worker_b.as_ref(), 10).await.is_empty(), "worker B claimed a step of a template it never loaded");
    assert!(claim(client.as_ref(), 10).await.is_empty(), "a process with no templates claims nothing");
    let event = claim_n(worker_a.as_ref(), 1).await.remove(0);
    assert_eq!((event.task_uuid, event.payload.task.context.as_ref()), (task, &json!({"order": 42})));

    // The client sees it run, then waits for it across processes (woken by NOTIFY).
    assert_eq!(status(client.as_ref(), task).await.status, TaskStatus::InProgress);
    let waiter = {
        let client = Arc::clone(&client);
        tokio::spawn(async move { tasker_worker::wait_for_task(client.as_ref(), task, PATIENCE).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    record(worker_a.as_ref(), success(&event, json!({"paid": true}))).await;
    let done = waiter.await.unwrap().unwrap().expect("the task finished in time");
    assert_eq!(done.status, TaskStatus::Complete);
    assert_eq!(done.step("only").unwrap().result.as_deref(), Some(&json!({"paid": true})));
    let templates = client.templates().await.unwrap();
    let listed: Vec<String> = templates.iter().map(|t| format!("{}/{}", t.namespace, t.name)).collect();
    assert_eq!(listed, ["shop/order", "shop/refund"], "every process's templates are listed everywhere");
}

#[tokio::test]
async fn a_dead_workers_steps_fail_as_worker_lost_and_run_again_elsewhere() {
    let db = pg::server().fresh_database().await;
    let (dead, alive) = (store_on(&db.url).await, store_on(&db.url).await);
    let t = register(dead.as_ref(), LINEAR).await;
    register(alive.as_ref(), LINEAR).await;
    let task = create(dead.as_ref(), &t, json!({})).await;
    dead.heartbeat(&worker("w-dead")).await.unwrap();
    alive.heartbeat(&worker("w-alive")).await.unwrap();
    let lost = claim_as(dead.as_ref(), "w-dead", Uuid::new_v4(), 1).await.remove(0);
    // A backlog that became ready after the lost step, and one that became ready at the
    // same instant (one transaction): the lost step keeps its place ahead of both.
    for _ in 0..3 {
        create(alive.as_ref(), &t, json!({})).await;
    }
    let client = db.connect().await;
    client
        .batch_execute(
            "BEGIN; UPDATE tasker.steps SET ready_at = (SELECT ready_at FROM tasker.steps WHERE status = 'in_progress') \
             WHERE status = 'enqueued'; COMMIT",
        )
        .await
        .expect("the backlog made ready at the lost step's instant");

    // Heartbeats go on for the live worker only.
    let limit = Duration::from_millis(400);
    assert_eq!(alive.expire_dead_workers(limit).await.unwrap().len(), 0, "nobody is late yet");
    let until = Instant::now() + limit + Duration::from_millis(200);
    while Instant::now() < until {
        alive.heartbeat(&worker("w-alive")).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(alive.expire_dead_workers(limit).await.unwrap().len(), 1);
    let workers: Vec<String> = alive.workers().await.unwrap().into_iter().map(|w| w.worker_id).collect();
    assert_eq!(workers, ["w-alive"], "the dead worker is forgotten");

    let v = status(alive.as_ref(), task).await;
    let step = v.step("a").unwrap();
    assert_eq!(step.status, StepStatus::Enqueued, "ready again at once");
    assert_eq!(step.error.as_ref().unwrap().error_type, error_types::WORKER_LOST);
    assert!(step.error.as_ref().unwrap().message.contains("w-dead"), "{:?}", step.error);
    assert_eq!(step.history.last().unwrap().outcome, "worker_lost");

    let again = claim_n(alive.as_ref(), 1).await.remove(0);
    assert_eq!((again.task_uuid, again.payload.workflow_step.name.as_str()), (task, "a"), "claimed before the backlog");
    assert_eq!(again.payload.workflow_step.attempts, 2, "the lost attempt counts");
    // The dead worker's late result is fenced off.
    assert!(record(dead.as_ref(), success(&lost, json!("late"))).await.is_stale());
    assert!(!record(alive.as_ref(), success(&again, json!("a"))).await.is_stale());
    assert_eq!(step_status_of(alive.as_ref(), task, "b").await, StepStatus::Enqueued);
}

async fn step_status_of(store: &dyn TaskStore, task: Uuid, name: &str) -> StepStatus {
    status(store, task).await.step(name).unwrap().status
}

#[tokio::test]
async fn a_repeated_claim_id_answers_the_steps_still_leased_under_it() {
    let (_db, store) = fresh_store().await;
    let t = register(store.as_ref(), &one_step("again", "one", "1.0.0")).await;
    for _ in 0..3 {
        create(store.as_ref(), &t, json!({})).await;
    }
    let claim_id = Uuid::new_v4();
    let first = claim_as(store.as_ref(), "w-1", claim_id, 2).await;
    assert_eq!(first.len(), 2);
    let repeated = claim_as(store.as_ref(), "w-1", claim_id, 5).await;
    let ids = |events: &[tasker_worker::StepExecutionEvent]| {
        let mut ids: Vec<Uuid> = events.iter().map(|e| e.event_id).collect();
        ids.sort();
        ids
    };
    assert_eq!(ids(&repeated), ids(&first), "the same steps, same event ids, nothing new");
    assert_eq!(repeated[0].payload.workflow_step.attempts, 1, "a repeat is not another attempt");

    record(store.as_ref(), success(&first[0], json!(1))).await;
    let rest = claim_as(store.as_ref(), "w-1", claim_id, 5).await;
    assert_eq!(ids(&rest), ids(&first[1..]), "only what is still leased under it");
    let third = claim_as(store.as_ref(), "w-1", Uuid::new_v4(), 5).await;
    assert_eq!(third.len(), 1, "a new claim id claims the rest");
    assert!(!ids(&first).contains(&third[0].event_id));
}

#[tokio::test]
async fn a_result_postgresql_cannot_store_is_recorded_as_a_failed_attempt_and_the_batch_goes_on() {
    let (_db, store) = fresh_store().await;
    let t = register(store.as_ref(), &one_step("nul", "one", "1.0.0")).await;
    let (bad_task, good_task) =
        (create(store.as_ref(), &t, json!({})).await, create(store.as_ref(), &t, json!({})).await);
    let events = claim_n(store.as_ref(), 2).await;
    let event_of = |task: Uuid| events.iter().find(|e| e.task_uuid == task).unwrap();
    let mut batch = vec![
        success(event_of(bad_task), json!({"text": "a\u{0}b"})),
        success(event_of(good_task), json!({"text": "fine"})),
    ];
    let outcomes = store.record(&mut batch).await.expect("the batch is recorded");
    assert!(batch.is_empty());
    assert_eq!(outcomes[0].decision(), Some(AttemptDecision::Fail));
    assert_eq!(outcomes[1].decision(), Some(AttemptDecision::Complete));
    let bad = status(store.as_ref(), bad_task).await;
    assert_eq!(bad.status, TaskStatus::Error);
    let error = bad.step("only").unwrap().error.clone().unwrap();
    assert_eq!(error.error_type, "result_not_storable");
    assert!(error.message.contains("$.text") && error.message.contains("NUL"), "{}", error.message);
    assert_eq!(status(store.as_ref(), good_task).await.status, TaskStatus::Complete);

    // A NUL in an error's text is kept, replaced.
    let task = create(store.as_ref(), &t, json!({})).await;
    let event = claim_n(store.as_ref(), 1).await.remove(0);
    let failure = StepExecutionResult::failure(tasker_worker::StepExecutionError::new("bad\u{0}byte", "Boom", false))
        .with_identity(event.identity());
    assert!(matches!(record(store.as_ref(), failure).await, RecordOutcome::Recorded { .. }));
    let recorded = status(store.as_ref(), task).await.step("only").unwrap().error.clone().unwrap();
    assert_eq!(recorded.message, "bad\u{fffd}byte");

    // A context with a NUL is refused, naming where.
    let refused = store.create_task(NewTask::new("nul", "one", json!({"k": ["\u{0}"]}))).await;
    assert!(matches!(&refused, Err(StoreError::InvalidContext(m)) if m.contains("$.k[0]")), "{refused:?}");
}

#[tokio::test]
async fn tasker_create_task_exists_only_if_the_callers_transaction_commits_and_wakes_workers_then() {
    let (db, store) = fresh_store().await;
    let t = register(store.as_ref(), &one_step("app", "signup", "1.0.0")).await;
    let mut client = db.connect().await;

    let rolled_back: Uuid = {
        let transaction = client.transaction().await.unwrap();
        let row = transaction
            .query_one("SELECT tasker.create_task('app', 'signup', NULL, '{\"user\": 1}'::jsonb)", &[])
            .await
            .unwrap();
        transaction.rollback().await.unwrap();
        row.get(0)
    };
    assert!(matches!(store.task_status(rolled_back).await, Err(StoreError::TaskNotFound(_))));
    assert!(claim(store.as_ref(), 10).await.is_empty(), "a rolled-back task left a step behind");

    let transaction = client.transaction().await.unwrap();
    let committed: Uuid = transaction
        .query_one("SELECT tasker.create_task('app', 'signup', NULL, '{\"user\": 2}'::jsonb)", &[])
        .await
        .unwrap()
        .get(0);
    // Not visible, and no wake-up, before the commit.
    assert!(matches!(store.task_status(committed).await, Err(StoreError::TaskNotFound(_))));
    let feed = Arc::clone(store.feed());
    // Wake-ups from before (the listener's first connect) are kept as a permit: use them up.
    while tokio::time::timeout(Duration::from_millis(50), feed.ready()).await.is_ok() {}
    let woken = tokio::spawn(async move {
        let started = Instant::now();
        tokio::time::timeout(PATIENCE, feed.ready()).await.map(|_| started.elapsed())
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!woken.is_finished(), "a worker woke before the commit");
    transaction.commit().await.unwrap();
    let after = woken.await.unwrap().expect("the commit woke the worker");
    assert!(after >= Duration::from_millis(100));
    let event = claim_n(store.as_ref(), 1).await.remove(0);
    assert_eq!((event.task_uuid, event.payload.task.context.as_ref()), (committed, &json!({"user": 2})));
    assert_eq!(status(store.as_ref(), committed).await.version, t.version);

    // SQL callers get the same errors, with what exists.
    let unknown = client.query_one("SELECT tasker.create_task('app', 'nope', NULL, '{}')", &[]).await.unwrap_err();
    let db_error = unknown.as_db_error().expect("a server error");
    assert_eq!((db_error.code().code(), db_error.detail()), ("TK002", Some("signup")));
}

#[tokio::test]
async fn steps_that_became_ready_together_are_claimed_in_template_order() {
    // Two roots of one task become ready in the same statement: claimed in template order.
    let (_db, store) = fresh_store().await;
    let yaml = "\
name: two_roots
namespace_name: order
version: 1.0.0
steps:
  - { name: b_first, handler: { callable: B } }
  - { name: a_second, handler: { callable: A } }
";
    let t = register(store.as_ref(), yaml).await;
    create(store.as_ref(), &t, json!({})).await;
    let events = claim_n(store.as_ref(), 2).await;
    let in_order: Vec<&str> = events.iter().map(|e| e.payload.workflow_step.name.as_str()).collect();
    assert_eq!(in_order, ["b_first", "a_second"]);
    assert_eq!(names(&events), ["a_second", "b_first"]);
}

/// The counts `stats` reads: (task status, n) for every status, then steps in flight,
/// ready and waiting for a retry.
async fn counts(store: &dyn TaskStore) -> (Vec<(TaskStatus, u64)>, [u64; 3]) {
    let stats = store.stats().await.expect("stats");
    (stats.tasks, [stats.steps_in_flight, stats.steps_ready, stats.steps_waiting_for_retry])
}

#[tokio::test]
async fn status_counts_follow_every_writer_and_stay_the_same_when_folded() {
    let (db, store) = fresh_store().await;
    let t = register(store.as_ref(), LINEAR).await;
    let client = db.connect().await;
    let changes = || async {
        client.query_one("SELECT count(*) FROM tasker.status_count_changes", &[]).await.unwrap().get::<_, i64>(0)
    };
    let expect = |pending: u64, in_progress: u64, complete: u64, steps: [u64; 3]| {
        (
            vec![
                (TaskStatus::Pending, pending),
                (TaskStatus::InProgress, in_progress),
                (TaskStatus::Complete, complete),
                (TaskStatus::Error, 0),
                (TaskStatus::Cancelled, 0),
            ],
            steps,
        )
    };

    // Four tasks through the store; one runs its first step (its row still reads
    // 'pending': it counts as in progress), another finishes its first step.
    let first = create(store.as_ref(), &t, json!({})).await;
    for _ in 0..3 {
        create(store.as_ref(), &t, json!({})).await;
    }
    let running = claim_n(store.as_ref(), 2).await;
    assert_eq!(running[0].task_uuid, first);
    record(store.as_ref(), success(&running[0], json!("a"))).await;
    assert_eq!(counts(store.as_ref()).await, expect(2, 2, 0, [1, 3, 0]));
    assert!(changes().await > 0, "the writers appended their changes");

    // Every ready step runs, twice over: the first task completes (its third step ran),
    // the last two are at their last step, the second still runs its first.
    for _ in 0..2 {
        for event in claim_n(store.as_ref(), 3).await {
            let name = event.payload.workflow_step.name.clone();
            record(store.as_ref(), success(&event, json!(name))).await;
        }
    }
    let view = status(store.as_ref(), first).await;
    assert_eq!(view.status, TaskStatus::Complete, "{view:?}");
    assert_eq!(counts(store.as_ref()).await, expect(0, 3, 1, [1, 2, 0]));
    // Retention removes it.
    client.batch_execute("UPDATE tasker.finished_tasks SET completed_at = now() - interval '30 days'").await.unwrap();
    assert_eq!(store.purge_finished().await.unwrap(), 1);
    assert_eq!(counts(store.as_ref()).await, expect(0, 3, 0, [1, 2, 0]));

    // A burst created by SQL in one transaction: a thousand more pending tasks. A
    // transaction's inserts are appended once, at its commit (a row per status).
    store.fold_counts().await.expect("fold");
    assert_eq!(changes().await, 0);
    client
        .batch_execute(
            "BEGIN; SELECT count(tasker.create_task('shapes', 'linear', NULL, '{}')) FROM generate_series(1, 1000); \
             COMMIT",
        )
        .await
        .unwrap();
    assert_eq!(changes().await, 3, "tasks pending, steps enqueued, steps pending");
    // What a transaction or a savepoint rolled back is not counted.
    client
        .batch_execute(
            "BEGIN; SELECT tasker.create_task('shapes', 'linear', NULL, '{}'); ROLLBACK; \
             BEGIN; SELECT tasker.create_task('shapes', 'linear', NULL, '{}'); SAVEPOINT s; \
             SELECT count(tasker.create_task('shapes', 'linear', NULL, '{}')) FROM generate_series(1, 5); \
             ROLLBACK TO s; COMMIT",
        )
        .await
        .unwrap();
    let before = counts(store.as_ref()).await;
    assert_eq!(before, expect(1001, 3, 0, [1, 1003, 0]));
    store.fold_counts().await.expect("fold");
    assert_eq!(changes().await, 0, "everything was folded");
    assert_eq!(counts(store.as_ref()).await, before, "folding changed a count");
    // What the triggers counted is what the tables hold.
    let truth = pg::status_rows(
        &client,
        "SELECT 'tasks', status, count(*) FROM tasker.tasks GROUP BY status \
         UNION ALL SELECT 'steps', status, count(*) FROM tasker.steps GROUP BY status ORDER BY 1, 2",
    )
    .await;
    let counted =
        pg::status_rows(&client, "SELECT relation, status, n FROM tasker.status_counts WHERE n <> 0 ORDER BY 1, 2")
            .await;
    assert_eq!(counted, truth);
}

#[tokio::test]
async fn store_connections_start_with_the_planner_settings_after_the_urls_own_options() {
    let db = pg::server().fresh_database().await;
    let url = format!("{}&options=-c%20work_mem%3D7MB", db.url);
    let store = store_on(&url).await;
    let client = store.database().client().await.expect("a pooled connection");
    let show = |name: &'static str| {
        let client = &client;
        async move { client.query_one(format!("SHOW {name}").as_str(), &[]).await.unwrap().get::<_, String>(0) }
    };
    assert_eq!(show("enable_bitmapscan").await, "off", "claims walk steps_claim in order");
    assert_eq!(show("jit").await, "off");
    assert_eq!(show("work_mem").await, "7MB", "the URL's own options are kept");
}

#[tokio::test]
async fn claims_commit_without_waiting_for_the_wal_flush_and_leave_the_session_as_it_was() {
    use tasker_worker::postgres::sql::{CLAIM_STEPS, LOCK_TEMPLATE_CLAIMS};
    let (db, store) = fresh_store().await;
    let t = register(store.as_ref(), &one_step("app", "async", "1.0.0")).await;
    let task = create(store.as_ref(), &t, json!({})).await;
    let mut client = db.connect().await;
    let revision: i64 = client
        .query_one("SELECT current_revision_id FROM tasker.templates WHERE name = 'async'", &[])
        .await
        .unwrap()
        .get(0);
    let show = "SELECT current_setting('synchronous_commit')";

    for label in ["CLAIM_STEPS", "LOCK_TEMPLATE_CLAIMS"] {
        let transaction = client.transaction().await.unwrap();
        let before: String = transaction.query_one(show, &[]).await.unwrap().get(0);
        assert_eq!(before, "on", "{label}: the server's default");
        if label == "CLAIM_STEPS" {
            let rows =
                transaction.query(CLAIM_STEPS, &[&vec![revision], &10i64, &"w-async", &Uuid::new_v4()]).await.unwrap();
            let claimed: Vec<Uuid> = rows.iter().filter_map(|r| r.get::<_, Option<Uuid>>(0)).collect();
            assert_eq!(claimed, vec![task], "the claim took the task's step");
        } else {
            transaction.execute(LOCK_TEMPLATE_CLAIMS, &[&7i64]).await.unwrap();
        }
        let during: String = transaction.query_one(show, &[]).await.unwrap().get(0);
        assert_eq!(during, "off", "{label} commits asynchronously");
        transaction.commit().await.unwrap();
        let after: String = client.query_one(show, &[]).await.unwrap().get(0);
        assert_eq!(after, "on", "{label}: only its own transaction commits asynchronously");
    }
    // The asynchronous commit is a commit: the step is claimed for every reader.
    assert_eq!(status(store.as_ref(), task).await.status, TaskStatus::InProgress);
}

/// (vacuums, dead row versions) of the steps table, as the statistics count them.
async fn steps_stats(client: &tokio_postgres::Client) -> (i64, i64) {
    let row = client
        .query_one(
            "SELECT vacuum_count, n_dead_tup FROM pg_stat_user_tables WHERE relid = 'tasker.steps'::regclass",
            &[],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1))
}

#[tokio::test]
async fn a_store_vacuums_the_steps_table_once_its_dead_rows_pass_the_threshold() {
    let db = pg::server().fresh_database().await;
    let eager = {
        let config = PostgresStoreConfig { vacuum_dead_steps: 50, ..PostgresStoreConfig::default() };
        let settings = StoreSettings::from_config(&config, Default::default());
        Arc::new(PostgresStore::connect(&db.url, settings).await.expect("the store opens"))
    };
    let patient = store_on(&db.url).await;
    let client = db.connect().await;
    // Autovacuum must not come first (it would leave nothing to the store).
    client.batch_execute("ALTER TABLE tasker.steps SET (autovacuum_enabled = false)").await.unwrap();
    let t = register(eager.as_ref(), &one_step("ops", "tidy", "1.0.0")).await;
    for _ in 0..60 {
        create(eager.as_ref(), &t, json!({})).await;
    }
    for event in claim_n(eager.as_ref(), 60).await {
        record(eager.as_ref(), success(&event, json!(1))).await;
    }
    // A claim and a result leave a dead version each: 120. The statistics arrive within
    // about a second of the writers going idle (or ten, when they flushed just before).
    let deadline = Instant::now() + Duration::from_secs(20);
    let dead = loop {
        // The default threshold (100,000) is far away: that store leaves the table alone.
        assert_eq!(patient.reclaim_dead_steps().await.expect("reclaim"), None);
        if let Some(dead) = eager.reclaim_dead_steps().await.expect("reclaim") {
            break dead;
        }
        assert!(Instant::now() < deadline, "the store never vacuumed 120 dead step versions (threshold 50)");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert!(dead >= 50, "vacuumed at {dead} dead versions, below the threshold of 50");
    let (vacuums, left) = steps_stats(&client).await;
    assert_eq!(vacuums, 1, "the vacuum the store reported did not run");
    assert!(left < 50, "{left} dead versions are left after the vacuum");
    // Nothing to reclaim now.
    assert_eq!(eager.reclaim_dead_steps().await.expect("reclaim"), None);
}

#[tokio::test]
async fn a_vacuum_runs_on_its_own_connection_and_leaves_the_pool_to_the_worker() {
    let db = pg::server().fresh_database().await;
    let client = db.connect().await;
    // A vacuum in this database sleeps about 400 ms per page it dirties: seconds for this
    // table, long enough to call the store meanwhile. (Set before the store connects, so
    // that its pooled connection would vacuum as slowly.)
    client
        .batch_execute(
            "DO $$ BEGIN
                 EXECUTE format('ALTER DATABASE %I SET vacuum_cost_delay = 100', current_database());
                 EXECUTE format('ALTER DATABASE %I SET vacuum_cost_limit = 1', current_database());
             END $$",
        )
        .await
        .unwrap();
    // One pooled connection: a vacuum that borrowed it would hold up every other call.
    let store = {
        let config = PostgresStoreConfig { vacuum_dead_steps: 50, pool_size: 1, ..PostgresStoreConfig::default() };
        let settings = StoreSettings::from_config(&config, Default::default());
        Arc::new(PostgresStore::connect(&db.url, settings).await.expect("the store opens"))
    };
    // Autovacuum must not come first.
    client.batch_execute("ALTER TABLE tasker.steps SET (autovacuum_enabled = false)").await.unwrap();
    let t = register(store.as_ref(), &one_step("ops", "sweep", "1.0.0")).await;
    let mut tasks = Vec::new();
    for _ in 0..60 {
        tasks.push(create(store.as_ref(), &t, json!({})).await);
    }
    for event in claim_n(store.as_ref(), 60).await {
        record(store.as_ref(), success(&event, json!(1))).await;
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if steps_stats(&client).await.1 >= 100 {
            break;
        }
        assert!(Instant::now() < deadline, "the statistics never counted the 120 dead step versions");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let vacuuming = tokio::spawn({
        let store = Arc::clone(&store);
        async move { store.reclaim_dead_steps().await }
    });
    let running = "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'VACUUM%' AND state = 'active' \
                   AND pid <> pg_backend_pid()";
    let deadline = Instant::now() + Duration::from_secs(10);
    while client.query_one(running, &[]).await.unwrap().get::<_, i64>(0) == 0 {
        assert!(!vacuuming.is_finished() && Instant::now() < deadline, "the vacuum never started (or ended at once)");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The store answers while its vacuum runs: the pool's one connection is free.
    let answered = tokio::time::timeout(Duration::from_secs(1), status(store.as_ref(), tasks[0])).await;
    assert_eq!(answered.expect("a status read waited for the vacuum").status, TaskStatus::Complete);
    assert_eq!(client.query_one(running, &[]).await.unwrap().get::<_, i64>(0), 1, "the vacuum was still running");
    let dead = vacuuming.await.unwrap().expect("the vacuum succeeds");
    assert!(dead.is_some_and(|dead| dead >= 50), "the store reported no vacuum: {dead:?}");
}
