//! The store contract (`store_contract/`) against the embedded `MemoryStore`.

mod store_contract;

use std::sync::Arc;

use store_contract::StoreSettings;
use tasker_worker::{MemoryLimits, MemoryStore, TaskStore};

async fn memory_store(settings: StoreSettings) -> Arc<dyn TaskStore> {
    let limits = MemoryLimits { retention: settings.retention, ..MemoryLimits::default() };
    Arc::new(MemoryStore::new(limits))
}

contract_tests!(memory_store);
