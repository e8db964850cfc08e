//! Prints `EXPLAIN (ANALYZE, BUFFERS)` of every hot statement of the PostgreSQL store on a
//! database of a million single-step tasks (mostly finished, with a backlog, retries,
//! scheduled and running steps), then the plans inside one real completion batch and one
//! task creation (the SQL functions' statements, through auto_explain).
//!
//!     cargo run --release -p tasker-worker --example pg_query_plans [-- --tasks N] [--database-url URL]
//!
//! Without --database-url it starts a private server (bin/private-postgres) and removes it
//! at the end. Building the population takes a minute or two at a million.

#[path = "../tests/pg/mod.rs"]
mod pg;

use std::time::{Instant, SystemTime};

use futures::StreamExt;
use serde_json::{json, Value};
use tokio_postgres::{AsyncMessage, Client, NoTls};
use uuid::Uuid;

use tasker_worker::postgres::{open, sql, PostgresConfig};

#[tokio::main]
async fn main() {
    let mut tasks: i64 = 1_000_000;
    let mut url: Option<String> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--tasks" => tasks = args.next().and_then(|v| v.parse().ok()).expect("--tasks N"),
            "--database-url" => url = args.next(),
            other => panic!("unknown argument {other} (--tasks N, --database-url URL)"),
        }
    }
    let url = match url {
        Some(url) => url,
        None => pg::server().fresh_database().await.url,
    };
    open(&url, &PostgresConfig::default()).await.expect("open and migrate");
    let mut client = connect_printing_notices(&url).await;

    let started = Instant::now();
    let population = pg::population::populate(&client, tasks).await;
    let (steps, enqueued): (i64, i64) = {
        let row = client
            .query_one("SELECT count(*), count(*) FILTER (WHERE status = 'enqueued') FROM tasker.steps", &[])
            .await
            .unwrap();
        (row.get(0), row.get(1))
    };
    println!(
        "# {tasks} tasks, {steps} steps ({enqueued} enqueued), built in {:.1}s; PostgreSQL {}\n",
        started.elapsed().as_secs_f64(),
        client.query_one("SHOW server_version", &[]).await.unwrap().get::<_, String>(0)
    );

    for statement in pg::population::hot_statements() {
        let plan = pg::population::explain(&mut client, population, &statement, true, false).await;
        println!("## {}\n\n```\n{plan}\n```\n", statement.label);
    }

    println!("## Inside one completion batch of 64 and one create_task (auto_explain, rolled back)\n\n```");
    completion_batch(&mut client, population).await;
    println!("```");
}

/// A client whose server messages (auto_explain's LOG lines) are printed as they come.
async fn connect_printing_notices(url: &str) -> Client {
    let (client, mut connection) = tokio_postgres::connect(url, NoTls).await.expect("connect");
    let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
    tokio::spawn(async move {
        while let Some(Ok(message)) = messages.next().await {
            if let AsyncMessage::Notice(notice) = message {
                println!("{}", notice.message());
            }
        }
    });
    client
}

/// Claims 64 steps, fences and records them as complete (finishing their tasks), and
/// creates one task, with every nested statement's plan logged to this client.
async fn completion_batch(client: &mut Client, population: pg::population::Population) {
    let transaction = client.transaction().await.unwrap();
    transaction
        .batch_execute(
            "LOAD 'auto_explain';
             SET LOCAL auto_explain.log_min_duration = 0;
             SET LOCAL auto_explain.log_analyze = on;
             SET LOCAL auto_explain.log_buffers = on;
             SET LOCAL auto_explain.log_timing = on;
             SET LOCAL auto_explain.log_nested_statements = on;
             SET LOCAL client_min_messages = log",
        )
        .await
        .expect("auto_explain (part of the PostgreSQL server package)");
    let claim = transaction.prepare(sql::CLAIM_STEPS).await.unwrap();
    let templates = vec![population.one, population.other];
    let rows = transaction.query(&claim, &[&templates, &64i64, &"w-alive"]).await.unwrap();
    let task_ids: Vec<Uuid> = rows.iter().map(|r| r.get(0)).collect();
    let indexes: Vec<i32> = rows.iter().map(|r| r.get(1)).collect();
    let step_ids: Vec<Uuid> = rows.iter().map(|r| r.get(2)).collect();
    let events: Vec<Uuid> = rows.iter().map(|r| r.get(4)).collect();
    let lock = transaction.prepare(sql::LOCK_RESULTS).await.unwrap();
    let fenced = transaction.query(&lock, &[&task_ids, &step_ids, &events]).await.unwrap();
    assert_eq!(fenced.len(), rows.len());

    let n = rows.len();
    let statuses = vec!["complete"; n];
    let results: Vec<Option<Value>> = vec![Some(json!({"ok": true})); n];
    let none_json: Vec<Option<Value>> = vec![None; n];
    let deltas = vec![0i32; n];
    let delays: Vec<Option<i64>> = vec![None; n];
    let times: Vec<Option<SystemTime>> = vec![None; n];
    let no_uuid: Vec<Uuid> = Vec::new();
    let no_int: Vec<i32> = Vec::new();
    let task_templates: Vec<i64> = vec![population.one; n];
    let completed = vec![1i32; n];
    let finished: Vec<Option<&str>> = vec![Some("complete"); n];
    let halts: Vec<Option<&str>> = vec![None; n];
    let skips = vec![false; n];
    let apply = transaction.prepare(sql::APPLY_RESULTS).await.unwrap();
    transaction
        .query_one(
            &apply,
            &[
                &task_ids,
                &indexes,
                &statuses,
                &results,
                &none_json,
                &deltas,
                &delays,
                &none_json,
                &times,
                &times,
                &no_uuid,
                &no_int,
                &no_int,
                &task_ids,
                &task_templates,
                &completed,
                &finished,
                &halts,
                &skips,
            ],
        )
        .await
        .expect("apply the batch");

    let create = transaction.prepare(sql::CREATE_TASK).await.unwrap();
    let no_text: Option<&str> = None;
    let no_time: Option<SystemTime> = None;
    transaction
        .query_one(&create, &[&"bench", &"one", &no_text, &json!({"order_id": 1}), &no_text, &no_time, &0i32])
        .await
        .expect("create a task");
    transaction.rollback().await.unwrap();
    // Let the last notices print before the program ends.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
}
