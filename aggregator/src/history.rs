//! History beyond the raw window: one-minute rollups.
//!
//! Raw samples are kept for `raw_retention` (default 24 h). The retention
//! task then folds each host's samples into one [`Rollup`] per minute
//! (count, sum, min and max of the figures people chart: CPU, memory, load,
//! disk and network throughput, the hottest sensor, and per GPU
//! utilization, memory, temperature and power), deletes the raw
//! rows in the same transaction, and drops rollups older than
//! `rollup_retention` (default 30 days).
//!
//! Rollups keep sums and counts, not averages, so folding in a late sample
//! (an agent that was offline longer than the raw window) stays exact; each
//! rollup records the range of sequence numbers it covers, and a sample in
//! that range (a resend of one already folded in) is not counted twice.

use prost::Message as _;
use suanli_protocol::{model::HostSample, stream::SequencedSample};

/// The minute `at_ms` falls in as staff read it, in Beijing time (UTC+8,
/// no daylight saving): `2026-12-07 10:42`.
pub fn minute_text(at_ms: u64) -> String {
    let beijing = time::UtcOffset::from_hms(8, 0, 0).unwrap_or(time::UtcOffset::UTC);
    match time::OffsetDateTime::from_unix_timestamp((at_ms / 1000) as i64) {
        Ok(t) => {
            let t = t.to_offset(beijing);
            format!(
                "{:04}-{:02}-{:02} {:02}:{:02}",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute()
            )
        }
        Err(_) => format!("{at_ms} ms"),
    }
}

/// Count, sum, min and max of one reading over a minute. A reading that was
/// absent in a sample is simply not counted. Min and max are kept as f32
/// (7 significant digits: ample for a chart, and 8 bytes less per figure).
#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct Stat {
    #[prost(uint64, tag = "1")]
    pub n: u64,
    #[prost(double, tag = "2")]
    pub sum: f64,
    #[prost(float, tag = "3")]
    pub min: f32,
    #[prost(float, tag = "4")]
    pub max: f32,
}

impl Stat {
    pub fn add(&mut self, value: Option<f64>) {
        let Some(v) = value.filter(|v| v.is_finite()) else {
            return;
        };
        let narrow = v as f32;
        if self.n == 0 {
            self.min = narrow;
            self.max = narrow;
        } else {
            self.min = self.min.min(narrow);
            self.max = self.max.max(narrow);
        }
        self.n += 1;
        self.sum += v;
    }

    pub fn merge(&mut self, other: &Stat) {
        if other.n == 0 {
            return;
        }
        if self.n == 0 {
            *self = *other;
            return;
        }
        self.n += other.n;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    pub fn mean(&self) -> Option<f64> {
        (self.n > 0).then(|| self.sum / self.n as f64)
    }
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct GpuRollup {
    #[prost(uint32, tag = "1")]
    pub index: u32,
    #[prost(message, required, tag = "2")]
    pub utilization_percent: Stat,
    #[prost(message, required, tag = "3")]
    pub memory_used_bytes: Stat,
    #[prost(message, required, tag = "4")]
    pub temperature_celsius: Stat,
    #[prost(message, required, tag = "5")]
    pub power_milliwatts: Stat,
}

/// One host's minute, stored as protobuf (79 bytes for a CPU host,
/// 845 for one with 8 GPUs).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Rollup {
    #[prost(uint64, tag = "1")]
    pub samples: u64,
    #[prost(uint64, tag = "2")]
    pub first_seq: u64,
    #[prost(uint64, tag = "3")]
    pub last_seq: u64,
    #[prost(message, required, tag = "4")]
    pub cpu_utilization_percent: Stat,
    #[prost(message, required, tag = "5")]
    pub memory_used_bytes: Stat,
    #[prost(message, required, tag = "6")]
    pub load_average_1m: Stat,
    /// Ordered by GPU index.
    #[prost(message, repeated, tag = "7")]
    pub gpus: Vec<GpuRollup>,
    // Added later: a minute rolled up before reads as having none.
    #[prost(message, required, tag = "8")]
    pub disk_read_bytes_per_second: Stat,
    #[prost(message, required, tag = "9")]
    pub disk_write_bytes_per_second: Stat,
    #[prost(message, required, tag = "10")]
    pub network_rx_bytes_per_second: Stat,
    #[prost(message, required, tag = "11")]
    pub network_tx_bytes_per_second: Stat,
    #[prost(message, required, tag = "12")]
    pub temperature_celsius: Stat,
}

/// What a host's disks and network moved and how hot it ran in one
/// sample: disks (whole disks, as the agent reports them) and network
/// interfaces summed, loopback and virtual interfaces left out (as
/// node_exporter dashboards do, so container traffic is not counted
/// twice), and the hottest sensor. Absent where no device reported.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct HostIo {
    pub disk_read_bytes_per_second: Option<f64>,
    pub disk_write_bytes_per_second: Option<f64>,
    pub network_rx_bytes_per_second: Option<f64>,
    pub network_tx_bytes_per_second: Option<f64>,
    pub temperature_celsius: Option<f64>,
}

