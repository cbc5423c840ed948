//! Huawei DCMI (`libdcmi.so`), the Ascend driver's management interface.
//!
//! Our own declarations of the calls we make, from Huawei's public
//! `dcmi_interface_api.h` (Apache-2.0): devices are addressed by card and
//! device-in-card, every call returns 0 or a negative code.
//!
//! Layouts follow the newest public header: Ascend's mind-cluster,
//! `component/ascend-common/devmanager/dcmi/dcmi_interface_api.h`, read at
//! chaolihf/mind-cluster@1ad5268eee0abcbfc4aedb3b1abed6747a09bc9d (the
//! newest stored copy of Ascend/mind-cluster), checked against the driver's
//! own `hicann/driver` `src/custom/include/dcmi_interface_api.h` @
//! 999c25d7406900c7c55e747bbc59a8817f8d5650 and gpustack/runtime's ctypes
//! reader (`pydcmi/__init__.py` @ 7f505e714180aaac16882ec5ae60991f9efb388c).
//! Where they differ the larger layout wins. Every struct goes out with
//! [`Out`]'s headroom.

use std::ffi::{c_char, c_int, c_uint, c_ulong, c_ulonglong, c_void};

use super::{Library, Out, Plain, call, entry_points, text};

/// The device does not have this function.
pub const NOT_SUPPORTED: c_int = -8255;
/// Not available inside a container.
pub const NOT_SUPPORTED_IN_CONTAINER: c_int = -8013;
/// Not ready yet (the device is starting); worth asking again next cycle.
pub const NOT_READY: c_int = -8012;

pub const UTILIZATION_AICORE: c_int = 2;
/// HBM bandwidth in use (6 is capacity; NVML's memory utilization is bandwidth).
pub const UTILIZATION_HBM_BANDWIDTH: c_int = 10;
pub const FREQUENCY_AICORE_CURRENT: c_int = 7;
pub const FREQUENCY_AICORE_MAX: c_int = 9;
pub const DEVICE_TYPE_HBM: c_int = 2;
pub const DIE_NDIE: c_int = 0;
pub const MAIN_CMD_HCCS: c_int = 16;
pub const HCCS_STATISTIC_INFO: c_uint = 3;
/// PCS 1–7 carry HCCS on an Ascend 910B (`DCMI_HCCS_910B_PCS_NUM`).
pub const HCCS_910B_LINKS: std::ops::RangeInclusive<usize> = 1..=7;
const CHIP_NAME_LEN: usize = 32;
const HCCS_MAX_PCS: usize = 16;

/// `struct dcmi_chip_info_v2` (132 bytes); the v1 call fills only the
/// first 100 (`struct dcmi_chip_info`).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ChipInfo {
    pub chip_type: [u8; CHIP_NAME_LEN],
    pub chip_name: [u8; CHIP_NAME_LEN],
    pub chip_ver: [u8; CHIP_NAME_LEN],
    pub aicore_cnt: c_uint,
    /// Only in `dcmi_get_device_chip_info_v2`; zero from the older call.
    pub npu_name: [u8; CHIP_NAME_LEN],
}

/// `struct dcmi_pcie_info_all`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct PcieInfoAll {
    pub vendor_id: c_uint,
    pub subvendor_id: c_uint,
    pub device_id: c_uint,
    pub subdevice_id: c_uint,
    pub domain: c_int,
    pub bus: c_uint,
    pub device: c_uint,
    pub function: c_uint,
    pub reserve: [u8; 32],
}

/// `struct dcmi_hbm_info`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct HbmInfo {
    /// MiB ("MB" in the header).
    pub memory_size: c_ulonglong,
    pub freq: c_uint,
    /// MiB.
    pub memory_usage: c_ulonglong,
    pub temp: c_int,
    pub bandwidth_util_rate: c_uint,
}

/// `struct dcmi_get_memory_info_stru`: DDR devices (Ascend 310P) report
/// memory here instead of HBM.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct MemoryInfo {
    /// MiB.
    pub memory_size: c_ulonglong,
    /// MiB.
    pub memory_available: c_ulonglong,
    pub freq: c_uint,
    pub hugepagesize: c_ulong,
    pub hugepages_total: c_ulong,
    pub hugepages_free: c_ulong,
    pub utilization: c_uint,
    pub reserve: [u8; 60],
}

