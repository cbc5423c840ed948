//! NVIDIA GPUs through NVML (`nvml-wrapper`), and Iluvatar CoreX GPUs
//! through `libixml.so`, which exports NVML's own entry points.
//!
//! No NVML on the host is a normal CPU server: zero GPUs and an
//! [`ProblemKind::Unsupported`] problem saying why. A call the GPU or driver
//! does not support leaves its field absent without a problem; any other
//! failure (GPU lost, no permission) leaves it absent *with* a problem.
//! Inventory is read once per device set; samples every cycle; XID errors
//! are drained from an NVML event set without blocking.

use std::{collections::BTreeMap, ffi::OsStr, path::PathBuf};

use nvml_wrapper::{
    Device, Nvml,
    bitmasks::event::EventTypes,
    enum_wrappers::device::{
        Clock, EccCounter, MemoryError, PcieUtilCounter, RetirementCause, TemperatureSensor,
        TemperatureThreshold,
    },
    enums::{device::UsedGpuMemory, event::XidError},
    error::NvmlError,
    event::EventSet,
    struct_wrappers::device::FieldValueSample,
    structs::device::FieldId,
};
use suanli_protocol::model::{
    AcceleratorKind, AcceleratorLibrary, AcceleratorVendor, GpuInventory, GpuProcess, GpuSample,
    GpuSystem, HostReport, NvLinkSample, Problem, ProblemKind, StableIdSource, XidEvent,
};

use super::{Collected, Collector, HostRoot, Readings, accel::ffi};

/// NVML_NVLINK_MAX_LINKS in NVML 12/13.
const MAX_NVLINKS: u32 = 18;
/// NVML_FI_DEV_REMAPPED_{COR,UNC,PENDING,FAILURE}: row remapping has no safe wrapper.
const REMAPPED_ROWS: [FieldId; 4] = [FieldId(142), FieldId(143), FieldId(144), FieldId(145)];

#[derive(Debug, Default)]
pub struct NvidiaReadings {
    pub vendor: AcceleratorVendor,
    pub system: GpuSystem,
    pub library: Option<AcceleratorLibrary>,
    pub gpus: Vec<GpuInventory>,
    pub samples: Vec<GpuSample>,
    pub xid_events: Vec<XidEvent>,
}

impl NvidiaReadings {
    pub(crate) fn apply(self, report: &mut HostReport) {
        // Appended: other vendors' devices may share the host.
        report.inventory.gpus.extend(self.gpus);
        report.sample.gpus.extend(self.samples);
        report.inventory.accelerator_libraries.extend(self.library);
        // Iluvatar's XIDs are NVML's numbering too: the XID catalog judges them.
        report.sample.xid_events.extend(self.xid_events);
        if self.vendor == AcceleratorVendor::Nvidia {
            report.inventory.gpu_system = self.system;
        }
    }
}

/// Iluvatar's `nvmlDeviceGetPowerUsage` answers watts where NVML answers
/// milliwatts (nvtop #452); no working card draws under 1 W, so a smaller
/// figure is watts.
pub fn ixml_milliwatts(value: u32) -> u32 {
    if value < 1000 {
        value.saturating_mul(1000)
    } else {
        value
    }
}

pub struct NvidiaCollector {
    root: HostRoot,
    vendor: AcceleratorVendor,
    name: &'static str,
    library: Option<AcceleratorLibrary>,
    state: Result<Session, String>,
}

struct Session {
    path: Option<String>,
    /// Leaked on purpose: devices and the event set borrow it for the life of
    /// the agent, and the collector lives as long as the process.
    nvml: &'static Nvml,
    events: Option<EventSet<'static>>,
    system: GpuSystem,
    inventory: Vec<GpuInventory>,
}

impl std::fmt::Debug for NvidiaCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NvidiaCollector")
            .field("ready", &self.state.is_ok())
            .finish_non_exhaustive()
    }
}

