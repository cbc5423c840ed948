//! Hosts: revocation, the one change to a host that must reach a running
//! node at once (its agent is cut off within a second), and transfer to
//! another provider, which revokes too.

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

/// Gives a host to another provider (by owner code or USCC): the one way a
/// host changes hands. Its certificate is revoked, so the new provider's
/// agent joins afresh; audited. A running node cuts the old agent off when
/// its revocation watch reads it.
pub async fn transfer(
    store: &Store,
    actor: &Actor,
    reference: &str,
    provider: &str,
) -> Result<i64, ServiceError> {
    let provider = store.provider(provider).await?;
    let id = store.transfer_host(reference, provider.id).await?;
    audit::record(
        store,
        actor,
        "host.transfer",
        &format!("host/{id}"),
        &format!("to provider {}", provider.owner_code),
    )
    .await;
    Ok(id)
}

/// Transfers a host on a running node: storage, then the old agent is cut
/// off at once (its certificate is revoked).
pub async fn transfer_live(
    node: &Node,
    actor: &Actor,
    reference: &str,
    provider: &str,
) -> Result<i64, ServiceError> {
    let id = transfer(&node.store, actor, reference, provider).await?;
    apply_revoked(node, &[id]);
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use suanli_protocol::identifier::{Industry, NodePrefix, RegionCode};

    use super::*;
    use crate::{
        catalog::Catalog,
        fleet::HostState,
        identity::NodeIdentity,
        node::{NodeSettings, Parts},
        routing::Routing,
        selection::PublicLatency,
        service::providers,
        store::SampleWriter,
        telemetry::IngestCounters,
    };

    /// A node on SQLite in `dir`, as `run` builds one, without listeners.
    async fn node(dir: &std::path::Path) -> Arc<Node> {
        let (identity, _) = NodeIdentity::load_or_create(dir).unwrap();
        let store = Store::open(&Store::sqlite_url(dir)).await.unwrap();
        let counters = IngestCounters::default();
        let (writer, _writing) = SampleWriter::new(store.clone(), counters.clone());
        let catalog = Catalog::load(&store).await.unwrap();
        let routing = Routing::load(&store, PublicLatency::default())
            .await
            .unwrap();
        let (node, _selections) = Node::new(Parts {
            settings: NodeSettings {
                node_prefix: NodePrefix::national(),
                role: suanli_protocol::node::Role::National,
                sample_interval: None,
                local_region: RegionCode::parse("110108").unwrap(),
                local_industry: Industry::parse("I65").unwrap(),
                advertise: "127.0.0.1:7443".into(),
                alerts: Default::default(),
            },
            identity,
            store,
            writer,
            catalog,
            routing,
            counters,
            prefix: NodePrefix::national(),
        });
        node
    }

    #[tokio::test]
    async fn a_revocation_reaches_storage_the_catalog_the_audit_log_and_subscribers_once() {
        let dir = tempfile::tempdir().unwrap();
        let node = node(dir.path()).await;
        let region = RegionCode::parse("110108").unwrap();
        let provider = providers::local(&node.store, &region, &Industry::parse("I65").unwrap())
            .await
            .unwrap();
        let host_id = node
            .store
            .enroll_host(provider.id, "machine-1", None, "h1", "cert-1")
            .await
            .unwrap();
        node.catalog
            .refresh_host(&node.store, host_id)
            .await
            .unwrap();
        let mut events = node.subscribe();

        let staff = Actor::new("admin", "192.0.2.1");
        revoke_live(&node, &staff, host_id).await.unwrap();
        // The revocation watch reads it back from storage too: no second event.
        assert_eq!(
            apply_revoked(&node, &node.store.revoked_hosts().await.unwrap()),
            0
        );

        assert_eq!(events.try_recv(), Ok(NodeEvent::Revoked { host_id }));
        assert!(events.try_recv().is_err(), "one event per revocation");
        let state = node.catalog.read().hosts[&host_id].state(0);
        assert_eq!(state, HostState::Revoked);
        let log = node
            .store
            .audit_log(&crate::store::AuditFilter {
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        let entry = &log
            .iter()
            .find(|r| r.entry.action == "host.revoke")
            .unwrap()
            .entry;
        assert_eq!(
            (entry.actor.as_str(), entry.address.as_str()),
            ("admin", "192.0.2.1")
        );
        assert_eq!(entry.subject, format!("host/{host_id}"));
    }

    #[tokio::test]
    async fn revoking_an_unknown_host_is_not_found() {
        let dir = tempfile::tempdir().unwrap();
        let node = node(dir.path()).await;
        let err = revoke(&node.store, &Actor::cli(), "no-such-host")
            .await
            .unwrap_err();
        assert!(matches!(err, ServiceError::NotFound(_)), "{err:?}");
    }
}