/// `struct dcmi_ecc_info`. Older headers (and the driver source's own
/// copy) end after `double_bit_isolated_pages_cnt` at 28 bytes; current
/// drivers write the two `next_isolated` counts too, 36 bytes.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct EccInfo {
    pub enable_flag: c_int,
    pub single_bit_error_cnt: c_uint,
    pub double_bit_error_cnt: c_uint,
    pub total_single_bit_error_cnt: c_uint,
    pub total_double_bit_error_cnt: c_uint,
    pub single_bit_isolated_pages_cnt: c_uint,
    pub double_bit_isolated_pages_cnt: c_uint,
    /// Pages with recorded errors to be isolated next (npu-smi's
    /// "Next-Isolated Pages"); zero from a driver of the 28-byte layout.
    pub single_bit_next_isolated_pages_cnt: c_uint,
    pub double_bit_next_isolated_pages_cnt: c_uint,
}

/// `struct dcmi_die_id`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct DieId {
    pub soc_die: [c_uint; 5],
}

/// `struct dcmi_proc_mem_info`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessMemory {
    pub pid: c_int,
    /// Bytes (an `unsigned long`: 64 bits on every Linux target we build).
    pub memory_usage: u64,
}

/// `struct dcmi_hccs_statistic_info` (sub-command 3; 5 is its u64 twin).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct HccsStatistics {
    pub tx_cnt: [c_uint; HCCS_MAX_PCS],
    pub rx_cnt: [c_uint; HCCS_MAX_PCS],
    pub crc_err_cnt: [c_uint; HCCS_MAX_PCS],
    pub retry_cnt: [c_uint; HCCS_MAX_PCS],
    pub reserved: [c_uint; 64],
}

// SAFETY: each is a `#[repr(C)]` struct of integers and arrays of them.
unsafe impl Plain for ChipInfo {}
unsafe impl Plain for PcieInfoAll {}
unsafe impl Plain for HbmInfo {}
unsafe impl Plain for MemoryInfo {}
unsafe impl Plain for EccInfo {}
unsafe impl Plain for DieId {}
unsafe impl Plain for HccsStatistics {}

entry_points! {
    pub struct Dcmi {
        init: ["dcmi_init"] fn() -> c_int,
        version: ["dcmi_get_dcmi_version"] fn(*mut c_char, c_int) -> c_int,
        card_list: ["dcmi_get_card_list", "dcmi_get_card_num_list"] fn(*mut c_int, *mut c_int, c_int) -> c_int,
        devices_in_card: ["dcmi_get_device_num_in_card"] fn(c_int, *mut c_int) -> c_int,
        logic_id: ["dcmi_get_device_logic_id"] fn(*mut c_int, c_int, c_int) -> c_int,
        chip_info_v2: ["dcmi_get_device_chip_info_v2"] fn(c_int, c_int, *mut ChipInfo) -> c_int,
        chip_info: ["dcmi_get_device_chip_info"] fn(c_int, c_int, *mut ChipInfo) -> c_int,
        pcie_info: ["dcmi_get_device_pcie_info_v2"] fn(c_int, c_int, *mut PcieInfoAll) -> c_int,
        die_id: ["dcmi_get_device_die_v2"] fn(c_int, c_int, c_int, *mut DieId) -> c_int,
        utilization: ["dcmi_get_device_utilization_rate"] fn(c_int, c_int, c_int, *mut c_uint) -> c_int,
        hbm: ["dcmi_get_device_hbm_info"] fn(c_int, c_int, *mut HbmInfo) -> c_int,
        memory: ["dcmi_get_device_memory_info_v3"] fn(c_int, c_int, *mut MemoryInfo) -> c_int,
        temperature: ["dcmi_get_device_temperature"] fn(c_int, c_int, *mut c_int) -> c_int,
        power: ["dcmi_get_device_power_info"] fn(c_int, c_int, *mut c_int) -> c_int,
        frequency: ["dcmi_get_device_frequency"] fn(c_int, c_int, c_int, *mut c_uint) -> c_int,
        health: ["dcmi_get_device_health"] fn(c_int, c_int, *mut c_uint) -> c_int,
        error_codes: ["dcmi_get_device_errorcode_v2"] fn(c_int, c_int, *mut c_int, *mut c_uint, c_uint) -> c_int,
        ecc: ["dcmi_get_device_ecc_info"] fn(c_int, c_int, c_int, *mut EccInfo) -> c_int,
        processes: ["dcmi_get_device_resource_info"] fn(c_int, c_int, *mut ProcessMemory, *mut c_int) -> c_int,
        device_info: ["dcmi_get_device_info"] fn(c_int, c_int, c_int, c_uint, *mut c_void, *mut c_uint) -> c_int,
    }
}

