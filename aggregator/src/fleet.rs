//! The fleet: every resource of the node and its host's latest figures,
//! and the rules read off them (host state, free now, the figures
//! selection scans). Pure: values in, values out; time is a parameter.
//!
//! [`crate::catalog::Catalog`] holds the node's one `Fleet` behind a lock.

use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
};

use smallvec::SmallVec;
use suanli_protocol::{
    identifier::ResourceType,
    model::{DeviceHealth, HostInventory, HostSample},
};

use crate::{
    health::{GpuFaults, XIDS},
    history::HostIo,
    i18n::Text,
    price::PriceList,
};

/// A host whose last sample is older than this many intervals is stale…
const STALE_AFTER_INTERVALS: u64 = 3;
/// …but never sooner than this.
const STALE_AFTER_MIN_MS: u64 = 15_000;
/// Past this, stale becomes offline.
const OFFLINE_AFTER_MS: u64 = 300_000;
/// NVML clocks-event reasons that mean a slowdown: HW slowdown (0x8), SW
/// thermal (0x20), HW thermal (0x40), HW power brake (0x80).
const SLOWDOWN_BITS: u64 = 0x8 | 0x20 | 0x40 | 0x80;
/// Slowdown starts kept per accelerator: more than the rule counts.
pub const SLOWDOWN_KEPT: usize = 64;
/// The interval assumed until two samples have been seen.
const DEFAULT_INTERVAL_MS: u64 = 5_000;
/// "Free now": an accelerator below both of these…
pub const GPU_FREE_UTILIZATION_PERCENT: u32 = 10;
pub const GPU_FREE_MEMORY_FRACTION: f64 = 0.10;
/// …and a CPU host below this utilization.
const HOST_FREE_CPU_PERCENT: f64 = 50.0;

/// Where a host stands, by the age of its last sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HostState {
    Online,
    Stale,
    Offline,
    Revoked,
}

impl HostState {
    pub const ALL: [HostState; 4] = [
        HostState::Online,
        HostState::Stale,
        HostState::Offline,
        HostState::Revoked,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            HostState::Online => "online",
            HostState::Stale => "stale",
            HostState::Offline => "offline",
            HostState::Revoked => "revoked",
        }
    }

    /// The state as people read it.
    pub fn text(self) -> Text {
        Text::new(&format!("host_state.{}", self.as_str()))
    }
}

/// The figures people watch, from a host's latest sample.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Vitals {
    pub seq: u64,
    pub collected_at_ms: u64,
    pub cpu_utilization_percent: Option<f64>,
    pub load_average_1m: Option<f64>,
    pub memory_total_bytes: Option<u64>,
    pub memory_used_bytes: Option<u64>,
    /// Local (not network) filesystems, summed.
    pub disk_total_bytes: Option<u64>,
    pub disk_available_bytes: Option<u64>,
    /// The fastest InfiniBand port that is ACTIVE.
    pub infiniband_active_gbps: Option<f64>,
    /// Disks and network summed, the hottest sensor (see [`HostIo`]).
    pub disk_read_bytes_per_second: Option<f64>,
    pub disk_write_bytes_per_second: Option<f64>,
    pub network_rx_bytes_per_second: Option<f64>,
    pub network_tx_bytes_per_second: Option<f64>,
    pub temperature_celsius: Option<f64>,
    pub gpus: Vec<GpuVitals>,
    pub memory_available_bytes: Option<u64>,
    /// Each local filesystem's use, for the filesystem rules.
    pub filesystems: Vec<FilesystemUse>,
    /// InfiniBand ports that are not ACTIVE (and not disabled on purpose), as `device/port`.
    pub infiniband_down: Vec<String>,
    /// The Slurm node's state, e.g. "IDLE+DRAIN".
    pub slurm_state: Option<String>,
    /// How far the agent's clock is behind (+) or ahead (-) of the
    /// aggregator's, from a sample that arrived as it was taken.
    pub clock_offset_ms: Option<i64>,
    /// Readings that cannot be true, left out of the figures above (see
    /// [`Vitals::screen`]).
    pub implausible: Vec<Implausible>,
}

/// A reading no working sensor or driver gives (10,000 °C, 140 %
/// utilization, more memory used than installed): a data problem, not the
/// machine's state. It is left out of the figures (absent, as a reading
/// that cannot be taken), so it raises no threshold alert and counts in no
/// capacity or selection figure; monitoring reports it once per device.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Implausible {
    /// The accelerator's, or none for the host's own reading.
    pub uuid: Option<String>,
    pub index: Option<u32>,
    /// The figure's name, as in [`Vitals`] and [`GpuVitals`].
    pub field: &'static str,
    /// The value as reported.
    pub raw: String,
}

/// Takes out memory `used` above what is installed, as `used > total`.
fn more_than_installed(used: &mut Option<u64>, total: Option<u64>) -> Option<String> {
    let total = total?;
    used.take_if(|u| *u > total)
        .map(|u| format!("{u} > {total}"))
}

/// Temperatures outside this range (°C) come from a broken sensor.
const PLAUSIBLE_CELSIUS: std::ops::RangeInclusive<f64> = -50.0..=200.0;

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct FilesystemUse {
    pub mount_point: String,
    pub used_percent: f64,
}

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct GpuVitals {
    /// Lower-case vendor name: "nvidia", "huawei", "hygon", …
    pub vendor: &'static str,
    /// The vendor library's own verdict, where it gives one, and its raw code.
    #[serde(skip)]
    pub health: Option<DeviceHealth>,
    pub health_code: Option<i64>,
    /// Fault codes the device raises now (Ascend error codes).
    pub error_codes: Vec<u64>,
    pub index: u32,
    pub uuid: Option<String>,
    pub utilization_percent: Option<u32>,
    pub memory_used_bytes: Option<u64>,
    pub memory_total_bytes: Option<u64>,
    pub temperature_celsius: Option<u32>,
    pub power_watts: Option<f64>,
    pub ecc_uncorrected_volatile: Option<u64>,
    /// XID errors seen since the aggregator started.
    pub xid_errors: u64,
    /// Active NVLink links; absent where the GPU reports none.
    pub nvlink_active: Option<u32>,
    /// Links reported and not active.
    pub nvlink_down: Option<u32>,
    pub throttle_reasons_mask: Option<u64>,
    pub throttle_reasons: Vec<String>,
    pub remapped_rows_pending: Option<bool>,
    pub remapped_rows_failure: Option<bool>,
    pub retired_pages_pending: Option<bool>,
    pub processes: Vec<u32>,
    /// From the inventory, kept beside the readings they judge.
    pub slowdown_temperature_celsius: Option<u32>,
    pub power_limit_watts: Option<f64>,
}

