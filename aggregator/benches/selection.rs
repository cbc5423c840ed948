//! Selection over 20,000 hosts × 8 accelerators (160,000 accelerator
//! resources), built through the catalog's own load and observe paths:
//! 7 accelerator models, 30 regions, 60 providers, about half the GPUs
//! busy, a tenth of the hosts stale, InfiniBand on most, 24 dedicated lines;
//! five in six providers list prices (by model, a catch-all, per core).
//! Prints p50 / p99 / max per typical demand, then the same for one
//! evaluation of the built-in monitoring rules over the fleet (the rules
//! and the tracker's step, as each evaluation interval runs them), and one
//! market report (K1/K2 of a period) with its size on the node link.
//!
//! `cargo bench -p suanli-aggregator --bench selection [-- --hosts 20000 --repeat 200]`

use std::time::{Duration, Instant};

use serde_json::json;
use suanli_aggregator::{
    alerting::{self, NodeFigures, Tracker},
    catalog::Catalog,
    market,
    price::{Price, PriceList, Priced},
    selection::{self, Expression, LineEdge, Network},
    store::{CatalogRow, HostRow, Provider},
};
use suanli_protocol::{
    identifier::ResourceType,
    model::{
        CpuInventory, GpuInventory, GpuSample, HostInventory, HostSample, InfinibandPort,
        InfinibandPortSample, NvLinkSample,
    },
    stream::InventoryUpdate,
};

const MODELS: &[(&str, u64)] = &[
    ("NVIDIA H100 80GB HBM3", 80),
    ("NVIDIA A100-SXM4-80GB", 80),
    ("NVIDIA A800-SXM4-80GB", 80),
    ("NVIDIA H800 PCIe", 80),
    ("NVIDIA GeForce RTX 4090", 24),
    ("NVIDIA L40S", 48),
    ("Ascend 910B", 64),
];
const REGIONS: &[&str] = &[
    "110108", "110105", "310115", "310104", "440305", "440306", "440106", "440113", "330106",
    "330110", "510107", "510116", "500112", "420111", "610113", "320106", "320505", "370212",
    "150105", "150602", "520115", "520102", "620102", "640104", "350102", "430104", "210106",
    "120116", "130104", "340104",
];

