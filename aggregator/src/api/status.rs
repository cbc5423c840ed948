//! The status API: what the node has, what state it is in, and its history.
//! Read from the in-memory [`Catalog`](crate::catalog::Catalog), so a page
//! of a 100,000-resource node never waits on the database.

use std::{collections::BTreeMap, convert::Infallible, sync::Arc, time::Duration};

use axum::{
    Extension, Json,
    extract::{Path, State},
    http::StatusCode,
    response::sse::{Event, KeepAlive, Sse},
};
use serde::Deserialize;
use serde_json::{Value, json};
use suanli_protocol::{
    identifier::{Identifier, ResourceType},
    proto,
    stream::SequencedSample,
};

use super::{Body, Params, Problem, Reader, views::HostView};
use crate::{
    auth::Principal,
    capacity::Precision,
    check::FieldProblem,
    fleet::{Fleet, HostEntry, HostState, ResourceEntry, Tally},
    history::Stat,
    i18n::{Lang, Text},
    live, market,
    node::Node,
    service::{Actor, audit, hosts},
    store::now_ms,
};

type Api = State<Arc<Node>>;
type Caller = Extension<Principal>;

fn resource_json(fleet: &Fleet, r: &ResourceEntry, now: u64, lang: Lang) -> Value {
    let host = fleet.hosts.get(&r.host_id);
    let state = host.map(|h| h.state(now));
    let last_seen = host.and_then(|h| h.last_seen_ms);
    let vitals = host.and_then(|h| h.vitals.as_deref());
    let live = match &r.gpu_uuid {
        Some(uuid) => host.and_then(|h| h.gpu_vitals(uuid)).map(|g| json!(g)),
        None => vitals.map(|v| {
            json!({
                "cpu_utilization_percent": v.cpu_utilization_percent,
                "load_average_1m": v.load_average_1m,
                "memory_total_bytes": v.memory_total_bytes,
                "memory_used_bytes": v.memory_used_bytes,
            })
        }),
    };
    let (health, reasons) = match host {
        Some(h) => crate::alerting::resource_health(h, r, now),
        None => (crate::health::Health::Unknown, Vec::new()),
    };
    let faults = r
        .gpu_uuid
        .as_deref()
        .and_then(|uuid| host?.gpu_faults.get(uuid));
    json!({
        "identifier": r.identifier,
        "health": health,
        "health_reasons": reasons.iter().map(|t| t.render(lang)).collect::<Vec<_>>(),
        "selectable": host.is_none_or(|h| h.unselectable(r).is_none()),
        "faults": faults,
        "resource_type": r.resource_type.code().to_string(),
        "resource_type_name": {"zh": r.resource_type.name_zh(), "en": r.resource_type.name_en()},
        "model": r.model,
        "memory_bytes": r.memory_bytes,
        "host_id": r.host_id,
        "hostname": host.map(|h| h.hostname.as_str()),
        "provider": host.map(|h| &*h.owner),
        "region": host.map(|h| h.region.as_str()),
        "logical_cpus": host.and_then(|h| h.inventory.as_ref()).map(|i| i.cpu.logical_cpus).filter(|_| r.gpu_uuid.is_none()),
        "state": state,
        "free_now": fleet.free_now(r, now),
        "last_seen_ms": last_seen,
        "freshness_ms": last_seen.map(|seen| now.saturating_sub(seen)),
        "collected_at_ms": vitals.map(|v| v.collected_at_ms),
        "live": live,
    })
}

// ---- summary ----

