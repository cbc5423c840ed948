//! 算力度量: capacity in standard units. An accelerator is rated from the
//! shipped capacity table (`data/capacity.toml`), a CPU host from its cores,
//! clock and vector extensions. What cannot be rated is absent, never 0
//! and never a guess. Formulas and conventions: docs/market-monitoring.md.

use std::sync::LazyLock;

use suanli_protocol::model::CpuInventory;

use crate::accel;

/// The precisions capacity is counted in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Precision {
    Fp64,
    Fp64Tensor,
    Fp32,
    Tf32,
    Fp16,
    Bf16,
    Fp8,
    Int8,
}

impl Precision {
    pub const ALL: [Precision; 8] = [
        Precision::Fp64,
        Precision::Fp64Tensor,
        Precision::Fp32,
        Precision::Tf32,
        Precision::Fp16,
        Precision::Bf16,
        Precision::Fp8,
        Precision::Int8,
    ];
    /// What a CPU is rated in.
    pub const CPU: [Precision; 2] = [Precision::Fp64, Precision::Fp32];

    pub fn as_str(self) -> &'static str {
        match self {
            Precision::Fp64 => "fp64",
            Precision::Fp64Tensor => "fp64_tensor",
            Precision::Fp32 => "fp32",
            Precision::Tf32 => "tf32",
            Precision::Fp16 => "fp16",
            Precision::Bf16 => "bf16",
            Precision::Fp8 => "fp8",
            Precision::Int8 => "int8",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == text)
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Peak dense throughput per precision, in GFLOPS (GOPS for int8).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rating([Option<u64>; 8]);

impl Rating {
    pub fn get(&self, p: Precision) -> Option<u64> {
        self.0[p.index()]
    }

    fn set(&mut self, p: Precision, gflops: u64) {
        self.0[p.index()] = Some(gflops);
    }
}

/// One row of the table.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableRow {
    pub vendor: String,
    pub names: Vec<String>,
    #[serde(default)]
    pub except: Vec<String>,
    pub per: String,
    #[serde(default = "one")]
    pub devices_per_unit: u32,
    pub source: String,
    pub source_kind: String,
    pub dense: String,
    fp64: Option<f64>,
    fp64_tensor: Option<f64>,
    fp32: Option<f64>,
    tf32: Option<f64>,
    fp16: Option<f64>,
    bf16: Option<f64>,
    fp8: Option<f64>,
    int8: Option<f64>,
}

fn one() -> u32 {
    1
}

impl TableRow {
    /// The row's figures per device, in GFLOPS.
    pub fn rating(&self) -> Rating {
        let mut rating = Rating::default();
        let figures = [
            self.fp64,
            self.fp64_tensor,
            self.fp32,
            self.tf32,
            self.fp16,
            self.bf16,
            self.fp8,
            self.int8,
        ];
        for (p, tflops) in Precision::ALL.into_iter().zip(figures) {
            if let Some(t) = tflops {
                // TFLOPS with at most three decimals: exact in GFLOPS.
                rating.set(
                    p,
                    (t * 1000.0 / f64::from(self.devices_per_unit)).round() as u64,
                );
            }
        }
        rating
    }

    fn matches(&self, model_key: &str) -> bool {
        model_key.split(' ').next() == Some(self.vendor.as_str())
            && self
                .names
                .iter()
                .any(|n| accel::model_matches(model_key, n))
            && !self
                .except
                .iter()
                .any(|w| accel::model_matches(model_key, w))
    }
}

/// The capacity table as shipped.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapacityTable {
    pub version: String,
    #[serde(rename = "model")]
    pub rows: Vec<TableRow>,
}

pub static TABLE: LazyLock<CapacityTable> = LazyLock::new(|| {
    CapacityTable::parse(include_str!("../data/capacity.toml"))
        .expect("the shipped capacity table parses")
});

