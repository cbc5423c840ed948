//! Market reports (市场监测) from a fleet built in memory: what K1 and K2
//! count, capacity in standard units, that reports of parts add up exactly
//! to the report of the whole, and every bad report a child could send.

#![allow(clippy::unwrap_used)]

#[path = "support/fleet.rs"]
mod fleet;

use fleet::*;
use suanli_aggregator::market::{self, RESOURCE_PERIOD_MS, Scale};
use suanli_protocol::{
    identifier::NodePrefix,
    node::{CapacityGroup, MarketReport},
};

const START: u64 = NOW - NOW % RESOURCE_PERIOD_MS;

fn specs() -> Vec<Spec> {
    let h100 = |utilization| Gpu {
        utilization,
        used_gib: if utilization > 0 { 70 } else { 0 },
        ..gpu("NVIDIA H100 80GB HBM3", 80)
    };
    vec![
        // 1: a CPU host in Beijing, 10 % busy: free.
        spec(),
        // 2: eight idle H100s in Shenzhen.
        Spec {
            region: "440305",
            gpus: (0..8).map(|_| h100(0)).collect(),
            ..spec()
        },
        // 3: two busy H100s in Shenzhen, the host 80 % busy.
        Spec {
            region: "440305",
            cpu_util: 80.0,
            gpus: vec![h100(90), h100(95)],
            ..spec()
        },
        // 4: a stale host with a card the table does not know.
        Spec {
            region: "110108",
            age_ms: Some(60_000),
            gpus: vec![gpu("NVIDIA GeForce RTX 4090", 24)],
            ..spec()
        },
        // 5: revoked: not counted.
        Spec {
            revoked: true,
            gpus: vec![gpu("NVIDIA H100 80GB HBM3", 80)],
            ..spec()
        },
    ]
}

fn report(specs: &[Spec]) -> MarketReport {
    let catalog = fleet(specs);
    market::resource_report(&catalog.read(), &NodePrefix::national(), START, NOW)
}

fn group<'a>(r: &'a MarketReport, region: &str, t: &str, model: &str) -> &'a CapacityGroup {
    r.groups
        .iter()
        .find(|g| g.region == region && g.resource_type == t && g.model == model)
        .unwrap_or_else(|| panic!("no group {region} {t} {model}: {r:#?}"))
}

fn capacity(g: &CapacityGroup, precision: &str) -> (u64, u64, u64) {
    let c = g
        .capacity
        .iter()
        .find(|c| c.precision == precision)
        .unwrap();
    (c.registered_gflops, c.available_gflops, c.unrated)
}

#[test]
fn k1_counts_what_is_registered_and_k2_what_is_free_now() {
    let r = report(&specs());
    assert_eq!(r.stream, "resource");
    assert_eq!(
        (r.period_start_ms, r.period_ms),
        (START, RESOURCE_PERIOD_MS)
    );
    assert!(!r.rating_table.is_empty());

    let h100 = group(&r, "440305", "A", "NVIDIA H100 80GB HBM3");
    assert_eq!((h100.registered, h100.online, h100.available), (10, 10, 8));
    assert_eq!(h100.memory_bytes, 10 * 80 * GIB);
    assert_eq!(h100.available_memory_bytes, 8 * 80 * GIB);
    // Dense FP16 from the table: 989.5 TFLOPS each.
    assert_eq!(capacity(h100, "fp16"), (10 * 989_500, 8 * 989_500, 0));
    assert_eq!(capacity(h100, "fp64"), (10 * 34_000, 8 * 34_000, 0));
    // Utilization in per-mille, summed over the online readings.
    assert_eq!(
        (h100.utilization_permille_sum, h100.utilization_readings),
        (900 + 950, 10)
    );

    // A model the table does not know: counted, its capacity absent.
    let unknown = group(&r, "110108", "A", "NVIDIA GeForce RTX 4090");
    assert_eq!(
        (unknown.registered, unknown.stale, unknown.available),
        (1, 1, 0)
    );
    assert_eq!(capacity(unknown, "fp16"), (0, 0, 1));
    assert_eq!(unknown.health_unknown, 1);
    assert_eq!(
        unknown.utilization_readings, 0,
        "a stale reading is not current"
    );

    // CPU hosts by region and instruction set: 32 cores × 2.0 GHz × 16
    // (AVX2 with FMA) = 1,024 GFLOPS FP64 each.
    let beijing = r
        .groups
        .iter()
        .filter(|g| g.region == "110108" && g.resource_type == "C")
        .fold(CapacityGroup::default(), |mut sum, g| {
            sum.registered += g.registered;
            sum.available += g.available;
            sum.logical_cpus += g.logical_cpus;
            sum
        });
    assert_eq!(beijing.registered, 2, "hosts 1 and 4; 5 is revoked");
    assert_eq!(beijing.available, 1, "host 4 is stale");
    assert_eq!(beijing.logical_cpus, 128);
    let shenzhen_cpus = r
        .groups
        .iter()
        .find(|g| g.region == "440305" && g.resource_type == "C")
        .unwrap();
    assert_eq!(capacity(shenzhen_cpus, "fp64"), (2 * 1_024, 1_024, 0));
    assert_eq!(capacity(shenzhen_cpus, "fp32"), (2 * 2_048, 2_048, 0));
    assert!(
        shenzhen_cpus
            .capacity
            .iter()
            .all(|c| c.precision.starts_with("fp")),
        "CPUs are rated in fp64 and fp32 only"
    );

    // The headline figures.
    let headline = Scale::of(&r.groups).headline();
    assert_eq!(headline.intelligent_fp16_gflops, 10 * 989_500);
    assert_eq!(headline.general_fp32_gflops, 4 * 2_048);
    assert_eq!(
        headline.fp32_equivalent_gflops,
        10 * 989_500 / 2 + 4 * 2_048
    );

    // What a node sends, its parent accepts.
    market::check_report(&r, &NodePrefix::national(), NOW).unwrap();
}

