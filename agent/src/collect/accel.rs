//! Accelerators beyond NVIDIA: one [`Driver`] per vendor library, each run
//! as its own collector (its own worker thread under the sampler's timeout,
//! so a wedged driver costs one problem, not the agent).
//!
//! A vendor's library is loaded only when its devices are on the PCI bus
//! ([`pci`]) or its library is named explicitly, so a CPU host or an NVIDIA
//! host loads nothing new. Every vendor fills the same [`GpuInventory`] and
//! [`GpuSample`] records in the same units (bytes, mW, °C, %, MHz): units
//! are converted in the vendor module, and a reading the library cannot give
//! is absent.

pub mod ascend;
pub mod cambricon;
pub mod ffi;
pub mod metax;
pub mod pci;
pub mod rocm;

use std::{
    collections::{BTreeMap, BTreeSet},
    path::PathBuf,
};

use suanli_protocol::model::{
    AcceleratorLibrary, AcceleratorVendor, DeviceEvent, GpuInventory, GpuSample, HostReport,
    Problem, ProblemKind,
};

use super::{Collected, Collector, HostRoot, Readings};

/// One vendor library, opened.
pub trait Driver: Send + 'static {
    fn library(&self) -> &AcceleratorLibrary;
    /// Static facts, read once per device set.
    fn inventory(&mut self, problems: &mut Problems) -> Vec<GpuInventory>;
    /// This cycle's readings for the devices `inventory` returned.
    fn sample(&mut self, inventory: &[GpuInventory], problems: &mut Problems) -> Vec<GpuSample>;
}

/// Problems met while reading one vendor's devices.
#[derive(Debug)]
pub struct Problems {
    collector: &'static str,
    list: Vec<Problem>,
}

impl Problems {
    fn new(collector: &'static str) -> Self {
        Self {
            collector,
            list: Vec::new(),
        }
    }

    pub fn failed(&mut self, message: String) {
        self.list
            .push(Problem::new(self.collector, ProblemKind::Failed, message));
    }

    /// What a call every reading depends on (the device list) answered, or
    /// `None` with its failure noted in the library's words.
    pub fn needed<T, S>(
        &mut self,
        what: &str,
        answer: Result<T, S>,
        describe: impl Fn(S) -> String,
    ) -> Option<T> {
        answer
            .map_err(|status| self.failed(format!("{what}: {}", describe(status))))
            .ok()
    }
}

/// Turns one vendor answer into a reading: "this device does not have
/// that" is absent without a problem, anything else absent with one, in the
/// library's own words.
pub struct Readout<'a, S> {
    /// "NPU", "DCU", …, and the device's index, for the problem's text.
    pub label: &'static str,
    pub device: u32,
    pub problems: &'a mut Problems,
    pub unsupported: fn(S) -> bool,
    pub describe: &'a dyn Fn(S) -> String,
}

impl<S> std::fmt::Debug for Readout<'_, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Readout")
            .field("label", &self.label)
            .field("device", &self.device)
            .finish_non_exhaustive()
    }
}

impl<S: Copy> Readout<'_, S> {
    pub fn get<T>(&mut self, what: &str, answer: Result<T, S>) -> Option<T> {
        match answer {
            Ok(v) => Some(v),
            Err(status) if (self.unsupported)(status) => None,
            Err(status) => {
                let words = (self.describe)(status);
                self.problems
                    .failed(format!("{} {}: {what}: {words}", self.label, self.device));
                None
            }
        }
    }
}

/// What one vendor's collector contributes to a report. Several vendors'
/// devices may share a host, so these are appended, never overwrite.
#[derive(Debug, Default)]
pub struct AcceleratorReadings {
    pub library: Option<AcceleratorLibrary>,
    pub devices: Vec<GpuInventory>,
    pub samples: Vec<GpuSample>,
    pub events: Vec<DeviceEvent>,
}

impl AcceleratorReadings {
    pub(crate) fn apply(self, report: &mut HostReport) {
        report.inventory.accelerator_libraries.extend(self.library);
        report.inventory.gpus.extend(self.devices);
        report.sample.gpus.extend(self.samples);
        report.sample.device_events.extend(self.events);
    }
}

/// A vendor's collector: its driver, or why there is none.
pub struct AcceleratorCollector {
    name: &'static str,
    vendor: AcceleratorVendor,
    driver: Result<Box<dyn Driver>, Problem>,
    inventory: Vec<GpuInventory>,
    /// Cycles since the device list was read.
    since_inventory: u32,
    /// Each device's raised error codes at the last sample, by stable id.
    raised: BTreeMap<String, BTreeSet<u64>>,
}

