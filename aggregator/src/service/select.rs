//! Selection (算力选择) as an operation: a demand read and checked, the
//! pure `selection::select` run over the live fleet off the async threads,
//! and the query recorded as scheduling business off the answer's path.

use std::{sync::Arc, time::Instant};

use serde_json::Value;

use super::{ServiceError, Source};
use crate::{
    auth::Principal,
    check::{FieldProblem, Invalid},
    node::Node,
    selection::{self, Answer, Expression},
    store::{SelectionRecord, now_ms},
};

/// A selection's answer and how long it took.
#[derive(Debug)]
pub struct Selected {
    pub answer: Answer,
    pub elapsed_us: i64,
}

/// Answers the demand `body` (JSON, as `docs/selection.md` describes it).
pub async fn select(
    node: &Arc<Node>,
    who: &Principal,
    body: Value,
) -> Result<Selected, ServiceError> {
    let started = Instant::now();
    let mut errors = Vec::new();
    let demand = match selection::demand::parse(&body) {
        Ok(d) => Some(d),
        Err(Invalid(e)) => {
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
                errors.push(FieldProblem::new(
                    "expression",
                    format!("not a CEL expression: {message}"),
                ));
                None
            }
        });
    let demand = match demand {
        Some(d) if errors.is_empty() => d,
        _ => return Err(Invalid(errors).into()),
    };
    // A full scan is CPU work: it runs off the async threads, reading the
    // catalog under its read lock.
    let worker = node.clone();
    let answer = tokio::task::spawn_blocking(move || {
        let network = worker.routing.network();
        let fleet = worker.catalog.read();
        selection::select(&fleet, &network, &demand, expression.as_ref(), now_ms())
    })
    .await
    .map_err(|e| ServiceError::unavailable(Source::Task, e))?;
    let elapsed_us = started.elapsed().as_micros() as i64;
    node.record_selection(SelectionRecord {
        id: 0,
        at_ms: now_ms() as i64,
        actor: who.actor.clone(),
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
    });
    Ok(Selected { answer, elapsed_us })
}
