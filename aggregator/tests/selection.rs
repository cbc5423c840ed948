//! Selection on a fleet built in memory the way ingest builds it (stored
//! host and resource rows, then samples observed): one table-driven case
//! per demand field, path cases, all-or-nothing groups, and property tests
//! against an independent oracle.

#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use serde_json::{Value, json};
use suanli_aggregator::{
    catalog::Catalog,
    selection::{self, Expression, LineEdge, Network},
    store::Reservation,
};

#[path = "support/fleet.rs"]
mod fleet;

use suanli_protocol::model::{GpuSample, HostSample};

use fleet::*;

fn run(catalog: &Catalog, network: &Network, demand: Value) -> selection::Answer {
    let parsed = selection::demand::parse(&demand).unwrap_or_else(|e| panic!("{demand}: {e:?}"));
    let expression = parsed
        .expression
        .as_deref()
        .map(|e| Expression::compile(e).unwrap());
    selection::select(&catalog.read(), network, &parsed, expression.as_ref(), NOW)
}

/// The host ids of every candidate, in ranked order.
fn hosts_of(answer: &selection::Answer) -> Vec<i64> {
    answer
        .candidates
        .iter()
        .flat_map(|c| c.hosts.iter().map(|h| h.host_id))
        .collect()
}

fn sorted(mut v: Vec<i64>) -> Vec<i64> {
    v.sort();
    v
}

/// A fleet with one host showing off each thing a demand can ask for.
fn showcase() -> Vec<Spec> {
    let h100 = || gpu("NVIDIA H100 80GB HBM3", 80);
    vec![
        // 1: CPU only, Beijing.
        spec(),
        // 2: 8 free H100s with NVLink and 400G IB, Shenzhen.
        Spec {
            provider: "P00002",
            region: "440305",
            gpus: (0..8)
                .map(|_| Gpu {
                    nvlink: true,
                    ..h100()
                })
                .collect(),
            ib: Some((400.0, "fe80:0000:0000:0001")),
            ..spec()
        },
        // 3: 8 H100s, 4 busy, Guangzhou.
        Spec {
            provider: "P00002",
            region: "440106",
            gpus: (0..8)
                .map(|i| {
                    if i < 4 {
                        Gpu {
                            utilization: 95,
                            used_gib: 70,
                            ..h100()
                        }
                    } else {
                        h100()
                    }
                })
                .collect(),
            ib: Some((200.0, "fe80:0000:0000:0001")),
            ..spec()
        },
        // 4: 4090s, Chengdu, a busy CPU, industry M.
        Spec {
            provider: "P00003",
            region: "510100",
            industry: "M73",
            cpu_util: 90.0,
            gpus: (0..8).map(|_| gpu("NVIDIA GeForce RTX 4090", 24)).collect(),
            ..spec()
        },
        // 5: Ascend 910B with MIG-like partitioning off, Guiyang, small disk.
        Spec {
            provider: "P00003",
            region: "520100",
            disk_free_gib: 10,
            gpus: (0..8).map(|_| gpu("Ascend 910B", 64)).collect(),
            ..spec()
        },
        // 6: H800 with MIG on, Slurm, Shanghai.
        Spec {
            provider: "P00004",
            region: "310000",
            slurm: true,
            gpus: (0..8)
                .map(|_| Gpu {
                    mig: true,
                    ..gpu("NVIDIA H800 PCIe", 80)
                })
                .collect(),
            ..spec()
        },
        // 7: like 2 but last seen 60 s ago (stale), Shenzhen.
        Spec {
            provider: "P00002",
            region: "440304",
            age_ms: Some(60_000),
            gpus: (0..8).map(|_| h100()).collect(),
            ..spec()
        },
        // 8: revoked.
        Spec {
            revoked: true,
            ..spec()
        },
    ]
}

