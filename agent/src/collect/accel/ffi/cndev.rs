//! Cambricon CNDev (`libcndev.so`), the MLU driver's management library.
//!
//! Our own declarations of the calls we make, from Cambricon's public
//! `cndev.h` (Apache-2.0 repositories): out-parameter first, device handle
//! second, `cndevRet_t` back. Most structs open with a `version` the caller
//! sets; the library refuses a version it does not know with 3, so the
//! agent asks with the oldest that has the fields it reads.
//!
//! Layouts follow the newest public header, Cambricon's
//! cambricon-k8s-device-plugin, `device-plugin/pkg/cndev/include/cndev.h`
//! @ 0c4f8f98a5f41e26d80c0fdd84dd256008c36346 (`CNDEV_VERSION_6`). Most
//! structs grew across driver versions (temperature, frequency, health,
//! ECC, power), so every one goes out with [`Out`]'s headroom.

use std::ffi::{c_char, c_int, c_uint};

use super::{Library, Out, Plain, call, entry_points};

pub const NOT_SUPPORTED: c_int = 10;
pub const INVALID_DEVICE: c_int = 6;
/// The library does not know the struct version asked with.
pub const UNSUPPORTED_API_VERSION: c_int = 3;
/// The version every struct here is asked with (`CNDEV_VERSION_5`, as
/// Cambricon's own samples ask): it has every field read here. A library
/// that refuses it answers 3, and that is reported, not guessed around.
pub const VERSION: c_int = 5;
pub const UUID_SIZE: usize = 37;

/// `cndevCardInfo_t`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct CardInfo {
    pub version: c_int,
    pub number: c_uint,
}

/// `cndevUUID_t`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct Uuid {
    pub version: c_int,
    pub uuid: [u8; UUID_SIZE],
    pub ncs_uuid64: u64,
}

/// `cndevCardSN_t`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct CardSn {
    pub version: c_int,
    pub sn: u64,
    pub mother_board_sn: u64,
}

/// `cndevPCIeInfoV2_t`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct PcieInfo {
    pub subsystem_id: u32,
    pub device_id: u32,
    pub vendor: u16,
    pub subsystem_vendor: u16,
    pub domain: u32,
    pub bus: u32,
    pub device: u32,
    pub function: u32,
    pub module_id: u16,
    pub slot_id: u16,
    pub reserved: [u32; 8],
}

/// `cndevUtilizationInfo_t`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct Utilization {
    pub version: c_int,
    pub average_core_utilization: c_int,
    pub core_utilization: [c_int; 80],
}

/// `cndevMemoryInfoV2_t`. No `version` field.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct MemoryV2 {
    /// MiB ("MB" in the header).
    pub physical_memory_total: i64,
    /// MiB.
    pub physical_memory_used: i64,
    pub reserved_memory: i64,
    pub virtual_memory_total: i64,
    pub virtual_memory_used: i64,
    pub global_memory: u64,
    pub reserved: [u64; 16],
}

/// `cndevTemperatureInfo_t`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct Temperature {
    pub version: c_int,
    pub board: c_int,
    pub cluster: [c_int; 20],
    pub memory_die: [c_int; 8],
    pub chip: c_int,
    pub air_inlet: c_int,
    pub air_outlet: c_int,
    pub memory: c_int,
    pub video_input: c_int,
    pub cpu: c_int,
    pub isp: c_int,
}

/// `cndevDevicePowerInfo_t`. Watts; no `version` field.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct Power {
    pub usage: c_int,
    pub cap: c_int,
    pub machine: c_int,
    pub tdp: c_int,
    pub max_power: c_int,
    pub reserved: [c_int; 16],
}

/// `cndevFrequencyInfo_t`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct Frequency {
    pub version: c_int,
    /// MHz.
    pub board_freq: c_int,
    pub ddr_freq: c_int,
    pub overtemp_dfs_flag: u8,
    pub fast_dfs_flag: u8,
    pub mlu_cluster_freq_count: u16,
    pub mlu_cluster_freq: [u16; 20],
    pub board_default_freq: c_int,
    /// Minimum and maximum operating frequency, MHz.
    pub board_freq_range: [c_int; 2],
}

/// `cndevCardHealthState_t`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct HealthState {
    pub version: c_int,
    pub health: c_int,
    /// 0: the device is in problem, 1: good.
    pub device_state: c_int,
    /// 4: running; 5 and 7: boot or reset errors; 8: unknown error.
    pub driver_state: c_int,
}

