//! Child nodes: join tokens, the review of their requests (the filing,
//! 备案), and revocation. Each verb once, audited, for the command line and
//! the API alike.

use std::time::Duration;

use suanli_link::transport;
use suanli_protocol::{
    identifier::NodePrefix,
    join::JoinString,
    node::{LiveState, Role},
};

use super::{Actor, ServiceError, Source, audit};
use crate::store::review_state;
use crate::{
    auth,
    check::{Check, FieldProblem, Invalid},
    hierarchy,
    i18n::Text,
    identity::{NodeIdentity, random_secret},
    links::AskError,
    node::Node,
    store::{ChildNode, Store, now_ms},
};

/// A node join token made: its join string is shown once, never stored.
#[derive(Debug)]
pub struct NodeTokenIssued {
    pub id: i64,
    pub join: JoinString,
    pub role: Role,
    pub segment: String,
    pub expires_at_ms: u64,
}

/// This node's role and prefix as `serve` recorded them; an administrative
/// command on a node that never started has none.
pub async fn own_place(store: &Store) -> Result<(Role, NodePrefix), ServiceError> {
    let (role, prefix) = store
        .profile()
        .await?
        .ok_or_else(|| ServiceError::Conflict(Text::new("error.nodes.not_started")))?;
    let role = Role::parse(&role)
        .ok_or_else(|| ServiceError::unavailable(Source::Database, "unknown stored role"))?;
    let prefix =
        NodePrefix::parse(&prefix).map_err(|e| ServiceError::unavailable(Source::Database, e))?;
    Ok((role, prefix))
}

/// Issues a one-time join token for a child node of `role` at `segment`
/// (a province code for a regional node, an industry for an industry node).
pub async fn issue_token(
    store: &Store,
    actor: &Actor,
    role: Role,
    segment: &str,
    ttl: Duration,
    address: &str,
    ca_fingerprint: &str,
) -> Result<NodeTokenIssued, ServiceError> {
    let (own_role, _) = own_place(store).await?;
    hierarchy::may_adopt(own_role, role)
        .map_err(|text| Invalid(vec![FieldProblem::text("role", text)]))?;
    let segment = hierarchy::segment_for(role, segment).map_err(|text| {
        Invalid(vec![FieldProblem::text(
            match role {
                Role::Regional => "region",
                _ => "industry",
            },
            text,
        )])
    })?;
    if ttl.is_zero() || ttl > Duration::from_secs(30 * 24 * 3600) {
        return Err(Invalid(vec![FieldProblem::text(
            "ttl",
            Text::new("check.nodes.ttl"),
        )])
        .into());
    }
    let ca_fingerprint = transport::from_hex(ca_fingerprint)
        .and_then(|v| <[u8; 32]>::try_from(v).ok())
        .ok_or_else(|| ServiceError::unavailable(Source::Identity, "bad CA fingerprint"))?;
    let secret = random_secret();
    let expires_at_ms = now_ms().saturating_add(ttl.as_millis() as u64);
    let id = store
        .create_node_token(
            &auth::secret_hash(&secret),
            role.as_str(),
            &segment,
            expires_at_ms,
            &actor.name,
        )
        .await?;
    audit::record(
        store,
        actor,
        "node.token.create",
        &format!("node-token/{id}"),
        &format!(
            "{} {segment} ttl {}",
            role.as_str(),
            humantime::format_duration(ttl)
        ),
    )
    .await;
    Ok(NodeTokenIssued {
        id,
        join: JoinString {
            address: address.to_owned(),
            ca_fingerprint,
            token: secret,
        },
        role,
        segment,
        expires_at_ms,
    })
}