pub async fn summary(State(state): Api) -> Json<Value> {
    let now = now_ms();
    let fleet = state.catalog.read();
    let mut hosts: BTreeMap<&str, u64> = HostState::ALL.iter().map(|s| (s.as_str(), 0)).collect();
    let (mut cpus, mut memory, mut cpu_util, mut cpu_util_n) = (0u64, 0u64, 0.0, 0u64);
    for host in fleet.hosts.values() {
        let host_state = host.state(now);
        *hosts.entry(host_state.as_str()).or_default() += 1;
        if let Some(inv) = &host.inventory {
            cpus += u64::from(inv.cpu.logical_cpus);
            memory += inv.memory_total_bytes.unwrap_or(0);
        }
        if host_state == HostState::Online
            && let Some(u) = host.vitals.as_ref().and_then(|v| v.cpu_utilization_percent)
        {
            cpu_util += u;
            cpu_util_n += 1;
        }
    }
    // Accelerators by model id first (an index, not a map lookup, per
    // accelerator), then by name.
    let mut by_type: BTreeMap<char, Tally> = BTreeMap::new();
    let mut accelerators = Tally::default();
    let mut by_model_id = vec![Tally::default(); fleet.model_names.len()];
    for r in fleet.readings(now) {
        match r.model_id.and_then(|m| by_model_id.get_mut(m as usize)) {
            Some(model) => {
                model.add(&r);
                accelerators.add(&r);
            }
            None => by_type.entry(r.resource_type.code()).or_default().add(&r),
        }
    }
    if accelerators.total > 0 {
        by_type
            .entry(ResourceType::AiAccelerator.code())
            .or_default()
            .merge(&accelerators);
    }
    let mut by_model: BTreeMap<&str, Tally> = BTreeMap::new();
    for (id, t) in by_model_id.iter().enumerate().filter(|(_, t)| t.total > 0) {
        by_model
            .entry(fleet.model_name(id as u32))
            .or_default()
            .merge(t);
    }
    fn render<K: std::fmt::Display>(m: BTreeMap<K, Tally>) -> Value {
        m.into_iter()
            .map(|(k, t)| {
                json!({
                    "key": k.to_string(),
                    "total": t.total,
                    "online": t.online,
                    "free_now": t.free,
                    "memory_bytes": t.memory_bytes,
                    "mean_utilization_percent": t.mean_utilization_percent(),
                })
            })
            .collect()
    }
    let scale = market::Scale::of(&market::resource_report(&fleet, &state.prefix(), 0, now).groups);
    let unrated: BTreeMap<&str, u64> = [
        ("A", Precision::Fp16),
        ("C", Precision::Fp32),
        ("H", Precision::Fp64),
    ]
    .into_iter()
    .filter_map(|(t, p)| Some((t, scale.by_type.get(t)?.get(p.as_str())?.unrated)))
    .collect();
    Json(json!({
        "at_ms": now,
        "headline": scale.headline(),
        "unrated": unrated,
        "hosts": hosts,
        "hosts_total": fleet.hosts.len(),
        "resources_total": fleet.resources.len(),
        "connected_agents": state.registry.connected(),
        "capacity": {"logical_cpus": cpus, "memory_bytes": memory},
        "mean_cpu_utilization_percent": (cpu_util_n > 0).then(|| cpu_util / cpu_util_n as f64),
        "by_resource_type": render(by_type),
        "by_accelerator_model": render(by_model),
    }))
}

// ---- heatmap ----

/// Hosts in one heatmap answer, at most.
const MAX_HEATMAP_HOSTS: usize = 5_000;

/// Each accelerator's utilization now, host by host (by region, then
/// hostname): idle and hot capacity at a glance. A host not online, or an
/// accelerator without a reading, has none.
pub async fn heatmap(State(state): Api) -> Json<Value> {
    let now = now_ms();
    let fleet = state.catalog.read();
    let mut hosts: Vec<&HostEntry> = fleet
        .hosts
        .values()
        .filter(|h| !h.revoked && !h.gpu_briefs.is_empty())
        .collect();
    hosts.sort_by(|a, b| (&a.region, &a.hostname).cmp(&(&b.region, &b.hostname)));
    let rows: Vec<Value> = hosts
        .iter()
        .take(MAX_HEATMAP_HOSTS)
        .map(|h| {
            let state = h.state(now);
            let online = state == HostState::Online;
            json!({
                "host_id": h.host_id,
                "hostname": h.hostname,
                "region": h.region,
                "state": state.as_str(),
                "utilization_percent": h
                    .gpu_briefs
                    .iter()
                    .map(|g| g.utilization_percent.filter(|_| online))
                    .collect::<Vec<_>>(),
            })
        })
        .collect();
    Json(json!({
        "hosts": rows,
        "hosts_total": hosts.len(),
        "truncated": hosts.len() > MAX_HEATMAP_HOSTS,
    }))
}

// ---- resources ----

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceQuery {
    #[serde(rename = "type")]
    resource_type: Option<String>,
    model: Option<String>,
    region: Option<String>,
    provider: Option<String>,
    industry: Option<String>,
    state: Option<String>,
    free: Option<bool>,
    q: Option<String>,
    cursor: Option<String>,
    limit: Option<usize>,
}

