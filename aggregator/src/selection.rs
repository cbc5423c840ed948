//! Selection (算力选择): a user's demand becomes ranked compute with network
//! paths, judged on the live state of the [`Fleet`].
//!
//! [`select`] is a pure function of the fleet, the network and the demand:
//! each host is checked against every hard constraint (so "why nothing
//! matched" can say how many hosts each one eliminated, and which hosts
//! missed by least), the hosts that pass are scored, and for multi-host
//! demands they are grouped (same region, provider or fabric) and taken
//! all or nothing.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use suanli_protocol::identifier::ResourceType;

use crate::{
    accel::{kind_matches, model_matches, vendor_matches},
    fleet::{Fleet, HostEntry, HostState},
    i18n::{Lang, Text},
};

/// What an accelerator demand asks when it asks nothing in particular.
static ANY_ACCELERATOR: AcceleratorDemand = AcceleratorDemand {
    vendor: None,
    kind: None,
    model: None,
    count: 1,
    min_memory_bytes: None,
    min_free_memory_bytes: None,
    nvlink: None,
    infiniband_gbps: None,
    mig: None,
};

pub mod demand;
pub mod federation;
pub mod network;

pub use demand::{AcceleratorDemand, Demand, Scope, Together};
pub use federation::{NodeOutcome, Outcome};
pub use network::{LineEdge, Network, Path, PublicLatency};

/// The hard constraints, in the order they are reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Constraint {
    State,
    Staleness,
    ResourceType,
    Region,
    Provider,
    Industry,
    Architecture,
    CpuCores,
    Memory,
    Disk,
    Accelerators,
    /// Enough accelerators would match, but some are out for their faults.
    Health,
    Infiniband,
    Fabric,
    Latency,
    Bandwidth,
    Price,
    Expression,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HostPick {
    /// The prefix of the node holding the host (filled in by the operation
    /// that answers: the pure selection does not know it).
    pub node: String,
    /// The host's id at the node holding it.
    pub host_id: i64,
    pub identifier: Option<String>,
    pub hostname: String,
    pub provider: String,
    pub region: String,
    pub industry: String,
    pub state: HostState,
    pub stale: bool,
    pub freshness_ms: Option<u64>,
    /// The resources chosen on this host: accelerators, or the host itself.
    pub resources: Vec<String>,
    /// Accelerators on the host that meet the demand (free ones, unless
    /// the demand is for installed capacity).
    pub matching_accelerators: u32,
    pub path: Option<Path>,
    /// Measured QUIC round trip between the host and this aggregator.
    pub rtt_ms: Option<f64>,
    pub fabric: Option<String>,
    /// What the chosen resources cost per hour at the provider's listed
    /// prices; absent where the provider lists none for them.
    pub price_per_hour_cny: Option<String>,
    pub score: f64,
    pub parts: ScoreParts,
}

/// Each part is from 0 to 1; a part that does not apply is absent.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct ScoreParts {
    /// How much of what was asked for is free, discounted for stale state.
    pub availability: f64,
    pub latency: Option<f64>,
    /// 1 minus the utilization of the chosen resources.
    pub load: f64,
    /// The cheapest matching host's price over this host's: 1 for the
    /// cheapest, 0 for a host without a listed price. Absent when no
    /// matching host lists one.
    pub price: Option<f64>,
}

impl ScoreParts {
    /// The weighted mean of the parts that apply.
    fn score(&self) -> f64 {
        let parts = [
            (0.4, Some(self.availability)),
            (0.3, self.latency),
            (0.3, Some(self.load)),
            (0.2, self.price),
        ];
        let (sum, weight) = parts
            .iter()
            .filter_map(|(w, p)| p.map(|p| (w * p, *w)))
            .fold((0.0, 0.0), |(s, t), (p, w)| (s + p, t + w));
        sum / weight
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Candidate {
    pub score: f64,
    pub hosts: Vec<HostPick>,
    /// For a demand of a total capacity: what the hosts' listed resources
    /// add up to at its precision, GFLOPS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_gflops: Option<u64>,
}

impl Constraint {
    /// The name the API and the scheduling stream write.
    pub fn as_str(self) -> &'static str {
        match self {
            Constraint::State => "state",
            Constraint::Staleness => "staleness",
            Constraint::ResourceType => "resource_type",
            Constraint::Region => "region",
            Constraint::Provider => "provider",
            Constraint::Industry => "industry",
            Constraint::Architecture => "architecture",
            Constraint::CpuCores => "cpu_cores",
            Constraint::Memory => "memory",
            Constraint::Disk => "disk",
            Constraint::Accelerators => "accelerators",
            Constraint::Health => "health",
            Constraint::Infiniband => "infiniband",
            Constraint::Fabric => "fabric",
            Constraint::Latency => "latency",
            Constraint::Bandwidth => "bandwidth",
            Constraint::Price => "price",
            Constraint::Expression => "expression",
        }
    }
}

/// Why an answer has no candidate, in one word for the scheduling stream:
/// "group" when hosts matched but no group of them did, else the hard
/// constraint that eliminated the most hosts (the first in report order on
/// a tie), or "no_hosts" when there was nothing to consider. None with a
/// candidate.
pub fn no_match_reason(answer: &Answer) -> Option<&'static str> {
    if !answer.candidates.is_empty() {
        return None;
    }
    if answer.matched_hosts > 0 || answer.groups_short.is_some() {
        return Some("group");
    }
    let most = answer
        .eliminated
        .iter()
        .filter(|e| e.hosts > 0)
        .max_by_key(|e| (e.hosts, std::cmp::Reverse(e.constraint)));
    Some(most.map_or("no_hosts", |e| e.constraint.as_str()))
}