#[test]
fn each_demand_field_selects_what_it_says() {
    let catalog = fleet(&showcase());
    let net = Network::default();
    let cases: Vec<(&str, Value, Vec<i64>)> = vec![
        (
            "anything free now",
            json!({"limit": 100}),
            vec![1, 2, 3, 4, 5, 6],
        ),
        (
            "installed: stale hosts too, never revoked",
            json!({"availability": "installed", "limit": 100}),
            vec![1, 2, 3, 4, 5, 6, 7],
        ),
        (
            "resource type A",
            json!({"resource_type": "A", "availability": "installed", "limit": 100}),
            vec![2, 3, 4, 5, 6, 7],
        ),
        (
            "resource type H (supercomputing: Slurm)",
            json!({"resource_type": "H", "availability": "installed"}),
            vec![6],
        ),
        (
            "resource type C",
            json!({"resource_type": "C", "availability": "installed", "limit": 100}),
            vec![1, 2, 3, 4, 5, 6, 7],
        ),
        (
            "model alias",
            json!({"accelerator": {"model": "H100"}, "availability": "installed", "limit": 100}),
            vec![2, 3, 7],
        ),
        (
            "vendor",
            json!({"accelerator": {"vendor": "ascend"}}),
            vec![5],
        ),
        (
            "vendor nvidia",
            json!({"accelerator": {"vendor": "nvidia"}, "limit": 100}),
            vec![2, 3, 4, 6],
        ),
        (
            "count per host, free now",
            json!({"accelerator": {"model": "H100", "count": 8}}),
            vec![2],
        ),
        (
            "count per host, installed",
            json!({"accelerator": {"model": "H100", "count": 8}, "availability": "installed", "limit": 100}),
            vec![2, 3, 7],
        ),
        (
            "min memory per accelerator",
            json!({"accelerator": {"min_memory_gib": 70}, "availability": "installed", "limit": 100}),
            vec![2, 3, 6, 7],
        ),
        (
            "min free memory",
            json!({"accelerator": {"min_free_memory_gib": 60, "count": 5}, "availability": "installed", "limit": 100}),
            vec![2, 5, 6, 7],
        ),
        ("nvlink", json!({"accelerator": {"nvlink": true}}), vec![2]),
        (
            "infiniband rate",
            json!({"accelerator": {"infiniband_gbps": 400}, "availability": "installed"}),
            vec![2],
        ),
        ("mig", json!({"accelerator": {"mig": true}}), vec![6]),
        (
            "cpu cores free now",
            json!({"cpu_cores": 60, "limit": 100}),
            vec![],
        ),
        (
            "cpu cores free now, fewer",
            json!({"cpu_cores": 50, "limit": 100}),
            vec![1, 2, 3, 5, 6],
        ),
        (
            "cpu cores installed",
            json!({"cpu_cores": 64, "availability": "installed", "limit": 100}),
            vec![1, 2, 3, 4, 5, 6, 7],
        ),
        (
            "memory free now",
            json!({"memory_gib": 440, "limit": 100}),
            vec![1, 2, 3, 4, 5, 6],
        ),
        ("memory too much", json!({"memory_gib": 450}), vec![]),
        (
            "memory installed",
            json!({"memory_gib": 500, "availability": "installed", "limit": 100}),
            vec![1, 2, 3, 4, 5, 6, 7],
        ),
        (
            "disk",
            json!({"disk_gib": 100, "resource_type": "A", "limit": 100}),
            vec![2, 3, 4, 6],
        ),
        (
            "region prefix, province",
            json!({"region": "44", "availability": "installed", "limit": 100}),
            vec![2, 3, 7],
        ),
        (
            "region prefix, city",
            json!({"region": "4403", "availability": "installed", "limit": 100}),
            vec![2, 7],
        ),
        (
            "providers",
            json!({"providers": ["P00003", "p00004"], "availability": "installed", "limit": 100}),
            vec![4, 5, 6],
        ),
        (
            "industries",
            json!({"industries": ["M"], "availability": "installed"}),
            vec![4],
        ),
        (
            "staleness bound",
            json!({"availability": "installed", "max_staleness_s": 30, "resource_type": "A", "limit": 100}),
            vec![2, 3, 4, 5, 6],
        ),
        (
            "latency from the user",
            json!({"user_region": "440305", "max_latency_ms": 6, "limit": 100}),
            vec![2, 3],
        ),
        (
            "expression",
            json!({"expression": "host.region.startsWith('44') && gpus.exists(g, g.free)", "limit": 100}),
            vec![2, 3],
        ),
        (
            "expression over gpus",
            json!({"expression": "size(gpus) == 8 && gpus.all(g, g.memory_bytes >= 80 * 1073741824)", "availability": "installed", "limit": 100}),
            vec![2, 3, 6, 7],
        ),
        // No temperature was read: an unknown figure is null, not 0, and does not pass.
        (
            "expression on an unread figure",
            json!({"expression": "gpus.all(g, g.temperature_celsius < 80)", "resource_type": "A", "limit": 100}),
            vec![],
        ),
        (
            "expression testing for it",
            json!({"expression": "gpus.all(g, g.temperature_celsius == null || g.temperature_celsius < 80)", "resource_type": "A", "limit": 100}),
            vec![2, 3, 4, 5, 6],
        ),
        ("limit", json!({"limit": 2}), vec![]),
    ];
    for (name, demand, expected) in cases {
        let answer = run(&catalog, &net, demand.clone());
        let got = hosts_of(&answer);
        if name == "limit" {
            assert_eq!(got.len(), 2, "{name}");
            continue;
        }
        assert_eq!(sorted(got), expected, "{name}: {demand}");
        // Every host not returned was eliminated by something, and said why.
        assert_eq!(answer.considered_hosts, 8);
        let failed = answer.considered_hosts - answer.matched_hosts;
        assert!(
            answer.eliminated.iter().map(|e| e.hosts).sum::<u64>() >= failed,
            "{name}"
        );
        assert_eq!(answer.nearest_misses.len() as u64, failed.min(5), "{name}");
    }
}

