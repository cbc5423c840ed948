//! Huawei Ascend NPUs through DCMI.
//!
//! Devices are (card, device-in-card) pairs; the index reported is the
//! logical ID, the one `/dev/davinciN` and `npu-smi` use. An Ascend chip has
//! no UUID: its die ID is its stable identity.

use std::{ffi::c_int, path::Path};

use suanli_protocol::model::{
    AcceleratorKind, AcceleratorLibrary, AcceleratorVendor, DeviceHealth, DeviceLink, GpuInventory,
    GpuProcess, GpuSample, LinkKind, StableIdSource,
};

use super::{
    Driver, HostRoot, Problems, Readout, bytes_from_mib,
    ffi::{
        self, Library,
        dcmi::{self, Dcmi, Status},
    },
    free_bytes, pci_bus_id, percent,
};

const LIBRARY: &str = "libdcmi.so";
/// Where Ascend drivers install it.
const DIRS: &[&str] = &["/usr/local/Ascend/driver/lib64/driver", "/usr/local/dcmi"];

pub fn open(root: &HostRoot, given: Option<&Path>) -> Result<Box<dyn Driver>, String> {
    let path = ffi::locate(given, LIBRARY, DIRS).map_err(|e| e.to_string())?;
    let library = Library::open(AcceleratorVendor::Huawei, &path).map_err(|e| e.to_string())?;
    let dcmi = Dcmi::open(library).map_err(|status| match status {
        Status::Missing => format!("{} has no dcmi_init", path.display()),
        Status::Code(code) => format!("dcmi_init failed ({code}): Ascend driver not loaded"),
    })?;
    Ok(Box::new(Ascend {
        dcmi,
        root: root.clone(),
        devices: Vec::new(),
    }))
}

struct Ascend {
    dcmi: Dcmi,
    root: HostRoot,
    /// (card, device) of each inventory entry, in order.
    devices: Vec<(c_int, c_int)>,
}

fn readout<'a>(device: u32, problems: &'a mut Problems) -> Readout<'a, Status> {
    Readout {
        label: "NPU",
        device,
        problems,
        unsupported: dcmi::unsupported,
        describe: &dcmi::describe,
    }
}

/// DCMI reports power in tenths of a watt.
pub fn milliwatts_from_tenths(tenths: i32) -> Option<u32> {
    u32::try_from(tenths).ok()?.checked_mul(100)
}

/// Below absolute zero is DCMI's "no reading"; a negative one does not fit the record.
pub fn celsius(value: i32) -> Option<u32> {
    u32::try_from(value).ok()
}

/// `dcmi_get_device_health`: 0 healthy, 1 general (minor) alarm, 2 major, 3 critical.
pub fn health(code: u32) -> DeviceHealth {
    match code {
        0 => DeviceHealth::Ok,
        1 => DeviceHealth::Warning,
        _ => DeviceHealth::Critical,
    }
}

impl Driver for Ascend {
    fn library(&self) -> &AcceleratorLibrary {
        self.dcmi.library().info()
    }

    fn inventory(&mut self, problems: &mut Problems) -> Vec<GpuInventory> {
        let Some(cards) = problems.needed("listing NPUs", self.dcmi.cards(), dcmi::describe) else {
            return Vec::new();
        };
        // A card that cannot say its chips is reported; the others are read.
        let devices: Vec<(c_int, c_int)> = cards
            .into_iter()
            .filter_map(|(card, n)| {
                let n = problems.needed(&format!("card {card}"), n, dcmi::describe)?;
                Some((0..n).map(move |device| (card, device)))
            })
            .flatten()
            .collect();
        self.devices.clear();
        let mut out = Vec::with_capacity(devices.len());
        for (position, (card, device)) in devices.into_iter().enumerate() {
            let d = &self.dcmi;
            let mut r = readout(position as u32, problems);
            let index = r
                .get("logical ID", d.logic_id(card, device))
                .unwrap_or(position as u32);
            r.device = index;
            let chip = r.get("chip info", d.chip_info(card, device));
            let chip_type = chip.as_ref().and_then(|c| ffi::text(&c.chip_type));
            let model = chip.as_ref().and_then(|c| ffi::text(&c.chip_name));
            let name = match (&chip_type, &model) {
                (Some(t), Some(m)) => Some(format!("{t} {m}")),
                (None, Some(m)) => Some(format!("Ascend {m}")),
                _ => None,
            };
            let pci = r.get("PCIe info", d.pcie_info(card, device));
            let die = r
                .get("die ID", d.die_id(card, device))
                .filter(|die| die.soc_die.iter().any(|&w| w != 0));
            let memory = r
                .get("HBM", d.hbm(card, device))
                .map(|h| h.memory_size)
                .or_else(|| {
                    r.get("memory", d.memory(card, device))
                        .map(|m| m.memory_size)
                })
                .and_then(bytes_from_mib);
            out.push(GpuInventory {
                index,
                uuid: die.map(|die| {
                    let words: Vec<String> =
                        die.soc_die.iter().map(|w| format!("{w:08X}")).collect();
                    format!("ASCEND-{}", words.join("-"))
                }),
                stable_id_source: if die.is_some() {
                    StableIdSource::DieId
                } else {
                    StableIdSource::Unspecified
                },
                name,
                model,
                architecture: chip.as_ref().and_then(|c| ffi::text(&c.chip_ver)),
                pci_bus_id: pci
                    .map(|p| pci_bus_id(p.domain.max(0) as u32, p.bus, p.device, p.function)),
                memory_total_bytes: memory,
                max_sm_clock_mhz: r.get(
                    "max AI core clock",
                    d.frequency(card, device, dcmi::FREQUENCY_AICORE_MAX),
                ),
                ecc_enabled: r
                    .get("HBM ECC", d.hbm_ecc(card, device))
                    .map(|e| e.enable_flag != 0),
                vendor: AcceleratorVendor::Huawei,
                kind: AcceleratorKind::Npu,
                ..GpuInventory::default()
            });
            self.devices.push((card, device));
        }
        out
    }

