//! The host itself: identity, CPU, memory, NUMA, block I/O, network, temperatures.
//!
//! Identity that rarely changes (OS, kernel, hostname, boot time) comes from
//! `sysinfo`, read once. Everything sampled comes from `/proc` and `/sys`
//! through the [`HostRoot`], parsed here: these files are cheap to read, the
//! parsers are tested from text fixtures, and a field the kernel does not
//! expose stays absent.

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use suanli_protocol::model::{
    BlockDeviceSample, CoreSample, CpuInventory, CpuSample, Dmi, HostInventory, HostReport,
    MemorySample, NetworkInterface, NetworkInterfaceSample, NumaNode, OperatingSystem, Problem,
    ProblemKind, TemperatureSample,
};

use super::{Collected, Collector, HostRoot, Readings, rate};

const NAME: &str = "host";

/// Readings owned by the host collector.
#[derive(Debug, Default)]
pub struct HostReadings {
    pub inventory: HostInventory,
    pub cpu: CpuSample,
    pub memory: MemorySample,
    pub block_devices: Vec<BlockDeviceSample>,
    pub network_interfaces: Vec<NetworkInterfaceSample>,
    pub temperatures: Vec<TemperatureSample>,
    pub window: Option<Duration>,
}

impl HostReadings {
    pub(crate) fn apply(self, report: &mut HostReport) {
        let inv = &mut report.inventory;
        let HostInventory {
            hostname,
            machine_id,
            os,
            boot_time_unix_seconds,
            dmi,
            cpu,
            memory_total_bytes,
            swap_total_bytes,
            numa_nodes,
            network_interfaces,
            ..
        } = self.inventory;
        inv.hostname = hostname;
        inv.machine_id = machine_id;
        inv.os = os;
        inv.boot_time_unix_seconds = boot_time_unix_seconds;
        inv.dmi = dmi;
        inv.cpu = cpu;
        inv.memory_total_bytes = memory_total_bytes;
        inv.swap_total_bytes = swap_total_bytes;
        inv.numa_nodes = numa_nodes;
        inv.network_interfaces = network_interfaces;
        let sample = &mut report.sample;
        sample.window_ms = self
            .window
            .map(|w| u64::try_from(w.as_millis()).unwrap_or(u64::MAX));
        sample.cpu = self.cpu;
        sample.memory = self.memory;
        sample.block_devices = self.block_devices;
        sample.network_interfaces = self.network_interfaces;
        sample.temperatures = self.temperatures;
    }
}

/// Facts read once at start.
#[derive(Debug, Clone, Default)]
struct Identity {
    hostname: String,
    machine_id: Option<String>,
    os: OperatingSystem,
    boot_time_unix_seconds: Option<u64>,
    dmi: Dmi,
    cpu: CpuInventory,
    numa_nodes: Vec<NumaNode>,
}

/// Counters from the previous cycle, for rates.
#[derive(Debug)]
struct Previous {
    at: Instant,
    cpu: BTreeMap<Option<u32>, CpuTimes>,
    disks: BTreeMap<String, DiskCounters>,
    net: BTreeMap<String, NetCounters>,
}

#[derive(Debug)]
pub struct HostCollector {
    root: HostRoot,
    identity: Identity,
    previous: Option<Previous>,
}

impl HostCollector {
    pub fn new(root: HostRoot) -> Self {
        let identity = Identity::read(&root);
        Self {
            root,
            identity,
            previous: None,
        }
    }
}

