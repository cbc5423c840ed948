//! The built-in rules: stateless judgements over one evaluation's fleet.
//! Each says, per subject, whether its condition holds (`Firing`), sits
//! between its fire and clear thresholds (`Holding`), or is clear (no
//! observation); [`super::Tracker`] makes transitions of that.

use std::collections::{BTreeMap, HashSet};

use suanli_protocol::model::DeviceHealth;

use super::{Level, Observation};
use crate::{
    fleet::{Fleet, HostEntry, HostState, ResourceEntry},
    health::{Health, Severity, XIDS, XidClass},
    i18n::Text,
};

/// The built-in rules: name, severity (the highest it raises), `for` and
/// `keep_firing_for`. What each watches, with its threshold and source, is
/// in the catalog under `rule.NAME`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Rule {
    pub name: &'static str,
    pub severity: Severity,
    pub for_ms: u64,
    pub keep_firing_for_ms: u64,
}

macro_rules! rule {
    ($name:literal, $severity:ident, $for_s:expr, $keep_s:expr) => {
        Rule {
            name: $name,
            severity: Severity::$severity,
            for_ms: $for_s * 1000,
            keep_firing_for_ms: $keep_s * 1000,
        }
    };
}

pub const RULES: &[Rule] = &[
    rule!("host_silent", Critical, 0, 0),
    rule!("host_identity_cloned", Warning, 0, 0),
    rule!("gpu_xid", Critical, 0, 0),
    rule!("gpu_needs_inspection", Critical, 0, 0),
    rule!("gpu_ecc_uncorrected", Warning, 0, 540),
    rule!("gpu_remapped_rows", Critical, 0, 0),
    rule!("gpu_retired_pages_pending", Warning, 0, 0),
    rule!("gpu_temperature", Warning, 60, 0),
    rule!("gpu_thermal_slowdown", Warning, 0, 0),
    rule!("gpu_nvlink_down", Warning, 0, 0),
    rule!("gpu_power", Warning, 60, 0),
    rule!("accelerator_health", Critical, 0, 0),
    rule!("gpu_missing", Critical, 0, 0),
    rule!("host_filesystem", Critical, 0, 0),
    rule!("host_memory", Warning, 60, 0),
    rule!("host_infiniband_down", Warning, 30, 0),
    rule!("host_slurm", Warning, 0, 0),
    rule!("host_clock", Warning, 60, 0),
    rule!("reading_implausible", Warning, 0, 0),
    rule!("receiver_failing", Warning, 0, 0),
    rule!("node_ingest_behind", Critical, 30, 0),
];

/// How long a refused clone claim keeps its alert firing.
pub const CLONE_ALERT_MS: u64 = 15 * 60 * 1000;

pub fn rule(name: &str) -> Option<&'static Rule> {
    RULES.iter().find(|r| r.name == name)
}

/// What node-level rules read that is not in the fleet.
#[derive(Debug, Clone, Default)]
pub struct NodeFigures {
    pub writer_queue_fraction: Option<f64>,
    /// Receivers failing: (name, last error).
    pub failing_receivers: Vec<(String, String)>,
}

const SILENT_AFTER_INTERVALS: u64 = 3;
const SILENT_AFTER_MIN_MS: u64 = 3_000;
const DEFAULT_INTERVAL_MS: u64 = 10_000;
const TEMPERATURE_CLEAR_BELOW_C: u32 = 5;
const FILESYSTEM_WARNING: f64 = 90.0;
const FILESYSTEM_CRITICAL: f64 = 95.0;
const FILESYSTEM_CLEAR: f64 = 88.0;
const MEMORY_FIRE: f64 = 5.0;
const MEMORY_CLEAR: f64 = 7.0;
const CLOCK_OFF_MS: i64 = 5_000;
const SLOWDOWN_WINDOW_MS: u64 = 10 * 60_000;
const SLOWDOWN_EVENTS: usize = 6;
const WRITER_QUEUE_FRACTION: f64 = 0.8;

