//! GPU XID errors from the kernel log (`NVRM: Xid` lines in `/dev/kmsg`).
//!
//! Some XIDs never arrive as NVML events (DCGM #235), and a GPU that fell
//! off the bus may not answer NVML at all, so the kernel log is read too.
//! `/dev/kmsg` yields one record per read(2) and `EAGAIN` when drained; a
//! fixture file yields lines until end of file. Both are read incrementally.

use std::{
    fs::File,
    io::{ErrorKind, Read},
    os::unix::fs::OpenOptionsExt,
};

use suanli_protocol::model::{HostReport, Problem, ProblemKind, XidEvent};

use super::{Collected, Collector, HostRoot, Readings};

const NAME: &str = "kmsg";

#[derive(Debug, Default)]
pub struct KmsgReadings {
    pub xid_events: Vec<XidEvent>,
}

impl KmsgReadings {
    pub(crate) fn apply(self, report: &mut HostReport) {
        report.sample.xid_events.extend(self.xid_events);
    }
}

#[derive(Debug)]
pub struct KmsgCollector {
    log: Result<File, String>,
    boot_time_unix_ms: Option<u64>,
}

impl KmsgCollector {
    pub fn new(root: &HostRoot) -> Self {
        let path = root.path("/dev/kmsg");
        let log = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&path)
            .map_err(|e| format!("{}: {e}", path.display()));
        let boot_time_unix_ms = root
            .read("/proc/stat")
            .ok()
            .and_then(|t| super::host::parse_stat(&t).boot_time)
            .map(|s| s * 1000);
        Self {
            log,
            boot_time_unix_ms,
        }
    }
}

impl Collector for KmsgCollector {
    fn name(&self) -> &'static str {
        NAME
    }

    fn collect(&mut self) -> Collected {
        let file = match &mut self.log {
            Ok(file) => file,
            Err(why) => {
                // Unprivileged agents may not read the kernel log (dmesg_restrict).
                return Collected {
                    readings: None,
                    problems: vec![Problem::new(NAME, ProblemKind::Unsupported, why.clone())],
                };
            }
        };
        let mut readings = KmsgReadings::default();
        let mut problems = Vec::new();
        let mut buf = vec![0u8; 8192];
        loop {
            match file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    for line in String::from_utf8_lossy(&buf[..n]).lines() {
                        if let Some(mut event) = parse_record(line) {
                            event.observed_at_unix_ms = self
                                .boot_time_unix_ms
                                .zip(record_usec(line))
                                .map(|(boot, usec)| boot + usec / 1000);
                            readings.xid_events.push(event);
                        }
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                // EPIPE: records were overwritten before we read them; go on from the next.
                Err(e) if e.raw_os_error() == Some(libc::EPIPE) => continue,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    problems.push(Problem::new(
                        NAME,
                        ProblemKind::Failed,
                        format!("reading /dev/kmsg: {e}"),
                    ));
                    break;
                }
            }
        }
        Collected {
            readings: Some(Readings::Kmsg(readings)),
            problems,
        }
    }
}

/// Microseconds since boot from a `/dev/kmsg` record prefix `pri,seq,usec,flags;`.
fn record_usec(line: &str) -> Option<u64> {
    let (prefix, _) = line.split_once(';')?;
    prefix.split(',').nth(2)?.parse().ok()
}

/// Parses `NVRM: Xid (PCI:0000:3b:00): 79, pid=1234, name=python, GPU has fallen off the bus.`
/// in a kmsg record or a dmesg line.
pub fn parse_record(line: &str) -> Option<XidEvent> {
    let rest = &line[line.find("NVRM: Xid")? + "NVRM: Xid".len()..];
    let rest = rest.trim_start();
    let (pci_bus_id, rest) = match rest.strip_prefix('(') {
        Some(inner) => {
            let (tag, rest) = inner.split_once(')')?;
            (tag.strip_prefix("PCI:").map(str::to_owned), rest)
        }
        None => (None, rest),
    };
    let rest = rest.trim_start().strip_prefix(':')?.trim_start();
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let xid = digits.parse().ok()?;
    let message = rest[digits.len()..]
        .trim_start_matches([',', ' '])
        .trim()
        .to_owned();
    Some(XidEvent {
        source: "kmsg".to_owned(),
        pci_bus_id,
        gpu_index: None,
        xid,
        message: (!message.is_empty()).then_some(message),
        observed_at_unix_ms: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_xid_lines() {
        let e = parse_record(
            "3,1234,5000000,-;NVRM: Xid (PCI:0000:3b:00): 79, pid=1234, name=python, GPU has fallen off the bus.",
        )
        .unwrap();
        assert_eq!(e.xid, 79);
        assert_eq!(e.pci_bus_id.as_deref(), Some("0000:3b:00"));
        assert_eq!(
            e.message.as_deref(),
            Some("pid=1234, name=python, GPU has fallen off the bus.")
        );
        assert_eq!(record_usec("3,1234,5000000,-;x"), Some(5_000_000));

        let dmesg = parse_record(
            "[  100.5] NVRM: Xid (PCI:0000:18:00): 48, An uncorrectable double bit error",
        )
        .unwrap();
        assert_eq!(dmesg.xid, 48);
        assert_eq!(parse_record("6,1,1,-;eth0: link up"), None);
    }

    #[test]
    fn reads_new_records_once() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("dev")).unwrap();
        std::fs::create_dir_all(dir.path().join("proc")).unwrap();
        std::fs::write(dir.path().join("proc/stat"), "btime 1700000000\n").unwrap();
        std::fs::write(
            dir.path().join("dev/kmsg"),
            "6,1,100,-;eth0: link up\n4,2,2000000,-;NVRM: Xid (PCI:0000:3b:00): 13, Graphics Exception\n",
        )
        .unwrap();
        let mut c = KmsgCollector::new(&HostRoot::at(dir.path()));
        let mut report = HostReport::default();
        c.collect().apply(&mut report);
        let xids = &report.sample.xid_events;
        assert_eq!(xids.len(), 1);
        assert_eq!(xids[0].xid, 13);
        assert_eq!(xids[0].observed_at_unix_ms, Some(1_700_000_002_000));

        let mut again = HostReport::default();
        c.collect().apply(&mut again);
        assert!(again.sample.xid_events.is_empty(), "already reported");
    }
}
