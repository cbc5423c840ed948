//! Hosts: enrollment, certificates, revocation, inventories, resources and
//! their identifiers, link figures, and the rows the catalog loads.

use super::*;
use crate::identify::{HostIdentity, HostMatch};

/// Why an enrollment is refused when another provider holds the host. It
/// names the resource, never who holds it. The catalog's
/// `error.store.host_held` has the same English.
pub const HELD_BY_ANOTHER_PROVIDER: &str = "this host's identity is already enrolled on this node by another \
     provider; node staff can transfer the host (suanli-aggregator host transfer)";

/// The host an enrolling identity already is, and who holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostClaim {
    pub host_id: i64,
    pub provider_id: i64,
}

/// A host as its certificate finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostAuth {
    pub host_id: i64,
    pub provider_id: i64,
    pub revoked: bool,
}

/// What `GET /api/v1/hosts` lists from storage.
#[derive(Debug, Clone)]
pub struct HostListing {
    pub host_id: i64,
    pub hostname: String,
    pub provider: String,
    pub identifier: Option<String>,
    pub enrolled_at_ms: i64,
    pub revoked: bool,
    pub last_seen_ms: Option<i64>,
    pub rtt_us: Option<i64>,
    pub sent_packets: Option<i64>,
    pub lost_packets: Option<i64>,
    pub dropped_samples: Option<i64>,
    pub samples_stored: i64,
    pub first_seq: Option<i64>,
    pub last_seq: Option<i64>,
    pub gaps: i64,
    pub resources: Vec<ResourceListing>,
}

#[derive(Debug, Clone)]
pub struct ResourceListing {
    pub identifier: String,
    pub resource_type: String,
    pub resource_key: String,
}

/// Link figures recorded for a host.
#[derive(Debug, Clone, Copy, Default)]
pub struct LinkFigures {
    pub last_seen_ms: u64,
    pub rtt_us: u64,
    pub sent_packets: u64,
    pub lost_packets: u64,
    pub dropped_samples: u64,
}

fn host_from_row(row: &AnyRow) -> Result<HostListing, StoreError> {
    Ok(HostListing {
        host_id: row.try_get(0)?,
        hostname: row.try_get(1)?,
        provider: row.try_get(2)?,
        identifier: None,
        enrolled_at_ms: row.try_get(3)?,
        revoked: row.try_get::<Option<i64>, _>(4)?.is_some(),
        last_seen_ms: row.try_get(5)?,
        rtt_us: row.try_get(6)?,
        sent_packets: row.try_get(7)?,
        lost_packets: row.try_get(8)?,
        dropped_samples: row.try_get(9)?,
        samples_stored: 0,
        first_seq: None,
        last_seq: None,
        gaps: 0,
        resources: Vec::new(),
    })
}

/// A resource with its host and provider, as the catalog loads it.
#[derive(Debug, Clone)]
pub struct CatalogRow {
    pub resource_id: i64,
    pub identifier: String,
    pub resource_type: String,
    pub resource_key: String,
    pub host_id: i64,
}

/// A host with its provider, as the catalog loads it.
#[derive(Debug, Clone)]
pub struct HostRow {
    pub host_id: i64,
    pub hostname: String,
    /// Where the host is, if its token said; else its provider's region.
    pub region: Option<String>,
    pub provider: Provider,
    pub revoked: bool,
    pub last_seen_ms: Option<i64>,
    pub rtt_us: Option<i64>,
    pub inventory: Option<Vec<u8>>,
}

impl Store {
    /// Records an enrolled host, or re-enrolls the same machine under its old
    /// id (its identifiers stay) with a new certificate.
    /// The key `identity` enrolls under, and the host already enrolled
    /// there, if any (see [`HostIdentity::matches`]).
    pub async fn host_for_identity(
        &self,
        identity: &HostIdentity,
    ) -> Result<(String, Option<HostClaim>), StoreError> {
        let mut key = identity.machine_id.clone();
        let mut row = self.host_claim(&key).await?;
        if let Some((_, recorded)) = &row
            && let HostMatch::Distinct(distinct) = identity.matches(recorded.as_deref())
        {
            row = self.host_claim(&distinct).await?;
            key = distinct;
        }
        Ok((key, row.map(|(claim, _)| claim)))
    }