/// The dedicated lines on the first candidate's paths (each line once).
pub fn lines_used(answer: &Answer) -> u64 {
    let lines: std::collections::BTreeSet<&str> = answer
        .candidates
        .first()
        .into_iter()
        .flat_map(|c| &c.hosts)
        .filter_map(|h| h.path.as_ref())
        .flat_map(|p| &p.segments)
        .filter_map(|s| s.line_id.as_deref())
        .collect();
    lines.len() as u64
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Elimination {
    pub constraint: Constraint,
    pub hosts: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Miss {
    /// The prefix of the node holding the host, as in [`HostPick`].
    pub node: String,
    pub host_id: i64,
    pub hostname: String,
    pub identifier: Option<String>,
    pub failed: Vec<Failure>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Failure {
    pub constraint: Constraint,
    /// In English; the API gives it in the reader's language from `text`
    /// (which stays on this node: another node's misses read in English).
    pub detail: String,
    #[serde(skip)]
    pub text: Option<Text>,
}

impl Failure {
    fn new(constraint: Constraint, text: Text) -> Self {
        Self {
            constraint,
            detail: text.render(Lang::En),
            text: Some(text),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Answer {
    pub candidates: Vec<Candidate>,
    /// Hosts meeting every hard constraint. With an expression, it is
    /// evaluated in rank order until the answer is full, so this counts
    /// the hosts examined that met it; `unexamined_hosts` met every other
    /// constraint and were not needed.
    pub matched_hosts: u64,
    pub unexamined_hosts: u64,
    pub considered_hosts: u64,
    /// For each hard constraint, how many hosts failed it.
    pub eliminated: Vec<Elimination>,
    /// The hosts that failed the fewest constraints, and how.
    pub nearest_misses: Vec<Miss>,
    /// Why a multi-host demand found no group, if it did not: in English,
    /// and in the reader's words from `groups_short_text` (on this node).
    pub groups_short: Option<String>,
    #[serde(skip)]
    pub groups_short_text: Option<Text>,
    /// The nodes below this one that were asked, skipped or missed, each
    /// with its outcome (empty for a node that asked none).
    pub nodes: Vec<NodeOutcome>,
    /// Some node that should have answered did not (late, unreachable,
    /// refused or failed): candidates may be missing.
    pub partial: bool,
}

/// A compiled CEL expression, or why it does not compile.
pub struct Expression(cel::Program);

impl std::fmt::Debug for Expression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Expression")
    }
}

impl Expression {
    pub fn compile(text: &str) -> Result<Self, String> {
        cel::Program::compile(text)
            .map(Expression)
            .map_err(|e| e.to_string())
    }

    fn holds(&self, document: &Document<'_>) -> Result<bool, String> {
        let mut context = cel::Context::default();
        let host = cel::to_value(&document.host).map_err(|e| e.to_string())?;
        let gpus = cel::to_value(&document.gpus).map_err(|e| e.to_string())?;
        context.add_variable_from_value("host", host);
        context.add_variable_from_value("gpus", gpus);
        match self.0.execute(&context) {
            Ok(cel::Value::Bool(b)) => Ok(b),
            Ok(other) => Err(format!("the expression gave {other:?}, not true or false")),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// The document a CEL expression sees: `host` and `gpus`. A figure that
/// could not be read is null, never 0, so an expression that compares it
/// fails for that host instead of passing by accident (`has()` and `!= null`
/// test for it). Borrowed and typed, so evaluating it per host in a scan
/// allocates little.
#[derive(Debug, Serialize)]
pub struct Document<'a> {
    pub host: HostDocument<'a>,
    pub gpus: Vec<GpuDocument<'a>>,
}

#[derive(Debug, Serialize)]
pub struct HostDocument<'a> {
    hostname: &'a str,
    region: &'a str,
    provider: &'a str,
    industry: &'a str,
    state: &'static str,
    cpus: Option<u32>,
    cpu_model: Option<&'a str>,
    /// As the kernel names it: "x86_64", "aarch64", "loongarch64".
    architecture: Option<&'a str>,
    memory_bytes: Option<u64>,
    memory_used_bytes: Option<u64>,
    cpu_utilization_percent: Option<f64>,
    disk_available_bytes: Option<u64>,
    infiniband_gbps: Option<f64>,
    fabric: Option<&'a str>,
    rtt_ms: Option<f64>,
    slurm: Option<bool>,
}

#[derive(Debug, Serialize)]
pub struct GpuDocument<'a> {
    identifier: &'a str,
    /// "nvidia", "huawei", …, and "gpu", "npu", …: the first two words of the model key.
    vendor: &'a str,
    kind: &'a str,
    model: Option<&'a str>,
    memory_bytes: Option<u64>,
    mig: Option<bool>,
    free: Option<bool>,
    utilization_percent: Option<u32>,
    memory_used_bytes: Option<u64>,
    temperature_celsius: Option<u32>,
    power_watts: Option<f64>,
    nvlink_active: Option<u32>,
}

pub fn document<'a>(fleet: &Fleet, host: &'a HostEntry, now: u64) -> Document<'a> {
    let vitals = host.vitals.as_deref();
    let inventory = host.inventory.as_deref();
    let gpus = host
        .accelerators()
        .map(|r| {
            let live = host.vitals_of(r);
            let mut key = r.model_key.split(' ');
            GpuDocument {
                identifier: &r.identifier,
                vendor: key.next().unwrap_or_default(),
                kind: key.next().unwrap_or_default(),
                model: r.model.as_deref(),
                memory_bytes: r.memory_bytes,
                mig: r.mig,
                free: fleet.free_now(r, now),
                utilization_percent: live.and_then(|g| g.utilization_percent),
                memory_used_bytes: live.and_then(|g| g.memory_used_bytes),
                temperature_celsius: live.and_then(|g| g.temperature_celsius),
                power_watts: live.and_then(|g| g.power_watts),
                nvlink_active: live.and_then(|g| g.nvlink_active),
            }
        })
        .collect();
    Document {
        host: HostDocument {
            hostname: &host.hostname,
            region: &host.region,
            provider: &host.owner.code,
            industry: &host.owner.industry,
            state: host.state(now).as_str(),
            cpus: inventory.map(|i| i.cpu.logical_cpus),
            cpu_model: inventory.and_then(|i| i.cpu.model_name.as_deref()),
            architecture: inventory.and_then(|i| i.os.architecture.as_deref()),
            memory_bytes: inventory.and_then(|i| i.memory_total_bytes),
            memory_used_bytes: vitals.and_then(|v| v.memory_used_bytes),
            cpu_utilization_percent: vitals.and_then(|v| v.cpu_utilization_percent),
            disk_available_bytes: vitals.and_then(|v| v.disk_available_bytes),
            infiniband_gbps: vitals.and_then(|v| v.infiniband_active_gbps),
            fabric: host.fabric.as_deref(),
            rtt_ms: host.rtt_us.map(|us| us as f64 / 1000.0),
            slurm: inventory.map(|i| i.slurm.is_some()),
        },
        gpus,
    }
}

/// A failed constraint, kept as numbers: most hosts fail something, and
/// only the nearest misses are ever described in words.
#[derive(Debug, Clone, Copy)]
struct Fault {
    constraint: Constraint,
    /// What the host has (NaN: unknown).
    have: f32,
    /// What was asked.
    want: f32,
    /// False where `have` is only an upper bound.
    exact: bool,
}

/// The faults of one host, without a heap allocation.
#[derive(Debug, Clone, Copy)]
struct Faults {
    items: [Fault; Faults::MAX],
    len: usize,
}

impl Faults {
    const MAX: usize = 16;

    fn new() -> Self {
        let blank = Fault {
            constraint: Constraint::State,
            have: f32::NAN,
            want: f32::NAN,
            exact: true,
        };
        Self {
            items: [blank; Self::MAX],
            len: 0,
        }
    }

    fn push(&mut self, fault: Fault) {
        if self.len < Self::MAX {
            self.items[self.len] = fault;
            self.len += 1;
        }
    }

    fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn iter(&self) -> impl Iterator<Item = &Fault> {
        self.items[..self.len].iter()
    }
}

/// A fault in words, for a nearest miss.
fn describe(f: &Fault, host: &HostEntry, demand: &Demand, now: u64) -> Text {
    let known = |v: f32| (!v.is_nan()).then_some(f64::from(v));
    // A figure, or "unknown" in the reader's words.
    let figure = |text: Text, name: &str, v: Option<String>| match v {
        Some(v) => text.arg(name, v),
        None => text.arg_text(name, Text::new("selection.unknown")),
    };
    let free = Text::new(if demand.installed {
        "selection.installed"
    } else {
        "selection.free"
    });
    match f.constraint {
        Constraint::State => {
            Text::new("health.host_state").arg_text("state", host.state(now).text())
        }
        Constraint::Staleness => match known(f.have) {
            Some(ms) => Text::new("selection.stale").arg("seconds", format!("{:.1}", ms / 1000.0)),
            None => Text::new("selection.never_reported"),
        },
        Constraint::ResourceType => Text::new("selection.no_type"),
        Constraint::Region => Text::new("selection.in_region").arg("region", &host.region),
        Constraint::Provider => Text::new("selection.provider").arg("provider", &host.owner.code),
        Constraint::Industry => {
            Text::new("selection.industry").arg("industry", &host.owner.industry)
        }
        Constraint::Architecture => match host.figures.cpu_family {
            Some(family) => Text::new("selection.architecture").arg("family", family),
            None => Text::new("selection.no_architecture"),
        },
        Constraint::CpuCores => figure(
            Text::new("selection.cores").arg_text("free", free),
            "cores",
            known(f.have).map(|v| format!("{v:.1}")),
        ),
        Constraint::Memory | Constraint::Disk => figure(
            Text::new("selection.gib"),
            "gib",
            known(f.have).map(|b| format!("{:.1}", b / (1u64 << 30) as f64)),
        ),
        Constraint::Accelerators => {
            let held: Vec<Text> = host
                .gpu_briefs
                .iter()
                .filter_map(|b| {
                    let until = b.held_until_ms?;
                    let index = host.resources.get(b.slot as usize)?.gpu_index;
                    Some(
                        Text::new("selection.held_gpu")
                            .arg("gpu", index.map_or("?".into(), |i| i.to_string()))
                            .arg("until", crate::history::minute_text(until)),
                    )
                })
                .collect();
            Text::new(if f.exact {
                "selection.accelerators"
            } else {
                "selection.accelerators_at_most"
            })
            .arg("have", f.have)
            .arg("want", f.want)
            .arg_text("free", free)
            .arg_text(
                "held",
                if held.is_empty() {
                    Text::empty()
                } else {
                    Text::new("selection.held").arg_list("held", held)
                },
            )
        }
        Constraint::Health => {
            let reasons: Vec<Text> = host
                .accelerators()
                .filter_map(|r| {
                    let why = host.unselectable(r)?;
                    Some(
                        Text::new("selection.gpu_reason")
                            .arg("gpu", r.gpu_index.map_or("?".into(), |i| i.to_string()))
                            .arg_text("reason", why),
                    )
                })
                .collect();
            Text::new("selection.usable")
                .arg("have", f.have)
                .arg("want", f.want)
                .arg_list("reasons", reasons)
        }
        Constraint::Infiniband => figure(
            Text::new("selection.infiniband"),
            "gbps",
            known(f.have).map(|v| format!("{v:.1}")),
        ),
        Constraint::Fabric => Text::new("selection.no_fabric"),
        Constraint::Latency => match known(f.have) {
            Some(ms) => Text::new("selection.latency").arg("ms", format!("{ms:.1}")),
            None => Text::new("selection.unreachable"),
        },
        Constraint::Bandwidth => Text::new("selection.bandwidth").arg("mbps", f.want),
        Constraint::Price => match known(f.have) {
            Some(cny) => Text::new("selection.price").arg("cny", format!("{cny:.2}")),
            None => Text::new("selection.no_price"),
        },
        Constraint::Expression => Text::new("selection.expression_false"),
    }
}

/// What checking one host against the structured constraints found.
struct Verdict {
    faults: Faults,
    /// The chosen resources, as slots in the host's `resources`.
    chosen: Vec<u32>,
    matching: u32,
    availability: f64,
    load: f64,
    /// What the chosen resources cost per hour, in 0.0001 CNY.
    price_cny_e4: Option<i64>,
}

struct Checker<'a> {
    fleet: &'a Fleet,
    network: &'a Network,
    demand: &'a Demand,
    now: u64,
    wants_accelerators: bool,
    /// Per query: does each interned model name match, and the path to each region.
    models: Vec<Option<bool>>,
    paths: HashMap<[u8; 6], Option<Path>, Fnv>,
    /// Reused for each host's matching accelerators: (slot, utilization).
    matching: Vec<(u32, f64)>,
    /// Per query: the hourly price of a model at a provider.
    prices: HashMap<(i64, u32), Option<i64>, Fnv>,
}

/// FNV-1a: region codes and constraint names are short, trusted keys.
#[derive(Default, Clone, Copy)]
struct FnvHasher(u64);

impl std::hash::Hasher for FnvHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        self.0 = h;
    }
}