#[test]
fn why_nothing_matched_counts_each_constraint_and_names_the_nearest_misses() {
    let catalog = fleet(&showcase());
    let answer = run(
        &catalog,
        &Network::default(),
        json!({"accelerator": {"model": "H100", "count": 8, "nvlink": true}, "region": "4401"}),
    );
    assert!(answer.candidates.is_empty());
    let count = |c: &str| {
        answer
            .eliminated
            .iter()
            .find(|e| serde_json::to_value(e.constraint).unwrap() == c)
            .map_or(0, |e| e.hosts)
    };
    assert_eq!(count("region"), 7, "all but host 3 are outside 4401");
    assert_eq!(
        count("accelerators"),
        7,
        "only host 2 has 8 free H100 with NVLink"
    );
    assert_eq!(count("state"), 2, "stale and revoked");
    // Host 2 fails only the region; host 3 only the accelerators.
    let nearest: Vec<(i64, usize)> = answer
        .nearest_misses
        .iter()
        .map(|m| (m.host_id, m.failed.len()))
        .collect();
    assert_eq!(&nearest[..2], &[(2, 1), (3, 1)]);
    assert!(
        answer.nearest_misses[1].failed[0].detail.contains("4 of 8"),
        "4 free, none with NVLink: {:?}",
        answer.nearest_misses[1]
    );
    // The scheduling stream's one word: region and accelerators tie at 7;
    // the first in report order is named, as the API spells it.
    assert_eq!(selection::no_match_reason(&answer), Some("region"));
    for e in &answer.eliminated {
        assert_eq!(
            serde_json::to_value(e.constraint).unwrap(),
            e.constraint.as_str()
        );
    }
    assert_eq!(selection::lines_used(&answer), 0);
}

#[test]
fn a_total_capacity_takes_as_many_hosts_as_it_needs() {
    let catalog = fleet(&showcase());
    let h100 = 989_500; // FP16 dense, GFLOPS
    let ask = |tflops: u64, together: &str| {
        run(
            &catalog,
            &Network::default(),
            json!({"accelerator": {"model": "H100", "count": 4}, "together": together,
                   "capacity": {"precision": "fp16", "tflops": tflops}}),
        )
    };
    // Four free H100s on each of hosts 2 and 3: one is enough for 3 PFLOPS
    // and the best host answers; 6 PFLOPS takes both.
    let one = ask(3_000, "anywhere");
    assert_eq!(one.candidates.len(), 1, "one group when anywhere will do");
    assert_eq!(hosts_of(&one), [2]);
    assert_eq!(one.candidates[0].total_gflops, Some(4 * h100));
    let two = ask(6_000, "anywhere");
    assert_eq!(sorted(hosts_of(&two)), [2, 3]);
    assert_eq!(two.candidates[0].total_gflops, Some(8 * h100));
    assert_eq!(two.candidates[0].hosts[0].resources.len(), 4);
    // Per region, each host is a group of its own that reaches 3 PFLOPS.
    assert_eq!(ask(3_000, "region").candidates.len(), 2);
    // More than all of it: no candidate, and why.
    let short = ask(8_000, "anywhere");
    assert!(short.candidates.is_empty());
    let why = short.groups_short.as_deref().unwrap();
    assert!(why.contains("7916 TFLOPS"), "{why}");
    assert_eq!(selection::no_match_reason(&short), Some("group"));
    // Unrated accelerators give nothing: the RTX 4090s have no FP16 figure
    // in the table (host 4's busy CPU aside, they are free).
    let unrated = run(
        &catalog,
        &Network::default(),
        json!({"accelerator": {"model": "4090"}, "capacity": {"precision": "fp16", "tflops": 1}}),
    );
    assert!(unrated.candidates.is_empty(), "{:?}", unrated.candidates);
}