    async fn host_claim(
        &self,
        machine_key: &str,
    ) -> Result<Option<(HostClaim, Option<String>)>, StoreError> {
        let row =
            sqlx::query("SELECT id, provider_id, hardware_id FROM hosts WHERE machine_key = $1")
                .bind(machine_key)
                .fetch_optional(&self.pool)
                .await?;
        row.map(|row| {
            Ok((
                HostClaim {
                    host_id: row.try_get(0)?,
                    provider_id: row.try_get(1)?,
                },
                row.try_get(2)?,
            ))
        })
        .transpose()
    }

    /// Enrolls (or re-enrolls) the host under `machine_key` for
    /// `provider_id`. A host another provider holds is never moved: that
    /// takes staff ([`Store::transfer_host`]).
    pub async fn enroll_host(
        &self,
        provider_id: i64,
        machine_key: &str,
        hardware_id: Option<&str>,
        hostname: &str,
        cert_sha256: &str,
    ) -> Result<i64, StoreError> {
        let mut tx = self.begin_write().await?;
        let existing = sqlx::query("SELECT id, provider_id FROM hosts WHERE machine_key = $1")
            .bind(machine_key)
            .fetch_optional(&mut *tx)
            .await?;
        let id = match existing {
            Some(row) => {
                let id: i64 = row.try_get(0)?;
                if row.try_get::<i64, _>(1)? != provider_id {
                    return Err(StoreError::Conflict(Text::new("error.store.host_held")));
                }
                sqlx::query(
                    "UPDATE hosts SET hostname = $1, cert_sha256 = $2, revoked_at_ms = NULL, \
                     enrolled_at_ms = $3, hardware_id = COALESCE($4, hardware_id) WHERE id = $5",
                )
                .bind(hostname)
                .bind(cert_sha256)
                .bind(int(now_ms()))
                .bind(hardware_id)
                .bind(id)
                .execute(&mut *tx)
                .await?;
                id
            }
            None => sqlx::query(
                "INSERT INTO hosts (provider_id, machine_key, hostname, cert_sha256, enrolled_at_ms, hardware_id) \
                 VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            )
            .bind(provider_id)
            .bind(machine_key)
            .bind(hostname)
            .bind(cert_sha256)
            .bind(int(now_ms()))
            .bind(hardware_id)
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?,
        };
        tx.commit().await?;
        Ok(id)
    }

    /// Gives a host to another provider (staff only, audited by the caller)
    /// and revokes its certificate: the new provider's agent enrolls it
    /// afresh; its identifiers stay.
    pub async fn transfer_host(
        &self,
        reference: &str,
        provider_id: i64,
    ) -> Result<i64, StoreError> {
        let id = self.host_id(reference).await?;
        sqlx::query("UPDATE hosts SET provider_id = $1, revoked_at_ms = $2 WHERE id = $3")
            .bind(provider_id)
            .bind(int(now_ms()))
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(id)
    }

    pub async fn host_by_cert(&self, cert_sha256: &str) -> Result<Option<HostAuth>, StoreError> {
        let row =
            sqlx::query("SELECT id, provider_id, revoked_at_ms FROM hosts WHERE cert_sha256 = $1")
                .bind(cert_sha256)
                .fetch_optional(&self.pool)
                .await?;
        row.map(|row| {
            Ok(HostAuth {
                host_id: row.try_get(0)?,
                provider_id: row.try_get(1)?,
                revoked: row.try_get::<Option<i64>, _>(2)?.is_some(),
            })
        })
        .transpose()
    }

    /// Revokes a host named by id, hostname or one of its identifiers.
    pub async fn revoke_host(&self, reference: &str) -> Result<i64, StoreError> {
        let id = self.host_id(reference).await?;
        sqlx::query("UPDATE hosts SET revoked_at_ms = $1 WHERE id = $2")
            .bind(int(now_ms()))
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(id)
    }

    pub async fn host_id(&self, reference: &str) -> Result<i64, StoreError> {
        let by_id = reference.parse::<i64>().ok();
        // Three indexed lookups: an OR across the columns made SQLite read
        // every host (50 ms at 100,000 hosts).
        let row = sqlx::query(
            "SELECT id FROM hosts WHERE id = $1 UNION SELECT id FROM hosts WHERE hostname = $2 \
             UNION SELECT host_id FROM resources WHERE identifier = $3",
        )
        .bind(by_id.unwrap_or(-1))
        .bind(reference)
        .bind(reference.trim().to_ascii_uppercase())
        .fetch_all(&self.pool)
        .await?;
        match row.as_slice() {
            [one] => Ok(one.try_get(0)?),
            _ => Err(StoreError::NoHost(reference.to_owned())),
        }
    }

    pub async fn machine_key(&self, host_id: i64) -> Result<String, StoreError> {
        let row = sqlx::query("SELECT machine_key FROM hosts WHERE id = $1")
            .bind(host_id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::NoHost(host_id.to_string()))?;
        Ok(row.try_get(0)?)
    }

    /// The identifier of a host as a general-compute resource, once minted.
    pub async fn host_identifier(&self, host_id: i64) -> Result<Option<String>, StoreError> {
        let row = sqlx::query(
            "SELECT r.identifier FROM resources r JOIN hosts h ON r.resource_key = 'host:' || h.machine_key \
             WHERE h.id = $1",
        )
        .bind(host_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| r.try_get(0).map_err(Into::into)).transpose()
    }

    /// Every enrolled host's id.
    pub async fn host_ids(&self) -> Result<Vec<i64>, StoreError> {
        let rows = sqlx::query("SELECT id FROM hosts")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| r.try_get(0).map_err(Into::into))
            .collect()
    }