pub async fn resources(
    State(state): Api,
    Reader(lang): Reader,
    Params(q): Params<ResourceQuery>,
) -> Result<Json<Value>, Problem> {
    let mut errors = Vec::new();
    let mut fail = |field: &str, text: Text| errors.push(FieldProblem::text(field, text));
    let resource_type = match q.resource_type.as_deref() {
        None => None,
        Some(t) => {
            let found = ResourceType::parse(t).ok();
            if found.is_none() {
                fail("type", Text::new("check.status.type"));
            }
            found
        }
    };
    let wanted_state = match q.state.as_deref() {
        None => None,
        Some(s) => {
            let found = HostState::ALL.into_iter().find(|h| h.as_str() == s);
            if found.is_none() {
                fail("state", Text::new("check.status.resource_state"));
            }
            found
        }
    };
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        fail("limit", between(1, 1000));
    }
    let after = match q.cursor.as_deref() {
        None | Some("") => None,
        Some(c) => {
            let parsed = c.parse::<i64>().ok();
            if parsed.is_none() {
                fail("cursor", Text::new("check.status.cursor"));
            }
            parsed
        }
    };
    if !errors.is_empty() {
        return Err(Problem::invalid(errors));
    }
    let model = q.model.as_deref().map(str::to_lowercase);
    let model_upper = q.model.as_deref().map(str::to_uppercase);
    let needle = q.q.as_deref().map(str::to_uppercase);
    let provider = q.provider.as_deref().map(str::to_uppercase);
    let now = now_ms();
    let fleet = state.catalog.read();
    let mut page = Vec::with_capacity(limit);
    let mut next = None;
    let start = after.map_or(std::ops::Bound::Unbounded, std::ops::Bound::Excluded);
    for r in fleet
        .resources
        .range((start, std::ops::Bound::Unbounded))
        .map(|(_, r)| r)
    {
        let Some(host) = fleet.hosts.get(&r.host_id) else {
            continue;
        };
        let keep = resource_type.is_none_or(|t| t == r.resource_type)
            && model.as_deref().is_none_or(|m| {
                r.model_key.contains(m)
                    || model_upper
                        .as_deref()
                        .is_some_and(|u| r.identifier.contains(u))
            })
            && q.region
                .as_deref()
                .is_none_or(|p| host.region.starts_with(p))
            && provider.as_deref().is_none_or(|p| host.owner.code == p)
            && q.industry
                .as_deref()
                .is_none_or(|p| host.owner.industry.starts_with(p))
            && wanted_state.is_none_or(|s| host.state(now) == s)
            && q.free
                .is_none_or(|f| fleet.free_now(r, now).unwrap_or(false) == f)
            && needle.as_deref().is_none_or(|n| {
                r.identifier.contains(n) || host.hostname.to_uppercase().contains(n)
            });
        if !keep {
            continue;
        }
        if page.len() == limit {
            next = page.last().map(|(id, _): &(i64, Value)| id.to_string());
            break;
        }
        page.push((r.id, resource_json(&fleet, r, now, lang)));
    }
    Ok(Json(json!({
        "resources": page.into_iter().map(|(_, v)| v).collect::<Vec<_>>(),
        "next_cursor": next,
    })))
}

/// A 404: what no resource can be named is not found, and the detail says
/// why (the check character, MOD 37-2, is beyond what a schema can say).
fn not_an_identifier(text: &str, error: impl std::fmt::Display) -> Problem {
    Problem::text(
        StatusCode::NOT_FOUND,
        Text::new("error.status.not_identifier")
            .arg("text", text)
            .arg("error", error),
    )
}

/// "between {min} and {max}"
fn between(min: impl std::fmt::Display, max: impl std::fmt::Display) -> Text {
    Text::new("check.check.between")
        .arg("min", min)
        .arg("max", max)
}

/// A resource by identifier; a 404 if this node has none (or none can be).
fn find<'a>(fleet: &'a Fleet, text: &str) -> Result<&'a ResourceEntry, Problem> {
    let identifier = Identifier::parse(text).map_err(|e| not_an_identifier(text, e))?;
    let canonical = identifier.to_string();
    fleet
        .by_identifier
        .get(&canonical)
        .and_then(|id| fleet.resources.get(id))
        .map(|r| &**r)
        .ok_or_else(|| {
            Problem::text(
                StatusCode::NOT_FOUND,
                Text::new("error.status.no_resource").arg("identifier", &canonical),
            )
        })
}

/// Resolves an identifier: a resource of this node with its live state,
/// else what the identifier library holds of it (minted below and filed
/// here, or an old identifier superseded), else a referral.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResolveQuery {
    live: Option<String>,
}

pub async fn resolve(
    State(state): Api,
    Reader(lang): Reader,
    Path(identifier): Path<String>,
    Params(q): Params<ResolveQuery>,
) -> Result<Json<Value>, Problem> {
    let live = match q.live.as_deref() {
        None | Some("0" | "false") => false,
        Some("1" | "true") => true,
        Some(_) => {
            return Err(Problem::invalid(vec![FieldProblem::text(
                "live",
                Text::new("check.status.live"),
            )]));
        }
    };
    let parsed = Identifier::parse(&identifier).map_err(|e| not_an_identifier(&identifier, e))?;
    {
        let fleet = state.catalog.read();
        if let Ok(r) = find(&fleet, &identifier) {
            let mut body = resource_json(&fleet, r, now_ms(), lang);
            if let Some(host) = fleet.hosts.get(&r.host_id) {
                body["host"] = host_identity(host);
            }
            return Ok(Json(body));
        }
    }
    super::nodes::resolve_filed(&state, &parsed, live).await
}

fn host_identity(host: &HostEntry) -> Value {
    let identifier = host.own_resource().map(|r| r.identifier.clone());
    json!({"host_id": host.host_id, "hostname": host.hostname, "identifier": identifier})
}

// ---- history ----

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    metric: Option<String>,
    from: Option<String>,
    to: Option<String>,
    step: Option<String>,
}

/// Most points one history answer may hold.
const MAX_POINTS: u64 = 10_000;

pub(super) fn parse_time(text: &str) -> Option<u64> {
    text.parse::<u64>().ok().or_else(|| {
        humantime::parse_rfc3339_weak(text)
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_millis() as u64)
    })
}