#[test]
fn a_gpu_that_becomes_busy_drops_out_at_its_next_sample() {
    let mut specs = showcase();
    let catalog = fleet(&specs);
    let demand = json!({"accelerator": {"model": "H100", "count": 8}});
    assert_eq!(
        hosts_of(&run(&catalog, &Network::default(), demand.clone())),
        vec![2]
    );
    // Host 2's next sample shows one GPU busy.
    specs[1].gpus[0].utilization = 100;
    specs[1].age_ms = Some(0);
    let next = fleet(&specs);
    let mut sample = HostSample {
        collected_at_unix_ms: NOW,
        ..Default::default()
    };
    sample.cpu.utilization_percent = Some(5.0);
    sample.gpus = (0..8)
        .map(|g| GpuSample {
            index: g,
            uuid: Some(format!("GPU-2-{g}")),
            utilization_percent: Some(if g == 0 { 100 } else { 0 }),
            memory_total_bytes: Some(80 * GIB),
            memory_used_bytes: Some(0),
            ..Default::default()
        })
        .collect();
    catalog.observe(2, 2, &sample, NOW);
    assert!(
        run(&catalog, &Network::default(), demand.clone())
            .candidates
            .is_empty()
    );
    assert!(
        run(&next, &Network::default(), demand)
            .candidates
            .is_empty()
    );
}

#[test]
fn a_held_gpu_is_offered_to_no_one_until_its_hold_ends() {
    let catalog = fleet(&showcase());
    let demand = json!({"accelerator": {"model": "H100", "count": 8}});
    assert_eq!(
        hosts_of(&run(&catalog, &Network::default(), demand.clone())),
        vec![2]
    );
    let (gpu, seen) = {
        let fleet = catalog.read();
        let host = &fleet.hosts[&2];
        (
            host.resources[1].identifier.clone(),
            host.last_seen_ms.unwrap(),
        )
    };
    let hold = |expires_at_ms: u64| Reservation {
        id: 1,
        host_id: 2,
        resources: vec![gpu.clone()],
        holder: "CN/alice".into(),
        provider_id: None,
        created_at_ms: NOW,
        expires_at_ms,
        ended_at_ms: None,
        ended_by: None,
    };
    catalog.set_holds("CN", &[hold(NOW + 60_000)]);
    let answer = run(&catalog, &Network::default(), demand.clone());
    assert!(answer.candidates.is_empty());
    let miss = format!("{:?}", answer.nearest_misses);
    assert!(
        miss.contains("7 of 8 matching accelerators free; GPU 0 held until"),
        "{miss}"
    );
    let installed =
        json!({"accelerator": {"model": "H100", "count": 8}, "availability": "installed"});
    assert!(
        !hosts_of(&run(&catalog, &Network::default(), installed)).contains(&2),
        "not offered as installed capacity either"
    );
    // A hold that ran out by the host's latest sample no longer counts.
    catalog.set_holds("CN", &[hold(seen)]);
    assert_eq!(
        hosts_of(&run(&catalog, &Network::default(), demand.clone())),
        vec![2]
    );
    catalog.set_holds("CN", &[hold(NOW + 60_000)]);
    catalog.set_holds("CN", &[]);
    assert_eq!(
        hosts_of(&run(&catalog, &Network::default(), demand)),
        vec![2]
    );
}

