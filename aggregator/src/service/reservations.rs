//! Holds (预留): a candidate from a selection answer held for its user for
//! a bounded time, so that it is not handed to another demand meanwhile.
//!
//! Only the node holding the host decides: a hold asked at an ancestor goes
//! down the node links, link by link, to that node, and its answer comes
//! back up. The holding node expires a hold by its own clock, so a hold
//! never outlives its time, whatever happens to the links above it.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use suanli_protocol::identifier::{Identifier, NodePrefix};

use super::{Actor, ServiceError, audit};
use crate::{
    auth::{Principal, Role},
    check::{Check, Invalid},
    i18n::Text,
    links::AskError,
    node::Node,
    store::{Held, NewHold, Reservation, now_ms},
};

/// How long a hold lasts unless asked otherwise, and the bounds.
pub const DEFAULT_HOLD_SECONDS: u64 = 900;
pub const MIN_HOLD_SECONDS: u64 = 5;
pub const MAX_HOLD_SECONDS: u64 = 3600;
/// Resources one hold may name: a host's accelerators.
pub const MAX_HELD: usize = 32;
pub const MAX_REQUEST_ID_CHARS: usize = 64;
/// How long a user's hold or release may take, down the links included; an
/// answer that did not come is a 503, and the same request again (the same
/// `request_id`) answers what was done.
pub const DEADLINE: Duration = Duration::from_secs(5);

/// A hold as asked: the `node` and `resources` of a selection candidate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HoldRequest {
    /// The prefix of the node holding the host (the candidate's `node`).
    pub node: String,
    /// Identifiers of the accelerators to hold, all on one host.
    pub resources: Vec<String>,
    pub seconds: Option<u64>,
    /// The client's id for this request: sent again, it returns the same hold.
    pub request_id: String,
}

/// Who holds: qualified by the node the user asked at, so that a hold made
/// at an ancestor names its user the same way at every level.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Holder {
    pub name: String,
    /// Node staff who change things (administrators, operators): they may
    /// end anyone's hold. Viewers change nothing.
    pub staff: bool,
}

impl Holder {
    pub fn of(node: &Node, who: &Principal) -> Self {
        Holder {
            name: format!("{}/{}", node.prefix(), who.actor),
            staff: matches!(who.role, Role::Admin | Role::Operator),
        }
    }
}

/// A hold as every node shows it: its id is the holding node's prefix and
/// its number there.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hold {
    pub id: String,
    pub node: String,
    pub host_id: i64,
    pub resources: Vec<String>,
    pub holder: String,
    pub created_at_ms: u64,
    pub expires_at_ms: u64,
    /// held, released or expired.
    pub state: String,
    pub ended_at_ms: Option<u64>,
    pub ended_by: Option<String>,
    /// This request was made before: the hold it made.
    pub replayed: bool,
}

impl Hold {
    fn of(node: &NodePrefix, r: Reservation, replayed: bool, now_ms: u64) -> Self {
        let state = match (&r.ended_by, r.expires_at_ms > now_ms) {
            (Some(by), _) if by == "expired" => "expired",
            (Some(_), _) => "released",
            (None, true) => "held",
            (None, false) => "expired",
        };
        Hold {
            id: format!("{node}:{}", r.id),
            node: node.to_string(),
            host_id: r.host_id,
            resources: r.resources,
            holder: r.holder,
            created_at_ms: r.created_at_ms,
            expires_at_ms: r.expires_at_ms,
            state: state.into(),
            ended_at_ms: r.ended_at_ms,
            ended_by: r.ended_by,
            replayed,
        }
    }
}

/// What travels down a node link.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum LinkRequest {
    Hold {
        holder: Holder,
        request: HoldRequest,
    },
    Release {
        holder: Holder,
        id: String,
    },
}

/// What comes back up: the hold, or why not (as the holding node said it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkAnswer {
    Hold(Hold),
    Refused { kind: String, reason: String },
}

