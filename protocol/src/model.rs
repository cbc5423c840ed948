//! Domain types for what an agent reads off a host.
//!
//! They mirror `suanli.v1` field for field (the wire format is the contract),
//! but with plain Rust types: a message that is always present is a value, not
//! an `Option`, and enums are Rust enums. Conversions to and from the generated
//! types live in [`wire`], at the edge.
//!
//! Invariant: `None` means "could not be read". Code that fills these structs
//! never substitutes 0 for a reading it did not take.

mod wire;

/// Why a reading is missing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum ProblemKind {
    #[default]
    Unspecified,
    /// The host has no such hardware or software: a normal state, not a fault.
    Unsupported,
    /// The reading exists on this host but could not be taken.
    Failed,
    /// The collector did not answer within its time bound.
    TimedOut,
}

impl Problem {
    pub fn new(collector: &str, kind: ProblemKind, message: impl Into<String>) -> Self {
        Self {
            collector: collector.to_owned(),
            kind,
            message: message.into(),
        }
    }
}

/// One collection: inventory and sample taken together.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HostReport {
    pub inventory: HostInventory,
    pub sample: HostSample,
    /// What could not be read, and why. A report with problems is still valid.
    pub problems: Vec<Problem>,
    /// Version of the agent that produced this report (semver).
    pub agent_version: String,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Problem {
    /// Collector name: "host", "filesystems", "network_filesystems", "nvidia", "infiniband", "slurm", "kmsg".
    pub collector: String,
    pub kind: ProblemKind,
    pub message: String,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct HostInventory {
    pub hostname: String,
    pub machine_id: Option<String>,
    pub os: OperatingSystem,
    pub boot_time_unix_seconds: Option<u64>,
    pub dmi: Dmi,
    pub cpu: CpuInventory,
    pub memory_total_bytes: Option<u64>,
    pub swap_total_bytes: Option<u64>,
    pub numa_nodes: Vec<NumaNode>,
    pub filesystems: Vec<Filesystem>,
    pub network_interfaces: Vec<NetworkInterface>,
    pub gpu_system: GpuSystem,
    pub gpus: Vec<GpuInventory>,
    pub infiniband_ports: Vec<InfinibandPort>,
    pub slurm: Option<SlurmNode>,
    /// The vendor libraries the agent loaded, and what each offered.
    pub accelerator_libraries: Vec<AcceleratorLibrary>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct OperatingSystem {
    pub name: Option<String>,
    pub version: Option<String>,
    pub kernel_version: Option<String>,
    pub architecture: Option<String>,
}

/// SMBIOS/DMI identity from /sys/class/dmi/id. Serials are often root-only.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Dmi {
    pub system_vendor: Option<String>,
    pub product_name: Option<String>,
    pub product_serial: Option<String>,
    pub product_uuid: Option<String>,
    pub board_vendor: Option<String>,
    pub board_name: Option<String>,
    pub bios_vendor: Option<String>,
    pub bios_version: Option<String>,
    pub board_serial: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct CpuInventory {
    pub model_name: Option<String>,
    pub vendor: Option<String>,
    pub sockets: Option<u32>,
    pub physical_cores: Option<u32>,
    /// Online logical CPUs.
    pub logical_cpus: u32,
    pub max_frequency_mhz: Option<u32>,
    /// The vector extensions peak throughput depends on (see `host.proto`).
    pub vector_extensions: Vec<String>,
    /// The nominal clock, where the kernel says it.
    pub base_frequency_mhz: Option<u32>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct NumaNode {
    pub id: u32,
    /// Kernel cpulist form, e.g. "0-15,32-47".
    pub cpu_list: String,
    pub memory_total_bytes: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filesystem {
    pub device: String,
    pub mount_point: String,
    pub fs_type: String,
    /// NFS, CIFS, Lustre, GPFS, ...: read on their own, so a stale mount never blocks the rest.
    pub network: bool,
    pub total_bytes: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct NetworkInterface {
    pub name: String,
    pub mac_address: Option<String>,
    /// CIDR form, e.g. "10.0.0.5/24", "fe80::1/64".
    pub addresses: Vec<String>,
    pub mtu: Option<u32>,
    pub speed_mbps: Option<u64>,
    /// "up", "down", "unknown", ... from /sys/class/net/*/operstate.
    pub oper_state: Option<String>,
    /// "virtual" interfaces (lo, bridges, veth) have no device link in sysfs.
    pub r#virtual: bool,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct GpuSystem {
    pub driver_version: Option<String>,
    /// CUDA driver API version, e.g. "12.4".
    pub cuda_driver_version: Option<String>,
    pub nvml_version: Option<String>,
}

/// Who made an accelerator. An agent from before vendors were reported
/// could read only NVML, so an unspecified vendor on the wire is NVIDIA.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AcceleratorVendor {
    #[default]
    Nvidia,
    Huawei,
    Hygon,
    Amd,
    Cambricon,
    Iluvatar,
    Metax,
    MooreThreads,
    Kunlunxin,
    Enflame,
}

impl AcceleratorVendor {
    pub const ALL: [Self; 10] = [
        Self::Nvidia,
        Self::Huawei,
        Self::Hygon,
        Self::Amd,
        Self::Cambricon,
        Self::Iluvatar,
        Self::Metax,
        Self::MooreThreads,
        Self::Kunlunxin,
        Self::Enflame,
    ];

    /// Lower-case name, as in `--accel-library huawei=…` and API documents.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Nvidia => "nvidia",
            Self::Huawei => "huawei",
            Self::Hygon => "hygon",
            Self::Amd => "amd",
            Self::Cambricon => "cambricon",
            Self::Iluvatar => "iluvatar",
            Self::Metax => "metax",
            Self::MooreThreads => "moore_threads",
            Self::Kunlunxin => "kunlunxin",
            Self::Enflame => "enflame",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == name)
    }

    /// What the vendor calls its devices.
    pub fn kind(self) -> AcceleratorKind {
        match self {
            Self::Nvidia | Self::Amd | Self::Iluvatar | Self::Metax | Self::MooreThreads => {
                AcceleratorKind::Gpu
            }
            Self::Huawei => AcceleratorKind::Npu,
            Self::Hygon => AcceleratorKind::Dcu,
            Self::Cambricon => AcceleratorKind::Mlu,
            Self::Kunlunxin => AcceleratorKind::Xpu,
            Self::Enflame => AcceleratorKind::Gcu,
        }
    }
}

/// What the vendor calls the device; unspecified on the wire is a GPU.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum AcceleratorKind {
    #[default]
    Gpu,
    Npu,
    Mlu,
    Dcu,
    Xpu,
    Gcu,
}

impl AcceleratorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Gpu => "gpu",
            Self::Npu => "npu",
            Self::Mlu => "mlu",
            Self::Dcu => "dcu",
            Self::Xpu => "xpu",
            Self::Gcu => "gcu",
        }
    }
}