/// One host's alert of `rule` about `subject` (an accelerator, a mount…;
/// empty for the host itself): the same every evaluation, on every replica.
pub fn fingerprint(rule: &str, host_id: i64, subject: &str) -> String {
    format!("{rule}/{host_id}/{subject}")
}

/// Is a host silent: enrolled, not revoked, and no sample for three intervals.
pub fn silent(host: &HostEntry, now_ms: u64) -> bool {
    let Some(seen) = host.last_seen_ms else {
        return false;
    };
    let interval = host.pace_ms(DEFAULT_INTERVAL_MS);
    !host.revoked
        && now_ms.saturating_sub(seen)
            > (interval * SILENT_AFTER_INTERVALS).max(SILENT_AFTER_MIN_MS)
}

/// Every built-in rule over the whole fleet.
pub fn evaluate(fleet: &Fleet, node: &NodeFigures, now_ms: u64) -> Vec<Observation> {
    let mut out = Vec::new();
    for host in fleet.hosts.values() {
        host_observations(host, now_ms, &mut out);
    }
    let node_wide = |rule: &str,
                     subject: &str,
                     severity: Severity,
                     extra: Option<(&str, &str)>,
                     summary: Text| {
        let mut labels = BTreeMap::from([
            ("alertname".to_owned(), rule.to_owned()),
            ("severity".to_owned(), severity.as_str().to_owned()),
        ]);
        if let Some((k, v)) = extra {
            labels.insert(k.to_owned(), v.to_owned());
        }
        Observation {
            fingerprint: format!("{rule}/node/{subject}"),
            rule: named(rule),
            severity,
            level: Level::Firing,
            host_id: None,
            provider_id: None,
            resource: None,
            labels,
            summary,
        }
    };
    if let Some(fraction) = node.writer_queue_fraction
        && fraction > WRITER_QUEUE_FRACTION
    {
        out.push(node_wide(
            "node_ingest_behind",
            "",
            Severity::Critical,
            None,
            Text::new("alert.node_ingest_behind")
                .arg("percent", format!("{:.0}", fraction * 100.0)),
        ));
    }
    for (receiver, error) in &node.failing_receivers {
        out.push(node_wide(
            "receiver_failing",
            receiver,
            Severity::Warning,
            Some(("receiver", receiver)),
            Text::new("alert.receiver_failing")
                .arg("receiver", receiver)
                .arg("error", error),
        ));
    }
    out
}

/// An accelerator's index as people read it, written only when needed.
#[derive(Clone, Copy)]
struct GpuNo(Option<u32>);

impl std::fmt::Display for GpuNo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(i) => write!(f, "{i}"),
            None => f.write_str("?"),
        }
    }
}

fn named(name: &str) -> &'static Rule {
    rule(name).unwrap_or(&RULES[0])
}