impl NvidiaCollector {
    /// Loads NVML from `library` (a `libnvidia-ml.so` path) or the system default.
    pub fn new(root: HostRoot, library: Option<PathBuf>) -> Self {
        let state = Session::open(library);
        if let Err(why) = &state {
            tracing::debug!(reason = %why, "NVML unavailable; reporting no NVIDIA GPUs");
        }
        Self {
            root,
            vendor: AcceleratorVendor::Nvidia,
            name: "nvidia",
            library: None,
            state,
        }
    }

    /// Loads Iluvatar's `libixml.so` from `library` or CoreX's usual places.
    pub fn iluvatar(root: HostRoot, library: Option<PathBuf>, present: usize) -> Self {
        const DIRS: &[&str] = &["/usr/local/corex/lib64", "/usr/local/corex/lib"];
        let path = ffi::locate(library.as_deref(), "libixml.so", DIRS).and_then(|path| {
            ffi::vet(&path)?;
            Ok(path)
        });
        let state = match path {
            Ok(path) => Session::open(Some(path)),
            Err(e) => Err(e.to_string()),
        }
        .map_err(|why| match present {
            0 => why,
            n => format!("{n} iluvatar devices on the PCI bus, but {why}"),
        });
        let library = state.as_ref().ok().map(|s| AcceleratorLibrary {
            vendor: AcceleratorVendor::Iluvatar,
            path: s.path.clone().unwrap_or_default(),
            version: s.system.nvml_version.clone(),
            ..AcceleratorLibrary::default()
        });
        Self {
            root,
            vendor: AcceleratorVendor::Iluvatar,
            name: "iluvatar",
            library,
            state,
        }
    }
}

impl Session {
    fn open(library: Option<PathBuf>) -> Result<Self, String> {
        let mut builder = Nvml::builder();
        if let Some(path) = &library {
            builder.lib_path(OsStr::new(path.as_os_str()));
        }
        let nvml = builder.init().map_err(|err| match err {
            NvmlError::LibloadingError(e) => {
                format!("NVML library not found ({e}): no NVIDIA driver")
            }
            NvmlError::DriverNotLoaded => "NVIDIA driver not loaded".to_owned(),
            other => format!("NVML init failed: {other}"),
        })?;
        let nvml: &'static Nvml = Box::leak(Box::new(nvml));
        let cuda = nvml.sys_cuda_driver_version().ok().map(|v| {
            format!(
                "{}.{}",
                nvml_wrapper::cuda_driver_version_major(v),
                nvml_wrapper::cuda_driver_version_minor(v)
            )
        });
        let system = GpuSystem {
            driver_version: nvml.sys_driver_version().ok(),
            cuda_driver_version: cuda,
            nvml_version: nvml.sys_nvml_version().ok(),
        };
        let events = register_xid_events(nvml);
        Ok(Self {
            path: library.map(|p| p.display().to_string()),
            nvml,
            events,
            system,
            inventory: Vec::new(),
        })
    }
}

/// An event set with every device that supports XID events registered.
fn register_xid_events(nvml: &'static Nvml) -> Option<EventSet<'static>> {
    let mut set = nvml.create_event_set().ok()?;
    let mut any = false;
    for index in 0..nvml.device_count().unwrap_or(0) {
        let Ok(device) = nvml.device_by_index(index) else {
            continue;
        };
        let supported = device
            .supported_event_types()
            .is_ok_and(|t| t.contains(EventTypes::CRITICAL_XID_ERROR));
        if !supported {
            continue;
        }
        set = match device.register_events(EventTypes::CRITICAL_XID_ERROR, set) {
            Ok(set) => {
                any = true;
                set
            }
            // The set is consumed on error; start over without this device.
            Err(_) => nvml.create_event_set().ok()?,
        };
    }
    any.then_some(set)
}

/// Turns one NVML answer into a reading, noting failures that are not
/// simply "this GPU does not have that".
struct Readout<'a> {
    collector: &'static str,
    index: u32,
    problems: &'a mut Vec<Problem>,
}

