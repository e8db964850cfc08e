//! The PostgreSQL test harness: one private server per test binary (started on first use
//! through `bin/private-postgres`, the script the demo, the benchmarks and rspec use too),
//! a fresh database per test, and the server stopped when the binary exits.
//!
//! Stopping is layered so that no run leaves a server behind: an `atexit` handler stops it
//! when the binary ends normally (passing or failing tests alike); the script's watchdog
//! stops it when the binary dies without running `atexit` (SIGKILL, a crash, Ctrl-C); and
//! every start first sweeps servers whose owner is gone, so a killed run never disturbs
//! the next one. Each server lives in its own `mktemp` directory with its unix socket, so
//! parallel runs (other test binaries, other developers) never collide.
//!
//! Use it from a test file with `mod pg;`, then `pg::server().fresh_database().await`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use tokio_postgres::{Client, NoTls};

pub mod population;

/// The private server of this test binary.
#[derive(Debug)]
pub struct PgServer {
    /// The directory of the cluster: data, log and the unix socket.
    root: PathBuf,
}

/// A database made for one test.
#[derive(Debug, Clone)]
pub struct TestDatabase {
    pub name: String,
    /// `postgresql://postgres@/NAME?host=ROOT`
    pub url: String,
}

static SERVER: OnceLock<Result<PgServer, String>> = OnceLock::new();
static NEXT_DATABASE: AtomicU32 = AtomicU32::new(1);

/// The repository's `bin/private-postgres`.
pub fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bin/private-postgres")
}

/// Starts the server on first call; panics (failing the test) with the script's message
/// when PostgreSQL cannot start here.
pub fn server() -> &'static PgServer {
    match SERVER.get_or_init(start) {
        Ok(server) => server,
        Err(message) => panic!("the private PostgreSQL for this test binary did not start: {message}"),
    }
}

fn start() -> Result<PgServer, String> {
    let output = Command::new(script())
        .arg("start")
        .arg("--owner")
        .arg(std::process::id().to_string())
        .output()
        .map_err(|e| format!("could not run {}: {e}", script().display()))?;
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).into_owned());
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let root = stdout
        .lines()
        .find_map(|line| line.strip_prefix("TASKER_PG_ROOT="))
        .ok_or_else(|| format!("bin/private-postgres printed no TASKER_PG_ROOT: {stdout}"))?;
    // SAFETY: registering a plain extern "C" function without arguments is always sound;
    // it runs once at normal process exit.
    unsafe {
        libc::atexit(stop_at_exit);
    }
    Ok(PgServer { root: PathBuf::from(root) })
}

extern "C" fn stop_at_exit() {
    if let Some(Ok(server)) = SERVER.get() {
        let _ = Command::new(script()).arg("stop").arg(&server.root).output();
    }
}

impl PgServer {
    /// The socket directory (the `host` of every URL).
    pub fn socket_dir(&self) -> &Path {
        &self.root
    }

    /// The URL of database `name` on this server.
    pub fn url(&self, name: &str) -> String {
        format!("postgresql://postgres@/{name}?host={}", self.root.display())
    }

    /// The URL of database `name` with a password in it (ignored: the server trusts local
    /// connections), for tests that check the password never shows.
    pub fn url_with_password(&self, name: &str, password: &str) -> String {
        format!("postgresql://postgres:{password}@/{name}?host={}", self.root.display())
    }

    /// A new, empty database for one test.
    pub async fn fresh_database(&self) -> TestDatabase {
        let name = format!("test_{}", NEXT_DATABASE.fetch_add(1, Ordering::Relaxed));
        let admin = self.connect("postgres").await;
        // A test-only name from a counter: not user input.
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
        TestDatabase { url: self.url(&name), name }
    }

    /// A plain client of database `name` (its connection driven on this runtime).
    pub async fn connect(&self, name: &str) -> Client {
        connect_url(&self.url(name)).await
    }

    /// Stops the server, keeping its data (an outage), until [`PgServer::resume`].
    pub fn pause(&self) {
        self.run("pause");
    }

    pub fn resume(&self) {
        self.run("resume");
    }

    /// A fast restart: every connection breaks, data stays.
    pub fn restart(&self) {
        self.run("restart");
    }

    fn run(&self, command: &str) {
        let output = Command::new(script()).arg(command).arg(&self.root).output().expect("run bin/private-postgres");
        assert!(output.status.success(), "bin/private-postgres {command}: {}", String::from_utf8_lossy(&output.stderr));
    }
}

impl TestDatabase {
    pub async fn connect(&self) -> Client {
        connect_url(&self.url).await
    }
}

/// Connects with retries for a short while (a server just resumed may still be starting).
pub async fn connect_url(url: &str) -> Client {
    let mut last = None;
    for _ in 0..100 {
        match tokio_postgres::connect(url, NoTls).await {
            Ok((client, connection)) => {
                tokio::spawn(async move {
                    let _ = connection.await;
                });
                return client;
            }
            Err(e) => {
                last = Some(e);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    panic!("could not connect to {url}: {last:?}");
}

/// Registers a template through `tasker.register_template`, as the store does: `steps`
/// are (name, parent indexes); each step's event reads its parents. Returns
/// (template_id, revision_id).
pub async fn register_template(
    client: &Client,
    namespace: &str,
    name: &str,
    version: &str,
    steps: &[(&str, &[i32])],
    max_in_flight: Option<i32>,
) -> (i64, i64) {
    let parsed = semver::Version::parse(version).expect("test template version is semver");
    let names: Vec<String> = steps.iter().map(|(n, _)| (*n).to_owned()).collect();
    let mut children = Vec::new();
    let mut parents = Vec::new();
    for (index, (_, deps)) in steps.iter().enumerate() {
        for parent in *deps {
            children.push(index as i32);
            parents.push(*parent);
        }
    }
    let definition = serde_json::json!({ "namespace": namespace, "name": name, "version": version, "steps": names });
    let statement = client.prepare(tasker_worker::postgres::sql::REGISTER_TEMPLATE).await.unwrap();
    let row = client
        .query_one(
            &statement,
            &[
                &namespace,
                &name,
                &parsed.to_string(),
                &(parsed.major as i64),
                &(parsed.minor as i64),
                &(parsed.patch as i64),
                &parsed.pre.as_str(),
                &max_in_flight,
                &definition,
                &names,
                &children,
                &parents,
                &children,
                &parents,
            ],
        )
        .await
        .unwrap_or_else(|e| panic!("register {namespace}/{name}:{version}: {e:?}"));
    (row.get(0), row.get(1))
}

/// The rows of `sql`, a query answering (relation or table, status, count): what the status
/// counts hold, or what a `GROUP BY status` over the tables says they should.
pub async fn status_rows(client: &Client, sql: &str) -> Vec<(String, String, i64)> {
    client
        .query(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
}