/// `cndevECCInfo_t`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct Ecc {
    pub version: c_int,
    pub one_bit_error: u64,
    pub multiple_one_error: u64,
    pub multiple_error: u64,
    pub multiple_multiple_error: u64,
    pub corrected_error: u64,
    pub uncorrected_error: u64,
    pub total_error: u64,
    pub address_forbidden_error: u64,
}

/// `cndevLibVersionInfo_t`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct LibVersion {
    pub version: c_int,
    pub major: c_uint,
    pub minor: c_uint,
    pub build: c_uint,
}

// SAFETY: each is a `#[repr(C)]` struct of integers and arrays of them.
unsafe impl Plain for CardInfo {}
unsafe impl Plain for Uuid {}
unsafe impl Plain for CardSn {}
unsafe impl Plain for PcieInfo {}
unsafe impl Plain for Utilization {}
unsafe impl Plain for MemoryV2 {}
unsafe impl Plain for Temperature {}
unsafe impl Plain for Power {}
unsafe impl Plain for Frequency {}
unsafe impl Plain for HealthState {}
unsafe impl Plain for Ecc {}
unsafe impl Plain for LibVersion {}

entry_points! {
    pub struct Cndev {
        init: ["cndevInit"] fn(c_int) -> c_int,
        error_string: ["cndevGetErrorString"] fn(c_int) -> *const c_char,
        lib_version: ["cndevGetLibVersion"] fn(*mut LibVersion) -> c_int,
        count: ["cndevGetDeviceCount"] fn(*mut CardInfo) -> c_int,
        handle: ["cndevGetDeviceHandleByIndex"] fn(c_int, *mut c_int) -> c_int,
        name: ["cndevGetCardNameStringByDevId"] fn(c_int) -> *const c_char,
        uuid: ["cndevGetUUID"] fn(*mut Uuid, c_int) -> c_int,
        serial: ["cndevGetCardSN"] fn(*mut CardSn, c_int) -> c_int,
        pcie: ["cndevGetPCIeInfoV2"] fn(*mut PcieInfo, c_int) -> c_int,
        utilization: ["cndevGetDeviceUtilizationInfo"] fn(*mut Utilization, c_int) -> c_int,
        memory: ["cndevGetMemoryUsageV2"] fn(*mut MemoryV2, c_int) -> c_int,
        temperature: ["cndevGetTemperatureInfo"] fn(*mut Temperature, c_int) -> c_int,
        power: ["cndevGetDevicePowerInfo"] fn(*mut Power, c_int) -> c_int,
        frequency: ["cndevGetFrequencyInfo"] fn(*mut Frequency, c_int) -> c_int,
        health: ["cndevGetCardHealthState"] fn(*mut HealthState, c_int) -> c_int,
        ecc: ["cndevGetECCInfo"] fn(*mut Ecc, c_int) -> c_int,
    }
}

pub type Status = super::Status<c_int>;

/// "This device does not have that": a reading to leave absent, not a fault.
pub fn unsupported(status: Status) -> bool {
    matches!(status, Status::Missing | Status::Code(NOT_SUPPORTED))
}

pub type Answer<T> = Result<T, Status>;

/// A C string the library owns (static for the calls used here).
fn owned_text(text: *const c_char) -> Option<String> {
    if text.is_null() {
        return None;
    }
    // SAFETY: CNDev returns pointers to NUL-terminated strings it keeps.
    let text = unsafe { std::ffi::CStr::from_ptr(text) };
    let text = text.to_string_lossy().trim().to_owned();
    (!text.is_empty()).then_some(text)
}

/// An [`Out`] of `T` zeroed, its leading `version` set.
macro_rules! versioned {
    ($t:ty) => {{
        let mut out = Out::<$t>::zeroed();
        out.fields().version = VERSION;
        out
    }};
}

impl Cndev {
    pub fn open(library: Library) -> Result<Self, Status> {
        let mut cndev = Self::resolve(library);
        call!(cndev.init, 0)?;
        let mut v = versioned!(LibVersion);
        let version = call!(cndev.lib_version, v.ptr()).ok().map(|()| {
            let v = v.get();
            format!("{}.{}.{}", v.major, v.minor, v.build)
        });
        cndev.library.set_version(version);
        Ok(cndev)
    }

    /// The library's words for a code.
    pub fn describe(&self, status: Status) -> String {
        let Status::Code(code) = status else {
            return "not in this libcndev.so".to_owned();
        };
        let words = match self.error_string {
            // SAFETY: declared `const char *cndevGetErrorString(cndevRet_t)`.
            Some(f) => owned_text(unsafe { f(code) }),
            None => None,
        };
        match words {
            Some(words) => format!("CNDev error {code}: {words}"),
            None => format!("CNDev error {code}"),
        }
    }

