//! 市场监测: market monitoring up the tree. Each node reports its own
//! figures per period (the resource stream, flow 7: K1 registered and K2
//! available per region, resource type and model, with capacity in standard
//! units) and relays its descendants' unchanged; a node's subtree figures
//! are the sum of every report of the period, so they add up exactly at
//! every level. Pure: the fleet and the time in, reports out.
//! Every figure's formula, unit and period: docs/market-monitoring.md.

use std::collections::BTreeMap;

use suanli_protocol::{
    identifier::{Identifier, NodePrefix, ResourceType},
    node::{
        CapacityGroup, Figure, MAX_FIGURES_PER_REPORT, MAX_GROUPS_PER_REPORT, MarketReport,
        PrecisionCapacity,
    },
};

use crate::{
    alerting,
    capacity::{self, Precision, Rating},
    fleet::{Fleet, HostState},
    health::Health,
};

/// The resource stream (flow 7).
pub const RESOURCE_STREAM: &str = "resource";
/// K1 and K2 are reported every 10 s.
pub const RESOURCE_PERIOD_MS: u64 = 10_000;
/// The hourly streams: platform business (flow 8), scheduling business
/// (9), application business (10).
pub const PLATFORM_STREAM: &str = "platform";
pub const SCHEDULING_STREAM: &str = "scheduling";
pub const APPLICATION_STREAM: &str = "application";
pub const HOURLY_MS: u64 = 3_600_000;
pub const DAILY_MS: u64 = 86_400_000;
/// Every stream with its base period.
pub const STREAMS: [(&str, u64); 4] = [
    (RESOURCE_STREAM, RESOURCE_PERIOD_MS),
    (PLATFORM_STREAM, HOURLY_MS),
    (SCHEDULING_STREAM, HOURLY_MS),
    (APPLICATION_STREAM, HOURLY_MS),
];
/// Days (and hours, and 10 s) start at midnight Beijing time (UTC+8, no
/// daylight saving): a period starts where `start + ALIGN_MS` is a multiple
/// of its length. For periods that divide an hour this is the epoch's own
/// alignment.
pub const ALIGN_MS: u64 = 8 * HOURLY_MS;

/// Each period's length as the API and the CLI write it.
pub const PERIOD_NAMES: [(&str, u64); 3] = [
    ("10s", RESOURCE_PERIOD_MS),
    ("1h", HOURLY_MS),
    ("1d", DAILY_MS),
];

/// The base period of a stream, if Suanli knows the stream.
pub fn period_of(stream: &str) -> Option<u64> {
    STREAMS.iter().find(|(s, _)| *s == stream).map(|(_, p)| *p)
}

/// The periods a stream is reported in: its base period, then its
/// rollups (the hour of the resource stream, the day of every stream),
/// each made by the origin from its own reports of the period before.
pub fn periods_of(stream: &str) -> &'static [u64] {
    match period_of(stream) {
        Some(RESOURCE_PERIOD_MS) => &[RESOURCE_PERIOD_MS, HOURLY_MS, DAILY_MS],
        Some(_) => &[HOURLY_MS, DAILY_MS],
        None => &[],
    }
}

/// What a rollup of `period_ms` is summed from: the stream's period just
/// shorter. None for a base period (or one the stream does not have).
pub fn rolled_up_from(stream: &str, period_ms: u64) -> Option<u64> {
    let periods = periods_of(stream);
    let i = periods.iter().position(|p| *p == period_ms)?;
    i.checked_sub(1).map(|j| periods[j])
}

/// How many periods a rollup of `period_ms` sums at most: the periods of
/// its source within it (360 ten-second periods in an hour, 24 hours in a
/// day).
pub fn max_periods(stream: &str, period_ms: u64) -> u64 {
    rolled_up_from(stream, period_ms).map_or(1, |from| period_ms / from)
}

/// How long reports of a period are kept, sent or not: a parent away
/// longer than this misses the periods before. The 10 s reports hold three
/// days; the hourly ones 35 days (30-day trends); the daily ones 400.
pub fn retention_ms(period_ms: u64) -> u64 {
    match period_ms {
        RESOURCE_PERIOD_MS => RETENTION_MS,
        HOURLY_MS => 35 * DAILY_MS,
        _ => 400 * DAILY_MS,
    }
}

/// The retention of the 10 s reports.
pub const RETENTION_MS: u64 = 3 * DAILY_MS;
/// How far ahead of this node's clock a child's period may start (clocks
/// are NTP-synchronised; this is the slack for those that are not quite).
pub const CLOCK_SLACK_MS: u64 = 60_000;
/// Larger than any real count: a negative number wrapped into an unsigned
/// field by a broken encoder lands far above it.
const MAX_COUNT: u64 = 1 << 53;

/// How far `at_ms` is into its period: `(at_ms + ALIGN_MS) mod period`,
/// without the sum overflowing for a time near `u64::MAX`.
fn into_period(at_ms: u64, period_ms: u64) -> u64 {
    (at_ms % period_ms + ALIGN_MS % period_ms) % period_ms
}

