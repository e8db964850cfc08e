//! Prints `EXPLAIN (ANALYZE, BUFFERS)` of every hot statement of the PostgreSQL store on a
//! database of a million single-step tasks (mostly finished, with a backlog, retries,
//! scheduled and running steps), then the plans inside the SQL functions (a completion batch, a
//! creation, a cancel, a retry, a purge; through auto_explain).
//!
//!     cargo run --release -p tasker-worker --example pg_query_plans [-- --tasks N] [--database-url URL]
//!
//! Without --database-url it starts a private server (bin/private-postgres) and removes it
//! at the end. Building the population takes a minute or two at a million.

#[path = "../tests/pg/mod.rs"]
mod pg;

use std::time::Instant;

use tasker_worker::postgres::{open, StoreSettings};

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
    open(&url, &StoreSettings::default()).await.expect("open and migrate");
    let (mut client, plans) = pg::population::connect_collecting(&url).await;

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

    println!("## Inside the SQL functions: a claim and completion of 64, a create, a cancel, a retry, a purge");
    println!("## (auto_explain, rolled back)\n\n```");
    pg::population::run_functions(&mut client, population, true).await;
    for plan in plans.lock().iter() {
        println!("{plan}\n");
    }
    println!("```");
}
