//! `suanli-paintbench`: the overview's first paint on a node of `--hosts`
//! hosts (8 accelerators each, stored straight into its database by
//! `suanli_tests::seed`) holding `--days` of hourly rollups, 24 hours of
//! 10 s reports at every 5-minute mark and a week of the hourly streams,
//! each a copy of the node's own report of its seeded fleet (so every
//! rollup is as large as the real one). Through the HTTP API it times each
//! call the overview makes (p50, p99, max); in Debian's Chromium it times
//! a reload of the overview until everything on it is drawn (the trends
//! of 24 hours and of the days, the streams, the heatmap, the map):
//! navigation start to the last of them, as the page's own clock measures.
//!
//! ```text
//! cargo build --release -p suanli-aggregator -p suanli-tests
//! target/release/suanli-paintbench [--hosts 20000] [--days 30] [--repeat 5]
//! ```

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use suanli_protocol::node::{Figure, MarketReport};
use suanli_tests::{Aggregator, Backend, Request, bench, browser, seed};

const HOUR: u64 = 3_600_000;

/// The overview's first paint on a node of many hosts with days of rollups.
#[derive(Debug, clap::Parser)]
#[command(name = "suanli-paintbench")]
struct Args {
    /// Hosts on the node (8 accelerators each).
    #[arg(long, default_value_t = 20_000)]
    hosts: usize,
    /// Days of hourly rollups.
    #[arg(long, default_value_t = 30)]
    days: u64,
    /// Reloads timed.
    #[arg(long, default_value_t = 5)]
    repeat: usize,
}

fn main() -> anyhow::Result<()> {
    let Args {
        hosts,
        days,
        repeat,
    } = clap::Parser::parse();
    let work = tempfile::tempdir()?;
    let mut node = Aggregator::start(
        &work.path().join("node"),
        Backend::Sqlite,
        &["--role", "national"],
    );
    node.kill();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(seed::hosts(
        &node.data_dir,
        &seed::Fleet {
            prefix: "CN",
            regions: seed::REGIONS,
            resources: hosts * (seed::GPUS_PER_HOST + 1),
        },
    ))?;
    node.restart();
    // The node's own report of the seeded fleet, once it has made one.
    let deadline = Instant::now() + Duration::from_secs(600);
    let own = loop {
        if let Some(report) = runtime.block_on(latest_own_report(&node))?
            && report.groups.iter().map(|g| g.registered).sum::<u64>()
                >= (hosts * (seed::GPUS_PER_HOST + 1)) as u64
        {
            break report;
        }
        if Instant::now() > deadline {
            bail!("no report of the whole seeded fleet after 10 minutes");
        }
        std::thread::sleep(Duration::from_secs(1));
    };
    node.kill();
    let stored = runtime.block_on(store_history(&node, &own, days))?;
    node.restart();
    eprintln!(
        "{hosts} hosts, {} groups a report ({} bytes), {stored} reports stored",
        own.groups.len(),
        own.clone().encode().len()
    );

    // The overview's calls, one by one.
    let token = node.admin_token();
    let calls = [
        "/api/v1/summary".to_owned(),
        "/api/v1/reports".to_owned(),
        "/api/v1/reports/trend?hours=24".to_owned(),
        format!("/api/v1/reports/trend?days={days}"),
        "/api/v1/heatmap".to_owned(),
        "/api/v1/reports?stream=platform".to_owned(),
        "/api/v1/reports/figures?stream=scheduling&days=7".to_owned(),
    ];
    println!("call | p50 ms | p99 ms | max ms | bytes");
    println!("---|---|---|---|---");
    for path in &calls {
        let mut times = Vec::new();
        let mut bytes = 0;
        for _ in 0..repeat.max(3) {
            let t = Instant::now();
            let response = Request::new("GET", path).bearer(&token).send(node.http);
            times.push(t.elapsed());
            if response.status != 200 {
                bail!("{path}: {} {}", response.status, response.body);
            }
            bytes = response.body.len();
        }
        let (p50, p99, max) = bench::percentiles(&times);
        println!("{path} | {p50:.1} | {p99:.1} | {max:.1} | {bytes}");
    }

    // The page, reloaded: from navigation start until the last part is drawn.
    let mut page = browser::Browser::open(&browser::chromium(), &format!("http://{}/", node.http));
    page.wait_for(
        Duration::from_secs(60),
        "the sign-in form",
        "!!document.getElementById('login-form')",
    );
    page.sign_in_changing_password("admin", &node.admin_password(), "a new long password");
    let drawn = "['#chart-trend-capacity-24h', '#chart-trend-capacity-30d', \
                 '#chart-stream-scheduling', '#heatmap', '#province-map'] \
                 .every((s) => document.querySelector(s))";
    let mut paints = Vec::new();
    for round in 0..=repeat {
        if round > 0 {
            // Marked, so that the old document is not the one measured.
            page.eval("window.__old = true; location.reload(); true");
        }
        page.wait_for(
            Duration::from_secs(120),
            "the whole overview",
            &format!(
                "(() => {{ const ok = !window.__old && {drawn}; if (ok && !window.__drawn) window.__drawn = performance.now(); return ok; }})()"
            ),
        );
        let ms = page.eval("window.__drawn").as_f64().context("no time")?;
        let fcp = page
            .eval("performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? null");
        // The first round is the sign-in, not a reload.
        if round > 0 {
            eprintln!("reload {round}: drawn at {ms:.0} ms, first contentful paint {fcp} ms");
            paints.push(Duration::from_secs_f64(ms / 1000.0));
        }
    }
    let (p50, p99, max) = bench::percentiles(&paints);
    println!(
        "\noverview of {hosts} hosts with {days} days of rollups, reloaded {repeat} times: \
         everything drawn p50 {p50:.0} ms, p99 {p99:.0} ms, max {max:.0} ms (target: first paint ≤ 1000 ms)"
    );
    Ok(())
}