impl Collector for HostCollector {
    fn name(&self) -> &'static str {
        NAME
    }

    fn collect(&mut self) -> Collected {
        let root = &self.root;
        let now = Instant::now();
        let mut problems = Vec::new();
        let mut failed = |what: &str, err: std::io::Error| {
            problems.push(Problem::new(
                NAME,
                ProblemKind::Failed,
                format!("{what}: {err}"),
            ));
        };

        let stat = root
            .read("/proc/stat")
            .map(|t| parse_stat(&t))
            .map_err(|e| failed("/proc/stat", e))
            .unwrap_or_default();
        let meminfo = root
            .read("/proc/meminfo")
            .map(|t| parse_meminfo(&t))
            .map_err(|e| failed("/proc/meminfo", e))
            .unwrap_or_default();
        let loadavg = root
            .read("/proc/loadavg")
            .ok()
            .and_then(|t| parse_loadavg(&t));
        let disks = root
            .read("/proc/diskstats")
            .map(|t| parse_diskstats(&t))
            .map_err(|e| failed("/proc/diskstats", e))
            .unwrap_or_default();
        let net = root
            .read("/proc/net/dev")
            .map(|t| parse_net_dev(&t))
            .map_err(|e| failed("/proc/net/dev", e))
            .unwrap_or_default();

        let previous = self.previous.take();
        let window = previous.as_ref().map(|p| now.duration_since(p.at));

        // CPU: utilization needs two readings; the first cycle has none.
        let mut cpu = CpuSample::default();
        if let (Some(prev), Some(total)) = (&previous, stat.cpus.get(&None))
            && let Some(before) = prev.cpu.get(&None)
        {
            cpu.utilization_percent = total.busy_percent_since(before);
            cpu.iowait_percent = total.iowait_percent_since(before);
        }
        for (&index, times) in &stat.cpus {
            let Some(index) = index else { continue };
            let utilization_percent = previous
                .as_ref()
                .and_then(|p| p.cpu.get(&Some(index)))
                .and_then(|before| times.busy_percent_since(before));
            let frequency_mhz = root
                .number::<u64>(format!(
                    "/sys/devices/system/cpu/cpu{index}/cpufreq/scaling_cur_freq"
                ))
                .and_then(|khz| u32::try_from(khz / 1000).ok());
            cpu.cores.push(CoreSample {
                cpu: index,
                utilization_percent,
                frequency_mhz,
            });
        }
        if let Some((one, five, fifteen)) = loadavg {
            cpu.load_average_1m = Some(one);
            cpu.load_average_5m = Some(five);
            cpu.load_average_15m = Some(fifteen);
        }

        let memory = MemorySample {
            total_bytes: meminfo.get("MemTotal").copied(),
            available_bytes: meminfo.get("MemAvailable").copied(),
            used_bytes: meminfo
                .get("MemTotal")
                .zip(meminfo.get("MemAvailable"))
                .map(|(t, a)| t.saturating_sub(*a)),
            swap_total_bytes: meminfo.get("SwapTotal").copied(),
            swap_used_bytes: meminfo
                .get("SwapTotal")
                .zip(meminfo.get("SwapFree"))
                .map(|(t, f)| t.saturating_sub(*f)),
        };

        let block_devices = disks
            .iter()
            .filter(|(name, _)| is_whole_disk(root, name))
            .map(|(name, now_c)| {
                let before = previous.as_ref().and_then(|p| p.disks.get(name));
                let elapsed = window.unwrap_or_default();
                let r = |f: fn(&DiskCounters) -> u64| {
                    before.and_then(|b| rate(f(b), f(now_c), elapsed))
                };
                BlockDeviceSample {
                    name: name.clone(),
                    read_bytes_per_second: r(|d| d.sectors_read * 512),
                    write_bytes_per_second: r(|d| d.sectors_written * 512),
                    reads_per_second: r(|d| d.reads),
                    writes_per_second: r(|d| d.writes),
                    busy_percent: r(|d| d.io_ticks_ms).map(|ms_per_s| (ms_per_s / 10.0).min(100.0)),
                }
            })
            .collect();

        let interfaces = read_interfaces(root);
        let network_interfaces = net
            .iter()
            .map(|(name, now_c)| {
                let before = previous.as_ref().and_then(|p| p.net.get(name));
                let elapsed = window.unwrap_or_default();
                let r =
                    |f: fn(&NetCounters) -> u64| before.and_then(|b| rate(f(b), f(now_c), elapsed));
                NetworkInterfaceSample {
                    name: name.clone(),
                    rx_bytes_per_second: r(|c| c.rx_bytes),
                    tx_bytes_per_second: r(|c| c.tx_bytes),
                    rx_packets_per_second: r(|c| c.rx_packets),
                    tx_packets_per_second: r(|c| c.tx_packets),
                    rx_errors_total: Some(now_c.rx_errors),
                    tx_errors_total: Some(now_c.tx_errors),
                    rx_dropped_total: Some(now_c.rx_dropped),
                    tx_dropped_total: Some(now_c.tx_dropped),
                }
            })
            .collect();

        let id = &self.identity;
        let mut cpu_inventory = id.cpu.clone();
        cpu_inventory.logical_cpus = stat.cpus.keys().filter(|k| k.is_some()).count() as u32;
        let inventory = HostInventory {
            hostname: id.hostname.clone(),
            machine_id: id.machine_id.clone(),
            os: id.os.clone(),
            boot_time_unix_seconds: id.boot_time_unix_seconds.or(stat.boot_time),
            dmi: id.dmi.clone(),
            cpu: cpu_inventory,
            memory_total_bytes: meminfo.get("MemTotal").copied(),
            swap_total_bytes: meminfo.get("SwapTotal").copied(),
            numa_nodes: id.numa_nodes.clone(),
            network_interfaces: interfaces,
            ..HostInventory::default()
        };

        self.previous = Some(Previous {
            at: now,
            cpu: stat.cpus,
            disks,
            net,
        });

        Collected {
            readings: Some(Readings::Host(Box::new(HostReadings {
                inventory,
                cpu,
                memory,
                block_devices,
                network_interfaces,
                temperatures: read_temperatures(root),
                window,
            }))),
            problems,
        }
    }
}