impl Readout<'_> {
    fn get<T>(&mut self, what: &str, result: Result<T, NvmlError>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(
                NvmlError::NotSupported
                | NvmlError::FailedToLoadSymbol(_)
                | NvmlError::FunctionNotFound
                | NvmlError::NotFound
                | NvmlError::InvalidArg,
            ) => None,
            Err(err) => {
                self.problems.push(Problem::new(
                    self.collector,
                    ProblemKind::Failed,
                    format!("GPU {}: {what}: {err}", self.index),
                ));
                None
            }
        }
    }
}

impl Collector for NvidiaCollector {
    fn name(&self) -> &'static str {
        self.name
    }

    fn collect(&mut self) -> Collected {
        let name = self.name;
        let session = match &mut self.state {
            Ok(session) => session,
            // Iluvatar is only asked for when its cards are there or its
            // library was named: not finding it then is a failure.
            Err(why) if self.vendor == AcceleratorVendor::Nvidia => {
                return Collected::unsupported(name, why.clone());
            }
            Err(why) => {
                return Collected {
                    readings: None,
                    problems: vec![Problem::new(name, ProblemKind::Failed, why.clone())],
                };
            }
        };
        let nvml = session.nvml;
        let mut problems = Vec::new();
        let count = match nvml.device_count() {
            Ok(n) => n,
            Err(err) => {
                problems.push(Problem::new(
                    name,
                    ProblemKind::Failed,
                    format!("device count: {err}"),
                ));
                0
            }
        };
        if session.inventory.len() != count as usize {
            session.inventory.clear();
        }
        let mut samples = Vec::with_capacity(count as usize);
        let mut devices = BTreeMap::new();
        for index in 0..count {
            let mut r = Readout {
                collector: name,
                index,
                problems: &mut problems,
            };
            let Some(device) = r.get("handle", nvml.device_by_index(index)) else {
                continue;
            };
            if session.inventory.len() == index as usize {
                let mut inventory = read_inventory(index, &device, &mut r);
                inventory.vendor = self.vendor;
                session.inventory.push(inventory);
            }
            let inventory = &session.inventory[index as usize];
            if let Some(bus) = &inventory.pci_bus_id {
                devices.insert(bus.to_ascii_lowercase(), index);
            }
            let mut sample =
                read_sample(index, inventory.uuid.clone(), &device, &mut r, &self.root);
            if self.vendor == AcceleratorVendor::Iluvatar {
                sample.power_milliwatts = sample.power_milliwatts.map(ixml_milliwatts);
            }
            samples.push(sample);
        }

        let mut xid_events = Vec::new();
        if let Some(set) = &session.events {
            // Timeout 0: take what is queued, never wait.
            while let Ok(event) = set.wait(0) {
                let Some(XidError::Value(xid)) = event.event_data else {
                    continue;
                };
                let pci_bus_id = event.device.pci_info().ok().map(|p| p.bus_id);
                xid_events.push(XidEvent {
                    source: "nvml".to_owned(),
                    gpu_index: pci_bus_id
                        .as_ref()
                        .and_then(|b| devices.get(&b.to_ascii_lowercase()).copied())
                        .or_else(|| event.device.index().ok()),
                    pci_bus_id,
                    xid,
                    message: None,
                    observed_at_unix_ms: Some(super::unix_ms(std::time::SystemTime::now())),
                });
            }
        }

        Collected {
            readings: Some(Readings::Nvidia(NvidiaReadings {
                vendor: self.vendor,
                library: self.library.clone(),
                system: session.system.clone(),
                gpus: session.inventory.clone(),
                samples,
                xid_events,
            })),
            problems,
        }
    }
}