/// Approves a pending request: signs the child's node certificate and
/// assigns its prefix under this node's own.
pub async fn approve(
    store: &Store,
    identity: &NodeIdentity,
    actor: &Actor,
    id: i64,
) -> Result<ChildNode, ServiceError> {
    let (_, own_prefix) = own_place(store).await?;
    let child = store.child(id).await?;
    if child.state != "pending" {
        return Err(ServiceError::Conflict(
            Text::new("error.nodes.already")
                .arg("id", id)
                .arg_text("state", review_state(&child.state)),
        ));
    }
    let prefix = hierarchy::child_prefix(&own_prefix, &child.segment)
        .map_err(|m| ServiceError::Conflict(Text::new("error.nodes.no_prefix").arg("error", m)))?;
    let certificate = identity
        .sign_node(&child.csr, id)
        .map_err(|e| ServiceError::unavailable(Source::Identity, e))?;
    store
        .approve_child(
            id,
            &prefix.to_string(),
            &certificate,
            &transport::to_hex(&transport::fingerprint(&certificate)),
            &actor.name,
        )
        .await?;
    audit::record(
        store,
        actor,
        "node.approve",
        &format!("node/{id}"),
        &format!(
            "{} {} prefix {prefix} operator {}",
            child.role, child.segment, child.operator_uscc
        ),
    )
    .await;
    Ok(store.child(id).await?)
}

/// The reason staff give: the same rule as every reason (`Check::text`).
fn reason_of(reason: &str) -> Result<String, ServiceError> {
    let mut check = Check::default();
    let reason = check.text("reason", reason, 500);
    check.done()?;
    Ok(reason)
}

pub async fn reject(
    store: &Store,
    actor: &Actor,
    id: i64,
    reason: &str,
) -> Result<ChildNode, ServiceError> {
    let reason = reason_of(reason)?;
    store.reject_child(id, &reason, &actor.name).await?;
    audit::record(store, actor, "node.reject", &format!("node/{id}"), &reason).await;
    Ok(store.child(id).await?)
}

/// Finds a child by its id or its prefix.
pub async fn find(store: &Store, reference: &str) -> Result<ChildNode, ServiceError> {
    if let Ok(id) = reference.trim().parse::<i64>() {
        return Ok(store.child(id).await?);
    }
    let wanted = reference.trim().to_ascii_uppercase();
    store
        .children(None)
        .await?
        .into_iter()
        .find(|c| c.prefix.as_deref() == Some(wanted.as_str()) && c.state == "approved")
        .ok_or_else(|| {
            ServiceError::NotFound(Text::new("error.nodes.no_child").arg("reference", reference))
        })
}

/// Revokes an approved child: its certificate is refused from now on, its
/// link closes within a second, and its identifiers are no longer current.
pub async fn revoke(
    store: &Store,
    actor: &Actor,
    reference: &str,
    reason: &str,
) -> Result<ChildNode, ServiceError> {
    let reason = reason_of(reason)?;
    let child = find(store, reference).await?;
    store.revoke_child(child.id, &reason, &actor.name).await?;
    audit::record(
        store,
        actor,
        "node.revoke",
        &format!("node/{}", child.id),
        &reason,
    )
    .await;
    Ok(store.child(child.id).await?)
}

/// The live state of an identifier in this node's subtree: from the
/// catalog when it is this node's own resource, else asked of the child
/// holding it (which may ask its own child in turn), within `deadline`.
pub async fn live(
    node: &Node,
    identifier: &str,
    deadline: Duration,
) -> Result<LiveState, AskError> {
    let own = {
        let fleet = node.catalog.read();
        hierarchy::live_state(&fleet, identifier, now_ms(), &node.prefix().to_string())
    };
    if let Some(state) = own {
        return Ok(state);
    }
    let entry = node
        .store
        .library_entry(identifier)
        .await
        .map_err(|e| AskError::Stale(format!("the library: {e}")))?;
    match entry.and_then(|e| e.child_id) {
        Some(child) => node.links.ask_live(child, identifier, deadline).await,
        None => Err(AskError::Stale(format!(
            "{identifier} is not a live resource here"
        ))),
    }
}