impl Vitals {
    /// Takes out the readings that cannot be true, recording each in
    /// `implausible`.
    pub fn screen(&mut self) {
        let mut found = Vec::new();
        let mut note = |uuid: Option<&String>, index, field, raw| {
            found.push(Implausible {
                uuid: uuid.cloned(),
                index,
                field,
                raw,
            });
        };
        let celsius = |t: &f64| !PLAUSIBLE_CELSIUS.contains(t);
        if let Some(u) = self
            .cpu_utilization_percent
            .take_if(|u| !(0.0..=100.0).contains(u))
        {
            note(None, None, "cpu_utilization_percent", u.to_string());
        }
        if let Some(raw) = more_than_installed(&mut self.memory_used_bytes, self.memory_total_bytes)
        {
            note(None, None, "memory_used_bytes", raw);
        }
        if let Some(t) = self.temperature_celsius.take_if(|t| celsius(t)) {
            note(None, None, "temperature_celsius", t.to_string());
        }
        for g in &mut self.gpus {
            let (uuid, index) = (g.uuid.as_ref(), Some(g.index));
            if let Some(u) = g.utilization_percent.take_if(|u| *u > 100) {
                note(uuid, index, "utilization_percent", u.to_string());
            }
            if let Some(raw) = more_than_installed(&mut g.memory_used_bytes, g.memory_total_bytes) {
                note(uuid, index, "memory_used_bytes", raw);
            }
            if let Some(t) = g.temperature_celsius.take_if(|t| celsius(&f64::from(*t))) {
                note(uuid, index, "temperature_celsius", t.to_string());
            }
        }
        self.implausible = found;
    }

    /// The figures of `sample`, screened (see [`Vitals::screen`]);
    /// `inventory` tells local filesystems from network ones.
    pub fn from_sample(seq: u64, sample: &HostSample, inventory: Option<&HostInventory>) -> Self {
        let mut vitals = Self::read(seq, sample, inventory);
        vitals.screen();
        vitals
    }

    fn read(seq: u64, sample: &HostSample, inventory: Option<&HostInventory>) -> Self {
        let network_mounts: Vec<&str> = inventory
            .map(|inv| {
                inv.filesystems
                    .iter()
                    .filter(|f| f.network)
                    .map(|f| f.mount_point.as_str())
                    .collect()
            })
            .unwrap_or_default();
        let local = sample
            .filesystems
            .iter()
            .filter(|f| !network_mounts.contains(&f.mount_point.as_str()));
        let sum = |pick: fn(&suanli_protocol::model::FilesystemSample) -> Option<u64>| {
            local
                .clone()
                .map(pick)
                .try_fold(0u64, |acc, v| Some(acc + v?))
        };
        let filesystems = local
            .clone()
            .filter_map(|f| {
                let total = f.total_bytes.filter(|t| *t > 0)?;
                let used = f
                    .used_bytes
                    .or_else(|| Some(total.saturating_sub(f.available_bytes?)))?;
                Some(FilesystemUse {
                    mount_point: f.mount_point.clone(),
                    used_percent: used as f64 * 100.0 / total as f64,
                })
            })
            .collect();
        let (disk_total_bytes, disk_available_bytes) = if sample.filesystems.is_empty() {
            (None, None)
        } else {
            (sum(|f| f.total_bytes), sum(|f| f.available_bytes))
        };
        let io = HostIo::of(sample);
        Self {
            disk_total_bytes,
            disk_available_bytes,
            disk_read_bytes_per_second: io.disk_read_bytes_per_second,
            disk_write_bytes_per_second: io.disk_write_bytes_per_second,
            network_rx_bytes_per_second: io.network_rx_bytes_per_second,
            network_tx_bytes_per_second: io.network_tx_bytes_per_second,
            temperature_celsius: io.temperature_celsius,
            infiniband_active_gbps: sample
                .infiniband_ports
                .iter()
                .filter(|p| p.state.as_deref() == Some("ACTIVE"))
                .filter_map(|p| p.rate_gbps)
                .max_by(f64::total_cmp),
            memory_available_bytes: sample.memory.available_bytes,
            filesystems,
            infiniband_down: sample
                .infiniband_ports
                .iter()
                .filter(|p| p.state.as_deref().is_some_and(|s| s != "ACTIVE"))
                .filter(|p| p.physical_state.as_deref() != Some("Disabled"))
                .map(|p| format!("{}/{}", p.device, p.port))
                .collect(),
            slurm_state: sample.slurm.as_ref().map(|s| s.state.clone()),
            clock_offset_ms: None,
            implausible: Vec::new(),
            seq,
            collected_at_ms: sample.collected_at_unix_ms,
            cpu_utilization_percent: sample.cpu.utilization_percent,
            load_average_1m: sample.cpu.load_average_1m,
            memory_total_bytes: sample.memory.total_bytes,
            memory_used_bytes: sample.memory.used_bytes,
            gpus: sample
                .gpus
                .iter()
                .map(|g| {
                    let inv = inventory.and_then(|i| {
                        i.gpus
                            .get(g.index as usize)
                            .filter(|x| x.uuid == g.uuid)
                            .or_else(|| i.gpus.iter().find(|x| x.uuid == g.uuid))
                    });
                    GpuVitals {
                        vendor: inv.map_or("nvidia", |i| i.vendor.as_str()),
                        health: g.health,
                        health_code: g.health_code,
                        error_codes: g.error_codes.clone(),
                        slowdown_temperature_celsius: inv
                            .and_then(|i| i.slowdown_temperature_celsius),
                        power_limit_watts: inv
                            .and_then(|i| i.power_limit_milliwatts)
                            .map(|mw| f64::from(mw) / 1000.0),
                        index: g.index,
                        uuid: g.uuid.clone(),
                        utilization_percent: g.utilization_percent,
                        memory_used_bytes: g.memory_used_bytes,
                        memory_total_bytes: g.memory_total_bytes,
                        temperature_celsius: g.temperature_celsius,
                        power_watts: g.power_milliwatts.map(|mw| f64::from(mw) / 1000.0),
                        ecc_uncorrected_volatile: g.ecc_uncorrected_volatile,
                        xid_errors: 0,
                        nvlink_active: (!g.nvlinks.is_empty())
                            .then(|| g.nvlinks.iter().filter(|l| l.active).count() as u32),
                        nvlink_down: (!g.nvlinks.is_empty())
                            .then(|| g.nvlinks.iter().filter(|l| !l.active).count() as u32),
                        throttle_reasons_mask: g.throttle_reasons_mask,
                        throttle_reasons: g.throttle_reasons.clone(),
                        remapped_rows_pending: g.remapped_rows_pending,
                        remapped_rows_failure: g.remapped_rows_failure,
                        retired_pages_pending: g.retired_pages_pending,
                        processes: g.processes.iter().map(|p| p.pid).collect(),
                    }
                })
                .collect(),
        }
    }
}

