//! `suanli-apibench`: the status API and dashboard against a node holding
//! 100,000 registered resources.
//!
//! Starts a fresh aggregator (release build) once to create its schema,
//! stops it, seeds providers, hosts with real protobuf inventories and
//! their resources straight into its SQLite database in one transaction
//! (identifiers minted by the same grammar the node uses), starts it again
//! and times, through a user's API key over HTTP:
//! - list: `GET /api/v1/resources` with typical filters and deep cursors;
//! - resolve: `GET /api/v1/resources/{identifier}` for random identifiers;
//! - hosts: `GET /api/v1/hosts`, a page of 1,000 hosts with storage figures,
//!   and the console's pages of 100 (filtered, searched, deep);
//! - overview: what the overview page fetches (`/ui/`, `app.js`, `/api/v1/summary`);
//! - host history: what a host page fetches (`/api/v1/hosts/{host}` and its
//!   `/history`) for an 8-accelerator host holding 30 days of minute rollups.
//!
//! ```text
//! cargo build --release -p suanli-aggregator -p suanli-tests
//! target/release/suanli-apibench [--resources 100000] [--repeat 300]
//! ```

use std::{
    io::{BufRead, BufReader},
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::Context;
use serde_json::json;
use suanli_tests::{Request, Session, bench, seed};

/// The status API and dashboard against a node holding many registered resources.
#[derive(Debug, clap::Parser)]
#[command(name = "suanli-apibench")]
struct Args {
    /// Resources registered on the node.
    #[arg(long, default_value_t = 100_000)]
    resources: usize,
    /// Requests timed per case.
    #[arg(long, default_value_t = 300)]
    repeat: usize,
    /// The aggregator binary [default: the one beside this one].
    #[arg(long, value_name = "PATH")]
    aggregator: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let Args {
        resources,
        repeat,
        aggregator,
    } = clap::Parser::parse();
    let aggregator = match aggregator {
        Some(path) => path,
        None => std::env::current_exe()?
            .parent()
            .context("binary directory")?
            .join("suanli-aggregator"),
    };
    let work = tempfile::tempdir()?;
    let data = work.path().join("node");

    let (mut node, _) = start(&aggregator, &data)?;
    stop(&mut node);
    let started = Instant::now();
    let identifiers = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(seed::hosts(
            &data,
            &seed::Fleet {
                prefix: "CN.LOCAL",
                regions: seed::REGIONS,
                resources,
            },
        ))?;
    eprintln!(
        "seeded {} resources in {:.1} s",
        identifiers.len(),
        started.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    let (mut node, http) = start(&aggregator, &data)?;
    eprintln!(
        "aggregator up (catalog loaded) in {:.2} s",
        started.elapsed().as_secs_f64()
    );
    let rss = bench::rss_kib(node.id());

    let password = std::fs::read_to_string(data.join("admin.password"))?;
    let admin = Session::sign_in(http, "admin", password.trim());
    let key = admin
        .send("POST", "/api/v1/api-keys", &json!({"name": "bench"}))
        .json()["key"]
        .as_str()
        .context("api key")?
        .to_owned();
    let get = |path: &str| -> Duration {
        let t = Instant::now();
        let r = Request::new("GET", path).bearer(&key).send(http);
        let elapsed = t.elapsed();
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        elapsed
    };
    // Warm up: the first touches of every page of the database and catalog.
    for _ in 0..20 {
        get("/api/v1/resources?limit=100");
    }

    println!(
        "suanli-apibench: {} resources, {repeat} requests per case, HTTP over loopback, API-key auth",
        identifiers.len()
    );
    println!("aggregator RSS after load: {} MiB", rss.unwrap_or(0) / 1024);
    println!(
        "{:<62} {:>9} {:>9} {:>9}",
        "case", "p50 ms", "p99 ms", "max ms"
    );
    let deep = identifiers.len() as u64 / 2;
    let lists = [
        "/api/v1/resources?limit=100".to_owned(),
        "/api/v1/resources?type=A&limit=100".to_owned(),
        "/api/v1/resources?model=H100&limit=100".to_owned(),
        "/api/v1/resources?region=44&type=A&limit=100".to_owned(),
        "/api/v1/resources?provider=P00007&limit=100".to_owned(),
        format!("/api/v1/resources?cursor={deep}&limit=100"),
        "/api/v1/resources?model=910B&region=62&state=online&limit=100".to_owned(),
        // Nothing matches: every resource is looked at.
        "/api/v1/resources?model=B200&limit=100".to_owned(),
        "/api/v1/resources?limit=1000".to_owned(),
    ];
    let mut all_lists = Vec::new();
    for path in &lists {
        let times: Vec<Duration> = (0..repeat).map(|_| get(path)).collect();
        report(path, &times);
        all_lists.extend(times);
    }
    report("list, all cases above", &all_lists);
    let mut resolves = Vec::new();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..repeat * 4 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let id = &identifiers[(seed % identifiers.len() as u64) as usize];
        resolves.push(get(&format!("/api/v1/resources/{id}")));
    }
    report("resolve /api/v1/resources/{identifier}", &resolves);
    // Selection through HTTP (seeded hosts have no live samples, so these
    // ask for installed capacity).
    for (case, demand) in [
        (
            "select 8×H100 installed in Guangdong",
            json!({"accelerator": {"model": "H100", "count": 8}, "region": "44", "availability": "installed"}),
        ),
        (
            "select 2 hosts × 8 A800 in one region, installed",
            json!({"accelerator": {"model": "A800", "count": 8}, "hosts": 2, "together": "region", "availability": "installed"}),
        ),
        (
            "select nothing matches (B200): full scan and why",
            json!({"accelerator": {"model": "B200"}, "availability": "installed"}),
        ),
    ] {
        let body = demand.to_string();
        let times: Vec<Duration> = (0..repeat)
            .map(|_| {
                let t = Instant::now();
                let r = Request::new("POST", "/api/v1/selection")
                    .bearer(&key)
                    .json(&body)
                    .send(http);
                let elapsed = t.elapsed();
                assert_eq!(r.status, 200, "{case}: {}", r.body);
                elapsed
            })
            .collect();
        report(case, &times);
    }
    // A page of hosts with storage figures and resources, as staff list them.
    let hosts: Vec<Duration> = (0..repeat.min(20)).map(|_| get("/api/v1/hosts")).collect();
    report("hosts /api/v1/hosts (a 1,000-host page, 20 times)", &hosts);
    // The console's hosts page: 100 to a page, filtered from the catalog.
    for (case, path) in [
        ("hosts page of 100", "/api/v1/hosts?limit=100".to_owned()),
        (
            "hosts page of 100, deep cursor",
            "/api/v1/hosts?limit=100&cursor=9000".to_owned(),
        ),
        (
            "hosts page of 100, offline only",
            "/api/v1/hosts?limit=100&state=offline".to_owned(),
        ),
        (
            "hosts search, one match",
            "/api/v1/hosts?limit=100&q=gpu-005555".to_owned(),
        ),
        (
            "hosts search, no match (every host looked at)",
            "/api/v1/hosts?limit=100&q=nothing-here".to_owned(),
        ),
    ] {
        let times: Vec<Duration> = (0..repeat).map(|_| get(&path)).collect();
        report(case, &times);
    }
    // A host page: 30 days of minute rollups of an 8-accelerator host, as
    // the node keeps them by default, written beside the running node.
    let host = Request::new("GET", "/api/v1/resources?type=A&limit=1")
        .bearer(&key)
        .send(http)
        .json()["resources"][0]["host_id"]
        .as_i64()
        .context("an accelerator host")?;
    let started = Instant::now();
    let minutes = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(seed_rollups(&data, host, 30 * 24 * 60))?;
    eprintln!(
        "seeded {minutes} minute rollups of host {host} in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    // Before the node makes hourly rollups of the seeded hours (its
    // housekeeping, once a minute), 30 days read 43,200 minutes; after,
    // 720 hours. Both, side by side.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let before = runtime.block_on(hourly_until(&data))?;
    for hours in [1, 24, 168, 720] {
        let history = format!("/api/v1/hosts/{host}/history?hours={hours}");
        get(&history);
        let times: Vec<Duration> = (0..repeat.min(50)).map(|_| get(&history)).collect();
        report(&format!("host history, {hours} h (8 accelerators)"), &times);
    }
    if runtime.block_on(hourly_until(&data))? != before {
        eprintln!("(the node made hourly rollups while the above was timed)");
    }
    let waited = Instant::now();
    // The node makes the hours whose minutes are all rolled up: those
    // before its raw window (24 h) ends.
    let made_until = ((last_seeded_minute() - 24 * 3_600_000) / 3_600_000 * 3_600_000) as i64;
    while runtime
        .block_on(hourly_until(&data))?
        .is_none_or(|until| until < made_until)
    {
        anyhow::ensure!(
            waited.elapsed() < Duration::from_secs(180),
            "the node made no hourly rollups in 3 minutes"
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    eprintln!(
        "the node made the hourly rollups {:.0} s after seeding",
        waited.elapsed().as_secs_f64()
    );
    for hours in [168, 720] {
        let history = format!("/api/v1/hosts/{host}/history?hours={hours}");
        get(&history);
        let times: Vec<Duration> = (0..repeat.min(50)).map(|_| get(&history)).collect();
        report(
            &format!("host history, {hours} h (8 accelerators, hourly made)"),
            &times,
        );
    }
    let page: Vec<Duration> = (0..repeat.min(50))
        .map(|_| {
            let t = Instant::now();
            std::thread::scope(|s| {
                s.spawn(|| get(&format!("/api/v1/hosts/{host}")));
                s.spawn(|| get(&format!("/api/v1/hosts/{host}/history?hours=720")));
            });
            t.elapsed()
        })
        .collect();
    report("host page data, 30 days (host + history at once)", &page);
    let summary: Vec<Duration> = (0..repeat).map(|_| get("/api/v1/summary")).collect();
    report("summary /api/v1/summary", &summary);
    let overview: Vec<Duration> = (0..repeat)
        .map(|_| get("/ui/") + get("/ui/app.js") + get("/api/v1/summary"))
        .collect();
    report(
        "overview page (/ui/ + app.js + summary, in turn)",
        &overview,
    );
    stop(&mut node);
    Ok(())
}

/// A minute rollup as the aggregator stores it (`aggregator/src/history.rs`,
/// `Rollup`: the same fields and tags).
#[derive(Clone, PartialEq, prost::Message)]
struct Rollup {
    #[prost(uint64, tag = "1")]
    samples: u64,
    #[prost(uint64, tag = "2")]
    first_seq: u64,
    #[prost(uint64, tag = "3")]
    last_seq: u64,
    #[prost(message, required, tag = "4")]
    cpu_utilization_percent: Stat,
    #[prost(message, required, tag = "5")]
    memory_used_bytes: Stat,
    #[prost(message, required, tag = "6")]
    load_average_1m: Stat,
    #[prost(message, repeated, tag = "7")]
    gpus: Vec<GpuRollup>,
}

#[derive(Clone, Copy, PartialEq, prost::Message)]
struct Stat {
    #[prost(uint64, tag = "1")]
    n: u64,
    #[prost(double, tag = "2")]
    sum: f64,
    #[prost(float, tag = "3")]
    min: f32,
    #[prost(float, tag = "4")]
    max: f32,
}

#[derive(Clone, PartialEq, prost::Message)]
struct GpuRollup {
    #[prost(uint32, tag = "1")]
    index: u32,
    #[prost(message, required, tag = "2")]
    utilization_percent: Stat,
    #[prost(message, required, tag = "3")]
    memory_used_bytes: Stat,
    #[prost(message, required, tag = "4")]
    temperature_celsius: Stat,
    #[prost(message, required, tag = "5")]
    power_milliwatts: Stat,
}

/// Writes `minutes` minute rollups of `host` (12 samples each, 8
/// accelerators), ending an hour ago, straight into the node's SQLite.
async fn seed_rollups(data: &Path, host: i64, minutes: u64) -> anyhow::Result<u64> {
    use prost::Message as _;
    use sqlx::Connection as _;
    let url = format!("sqlite://{}", data.join("suanli.db").display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await?;
    let stat = |v: f64| Stat {
        n: 12,
        sum: v * 12.0,
        min: (v * 0.9) as f32,
        max: (v * 1.1) as f32,
    };
    let last = last_seeded_minute();
    let mut tx = conn.begin().await?;
    for m in 0..minutes {
        let minute = last - m * 60_000;
        let wave = (m % 600) as f64 / 6.0;
        let rollup = Rollup {
            samples: 12,
            first_seq: m * 12,
            last_seq: m * 12 + 11,
            cpu_utilization_percent: stat(20.0 + wave / 2.0),
            memory_used_bytes: stat(500e9),
            load_average_1m: stat(12.0),
            gpus: (0..8)
                .map(|index| GpuRollup {
                    index,
                    utilization_percent: stat(wave),
                    memory_used_bytes: stat(60e9),
                    temperature_celsius: stat(65.0),
                    power_milliwatts: stat(550_000.0),
                })
                .collect(),
        };
        sqlx::query(
            "INSERT OR REPLACE INTO sample_rollups (host_id, minute_ms, samples, body) VALUES ($1, $2, $3, $4)",
        )
        .bind(host)
        .bind(minute as i64)
        .bind(12i64)
        .bind(rollup.encode_to_vec())
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(minutes)
}

/// The newest seeded minute: an hour ago.
fn last_seeded_minute() -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    now - now % 60_000 - 3_600_000
}

/// The first hour the node has not made hourly rollups of, from its SQLite.
async fn hourly_until(data: &Path) -> anyhow::Result<Option<i64>> {
    use sqlx::{Connection as _, Row as _};
    let url = format!("sqlite://{}", data.join("suanli.db").display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await?;
    let row = sqlx::query("SELECT hourly_until_ms FROM rollup_progress WHERE id = 1")
        .fetch_optional(&mut conn)
        .await?;
    Ok(row.map(|r| r.try_get(0)).transpose()?)
}

fn report(case: &str, times: &[Duration]) {
    let (p50, p99, max) = bench::percentiles(times);
    println!("{case:<62} {p50:>9.2} {p99:>9.2} {max:>9.2}");
}

fn start(binary: &Path, data: &Path) -> anyhow::Result<(Child, SocketAddr)> {
    let mut child = Command::new(binary)
        .args([
            "serve",
            "--quic-listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
        ])
        .arg("--data-dir")
        .arg(data)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    let mut line = String::new();
    let mut stdout = BufReader::new(child.stdout.take().context("stdout")?);
    stdout.read_line(&mut line)?;
    // Keep reading, so the node never writes into a closed pipe.
    std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    let http = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("http="))
        .context("no http= in the first line")?
        .parse()?;
    Ok((child, http))
}

fn stop(child: &mut Child) {
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let _ = child.wait();
}
