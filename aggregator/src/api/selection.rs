//! `POST /api/v1/selection`, holding what it chose (`/api/v1/reservations`),
//! and what selection sees of the network.

use std::sync::Arc;

use axum::{
    Extension, Json,
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};

use serde::Deserialize;

use super::{
    Body, Page, Params, Problem, Reader,
    views::{self, LatencyView, SelectionView},
};
use crate::{
    auth::Principal,
    check::{FieldProblem, Invalid},
    i18n::Text,
    node::Node,
    routing::observed_latency,
    service::{
        self, Actor,
        reservations::{self, HoldRequest, Holder},
    },
    store::now_ms,
};

type Api = State<Arc<Node>>;

pub async fn select(
    State(state): Api,
    Extension(me): Extension<Principal>,
    Reader(lang): Reader,
    Body(body): Body<Value>,
) -> Result<Json<Value>, Problem> {
    let mut selected =
        service::select::select(&state, service::select::Asker::User(&me.actor), body).await?;
    // Why hosts missed, in the reader's words.
    let answer = &mut selected.answer;
    for failure in answer.nearest_misses.iter_mut().flat_map(|m| &mut m.failed) {
        if let Some(text) = &failure.text {
            failure.detail = text.render(lang);
        }
    }
    if let Some(text) = &answer.groups_short_text {
        answer.groups_short = Some(text.render(lang));
    }
    for outcome in &mut answer.nodes {
        if let Some(text) = &outcome.text {
            outcome.reason = Some(text.render(lang));
        }
    }
    let mut out = json!(selected.answer);
    out["elapsed_us"] = json!(selected.elapsed_us);
    out["node"] = json!(state.prefix().to_string());
    Ok(Json(out))
}

/// Holds a candidate's resources; a replayed request answers the same hold.
pub async fn hold(
    State(node): Api,
    Extension(me): Extension<Principal>,
    Body(request): Body<HoldRequest>,
) -> Result<Response, Problem> {
    let holder = Holder::of(&node, &me);
    let hold = reservations::hold(
        &node,
        &Actor::of(&me),
        &holder,
        request,
        reservations::DEADLINE,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(json!(hold))).into_response())
}

pub async fn release(
    State(node): Api,
    Extension(me): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Json<Value>, Problem> {
    let holder = Holder::of(&node, &me);
    let hold =
        reservations::release(&node, &Actor::of(&me), &holder, &id, reservations::DEADLINE).await?;
    Ok(Json(json!(hold)))
}

pub async fn holds(
    State(node): Api,
    Extension(me): Extension<Principal>,
) -> Result<Json<Value>, Problem> {
    let holds = reservations::list(&node, &me).await?;
    Ok(Json(json!({ "reservations": holds })))
}

pub async fn selections(
    State(state): Api,
    Params(q): Params<Page>,
) -> Result<Json<Value>, Problem> {
    let list = state.store.selections(q.before, q.limit()?).await?;
    Ok(Json(
        json!({ "selections": views::all::<_, SelectionView<'_>>(&list) }),
    ))
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
        return Err(Invalid(vec![FieldProblem::text(
            "hours",
            Text::new("check.check.between")
                .arg("min", 1)
                .arg("max", 24 * 31),
        )])
        .into());
    }
    let network = state.routing.network();
    let now = now_ms();
    let observed: Vec<Value> = observed_latency(
        &state.catalog,
        &state.settings.local_region.to_string(),
        now,
    )
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
        .store
        .region_latency(now.saturating_sub(hours * 3_600_000))
        .await?;
    Ok(Json(json!({
        "public": network.public,
        "lines": network.lines,
        "observed": observed,
        "history": views::all::<_, LatencyView<'_>>(&kept),
    })))
}