#[test]
fn paths_direct_multi_hop_public_and_unreachable() {
    let catalog = fleet(&showcase());
    let line = |id: &str, from: &str, to: &str, ms: f64, mbps: u64| LineEdge {
        line_id: id.into(),
        provider: "P00009".into(),
        from_region: from.into(),
        to_region: to.into(),
        latency_ms: ms,
        bandwidth_mbps: mbps,
        price_per_mbps_month: None,
    };
    let net = Network {
        lines: vec![
            line("GZ-CD", "440100", "510100", 8.0, 100_000),
            line("CD-GY", "510100", "520100", 3.0, 100_000),
        ],
        ..Default::default()
    };
    // From Guangzhou (440100), needing 10 Gb/s, which no public segment
    // carries: Chengdu by the direct line, Guiyang over two lines.
    let answer = run(
        &catalog,
        &net,
        json!({"user_region": "440100", "min_bandwidth_mbps": 10000, "availability": "installed", "limit": 100}),
    );
    let by_host = |id: i64| {
        answer
            .candidates
            .iter()
            .flat_map(|c| &c.hosts)
            .find(|h| h.host_id == id)
            .map(|h| h.path.clone().unwrap())
    };
    let chengdu = by_host(4).unwrap();
    assert_eq!(chengdu.latency_ms, 8.0);
    let guiyang = by_host(5).unwrap();
    let lines: Vec<String> = guiyang
        .segments
        .iter()
        .filter_map(|s| s.line_id.clone())
        .collect();
    assert_eq!(lines, ["GZ-CD", "CD-GY"]);
    assert_eq!(
        (guiyang.latency_ms, guiyang.bottleneck_mbps),
        (11.0, 100_000)
    );
    // With public segments narrower than the floor, Beijing is unreachable.
    assert!(by_host(1).is_none());
    let bandwidth = answer
        .eliminated
        .iter()
        .find(|e| serde_json::to_value(e.constraint).unwrap() == "bandwidth")
        .unwrap();
    assert!(bandwidth.hosts >= 1);
    // Public only: Beijing is 20 ms from Guangzhou.
    let public = run(
        &catalog,
        &Network::default(),
        json!({"user_region": "440106", "region": "11"}),
    );
    assert_eq!(
        public.candidates[0].hosts[0]
            .path
            .as_ref()
            .unwrap()
            .latency_ms,
        20.0
    );
}