/// The figures selection checks on every host, copied inline into the
/// entry: the inventory, vitals and region text are each behind a pointer,
/// and following three pointers per host dominated a 20,000-host scan.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct HostFigures {
    /// The GB/T 2260 code's six digits.
    pub region: [u8; 6],
    /// `X86`, `ARM`, `LA`, `RV` (see [`cpu_family`]).
    pub cpu_family: Option<&'static str>,
    pub logical_cpus: Option<u32>,
    pub slurm: bool,
    /// From the latest sample, else the inventory.
    pub memory_total_bytes: Option<u64>,
    pub memory_used_bytes: Option<u64>,
    pub cpu_utilization_percent: Option<f64>,
    pub disk_total_bytes: Option<u64>,
    pub disk_available_bytes: Option<u64>,
    pub infiniband_active_gbps: Option<f64>,
}

impl HostFigures {
    /// Is the host in a region starting with `prefix`?
    pub fn in_region(&self, prefix: &str) -> bool {
        self.region.starts_with(prefix.as_bytes())
    }
}

/// The instruction-set family of an architecture as the kernel (or a
/// demand) names it: `X86`, `ARM`, `LA` (LoongArch), `RV` (RISC-V).
pub fn cpu_family(architecture: &str) -> Option<&'static str> {
    Some(match architecture.to_ascii_lowercase().as_str() {
        "x86_64" | "amd64" | "x86" | "x86-64" => "X86",
        "aarch64" | "arm64" | "arm" => "ARM",
        "riscv64" | "riscv" | "rv" => "RV",
        "loongarch64" | "loongarch" | "la" => "LA",
        _ => return None,
    })
}

/// An organisation as resources carry it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Owner {
    #[serde(skip)]
    pub id: i64,
    pub code: String,
    pub name: String,
    pub region: String,
    pub industry: String,
    /// The provider's USCC, filed with its identifiers to the parent node.
    #[serde(skip)]
    pub uscc: String,
}

/// An accelerator held for someone (预留) until a time.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HeldFor {
    /// The hold's id at this node (`CN.32:7`).
    pub reservation: String,
    pub holder: String,
    pub until_ms: u64,
}

#[derive(Debug)]
pub struct HostEntry {
    pub host_id: i64,
    pub hostname: String,
    pub owner: Arc<Owner>,
    /// Where the host is (GB/T 2260): its site, else its provider's region.
    pub region: String,
    pub revoked: bool,
    pub inventory: Option<Arc<HostInventory>>,
    pub vitals: Option<Arc<Vitals>>,
    /// From storage at load, then from samples.
    pub last_seen_ms: Option<u64>,
    pub rtt_us: Option<u64>,
    /// Collection interval observed between the last two samples.
    pub interval_ms: Option<u64>,
    /// Interval the host sampled at before a live page asked for 1 s.
    pub interval_before_live_ms: Option<u64>,
    /// The pace the host was last asked to slow to, until its samples show
    /// it: a host leaving a live view (1 s) for its usual 5 s is not silent
    /// after 3 s.
    pub asked_interval_ms: Option<u64>,
    /// The last sample the agent had spooled when it connected: until the
    /// stream passes it, the agent is catching up.
    pub spooled_through: Option<u64>,
    /// This host's resources, the host itself first.
    pub resources: Vec<Arc<ResourceEntry>>,
    /// `subnet prefix/SM LID` of its first InfiniBand port: hosts with the
    /// same value are on one fabric.
    pub fabric: Option<String>,
    pub gpu_groups: SmallVec<[GpuGroup; 2]>,
    /// What selection reads of every host, kept inline (see [`HostFigures`]).
    pub figures: HostFigures,
    /// Each accelerator's figures, compact and in one place, in the order
    /// of `resources` (`slot` indexes it): what selection reads per GPU.
    pub gpu_briefs: Vec<GpuBrief>,
    /// XID events since the aggregator started, by device UUID (never by
    /// index: another vendor's device 0 may sit beside NVIDIA's).
    xid_errors: HashMap<String, u64>,
    /// Each accelerator's fault record, by UUID.
    pub gpu_faults: BTreeMap<String, GpuFaults>,
    /// Uncorrected ECC errors went up, at this time, by accelerator UUID.
    pub ecc_increased_ms: BTreeMap<String, u64>,
    /// When each accelerator entered HW or thermal slowdown, oldest first
    /// (at most [`SLOWDOWN_KEPT`]).
    pub slowdowns: BTreeMap<String, Vec<u64>>,
    /// Accelerators held for someone (预留), by slot, until when: out of
    /// selection and not free until then.
    pub holds: BTreeMap<u32, HeldFor>,
    /// Live pages watching this host.
    pub watchers: usize,
    /// The last time a second agent claimed this host's identity while it
    /// reported (a copied disk image?), and from where: refused, and an
    /// alert for staff.
    pub clone_refused: Option<(u64, String)>,
}

impl HostEntry {
    /// A host as storage describes it, before any sample.
    pub fn new(
        host_id: i64,
        hostname: String,
        owner: Arc<Owner>,
        region: String,
        inventory: Option<Arc<HostInventory>>,
    ) -> Self {
        let fabric = inventory.as_deref().and_then(fabric_of);
        let mut host = Self {
            host_id,
            hostname,
            owner,
            region,
            revoked: false,
            inventory,
            vitals: None,
            last_seen_ms: None,
            rtt_us: None,
            interval_ms: None,
            interval_before_live_ms: None,
            asked_interval_ms: None,
            spooled_through: None,
            resources: Vec::new(),
            fabric,
            gpu_groups: SmallVec::new(),
            figures: HostFigures::default(),
            gpu_briefs: Vec::new(),
            xid_errors: HashMap::new(),
            gpu_faults: BTreeMap::new(),
            ecc_increased_ms: BTreeMap::new(),
            slowdowns: BTreeMap::new(),
            holds: BTreeMap::new(),
            watchers: 0,
            clone_refused: None,
        };
        host.refigure();
        host
    }