/// The start of the period `at_ms` falls in (the first day of 1970, which
/// began before its Beijing midnight, starts at 0).
pub fn period_start(at_ms: u64, period_ms: u64) -> u64 {
    at_ms.saturating_sub(into_period(at_ms, period_ms))
}

/// Whether a period of this length may start at `start_ms`.
pub fn aligned(start_ms: u64, period_ms: u64) -> bool {
    period_ms > 0 && into_period(start_ms, period_ms) == 0
}

/// The precisions a resource type is rated in.
fn precisions(resource_type: &str) -> &'static [Precision] {
    if resource_type == "A" {
        &Precision::ALL
    } else {
        &Precision::CPU
    }
}

/// A group being counted: the wire's figures plus capacity by precision.
#[derive(Default)]
struct Counting {
    group: CapacityGroup,
    registered: [u64; 8],
    available: [u64; 8],
    unrated: [u64; 8],
}

impl Counting {
    fn add(&mut self, one: Resource) {
        let g = &mut self.group;
        g.registered += 1;
        match one.state {
            HostState::Online => g.online += 1,
            HostState::Stale => g.stale += 1,
            HostState::Offline | HostState::Revoked => g.offline += 1,
        }
        match one.health {
            Health::Healthy => g.healthy += 1,
            Health::Degraded => g.degraded += 1,
            Health::Critical => g.critical += 1,
            Health::Unknown => g.health_unknown += 1,
        }
        let memory = one.memory_bytes.unwrap_or(0);
        let cpus = u64::from(one.logical_cpus.unwrap_or(0));
        g.memory_bytes += memory;
        g.logical_cpus += cpus;
        if one.available {
            g.available += 1;
            g.available_memory_bytes += memory;
            g.available_logical_cpus += cpus;
        }
        if let Some(percent) = one.utilization_percent {
            g.utilization_permille_sum += (percent * 10.0).round().clamp(0.0, 1000.0) as u64;
            g.utilization_readings += 1;
        }
        for p in precisions(&g.resource_type) {
            let i = *p as usize;
            match one.rating.get(*p) {
                Some(gflops) => {
                    self.registered[i] += gflops;
                    if one.available {
                        self.available[i] += gflops;
                    }
                }
                None => self.unrated[i] += 1,
            }
        }
    }

    fn finish(mut self) -> CapacityGroup {
        self.group.capacity = precisions(&self.group.resource_type)
            .iter()
            .map(|p| {
                let i = *p as usize;
                PrecisionCapacity {
                    precision: p.as_str().to_owned(),
                    registered_gflops: self.registered[i],
                    available_gflops: self.available[i],
                    unrated: self.unrated[i],
                }
            })
            .collect();
        self.group
    }
}

/// One resource as a report counts it.
struct Resource {
    state: HostState,
    health: Health,
    available: bool,
    memory_bytes: Option<u64>,
    logical_cpus: Option<u32>,
    utilization_percent: Option<f64>,
    rating: Rating,
}

/// This node's own resource report for the period starting at
/// `period_start_ms`, as the fleet stands at `now_ms`. Revoked hosts are
/// not counted.
pub fn resource_report(
    fleet: &Fleet,
    origin: &NodePrefix,
    period_start_ms: u64,
    now_ms: u64,
) -> MarketReport {
    let table = &*capacity::TABLE;
    let ratings: Vec<Rating> = fleet.models.iter().map(|key| table.rate(key)).collect();
    let mut groups: BTreeMap<(&str, char, &str), Counting> = BTreeMap::new();
    for host in fleet.hosts.values().filter(|h| !h.revoked) {
        let state = host.state(now_ms);
        let online = state == HostState::Online;
        let healths = alerting::resource_healths(host, now_ms);
        if let Some(own) = host.own_resource() {
            let rating = host
                .inventory
                .as_deref()
                .map(|i| capacity::rate_cpu(&i.cpu).0)
                .unwrap_or_default();
            let model = host.figures.cpu_family.unwrap_or("");
            let counting = groups
                .entry((host.region.as_str(), own.resource_type.code(), model))
                .or_insert_with(|| new_counting(&host.region, own.resource_type, model));
            counting.add(Resource {
                state,
                health: healths.first().copied().unwrap_or(Health::Unknown),
                available: host.free_now(own, now_ms) == Some(true),
                memory_bytes: host.figures.memory_total_bytes,
                logical_cpus: host.figures.logical_cpus,
                utilization_percent: host.figures.cpu_utilization_percent.filter(|_| online),
                rating,
            });
        }
        for brief in &host.gpu_briefs {
            let model = fleet.model_name(brief.model_id);
            let counting = groups
                .entry((host.region.as_str(), 'A', model))
                .or_insert_with(|| new_counting(&host.region, ResourceType::AiAccelerator, model));
            counting.add(Resource {
                state,
                health: healths
                    .get(brief.slot as usize)
                    .copied()
                    .unwrap_or(Health::Unknown),
                available: online && brief.idle,
                memory_bytes: brief.memory_total_bytes,
                logical_cpus: None,
                utilization_percent: brief.utilization_percent.filter(|_| online).map(f64::from),
                rating: ratings
                    .get(brief.model_id as usize)
                    .copied()
                    .unwrap_or_default(),
            });
        }
    }
    MarketReport {
        origin: origin.to_string(),
        stream: RESOURCE_STREAM.to_owned(),
        period_start_ms,
        period_ms: RESOURCE_PERIOD_MS,
        groups: groups.into_values().map(Counting::finish).collect(),
        rating_table: table.version.clone(),
        figures: Vec::new(),
        periods: 0,
    }
}