impl CapacityTable {
    pub fn parse(text: &str) -> Result<Self, String> {
        let table: CapacityTable = toml::from_str(text).map_err(|e| e.to_string())?;
        for row in &table.rows {
            if row.devices_per_unit == 0 {
                return Err(format!("{:?}: devices_per_unit is 0", row.names));
            }
        }
        Ok(table)
    }

    /// The first row naming the accelerator of `model_key` (see
    /// [`accel::model_key`]), if any.
    pub fn row(&self, model_key: &str) -> Option<&TableRow> {
        self.rows.iter().find(|r| r.matches(model_key))
    }

    /// The accelerator's rating; all absent for a model not in the table.
    pub fn rate(&self, model_key: &str) -> Rating {
        self.row(model_key)
            .map(TableRow::rating)
            .unwrap_or_default()
    }
}

/// How a CPU's peak was reckoned: the clock it used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clock {
    /// The nominal clock the cpufreq driver states, or Intel's brand
    /// string ("… @ 2.10GHz") where no driver does (virtual machines).
    Base,
    /// The maximum clock: an upper bound where no base clock is stated.
    Max,
}

/// FP64 operations per cycle per core for the host's widest vector unit:
/// two FMA pipes of its width (one FMA is two operations), the common server
/// case; where a family has fewer, the lower figure (docs/market-monitoring.md).
fn fp64_per_cycle(cpu: &CpuInventory) -> Option<u32> {
    let has = |f: &str| cpu.vector_extensions.iter().any(|e| e == f);
    let vendor = cpu.vendor.as_deref().unwrap_or_default();
    Some(if has("avx512f") {
        // Zen 4 runs 512-bit operations on 256-bit pipes.
        if vendor == "AuthenticAMD" { 16 } else { 32 }
    } else if has("avx2") && has("fma") {
        // Hygon's Dhyana is Zen 1: two 128-bit FMA pipes.
        if vendor == "HygonGenuine" { 8 } else { 16 }
    } else if has("avx") {
        8
    } else if has("sse2") {
        4
    } else if has("lasx") {
        16
    } else if has("lsx") || has("asimd") || has("sve") {
        8
    } else {
        return None;
    })
}

/// A CPU host's peak FP64 and FP32 in GFLOPS: physical cores × clock ×
/// operations per cycle. Absent when the cores, the clock or the vector
/// extensions are unknown.
pub fn rate_cpu(cpu: &CpuInventory) -> (Rating, Option<Clock>) {
    let mut rating = Rating::default();
    let (Some(cores), Some(per_cycle)) = (cpu.physical_cores, fp64_per_cycle(cpu)) else {
        return (rating, None);
    };
    let base = cpu
        .base_frequency_mhz
        .or_else(|| brand_clock_mhz(cpu.model_name.as_deref()?));
    let (mhz, clock) = match (base, cpu.max_frequency_mhz) {
        (Some(base), _) => (base, Clock::Base),
        (None, Some(max)) => (max, Clock::Max),
        (None, None) => return (rating, None),
    };
    let fp64 = u64::from(cores) * u64::from(mhz) * u64::from(per_cycle) / 1000;
    rating.set(Precision::Fp64, fp64);
    rating.set(Precision::Fp32, fp64 * 2);
    (rating, Some(clock))
}

/// The nominal clock Intel prints at the end of its brand string
/// ("Intel(R) Xeon(R) Gold 6330 CPU @ 2.00GHz").
fn brand_clock_mhz(model_name: &str) -> Option<u32> {
    let ghz = model_name.rsplit_once('@')?.1.trim().strip_suffix("GHz")?;
    let ghz: f64 = ghz.trim().parse().ok()?;
    (0.1..20.0)
        .contains(&ghz)
        .then(|| (ghz * 1000.0).round() as u32)
}

#[cfg(test)]
mod tests {
    use suanli_protocol::model::{AcceleratorKind, AcceleratorVendor, GpuInventory};

    use super::*;