    /// Takes in the figures `vitals` of the host's `sample`, received at
    /// `received_ms`. Returns them as kept, or `None` for a resent or late
    /// sample, which is history, not news.
    pub fn observe(
        &mut self,
        mut vitals: Vitals,
        sample: &HostSample,
        received_ms: u64,
        arrival: Arrival,
    ) -> Option<Arc<Vitals>> {
        let seq = vitals.seq;
        if let Some(previous) = &self.vitals {
            if previous.seq >= seq {
                return None;
            }
            if seq == previous.seq + 1 && vitals.collected_at_ms > previous.collected_at_ms {
                let spacing = vitals.collected_at_ms - previous.collected_at_ms;
                self.interval_ms = Some(spacing);
                // The slower pace asked for has arrived (within 20 %).
                if self
                    .asked_interval_ms
                    .is_some_and(|asked| spacing * 5 >= asked * 4)
                {
                    self.asked_interval_ms = None;
                }
            }
        }
        for event in &sample.xid_events {
            let uuid = self.gpu_uuid_of(&vitals, event.gpu_index, event.pci_bus_id.as_deref());
            if let Some(uuid) = uuid {
                *self.xid_errors.entry(uuid.clone()).or_default() += 1;
                let at = event
                    .observed_at_unix_ms
                    .unwrap_or(sample.collected_at_unix_ms);
                self.gpu_faults.entry(uuid).or_default().record(
                    event.xid,
                    at,
                    event.message.clone(),
                    &XIDS,
                );
            }
        }
        for gpu in &mut vitals.gpus {
            gpu.xid_errors = gpu
                .uuid
                .as_ref()
                .and_then(|uuid| self.xid_errors.get(uuid))
                .copied()
                .unwrap_or(0);
            if let (Some(uuid), Some(now)) = (&gpu.uuid, gpu.ecc_uncorrected_volatile) {
                let before = self
                    .vitals
                    .as_ref()
                    .and_then(|v| v.gpus.iter().find(|g| g.uuid.as_ref() == Some(uuid)))
                    .and_then(|g| g.ecc_uncorrected_volatile);
                if before.is_some_and(|b| now > b) {
                    self.ecc_increased_ms.insert(uuid.clone(), received_ms);
                }
            }
            if let (Some(uuid), Some(mask)) = (&gpu.uuid, gpu.throttle_reasons_mask) {
                let before = self
                    .vitals
                    .as_ref()
                    .and_then(|v| v.gpus.iter().find(|g| g.uuid.as_ref() == Some(uuid)))
                    .and_then(|g| g.throttle_reasons_mask);
                if mask & SLOWDOWN_BITS != 0 && before.is_some_and(|b| b & SLOWDOWN_BITS == 0) {
                    let times = self.slowdowns.entry(uuid.clone()).or_default();
                    times.push(received_ms);
                    if times.len() > SLOWDOWN_KEPT {
                        times.remove(0);
                    }
                }
            }
        }
        // Only a sample sent as it was taken, straight from its agent,
        // tells the clocks apart: one from the spool is late by design, one
        // another replica stored is late by the time it took to follow.
        let live = arrival == Arrival::FromAgent
            && self.spooled_through.is_none_or(|through| seq > through);
        if live {
            let taken = vitals.collected_at_ms;
            let one_way = self.rtt_us.unwrap_or(0) / 2_000;
            vitals.clock_offset_ms = Some(received_ms as i64 - taken as i64 - one_way as i64);
        }
        self.last_seen_ms = Some(received_ms);
        let vitals = Arc::new(vitals);
        self.vitals = Some(vitals.clone());
        self.regroup();
        Some(vitals)
    }

    /// The UUID of the GPU an event names by index or PCI address.
    fn gpu_uuid_of(
        &self,
        vitals: &Vitals,
        index: Option<u32>,
        pci: Option<&str>,
    ) -> Option<String> {
        let inventory = self.inventory.as_deref();
        // XIDs are the NVIDIA driver's (NVML's events or NVRM in the kernel
        // log; Iluvatar's NVML-compatible library gives them too): an index
        // names one of those devices, not another vendor's of the same index.
        let xid_vendor = |v: &str| matches!(v, "nvidia" | "iluvatar");
        // The PCI address first: NVIDIA's and Iluvatar's cards may both be
        // device 0 of their own library.
        let by_pci = || {
            inventory?
                .gpus
                .iter()
                .find(|g| pci.is_some() && g.pci_bus_id.as_deref() == pci)?
                .uuid
                .clone()
        };
        let by_index = |i: u32| {
            vitals
                .gpus
                .iter()
                .find(|g| g.index == i && xid_vendor(g.vendor))
                .and_then(|g| g.uuid.clone())
                .or_else(|| {
                    inventory?
                        .gpus
                        .iter()
                        .find(|g| g.index == i && xid_vendor(g.vendor.as_str()))?
                        .uuid
                        .clone()
                })
        };
        by_pci().or_else(|| index.and_then(by_index))
    }

    /// The host's inventory changed: its fabric and figures follow. A new
    /// boot time is a restart, the evidence reset- and reboot-class GPU
    /// faults wait for.
    pub fn set_inventory(&mut self, inventory: Option<Arc<HostInventory>>) {
        let booted =
            |i: &Option<Arc<HostInventory>>| i.as_ref().and_then(|i| i.boot_time_unix_seconds);
        if let (Some(before), Some(now)) = (booted(&self.inventory), booted(&inventory))
            && before != now
        {
            for faults in self.gpu_faults.values_mut() {
                faults.rebooted();
            }
        }
        self.fabric = inventory.as_deref().and_then(fabric_of);
        self.inventory = inventory;
        self.refigure();
    }

    pub fn state(&self, now_ms: u64) -> HostState {
        if self.revoked {
            return HostState::Revoked;
        }
        let Some(seen) = self.last_seen_ms else {
            return HostState::Offline;
        };
        let age = now_ms.saturating_sub(seen);
        let interval = self.pace_ms(DEFAULT_INTERVAL_MS);
        if age <= (interval * STALE_AFTER_INTERVALS).max(STALE_AFTER_MIN_MS) {
            HostState::Online
        } else if age <= OFFLINE_AFTER_MS {
            HostState::Stale
        } else {
            HostState::Offline
        }
    }

