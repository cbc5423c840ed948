//! The only agent code that calls into vendor libraries: loading them and
//! each library's declarations. Everything here is `unsafe` underneath and
//! safe at its surface; the vendor modules above it hold no `unsafe`.
//!
//! A library is loaded at run time, never linked, with `RTLD_LOCAL`, so
//! `libixml.so`'s NVML-named symbols cannot shadow `libnvidia-ml.so`'s. The
//! agent runs as root, so a library it did not get from root (or from its
//! own user) or that others may rewrite is refused before it is loaded.
//! Every entry point is optional: one an older driver lacks reads as
//! "unsupported", never as a failure to load.
//!
//! Each struct is declared from the newest public header or open reader of
//! its library, named (repository, path, commit) at the top of its module;
//! where sources differ the larger layout wins, and every struct goes out
//! inside [`Out`], with headroom for a driver newer still. For a new driver:
//! compare its header with every struct and prototype here (field order,
//! types, array lengths, enum values, pointer or value), change the
//! declaration, its layout test and the stand-in under `tests/fixtures/`
//! together, and cite the new source. The AddressSanitizer test that
//! `.ci/test` runs loads each stand-in into the agent and fails on any
//! write outside the agent's buffers (docs/accelerators.md).

pub mod cndev;
pub mod dcmi;
pub mod mxsml;
pub mod rsmi;

use std::{
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
};

use suanli_protocol::model::{AcceleratorLibrary, AcceleratorVendor};

/// Why a vendor library could not be used.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{file} not found (looked in {searched})")]
    NotFound {
        file: &'static str,
        searched: String,
    },
    #[error("refusing {path}: {why}")]
    Refused { path: PathBuf, why: String },
    #[error("loading {path}: {source}")]
    Load {
        path: PathBuf,
        source: libloading::Error,
    },
}

/// Directories searched after `LD_LIBRARY_PATH` when no path is given.
const SYSTEM_DIRS: &[&str] = &[
    "/usr/lib64",
    "/usr/lib",
    "/usr/lib/x86_64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
    "/usr/lib/loongarch64-linux-gnu",
];

/// Where a vendor library is: the path given, else the first of the
/// vendor's usual places, `LD_LIBRARY_PATH` and the system directories that
/// holds `file`.
pub fn locate(
    given: Option<&Path>,
    file: &'static str,
    vendor_dirs: &[&str],
) -> Result<PathBuf, LoadError> {
    if let Some(path) = given {
        return Ok(path.to_owned());
    }
    let ld_path = std::env::var("LD_LIBRARY_PATH").unwrap_or_default();
    let dirs: Vec<&str> = vendor_dirs
        .iter()
        .copied()
        .chain(ld_path.split(':').filter(|d| !d.is_empty()))
        .chain(SYSTEM_DIRS.iter().copied())
        .collect();
    dirs.iter()
        .map(|dir| Path::new(dir).join(file))
        .find(|path| path.is_file())
        .ok_or_else(|| LoadError::NotFound {
            file,
            searched: dirs.join(":"),
        })
}

/// Refuses a library the agent (root) should not run: the file, or any
/// directory above it, owned by someone other than root or the agent's own
/// user, or writable by group or others (a sticky directory such as /tmp
/// excepted: there no one can replace a file they do not own). Nobody else
/// can then swap the file between this check and loading it.
pub fn vet(path: &Path) -> Result<(), LoadError> {
    let refused = |why: String| LoadError::Refused {
        path: path.to_owned(),
        why,
    };
    let path = std::fs::canonicalize(path).map_err(|e| refused(e.to_string()))?;
    // SAFETY: geteuid(2) cannot fail and touches no memory.
    let me = unsafe { libc::geteuid() };
    for (i, step) in path.ancestors().enumerate() {
        let meta = std::fs::metadata(step).map_err(|e| refused(e.to_string()))?;
        let what = if i == 0 { "the file" } else { "directory" };
        if meta.uid() != 0 && meta.uid() != me {
            return Err(refused(format!(
                "{what} {} is owned by uid {}, not root or this agent's user",
                step.display(),
                meta.uid()
            )));
        }
        let sticky_dir = i > 0 && meta.mode() & 0o1000 != 0;
        if meta.mode() & 0o022 != 0 && !sticky_dir {
            return Err(refused(format!(
                "{what} {} is writable by group or others (mode {:o})",
                step.display(),
                meta.mode() & 0o7777
            )));
        }
    }
    Ok(())
}

