//! ROCm SMI (`librocm_smi64.so`): AMD's library, which Hygon ships its own
//! build of for DCU/HCU cards. Our own declarations of the calls we make,
//! from AMD's `rocm_smi.h` (NCSA): devices are indexed 0…n, every call
//! returns an `rsmi_status_t`.
//!
//! Layouts follow the newest public headers of both builds, and the larger
//! wins: AMD's in ROCm/rocm-systems,
//! `projects/rocm-smi-lib/include/rocm_smi/rocm_smi.h` @
//! d14a41322cbfd80fd08e0e70df8a7beab843350c, and Hygon's (rocm_smi 7.6.0,
//! Hygon 0.6) in HYGON-AI/hcu-dcgm, `pkg/dcgm/include/rocm_smi.h` @
//! 6d739f261b84fbde3ef5ea82c43a81ac76089dde. Every struct goes out with
//! [`Out`]'s headroom.

use std::ffi::{c_char, c_uint};

use super::{Library, Out, Plain, call, entry_points, text};

pub const STATUS_NOT_SUPPORTED: c_uint = 2;
pub const STATUS_NOT_YET_IMPLEMENTED: c_uint = 9;
pub const MEMORY_VRAM: c_uint = 0;
pub const TEMPERATURE_EDGE: c_uint = 0;
pub const TEMPERATURE_JUNCTION: c_uint = 1;
pub const TEMPERATURE_CURRENT: c_uint = 0;
pub const BLOCK_UMC: u64 = 1;

/// `rsmi_version_t`, the same in both builds.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct Version {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
    pub build: *const c_char,
}

/// `rsmi_error_count_t` as Hygon's build lays it out (64 bytes); AMD's
/// ends after `uncorrectable` (16 bytes) and leaves the rest zero.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct ErrorCount {
    pub correctable: u64,
    pub uncorrectable: u64,
    pub deferred: u64,
    pub reserved: [u64; 5],
}

// SAFETY: `#[repr(C)]` structs of integers, arrays of them and a raw pointer.
unsafe impl Plain for Version {}
unsafe impl Plain for ErrorCount {}

entry_points! {
    pub struct Rsmi {
        init: ["rsmi_init"] fn(u64) -> c_uint,
        status_string: ["rsmi_status_string"] fn(c_uint, *mut *const c_char) -> c_uint,
        count: ["rsmi_num_monitor_devices"] fn(*mut c_uint) -> c_uint,
        device_id: ["rsmi_dev_id_get"] fn(c_uint, *mut u16) -> c_uint,
        name: ["rsmi_dev_name_get"] fn(c_uint, *mut c_char, usize) -> c_uint,
        serial: ["rsmi_dev_serial_number_get"] fn(c_uint, *mut c_char, c_uint) -> c_uint,
        unique_id: ["rsmi_dev_unique_id_get"] fn(c_uint, *mut u64) -> c_uint,
        pci_id: ["rsmi_dev_pci_id_get"] fn(c_uint, *mut u64) -> c_uint,
        busy: ["rsmi_dev_busy_percent_get"] fn(c_uint, *mut c_uint) -> c_uint,
        memory_total: ["rsmi_dev_memory_total_get"] fn(c_uint, c_uint, *mut u64) -> c_uint,
        memory_used: ["rsmi_dev_memory_usage_get"] fn(c_uint, c_uint, *mut u64) -> c_uint,
        temperature: ["rsmi_dev_temp_metric_get"] fn(c_uint, c_uint, c_uint, *mut i64) -> c_uint,
        power: ["rsmi_dev_power_ave_get"] fn(c_uint, c_uint, *mut u64) -> c_uint,
        power_cap: ["rsmi_dev_power_cap_get"] fn(c_uint, c_uint, *mut u64) -> c_uint,
        ecc: ["rsmi_dev_ecc_count_get"] fn(c_uint, u64, *mut ErrorCount) -> c_uint,
        version: ["rsmi_version_get"] fn(*mut Version) -> c_uint,
        // Never called: its presence is what marks Hygon's build.
        hygon_marker: ["rsmi_dev_hcu_util_get", "rsmi_hy_version_get"] fn() -> c_uint,
    }
}

pub type Status = super::Status<c_uint>;

/// "This device does not have that": a reading to leave absent, not a fault.
pub fn unsupported(status: Status) -> bool {
    matches!(
        status,
        Status::Missing | Status::Code(STATUS_NOT_SUPPORTED | STATUS_NOT_YET_IMPLEMENTED)
    )
}

pub type Answer<T> = Result<T, Status>;