#[test]
fn reports_of_the_parts_add_up_exactly_to_the_report_of_the_whole() {
    let all = specs();
    for split in 1..all.len() {
        let (a, b) = all.split_at(split);
        let whole = report(&all).groups;
        // Host ids differ between the two builds; what is counted does not.
        let summed = market::sum([&report(a), &report(b)]);
        assert_eq!(summed, whole, "split at {split}");
    }
}

fn bad(edit: impl FnOnce(&mut MarketReport), expect: &str) {
    let mut r = report(&specs());
    r.origin = "CN.44.I65".into();
    for g in &mut r.groups {
        // The Beijing hosts would be outside Guangdong (44).
        g.region = format!("44{}", &g.region[2..]);
    }
    let r = MarketReport {
        groups: market::sum([&r]),
        ..r
    };
    let child = NodePrefix::parse("CN.44").unwrap();
    market::check_report(&r, &child, NOW).unwrap();
    let mut broken = r.clone();
    edit(&mut broken);
    let why = market::check_report(&broken, &child, NOW).unwrap_err();
    assert!(why.contains(expect), "{expect:?} not in {why:?}");
}

#[test]
fn each_bad_report_is_refused_with_its_reason() {
    bad(
        |r| r.origin = "CN.32.I65".into(),
        "outside the child's prefix",
    );
    bad(|r| r.origin = "not a prefix".into(), "origin");
    bad(
        |r| r.groups[0].region = "320102".into(),
        "outside the child's province 44",
    );
    bad(
        |r| r.groups[0].region = "4403".into(),
        "not a GB/T 2260 code",
    );
    bad(
        |r| {
            let g = &mut r.groups[0];
            g.available = g.registered + 1;
        },
        "K2 available",
    );
    bad(
        |r| {
            let c = &mut r.groups[0].capacity[0];
            c.available_gflops = c.registered_gflops + 1;
        },
        "K2 above K1",
    );
    // A negative count wrapped into the unsigned field.
    bad(
        |r| {
            let g = &mut r.groups[0];
            g.online = 0u64.wrapping_sub(5);
        },
        "negative",
    );
    bad(|r| r.period_start_ms = START + 3_600_000, "in the future");
    bad(|r| r.period_start_ms = START + 1, "aligned");
    bad(|r| r.stream = "gossip".into(), "unknown stream");
    bad(
        |r| r.groups[0].capacity[0].precision = "fp4".into(),
        "precision \"fp4\"",
    );
    bad(
        |r| {
            let first = r.groups[0].clone();
            r.groups.push(first);
        },
        "appears twice",
    );
    bad(
        |r| {
            let g = r.groups[0].clone();
            r.groups = vec![g; suanli_protocol::node::MAX_GROUPS_PER_REPORT + 1];
        },
        "at most",
    );
    bad(|r| r.groups[0].healthy += 1, "health classes");
}

