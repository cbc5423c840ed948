//! InfiniBand (and RoCE) ports from `/sys/class/infiniband`.

use std::{collections::BTreeMap, time::Instant};

use suanli_protocol::model::{HostReport, InfinibandPort, InfinibandPortSample};

use super::{Collected, Collector, HostRoot, Readings, rate};

const NAME: &str = "infiniband";
const CLASS: &str = "/sys/class/infiniband";

#[derive(Debug, Default)]
pub struct InfinibandReadings {
    pub ports: Vec<InfinibandPort>,
    pub samples: Vec<InfinibandPortSample>,
}

impl InfinibandReadings {
    pub(crate) fn apply(self, report: &mut HostReport) {
        report.inventory.infiniband_ports = self.ports;
        report.sample.infiniband_ports = self.samples;
    }
}

#[derive(Debug)]
pub struct InfinibandCollector {
    root: HostRoot,
    previous: BTreeMap<(String, u32), (Instant, u64, u64)>,
}

impl InfinibandCollector {
    pub fn new(root: HostRoot) -> Self {
        Self {
            root,
            previous: BTreeMap::new(),
        }
    }
}

impl Collector for InfinibandCollector {
    fn name(&self) -> &'static str {
        NAME
    }

    fn collect(&mut self) -> Collected {
        let Ok(devices) = self.root.entries(CLASS) else {
            return Collected::unsupported(
                NAME,
                format!("no {CLASS}: no InfiniBand or RDMA devices"),
            );
        };
        let root = &self.root;
        let now = Instant::now();
        let mut readings = InfinibandReadings::default();
        for device in devices {
            let dir = format!("{CLASS}/{device}");
            let Ok(ports) = root.entries(format!("{dir}/ports")) else {
                continue;
            };
            for port_name in ports {
                let Ok(port) = port_name.parse::<u32>() else {
                    continue;
                };
                let pdir = format!("{dir}/ports/{port}");
                let counter = |name: &str| root.number::<u64>(format!("{pdir}/counters/{name}"));
                // The *_data counters count 4-byte words (IBTA PortCounters).
                let rx_bytes = counter("port_rcv_data").map(|w| w.saturating_mul(4));
                let tx_bytes = counter("port_xmit_data").map(|w| w.saturating_mul(4));

                let key = (device.clone(), port);
                let (rx_rate, tx_rate) = match (self.previous.get(&key), rx_bytes, tx_bytes) {
                    (Some(&(at, rx0, tx0)), Some(rx), Some(tx)) => {
                        let elapsed = now.duration_since(at);
                        (rate(rx0, rx, elapsed), rate(tx0, tx, elapsed))
                    }
                    _ => (None, None),
                };
                if let (Some(rx), Some(tx)) = (rx_bytes, tx_bytes) {
                    self.previous.insert(key, (now, rx, tx));
                }

                readings.ports.push(InfinibandPort {
                    device: device.clone(),
                    port,
                    hca_type: root.attribute(format!("{dir}/hca_type")),
                    firmware_version: root.attribute(format!("{dir}/fw_ver")),
                    node_guid: root.attribute(format!("{dir}/node_guid")),
                    link_layer: root.attribute(format!("{pdir}/link_layer")),
                    subnet_prefix: root
                        .attribute(format!("{pdir}/gids/0"))
                        .and_then(|gid| subnet_prefix(&gid)),
                    sm_lid: root
                        .attribute(format!("{pdir}/sm_lid"))
                        .and_then(|lid| parse_lid(&lid)),
                });
                readings.samples.push(InfinibandPortSample {
                    device: device.clone(),
                    port,
                    state: root
                        .attribute(format!("{pdir}/state"))
                        .map(|s| strip_code(&s)),
                    physical_state: root
                        .attribute(format!("{pdir}/phys_state"))
                        .map(|s| strip_code(&s)),
                    rate_gbps: root
                        .attribute(format!("{pdir}/rate"))
                        .and_then(|r| parse_rate(&r)),
                    rx_bytes_total: rx_bytes,
                    tx_bytes_total: tx_bytes,
                    rx_packets_total: counter("port_rcv_packets"),
                    tx_packets_total: counter("port_xmit_packets"),
                    symbol_errors_total: counter("symbol_error"),
                    link_downed_total: counter("link_downed"),
                    rx_errors_total: counter("port_rcv_errors"),
                    rx_bytes_per_second: rx_rate,
                    tx_bytes_per_second: tx_rate,
                });
            }
        }
        Collected {
            readings: Some(Readings::Infiniband(readings)),
            problems: Vec::new(),
        }
    }
}