fn new_counting(region: &str, resource_type: ResourceType, model: &str) -> Counting {
    Counting {
        group: CapacityGroup {
            region: region.to_owned(),
            resource_type: resource_type.code().to_string(),
            model: model.to_owned(),
            ..CapacityGroup::default()
        },
        ..Counting::default()
    }
}

/// The sum of reports of one period: the groups of the same (region, type,
/// model) added field by field. Exact: integers only.
pub fn sum<'a>(reports: impl IntoIterator<Item = &'a MarketReport>) -> Vec<CapacityGroup> {
    let mut out: BTreeMap<(String, String, String), CapacityGroup> = BTreeMap::new();
    for g in reports.into_iter().flat_map(|r| &r.groups) {
        let total = out
            .entry((g.region.clone(), g.resource_type.clone(), g.model.clone()))
            .or_insert_with(|| CapacityGroup {
                region: g.region.clone(),
                resource_type: g.resource_type.clone(),
                model: g.model.clone(),
                ..CapacityGroup::default()
            });
        add_group(total, g);
    }
    out.into_values().collect()
}

// Saturating: a sum no u64 holds (memory bytes of a whole country's
// hourly rollups) stays at the ceiling instead of wrapping into nonsense.
fn add_group(total: &mut CapacityGroup, g: &CapacityGroup) {
    let add = |t: &mut u64, v: u64| *t = t.saturating_add(v);
    add(&mut total.registered, g.registered);
    add(&mut total.online, g.online);
    add(&mut total.stale, g.stale);
    add(&mut total.offline, g.offline);
    add(&mut total.available, g.available);
    add(&mut total.healthy, g.healthy);
    add(&mut total.degraded, g.degraded);
    add(&mut total.critical, g.critical);
    add(&mut total.health_unknown, g.health_unknown);
    add(&mut total.memory_bytes, g.memory_bytes);
    add(&mut total.available_memory_bytes, g.available_memory_bytes);
    add(&mut total.logical_cpus, g.logical_cpus);
    add(&mut total.available_logical_cpus, g.available_logical_cpus);
    add(
        &mut total.utilization_permille_sum,
        g.utilization_permille_sum,
    );
    add(&mut total.utilization_readings, g.utilization_readings);
    for c in &g.capacity {
        match total
            .capacity
            .iter_mut()
            .find(|t| t.precision == c.precision)
        {
            Some(t) => {
                add(&mut t.registered_gflops, c.registered_gflops);
                add(&mut t.available_gflops, c.available_gflops);
                add(&mut t.unrated, c.unrated);
            }
            None => total.capacity.push(c.clone()),
        }
    }
}

/// `parts` (sums over `n` ≥ 2 periods, adding up to `total` × `n` give or
/// take a rounding) as means that add up to `total` exactly: each part's
/// mean rounded down, and what is left given to those with the largest
/// remainders (Hamilton's method), so a mean's classes still add up to its
/// count. Parts that contradict their total (which `check_report` refuses
/// from a child, and a node's own fleet never makes) are left rounded down.
fn apportion<const K: usize>(parts: [u64; K], n: u64, total: u64) -> [u64; K] {
    let mut out = parts.map(|p| p / n);
    let mut left = total.saturating_sub(out.iter().sum());
    let mut order: Vec<usize> = (0..K).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(parts[i] % n));
    for i in order {
        if left == 0 {
            break;
        }
        out[i] += 1;
        left -= 1;
    }
    out
}

