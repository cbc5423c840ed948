//! Mounted filesystems and their usage, as `df` shows them.
//!
//! Two collectors share this code: [`FilesystemCollector::local`] and
//! [`FilesystemCollector::network`]. statfs(2) on a stale NFS mount blocks in
//! the kernel for minutes (node_exporter #244), so network filesystems are read
//! by their own worker: a hang there is one timed-out problem, while local
//! disks keep reporting.

use std::{collections::BTreeSet, ffi::CString, os::unix::ffi::OsStrExt, path::Path};

use suanli_protocol::model::{Filesystem, FilesystemSample, HostReport, Problem, ProblemKind};

use super::{Collected, Collector, HostRoot, Readings};

/// Filesystem types whose statfs may wait on a remote server.
const NETWORK_TYPES: &[&str] = &[
    "nfs",
    "nfs4",
    "cifs",
    "smb3",
    "smbfs",
    "ncpfs",
    "afs",
    "9p",
    "ceph",
    "glusterfs",
    "lustre",
    "gpfs",
    "beegfs",
    "cvfs",
    "ocfs2",
    "gfs2",
    "fuse.sshfs",
    "fuse.glusterfs",
    "fuse.cephfs",
    "fuse.juicefs",
    "fuse.s3fs",
    "fuse.rclone",
    "davfs",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    Local,
    Network,
}

#[derive(Debug)]
pub struct FilesystemCollector {
    root: HostRoot,
    scope: Scope,
}

/// Readings owned by one filesystem collector.
#[derive(Debug, Default)]
pub struct FilesystemReadings {
    pub filesystems: Vec<(Filesystem, FilesystemSample)>,
}

impl FilesystemReadings {
    pub(crate) fn apply(self, report: &mut HostReport) {
        for (fs, sample) in self.filesystems {
            report.inventory.filesystems.push(fs);
            report.sample.filesystems.push(sample);
        }
    }
}

/// One line of /proc/self/mounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub device: String,
    pub mount_point: String,
    pub fs_type: String,
}

impl FilesystemCollector {
    pub fn local(root: HostRoot) -> Self {
        Self {
            root,
            scope: Scope::Local,
        }
    }

    pub fn network(root: HostRoot) -> Self {
        Self {
            root,
            scope: Scope::Network,
        }
    }
}

impl Collector for FilesystemCollector {
    fn name(&self) -> &'static str {
        match self.scope {
            Scope::Local => "filesystems",
            Scope::Network => "network_filesystems",
        }
    }

    fn collect(&mut self) -> Collected {
        let name = self.name();
        let mounts = match self.root.read("/proc/self/mounts") {
            Ok(text) => parse_mounts(&text),
            Err(err) => {
                return Collected {
                    readings: None,
                    problems: vec![Problem::new(
                        name,
                        ProblemKind::Failed,
                        format!("/proc/self/mounts: {err}"),
                    )],
                };
            }
        };
        let mut problems = Vec::new();
        let mut seen_devices = BTreeSet::new();
        let mut filesystems = Vec::new();
        for mount in mounts {
            let network = is_network(&mount.fs_type);
            if network != (self.scope == Scope::Network) {
                continue;
            }
            let path = self.root.path(&mount.mount_point);
            let usage = match statfs(&path) {
                Ok(usage) => usage,
                Err(err) => {
                    // Mounts we may not enter (other users' FUSE mounts) are not our business.
                    if err.kind() != std::io::ErrorKind::PermissionDenied {
                        problems.push(Problem::new(
                            name,
                            ProblemKind::Failed,
                            format!("statfs {}: {err}", mount.mount_point),
                        ));
                    }
                    continue;
                }
            };
            // Like df: pseudo filesystems have no blocks, and a device mounted
            // twice (bind mounts) is one filesystem, listed at its first mount.
            if usage.total_bytes == 0 || !seen_devices.insert(usage.device) {
                continue;
            }
            filesystems.push((
                Filesystem {
                    device: mount.device,
                    mount_point: mount.mount_point.clone(),
                    fs_type: mount.fs_type,
                    network,
                    total_bytes: Some(usage.total_bytes),
                },
                FilesystemSample {
                    mount_point: mount.mount_point,
                    total_bytes: Some(usage.total_bytes),
                    available_bytes: Some(usage.available_bytes),
                    used_bytes: Some(usage.used_bytes),
                    inodes_total: usage.inodes_total,
                    inodes_free: usage.inodes_free,
                },
            ));
        }
        Collected {
            readings: Some(Readings::Filesystems(FilesystemReadings { filesystems })),
            problems,
        }
    }
}