async fn connect(node: &Aggregator) -> anyhow::Result<sqlx::SqliteConnection> {
    use sqlx::Connection as _;
    let url = format!("sqlite://{}", node.data_dir.join("suanli.db").display());
    Ok(sqlx::SqliteConnection::connect(&url).await?)
}

async fn latest_own_report(node: &Aggregator) -> anyhow::Result<Option<MarketReport>> {
    use sqlx::Row as _;
    let mut db = connect(node).await?;
    let row = sqlx::query(
        "SELECT body FROM market_reports WHERE stream = 'resource' AND period_ms = 10000 \
         AND child_id IS NULL ORDER BY period_start_ms DESC LIMIT 1",
    )
    .fetch_optional(&mut db)
    .await?;
    Ok(match row {
        Some(row) => Some(MarketReport::decode(&row.try_get::<Vec<u8>, _>(0)?)?),
        None => None,
    })
}

/// Stores `days` of hourly rollups, 24 hours of 10 s reports at every
/// 5-minute mark and a week of the three hourly streams, before the
/// stopped node's own latest periods.
async fn store_history(node: &Aggregator, own: &MarketReport, days: u64) -> anyhow::Result<u64> {
    use sqlx::Connection as _;
    let mut db = connect(node).await?;
    let mut tx = db.begin().await?;
    let hour = own.period_start_ms - own.period_start_ms % HOUR;
    let rollup = seed::hour_of(own);
    let mut reports = Vec::new();
    for back in 1..=days * 24 {
        reports.push(MarketReport {
            period_start_ms: hour - back * HOUR,
            ..rollup.clone()
        });
    }
    for back in 1..=288 {
        reports.push(MarketReport {
            period_start_ms: own.period_start_ms - own.period_start_ms % 300_000 - back * 300_000,
            ..own.clone()
        });
    }
    for back in 1..=7 * 24 {
        for stream in ["platform", "scheduling", "application"] {
            let figures = ["selections_requested", "api_calls", "api_key_calls"]
                .iter()
                .map(|name| Figure {
                    name: (*name).into(),
                    label: String::new(),
                    value: back % 24,
                })
                .collect();
            reports.push(MarketReport {
                stream: stream.into(),
                period_start_ms: hour - back * HOUR,
                period_ms: HOUR,
                groups: Vec::new(),
                figures,
                periods: 0,
                ..own.clone()
            });
        }
    }
    for r in &reports {
        sqlx::query(
            "INSERT INTO market_reports (origin, stream, period_ms, period_start_ms, body, \
             received_at_ms, spooled) VALUES ($1, $2, $3, $4, $5, $4, 1) ON CONFLICT DO NOTHING",
        )
        .bind(&r.origin)
        .bind(&r.stream)
        .bind(r.period_ms as i64)
        .bind(r.period_start_ms as i64)
        .bind(r.clone().encode())
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(reports.len() as u64)
}
