//! Slurm node state, asked of slurmctld through `scontrol`.
//!
//! slurmd keeps no node state locally, so every reading is a round trip to
//! the controller: the answer is cached for [`SlurmCollector::REFRESH`] to
//! spare slurmctld, and a slow `scontrol` is killed after a bound.

use std::{
    collections::BTreeMap,
    path::PathBuf,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use suanli_protocol::model::{HostReport, Problem, ProblemKind, SlurmNode, SlurmSample};

use super::{Collected, Collector, Readings};

const NAME: &str = "slurm";

#[derive(Debug, Default, Clone, PartialEq)]
pub struct SlurmReadings {
    pub node: SlurmNode,
    pub sample: SlurmSample,
}

impl SlurmReadings {
    pub(crate) fn apply(self, report: &mut HostReport) {
        report.inventory.slurm = Some(self.node);
        report.sample.slurm = Some(self.sample);
    }
}

#[derive(Debug)]
pub struct SlurmCollector {
    scontrol: Option<PathBuf>,
    node_name: String,
    cached: Option<(Instant, SlurmReadings)>,
}

impl SlurmCollector {
    pub const REFRESH: Duration = Duration::from_secs(30);
    const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);

    /// `scontrol` is looked up in `PATH` unless given; `node_name` defaults to
    /// the short host name, which is what Slurm uses unless told otherwise.
    pub fn new(scontrol: Option<PathBuf>, node_name: Option<String>) -> Self {
        let scontrol = scontrol.or_else(|| find_in_path("scontrol"));
        let node_name = node_name.unwrap_or_else(|| {
            sysinfo::System::host_name()
                .unwrap_or_default()
                .split('.')
                .next()
                .unwrap_or_default()
                .to_owned()
        });
        Self {
            scontrol,
            node_name,
            cached: None,
        }
    }

    fn query(&self, scontrol: &PathBuf) -> Result<String, String> {
        let mut child = Command::new(scontrol)
            .args(["show", "node", &self.node_name, "--oneliner"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", scontrol.display()))?;
        let deadline = Instant::now() + Self::COMMAND_TIMEOUT;
        loop {
            match child.try_wait() {
                Ok(Some(_)) => break,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Ok(None) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!(
                        "scontrol did not answer within {} s",
                        Self::COMMAND_TIMEOUT.as_secs()
                    ));
                }
                Err(e) => return Err(format!("waiting for scontrol: {e}")),
            }
        }
        let output = child
            .wait_with_output()
            .map_err(|e| format!("reading scontrol output: {e}"))?;
        if !output.status.success() {
            return Err(format!(
                "scontrol show node {} failed ({}): {}",
                self.node_name,
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }
}

impl Collector for SlurmCollector {
    fn name(&self) -> &'static str {
        NAME
    }

    fn collect(&mut self) -> Collected {
        let Some(scontrol) = self.scontrol.clone() else {
            return Collected::unsupported(NAME, "scontrol not installed: not a Slurm node");
        };
        if let Some((at, readings)) = &self.cached
            && at.elapsed() < Self::REFRESH
        {
            return Collected {
                readings: Some(Readings::Slurm(readings.clone())),
                problems: Vec::new(),
            };
        }
        let parsed = self.query(&scontrol).and_then(|text| {
            parse_show_node(&text).ok_or_else(|| "no NodeName in scontrol output".to_owned())
        });
        match parsed {
            Ok(readings) => {
                self.cached = Some((Instant::now(), readings.clone()));
                Collected {
                    readings: Some(Readings::Slurm(readings)),
                    problems: Vec::new(),
                }
            }
            Err(message) => Collected {
                readings: None,
                problems: vec![Problem::new(NAME, ProblemKind::Failed, message)],
            },
        }
    }
}

fn find_in_path(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|candidate| candidate.is_file())
    })
}