    /// Samples the agent still has to send from its spool, as of the
    /// connection's start and what has arrived since.
    pub fn spool_backlog(&self) -> Option<u64> {
        let through = self.spooled_through?;
        let latest = self.vitals.as_ref().map(|v| v.seq);
        Some(match latest {
            Some(seq) => through.saturating_sub(seq),
            None => through + 1,
        })
    }

    pub fn gpu_vitals(&self, uuid: &str) -> Option<&GpuVitals> {
        self.vitals
            .as_ref()?
            .gpus
            .iter()
            .find(|g| g.uuid.as_deref() == Some(uuid))
    }

    /// The live figures of one of this host's accelerators: found by its
    /// index (samples list GPUs in index order), confirmed by UUID.
    pub fn vitals_of(&self, r: &ResourceEntry) -> Option<&GpuVitals> {
        let uuid = r.gpu_uuid.as_deref()?;
        let gpus = &self.vitals.as_ref()?.gpus;
        match r.gpu_index.and_then(|i| gpus.get(i as usize)) {
            Some(g) if g.uuid.as_deref() == Some(uuid) => Some(g),
            _ => gpus.iter().find(|g| g.uuid.as_deref() == Some(uuid)),
        }
    }

    /// Copies what selection scans for into `figures`.
    pub fn refigure(&mut self) {
        let inventory = self.inventory.as_deref();
        let vitals = self.vitals.as_deref();
        let mut region = [0u8; 6];
        for (to, from) in region.iter_mut().zip(self.region.bytes()) {
            *to = from;
        }
        self.figures = HostFigures {
            region,
            cpu_family: inventory
                .and_then(|i| i.os.architecture.as_deref())
                .and_then(cpu_family),
            logical_cpus: inventory.map(|i| i.cpu.logical_cpus),
            slurm: inventory.is_some_and(|i| i.slurm.is_some()),
            memory_total_bytes: vitals
                .and_then(|v| v.memory_total_bytes)
                .or(inventory.and_then(|i| i.memory_total_bytes)),
            memory_used_bytes: vitals.and_then(|v| v.memory_used_bytes),
            cpu_utilization_percent: vitals.and_then(|v| v.cpu_utilization_percent),
            disk_total_bytes: vitals.and_then(|v| v.disk_total_bytes),
            disk_available_bytes: vitals.and_then(|v| v.disk_available_bytes),
            infiniband_active_gbps: vitals.and_then(|v| v.infiniband_active_gbps),
        };
    }

    /// Recounts `gpu_groups` from the accelerators and the latest sample.
    pub fn regroup(&mut self) {
        self.refigure();
        let mut groups: SmallVec<[GpuGroup; 2]> = SmallVec::new();
        let mut briefs = Vec::new();
        for (slot, r) in self.resources.iter().enumerate() {
            if r.gpu_uuid.is_none() {
                continue;
            }
            let live = self.vitals_of(r);
            let unhealthy = self.unselectable(r).is_some();
            // Judged at the latest sample's time: a hold that has run out
            // by then no longer counts.
            let held_until_ms = self
                .holds
                .get(&(slot as u32))
                .map(|h| h.until_ms)
                .filter(|until| *until > self.last_seen_ms.unwrap_or(0));
            let idle = gpu_idle(live, r.memory_bytes) && !unhealthy && held_until_ms.is_none();
            // Counted once: an unhealthy card is out for its faults.
            let held = held_until_ms.is_some() && !unhealthy;
            briefs.push(GpuBrief {
                unhealthy,
                held_until_ms,
                slot: slot as u32,
                model_id: r.model_id,
                memory_bytes: r.memory_bytes,
                mig: r.mig,
                idle,
                utilization_percent: live.and_then(|g| g.utilization_percent),
                memory_used_bytes: live.and_then(|g| g.memory_used_bytes),
                memory_total_bytes: live.and_then(|g| g.memory_total_bytes).or(r.memory_bytes),
                nvlink_active: live.and_then(|g| g.nvlink_active),
            });
            match groups
                .iter_mut()
                .find(|g| g.model_id == r.model_id && g.memory_bytes == r.memory_bytes)
            {
                Some(g) => {
                    g.installed += 1;
                    g.idle += u32::from(idle);
                    g.unhealthy += u32::from(unhealthy);
                    g.held += u32::from(held);
                }
                None => groups.push(GpuGroup {
                    model_id: r.model_id,
                    memory_bytes: r.memory_bytes,
                    installed: 1,
                    idle: u32::from(idle),
                    unhealthy: u32::from(unhealthy),
                    held: u32::from(held),
                }),
            }
        }
        self.gpu_groups = groups;
        self.gpu_briefs = briefs;
    }

    /// How often samples are due: the pace they arrive at (`unknown_ms`
    /// before two have), or the slower one the host was asked for and has
    /// not shown yet.
    pub fn pace_ms(&self, unknown_ms: u64) -> u64 {
        self.interval_ms
            .unwrap_or(unknown_ms)
            .max(self.asked_interval_ms.unwrap_or(0))
    }

    /// Why one of this host's accelerators may not be chosen, if it may not.
    pub fn unselectable(&self, resource: &ResourceEntry) -> Option<Text> {
        let uuid = resource.gpu_uuid.as_deref()?;
        if let Some(why) = self.gpu_faults.get(uuid).and_then(|f| f.unselectable()) {
            return Some(why);
        }
        if self.vitals.is_some() {
            match self.vitals_of(resource) {
                None => return Some(Text::new("unselectable.missing")),
                Some(g) if g.remapped_rows_failure == Some(true) => {
                    return Some(Text::new("unselectable.remap_failed"));
                }
                Some(g) if g.health == Some(DeviceHealth::Critical) => {
                    return Some(
                        Text::new("unselectable.vendor_critical")
                            .arg("vendor", g.vendor)
                            .arg_text(
                                "code",
                                g.health_code.map_or_else(Text::empty, |c| {
                                    Text::new("alert.health_code").arg("code", c)
                                }),
                            ),
                    );
                }
                Some(_) => {}
            }
        }
        None
    }

    /// Staff marked an accelerator healthy: its faults are cleared.
    pub fn clear_faults(&mut self, uuid: &str) {
        if let Some(faults) = self.gpu_faults.get_mut(uuid) {
            faults.cleared_by_staff();
        }
        self.regroup();
    }