type Fnv = std::hash::BuildHasherDefault<FnvHasher>;

impl<'a> Checker<'a> {
    fn model_ok(&mut self, model_id: u32, a: &AcceleratorDemand) -> bool {
        if a.vendor.is_none() && a.model.is_none() && a.kind.is_none() {
            return true;
        }
        let i = model_id as usize;
        if self.models.len() <= i {
            self.models.resize(i + 1, None);
        }
        let fleet = self.fleet;
        *self.models[i].get_or_insert_with(|| {
            let key = fleet.models.get(i).map_or("", String::as_str);
            a.vendor.as_deref().is_none_or(|v| vendor_matches(key, v))
                && a.kind.is_none_or(|k| kind_matches(key, k))
                && a.model.as_deref().is_none_or(|m| model_matches(key, m))
        })
    }

    /// What the chosen resources of a host cost per hour: each chosen
    /// accelerator at its model's price, or the cores asked for (all the
    /// host's, if no number was asked) at the core price.
    fn price(&mut self, host: &HostEntry, chosen: &[u32]) -> Option<i64> {
        let list = self.fleet.prices.get(&host.owner.id)?;
        if !self.wants_accelerators {
            let cores = match self.demand.cpu_cores {
                Some(n) => n,
                None => host.figures.logical_cpus?,
            };
            return list.core()?.checked_mul(i64::from(cores));
        }
        let mut total = 0i64;
        for slot in chosen {
            // From the compact briefs, not the scattered resources.
            let model_id = host.gpu_briefs.iter().find(|b| b.slot == *slot)?.model_id;
            let fleet = self.fleet;
            let each = *self
                .prices
                .entry((host.owner.id, model_id))
                .or_insert_with(|| {
                    list.accelerator(
                        fleet
                            .models
                            .get(model_id as usize)
                            .map_or("", String::as_str),
                    )
                });
            total = total.checked_add(each?)?;
        }
        Some(total)
    }