impl std::fmt::Debug for AcceleratorCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AcceleratorCollector")
            .field("vendor", &self.vendor)
            .field("ready", &self.driver.is_ok())
            .finish_non_exhaustive()
    }
}

/// The collector name of a vendor, as problems and logs show it.
pub fn collector_name(vendor: AcceleratorVendor) -> &'static str {
    match vendor {
        AcceleratorVendor::Huawei => "ascend",
        AcceleratorVendor::Hygon => "hygon",
        AcceleratorVendor::Amd => "amd",
        AcceleratorVendor::Iluvatar => "iluvatar",
        other => other.as_str(),
    }
}

impl AcceleratorCollector {
    /// Opens `vendor`'s library for the `present` devices the PCI bus shows
    /// (none when the library was named explicitly and the bus says nothing).
    pub fn open(
        vendor: AcceleratorVendor,
        root: &HostRoot,
        library: Option<PathBuf>,
        present: usize,
    ) -> Option<Self> {
        let name = collector_name(vendor);
        let driver = match vendor {
            AcceleratorVendor::Huawei => ascend::open(root, library.as_deref()),
            AcceleratorVendor::Hygon | AcceleratorVendor::Amd => {
                rocm::open(vendor, library.as_deref())
            }
            AcceleratorVendor::Cambricon => cambricon::open(library.as_deref()),
            AcceleratorVendor::Metax => metax::open(library.as_deref()),
            _ => return None,
        };
        let driver = driver.map_err(|why| {
            let on_bus = if present > 0 {
                format!("{present} {} devices on the PCI bus, but ", vendor.as_str())
            } else {
                String::new()
            };
            tracing::warn!(collector = name, devices = present, reason = %why, "vendor library unusable");
            Problem::new(name, ProblemKind::Failed, format!("{on_bus}{why}"))
        });
        if let Ok(driver) = &driver {
            let info = driver.library();
            tracing::info!(
                collector = name,
                path = %info.path,
                version = info.version.as_deref().unwrap_or("-"),
                symbols = info.symbols.len(),
                missing = %info.missing_symbols.join(","),
                "vendor library loaded"
            );
        }
        Some(Self {
            name,
            vendor,
            driver,
            inventory: Vec::new(),
            since_inventory: 0,
            raised: BTreeMap::new(),
        })
    }
}

/// How often the device list is read again, in cycles (5 min at the default
/// 5 s): a device that did not answer (DCMI's "not ready"), one plugged in
/// or a driver reloaded is seen then.
const INVENTORY_EVERY: u32 = 60;

impl Collector for AcceleratorCollector {
    fn name(&self) -> &'static str {
        self.name
    }

    fn collect(&mut self) -> Collected {
        let driver = match &mut self.driver {
            Ok(driver) => driver,
            Err(problem) => {
                return Collected {
                    readings: None,
                    problems: vec![problem.clone()],
                };
            }
        };
        let mut problems = Problems::new(self.name);
        self.since_inventory += 1;
        if self.inventory.is_empty() || self.since_inventory >= INVENTORY_EVERY {
            self.inventory = driver.inventory(&mut problems);
            self.since_inventory = 0;
        }
        let samples = driver.sample(&self.inventory, &mut problems);
        let library = driver.library().clone();
        let now = super::unix_ms(std::time::SystemTime::now());
        let events = self.newly_raised(&samples, now);
        let devices = self.inventory.clone();
        if samples.len() != devices.len() {
            // A device came or went: read the set again next cycle.
            self.inventory.clear();
        }
        Collected {
            readings: Some(Readings::Accelerators(AcceleratorReadings {
                library: Some(library),
                devices,
                samples,
                events,
            })),
            problems: problems.list,
        }
    }
}

impl AcceleratorCollector {
    /// Error codes a device raises now that it did not at the last sample:
    /// the vendor keeps codes raised until cleared, so each is one event.
    fn newly_raised(&mut self, samples: &[GpuSample], now_ms: u64) -> Vec<DeviceEvent> {
        let mut events = Vec::new();
        for sample in samples {
            let Some(id) = &sample.uuid else { continue };
            let now: BTreeSet<u64> = sample.error_codes.iter().copied().collect();
            let before = self.raised.insert(id.clone(), now.clone());
            let pci_bus_id = self
                .inventory
                .iter()
                .find(|d| d.uuid.as_ref() == Some(id))
                .and_then(|d| d.pci_bus_id.clone());
            for code in now.difference(&before.unwrap_or_default()) {
                events.push(DeviceEvent {
                    vendor: self.vendor,
                    device_index: Some(sample.index),
                    pci_bus_id: pci_bus_id.clone(),
                    code: *code,
                    message: None,
                    observed_at_unix_ms: Some(now_ms),
                });
            }
        }
        events
    }
}

