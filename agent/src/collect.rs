//! Collectors: the only agent code that reads the host.
//!
//! Each [`Collector`] owns one part of a [`HostReport`] and returns its
//! readings plus its problems: a missing GPU driver is
//! [`ProblemKind::Unsupported`], an unreadable file is [`ProblemKind::Failed`].
//! The [`Sampler`] runs every collector on a worker thread of its own and waits
//! at most a fixed time, so a wedged GPU driver or a stale NFS mount costs one
//! [`ProblemKind::TimedOut`] problem instead of freezing the agent. A worker
//! still stuck in an earlier cycle is not asked again until it returns, so a
//! hang never piles up threads.

pub mod accel;
pub mod filesystem;
pub mod host;
pub mod infiniband;
pub mod kmsg;
pub mod nvidia;
pub mod slurm;

use std::{
    sync::mpsc,
    thread,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use suanli_protocol::model::{HostReport, Problem, ProblemKind};

pub use crate::root::HostRoot;

/// One source of host readings.
pub trait Collector: Send + 'static {
    /// Stable name, used in problems and logs.
    fn name(&self) -> &'static str;

    /// Takes one reading. Must not fail as a whole: what could not be read is
    /// left absent and explained in the returned problems.
    fn collect(&mut self) -> Collected;
}

/// What one collection produced.
#[derive(Debug, Default)]
pub struct Collected {
    pub readings: Option<Readings>,
    pub problems: Vec<Problem>,
}

impl Collected {
    pub fn unsupported(collector: &str, why: impl Into<String>) -> Self {
        Self {
            readings: None,
            problems: vec![Problem::new(collector, ProblemKind::Unsupported, why)],
        }
    }
}

/// The part of a report each collector owns.
#[derive(Debug)]
pub enum Readings {
    Host(Box<host::HostReadings>),
    Filesystems(filesystem::FilesystemReadings),
    Nvidia(nvidia::NvidiaReadings),
    Infiniband(infiniband::InfinibandReadings),
    Slurm(slurm::SlurmReadings),
    Kmsg(kmsg::KmsgReadings),
    Accelerators(accel::AcceleratorReadings),
}

impl Readings {
    pub fn apply(self, report: &mut HostReport) {
        match self {
            Readings::Host(r) => r.apply(report),
            Readings::Filesystems(r) => r.apply(report),
            Readings::Nvidia(r) => r.apply(report),
            Readings::Infiniband(r) => r.apply(report),
            Readings::Slurm(r) => r.apply(report),
            Readings::Kmsg(r) => r.apply(report),
            Readings::Accelerators(r) => r.apply(report),
        }
    }
}

impl Collected {
    pub fn apply(self, report: &mut HostReport) {
        if let Some(readings) = self.readings {
            readings.apply(report);
        }
        report.problems.extend(self.problems);
    }
}

/// Runs collectors with a time bound per cycle.
#[derive(Debug)]
pub struct Sampler {
    workers: Vec<Worker>,
    results: mpsc::Receiver<(usize, u64, Collected)>,
    timeout: Duration,
    cycle: u64,
}

#[derive(Debug)]
struct Worker {
    name: &'static str,
    requests: mpsc::Sender<u64>,
    /// The cycle this worker is still working on, if any.
    busy_since: Option<u64>,
}

impl Sampler {
    pub fn new(collectors: Vec<Box<dyn Collector>>, timeout: Duration) -> std::io::Result<Self> {
        let (result_tx, results) = mpsc::channel();
        let mut workers = Vec::with_capacity(collectors.len());
        for (slot, mut collector) in collectors.into_iter().enumerate() {
            let name = collector.name();
            let (requests, request_rx) = mpsc::channel::<u64>();
            let result_tx = result_tx.clone();
            // Ends when the sampler (the request sender) is dropped. A worker
            // stuck in the kernel cannot be cancelled; it is detached and
            // finishes or dies with the process.
            thread::Builder::new()
                .name(format!("collect-{name}"))
                .spawn(move || {
                    for cycle in request_rx {
                        let collected = collector.collect();
                        if result_tx.send((slot, cycle, collected)).is_err() {
                            break;
                        }
                    }
                })?;
            workers.push(Worker {
                name,
                requests,
                busy_since: None,
            });
        }
        Ok(Self {
            workers,
            results,
            timeout,
            cycle: 0,
        })
    }

    /// Names of the collectors, in the order they were given.
    pub fn collectors(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.workers.iter().map(|w| w.name)
    }