impl Rsmi {
    pub fn open(library: Library) -> Result<Self, Status> {
        let mut rsmi = Self::resolve(library);
        call!(rsmi.init, 0)?;
        let mut v = Out::<Version>::zeroed();
        let version = call!(rsmi.version, v.ptr()).ok().map(|()| {
            let v = v.get();
            format!("{}.{}.{}", v.major, v.minor, v.patch)
        });
        rsmi.library.set_version(version);
        Ok(rsmi)
    }

    /// Whether this is Hygon's build (it exports Hygon's own calls).
    pub fn is_hygon_build(&self) -> bool {
        self.hygon_marker.is_some()
    }

    /// The library's words for a status code.
    pub fn describe(&self, status: Status) -> String {
        let Status::Code(code) = status else {
            return "not in this librocm_smi64.so".to_owned();
        };
        let mut text: *const c_char = std::ptr::null();
        if call!(self.status_string, code, &mut text).is_ok() && !text.is_null() {
            // SAFETY: rsmi_status_string points at a static NUL-terminated string.
            let words = unsafe { std::ffi::CStr::from_ptr(text) };
            return format!("rsmi error {code}: {}", words.to_string_lossy());
        }
        format!("rsmi error {code}")
    }

    pub fn count(&self) -> Answer<u32> {
        let mut n: c_uint = 0;
        call!(self.count, &mut n)?;
        Ok(n)
    }

    pub fn device_id(&self, dv: u32) -> Answer<u16> {
        let mut id = 0u16;
        call!(self.device_id, dv, &mut id)?;
        Ok(id)
    }

    pub fn name(&self, dv: u32) -> Answer<Option<String>> {
        let mut buf = [0u8; 256];
        call!(self.name, dv, buf.as_mut_ptr().cast(), buf.len())?;
        Ok(text(&buf))
    }

    pub fn serial(&self, dv: u32) -> Answer<Option<String>> {
        let mut buf = [0u8; 64];
        call!(
            self.serial,
            dv,
            buf.as_mut_ptr().cast(),
            buf.len() as c_uint
        )?;
        Ok(text(&buf))
    }

    pub fn unique_id(&self, dv: u32) -> Answer<u64> {
        let mut id = 0u64;
        call!(self.unique_id, dv, &mut id)?;
        Ok(id)
    }

    pub fn pci_id(&self, dv: u32) -> Answer<u64> {
        let mut id = 0u64;
        call!(self.pci_id, dv, &mut id)?;
        Ok(id)
    }

    pub fn busy_percent(&self, dv: u32) -> Answer<u32> {
        let mut p: c_uint = 0;
        call!(self.busy, dv, &mut p)?;
        Ok(p)
    }

    pub fn memory_total(&self, dv: u32) -> Answer<u64> {
        let mut b = 0u64;
        call!(self.memory_total, dv, MEMORY_VRAM, &mut b)?;
        Ok(b)
    }

    pub fn memory_used(&self, dv: u32) -> Answer<u64> {
        let mut b = 0u64;
        call!(self.memory_used, dv, MEMORY_VRAM, &mut b)?;
        Ok(b)
    }

    /// Millidegrees Celsius.
    pub fn temperature(&self, dv: u32, sensor: c_uint) -> Answer<i64> {
        let mut t = 0i64;
        call!(self.temperature, dv, sensor, TEMPERATURE_CURRENT, &mut t)?;
        Ok(t)
    }

    /// Microwatts.
    pub fn power(&self, dv: u32) -> Answer<u64> {
        let mut p = 0u64;
        call!(self.power, dv, 0, &mut p)?;
        Ok(p)
    }

    /// Microwatts.
    pub fn power_cap(&self, dv: u32) -> Answer<u64> {
        let mut p = 0u64;
        call!(self.power_cap, dv, 0, &mut p)?;
        Ok(p)
    }

    /// Hygon's build writes 64 bytes where AMD's writes 16: the buffer is
    /// Hygon's layout plus headroom, and only the first two counts are read.
    pub fn memory_ecc(&self, dv: u32) -> Answer<ErrorCount> {
        let mut c = Out::zeroed();
        call!(self.ecc, dv, BLOCK_UMC, c.ptr())?;
        Ok(c.get())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::{offset_of, size_of};

    #[test]
    fn structs_match_the_vendor_layout() {
        assert_eq!(size_of::<ErrorCount>(), 64);
        assert_eq!(offset_of!(ErrorCount, uncorrectable), 8);
        assert_eq!(offset_of!(ErrorCount, deferred), 16);
        assert_eq!(size_of::<Version>(), 24);
        assert_eq!(offset_of!(Version, build), 16);
    }

    #[test]
    fn not_supported_reads_as_unsupported() {
        assert!(unsupported(Status::Code(2)));
        assert!(unsupported(Status::Missing));
        assert!(!unsupported(Status::Code(8)));
    }
}