fn calls(class: &str, credential: &str, status: &str, calls: u64) -> market::ApiCalls {
    market::ApiCalls {
        route_class: class.into(),
        credential: credential.into(),
        status_class: status.into(),
        calls,
    }
}

#[test]
fn the_hourly_streams_count_and_their_sums_are_exact() {
    use market::{PlatformHour, SelectionFact};
    let hour = PlatformHour {
        accounts_by_role: vec![("admin".into(), 1), ("provider".into(), 3)],
        audit: vec![("login.failed".into(), 4), ("node.revoke".into(), 1)],
        registrations_submitted: 2,
        reviews: vec![
            ("approved".into(), 1_800_000),
            ("rejected".into(), 90_000_000),
        ],
        resource_periods: 360,
        api_calls: vec![
            calls("hosts", "session", "2xx", 40),
            calls("hosts", "api_key", "4xx", 3),
            calls("selection", "api_key", "2xx", 7),
            calls("selection", "api_key", "5xx", 1),
        ],
    };
    let platform = market::platform_figures(&hour);
    let get = |figures: &[suanli_protocol::node::Figure], name: &str, label: &str| {
        figures
            .iter()
            .find(|f| f.name == name && f.label == label)
            .map(|f| f.value)
    };
    assert_eq!(get(&platform, "accounts", "provider"), Some(3));
    assert_eq!(get(&platform, "registrations_approved", ""), Some(1));
    assert_eq!(get(&platform, "sign_ins_failed", ""), Some(4));
    assert_eq!(get(&platform, "revocations", "node"), Some(1));
    assert_eq!(
        get(&platform, "up_seconds", ""),
        Some(3_600),
        "up the whole hour"
    );
    // Review time in cumulative buckets: 30 min, then 25 h.
    assert_eq!(get(&platform, "review_seconds", "le=3600"), Some(1));
    assert_eq!(get(&platform, "review_seconds", "le=86400"), Some(1));
    assert_eq!(get(&platform, "review_seconds", "le=259200"), Some(2));
    assert_eq!(get(&platform, "review_seconds", "le=+Inf"), Some(2));
    // The API's calls and errors by route class, and the application
    // stream's calls made with API keys.
    assert_eq!(get(&platform, "api_calls", "hosts"), Some(43));
    assert_eq!(get(&platform, "api_calls", "selection"), Some(8));
    assert_eq!(get(&platform, "api_client_errors", "hosts"), Some(3));
    assert_eq!(get(&platform, "api_server_errors", "selection"), Some(1));
    assert_eq!(get(&platform, "api_server_errors", "hosts"), None);
    let application = market::application_figures(2, &hour.api_calls);
    assert_eq!(get(&application, "api_keys_active", ""), Some(2));
    assert_eq!(get(&application, "api_key_calls", "selection"), Some(8));
    assert_eq!(get(&application, "api_key_calls", "hosts"), Some(3));

    let fact = |us, matched, user: Option<&str>, chosen: Option<&str>| SelectionFact {
        elapsed_us: us,
        matched,
        user_region: user.map(str::to_owned),
        chosen_province: chosen.map(str::to_owned),
        no_match: (!matched).then(|| "accelerators".to_owned()),
        lines_used: u64::from(chosen == Some("11")),
    };
    let scheduling = market::scheduling_figures(&[
        fact(800, true, Some("440305"), Some("44")),
        fact(5_000, true, Some("440305"), Some("11")),
        fact(2_000_000, false, None, None),
        SelectionFact {
            no_match: Some("region".into()),
            ..fact(900, false, None, None)
        },
    ]);
    assert_eq!(
        get(&scheduling, "selections_no_match", "accelerators"),
        Some(1)
    );
    assert_eq!(get(&scheduling, "selections_no_match", "region"), Some(1));
    assert_eq!(get(&scheduling, "selections_over_lines", ""), Some(1));
    assert_eq!(get(&scheduling, "selections_requested", ""), Some(4));
    assert_eq!(get(&scheduling, "selections_matched", ""), Some(2));
    assert_eq!(get(&scheduling, "selections_cross_region", ""), Some(1));
    assert_eq!(get(&scheduling, "answer_us", "le=1000"), Some(2));
    assert_eq!(get(&scheduling, "answer_us", "le=1000000"), Some(3));
    assert_eq!(get(&scheduling, "answer_us", "le=+Inf"), Some(4));

    // Two nodes' hours add up figure by figure, and a parent accepts them.
    let hourly = |origin: &str, figures| MarketReport {
        origin: origin.into(),
        stream: "platform".into(),
        period_start_ms: NOW - NOW % market::HOURLY_MS - market::HOURLY_MS,
        period_ms: market::HOURLY_MS,
        figures,
        ..MarketReport::default()
    };
    let a = hourly("CN.44", platform.clone());
    let b = hourly(
        "CN.44.I65",
        market::platform_figures(&PlatformHour::default()),
    );
    let summed = market::sum_figures([&a, &b]);
    assert_eq!(get(&summed, "accounts", "provider"), Some(3));
    assert_eq!(get(&summed, "registrations_submitted", ""), Some(2));
    let child = NodePrefix::parse("CN.44").unwrap();
    market::check_report(&a, &child, NOW).unwrap();
    market::check_report(&b, &child, NOW).unwrap();

    // Bad hourly reports.
    let refused = |edit: &dyn Fn(&mut MarketReport), expect: &str| {
        let mut r = a.clone();
        edit(&mut r);
        let why = market::check_report(&r, &child, NOW).unwrap_err();
        assert!(why.contains(expect), "{expect:?} not in {why:?}");
    };
    refused(
        &|r| r.period_ms = 10_000,
        "periods are 3600000 ms or 86400000 ms",
    );
    refused(&|r| r.period_start_ms += 10_000, "aligned");
    refused(&|r| r.figures.push(r.figures[0].clone()), "appears twice");
    refused(&|r| r.figures[0].name = "Accounts!".into(), "figure name");
    refused(&|r| r.figures[0].label = "a\nb".into(), "control");
    refused(&|r| r.figures[0].value = u64::MAX, "negative");
    refused(
        &|r| r.groups.push(CapacityGroup::default()),
        "no capacity groups",
    );
    let mut resource = report(&specs()[..1]);
    resource.origin = "CN.44.I65".into();
    resource.groups.clear();
    resource.figures = platform;
    let why = market::check_report(&resource, &child, NOW).unwrap_err();
    assert!(why.contains("not figures"), "{why}");
}

