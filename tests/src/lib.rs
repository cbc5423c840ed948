//! Helpers for the end-to-end tests in `tests/tests/`, which run the real
//! binaries as a user would: an [`Aggregator`] process, [`Agent`] processes,
//! and a [`relay::Relay`] that impairs the UDP path between them.

pub mod bench;
pub mod browser;
pub mod child;
pub mod component;
pub mod receiver;
pub mod relay;
pub mod seed;
pub mod tree;

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
    let mut dir = exe.parent().expect("target directory");
    // A test runs from `deps/`; a benchmark binary sits beside the others.
    if dir.ends_with("deps") {
        dir = dir.parent().expect("target directory");
    }
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{} not built; run the tests with `cargo test --workspace`",
        path.display()
    );
    path
}

/// Compiles the stand-in `libnvidia-ml.so` (`fixtures/nvml-standin`) into
/// `dir` with the system C compiler and returns its path.
pub fn nvml_standin(dir: &Path) -> PathBuf {
    standin(dir, "nvml-standin/nvml_standin.c", "libnvidia-ml.so.1", &[])
}

/// Compiles one of the vendor stand-ins under `fixtures/` into `dir` as
/// `library`, with `defines` (`-DOLD`, `-DAMD`, …), and returns its path.
/// The file is left mode 0644, as a vendor's package installs it.
pub fn standin(dir: &Path, source: &str, library: &str, defines: &[&str]) -> PathBuf {
    let source = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(source);
    let path = dir.join(library);
    let status = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()))
        .args(["-shared", "-fPIC", "-O1"])
        .args(defines)
        .arg("-o")
        .arg(&path)
        .arg(&source)
        .status()
        .expect("a C compiler (cc) to build a stand-in library");
    assert!(status.success(), "compiling {}", source.display());
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o644))
        .expect("chmod stand-in");
    path
}

/// `suanli-agent inventory --json` with `args` and `env`, as a JSON value;
/// panics with the agent's words if it fails.
pub fn agent_inventory(args: &[&str], env: &[(&str, &str)]) -> serde_json::Value {
    let out = Command::new(binary("suanli-agent"))
        .args(["inventory", "--json", "--window-ms", "20"])
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("run suanli-agent inventory");
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("stdout is one JSON document")
}