/// A vendor's devices on the bus that this agent has no reader for: said
/// every cycle, so staff see why a server's accelerators are missing.
#[derive(Debug)]
pub struct Unreadable {
    name: &'static str,
    message: String,
}

impl Unreadable {
    pub fn new(vendor: AcceleratorVendor, present: usize) -> Self {
        Self {
            name: collector_name(vendor),
            message: format!(
                "{present} {} devices on the PCI bus; this agent has no reader for them yet",
                vendor.as_str()
            ),
        }
    }
}

impl Collector for Unreadable {
    fn name(&self) -> &'static str {
        self.name
    }

    fn collect(&mut self) -> Collected {
        Collected::unsupported(self.name, self.message.clone())
    }
}

/// `0000:18:00.0` as NVML writes PCI addresses: 8 hex digits of domain, upper case.
pub fn pci_bus_id(domain: u32, bus: u32, device: u32, function: u32) -> String {
    format!("{domain:08X}:{bus:02X}:{device:02X}.{function:X}")
}

/// DCMI's and CNDev's "MB" are MiB.
pub fn bytes_from_mib(mib: u64) -> Option<u64> {
    mib.checked_mul(1 << 20)
}

/// Free memory from total and used; absent unless both were read.
pub fn free_bytes(total: Option<u64>, used: Option<u64>) -> Option<u64> {
    total.zip(used).and_then(|(t, u)| t.checked_sub(u))
}

/// A percentage, or absent when the library answers something no
/// percentage can be (DCMI writes 0xEF while profiling).
pub fn percent(value: u32) -> Option<u32> {
    (value <= 100).then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pci_addresses_read_like_nvml() {
        assert_eq!(pci_bus_id(0, 0x18, 0, 0), "00000000:18:00.0");
        assert_eq!(pci_bus_id(1, 0xc1, 0x1f, 7), "00000001:C1:1F.7");
    }

    #[test]
    fn sentinels_are_not_percentages() {
        assert_eq!(percent(0), Some(0));
        assert_eq!(percent(100), Some(100));
        assert_eq!(percent(0xEF), None);
        assert_eq!(bytes_from_mib(65_536), Some(64 << 30));
        assert_eq!(bytes_from_mib(u64::MAX), None);
    }

    struct Raising(AcceleratorLibrary);
    impl Driver for Raising {
        fn library(&self) -> &AcceleratorLibrary {
            &self.0
        }
        fn inventory(&mut self, _: &mut Problems) -> Vec<GpuInventory> {
            vec![GpuInventory {
                uuid: Some("D1".into()),
                pci_bus_id: Some("00000000:01:00.0".into()),
                ..GpuInventory::default()
            }]
        }
        fn sample(&mut self, _: &[GpuInventory], _: &mut Problems) -> Vec<GpuSample> {
            Vec::new()
        }
    }

    #[test]
    fn a_raised_code_is_one_event_until_it_clears() {
        let mut c = AcceleratorCollector {
            name: "ascend",
            vendor: AcceleratorVendor::Huawei,
            driver: Ok(Box::new(Raising(AcceleratorLibrary::default()))),
            inventory: Raising(AcceleratorLibrary::default()).inventory(&mut Problems::new("t")),
            since_inventory: 0,
            raised: BTreeMap::new(),
        };
        let sample = |codes: &[u64]| GpuSample {
            uuid: Some("D1".into()),
            error_codes: codes.to_vec(),
            ..GpuSample::default()
        };
        let first = c.newly_raised(&[sample(&[0x8C2F_A009])], 1);
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].code, 0x8C2F_A009);
        assert_eq!(first[0].pci_bus_id.as_deref(), Some("00000000:01:00.0"));
        assert!(c.newly_raised(&[sample(&[0x8C2F_A009])], 2).is_empty());
        assert!(c.newly_raised(&[sample(&[])], 3).is_empty());
        assert_eq!(c.newly_raised(&[sample(&[0x8C2F_A009])], 4).len(), 1);
    }
}
