//! The store contract (`store_contract/`) against the `PostgresStore`, each test on a
//! fresh database of the private server (`pg/`).

mod pg;
mod store_contract;

use std::sync::Arc;

use store_contract::StoreSettings;
use tasker_worker::postgres::{PostgresStore, StoreSettings as PostgresSettings};
use tasker_worker::{PostgresStoreConfig, TaskStore};

async fn postgres_store(settings: StoreSettings) -> Arc<dyn TaskStore> {
    let db = pg::server().fresh_database().await;
    let config = PostgresStoreConfig {
        finished_task_retention_seconds: settings.retention.as_secs(),
        // Fast fallback polling: a test never waits long for a missed notification.
        poll_interval_ms: 200,
        ..PostgresStoreConfig::default()
    };
    let store = PostgresStore::connect(&db.url, PostgresSettings::from_config(&config, Default::default()))
        .await
        .unwrap_or_else(|e| panic!("the PostgreSQL store did not open on {}: {e}", db.url));
    Arc::new(store)
}

contract_tests!(postgres_store);