fn read_inventory(index: u32, d: &Device<'_>, r: &mut Readout<'_>) -> GpuInventory {
    let mig = r.get("MIG mode", d.mig_mode());
    let name = r.get("name", d.name());
    GpuInventory {
        index,
        vendor: AcceleratorVendor::Nvidia,
        kind: AcceleratorKind::Gpu,
        stable_id_source: StableIdSource::Uuid,
        uuid: r.get("UUID", d.uuid()),
        name,
        serial: r.get("serial", d.serial()),
        pci_bus_id: r.get("PCI info", d.pci_info()).map(|p| p.bus_id),
        architecture: r
            .get("architecture", d.architecture())
            .map(|a| a.to_string()),
        compute_capability: r
            .get("compute capability", d.cuda_compute_capability())
            .map(|c| format!("{}.{}", c.major, c.minor)),
        vbios_version: r.get("VBIOS version", d.vbios_version()),
        memory_total_bytes: r.get("memory", d.memory_info()).map(|m| m.total),
        power_limit_milliwatts: r.get("power limit", d.enforced_power_limit()),
        slowdown_temperature_celsius: r.get(
            "slowdown temperature",
            d.temperature_threshold(TemperatureThreshold::Slowdown),
        ),
        shutdown_temperature_celsius: r.get(
            "shutdown temperature",
            d.temperature_threshold(TemperatureThreshold::Shutdown),
        ),
        max_sm_clock_mhz: r.get("max SM clock", d.max_clock_info(Clock::SM)),
        max_memory_clock_mhz: r.get("max memory clock", d.max_clock_info(Clock::Memory)),
        max_pcie_generation: r.get("max PCIe generation", d.max_pcie_link_gen()),
        max_pcie_width: r.get("max PCIe width", d.max_pcie_link_width()),
        ecc_enabled: r
            .get("ECC mode", d.is_ecc_enabled())
            .map(|e| e.currently_enabled),
        mig_enabled: mig.as_ref().map(|m| m.current == 1),
        mig_pending: mig.as_ref().map(|m| m.pending == 1),
        numa_node: r
            .get("NUMA node", d.numa_node_id())
            .filter(|&n| n != u32::MAX),
        // NVML names the product only; the name is the model.
        model: None,
    }
}