/// One host's observations, appended to `out`.
pub fn host_observations(host: &HostEntry, now_ms: u64, out: &mut Vec<Observation>) {
    if host.revoked {
        return;
    }
    let start = out.len();
    let own = host.own_resource();
    let mut push = |rule: &str,
                    subject: &str,
                    severity: Severity,
                    level: Level,
                    resource: Option<&ResourceEntry>,
                    extra: &[(&str, String)],
                    summary: Text| {
        let rule = named(rule);
        let gpu_labels = resource.and_then(|r| {
            Some([
                ("gpu", GpuNo(r.gpu_index).to_string()),
                ("uuid", r.gpu_uuid.clone()?),
            ])
        });
        let resource = resource.or(own).map(|r| r.identifier.clone());
        let mut labels = BTreeMap::from([
            ("alertname".to_owned(), rule.name.to_owned()),
            ("severity".to_owned(), severity.as_str().to_owned()),
            ("hostname".to_owned(), host.hostname.clone()),
            ("provider".to_owned(), host.owner.code.clone()),
            ("region".to_owned(), host.region.clone()),
        ]);
        if let Some(r) = &resource {
            labels.insert("identifier".into(), r.clone());
        }
        for (k, v) in extra.iter().chain(gpu_labels.iter().flatten()) {
            labels.insert((*k).to_owned(), v.clone());
        }
        out.push(Observation {
            fingerprint: fingerprint(rule.name, host.host_id, subject),
            rule,
            severity,
            level,
            host_id: Some(host.host_id),
            provider_id: Some(host.owner.id),
            resource,
            labels,
            summary,
        });
    };
    let silent = silent(host, now_ms);
    // `silent` holds only for a host that was seen.
    if let Some(seen) = host.last_seen_ms.filter(|_| silent) {
        let age = now_ms.saturating_sub(seen);
        push(
            "host_silent",
            "",
            Severity::Critical,
            Level::Firing,
            None,
            &[],
            Text::new("alert.host_silent")
                .arg("hostname", &host.hostname)
                .arg("seconds", age / 1000),
        );
    }
    if let Some((at_ms, address)) = &host.clone_refused
        && now_ms.saturating_sub(*at_ms) < CLONE_ALERT_MS
    {
        push(
            "host_identity_cloned",
            "",
            Severity::Warning,
            Level::Firing,
            None,
            &[("address", address.clone())],
            Text::new("alert.host_identity_cloned")
                .arg("address", address)
                .arg("hostname", &host.hostname),
        );
    }
    // GPU faults are latched: they hold whether or not the host reports.
    // (Each evaluation visits every accelerator of the node: hosts without
    // faults are passed over whole, and labels and names are made only
    // for what is found.)
    let faulted = if host.gpu_faults.is_empty() {
        None
    } else {
        Some(host.accelerators())
    };
    for r in faulted.into_iter().flatten() {
        let Some(uuid) = r.gpu_uuid.as_deref() else {
            continue;
        };
        let gpu = GpuNo(r.gpu_index);
        if let Some(faults) = host.gpu_faults.get(uuid) {
            for latch in &faults.latched {
                push(
                    "gpu_xid",
                    &format!("{uuid}/{}", latch.xid),
                    Severity::Critical,
                    Level::Firing,
                    Some(r),
                    &[("xid", latch.xid.to_string())],
                    Text::new("alert.gpu_xid")
                        .arg("xid", latch.xid)
                        .arg_text("name", XIDS.name(latch.xid))
                        .arg("gpu", gpu)
                        .arg("hostname", &host.hostname)
                        .arg_text("action", XIDS.action(latch.xid)),
                );
            }
            if faults.needs_inspection {
                push(
                    "gpu_needs_inspection",
                    uuid,
                    Severity::Critical,
                    Level::Firing,
                    Some(r),
                    &[],
                    Text::new("alert.gpu_needs_inspection")
                        .arg("gpu", gpu)
                        .arg("hostname", &host.hostname),
                );
            }
            // Application and info XIDs, each code for its window.
            let mut seen = HashSet::new();
            for event in faults.recent.iter().rev() {
                let class = XIDS.class(event.xid);
                if class.latches()
                    || now_ms.saturating_sub(event.at_ms) >= crate::health::APPLICATION_CLEAR_MS
                    || !seen.insert(event.xid)
                {
                    continue;
                }
                let summary = match event.message.as_deref() {
                    Some(m) => Text::new("alert.gpu_xid_attributed").arg("message", m),
                    None => Text::new("alert.gpu_xid"),
                };
                push(
                    "gpu_xid",
                    &format!("{uuid}/{}", event.xid),
                    class.severity(),
                    Level::Firing,
                    Some(r),
                    &[("xid", event.xid.to_string())],
                    summary
                        .arg("xid", event.xid)
                        .arg_text("name", XIDS.name(event.xid))
                        .arg("gpu", gpu)
                        .arg("hostname", &host.hostname)
                        .arg_text(
                            "action",
                            if class == XidClass::Info {
                                Text::new("xid.recorded")
                            } else {
                                XIDS.action(event.xid)
                            },
                        ),
                );
            }
        }
    }
    // What the latest sample shows: judged only while the host reports.
    let vitals = host.vitals.as_deref();
    if let Some(v) = vitals {
        // A GPU missing from the sample is out of selection, so its brief says so.
        if host.gpu_briefs.iter().any(|b| b.unhealthy) {
            for r in host.accelerators() {
                let Some(uuid) = r.gpu_uuid.as_deref() else {
                    continue;
                };
                if host.vitals_of(r).is_none() {
                    push(
                        "gpu_missing",
                        uuid,
                        Severity::Critical,
                        Level::Firing,
                        Some(r),
                        &[],
                        Text::new("alert.gpu_missing")
                            .arg("gpu", GpuNo(r.gpu_index))
                            .arg("uuid", uuid)
                            .arg("hostname", &host.hostname),
                    );
                }
            }
        }
        // The sample's GPUs are in one place; a resource is looked up only
        // for what is found.
        let resource_of = |uuid: &str| {
            host.accelerators()
                .find(|r| r.gpu_uuid.as_deref() == Some(uuid))
        };
        for g in &v.gpus {
            let Some(uuid) = g.uuid.as_deref() else {
                continue;
            };
            let gpu = GpuNo(Some(g.index));

            // The vendor's own verdict (NVML gives none; its faults are XIDs).
            let verdict = match g.health {
                Some(DeviceHealth::Warning) => Some(Severity::Warning),
                Some(DeviceHealth::Critical) => Some(Severity::Critical),
                _ => None,
            };
            if let Some(severity) = verdict {
                let codes: Vec<String> =
                    g.error_codes.iter().map(|c| format!("0x{c:08X}")).collect();
                push(
                    "accelerator_health",
                    uuid,
                    severity,
                    Level::Firing,
                    resource_of(uuid),
                    &[("vendor", g.vendor.to_owned())],
                    Text::new("alert.accelerator_health")
                        .arg("vendor", g.vendor)
                        .arg("gpu", gpu)
                        .arg("hostname", &host.hostname)
                        .arg_text("severity", severity.text())
                        .arg_text(
                            "code",
                            g.health_code.map_or_else(Text::empty, |c| {
                                Text::new("alert.health_code").arg("code", c)
                            }),
                        )
                        .arg_text(
                            "codes",
                            if codes.is_empty() {
                                Text::empty()
                            } else {
                                Text::new("alert.health_codes").arg("codes", codes.join(" "))
                            },
                        ),
                );
            }

            // Firing for a minute after each increase, then kept firing for
            // the rule's keep_firing_for: ten minutes in all. (An increase
            // was seen between two readings of the counter.)
            if let Some(at) = host.ecc_increased_ms.get(uuid)
                && let Some(count) = g.ecc_uncorrected_volatile
                && now_ms.saturating_sub(*at) < 60_000
            {
                push(
                    "gpu_ecc_uncorrected",
                    uuid,
                    Severity::Warning,
                    Level::Firing,
                    resource_of(uuid),
                    &[],
                    Text::new("alert.gpu_ecc_uncorrected")
                        .arg("gpu", gpu)
                        .arg("hostname", &host.hostname)
                        .arg("count", count),
                );
            }
            if g.remapped_rows_failure == Some(true) {
                push(
                    "gpu_remapped_rows",
                    uuid,
                    Severity::Critical,
                    Level::Firing,
                    resource_of(uuid),
                    &[],
                    Text::new("alert.gpu_remapped_rows_failed")
                        .arg("gpu", gpu)
                        .arg("hostname", &host.hostname),
                );
            } else if g.remapped_rows_pending == Some(true) {
                push(
                    "gpu_remapped_rows",
                    uuid,
                    Severity::Warning,
                    Level::Firing,
                    resource_of(uuid),
                    &[],
                    Text::new("alert.gpu_remapped_rows_pending")
                        .arg("gpu", gpu)
                        .arg("hostname", &host.hostname),
                );
            }
            if g.retired_pages_pending == Some(true) {
                push(
                    "gpu_retired_pages_pending",
                    uuid,
                    Severity::Warning,
                    Level::Firing,
                    resource_of(uuid),
                    &[],
                    Text::new("alert.gpu_retired_pages_pending")
                        .arg("gpu", gpu)
                        .arg("hostname", &host.hostname),
                );
            }
            if let (Some(t), Some(limit)) = (g.temperature_celsius, g.slowdown_temperature_celsius)
                && t + TEMPERATURE_CLEAR_BELOW_C >= limit
            {
                let level = if t >= limit {
                    Level::Firing
                } else {
                    Level::Holding
                };
                push(
                    "gpu_temperature",
                    uuid,
                    Severity::Warning,
                    level,
                    resource_of(uuid),
                    &[],
                    Text::new("alert.gpu_temperature")
                        .arg("gpu", gpu)
                        .arg("hostname", &host.hostname)
                        .arg("temperature", t)
                        .arg("limit", limit),
                );
            }
            let slowdowns = host.slowdowns.get(uuid).map_or(0, |s| {
                s.iter()
                    .filter(|t| now_ms.saturating_sub(**t) < SLOWDOWN_WINDOW_MS)
                    .count()
            });
            if slowdowns > SLOWDOWN_EVENTS {
                push(
                    "gpu_thermal_slowdown",
                    uuid,
                    Severity::Warning,
                    Level::Firing,
                    resource_of(uuid),
                    &[],
                    Text::new("alert.gpu_thermal_slowdown")
                        .arg("gpu", gpu)
                        .arg("hostname", &host.hostname)
                        .arg("count", slowdowns),
                );
            }
            if let Some(down) = g.nvlink_down.filter(|d| *d > 0) {
                push(
                    "gpu_nvlink_down",
                    uuid,
                    Severity::Warning,
                    Level::Firing,
                    resource_of(uuid),
                    &[],
                    Text::new("alert.gpu_nvlink_down")
                        .arg("count", down)
                        .arg("gpu", gpu)
                        .arg("hostname", &host.hostname),
                );
            }
            if let (Some(w), Some(limit)) = (g.power_watts, g.power_limit_watts)
                && w > limit
            {
                push(
                    "gpu_power",
                    uuid,
                    Severity::Warning,
                    Level::Firing,
                    resource_of(uuid),
                    &[],
                    Text::new("alert.gpu_power")
                        .arg("gpu", gpu)
                        .arg("hostname", &host.hostname)
                        .arg("watts", format!("{w:.0}"))
                        .arg("limit", format!("{limit:.0}")),
                );
            }
        }
        for fs in &v.filesystems {
            let p = fs.used_percent;
            if p >= FILESYSTEM_CLEAR {
                let (severity, level) = if p >= FILESYSTEM_CRITICAL {
                    (Severity::Critical, Level::Firing)
                } else if p >= FILESYSTEM_WARNING {
                    (Severity::Warning, Level::Firing)
                } else {
                    (Severity::Warning, Level::Holding)
                };
                push(
                    "host_filesystem",
                    &fs.mount_point,
                    severity,
                    level,
                    None,
                    &[("mount", fs.mount_point.clone())],
                    Text::new("alert.host_filesystem")
                        .arg("mount", &fs.mount_point)
                        .arg("hostname", &host.hostname)
                        .arg("percent", format!("{p:.1}")),
                );
            }
        }
        if let (Some(avail), Some(total)) = (v.memory_available_bytes, v.memory_total_bytes)
            && total > 0
        {
            let p = avail as f64 * 100.0 / total as f64;
            if p < MEMORY_CLEAR {
                let level = if p < MEMORY_FIRE {
                    Level::Firing
                } else {
                    Level::Holding
                };
                push(
                    "host_memory",
                    "",
                    Severity::Warning,
                    level,
                    None,
                    &[],
                    Text::new("alert.host_memory")
                        .arg("hostname", &host.hostname)
                        .arg("percent", format!("{p:.1}")),
                );
            }
        }
        for port in &v.infiniband_down {
            push(
                "host_infiniband_down",
                port,
                Severity::Warning,
                Level::Firing,
                None,
                &[("port", port.clone())],
                Text::new("alert.host_infiniband_down")
                    .arg("port", port)
                    .arg("hostname", &host.hostname),
            );
        }
        if let Some(state) = &v.slurm_state
            && (state.contains("DOWN") || state.contains("DRAIN") || state.contains("FAIL"))
        {
            push(
                "host_slurm",
                "",
                Severity::Warning,
                Level::Firing,
                None,
                &[("slurm_state", state.clone())],
                Text::new("alert.host_slurm")
                    .arg("hostname", &host.hostname)
                    .arg("state", state),
            );
        }
        // One alert per device and figure while it makes no sense, never a
        // threshold alert: the reading is not in the figures.
        for bad in &v.implausible {
            let field = Text::new(&format!("reading.{}", bad.field));
            let (subject, resource, summary) = match (&bad.uuid, bad.index) {
                (uuid, Some(index)) => (
                    // A card without a UUID is still a card, by its index.
                    match uuid {
                        Some(uuid) => format!("{uuid}/{}", bad.field),
                        None => format!("gpu{index}/{}", bad.field),
                    },
                    uuid.as_deref().and_then(resource_of),
                    Text::new("alert.reading_implausible_gpu").arg("gpu", GpuNo(Some(index))),
                ),
                (_, None) => (
                    bad.field.to_owned(),
                    None,
                    Text::new("alert.reading_implausible_host"),
                ),
            };
            push(
                "reading_implausible",
                &subject,
                Severity::Warning,
                Level::Firing,
                resource,
                &[("field", bad.field.to_owned())],
                summary
                    .arg("hostname", &host.hostname)
                    .arg_text("field", field)
                    .arg("raw", &bad.raw),
            );
        }
        if let Some(offset) = v.clock_offset_ms
            && offset.abs() > CLOCK_OFF_MS
        {
            push(
                "host_clock",
                "",
                Severity::Warning,
                Level::Firing,
                None,
                &[],
                Text::new("alert.host_clock")
                    .arg("hostname", &host.hostname)
                    .arg("seconds", format!("{:.1}", offset as f64 / 1000.0)),
            );
        }
    }
    if silent {
        // Stale figures neither raise nor resolve anything.
        for o in &mut out[start..] {
            if o.rule.name != "host_silent" {
                o.level = Level::Holding;
            }
        }
    }
}