impl From<Result<Hold, ServiceError>> for LinkAnswer {
    fn from(result: Result<Hold, ServiceError>) -> Self {
        match result {
            Ok(hold) => LinkAnswer::Hold(hold),
            Err(e) => {
                let kind = match &e {
                    ServiceError::NotFound(_) => "not_found",
                    ServiceError::Forbidden(_) => "forbidden",
                    ServiceError::Conflict(_) => "conflict",
                    ServiceError::Invalid(_) => "invalid",
                    ServiceError::Throttled(_) | ServiceError::Unavailable { .. } => "unavailable",
                };
                let reason = match e {
                    ServiceError::Invalid(Invalid(problems)) => problems
                        .iter()
                        .map(|p| format!("{}: {}", p.field, p.message))
                        .collect::<Vec<_>>()
                        .join("; "),
                    e => e.to_string(),
                };
                LinkAnswer::Refused {
                    kind: kind.into(),
                    reason,
                }
            }
        }
    }
}

impl LinkAnswer {
    fn into_result(self) -> Result<Hold, ServiceError> {
        match self {
            LinkAnswer::Hold(hold) => Ok(hold),
            LinkAnswer::Refused { kind, reason } => Err(match kind.as_str() {
                "not_found" => ServiceError::NotFound(Text::plain(reason)),
                "forbidden" => ServiceError::Forbidden(Text::plain(reason)),
                "conflict" => ServiceError::Conflict(Text::plain(reason)),
                "invalid" => Invalid::one_text("resources", Text::plain(reason)).into(),
                _ => ServiceError::unavailable(super::Source::Task, reason),
            }),
        }
    }
}

/// Holds what `request` names for `holder`, here or at the node below
/// that holds it, within `within`.
pub async fn hold(
    node: &Node,
    actor: &Actor,
    holder: &Holder,
    mut request: HoldRequest,
    within: Duration,
) -> Result<Hold, ServiceError> {
    let target = check(&mut request)?;
    let own = node.prefix();
    if target != own {
        let request = LinkRequest::Hold {
            holder: holder.clone(),
            request,
        };
        return ask_below(node, &own, &target, &request, within).await;
    }
    let now = now_ms();
    let request_key = format!("{}\u{1f}{}", holder.name, request.request_id);
    // A replay answers what it made, though its resources are held now.
    if let Some(earlier) = node.store.reservation_for(&request_key).await? {
        return Ok(Hold::of(&own, earlier, true, now));
    }
    let (host_id, provider_id) = holdable(node, &own, &request.resources, now)?;
    let seconds = request.seconds.unwrap_or(DEFAULT_HOLD_SECONDS);
    let held = node
        .store
        .hold(
            &NewHold {
                request_key: &request_key,
                host_id,
                resources: &request.resources,
                holder: &holder.name,
                provider_id: Some(provider_id),
                expires_at_ms: now + seconds * 1000,
            },
            now,
        )
        .await?;
    let (reservation, replayed) = match held {
        Held::New(r) => (r, false),
        Held::Replayed(r) => (r, true),
    };
    if !replayed {
        audit::record(
            &node.store,
            actor,
            "reservation.hold",
            &format!("{own}:{}", reservation.id),
            &format!(
                "{} for {} until {}",
                reservation.resources.join(", "),
                holder.name,
                crate::history::minute_text(reservation.expires_at_ms)
            ),
        )
        .await;
        settle(node).await;
    }
    Ok(Hold::of(&own, reservation, replayed, now))
}

/// Ends a hold before its time: its holder, or staff.
pub async fn release(
    node: &Node,
    actor: &Actor,
    holder: &Holder,
    id: &str,
    within: Duration,
) -> Result<Hold, ServiceError> {
    let (target, number) = parse_id(id)?;
    let own = node.prefix();
    if target != own {
        let request = LinkRequest::Release {
            holder: holder.clone(),
            id: id.to_owned(),
        };
        return ask_below(node, &own, &target, &request, within).await;
    }
    let found = node.store.reservation(number).await?;
    if !holder.staff && found.holder != holder.name {
        // Another's hold is as if it did not exist.
        return Err(ServiceError::NotFound(
            Text::new("error.reservations.none").arg("id", id),
        ));
    }
    let now = now_ms();
    let ended = node.store.release(number, &holder.name, now).await?;
    audit::record(
        &node.store,
        actor,
        "reservation.release",
        id,
        &found.resources.join(", "),
    )
    .await;
    settle(node).await;
    Ok(Hold::of(&own, ended, false, now))
}