/// A small fast deterministic generator (xorshift), so runs compare.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn build(hosts: usize, now: u64) -> Catalog {
    let catalog = Catalog::default();
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let mut host_rows = Vec::with_capacity(hosts);
    let mut rows = Vec::with_capacity(hosts * 9);
    let mut samples = Vec::with_capacity(hosts);
    for h in 0..hosts {
        let host_id = h as i64 + 1;
        let provider = (rng.below(60) + 1) as i64;
        let region = REGIONS[rng.below(REGIONS.len() as u64) as usize];
        let model = MODELS[rng.below(MODELS.len() as u64) as usize];
        let fabric = format!("fe80:0000:0000:{:04x}", rng.below(40));
        let inventory = HostInventory {
            hostname: format!("gpu-{host_id:05}"),
            memory_total_bytes: Some(1 << 41),
            cpu: CpuInventory {
                logical_cpus: [64, 96, 128, 192][rng.below(4) as usize],
                model_name: Some("Intel(R) Xeon(R) Platinum 8480+".into()),
                ..Default::default()
            },
            gpus: (0..8)
                .map(|g| GpuInventory {
                    index: g,
                    uuid: Some(format!("GPU-{host_id}-{g}")),
                    name: Some(model.0.into()),
                    memory_total_bytes: Some(model.1 << 30),
                    mig_enabled: Some(false),
                    ..Default::default()
                })
                .collect(),
            infiniband_ports: vec![InfinibandPort {
                device: "mlx5_0".into(),
                port: 1,
                link_layer: Some("InfiniBand".into()),
                subnet_prefix: Some(fabric),
                sm_lid: Some(1),
                ..Default::default()
            }],
            ..Default::default()
        };
        host_rows.push(HostRow {
            host_id,
            hostname: inventory.hostname.clone(),
            region: Some(region.into()),
            provider: Provider {
                id: provider,
                owner_code: format!("P{provider:05}"),
                name: format!("provider {provider}"),
                uscc: String::new(),
                region: region.into(),
                industry: "I65".into(),
                kind: "provider".into(),
                contact: String::new(),
                uscc_verified: true,
            },
            revoked: false,
            last_seen_ms: None,
            rtt_us: Some(1_000 + rng.below(30_000) as i64),
            inventory: Some(
                InventoryUpdate {
                    inventory: inventory.clone(),
                    unsupported: Vec::new(),
                }
                .encode(),
            ),
        });
        let first = rows.len() as i64 + 1;
        rows.push(CatalogRow {
            resource_id: first,
            identifier: format!("CN.BENCH_P{provider:05}_I65_{region}_C_X86_{first:06}_0"),
            resource_type: ResourceType::GeneralCompute.name_en().into(),
            resource_key: format!("host:{host_id}"),
            host_id,
        });
        for g in &inventory.gpus {
            let id = rows.len() as i64 + 1;
            rows.push(CatalogRow {
                resource_id: id,
                identifier: format!("CN.BENCH_P{provider:05}_I65_{region}_A_GPU_{id:06}_0"),
                resource_type: ResourceType::AiAccelerator.name_en().into(),
                resource_key: format!("gpu:{}", g.uuid.clone().unwrap_or_default()),
                host_id,
            });
        }
        let stale = rng.below(10) == 0;
        let age = if stale { 120_000 } else { rng.below(5_000) };
        let mut sample = HostSample {
            collected_at_unix_ms: now - age,
            ..Default::default()
        };
        sample.cpu.utilization_percent = Some(rng.below(100) as f64);
        sample.memory.total_bytes = Some(1 << 41);
        sample.memory.used_bytes = Some(rng.below(1 << 41));
        sample.gpus = (0..8)
            .map(|g| {
                let busy = rng.below(2) == 0;
                GpuSample {
                    index: g,
                    uuid: Some(format!("GPU-{host_id}-{g}")),
                    utilization_percent: Some(if busy { 50 + rng.below(50) as u32 } else { 0 }),
                    memory_total_bytes: Some(model.1 << 30),
                    memory_used_bytes: Some(if busy { (model.1 << 30) / 2 } else { 0 }),
                    temperature_celsius: Some(35 + rng.below(50) as u32),
                    power_milliwatts: Some(100_000 + rng.below(500_000) as u32),
                    nvlinks: vec![NvLinkSample {
                        link: 0,
                        active: true,
                        version: Some(4),
                    }],
                    ..Default::default()
                }
            })
            .collect();
        sample.infiniband_ports = vec![InfinibandPortSample {
            device: "mlx5_0".into(),
            port: 1,
            state: Some("ACTIVE".into()),
            rate_gbps: Some([100.0, 200.0, 400.0][rng.below(3) as usize]),
            ..Default::default()
        }];
        samples.push((host_id, sample, now - age));
    }
    catalog.install(host_rows, rows);
    for (host_id, sample, seen) in samples {
        catalog.observe(host_id, 1, &sample, seen);
    }
    for provider in (1..=60i64).filter(|p| p % 6 != 0) {
        let price = |resource, model: &str, cny: i64| Price {
            resource,
            model: model.into(),
            per_hour_cny_e4: cny * 10_000 + (provider * 1_234) % 10_000,
        };
        catalog.set_prices(
            provider,
            PriceList(vec![
                price(Priced::Accelerator, "H100", 15 + provider % 10),
                price(Priced::Accelerator, "A100", 8 + provider % 5),
                price(Priced::Accelerator, "H800", 12 + provider % 7),
                price(Priced::Accelerator, "", 6 + provider % 4),
                price(Priced::Cpu, "", 0),
            ]),
        );
    }
    catalog
}

fn network() -> Network {
    let hubs = [
        "110108", "310115", "440305", "510107", "150105", "520115", "620102", "330106",
    ];
    let mut lines = Vec::new();
    for (i, a) in hubs.iter().enumerate() {
        for b in hubs.iter().skip(i + 1).take(3) {
            lines.push(LineEdge {
                line_id: format!("P00099-L{:06}", lines.len() + 1),
                provider: "P00099".into(),
                from_region: (*a).into(),
                to_region: (*b).into(),
                latency_ms: 8.0 + (lines.len() % 7) as f64,
                bandwidth_mbps: 100_000,
                price_per_mbps_month: None,
            });
        }
    }
    Network {
        lines,
        ..Default::default()
    }
}