    /// Is one of this host's resources free now: the host online and the
    /// resource idle enough (and, for an accelerator, selectable). `None`
    /// where the figures to tell are missing.
    pub fn free_now(&self, resource: &ResourceEntry, now_ms: u64) -> Option<bool> {
        if self.state(now_ms) != HostState::Online {
            return Some(false);
        }
        match &resource.gpu_uuid {
            Some(_) => {
                let gpu = self.vitals_of(resource)?;
                let held = self
                    .resources
                    .iter()
                    .position(|r| r.identifier == resource.identifier)
                    .and_then(|slot| self.holds.get(&(slot as u32)))
                    .is_some_and(|h| h.until_ms > now_ms);
                Some(
                    gpu_idle(Some(gpu), resource.memory_bytes)
                        && self.unselectable(resource).is_none()
                        && !held,
                )
            }
            None => Some(self.vitals.as_ref()?.cpu_utilization_percent? < HOST_FREE_CPU_PERCENT),
        }
    }

    /// The host's own (general compute) resource.
    pub fn own_resource(&self) -> Option<&ResourceEntry> {
        self.resources
            .first()
            .map(|r| &**r)
            .filter(|r| r.gpu_uuid.is_none())
    }

    /// The host's accelerators.
    pub fn accelerators(&self) -> impl Iterator<Item = &ResourceEntry> {
        self.resources
            .iter()
            .map(|r| &**r)
            .filter(|r| r.gpu_uuid.is_some())
    }
}

/// How a sample reached this replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    FromAgent,
    /// Through storage, from the replica the agent streams to.
    FromReplica,
}

/// One resource: a host (general compute) or one of its accelerators.
#[derive(Debug, Clone)]
pub struct ResourceEntry {
    pub id: i64,
    pub identifier: String,
    pub resource_type: ResourceType,
    pub host_id: i64,
    /// For an accelerator, its UUID and index on the host.
    pub gpu_uuid: Option<String>,
    pub gpu_index: Option<u32>,
    /// Model name: the GPU's, or the host CPU's.
    pub model: Option<String>,
    /// Memory of the accelerator, or of the host.
    pub memory_bytes: Option<u64>,
    /// `model`, lower-cased, for matching; and its interned id in the fleet.
    pub model_key: String,
    pub model_id: u32,
    /// An accelerator's MIG mode.
    pub mig: Option<bool>,
}

#[derive(Debug, Default)]
pub struct Fleet {
    pub resources: BTreeMap<i64, Arc<ResourceEntry>>,
    pub by_identifier: HashMap<String, i64>,
    /// By host id, so a scan visits hosts in a stable order.
    pub hosts: BTreeMap<i64, HostEntry>,
    /// Accelerator model names (lower-cased), interned: a resource's `model_id`.
    pub models: Vec<String>,
    /// Each model as first named (not lower-cased), for people to read.
    pub model_names: Vec<String>,
    model_ids: HashMap<String, u32>,
    /// Each provider's listed prices, by provider id.
    pub prices: HashMap<i64, Arc<PriceList>>,
}

/// Is an accelerator idle enough to count as free: utilization and memory
/// use both low. Unknown figures are not free.
pub fn gpu_idle(g: Option<&GpuVitals>, memory_bytes: Option<u64>) -> bool {
    let Some(g) = g else { return false };
    match (
        g.utilization_percent,
        g.memory_used_bytes,
        g.memory_total_bytes.or(memory_bytes),
    ) {
        (Some(util), Some(used), Some(total)) if total > 0 => {
            util < GPU_FREE_UTILIZATION_PERCENT
                && (used as f64 / total as f64) < GPU_FREE_MEMORY_FRACTION
        }
        _ => false,
    }
}

/// One accelerator as selection sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GpuBrief {
    /// Out of selection until its faults are cleared (see [`crate::health`]).
    pub unhealthy: bool,
    /// Held for someone until then: not idle, whatever it is doing.
    pub held_until_ms: Option<u64>,
    /// Index into the host's `resources`.
    pub slot: u32,
    pub model_id: u32,
    pub memory_bytes: Option<u64>,
    pub mig: Option<bool>,
    pub idle: bool,
    pub utilization_percent: Option<u32>,
    pub memory_used_bytes: Option<u64>,
    pub memory_total_bytes: Option<u64>,
    pub nvlink_active: Option<u32>,
}

/// A host's accelerators of one model and memory size: how many are
/// installed and how many were idle in the latest sample. Selection reads
/// these to pass over a host without looking at each accelerator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GpuGroup {
    pub model_id: u32,
    pub memory_bytes: Option<u64>,
    pub installed: u32,
    /// Idle and healthy.
    pub idle: u32,
    /// Out of selection for their faults.
    pub unhealthy: u32,
    /// Healthy, and held for someone: offered to no demand.
    pub held: u32,
}

/// One resource as a tally counts it, at one moment.
#[derive(Debug, Clone, Copy)]
pub struct Reading<'a> {
    pub host: &'a HostEntry,
    pub resource_type: ResourceType,
    /// An accelerator's model, an index into [`Fleet::model_names`];
    /// `None` for a host's own resource.
    pub model_id: Option<u32>,
    pub online: bool,
    pub free: bool,
    pub memory_bytes: Option<u64>,
    /// Of an online resource only.
    pub utilization_percent: Option<f64>,
}

/// Totals of a set of resources: what the summary, `/metrics` and (next)
/// reports to a parent node all count.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Tally {
    pub total: u64,
    pub online: u64,
    pub free: u64,
    pub memory_bytes: u64,
    utilization_sum: f64,
    utilization_n: u64,
}

impl Tally {
    pub fn add(&mut self, r: &Reading<'_>) {
        self.total += 1;
        self.online += u64::from(r.online);
        self.free += u64::from(r.free);
        self.memory_bytes += r.memory_bytes.unwrap_or(0);
        if let Some(u) = r.utilization_percent {
            self.utilization_sum += u;
            self.utilization_n += 1;
        }
    }

    pub fn merge(&mut self, other: &Tally) {
        self.total += other.total;
        self.online += other.online;
        self.free += other.free;
        self.memory_bytes += other.memory_bytes;
        self.utilization_sum += other.utilization_sum;
        self.utilization_n += other.utilization_n;
    }

    /// Mean utilization of the online resources that report one.
    pub fn mean_utilization_percent(&self) -> Option<f64> {
        (self.utilization_n > 0).then(|| self.utilization_sum / self.utilization_n as f64)
    }
}