    /// Runs one cycle of every collector and assembles the report.
    pub fn sample(&mut self) -> HostReport {
        self.cycle += 1;
        let cycle = self.cycle;
        let mut report = HostReport {
            agent_version: env!("CARGO_PKG_VERSION").to_owned(),
            ..HostReport::default()
        };
        report.sample.collected_at_unix_ms = unix_ms(SystemTime::now());

        let mut pending = 0;
        for worker in &mut self.workers {
            if let Some(since) = worker.busy_since {
                report.problems.push(Problem::new(
                    worker.name,
                    ProblemKind::TimedOut,
                    format!("still running since cycle {since}; skipped"),
                ));
                continue;
            }
            if worker.requests.send(cycle).is_ok() {
                worker.busy_since = Some(cycle);
                pending += 1;
            } else {
                report.problems.push(Problem::new(
                    worker.name,
                    ProblemKind::Failed,
                    "collector thread has exited",
                ));
            }
        }

        let deadline = Instant::now() + self.timeout;
        // Applied in collector order, not arrival order, so that devices of
        // several vendors are listed the same way every cycle.
        let mut answers: Vec<Option<Collected>> = self.workers.iter().map(|_| None).collect();
        while pending > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.results.recv_timeout(left) {
                Ok((slot, done, collected)) => {
                    self.workers[slot].busy_since = None;
                    // A late answer from an earlier cycle describes the past: drop it.
                    if done == cycle {
                        pending -= 1;
                        answers[slot] = Some(collected);
                    }
                }
                Err(_) => break,
            }
        }
        for collected in answers.into_iter().flatten() {
            collected.apply(&mut report);
        }
        for worker in &self.workers {
            if worker.busy_since == Some(cycle) {
                report.problems.push(Problem::new(
                    worker.name,
                    ProblemKind::TimedOut,
                    format!("no answer within {} ms", self.timeout.as_millis()),
                ));
            }
        }
        report
    }
}

pub(crate) fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Per-second rate of a monotonic counter; absent when the counter went back
/// (reset, wrap, device replaced) or no time passed.
pub(crate) fn rate(previous: u64, current: u64, elapsed: Duration) -> Option<f64> {
    let secs = elapsed.as_secs_f64();
    (current >= previous && secs > 0.0).then(|| (current - previous) as f64 / secs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Barrier};

    struct Fixed(&'static str);
    impl Collector for Fixed {
        fn name(&self) -> &'static str {
            self.0
        }
        fn collect(&mut self) -> Collected {
            Collected::unsupported(self.0, "nothing here")
        }
    }

    /// Blocks on its first call until the test releases it, like a wedged driver call.
    struct Wedged(Option<Arc<Barrier>>);
    impl Collector for Wedged {
        fn name(&self) -> &'static str {
            "wedged"
        }
        fn collect(&mut self) -> Collected {
            if let Some(barrier) = self.0.take() {
                barrier.wait();
            }
            Collected::default()
        }
    }

    #[test]
    fn a_hung_collector_is_reported_and_does_not_block_the_others() {
        let release = Arc::new(Barrier::new(2));
        let mut sampler = Sampler::new(
            vec![
                Box::new(Fixed("fine")),
                Box::new(Wedged(Some(release.clone()))),
            ],
            Duration::from_millis(50),
        )
        .unwrap();

        let first = sampler.sample();
        let kinds: Vec<_> = first
            .problems
            .iter()
            .map(|p| (p.collector.as_str(), p.kind))
            .collect();
        assert_eq!(
            kinds,
            [
                ("fine", ProblemKind::Unsupported),
                ("wedged", ProblemKind::TimedOut)
            ]
        );

        // Still stuck: not asked again, reported as skipped, no second thread.
        let second = sampler.sample();
        let wedged: Vec<_> = second
            .problems
            .iter()
            .filter(|p| p.collector == "wedged")
            .collect();
        assert_eq!(wedged.len(), 1);
        assert!(
            wedged[0].message.contains("still running since cycle 1"),
            "{wedged:?}"
        );

        // Once it returns, its stale answer is dropped and it is asked again.
        release.wait();
        let third = loop {
            let r = sampler.sample();
            if !r
                .problems
                .iter()
                .any(|p| p.message.contains("still running"))
            {
                break r;
            }
        };
        assert!(
            third.problems.iter().all(|p| p.collector == "fine"),
            "{third:?}"
        );
    }

    #[test]
    fn rates_are_absent_when_a_counter_goes_back() {
        assert_eq!(rate(100, 300, Duration::from_secs(2)), Some(100.0));
        assert_eq!(rate(300, 100, Duration::from_secs(2)), None);
        assert_eq!(rate(1, 2, Duration::ZERO), None);
    }
}
