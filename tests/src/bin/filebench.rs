//! `suanli-filebench`: filing child → parent, and resolution at a node
//! holding a million filed identifiers.
//!
//! Starts a national node (release build, SQLite), joins it as a scripted
//! industry child (token, request, approval), and over the real node link
//! (QUIC, mutual TLS) files `--identifiers` identifiers in records of
//! 1,000 with up to 32 records unacknowledged, as a child's spool pump
//! would. Reports filings per second (first record sent → last `Ack`,
//! which the parent sends after its commit), bytes per filing on the wire
//! and in the database, then the latency of `GET /api/v1/resources/{id}`
//! for random filed identifiers, one client and four at once.
//!
//! ```text
//! cargo build --release -p suanli-aggregator -p suanli-tests
//! target/release/suanli-filebench [--identifiers 1000000] [--resolve 20000] [--postgres]
//! ```
//!
//! `--postgres` puts the parent on a fresh database on the server
//! `SUANLI_TEST_DATABASE_URL` names.

use std::{
    collections::VecDeque,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::bail;
use suanli_protocol::node::{MAX_FILINGS_PER_BATCH, ParentMessage};
use suanli_tests::{Aggregator, Backend, Request, child::ScriptedChild};

/// Records unacknowledged at most (the child's window is 256).
const WINDOW: usize = 32;

/// Filing child → parent, and resolution at a node holding many filed identifiers.
#[derive(Debug, clap::Parser)]
#[command(name = "suanli-filebench")]
struct Args {
    /// Identifiers filed.
    #[arg(long, default_value_t = 1_000_000)]
    identifiers: u64,
    /// Resolutions timed.
    #[arg(long, default_value_t = 20_000)]
    resolve: usize,
    /// The parent on a fresh PostgreSQL database (SUANLI_TEST_DATABASE_URL's server).
    #[arg(long)]
    postgres: bool,
}

fn main() -> anyhow::Result<()> {
    let Args {
        identifiers,
        resolve,
        postgres,
    } = clap::Parser::parse();
    let backend = if postgres {
        Backend::postgres("filebench")
    } else {
        Backend::Sqlite
    };
    let on_sqlite = matches!(backend, Backend::Sqlite);
    let dir = tempfile::tempdir()?;
    let node = Aggregator::start(
        &dir.path().join("national"),
        backend,
        &["--role", "national"],
    );
    let runtime = tokio::runtime::Runtime::new()?;
    let child = runtime.block_on(ScriptedChild::join(&node, "I65"));
    let db = |suffix: &str| {
        std::fs::metadata(node.data_dir.join(format!("suanli.db{suffix}")))
            .map(|m| m.len())
            .unwrap_or(0)
    };
    let stored_before = db("") + db("-wal");

    let (elapsed, wire_bytes) = runtime.block_on(async {
        let mut link = child.link().await.map_err(anyhow::Error::msg)?;
        let records = identifiers.div_ceil(MAX_FILINGS_PER_BATCH as u64);
        let mut in_flight = VecDeque::new();
        let mut wire_bytes = 0u64;
        let started = Instant::now();
        let mut next = 0u64;
        while next < records || !in_flight.is_empty() {
            if next < records && in_flight.len() < WINDOW {
                let first = next * MAX_FILINGS_PER_BATCH as u64;
                let last = (first + MAX_FILINGS_PER_BATCH as u64).min(identifiers);
                let filings = (first..last)
                    .map(|serial| ScriptedChild::filing(&child.prefix, serial, 1))
                    .collect();
                let mut bytes = Vec::new();
                ScriptedChild::batch(next, filings).encode(&mut bytes);
                wire_bytes += bytes.len() as u64;
                link.write(&bytes).await.map_err(anyhow::Error::msg)?;
                in_flight.push_back(next);
                next += 1;
                continue;
            }
            match link
                .next::<ParentMessage>()
                .await
                .map_err(anyhow::Error::msg)?
            {
                ParentMessage::Ack { through_seq } => {
                    while in_flight.front().is_some_and(|s| *s <= through_seq) {
                        in_flight.pop_front();
                    }
                }
                other => bail!("unexpected {other:?}"),
            }
        }
        Ok::<_, anyhow::Error>((started.elapsed(), wire_bytes))
    })?;
    let stored_after = db("") + db("-wal");
    let n = identifiers as f64;
    println!("filed identifiers           {identifiers}");
    println!(
        "filing throughput           {:.0} identifiers/s ({:.2} s; target ≥ 10,000/s, 160,000 in < 20 s)",
        n / elapsed.as_secs_f64(),
        elapsed.as_secs_f64()
    );
    println!(
        "bytes per filing, wire      {:.0} (records of 1,000, framed)",
        wire_bytes as f64 / n
    );
    if on_sqlite {
        println!(
            "bytes per filing, stored    {:.0} (SQLite database + WAL growth, indexes included)",
            stored_after.saturating_sub(stored_before) as f64 / n
        );
    }

    // Resolution over the whole library.
    let token = Arc::new(node.admin_token());
    let prefix = Arc::new(child.prefix.clone());
    let http = node.http;
    let time = move |count: usize, seed: u64| -> Vec<Duration> {
        let mut state = seed;
        (0..count)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let serial = (state >> 33) % identifiers;
                let id = ScriptedChild::filing(&prefix, serial, 1).identifier;
                let started = Instant::now();
                let response = Request::new("GET", &format!("/api/v1/resources/{id}"))
                    .bearer(&token)
                    .send(http);
                let took = started.elapsed();
                assert_eq!(response.status, 200, "{}", response.body);
                took
            })
            .collect()
    };
    let report = |label: &str, mut times: Vec<Duration>, wall: Duration| {
        times.sort();
        let at = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
        println!(
            "resolve {label:<20} p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms  ({:.0}/s; target p99 ≤ 20 ms)",
            at(0.5).as_secs_f64() * 1e3,
            at(0.99).as_secs_f64() * 1e3,
            times[times.len() - 1].as_secs_f64() * 1e3,
            times.len() as f64 / wall.as_secs_f64()
        );
    };
    // Warm the page cache the way a running node's would be.
    time(1_000, 1);
    let started = Instant::now();
    report("1 client", time(resolve, 2), started.elapsed());
    let started = Instant::now();
    let clients: Vec<_> = (0..4u64)
        .map(|i| {
            let time = time.clone();
            std::thread::spawn(move || time(resolve / 4, 10 + i))
        })
        .collect();
    let mut all = Vec::new();
    for c in clients {
        all.extend(c.join().map_err(|_| anyhow::anyhow!("a client panicked"))?);
    }
    report("4 clients", all, started.elapsed());
    Ok(())
}
