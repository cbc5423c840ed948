//! Filing this node's own identifiers into its library (算力标识库): each
//! resource's description as the catalog has it, at a revision that goes up
//! by one whenever the description changes. The parent link files the
//! library's changed rows upwards; resolution and search read it.

use std::collections::HashMap;

use suanli_protocol::node::{Filing, MAX_FILINGS_PER_BATCH};

use super::ServiceError;
use crate::{
    hierarchy,
    node::{Node, NodeEvent},
    store::now_ms,
};

/// What the library holds of this node's own identifiers, kept in memory
/// between reconciliations so that an unchanged fleet costs no writes.
#[derive(Debug, Default)]
pub struct OwnFilings {
    known: HashMap<String, Filing>,
}

impl OwnFilings {
    /// Loads the own rows of the library.
    pub async fn load(node: &Node) -> Result<Self, ServiceError> {
        let known = node
            .store
            .own_filings()
            .await?
            .into_iter()
            .map(|f| (f.identifier.clone(), f))
            .collect();
        Ok(Self { known })
    }

    /// Files every own resource whose description changed since it was
    /// last filed; returns how many.
    pub async fn reconcile(&mut self, node: &Node) -> Result<usize, ServiceError> {
        let described = hierarchy::describe(&node.catalog.read());
        let now = now_ms();
        let changed: Vec<Filing> = described
            .into_iter()
            .filter_map(|mut d| {
                let revision = match self.known.get(&d.identifier) {
                    Some(known) if hierarchy::same_description(known, &d) => return None,
                    Some(known) => known.revision + 1,
                    None => 1,
                };
                d.revision = revision;
                d.changed_at_unix_ms = now;
                Some(d)
            })
            .collect();
        for chunk in changed.chunks(MAX_FILINGS_PER_BATCH) {
            node.store.apply_filings(None, chunk, None).await?;
            for f in chunk {
                self.known.insert(f.identifier.clone(), f.clone());
            }
        }
        if !changed.is_empty() {
            node.publish(NodeEvent::LibraryChanged);
        }
        Ok(changed.len())
    }

    /// Forgets what is known, after identifiers were reissued.
    pub async fn reload(&mut self, node: &Node) -> Result<(), ServiceError> {
        *self = Self::load(node).await?;
        Ok(())
    }
}