pub async fn history(
    State(state): Api,
    Path(identifier): Path<String>,
    Params(q): Params<HistoryQuery>,
) -> Result<Json<Value>, Problem> {
    let (host_id, gpu_index, canonical) = {
        let fleet = state.catalog.read();
        let r = find(&fleet, &identifier)?;
        let gpu_index = r.gpu_uuid.as_ref().and_then(|uuid| {
            let inv = fleet.hosts.get(&r.host_id)?.inventory.as_ref()?;
            inv.gpus
                .iter()
                .find(|g| g.uuid.as_ref() == Some(uuid))
                .map(|g| g.index)
        });
        (
            r.host_id,
            r.gpu_uuid.as_ref().map(|_| gpu_index),
            r.identifier.clone(),
        )
    };
    let mut errors = Vec::new();
    let mut fail = |field: &str, text: Text| errors.push(FieldProblem::text(field, text));
    let metric_name = q.metric.as_deref().unwrap_or(if gpu_index.is_some() {
        "gpu_utilization_percent"
    } else {
        "cpu_utilization_percent"
    });
    let metric = Metric::parse(metric_name);
    match metric {
        None => fail(
            "metric",
            Text::new("check.status.metric_unknown")
                .arg("metric", metric_name)
                .arg("known", METRICS.join(", ")),
        ),
        Some(m) if m.is_gpu() != gpu_index.is_some() => fail(
            "metric",
            Text::new("check.status.metric_type").arg("metric", metric_name),
        ),
        _ => {}
    }
    let now = now_ms();
    let to = match q.to.as_deref() {
        None => Some(now),
        Some(t) => parse_time(t),
    };
    if to.is_none() {
        fail("to", Text::new("check.status.time"));
    }
    let to = to.unwrap_or(now);
    let from = match q.from.as_deref() {
        None => Some(to.saturating_sub(3_600_000)),
        Some(t) => parse_time(t),
    };
    if from.is_none() {
        fail("from", Text::new("check.status.time"));
    }
    let from = from.unwrap_or(0);
    if from >= to {
        fail("from", Text::new("check.status.before_to"));
    }
    let step = match q.step.as_deref() {
        None => Some(60_000),
        Some(s) => humantime::parse_duration(s)
            .ok()
            .map(|d| d.as_millis() as u64)
            .filter(|ms| *ms >= 1_000),
    };
    if step.is_none() {
        fail("step", Text::new("check.status.step"));
    }
    let step = step.unwrap_or(60_000);
    if to.saturating_sub(from) / step > MAX_POINTS {
        fail(
            "step",
            Text::new("check.status.points").arg("max", MAX_POINTS),
        );
    }
    if !errors.is_empty() {
        return Err(Problem::invalid(errors));
    }
    let metric = metric
        .ok_or_else(|| Problem::text(StatusCode::BAD_REQUEST, Text::new("error.status.metric")))?;
    let gpu_index = gpu_index.flatten();
    let buckets = ((to - from).div_ceil(step)) as usize;
    let mut stats = vec![Stat::default(); buckets];
    let store = &state.store;
    // Older minutes come from rollups, the raw window from samples; a
    // minute in both (being rolled up right now) counts each sample once
    // because rollups delete the raw rows they fold in the same transaction.
    for (minute, rollup) in store.rollups(host_id, from).await? {
        if minute >= to {
            break;
        }
        if let Some(stat) = metric.read_rollup(&rollup, gpu_index)
            && minute >= from
        {
            stats[((minute - from) / step) as usize].merge(&stat);
        }
    }
    for body in store.samples_between(host_id, from, to).await? {
        let Ok(sample) = SequencedSample::decode(&body) else {
            continue;
        };
        let at = sample.sample.collected_at_unix_ms;
        if let Some(i) = at.checked_sub(from).map(|d| (d / step) as usize)
            && i < buckets
        {
            stats[i].add(metric.read_sample(&sample, gpu_index));
        }
    }
    let points: Vec<Value> = stats
        .iter()
        .enumerate()
        .filter(|(_, s)| s.n > 0)
        .map(|(i, s)| {
            json!({
                "t_ms": from + i as u64 * step,
                "mean": s.mean(),
                "min": s.min,
                "max": s.max,
                "samples": s.n,
            })
        })
        .collect();
    Ok(Json(json!({
        "identifier": canonical,
        "metric": metric_name,
        "from_ms": from,
        "to_ms": to,
        "step_ms": step,
        "points": points,
    })))
}

/// `?hours=` of a host's history: 1 (default) to 720 (30 days).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostHistoryQuery {
    hours: Option<u64>,
}

const HOUR_MS: u64 = crate::history::HOUR_MS;

/// Points a host's history holds at most: a chart's width.
const HOST_HISTORY_POINTS: u64 = 360;
/// The longest host history: as long as minute rollups are kept by default.
pub const HOST_HISTORY_MAX_HOURS: u64 = 720;

