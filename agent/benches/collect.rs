//! One full collection cycle on this machine, measured in *CPU time* of the
//! whole process (all collector threads), which is what the agent costs a
//! provider's host. Run: `cargo bench -p suanli-agent --bench collect`.
//!
//! The vendor collectors are measured against the tests' stand-in libraries
//! with 8 devices (compiled here with `cc`): the cost is the agent's calls,
//! conversions and records, not a real driver's answer time.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use suanli_agent::{
    DEFAULT_COLLECT_TIMEOUT, Sources,
    collect::{
        Collector, HostRoot, Sampler, accel::AcceleratorCollector, host::HostCollector,
        nvidia::NvidiaCollector,
    },
};
use suanli_protocol::model::AcceleratorVendor;

/// Builds `tests/fixtures/<source>` as a shared library in `dir`.
fn standin(
    dir: &std::path::Path,
    source: &str,
    name: &str,
    defines: &[&str],
) -> std::path::PathBuf {
    let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures")
        .join(source);
    let path = dir.join(name);
    let ok = std::process::Command::new("cc")
        .args(["-shared", "-fPIC", "-O1"])
        .args(defines)
        .arg("-o")
        .arg(&path)
        .arg(&source)
        .status()
        .unwrap()
        .success();
    assert!(ok);
    path
}

/// Resident set size of this process, from /proc/self/statm.
fn rss_mib() -> f64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: f64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096.0 / f64::from(1 << 20)
}

/// CPU time consumed by every thread of this process so far.
fn process_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into the buffer we own.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0);
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn cycle(c: &mut Criterion) {
    let sources = Sources::default();
    let mut sampler = Sampler::new(sources.collectors(), DEFAULT_COLLECT_TIMEOUT).unwrap();
    sampler.sample();
    c.bench_function("full cycle (process CPU time)", |b| {
        b.iter_custom(|iters| {
            let start = process_cpu();
            for _ in 0..iters {
                std::hint::black_box(sampler.sample());
            }
            process_cpu() - start
        })
    });

    let mut host = HostCollector::new(HostRoot::live());
    host.collect();
    c.bench_function("host collector alone (process CPU time)", |b| {
        b.iter_custom(|iters| {
            let start = process_cpu();
            for _ in 0..iters {
                std::hint::black_box(host.collect());
            }
            process_cpu() - start
        })
    });
}

fn vendors(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("suanli-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // SAFETY: set before any collector thread reads the environment.
    unsafe { std::env::set_var("SUANLI_STANDIN_DEVICES", "8") };
    for (vendor, source, name) in [
        (
            AcceleratorVendor::Huawei,
            "dcmi-standin/dcmi_standin.c",
            "libdcmi.so",
        ),
        (
            AcceleratorVendor::Hygon,
            "rsmi-standin/rsmi_standin.c",
            "librocm_smi64.so",
        ),
        (
            AcceleratorVendor::Cambricon,
            "cndev-standin/cndev_standin.c",
            "libcndev.so",
        ),
        (
            AcceleratorVendor::Metax,
            "mxsml-standin/mxsml_standin.c",
            "libmxsml.so",
        ),
    ] {
        let before = rss_mib();
        let library = standin(&dir, source, name, &[]);
        let mut collector =
            AcceleratorCollector::open(vendor, &HostRoot::live(), Some(library), 8).unwrap();
        collector.collect();
        eprintln!(
            "{}: RSS {before:.1} MiB before loading, {:.1} MiB after the first cycle",
            vendor.as_str(),
            rss_mib()
        );
        c.bench_function(
            &format!(
                "{} collector, 8 devices (process CPU time)",
                vendor.as_str()
            ),
            |b| {
                b.iter_custom(|iters| {
                    let start = process_cpu();
                    for _ in 0..iters {
                        std::hint::black_box(collector.collect());
                    }
                    process_cpu() - start
                })
            },
        );
    }
    // Iluvatar goes through the NVML path; the NVML stand-in has 2 GPUs.
    let ixml = standin(
        &dir,
        "nvml-standin/nvml_standin.c",
        "libixml.so",
        &["-DIXML"],
    );
    let mut iluvatar = NvidiaCollector::iluvatar(HostRoot::live(), Some(ixml), 2);
    iluvatar.collect();
    c.bench_function("iluvatar collector, 2 devices (process CPU time)", |b| {
        b.iter_custom(|iters| {
            let start = process_cpu();
            for _ in 0..iters {
                std::hint::black_box(iluvatar.collect());
            }
            process_cpu() - start
        })
    });
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(5)).warm_up_time(Duration::from_secs(1));
    targets = cycle, vendors
}
criterion_main!(benches);