    fn key(vendor: AcceleratorVendor, name: &str) -> String {
        accel::model_key(&GpuInventory {
            vendor,
            kind: vendor.kind(),
            name: Some(name.into()),
            ..GpuInventory::default()
        })
    }

    #[test]
    fn every_row_says_where_its_figures_come_from_and_how_dense_was_read() {
        let table = &*TABLE;
        assert!(!table.version.is_empty());
        for row in &table.rows {
            let name = format!("{} {:?}", row.vendor, row.names);
            assert!(!row.names.is_empty(), "{name}");
            assert!(row.source.len() > 20, "{name}: a source");
            assert!(
                row.source_kind == "datasheet" || row.source_kind == "secondary",
                "{name}: source_kind {}",
                row.source_kind
            );
            assert!(
                ["dense", "sparse", "sparsity", "稠密"]
                    .iter()
                    .any(|w| row.dense.contains(w)),
                "{name}: the dense note says how dense was read: {}",
                row.dense
            );
            assert!(
                ["card", "chip", "package"].contains(&row.per.as_str()),
                "{name}"
            );
            assert!(
                AcceleratorVendor::ALL
                    .iter()
                    .any(|v| v.as_str() == row.vendor),
                "{name}: vendor as the agent names it"
            );
            let rating = row.rating();
            assert!(
                Precision::ALL.iter().any(|p| rating.get(*p).is_some()),
                "{name}: a row with no figure"
            );
            // A sparse figure read as dense shows as FP16 above twice TF32
            // on parts that have both.
            if let (Some(tf32), Some(fp16)) =
                (rating.get(Precision::Tf32), rating.get(Precision::Fp16))
            {
                assert!(
                    fp16 <= tf32 * 2 + 1000,
                    "{name}: TF32 {tf32} vs FP16 {fp16}"
                );
            }
        }
    }

    #[test]
    fn names_as_vendor_libraries_report_them_find_their_row() {
        let rated = |vendor, name: &str, p: Precision| TABLE.rate(&key(vendor, name)).get(p);
        use AcceleratorVendor::*;
        assert_eq!(
            rated(Nvidia, "NVIDIA H100 80GB HBM3", Precision::Fp16),
            Some(989_500)
        );
        assert_eq!(
            rated(Nvidia, "NVIDIA H100 PCIe", Precision::Fp16),
            Some(756_500)
        );
        assert_eq!(
            rated(Nvidia, "NVIDIA H100 NVL", Precision::Fp64),
            Some(30_000)
        );
        assert_eq!(
            rated(Nvidia, "NVIDIA A100-SXM4-80GB", Precision::Tf32),
            Some(156_000)
        );
        assert_eq!(
            rated(Nvidia, "NVIDIA A800 80GB PCIe", Precision::Fp16),
            Some(312_000)
        );
        assert_eq!(
            rated(Nvidia, "Tesla V100-SXM2-32GB", Precision::Fp16),
            Some(125_000)
        );
        assert_eq!(
            rated(Nvidia, "Tesla V100-PCIE-32GB", Precision::Fp16),
            Some(112_000)
        );
        assert_eq!(
            rated(Nvidia, "Tesla V100S-PCIE-32GB", Precision::Fp16),
            Some(130_000)
        );
        assert_eq!(rated(Nvidia, "NVIDIA L4", Precision::Fp8), Some(242_500));
        assert_eq!(rated(Nvidia, "NVIDIA L40S", Precision::Bf16), Some(362_050));
        assert_eq!(rated(Nvidia, "NVIDIA A10", Precision::Fp32), Some(31_200));
        assert_eq!(
            rated(Huawei, "Ascend 910B3", Precision::Fp16),
            Some(320_000)
        );
        assert_eq!(
            rated(Cambricon, "MLU370-X8", Precision::Int8),
            Some(256_000)
        );
        assert_eq!(rated(Metax, "MXC500", Precision::Fp16), Some(128_000));
        assert_eq!(
            rated(Iluvatar, "Iluvatar BI-V150", Precision::Fp16),
            Some(240_000)
        );
        // Per device: an MI250X's two GCDs are two devices.
        assert_eq!(
            rated(Amd, "AMD Instinct MI250X", Precision::Fp64),
            Some(23_950)
        );
        // Not in the table, or not at this precision: absent, never 0.
        assert_eq!(
            rated(Nvidia, "NVIDIA GeForce RTX 4090", Precision::Fp16),
            None
        );
        assert_eq!(rated(Nvidia, "Tesla V100-SXM2-32GB", Precision::Bf16), None);
        assert_eq!(rated(Hygon, "K100_AI", Precision::Fp16), None);
        assert_eq!(rated(Huawei, "Ascend 910C", Precision::Fp16), None);
        // The vendor is part of the match.
        assert_eq!(rated(Amd, "H100", Precision::Fp16), None);
        assert!(AcceleratorKind::Gpu.as_str() == "gpu");
    }