impl Identity {
    fn read(root: &HostRoot) -> Self {
        let cpuinfo = root
            .read("/proc/cpuinfo")
            .map(|t| parse_cpuinfo(&t))
            .unwrap_or_default();
        let cpuinfo_architecture = cpuinfo.architecture;
        let mut identity = Identity {
            machine_id: root.attribute("/etc/machine-id"),
            dmi: read_dmi(root),
            cpu: CpuInventory {
                model_name: cpuinfo.model_name,
                vendor: cpuinfo.vendor,
                sockets: cpuinfo.sockets,
                physical_cores: cpuinfo.physical_cores,
                logical_cpus: 0,
                max_frequency_mhz: root
                    .number::<u64>("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq")
                    .and_then(|khz| u32::try_from(khz / 1000).ok()),
                vector_extensions: cpuinfo.vector_extensions,
                // intel_pstate (and amd-pstate) say the nominal clock; other
                // drivers do not, and then it is absent.
                base_frequency_mhz: root
                    .number::<u64>("/sys/devices/system/cpu/cpu0/cpufreq/base_frequency")
                    .and_then(|khz| u32::try_from(khz / 1000).ok()),
            },
            numa_nodes: read_numa(root),
            ..Identity::default()
        };
        if root.is_live() {
            // uname and os-release, with sysinfo's fallbacks for older distributions.
            identity.hostname = sysinfo::System::host_name().unwrap_or_default();
            identity.os = OperatingSystem {
                name: sysinfo::System::name().ok(),
                version: sysinfo::System::os_version().ok(),
                kernel_version: sysinfo::System::kernel_version().ok(),
                architecture: Some(sysinfo::System::cpu_arch()),
            };
            identity.boot_time_unix_seconds = sysinfo::System::boot_time().ok().filter(|&t| t > 0);
        } else {
            let release = root.read("/etc/os-release").unwrap_or_default();
            let field = |key: &str| {
                release.lines().find_map(|l| {
                    let v = l.strip_prefix(key)?.strip_prefix('=')?;
                    Some(v.trim_matches('"').to_owned())
                })
            };
            identity.hostname = root
                .attribute("/proc/sys/kernel/hostname")
                .unwrap_or_default();
            identity.os = OperatingSystem {
                name: field("NAME"),
                version: field("VERSION_ID"),
                kernel_version: root.attribute("/proc/sys/kernel/osrelease"),
                architecture: cpuinfo_architecture.map(str::to_owned),
            };
        }
        identity
    }
}

// ---------------------------------------------------------------------------
// /proc parsers
// ---------------------------------------------------------------------------

/// Jiffies per CPU state from one `cpu` line of /proc/stat.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CpuTimes {
    pub busy: u64,
    pub idle: u64,
    pub iowait: u64,
}

impl CpuTimes {
    fn total(&self) -> u64 {
        self.busy + self.idle + self.iowait
    }

    fn busy_percent_since(&self, before: &CpuTimes) -> Option<f64> {
        let total = self.total().checked_sub(before.total())?;
        let busy = self.busy.checked_sub(before.busy)?;
        (total > 0).then(|| busy as f64 * 100.0 / total as f64)
    }

    fn iowait_percent_since(&self, before: &CpuTimes) -> Option<f64> {
        let total = self.total().checked_sub(before.total())?;
        let iowait = self.iowait.checked_sub(before.iowait)?;
        (total > 0).then(|| iowait as f64 * 100.0 / total as f64)
    }
}

#[derive(Debug, Default, PartialEq)]
pub struct Stat {
    /// `None` is the aggregate `cpu` line; `Some(n)` is `cpuN`.
    pub cpus: BTreeMap<Option<u32>, CpuTimes>,
    pub boot_time: Option<u64>,
}