pub type Status = super::Status<c_int>;

/// "This device does not have that": a reading to leave absent, not a fault.
pub fn unsupported(status: Status) -> bool {
    matches!(
        status,
        Status::Missing | Status::Code(NOT_SUPPORTED | NOT_SUPPORTED_IN_CONTAINER)
    )
}

/// DCMI has no error-string call: its codes, said.
pub fn describe(status: Status) -> String {
    match status {
        Status::Missing => "not in this libdcmi.so".to_owned(),
        Status::Code(NOT_READY) => "DCMI error -8012 (device not ready)".to_owned(),
        Status::Code(code) => format!("DCMI error {code}"),
    }
}

pub type Answer<T> = Result<T, Status>;

impl Dcmi {
    pub fn open(library: Library) -> Result<Self, Status> {
        let mut dcmi = Self::resolve(library);
        call!(dcmi.init,)?;
        let mut buf = [0u8; 64];
        let version = call!(dcmi.version, buf.as_mut_ptr().cast(), buf.len() as c_int)
            .ok()
            .and_then(|()| text(&buf));
        dcmi.library.set_version(version);
        Ok(dcmi)
    }

    /// Every card the driver knows, each with its number of devices.
    pub fn cards(&self) -> Answer<Vec<(c_int, Answer<c_int>)>> {
        let mut cards = [0 as c_int; 64];
        let mut count: c_int = 0;
        call!(
            self.card_list,
            &mut count,
            cards.as_mut_ptr(),
            cards.len() as c_int
        )?;
        Ok(cards
            .iter()
            .take(count.clamp(0, 64) as usize)
            .map(|&card| {
                let mut n: c_int = 0;
                // No card carries more than a handful of chips (910C: 2).
                let devices = call!(self.devices_in_card, card, &mut n).map(|()| n.clamp(0, 16));
                (card, devices)
            })
            .collect())
    }

    pub fn logic_id(&self, card: c_int, device: c_int) -> Answer<u32> {
        let mut id: c_int = -1;
        call!(self.logic_id, &mut id, card, device)?;
        u32::try_from(id).map_err(|_| Status::Code(id))
    }

    // Each struct below goes out as an `Out`: the newest layout plus
    // headroom, whatever the driver's version.

    pub fn chip_info(&self, card: c_int, device: c_int) -> Answer<ChipInfo> {
        let mut info = Out::zeroed();
        match call!(self.chip_info_v2, card, device, info.ptr()) {
            Err(Status::Missing) => call!(self.chip_info, card, device, info.ptr())?,
            other => other?,
        }
        Ok(info.get())
    }

    pub fn pcie_info(&self, card: c_int, device: c_int) -> Answer<PcieInfoAll> {
        let mut info = Out::zeroed();
        call!(self.pcie_info, card, device, info.ptr())?;
        Ok(info.get())
    }

    pub fn die_id(&self, card: c_int, device: c_int) -> Answer<DieId> {
        let mut die = Out::zeroed();
        call!(self.die_id, card, device, DIE_NDIE, die.ptr())?;
        Ok(die.get())
    }

    pub fn utilization(&self, card: c_int, device: c_int, kind: c_int) -> Answer<u32> {
        let mut rate: c_uint = 0;
        call!(self.utilization, card, device, kind, &mut rate)?;
        Ok(rate)
    }

    pub fn hbm(&self, card: c_int, device: c_int) -> Answer<HbmInfo> {
        let mut info = Out::zeroed();
        call!(self.hbm, card, device, info.ptr())?;
        Ok(info.get())
    }

    pub fn memory(&self, card: c_int, device: c_int) -> Answer<MemoryInfo> {
        let mut info = Out::zeroed();
        call!(self.memory, card, device, info.ptr())?;
        Ok(info.get())
    }

    pub fn temperature(&self, card: c_int, device: c_int) -> Answer<i32> {
        let mut t: c_int = 0;
        call!(self.temperature, card, device, &mut t)?;
        Ok(t)
    }