/// Which hosts a hosts list shows (each filter optional, all must hold).
#[derive(Debug, Clone, Default)]
pub struct HostFilter {
    /// Only this provider's (an organisation sees its own).
    pub provider_id: Option<i64>,
    /// `online`, `stale`, `offline`, `revoked`, or `enrolled` (enrolled
    /// and never streamed; offline too).
    pub state: Option<String>,
    /// A provider's owner code.
    pub provider: Option<String>,
    /// A GB/T 2260 prefix.
    pub region: Option<String>,
    /// Lower-case: part of the hostname, or of the host's identifier.
    pub text: Option<String>,
    /// Lower-case: part of an accelerator model's name on the host.
    pub model: Option<String>,
}

/// A host as a hosts list names its state: `enrolled` for one that never
/// streamed, else its [`HostState`].
pub fn listed_state(host: &HostEntry, now_ms: u64) -> &'static str {
    match host.state(now_ms) {
        HostState::Offline if host.last_seen_ms.is_none() => "enrolled",
        state => state.as_str(),
    }
}

impl Fleet {
    /// The hosts `filter` keeps with an id above `after`, in id order, at
    /// most `limit`, each with its listed state.
    pub fn hosts_matching(
        &self,
        filter: &HostFilter,
        after: i64,
        limit: usize,
        now_ms: u64,
    ) -> Vec<(&HostEntry, &'static str)> {
        use std::ops::Bound::{Excluded, Unbounded};
        self.hosts
            .range((Excluded(after), Unbounded))
            .map(|(_, host)| (host, listed_state(host, now_ms)))
            .filter(|(host, state)| {
                filter.provider_id.is_none_or(|id| host.owner.id == id)
                    && filter
                        .state
                        .as_deref()
                        .is_none_or(|s| *state == s || (s == "offline" && *state == "enrolled"))
                    && filter
                        .provider
                        .as_deref()
                        .is_none_or(|p| host.owner.code.eq_ignore_ascii_case(p))
                    && filter
                        .region
                        .as_deref()
                        .is_none_or(|r| host.region.starts_with(r))
                    && filter.text.as_deref().is_none_or(|t| {
                        host.hostname.to_lowercase().contains(t)
                            || host
                                .own_resource()
                                .is_some_and(|r| r.identifier.to_lowercase().contains(t))
                    })
                    && filter.model.as_deref().is_none_or(|m| {
                        host.gpu_briefs
                            .iter()
                            .any(|g| self.model_name(g.model_id).to_lowercase().contains(m))
                    })
            })
            .take(limit)
            .collect()
    }

    pub fn intern(&mut self, model_key: &str, name: Option<&str>) -> u32 {
        if let Some(id) = self.model_ids.get(model_key) {
            return *id;
        }
        let id = self.models.len() as u32;
        self.models.push(model_key.to_owned());
        self.model_names.push(name.unwrap_or("unknown").to_owned());
        self.model_ids.insert(model_key.to_owned(), id);
        id
    }

    /// Every resource's reading at `now_ms`, the host's own first, from
    /// each host's compact figures: following 100,000 resource pointers
    /// made counting the fleet cost its whole time.
    pub fn readings(&self, now_ms: u64) -> impl Iterator<Item = Reading<'_>> {
        self.hosts.values().flat_map(move |host| {
            let online = host.state(now_ms) == HostState::Online;
            let own = host.own_resource().map(|r| Reading {
                host,
                resource_type: r.resource_type,
                model_id: None,
                online,
                free: host.free_now(r, now_ms) == Some(true),
                memory_bytes: r.memory_bytes,
                utilization_percent: host.figures.cpu_utilization_percent.filter(|_| online),
            });
            let accelerators = host.gpu_briefs.iter().map(move |g| Reading {
                host,
                resource_type: ResourceType::AiAccelerator,
                model_id: Some(g.model_id),
                online,
                free: online && g.idle,
                memory_bytes: g.memory_bytes,
                utilization_percent: g.utilization_percent.filter(|_| online).map(f64::from),
            });
            own.into_iter().chain(accelerators)
        })
    }

    /// An accelerator model's name as first reported.
    pub fn model_name(&self, model_id: u32) -> &str {
        self.model_names
            .get(model_id as usize)
            .map_or("unknown", String::as_str)
    }

    /// Is `resource` free now: its host online and the resource idle enough.
    pub fn free_now(&self, resource: &ResourceEntry, now_ms: u64) -> Option<bool> {
        self.hosts
            .get(&resource.host_id)?
            .free_now(resource, now_ms)
    }
}

/// The fabric a host's first InfiniBand port is on.
fn fabric_of(inventory: &HostInventory) -> Option<String> {
    inventory
        .infiniband_ports
        .iter()
        .filter(|p| p.link_layer.as_deref() != Some("Ethernet"))
        .find_map(|p| Some(format!("{}/{}", p.subnet_prefix.as_deref()?, p.sm_lid?)))
}
#[cfg(test)]
mod tests {
    use super::*;

    fn host(last_seen_ms: Option<u64>, interval_ms: Option<u64>) -> HostEntry {
        HostEntry {
            host_id: 1,
            hostname: "h".into(),
            region: "110108".into(),
            owner: Arc::new(Owner {
                id: 1,
                code: "P00001".into(),
                name: "p".into(),
                region: "110108".into(),
                industry: "I65".into(),
                uscc: String::new(),
            }),
            revoked: false,
            inventory: None,
            vitals: None,
            last_seen_ms,
            rtt_us: None,
            interval_ms,
            interval_before_live_ms: None,
            asked_interval_ms: None,
            spooled_through: None,
            resources: Vec::new(),
            fabric: None,
            gpu_groups: SmallVec::new(),
            figures: HostFigures::default(),
            gpu_briefs: Vec::new(),
            xid_errors: HashMap::new(),
            gpu_faults: BTreeMap::new(),
            ecc_increased_ms: BTreeMap::new(),
            slowdowns: BTreeMap::new(),
            holds: BTreeMap::new(),
            watchers: 0,
            clone_refused: None,
        }
    }

    #[test]
    fn a_host_asked_to_slow_down_is_judged_by_the_slower_pace_until_it_shows() {
        let mut h = host(Some(0), Some(1_000));
        assert_eq!(h.pace_ms(5_000), 1_000);
        // Back from a live view to its usual 5 s: not silent after 3 s.
        h.asked_interval_ms = Some(5_000);
        assert_eq!(h.pace_ms(5_000), 5_000);
        assert_eq!(host(Some(0), None).pace_ms(10_000), 10_000);
    }