/// A loaded vendor library and what it has offered so far.
pub struct Library {
    library: libloading::Library,
    info: AcceleratorLibrary,
}

impl std::fmt::Debug for Library {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Library")
            .field("path", &self.info.path)
            .finish_non_exhaustive()
    }
}

impl Library {
    /// Loads `path` after checking who may have written it.
    pub fn open(vendor: AcceleratorVendor, path: &Path) -> Result<Self, LoadError> {
        vet(path)?;
        let flags = libloading::os::unix::RTLD_LAZY | libloading::os::unix::RTLD_LOCAL;
        // SAFETY: loading runs the library's initialisers; the file is a
        // vendor driver library that passed the ownership check above.
        let library = unsafe { libloading::os::unix::Library::open(Some(path), flags) }.map_err(
            |source| LoadError::Load {
                path: path.to_owned(),
                source,
            },
        )?;
        Ok(Self {
            library: library.into(),
            info: AcceleratorLibrary {
                vendor,
                path: path.display().to_string(),
                ..AcceleratorLibrary::default()
            },
        })
    }

    /// The first of `names` the library exports (newest variant first), or
    /// `None` when it has none of them; either way, recorded for `inventory`.
    ///
    /// # Safety
    /// `T` must be the function-pointer type the vendor declares for every
    /// one of `names`, and the pointer must not outlive this library.
    pub unsafe fn symbol<T: Copy>(&mut self, names: &[&'static str]) -> Option<T> {
        for name in names {
            // SAFETY: the caller guarantees the type; the name is NUL-free.
            if let Ok(symbol) = unsafe { self.library.get::<T>(name.as_bytes()) } {
                self.info.symbols.push((*name).to_owned());
                return Some(*symbol);
            }
        }
        self.info.missing_symbols.push(names.join("|"));
        None
    }

    pub fn info(&self) -> &AcceleratorLibrary {
        &self.info
    }

    pub fn set_version(&mut self, version: Option<String>) {
        self.info.version = version;
    }
}

/// Declares a vendor library's entry points as a struct of optional
/// function pointers, resolved once when the library is opened.
macro_rules! entry_points {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $( $field:ident : [$($symbol:literal),+] fn($($arg:ty),*) -> $ret:ty, )+
        }
    ) => {
        $(#[$meta])*
        #[allow(clippy::type_complexity)]
        pub struct $name {
            // Declared last so it is dropped after nothing can call through the pointers.
            $( $field: Option<unsafe extern "C" fn($($arg),*) -> $ret>, )+
            library: super::Library,
        }

        impl $name {
            fn resolve(mut library: super::Library) -> Self {
                Self {
                    // SAFETY: each type is the vendor's declaration of these
                    // names; the pointers live in the struct that owns the library.
                    $( $field: unsafe { library.symbol(&[$($symbol),+]) }, )+
                    library,
                }
            }

            pub fn library(&self) -> &super::Library {
                &self.library
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("library", &self.library)
                    .finish_non_exhaustive()
            }
        }
    };
}
pub(crate) use entry_points;

/// What a vendor call answered instead of success: no such entry point in
/// this library, or the vendor's code (`C` is its return type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status<C> {
    Missing,
    Code(C),
}