pub fn parse_stat(text: &str) -> Stat {
    let mut stat = Stat::default();
    for line in text.lines() {
        let mut fields = line.split_ascii_whitespace();
        let Some(key) = fields.next() else { continue };
        if key == "btime" {
            stat.boot_time = fields.next().and_then(|v| v.parse().ok());
            continue;
        }
        let Some(suffix) = key.strip_prefix("cpu") else {
            continue;
        };
        let index = if suffix.is_empty() {
            None
        } else {
            match suffix.parse() {
                Ok(n) => Some(n),
                Err(_) => continue,
            }
        };
        // user nice system idle iowait irq softirq steal guest guest_nice;
        // guest time is already counted in user and nice.
        let v: Vec<u64> = fields.take(8).filter_map(|f| f.parse().ok()).collect();
        if v.len() < 4 {
            continue;
        }
        let at = |i: usize| v.get(i).copied().unwrap_or(0);
        stat.cpus.insert(
            index,
            CpuTimes {
                busy: at(0) + at(1) + at(2) + at(5) + at(6) + at(7),
                idle: at(3),
                iowait: at(4),
            },
        );
    }
    stat
}

/// /proc/meminfo values in bytes (the kernel prints kB, meaning KiB).
pub fn parse_meminfo(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|line| {
            let (key, rest) = line.split_once(':')?;
            let mut parts = rest.split_ascii_whitespace();
            let value: u64 = parts.next()?.parse().ok()?;
            let bytes = match parts.next() {
                Some("kB") => value.checked_mul(1024)?,
                None => value,
                Some(_) => return None,
            };
            Some((key.trim().to_owned(), bytes))
        })
        .collect()
}

pub fn parse_loadavg(text: &str) -> Option<(f64, f64, f64)> {
    let mut f = text.split_ascii_whitespace().map(str::parse::<f64>);
    Some((f.next()?.ok()?, f.next()?.ok()?, f.next()?.ok()?))
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct DiskCounters {
    pub reads: u64,
    pub sectors_read: u64,
    pub writes: u64,
    pub sectors_written: u64,
    pub io_ticks_ms: u64,
}

/// /proc/diskstats. Sectors here are always 512 bytes, whatever the device's
/// own sector size (Documentation/admin-guide/iostats.rst).
pub fn parse_diskstats(text: &str) -> BTreeMap<String, DiskCounters> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_ascii_whitespace().collect();
            let n = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok());
            Some((
                (*f.get(2)?).to_owned(),
                DiskCounters {
                    reads: n(3)?,
                    sectors_read: n(5)?,
                    writes: n(7)?,
                    sectors_written: n(9)?,
                    io_ticks_ms: n(12)?,
                },
            ))
        })
        .collect()
}

