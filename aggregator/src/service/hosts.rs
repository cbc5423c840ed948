//! Hosts: revocation, the one change to a host that must reach a running
//! node at once (its agent is cut off within a second).

use super::{Actor, ServiceError, audit};
use crate::{
    node::{Node, NodeEvent},
    store::Store,
};

/// Revokes a host (by id or hostname) in storage and audits it; returns
/// its id. A running node applies it with [`apply_revoked`], at once when
/// it revoked the host itself, else when its revocation watch reads it.
pub async fn revoke(store: &Store, actor: &Actor, reference: &str) -> Result<i64, ServiceError> {
    let id = store.revoke_host(reference).await?;
    audit::record(store, actor, "host.revoke", &format!("host/{id}"), "").await;
    Ok(id)
}

/// Revokes a host on a running node: storage, then the node's live state.
pub async fn revoke_live(node: &Node, actor: &Actor, host_id: i64) -> Result<(), ServiceError> {
    revoke(&node.store, actor, &host_id.to_string()).await?;
    apply_revoked(node, &[host_id]);
    Ok(())
}

/// Makes revocations true in the node's live state: the catalog shows the
/// hosts revoked, their connections are closed, and subscribers hear of
/// each newly revoked host. Returns how many connections were closed.
pub fn apply_revoked(node: &Node, revoked: &[i64]) -> usize {
    for host_id in revoked {
        if node.catalog.set_revoked(*host_id) {
            node.publish(NodeEvent::Revoked { host_id: *host_id });
        }
    }
    node.registry.close_revoked(revoked)
}