/// A resource's health and its reasons, from the same rules. A host not
/// reporting is unknown, unless a latched fault says more.
/// The health class of each of a host's resources, in the order of
/// `host.resources`, from one look at the host: what market reports count.
pub fn resource_healths(host: &HostEntry, now_ms: u64) -> Vec<Health> {
    let mut found = Vec::new();
    host_observations(host, now_ms, &mut found);
    let state = host.state(now_ms);
    host.resources
        .iter()
        .map(|resource| {
            let worst = found
                .iter()
                .filter(|o| match &resource.gpu_uuid {
                    Some(uuid) => o.labels.get("uuid") == Some(uuid),
                    None => !o.labels.contains_key("uuid"),
                })
                .map(|o| o.severity)
                .max();
            if state != HostState::Online && worst != Some(Severity::Critical) {
                Health::Unknown
            } else {
                Health::of(worst)
            }
        })
        .collect()
}

pub fn resource_health(
    host: &HostEntry,
    resource: &ResourceEntry,
    now_ms: u64,
) -> (Health, Vec<Text>) {
    let mut found = Vec::new();
    host_observations(host, now_ms, &mut found);
    let mine: Vec<&Observation> = found
        .iter()
        .filter(|o| match &resource.gpu_uuid {
            Some(uuid) => o.labels.get("uuid") == Some(uuid),
            None => !o.labels.contains_key("uuid"),
        })
        .collect();
    let worst = mine.iter().map(|o| o.severity).max();
    let reasons = mine
        .iter()
        .filter(|o| o.severity > Severity::Info)
        .map(|o| o.summary.clone())
        .collect();
    let state = host.state(now_ms);
    if state != HostState::Online && worst != Some(Severity::Critical) {
        return (
            Health::Unknown,
            vec![Text::new("health.host_state").arg_text("state", state.text())],
        );
    }
    (Health::of(worst), reasons)
}
