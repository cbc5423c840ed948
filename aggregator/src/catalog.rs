//! The node's resources in memory, with each host's latest sample.
//!
//! Storage is the record; this is the index the status API, the dashboard
//! and `/metrics` read, so that listing 100,000 resources or summing a
//! fleet never touches the database. It is loaded at start, refreshed per
//! host when an inventory arrives (identifiers are minted then), and every
//! sample updates its host's [`Vitals`] as it is ingested. What is true of
//! a fleet (host state, free now) is in [`crate::fleet`]; this module only
//! keeps one, current.
//!
//! Each replica holds the hosts connected to it live; on PostgreSQL with
//! several replicas, a host's live figures are on the replica it streams to.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex, RwLock},
};

use suanli_protocol::{identifier::ResourceType, model::HostSample, stream::InventoryUpdate};
use tokio::sync::watch;

use crate::{
    fleet::{Arrival, Fleet, HeldFor, HostEntry, Owner, ResourceEntry, Vitals},
    price::PriceList,
    store::{CatalogRow, HostRow, Store, StoreError},
};

#[derive(Debug, Default)]
pub struct Catalog {
    fleet: RwLock<Fleet>,
    /// Each watched host's figures as they arrive, for live pages.
    feeds: Mutex<HashMap<i64, watch::Sender<Option<Arc<Vitals>>>>>,
}

impl Catalog {
    /// Loads every host and resource from storage.
    pub async fn load(store: &Store) -> Result<Self, StoreError> {
        let catalog = Self::default();
        let hosts = store.host_rows(None).await?;
        let rows = store.catalog_rows(None).await?;
        catalog.install(hosts, rows);
        catalog.reload_prices(store).await?;
        Ok(catalog)
    }

    /// Replaces every price list with what storage holds.
    pub async fn reload_prices(&self, store: &Store) -> Result<(), StoreError> {
        let mut lists: HashMap<i64, Arc<PriceList>> = HashMap::new();
        for row in store.prices(None).await? {
            if let Some(price) = row.price() {
                Arc::make_mut(lists.entry(row.provider_id).or_default())
                    .0
                    .push(price);
            }
        }
        self.write().prices = lists;
        Ok(())
    }

    /// Installs a provider's price list, replacing what it listed before.
    pub fn set_prices(&self, provider_id: i64, list: PriceList) {
        let mut fleet = self.write();
        if list.0.is_empty() {
            fleet.prices.remove(&provider_id);
        } else {
            fleet.prices.insert(provider_id, Arc::new(list));
        }
    }

    /// Reloads one host and its resources (after an inventory or a revocation).
    pub async fn refresh_host(&self, store: &Store, host_id: i64) -> Result<(), StoreError> {
        let hosts = store.host_rows(Some(host_id)).await?;
        let rows = store.catalog_rows(Some(host_id)).await?;
        self.install(hosts, rows);
        Ok(())
    }

