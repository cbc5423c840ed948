//! What selection routes over: the configured public latency table and
//! every open dedicated line, kept current as lines change; and the
//! latency this node observes to each region.

use std::{collections::BTreeMap, sync::RwLock};

use crate::{
    catalog::Catalog,
    fleet::HostState,
    selection::{LineEdge, Network, PublicLatency},
    store::{RegionLatency, Store, StoreError},
};

/// `[selection]` of the config file: what selection assumes of the public network.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct SelectionSection {
    /// Public-network latency within a city, in ms (national target: about 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_latency_city_ms: Option<f64>,
    /// … within a province (national target: at most 5).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_latency_province_ms: Option<f64>,
    /// … between provinces, i.e. hub nodes (national target: at most 20).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_latency_national_ms: Option<f64>,
    /// Bandwidth assumed for a public-network segment, in Mb/s.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_bandwidth_mbps: Option<u64>,
}

/// The node's network, as selection reads it.
#[derive(Debug)]
pub struct Routing {
    network: RwLock<Network>,
}

impl Routing {
    /// The public table and the lines storage holds.
    pub async fn load(store: &Store, public: PublicLatency) -> Result<Self, StoreError> {
        Ok(Self {
            network: RwLock::new(load_network(store, public).await?),
        })
    }

    /// A copy to route one demand over.
    pub fn network(&self) -> Network {
        self.network
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Reads the dedicated lines again, keeping the public latency table.
    pub async fn reload(&self, store: &Store) -> Result<(), StoreError> {
        let public = self
            .network
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .public;
        let network = load_network(store, public).await?;
        *self.network.write().unwrap_or_else(|e| e.into_inner()) = network;
        Ok(())
    }
}

/// The configured public table and every open line.
async fn load_network(store: &Store, public: PublicLatency) -> Result<Network, StoreError> {
    let lines = store
        .lines()
        .await?
        .into_iter()
        .filter(|l| l.state == "open")
        .map(|l| LineEdge {
            line_id: format!("{}-L{:06}", l.provider, l.id),
            provider: l.provider,
            from_region: l.from_region,
            to_region: l.to_region,
            latency_ms: l.latency_us as f64 / 1000.0,
            bandwidth_mbps: l.bandwidth_mbps.max(0) as u64,
            price_per_mbps_month: l.price_per_mbps_month,
        })
        .collect();
    Ok(Network { public, lines })
}

/// Latency observed from this node (`from_region`) to each region now:
/// half the median QUIC round trip of the region's online hosts, in the
/// minute holding `now`.
pub fn observed_latency(catalog: &Catalog, from_region: &str, now: u64) -> Vec<RegionLatency> {
    let mut rtts: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for host in catalog.read().hosts.values() {
        if host.state(now) == HostState::Online
            && let Some(us) = host.rtt_us
        {
            rtts.entry(host.region.clone()).or_default().push(us);
        }
    }
    rtts.into_iter()
        .map(|(to_region, mut us)| {
            us.sort_unstable();
            RegionLatency {
                minute_ms: crate::history::minute_of(now) as i64,
                from_region: from_region.to_owned(),
                to_region,
                hosts: us.len() as i64,
                median_rtt_us: us[us.len() / 2] as i64,
                min_rtt_us: us[0] as i64,
                max_rtt_us: us[us.len() - 1] as i64,
            }
        })
        .collect()
}