    /// The path from the user to a host's region, found once per region.
    fn path(&mut self, host: &HostEntry) -> Option<&Path> {
        let (network, d) = (self.network, self.demand);
        let user = d.user_region.as_deref()?;
        self.paths
            .entry(host.figures.region)
            .or_insert_with(|| network.path(user, &host.region, d.min_bandwidth_mbps))
            .as_ref()
    }

    fn check(&mut self, host: &'a HostEntry) -> Verdict {
        let d = self.demand;
        let free_now = !d.installed;
        let mut faults = Faults::new();
        macro_rules! fail {
            ($constraint:expr) => {
                fail!($constraint, f64::NAN, f64::NAN, true)
            };
            ($constraint:expr, $have:expr) => {
                fail!($constraint, $have, f64::NAN, true)
            };
            ($constraint:expr, $have:expr, $want:expr, $exact:expr) => {
                faults.push(Fault {
                    constraint: $constraint,
                    have: $have as f32,
                    want: $want as f32,
                    exact: $exact,
                })
            };
        }
        let state = host.state(self.now);
        if state == HostState::Revoked || (free_now && state != HostState::Online) {
            fail!(Constraint::State);
        }
        let age = host.last_seen_ms.map(|seen| self.now.saturating_sub(seen));
        if let Some(bound) = d.max_staleness_ms
            && age.is_none_or(|a| a > bound)
        {
            fail!(Constraint::Staleness, age.map_or(f64::NAN, |a| a as f64));
        }
        // Only what is inline in the entry: what it points to is scattered
        // on the heap, a cache miss per host followed.
        let figures = &host.figures;
        let has_gpus = !host.gpu_groups.is_empty();
        let type_ok = match d.resource_type {
            Some(ResourceType::AiAccelerator) => has_gpus,
            Some(ResourceType::Supercomputing) => figures.slurm,
            Some(ResourceType::GeneralCompute) | None => true,
            Some(_) => false,
        } && (!self.wants_accelerators || has_gpus);
        if !type_ok {
            fail!(Constraint::ResourceType);
        }
        if let Some(prefix) = &d.region
            && !figures.in_region(prefix)
        {
            fail!(Constraint::Region);
        }
        if !d.providers.is_empty() && !d.providers.contains(&host.owner.code) {
            fail!(Constraint::Provider);
        }
        if !d.industries.is_empty()
            && !d
                .industries
                .iter()
                .any(|i| host.owner.industry.starts_with(i.as_str()))
        {
            fail!(Constraint::Industry);
        }
        if let Some(family) = d.architecture
            && figures.cpu_family != Some(family)
        {
            fail!(Constraint::Architecture);
        }
        let cpu_util = figures.cpu_utilization_percent;
        if let Some(want) = d.cpu_cores {
            let have = match (free_now, figures.logical_cpus, cpu_util) {
                (false, Some(c), _) => Some(f64::from(c)),
                (true, Some(c), Some(u)) => Some(f64::from(c) * (1.0 - u / 100.0)),
                _ => None,
            };
            if have.is_none_or(|h| h + 1e-9 < f64::from(want)) {
                fail!(Constraint::CpuCores, have.unwrap_or(f64::NAN));
            }
        }
        if let Some(want) = d.memory_bytes {
            let total = figures.memory_total_bytes;
            let have = if free_now {
                total
                    .zip(figures.memory_used_bytes)
                    .map(|(t, u)| t.saturating_sub(u))
            } else {
                total
            };
            if have.is_none_or(|h| h < want) {
                fail!(Constraint::Memory, have.map_or(f64::NAN, |b| b as f64));
            }
        }
        if let Some(want) = d.disk_bytes {
            let have = if free_now {
                figures.disk_available_bytes
            } else {
                figures.disk_total_bytes
            };
            if have.is_none_or(|h| h < want) {
                fail!(Constraint::Disk, have.map_or(f64::NAN, |b| b as f64));
            }
        }
        // Accelerators meeting every per-accelerator condition, with their load.
        let mut matching = std::mem::take(&mut self.matching);
        matching.clear();
        let (mut gpus, mut free_gpus) = (0usize, 0usize);
        if self.wants_accelerators {
            let a = d.accelerator.as_ref().unwrap_or(&ANY_ACCELERATOR);
            // At most this many can match: counted per model group, without
            // visiting each accelerator. Most hosts are decided here.
            let (mut bound, mut unhealthy) = (0, 0);
            for g in &host.gpu_groups {
                gpus += g.installed as usize;
                free_gpus += if state == HostState::Online {
                    g.idle as usize
                } else {
                    0
                };
                if self.model_ok(g.model_id, a)
                    && a.min_memory_bytes
                        .is_none_or(|m| g.memory_bytes.is_some_and(|b| b >= m))
                {
                    bound += if free_now {
                        g.idle
                    } else {
                        g.installed - g.unhealthy - g.held
                    };
                    unhealthy += g.unhealthy;
                }
            }
            let exact = a.mig.is_none() && a.min_free_memory_bytes.is_none() && a.nvlink.is_none();
            let examine = bound >= a.count && (faults.is_empty() || !exact);
            for g in host.gpu_briefs.iter().filter(|_| examine) {
                if !self.model_ok(g.model_id, a)
                    || a.min_memory_bytes
                        .is_some_and(|m| g.memory_bytes.is_none_or(|b| b < m))
                    || a.mig.is_some_and(|m| g.mig != Some(m))
                    || g.unhealthy
                    || g.held_until_ms.is_some()
                    || (free_now && !g.idle)
                {
                    continue;
                }
                if let Some(min_free) = a.min_free_memory_bytes
                    && g.memory_total_bytes
                        .zip(g.memory_used_bytes)
                        .is_none_or(|(t, u)| t.saturating_sub(u) < min_free)
                {
                    continue;
                }
                if let Some(want) = a.nvlink
                    && (g.nvlink_active.unwrap_or(0) > 0) != want
                {
                    continue;
                }
                matching.push((g.slot, f64::from(g.utilization_percent.unwrap_or(0))));
            }
            // Unexamined: the bound is the count when it is exact, and
            // otherwise an upper bound that already falls short.
            let found = if examine {
                matching.len() as u32
            } else {
                bound
            };
            if found < a.count && found + unhealthy >= a.count {
                fail!(
                    Constraint::Health,
                    f64::from(found),
                    f64::from(a.count),
                    true
                );
            } else if found < a.count {
                fail!(
                    Constraint::Accelerators,
                    f64::from(found),
                    f64::from(a.count),
                    examine || exact
                );
            }
            if let Some(gbps) = a.infiniband_gbps {
                let have = figures.infiniband_active_gbps;
                if have.is_none_or(|h| h < gbps) {
                    fail!(Constraint::Infiniband, have.unwrap_or(f64::NAN));
                }
            }
        }
        if d.together == Together::Fabric && host.fabric.is_none() {
            fail!(Constraint::Fabric);
        }
        if d.user_region.is_some() {
            let floor = d.min_bandwidth_mbps;
            let max = d.max_latency_ms;
            match self.path(host) {
                None if floor.is_some() => fail!(
                    Constraint::Bandwidth,
                    f64::NAN,
                    floor.unwrap_or(0) as f64,
                    true
                ),
                None => fail!(Constraint::Latency),
                Some(p) => {
                    if let Some(max) = max
                        && p.latency_ms > max
                    {
                        fail!(Constraint::Latency, p.latency_ms);
                    }
                }
            }
        }
        if !faults.is_empty() {
            let verdict = Verdict {
                faults,
                chosen: Vec::new(),
                matching: matching.len() as u32,
                availability: 0.0,
                load: 0.0,
                price_cny_e4: None,
            };
            self.matching = matching;
            return verdict;
        }
        // Choose: the least-loaded matching accelerators, or the host itself.
        let mut verdict = if self.wants_accelerators {
            let want = d.accelerator.as_ref().map_or(1, |a| a.count) as usize;
            matching.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
            let chosen = &matching[..want.min(matching.len())];
            let load = if chosen.is_empty() {
                0.0
            } else {
                1.0 - chosen.iter().map(|c| c.1).sum::<f64>() / chosen.len() as f64 / 100.0
            };
            let verdict = Verdict {
                faults,
                chosen: chosen.iter().map(|c| c.0).collect(),
                matching: matching.len() as u32,
                availability: if gpus == 0 {
                    0.0
                } else {
                    free_gpus as f64 / gpus as f64
                },
                load,
                price_cny_e4: None,
            };
            self.matching = matching;
            verdict
        } else {
            let idle = 1.0 - cpu_util.unwrap_or(100.0) / 100.0;
            self.matching = matching;
            Verdict {
                faults,
                chosen: host.own_resource().map(|_| 0).into_iter().collect(),
                matching: 0,
                availability: idle,
                load: idle,
                price_cny_e4: None,
            }
        };
        // The price is of what was chosen, so it is judged last.
        verdict.price_cny_e4 = self.price(host, &verdict.chosen);
        if let Some(max) = d.max_price_cny_e4
            && verdict.price_cny_e4.is_none_or(|p| p > max)
        {
            let have = verdict
                .price_cny_e4
                .map_or(f64::NAN, |p| p as f64 / 10_000.0);
            verdict.faults.push(Fault {
                constraint: Constraint::Price,
                have: have as f32,
                want: (max as f64 / 10_000.0) as f32,
                exact: true,
            });
            verdict.chosen.clear();
        }
        verdict
    }
}