/// "4: ACTIVE" → "ACTIVE".
fn strip_code(value: &str) -> String {
    value
        .split_once(':')
        .map_or(value, |(_, name)| name)
        .trim()
        .to_owned()
}

/// "400 Gb/sec (4X NDR)" → 400.0.
/// The subnet prefix of a GID ("fe80:0000:0000:0000:a088:c203:0045:1e2a"):
/// its first four groups.
fn subnet_prefix(gid: &str) -> Option<String> {
    let groups: Vec<&str> = gid.trim().split(':').collect();
    (groups.len() == 8 && groups.iter().all(|g| g.len() == 4))
        .then(|| groups[..4].join(":").to_ascii_lowercase())
}

/// LIDs read as hex with a 0x prefix ("0x1").
fn parse_lid(value: &str) -> Option<u32> {
    let v = value.trim();
    u32::from_str_radix(v.strip_prefix("0x").unwrap_or(v), 16).ok()
}

pub fn parse_rate(value: &str) -> Option<f64> {
    let (number, unit) = value.trim().split_once(' ')?;
    unit.starts_with("Gb/sec").then(|| number.parse().ok())?
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn write(base: &std::path::Path, path: &str, text: &str) {
        let p = base.join(path);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    }

    #[test]
    fn reads_ports_from_a_fixture_tree() {
        let dir = tempfile::tempdir().unwrap();
        let b = dir.path();
        let p = "sys/class/infiniband/mlx5_0";
        write(b, &format!("{p}/hca_type"), "MT4129\n");
        write(b, &format!("{p}/fw_ver"), "28.39.1002\n");
        write(b, &format!("{p}/node_guid"), "a088:c203:0045:1e2a\n");
        write(b, &format!("{p}/ports/1/state"), "4: ACTIVE\n");
        write(b, &format!("{p}/ports/1/phys_state"), "5: LinkUp\n");
        write(b, &format!("{p}/ports/1/rate"), "400 Gb/sec (4X NDR)\n");
        write(b, &format!("{p}/ports/1/link_layer"), "InfiniBand\n");
        write(
            b,
            &format!("{p}/ports/1/gids/0"),
            "fe80:0000:0000:0000:a088:c203:0045:1e2a\n",
        );
        write(b, &format!("{p}/ports/1/sm_lid"), "0x1\n");
        write(b, &format!("{p}/ports/1/counters/port_rcv_data"), "1000\n");
        write(b, &format!("{p}/ports/1/counters/port_xmit_data"), "250\n");
        write(b, &format!("{p}/ports/1/counters/symbol_error"), "0\n");

        let mut c = InfinibandCollector::new(HostRoot::at(b));
        let mut report = HostReport::default();
        c.collect().apply(&mut report);
        assert!(report.problems.is_empty());
        let port = &report.inventory.infiniband_ports[0];
        assert_eq!((port.device.as_str(), port.port), ("mlx5_0", 1));
        assert_eq!(port.hca_type.as_deref(), Some("MT4129"));
        assert_eq!(port.link_layer.as_deref(), Some("InfiniBand"));
        assert_eq!(port.subnet_prefix.as_deref(), Some("fe80:0000:0000:0000"));
        assert_eq!(port.sm_lid, Some(1));
        let s = &report.sample.infiniband_ports[0];
        assert_eq!(s.state.as_deref(), Some("ACTIVE"));
        assert_eq!(s.physical_state.as_deref(), Some("LinkUp"));
        assert_eq!(s.rate_gbps, Some(400.0));
        assert_eq!(s.rx_bytes_total, Some(4000), "4-byte words become bytes");
        assert_eq!(s.tx_bytes_total, Some(1000));
        assert_eq!(s.symbol_errors_total, Some(0), "a real zero stays zero");
        assert_eq!(s.link_downed_total, None, "a missing counter stays absent");
        assert_eq!(s.rx_bytes_per_second, None, "no rate from one reading");
    }

    #[test]
    fn no_infiniband_is_unsupported_not_failed() {
        let dir = tempfile::tempdir().unwrap();
        let collected = InfinibandCollector::new(HostRoot::at(dir.path())).collect();
        assert!(collected.readings.is_none());
        assert_eq!(
            collected.problems[0].kind,
            suanli_protocol::model::ProblemKind::Unsupported
        );
    }

    #[test]
    fn parses_rates() {
        assert_eq!(parse_rate("100 Gb/sec (4X EDR)"), Some(100.0));
        assert_eq!(parse_rate("2.5 Gb/sec (1X SDR)"), Some(2.5));
        assert_eq!(parse_rate("unknown"), None);
    }
}