/// Every chart of a host's page over the last `hours`, in one read of its
/// rollups and raw samples: the host's figures and each accelerator's,
/// as means per step (10 s for an hour, 2 h for 30 days), on one time
/// axis; a step with no reading is null.
pub async fn host_history(
    State(state): Api,
    Extension(me): Caller,
    Path(reference): Path<String>,
    Params(q): Params<HostHistoryQuery>,
) -> Result<Json<Value>, Problem> {
    let host_id = visible_host(&state, &me, &reference).await?;
    let hours = q.hours.unwrap_or(1);
    if !(1..=HOST_HISTORY_MAX_HOURS).contains(&hours) {
        return Err(Problem::invalid(vec![FieldProblem::text(
            "hours",
            Text::new("check.status.hours").arg("max", HOST_HISTORY_MAX_HOURS),
        )]));
    }
    let gpus: Vec<u32> = state
        .catalog
        .read()
        .hosts
        .get(&host_id)
        .and_then(|h| {
            h.inventory
                .as_deref()
                .map(|inv| inv.gpus.iter().map(|g| g.index).collect())
        })
        .unwrap_or_default();
    let to = now_ms();
    let span = hours * HOUR_MS;
    // A whole number of 10 s, so that steps fall on round times, or of
    // hours when a step is an hour or more, so that hourly rollups fill
    // them; the first step starts at or after `to - span`, so there are at
    // most 360.
    let hourly = span / HOST_HISTORY_POINTS >= HOUR_MS;
    let unit = if hourly { HOUR_MS } else { 10_000 };
    let step = (span / HOST_HISTORY_POINTS).div_ceil(unit).max(1) * unit;
    let from = to.saturating_sub(span).div_ceil(step) * step;
    let store = &state.store;
    // Read here; decoded and summed off the async threads. Hours made into
    // hourly rollups are read as such (720 rows for 30 days instead of
    // 43,200), the minutes after them as minutes.
    let mut rollups = Vec::new();
    let mut minutes_from = from;
    if hourly && let Some(until) = store.hourly_until().await? {
        rollups = store
            .hourly_rollup_bodies(host_id, from, until.min(to))
            .await?;
        minutes_from = from.max(until);
    }
    rollups.extend(store.rollup_bodies(host_id, minutes_from, to).await?);
    let samples = store.samples_between(host_id, from, to).await?;
    let answer = tokio::task::spawn_blocking(move || {
        host_history_of(&gpus, from, to, step, &rollups, &samples)
    })
    .await
    .map_err(|e| Problem::unavailable(crate::service::Source::Task, e))?;
    Ok(Json(answer))
}

/// The host page's series from stored rollups and raw samples: means per
/// step of `step_ms` from `from` to `to`, only the steps read in.
fn host_history_of(
    gpus: &[u32],
    from: u64,
    to: u64,
    step: u64,
    rollups: &[(u64, Vec<u8>)],
    samples: &[Vec<u8>],
) -> Value {
    let buckets = (to - from).div_ceil(step) as usize;
    // The host's figures and each accelerator's, as `Metric` lists them.
    let (gpu_metrics, host_metrics): (Vec<Metric>, Vec<Metric>) =
        Metric::ALL.into_iter().partition(|m| m.is_gpu());
    let mut host_stats = vec![vec![Stat::default(); buckets]; host_metrics.len()];
    let mut gpu_stats = vec![vec![vec![Stat::default(); buckets]; gpu_metrics.len()]; gpus.len()];
    // As in `history`: minutes already rolled up, then the raw window.
    for (minute, body) in rollups {
        let Some(i) = minute
            .checked_sub(from)
            .map(|d| (d / step) as usize)
            .filter(|i| *i < buckets)
        else {
            continue;
        };
        let Ok(rollup) = crate::history::Rollup::from_bytes(body) else {
            continue;
        };
        for (m, stats) in host_metrics.iter().zip(&mut host_stats) {
            if let Some(stat) = m.read_rollup(&rollup, None) {
                stats[i].merge(&stat);
            }
        }
        for (index, per_gpu) in gpus.iter().zip(&mut gpu_stats) {
            for (m, stats) in gpu_metrics.iter().zip(per_gpu) {
                if let Some(stat) = m.read_rollup(&rollup, Some(*index)) {
                    stats[i].merge(&stat);
                }
            }
        }
    }
    for body in samples {
        let Ok(sample) = SequencedSample::decode(body) else {
            continue;
        };
        let Some(i) = sample
            .sample
            .collected_at_unix_ms
            .checked_sub(from)
            .map(|d| (d / step) as usize)
            .filter(|i| *i < buckets)
        else {
            continue;
        };
        for (m, stats) in host_metrics.iter().zip(&mut host_stats) {
            stats[i].add(m.read_sample(&sample, None));
        }
        for (index, per_gpu) in gpus.iter().zip(&mut gpu_stats) {
            for (m, stats) in gpu_metrics.iter().zip(per_gpu) {
                stats[i].add(m.read_sample(&sample, Some(*index)));
            }
        }
    }
    // Only the steps something was read in.
    let kept: Vec<usize> = (0..buckets)
        .filter(|&i| {
            host_stats.iter().any(|s| s[i].n > 0) || gpu_stats.iter().flatten().any(|s| s[i].n > 0)
        })
        .collect();
    let means =
        |stats: &[Stat]| -> Vec<Option<f64>> { kept.iter().map(|&i| stats[i].mean()).collect() };
    let mut answer = json!({
        "from_ms": from,
        "to_ms": to,
        "step_ms": step,
        "t_ms": kept.iter().map(|&i| from + i as u64 * step).collect::<Vec<_>>(),
    });
    for (m, stats) in host_metrics.iter().zip(&host_stats) {
        answer[m.name()] = json!(means(stats));
    }
    answer["gpus"] = gpus
        .iter()
        .zip(&gpu_stats)
        .map(|(index, per_gpu)| {
            let mut gpu = json!({ "index": index });
            for (m, stats) in gpu_metrics.iter().zip(per_gpu) {
                gpu[m.name()] = json!(means(stats));
            }
            gpu
        })
        .collect();
    answer
}