/// Parses `scontrol show node NAME --oneliner`.
pub fn parse_show_node(text: &str) -> Option<SlurmReadings> {
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("NodeName="))?;
    // Reason is free text and always last: take the rest of the line.
    let (fields, reason) = match line.find(" Reason=") {
        Some(at) => (
            &line[..at],
            Some(line[at + " Reason=".len()..].trim().to_owned()),
        ),
        None => (line, None),
    };
    let map: BTreeMap<&str, &str> = fields
        .split_ascii_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .collect();
    let text_of = |k: &str| {
        map.get(k)
            .copied()
            .filter(|v| !v.is_empty() && *v != "(null)" && *v != "N/A")
            .map(str::to_owned)
    };
    let number = |k: &str| map.get(k).and_then(|v| v.parse::<u32>().ok());
    let megabytes = |k: &str| {
        map.get(k)
            .and_then(|v| v.parse::<u64>().ok())
            .map(|mb| mb * 1024 * 1024)
    };
    Some(SlurmReadings {
        node: SlurmNode {
            node_name: text_of("NodeName")?,
            partitions: text_of("Partitions")
                .map(|p| p.split(',').map(str::to_owned).collect())
                .unwrap_or_default(),
            cpus_total: number("CPUTot"),
            gres: text_of("Gres"),
            real_memory_bytes: megabytes("RealMemory"),
        },
        sample: SlurmSample {
            state: text_of("State").unwrap_or_default(),
            cpus_allocated: number("CPUAlloc"),
            cpus_total: number("CPUTot"),
            gres_used: text_of("GresUsed"),
            reason: reason.filter(|r| !r.is_empty()),
            allocated_memory_bytes: megabytes("AllocMem"),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NODE: &str = "NodeName=gpu01 Arch=x86_64 CoresPerSocket=32 CPUAlloc=48 CPUEfctv=128 CPUTot=128 CPULoad=45.20 AvailableFeatures=h100,ib ActiveFeatures=h100,ib Gres=gpu:h100:8(S:0-1) GresUsed=gpu:h100:6(IDX:0-5) NodeAddr=gpu01 NodeHostName=gpu01 Version=23.11.4 OS=Linux 5.15.0 RealMemory=1024000 AllocMem=393216 FreeMem=601234 Sockets=2 Boards=1 State=MIXED+DRAIN ThreadsPerCore=2 TmpDisk=0 Weight=1 Owner=N/A MCS_label=N/A Partitions=gpu,debug BootTime=2024-05-01T10:00:00 SlurmdStartTime=2024-05-01T10:01:00 Reason=ECC errors on GPU 3 [admin@2024-05-02T08:00:00]\n";

    #[test]
    fn parses_a_node() {
        let r = parse_show_node(NODE).unwrap();
        assert_eq!(r.node.node_name, "gpu01");
        assert_eq!(r.node.partitions, ["gpu", "debug"]);
        assert_eq!(r.node.cpus_total, Some(128));
        assert_eq!(r.node.gres.as_deref(), Some("gpu:h100:8(S:0-1)"));
        assert_eq!(r.node.real_memory_bytes, Some(1_024_000 * 1024 * 1024));
        assert_eq!(r.sample.state, "MIXED+DRAIN");
        assert_eq!(r.sample.cpus_allocated, Some(48));
        assert_eq!(r.sample.gres_used.as_deref(), Some("gpu:h100:6(IDX:0-5)"));
        assert_eq!(
            r.sample.reason.as_deref(),
            Some("ECC errors on GPU 3 [admin@2024-05-02T08:00:00]")
        );
    }

    #[test]
    fn null_values_are_absent() {
        let r = parse_show_node(
            "NodeName=n1 CPUAlloc=0 CPUTot=4 Gres=(null) State=IDLE Partitions=batch\n",
        )
        .unwrap();
        assert_eq!(r.node.gres, None);
        assert_eq!(r.sample.cpus_allocated, Some(0));
        assert_eq!(r.sample.reason, None);
        assert_eq!(parse_show_node("Node n1 not found\n"), None);
    }

    #[test]
    fn without_scontrol_slurm_is_unsupported() {
        let mut c = SlurmCollector {
            scontrol: None,
            node_name: "n1".into(),
            cached: None,
        };
        let collected = c.collect();
        assert_eq!(collected.problems[0].kind, ProblemKind::Unsupported);
    }
}
