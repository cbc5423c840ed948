//! MetaX MXSML (`libmxsml.so`), the MetaX GPU driver's management library.
//!
//! Our own declarations of the few calls we make (MetaX's header carries a
//! proprietary notice, so none of it is copied): devices are numbered, every
//! call returns an `mxSmlReturn_t` with 0 for success. Units are MetaX's:
//! temperature in hundredths of a degree, memory in KiB, power per board
//! rail in mW.
//!
//! Checked against the newest public copy of the header, `MxSml.h` of MXSML
//! 2.3.1 (youyousi/go-mxsml, `gen/mxsml/MxSml.h` @
//! a2627eabcd884a9da71a1d2f6fc9189c695a8430), and the open readers that
//! load the library themselves (ccfos/huatuo `core/metrics/metax/sml/` @
//! 45c8f242e3e23ff74bd26fe9948b6acb741edf40, gpustack/runtime's `pymxsml`
//! @ 1d1e894253c6a0410b3c6403130ada521bf2e6b6). No struct used here has
//! grown in any of them; each still goes out with [`Out`]'s headroom.

use std::ffi::{c_char, c_int, c_long, c_uint};

use super::{Library, Out, Plain, call, entry_points, text};

/// `MXSML_OperationNotSupport`.
pub const NOT_SUPPORTED: c_uint = 3;
/// Device brands: an N-class device computes on its DLA, a C-class one on
/// its Xcore, and each names its clocks and utilization by that.
pub const BRAND_N: c_uint = 1;
const USAGE_DLA: c_uint = 0;
const USAGE_XCORE: c_uint = 4;
const CLOCK_DLA: c_uint = 1;
const CLOCK_XCORE: c_uint = 11;
const TEMPERATURE_HOTSPOT: c_uint = 0;
/// Board power is reported per supply rail; no board has more.
const MAX_RAILS: usize = 16;

/// `mxSmlDeviceInfo_t`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct DeviceInfo {
    pub device_id: c_uint,
    pub device_type: c_uint,
    pub bdf_id: [u8; 32],
    pub gpu_id: c_uint,
    pub node_id: c_uint,
    pub uuid: [u8; 96],
    pub brand: c_uint,
    pub mode: c_uint,
    pub device_name: [u8; 32],
}

/// `mxSmlMemoryInfo_t`, in KiB.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct MemoryInfo {
    pub vis_vram_total: c_long,
    pub vis_vram_use: c_long,
    pub vram_total: c_long,
    pub vram_use: c_long,
    pub xtt_total: c_long,
    pub xtt_use: c_long,
}

/// `mxSmlBoardWayElectricInfo_t`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct RailPower {
    pub voltage: c_uint,
    pub current: c_uint,
    /// mW.
    pub power: c_uint,
}

// SAFETY: each is a `#[repr(C)]` struct of integers and arrays of them.
unsafe impl Plain for DeviceInfo {}
unsafe impl Plain for MemoryInfo {}
unsafe impl Plain for RailPower {}

entry_points! {
    pub struct Mxsml {
        init: ["mxSmlInit"] fn() -> c_uint,
        error_string: ["mxSmlGetErrorString"] fn(c_uint) -> *const c_char,
        // Answers the count itself, not a status.
        count: ["mxSmlGetDeviceCount"] fn() -> c_uint,
        device_info: ["mxSmlGetDeviceInfo"] fn(c_uint, *mut DeviceInfo) -> c_uint,
        temperature: ["mxSmlGetTemperatureInfo"] fn(c_uint, c_uint, *mut c_int) -> c_uint,
        usage: ["mxSmlGetDeviceIpUsage"] fn(c_uint, c_uint, *mut c_int) -> c_uint,
        memory: ["mxSmlGetMemoryInfo"] fn(c_uint, *mut MemoryInfo) -> c_uint,
        board_power: ["mxSmlGetBoardPowerInfo"] fn(c_uint, *mut c_uint, *mut RailPower) -> c_uint,
        clocks: ["mxSmlGetClocks"] fn(c_uint, c_uint, *mut c_uint, *mut c_uint) -> c_uint,
    }
}

pub type Status = super::Status<c_uint>;

/// "This device does not have that": a reading to leave absent, not a fault.
pub fn unsupported(status: Status) -> bool {
    matches!(status, Status::Missing | Status::Code(NOT_SUPPORTED))
}

pub type Answer<T> = Result<T, Status>;

impl Mxsml {
    pub fn open(library: Library) -> Result<Self, Status> {
        let mxsml = Self::resolve(library);
        call!(mxsml.init,)?;
        Ok(mxsml)
    }