/// A report's groups per period: a rollup's sums divided by the periods it
/// summed (rounded to the nearest), a base period's as they are. The state
/// and health classes are apportioned so they still add up to the count,
/// and what is available never exceeds what is online. The utilization sum
/// and its readings stay sums, so that their ratio over any set of reports
/// is the time-weighted mean utilization.
pub fn mean(report: &MarketReport) -> Vec<CapacityGroup> {
    let n = report.periods;
    if n <= 1 {
        return report.groups.clone();
    }
    // Rounding to the nearest is monotonic: a ≤ b stays so.
    let per = |v: u64| v / n + u64::from(v % n >= n.div_ceil(2));
    report
        .groups
        .iter()
        .map(|g| {
            let registered = per(g.registered);
            let [online, stale, offline] = apportion([g.online, g.stale, g.offline], n, registered);
            let [healthy, degraded, critical, health_unknown] = apportion(
                [g.healthy, g.degraded, g.critical, g.health_unknown],
                n,
                registered,
            );
            CapacityGroup {
                region: g.region.clone(),
                resource_type: g.resource_type.clone(),
                model: g.model.clone(),
                registered,
                online,
                stale,
                offline,
                available: per(g.available).min(online),
                healthy,
                degraded,
                critical,
                health_unknown,
                memory_bytes: per(g.memory_bytes),
                available_memory_bytes: per(g.available_memory_bytes),
                logical_cpus: per(g.logical_cpus),
                available_logical_cpus: per(g.available_logical_cpus),
                utilization_permille_sum: g.utilization_permille_sum,
                utilization_readings: g.utilization_readings,
                capacity: g
                    .capacity
                    .iter()
                    .map(|c| PrecisionCapacity {
                        precision: c.precision.clone(),
                        registered_gflops: per(c.registered_gflops),
                        available_gflops: per(c.available_gflops),
                        unrated: per(c.unrated).min(registered),
                    })
                    .collect(),
            }
        })
        .collect()
}

/// The mean groups of reports of one period over several origins: each
/// origin's mean, summed.
pub fn sum_of_means<'a>(reports: impl IntoIterator<Item = &'a MarketReport>) -> Vec<CapacityGroup> {
    let means: Vec<MarketReport> = reports
        .into_iter()
        .map(|r| MarketReport {
            groups: mean(r),
            ..MarketReport::default()
        })
        .collect();
    sum(&means)
}

/// Figures that are a level at the period's end (accounts, API keys in
/// use), not a count of what happened in it: a rollup keeps the last
/// period's value.
const LEVELS: [&str; 2] = ["accounts", "api_keys_active"];

/// The origin's rollup of the period `[start_ms, start_ms + period_ms)` of
/// `stream` from its own reports of the period just shorter (`parts`, each
/// within it): the capacity groups are the sum of each part's mean (so a
/// mean over the rollup is its sums over `periods`), the counts summed,
/// the levels as the last part has them. Pure: the same parts give the
/// same bytes at every replica.
pub fn rollup(
    origin: &str,
    stream: &str,
    period_ms: u64,
    start_ms: u64,
    parts: &[MarketReport],
) -> MarketReport {
    let mut parts: Vec<&MarketReport> = parts.iter().collect();
    parts.sort_by_key(|p| p.period_start_ms);
    let level = |f: &&Figure| LEVELS.contains(&f.name.as_str());
    let mut figures: BTreeMap<(&str, &str), u64> = BTreeMap::new();
    for f in parts.iter().flat_map(|p| &p.figures).filter(|f| !level(f)) {
        let value = figures
            .entry((f.name.as_str(), f.label.as_str()))
            .or_default();
        *value = value.saturating_add(f.value);
    }
    // Levels as the last part has them: a role it no longer lists is gone.
    for f in parts
        .last()
        .into_iter()
        .flat_map(|p| &p.figures)
        .filter(level)
    {
        figures.insert((f.name.as_str(), f.label.as_str()), f.value);
    }
    MarketReport {
        origin: origin.to_owned(),
        stream: stream.to_owned(),
        period_start_ms: start_ms,
        period_ms,
        groups: sum_of_means(parts.iter().copied()),
        rating_table: parts
            .last()
            .map(|p| p.rating_table.clone())
            .unwrap_or_default(),
        figures: figures
            .into_iter()
            .map(|((name, label), value)| figure(name, label, value))
            .collect(),
        periods: parts.len() as u64,
    }
}

/// Capacity by resource type and precision: what the overview leads with.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Scale {
    /// By resource type code, then precision.
    pub by_type: BTreeMap<String, BTreeMap<String, PrecisionCapacity>>,
    pub resources: BTreeMap<String, u64>,
    pub available: BTreeMap<String, u64>,
}

impl Scale {
    pub fn of(groups: &[CapacityGroup]) -> Self {
        let mut scale = Scale::default();
        for g in groups {
            *scale.resources.entry(g.resource_type.clone()).or_default() += g.registered;
            *scale.available.entry(g.resource_type.clone()).or_default() += g.available;
            let by_precision = scale.by_type.entry(g.resource_type.clone()).or_default();
            for c in &g.capacity {
                let t =
                    by_precision
                        .entry(c.precision.clone())
                        .or_insert_with(|| PrecisionCapacity {
                            precision: c.precision.clone(),
                            ..PrecisionCapacity::default()
                        });
                t.registered_gflops += c.registered_gflops;
                t.available_gflops += c.available_gflops;
                t.unrated += c.unrated;
            }
        }
        scale
    }

    fn figure(&self, resource_type: &str, precision: Precision) -> u64 {
        self.by_type
            .get(resource_type)
            .and_then(|p| p.get(precision.as_str()))
            .map_or(0, |c| c.registered_gflops)
    }