impl HostIo {
    pub fn of(s: &HostSample) -> Self {
        let nics = || {
            s.network_interfaces
                .iter()
                .filter(|n| physical_interface(&n.name))
        };
        Self {
            disk_read_bytes_per_second: total(
                s.block_devices.iter().map(|d| d.read_bytes_per_second),
            ),
            disk_write_bytes_per_second: total(
                s.block_devices.iter().map(|d| d.write_bytes_per_second),
            ),
            network_rx_bytes_per_second: total(nics().map(|n| n.rx_bytes_per_second)),
            network_tx_bytes_per_second: total(nics().map(|n| n.tx_bytes_per_second)),
            temperature_celsius: s
                .temperatures
                .iter()
                .filter_map(|t| t.celsius)
                .max_by(f64::total_cmp),
        }
    }
}

/// Not loopback, not one of the virtual interfaces container and VM hosts
/// make (bridges, veth pairs, tunnels, shaping), and not one that carries
/// other interfaces' traffic again (bonds, VLANs): each byte counted once.
fn physical_interface(name: &str) -> bool {
    const VIRTUAL: [&str; 22] = [
        "lo", "veth", "docker", "br", "virbr", "vmbr", "vnet", "lxc", "cni", "flannel", "cali",
        "cilium", "kube-", "vxlan", "tun", "tap", "wg", "ifb", "dummy", "bond", "team", "ovs",
    ];
    !VIRTUAL.iter().any(|prefix| name.starts_with(prefix)) && !name.contains('.')
}

/// The sum of what was read; absent if nothing was.
fn total(values: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    values
        .flatten()
        .filter(|v| v.is_finite())
        .fold(None, |sum, v| Some(sum.unwrap_or(0.0) + v))
}

impl Rollup {
    /// Folds one sample in, unless its sequence number is already covered.
    pub fn add(&mut self, sample: &SequencedSample) -> bool {
        if self.samples > 0 && (self.first_seq..=self.last_seq).contains(&sample.seq) {
            return false;
        }
        if self.samples == 0 {
            self.first_seq = sample.seq;
            self.last_seq = sample.seq;
        } else {
            self.first_seq = self.first_seq.min(sample.seq);
            self.last_seq = self.last_seq.max(sample.seq);
        }
        self.samples += 1;
        let s = &sample.sample;
        self.cpu_utilization_percent.add(s.cpu.utilization_percent);
        self.memory_used_bytes
            .add(s.memory.used_bytes.map(|b| b as f64));
        self.load_average_1m.add(s.cpu.load_average_1m);
        let io = HostIo::of(s);
        self.disk_read_bytes_per_second
            .add(io.disk_read_bytes_per_second);
        self.disk_write_bytes_per_second
            .add(io.disk_write_bytes_per_second);
        self.network_rx_bytes_per_second
            .add(io.network_rx_bytes_per_second);
        self.network_tx_bytes_per_second
            .add(io.network_tx_bytes_per_second);
        self.temperature_celsius.add(io.temperature_celsius);
        for gpu in &s.gpus {
            let g = match self.gpus.binary_search_by_key(&gpu.index, |g| g.index) {
                Ok(i) => &mut self.gpus[i],
                Err(i) => {
                    self.gpus.insert(
                        i,
                        GpuRollup {
                            index: gpu.index,
                            ..Default::default()
                        },
                    );
                    &mut self.gpus[i]
                }
            };
            g.utilization_percent
                .add(gpu.utilization_percent.map(f64::from));
            g.memory_used_bytes
                .add(gpu.memory_used_bytes.map(|b| b as f64));
            g.temperature_celsius
                .add(gpu.temperature_celsius.map(f64::from));
            g.power_milliwatts.add(gpu.power_milliwatts.map(f64::from));
        }
        true
    }

