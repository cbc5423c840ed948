//! The Suanli agent: reads a provider host's real hardware state.
//!
//! - [`root`]: the host's file tree, injectable for tests and containers.
//! - [`collect`]: collectors (host, filesystems, NVIDIA, InfiniBand, Slurm,
//!   kernel log) and the [`collect::Sampler`] that bounds each with a timeout.
//! - [`inventory`]: the one-shot `inventory` command and its readable summary.
//! - [`enroll`]: `join`: a key pair, a CSR and a token become a client certificate.
//! - [`uplink`]: `run`: sample, spool, stream to the aggregator (the spool,
//!   transport and pump are `suanli-link`'s).
//! - [`state`]: the enrolled agent's files.
//! - [`config`]: `/etc/suanli/agent.toml`, the packaged service's settings.
//! - [`install`]: `join --install` and `uninstall`: the agent as a systemd service.
//! - [`cli`]: command-line parsing; `main.rs` only calls [`cli::main`].

pub mod cli;
pub mod collect;
pub mod config;
pub mod enroll;
pub mod install;
pub mod inventory;
pub mod root;
pub mod state;
pub mod uplink;

use std::{collections::BTreeMap, path::PathBuf, time::Duration};

use collect::{
    Collector, HostRoot,
    accel::{self, AcceleratorCollector},
    filesystem::FilesystemCollector,
    host::HostCollector,
    infiniband::InfinibandCollector,
    kmsg::KmsgCollector,
    nvidia::NvidiaCollector,
    slurm::SlurmCollector,
};
use suanli_protocol::model::AcceleratorVendor;

/// Where and how to read the host.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    pub root: HostRoot,
    /// A specific `libnvidia-ml.so`; the system's by default.
    pub nvml_library: Option<PathBuf>,
    /// A specific `scontrol`; looked up in `PATH` by default.
    pub scontrol: Option<PathBuf>,
    /// Other vendors' libraries at given paths (`--accel-library VENDOR=PATH`).
    pub accel_libraries: BTreeMap<AcceleratorVendor, PathBuf>,
}

impl Sources {
    /// Every collector the agent runs, in report order.
    pub fn collectors(&self) -> Vec<Box<dyn Collector>> {
        let mut collectors: Vec<Box<dyn Collector>> = vec![
            Box::new(HostCollector::new(self.root.clone())),
            Box::new(FilesystemCollector::local(self.root.clone())),
            Box::new(FilesystemCollector::network(self.root.clone())),
            Box::new(NvidiaCollector::new(
                self.root.clone(),
                self.nvml_library.clone(),
            )),
            Box::new(InfinibandCollector::new(self.root.clone())),
            Box::new(SlurmCollector::new(self.scontrol.clone(), None)),
            Box::new(KmsgCollector::new(&self.root)),
        ];
        collectors.extend(self.accelerator_collectors());
        collectors
    }

    /// A collector for each other vendor whose devices are on the PCI bus
    /// or whose library was named; none on a CPU or NVIDIA-only host.
    fn accelerator_collectors(&self) -> Vec<Box<dyn Collector>> {
        let on_bus = accel::pci::accelerators(&self.root);
        let vendors: std::collections::BTreeSet<AcceleratorVendor> = on_bus
            .keys()
            .chain(self.accel_libraries.keys())
            .copied()
            .filter(|&v| v != AcceleratorVendor::Nvidia)
            .collect();
        let mut out: Vec<Box<dyn Collector>> = Vec::new();
        for vendor in vendors {
            let present = on_bus.get(&vendor).copied().unwrap_or(0);
            let library = self.accel_libraries.get(&vendor).cloned();
            if vendor == AcceleratorVendor::Iluvatar {
                out.push(Box::new(NvidiaCollector::iluvatar(
                    self.root.clone(),
                    library,
                    present,
                )));
            } else if let Some(c) = AcceleratorCollector::open(vendor, &self.root, library, present)
            {
                out.push(Box::new(c));
            } else {
                out.push(Box::new(accel::Unreadable::new(vendor, present)));
            }
        }
        out
    }
}

/// The vendors besides NVIDIA whose libraries this agent reads.
const READABLE: [AcceleratorVendor; 6] = [
    AcceleratorVendor::Huawei,
    AcceleratorVendor::Hygon,
    AcceleratorVendor::Amd,
    AcceleratorVendor::Cambricon,
    AcceleratorVendor::Metax,
    AcceleratorVendor::Iluvatar,
];

/// `--accel-library VENDOR=PATH` and `SUANLI_<VENDOR>_LIBRARY`, the flag
/// winning for the same vendor.
pub fn accel_libraries(
    flags: &[String],
    env: impl Fn(&str) -> Option<String>,
) -> Result<BTreeMap<AcceleratorVendor, PathBuf>, String> {
    let mut out = BTreeMap::new();
    for vendor in READABLE {
        let key = format!("SUANLI_{}_LIBRARY", vendor.as_str().to_ascii_uppercase());
        if let Some(path) = env(&key).filter(|p| !p.is_empty()) {
            out.insert(vendor, PathBuf::from(path));
        }
    }
    for flag in flags {
        let (name, path) = flag
            .split_once('=')
            .ok_or_else(|| format!("--accel-library {flag}: expected VENDOR=PATH"))?;
        let vendor = AcceleratorVendor::parse(&name.to_ascii_lowercase())
            .filter(|v| READABLE.contains(v))
            .ok_or_else(|| {
                let known: Vec<&str> = READABLE.iter().map(|v| v.as_str()).collect();
                format!(
                    "--accel-library {flag}: no reader for vendor {name:?} (one of {}; NVIDIA's is --nvml-library)",
                    known.join(", ")
                )
            })?;
        out.insert(vendor, PathBuf::from(path));
    }
    Ok(out)
}

/// How long one collector may take before it is reported as hung.
pub const DEFAULT_COLLECT_TIMEOUT: Duration = Duration::from_secs(2);