/// Keeps the few hosts that missed by the fewest constraints.
#[derive(Default)]
struct Misses(Vec<(usize, Miss)>);

impl Misses {
    const KEEP: usize = 5;

    fn would_keep(&self, n: usize) -> bool {
        self.0.len() < Self::KEEP || self.0.iter().any(|(m, _)| *m > n)
    }

    /// Offers a host with structured faults; they are put into words only if kept.
    fn offer_faults(&mut self, host: &HostEntry, faults: &Faults, demand: &Demand, now: u64) {
        if !self.would_keep(faults.len) {
            return;
        }
        let failed = faults
            .iter()
            .map(|f| Failure::new(f.constraint, describe(f, host, demand, now)))
            .collect();
        self.offer(host, failed);
    }

    fn offer(&mut self, host: &HostEntry, failed: Vec<Failure>) {
        let n = failed.len();
        if !self.would_keep(n) {
            return;
        }
        self.0.push((
            n,
            Miss {
                node: String::new(),
                host_id: host.host_id,
                hostname: host.hostname.clone(),
                identifier: host.own_resource().map(|r| r.identifier.clone()),
                failed,
            },
        ));
        self.0.sort_by_key(|(n, m)| (*n, m.host_id));
        self.0.truncate(Self::KEEP);
    }
}