#[test]
fn listed_prices_rank_cheaper_first_and_bound_the_answer() {
    use suanli_aggregator::price::{Price, PriceList, Priced};
    let h100 = || gpu("NVIDIA H100 80GB HBM3", 80);
    let a100 = || gpu("NVIDIA A100-SXM4-80GB", 80);
    let two = |g: Gpu| Spec {
        gpus: vec![g.clone(), g],
        ..spec()
    };
    // 1, 2, 3: alike but for price; 4 lists no price; 5 is A100s.
    let catalog = fleet(&[
        two(h100()),
        two(h100()),
        two(h100()),
        two(h100()),
        two(a100()),
    ]);
    let price = |resource, model: &str, cny_e4| Price {
        resource,
        model: model.into(),
        per_hour_cny_e4: cny_e4,
    };
    // Provider ids are host ids in this fleet.
    catalog.set_prices(
        1,
        PriceList(vec![price(Priced::Accelerator, "H100", 200_000)]),
    );
    catalog.set_prices(
        2,
        PriceList(vec![
            price(Priced::Accelerator, "", 300_000),
            price(Priced::Accelerator, "h100 80gb", 100_000),
            price(Priced::Cpu, "", 500),
        ]),
    );
    catalog.set_prices(
        3,
        PriceList(vec![price(Priced::Accelerator, "A100", 50_000)]),
    );
    catalog.set_prices(5, PriceList(vec![price(Priced::Accelerator, "", 80_000)]));
    let net = Network::default();

    let answer = run(
        &catalog,
        &net,
        json!({"accelerator": {"model": "H100", "count": 2}}),
    );
    let picks: Vec<&selection::HostPick> =
        answer.candidates.iter().flat_map(|c| &c.hosts).collect();
    // Host 2's most exact entry prices its H100s; host 3 lists A100s only.
    let priced: Vec<(i64, Option<&str>)> = picks
        .iter()
        .map(|h| (h.host_id, h.price_per_hour_cny.as_deref()))
        .collect();
    assert_eq!(
        sorted(priced.iter().map(|p| p.0).collect()),
        vec![1, 2, 3, 4]
    );
    for (host, want) in [(1, Some("40.00")), (2, Some("20.00")), (3, None), (4, None)] {
        assert!(priced.contains(&(host, want)), "{host}: {priced:?}");
    }
    // Price is the only difference: the cheaper host ranks first, the
    // cheapest scores a full price part, and not listing a price scores
    // none of it, so it never ranks above listing one.
    assert_eq!(hosts_of(&answer), vec![2, 1, 3, 4]);
    let part = |id: i64| picks.iter().find(|h| h.host_id == id).unwrap().parts.price;
    assert_eq!(part(2), Some(1.0));
    assert_eq!(part(1), Some(0.5));
    assert_eq!(part(3), Some(0.0));
    // Where no matching host lists a price, price is no part of the score.
    let unlisted = fleet(&[Spec {
        gpus: vec![h100()],
        ..spec()
    }]);
    let unpriced = run(&unlisted, &net, json!({"accelerator": {"model": "H100"}}));
    assert_eq!(unpriced.candidates[0].hosts[0].parts.price, None);

    // A maximum price: unpriced hosts and dearer ones fail it, in words.
    let bounded = run(
        &catalog,
        &net,
        json!({"accelerator": {"model": "H100", "count": 2}, "max_price_per_hour_cny": "30"}),
    );
    assert_eq!(hosts_of(&bounded), vec![2]);
    let price_misses = bounded
        .eliminated
        .iter()
        .find(|e| serde_json::to_value(e.constraint).unwrap() == "price")
        .unwrap();
    assert_eq!(price_misses.hosts, 3);
    let details: Vec<String> = bounded
        .nearest_misses
        .iter()
        .flat_map(|m| m.failed.iter().map(|f| f.detail.clone()))
        .collect();
    assert!(
        details.contains(&"40.00 CNY per hour".to_string()),
        "{details:?}"
    );
    assert!(
        details.contains(&"no price listed".to_string()),
        "{details:?}"
    );

    // One GPU of a model with only a catch-all entry.
    let any = run(&catalog, &net, json!({"accelerator": {"model": "A100"}}));
    assert_eq!(
        any.candidates[0].hosts[0].price_per_hour_cny.as_deref(),
        Some("8.00")
    );

    // CPU: the cores asked for at the core price.
    let cpu = run(
        &catalog,
        &net,
        json!({"cpu_cores": 16, "providers": ["P00001"], "max_price_per_hour_cny": 0.8}),
    );
    assert_eq!(hosts_of(&cpu), vec![2]);
    assert_eq!(
        cpu.candidates[0].hosts[0].price_per_hour_cny.as_deref(),
        Some("0.80")
    );
}

#[test]
fn several_hosts_all_or_nothing() {
    let h100 = || gpu("NVIDIA H100 80GB HBM3", 80);
    let gpu_host = |region: &'static str, fabric: &'static str| Spec {
        region,
        gpus: (0..8).map(|_| h100()).collect(),
        ib: Some((400.0, fabric)),
        ..spec()
    };
    let specs = vec![
        gpu_host("440305", "fe80:0000:0000:00aa"),
        gpu_host("440305", "fe80:0000:0000:00aa"),
        gpu_host("440305", "fe80:0000:0000:00bb"),
        gpu_host("310000", "fe80:0000:0000:00aa"),
        gpu_host("310000", "fe80:0000:0000:00cc"),
    ];
    let catalog = fleet(&specs);
    let net = Network::default();
    let ask = |hosts: u32, together: &str| {
        run(
            &catalog,
            &net,
            json!({"accelerator": {"model": "H100", "count": 8}, "hosts": hosts, "together": together}),
        )
    };
    let region = ask(3, "region");
    assert_eq!(region.candidates.len(), 1);
    assert_eq!(sorted(hosts_of(&region)), vec![1, 2, 3]);
    let fabric = ask(3, "fabric");
    assert_eq!(
        sorted(hosts_of(&fabric)),
        vec![1, 2, 4],
        "one fabric across two cities"
    );
    assert!(
        ask(4, "region").candidates.is_empty(),
        "nothing rather than three"
    );
    assert!(
        ask(4, "region")
            .groups_short
            .unwrap()
            .contains("largest group that qualifies has 3")
    );
    let anywhere = ask(5, "anywhere");
    assert_eq!(sorted(hosts_of(&anywhere)), vec![1, 2, 3, 4, 5]);
    assert!(ask(6, "anywhere").candidates.is_empty());
    // Each candidate group is whole and distinct hosts.
    for c in &ask(2, "region").candidates {
        assert_eq!(c.hosts.len(), 2);
        assert_eq!(c.hosts[0].region, c.hosts[1].region);
        assert_ne!(c.hosts[0].host_id, c.hosts[1].host_id);
    }
}

