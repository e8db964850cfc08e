//! The PostgreSQL store's connection and schema: migrations applied once (also by two
//! callers at the same moment), a newer or altered schema refused with a clear error, and
//! bad URLs and unreachable servers reported by URL without the password.

mod pg;

use std::time::{Duration, Instant};

use tasker_worker::postgres::migrate::{self, ensure_schema_with, Migration};
use tasker_worker::postgres::{open, Database, DatabaseUrl, PgStoreError, PoolSettings, StoreSettings};

fn database(url: &str) -> Database {
    Database::new(DatabaseUrl::parse(url).expect("test URL parses"), PoolSettings::default()).expect("pool")
}

async fn applied_versions(db: &pg::TestDatabase) -> Vec<(i32, String)> {
    let client = db.connect().await;
    client
        .query("SELECT version, name FROM tasker.schema_migrations ORDER BY version", &[])
        .await
        .expect("schema_migrations readable")
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect()
}

/// (version, name) of every migration compiled in, in order.
fn every_migration() -> Vec<(i32, String)> {
    migrate::MIGRATIONS.iter().map(|m| (m.version, m.name.to_owned())).collect()
}

#[tokio::test]
async fn open_migrates_a_fresh_database_and_then_finds_nothing_to_do() {
    let test_db = pg::server().fresh_database().await;
    let config = StoreSettings::default();

    let (_db, first) = open(&test_db.url, &config).await.expect("first open");
    assert_eq!(
        first.applied,
        vec![
            (1, "initial"),
            (2, "status_counts"),
            (3, "record_results_linear"),
            (4, "completion_writes_in_place"),
            (5, "record_completions")
        ]
    );
    assert_eq!(first.version, migrate::code_version());

    let (_db, second) = open(&test_db.url, &config).await.expect("second open");
    assert!(second.applied.is_empty(), "{second:?}");
    assert_eq!(applied_versions(&test_db).await, every_migration());

    // The schema is really there: every table of the store.
    let client = test_db.connect().await;
    let tables: Vec<String> = client
        .query("SELECT tablename::text FROM pg_tables WHERE schemaname = 'tasker' ORDER BY 1", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        tables,
        [
            "count_flushes",
            "evicted_tasks",
            "finished_tasks",
            "schema_migrations",
            "status_count_changes",
            "status_counts",
            "steps",
            "tasks",
            "template_revisions",
            "template_steps",
            "templates",
            "throughput",
            "workers"
        ]
    );
}

#[tokio::test]
async fn concurrent_migrations_apply_each_version_once() {
    let test_db = pg::server().fresh_database().await;
    // Eight callers at once, each with its own pool (as separate processes would be).
    let runs = (0..8).map(|_| {
        let url = test_db.url.clone();
        tokio::spawn(async move { migrate::ensure_schema(&database(&url)).await })
    });
    let reports: Vec<_> = futures::future::join_all(runs).await.into_iter().map(|r| r.unwrap().unwrap()).collect();
    let appliers = reports.iter().filter(|r| !r.applied.is_empty()).count();
    assert_eq!(appliers, 1, "exactly one caller applies the migrations: {reports:?}");
    assert!(reports.iter().all(|r| r.version == migrate::code_version()));
    assert_eq!(applied_versions(&test_db).await, every_migration());
}

