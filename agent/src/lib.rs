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
//! - [`cli`]: command-line parsing; `main.rs` only calls [`cli::main`].

pub mod cli;
pub mod collect;
pub mod enroll;
pub mod inventory;
pub mod root;
pub mod state;
pub mod uplink;

use std::{path::PathBuf, time::Duration};

use collect::{
    Collector, HostRoot, filesystem::FilesystemCollector, host::HostCollector,
    infiniband::InfinibandCollector, kmsg::KmsgCollector, nvidia::NvidiaCollector,
    slurm::SlurmCollector,
};

/// Where and how to read the host.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    pub root: HostRoot,
    /// A specific `libnvidia-ml.so`; the system's by default.
    pub nvml_library: Option<PathBuf>,
    /// A specific `scontrol`; looked up in `PATH` by default.
    pub scontrol: Option<PathBuf>,
}

impl Sources {
    /// Every collector the agent runs, in report order.
    pub fn collectors(&self) -> Vec<Box<dyn Collector>> {
        vec![
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
        ]
    }
}

/// How long one collector may take before it is reported as hung.
pub const DEFAULT_COLLECT_TIMEOUT: Duration = Duration::from_secs(2);