    /// The library's words for a code.
    pub fn describe(&self, status: Status) -> String {
        let Status::Code(code) = status else {
            return "not in this libmxsml.so".to_owned();
        };
        let words = match self.error_string {
            // SAFETY: declared `const char *mxSmlGetErrorString(mxSmlReturn_t)`;
            // the string is the library's own, NUL-terminated.
            Some(f) => {
                let p = unsafe { f(code) };
                (!p.is_null()).then(|| {
                    unsafe { std::ffi::CStr::from_ptr(p) }
                        .to_string_lossy()
                        .into_owned()
                })
            }
            None => None,
        };
        match words {
            Some(words) => format!("MXSML error {code}: {words}"),
            None => format!("MXSML error {code}"),
        }
    }

    pub fn count(&self) -> Answer<u32> {
        match self.count {
            // SAFETY: declared `unsigned int mxSmlGetDeviceCount(void)`.
            Some(f) => Ok(unsafe { f() }),
            None => Err(Status::Missing),
        }
    }

    pub fn device_info(&self, index: u32) -> Answer<DeviceInfo> {
        let mut info = Out::zeroed();
        call!(self.device_info, index, info.ptr())?;
        Ok(info.get())
    }

    /// Hundredths of a degree Celsius, at the hottest point.
    pub fn temperature(&self, device: u32) -> Answer<i32> {
        let mut t: c_int = 0;
        call!(self.temperature, device, TEMPERATURE_HOTSPOT, &mut t)?;
        Ok(t)
    }

    /// Percent of the compute engine busy (DLA or Xcore by brand).
    pub fn utilization(&self, device: u32, brand: u32) -> Answer<i32> {
        let ip = if brand == BRAND_N {
            USAGE_DLA
        } else {
            USAGE_XCORE
        };
        let mut u: c_int = 0;
        call!(self.usage, device, ip, &mut u)?;
        Ok(u)
    }

    pub fn memory(&self, device: u32) -> Answer<MemoryInfo> {
        let mut m = Out::zeroed();
        call!(self.memory, device, m.ptr())?;
        Ok(m.get())
    }

    /// The board's rails, each with its draw in mW.
    pub fn board_power(&self, device: u32) -> Answer<Vec<RailPower>> {
        let mut rails = [RailPower::default(); MAX_RAILS];
        let mut n = MAX_RAILS as c_uint;
        call!(self.board_power, device, &mut n, rails.as_mut_ptr())?;
        Ok(rails[..(n as usize).min(MAX_RAILS)].to_vec())
    }

    /// The compute engine's current clock, MHz.
    pub fn clock(&self, device: u32, brand: u32) -> Answer<u32> {
        let ip = if brand == BRAND_N {
            CLOCK_DLA
        } else {
            CLOCK_XCORE
        };
        // The header's most for any engine.
        let mut clocks = [0 as c_uint; 9];
        let mut n = clocks.len() as c_uint;
        call!(self.clocks, device, ip, &mut n, clocks.as_mut_ptr())?;
        if n == 0 {
            return Err(Status::Code(NOT_SUPPORTED));
        }
        Ok(clocks[0])
    }
}

/// `0000:1b:00.0` as MetaX writes it, in parts.
pub fn parse_bdf(info: &DeviceInfo) -> Option<(u32, u32, u32, u32)> {
    let bdf = text(&info.bdf_id)?;
    let (domain, rest) = bdf.split_once(':')?;
    let (bus, rest) = rest.split_once(':')?;
    let (device, function) = rest.split_once('.')?;
    let hex = |s: &str| u32::from_str_radix(s, 16).ok();
    Some((hex(domain)?, hex(bus)?, hex(device)?, hex(function)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::{offset_of, size_of};

    #[test]
    fn structs_match_the_vendor_layout() {
        assert_eq!(offset_of!(DeviceInfo, uuid), 48);
        assert_eq!(offset_of!(DeviceInfo, device_name), 152);
        assert_eq!(size_of::<DeviceInfo>(), 184);
        assert_eq!(size_of::<MemoryInfo>(), 48);
        assert_eq!(size_of::<RailPower>(), 12);
    }

    #[test]
    fn bdf_strings_are_read_in_hex() {
        let mut info = Out::<DeviceInfo>::zeroed().get();
        info.bdf_id[..12].copy_from_slice(b"0000:1b:00.0");
        assert_eq!(parse_bdf(&info), Some((0, 0x1b, 0, 0)));
        assert!(unsupported(Status::Code(NOT_SUPPORTED)));
        assert!(!unsupported(Status::Code(1)));
    }
}