    pub fn count(&self) -> Answer<u32> {
        let mut info = versioned!(CardInfo);
        call!(self.count, info.ptr())?;
        Ok(info.get().number)
    }

    /// The handle of the `index`th device; the index itself where the
    /// library predates handles.
    pub fn handle(&self, index: u32) -> Answer<c_int> {
        let index = c_int::try_from(index).map_err(|_| Status::Code(INVALID_DEVICE))?;
        let mut handle: c_int = -1;
        match call!(self.handle, index, &mut handle) {
            Err(Status::Missing) => Ok(index),
            other => other.map(|()| handle),
        }
    }

    pub fn name(&self, device: c_int) -> Answer<Option<String>> {
        match self.name {
            // SAFETY: declared `const char *cndevGetCardNameStringByDevId(cndevDevice_t)`.
            Some(f) => Ok(owned_text(unsafe { f(device) })),
            None => Err(Status::Missing),
        }
    }

    pub fn uuid(&self, device: c_int) -> Answer<Option<String>> {
        let mut uuid = versioned!(Uuid);
        call!(self.uuid, uuid.ptr(), device)?;
        Ok(super::text(&uuid.get().uuid))
    }

    pub fn serial(&self, device: c_int) -> Answer<u64> {
        let mut sn = versioned!(CardSn);
        call!(self.serial, sn.ptr(), device)?;
        Ok(sn.get().sn)
    }

    pub fn pcie(&self, device: c_int) -> Answer<PcieInfo> {
        let mut info = Out::zeroed();
        call!(self.pcie, info.ptr(), device)?;
        Ok(info.get())
    }

    pub fn utilization(&self, device: c_int) -> Answer<i32> {
        let mut u = versioned!(Utilization);
        call!(self.utilization, u.ptr(), device)?;
        Ok(u.get().average_core_utilization)
    }

    pub fn memory(&self, device: c_int) -> Answer<MemoryV2> {
        let mut m = Out::zeroed();
        call!(self.memory, m.ptr(), device)?;
        Ok(m.get())
    }

    pub fn temperature(&self, device: c_int) -> Answer<Temperature> {
        let mut t = versioned!(Temperature);
        call!(self.temperature, t.ptr(), device)?;
        Ok(t.get())
    }

    pub fn power(&self, device: c_int) -> Answer<Power> {
        let mut p = Out::zeroed();
        call!(self.power, p.ptr(), device)?;
        Ok(p.get())
    }

    pub fn frequency(&self, device: c_int) -> Answer<Frequency> {
        let mut f = versioned!(Frequency);
        call!(self.frequency, f.ptr(), device)?;
        Ok(f.get())
    }

    pub fn health(&self, device: c_int) -> Answer<HealthState> {
        let mut h = versioned!(HealthState);
        call!(self.health, h.ptr(), device)?;
        Ok(h.get())
    }

    pub fn ecc(&self, device: c_int) -> Answer<Ecc> {
        let mut e = versioned!(Ecc);
        call!(self.ecc, e.ptr(), device)?;
        Ok(e.get())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::{offset_of, size_of};

    /// Sizes and offsets as `cndev.h` lays them out on 64-bit Linux.
    #[test]
    fn structs_match_the_vendor_layout() {
        assert_eq!(size_of::<CardInfo>(), 8);
        assert_eq!(offset_of!(Uuid, ncs_uuid64), 48);
        assert_eq!(size_of::<Uuid>(), 56);
        assert_eq!(size_of::<CardSn>(), 24);
        assert_eq!(offset_of!(PcieInfo, domain), 12);
        assert_eq!(size_of::<PcieInfo>(), 64);
        assert_eq!(size_of::<Utilization>(), 4 * 82);
        assert_eq!(size_of::<MemoryV2>(), 8 * 22);
        assert_eq!(offset_of!(Temperature, chip), 4 * 30);
        assert_eq!(size_of::<Temperature>(), 4 * 37);
        assert_eq!(size_of::<Power>(), 4 * 21);
        assert_eq!(offset_of!(Frequency, mlu_cluster_freq), 16);
        assert_eq!(offset_of!(Frequency, board_default_freq), 56);
        assert_eq!(size_of::<Frequency>(), 68);
        assert_eq!(size_of::<HealthState>(), 16);
        assert_eq!(offset_of!(Ecc, one_bit_error), 8);
        assert_eq!(size_of::<Ecc>(), 72);
    }

    #[test]
    fn not_supported_reads_as_unsupported() {
        assert!(unsupported(Status::Code(NOT_SUPPORTED)));
        assert!(unsupported(Status::Missing));
        assert!(!unsupported(Status::Code(UNSUPPORTED_API_VERSION)));
    }
}
