//! Every hot statement of the PostgreSQL store is served by the index made for it, on a
//! database shaped like a busy one (mostly finished tasks, a backlog, retries, scheduled
//! and running steps): the statements the store sends (both the first runs' plan and the
//! generic plan of a prepared statement), and the statements inside its SQL functions
//! (record_results, record_completions, create_task_with, cancel_task, retry_task, purge_finished) through
//! auto_explain. `examples/pg_query_plans.rs` prints the same plans, with timings, on a
//! million tasks.

mod pg;

use tasker_worker::postgres::{open, StoreSettings};

/// Tables that must never be read whole on a hot path.
const BIG_TABLES: [&str; 3] = ["steps", "tasks", "finished_tasks"];

#[tokio::test]
async fn each_hot_statement_uses_its_index() {
    let db = pg::server().fresh_database().await;
    open(&db.url, &StoreSettings::default()).await.expect("migrate");
    let mut client = db.connect().await;
    let population = pg::population::populate(&client, 20_000).await;
    let mut misses = Vec::new();
    for statement in pg::population::hot_statements() {
        for generic in [false, true] {
            let plan = pg::population::explain(&mut client, population, &statement, false, generic).await;
            let which = if generic { "generic plan" } else { "custom plan" };
            let uses = |how: &str| plan.contains(&format!("{how} {}", statement.index));
            if !uses("using") && !uses("Bitmap Index Scan on") && !uses("Index Only Scan using") {
                misses.push(format!("{} ({which}) does not use {}:\n{plan}", statement.label, statement.index));
            }
            // A claim walks its index in order and stops at the LIMIT (no bitmap and sort).
            if pg::population::is_claim(&statement) && !uses("Index Scan using") {
                misses
                    .push(format!("{} ({which}) does not walk {} in order:\n{plan}", statement.label, statement.index));
            }
            for table in BIG_TABLES.iter().filter(|t| !statement.counts.contains(t)) {
                if plan.contains(&format!("Seq Scan on {table} ")) || plan.ends_with(&format!("Seq Scan on {table}")) {
                    misses.push(format!("{} ({which}) scans all of {table}:\n{plan}", statement.label));
                }
            }
        }
    }
    assert!(misses.is_empty(), "{}", misses.join("\n\n"));
}

#[tokio::test]
async fn the_statements_inside_the_sql_functions_use_indexes() {
    let db = pg::server().fresh_database().await;
    open(&db.url, &StoreSettings::default()).await.expect("migrate");
    let (mut client, plans) = pg::population::connect_collecting(&db.url).await;
    let population = pg::population::populate(&client, 20_000).await;
    pg::population::run_functions(&mut client, population, false).await;
    let plans = plans.lock().clone();
    let nested: Vec<&String> =
        plans.iter().filter(|p| p.contains("Query Text") && !p.contains("/* not the store's */")).collect();
    assert!(nested.len() >= 10, "auto_explain logged the functions' statements: {plans:#?}");
    let mut misses = Vec::new();
    for plan in &nested {
        for table in BIG_TABLES {
            if plan
                .lines()
                .any(|line| line.trim_start().trim_start_matches("->  ").starts_with(&format!("Seq Scan on {table}")))
            {
                misses.push(format!("a function statement scans all of {table}:\n{plan}"));
            }
        }
    }
    let all = nested.iter().map(|p| p.as_str()).collect::<Vec<_>>().join("\n");
    for index in ["steps_pkey", "tasks_pkey", "finished_by_time", "finished_by_status"] {
        if !all.contains(index) {
            misses.push(format!("no function statement uses {index}"));
        }
    }
    // record_results writes the step and task rows its fence read by their TIDs, not
    // through a second primary-key lookup (migration 0004).
    let recording = nested.iter().find(|p| p.contains("UPDATE tasker.steps s") && p.contains("s.ctid = e.step_row"));
    match recording {
        None => misses.push("auto_explain logged no record_results statement".to_string()),
        Some(plan) => {
            for table in ["steps", "tasks"] {
                if !plan.contains(&format!("Tid Scan on {table}")) {
                    misses.push(format!("record_results does not write {table} by TID:\n{plan}"));
                }
            }
        }
    }
    // record_completions finds each step through its primary key, never by reading every
    // in-progress step (migration 0005).
    let completing = nested.iter().find(|p| p.contains("CASE WHEN s.status = 'in_progress' THEN s.event_id END"));
    match completing {
        None => misses.push("auto_explain logged no record_completions statement".to_string()),
        Some(plan) => {
            if !plan.contains("Index Scan using steps_pkey on steps s") || plan.contains("using steps_in_progress") {
                misses.push(format!("record_completions does not find its steps by primary key:\n{plan}"));
            }
        }
    }
    assert!(misses.is_empty(), "{}", misses.join("\n\n"));
}