    pub async fn revoked_hosts(&self) -> Result<Vec<i64>, StoreError> {
        let rows = sqlx::query("SELECT id FROM hosts WHERE revoked_at_ms IS NOT NULL")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| r.try_get(0).map_err(Into::into))
            .collect()
    }

    pub async fn record_link(&self, host_id: i64, link: LinkFigures) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE hosts SET last_seen_ms = $1, rtt_us = $2, sent_packets = $3, lost_packets = $4, \
             dropped_samples = $5 WHERE id = $6",
        )
        .bind(int(link.last_seen_ms))
        .bind(int(link.rtt_us))
        .bind(int(link.sent_packets))
        .bind(int(link.lost_packets))
        .bind(int(link.dropped_samples))
        .bind(host_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn record_inventory(&self, host_id: i64, encoded: &[u8]) -> Result<(), StoreError> {
        sqlx::query("UPDATE hosts SET inventory = $1 WHERE id = $2")
            .bind(encoded)
            .bind(host_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The identifier of the resource known by `resource_key`, minting one
    /// on first sight. `mint` turns the resource's serial into an identifier.
    pub async fn ensure_resource(
        &self,
        host_id: i64,
        resource_key: &str,
        resource_type: &str,
        mint: impl FnOnce(i64) -> String,
    ) -> Result<String, StoreError> {
        let mut tx = self.begin_write().await?;
        if let Some(row) = sqlx::query(
            "SELECT r.identifier, h.provider_id, (SELECT provider_id FROM hosts WHERE id = $2) \
             FROM resources r JOIN hosts h ON h.id = r.host_id WHERE r.resource_key = $1",
        )
        .bind(resource_key)
        .bind(host_id)
        .fetch_optional(&mut *tx)
        .await?
        {
            // A device another provider's host holds (its UUID reported by a
            // second host) is not this host's to name.
            let holder: i64 = row.try_get(1)?;
            if row.try_get::<Option<i64>, _>(2)? != Some(holder) {
                return Err(StoreError::Conflict(
                    Text::new("error.store.resource_held").arg("resource", resource_key),
                ));
            }
            return Ok(row.try_get(0)?);
        }
        let id: i64 = sqlx::query(
            "INSERT INTO resources (host_id, resource_key, identifier, resource_type, created_at_ms) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(host_id)
        .bind(resource_key)
        .bind(format!("-{resource_key}"))
        .bind(resource_type)
        .bind(int(now_ms()))
        .fetch_one(&mut *tx)
        .await?
        .try_get(0)?;
        let identifier = mint(id);
        sqlx::query("UPDATE resources SET identifier = $1 WHERE id = $2")
            .bind(&identifier)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(identifier)
    }

    /// The listings of the hosts `ids` names (the catalog says which, in
    /// ascending order), with their stored samples and resources.
    pub async fn listed_hosts(&self, ids: &[i64]) -> Result<Vec<HostListing>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT h.id, h.hostname, p.owner_code, h.enrolled_at_ms, h.revoked_at_ms, h.last_seen_ms, \
                    h.rtt_us, h.sent_packets, h.lost_packets, h.dropped_samples \
             FROM hosts h JOIN providers p ON p.id = h.provider_id \
             WHERE h.id IN ({}) ORDER BY h.id",
            id_list(ids)
        )))
        .fetch_all(&self.pool)
        .await?;
        let hosts = rows
            .iter()
            .map(host_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        self.complete_listings(hosts).await
    }

    /// Adds each listed host's stored samples and resources: only the
    /// page's hosts (counting every stored sample of the node per request
    /// would grow with the fleet and its history).
    async fn complete_listings(
        &self,
        mut hosts: Vec<HostListing>,
    ) -> Result<Vec<HostListing>, StoreError> {
        if hosts.is_empty() {
            return Ok(hosts);
        }
        let ids: Vec<i64> = hosts.iter().map(|h| h.host_id).collect();
        let ids = id_list(&ids);
        let stored = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT host_id, COUNT(*), MIN(seq), MAX(seq) FROM samples \
             WHERE host_id IN ({ids}) GROUP BY host_id"
        )))
        .fetch_all(&self.pool)
        .await?;
        for row in &stored {
            let host_id: i64 = row.try_get(0)?;
            if let Ok(at) = hosts.binary_search_by_key(&host_id, |h| h.host_id) {
                let host = &mut hosts[at];
                host.samples_stored = row.try_get(1)?;
                host.first_seq = row.try_get(2)?;
                host.last_seq = row.try_get(3)?;
                if let (Some(first), Some(last)) = (host.first_seq, host.last_seq) {
                    host.gaps = last - first + 1 - host.samples_stored;
                }
            }
        }
        let resources = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT host_id, identifier, resource_type, resource_key FROM resources \
             WHERE host_id IN ({ids}) ORDER BY id"
        )))
        .fetch_all(&self.pool)
        .await?;
        // Hosts are in id order: find each resource's by binary search, not
        // by a scan per resource (100,000 resources × 11,000 hosts).
        for row in &resources {
            let host_id: i64 = row.try_get(0)?;
            let Ok(at) = hosts.binary_search_by_key(&host_id, |h| h.host_id) else {
                continue;
            };
            let host = &mut hosts[at];
            let listing = ResourceListing {
                identifier: row.try_get(1)?,
                resource_type: row.try_get(2)?,
                resource_key: row.try_get(3)?,
            };
            if listing.resource_key.starts_with("host:") {
                host.identifier = Some(listing.identifier.clone());
            }
            host.resources.push(listing);
        }
        Ok(hosts)
    }

    /// Places a host in a region (its resources' identifiers minted from
    /// now on carry it).
    pub async fn set_host_region(&self, host_id: i64, region: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE hosts SET region = $1 WHERE id = $2")
            .bind(region)
            .bind(host_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Resources for the in-memory catalog: every one, or one host's.
    pub async fn catalog_rows(&self, host_id: Option<i64>) -> Result<Vec<CatalogRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, identifier, resource_type, resource_key, host_id FROM resources \
             WHERE ($1 < 0 OR host_id = $1) ORDER BY id",
        )
        .bind(host_id.unwrap_or(-1))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(CatalogRow {
                    resource_id: r.try_get(0)?,
                    identifier: r.try_get(1)?,
                    resource_type: r.try_get(2)?,
                    resource_key: r.try_get(3)?,
                    host_id: r.try_get(4)?,
                })
            })
            .collect()
    }

    /// Hosts with their providers and stored inventories; one host when set.
    pub async fn host_rows(&self, host_id: Option<i64>) -> Result<Vec<HostRow>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT h.id, h.hostname, h.revoked_at_ms, h.last_seen_ms, h.rtt_us, h.inventory, ",
            "p.id, p.owner_code, p.name, p.uscc, p.region, p.industry, p.kind, p.contact, p.uscc_verified, h.region ",
            "FROM hosts h JOIN providers p ON p.id = h.provider_id WHERE ($1 < 0 OR h.id = $1) ORDER BY h.id"
        ))
        .bind(host_id.unwrap_or(-1))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(HostRow {
                    host_id: r.try_get(0)?,
                    hostname: r.try_get(1)?,
                    revoked: r.try_get::<Option<i64>, _>(2)?.is_some(),
                    last_seen_ms: r.try_get(3)?,
                    rtt_us: r.try_get(4)?,
                    inventory: r.try_get(5)?,
                    region: r.try_get(15)?,
                    provider: Provider {
                        id: r.try_get(6)?,
                        owner_code: r.try_get(7)?,
                        name: r.try_get(8)?,
                        uscc: r.try_get(9)?,
                        region: r.try_get(10)?,
                        industry: r.try_get(11)?,
                        kind: r.try_get(12)?,
                        contact: r.try_get(13)?,
                        uscc_verified: r.try_get::<i64, _>(14)? != 0,
                    },
                })
            })
            .collect()
    }
}