/// How a host that met every constraint scores. `cheapest` is the lowest
/// price among those hosts.
fn score_parts<'a>(
    checker: &mut Checker<'a>,
    host: &'a HostEntry,
    verdict: &Verdict,
    cheapest: Option<i64>,
    now: u64,
) -> ScoreParts {
    let stale = host.state(now) != HostState::Online;
    ScoreParts {
        availability: (verdict.availability * if stale { 0.5 } else { 1.0 }).clamp(0.0, 1.0),
        latency: checker.path(host).map(|p| latency_part(p.latency_ms)),
        load: verdict.load.clamp(0.0, 1.0),
        price: cheapest.map(|c| price_part(c, verdict.price_cny_e4)),
    }
}

/// The latency part of a path's score: 1 on the spot, ½ at 10 ms.
fn latency_part(latency_ms: f64) -> f64 {
    1.0 / (1.0 + latency_ms / 10.0)
}

/// The price part of a host's score against the cheapest of those it is
/// ranked with. Not listing a price must never rank above listing one.
fn price_part(cheapest_cny_e4: i64, price_cny_e4: Option<i64>) -> f64 {
    match price_cny_e4 {
        Some(p) if p > 0 => (cheapest_cny_e4 as f64 / p as f64).clamp(0.0, 1.0),
        Some(_) => 1.0,
        None => 0.0,
    }
}

