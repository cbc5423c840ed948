//! Helpers for the end-to-end tests in `tests/tests/`, which run the real
//! binaries as a user would: an [`Aggregator`] process, [`Agent`] processes,
//! and a [`relay::Relay`] that impairs the UDP path between them.

pub mod relay;

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{SocketAddr, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;

/// Path of a workspace binary built by the same `cargo test` run.
///
/// `cargo test --workspace` builds every package's binaries before running
/// any test (the agent and aggregator have integration tests of their own),
/// into the directory above this test executable's `deps/`.
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target directory");
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{} not built; run the tests with `cargo test --workspace`",
        path.display()
    );
    path
}

/// Polls `condition` until it holds; panics with `what` after `timeout`.
/// For waiting on another process's progress, which no event announces.
pub fn wait_until(timeout: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn signal(child: &Child, signal: i32) {
    // SAFETY: kill(2) with a pid we spawned and still own.
    unsafe {
        libc::kill(child.id() as i32, signal);
    }
}

/// The storage a test runs against: SQLite in the data dir, or a fresh
/// PostgreSQL database when `SUANLI_TEST_DATABASE_URL` names a server.
#[derive(Debug, Clone)]
pub enum Backend {
    Sqlite,
    Postgres(String),
}

impl Backend {
    /// SQLite always; PostgreSQL too where `SUANLI_TEST_DATABASE_URL` is set.
    pub fn all(test: &str) -> Vec<Backend> {
        let mut backends = vec![Backend::Sqlite];
        if let Ok(url) = std::env::var("SUANLI_TEST_DATABASE_URL") {
            backends.push(Backend::Postgres(fresh_postgres_database(&url, test)));
        } else {
            eprintln!("SUANLI_TEST_DATABASE_URL not set: {test} runs on SQLite only");
        }
        backends
    }

    fn args(&self) -> Vec<String> {
        match self {
            Backend::Sqlite => Vec::new(),
            Backend::Postgres(url) => vec!["--database-url".into(), url.clone()],
        }
    }
}

/// Creates (or empties) a database named after the test and returns its URL.
fn fresh_postgres_database(url: &str, test: &str) -> String {
    let name = format!(
        "suanli_{}",
        test.replace(|c: char| !c.is_ascii_alphanumeric(), "_")
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        use sqlx::Connection;
        let mut conn = sqlx::postgres::PgConnection::connect(url)
            .await
            .expect("connect to SUANLI_TEST_DATABASE_URL");
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .execute(&mut conn)
        .await
        .expect("drop test database");
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .expect("create test database");
    });
    let base = url.rsplit_once('/').map_or(url, |(base, _)| base);
    format!("{base}/{name}")
}

/// A running `suanli-aggregator serve`.
#[derive(Debug)]
pub struct Aggregator {
    child: Option<Child>,
    pub data_dir: PathBuf,
    pub quic: SocketAddr,
    pub http: SocketAddr,
    backend: Backend,
    extra: Vec<String>,
}

impl Aggregator {
    /// Starts on loopback ports chosen by the kernel.
    pub fn start(data_dir: &Path, backend: Backend, extra: &[&str]) -> Self {
        let mut aggregator = Self {
            child: None,
            data_dir: data_dir.to_owned(),
            quic: SocketAddr::from(([127, 0, 0, 1], 0)),
            http: SocketAddr::from(([127, 0, 0, 1], 0)),
            backend,
            extra: extra.iter().map(|s| s.to_string()).collect(),
        };
        aggregator.spawn();
        aggregator
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.data_dir.with_extension("aggregator.log"))
            .expect("aggregator log");
        let mut child = Command::new(binary("suanli-aggregator"))
            .arg("serve")
            .arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--quic-listen")
            .arg(self.quic.to_string())
            .arg("--http-listen")
            .arg(self.http.to_string())
            .args(self.backend.args())
            .args(&self.extra)
            .env("SUANLI_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("start suanli-aggregator");
        let mut stdout = BufReader::new(child.stdout.take().expect("piped"));
        let mut line = String::new();
        stdout.read_line(&mut line).expect("aggregator stdout");
        let field = |name: &str| -> SocketAddr {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(name))
                .unwrap_or_else(|| panic!("no {name} in {line:?}"))
                .parse()
                .expect("address")
        };
        self.quic = field("quic=");
        self.http = field("http=");
        // Keep draining stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut sink = Vec::new();
            let _ = stdout.read_to_end(&mut sink);
        });
        self.child = Some(child);
    }

    /// SIGKILL: no shutdown, no flush, as a power cut or OOM kill would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal(&child, libc::SIGKILL);
            let _ = child.wait();
        }
    }

    /// Starts again on the same ports, data and database.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Runs an administrative subcommand against this node's storage.
    pub fn admin(&self, args: &[&str]) -> Output {
        let mut command = Command::new(binary("suanli-aggregator"));
        command.args(args);
        command.arg("--data-dir").arg(&self.data_dir);
        command.args(self.backend.args());
        command.output().expect("run suanli-aggregator")
    }

    /// Registers a provider and returns a join string for one host.
    pub fn join_string(&self, address: Option<SocketAddr>) -> String {
        let out = self.admin(&[
            "provider",
            "create",
            "--name",
            "测试算力",
            "--uscc",
            "91350100M000100Y43",
            "--region",
            "110108",
            "--industry",
            "I65",
        ]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() || stderr.contains("already registered"),
            "provider create: {stderr}"
        );
        let address = address.unwrap_or(self.quic).to_string();
        let out = self.admin(&[
            "token",
            "create",
            "--provider",
            "91350100M000100Y43",
            "--address",
            &address,
        ]);
        assert!(
            out.status.success(),
            "token create: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .expect("utf-8")
            .trim()
            .to_owned()
    }

    pub fn admin_token(&self) -> String {
        std::fs::read_to_string(self.data_dir.join("admin.token"))
            .expect("admin.token")
            .trim()
            .to_owned()
    }

    /// `GET path` with the admin token; (status, body).
    pub fn get(&self, path: &str) -> (u16, String) {
        http(self.http, "GET", path, Some(&self.admin_token()), None)
    }

    /// The host list as JSON.
    pub fn hosts(&self) -> Vec<Value> {
        let (status, body) = self.get("/api/v1/hosts");
        assert_eq!(status, 200, "{body}");
        let value: Value = serde_json::from_str(&body).expect("hosts JSON");
        value["hosts"].as_array().expect("hosts array").clone()
    }

    /// The one host's listing, once it exists.
    pub fn host(&self) -> Option<Value> {
        self.hosts().into_iter().next()
    }
}