fn read_sample(
    index: u32,
    uuid: Option<String>,
    d: &Device<'_>,
    r: &mut Readout<'_>,
    root: &HostRoot,
) -> GpuSample {
    let utilization = r.get("utilization", d.utilization_rates());
    let memory = r.get("memory", d.memory_info());
    let throttle = r.get("throttle reasons", d.current_throttle_reasons());
    let ecc =
        |r: &mut Readout<'_>, error, counter, what| r.get(what, d.total_ecc_errors(error, counter));
    let retired = |r: &mut Readout<'_>, cause, what| {
        r.get(what, d.retired_pages(cause))
            .map(|pages| u32::try_from(pages.len()).unwrap_or(u32::MAX))
    };
    let remapped = r
        .get("remapped rows", d.field_values_for(&REMAPPED_ROWS))
        .unwrap_or_default();
    let field = |i: usize| -> Option<u64> {
        match remapped.get(i)? {
            Ok(FieldValueSample { value: Ok(v), .. }) => sample_u64(v),
            _ => None,
        }
    };
    let processes = match d.running_compute_processes() {
        Err(NvmlError::FailedToLoadSymbol(_)) => d.running_compute_processes_v2(),
        other => other,
    };
    let processes = r
        .get("compute processes", processes)
        .unwrap_or_default()
        .into_iter()
        .map(|p| GpuProcess {
            pid: p.pid,
            used_memory_bytes: match p.used_gpu_memory {
                UsedGpuMemory::Used(bytes) => Some(bytes),
                UsedGpuMemory::Unavailable => None,
            },
            name: root.attribute(format!("/proc/{}/comm", p.pid)),
        })
        .collect();

    let mut nvlinks = Vec::new();
    for link in 0..MAX_NVLINKS {
        let wrapper = d.link_wrapper_for(link);
        // Links are numbered densely; the first unsupported one ends the list.
        let Ok(active) = wrapper.is_active() else {
            break;
        };
        nvlinks.push(NvLinkSample {
            link,
            active,
            version: wrapper.version().ok(),
        });
    }

    GpuSample {
        index,
        uuid,
        utilization_percent: utilization.as_ref().map(|u| u.gpu),
        memory_utilization_percent: utilization.as_ref().map(|u| u.memory),
        memory_total_bytes: memory.as_ref().map(|m| m.total),
        memory_used_bytes: memory.as_ref().map(|m| m.used),
        memory_free_bytes: memory.as_ref().map(|m| m.free),
        temperature_celsius: r.get("temperature", d.temperature(TemperatureSensor::Gpu)),
        power_milliwatts: r.get("power", d.power_usage()),
        energy_millijoules: r.get("energy", d.total_energy_consumption()),
        sm_clock_mhz: r.get("SM clock", d.clock_info(Clock::SM)),
        memory_clock_mhz: r.get("memory clock", d.clock_info(Clock::Memory)),
        throttle_reasons_mask: throttle.as_ref().map(|t| t.bits()),
        throttle_reasons: throttle
            .map(|t| t.iter_names().map(|(name, _)| name.to_owned()).collect())
            .unwrap_or_default(),
        ecc_corrected_volatile: ecc(
            r,
            MemoryError::Corrected,
            EccCounter::Volatile,
            "ECC corrected (volatile)",
        ),
        ecc_uncorrected_volatile: ecc(
            r,
            MemoryError::Uncorrected,
            EccCounter::Volatile,
            "ECC uncorrected (volatile)",
        ),
        ecc_corrected_aggregate: ecc(
            r,
            MemoryError::Corrected,
            EccCounter::Aggregate,
            "ECC corrected (aggregate)",
        ),
        ecc_uncorrected_aggregate: ecc(
            r,
            MemoryError::Uncorrected,
            EccCounter::Aggregate,
            "ECC uncorrected (aggregate)",
        ),
        retired_pages_single_bit: retired(
            r,
            RetirementCause::MultipleSingleBitEccErrors,
            "retired pages (single bit)",
        ),
        retired_pages_double_bit: retired(
            r,
            RetirementCause::DoubleBitEccError,
            "retired pages (double bit)",
        ),
        retired_pages_pending: r.get("retired pages pending", d.are_pages_pending_retired()),
        remapped_rows_correctable: field(0).and_then(|v| u32::try_from(v).ok()),
        remapped_rows_uncorrectable: field(1).and_then(|v| u32::try_from(v).ok()),
        remapped_rows_pending: field(2).map(|v| v != 0),
        remapped_rows_failure: field(3).map(|v| v != 0),
        pcie_generation: r.get("PCIe generation", d.current_pcie_link_gen()),
        pcie_width: r.get("PCIe width", d.current_pcie_link_width()),
        // NVML reports KB/s over a 20 ms window.
        pcie_rx_bytes_per_second: r
            .get("PCIe RX", d.pcie_throughput(PcieUtilCounter::Receive))
            .map(|kb| u64::from(kb) * 1024),
        pcie_tx_bytes_per_second: r
            .get("PCIe TX", d.pcie_throughput(PcieUtilCounter::Send))
            .map(|kb| u64::from(kb) * 1024),
        pcie_replay_count: r.get("PCIe replays", d.pcie_replay_counter()),
        nvlinks,
        processes,
        fan_speed_percent: r.get("fan speed", d.fan_speed(0)),
        performance_state: r
            .get("performance state", d.performance_state())
            .map(|p| p.as_c())
            .filter(|&p| p < 16),
        // NVML gives no verdict of its own; the aggregator judges XIDs and ECC.
        health: None,
        health_code: None,
        error_codes: Vec::new(),
        // NVLinks have their own list.
        links: Vec::new(),
    }
}

fn sample_u64(v: &nvml_wrapper::enums::device::SampleValue) -> Option<u64> {
    use nvml_wrapper::enums::device::SampleValue;
    match *v {
        SampleValue::U32(x) => Some(u64::from(x)),
        SampleValue::U64(x) => Some(x),
        SampleValue::I64(x) => u64::try_from(x).ok(),
        SampleValue::F64(_) => None,
    }
}