/// The latest holds on this node's hosts that `who` may see: all for
/// staff, those on its hosts for a provider, its own for anyone.
pub async fn list(node: &Node, who: &Principal) -> Result<Vec<Hold>, ServiceError> {
    let own = node.prefix();
    let holder = Holder::of(node, who);
    let now = now_ms();
    Ok(node
        .store
        .reservations(500)
        .await?
        .into_iter()
        .filter(|r| {
            who.role.is_staff()
                || r.holder == holder.name
                || (r.provider_id.is_some() && r.provider_id == who.provider_id)
        })
        .map(|r| Hold::of(&own, r, false, now))
        .collect())
}

/// Ends the holds whose time has passed and makes the catalog's holds the
/// open ones (those other replicas made included).
pub async fn refresh(node: &Node) -> Result<(), ServiceError> {
    let now = now_ms();
    node.store.expire_holds(now).await?;
    let open = node.store.open_reservations(now).await?;
    node.catalog.set_holds(&node.prefix().to_string(), &open);
    Ok(())
}

/// Makes the catalog's holds the store's after a change. The change is
/// committed whatever happens here: a failure is logged, and the next tick
/// of the holds task catches up.
async fn settle(node: &Node) {
    if let Err(e) = refresh(node).await {
        tracing::warn!(error = %e, "holds changed; the catalog catches up at the next tick");
    }
}

/// Answers a parent's request over the link, within `within`.
pub async fn answer_link(node: &Node, parent: &str, request: &str, within: Duration) -> String {
    let actor = Actor::new(format!("node {parent}"), "link");
    let result = match serde_json::from_str::<LinkRequest>(request) {
        Ok(LinkRequest::Hold { holder, request }) => {
            hold(node, &actor, &holder, request, within).await
        }
        Ok(LinkRequest::Release { holder, id }) => {
            release(node, &actor, &holder, &id, within).await
        }
        Err(e) => Err(Invalid::one_text(
            "request",
            Text::new("check.reservations.not_a_request").arg("error", e),
        )
        .into()),
    };
    serde_json::to_string(&LinkAnswer::from(result)).unwrap_or_default()
}

/// The answer of a node answering too many questions to take another.
pub fn busy() -> String {
    let busy = ServiceError::unavailable(
        super::Source::Task,
        "this node is answering too many questions",
    );
    serde_json::to_string(&LinkAnswer::from(Err(busy))).unwrap_or_default()
}

/// The node prefix a hold request names, or every bad field; each
/// resource once.
fn check(request: &mut HoldRequest) -> Result<NodePrefix, ServiceError> {
    let mut c = Check::default();
    let listed = request.resources.len();
    request.resources.sort();
    request.resources.dedup();
    if request.resources.len() != listed {
        c.fail_text("resources", Text::new("check.reservations.each_once"));
    }
    let target = NodePrefix::parse(&request.node)
        .map_err(|e| c.fail_text("node", Text::plain(e)))
        .ok();
    if request.resources.is_empty() || request.resources.len() > MAX_HELD {
        c.fail_text(
            "resources",
            Text::new("check.reservations.count").arg("max", MAX_HELD),
        );
    }
    for id in &request.resources {
        match Identifier::parse(id) {
            Ok(parsed) if target.as_ref().is_none_or(|t| parsed.node_prefix() == t) => {}
            Ok(_) => c.fail_text(
                "resources",
                Text::new("check.reservations.other_node")
                    .arg("id", id)
                    .arg("node", &request.node),
            ),
            Err(e) => c.fail_text(
                "resources",
                Text::new("check.reservations.bad_identifier")
                    .arg("id", id)
                    .arg("error", e),
            ),
        }
    }
    if let Some(s) = request.seconds
        && !(MIN_HOLD_SECONDS..=MAX_HOLD_SECONDS).contains(&s)
    {
        c.fail_text(
            "seconds",
            Text::new("check.reservations.seconds")
                .arg("min", MIN_HOLD_SECONDS)
                .arg("max", MAX_HOLD_SECONDS),
        );
    }
    let chars = request.request_id.chars().count();
    if chars == 0 || chars > MAX_REQUEST_ID_CHARS || request.request_id.contains('\0') {
        c.fail_text(
            "request_id",
            Text::new("check.reservations.request_id").arg("max", MAX_REQUEST_ID_CHARS),
        );
    }
    c.done()?;
    target.ok_or_else(|| {
        Invalid::one_text("node", Text::new("check.reservations.node_prefix")).into()
    })
}

