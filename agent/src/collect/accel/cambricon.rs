//! Cambricon MLUs through CNDev.

use std::{ffi::c_int, path::Path};

use suanli_protocol::model::{
    AcceleratorKind, AcceleratorLibrary, AcceleratorVendor, DeviceHealth, GpuInventory, GpuSample,
    StableIdSource,
};

use super::{
    Driver, Problems, Readout, bytes_from_mib,
    ffi::{
        self, Library,
        cndev::{self, Cndev, Status},
    },
    free_bytes, pci_bus_id, percent,
};

const LIBRARY: &str = "libcndev.so";
/// Where the Neuware SDK installs it.
const DIRS: &[&str] = &["/usr/local/neuware/lib64", "/usr/local/neuware/lib"];

pub fn open(given: Option<&Path>) -> Result<Box<dyn Driver>, String> {
    let path = ffi::locate(given, LIBRARY, DIRS).map_err(|e| e.to_string())?;
    let library = Library::open(AcceleratorVendor::Cambricon, &path).map_err(|e| e.to_string())?;
    let cndev = Cndev::open(library).map_err(|status| match status {
        Status::Missing => format!("{} has no cndevInit", path.display()),
        Status::Code(code) => format!("cndevInit failed ({code}): MLU driver not loaded"),
    })?;
    Ok(Box::new(Cambricon {
        cndev,
        handles: Vec::new(),
    }))
}

struct Cambricon {
    cndev: Cndev,
    /// The handle of each inventory entry, in order.
    handles: Vec<c_int>,
}

/// CNDev reports power in watts.
pub fn milliwatts_from_watts(watts: i32) -> Option<u32> {
    u32::try_from(watts).ok()?.checked_mul(1000)
}

/// CNDev's memory figures: signed MiB.
pub fn bytes_from_signed_mib(mib: i64) -> Option<u64> {
    u64::try_from(mib).ok().and_then(bytes_from_mib)
}

/// The device's verdict: in problem, or a driver in a boot or reset error,
/// is critical; a driver still starting is a warning.
pub fn health(device_state: i32, driver_state: i32) -> DeviceHealth {
    match (device_state, driver_state) {
        (0, _) | (_, 5 | 7 | 8) => DeviceHealth::Critical,
        (_, 4) => DeviceHealth::Ok,
        _ => DeviceHealth::Warning,
    }
}

impl Cambricon {
    fn readout<'a>(
        &'a self,
        device: u32,
        problems: &'a mut Problems,
        describe: &'a dyn Fn(Status) -> String,
    ) -> Readout<'a, Status> {
        Readout {
            label: "MLU",
            device,
            problems,
            unsupported: cndev::unsupported,
            describe,
        }
    }
}

impl Driver for Cambricon {
    fn library(&self) -> &AcceleratorLibrary {
        self.cndev.library().info()
    }

    fn inventory(&mut self, problems: &mut Problems) -> Vec<GpuInventory> {
        let c = &self.cndev;
        let describe = |status| c.describe(status);
        let Some(count) = problems.needed("device count", c.count(), describe) else {
            return Vec::new();
        };
        let mut handles = Vec::new();
        let mut out = Vec::new();
        for index in 0..count {
            let mut r = self.readout(index, problems, &describe);
            let Some(handle) = r.get("handle", c.handle(index)) else {
                continue;
            };
            let model = r.get("name", c.name(handle)).flatten();
            let serial = r
                .get("serial", c.serial(handle))
                .filter(|&sn| sn != 0)
                .map(|sn| format!("{sn:x}"));
            let uuid = r.get("UUID", c.uuid(handle)).flatten();
            let (uuid, source) = match (uuid, &serial) {
                (Some(u), _) => (Some(u), StableIdSource::Uuid),
                (None, Some(sn)) => (Some(format!("CAMBRICON-SN-{sn}")), StableIdSource::Serial),
                (None, None) => (None, StableIdSource::Unspecified),
            };
            let pcie = r.get("PCIe info", c.pcie(handle));
            let power = r.get("power", c.power(handle));
            let frequency = r.get("frequency", c.frequency(handle));
            out.push(GpuInventory {
                index,
                uuid,
                stable_id_source: source,
                name: model.as_ref().map(|m| format!("Cambricon {m}")),
                model,
                serial,
                pci_bus_id: pcie.map(|p| pci_bus_id(p.domain, p.bus, p.device, p.function)),
                memory_total_bytes: r
                    .get("memory", c.memory(handle))
                    .and_then(|m| bytes_from_signed_mib(m.physical_memory_total)),
                power_limit_milliwatts: power.and_then(|p| milliwatts_from_watts(p.cap)),
                max_sm_clock_mhz: frequency
                    .and_then(|f| u32::try_from(f.board_freq_range[1]).ok())
                    .filter(|&mhz| mhz > 0),
                vendor: AcceleratorVendor::Cambricon,
                kind: AcceleratorKind::Mlu,
                ..GpuInventory::default()
            });
            handles.push(handle);
        }
        self.handles = handles;
        out
    }

    fn sample(&mut self, inventory: &[GpuInventory], problems: &mut Problems) -> Vec<GpuSample> {
        let c = &self.cndev;
        let describe = |status| c.describe(status);
        let mut out = Vec::with_capacity(inventory.len());
        for (inv, &handle) in inventory.iter().zip(&self.handles) {
            let mut r = self.readout(inv.index, problems, &describe);
            let memory = r.get("memory", c.memory(handle));
            let total = memory.and_then(|m| bytes_from_signed_mib(m.physical_memory_total));
            let used = memory.and_then(|m| bytes_from_signed_mib(m.physical_memory_used));
            let health = r.get("health", c.health(handle));
            let ecc = r.get("ECC", c.ecc(handle));
            out.push(GpuSample {
                index: inv.index,
                uuid: inv.uuid.clone(),
                utilization_percent: r
                    .get("utilization", c.utilization(handle))
                    .and_then(|u| u32::try_from(u).ok())
                    .and_then(percent),
                memory_total_bytes: total,
                memory_used_bytes: used,
                memory_free_bytes: free_bytes(total, used),
                temperature_celsius: r
                    .get("temperature", c.temperature(handle))
                    .and_then(|t| u32::try_from(t.chip).ok()),
                power_milliwatts: r
                    .get("power", c.power(handle))
                    .and_then(|p| milliwatts_from_watts(p.usage)),
                sm_clock_mhz: r
                    .get("frequency", c.frequency(handle))
                    .and_then(|f| u32::try_from(f.board_freq).ok()),
                ecc_corrected_volatile: ecc.map(|e| e.corrected_error),
                ecc_uncorrected_volatile: ecc.map(|e| e.uncorrected_error),
                health: health.map(|h| self::health(h.device_state, h.driver_state)),
                health_code: health.map(|h| i64::from(h.driver_state)),
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
        assert_eq!(milliwatts_from_watts(75), Some(75_000));
        assert_eq!(milliwatts_from_watts(-1), None);
        assert_eq!(bytes_from_signed_mib(49_152), Some(48 << 30));
        assert_eq!(bytes_from_signed_mib(-1), None);
        assert_eq!(health(1, 4), DeviceHealth::Ok);
        assert_eq!(health(0, 4), DeviceHealth::Critical);
        assert_eq!(health(1, 7), DeviceHealth::Critical);
        assert_eq!(health(1, 2), DeviceHealth::Warning);
    }
}