    fn cpu(vendor: &str, extensions: &[&str], cores: u32, base: Option<u32>) -> CpuInventory {
        CpuInventory {
            vendor: Some(vendor.into()),
            physical_cores: Some(cores),
            vector_extensions: extensions.iter().map(|e| e.to_string()).collect(),
            base_frequency_mhz: base,
            max_frequency_mhz: Some(3800),
            ..CpuInventory::default()
        }
    }

    #[test]
    fn cpus_are_rated_from_cores_clock_and_vector_width() {
        // 2 × Xeon Platinum 8480+: 112 cores × 2.0 GHz × 32 = 7,168 GFLOPS FP64.
        let (r, clock) = rate_cpu(&cpu(
            "GenuineIntel",
            &["sse2", "avx", "fma", "avx2", "avx512f"],
            112,
            Some(2000),
        ));
        assert_eq!(r.get(Precision::Fp64), Some(7_168));
        assert_eq!(r.get(Precision::Fp32), Some(14_336));
        assert_eq!(clock, Some(Clock::Base));
        // Without a stated base clock, the maximum, and it says so.
        let (r, clock) = rate_cpu(&cpu(
            "HygonGenuine",
            &["sse2", "avx", "fma", "avx2"],
            64,
            None,
        ));
        assert_eq!(r.get(Precision::Fp64), Some(64 * 3800 * 8 / 1000));
        assert_eq!(clock, Some(Clock::Max));
        // A virtual machine states no clock but Intel's brand string does.
        let mut vm = cpu("GenuineIntel", &["avx2", "fma", "avx512f"], 8, None);
        vm.max_frequency_mhz = None;
        vm.model_name = Some("Intel(R) Xeon(R) Gold 6330 CPU @ 2.00GHz".into());
        let (r, clock) = rate_cpu(&vm);
        assert_eq!(
            (r.get(Precision::Fp64), clock),
            (Some(512), Some(Clock::Base))
        );
        vm.model_name = Some("AMD EPYC".into());
        assert_eq!(rate_cpu(&vm), (Rating::default(), None));
        // Loongson 3C5000: 16 cores × 2.2 GHz × 16 (LASX).
        let (r, _) = rate_cpu(&cpu("Loongson", &["lsx", "lasx"], 16, Some(2200)));
        assert_eq!(r.get(Precision::Fp64), Some(563));
        // Unknown cores or extensions: absent.
        let mut unknown = cpu("HiSilicon", &["asimd"], 64, Some(2600));
        unknown.physical_cores = None;
        assert_eq!(rate_cpu(&unknown).0, Rating::default());
        assert_eq!(
            rate_cpu(&cpu("Other", &[], 8, Some(2000))).0,
            Rating::default()
        );
        assert_eq!(
            rate_cpu(&cpu("Other", &["avx2"], 8, None))
                .0
                .get(Precision::Tf32),
            None
        );
    }
}