impl Drop for Aggregator {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A minimal HTTP/1.1 client: the tests need no HTTP library.
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    bearer: Option<&str>,
    body: Option<&str>,
) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).expect("connect HTTP");
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(token) = bearer {
        request.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    if let Some(body) = body {
        request.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    request.push_str("\r\n");
    if let Some(body) = body {
        request.push_str(body);
    }
    stream.write_all(request.as_bytes()).expect("send request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read response");
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// A `suanli-agent` with its own state directory.
#[derive(Debug)]
pub struct Agent {
    child: Option<Child>,
    pub state_dir: PathBuf,
    interval: String,
}

impl Agent {
    /// Joins with `join_string`; panics with the agent's words if it cannot.
    pub fn join(state_dir: &Path, join_string: &str, interval: &str) -> Self {
        Self::join_with(state_dir, join_string, interval, &[])
    }

    /// Joins as another machine: `machine_id` and `hostname` stand in for
    /// this host's (through a fixture `--host-root`), so several agents on
    /// one test machine are several hosts to the aggregator.
    pub fn join_as(
        state_dir: &Path,
        join_string: &str,
        interval: &str,
        machine_id: &str,
        hostname: &str,
    ) -> Self {
        let root = state_dir.with_extension("root");
        std::fs::create_dir_all(root.join("etc")).expect("fixture root");
        std::fs::create_dir_all(root.join("proc/sys/kernel")).expect("fixture root");
        std::fs::write(root.join("etc/machine-id"), format!("{machine_id}\n")).expect("machine-id");
        std::fs::write(
            root.join("proc/sys/kernel/hostname"),
            format!("{hostname}\n"),
        )
        .expect("hostname");
        let root = root.to_str().expect("UTF-8 path").to_owned();
        Self::join_with(state_dir, join_string, interval, &["--host-root", &root])
    }

    fn join_with(state_dir: &Path, join_string: &str, interval: &str, extra: &[&str]) -> Self {
        let out = Command::new(binary("suanli-agent"))
            .arg("join")
            .arg(join_string)
            .arg("--state-dir")
            .arg(state_dir)
            .args(extra)
            .output()
            .expect("run suanli-agent join");
        assert!(
            out.status.success(),
            "join failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Self {
            child: None,
            state_dir: state_dir.to_owned(),
            interval: interval.to_owned(),
        }
    }

    pub fn run(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.state_dir.with_extension("agent.log"))
            .expect("agent log");
        let child = Command::new(binary("suanli-agent"))
            .arg("run")
            .arg("--state-dir")
            .arg(&self.state_dir)
            .arg("--interval")
            .arg(&self.interval)
            .env("SUANLI_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start suanli-agent run");
        self.child = Some(child);
    }

    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal(&child, libc::SIGKILL);
            let _ = child.wait();
        }
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("agent running");
        signal(&child, libc::SIGTERM);
        child.wait().expect("agent exit")
    }

    /// Waits for the agent to exit by itself.
    pub fn wait(&mut self) -> std::process::ExitStatus {
        self.child
            .take()
            .expect("agent running")
            .wait()
            .expect("agent exit")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.state_dir.with_extension("agent.log")).unwrap_or_default()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.kill();
    }
}