    /// The national statistics' headline figures (智能算力 at FP16, 通用算力
    /// at FP32, 超算 at FP64) and Suanli's FP32-equivalent total: FP16
    /// counted at half, FP64 at twice (docs/market-monitoring.md).
    pub fn headline(&self) -> Headline {
        let intelligent = self.figure("A", Precision::Fp16);
        let general = self.figure("C", Precision::Fp32);
        let supercomputing = self.figure("H", Precision::Fp64);
        Headline {
            intelligent_fp16_gflops: intelligent,
            general_fp32_gflops: general,
            supercomputing_fp64_gflops: supercomputing,
            fp32_equivalent_gflops: intelligent / 2 + general + supercomputing * 2,
        }
    }
}

/// The scale of each province (the first two digits of a GB/T 2260 code).
pub fn by_province(groups: &[CapacityGroup]) -> BTreeMap<String, Scale> {
    let mut split: BTreeMap<String, Vec<CapacityGroup>> = BTreeMap::new();
    for g in groups {
        let province = g.region.get(..2).unwrap_or_default().to_owned();
        split.entry(province).or_default().push(g.clone());
    }
    split
        .into_iter()
        .map(|(province, groups)| (province, Scale::of(&groups)))
        .collect()
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Headline {
    pub intelligent_fp16_gflops: u64,
    pub general_fp32_gflops: u64,
    pub supercomputing_fp64_gflops: u64,
    pub fp32_equivalent_gflops: u64,
}

/// One point of the capacity trend: a period's subtree figures.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct TrendPoint {
    pub period_start_ms: u64,
    /// Nodes that reported the period.
    pub origins: u64,
    pub headline: Headline,
    /// K2: FP16 of type A and FP32 of type C free now.
    pub available_intelligent_fp16_gflops: u64,
    pub available_general_fp32_gflops: u64,
    pub accelerators: u64,
    pub accelerators_available: u64,
    /// Mean accelerator utilization over those with a reading, per mille
    /// (over a rollup: every reading of its periods, time-weighted).
    pub accelerator_utilization_permille: Option<u64>,
    /// Accelerators online over those registered, per mille (上架率's
    /// analogue).
    pub accelerators_online_permille: Option<u64>,
}

/// The trend of `reports` (one period length, any origins): one point per
/// period, a rollup's figures as their mean over it and its utilization
/// time-weighted.
pub fn trend(reports: &[MarketReport]) -> Vec<TrendPoint> {
    let mut periods: BTreeMap<u64, Vec<&MarketReport>> = BTreeMap::new();
    for r in reports {
        periods.entry(r.period_start_ms).or_default().push(r);
    }
    periods
        .into_iter()
        .map(|(start, reports)| {
            let groups = sum_of_means(reports.iter().copied());
            let scale = Scale::of(&groups);
            let available = |t: &str, p: Precision| {
                scale
                    .by_type
                    .get(t)
                    .and_then(|c| c.get(p.as_str()))
                    .map_or(0, |c| c.available_gflops)
            };
            let accelerators = groups.iter().filter(|g| g.resource_type == "A");
            let (sum_permille, readings) = accelerators.clone().fold((0, 0), |(s, n), g| {
                (s + g.utilization_permille_sum, n + g.utilization_readings)
            });
            TrendPoint {
                period_start_ms: start,
                origins: reports.len() as u64,
                headline: scale.headline(),
                available_intelligent_fp16_gflops: available("A", Precision::Fp16),
                available_general_fp32_gflops: available("C", Precision::Fp32),
                accelerators_online_permille: share(
                    accelerators.clone().map(|g| g.online).sum(),
                    accelerators.clone().map(|g| g.registered).sum(),
                ),
                accelerators: accelerators.clone().map(|g| g.registered).sum(),
                accelerators_available: accelerators.map(|g| g.available).sum(),
                accelerator_utilization_permille: (readings > 0).then(|| sum_permille / readings),
            }
        })
        .collect()
}

/// `part` over `whole`, per mille; absent over nothing.
fn share(part: u64, whole: u64) -> Option<u64> {
    (whole > 0).then(|| part * 1000 / whole)
}

/// What happened on the platform in one hour, as the store reads it.
#[derive(Debug, Clone, Default)]
pub struct PlatformHour {
    /// Accounts at the hour's end, by role.
    pub accounts_by_role: Vec<(String, u64)>,
    /// Audit entries of the hour, by action.
    pub audit: Vec<(String, u64)>,
    pub registrations_submitted: u64,
    /// Registrations decided in the hour: (state, ms from filing to decision).
    pub reviews: Vec<(String, u64)>,
    /// This node's own resource reports in the hour: the periods it was up.
    pub resource_periods: u64,
    /// The HTTP API's calls in the hour.
    pub api_calls: Vec<ApiCalls>,
}

/// Calls of the HTTP API in one hour of one kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApiCalls {
    /// The first path segment under `/api/v1` (`hosts`, `selection`).
    pub route_class: String,
    /// `session`, `api_key`, `admin_token` or `none`.
    pub credential: String,
    /// `2xx`, `4xx`, `5xx`…
    pub status_class: String,
    pub calls: u64,
}

