//! Hygon DCU/HCU and AMD Instinct through ROCm SMI.
//!
//! Hygon ships its own build of AMD's `librocm_smi64.so` (under
//! `/opt/hyhal/lib`), so one module reads both; which vendor's devices it
//! reports is decided by the PCI bus, and the build by Hygon's own calls.

use std::path::Path;

use suanli_protocol::model::{
    AcceleratorLibrary, AcceleratorVendor, GpuInventory, GpuSample, StableIdSource,
};

use super::{
    Driver, Problems, Readout,
    ffi::{
        self, Library,
        rsmi::{self, Rsmi, Status},
    },
    free_bytes, pci_bus_id, percent,
};

const LIBRARY: &str = "librocm_smi64.so";
const HYGON_DIRS: &[&str] = &["/opt/hyhal/lib", "/opt/dtk/lib", "/opt/rocm/lib"];
const AMD_DIRS: &[&str] = &["/opt/rocm/lib", "/opt/rocm/lib64"];

pub fn open(vendor: AcceleratorVendor, given: Option<&Path>) -> Result<Box<dyn Driver>, String> {
    let dirs = match vendor {
        AcceleratorVendor::Hygon => HYGON_DIRS,
        _ => AMD_DIRS,
    };
    let path = ffi::locate(given, LIBRARY, dirs).map_err(|e| e.to_string())?;
    let library = Library::open(vendor, &path).map_err(|e| e.to_string())?;
    let rsmi = Rsmi::open(library).map_err(|status| match status {
        Status::Missing => format!("{} has no rsmi_init", path.display()),
        Status::Code(code) => format!("rsmi_init failed ({code}): amdgpu/hydcu driver not loaded"),
    })?;
    if vendor == AcceleratorVendor::Hygon && !rsmi.is_hygon_build() {
        tracing::info!(path = %path.display(), "reading Hygon devices through AMD's rocm_smi build");
    }
    Ok(Box::new(Rocm { rsmi, vendor }))
}

struct Rocm {
    rsmi: Rsmi,
    vendor: AcceleratorVendor,
}

/// rocm_smi reports power in microwatts.
pub fn milliwatts_from_micro(microwatts: u64) -> Option<u32> {
    u32::try_from(microwatts / 1000).ok()
}

/// …and temperature in millidegrees.
pub fn celsius_from_milli(millidegrees: i64) -> Option<u32> {
    u32::try_from(millidegrees / 1000).ok()
}

/// The PCI address packed in `rsmi_dev_pci_id_get`'s answer.
pub fn pci_address(id: u64) -> String {
    pci_bus_id(
        (id >> 32) as u32,
        ((id >> 8) & 0xff) as u32,
        ((id >> 3) & 0x1f) as u32,
        (id & 0x7) as u32,
    )
}

/// Hygon device IDs whose marketing name the library may not know.
fn hygon_model(device_id: u16) -> Option<&'static str> {
    match device_id {
        0x6210 => Some("K100_AI"),
        0x54b7 => Some("Z100"),
        _ => None,
    }
}

impl Driver for Rocm {
    fn library(&self) -> &AcceleratorLibrary {
        self.rsmi.library().info()
    }