/// A fixture host tree under `fixtures/hosts/` (a Kunpeng + Ascend server,
/// a Hygon + DCU server, a Phytium host, a Loongson host).
pub fn fixture_host(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/hosts")
        .join(name)
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
/// PostgreSQL database on the server [`postgres_url`] names.
#[derive(Debug, Clone)]
pub enum Backend {
    Sqlite,
    Postgres(String),
}

/// The PostgreSQL server the tests use: `SUANLI_TEST_DATABASE_URL`, or
/// where this machine kind runs one (`.ci/postgres.sh` starts it).
pub fn postgres_url() -> String {
    std::env::var("SUANLI_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

impl Backend {
    /// A fresh PostgreSQL database for `test`. A test that asks for one is
    /// `#[ignore = "needs PostgreSQL: run .ci/test"]` and fails when the
    /// server does not answer.
    pub fn postgres(test: &str) -> Backend {
        Backend::Postgres(fresh_postgres_database(&postgres_url(), test))
    }

    /// The same kind of storage for another node of a test: SQLite in its
    /// own data dir, or a fresh PostgreSQL database of its own.
    pub fn for_node(&self, name: &str) -> Backend {
        match self {
            Backend::Sqlite => Backend::Sqlite,
            Backend::Postgres(_) => Backend::postgres(name),
        }
    }

    fn args(&self) -> Vec<String> {
        match self {
            Backend::Sqlite => Vec::new(),
            Backend::Postgres(url) => vec!["--database-url".into(), url.clone()],
        }
    }
}

/// Tests that take a [`Backend`], each run twice: `NAME::sqlite`, and
/// `NAME::postgres` on a fresh database named as given (ignored by a plain
/// `cargo test`; `.ci/test` starts PostgreSQL and runs it).
#[macro_export]
macro_rules! on_each_backend {
    ($($test:ident($database:literal)),+ $(,)?) => {$(
        mod $test {
            #[test]
            fn sqlite() {
                super::$test($crate::Backend::Sqlite);
            }

            #[test]
            #[ignore = "needs PostgreSQL: run .ci/test"]
            fn postgres() {
                super::$test($crate::Backend::postgres($database));
            }
        }
    )+};
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
        let mut conn = match sqlx::postgres::PgConnection::connect(url).await {
            Ok(conn) => conn,
            Err(e) => component::missing("PostgreSQL", &format!("{url}: {e}")),
        };
        component::found("PostgreSQL");
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

/// Monitoring at test speed: rules every 200 ms, notifications without a
/// group wait, receivers on loopback plain HTTP.
pub const FAST_ALERTS: &[&str] = &[
    "--alert-interval",
    "200ms",
    "--group-wait",
    "0s",
    "--alert-loopback-http",
];

/// A `--host-root` tree that says only who a host is: its machine-id,
/// hostname and (when given) firmware UUID. Returns the path.
pub fn identity_root(
    root: &Path,
    machine_id: &str,
    hostname: &str,
    product_uuid: Option<&str>,
) -> String {
    std::fs::create_dir_all(root.join("etc")).expect("fixture root");
    std::fs::create_dir_all(root.join("proc/sys/kernel")).expect("fixture root");
    std::fs::write(root.join("etc/machine-id"), format!("{machine_id}\n")).expect("machine-id");
    std::fs::write(
        root.join("proc/sys/kernel/hostname"),
        format!("{hostname}\n"),
    )
    .expect("hostname");
    if let Some(uuid) = product_uuid {
        std::fs::create_dir_all(root.join("sys/class/dmi/id")).expect("fixture root");
        std::fs::write(
            root.join("sys/class/dmi/id/product_uuid"),
            format!("{uuid}\n"),
        )
        .expect("product_uuid");
    }
    root.to_str().expect("UTF-8 path").to_owned()
}

/// A running `suanli-aggregator serve`.
#[derive(Debug)]
pub struct Aggregator {
    child: Option<Child>,
    pub data_dir: PathBuf,
    pub quic: SocketAddr,
    pub http: SocketAddr,
    /// Whether the API answers HTTPS (`https=` on the first line).
    pub https: bool,
    backend: Backend,
    extra: Vec<String>,
    /// `SUANLI_LOG` for the process.
    log: &'static str,
}

impl Aggregator {
    /// Starts on loopback ports chosen by the kernel.
    pub fn start(data_dir: &Path, backend: Backend, extra: &[&str]) -> Self {
        Self::start_logging(data_dir, backend, extra, "info")
    }

    /// Starts with `SUANLI_LOG=level` (its log is [`Aggregator::log`]).
    pub fn start_logging(
        data_dir: &Path,
        backend: Backend,
        extra: &[&str],
        log: &'static str,
    ) -> Self {
        let mut aggregator = Self {
            child: None,
            data_dir: data_dir.to_owned(),
            quic: SocketAddr::from(([127, 0, 0, 1], 0)),
            http: SocketAddr::from(([127, 0, 0, 1], 0)),
            https: false,
            backend,
            extra: extra.iter().map(|s| s.to_string()).collect(),
            log,
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
        let mut command = Command::new(binary("suanli-aggregator"));
        command
            .arg("serve")
            .arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--quic-listen")
            .arg(self.quic.to_string());
        // A test may listen elsewhere than loopback.
        if !self.extra.iter().any(|a| a == "--http-listen") {
            command.arg("--http-listen").arg(self.http.to_string());
        }
        let mut child = command
            .args(self.backend.args())
            .args(&self.extra)
            .env("SUANLI_LOG", self.log)
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("start suanli-aggregator");
        let mut stdout = BufReader::new(child.stdout.take().expect("piped"));
        let mut line = String::new();
        stdout.read_line(&mut line).expect("aggregator stdout");
        let field = |name: &str| -> Option<SocketAddr> {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(name))
                .map(|a| a.parse().expect("address"))
        };
        self.quic = field("quic=").unwrap_or_else(|| panic!("no quic= in {line:?}"));
        self.https = field("https=").is_some();
        self.http = field("http=")
            .or(field("https="))
            .unwrap_or_else(|| panic!("no http= in {line:?}"));
        // Keep draining stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut sink = Vec::new();
            let _ = stdout.read_to_end(&mut sink);
        });
        self.child = Some(child);
    }

    /// The running process's id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
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

    /// Runs an administrative subcommand that must succeed; its stdout.
    pub fn admin_ok(&self, args: &[&str]) -> String {
        let out = self.admin(args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .expect("UTF-8")
            .trim()
            .to_owned()
    }

    /// Registers a provider and returns a join string for one host.
    pub fn join_string(&self, address: Option<SocketAddr>) -> String {
        self.join_string_for(address, 1)
    }

    /// Registers the test provider (测试算力) in `region`, unless it is
    /// registered already (then its region stays).
    pub fn create_provider(&self, region: &str) {
        let out = self.admin(&[
            "provider",
            "create",
            "--name",
            "测试算力",
            "--uscc",
            "91350100M000100Y43",
            "--region",
            region,
            "--industry",
            "I65",
        ]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() || stderr.contains("already registered"),
            "provider create: {stderr}"
        );
    }

    /// Registers a provider (in Beijing, unless one is registered) and
    /// returns a join string for `uses` hosts.
    pub fn join_string_for(&self, address: Option<SocketAddr>, uses: usize) -> String {
        self.create_provider("110108");
        let address = address.unwrap_or(self.quic).to_string();
        let out = self.admin(&[
            "token",
            "create",
            "--provider",
            "91350100M000100Y43",
            "--uses",
            &uses.to_string(),
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

    /// Starts another replica of this node (PostgreSQL): the node's
    /// identity copied into `data_dir`, the same database.
    pub fn replica(&self, data_dir: &Path, extra: &[&str]) -> Self {
        std::fs::create_dir_all(data_dir).expect("replica data dir");
        for file in [
            "ca.pem",
            "ca.key",
            "server.pem",
            "server.key",
            "admin.token",
            "reset.key",
        ] {
            std::fs::copy(self.data_dir.join(file), data_dir.join(file)).expect("node identity");
        }
        Self::start(data_dir, self.backend.clone(), extra)
    }

    /// The PostgreSQL database it runs on, if it does.
    pub fn database_url(&self) -> Option<&str> {
        match &self.backend {
            Backend::Postgres(url) => Some(url),
            Backend::Sqlite => None,
        }
    }

    /// Everything the process has logged (stderr), across restarts.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data_dir.with_extension("aggregator.log")).unwrap_or_default()
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

    /// The initial `admin` account's password, written on first start.
    pub fn admin_password(&self) -> String {
        std::fs::read_to_string(self.data_dir.join("admin.password"))
            .expect("admin.password")
            .trim()
            .to_owned()
    }

    /// Signs in as a dashboard would.
    pub fn sign_in(&self, login: &str, password: &str) -> Session {
        Session::sign_in(self.http, login, password)
    }

    /// Files an organisation's registration (registered in Shenzhen,
    /// industry I65), its account signing in with `password`; its id.
    pub fn register(&self, kind: &str, uscc: &str, login: &str, password: &str) -> i64 {
        let body = serde_json::json!({
            "kind": kind, "name": format!("{login} 有限公司"), "uscc": uscc, "region": "440305",
            "industry": "I65", "contact": "张三 13800000000", "login": login, "password": password,
        });
        let r = Request::new("POST", "/api/v1/registrations")
            .json(&body.to_string())
            .send(self.http);
        assert_eq!(r.status, 201, "{}", r.body);
        r.json()["id"].as_i64().expect("registration id")
    }

    /// Registers an organisation, has `staff` approve it, signs it in.
    pub fn organisation(
        &self,
        staff: &Session,
        kind: &str,
        uscc: &str,
        login: &str,
        password: &str,
    ) -> Session {
        let id = self.register(kind, uscc, login, password);
        let r = staff.send(
            "POST",
            &format!("/api/v1/registrations/{id}/approve"),
            &serde_json::json!({}),
        );
        assert_eq!(r.status, 200, "{}", r.body);
        self.sign_in(login, password)
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
    let mut request = Request::new(method, path);
    if let Some(token) = bearer {
        request = request.header("Authorization", &format!("Bearer {token}"));
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send(addr);
    (response.status, response.body)
}

/// A signed-in dashboard session: the cookie, and the CSRF token that
/// requests changing something must carry.
#[derive(Debug, Clone)]
pub struct Session {
    pub addr: SocketAddr,
    pub cookie: String,
    pub csrf: String,
    /// The Set-Cookie header as the server sent it.
    pub set_cookie: String,
}

impl Session {
    pub fn sign_in(addr: SocketAddr, login: &str, password: &str) -> Self {
        let body = serde_json::json!({"login": login, "password": password}).to_string();
        let response = Request::new("POST", "/api/v1/session")
            .json(&body)
            .send(addr);
        assert_eq!(
            response.status, 200,
            "sign in as {login}: {}",
            response.body
        );
        let set_cookie = response
            .header("set-cookie")
            .expect("Set-Cookie")
            .to_owned();
        let cookie = set_cookie
            .split(';')
            .next()
            .expect("cookie pair")
            .to_owned();
        let csrf = response.json()["csrf_token"]
            .as_str()
            .expect("csrf_token")
            .to_owned();
        Self {
            addr,
            cookie,
            csrf,
            set_cookie,
        }
    }

    /// A request carrying the cookie and, unless it is a GET, the CSRF token.
    pub fn request(&self, method: &str, path: &str) -> Request {
        let request = Request::new(method, path).header("Cookie", &self.cookie);
        if method == "GET" {
            request
        } else {
            request.header("X-CSRF-Token", &self.csrf)
        }
    }

    pub fn get(&self, path: &str) -> Response {
        self.request("GET", path).send(self.addr)
    }

    pub fn send(&self, method: &str, path: &str, body: &Value) -> Response {
        self.request(method, path)
            .json(&body.to_string())
            .send(self.addr)
    }
}

/// An HTTP request with whatever headers a test needs.
#[derive(Debug, Clone)]
pub struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
}

#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    /// The first value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    /// The fields a 422 problem document names.
    pub fn error_fields(&self) -> Vec<String> {
        self.json()["errors"]
            .as_array()
            .map(|errors| {
                errors
                    .iter()
                    .filter_map(|e| e["field"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Request {
    pub fn new(method: &str, path: &str) -> Self {
        Self {
            method: method.to_owned(),
            path: path.to_owned(),
            headers: Vec::new(),
            body: None,
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn bearer(self, token: &str) -> Self {
        self.header("Authorization", &format!("Bearer {token}"))
    }

    /// A body with `Content-Type: application/json`.
    pub fn json(self, body: &str) -> Self {
        self.header("Content-Type", "application/json")
            .raw_body(body.as_bytes())
    }

    pub fn raw_body(mut self, body: &[u8]) -> Self {
        self.body = Some(body.to_vec());
        self
    }

    pub fn send(&self, addr: SocketAddr) -> Response {
        let mut stream = TcpStream::connect(addr).expect("connect HTTP");
        self.exchange(&mut stream, addr)
    }

    /// Sends, or `None` if nothing listens there yet.
    pub fn try_send(&self, addr: SocketAddr) -> Option<Response> {
        let mut stream = TcpStream::connect(addr).ok()?;
        Some(self.exchange(&mut stream, addr))
    }

    /// Sends over TLS 1.3 to `server_name`, trusting only `roots`; `Err`
    /// says why the handshake failed.
    pub fn send_tls(
        &self,
        addr: SocketAddr,
        server_name: &str,
        roots: &[rustls::pki_types::CertificateDer<'static>],
    ) -> Result<Response, String> {
        let mut store = rustls::RootCertStore::empty();
        for root in roots {
            store.add(root.clone()).map_err(|e| e.to_string())?;
        }
        let config =
            rustls::ClientConfig::builder_with_provider(suanli_link::transport::provider())
                .with_protocol_versions(&[&rustls::version::TLS13])
                .map_err(|e| e.to_string())?
                .with_root_certificates(store)
                .with_no_client_auth();
        let name = rustls::pki_types::ServerName::try_from(server_name.to_owned())
            .map_err(|e| e.to_string())?;
        let conn = rustls::ClientConnection::new(std::sync::Arc::new(config), name)
            .map_err(|e| e.to_string())?;
        let tcp = TcpStream::connect(addr).map_err(|e| e.to_string())?;
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        // Drive the handshake first, so its failure is reported as such.
        while tls.conn.is_handshaking() {
            tls.conn
                .complete_io(&mut tls.sock)
                .map_err(|e| e.to_string())?;
        }
        Ok(self.exchange(&mut tls, addr))
    }

    fn exchange(&self, stream: &mut (impl Read + Write), addr: SocketAddr) -> Response {
        let mut head = format!(
            "{} {} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n",
            self.method, self.path
        );
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        if let Some(body) = &self.body {
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        if let Some(body) = &self.body {
            bytes.extend_from_slice(body);
        }
        // The server may answer (413) and close before reading it all.
        let _ = stream.write_all(&bytes);
        let mut response = Vec::new();
        let _ = stream.read_to_end(&mut response);
        let split = response
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or(response.len());
        let head = String::from_utf8_lossy(&response[..split]).into_owned();
        let body = response.get(split + 4..).unwrap_or_default();
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
            .collect();
        let chunked = headers
            .iter()
            .any(|(n, v)| n.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
        let body = if chunked {
            dechunk(body)
        } else {
            body.to_vec()
        };
        Response {
            status,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    }
}

fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = body.windows(2).position(|w| w == b"\r\n") {
        let Some(size) = std::str::from_utf8(&body[..eol])
            .ok()
            .and_then(|s| usize::from_str_radix(s.trim(), 16).ok())
        else {
            break;
        };
        let rest = &body[eol + 2..];
        if size == 0 || rest.len() < size {
            break;
        }
        out.extend_from_slice(&rest[..size]);
        body = rest[size..].strip_prefix(b"\r\n").unwrap_or(&rest[size..]);
    }
    out
}

/// A `suanli-agent` with its own state directory.
#[derive(Debug)]
pub struct Agent {
    child: Option<Child>,
    pub state_dir: PathBuf,
    interval: String,
    /// Extra environment for `run` (e.g. a stand-in NVML library).
    pub env: Vec<(String, String)>,
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
        let root = identity_root(
            &state_dir.with_extension("root"),
            machine_id,
            hostname,
            None,
        );
        Self::join_with(state_dir, join_string, interval, &["--host-root", &root])
    }

    /// Joins as the host a fixture tree describes (`--host-root`); `run`
    /// then needs `SUANLI_HOST_ROOT` in [`Agent::env`] too.
    pub fn join_with_root(state_dir: &Path, join_string: &str, interval: &str, root: &str) -> Self {
        Self::join_with(state_dir, join_string, interval, &["--host-root", root])
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
            env: Vec::new(),
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
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
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