#[test]
fn the_trend_has_a_point_per_period_summed_over_its_reports() {
    let all = specs();
    let (a, b) = all.split_at(2);
    let at = |r: MarketReport, start: u64, origin: &str| MarketReport {
        period_start_ms: start,
        origin: origin.into(),
        ..r
    };
    let earlier = START - 300_000;
    let points = market::trend(&[
        at(report(a), START, "CN.44"),
        at(report(b), START, "CN.11"),
        at(report(a), earlier, "CN.44"),
    ]);
    assert_eq!(points.len(), 2);
    assert_eq!((points[0].period_start_ms, points[0].origins), (earlier, 1));
    let now = &points[1];
    assert_eq!(now.origins, 2);
    // Hosts 2 and 3: ten H100s, eight idle; the RTX 4090 counts unrated.
    assert_eq!(now.accelerators, 11);
    assert_eq!(now.accelerators_available, 8);
    assert_eq!(now.headline.intelligent_fp16_gflops, 10 * 989_500);
    assert_eq!(now.available_intelligent_fp16_gflops, 8 * 989_500);
    assert_eq!(now.accelerator_utilization_permille, Some((900 + 950) / 10));
    assert_eq!(points[0].accelerators, 8, "only host 2 before");
}

/// The hour before the one `NOW` falls in, and its 360 ten-second reports:
/// the first 240 of the whole fleet, the last 120 of hosts 1 and 2 only.
fn an_hour() -> (u64, Vec<MarketReport>) {
    let hour = market::period_start(NOW, market::HOURLY_MS) - market::HOURLY_MS;
    let (all, some) = (report(&specs()), report(&specs()[..2]));
    let parts = (0..360u64)
        .map(|i| MarketReport {
            period_start_ms: hour + i * RESOURCE_PERIOD_MS,
            ..if i < 240 { all.clone() } else { some.clone() }
        })
        .collect();
    (hour, parts)
}

