//! MetaX GPUs through MXSML.

use std::path::Path;

use suanli_protocol::model::{
    AcceleratorKind, AcceleratorLibrary, AcceleratorVendor, GpuInventory, GpuSample, StableIdSource,
};

use super::{
    Driver, Problems, Readout,
    ffi::{
        self, Library,
        mxsml::{self, Mxsml, Status},
    },
    free_bytes, pci_bus_id, percent,
};

const LIBRARY: &str = "libmxsml.so";
/// Where MetaX's driver and MACA SDK install it.
const DIRS: &[&str] = &["/opt/mxdriver/lib", "/opt/maca/lib", "/opt/mxn100/lib"];

pub fn open(given: Option<&Path>) -> Result<Box<dyn Driver>, String> {
    let path = ffi::locate(given, LIBRARY, DIRS).map_err(|e| e.to_string())?;
    let library = Library::open(AcceleratorVendor::Metax, &path).map_err(|e| e.to_string())?;
    let mxsml = Mxsml::open(library).map_err(|status| match status {
        Status::Missing => format!("{} has no mxSmlInit", path.display()),
        Status::Code(code) => format!("mxSmlInit failed ({code}): MetaX driver not loaded"),
    })?;
    Ok(Box::new(Metax {
        mxsml,
        devices: Vec::new(),
    }))
}

struct Metax {
    mxsml: Mxsml,
    /// (device ID, brand) of each inventory entry, in order.
    devices: Vec<(u32, u32)>,
}

/// MXSML reports temperature in hundredths of a degree.
pub fn celsius_from_centi(centi: i32) -> Option<u32> {
    u32::try_from(centi / 100).ok().filter(|_| centi >= 0)
}

/// …memory in KiB…
pub fn bytes_from_kib(kib: i64) -> Option<u64> {
    u64::try_from(kib).ok()?.checked_mul(1024)
}

/// …and board power per supply rail, in mW: the board draws their sum.
pub fn board_milliwatts(rails: &[mxsml::RailPower]) -> Option<u32> {
    (!rails.is_empty()).then(|| {
        rails
            .iter()
            .map(|r| r.power)
            .fold(0u32, u32::saturating_add)
    })
}

impl Driver for Metax {
    fn library(&self) -> &AcceleratorLibrary {
        self.mxsml.library().info()
    }

    fn inventory(&mut self, problems: &mut Problems) -> Vec<GpuInventory> {
        let m = &self.mxsml;
        let describe = |status| m.describe(status);
        let Some(count) = problems.needed("device count", m.count(), describe) else {
            return Vec::new();
        };
        let mut devices = Vec::new();
        let mut out = Vec::new();
        for index in 0..count {
            let mut r = Readout {
                label: "GPU",
                device: index,
                problems,
                unsupported: mxsml::unsupported,
                describe: &describe,
            };
            let Some(info) = r.get("device info", m.device_info(index)) else {
                continue;
            };
            let model = ffi::text(&info.device_name);
            let uuid = ffi::text(&info.uuid);
            let memory = r.get("memory", m.memory(info.device_id));
            out.push(GpuInventory {
                index,
                stable_id_source: if uuid.is_some() {
                    StableIdSource::Uuid
                } else {
                    StableIdSource::Unspecified
                },
                uuid,
                name: model.as_ref().map(|m| format!("MetaX {m}")),
                model,
                pci_bus_id: mxsml::parse_bdf(&info).map(|(d, b, dev, f)| pci_bus_id(d, b, dev, f)),
                memory_total_bytes: memory.and_then(|m| bytes_from_kib(m.vram_total)),
                vendor: AcceleratorVendor::Metax,
                kind: AcceleratorKind::Gpu,
                ..GpuInventory::default()
            });
            devices.push((info.device_id, info.brand));
        }
        self.devices = devices;
        out
    }

    fn sample(&mut self, inventory: &[GpuInventory], problems: &mut Problems) -> Vec<GpuSample> {
        let m = &self.mxsml;
        let describe = |status| m.describe(status);
        let mut out = Vec::with_capacity(inventory.len());
        for (inv, &(device, brand)) in inventory.iter().zip(&self.devices) {
            let mut r = Readout {
                label: "GPU",
                device: inv.index,
                problems,
                unsupported: mxsml::unsupported,
                describe: &describe,
            };
            let memory = r.get("memory", m.memory(device));
            let total = memory.and_then(|m| bytes_from_kib(m.vram_total));
            let used = memory.and_then(|m| bytes_from_kib(m.vram_use));
            out.push(GpuSample {
                index: inv.index,
                uuid: inv.uuid.clone(),
                utilization_percent: r
                    .get("utilization", m.utilization(device, brand))
                    .and_then(|u| u32::try_from(u).ok())
                    .and_then(percent),
                memory_total_bytes: total,
                memory_used_bytes: used,
                memory_free_bytes: free_bytes(total, used),
                temperature_celsius: r
                    .get("temperature", m.temperature(device))
                    .and_then(celsius_from_centi),
                power_milliwatts: r
                    .get("board power", m.board_power(device))
                    .and_then(|rails| board_milliwatts(&rails)),
                sm_clock_mhz: r.get("clock", m.clock(device, brand)),
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
        assert_eq!(celsius_from_centi(4250), Some(42));
        assert_eq!(celsius_from_centi(-100), None);
        assert_eq!(bytes_from_kib(64 << 20), Some(64 << 30));
        assert_eq!(bytes_from_kib(-1), None);
        let rail = |power| mxsml::RailPower {
            voltage: 12_000,
            current: 0,
            power,
        };
        assert_eq!(
            board_milliwatts(&[rail(150_000), rail(45_500)]),
            Some(195_500)
        );
        assert_eq!(board_milliwatts(&[]), None);
    }
}
