//! The node: what its parts share, built once by [`crate::run`] and passed
//! as `Arc<Node>` to every edge (agents, HTTP, replicas) and operation.
//!
//! Nothing here has a concept of its own: it holds the state modules, the
//! settings every part reads, the bounded event broadcast parts react to,
//! and (in [`tasks`]) the owner of every background task.

use std::{
    sync::{Arc, RwLock},
    time::{Duration, Instant},
};

use suanli_protocol::{
    identifier::{Industry, NodePrefix, RegionCode},
    node::Role,
};
use tokio::sync::{broadcast, mpsc};
use tracing::warn;

use crate::{
    alerting::AlertSettings,
    catalog::Catalog,
    identity::NodeIdentity,
    links::{ChildLinks, UplinkStatus},
    registry::Registry,
    routing::Routing,
    store::{SampleWriter, SelectionRecord, Store},
    telemetry::{ApiCalls, IngestCounters},
    trends::TrendCache,
};

pub mod tasks;

/// `[node]` of the config file: who this node is and what it asks of every part.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSection {
    /// Where the node keeps its CA, credentials and (by default) its SQLite database.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<std::path::PathBuf>,
    /// This node's identifier prefix until a parent assigns one (a national node's is CN).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_prefix: Option<String>,
    /// This node's place in the hierarchy: national, regional or industry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Address written into join strings, if agents must use another than the listener's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub advertise: Option<String>,
    /// GB/T 2260 region code of this machine, for the local agent's provider.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_region: Option<String>,
    /// GB/T 4754 industry (section + division) for the local agent's provider.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_industry: Option<String>,
    /// Sampling interval imposed on every agent (e.g. 5s); agents keep their own if unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sample_interval: Option<String>,
}

/// What every part of the node reads of its configuration.
#[derive(Debug, Clone)]
pub struct NodeSettings {
    /// The configured prefix, used until a parent assigns one (see
    /// [`Node::prefix`], which every minting reads).
    pub node_prefix: NodePrefix,
    pub role: Role,
    /// Interval imposed on agents; `None` lets each keep its own.
    pub sample_interval: Option<Duration>,
    /// Where the node itself is: observed latency is measured from here,
    /// and the node's own host is registered here.
    pub local_region: RegionCode,
    pub local_industry: Industry,
    /// The QUIC address join strings tell agents to dial.
    pub advertise: String,
    /// Monitoring: evaluation, grouping, receivers declared in the file.
    pub alerts: AlertSettings,
}

/// Something that happened which another part may react to.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeEvent {
    /// A host joined with a token.
    Enrolled { host_id: i64 },
    /// A host's inventory (and so its resources) changed.
    InventoryChanged { host_id: i64 },
    /// A host reported a device event (an NVIDIA XID today).
    DeviceEvent {
        host_id: i64,
        gpu_index: Option<u32>,
        code: u64,
    },
    /// A host was revoked: its agent is cut off.
    Revoked { host_id: i64 },
    /// Dedicated lines changed: selection routes over the new set.
    LinesChanged,
    /// A provider's price list changed.
    PricesChanged { provider_id: i64 },
    /// The identifier library changed (minted here or filed by a child):
    /// there may be something to file upwards.
    LibraryChanged,
    /// Market reports were stored (this node's own, or a child's): there
    /// may be something to report upwards.
    ReportsStored,
    /// A child node was revoked: its link is cut.
    ChildRevoked { child_id: i64 },
    /// The parent assigned this node its prefix; identifiers were reissued.
    PrefixAssigned,
}

/// Events a slow subscriber may fall behind by before it misses some
/// (it is told how many).
const EVENT_BACKLOG: usize = 1024;
/// Selections waiting to be recorded; beyond this they are dropped, counted
/// in the log, rather than slowing answers down.
pub const SELECTION_BACKLOG: usize = 1024;

/// The node context.
#[derive(Debug)]
pub struct Node {
    pub settings: NodeSettings,
    pub identity: NodeIdentity,
    pub store: Store,
    /// The one batched writer of samples.
    pub writer: SampleWriter,
    /// Every resource with its latest figures.
    pub catalog: Catalog,
    /// Connected agents.
    pub registry: Registry,
    /// Connected child nodes, for questions down their links.
    pub links: ChildLinks,
    /// This node's own link to its parent.
    pub uplink: UplinkStatus,
    /// The network selection routes over.
    pub routing: Routing,
    pub counters: IngestCounters,
    /// The HTTP API's calls not yet stored (market monitoring).
    pub api_calls: ApiCalls,
    /// The subtree's capacity trend, summed by period.
    pub trends: TrendCache,
    pub started: Instant,
    /// This process's name among the node's replicas: it holds their
    /// shared claims, so a restart is a new holder.
    pub replica: String,
    /// The prefix this node mints under: the configured one until a parent
    /// assigns one.
    prefix: RwLock<NodePrefix>,
    events: broadcast::Sender<NodeEvent>,
    selections: mpsc::Sender<SelectionRecord>,
}

/// The parts a node is made of, before it starts.
#[derive(Debug)]
pub struct Parts {
    pub settings: NodeSettings,
    pub identity: NodeIdentity,
    pub store: Store,
    pub writer: SampleWriter,
    pub catalog: Catalog,
    pub routing: Routing,
    pub counters: IngestCounters,
    /// The prefix to mint under now (the parent's assignment, if any).
    pub prefix: NodePrefix,
}

impl Node {
    /// Assembles a node; the receiver carries selections to record (see
    /// [`tasks::record_selections`]).
    pub fn new(parts: Parts) -> (Arc<Self>, mpsc::Receiver<SelectionRecord>) {
        let (selections, recorded) = mpsc::channel(SELECTION_BACKLOG);
        let node = Self {
            settings: parts.settings,
            identity: parts.identity,
            store: parts.store,
            writer: parts.writer,
            catalog: parts.catalog,
            registry: Registry::default(),
            links: ChildLinks::default(),
            uplink: UplinkStatus::default(),
            routing: parts.routing,
            counters: parts.counters,
            api_calls: ApiCalls::default(),
            trends: TrendCache::default(),
            started: Instant::now(),
            replica: crate::identity::random_secret()[..12].to_owned(),
            prefix: RwLock::new(parts.prefix),
            events: broadcast::channel(EVENT_BACKLOG).0,
            selections,
        };
        (Arc::new(node), recorded)
    }

    /// The prefix every identifier minted now carries.
    pub fn prefix(&self) -> NodePrefix {
        self.prefix
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// A parent assigned this node its prefix.
    pub fn set_prefix(&self, prefix: NodePrefix) {
        *self
            .prefix
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = prefix;
    }

    /// Tells whoever subscribed; nobody listening is fine.
    pub fn publish(&self, event: NodeEvent) {
        let _ = self.events.send(event);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<NodeEvent> {
        self.events.subscribe()
    }

    /// Queues a selection for the record, off the answer's path.
    pub fn record_selection(&self, record: SelectionRecord) {
        if self.selections.try_send(record).is_err() {
            warn!("selection record queue full; one selection not recorded");
        }
    }
}
