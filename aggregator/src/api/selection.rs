//! `POST /api/v1/selection` and what selection sees of the network.

use std::{collections::BTreeMap, sync::Arc, time::Instant};

use axum::{Extension, Json, extract::State};
use serde_json::{Value, json};

use serde::Deserialize;

use super::{ApiState, Body, FieldProblem, Page, Params, Problem};
use crate::{
    auth::Principal,
    catalog::{Catalog, HostState},
    selection::{self, Expression, LineEdge, Network},
    store::{RegionLatency, SelectionRecord, Store, StoreError, now_ms},
};

type Api = State<Arc<ApiState>>;

/// The network selection routes over: the configured public table and
/// every open line.
pub async fn load_network(
    store: &Store,
    public: selection::PublicLatency,
) -> Result<Network, StoreError> {
    let lines = store
        .lines()
        .await?
        .into_iter()
        .filter(|l| l.state == "open")
        .map(|l| LineEdge {
            line_id: format!("{}-L{:06}", l.provider, l.id),
            provider: l.provider,
            from_region: l.from_region,
            to_region: l.to_region,
            latency_ms: l.latency_us as f64 / 1000.0,
            bandwidth_mbps: l.bandwidth_mbps.max(0) as u64,
            price_per_mbps_month: l.price_per_mbps_month,
        })
        .collect();
    Ok(Network { public, lines })
}

pub async fn select(
    State(state): Api,
    Extension(me): Extension<Principal>,
    Body(body): Body<Value>,
) -> Result<Json<Value>, Problem> {
    let started = Instant::now();
    let mut errors = Vec::new();
    let demand = match selection::demand::parse(&body) {
        Ok(d) => Some(d),
        Err(e) => {
            errors.extend(e);
            None
        }
    };
    // A compile error is one more bad field, reported with the rest.
    let expression = body
        .get("expression")
        .and_then(Value::as_str)
        .filter(|e| !e.trim().is_empty() && e.len() <= 4096)
        .and_then(|text| match Expression::compile(text) {
            Ok(e) => Some(e),
            Err(message) => {
                errors.push(FieldProblem {
                    field: "expression".into(),
                    message: format!("not a CEL expression: {message}"),
                });
                None
            }
        });
    let demand = match demand {
        Some(d) if errors.is_empty() => d,
        _ => return Err(Problem::invalid(errors)),
    };
    let worker = state.clone();
    let answer = tokio::task::spawn_blocking(move || {
        let network = worker
            .network
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let fleet = worker.ingest.catalog.read();
        selection::select(&fleet, &network, &demand, expression.as_ref(), now_ms())
    })
    .await
    .map_err(Problem::internal)?;
    let elapsed_us = started.elapsed().as_micros() as i64;
    // Recorded as scheduling business, off the answer's path.
    let record = SelectionRecord {
        id: 0,
        at_ms: now_ms() as i64,
        actor: me.actor.clone(),
        demand: body,
        matched_hosts: answer.matched_hosts as i64,
        candidates: answer.candidates.len() as i64,
        chosen: answer.candidates.first().map_or(Value::Null, |c| {
            c.hosts
                .iter()
                .flat_map(|h| h.resources.iter().cloned())
                .collect()
        }),
        elapsed_us,
    };
    let store = state.ingest.store.clone();
    tokio::spawn(async move {
        if let Err(e) = store.record_selection(&record).await {
            tracing::warn!(error = %e, "could not record a selection");
        }
    });
    let mut out = json!(answer);
    out["elapsed_us"] = json!(elapsed_us);
    Ok(Json(out))
}

pub async fn selections(
    State(state): Api,
    Params(q): Params<Page>,
) -> Result<Json<Value>, Problem> {
    let list = state.ingest.store.selections(q.before, q.limit()?).await?;
    Ok(Json(json!({ "selections": list })))
}

/// Latency observed from this node (`from_region`) to each region now:
/// half the median QUIC round trip of the region's online hosts, in the
/// minute holding `now`.
pub fn observed_latency(catalog: &Catalog, from_region: &str, now: u64) -> Vec<RegionLatency> {
    let mut rtts: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for host in catalog.read().hosts.values() {
        if host.state(now) == HostState::Online
            && let Some(us) = host.rtt_us
        {
            rtts.entry(host.region.clone()).or_default().push(us);
        }
    }
    rtts.into_iter()
        .map(|(to_region, mut us)| {
            us.sort_unstable();
            RegionLatency {
                minute_ms: crate::history::minute_of(now) as i64,
                from_region: from_region.to_owned(),
                to_region,
                hosts: us.len() as i64,
                median_rtt_us: us[us.len() / 2] as i64,
                min_rtt_us: us[0] as i64,
                max_rtt_us: us[us.len() - 1] as i64,
            }
        })
        .collect()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkQuery {
    /// Hours of kept observations to include (default 24).
    hours: Option<u64>,
}

/// The configured public table, the lines, the latency observed from this
/// node to each region now, and the minutes of it kept.
pub async fn network(
    State(state): Api,
    Params(q): Params<NetworkQuery>,
) -> Result<Json<Value>, Problem> {
    let hours = q.hours.unwrap_or(24);
    if !(1..=24 * 31).contains(&hours) {
        return Err(Problem::invalid(vec![FieldProblem {
            field: "hours".into(),
            message: "between 1 and 744".into(),
        }]));
    }
    let network = state
        .network
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let now = now_ms();
    let observed: Vec<Value> = observed_latency(&state.ingest.catalog, &state.local_region, now)
        .into_iter()
        .map(|o| {
            let median_ms = o.median_rtt_us as f64 / 1000.0;
            json!({
                "from_region": o.from_region,
                "to_region": o.to_region,
                "hosts": o.hosts,
                "median_rtt_ms": median_ms,
                "one_way_ms": median_ms / 2.0,
                "configured_ms": network.public.between(&o.from_region, &o.to_region),
            })
        })
        .collect();
    let kept = state
        .ingest
        .store
        .region_latency(now.saturating_sub(hours * 3_600_000))
        .await?;
    Ok(Json(json!({
        "public": network.public,
        "lines": network.lines,
        "observed": observed,
        "history": kept,
    })))
}