    /// Folds another span of the same host in (an hour's minutes).
    pub fn merge(&mut self, other: &Rollup) {
        if other.samples == 0 {
            return;
        }
        if self.samples == 0 {
            self.first_seq = other.first_seq;
            self.last_seq = other.last_seq;
        } else {
            self.first_seq = self.first_seq.min(other.first_seq);
            self.last_seq = self.last_seq.max(other.last_seq);
        }
        self.samples += other.samples;
        self.cpu_utilization_percent
            .merge(&other.cpu_utilization_percent);
        self.memory_used_bytes.merge(&other.memory_used_bytes);
        self.load_average_1m.merge(&other.load_average_1m);
        self.disk_read_bytes_per_second
            .merge(&other.disk_read_bytes_per_second);
        self.disk_write_bytes_per_second
            .merge(&other.disk_write_bytes_per_second);
        self.network_rx_bytes_per_second
            .merge(&other.network_rx_bytes_per_second);
        self.network_tx_bytes_per_second
            .merge(&other.network_tx_bytes_per_second);
        self.temperature_celsius.merge(&other.temperature_celsius);
        for gpu in &other.gpus {
            match self.gpus.binary_search_by_key(&gpu.index, |g| g.index) {
                Ok(i) => {
                    let g = &mut self.gpus[i];
                    g.utilization_percent.merge(&gpu.utilization_percent);
                    g.memory_used_bytes.merge(&gpu.memory_used_bytes);
                    g.temperature_celsius.merge(&gpu.temperature_celsius);
                    g.power_milliwatts.merge(&gpu.power_milliwatts);
                }
                Err(i) => self.gpus.insert(i, gpu.clone()),
            }
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        self.encode_to_vec()
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, prost::DecodeError> {
        Self::decode(bytes)
    }
}

/// The start of the minute holding `unix_ms`.
pub fn minute_of(unix_ms: u64) -> u64 {
    unix_ms - unix_ms % 60_000
}

pub const HOUR_MS: u64 = 3_600_000;

/// The start of the hour holding `unix_ms`.
pub fn hour_of(unix_ms: u64) -> u64 {
    unix_ms - unix_ms % HOUR_MS
}

#[cfg(test)]
mod tests {
    use suanli_protocol::model::GpuSample;

    use super::*;

    #[test]
    fn minutes_read_in_beijing_time() {
        // 2026-12-06 17:42:30 UTC is 01:42 the next day in Beijing.
        assert_eq!(minute_text(1_796_578_950_000), "2026-12-07 01:42");
    }

    fn sample(seq: u64, cpu: Option<f64>, gpu_util: Option<u32>) -> SequencedSample {
        let mut s = SequencedSample {
            seq,
            ..Default::default()
        };
        s.sample.cpu.utilization_percent = cpu;
        s.sample.gpus.push(GpuSample {
            index: 0,
            utilization_percent: gpu_util,
            ..Default::default()
        });
        s
    }

    #[test]
    fn absent_readings_are_not_counted_as_zero() {
        let mut r = Rollup::default();
        r.add(&sample(1, Some(10.0), Some(50)));
        r.add(&sample(2, None, Some(70)));
        r.add(&sample(3, Some(30.0), None));
        assert_eq!(r.samples, 3);
        assert_eq!(r.cpu_utilization_percent.mean(), Some(20.0));
        assert_eq!(r.gpus[0].utilization_percent.mean(), Some(60.0));
        assert_eq!(r.gpus[0].utilization_percent.max, 70.0);
        assert_eq!(r.memory_used_bytes.mean(), None, "never read: absent");
    }

    #[test]
    fn a_sample_is_folded_in_once() {
        let mut r = Rollup::default();
        assert!(r.add(&sample(5, Some(10.0), None)));
        assert!(r.add(&sample(7, Some(30.0), None)));
        assert!(
            !r.add(&sample(6, Some(99.0), None)),
            "within the covered range"
        );
        assert!(!r.add(&sample(5, Some(99.0), None)));
        assert_eq!(r.cpu_utilization_percent.mean(), Some(20.0));
        let back = Rollup::from_bytes(&r.to_bytes()).unwrap();
        assert_eq!(back, r);
    }

    /// An hour made of its minutes reads as if its samples had been
    /// folded into it one by one.
    #[test]
    fn minutes_merge_into_the_hour_they_make() {
        let samples = [
            sample(1, Some(10.0), Some(50)),
            sample(2, None, Some(70)),
            sample(3, Some(30.0), None),
        ];
        let mut whole = Rollup::default();
        let mut hour = Rollup::default();
        for s in &samples {
            whole.add(s);
            let mut minute = Rollup::default();
            minute.add(s);
            hour.merge(&minute);
        }
        hour.merge(&Rollup::default());
        assert_eq!(hour, whole);
        assert_eq!(hour_of(7_199_999), 3_600_000);
    }

    #[test]
    fn io_sums_physical_devices_and_takes_the_hottest_sensor() {
        use suanli_protocol::model::{
            BlockDeviceSample, NetworkInterfaceSample, TemperatureSample,
        };
        let mut s = HostSample::default();
        assert_eq!(
            HostIo::of(&s),
            HostIo::default(),
            "nothing read: absent, not 0"
        );
        let nic = |name: &str, rx: f64| NetworkInterfaceSample {
            name: name.into(),
            rx_bytes_per_second: Some(rx),
            tx_bytes_per_second: None,
            ..Default::default()
        };
        s.network_interfaces = vec![
            nic("eth0", 100.0),
            nic("lo", 1e9),
            nic("veth12ab", 5e8),
            nic("bond0", 150.0),
            nic("eth0.100", 20.0),
            nic("ib0", 50.0),
        ];
        s.block_devices = vec![BlockDeviceSample {
            name: "nvme0n1".into(),
            read_bytes_per_second: Some(7.0),
            ..Default::default()
        }];
        s.temperatures = ["a", "b"]
            .iter()
            .zip([Some(45.0), Some(71.5)])
            .map(|(sensor, celsius)| TemperatureSample {
                sensor: (*sensor).into(),
                celsius,
                ..Default::default()
            })
            .collect();
        let io = HostIo::of(&s);
        assert_eq!(io.network_rx_bytes_per_second, Some(150.0));
        assert_eq!(io.network_tx_bytes_per_second, None);
        assert_eq!(io.disk_read_bytes_per_second, Some(7.0));
        assert_eq!(io.disk_write_bytes_per_second, None);
        assert_eq!(io.temperature_celsius, Some(71.5));
    }

    #[test]
    fn a_rollup_is_small() {
        let mut r = Rollup::default();
        for seq in 0..12 {
            let mut s = sample(1_000_000 + seq, Some(12.345), Some(87));
            s.sample.memory.used_bytes = Some(123_456_789_012);
            s.sample.cpu.load_average_1m = Some(3.21);
            let gpu = s.sample.gpus[0].clone();
            for index in 1..8 {
                s.sample.gpus.push(GpuSample {
                    index,
                    ..gpu.clone()
                });
            }
            for g in &mut s.sample.gpus {
                g.memory_used_bytes = Some(40 << 30);
                g.temperature_celsius = Some(61);
                g.power_milliwatts = Some(350_000);
            }
            r.add(&s);
        }
        let bytes = r.to_bytes().len();
        assert!(bytes < 1000, "an 8-GPU host's minute takes {bytes} bytes");
    }

    #[test]
    fn minutes_start_on_the_minute() {
        assert_eq!(minute_of(1_700_000_059_999), 1_700_000_040_000);
        assert_eq!(minute_of(120_000), 120_000);
    }
}
