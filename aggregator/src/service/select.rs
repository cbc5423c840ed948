//! Selection (算力选择) as an operation: a demand read and checked, the
//! pure `selection::select` run over the live fleet off the async threads,
//! the same demand asked of the child nodes that may meet it (selection
//! across nodes, 互联调度) within its deadline, the answers merged, and the
//! query recorded as scheduling business off the answer's path.
//!
//! The HTTP API and a parent's question over the node link both come here,
//! so a demand is answered the same way at every level of the tree.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use serde_json::{Value, json};
use suanli_protocol::identifier::NodePrefix;
use tokio::task::JoinSet;

use super::{ServiceError, Source};
use crate::{
    check::{FieldProblem, Invalid},
    i18n::Text,
    links::AskError,
    node::Node,
    selection::{
        self, Answer, Demand, Expression, NodeOutcome, Outcome, Scope,
        demand::MIN_DEADLINE_MS,
        federation::{self, check_answer, reported_shortfall, scope_at},
    },
    store::{SelectionRecord, now_ms},
};

/// A child's resource reports say what it has free only while they are
/// this recent (a few of its 10 s periods, relayed).
const REPORTS_FRESH_MS: u64 = 60_000;

/// Who asked for a selection.
#[derive(Debug, Clone, Copy)]
pub enum Asker<'a> {
    /// A signed-in user, by login.
    User(&'a str),
    /// This node's parent, over the node link, which waits `within` for
    /// the answer.
    Parent { within: Duration },
}

/// A selection's answer and how long it took.
#[derive(Debug)]
pub struct Selected {
    pub answer: Answer,
    pub elapsed_us: i64,
}

/// Answers the demand `body` (JSON, as `docs/selection.md` describes it)
/// over this node's subtree, as far as its scope reaches. `asker` is who
/// asked: a user's demand is recorded as scheduling business; the parent's
/// question is not, as the node where the user asked records it (the
/// subtree's figures count each demand once).
pub async fn select(
    node: &Arc<Node>,
    asker: Asker<'_>,
    body: Value,
) -> Result<Selected, ServiceError> {
    let started = Instant::now();
    let own = node.prefix();
    let (mut demand, expression) = read(&body, &own)?;
    // The deadline counts from here, whatever the steps before an ask take;
    // a parent's question gets what the parent left it.
    let mut deadline = Duration::from_millis(demand.deadline_ms);
    if let Asker::Parent { within } = asker {
        deadline = deadline.min(within);
    }
    let until = tokio::time::Instant::now() + deadline;
    let (children, mut outcomes) =
        tokio::time::timeout_at(until, children_in_scope(node, &demand, &own))
            .await
            .map_err(|_| {
                ServiceError::unavailable(
                    Source::Database,
                    "no list of child nodes within the deadline",
                )
            })??;
    let federated = !children.is_empty() || !outcomes.is_empty();
    // Scores across nodes compare paths from one place: the user's, or
    // this node's region when the demand does not say.
    if federated && demand.user_region.is_none() {
        demand.user_region = Some(node.settings.local_region.to_string());
    }
    let mut asking = JoinSet::new();
    for (id, child, scope) in children {
        if let Some(reason) = shortfall(node, id, &demand) {
            node.counters.selection_children_skipped.inc();
            outcomes.push(NodeOutcome::new(&child, Outcome::Skipped, reason));
            continue;
        }
        let remaining = until.saturating_duration_since(tokio::time::Instant::now());
        let question = forwarded(&body, &demand, &child, &scope, remaining).to_string();
        let worker = node.clone();
        asking.spawn(async move {
            let asked = Instant::now();
            let answer = worker.links.ask_selection(id, question, remaining).await;
            (child, remaining, asked.elapsed(), answer)
        });
    }
    let local = federation::answers_locally(&demand, &own).then(|| {
        let worker = node.clone();
        let demand = demand.clone();
        tokio::task::spawn_blocking(move || {
            let network = worker.routing.network();
            let fleet = worker.catalog.read();
            selection::select(&fleet, &network, &demand, expression.as_ref(), now_ms())
        })
    });
    let mut parts = Vec::new();
    while let Some(done) = asking.join_next().await {
        let (child, waited, elapsed, answer) =
            done.map_err(|e| ServiceError::unavailable(Source::Task, e))?;
        let (outcome, part) = judge(node, &child, &demand, (waited, elapsed), answer);
        outcomes.push(outcome);
        parts.extend(part);
    }
    if let Some(local) = local {
        let mut answer = local
            .await
            .map_err(|e| ServiceError::unavailable(Source::Task, e))?;
        federation::held_at(&mut answer, &own);
        parts.insert(0, answer);
    }
    outcomes.sort_by(|a, b| a.node.cmp(&b.node));
    let answer = if federated {
        federation::merge(parts, outcomes, &node.routing.network(), &demand)
    } else {
        parts.pop().unwrap_or_else(|| {
            federation::merge(Vec::new(), outcomes, &node.routing.network(), &demand)
        })
    };
    let elapsed_us = started.elapsed().as_micros() as i64;
    let Asker::User(actor) = asker else {
        return Ok(Selected { answer, elapsed_us });
    };
    node.record_selection(SelectionRecord {
        id: 0,
        at_ms: now_ms() as i64,
        actor: actor.to_owned(),
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
        no_match: selection::no_match_reason(&answer).map(str::to_owned),
        lines_used: selection::lines_used(&answer) as i64,
    });
    Ok(Selected { answer, elapsed_us })
}

