//! `suanli-agent inventory`: collect once, print a summary or the document.

use std::{fmt::Write as _, time::Duration};

use suanli_protocol::{
    model::{HostReport, ProblemKind},
    proto,
};

use crate::{Sources, collect::Sampler};

/// Takes one report with real rates: utilization and throughput need two
/// readings, so the first cycle primes the counters and the second, one
/// `window` later, is the one returned.
pub fn take(sources: &Sources, window: Duration, timeout: Duration) -> std::io::Result<HostReport> {
    let mut sampler = Sampler::new(sources.collectors(), timeout)?;
    let prime = sampler.sample();
    std::thread::sleep(window);
    let mut report = sampler.sample();
    // Events are drained once: those seen while priming belong in the answer.
    let mut xid_events = prime.sample.xid_events;
    xid_events.append(&mut report.sample.xid_events);
    report.sample.xid_events = xid_events;
    let mut device_events = prime.sample.device_events;
    device_events.append(&mut report.sample.device_events);
    report.sample.device_events = device_events;
    Ok(report)
}

/// The canonical proto3 JSON form of a report.
pub fn to_json(report: HostReport) -> serde_json::Result<String> {
    serde_json::to_string_pretty(&proto::HostReport::from(report))
}

const GIB: f64 = (1u64 << 30) as f64;

fn gib(bytes: Option<u64>) -> String {
    bytes.map_or_else(|| "-".to_owned(), |b| format!("{:.1} GiB", b as f64 / GIB))
}

fn or_dash<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

/// A summary for a person at a terminal.
pub fn summary(report: &HostReport) -> String {
    let inv = &report.inventory;
    let s = &report.sample;
    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(w, "Host        {}", inv.hostname);
    let _ = writeln!(
        w,
        "OS          {} {} (kernel {})",
        or_dash(inv.os.name.as_ref()),
        or_dash(inv.os.version.as_ref()),
        or_dash(inv.os.kernel_version.as_ref())
    );
    if inv.dmi.system_vendor.is_some() || inv.dmi.product_name.is_some() {
        let _ = writeln!(
            w,
            "System      {} {} (serial {})",
            or_dash(inv.dmi.system_vendor.as_ref()),
            or_dash(inv.dmi.product_name.as_ref()),
            or_dash(inv.dmi.product_serial.as_ref())
        );
    }
    let _ = writeln!(
        w,
        "CPU         {} x{} logical ({} sockets, {} cores), {} busy",
        or_dash(inv.cpu.model_name.as_ref()),
        inv.cpu.logical_cpus,
        or_dash(inv.cpu.sockets),
        or_dash(inv.cpu.physical_cores),
        s.cpu
            .utilization_percent
            .map_or_else(|| "-".to_owned(), |u| format!("{u:.1}%"))
    );
    let _ = writeln!(
        w,
        "Memory      {} total, {} available",
        gib(s.memory.total_bytes),
        gib(s.memory.available_bytes)
    );
    let _ = writeln!(w, "Filesystems");
    for fs in &s.filesystems {
        let _ = writeln!(
            w,
            "  {:<24} {} free of {}",
            fs.mount_point,
            gib(fs.available_bytes),
            gib(fs.total_bytes)
        );
    }
    let _ = writeln!(w, "Network");
    for nic in &inv.network_interfaces {
        let _ = writeln!(
            w,
            "  {:<12} {:<8} {:<18} {}",
            nic.name,
            or_dash(nic.oper_state.as_ref()),
            or_dash(nic.mac_address.as_ref()),
            nic.addresses.join(" ")
        );
    }
    let _ = writeln!(w, "Accelerators {}", inv.gpus.len());
    for (gpu, sample) in inv.gpus.iter().zip(&s.gpus) {
        let _ = writeln!(
            w,
            "  [{}] {} {} {} {} | util {}% | mem {} / {} | {} C | {} W",
            gpu.index,
            gpu.vendor.as_str(),
            gpu.kind.as_str(),
            or_dash(gpu.name.as_ref()),
            or_dash(gpu.uuid.as_ref()),
            or_dash(sample.utilization_percent),
            gib(sample.memory_used_bytes),
            gib(sample.memory_total_bytes),
            or_dash(sample.temperature_celsius),
            sample.power_milliwatts.map_or_else(
                || "-".to_owned(),
                |mw| format!("{:.1}", f64::from(mw) / 1000.0)
            )
        );
    }
    // What a first run on a new card is diagnosed from.
    for lib in &inv.accelerator_libraries {
        let _ = writeln!(
            w,
            "  library {} {} (version {}): {} entry points{}",
            lib.vendor.as_str(),
            lib.path,
            or_dash(lib.version.as_ref()),
            lib.symbols.len(),
            if lib.missing_symbols.is_empty() {
                String::new()
            } else {
                format!(", missing {}", lib.missing_symbols.join(" "))
            }
        );
    }
    if !inv.infiniband_ports.is_empty() {
        let _ = writeln!(w, "InfiniBand");
        for (port, sample) in inv.infiniband_ports.iter().zip(&s.infiniband_ports) {
            let _ = writeln!(
                w,
                "  {}/{} {} {} Gb/s",
                port.device,
                port.port,
                or_dash(sample.state.as_ref()),
                or_dash(sample.rate_gbps)
            );
        }
    }
    if let (Some(node), Some(state)) = (&inv.slurm, &s.slurm) {
        let _ = writeln!(w, "Slurm       {} {}", node.node_name, state.state);
    }
    if !report.problems.is_empty() {
        let _ = writeln!(w, "Notes");
        for p in &report.problems {
            let kind = match p.kind {
                ProblemKind::Unsupported => "not present",
                ProblemKind::Failed => "failed",
                ProblemKind::TimedOut => "timed out",
                ProblemKind::Unspecified => "note",
            };
            let _ = writeln!(w, "  {:<20} {kind}: {}", p.collector, p.message);
        }
    }
    out
}