#[test]
fn an_hours_rollup_sums_its_periods_and_its_mean_is_time_weighted() {
    let (hour, parts) = an_hour();
    let origin = NodePrefix::national().to_string();
    let rolled = market::rollup(&origin, "resource", market::HOURLY_MS, hour, &parts);
    assert_eq!(rolled.periods, 360);
    let h100 = |r: &MarketReport| group(r, "440305", "A", "NVIDIA H100 80GB HBM3").clone();
    let (whole, part) = (h100(&parts[0]), h100(&parts[359]));
    let sum = h100(&rolled);
    // Exact sums over the periods: 240 of ten H100s, 120 of eight.
    assert_eq!(sum.registered, 240 * 10 + 120 * 8);
    assert_eq!(
        capacity(&sum, "fp16").0,
        240 * capacity(&whole, "fp16").0 + 120 * capacity(&part, "fp16").0
    );
    // Utilization time-weighted: a reading of each card in each period,
    // two of them busy (90, 95) in the first 240.
    assert_eq!(sum.utilization_readings, 3360);
    assert_eq!(sum.utilization_permille_sum, 240 * (900 + 950));
    // The mean over the hour: (240 × 10 + 120 × 8) / 360 = 9.33 → 9.
    let mean = market::mean(&rolled);
    let m = mean
        .iter()
        .find(|g| g.region == "440305" && g.resource_type == "A")
        .unwrap();
    assert_eq!(m.registered, 9);
    assert_eq!(m.utilization_permille_sum, sum.utilization_permille_sum);
    // The same parts make the same bytes (every replica, every retry).
    assert_eq!(
        market::rollup(&origin, "resource", market::HOURLY_MS, hour, &parts).encode(),
        rolled.clone().encode()
    );
    // A parent takes it once the hour is over.
    market::check_report(&rolled, &NodePrefix::national(), NOW).unwrap();
    let why = market::check_report(&rolled, &NodePrefix::national(), hour + 1_800_000).unwrap_err();
    assert!(why.contains("before the period is over"), "{why}");

    // A day of such hours: 24 hourly means summed, periods 24, and the
    // trend over days reads the same mean.
    let day = market::period_start(hour, market::DAILY_MS);
    let hours: Vec<MarketReport> = (0..24)
        .map(|i| MarketReport {
            period_start_ms: day + i * market::HOURLY_MS,
            ..rolled.clone()
        })
        .collect();
    let daily = market::rollup(&origin, "resource", market::DAILY_MS, day, &hours);
    assert_eq!(daily.periods, 24);
    assert_eq!(h100(&daily).registered, 24 * 9);
    assert_eq!(
        h100(&daily).utilization_permille_sum,
        24 * sum.utilization_permille_sum
    );
    let point = &market::trend(std::slice::from_ref(&daily))[0];
    assert_eq!(
        point.accelerators,
        9 + 1,
        "nine H100s and the RTX 4090 on average"
    );
    assert_eq!(
        point.accelerator_utilization_permille,
        Some(240 * 1850 / 3360)
    );
    market::check_report(&daily, &NodePrefix::national(), day + market::DAILY_MS).unwrap();
}

#[test]
fn rollups_of_the_parts_add_up_to_the_rollup_of_the_whole() {
    let all = specs();
    let hour = market::period_start(NOW, market::HOURLY_MS) - market::HOURLY_MS;
    let periods = |specs: &[Spec]| -> Vec<MarketReport> {
        let r = report(specs);
        (0..360u64)
            .map(|i| MarketReport {
                period_start_ms: hour + i * RESOURCE_PERIOD_MS,
                ..r.clone()
            })
            .collect()
    };
    let roll =
        |parts: &[MarketReport]| market::rollup("CN", "resource", market::HOURLY_MS, hour, parts);
    let whole = roll(&periods(&all));
    let (a, b) = all.split_at(2);
    assert_eq!(
        market::sum([&roll(&periods(a)), &roll(&periods(b))]),
        whole.groups
    );
}

#[test]
fn bad_rollups_are_refused_with_their_reason() {
    let (hour, parts) = an_hour();
    let rolled = market::rollup("CN.44", "resource", market::HOURLY_MS, hour, &parts);
    let child = NodePrefix::parse("CN.44").unwrap();
    let refused = |edit: &dyn Fn(&mut MarketReport), expect: &str| {
        let mut r = rolled.clone();
        for g in &mut r.groups {
            g.region = format!("44{}", &g.region[2..]);
        }
        r.groups = market::sum([&r]);
        market::check_report(&r, &child, NOW).unwrap();
        edit(&mut r);
        let why = market::check_report(&r, &child, NOW).unwrap_err();
        assert!(why.contains(expect), "{expect:?} not in {why:?}");
    };
    refused(&|r| r.periods = 361, "between 1 and 360");
    refused(&|r| r.periods = 0, "between 1 and 360");
    refused(&|r| r.period_ms = 7_200_000, "periods are");
    // A day starts at midnight Beijing time, not UTC.
    refused(
        &|r| {
            r.period_ms = market::DAILY_MS;
            r.periods = 1;
            r.period_start_ms = NOW - NOW % market::DAILY_MS - market::DAILY_MS;
        },
        "midnight Beijing time",
    );
    refused(
        &|r| {
            r.period_ms = RESOURCE_PERIOD_MS;
            r.periods = 2;
        },
        "only rollups sum",
    );
}

