//! Monitoring over HTTP: alerts and their acknowledgement, silences,
//! receivers with their delivery ledger, the rules, and marking an
//! accelerator healthy. The operations are in [`crate::service::alerts`].

use std::sync::Arc;

use axum::{
    Extension, Json,
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Body, Params, Problem, Reader, parse_id};
use crate::{
    alerting::{self, RULES, ReceiverSpec},
    auth::Principal,
    health::XIDS,
    i18n::word,
    node::Node,
    service::alerts::{self as ops, AlertQuery, SilenceRequest},
    store::ReceiverRow,
};

type Api = State<Arc<Node>>;
type Caller = Extension<Principal>;

pub async fn alerts(
    State(node): Api,
    Extension(me): Caller,
    Reader(lang): Reader,
    Params(q): Params<AlertQuery>,
) -> Result<Json<Value>, Problem> {
    let mut alerts = ops::alerts(&node, &me, &q).await?;
    for a in &mut alerts {
        a.summary = a.summary_in(lang);
    }
    let next = alerts
        .last()
        .map(|a| a.id)
        .filter(|_| alerts.len() as i64 == q.limit.unwrap_or(100));
    Ok(Json(json!({"alerts": alerts, "next_before": next})))
}

pub async fn ack(
    State(node): Api,
    Extension(me): Caller,
    Reader(lang): Reader,
    Path(id): Path<String>,
) -> Result<Json<Value>, Problem> {
    let id = parse_id(&id, "an alert")?;
    let mut alert = ops::ack(&node, &me, id).await?;
    alert.summary = alert.summary_in(lang);
    Ok(Json(json!(alert)))
}

pub async fn silences(State(node): Api, Extension(me): Caller) -> Result<Json<Value>, Problem> {
    Ok(Json(json!({"silences": ops::silences(&node, &me).await?})))
}

pub async fn create_silence(
    State(node): Api,
    Extension(me): Caller,
    Body(r): Body<SilenceRequest>,
) -> Result<Response, Problem> {
    let silence = ops::create_silence(&node, &me, &r).await?;
    Ok((StatusCode::CREATED, Json(json!(silence))).into_response())
}

pub async fn expire_silence(
    State(node): Api,
    Extension(me): Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    let id = parse_id(&id, "a silence")?;
    ops::expire_silence(&node, &me, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn receiver_json(r: &ReceiverRow) -> Value {
    let mut v = json!(r);
    v["url"] = json!(alerting::redact_url(&r.url));
    v["signed"] = json!(r.secret.is_some());
    v["scope"] = json!(if r.provider_id.is_some() {
        "provider"
    } else {
        "node"
    });
    v
}

pub async fn receivers(State(node): Api, Extension(me): Caller) -> Result<Json<Value>, Problem> {
    let receivers = ops::receivers(&node, &me).await?;
    let counts = node.store.delivery_counts().await?;
    let list: Vec<Value> = receivers
        .iter()
        .map(|r| {
            let mut v = receiver_json(r);
            let mine = counts.iter().filter(|(id, _, _)| *id == r.id);
            v["deliveries"] = mine
                .map(|(_, state, n)| (state.clone(), json!(n)))
                .collect::<serde_json::Map<_, _>>()
                .into();
            v
        })
        .collect();
    Ok(Json(json!({"receivers": list})))
}

/// A receiver to add; `provider` (an administrator's) names whose hosts it serves.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewReceiver {
    #[serde(flatten)]
    spec: ReceiverSpec,
    #[serde(default)]
    provider: Option<String>,
}

pub async fn create_receiver(
    State(node): Api,
    Extension(me): Caller,
    Body(r): Body<NewReceiver>,
) -> Result<Response, Problem> {
    let row = ops::create_receiver(&node, &me, &r.spec, r.provider.as_deref()).await?;
    Ok((StatusCode::CREATED, Json(receiver_json(&row))).into_response())
}

pub async fn delete_receiver(
    State(node): Api,
    Extension(me): Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    let id = parse_id(&id, "a receiver")?;
    ops::delete_receiver(&node, &me, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Sends a test notification now; its attempt appears among the
/// receiver's attempts.
pub async fn test_receiver(
    State(node): Api,
    Extension(me): Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    let id = parse_id(&id, "a receiver")?;
    ops::test_receiver(&node, &me, id).await?;
    Ok(StatusCode::ACCEPTED)
}

pub async fn attempts(
    State(node): Api,
    Extension(me): Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, Problem> {
    let id = parse_id(&id, "a receiver")?;
    let receiver = ops::receiver(&node, &me, id).await?;
    let attempts = node.store.attempts(receiver.id, 200).await?;
    Ok(Json(
        json!({"receiver": receiver_json(&receiver), "attempts": attempts}),
    ))
}

pub async fn rules(State(node): Api, Reader(lang): Reader) -> Json<Value> {
    let rules: Vec<Value> = RULES
        .iter()
        .map(|rule| {
            let mut v = json!(rule);
            v["description"] = json!(word(&format!("rule.{}", rule.name), lang));
            v
        })
        .collect();
    let xids: Vec<Value> = XIDS
        .entries()
        .map(|(code, class)| {
            json!({
                "xid": code,
                "class": class.as_str(),
                "severity": class.severity(),
                "name": XIDS.name(code).render(lang),
                "action": XIDS.action(code).render(lang),
            })
        })
        .collect();
    let inhibit_rules: Vec<Value> = node
        .settings
        .alerts
        .inhibit_rules
        .iter()
        .map(|r| {
            let mut v = json!(r.spec);
            v["built_in"] = json!(r.built_in);
            v
        })
        .collect();
    Json(json!({
        "rules": rules,
        "inhibit_rules": inhibit_rules,
        "xid_catalog": {"version": XIDS.version, "codes": xids},
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reason {
    reason: String,
}

pub async fn mark_healthy(
    State(node): Api,
    Extension(me): Caller,
    Path(identifier): Path<String>,
    Body(r): Body<Reason>,
) -> Result<StatusCode, Problem> {
    ops::mark_healthy(&node, &me, &identifier, &r.reason).await?;
    Ok(StatusCode::NO_CONTENT)
}
