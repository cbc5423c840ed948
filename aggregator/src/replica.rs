//! Several aggregators (replicas) may serve one node from one PostgreSQL
//! database; each takes in the samples of the agents connected to it. So
//! that every replica's catalog, and with it the status API, the dashboard
//! and selection, shows the whole fleet live, each follows the samples the
//! others store and reloads the price lists and lines they change.
//!
//! The freshest evidence wins: a sample counts by its sequence number,
//! whichever replica took it in. A replica still holding an agent's old
//! connection (dead, not yet timed out) takes the samples the agent now
//! sends through another, so it never judges that host silent.

use std::{sync::Arc, time::Duration};

use suanli_protocol::stream::SequencedSample;
use tracing::{debug, warn};

use crate::{
    node::{Node, tasks::Shutdown},
    store::{StoreError, now_ms},
};

const POLL: Duration = Duration::from_millis(500);
const BATCH: i64 = 5_000;
/// Price lists, lines and enrollments elsewhere are rare: every this many
/// polls is soon enough.
const RELOAD_EVERY: u64 = 10;

/// Follows the other replicas' samples until shutdown.
pub async fn follow(node: Arc<Node>, mut shutdown: Shutdown) {
    let mut cursor = match node.store.last_sample_id().await {
        Ok(id) => id,
        Err(e) => {
            warn!(error = %e, "could not find where the stored samples end; following from the start");
            0
        }
    };
    // Replicas insert side by side, so rows can commit out of id order:
    // each poll reads again from where the one before began, and what was
    // seen already is skipped by its sequence number.
    let mut behind = cursor;
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for poll in 1u64.. {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.wait() => return,
        }
        match catch_up(&node, behind).await {
            Ok(highest) => {
                behind = cursor;
                cursor = cursor.max(highest);
            }
            Err(e) => warn!(error = %e, "could not read the other replicas' samples"),
        }
        if poll % RELOAD_EVERY == 0 {
            if let Err(e) = node.catalog.reload_prices(&node.store).await {
                warn!(error = %e, "could not reload price lists");
            }
            if let Err(e) = node.routing.reload(&node.store).await {
                warn!(error = %e, "could not reload dedicated lines");
            }
            if let Err(e) = adopt_enrolled(&node).await {
                warn!(error = %e, "could not read the hosts other replicas enrolled");
            }
        }
    }
}

/// Lists the hosts another replica enrolled since this one loaded, as a
/// host enrolled here is listed: before its first sample.
async fn adopt_enrolled(node: &Node) -> Result<(), StoreError> {
    let ids = node.store.host_ids().await?;
    let new: Vec<i64> = {
        let fleet = node.catalog.read();
        ids.into_iter()
            .filter(|id| !fleet.hosts.contains_key(id))
            .collect()
    };
    for host_id in new {
        node.catalog.refresh_host(&node.store, host_id).await?;
    }
    Ok(())
}

/// Observes every sample stored after `after` newer than what this replica
/// has of its host; returns the highest id read.
async fn catch_up(node: &Node, mut after: i64) -> Result<i64, StoreError> {
    loop {
        let rows = node.store.samples_after(after, BATCH).await?;
        let Some(&(last, _, _)) = rows.last() else {
            return Ok(after);
        };
        let mut wanted = Vec::new();
        for (id, host_id, seq) in &rows {
            match node.catalog.last_seq(*host_id) {
                Some(Some(seen)) if seen >= *seq => continue,
                Some(Some(_)) => {}
                // Its first sample here: enrolled at another replica (and
                // perhaps listed since), so its inventory and resources are
                // read as that replica stored them.
                _ => node.catalog.refresh_host(&node.store, *host_id).await?,
            }
            wanted.push(*id);
        }
        for (host_id, body) in node.store.sample_bodies(&wanted).await? {
            match SequencedSample::decode(&body) {
                Ok(s) => node.catalog.follow(host_id, s.seq, &s.sample, now_ms()),
                Err(e) => debug!(host_id, error = %e, "undecodable stored sample skipped"),
            }
        }
        after = last;
        if rows.len() < BATCH as usize {
            return Ok(after);
        }
    }
}