/// The calls of `calls` that `keep` keeps, summed by route class.
fn calls_by_class(name: &str, calls: &[ApiCalls], keep: impl Fn(&ApiCalls) -> bool) -> Vec<Figure> {
    let mut by_class: BTreeMap<&str, u64> = BTreeMap::new();
    for c in calls.iter().filter(|c| keep(c)) {
        *by_class.entry(c.route_class.as_str()).or_default() += c.calls;
    }
    by_class
        .into_iter()
        .map(|(class, n)| figure(name, class, n))
        .collect()
}

/// Review time buckets, seconds (cumulative, as Prometheus' `le`).
const REVIEW_BUCKETS_S: [u64; 4] = [3_600, 86_400, 259_200, 604_800];
/// Selection answer time buckets, microseconds.
const ANSWER_BUCKETS_US: [u64; 4] = [1_000, 10_000, 100_000, 1_000_000];

fn figure(name: &str, label: impl Into<String>, value: u64) -> Figure {
    Figure {
        name: name.to_owned(),
        label: label.into(),
        value,
    }
}

/// Cumulative buckets of `values` (`le=B` counts those ≤ B; `le=+Inf` all).
fn histogram(name: &str, bounds: &[u64], values: impl Iterator<Item = u64> + Clone) -> Vec<Figure> {
    let mut out: Vec<Figure> = bounds
        .iter()
        .map(|b| {
            figure(
                name,
                format!("le={b}"),
                values.clone().filter(|v| v <= b).count() as u64,
            )
        })
        .collect();
    out.push(figure(name, "le=+Inf", values.count() as u64));
    out
}

/// The platform stream (flow 8) of one hour: accounts by role,
/// registrations and their review time, security events, the API's calls
/// and errors by route class, and how long this node was up (10 s per
/// resource period it reported).
pub fn platform_figures(hour: &PlatformHour) -> Vec<Figure> {
    let audit = |action: &str| {
        hour.audit
            .iter()
            .filter(|(a, _)| a == action)
            .map(|(_, n)| n)
            .sum::<u64>()
    };
    let decided = |state: &str| hour.reviews.iter().filter(|(s, _)| s == state).count() as u64;
    let mut out: Vec<Figure> = hour
        .accounts_by_role
        .iter()
        .map(|(role, n)| figure("accounts", role.clone(), *n))
        .collect();
    out.extend([
        figure("registrations_submitted", "", hour.registrations_submitted),
        figure("registrations_approved", "", decided("approved")),
        figure("registrations_rejected", "", decided("rejected")),
        figure("sign_ins_failed", "", audit("login.failed")),
        figure("enrollments_refused", "", audit("host.enroll_refused")),
        figure("revocations", "host", audit("host.revoke")),
        figure("revocations", "token", audit("token.revoke")),
        figure("revocations", "node", audit("node.revoke")),
        figure(
            "up_seconds",
            "",
            hour.resource_periods * RESOURCE_PERIOD_MS / 1000,
        ),
    ]);
    out.extend(calls_by_class("api_calls", &hour.api_calls, |_| true));
    out.extend(calls_by_class("api_client_errors", &hour.api_calls, |c| {
        c.status_class == "4xx"
    }));
    out.extend(calls_by_class("api_server_errors", &hour.api_calls, |c| {
        c.status_class == "5xx"
    }));
    out.extend(histogram(
        "review_seconds",
        &REVIEW_BUCKETS_S,
        hour.reviews.iter().map(|(_, ms)| ms / 1000),
    ));
    out.sort();
    out
}

/// One recorded selection as the scheduling stream counts it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SelectionFact {
    pub elapsed_us: u64,
    pub matched: bool,
    /// Where the user said they are (GB/T 2260), if they did.
    pub user_region: Option<String>,
    /// The province of the first candidate's first resource.
    pub chosen_province: Option<String>,
    /// With no candidate, the main reason (a constraint's name, "group").
    pub no_match: Option<String>,
    /// Dedicated lines on the chosen candidate's paths.
    pub lines_used: u64,
}

impl SelectionFact {
    /// From a recorded selection: its demand, chosen identifiers and figures.
    pub fn of(
        demand: &serde_json::Value,
        chosen: &serde_json::Value,
        candidates: i64,
        elapsed_us: i64,
        no_match: Option<&str>,
        lines_used: i64,
    ) -> Self {
        Self {
            no_match: no_match.map(str::to_owned),
            lines_used: u64::try_from(lines_used).unwrap_or(0),
            elapsed_us: u64::try_from(elapsed_us).unwrap_or(0),
            matched: candidates > 0,
            user_region: demand["user_region"].as_str().map(str::to_owned),
            chosen_province: chosen
                .as_array()
                .and_then(|c| c.first())
                .and_then(|id| id.as_str())
                .and_then(|id| Identifier::parse(id).ok())
                .map(|id| id.location().province().to_owned()),
        }
    }
}