/// Whole disks only: partitions would count the same I/O twice. Loop and
/// RAM disks are not storage a provider sells.
fn is_whole_disk(root: &HostRoot, name: &str) -> bool {
    !name.starts_with("loop")
        && !name.starts_with("ram")
        && root.path(format!("/sys/block/{name}")).exists()
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct NetCounters {
    pub rx_bytes: u64,
    pub rx_packets: u64,
    pub rx_errors: u64,
    pub rx_dropped: u64,
    pub tx_bytes: u64,
    pub tx_packets: u64,
    pub tx_errors: u64,
    pub tx_dropped: u64,
}

pub fn parse_net_dev(text: &str) -> BTreeMap<String, NetCounters> {
    text.lines()
        .skip(2)
        .filter_map(|line| {
            let (name, rest) = line.split_once(':')?;
            let v: Vec<u64> = rest
                .split_ascii_whitespace()
                .map(str::parse)
                .collect::<Result<_, _>>()
                .ok()?;
            if v.len() < 16 {
                return None;
            }
            Some((
                name.trim().to_owned(),
                NetCounters {
                    rx_bytes: v[0],
                    rx_packets: v[1],
                    rx_errors: v[2],
                    rx_dropped: v[3],
                    tx_bytes: v[8],
                    tx_packets: v[9],
                    tx_errors: v[10],
                    tx_dropped: v[11],
                },
            ))
        })
        .collect()
}

#[derive(Debug, Default, PartialEq)]
pub struct CpuInfo {
    pub model_name: Option<String>,
    pub vendor: Option<String>,
    pub sockets: Option<u32>,
    pub physical_cores: Option<u32>,
    /// The instruction set the layout of the file gives away, for a host
    /// read through a root other than the running system's.
    pub architecture: Option<&'static str>,
    /// The flags of [`VECTOR_EXTENSIONS`] the first CPU lists.
    pub vector_extensions: Vec<String>,
}

/// The flags peak floating-point throughput depends on: x86 (`flags`),
/// arm64 (`Features`) and LoongArch (`features`).
pub const VECTOR_EXTENSIONS: [&str; 10] = [
    "avx512f", "avx2", "fma", "avx", "sse2", "asimd", "sve", "sve2", "lasx", "lsx",
];

/// Sockets are distinct `physical id`s (LoongArch: `package`); cores are
/// distinct (socket, `core id`) pairs. Either is absent when the kernel
/// does not print it (many ARM and virtualised hosts). arm64 kernels print
/// no model name, only the implementer and part codes: the model is named
/// from those ([`arm_model`]). Keys are matched without regard to case:
/// LoongArch kernels have printed both `model name` and `Model Name`.
pub fn parse_cpuinfo(text: &str) -> CpuInfo {
    let mut info = CpuInfo::default();
    let mut sockets = std::collections::BTreeSet::new();
    let mut cores = std::collections::BTreeSet::new();
    let (mut implementer, mut part) = (None, None);
    let hex = |v: &str| u32::from_str_radix(v.trim_start_matches("0x"), 16).ok();
    for block in text.split("\n\n") {
        let mut physical = None;
        let mut core = None;
        for line in block.lines() {
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            match key.trim().to_ascii_lowercase().as_str() {
                "model name" if info.model_name.is_none() => {
                    info.model_name = Some(value.to_owned())
                }
                "vendor_id" if info.vendor.is_none() => {
                    info.vendor = Some(value.to_owned());
                    info.architecture = Some("x86_64");
                }
                "cpu implementer" if implementer.is_none() => {
                    implementer = hex(value);
                    info.architecture = Some("aarch64");
                }
                "cpu part" if part.is_none() => part = hex(value),
                "cpu family" if value.starts_with("Loongson") => {
                    info.vendor.get_or_insert_with(|| "Loongson".to_owned());
                    info.architecture = Some("loongarch64");
                }
                "isa" if value.contains("loongarch64") => info.architecture = Some("loongarch64"),
                "flags" | "features" if info.vector_extensions.is_empty() => {
                    info.vector_extensions = value
                        .split_whitespace()
                        .filter(|f| VECTOR_EXTENSIONS.contains(f))
                        .map(str::to_owned)
                        .collect();
                }
                "physical id" | "package" => physical = value.parse::<u32>().ok(),
                "core id" | "core" => core = value.parse::<u32>().ok(),
                _ => {}
            }
        }
        if let Some(p) = physical {
            sockets.insert(p);
            if let Some(c) = core {
                cores.insert((p, c));
            }
        }
    }
    if let Some(implementer) = implementer {
        let (vendor, model) = arm_model(implementer, part);
        info.vendor = Some(vendor);
        info.model_name.get_or_insert(model);
    }
    info.sockets = (!sockets.is_empty()).then_some(sockets.len() as u32);
    info.physical_cores = (!cores.is_empty()).then_some(cores.len() as u32);
    info
}

/// The maker and model of an arm64 core from its MIDR implementer and part
/// codes, named as util-linux's `lscpu` names them (with the Chinese server
/// products each core is sold in).
pub fn arm_model(implementer: u32, part: Option<u32>) -> (String, String) {
    let vendor = match implementer {
        0x41 => "ARM",
        0x42 => "Broadcom",
        0x43 => "Cavium",
        0x46 => "Fujitsu",
        0x48 => "HiSilicon",
        0x4e => "NVIDIA",
        0x51 => "Qualcomm",
        0x61 => "Apple",
        0x70 => "Phytium",
        0xc0 => "Ampere",
        _ => "",
    };
    let vendor = if vendor.is_empty() {
        format!("implementer 0x{implementer:02x}")
    } else {
        vendor.to_owned()
    };
    let name = part.and_then(|part| {
        Some(match (implementer, part) {
            (0x48, 0xd01) => "Kunpeng-920",
            (0x48, 0xd02) => "TaiShan-v120",
            (0x70, 0x660) => "FTC660",
            (0x70, 0x661) => "FTC661",
            (0x70, 0x662) => "FTC662 (FT-2000+/64)",
            (0x70, 0x663) => "FTC663 (FT-2000/4, D2000, S2500)",
            (0x70, 0x664) => "FTC664",
            (0x70, 0x303) => "FTC310",
            (0x70, 0x862) => "FTC862",
            (0x41, 0xd08) => "Cortex-A72",
            (0x41, 0xd0c) => "Neoverse-N1",
            (0x41, 0xd40) => "Neoverse-V1",
            (0x41, 0xd49) => "Neoverse-N2",
            (0x41, 0xd4f) => "Neoverse-V2",
            (0x4e, 0x004) => "Carmel",
            (0xc0, 0xac3) => "Ampere-1",
            (0xc0, 0xac4) => "Ampere-1a",
            _ => return None,
        })
    });
    let model = match (name, part) {
        (Some(name), _) => format!("{vendor} {name}"),
        (None, Some(part)) => format!("{vendor} part 0x{part:03x}"),
        (None, None) => vendor.clone(),
    };
    (vendor, model)
}

// ---------------------------------------------------------------------------
// /sys readers
// ---------------------------------------------------------------------------

fn read_dmi(root: &HostRoot) -> Dmi {
    let attr = |name: &str| {
        root.attribute(format!("/sys/class/dmi/id/{name}"))
            // Firmware placeholders are not identities.
            .filter(|v| {
                !matches!(
                    v.as_str(),
                    "To Be Filled By O.E.M." | "Default string" | "Not Specified" | "None"
                )
            })
    };
    Dmi {
        system_vendor: attr("sys_vendor"),
        product_name: attr("product_name"),
        product_serial: attr("product_serial"),
        product_uuid: attr("product_uuid"),
        board_vendor: attr("board_vendor"),
        board_name: attr("board_name"),
        bios_vendor: attr("bios_vendor"),
        bios_version: attr("bios_version"),
        board_serial: attr("board_serial"),
    }
}

fn read_numa(root: &HostRoot) -> Vec<NumaNode> {
    let Ok(entries) = root.entries("/sys/devices/system/node") else {
        return Vec::new();
    };
    entries
        .iter()
        .filter_map(|name| {
            let id: u32 = name.strip_prefix("node")?.parse().ok()?;
            let dir = format!("/sys/devices/system/node/{name}");
            let memory_total_bytes = root.read(format!("{dir}/meminfo")).ok().and_then(|t| {
                // "Node 0 MemTotal:       16318412 kB"
                t.lines().find_map(|l| {
                    let rest = l.split_once("MemTotal:")?.1;
                    parse_meminfo(&format!("MemTotal:{rest}"))
                        .get("MemTotal")
                        .copied()
                })
            });
            Some(NumaNode {
                id,
                cpu_list: root.attribute(format!("{dir}/cpulist")).unwrap_or_default(),
                memory_total_bytes,
            })
        })
        .collect()
}

/// Every interface the kernel knows, as `ip link` lists them.
fn read_interfaces(root: &HostRoot) -> Vec<NetworkInterface> {
    let Ok(names) = root.entries("/sys/class/net") else {
        return Vec::new();
    };
    let addresses = if root.is_live() {
        interface_addresses()
    } else {
        BTreeMap::new()
    };
    names
        .into_iter()
        .filter(|name| root.path(format!("/sys/class/net/{name}")).is_dir())
        .map(|name| {
            let dir = format!("/sys/class/net/{name}");
            NetworkInterface {
                mac_address: root
                    .attribute(format!("{dir}/address"))
                    .filter(|mac| !mac.is_empty()),
                addresses: addresses.get(&name).cloned().unwrap_or_default(),
                mtu: root.number(format!("{dir}/mtu")),
                // -1 (unknown) for virtual and down links fails to parse: absent.
                speed_mbps: root.number(format!("{dir}/speed")),
                oper_state: root.attribute(format!("{dir}/operstate")),
                r#virtual: !root.path(format!("{dir}/device")).exists(),
                name,
            }
        })
        .collect()
}

/// Interface addresses in CIDR form, from the kernel via getifaddrs(3).
fn interface_addresses() -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `head` with a list we free below; every pointer
    // is checked for null before it is read.
    unsafe {
        if libc::getifaddrs(&mut head) != 0 {
            return out;
        }
        let mut cursor = head;
        while !cursor.is_null() {
            let ifa = &*cursor;
            cursor = ifa.ifa_next;
            if ifa.ifa_addr.is_null() || ifa.ifa_name.is_null() {
                continue;
            }
            let name = std::ffi::CStr::from_ptr(ifa.ifa_name)
                .to_string_lossy()
                .into_owned();
            let (addr, prefix) = match i32::from((*ifa.ifa_addr).sa_family) {
                libc::AF_INET => {
                    let a = &*(ifa.ifa_addr as *const libc::sockaddr_in);
                    let ip = std::net::Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
                    let prefix = (!ifa.ifa_netmask.is_null()).then(|| {
                        let m = &*(ifa.ifa_netmask as *const libc::sockaddr_in);
                        u32::from_be(m.sin_addr.s_addr).count_ones()
                    });
                    (ip.to_string(), prefix)
                }
                libc::AF_INET6 => {
                    let a = &*(ifa.ifa_addr as *const libc::sockaddr_in6);
                    let ip = std::net::Ipv6Addr::from(a.sin6_addr.s6_addr);
                    let prefix = (!ifa.ifa_netmask.is_null()).then(|| {
                        let m = &*(ifa.ifa_netmask as *const libc::sockaddr_in6);
                        u128::from_be_bytes(m.sin6_addr.s6_addr).count_ones()
                    });
                    (ip.to_string(), prefix)
                }
                _ => continue,
            };
            let cidr = match prefix {
                Some(p) => format!("{addr}/{p}"),
                None => addr,
            };
            out.entry(name).or_default().push(cidr);
        }
        libc::freeifaddrs(head);
    }
    out
}

