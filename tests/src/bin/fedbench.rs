//! `suanli-fedbench`: selection across nodes on real aggregators on
//! loopback. A national node and `--children` regional nodes joined to it
//! as staff join them, each child holding its share of `--accelerators`
//! (8 to a host) stored straight into its database (`suanli_tests::seed`),
//! with every identifier filed up before timing starts. Through the HTTP
//! API it times each demand at every child alone (`scope: local`) and at
//! the national node over its subtree (p50, p99, max), the federated
//! answer's overhead over the slowest child, and the national node's CPU
//! seconds per federated demand.
//!
//! Seeded hosts have sent no samples, so the demands ask for installed
//! capacity (`availability: installed`): every host is checked and scored,
//! as for free capacity, without agents to keep 20,000 hosts online.
//!
//! ```text
//! cargo build --release -p suanli-aggregator -p suanli-tests
//! target/release/suanli-fedbench [--children 3] [--accelerators 160000] [--repeat 200]
//! ```

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};
use suanli_tests::{Aggregator, Backend, Request, bench, seed, tree};

/// Provinces of the regional children, in order (GB/T 2260), and two of
/// each one's cities where its providers are.
const PROVINCES: &[&str] = &[
    "32", "44", "51", "11", "31", "33", "37", "42", "43", "35", "34", "36", "41", "13", "14", "15",
    "21", "22", "23", "45", "46", "50", "52", "53", "54", "61", "62", "63", "64", "65",
];

/// Selection across nodes on real aggregators on loopback.
#[derive(Debug, clap::Parser)]
#[command(name = "suanli-fedbench")]
struct Args {
    /// Regional nodes under the national one.
    #[arg(long, default_value_t = 3)]
    children: usize,
    /// Accelerators in all, shared among the children (8 to a host).
    #[arg(long, default_value_t = 160_000)]
    accelerators: usize,
    /// Demands timed per case.
    #[arg(long, default_value_t = 200)]
    repeat: usize,
}

fn main() -> anyhow::Result<()> {
    let Args {
        children,
        accelerators,
        repeat,
    } = clap::Parser::parse();
    if children == 0 || children > PROVINCES.len() {
        bail!("--children from 1 to {}", PROVINCES.len());
    }
    let work = tempfile::tempdir()?;
    let started = Instant::now();
    let national = Aggregator::start(
        &work.path().join("national"),
        Backend::Sqlite,
        &["--role", "national"],
    );
    let per_child = accelerators / children;
    let mut nodes = Vec::new();
    for province in &PROVINCES[..children] {
        let mut child = Aggregator::start(
            &work.path().join(format!("regional-{province}")),
            Backend::Sqlite,
            &["--role", "regional"],
        );
        let prefix = tree::join(&national, &child, "regional", province);
        child.kill();
        let regions = [format!("{province}0100"), format!("{province}0200")];
        let regions: Vec<&str> = regions.iter().map(String::as_str).collect();
        // A host is a resource, and so is each of its 8 accelerators.
        let resources = per_child + per_child.div_ceil(seed::GPUS_PER_HOST);
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(seed::hosts(
                &child.data_dir,
                &seed::Fleet {
                    prefix: &prefix,
                    regions: &regions,
                    resources,
                },
            ))?;
        child.restart();
        nodes.push((prefix, child, resources));
    }
    let total: usize = nodes.iter().map(|(_, _, r)| r).sum();
    let filed = |node: &Aggregator| tree::nodes(node)["identifiers"]["subtree"].as_u64();
    let deadline = Instant::now() + Duration::from_secs(1800);
    while filed(&national).unwrap_or(0) < total as u64 {
        if Instant::now() > deadline {
            bail!(
                "the national node has {:?} of {total} identifiers after 30 minutes",
                filed(&national)
            );
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    eprintln!(
        "{children} children, {total} resources seeded, joined and filed in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    // The children's resource reports, which say which of them may match,
    // come every 10 s: let a period pass after the restarts, and the
    // writes of filing settle (checkpoints), so they are not timed.
    std::thread::sleep(Duration::from_secs(30));

    let select = |node: &Aggregator, demand: &Value| -> (Duration, Value) {
        let t = Instant::now();
        let r = Request::new("POST", "/api/v1/selection")
            .bearer(&node.admin_token())
            .json(&demand.to_string())
            .send(node.http);
        let elapsed = t.elapsed();
        assert_eq!(r.status, 200, "{demand}: {}", r.body);
        (elapsed, r.json())
    };
    let demands = [
        (
            "8 × H100 on one host",
            json!({"accelerator": {"model": "h100", "count": 8}}),
        ),
        (
            "one accelerator, any, in one province",
            json!({"resource_type": "A", "region": PROVINCES[children - 1]}),
        ),
        (
            "4 hosts × 8 910B, one region",
            json!({"accelerator": {"model": "910b", "count": 8}, "hosts": 4, "together": "region"}),
        ),
        (
            "B200: no child has one (skipped on reports)",
            json!({"accelerator": {"model": "b200"}}),
        ),
    ];
    println!(
        "suanli-fedbench: national node + {children} regional children, {} accelerators in all ({} per child), {repeat} demands per case, HTTP over loopback; one machine, {} cores",
        per_child * children,
        per_child,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "{:<44} {:>24} {:>24} {:>12} {:>10}",
        "case",
        "slowest child alone p50/p99",
        "national, subtree p50/p99",
        "overhead p99",
        "CPU/demand"
    );
    for (case, demand) in demands {
        let mut demand = demand;
        demand["availability"] = json!("installed");
        demand["limit"] = json!(20);
        let mut local = demand.clone();
        local["scope"] = json!("local");
        // Warm: the first answers touch every page of each catalog.
        for _ in 0..20 {
            select(&national, &demand);
        }
        let mut slowest = (0.0, 0.0);
        for (_, child, _) in &nodes {
            let times: Vec<Duration> = (0..repeat).map(|_| select(child, &local).0).collect();
            let (p50, p99, _) = bench::percentiles(&times);
            if p99 > slowest.1 {
                slowest = (p50, p99);
            }
        }
        let pid = national.pid().context("national pid")?;
        let cpu_before = bench::cpu_seconds(pid).unwrap_or(0.0);
        let answers: Vec<(Duration, Value)> =
            (0..repeat).map(|_| select(&national, &demand)).collect();
        let cpu = (bench::cpu_seconds(pid).unwrap_or(0.0) - cpu_before) / repeat as f64;
        let times: Vec<Duration> = answers.iter().map(|(t, _)| *t).collect();
        let (p50, p99, _) = bench::percentiles(&times);
        let last = &answers[answers.len() - 1].1;
        let asked = last["nodes"].as_array().map_or(0, |n| {
            n.iter().filter(|o| o["outcome"] == "answered").count()
        });
        assert_eq!(last["partial"], false, "{last:#}");
        println!(
            "{:<44} {:>11.2} / {:>9.2} {:>11.2} / {:>9.2} {:>12.2} {:>8.2} ms   ({} candidates, {asked} of {children} children asked)",
            case,
            slowest.0,
            slowest.1,
            p50,
            p99,
            p99 - slowest.1,
            cpu * 1000.0,
            last["candidates"].as_array().map_or(0, Vec::len),
        );
    }
    if let Some(rss) = national.pid().and_then(bench::rss_kib) {
        println!("national node RSS: {} MiB", rss / 1024);
    }
    Ok(())
}