/// The scheduling stream (flow 9) of one hour: selections asked and
/// matched, the main reasons of those that were not, time to answer, how
/// many of those that named the user's region were answered from another
/// province, and how many were answered over dedicated lines.
pub fn scheduling_figures(facts: &[SelectionFact]) -> Vec<Figure> {
    let count = |f: &dyn Fn(&SelectionFact) -> bool| facts.iter().filter(|s| f(s)).count() as u64;
    let mut reasons: BTreeMap<&str, u64> = BTreeMap::new();
    for reason in facts.iter().filter_map(|s| s.no_match.as_deref()) {
        *reasons.entry(reason).or_default() += 1;
    }
    let mut out: Vec<Figure> = reasons
        .into_iter()
        .map(|(reason, n)| figure("selections_no_match", reason, n))
        .collect();
    out.extend([
        figure(
            "selections_over_lines",
            "",
            count(&|s| s.matched && s.lines_used > 0),
        ),
        figure("selections_requested", "", facts.len() as u64),
        figure("selections_matched", "", count(&|s| s.matched)),
        figure(
            "selections_with_user_region",
            "",
            count(&|s| s.user_region.is_some() && s.matched),
        ),
        figure(
            "selections_cross_region",
            "",
            count(&|s| match (&s.user_region, &s.chosen_province) {
                (Some(user), Some(chosen)) => !user.starts_with(chosen.as_str()),
                _ => false,
            }),
        ),
    ]);
    out.extend(histogram(
        "answer_us",
        &ANSWER_BUCKETS_US,
        facts.iter().map(|s| s.elapsed_us),
    ));
    out.sort();
    out
}

/// The application stream (flow 10) of one hour: what exists today, the API
/// keys in use at the hour's end and the calls made with them by route
/// class; registered application services add to it.
pub fn application_figures(api_keys_active: u64, calls: &[ApiCalls]) -> Vec<Figure> {
    let mut out = vec![figure("api_keys_active", "", api_keys_active)];
    out.extend(calls_by_class("api_key_calls", calls, |c| {
        c.credential == "api_key"
    }));
    out.sort();
    out
}

/// The sum of the figures of reports of one period, by (name, label).
pub fn sum_figures<'a>(reports: impl IntoIterator<Item = &'a MarketReport>) -> Vec<Figure> {
    let mut out: BTreeMap<(&str, &str), u64> = BTreeMap::new();
    for f in reports.into_iter().flat_map(|r| &r.figures) {
        *out.entry((f.name.as_str(), f.label.as_str())).or_default() += f.value;
    }
    out.into_iter()
        .map(|((name, label), value)| figure(name, label, value))
        .collect()
}

fn check_figures(report: &MarketReport) -> Result<(), String> {
    if !report.groups.is_empty() {
        return Err(format!(
            "the {} stream has no capacity groups",
            report.stream
        ));
    }
    if report.figures.len() > MAX_FIGURES_PER_REPORT {
        return Err(format!(
            "{} figures: at most {MAX_FIGURES_PER_REPORT}",
            report.figures.len()
        ));
    }
    let mut seen = std::collections::BTreeSet::new();
    for f in &report.figures {
        let name_ok = (1..=64).contains(&f.name.len())
            && f.name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !name_ok {
            return Err(format!(
                "figure name {:?}: 1 to 64 of a-z, 0-9 and _",
                f.name
            ));
        }
        if f.label.chars().count() > 64 || f.label.chars().any(char::is_control) {
            return Err(format!(
                "figure {} label {:?}: at most 64 characters, none a control",
                f.name, f.label
            ));
        }
        if !seen.insert((&f.name, &f.label)) {
            return Err(format!("figure {} {:?} appears twice", f.name, f.label));
        }
        if f.value > MAX_COUNT {
            return Err(format!(
                "figure {}: negative (wrapped) or beyond any node",
                f.name
            ));
        }
    }
    Ok(())
}

/// The province a node prefix stands for (`CN.32…` → "32"), if its first
/// segment below the national node is a GB/T 2260 code.
fn province(prefix: &NodePrefix) -> Option<&str> {
    let segment = prefix.segments().nth(1)?;
    (segment.len() == 2 && segment.bytes().all(|b| b.is_ascii_digit())).then_some(segment)
}