// ---- properties ----

const MODELS: &[(&str, u64)] = &[
    ("NVIDIA H100 80GB HBM3", 80),
    ("NVIDIA A100-SXM4-40GB", 40),
    ("NVIDIA GeForce RTX 4090", 24),
    ("Ascend 910B", 64),
];
const REGIONS: &[&str] = &["110108", "110105", "440305", "440106", "510100"];
const PROVIDERS: &[&str] = &["P00001", "P00002", "P00003"];

fn arb_spec() -> impl Strategy<Value = Spec> {
    (
        0..PROVIDERS.len(),
        0..REGIONS.len(),
        prop::sample::select(vec![8u32, 32, 64, 128]),
        0.0..100.0f64,
        prop::sample::select(vec![64u64, 256, 1024]),
        proptest::collection::vec((0..MODELS.len(), 0..=100u32, 0..=1u64), 0..=8),
        prop::option::of(0..120_000u64),
        any::<bool>(),
        prop::option::of((0..400_000i64, 0..2_000i64)),
    )
        .prop_map(|(p, r, cpus, util, mem, gpus, age, revoked, price)| Spec {
            provider: PROVIDERS[p],
            region: REGIONS[r],
            cpus,
            cpu_util: util,
            memory_gib: mem,
            used_gib: mem / 4,
            gpus: gpus
                .into_iter()
                .map(|(m, u, busy_mem)| Gpu {
                    utilization: u,
                    used_gib: busy_mem * MODELS[m].1 / 2,
                    ..gpu(MODELS[m].0, MODELS[m].1)
                })
                .collect(),
            age_ms: age,
            revoked: revoked && r == 0,
            price,
            ..spec()
        })
}

#[derive(Debug, Clone)]
struct ArbDemand {
    model: Option<usize>,
    count: u32,
    min_memory: Option<u64>,
    region: Option<&'static str>,
    provider: Option<usize>,
    cpu_cores: Option<u32>,
    installed: bool,
    staleness_s: Option<u64>,
    max_price_cny_e4: Option<i64>,
}

fn arb_demand() -> impl Strategy<Value = ArbDemand> {
    (
        prop::option::of(0..MODELS.len()),
        1..=8u32,
        prop::option::of(prop::sample::select(vec![24u64, 40, 64, 80])),
        prop::option::of(prop::sample::select(vec!["11", "1101", "44", "4403", "51"])),
        prop::option::of(0..PROVIDERS.len()),
        prop::option::of(prop::sample::select(vec![4u32, 16, 64, 100])),
        any::<bool>(),
        prop::option::of(1..100u64),
        prop::option::of(0..1_000_000i64),
    )
        .prop_map(
            |(
                model,
                count,
                min_memory,
                region,
                provider,
                cpu_cores,
                installed,
                staleness_s,
                max_price_cny_e4,
            )| {
                ArbDemand {
                    model,
                    count,
                    min_memory,
                    region,
                    provider,
                    cpu_cores,
                    installed,
                    staleness_s,
                    max_price_cny_e4,
                }
            },
        )
}

impl ArbDemand {
    fn wants_gpus(&self) -> bool {
        self.model.is_some() || self.min_memory.is_some()
    }

