//! Prometheus exposition (OpenMetrics text, via `prometheus-client`).
//!
//! `/metrics` carries fleet totals (by provider, region, resource type and
//! accelerator model), ingest counters and the aggregator's own health: a
//! bounded number of series however large the node. Per-host and per-GPU
//! series are on `/metrics/hosts`, filtered by provider, region or
//! identifier and capped, so a 100,000-host node is scraped in slices.

use std::{collections::BTreeMap, sync::Arc};

use axum::{
    extract::State,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use prometheus_client::{
    encoding::text::encode,
    metrics::{family::Family, gauge::Gauge},
    registry::Registry,
};
use serde::Deserialize;

use super::{Params, Problem};
use crate::service::Source;
use crate::{
    check::FieldProblem,
    fleet::{HostState, Tally},
    i18n::Text,
    node::Node,
    store::now_ms,
    telemetry::{FloatGauge, Labels, process_figures},
};

fn respond(registry: &Registry) -> Response {
    let mut text = String::new();
    if let Err(e) = encode(&mut text, registry) {
        return Problem::unavailable(Source::Task, e).into_response();
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

pub async fn fleet(State(state): State<Arc<Node>>) -> Response {
    let mut registry = Registry::default();
    state.counters.register(&mut registry);
    let now = now_ms();
    let hosts: Family<Labels, Gauge> = Family::default();
    let resources: Family<Labels, Gauge> = Family::default();
    let free: Family<Labels, Gauge> = Family::default();
    let accel_memory: Family<Labels, Gauge> = Family::default();
    let accel_util: Family<Labels, FloatGauge> = Family::default();
    {
        let fleet = state.catalog.read();
        for host in fleet.hosts.values() {
            hosts
                .get_or_create(&vec![
                    ("provider", host.owner.code.clone()),
                    ("region", host.region.clone()),
                    ("state", host.state(now).as_str().to_owned()),
                ])
                .inc();
        }
        // By labels; and whether they are accelerators, the resources with a model.
        let mut tallies: BTreeMap<Labels, (bool, Tally)> = BTreeMap::new();
        for r in fleet.readings(now) {
            let model = r.model_id.map_or("", |m| fleet.model_name(m));
            let labels = vec![
                ("provider", r.host.owner.code.clone()),
                ("region", r.host.region.clone()),
                ("resource_type", r.resource_type.code().to_string()),
                ("model", model.to_owned()),
            ];
            let (_, tally) = tallies
                .entry(labels)
                .or_insert((r.model_id.is_some(), Tally::default()));
            tally.add(&r);
        }
        for (labels, (accelerators, t)) in tallies {
            resources.get_or_create(&labels).set(t.total as i64);
            if t.free > 0 {
                free.get_or_create(&labels).set(t.free as i64);
            }
            if accelerators {
                accel_memory
                    .get_or_create(&labels)
                    .set(t.memory_bytes as i64);
                if let Some(mean) = t.mean_utilization_percent() {
                    accel_util.get_or_create(&labels).set(mean / 100.0);
                }
            }
        }
    }
    let s = registry.sub_registry_with_prefix("suanli");
    s.register("hosts", "Hosts by provider, region and state", hosts);
    s.register(
        "resources",
        "Resources by provider, region, type (identifier type code) and accelerator model",
        resources,
    );
    s.register("resources_free", "Resources free now", free);
    s.register(
        "accelerator_memory_bytes",
        "Installed accelerator memory",
        accel_memory,
    );
    s.register(
        "accelerator_utilization_ratio",
        "Mean utilization of online accelerators",
        accel_util,
    );
    let connected: Gauge = Gauge::default();
    connected.set(state.registry.connected() as i64);
    s.register(
        "connected_agents",
        "Agents connected to this aggregator",
        connected,
    );
    let uptime: FloatGauge = Gauge::default();
    uptime.set(state.started.elapsed().as_secs_f64());
    s.register(
        "uptime_seconds",
        "Seconds since this aggregator started",
        uptime,
    );
    // Monitoring, from the shared database: the same on every replica.
    let alerts: Family<Labels, Gauge> = Family::default();
    let notifications: Family<Labels, Gauge> = Family::default();
    if let (Ok(open), Ok(receivers), Ok(deliveries)) = (
        state.store.open_alert_counts().await,
        state.store.receivers().await,
        state.store.delivery_counts().await,
    ) {
        for (rule, severity, n) in open {
            alerts
                .get_or_create(&vec![("rule", rule), ("severity", severity)])
                .set(n);
        }
        for (receiver_id, outcome, n) in deliveries {
            let Some(r) = receivers.iter().find(|r| r.id == receiver_id) else {
                continue;
            };
            notifications
                .get_or_create(&vec![
                    ("receiver", r.name.clone()),
                    ("channel", r.kind.clone()),
                    ("state", outcome),
                ])
                .set(n);
        }
    }
    s.register("alerts_firing", "Open alerts by rule and severity", alerts);
    s.register(
        "notifications",
        "Notifications by receiver, channel and state (sent, pending, failed, suppressed, superseded, dropped)",
        notifications,
    );
    let info: Family<Labels, Gauge> = Family::default();
    info.get_or_create(&vec![("version", env!("CARGO_PKG_VERSION").to_owned())])
        .set(1);
    s.register("build_info", "Aggregator version", info);
    let (rss, cpu) = process_figures();
    if let Some(rss) = rss {
        let g: Gauge = Gauge::default();
        g.set(rss as i64);
        registry.register(
            "process_resident_memory_bytes",
            "Resident memory of the aggregator",
            g,
        );
    }
    if let Some(cpu) = cpu {
        let g: FloatGauge = Gauge::default();
        g.set(cpu);
        registry.register(
            "process_cpu_seconds",
            "CPU time of the aggregator (user + system)",
            g,
        );
    }
    respond(&registry)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostFilter {
    provider: Option<String>,
    region: Option<String>,
    identifier: Option<String>,
    limit: Option<usize>,
}

pub async fn hosts(State(state): State<Arc<Node>>, Params(filter): Params<HostFilter>) -> Response {
    let limit = filter.limit.unwrap_or(1000);
    if !(1..=10_000).contains(&limit) {
        return Problem::invalid(vec![FieldProblem::text(
            "limit",
            Text::new("check.metrics.limit"),
        )])
        .into_response();
    }
    let now = now_ms();
    let up: Family<Labels, Gauge> = Family::default();
    let cpu: Family<Labels, FloatGauge> = Family::default();
    let mem_used: Family<Labels, Gauge> = Family::default();
    let mem_total: Family<Labels, Gauge> = Family::default();
    let rtt: Family<Labels, FloatGauge> = Family::default();
    let age: Family<Labels, FloatGauge> = Family::default();
    let backlog: Family<Labels, Gauge> = Family::default();
    let gpu_util: Family<Labels, FloatGauge> = Family::default();
    let gpu_mem: Family<Labels, Gauge> = Family::default();
    let gpu_temp: Family<Labels, Gauge> = Family::default();
    let gpu_power: Family<Labels, FloatGauge> = Family::default();
    let gpu_ecc: Family<Labels, Gauge> = Family::default();
    let gpu_xid: Family<Labels, Gauge> = Family::default();
    {
        let fleet = state.catalog.read();
        let only_host = match filter.identifier.as_deref() {
            Some(text) => {
                let id = text.trim().to_ascii_uppercase();
                match fleet
                    .by_identifier
                    .get(&id)
                    .and_then(|r| fleet.resources.get(r))
                {
                    Some(r) => Some(r.host_id),
                    None => {
                        return Problem::text(
                            StatusCode::NOT_FOUND,
                            Text::new("error.metrics.no_resource").arg("id", &id),
                        )
                        .into_response();
                    }
                }
            }
            None => None,
        };
        let identifiers: std::collections::HashMap<(i64, Option<&str>), &str> = fleet
            .resources
            .values()
            .map(|r| ((r.host_id, r.gpu_uuid.as_deref()), r.identifier.as_str()))
            .collect();
        let mut chosen: Vec<_> = fleet
            .hosts
            .values()
            .filter(|h| only_host.is_none_or(|id| h.host_id == id))
            .filter(|h| {
                filter
                    .provider
                    .as_deref()
                    .is_none_or(|p| h.owner.code.eq_ignore_ascii_case(p))
            })
            .filter(|h| {
                filter
                    .region
                    .as_deref()
                    .is_none_or(|p| h.region.starts_with(p))
            })
            .collect();
        chosen.sort_by_key(|h| h.host_id);
        for host in chosen.into_iter().take(limit) {
            let identifier = identifiers
                .get(&(host.host_id, None))
                .copied()
                .unwrap_or_default()
                .to_owned();
            let labels = vec![
                ("identifier", identifier),
                ("host", host.hostname.clone()),
                ("provider", host.owner.code.clone()),
            ];
            up.get_or_create(&labels)
                .set(i64::from(host.state(now) == HostState::Online));
            if let Some(seen) = host.last_seen_ms {
                age.get_or_create(&labels)
                    .set(now.saturating_sub(seen) as f64 / 1000.0);
            }
            if let Some(n) = host.spool_backlog() {
                backlog.get_or_create(&labels).set(n as i64);
            }
            if let Some(us) = host.rtt_us {
                rtt.get_or_create(&labels).set(us as f64 / 1e6);
            }
            let Some(v) = host.vitals.as_deref() else {
                continue;
            };
            if let Some(u) = v.cpu_utilization_percent {
                cpu.get_or_create(&labels).set(u / 100.0);
            }
            if let Some(b) = v.memory_used_bytes {
                mem_used.get_or_create(&labels).set(b as i64);
            }
            if let Some(b) = v.memory_total_bytes {
                mem_total.get_or_create(&labels).set(b as i64);
            }
            for g in &v.gpus {
                let identifier = g
                    .uuid
                    .as_deref()
                    .and_then(|u| identifiers.get(&(host.host_id, Some(u))))
                    .copied()
                    .unwrap_or_default()
                    .to_owned();
                let labels = vec![
                    ("identifier", identifier),
                    ("host", host.hostname.clone()),
                    ("provider", host.owner.code.clone()),
                    ("gpu", g.index.to_string()),
                    ("vendor", g.vendor.to_owned()),
                ];
                if let Some(u) = g.utilization_percent {
                    gpu_util.get_or_create(&labels).set(f64::from(u) / 100.0);
                }
                if let Some(b) = g.memory_used_bytes {
                    gpu_mem.get_or_create(&labels).set(b as i64);
                }
                if let Some(t) = g.temperature_celsius {
                    gpu_temp.get_or_create(&labels).set(i64::from(t));
                }
                if let Some(w) = g.power_watts {
                    gpu_power.get_or_create(&labels).set(w);
                }
                if let Some(e) = g.ecc_uncorrected_volatile {
                    gpu_ecc.get_or_create(&labels).set(e as i64);
                }
                gpu_xid.get_or_create(&labels).set(g.xid_errors as i64);
            }
        }
    }
    let mut registry = Registry::default();
    let s = registry.sub_registry_with_prefix("suanli");
    s.register("host_up", "1 while the host's samples arrive on time", up);
    s.register(
        "host_sample_age_seconds",
        "Age of the host's latest sample",
        age,
    );
    s.register(
        "host_rtt_seconds",
        "QUIC round-trip time between host and aggregator",
        rtt,
    );
    s.register("host_cpu_utilization_ratio", "CPU utilization", cpu);
    s.register("host_memory_used_bytes", "Memory in use", mem_used);
    s.register("host_memory_total_bytes", "Memory installed", mem_total);
    s.register("gpu_utilization_ratio", "GPU utilization", gpu_util);
    s.register("gpu_memory_used_bytes", "GPU memory in use", gpu_mem);
    s.register("gpu_temperature_celsius", "GPU temperature", gpu_temp);
    s.register("gpu_power_watts", "GPU power draw", gpu_power);
    s.register(
        "gpu_ecc_uncorrected_volatile_errors",
        "Uncorrected ECC errors since the driver loaded",
        gpu_ecc,
    );
    s.register(
        "gpu_xid_errors",
        "XID errors seen since the aggregator started",
        gpu_xid,
    );
    respond(&registry)
}