/// Where an accelerator's `uuid` came from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum StableIdSource {
    #[default]
    Unspecified,
    Uuid,
    Serial,
    DieId,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct AcceleratorLibrary {
    pub vendor: AcceleratorVendor,
    pub path: String,
    pub version: Option<String>,
    /// Entry points found.
    pub symbols: Vec<String>,
    /// Entry points this library lacks: their readings are absent.
    pub missing_symbols: Vec<String>,
}

/// One accelerator of any vendor (the name is historical).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GpuInventory {
    pub index: u32,
    /// The device's stable identity: the vendor's UUID, else its serial or
    /// die ID under a vendor prefix (`stable_id_source` says which).
    pub uuid: Option<String>,
    pub name: Option<String>,
    pub serial: Option<String>,
    pub pci_bus_id: Option<String>,
    pub architecture: Option<String>,
    pub compute_capability: Option<String>,
    pub vbios_version: Option<String>,
    pub memory_total_bytes: Option<u64>,
    pub power_limit_milliwatts: Option<u32>,
    pub slowdown_temperature_celsius: Option<u32>,
    pub shutdown_temperature_celsius: Option<u32>,
    pub max_sm_clock_mhz: Option<u32>,
    pub max_memory_clock_mhz: Option<u32>,
    pub max_pcie_generation: Option<u32>,
    pub max_pcie_width: Option<u32>,
    pub ecc_enabled: Option<bool>,
    pub mig_enabled: Option<bool>,
    pub mig_pending: Option<bool>,
    pub numa_node: Option<u32>,
    pub vendor: AcceleratorVendor,
    pub kind: AcceleratorKind,
    /// The chip model as the vendor's library names it ("910B3", "K100_AI").
    pub model: Option<String>,
    pub stable_id_source: StableIdSource,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct InfinibandPort {
    /// HCA name, e.g. "mlx5_0".
    pub device: String,
    pub port: u32,
    pub hca_type: Option<String>,
    pub firmware_version: Option<String>,
    pub node_guid: Option<String>,
    /// "InfiniBand" or "Ethernet" (RoCE).
    pub link_layer: Option<String>,
    /// Upper 64 bits of GID 0; with `sm_lid`, what one fabric's ports share.
    pub subnet_prefix: Option<String>,
    pub sm_lid: Option<u32>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct SlurmNode {
    pub node_name: String,
    pub partitions: Vec<String>,
    pub cpus_total: Option<u32>,
    pub gres: Option<String>,
    pub real_memory_bytes: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct HostSample {
    /// Wall clock when collection began.
    pub collected_at_unix_ms: u64,
    /// Span over which rates and utilizations were computed.
    pub window_ms: Option<u64>,
    pub cpu: CpuSample,
    pub memory: MemorySample,
    pub filesystems: Vec<FilesystemSample>,
    pub block_devices: Vec<BlockDeviceSample>,
    pub network_interfaces: Vec<NetworkInterfaceSample>,
    pub temperatures: Vec<TemperatureSample>,
    pub gpus: Vec<GpuSample>,
    pub infiniband_ports: Vec<InfinibandPortSample>,
    pub slurm: Option<SlurmSample>,
    /// GPU XID errors seen since the previous sample.
    pub xid_events: Vec<XidEvent>,
    /// Other vendors' device faults seen since the previous sample.
    pub device_events: Vec<DeviceEvent>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct CpuSample {
    pub utilization_percent: Option<f64>,
    /// Indexed by logical CPU; absent entries were offline during the window.
    pub cores: Vec<CoreSample>,
    pub load_average_1m: Option<f64>,
    pub load_average_5m: Option<f64>,
    pub load_average_15m: Option<f64>,
    pub iowait_percent: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct CoreSample {
    pub cpu: u32,
    pub utilization_percent: Option<f64>,
    pub frequency_mhz: Option<u32>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct MemorySample {
    pub total_bytes: Option<u64>,
    pub available_bytes: Option<u64>,
    /// total - available: what the kernel cannot hand out without reclaiming.
    pub used_bytes: Option<u64>,
    pub swap_total_bytes: Option<u64>,
    pub swap_used_bytes: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct FilesystemSample {
    pub mount_point: String,
    pub total_bytes: Option<u64>,
    pub available_bytes: Option<u64>,
    pub used_bytes: Option<u64>,
    pub inodes_total: Option<u64>,
    pub inodes_free: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct BlockDeviceSample {
    pub name: String,
    pub read_bytes_per_second: Option<f64>,
    pub write_bytes_per_second: Option<f64>,
    pub reads_per_second: Option<f64>,
    pub writes_per_second: Option<f64>,
    pub busy_percent: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct NetworkInterfaceSample {
    pub name: String,
    pub rx_bytes_per_second: Option<f64>,
    pub tx_bytes_per_second: Option<f64>,
    pub rx_packets_per_second: Option<f64>,
    pub tx_packets_per_second: Option<f64>,
    pub rx_errors_total: Option<u64>,
    pub tx_errors_total: Option<u64>,
    pub rx_dropped_total: Option<u64>,
    pub tx_dropped_total: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct TemperatureSample {
    /// hwmon chip and label, e.g. "coretemp/Package id 0".
    pub sensor: String,
    pub celsius: Option<f64>,
    pub critical_celsius: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct GpuSample {
    pub index: u32,
    pub uuid: Option<String>,
    pub utilization_percent: Option<u32>,
    pub memory_utilization_percent: Option<u32>,
    pub memory_total_bytes: Option<u64>,
    pub memory_used_bytes: Option<u64>,
    pub memory_free_bytes: Option<u64>,
    pub temperature_celsius: Option<u32>,
    pub power_milliwatts: Option<u32>,
    pub energy_millijoules: Option<u64>,
    pub sm_clock_mhz: Option<u32>,
    pub memory_clock_mhz: Option<u32>,
    /// Raw NVML clocks-event (throttle) reason bits, and their names.
    pub throttle_reasons_mask: Option<u64>,
    pub throttle_reasons: Vec<String>,
    pub ecc_corrected_volatile: Option<u64>,
    pub ecc_uncorrected_volatile: Option<u64>,
    pub ecc_corrected_aggregate: Option<u64>,
    pub ecc_uncorrected_aggregate: Option<u64>,
    pub retired_pages_single_bit: Option<u32>,
    pub retired_pages_double_bit: Option<u32>,
    pub retired_pages_pending: Option<bool>,
    pub remapped_rows_correctable: Option<u32>,
    pub remapped_rows_uncorrectable: Option<u32>,
    pub remapped_rows_pending: Option<bool>,
    pub remapped_rows_failure: Option<bool>,
    pub pcie_generation: Option<u32>,
    pub pcie_width: Option<u32>,
    pub pcie_rx_bytes_per_second: Option<u64>,
    pub pcie_tx_bytes_per_second: Option<u64>,
    pub pcie_replay_count: Option<u32>,
    pub nvlinks: Vec<NvLinkSample>,
    pub processes: Vec<GpuProcess>,
    pub fan_speed_percent: Option<u32>,
    pub performance_state: Option<u32>,
    /// The vendor's verdict on the device; `None` when it gives none.
    pub health: Option<DeviceHealth>,
    /// The vendor's raw health code.
    pub health_code: Option<i64>,
    /// Fault codes the device raises now, as the vendor numbers them.
    pub error_codes: Vec<u64>,
    /// Device-to-device links other than NVLink.
    pub links: Vec<DeviceLink>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceHealth {
    Ok,
    Warning,
    Critical,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LinkKind {
    #[default]
    Unspecified,
    NvLink,
    Hccs,
    Xgmi,
    Xhcl,
    MluLink,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeviceLink {
    pub kind: LinkKind,
    pub index: u32,
    pub up: Option<bool>,
    /// Counters as the vendor keeps them, since the driver loaded.
    pub tx_total: Option<u64>,
    pub rx_total: Option<u64>,
    pub crc_errors_total: Option<u64>,
    pub retries_total: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeviceEvent {
    pub vendor: AcceleratorVendor,
    pub device_index: Option<u32>,
    pub pci_bus_id: Option<String>,
    pub code: u64,
    pub message: Option<String>,
    pub observed_at_unix_ms: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct NvLinkSample {
    pub link: u32,
    pub active: bool,
    pub version: Option<u32>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct GpuProcess {
    pub pid: u32,
    pub used_memory_bytes: Option<u64>,
    pub name: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct XidEvent {
    /// Where the event came from: "nvml" (event set) or "kmsg" (NVRM: Xid in the kernel log).
    pub source: String,
    pub pci_bus_id: Option<String>,
    pub gpu_index: Option<u32>,
    pub xid: u64,
    pub message: Option<String>,
    pub observed_at_unix_ms: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct InfinibandPortSample {
    pub device: String,
    pub port: u32,
    /// "ACTIVE", "DOWN", "INIT", ... (text after "N: " in sysfs).
    pub state: Option<String>,
    /// "LinkUp", "Polling", "Disabled", ...
    pub physical_state: Option<String>,
    pub rate_gbps: Option<f64>,
    /// Counters converted to bytes (the sysfs *_data counters are in 4-byte units).
    pub rx_bytes_total: Option<u64>,
    pub tx_bytes_total: Option<u64>,
    pub rx_packets_total: Option<u64>,
    pub tx_packets_total: Option<u64>,
    pub symbol_errors_total: Option<u64>,
    pub link_downed_total: Option<u64>,
    pub rx_errors_total: Option<u64>,
    pub rx_bytes_per_second: Option<f64>,
    pub tx_bytes_per_second: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct SlurmSample {
    /// Base state plus flags, e.g. "MIXED", "IDLE+DRAIN", "DOWN*".
    pub state: String,
    pub cpus_allocated: Option<u32>,
    pub cpus_total: Option<u32>,
    pub gres_used: Option<String>,
    pub reason: Option<String>,
    pub allocated_memory_bytes: Option<u64>,
}
