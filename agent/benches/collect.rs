//! One full collection cycle on this machine, measured in *CPU time* of the
//! whole process (all collector threads), which is what the agent costs a
//! provider's host. Run: `cargo bench -p suanli-agent --bench collect`.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use suanli_agent::{
    DEFAULT_COLLECT_TIMEOUT, Sources,
    collect::{Collector, HostRoot, Sampler, host::HostCollector},
};

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

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(5)).warm_up_time(Duration::from_secs(1));
    targets = cycle
}
criterion_main!(benches);