    /// Adds or updates hosts and resources as storage describes them.
    pub fn install(&self, hosts: Vec<HostRow>, rows: Vec<CatalogRow>) {
        let mut owners: HashMap<i64, Arc<Owner>> = HashMap::new();
        let mut fleet = self.write();
        for row in hosts {
            let owner = owners
                .entry(row.provider.id)
                .or_insert_with(|| Arc::new(row.provider.owner()))
                .clone();
            let inventory = row
                .inventory
                .as_deref()
                .and_then(|bytes| InventoryUpdate::decode(bytes).ok())
                .map(|update| Arc::new(update.inventory));
            let region = row.region.unwrap_or_else(|| owner.region.clone());
            match fleet.hosts.get_mut(&row.host_id) {
                Some(host) => {
                    host.hostname = row.hostname;
                    host.region = region;
                    host.owner = owner;
                    host.revoked = row.revoked;
                    host.set_inventory(inventory);
                }
                None => {
                    let mut host =
                        HostEntry::new(row.host_id, row.hostname, owner, region, inventory);
                    host.revoked = row.revoked;
                    host.last_seen_ms = row.last_seen_ms.map(|v| v as u64);
                    host.rtt_us = row.rtt_us.map(|v| v as u64);
                    fleet.hosts.insert(row.host_id, host);
                }
            }
        }
        let mut touched = Vec::new();
        for row in rows {
            let Some(host) = fleet.hosts.get(&row.host_id) else {
                continue;
            };
            let resource_type = if row.resource_key.starts_with("gpu:") {
                ResourceType::AiAccelerator
            } else {
                ResourceType::ALL
                    .into_iter()
                    .find(|t| t.name_en() == row.resource_type)
                    .unwrap_or(ResourceType::GeneralCompute)
            };
            let gpu_uuid = row.resource_key.strip_prefix("gpu:").map(str::to_owned);
            let inventory = host.inventory.as_deref();
            let accelerator = match (&gpu_uuid, inventory) {
                (Some(uuid), Some(inv)) => {
                    inv.gpus.iter().find(|g| g.uuid.as_deref() == Some(uuid))
                }
                _ => None,
            };
            let (model, memory_bytes, mig, gpu_index) = match (accelerator, inventory) {
                (Some(g), _) => (
                    g.name.clone().or_else(|| g.model.clone()),
                    g.memory_total_bytes,
                    g.mig_enabled,
                    Some(g.index),
                ),
                (None, Some(inv)) if gpu_uuid.is_none() => (
                    inv.cpu.model_name.clone(),
                    inv.memory_total_bytes,
                    None,
                    None,
                ),
                _ => (None, None, None, None),
            };
            // Accelerators match by vendor, kind and name; hosts by CPU model.
            let model_key = match accelerator {
                Some(g) => crate::accel::model_key(g),
                None => model.as_deref().unwrap_or_default().to_lowercase(),
            };
            // A reissued identifier (the parent assigned a prefix) replaces
            // the old one, which the library keeps as superseded.
            if let Some(old) = fleet.resources.get(&row.resource_id)
                && old.identifier != row.identifier
            {
                let old = old.identifier.clone();
                fleet.by_identifier.remove(&old);
            }
            fleet
                .by_identifier
                .insert(row.identifier.clone(), row.resource_id);
            let model_id = fleet.intern(&model_key, model.as_deref());
            let entry = Arc::new(ResourceEntry {
                id: row.resource_id,
                identifier: row.identifier,
                resource_type,
                host_id: row.host_id,
                gpu_uuid,
                gpu_index,
                model_id,
                model_key,
                model,
                memory_bytes,
                mig,
            });
            if let Some(host) = fleet.hosts.get_mut(&row.host_id) {
                host.resources.retain(|r| r.id != entry.id);
                // The host's own resource first, then its accelerators.
                if entry.gpu_uuid.is_none() {
                    host.resources.insert(0, entry.clone());
                } else {
                    host.resources.push(entry.clone());
                }
            }
            fleet.resources.insert(row.resource_id, entry);
            touched.push(row.host_id);
        }
        touched.dedup();
        for host_id in touched {
            if let Some(host) = fleet.hosts.get_mut(&host_id) {
                host.regroup();
            }
        }
    }