fn main() {
    let mut hosts = 20_000usize;
    let mut repeat = 200usize;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--hosts" => hosts = args.next().and_then(|v| v.parse().ok()).unwrap_or(hosts),
            "--repeat" => repeat = args.next().and_then(|v| v.parse().ok()).unwrap_or(repeat),
            _ => {} // cargo bench passes --bench
        }
    }
    let now = 1_800_000_000_000;
    let started = Instant::now();
    let catalog = build(hosts, now);
    let net = network();
    println!(
        "selection bench: {hosts} hosts × 8 accelerators ({} resources), {} lines; built in {:.1} s",
        catalog.read().resources.len(),
        net.lines.len(),
        started.elapsed().as_secs_f64()
    );
    let demands = [
        (
            "8×H100 free now, in Guangdong",
            json!({"accelerator": {"model": "H100", "count": 8}, "region": "44"}),
        ),
        (
            "1×A100 ≥80 GiB within 25 ms of Shenzhen",
            json!({"accelerator": {"model": "A100", "min_memory_gib": 80}, "user_region": "440305", "max_latency_ms": 25}),
        ),
        (
            "4 hosts × 8 H800 on one IB fabric ≥200G, installed",
            json!({"accelerator": {"model": "H800", "count": 8, "infiniband_gbps": 200}, "hosts": 4, "together": "fabric", "availability": "installed"}),
        ),
        (
            "32 free cores + 128 GiB, ≥ 5 Gb/s from Beijing",
            json!({"cpu_cores": 32, "memory_gib": 128, "user_region": "110108", "min_bandwidth_mbps": 5000}),
        ),
        (
            "4×NVIDIA with NVLink, fresh ≤ 10 s, 2 providers",
            json!({"accelerator": {"vendor": "nvidia", "count": 4, "nvlink": true}, "max_staleness_s": 10, "providers": ["P00001", "P00002"]}),
        ),
        (
            "4×L40S + CEL (cpus ≥ 96, all GPUs < 80 °C)",
            json!({"accelerator": {"model": "L40S", "count": 4}, "expression": "host.cpus >= 96 && gpus.all(g, g.temperature_celsius < 80)"}),
        ),
        (
            "8×H100 at most ¥160/h, cheapest first",
            json!({"accelerator": {"model": "H100", "count": 8}, "max_price_per_hour_cny": 160}),
        ),
        (
            "nothing matches (B200): full scan and why",
            json!({"accelerator": {"model": "B200", "count": 8}}),
        ),
    ];
    println!(
        "{:<52} {:>8} {:>9} {:>9} {:>9}",
        "demand", "matched", "p50 ms", "p99 ms", "max ms"
    );
    for (name, body) in demands {
        let demand = selection::demand::parse(&body).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        let expression = demand
            .expression
            .as_deref()
            .map(|e| Expression::compile(e).unwrap_or_else(|e| panic!("{e}")));
        let mut times: Vec<Duration> = Vec::with_capacity(repeat);
        let mut matched = 0;
        for _ in 0..repeat {
            let t = Instant::now();
            let fleet = catalog.read();
            let answer = selection::select(&fleet, &net, &demand, expression.as_ref(), now);
            drop(fleet);
            times.push(t.elapsed());
            matched = answer.matched_hosts;
            std::hint::black_box(answer);
        }
        times.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "{name:<52} {matched:>8} {:>9.2} {:>9.2} {:>9.2}",
            ms(times[times.len() / 2]),
            ms(times[(times.len() * 99 / 100).min(times.len() - 1)]),
            ms(times[times.len() - 1])
        );
    }
    // Monitoring: each evaluation reads the whole fleet (a tenth of the
    // hosts are silent here), and the tracker steps.
    let mut tracker = Tracker::default();
    let mut open = std::collections::HashSet::new();
    let mut times: Vec<Duration> = Vec::with_capacity(repeat);
    let mut found = 0;
    for i in 0..repeat {
        let t = Instant::now();
        let observations = alerting::evaluate(&catalog.read(), &NodeFigures::default(), now);
        found = observations.len();
        for transition in tracker.step(now + i as u64, &open, observations) {
            if let alerting::Transition::Fire(o) = transition {
                open.insert(o.fingerprint);
            }
        }
        times.push(t.elapsed());
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{:<52} {found:>8} {:>9.2} {:>9.2} {:>9.2}",
        "monitoring: built-in rules, one evaluation",
        ms(times[times.len() / 2]),
        ms(times[(times.len() * 99 / 100).min(times.len() - 1)]),
        ms(times[times.len() - 1])
    );
    // Market monitoring: this node's resource report (K1/K2) of one
    // period, computed from the fleet, and its size on the node link.
    let prefix = suanli_protocol::identifier::NodePrefix::national();
    let mut times: Vec<Duration> = Vec::with_capacity(repeat);
    let mut report = None;
    for _ in 0..repeat {
        let t = Instant::now();
        let r = market::resource_report(&catalog.read(), &prefix, now - now % 10_000, now);
        times.push(t.elapsed());
        report = Some(r);
    }
    times.sort();
    let report = report.expect("repeat is at least 1");
    let groups = report.groups.len();
    let wire = report.encode().len();
    println!(
        "{:<52} {groups:>8} {:>9.2} {:>9.2} {:>9.2}",
        "market: resource report (groups), one period",
        ms(times[times.len() / 2]),
        ms(times[(times.len() * 99 / 100).min(times.len() - 1)]),
        ms(times[times.len() - 1])
    );
    println!("market: resource report on the wire: {wire} bytes for {hosts} hosts");
}