/// hwmon temperature inputs (millidegrees Celsius).
fn read_temperatures(root: &HostRoot) -> Vec<TemperatureSample> {
    let Ok(chips) = root.entries("/sys/class/hwmon") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for chip in chips {
        let dir = format!("/sys/class/hwmon/{chip}");
        let chip_name = root
            .attribute(format!("{dir}/name"))
            .unwrap_or(chip.clone());
        let Ok(files) = root.entries(&dir) else {
            continue;
        };
        for file in files {
            let Some(sensor) = file
                .strip_suffix("_input")
                .filter(|s| s.starts_with("temp"))
            else {
                continue;
            };
            let label = root
                .attribute(format!("{dir}/{sensor}_label"))
                .unwrap_or_else(|| sensor.to_owned());
            let milli = |suffix: &str| {
                root.number::<i64>(format!("{dir}/{sensor}_{suffix}"))
                    .map(|m| m as f64 / 1000.0)
            };
            out.push(TemperatureSample {
                sensor: format!("{chip_name}/{label}"),
                celsius: milli("input"),
                critical_celsius: milli("crit"),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "cpu  100 0 50 800 50 0 0 0 0 0
cpu0 60 0 30 400 10 0 0 0 0 0
cpu1 40 0 20 400 40 0 0 0 0 0
intr 1234
btime 1700000000
";

    #[test]
    fn parses_proc_stat() {
        let stat = parse_stat(STAT);
        assert_eq!(stat.boot_time, Some(1_700_000_000));
        assert_eq!(stat.cpus.len(), 3);
        assert_eq!(
            stat.cpus[&Some(1)],
            CpuTimes {
                busy: 60,
                idle: 400,
                iowait: 40
            }
        );
    }

    #[test]
    fn utilization_is_the_busy_share_of_the_window() {
        let before = CpuTimes {
            busy: 100,
            idle: 800,
            iowait: 100,
        };
        let after = CpuTimes {
            busy: 175,
            idle: 820,
            iowait: 105,
        };
        assert_eq!(after.busy_percent_since(&before), Some(75.0));
        assert_eq!(after.iowait_percent_since(&before), Some(5.0));
        assert_eq!(before.busy_percent_since(&before), None, "no time passed");
        assert_eq!(
            before.busy_percent_since(&after),
            None,
            "counters went back"
        );
    }

    #[test]
    fn parses_meminfo_in_bytes() {
        let m = parse_meminfo(
            "MemTotal:       16318412 kB\nMemAvailable:   8000000 kB\nHugePages_Total:       0\n",
        );
        assert_eq!(m["MemTotal"], 16_318_412 * 1024);
        assert_eq!(m["MemAvailable"], 8_000_000 * 1024);
        assert_eq!(m["HugePages_Total"], 0);
    }

    #[test]
    fn parses_loadavg() {
        assert_eq!(
            parse_loadavg("0.50 1.25 2.00 1/234 5678\n"),
            Some((0.5, 1.25, 2.0))
        );
        assert_eq!(parse_loadavg("garbage"), None);
    }

    #[test]
    fn parses_diskstats() {
        let d = parse_diskstats(
            " 254       0 vda 7048 2431 646090 4219 59880 54622 2869360 98522 0 63412 107076 0 0 0 0 5467 4334\n",
        );
        assert_eq!(
            d["vda"],
            DiskCounters {
                reads: 7048,
                sectors_read: 646_090,
                writes: 59_880,
                sectors_written: 2_869_360,
                io_ticks_ms: 63_412
            }
        );
    }

    #[test]
    fn parses_net_dev() {
        let text = "Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:  1000      10    0    0    0     0          0         0     1000      10    0    0    0     0       0          0
  eth0: 5000000   4000    2    3    0     0          0         0   700000    3000    4    5    0     0       0          0
";
        let n = parse_net_dev(text);
        assert_eq!(n.len(), 2);
        assert_eq!(
            n["eth0"],
            NetCounters {
                rx_bytes: 5_000_000,
                rx_packets: 4000,
                rx_errors: 2,
                rx_dropped: 3,
                tx_bytes: 700_000,
                tx_packets: 3000,
                tx_errors: 4,
                tx_dropped: 5
            }
        );
    }

    #[test]
    fn counts_sockets_and_cores_from_cpuinfo() {
        let mut text = String::new();
        for (cpu, socket, core) in [(0, 0, 0), (1, 0, 1), (2, 1, 0), (3, 1, 1), (4, 0, 0)] {
            text += &format!(
                "processor\t: {cpu}\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) Platinum 8480+\nphysical id\t: {socket}\ncore id\t\t: {core}\n\n"
            );
        }
        let info = parse_cpuinfo(&text);
        assert_eq!(info.sockets, Some(2));
        assert_eq!(info.physical_cores, Some(4));
        assert_eq!(
            info.model_name.as_deref(),
            Some("Intel(R) Xeon(R) Platinum 8480+")
        );
        assert_eq!(info.vendor.as_deref(), Some("GenuineIntel"));
        // Without topology lines, sockets and cores are unknown, not 0.
        let bare = parse_cpuinfo("processor\t: 0\nmodel name\t: QEMU Virtual CPU\n");
        assert_eq!((bare.sockets, bare.physical_cores), (None, None));
    }

    /// Each fixture host's /proc/cpuinfo, exactly as the agent names it.
    #[test]
    fn names_the_domestic_platforms() {
        let hosts =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/hosts");
        let read = |host: &str| {
            parse_cpuinfo(&std::fs::read_to_string(hosts.join(host).join("proc/cpuinfo")).unwrap())
        };
        let kunpeng = read("kunpeng-ascend");
        assert_eq!(kunpeng.model_name.as_deref(), Some("HiSilicon Kunpeng-920"));
        assert_eq!(kunpeng.vendor.as_deref(), Some("HiSilicon"));
        assert_eq!(kunpeng.architecture, Some("aarch64"));
        let phytium = read("phytium");
        assert_eq!(phytium.model_name.as_deref(), Some("Phytium,S2500/64"));
        assert_eq!(phytium.vendor.as_deref(), Some("Phytium"));
        let hygon = read("hygon-dcu");
        assert_eq!(
            hygon.model_name.as_deref(),
            Some("Hygon C86 7285 32-core Processor")
        );
        assert_eq!(hygon.vendor.as_deref(), Some("HygonGenuine"));
        assert_eq!((hygon.sockets, hygon.physical_cores), (Some(2), Some(8)));
        assert_eq!(hygon.architecture, Some("x86_64"));
        let loongson = read("loongson");
        assert_eq!(loongson.model_name.as_deref(), Some("Loongson-3C5000"));
        assert_eq!(loongson.vendor.as_deref(), Some("Loongson"));
        assert_eq!(
            (loongson.sockets, loongson.physical_cores),
            (Some(2), Some(8))
        );
        assert_eq!(loongson.architecture, Some("loongarch64"));
        // What peak throughput is rated from (docs/market-monitoring.md).
        assert_eq!(loongson.vector_extensions, ["lsx", "lasx"]);
        assert_eq!(kunpeng.vector_extensions, ["asimd"]);
        assert!(hygon.vector_extensions.iter().any(|f| f == "avx2"));
        assert!(hygon.vector_extensions.iter().any(|f| f == "fma"));
        // Mainline LoongArch kernels capitalise the keys.
        let mainline = parse_cpuinfo(
            "processor\t\t: 0\npackage\t\t\t: 0\ncore\t\t\t: 0\nCPU Family\t\t: Loongson-64bit\nModel Name\t\t: Loongson-3A5000\nISA\t\t\t: loongarch32 loongarch64\n",
        );
        assert_eq!(mainline.model_name.as_deref(), Some("Loongson-3A5000"));
        assert_eq!(mainline.architecture, Some("loongarch64"));
        // A Phytium without Kylin's model line, and a part no table knows.
        assert_eq!(
            arm_model(0x70, Some(0x663)).1,
            "Phytium FTC663 (FT-2000/4, D2000, S2500)"
        );
        assert_eq!(arm_model(0x48, Some(0xd06)).1, "HiSilicon part 0xd06");
    }
}