/// Why a child's report may not be kept, if it may not: its origin outside
/// the child's prefix, a region outside the child's province, a period not
/// aligned or in the future, counts that contradict each other.
pub fn check_report(
    report: &MarketReport,
    child_prefix: &NodePrefix,
    now_ms: u64,
) -> Result<(), String> {
    let origin = NodePrefix::parse(&report.origin)
        .map_err(|e| format!("origin {:?}: {e}", report.origin))?;
    if !child_prefix.contains(&origin) {
        return Err(format!(
            "origin {origin} is outside the child's prefix {child_prefix}"
        ));
    }
    let periods = periods_of(&report.stream);
    if periods.is_empty() {
        return Err(format!("unknown stream {:?}", report.stream));
    }
    let period = report.period_ms;
    if !periods.contains(&period) || !aligned(report.period_start_ms, period) {
        let lengths: Vec<String> = periods.iter().map(|p| format!("{p} ms")).collect();
        return Err(format!(
            "period {period} ms from {}: the {} stream's periods are {}, each aligned to its \
             length from midnight Beijing time",
            report.period_start_ms,
            report.stream,
            lengths.join(" or ")
        ));
    }
    if report.period_start_ms > now_ms + CLOCK_SLACK_MS {
        return Err(format!(
            "period starting at {} is {} s in the future",
            report.period_start_ms,
            (report.period_start_ms - now_ms) / 1000
        ));
    }
    let most = max_periods(&report.stream, period);
    if rolled_up_from(&report.stream, period).is_some() {
        if report.period_start_ms + period > now_ms + CLOCK_SLACK_MS {
            return Err(format!(
                "a rollup of the period starting at {} before the period is over",
                report.period_start_ms
            ));
        }
        if !(1..=most).contains(&report.periods) {
            return Err(format!(
                "a rollup of {} periods: between 1 and {most}",
                report.periods
            ));
        }
    } else if report.periods > 1 {
        return Err(format!(
            "a base period summing {} periods: only rollups sum",
            report.periods
        ));
    }
    if report.stream != RESOURCE_STREAM {
        return check_figures(report);
    }
    if !report.figures.is_empty() {
        return Err("the resource stream has capacity groups, not figures".into());
    }
    if report.groups.len() > MAX_GROUPS_PER_REPORT {
        return Err(format!(
            "{} groups: at most {MAX_GROUPS_PER_REPORT}",
            report.groups.len()
        ));
    }
    let province = province(child_prefix);
    // Utilization readings are summed over every 10 s period, the counts
    // over the means of a day's hours: a day may hold up to 360 readings
    // per online resource, and an hour's worth for each hour's rounding.
    let base = period_of(&report.stream).unwrap_or(RESOURCE_PERIOD_MS);
    let readings_bound = match rolled_up_from(&report.stream, period) {
        Some(from) if from != base => (from / base, from / base * report.periods),
        _ => (1, 0),
    };
    let mut seen = std::collections::BTreeSet::new();
    for g in &report.groups {
        let name = format!("group ({}, {}, {:?})", g.region, g.resource_type, g.model);
        if !seen.insert((&g.region, &g.resource_type, &g.model)) {
            return Err(format!("{name} appears twice"));
        }
        if g.region.len() != 6 || !g.region.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("{name}: region is not a GB/T 2260 code"));
        }
        if let Some(p) = province
            && !g.region.starts_with(p)
        {
            return Err(format!(
                "{name}: region {} is outside the child's province {p} ({child_prefix})",
                g.region
            ));
        }
        if ResourceType::parse(&g.resource_type).is_err() {
            return Err(format!("{name}: unknown resource type"));
        }
        check_group(g, readings_bound).map_err(|why| format!("{name}: {why}"))?;
    }
    Ok(())
}

/// `readings`: each online resource's readings at most, plus a slack.
fn check_group(g: &CapacityGroup, readings: (u64, u64)) -> Result<(), String> {
    let counts = [
        g.registered,
        g.online,
        g.stale,
        g.offline,
        g.available,
        g.healthy,
        g.degraded,
        g.critical,
        g.health_unknown,
        g.logical_cpus,
        g.available_logical_cpus,
        g.utilization_readings,
    ];
    if counts.iter().any(|c| *c > MAX_COUNT) {
        return Err("a count is negative (wrapped) or beyond any node".into());
    }
    if g.online + g.stale + g.offline != g.registered {
        return Err(format!(
            "online {} + stale {} + offline {} is not registered {}",
            g.online, g.stale, g.offline, g.registered
        ));
    }
    if g.healthy + g.degraded + g.critical + g.health_unknown != g.registered {
        return Err("the health classes do not add up to registered".into());
    }
    if g.available > g.online {
        return Err(format!(
            "K2 available {} is above the {} online (K1 {})",
            g.available, g.online, g.registered
        ));
    }
    if g.available_memory_bytes > g.memory_bytes || g.available_logical_cpus > g.logical_cpus {
        return Err("available memory or CPUs above registered".into());
    }
    if g.utilization_readings > g.online.saturating_mul(readings.0) + readings.1
        || g.utilization_permille_sum > g.utilization_readings.saturating_mul(1000)
    {
        return Err("utilization beyond its readings".into());
    }
    let mut precisions = std::collections::BTreeSet::new();
    for c in &g.capacity {
        if Precision::parse(&c.precision).is_none() || !precisions.insert(&c.precision) {
            return Err(format!("precision {:?} unknown or repeated", c.precision));
        }
        if c.available_gflops > c.registered_gflops || c.unrated > g.registered {
            return Err(format!("{}: K2 above K1", c.precision));
        }
        if c.registered_gflops > MAX_COUNT {
            return Err(format!("{}: capacity beyond any node", c.precision));
        }
    }
    Ok(())
}