/// The names [`Metric::parse`] takes, for the API's document.
pub const METRICS: &[&str] = &[
    "cpu_utilization_percent",
    "memory_used_bytes",
    "load_average_1m",
    "disk_read_bytes_per_second",
    "disk_write_bytes_per_second",
    "network_rx_bytes_per_second",
    "network_tx_bytes_per_second",
    "temperature_celsius",
    "gpu_utilization_percent",
    "gpu_memory_used_bytes",
    "gpu_temperature_celsius",
    "gpu_power_watts",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Metric {
    CpuUtilization,
    MemoryUsed,
    Load1,
    DiskRead,
    DiskWrite,
    NetworkRx,
    NetworkTx,
    Temperature,
    GpuUtilization,
    GpuMemoryUsed,
    GpuTemperature,
    GpuPower,
}

impl Metric {
    /// Its name in the API, which [`Metric::parse`] reads.
    fn name(self) -> &'static str {
        match self {
            Metric::CpuUtilization => "cpu_utilization_percent",
            Metric::MemoryUsed => "memory_used_bytes",
            Metric::Load1 => "load_average_1m",
            Metric::DiskRead => "disk_read_bytes_per_second",
            Metric::DiskWrite => "disk_write_bytes_per_second",
            Metric::NetworkRx => "network_rx_bytes_per_second",
            Metric::NetworkTx => "network_tx_bytes_per_second",
            Metric::Temperature => "temperature_celsius",
            Metric::GpuUtilization => "gpu_utilization_percent",
            Metric::GpuMemoryUsed => "gpu_memory_used_bytes",
            Metric::GpuTemperature => "gpu_temperature_celsius",
            Metric::GpuPower => "gpu_power_watts",
        }
    }

    const ALL: [Metric; 12] = [
        Metric::CpuUtilization,
        Metric::MemoryUsed,
        Metric::Load1,
        Metric::DiskRead,
        Metric::DiskWrite,
        Metric::NetworkRx,
        Metric::NetworkTx,
        Metric::Temperature,
        Metric::GpuUtilization,
        Metric::GpuMemoryUsed,
        Metric::GpuTemperature,
        Metric::GpuPower,
    ];

    fn parse(name: &str) -> Option<Metric> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }

    fn is_gpu(self) -> bool {
        matches!(
            self,
            Metric::GpuUtilization
                | Metric::GpuMemoryUsed
                | Metric::GpuTemperature
                | Metric::GpuPower
        )
    }

    fn read_sample(self, s: &SequencedSample, gpu: Option<u32>) -> Option<f64> {
        let s = &s.sample;
        let g = || s.gpus.iter().find(|g| Some(g.index) == gpu);
        let io = || crate::history::HostIo::of(s);
        match self {
            Metric::CpuUtilization => s.cpu.utilization_percent,
            Metric::MemoryUsed => s.memory.used_bytes.map(|b| b as f64),
            Metric::Load1 => s.cpu.load_average_1m,
            Metric::DiskRead => io().disk_read_bytes_per_second,
            Metric::DiskWrite => io().disk_write_bytes_per_second,
            Metric::NetworkRx => io().network_rx_bytes_per_second,
            Metric::NetworkTx => io().network_tx_bytes_per_second,
            Metric::Temperature => io().temperature_celsius,
            Metric::GpuUtilization => g()?.utilization_percent.map(f64::from),
            Metric::GpuMemoryUsed => g()?.memory_used_bytes.map(|b| b as f64),
            Metric::GpuTemperature => g()?.temperature_celsius.map(f64::from),
            Metric::GpuPower => g()?.power_milliwatts.map(|mw| f64::from(mw) / 1000.0),
        }
    }

    fn read_rollup(self, r: &crate::history::Rollup, gpu: Option<u32>) -> Option<Stat> {
        let g = || r.gpus.iter().find(|g| Some(g.index) == gpu);
        Some(match self {
            Metric::CpuUtilization => r.cpu_utilization_percent,
            Metric::MemoryUsed => r.memory_used_bytes,
            Metric::Load1 => r.load_average_1m,
            Metric::DiskRead => r.disk_read_bytes_per_second,
            Metric::DiskWrite => r.disk_write_bytes_per_second,
            Metric::NetworkRx => r.network_rx_bytes_per_second,
            Metric::NetworkTx => r.network_tx_bytes_per_second,
            Metric::Temperature => r.temperature_celsius,
            Metric::GpuUtilization => g()?.utilization_percent,
            Metric::GpuMemoryUsed => g()?.memory_used_bytes,
            Metric::GpuTemperature => g()?.temperature_celsius,
            Metric::GpuPower => {
                let mw = g()?.power_milliwatts;
                Stat {
                    n: mw.n,
                    sum: mw.sum / 1000.0,
                    min: mw.min / 1000.0,
                    max: mw.max / 1000.0,
                }
            }
        })
    }
}

