//! Live views: while someone watches a host, its agent samples every
//! second, across its reconnects; when the last watcher leaves, the host
//! goes back to the interval it had.
//!
//! The API opens and closes views; ingest asks, as an agent connects,
//! whether its host is being watched.

use std::{sync::Arc, time::Duration};

use tokio::sync::watch;

use crate::{catalog::Catalog, fleet::Vitals, registry::Registry};

/// While a host page is open, its agent samples this often.
pub const LIVE_INTERVAL: Duration = Duration::from_secs(1);
/// What a host goes back to if neither the node nor its history says.
const FALLBACK_INTERVAL: Duration = Duration::from_secs(5);

/// Starts watching `host_id`: its figures as they arrive, and for the
/// first watcher its agent turned to [`LIVE_INTERVAL`]. `None` for a host
/// the catalog does not know.
pub fn open(
    catalog: &Catalog,
    registry: &Registry,
    host_id: i64,
) -> Option<watch::Receiver<Option<Arc<Vitals>>>> {
    let (feed, first) = catalog.watch(host_id)?;
    if first {
        registry.set_interval(host_id, LIVE_INTERVAL);
    }
    Some(feed)
}

/// Ends one view of `host_id`; the last puts the host back on the node's
/// interval, else the one it had before, else the fallback.
pub fn close(
    catalog: &Catalog,
    registry: &Registry,
    host_id: i64,
    node_interval: Option<Duration>,
) {
    if let Some(before) = catalog.unwatch(host_id) {
        let interval = node_interval
            .or(before.map(Duration::from_millis))
            .unwrap_or(FALLBACK_INTERVAL);
        registry.set_interval(host_id, interval);
        catalog.expect_interval(
            host_id,
            u64::try_from(interval.as_millis()).unwrap_or(u64::MAX),
        );
    }
}

/// An agent connected: a host someone is watching stays live across its
/// reconnects.
pub fn on_connect(catalog: &Catalog, registry: &Registry, host_id: i64) {
    if catalog.watched(host_id) {
        registry.set_interval(host_id, LIVE_INTERVAL);
    }
}