/// A host that met every constraint, scored.
struct Scored<'a> {
    host: &'a HostEntry,
    verdict: Verdict,
    parts: ScoreParts,
    score: f64,
}

/// A host as an answer shows it.
/// What hosts answered together must share.
fn together(together: Together, host: &HostEntry) -> &str {
    match together {
        Together::Anywhere => "",
        Together::Region => host.region.as_str(),
        Together::Provider => host.owner.code.as_str(),
        Together::Fabric => host.fabric.as_deref().unwrap_or(""),
    }
}

/// What a host's chosen resources are rated at `precision` together; absent
/// if any of them has no rating there.
fn rated(fleet: &Fleet, scored: &Scored<'_>, precision: crate::capacity::Precision) -> Option<u64> {
    let host = scored.host;
    scored
        .verdict
        .chosen
        .iter()
        .map(|slot| {
            let resource = host.resources.get(*slot as usize)?;
            let rating = if resource.resource_type == ResourceType::AiAccelerator {
                crate::capacity::TABLE.rate(fleet.models.get(resource.model_id as usize)?)
            } else {
                crate::capacity::rate_cpu(&host.inventory.as_deref()?.cpu).0
            };
            rating.get(precision)
        })
        .sum()
}

fn host_pick<'a>(checker: &mut Checker<'a>, scored: Scored<'a>, now: u64) -> HostPick {
    let Scored {
        host,
        verdict,
        parts,
        score,
    } = scored;
    let state = host.state(now);
    let path = checker.path(host).cloned();
    let stale = state != HostState::Online;
    HostPick {
        node: String::new(),
        host_id: host.host_id,
        identifier: host.own_resource().map(|r| r.identifier.clone()),
        hostname: host.hostname.clone(),
        provider: host.owner.code.clone(),
        region: host.region.clone(),
        industry: host.owner.industry.clone(),
        state,
        stale,
        freshness_ms: host.last_seen_ms.map(|seen| now.saturating_sub(seen)),
        resources: verdict
            .chosen
            .iter()
            .filter_map(|slot| host.resources.get(*slot as usize))
            .map(|r| r.identifier.clone())
            .collect(),
        matching_accelerators: verdict.matching,
        path,
        rtt_ms: host.rtt_us.map(|us| us as f64 / 1000.0),
        fabric: host.fabric.clone(),
        price_per_hour_cny: verdict.price_cny_e4.map(crate::price::format_cny),
        score,
        parts,
    }
}