#[test]
fn a_days_rollup_of_the_hourly_streams_adds_counts_and_keeps_levels() {
    use suanli_protocol::node::Figure;
    let f = |name: &str, label: &str, value| Figure {
        name: name.into(),
        label: label.into(),
        value,
    };
    let day = market::period_start(NOW, market::DAILY_MS) - market::DAILY_MS;
    let hours: Vec<MarketReport> = (0..24u64)
        .map(|i| MarketReport {
            origin: "CN".into(),
            stream: "platform".into(),
            period_start_ms: day + i * market::HOURLY_MS,
            period_ms: market::HOURLY_MS,
            // A viewer account until the last hour, when it went.
            figures: if i < 23 {
                vec![
                    f("accounts", "admin", 1 + i / 12),
                    f("accounts", "viewer", 1),
                    f("sign_ins_failed", "", i),
                ]
            } else {
                vec![f("accounts", "admin", 2), f("sign_ins_failed", "", i)]
            },
            ..MarketReport::default()
        })
        .collect();
    // Handed over in any order.
    let mut shuffled = hours.clone();
    shuffled.reverse();
    let daily = market::rollup("CN", "platform", market::DAILY_MS, day, &shuffled);
    assert_eq!(daily.periods, 24);
    assert_eq!(
        daily.figures,
        vec![
            f("accounts", "admin", 2),
            f("sign_ins_failed", "", (0..24).sum())
        ]
    );
    market::check_report(&daily, &NodePrefix::national(), NOW).unwrap();
}

#[test]
fn a_day_of_hosts_changing_state_mid_hour_still_adds_up_at_the_parent() {
    // One H100 host online for half of every hour and stale for the other
    // half: each class's mean rounds to a half, and a naive rounding would
    // make online + stale + offline 2 of 1 registered.
    let origin = "CN.44";
    let one = Spec {
        region: "440305",
        gpus: vec![gpu("NVIDIA H100 80GB HBM3", 80)],
        ..spec()
    };
    let hour_of = |start: u64| {
        let stale = Spec {
            age_ms: Some(60_000),
            ..one.clone()
        };
        let (online, stale) = (report(std::slice::from_ref(&one)), report(&[stale]));
        let parts: Vec<MarketReport> = (0..360u64)
            .map(|i| {
                let r = if i % 2 == 0 { &online } else { &stale };
                MarketReport {
                    origin: origin.into(),
                    period_start_ms: start + i * RESOURCE_PERIOD_MS,
                    groups: r
                        .groups
                        .iter()
                        .map(|g| CapacityGroup {
                            region: format!("44{}", &g.region[2..]),
                            ..g.clone()
                        })
                        .collect(),
                    ..r.clone()
                }
            })
            .collect();
        market::rollup(origin, "resource", market::HOURLY_MS, start, &parts)
    };
    let day = market::period_start(NOW, market::DAILY_MS) - market::DAILY_MS;
    let hours: Vec<MarketReport> = (0..24)
        .map(|i| hour_of(day + i * market::HOURLY_MS))
        .collect();
    let child = NodePrefix::parse("CN.44").unwrap();
    market::check_report(&hours[0], &child, NOW).unwrap();
    let daily = market::rollup(origin, "resource", market::DAILY_MS, day, &hours);
    market::check_report(&daily, &child, NOW).unwrap();
    for g in market::mean(&hours[0]) {
        assert_eq!(g.online + g.stale + g.offline, g.registered, "{g:?}");
        assert!(g.available <= g.online, "{g:?}");
    }
}

#[test]
fn a_time_past_any_clock_is_refused_not_a_panic() {
    let mut r = report(&specs());
    r.period_start_ms = u64::MAX - 5;
    let why = market::check_report(&r, &NodePrefix::national(), NOW).unwrap_err();
    assert!(why.contains("aligned") || why.contains("future"), "{why}");
    assert_eq!(market::period_start(u64::MAX, market::DAILY_MS) % 1000, 0);
}