    fn inventory(&mut self, problems: &mut Problems) -> Vec<GpuInventory> {
        let rsmi = &self.rsmi;
        let Some(count) = problems.needed("device count", rsmi.count(), |s| rsmi.describe(s))
        else {
            return Vec::new();
        };
        let prefix = match self.vendor {
            AcceleratorVendor::Hygon => "HYGON",
            _ => "AMD",
        };
        (0..count)
            .map(|dv| {
                let describe = |status| rsmi.describe(status);
                let mut r = Readout {
                    label: "device",
                    device: dv,
                    problems,
                    unsupported: rsmi::unsupported,
                    describe: &describe,
                };
                let device_id = r.get("device ID", rsmi.device_id(dv));
                let model = r.get("name", rsmi.name(dv)).flatten().or_else(|| {
                    device_id
                        .filter(|_| self.vendor == AcceleratorVendor::Hygon)
                        .and_then(hygon_model)
                        .map(str::to_owned)
                });
                let serial = r.get("serial", rsmi.serial(dv)).flatten();
                let unique = r.get("unique ID", rsmi.unique_id(dv)).filter(|&u| u != 0);
                let (uuid, source) = match (unique, &serial) {
                    (Some(u), _) => (Some(format!("{prefix}-{u:016X}")), StableIdSource::Uuid),
                    (None, Some(s)) => (Some(format!("{prefix}-SN-{s}")), StableIdSource::Serial),
                    (None, None) => (None, StableIdSource::Unspecified),
                };
                GpuInventory {
                    index: dv,
                    uuid,
                    stable_id_source: source,
                    name: model.as_ref().map(|m| match self.vendor {
                        AcceleratorVendor::Hygon if !m.starts_with("Hygon") => {
                            format!("Hygon {m}")
                        }
                        _ => m.clone(),
                    }),
                    model,
                    serial,
                    pci_bus_id: r.get("PCI address", rsmi.pci_id(dv)).map(pci_address),
                    memory_total_bytes: r.get("memory", rsmi.memory_total(dv)),
                    power_limit_milliwatts: r
                        .get("power cap", rsmi.power_cap(dv))
                        .and_then(milliwatts_from_micro),
                    vendor: self.vendor,
                    kind: self.vendor.kind(),
                    ..GpuInventory::default()
                }
            })
            .collect()
    }

    fn sample(&mut self, inventory: &[GpuInventory], problems: &mut Problems) -> Vec<GpuSample> {
        let rsmi = &self.rsmi;
        inventory
            .iter()
            .map(|inv| {
                let dv = inv.index;
                let describe = |status| rsmi.describe(status);
                let mut r = Readout {
                    label: "device",
                    device: dv,
                    problems,
                    unsupported: rsmi::unsupported,
                    describe: &describe,
                };
                let total = r.get("memory", rsmi.memory_total(dv));
                let used = r.get("memory used", rsmi.memory_used(dv));
                // Instinct cards have no edge sensor; the junction is what throttles.
                let temperature = match rsmi.temperature(dv, rsmi::TEMPERATURE_JUNCTION) {
                    Err(s) if rsmi::unsupported(s) => rsmi.temperature(dv, rsmi::TEMPERATURE_EDGE),
                    other => other,
                };
                let ecc = r.get("memory ECC", rsmi.memory_ecc(dv));
                GpuSample {
                    index: dv,
                    uuid: inv.uuid.clone(),
                    utilization_percent: r
                        .get("busy percent", rsmi.busy_percent(dv))
                        .and_then(percent),
                    memory_total_bytes: total,
                    memory_used_bytes: used,
                    memory_free_bytes: free_bytes(total, used),
                    temperature_celsius: r
                        .get("temperature", temperature)
                        .and_then(celsius_from_milli),
                    power_milliwatts: r
                        .get("power", rsmi.power(dv))
                        .and_then(milliwatts_from_micro),
                    ecc_corrected_volatile: ecc.map(|e| e.correctable),
                    ecc_uncorrected_volatile: ecc.map(|e| e.uncorrectable),
                    ..GpuSample::default()
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_are_converted_at_the_boundary() {
        assert_eq!(milliwatts_from_micro(77_000_000), Some(77_000));
        assert_eq!(celsius_from_milli(35_000), Some(35));
        assert_eq!(celsius_from_milli(-5_000), None);
        // domain 0, bus 0x1b, device 0, function 0
        assert_eq!(pci_address(0x1b << 8), "00000000:1B:00.0");
        assert_eq!(
            pci_address((1 << 32) | (0xbd << 8) | (3 << 3) | 1),
            "00000001:BD:03.1"
        );
        assert_eq!(hygon_model(0x6210), Some("K100_AI"));
    }
}
