//! The hierarchy over HTTP: child nodes (下级节点) with their links and
//! pending requests, the parent link (上级节点), join tokens, review and
//! revocation, and the identifier library's search. The operations are in
//! [`crate::service::nodes`].

use std::{collections::HashMap, sync::Arc, time::Duration};

use axum::{
    Extension, Json,
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use serde_json::{Value, json};
use suanli_protocol::{
    identifier::{Identifier, NodePrefix, ResourceType},
    node::{LiveState, Role},
};

use super::{Body, Params, Problem, parse_id};
use crate::{
    auth::Principal,
    check::{FieldProblem, Invalid},
    hierarchy::{self, LinkState, Referral},
    i18n::Text,
    links::AskError,
    node::{Node, NodeEvent},
    service::{Actor, ServiceError, nodes},
    store::{ChildNode, LibraryEntry, LibraryQuery, now_ms},
};

type Api = State<Arc<Node>>;
type Caller = Extension<Principal>;

fn child_json(c: &ChildNode, identifiers: i64, now: u64) -> Value {
    let state = LinkState::of(&c.state, c.last_heartbeat_ms.map(|v| v as u64), now);
    json!({
        "id": c.id,
        "role": c.role,
        "segment": c.segment,
        "operator_name": c.operator_name,
        "operator_uscc": c.operator_uscc,
        "advertise": c.advertise,
        "state": c.state,
        "link": state.as_str(),
        "reason": c.reason,
        "prefix": c.prefix,
        "requested_at_ms": c.requested_at_ms,
        "reviewed_by": c.reviewed_by,
        "reviewed_at_ms": c.reviewed_at_ms,
        "last_heartbeat_ms": c.last_heartbeat_ms,
        "backlog": c.backlog,
        "dropped": c.dropped,
        "identifiers": identifiers,
    })
}

/// The node's place in the tree: its children, its parent, the library's
/// totals, and organisations filed under more than one child.
pub async fn nodes(State(node): Api) -> Result<Json<Value>, Problem> {
    let now = now_ms();
    let counts: HashMap<Option<i64>, i64> =
        node.store.library_counts().await?.into_iter().collect();
    let children = node.store.children(None).await?;
    let parent = node.store.parent_link().await?;
    let backlog = node.store.unspooled_count().await?;
    let duplicates = node.store.duplicate_usccs().await?;
    let providers = node.store.filed_providers().await?;
    let own = counts.get(&None).copied().unwrap_or(0);
    let link = node.uplink.get();
    let subtree: i64 = counts.values().sum();
    Ok(Json(json!({
        "role": node.settings.role.as_str(),
        "prefix": node.prefix().to_string(),
        "identifiers": {"own": own, "subtree": subtree},
        "children": children
            .iter()
            .map(|c| child_json(c, counts.get(&Some(c.id)).copied().unwrap_or(0), now))
            .collect::<Vec<_>>(),
        "parent": parent.map(|p| json!({
            "address": p.address,
            "state": p.state,
            "reason": p.reason,
            "request_id": p.request_id,
            "prefix": p.prefix,
            "parent_prefix": p.parent_prefix,
            "requested_at_ms": p.requested_at_ms,
            "decided_at_ms": p.decided_at_ms,
            // Rows changed here and not yet put in the spool towards it.
            "unspooled": backlog,
            "link": if link.connected { "connected" } else { "disconnected" },
            // Records in the spool the parent has not acknowledged yet.
            "backlog": link.backlog,
            "dropped": link.dropped,
            "last_ack_ms": link.last_ack_ms,
        })),
        // Organisations registered at descendants, known from their filings.
        "providers": providers
            .iter()
            .map(|p| json!({
                "node": p.node,
                "owner_code": p.owner_code,
                "name": p.name,
                "uscc": p.uscc,
                "identifiers": p.identifiers,
            }))
            .collect::<Vec<_>>(),
        "duplicate_uscc": duplicates
            .into_iter()
            .map(|(uscc, holders)| json!({"uscc": uscc, "nodes": holders}))
            .collect::<Vec<_>>(),
    })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeTokenAsk {
    role: String,
    #[serde(default)]
    region: Option<String>,
    #[serde(default)]
    industry: Option<String>,
    #[serde(default, deserialize_with = "crate::check::whole::option")]
    ttl_hours: Option<u32>,
}

pub async fn create_token(
    State(node): Api,
    Extension(me): Caller,
    Body(ask): Body<NodeTokenAsk>,
) -> Result<Response, Problem> {
    let mut errors = Vec::new();
    let role = match Role::parse(&ask.role) {
        Some(r @ (Role::Regional | Role::Industry)) => Some(r),
        _ => {
            errors.push(FieldProblem::text("role", Text::new("check.nodes.role")));
            None
        }
    };
    let segment = match (role, ask.region, ask.industry) {
        (Some(Role::Regional), Some(region), None) => Some(region),
        (Some(Role::Industry), None, Some(industry)) => Some(industry),
        (Some(Role::Regional), ..) => {
            errors.push(FieldProblem::text(
                "region",
                Text::new("check.nodes.token_region"),
            ));
            None
        }
        (Some(_), ..) => {
            errors.push(FieldProblem::text(
                "industry",
                Text::new("check.nodes.token_industry"),
            ));
            None
        }
        (None, ..) => None,
    };
    let ttl_hours = ask.ttl_hours.unwrap_or(24);
    if !(1..=720).contains(&ttl_hours) {
        errors.push(FieldProblem::text("ttl_hours", between(1, 720)));
    }
    let (Some(role), Some(segment)) = (role, segment) else {
        return Err(Invalid(errors).into());
    };
    if !errors.is_empty() {
        return Err(Invalid(errors).into());
    }
    let issued = nodes::issue_token(
        &node.store,
        &Actor::of(&me),
        role,
        &segment,
        Duration::from_secs(u64::from(ttl_hours) * 3600),
        &node.settings.advertise,
        &node.identity.ca_fingerprint(),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "id": issued.id,
            "role": issued.role.as_str(),
            "segment": issued.segment,
            "expires_at_ms": issued.expires_at_ms,
            "join": issued.join.to_string(),
        })),
    )
        .into_response())
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reason {
    #[serde(default)]
    reason: String,
}

pub async fn approve(
    State(node): Api,
    Extension(me): Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, Problem> {
    let id = parse_id(&id, "a child node")?;
    let child = nodes::approve(&node.store, &node.identity, &Actor::of(&me), id).await?;
    Ok(Json(child_json(&child, 0, now_ms())))
}

pub async fn reject(
    State(node): Api,
    Extension(me): Caller,
    Path(id): Path<String>,
    Body(body): Body<Reason>,
) -> Result<Json<Value>, Problem> {
    let id = parse_id(&id, "a child node")?;
    let child = nodes::reject(&node.store, &Actor::of(&me), id, &body.reason).await?;
    Ok(Json(child_json(&child, 0, now_ms())))
}

pub async fn revoke(
    State(node): Api,
    Extension(me): Caller,
    Path(id): Path<String>,
    Body(body): Body<Reason>,
) -> Result<Json<Value>, Problem> {
    let id = parse_id(&id, "a child node")?;
    let child = nodes::revoke(&node.store, &Actor::of(&me), &id.to_string(), &body.reason).await?;
    node.publish(NodeEvent::ChildRevoked { child_id: child.id });
    Ok(Json(child_json(&child, 0, now_ms())))
}

/// How long `?live=1` waits for the holding node, however deep.
const LIVE_DEADLINE: Duration = Duration::from_secs(2);

fn live_json(s: &LiveState) -> Value {
    json!({
        "host_state": s.host_state,
        "health": s.health,
        "free_now": s.free_now,
        "last_seen_ms": s.last_seen_unix_ms,
        "utilization_percent": s.utilization_percent,
        "memory_used_bytes": s.memory_used_bytes,
        "memory_total_bytes": s.memory_total_bytes,
        "answered_by": s.answered_by,
    })
}

/// One identifier as the library holds it.
pub fn entry_json(e: &LibraryEntry, own_prefix: &str) -> Value {
    let f = &e.filing;
    let holder = e
        .child_prefix
        .clone()
        .unwrap_or_else(|| own_prefix.to_owned());
    let current = f.state == "active" && e.child_state.as_deref().is_none_or(|s| s == "approved");
    json!({
        "identifier": f.identifier,
        "type": f.resource_type,
        "type_name": f.resource_type.chars().next().and_then(ResourceType::from_code).map(ResourceType::name_en),
        "revision": f.revision,
        "state": f.state,
        "current": current,
        "superseded_by": (!f.superseded_by.is_empty()).then_some(&f.superseded_by),
        "owner": {"code": f.owner_code, "name": f.provider_name, "uscc": f.provider_uscc},
        "industry": f.industry,
        "region": f.region,
        "spec": f.spec,
        "model": f.model,
        "memory_bytes": f.memory_bytes,
        "logical_cpus": f.logical_cpus,
        "changed_at_ms": f.changed_at_unix_ms,
        "filed_at_ms": e.filed_at_ms,
        "holding_node": holder,
        "holding_child": e.child_id,
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentifierQuery {
    #[serde(rename = "type")]
    resource_type: Option<String>,
    model: Option<String>,
    region: Option<String>,
    provider: Option<String>,
    node: Option<String>,
    cursor: Option<String>,
    limit: Option<String>,
}

/// Searches the identifier library of this node's subtree.
pub async fn identifiers(
    State(node): Api,
    Params(q): Params<IdentifierQuery>,
) -> Result<Json<Value>, Problem> {
    let mut errors = Vec::new();
    let mut fail = |field: &str, text: Text| errors.push(FieldProblem::text(field, text));
    let resource_type = q.resource_type.as_deref().and_then(|t| {
        let found = ResourceType::parse(t).ok();
        if found.is_none() {
            fail("type", Text::new("check.status.type"));
        }
        found.map(|t| t.code().to_string())
    });
    let limit = match q.limit.as_deref() {
        None => 100,
        Some(l) => match l.parse::<i64>() {
            Ok(n) if (1..=1000).contains(&n) => n,
            _ => {
                fail("limit", between(1, 1000));
                100
            }
        },
    };
    if let Some(region) = &q.region
        && !(region.len() <= 6 && region.bytes().all(|b| b.is_ascii_digit()))
    {
        fail("region", Text::new("check.nodes.region_prefix"));
    }
    if !errors.is_empty() {
        return Err(Invalid(errors).into());
    }
    let page = node
        .store
        .search_library(&LibraryQuery {
            resource_type,
            model: q.model.filter(|m| !m.is_empty()),
            region: q.region.filter(|r| !r.is_empty()),
            provider: q
                .provider
                .map(|p| p.trim().to_ascii_uppercase())
                .filter(|p| !p.is_empty()),
            node: q
                .node
                .map(|n| n.trim().to_ascii_uppercase())
                .filter(|n| !n.is_empty()),
            after: q.cursor.filter(|c| !c.is_empty()),
            limit,
        })
        .await?;
    let own = node.prefix().to_string();
    let next = (page.len() as i64 == limit)
        .then(|| page.last().map(|e| e.filing.identifier.clone()))
        .flatten();
    Ok(Json(json!({
        "identifiers": page.iter().map(|e| entry_json(e, &own)).collect::<Vec<_>>(),
        "next_cursor": next,
    })))
}

/// An identifier not among this node's own resources: the library's entry,
/// or a 404 that says who holds its prefix.
pub async fn resolve_filed(
    node: &Node,
    id: &Identifier,
    live: bool,
) -> Result<Json<Value>, Problem> {
    let canonical = id.to_string();
    let own = node.prefix();
    if let Some(entry) = node.store.library_entry(&canonical).await? {
        let mut body = entry_json(&entry, &own.to_string());
        body["source"] = json!("library");
        if live && entry.child_id.is_some() {
            let (state, answer) = match nodes::live(node, &canonical, LIVE_DEADLINE).await {
                Ok(s) => ("fresh", Some(live_json(&s))),
                Err(AskError::Unreachable) => ("unreachable", None),
                Err(AskError::Stale(reason)) => {
                    body["live_reason"] = json!(reason);
                    ("stale", None)
                }
            };
            body["live_state"] = json!(state);
            body["live"] = json!(answer);
        }
        return Ok(Json(body));
    }
    let children: Vec<(NodePrefix, String)> = node
        .store
        .children(Some("approved"))
        .await?
        .into_iter()
        .filter_map(|c| Some((NodePrefix::parse(c.prefix.as_deref()?).ok()?, c.advertise)))
        .collect();
    let prefixes: Vec<NodePrefix> = children.iter().map(|(p, _)| p.clone()).collect();
    Err(match hierarchy::refer(&own, &prefixes, id) {
        Referral::Here => Problem::text(
            StatusCode::NOT_FOUND,
            Text::new("error.nodes.no_resource")
                .arg("identifier", &canonical)
                .arg("own", &own),
        ),
        Referral::Child(prefix) => {
            let address = children
                .iter()
                .find(|(p, _)| p.to_string() == prefix)
                .map(|(_, a)| a.clone());
            Problem::text(
                StatusCode::NOT_FOUND,
                Text::new("error.nodes.not_filed")
                    .arg("identifier", &canonical)
                    .arg("prefix", &prefix),
            )
            .with_referral(json!({"prefix": prefix, "node": address}))
        }
        Referral::Outside { owner_prefix } => {
            let parent = node
                .store
                .parent_link()
                .await?
                .filter(|p| p.state == "approved");
            Problem::text(
                StatusCode::NOT_FOUND,
                Text::new("error.nodes.outside")
                    .arg("identifier", &canonical)
                    .arg("own", &own)
                    .arg("owner", &owner_prefix)
                    .arg_text(
                        "parent",
                        if parent.is_some() {
                            Text::new("error.nodes.parent_knows")
                        } else {
                            Text::empty()
                        },
                    ),
            )
            .with_referral(json!({
                "prefix": owner_prefix,
                "parent": parent.map(|p| p.address),
            }))
        }
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportQuery {
    stream: Option<String>,
    period: Option<String>,
    at: Option<String>,
}

/// A period's market-monitoring figures over this node's subtree (市场监测):
/// the latest complete period, or the one `at` falls in.
pub async fn reports(
    State(node): Api,
    Params(q): Params<ReportQuery>,
) -> Result<Json<crate::service::market::SubtreeReport>, Problem> {
    use crate::service::market;
    let stream = q
        .stream
        .as_deref()
        .unwrap_or(crate::market::RESOURCE_STREAM);
    let mut errors = Vec::new();
    let asked = match q.period.as_deref() {
        None => None,
        Some(text) => match crate::market::PERIOD_NAMES
            .iter()
            .find(|(name, _)| *name == text)
        {
            Some((_, ms)) => Some(*ms),
            None => {
                errors.push(FieldProblem::text(
                    "period",
                    Text::new("check.market.period"),
                ));
                None
            }
        },
    };
    let period = match market::period(stream, asked) {
        Ok(p) => Some(p),
        Err(ServiceError::Invalid(Invalid(problems))) => {
            errors.extend(problems);
            None
        }
        Err(e) => return Err(e.into()),
    };
    let at = match q.at.as_deref() {
        None => None,
        Some(text) => {
            let at = super::status::parse_time(text);
            if at.is_none() {
                errors.push(FieldProblem::text("at", Text::new("check.nodes.at")));
            }
            at
        }
    };
    let Some(period) = period.filter(|_| errors.is_empty()) else {
        return Err(Invalid(errors).into());
    };
    let now = now_ms();
    let start = match at {
        Some(at) => at,
        None => market::latest_complete(&node, stream, period, now).await?,
    };
    Ok(Json(
        market::subtree(&node, stream, period, start, now).await?,
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrendQuery {
    hours: Option<String>,
    days: Option<String>,
}

/// `text` as a whole number in `1..=max`, or the problem with `field`.
fn within(field: &str, text: Option<&str>, max: u64) -> Result<Option<u64>, FieldProblem> {
    match text.map(str::parse::<u64>) {
        None => Ok(None),
        Some(Ok(n)) if (1..=max).contains(&n) => Ok(Some(n)),
        Some(_) => Err(FieldProblem::text(field, between(1, max))),
    }
}

/// "between {min} and {max}"
fn between(min: u64, max: u64) -> Text {
    Text::new("check.check.between")
        .arg("min", min)
        .arg("max", max)
}

/// The subtree's capacity and accelerator utilization over the last hours
/// (from the 10 s reports) or days (from the rollups).
pub async fn trend(
    State(node): Api,
    Params(q): Params<TrendQuery>,
) -> Result<Json<Value>, Problem> {
    use crate::service::market::{self, MAX_TREND_DAYS, MAX_TREND_HOURS, Span};
    let hours = within("hours", q.hours.as_deref(), MAX_TREND_HOURS);
    let days = within("days", q.days.as_deref(), MAX_TREND_DAYS);
    let span = match (hours, days) {
        (Ok(Some(_)), Ok(Some(_))) => Err(vec![FieldProblem::text(
            "days",
            Text::new("check.nodes.hours_or_days"),
        )]),
        (Ok(h), Ok(None)) => Ok(Span::Hours(h.unwrap_or(24))),
        (Ok(None), Ok(Some(d))) => Ok(Span::Days(d)),
        (h, d) => Err(h.err().into_iter().chain(d.err()).collect()),
    };
    let span = span.map_err(Invalid)?;
    let points = market::trend(&node, span, now_ms()).await?;
    let (hours, days) = match span {
        Span::Hours(h) => (Some(h), None),
        Span::Days(d) => (None, Some(d)),
    };
    Ok(Json(json!({
        "hours": hours, "days": days, "step_ms": span.step_ms(), "points": points,
    })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FiguresQuery {
    stream: Option<String>,
    days: Option<String>,
}

/// An hourly stream's figures over the subtree, a point an hour (a day
/// beyond 35 days).
pub async fn figures(
    State(node): Api,
    Params(q): Params<FiguresQuery>,
) -> Result<Json<Value>, Problem> {
    let days = within(
        "days",
        q.days.as_deref(),
        crate::service::market::MAX_TREND_DAYS,
    )
    .map_err(|e| Invalid(vec![e]))?
    .unwrap_or(1);
    let stream = q
        .stream
        .as_deref()
        .unwrap_or(crate::market::SCHEDULING_STREAM);
    let (period, points) = crate::service::market::figures(&node, stream, days, now_ms()).await?;
    Ok(Json(json!({
        "stream": stream, "days": days, "period_ms": period, "points": points,
    })))
}