/// Every vendor library here returns 0 for success.
pub fn check<C: Copy + PartialEq + Default>(code: C) -> Result<(), Status<C>> {
    if code == C::default() {
        Ok(())
    } else {
        Err(Status::Code(code))
    }
}

/// Calls an optional entry point: `call!(self.field, args…)`.
macro_rules! call {
    ($f:expr, $($arg:expr),*) => {
        match $f {
            // SAFETY: the pointer came from this library with the vendor's
            // declared type, and every pointer argument is to a live local of
            // the declared type and length.
            Some(f) => super::check(unsafe { f($($arg),*) }),
            None => Err(super::Status::Missing),
        }
    };
}
pub(crate) use call;

/// Bytes of zeroed room after every vendor struct the agent passes by
/// pointer. The largest growth seen in a public header so far is Hygon's
/// `rsmi_error_count_t` (16 → 64 bytes); this leaves a driver room to grow
/// four times that much before it could write past the agent's buffer.
pub const HEADROOM: usize = 256;

/// A vendor struct that is plain data: integers, floats, raw pointers and
/// arrays of them, for which all-zero bytes are a valid value.
///
/// # Safety
/// Implement it only for `#[repr(C)]` structs of such fields.
pub unsafe trait Plain: Copy {}

/// The out-parameter of a vendor call: the struct as the newest public
/// header lays it out, then [`HEADROOM`] zeroed bytes, so that a library
/// built from a header newer than any we know writes its new fields there
/// rather than over the agent's stack. Only the declared fields are read.
#[repr(C)]
#[derive(Debug)]
pub struct Out<T> {
    value: T,
    headroom: [u8; HEADROOM],
}

impl<T: Plain> Out<T> {
    pub fn zeroed() -> Self {
        // SAFETY: `T: Plain`, so all-zero bytes are a valid `T`, and the
        // headroom is bytes.
        unsafe { std::mem::MaybeUninit::<Self>::zeroed().assume_init() }
    }

    /// The fields to set before the call (CNDev's `version`, which says
    /// which layout the caller asks for).
    pub fn fields(&mut self) -> &mut T {
        &mut self.value
    }

    /// What the vendor call writes through.
    pub fn ptr(&mut self) -> *mut T {
        &mut self.value
    }

    pub fn get(self) -> T {
        self.value
    }
}

/// A NUL-terminated byte buffer from C as text; `None` when empty.
pub(crate) fn text(bytes: &[u8]) -> Option<String> {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    let text = String::from_utf8_lossy(&bytes[..end]).trim().to_owned();
    (!text.is_empty()).then_some(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_library_others_may_rewrite_is_refused_before_loading() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("libdcmi.so");
        std::fs::write(&path, b"not an ELF file").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
        let err = Library::open(AcceleratorVendor::Huawei, &path).unwrap_err();
        assert!(
            err.to_string().contains("writable by group or others"),
            "{err}"
        );
        // Safe mode, same garbage: now it is the loader that says no.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = Library::open(AcceleratorVendor::Huawei, &path).unwrap_err();
        assert!(matches!(err, LoadError::Load { .. }), "{err}");
        // A directory above it others may write to is as bad as the file.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = Library::open(AcceleratorVendor::Huawei, &path).unwrap_err();
        assert!(
            err.to_string().contains("directory") && err.to_string().contains("writable"),
            "{err}"
        );
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    }

    #[test]
    fn a_missing_library_names_where_it_was_looked_for() {
        let err = locate(None, "libsuanli-no-such.so", &["/opt/vendor/lib"]).unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("libsuanli-no-such.so not found"), "{text}");
        assert!(text.contains("/opt/vendor/lib"), "{text}");
    }

    #[test]
    fn c_strings_stop_at_the_first_nul() {
        assert_eq!(text(b"910B3\0garbage"), Some("910B3".to_owned()));
        assert_eq!(text(b"\0"), None);
        assert_eq!(text(b"Ascend"), Some("Ascend".to_owned()));
    }
}
