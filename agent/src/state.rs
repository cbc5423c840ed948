//! What an enrolled agent keeps in its state directory.
//!
//! ```text
//! STATE_DIR/
//!   agent.json    aggregator address, host id and identifier
//!   ca.pem        the node CA (trusted for the aggregator from now on)
//!   agent.pem     this host's client certificate
//!   agent.key     its private key (0600)
//!   spool/        samples not yet acknowledged (see `spool`)
//! ```

use std::{
    fs,
    os::unix::fs::{DirBuilderExt, OpenOptionsExt},
    path::{Path, PathBuf},
};

use anyhow::Context;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
use serde::{Deserialize, Serialize};
use suanli_link::files::write_private;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Enrollment {
    /// `host:port` of the aggregator's QUIC listener.
    pub aggregator: String,
    pub host_id: u64,
    #[serde(default)]
    pub host_identifier: String,
}

/// The files of an enrolled agent.
#[derive(Debug)]
pub struct AgentState {
    pub enrollment: Enrollment,
    pub ca: CertificateDer<'static>,
    pub certificate: CertificateDer<'static>,
    pub key: PrivateKeyDer<'static>,
}

/// Holds the state directory for one running agent: two agents sharing a
/// spool would each send and release the other's samples. The lock goes
/// with the process, however it ends.
#[derive(Debug)]
pub struct StateLock(#[allow(dead_code)] fs::File);

pub fn lock(state_dir: &Path) -> anyhow::Result<StateLock> {
    use std::os::fd::AsRawFd;
    let path = state_dir.join("lock");
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    // SAFETY: flock on a descriptor we own; it is released when the file closes.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    anyhow::ensure!(
        rc == 0,
        "another suanli-agent is already running with {}",
        state_dir.display()
    );
    Ok(StateLock(file))
}

pub fn spool_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("spool")
}

fn to_pem(label: &str, der: &[u8]) -> String {
    pem::encode(&pem::Pem::new(label, der))
}

impl AgentState {
    pub fn load(dir: &Path) -> anyhow::Result<Self> {
        let json = dir.join("agent.json");
        let text = fs::read_to_string(&json).with_context(|| {
            format!(
                "{} not found: enroll this host first with `suanli-agent join <join string> --state-dir {}`",
                json.display(),
                dir.display()
            )
        })?;
        let enrollment: Enrollment =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", json.display()))?;
        let cert = |name: &str| {
            let path = dir.join(name);
            CertificateDer::from_pem_file(&path)
                .with_context(|| format!("reading {}", path.display()))
        };
        let key_path = dir.join("agent.key");
        Ok(Self {
            enrollment,
            ca: cert("ca.pem")?,
            certificate: cert("agent.pem")?,
            key: PrivateKeyDer::from_pem_file(&key_path)
                .with_context(|| format!("reading {}", key_path.display()))?,
        })
    }

    /// Whether `dir` can hold an enrollment: created (owner-only) if it is
    /// not there, and a file written into it and removed. `join` asks this
    /// before it spends the one-use token, so a state directory it cannot
    /// write fails the join with the token unspent.
    pub fn check_writable(dir: &Path) -> anyhow::Result<()> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("creating the state directory {}", dir.display()))?;
        let probe = dir.join(".join-check");
        write_private(&probe, b"")
            .with_context(|| format!("writing into the state directory {}", dir.display()))?;
        fs::remove_file(&probe).with_context(|| format!("removing {}", probe.display()))?;
        Ok(())
    }

    /// Stores a fresh enrollment; the key first, the JSON (which marks the
    /// state complete) last.
    pub fn save(
        dir: &Path,
        enrollment: &Enrollment,
        ca_der: &[u8],
        certificate_der: &[u8],
        key_pkcs8_der: &[u8],
    ) -> anyhow::Result<()> {
        // Only this host's agent may read its key and spool, whatever the
        // umask; on systemd 219 nothing else creates the directory.
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("creating {}", dir.display()))?;
        write_private(
            &dir.join("agent.key"),
            to_pem("PRIVATE KEY", key_pkcs8_der).as_bytes(),
        )?;
        write_private(
            &dir.join("agent.pem"),
            to_pem("CERTIFICATE", certificate_der).as_bytes(),
        )?;
        write_private(
            &dir.join("ca.pem"),
            to_pem("CERTIFICATE", ca_der).as_bytes(),
        )?;
        write_private(
            &dir.join("agent.json"),
            serde_json::to_string_pretty(enrollment)?.as_bytes(),
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_round_trips_through_the_parser() {
        for len in [1usize, 2, 3, 47, 48, 100] {
            let der: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
            let pem = to_pem("CERTIFICATE", &der);
            let back = CertificateDer::from_pem_slice(pem.as_bytes()).unwrap();
            assert_eq!(back.as_ref(), der.as_slice());
        }
    }
}
