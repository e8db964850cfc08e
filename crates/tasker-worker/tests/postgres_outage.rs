//! The PostgreSQL store's connections through a server outage: the pool hands out fresh
//! connections once the server is back (no panic, a transient error meanwhile, a growing
//! retry delay), and the change listener reconnects by itself, says so with a Resync and
//! delivers notifications sent after the restart. Its own test binary: it stops the
//! server, which would disturb the other PostgreSQL tests.

mod pg;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use tasker_worker::postgres::listener::{ChangeListener, ListenerSettings, Notice};
use tasker_worker::postgres::{open, Database, StoreSettings};
use tasker_worker::PostgresStoreConfig;

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
async fn the_pool_and_the_listener_come_back_after_an_outage() {
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