/// The demand and its compiled expression, or every bad field at once.
fn read(body: &Value, own: &NodePrefix) -> Result<(Demand, Option<Expression>), ServiceError> {
    let mut errors = Vec::new();
    let demand = match selection::demand::parse(body) {
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
                errors.push(FieldProblem::text(
                    "expression",
                    Text::new("check.select.expression").arg("error", message),
                ));
                None
            }
        });
    if let Some(d) = &demand
        && let Err(Invalid(e)) = federation::check_scope(d, own)
    {
        errors.extend(e);
    }
    match demand {
        Some(d) if errors.is_empty() => Ok((d, expression)),
        _ => Err(Invalid(errors).into()),
    }
}

/// A child to ask: its id, prefix and the demand's scope there.
type Reached = (i64, NodePrefix, Scope);

/// The approved children the demand's scope reaches, each with the scope
/// it has there, and the outcomes of those it leaves out. A scope naming
/// a node no child leads to is a bad field.
async fn children_in_scope(
    node: &Node,
    demand: &Demand,
    own: &NodePrefix,
) -> Result<(Vec<Reached>, Vec<NodeOutcome>), ServiceError> {
    if demand.scope == Scope::Local {
        return Ok((Vec::new(), Vec::new()));
    }
    let mut reached = Vec::new();
    let mut excluded = Vec::new();
    for child in node.store.children(Some("approved")).await? {
        let Some(prefix) = child
            .prefix
            .as_deref()
            .and_then(|p| NodePrefix::parse(p).ok())
        else {
            continue;
        };
        match scope_at(demand, &prefix) {
            Ok(scope) => reached.push((child.id, prefix, scope)),
            Err(reason) => excluded.push(NodeOutcome::new(&prefix, Outcome::Excluded, reason)),
        }
    }
    if let Scope::Node(scope) = &demand.scope
        && scope != own
        && reached.is_empty()
    {
        return Err(Invalid(vec![FieldProblem::text(
            "scope",
            Text::new("check.select.scope_unreached")
                .arg("own", own)
                .arg("scope", scope),
        )])
        .into());
    }
    Ok((reached, excluded))
}

/// Why the child's fresh resource reports say it cannot meet the demand;
/// `None` when they say it may, or are not all fresh enough to say.
fn shortfall(node: &Node, child_id: i64, demand: &Demand) -> Option<Text> {
    let since = now_ms().saturating_sub(REPORTS_FRESH_MS);
    match node.links.reported_since(child_id, since) {
        Some((groups, 0)) => reported_shortfall(&groups, demand),
        _ => None,
    }
}

/// What a node asked to answer within `deadline` leaves itself for asking
/// its own children: a tenth less (at least 20 ms), for the answer to
/// travel up in time.
pub fn inside(deadline: Duration) -> Duration {
    deadline.saturating_sub((deadline / 10).max(Duration::from_millis(20)))
}

/// The demand as a child gets it: the user's region filled in, its scope
/// and the exclusions below it. Its `deadline_ms` says what the child
/// leaves itself (within the demand's bounds); the question's own
/// deadline, which the child answers by, is the one that holds.
fn forwarded(
    body: &Value,
    demand: &Demand,
    child: &NodePrefix,
    scope: &Scope,
    deadline: Duration,
) -> Value {
    let mut body = body.clone();
    let inner = inside(deadline)
        .as_millis()
        .max(u128::from(MIN_DEADLINE_MS));
    body["user_region"] = json!(demand.user_region);
    body["deadline_ms"] = json!(inner as u64);
    body["scope"] = match scope {
        Scope::Node(node) => json!(node.to_string()),
        Scope::Subtree | Scope::Local => json!("subtree"),
    };
    body["exclude_nodes"] = json!(
        demand
            .exclude_nodes
            .iter()
            .filter(|e| child.contains(e) && *e != child)
            .map(ToString::to_string)
            .collect::<Vec<_>>()
    );
    body
}

/// A child's answer taken, or what became of it; `waited` is how long it
/// was given.
fn judge(
    node: &Node,
    child: &NodePrefix,
    demand: &Demand,
    (waited, elapsed): (Duration, Duration),
    answer: Result<String, AskError>,
) -> (NodeOutcome, Option<Answer>) {
    let mut outcome = NodeOutcome {
        node: child.to_string(),
        outcome: Outcome::Answered,
        reason: None,
        text: None,
        elapsed_ms: Some(elapsed.as_millis() as u64),
        candidates: None,
    };
    let refused = |outcome: &mut NodeOutcome, reason: String| {
        node.counters.selection_answers_refused.inc();
        tracing::warn!(child = %child, "selection answer refused: {reason}");
        outcome.outcome = Outcome::Refused;
        outcome.because(Text::new("outcome.reason.refused").arg("reason", reason));
    };
    match answer {
        Ok(json) => match serde_json::from_str::<Answer>(&json) {
            Ok(answer) => match check_answer(&answer, child, demand) {
                Ok(()) => {
                    outcome.candidates = Some(answer.candidates.len() as u64);
                    return (outcome, Some(answer));
                }
                Err(reason) => refused(&mut outcome, reason),
            },
            Err(e) => refused(&mut outcome, format!("malformed answer: {e}")),
        },
        Err(AskError::Unreachable) => {
            outcome.outcome = Outcome::Unreachable;
            outcome.because(Text::new("outcome.reason.unreachable"));
            outcome.elapsed_ms = None;
        }
        Err(AskError::Stale(reason)) => {
            outcome.outcome = if elapsed >= waited {
                Outcome::Late
            } else {
                Outcome::Failed
            };
            outcome.because(Text::new("outcome.reason.stale").arg("reason", reason));
        }
    }
    (outcome, None)
}