// ---- hosts ----

/// A 404 for a host the caller cannot see.
fn no_host(reference: &str) -> Problem {
    Problem::text(
        StatusCode::NOT_FOUND,
        Text::new("error.no_host").arg("host", reference),
    )
}

/// A host the caller may see, by id, hostname or identifier.
async fn visible_host(state: &Node, me: &Principal, reference: &str) -> Result<i64, Problem> {
    let host_id = state.store.host_id(reference).await?;
    let provider_id = state.catalog.read().hosts.get(&host_id).map(|h| h.owner.id);
    match provider_id {
        // Another organisation's host does not exist as far as the caller knows.
        Some(p) if me.may_act_for(p) => Ok(host_id),
        _ => Err(no_host(reference)),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostsQuery {
    #[serde(default)]
    cursor: Option<i64>,
    #[serde(default)]
    limit: Option<i64>,
    state: Option<String>,
    provider: Option<String>,
    region: Option<String>,
    q: Option<String>,
    model: Option<String>,
}

/// A host's listed states, for the `state` filter.
pub const LISTED_STATES: &[&str] = &["online", "stale", "offline", "revoked", "enrolled"];

pub async fn hosts(
    State(state): Api,
    Extension(me): Caller,
    Params(q): Params<HostsQuery>,
) -> Result<Json<Value>, Problem> {
    let limit = q.limit.unwrap_or(1000);
    let mut errors = Vec::new();
    if !(1..=10_000).contains(&limit) {
        errors.push(FieldProblem::text("limit", between(1, 10_000)));
    }
    if q.state
        .as_deref()
        .is_some_and(|s| !LISTED_STATES.contains(&s))
    {
        errors.push(FieldProblem::text(
            "state",
            Text::new("check.lines.state").arg("states", LISTED_STATES.join(", ")),
        ));
    }
    if q.region
        .as_deref()
        .is_some_and(|r| r.len() > 6 || !r.bytes().all(|b| b.is_ascii_digit()))
    {
        errors.push(FieldProblem::text(
            "region",
            Text::new("check.status.region_prefix"),
        ));
    }
    if !errors.is_empty() {
        return Err(Problem::invalid(errors));
    }
    // Organisations see their own hosts only (no provider yet: none).
    let filter = crate::fleet::HostFilter {
        provider_id: (!me.role.is_staff()).then(|| me.provider_id.unwrap_or(0)),
        state: q.state,
        provider: q.provider.filter(|p| !p.is_empty()),
        region: q.region.filter(|r| !r.is_empty()),
        text: q
            .q
            .map(|t| t.trim().to_lowercase())
            .filter(|t| !t.is_empty()),
        model: q
            .model
            .map(|m| m.trim().to_lowercase())
            .filter(|m| !m.is_empty()),
    };
    // Which hosts, and how each stands, from the catalog (every host,
    // those never seen and revoked included); their stored figures from
    // the store, for this page only.
    let now = now_ms();
    // One more than the page: a cursor only where a host follows.
    let mut page: Vec<(i64, &'static str, String)> = {
        let fleet = state.catalog.read();
        fleet
            .hosts_matching(&filter, q.cursor.unwrap_or(0), limit as usize + 1, now)
            .into_iter()
            .map(|(host, listed)| (host.host_id, listed, host.region.clone()))
            .collect()
    };
    let more = page.len() > limit as usize;
    page.truncate(limit as usize);
    let ids: Vec<i64> = page.iter().map(|(id, _, _)| *id).collect();
    let listed = state.store.listed_hosts(&ids).await?;
    let next = more.then(|| page.last().map(|(id, _, _)| *id)).flatten();
    let hosts: Vec<Value> = listed
        .into_iter()
        .map(|stored| {
            let mut v = json!(HostView::from(&stored));
            v["link"] = json!(state.registry.link(stored.host_id));
            if let Ok(at) = page.binary_search_by_key(&stored.host_id, |(id, _, _)| *id) {
                v["state"] = json!(page[at].1);
                v["region"] = json!(page[at].2);
            }
            v
        })
        .collect();
    Ok(Json(json!({ "hosts": hosts, "next_cursor": next })))
}

pub async fn host(
    State(state): Api,
    Extension(me): Caller,
    Reader(lang): Reader,
    Path(reference): Path<String>,
) -> Result<Json<Value>, Problem> {
    let host_id = visible_host(&state, &me, &reference).await?;
    let now = now_ms();
    let fleet = state.catalog.read();
    let host = fleet
        .hosts
        .get(&host_id)
        .ok_or_else(|| no_host(&reference))?;
    let resources: Vec<Value> = host
        .resources
        .iter()
        .map(|r| resource_json(&fleet, r, now, lang))
        .collect();
    let holds: Vec<Value> = host
        .holds
        .iter()
        .filter(|(_, h)| h.until_ms > now)
        .filter_map(|(slot, h)| {
            let r = host.resources.get(*slot as usize)?;
            Some(json!({"identifier": r.identifier, "gpu_index": r.gpu_index, "reservation": h.reservation, "holder": h.holder, "until_ms": h.until_ms}))
        })
        .collect();
    let inventory = host
        .inventory
        .as_deref()
        .map(|inv| json!(proto::HostInventory::from(inv.clone())));
    Ok(Json(json!({
        "host_id": host_id,
        "hostname": host.hostname,
        "identifier": host_identity(host)["identifier"],
        "provider": &*host.owner,
        "region": host.region,
        "state": host.state(now),
        "last_seen_ms": host.last_seen_ms,
        "interval_ms": host.interval_ms,
        "spool_backlog": host.spool_backlog(),
        "link": state.registry.link(host_id),
        "vitals": host.vitals.as_deref(),
        "inventory": inventory,
        "resources": resources,
        "holds": holds,
    })))
}

/// Ends a live view when its stream is dropped.
struct LiveGuard {
    node: Arc<Node>,
    host_id: i64,
}

impl Drop for LiveGuard {
    fn drop(&mut self) {
        let node = &self.node;
        live::close(
            &node.catalog,
            &node.registry,
            self.host_id,
            node.settings.sample_interval,
        );
    }
}

pub async fn live(
    State(state): Api,
    Extension(me): Caller,
    Path(reference): Path<String>,
) -> Result<Sse<impl futures_core::Stream<Item = Result<Event, Infallible>>>, Problem> {
    let host_id = visible_host(&state, &me, &reference).await?;
    let mut samples =
        live::open(&state.catalog, &state.registry, host_id).ok_or_else(|| no_host(&reference))?;
    let guard = LiveGuard {
        node: state.clone(),
        host_id,
    };
    let stream = async_stream(move |tx| async move {
        let _guard = guard;
        loop {
            let vitals = samples.borrow_and_update().clone();
            if let Some(v) = vitals {
                let event = Event::default().event("sample").json_data(&*v);
                if let Ok(event) = event
                    && tx.send(Ok(event)).await.is_err()
                {
                    return;
                }
            }
            tokio::select! {
                changed = samples.changed() => if changed.is_err() { return },
                _ = tx.closed() => return,
            }
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// A stream fed by a task; the task ends when the client goes away.
fn async_stream<F, Fut>(producer: F) -> impl futures_core::Stream<Item = Result<Event, Infallible>>
where
    F: FnOnce(tokio::sync::mpsc::Sender<Result<Event, Infallible>>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(producer(tx));
    ReceiverStream(rx)
}

struct ReceiverStream<T>(tokio::sync::mpsc::Receiver<T>);

impl<T> futures_core::Stream for ReceiverStream<T> {
    type Item = T;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<T>> {
        self.0.poll_recv(cx)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntervalRequest {
    #[serde(deserialize_with = "crate::check::whole::exact")]
    interval_ms: u64,
}

pub async fn set_sample_interval(
    State(state): Api,
    Extension(me): Caller,
    Path(reference): Path<String>,
    Body(request): Body<IntervalRequest>,
) -> Result<StatusCode, Problem> {
    if !(100..=3_600_000).contains(&request.interval_ms) {
        return Err(Problem::invalid(vec![FieldProblem::text(
            "interval_ms",
            between(100, 3_600_000),
        )]));
    }
    let host_id = visible_host(&state, &me, &reference).await?;
    if state
        .registry
        .set_interval(host_id, Duration::from_millis(request.interval_ms))
    {
        state.catalog.expect_interval(host_id, request.interval_ms);
        audit::record(
            &state.store,
            &Actor::of(&me),
            "host.sample_interval",
            &format!("host/{host_id}"),
            &format!("{} ms", request.interval_ms),
        )
        .await;
        Ok(StatusCode::ACCEPTED)
    } else {
        Err(Problem::text(
            StatusCode::CONFLICT,
            Text::new("error.status.not_connected").arg("host", host_id),
        ))
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Transfer {
    provider: String,
}

/// Staff give a host to another provider (after a takeover claim was
/// refused, say): audited, and its agent must join again with the new
/// provider's token.
pub async fn transfer_host(
    State(state): Api,
    Extension(me): Caller,
    Path(reference): Path<String>,
    Body(request): Body<Transfer>,
) -> Result<Json<Value>, Problem> {
    let host_id = visible_host(&state, &me, &reference).await?;
    let provider = state.store.provider(&request.provider).await?;
    hosts::transfer_live(
        &state,
        &Actor::of(&me),
        &host_id.to_string(),
        &provider.owner_code,
    )
    .await?;
    Ok(Json(
        json!({"host_id": host_id, "provider": provider.owner_code}),
    ))
}

pub async fn revoke_host(
    State(state): Api,
    Extension(me): Caller,
    Path(reference): Path<String>,
) -> Result<StatusCode, Problem> {
    let host_id = visible_host(&state, &me, &reference).await?;
    hosts::revoke_live(&state, &Actor::of(&me), host_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_lists_every_metric_by_its_name() {
        let names: Vec<&str> = Metric::ALL.iter().map(|m| m.name()).collect();
        assert_eq!(names, METRICS);
    }
}