/// The host holding every resource named, and its provider, if each is one
/// of this node's accelerators and free now.
fn holdable(
    node: &Node,
    own: &NodePrefix,
    resources: &[String],
    now: u64,
) -> Result<(i64, i64), ServiceError> {
    let fleet = node.catalog.read();
    let mut host_id = None;
    for id in resources {
        let entry = fleet
            .by_identifier
            .get(id)
            .and_then(|rid| fleet.resources.get(rid))
            .ok_or_else(|| {
                ServiceError::NotFound(
                    Text::new("error.reservations.not_here")
                        .arg("id", id)
                        .arg("node", own),
                )
            })?;
        if entry.gpu_uuid.is_none() {
            return Err(Invalid::one_text(
                "resources",
                Text::new("check.reservations.accelerators_only").arg("id", id),
            )
            .into());
        }
        if host_id.is_some_and(|h| h != entry.host_id) {
            return Err(
                Invalid::one_text("resources", Text::new("check.reservations.one_host")).into(),
            );
        }
        host_id = Some(entry.host_id);
        let host = fleet.hosts.get(&entry.host_id).ok_or_else(|| {
            ServiceError::NotFound(
                Text::new("error.reservations.not_here")
                    .arg("id", id)
                    .arg("node", own),
            )
        })?;
        if let Some(until) = host
            .resources
            .iter()
            .position(|r| r.identifier == *id)
            .and_then(|slot| host.holds.get(&(slot as u32)))
            .filter(|h| h.until_ms > now)
        {
            return Err(ServiceError::Conflict(
                Text::new("error.reservations.held_until")
                    .arg("id", id)
                    .arg("until", crate::history::minute_text(until.until_ms)),
            ));
        }
        if host.revoked || host.free_now(entry, now) != Some(true) {
            return Err(ServiceError::Conflict(
                Text::new("error.reservations.not_free").arg("id", id),
            ));
        }
    }
    let host_id = host_id.ok_or_else(|| {
        Invalid::one_text("resources", Text::new("check.reservations.at_least_one"))
    })?;
    let provider_id = fleet.hosts.get(&host_id).map_or(0, |h| h.owner.id);
    Ok((host_id, provider_id))
}

/// A hold's id: the holding node's prefix and its number there.
fn parse_id(id: &str) -> Result<(NodePrefix, i64), ServiceError> {
    let not_found = || ServiceError::NotFound(Text::new("error.reservations.none").arg("id", id));
    let (prefix, number) = id.rsplit_once(':').ok_or_else(not_found)?;
    let prefix = NodePrefix::parse(prefix).map_err(|_| not_found())?;
    let number = number.parse().map_err(|_| not_found())?;
    Ok((prefix, number))
}

/// Sends a request down to the child leading to `target`, and reads its answer.
async fn ask_below(
    node: &Node,
    own: &NodePrefix,
    target: &NodePrefix,
    request: &LinkRequest,
    within: Duration,
) -> Result<Hold, ServiceError> {
    if !own.contains(target) {
        return Err(Invalid::one_text(
            "node",
            Text::new("check.reservations.outside_subtree")
                .arg("target", target)
                .arg("own", own),
        )
        .into());
    }
    let child = node
        .store
        .children(Some("approved"))
        .await?
        .into_iter()
        .find(|c| {
            c.prefix
                .as_deref()
                .and_then(|p| NodePrefix::parse(p).ok())
                .is_some_and(|p| p.contains(target))
        })
        .ok_or_else(|| {
            ServiceError::NotFound(Text::new("error.reservations.no_route").arg("target", target))
        })?;
    let json = serde_json::to_string(request).unwrap_or_default();
    let answer = node
        .links
        .ask_reservation(child.id, json, within)
        .await
        .map_err(|e| match e {
            AskError::Unreachable => ServiceError::unavailable(
                super::Source::Task,
                format!("the node towards {target} is not linked now"),
            ),
            AskError::Stale(reason) => ServiceError::unavailable(super::Source::Task, reason),
        })?;
    let hold = serde_json::from_str::<LinkAnswer>(&answer)
        .map_err(|e| {
            ServiceError::unavailable(
                super::Source::Task,
                format!("a malformed answer from below: {e}"),
            )
        })?
        .into_result()?;
    // Only the node asked may answer for its holds.
    if hold.node != target.to_string() || !hold.id.starts_with(&format!("{target}:")) {
        return Err(ServiceError::unavailable(
            super::Source::Task,
            format!("an answer for {} from the way to {target}", hold.id),
        ));
    }
    Ok(hold)
}