#[tokio::test]
async fn a_schema_newer_than_the_code_is_refused_by_name() {
    let test_db = pg::server().fresh_database().await;
    let config = StoreSettings::default();
    open(&test_db.url, &config).await.expect("migrate");
    let client = test_db.connect().await;
    client
        .execute(
            "INSERT INTO tasker.schema_migrations (version, name, checksum) VALUES (99, 'from_the_future', 'x')",
            &[],
        )
        .await
        .unwrap();

    let err = open(&test_db.url, &config).await.expect_err("a newer schema must be refused");
    assert!(matches!(err, PgStoreError::SchemaTooNew { database: 99, .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("version 99") && text.contains(&format!("up to {}", migrate::code_version())), "{text}");
    assert!(text.contains(&test_db.name), "names the database: {text}");
}

#[tokio::test]
async fn a_migration_changed_after_it_was_applied_is_refused() {
    let test_db = pg::server().fresh_database().await;
    let db = database(&test_db.url);
    let original = [Migration { version: 1, name: "first", sql: "CREATE TABLE tasker.first_table (id int);" }];
    ensure_schema_with(&db, &original).await.expect("first migration");

    let edited = [Migration { version: 1, name: "first", sql: "CREATE TABLE tasker.first_table (id bigint);" }];
    let err = ensure_schema_with(&db, &edited).await.expect_err("an edited migration must be refused");
    assert!(matches!(err, PgStoreError::MigrationChanged { version: 1, .. }), "{err:?}");

    // A new migration on top of an unchanged one applies just the new one.
    let extended =
        [original[0], Migration { version: 2, name: "second", sql: "CREATE TABLE tasker.second_table (id int);" }];
    let report = ensure_schema_with(&db, &extended).await.expect("second migration");
    assert_eq!(report.applied, vec![(2, "second")]);
}

#[tokio::test]
async fn a_failing_migration_leaves_nothing_behind() {
    let test_db = pg::server().fresh_database().await;
    let db = database(&test_db.url);
    let broken = [
        Migration { version: 1, name: "fine", sql: "CREATE TABLE tasker.fine (id int);" },
        Migration { version: 2, name: "broken", sql: "CREATE TABLE tasker.broken (id no_such_type);" },
    ];
    let err = ensure_schema_with(&db, &broken).await.expect_err("broken migration");
    let text = err.to_string();
    assert!(text.contains("migration 2 (broken)") && text.contains("no_such_type"), "{text}");
    // One transaction: the good migration before it is not recorded either.
    let client = test_db.connect().await;
    let exists: bool = client.query_one("SELECT to_regclass('tasker.fine') IS NOT NULL", &[]).await.unwrap().get(0);
    assert!(!exists);
}

#[tokio::test]
async fn an_unreachable_server_is_named_without_the_password() {
    let missing = tempfile::tempdir().unwrap();
    let url = format!("postgresql://app:hunter2@/tasks?host={}", missing.path().display());
    let started = Instant::now();
    let err = open(&url, &StoreSettings::default()).await.expect_err("no server there");
    assert!(started.elapsed() < Duration::from_secs(10), "fails fast: {:?}", started.elapsed());
    assert!(matches!(err, PgStoreError::Unreachable { .. }), "{err:?}");
    assert!(err.is_transient());
    let text = err.to_string();
    assert!(text.contains("postgresql://app:***@/tasks?host="), "{text}");
    assert!(!text.contains("hunter2"), "{text}");

    // TCP: nothing listens on port 1 of loopback.
    let err = open("postgresql://app:hunter2@127.0.0.1:1/tasks?connect_timeout=2", &StoreSettings::default())
        .await
        .expect_err("nothing on port 1");
    let text = err.to_string();
    assert!(text.contains("127.0.0.1:1") && !text.contains("hunter2"), "{text}");
}

#[tokio::test]
async fn an_unknown_database_is_refused_by_name() {
    let server = pg::server();
    let url = server.url_with_password("no_such_database", "hunter2");
    let err = open(&url, &StoreSettings::default()).await.expect_err("no such database");
    assert!(matches!(err, PgStoreError::Refused { .. }), "{err:?}");
    assert!(!err.is_transient());
    let text = err.to_string();
    assert!(text.contains("no_such_database") && text.contains("does not exist"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
}

#[tokio::test]
async fn invalid_urls_and_settings_are_named() {
    let err = open("postgresql://app:hunter2@db:port/x", &StoreSettings::default()).await.unwrap_err().to_string();
    assert!(err.starts_with("invalid database URL postgresql://app:***@db:port/x"), "{err}");
    assert!(!err.contains("hunter2"));

    let err = open("postgresql://app:hunter2@db/x?sslmode=require", &StoreSettings::default()).await.unwrap_err();
    let text = err.to_string();
    assert!(text.contains("postgresql://app:***@db/x?sslmode=require") && text.contains("TLS"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
}

#[tokio::test]
async fn the_status_counts_migration_counts_the_rows_a_database_already_holds() {
    let test_db = pg::server().fresh_database().await;
    let db = database(&test_db.url);
    ensure_schema_with(&db, &migrate::MIGRATIONS[..1]).await.expect("the first migration");
    // Rows written under schema 1 (the columns the tables require, nothing else).
    let client = test_db.connect().await;
    client
        .batch_execute(
            "INSERT INTO tasker.tasks (task_uuid, template_id, revision_id, namespace, name, version, status, context,
                                       correlation_id, trace_id, steps_total)
             SELECT gen_random_uuid(), 1, 1, 'n', 't', '1.0.0', s, '{}', gen_random_uuid(), 'x', 1
             FROM unnest(ARRAY['pending', 'pending', 'complete']) AS s;
             INSERT INTO tasker.steps (task_uuid, step_index, step_uuid, revision_id, priority, task_created_at,
                                       task_seq, status, remaining_deps)
             SELECT t.task_uuid, 0, gen_random_uuid(), 1, 0, t.created_at, t.task_seq,
                    CASE t.status WHEN 'complete' THEN 'complete' ELSE 'enqueued' END, 0
             FROM tasker.tasks t;",
        )
        .await
        .expect("rows of schema 1");
    let report = ensure_schema_with(&db, migrate::MIGRATIONS).await.expect("the rest");
    assert_eq!(report.applied.first().map(|(v, _)| *v), Some(2));
    let counted = pg::status_rows(&client, "SELECT relation, status, n FROM tasker.status_counts ORDER BY 1, 2").await;
    let expected =
        [("steps", "complete", 1), ("steps", "enqueued", 2), ("tasks", "complete", 1), ("tasks", "pending", 2)];
    assert_eq!(counted, expected.map(|(r, s, n)| (r.to_string(), s.to_string(), n)));
}