    fn sample(&mut self, inventory: &[GpuInventory], problems: &mut Problems) -> Vec<GpuSample> {
        let d = &self.dcmi;
        let mut out = Vec::with_capacity(inventory.len());
        for (inv, &(card, device)) in inventory.iter().zip(&self.devices) {
            let mut r = readout(inv.index, problems);
            let hbm = r.get("HBM", d.hbm(card, device));
            let (total, used) = match hbm {
                Some(h) => (
                    bytes_from_mib(h.memory_size),
                    bytes_from_mib(h.memory_usage),
                ),
                None => match r.get("memory", d.memory(card, device)) {
                    Some(m) => (
                        bytes_from_mib(m.memory_size),
                        m.memory_size
                            .checked_sub(m.memory_available)
                            .and_then(bytes_from_mib),
                    ),
                    None => (None, None),
                },
            };
            let health_code = r.get("health", d.health(card, device));
            let ecc = r.get("HBM ECC", d.hbm_ecc(card, device));
            // DCMI names which PCS carry HCCS for the 910B only.
            let is_910b = inv.model.as_deref().is_some_and(|m| m.starts_with("910B"));
            let stats = is_910b
                .then(|| r.get("HCCS statistics", d.hccs_statistics(card, device)))
                .flatten();
            let links = stats.map_or_else(Vec::new, |s| {
                dcmi::HCCS_910B_LINKS
                    .map(|i| DeviceLink {
                        kind: LinkKind::Hccs,
                        index: i as u32,
                        up: None,
                        tx_total: Some(u64::from(s.tx_cnt[i])),
                        rx_total: Some(u64::from(s.rx_cnt[i])),
                        crc_errors_total: Some(u64::from(s.crc_err_cnt[i])),
                        retries_total: Some(u64::from(s.retry_cnt[i])),
                    })
                    .collect()
            });
            let processes = r
                .get("processes", d.processes(card, device))
                .unwrap_or_default()
                .into_iter()
                .filter_map(|p| {
                    let pid = u32::try_from(p.pid).ok()?;
                    Some(GpuProcess {
                        pid,
                        used_memory_bytes: Some(p.memory_usage),
                        name: self.root.attribute(format!("/proc/{pid}/comm")),
                    })
                })
                .collect();
            out.push(GpuSample {
                index: inv.index,
                uuid: inv.uuid.clone(),
                utilization_percent: r
                    .get(
                        "AI core utilization",
                        d.utilization(card, device, dcmi::UTILIZATION_AICORE),
                    )
                    .and_then(percent),
                memory_utilization_percent: r
                    .get(
                        "HBM bandwidth utilization",
                        d.utilization(card, device, dcmi::UTILIZATION_HBM_BANDWIDTH),
                    )
                    .and_then(percent),
                memory_total_bytes: total,
                memory_used_bytes: used,
                memory_free_bytes: free_bytes(total, used),
                temperature_celsius: r
                    .get("temperature", d.temperature(card, device))
                    .and_then(celsius),
                power_milliwatts: r
                    .get("power", d.power(card, device))
                    .and_then(milliwatts_from_tenths),
                sm_clock_mhz: r.get(
                    "AI core clock",
                    d.frequency(card, device, dcmi::FREQUENCY_AICORE_CURRENT),
                ),
                ecc_corrected_volatile: ecc.map(|e| u64::from(e.single_bit_error_cnt)),
                ecc_uncorrected_volatile: ecc.map(|e| u64::from(e.double_bit_error_cnt)),
                ecc_corrected_aggregate: ecc.map(|e| u64::from(e.total_single_bit_error_cnt)),
                ecc_uncorrected_aggregate: ecc.map(|e| u64::from(e.total_double_bit_error_cnt)),
                retired_pages_single_bit: ecc.map(|e| e.single_bit_isolated_pages_cnt),
                retired_pages_double_bit: ecc.map(|e| e.double_bit_isolated_pages_cnt),
                health: health_code.map(health),
                health_code: health_code.map(i64::from),
                error_codes: r
                    .get("error codes", d.error_codes(card, device))
                    .unwrap_or_default()
                    .into_iter()
                    .map(u64::from)
                    .collect(),
                links,
                processes,
                ..GpuSample::default()
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_are_converted_at_the_boundary() {
        assert_eq!(milliwatts_from_tenths(3125), Some(312_500));
        assert_eq!(milliwatts_from_tenths(-1), None);
        assert_eq!(celsius(45), Some(45));
        assert_eq!(celsius(-300), None, "below absolute zero is no reading");
        assert_eq!(health(0), DeviceHealth::Ok);
        assert_eq!(health(1), DeviceHealth::Warning);
        assert_eq!(health(3), DeviceHealth::Critical);
    }
}