    /// In tenths of a watt.
    pub fn power(&self, card: c_int, device: c_int) -> Answer<i32> {
        let mut p: c_int = 0;
        call!(self.power, card, device, &mut p)?;
        Ok(p)
    }

    pub fn frequency(&self, card: c_int, device: c_int, kind: c_int) -> Answer<u32> {
        let mut mhz: c_uint = 0;
        call!(self.frequency, card, device, kind, &mut mhz)?;
        Ok(mhz)
    }

    pub fn health(&self, card: c_int, device: c_int) -> Answer<u32> {
        let mut h: c_uint = 0;
        call!(self.health, card, device, &mut h)?;
        Ok(h)
    }

    pub fn error_codes(&self, card: c_int, device: c_int) -> Answer<Vec<u32>> {
        let mut codes = [0 as c_uint; 128];
        let mut count: c_int = 0;
        call!(
            self.error_codes,
            card,
            device,
            &mut count,
            codes.as_mut_ptr(),
            codes.len() as c_uint
        )?;
        Ok(codes[..count.clamp(0, 128) as usize].to_vec())
    }

    /// A driver of the old 28-byte layout leaves the two `next_isolated`
    /// counts zero; the agent reads none of them as a fault.
    pub fn hbm_ecc(&self, card: c_int, device: c_int) -> Answer<EccInfo> {
        let mut info = Out::zeroed();
        call!(self.ecc, card, device, DEVICE_TYPE_HBM, info.ptr())?;
        Ok(info.get())
    }

    pub fn processes(&self, card: c_int, device: c_int) -> Answer<Vec<ProcessMemory>> {
        let mut procs = [ProcessMemory::default(); 64];
        let mut count: c_int = procs.len() as c_int;
        call!(self.processes, card, device, procs.as_mut_ptr(), &mut count)?;
        Ok(procs[..count.clamp(0, 64) as usize].to_vec())
    }

    pub fn hccs_statistics(&self, card: c_int, device: c_int) -> Answer<HccsStatistics> {
        let mut stats = Out::<HccsStatistics>::zeroed();
        // The size the layout asks for; the headroom is for a driver that ignores it.
        let mut size = std::mem::size_of::<HccsStatistics>() as c_uint;
        call!(
            self.device_info,
            card,
            device,
            MAIN_CMD_HCCS,
            HCCS_STATISTIC_INFO,
            stats.ptr().cast(),
            &mut size
        )?;
        Ok(stats.get())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::{offset_of, size_of};

    /// Sizes and offsets as the header lays them out on 64-bit Linux.
    #[test]
    fn structs_match_the_vendor_layout() {
        assert_eq!(size_of::<ChipInfo>(), 32 * 3 + 4 + 32);
        assert_eq!(offset_of!(ChipInfo, npu_name), 100);
        // "the size of dcmi_pcie_info_all is 64"
        assert_eq!(size_of::<PcieInfoAll>(), 64);
        assert_eq!(offset_of!(PcieInfoAll, bus), 20);
        assert_eq!(size_of::<HbmInfo>(), 32);
        assert_eq!(offset_of!(HbmInfo, memory_usage), 16);
        assert_eq!(offset_of!(HbmInfo, temp), 24);
        // The header's comment says 96 bytes, true only with a 32-bit long.
        assert_eq!(size_of::<MemoryInfo>(), 112);
        assert_eq!(offset_of!(MemoryInfo, utilization), 48);
        assert_eq!(size_of::<EccInfo>(), 36);
        assert_eq!(offset_of!(EccInfo, double_bit_isolated_pages_cnt), 24);
        assert_eq!(offset_of!(EccInfo, double_bit_next_isolated_pages_cnt), 32);
        assert_eq!(size_of::<DieId>(), 20);
        assert_eq!(size_of::<ProcessMemory>(), 16);
        assert_eq!(size_of::<HccsStatistics>(), 16 * 4 * 4 + 64 * 4);
    }

    #[test]
    fn missing_and_not_supported_read_as_unsupported() {
        assert!(unsupported(Status::Missing));
        assert!(unsupported(Status::Code(-8255)));
        assert!(unsupported(Status::Code(-8013)));
        assert!(!unsupported(Status::Code(-8012)));
        assert!(!unsupported(Status::Code(-8005)));
        assert_eq!(
            describe(Status::Code(-8012)),
            "DCMI error -8012 (device not ready)"
        );
    }
}
