//! Every hot statement of the PostgreSQL store is served by the index made for it, on a
//! database shaped like a busy one (mostly finished tasks, a backlog, retries, scheduled
//! and running steps). `examples/pg_query_plans.rs` prints the same plans, with timings,
//! on a million tasks.

mod pg;

use tasker_worker::postgres::{open, PostgresConfig};

#[tokio::test]
async fn each_hot_statement_uses_its_index() {
    let db = pg::server().fresh_database().await;
    open(&db.url, &PostgresConfig::default()).await.expect("migrate");
    let mut client = db.connect().await;
    let population = pg::population::populate(&client, 20_000).await;
    let mut misses = Vec::new();
    for statement in pg::population::hot_statements() {
        // Both plans: the first runs' (with the values) and the generic one used afterwards.
        for generic in [false, true] {
            let plan = pg::population::explain(&mut client, population, &statement, false, generic).await;
            let which = if generic { "generic plan" } else { "custom plan" };
            let uses = |how: &str| plan.contains(&format!("{how} {}", statement.index));
            if !uses("using") && !uses("Bitmap Index Scan on") {
                misses.push(format!("{} ({which}) does not use {}:\n{plan}", statement.label, statement.index));
            }
            for table in ["steps", "tasks"] {
                if plan.contains(&format!("Seq Scan on {table}")) {
                    misses.push(format!("{} ({which}) scans all of {table}:\n{plan}", statement.label));
                }
            }
        }
    }
    assert!(misses.is_empty(), "{}", misses.join("\n\n"));
}