    #[test]
    fn state_follows_the_age_of_the_last_sample() {
        let now = 1_000_000;
        assert_eq!(host(None, None).state(now), HostState::Offline);
        assert_eq!(host(Some(now - 1_000), None).state(now), HostState::Online);
        assert_eq!(
            host(Some(now - 14_000), Some(1_000)).state(now),
            HostState::Online
        );
        assert_eq!(
            host(Some(now - 16_000), Some(1_000)).state(now),
            HostState::Stale
        );
        assert_eq!(
            host(Some(now - 50_000), Some(20_000)).state(now),
            HostState::Online
        );
        assert_eq!(
            host(Some(now - 301_000), None).state(now),
            HostState::Offline
        );
        let mut revoked = host(Some(now), None);
        revoked.revoked = true;
        assert_eq!(revoked.state(now), HostState::Revoked);
    }

    #[test]
    fn a_reading_that_cannot_be_true_is_one_data_problem_and_no_figure() {
        let gpu = |index: u32, temperature: u32| GpuVitals {
            index,
            uuid: Some(format!("GPU-{index}")),
            utilization_percent: Some(40),
            memory_used_bytes: Some(10),
            memory_total_bytes: Some(80),
            temperature_celsius: Some(temperature),
            slowdown_temperature_celsius: Some(87),
            ..GpuVitals::default()
        };
        let mut vitals = Vitals {
            cpu_utilization_percent: Some(140.0),
            memory_total_bytes: Some(100),
            memory_used_bytes: Some(50),
            temperature_celsius: Some(-60.0),
            gpus: vec![gpu(0, 10_000), gpu(1, 64)],
            ..Vitals::default()
        };
        vitals.screen();
        let found: Vec<(Option<u32>, &str, &str)> = vitals
            .implausible
            .iter()
            .map(|i| (i.index, i.field, i.raw.as_str()))
            .collect();
        assert_eq!(
            found,
            [
                (None, "cpu_utilization_percent", "140"),
                (None, "temperature_celsius", "-60"),
                (Some(0), "temperature_celsius", "10000"),
            ]
        );
        // Left out as absent; the sensible readings stay.
        assert_eq!(vitals.cpu_utilization_percent, None);
        assert_eq!(vitals.memory_used_bytes, Some(50));
        assert_eq!(vitals.gpus[0].temperature_celsius, None);
        assert_eq!(vitals.gpus[0].utilization_percent, Some(40));
        assert_eq!(vitals.gpus[1].temperature_celsius, Some(64));

        // Monitoring: one data problem for the card, no temperature alert,
        // however many times it is evaluated.
        let mut h = host(Some(1_000), Some(1_000));
        h.vitals = Some(Arc::new(vitals));
        let mut out = Vec::new();
        crate::alerting::host_observations(&h, 1_500, &mut out);
        let rules: Vec<&str> = out.iter().map(|o| o.rule.name).collect();
        assert_eq!(
            rules
                .iter()
                .filter(|r| **r == "reading_implausible")
                .count(),
            3,
            "{rules:?}"
        );
        assert!(!rules.contains(&"gpu_temperature"), "{rules:?}");
        let card = out
            .iter()
            .find(|o| {
                o.labels
                    .get("field")
                    .is_some_and(|f| f == "temperature_celsius")
                    && o.fingerprint.contains("GPU-0")
            })
            .expect("the card's data problem");
        assert_eq!(
            card.summary.render(crate::i18n::Lang::Zh),
            "h 的 GPU 0 报告了不可能的温度：10000（已从统计中剔除）"
        );
        let mut again = Vec::new();
        crate::alerting::host_observations(&h, 2_000, &mut again);
        let fingerprints = |o: &[crate::alerting::Observation]| {
            o.iter().map(|o| o.fingerprint.clone()).collect::<Vec<_>>()
        };
        assert_eq!(fingerprints(&out), fingerprints(&again));
    }

    #[test]
    fn an_xid_counts_on_the_nvidia_device_never_on_another_vendors_of_its_index() {
        let device = |vendor: &'static str, uuid: &str| GpuVitals {
            vendor,
            index: 0,
            uuid: Some(uuid.into()),
            ..GpuVitals::default()
        };
        let mut h = host(None, None);
        let sample = HostSample {
            xid_events: vec![suanli_protocol::model::XidEvent {
                source: "nvml".into(),
                gpu_index: Some(0),
                xid: 79,
                ..Default::default()
            }],
            ..Default::default()
        };
        let vitals = Vitals {
            seq: 1,
            // Huawei's device 0 listed first: the index alone would pick it.
            gpus: vec![device("huawei", "NPU-0"), device("nvidia", "GPU-0")],
            ..Vitals::default()
        };
        let kept = h
            .observe(vitals, &sample, 1_000, Arrival::FromAgent)
            .expect("a new sample");
        let xids: Vec<(&str, u64)> = kept.gpus.iter().map(|g| (g.vendor, g.xid_errors)).collect();
        assert_eq!(xids, [("huawei", 0), ("nvidia", 1)]);
        assert!(h.gpu_faults.contains_key("GPU-0"));
        assert!(!h.gpu_faults.contains_key("NPU-0"));
    }

    fn brief(slot: u32, idle: bool, utilization_percent: Option<u32>) -> GpuBrief {
        GpuBrief {
            held_until_ms: None,
            unhealthy: false,
            slot,
            model_id: 0,
            memory_bytes: Some(80 << 30),
            mig: None,
            idle,
            utilization_percent,
            memory_used_bytes: None,
            memory_total_bytes: None,
            nvlink_active: None,
        }
    }

    #[test]
    fn a_tally_counts_online_free_memory_and_mean_utilization() {
        let now = 1_000_000;
        let mut fleet = Fleet::default();
        fleet.intern("nvidia h100", Some("NVIDIA H100"));
        let mut online = host(Some(now - 1_000), None);
        online.gpu_briefs = vec![brief(1, true, Some(2)), brief(2, false, Some(90))];
        let mut offline = host(None, None);
        offline.host_id = 2;
        offline.gpu_briefs = vec![brief(1, true, Some(5))];
        fleet.hosts.insert(1, online);
        fleet.hosts.insert(2, offline);
        let mut tally = Tally::default();
        for r in fleet.readings(now) {
            assert_eq!(
                fleet.model_name(r.model_id.expect("accelerators only")),
                "NVIDIA H100"
            );
            tally.add(&r);
        }
        assert_eq!((tally.total, tally.online, tally.free), (3, 2, 1));
        assert_eq!(tally.memory_bytes, 3 * (80 << 30));
        // The offline accelerator's stale figure is not averaged in.
        assert_eq!(tally.mean_utilization_percent(), Some(46.0));
        assert_eq!(Tally::default().mean_utilization_percent(), None);
    }
}