    pub fn read(&self) -> std::sync::RwLockReadGuard<'_, Fleet> {
        // A panic while holding the lock leaves a fleet that is still valid.
        self.fleet.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Fleet> {
        self.fleet.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes in a host's newest sample, received from its agent.
    pub fn observe(&self, host_id: i64, seq: u64, sample: &HostSample, received_ms: u64) {
        self.take(host_id, seq, sample, received_ms, Arrival::FromAgent);
    }

    /// Takes in a sample another replica received, seen in storage at `seen_ms`.
    pub fn follow(&self, host_id: i64, seq: u64, sample: &HostSample, seen_ms: u64) {
        self.take(host_id, seq, sample, seen_ms, Arrival::FromReplica);
    }

    fn take(
        &self,
        host_id: i64,
        seq: u64,
        sample: &HostSample,
        received_ms: u64,
        arrival: Arrival,
    ) {
        // Read the sample outside the write lock: only the swap needs it.
        let inventory = self
            .read()
            .hosts
            .get(&host_id)
            .and_then(|h| h.inventory.clone());
        let vitals = Vitals::from_sample(seq, sample, inventory.as_deref());
        let mut fleet = self.write();
        let Some(host) = fleet.hosts.get_mut(&host_id) else {
            return;
        };
        if let Some(vitals) = host.observe(vitals, sample, received_ms, arrival)
            && host.watchers > 0
        {
            self.feed(host_id).send_replace(Some(vitals));
        }
    }

    /// The live feed of one host's figures, made on first use.
    fn feed(&self, host_id: i64) -> watch::Sender<Option<Arc<Vitals>>> {
        self.feeds
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(host_id)
            .or_insert_with(|| watch::channel(None).0)
            .clone()
    }

    /// Records, at connect, the last sequence number the agent has spooled.
    pub fn set_spooled_through(&self, host_id: i64, seq: Option<u64>) {
        if let Some(host) = self.write().hosts.get_mut(&host_id) {
            host.spooled_through = seq;
        }
    }

    pub fn set_rtt(&self, host_id: i64, rtt_us: u64) {
        if let Some(host) = self.write().hosts.get_mut(&host_id) {
            host.rtt_us = Some(rtt_us);
        }
    }

    /// Whether the catalog knows the host, and the sequence number of the
    /// newest sample it has seen from it.
    pub fn last_seq(&self, host_id: i64) -> Option<Option<u64>> {
        self.read()
            .hosts
            .get(&host_id)
            .map(|h| h.vitals.as_ref().map(|v| v.seq))
    }

    /// A second agent claimed this host's identity from `address` while it
    /// reported, and was refused.
    pub fn note_clone_refused(&self, host_id: i64, at_ms: u64, address: String) {
        if let Some(host) = self.write().hosts.get_mut(&host_id) {
            host.clone_refused = Some((at_ms, address));
        }
    }

    /// Makes the holds on this node's accelerators those of `open`: each
    /// host whose holds change is regrouped, so selection passes over what
    /// is held at once.
    pub fn set_holds(&self, node: &str, open: &[crate::store::Reservation]) {
        let mut fleet = self.write();
        let mut wanted: HashMap<i64, BTreeMap<u32, HeldFor>> = HashMap::new();
        for reservation in open {
            let Some(host) = fleet.hosts.get(&reservation.host_id) else {
                continue;
            };
            for (slot, r) in host.resources.iter().enumerate() {
                if reservation.resources.contains(&r.identifier) {
                    wanted.entry(host.host_id).or_default().insert(
                        slot as u32,
                        HeldFor {
                            reservation: format!("{node}:{}", reservation.id),
                            holder: reservation.holder.clone(),
                            until_ms: reservation.expires_at_ms,
                        },
                    );
                }
            }
        }
        for host in fleet.hosts.values_mut() {
            let holds = wanted.remove(&host.host_id).unwrap_or_default();
            if host.holds != holds {
                host.holds = holds;
                host.regroup();
            }
        }
    }

    /// Staff cleared an accelerator's faults.
    pub fn clear_faults(&self, host_id: i64, uuid: &str) {
        if let Some(host) = self.write().hosts.get_mut(&host_id) {
            host.clear_faults(uuid);
        }
    }

    /// Latches again a fault an open alert records (after a restart).
    pub fn restore_fault(&self, host_id: i64, uuid: &str, xid: u64, at_ms: u64) {
        if let Some(host) = self.write().hosts.get_mut(&host_id) {
            host.gpu_faults.entry(uuid.to_owned()).or_default().record(
                xid,
                at_ms,
                None,
                &crate::health::XIDS,
            );
            host.regroup();
        }
    }

    /// Marks a host revoked; `true` if it was not already.
    pub fn set_revoked(&self, host_id: i64) -> bool {
        match self.write().hosts.get_mut(&host_id) {
            Some(host) if !host.revoked => {
                host.revoked = true;
                true
            }
            _ => false,
        }
    }

    /// Starts watching a host live. Returns the stream of its samples and,
    /// for the first watcher, the interval it sampled at before (so the
    /// caller can ask for 1 s samples and restore this later).
    pub fn watch(&self, host_id: i64) -> Option<(watch::Receiver<Option<Arc<Vitals>>>, bool)> {
        let mut fleet = self.write();
        let host = fleet.hosts.get_mut(&host_id)?;
        host.watchers += 1;
        let first = host.watchers == 1;
        if first {
            host.interval_before_live_ms = host.interval_ms;
        }
        let feed = self.feed(host_id);
        if first {
            feed.send_replace(host.vitals.clone());
        }
        Some((feed.subscribe(), first))
    }

    /// Stops one watcher; for the last one, the interval to go back to.
    pub fn unwatch(&self, host_id: i64) -> Option<Option<u64>> {
        let mut fleet = self.write();
        let host = fleet.hosts.get_mut(&host_id)?;
        host.watchers = host.watchers.saturating_sub(1);
        (host.watchers == 0).then(|| host.interval_before_live_ms.take())
    }

    /// The host was asked to sample every `interval_ms`: until its samples
    /// show that pace, its silence is judged by the slower of the two.
    /// Without it a host leaving a live view (1 s) for its usual 5 s would
    /// read as silent after 3 s.
    pub fn expect_interval(&self, host_id: i64, interval_ms: u64) {
        if let Some(host) = self.write().hosts.get_mut(&host_id) {
            host.asked_interval_ms = Some(interval_ms);
        }
    }

    pub fn watched(&self, host_id: i64) -> bool {
        self.read()
            .hosts
            .get(&host_id)
            .is_some_and(|h| h.watchers > 0)
    }
}