pub fn is_network(fs_type: &str) -> bool {
    NETWORK_TYPES.contains(&fs_type)
}

pub fn parse_mounts(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let mut f = line.split_ascii_whitespace();
            Some(Mount {
                device: unescape(f.next()?),
                mount_point: unescape(f.next()?),
                fs_type: f.next()?.to_owned(),
            })
        })
        .collect()
}

/// The kernel escapes space, tab, newline and backslash as `\ooo` octal.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            let v = bytes[i + 1..i + 4]
                .iter()
                .fold(0u32, |acc, b| acc * 8 + u32::from(b - b'0'));
            if let Ok(byte) = u8::try_from(v) {
                out.push(byte);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Usage {
    device: u64,
    total_bytes: u64,
    available_bytes: u64,
    used_bytes: u64,
    inodes_total: Option<u64>,
    inodes_free: Option<u64>,
}

fn statfs(path: &Path) -> std::io::Result<Usage> {
    let c_path = CString::new(path.as_os_str().as_bytes())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let mut vfs = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: both calls write only into the buffers we pass and report
    // failure through the return value, checked before the buffers are read.
    let (vfs, st) = unsafe {
        if libc::statvfs(c_path.as_ptr(), vfs.as_mut_ptr()) != 0
            || libc::stat(c_path.as_ptr(), st.as_mut_ptr()) != 0
        {
            return Err(std::io::Error::last_os_error());
        }
        (vfs.assume_init(), st.assume_init())
    };
    let fragment = vfs.f_frsize;
    let total = vfs.f_blocks * fragment;
    let free = vfs.f_bfree * fragment;
    // Some filesystems (btrfs, network ones) report no inode figures: absent, not 0.
    let inodes = (vfs.f_files > 0).then_some(vfs.f_files);
    Ok(Usage {
        device: st.st_dev,
        total_bytes: total,
        available_bytes: vfs.f_bavail * fragment,
        used_bytes: total.saturating_sub(free),
        inodes_total: inodes,
        inodes_free: inodes.map(|_| vfs.f_ffree),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_unescapes_mounts() {
        let m = parse_mounts(
            "/dev/vda / ext4 rw,relatime 0 0\nserver:/export /mnt/my\\040data nfs4 rw 0 0\n",
        );
        assert_eq!(m.len(), 2);
        assert_eq!(m[1].mount_point, "/mnt/my data");
        assert!(is_network(&m[1].fs_type));
        assert!(!is_network(&m[0].fs_type));
    }

    #[test]
    fn splits_local_and_network_mounts() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("proc/self")).unwrap();
        std::fs::create_dir_all(dir.path().join("data")).unwrap();
        std::fs::write(
            dir.path().join("proc/self/mounts"),
            "/dev/vda / ext4 rw 0 0\n/dev/vda /data ext4 rw 0 0\nfiler:/x /data nfs4 rw 0 0\nproc /proc proc rw 0 0\n",
        )
        .unwrap();
        let root = HostRoot::at(dir.path());

        let mut report = HostReport::default();
        FilesystemCollector::local(root.clone())
            .collect()
            .apply(&mut report);
        // "/" and "/data" are the same device here: listed once, at "/".
        let points: Vec<_> = report
            .inventory
            .filesystems
            .iter()
            .map(|f| f.mount_point.as_str())
            .collect();
        assert_eq!(points, ["/"]);
        assert!(report.problems.is_empty(), "{:?}", report.problems);

        let mut report = HostReport::default();
        FilesystemCollector::network(root)
            .collect()
            .apply(&mut report);
        let fs = &report.inventory.filesystems;
        assert_eq!(fs.len(), 1);
        assert!(fs[0].network);
        assert_eq!(fs[0].fs_type, "nfs4");
    }
}