    fn json(&self) -> Value {
        let mut d = json!({"limit": 1000});
        if self.wants_gpus() {
            let mut a = json!({"count": self.count});
            if let Some(m) = self.model {
                a["model"] = json!(MODELS[m].0.split_whitespace().nth(1).unwrap_or("H100"));
            }
            if let Some(g) = self.min_memory {
                a["min_memory_gib"] = json!(g);
            }
            d["accelerator"] = a;
        }
        if let Some(r) = self.region {
            d["region"] = json!(r);
        }
        if let Some(p) = self.provider {
            d["providers"] = json!([PROVIDERS[p]]);
        }
        if let Some(c) = self.cpu_cores {
            d["cpu_cores"] = json!(c);
        }
        if self.installed {
            d["availability"] = json!("installed");
        }
        if let Some(s) = self.staleness_s {
            d["max_staleness_s"] = json!(s);
        }
        if let Some(p) = self.max_price_cny_e4 {
            d["max_price_per_hour_cny"] = json!(format!("{}.{:04}", p / 10_000, p % 10_000));
        }
        d
    }

    /// The oracle: written from the specs, not from the catalog.
    fn admits(&self, s: &Spec) -> bool {
        let online = !s.revoked && s.age_ms.is_some_and(|a| a <= 15_000);
        if s.revoked || (!self.installed && !online) {
            return false;
        }
        if let Some(bound) = self.staleness_s
            && s.age_ms.is_none_or(|a| a > bound * 1000)
        {
            return false;
        }
        if self.region.is_some_and(|r| !s.region.starts_with(r))
            || self.provider.is_some_and(|p| PROVIDERS[p] != s.provider)
        {
            return false;
        }
        if let Some(c) = self.cpu_cores {
            let have = if self.installed {
                f64::from(s.cpus)
            } else if s.age_ms.is_some() {
                f64::from(s.cpus) * (1.0 - s.cpu_util / 100.0)
            } else {
                return false;
            };
            if have + 1e-9 < f64::from(c) {
                return false;
            }
        }
        if self.wants_gpus() {
            let reported = s.age_ms.is_some();
            let good = s
                .gpus
                .iter()
                .filter(|g| {
                    self.model.is_none_or(|m| g.name == MODELS[m].0)
                        && self.min_memory.is_none_or(|min| g.memory_gib >= min)
                        && (self.installed
                            || (reported
                                && g.utilization < 10
                                && (g.used_gib as f64 / g.memory_gib as f64) < 0.10))
                })
                .count();
            if (good as u32) < self.count {
                return false;
            }
        }
        if let Some(max) = self.max_price_cny_e4 {
            let Some((gpu, core)) = s.price else {
                return false;
            };
            let price = if self.wants_gpus() {
                gpu * i64::from(self.count)
            } else {
                core * i64::from(self.cpu_cores.unwrap_or(s.cpus))
            };
            if price > max {
                return false;
            }
        }
        true
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Every candidate meets every hard constraint, and with a limit large
    /// enough no host that meets them is left out.
    #[test]
    fn candidates_are_exactly_the_hosts_the_oracle_admits(
        specs in proptest::collection::vec(arb_spec(), 1..25),
        demand in arb_demand(),
    ) {
        let catalog = fleet(&specs);
        let answer = run(&catalog, &Network::default(), demand.json());
        let got = sorted(hosts_of(&answer));
        let expected: Vec<i64> = specs
            .iter()
            .enumerate()
            .filter(|(_, s)| demand.admits(s))
            .map(|(i, _)| i as i64 + 1)
            .collect();
        prop_assert_eq!(&got, &expected, "demand {}", demand.json());
        prop_assert_eq!(answer.matched_hosts as usize, expected.len());
        // Each chosen accelerator is one of its host's, and as many as asked.
        for c in &answer.candidates {
            for h in &c.hosts {
                if demand.wants_gpus() {
                    prop_assert_eq!(h.resources.len() as u32, demand.count);
                    for r in &h.resources {
                        let prefix = format!("GPU-{}-", h.host_id);
                        prop_assert!(r.starts_with(&prefix));
                    }
                }
            }
        }
        // Ranked: scores never increase.
        for pair in answer.candidates.windows(2) {
            prop_assert!(pair[0].score >= pair[1].score);
        }
    }
}