/// Runs a demand against the fleet. `expression` is the demand's CEL
/// expression, compiled by the caller (a compile error is the caller's 422).
pub fn select(
    fleet: &Fleet,
    network: &Network,
    demand: &Demand,
    expression: Option<&Expression>,
    now: u64,
) -> Answer {
    let wants_accelerators =
        demand.accelerator.is_some() || demand.resource_type == Some(ResourceType::AiAccelerator);
    let mut checker = Checker {
        fleet,
        network,
        demand,
        now,
        wants_accelerators,
        models: Vec::new(),
        paths: HashMap::default(),
        matching: Vec::new(),
        prices: HashMap::default(),
    };
    let mut eliminated: HashMap<Constraint, u64, Fnv> = HashMap::default();
    let mut misses = Misses::default();
    let mut passed: Vec<(&HostEntry, Verdict)> = Vec::new();
    for host in fleet.hosts.values() {
        let verdict = checker.check(host);
        if verdict.faults.is_empty() {
            passed.push((host, verdict));
        } else {
            for f in verdict.faults.iter() {
                *eliminated.entry(f.constraint).or_default() += 1;
            }
            misses.offer_faults(host, &verdict.faults, demand, now);
        }
    }
    let cheapest = passed.iter().filter_map(|(_, v)| v.price_cny_e4).min();
    let mut passed: Vec<Scored<'_>> = passed
        .into_iter()
        .map(|(host, verdict)| {
            let parts = score_parts(&mut checker, host, &verdict, cheapest, now);
            Scored {
                host,
                verdict,
                parts,
                score: parts.score(),
            }
        })
        .collect();
    passed.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(a.host.host_id.cmp(&b.host.host_id))
    });
    // The expression, in rank order, until the answer is full: one host
    // per candidate, or every host when they must be grouped.
    let wanted = demand.hosts as usize;
    let needed = if wanted <= 1 && demand.capacity.is_none() {
        demand.limit
    } else {
        usize::MAX
    };
    let mut accepted: Vec<Scored<'_>> = Vec::new();
    let mut unexamined = 0u64;
    for scored in passed {
        let host = scored.host;
        if accepted.len() >= needed {
            unexamined += 1;
            continue;
        }
        if let Some(expression) = expression {
            let outcome = expression.holds(&document(fleet, host, now));
            if outcome != Ok(true) {
                *eliminated.entry(Constraint::Expression).or_default() += 1;
                // The expression's own error is CEL's, in English.
                let failure = match outcome.err() {
                    Some(error) => Failure {
                        constraint: Constraint::Expression,
                        detail: error,
                        text: None,
                    },
                    None => Failure::new(
                        Constraint::Expression,
                        Text::new("selection.expression_false"),
                    ),
                };
                misses.offer(host, vec![failure]);
                continue;
            }
        }
        accepted.push(scored);
    }
    let matched_hosts = accepted.len() as u64;
    let mut groups_short = None;
    let mut candidates: Vec<Candidate> = if wanted <= 1 && demand.capacity.is_none() {
        accepted
            .into_iter()
            .map(|s| Candidate {
                score: s.score,
                hosts: vec![host_pick(&mut checker, s, now)],
                total_gflops: None,
            })
            .collect()
    } else {
        // All or nothing: of each group, the best hosts (accepted is in
        // rank order) until it has `wanted` of them, or until their rated
        // resources reach the total capacity asked for (hosts without a
        // rating at its precision give nothing and are left out). Only
        // the groups answered are written out.
        let mut groups: HashMap<&str, (Vec<usize>, u64)> = HashMap::new();
        for (i, scored) in accepted.iter().enumerate() {
            let (members, total) = groups
                .entry(together(demand.together, scored.host))
                .or_default();
            match demand.capacity {
                None if members.len() < wanted => members.push(i),
                Some(want) if *total < want.gflops => {
                    if let Some(gives) = rated(fleet, scored, want.precision).filter(|g| *g > 0) {
                        members.push(i);
                        *total += gives;
                    }
                }
                _ => {}
            }
        }
        let reached = |(members, total): &(Vec<usize>, u64)| match demand.capacity {
            None => members.len() >= wanted,
            Some(want) => *total >= want.gflops,
        };
        if matched_hosts > 0 && !groups.values().any(reached) {
            let together = Text::new(&format!("together_{}", demand.together.as_str()));
            groups_short = Some(match demand.capacity {
                None => Text::new("selection.groups_short")
                    .arg("wanted", wanted)
                    .arg_text("together", together)
                    .arg(
                        "largest",
                        groups.values().map(|g| g.0.len()).max().unwrap_or(0),
                    ),
                Some(want) => Text::new("selection.groups_short_capacity")
                    .arg("tflops", want.gflops as f64 / 1000.0)
                    .arg("precision", want.precision.as_str())
                    .arg_text("together", together)
                    .arg(
                        "most",
                        groups.values().map(|g| g.1).max().unwrap_or(0) as f64 / 1000.0,
                    ),
            });
        }
        let mut full: Vec<(f64, Vec<usize>, u64)> = groups
            .into_values()
            .filter(reached)
            .map(|(members, total)| {
                let score =
                    members.iter().map(|&i| accepted[i].score).sum::<f64>() / members.len() as f64;
                (score, members, total)
            })
            .collect();
        full.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1[0].cmp(&b.1[0])));
        full.truncate(demand.limit);
        let mut slots: Vec<Option<Scored<'_>>> = accepted.into_iter().map(Some).collect();
        full.into_iter()
            .map(|(score, members, total)| Candidate {
                score,
                hosts: members
                    .into_iter()
                    .filter_map(|i| slots[i].take())
                    .map(|s| host_pick(&mut checker, s, now))
                    .collect(),
                total_gflops: demand.capacity.map(|_| total),
            })
            .collect()
    };
    candidates.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(a.hosts[0].host_id.cmp(&b.hosts[0].host_id))
    });
    candidates.truncate(demand.limit);
    let mut eliminated: Vec<Elimination> = eliminated
        .into_iter()
        .map(|(constraint, hosts)| Elimination { constraint, hosts })
        .collect();
    eliminated.sort_by_key(|e| e.constraint);
    Answer {
        candidates,
        matched_hosts,
        unexamined_hosts: unexamined,
        considered_hosts: fleet.hosts.len() as u64,
        eliminated,
        nearest_misses: misses.0.into_iter().map(|(_, m)| m).collect(),
        groups_short: groups_short.as_ref().map(|t| t.render(Lang::En)),
        groups_short_text: groups_short,
        nodes: Vec::new(),
        partial: false,
    }
}
