//! The node's database: embedded SQLite by default, PostgreSQL for nodes that
//! run several aggregator replicas.
//!
//! One code path serves both through sqlx's `Any` driver: queries use `$n`
//! placeholders and portable types only (BIGINT, TEXT, bytes), and the schema
//! lives in numbered pairs `migrations/000N-{sqlite,postgres}.sql`, which differ
//! only in dialect.
//! Times are unix milliseconds; unsigned wire values are stored as BIGINT.
//!
//! Samples are keyed by (host, seq) and inserted with `ON CONFLICT DO
//! NOTHING`: a sample resent after a lost acknowledgement is stored once.

use std::{
    collections::BTreeMap,
    time::{SystemTime, UNIX_EPOCH},
};

use sqlx::{
    AnyPool, Row,
    any::{AnyPoolOptions, AnyRow},
};

use suanli_protocol::stream::SequencedSample;

use crate::history::{self, Rollup};

/// The columns [`provider_from_row`] reads, in its order.
macro_rules! provider_columns {
    () => {
        "id, owner_code, name, uscc, region, industry, kind, contact, uscc_verified"
    };
}

mod service;
mod writer;

pub use service::*;
pub use writer::SampleWriter;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("unsupported database URL {0:?}: use sqlite://PATH or postgres://…")]
    UnsupportedUrl(String),
    #[error("no provider {0:?}")]
    NoProvider(String),
    #[error("no host {0:?}")]
    NoHost(String),
    #[error("a provider with code {0} is already registered")]
    DuplicateProvider(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
}

/// Why an enrollment token was refused. The agent is told which.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenRefusal {
    #[error("unknown enrollment token")]
    Unknown,
    #[error("enrollment token expired")]
    Expired,
    #[error("enrollment token already used")]
    UsedUp,
    #[error("enrollment token revoked")]
    Revoked,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Schema migrations in order: (version, SQLite, PostgreSQL). Applied once
/// each, in one transaction, recorded in `suanli_schema`.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        include_str!("../migrations/0001-sqlite.sql"),
        include_str!("../migrations/0001-postgres.sql"),
    ),
    (
        2,
        include_str!("../migrations/0002-sqlite.sql"),
        include_str!("../migrations/0002-postgres.sql"),
    ),
    (
        3,
        include_str!("../migrations/0003-sqlite.sql"),
        include_str!("../migrations/0003-postgres.sql"),
    ),
    (
        4,
        include_str!("../migrations/0004-sqlite.sql"),
        include_str!("../migrations/0004-postgres.sql"),
    ),
    (
        5,
        include_str!("../migrations/0005-sqlite.sql"),
        include_str!("../migrations/0005-postgres.sql"),
    ),
    (
        6,
        include_str!("../migrations/0006-sqlite.sql"),
        include_str!("../migrations/0006-postgres.sql"),
    ),
    (
        7,
        include_str!("../migrations/0007-sqlite.sql"),
        include_str!("../migrations/0007-postgres.sql"),
    ),
    (
        8,
        include_str!("../migrations/0008-sqlite.sql"),
        include_str!("../migrations/0008-postgres.sql"),
    ),
];

#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provider {
    pub id: i64,
    pub owner_code: String,
    pub name: String,
    pub uscc: String,
    pub region: String,
    pub industry: String,
    /// `provider`, `reseller` or `line_provider`.
    pub kind: String,
    pub contact: String,
    /// False where an administrator accepted a code failing its check character.
    pub uscc_verified: bool,
}

impl Provider {
    /// The organisation as its resources carry it.
    pub fn owner(&self) -> crate::fleet::Owner {
        crate::fleet::Owner {
            id: self.id,
            code: self.owner_code.clone(),
            name: self.name.clone(),
            region: self.region.clone(),
            industry: self.industry.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct NewProvider {
    pub name: String,
    pub uscc: String,
    pub region: String,
    pub industry: String,
    pub kind: String,
    pub contact: String,
    pub uscc_verified: bool,
}

impl Default for NewProvider {
    fn default() -> Self {
        Self {
            name: String::new(),
            uscc: String::new(),
            region: String::new(),
            industry: String::new(),
            kind: "provider".into(),
            contact: String::new(),
            uscc_verified: true,
        }
    }
}

/// A host as its certificate finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostAuth {
    pub host_id: i64,
    pub provider_id: i64,
    pub revoked: bool,
}

/// One sample row, as stored.
#[derive(Debug, Clone)]
pub struct SampleRow {
    pub host_id: i64,
    pub seq: u64,
    pub collected_at_ms: u64,
    pub body: Vec<u8>,
}

/// What `GET /api/v1/hosts` lists from storage.
#[derive(Debug, Clone, serde::Serialize)]
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

#[derive(Debug, Clone, serde::Serialize)]
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

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl Store {
    /// Opens (creating if needed) the database at `url` and brings its schema
    /// up to date.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(StoreError::UnsupportedUrl(url.to_owned()));
        };
        let options = AnyPoolOptions::new();
        let pool = match backend {
            // One writer at a time anyway; a few readers for the API. Every
            // connection waits for a locked database instead of failing, and
            // FULL synchronous makes a commit survive power loss: the
            // aggregator acknowledges only what is durable.
            Backend::Sqlite => {
                options
                    .max_connections(4)
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            sqlx::raw_sql(
                                "PRAGMA busy_timeout = 10000; PRAGMA synchronous = FULL; \
                                 PRAGMA foreign_keys = ON;",
                            )
                            .execute(conn)
                            .await?;
                            Ok(())
                        })
                    })
                    .connect(url)
                    .await?
            }
            Backend::Postgres => options.max_connections(8).connect(url).await?,
        };
        let store = Self { pool, backend };
        store.migrate().await?;
        Ok(store)
    }

    /// `sqlite://DIR/suanli.db` for a data directory.
    pub fn sqlite_url(data_dir: &std::path::Path) -> String {
        format!("sqlite://{}?mode=rwc", data_dir.join("suanli.db").display())
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A transaction that will write. On SQLite it takes the write lock up
    /// front (`BEGIN IMMEDIATE`): a deferred transaction that reads and then
    /// writes fails with "database is locked" if another writer went first,
    /// and no busy timeout can save it.
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, StoreError> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        })
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        if self.backend == Backend::Sqlite {
            // WAL persists in the file; readers then never block the writer.
            sqlx::raw_sql("PRAGMA journal_mode = WAL")
                .execute(&self.pool)
                .await?;
        }
        let mut tx = self.begin_write().await?;
        if self.backend == Backend::Postgres {
            // Replicas starting together migrate one at a time.
            sqlx::raw_sql("SELECT pg_advisory_xact_lock(7443)")
                .execute(&mut *tx)
                .await?;
        }
        sqlx::raw_sql(
            "CREATE TABLE IF NOT EXISTS suanli_schema (version BIGINT PRIMARY KEY, applied_at_ms BIGINT NOT NULL)",
        )
        .execute(&mut *tx)
        .await?;
        let current: Option<i64> = sqlx::query("SELECT MAX(version) FROM suanli_schema")
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        for (version, sqlite, postgres) in MIGRATIONS {
            if current.is_some_and(|v| v >= *version) {
                continue;
            }
            let schema = match self.backend {
                Backend::Sqlite => *sqlite,
                Backend::Postgres => *postgres,
            };
            sqlx::raw_sql(schema).execute(&mut *tx).await?;
            sqlx::query("INSERT INTO suanli_schema (version, applied_at_ms) VALUES ($1, $2)")
                .bind(*version)
                .bind(int(now_ms()))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn create_provider(&self, new: &NewProvider) -> Result<Provider, StoreError> {
        let mut tx = self.begin_write().await?;
        let provider = Self::create_provider_in(&mut tx, new).await?;
        tx.commit().await?;
        Ok(provider)
    }

    async fn create_provider_in(
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        new: &NewProvider,
    ) -> Result<Provider, StoreError> {
        let exists = sqlx::query("SELECT owner_code FROM providers WHERE uscc = $1")
            .bind(&new.uscc)
            .fetch_optional(&mut **tx)
            .await?;
        if let Some(row) = exists {
            return Err(StoreError::DuplicateProvider(row.try_get(0)?));
        }
        // The owner code is derived from the row id, so insert first with a
        // code no real provider can have ('-' is outside the owner alphabet).
        let placeholder = format!("-{}", new.uscc);
        let id: i64 = sqlx::query(
            "INSERT INTO providers (owner_code, name, uscc, region, industry, created_at_ms, kind, contact, uscc_verified) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
        )
        .bind(&placeholder)
        .bind(&new.name)
        .bind(&new.uscc)
        .bind(&new.region)
        .bind(&new.industry)
        .bind(int(now_ms()))
        .bind(&new.kind)
        .bind(&new.contact)
        .bind(i64::from(new.uscc_verified))
        .fetch_one(&mut **tx)
        .await?
        .try_get(0)?;
        let owner_code = format!("P{id:05}");
        sqlx::query("UPDATE providers SET owner_code = $1 WHERE id = $2")
            .bind(&owner_code)
            .bind(id)
            .execute(&mut **tx)
            .await?;
        Ok(Provider {
            id,
            owner_code,
            name: new.name.clone(),
            uscc: new.uscc.clone(),
            region: new.region.clone(),
            industry: new.industry.clone(),
            kind: new.kind.clone(),
            contact: new.contact.clone(),
            uscc_verified: new.uscc_verified,
        })
    }

    /// A provider by owner code (`P00001`) or USCC.
    pub async fn provider(&self, reference: &str) -> Result<Provider, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            provider_columns!(),
            " FROM providers WHERE owner_code = $1 OR uscc = $1"
        ))
        .bind(reference.trim().to_ascii_uppercase())
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| StoreError::NoProvider(reference.to_owned()))?;
        provider_from_row(&row)
    }

    pub async fn provider_by_id(&self, id: i64) -> Result<Provider, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            provider_columns!(),
            " FROM providers WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| StoreError::NoProvider(id.to_string()))?;
        provider_from_row(&row)
    }

    /// A token; hosts enrolled with it are placed in `region` when given,
    /// else in the provider's registered region.
    pub async fn create_token(
        &self,
        provider_id: i64,
        secret_sha256: &str,
        expires_at_ms: u64,
        uses: u64,
        region: Option<&str>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO enrollment_tokens (provider_id, secret_sha256, expires_at_ms, uses_left, created_at_ms, region) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(provider_id)
        .bind(secret_sha256)
        .bind(int(expires_at_ms))
        .bind(int(uses))
        .bind(int(now_ms()))
        .bind(region)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Spends one use of a token; the provider it enrolls for.
    pub async fn redeem_token(
        &self,
        secret_sha256: &str,
        now_ms: u64,
    ) -> Result<Result<i64, TokenRefusal>, StoreError> {
        let mut tx = self.begin_write().await?;
        let Some(row) = sqlx::query(
            "SELECT id, provider_id, expires_at_ms, uses_left, revoked_at_ms FROM enrollment_tokens \
             WHERE secret_sha256 = $1",
        )
        .bind(secret_sha256)
        .fetch_optional(&mut *tx)
        .await?
        else {
            return Ok(Err(TokenRefusal::Unknown));
        };
        let (id, provider_id, expires, uses): (i64, i64, i64, i64) = (
            row.try_get(0)?,
            row.try_get(1)?,
            row.try_get(2)?,
            row.try_get(3)?,
        );
        if row.try_get::<Option<i64>, _>(4)?.is_some() {
            return Ok(Err(TokenRefusal::Revoked));
        }
        if expires <= int(now_ms) {
            return Ok(Err(TokenRefusal::Expired));
        }
        if uses <= 0 {
            return Ok(Err(TokenRefusal::UsedUp));
        }
        // Guarded decrement: two hosts racing for the last use cannot both win.
        let spent = sqlx::query(
            "UPDATE enrollment_tokens SET uses_left = uses_left - 1 WHERE id = $1 AND uses_left > 0",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if spent.rows_affected() != 1 {
            return Ok(Err(TokenRefusal::UsedUp));
        }
        tx.commit().await?;
        Ok(Ok(provider_id))
    }

    /// Records an enrolled host, or re-enrolls the same machine under its old
    /// id (its identifiers stay) with a new certificate.
    pub async fn enroll_host(
        &self,
        provider_id: i64,
        machine_key: &str,
        hostname: &str,
        cert_sha256: &str,
    ) -> Result<i64, StoreError> {
        let mut tx = self.begin_write().await?;
        let existing = sqlx::query("SELECT id FROM hosts WHERE machine_key = $1")
            .bind(machine_key)
            .fetch_optional(&mut *tx)
            .await?;
        let id = match existing {
            Some(row) => {
                let id: i64 = row.try_get(0)?;
                sqlx::query(
                    "UPDATE hosts SET provider_id = $1, hostname = $2, cert_sha256 = $3, \
                     revoked_at_ms = NULL, enrolled_at_ms = $4 WHERE id = $5",
                )
                .bind(provider_id)
                .bind(hostname)
                .bind(cert_sha256)
                .bind(int(now_ms()))
                .bind(id)
                .execute(&mut *tx)
                .await?;
                id
            }
            None => sqlx::query(
                "INSERT INTO hosts (provider_id, machine_key, hostname, cert_sha256, enrolled_at_ms) \
                 VALUES ($1, $2, $3, $4, $5) RETURNING id",
            )
            .bind(provider_id)
            .bind(machine_key)
            .bind(hostname)
            .bind(cert_sha256)
            .bind(int(now_ms()))
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?,
        };
        tx.commit().await?;
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
        let row = sqlx::query(
            "SELECT h.id FROM hosts h WHERE h.id = $1 OR h.hostname = $2 \
             OR h.id IN (SELECT host_id FROM resources WHERE identifier = $3)",
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

    pub async fn revoked_hosts(&self) -> Result<Vec<i64>, StoreError> {
        let rows = sqlx::query("SELECT id FROM hosts WHERE revoked_at_ms IS NOT NULL")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| r.try_get(0).map_err(Into::into))
            .collect()
    }

    /// Stores a batch in one transaction; a (host, seq) already present is
    /// left as it is. Returns once the commit is durable.
    pub async fn store_samples(&self, batch: &[SampleRow]) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        // Many rows per statement: each statement is a round trip to the
        // database (on SQLite, to its worker thread and back), which costs
        // far more than the row itself.
        for chunk in batch.chunks(ROWS_PER_INSERT) {
            let sql = insert_samples_sql(chunk.len());
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for row in chunk {
                query = query
                    .bind(row.host_id)
                    .bind(int(row.seq))
                    .bind(int(row.collected_at_ms))
                    .bind(row.body.as_slice());
            }
            query.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn stored_through(&self, host_id: i64) -> Result<Option<u64>, StoreError> {
        let max: Option<i64> = sqlx::query("SELECT MAX(seq) FROM samples WHERE host_id = $1")
            .bind(host_id)
            .fetch_one(&self.pool)
            .await?
            .try_get(0)?;
        Ok(max.map(|m| m as u64))
    }

    /// Every stored sequence number of a host, ascending (for checks and tests).
    pub async fn stored_seqs(&self, host_id: i64) -> Result<Vec<u64>, StoreError> {
        let rows = sqlx::query("SELECT seq FROM samples WHERE host_id = $1 ORDER BY seq")
            .bind(host_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok(r.try_get::<i64, _>(0)? as u64))
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
        if let Some(row) = sqlx::query("SELECT identifier FROM resources WHERE resource_key = $1")
            .bind(resource_key)
            .fetch_optional(&mut *tx)
            .await?
        {
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

    /// A page of hosts with their storage figures and resources: at most
    /// `limit` with an id above `after`, of one provider or of all.
    pub async fn list_hosts(
        &self,
        provider_id: Option<i64>,
        after: i64,
        limit: i64,
    ) -> Result<Vec<HostListing>, StoreError> {
        let rows = sqlx::query(
            "SELECT h.id, h.hostname, p.owner_code, h.enrolled_at_ms, h.revoked_at_ms, h.last_seen_ms, \
                    h.rtt_us, h.sent_packets, h.lost_packets, h.dropped_samples \
             FROM hosts h JOIN providers p ON p.id = h.provider_id \
             WHERE h.id > $1 AND ($2 < 0 OR h.provider_id = $2) ORDER BY h.id LIMIT $3",
        )
        .bind(after)
        .bind(provider_id.unwrap_or(-1))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let mut hosts = rows
            .iter()
            .map(host_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        let (Some(first), Some(last)) = (hosts.first(), hosts.last()) else {
            return Ok(hosts);
        };
        let (first, last) = (first.host_id, last.host_id);
        // Only the page's hosts: counting every stored sample of the node
        // per request would grow with the fleet and its history.
        let stored = sqlx::query(
            "SELECT host_id, COUNT(*), MIN(seq), MAX(seq) FROM samples \
             WHERE host_id BETWEEN $1 AND $2 GROUP BY host_id",
        )
        .bind(first)
        .bind(last)
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
        let resources = sqlx::query(
            "SELECT host_id, identifier, resource_type, resource_key FROM resources \
             WHERE host_id BETWEEN $1 AND $2 ORDER BY id",
        )
        .bind(first)
        .bind(last)
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

    /// Stored samples with an id above `after`, in id order, without their
    /// bodies: `(id, host, seq)`. How a replica follows the samples the
    /// others take in (and skips those it took in itself).
    pub async fn samples_after(
        &self,
        after: i64,
        limit: i64,
    ) -> Result<Vec<(i64, i64, u64)>, StoreError> {
        let rows =
            sqlx::query("SELECT id, host_id, seq FROM samples WHERE id > $1 ORDER BY id LIMIT $2")
                .bind(after)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get::<i64, _>(2)? as u64)))
            .collect()
    }

    /// The bodies of these samples: `(host, body)`, in id order.
    pub async fn sample_bodies(&self, ids: &[i64]) -> Result<Vec<(i64, Vec<u8>)>, StoreError> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(ROWS_PER_INSERT) {
            let placeholders: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let sql = format!(
                "SELECT host_id, body FROM samples WHERE id IN ({}) ORDER BY id",
                placeholders.join(",")
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for id in chunk {
                query = query.bind(*id);
            }
            for r in query.fetch_all(&self.pool).await? {
                out.push((r.try_get(0)?, r.try_get(1)?));
            }
        }
        Ok(out)
    }

    /// The highest sample id stored, 0 if none.
    pub async fn last_sample_id(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query("SELECT COALESCE(MAX(id), 0) FROM samples")
            .fetch_one(&self.pool)
            .await?
            .try_get(0)?)
    }

    /// Folds raw samples collected before `cutoff_ms` into one-minute
    /// rollups and deletes them, oldest first, at most `limit` per call.
    /// Returns how many raw samples went.
    pub async fn roll_up(&self, cutoff_ms: u64, limit: usize) -> Result<usize, StoreError> {
        let mut tx = self.begin_write().await?;
        let rows = sqlx::query(
            "SELECT id, host_id, collected_at_ms, body FROM samples ORDER BY id LIMIT $1",
        )
        .bind(limit as i64)
        .fetch_all(&mut *tx)
        .await?;
        // Rows are in arrival order, which is collection order but for late
        // arrivals; stop at the first young one, so the id range below holds
        // only old rows.
        let mut minutes: BTreeMap<(i64, u64), Vec<SequencedSample>> = BTreeMap::new();
        let mut ids = None;
        for row in &rows {
            let collected: i64 = row.try_get(2)?;
            if collected as u64 >= cutoff_ms {
                break;
            }
            let id: i64 = row.try_get(0)?;
            let host_id: i64 = row.try_get(1)?;
            let body: Vec<u8> = row.try_get(3)?;
            ids = Some(ids.map_or((id, id), |(first, _)| (first, id)));
            match SequencedSample::decode(&body) {
                Ok(sample) => minutes
                    .entry((host_id, history::minute_of(collected as u64)))
                    .or_default()
                    .push(sample),
                // Validated on the way in, so this is disk corruption: the
                // row is dropped and said so rather than blocking retention.
                Err(e) => {
                    tracing::warn!(host_id, id, error = %e, "undecodable stored sample dropped")
                }
            }
        }
        let Some((first_id, last_id)) = ids else {
            return Ok(0);
        };
        for ((host_id, minute), samples) in minutes {
            // Fold into what an earlier pass left for this minute, sample by
            // sample, so a resend already counted is skipped.
            let mut rollup = sqlx::query(
                "SELECT body FROM sample_rollups WHERE host_id = $1 AND minute_ms = $2",
            )
            .bind(host_id)
            .bind(int(minute))
            .fetch_optional(&mut *tx)
            .await?
            .map(|row| row.try_get::<Vec<u8>, _>(0))
            .transpose()?
            .and_then(|bytes| Rollup::from_bytes(&bytes).ok())
            .unwrap_or_default();
            for sample in &samples {
                rollup.add(sample);
            }
            sqlx::query(
                "INSERT INTO sample_rollups (host_id, minute_ms, samples, body) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (host_id, minute_ms) DO UPDATE SET samples = excluded.samples, body = excluded.body",
            )
            .bind(host_id)
            .bind(int(minute))
            .bind(int(rollup.samples))
            .bind(rollup.to_bytes())
            .execute(&mut *tx)
            .await?;
        }
        let deleted = sqlx::query("DELETE FROM samples WHERE id >= $1 AND id <= $2")
            .bind(first_id)
            .bind(last_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(deleted as usize)
    }

    /// Deletes rollups of minutes before `before_ms`; returns how many.
    pub async fn expire_rollups(&self, before_ms: u64) -> Result<u64, StoreError> {
        Ok(
            sqlx::query("DELETE FROM sample_rollups WHERE minute_ms < $1")
                .bind(int(before_ms))
                .execute(&self.pool)
                .await?
                .rows_affected(),
        )
    }

    /// A host's rollups from `from_ms` on, oldest first (for checks and the history API).
    pub async fn rollups(
        &self,
        host_id: i64,
        from_ms: u64,
    ) -> Result<Vec<(u64, Rollup)>, StoreError> {
        let rows = sqlx::query(
            "SELECT minute_ms, body FROM sample_rollups WHERE host_id = $1 AND minute_ms >= $2 ORDER BY minute_ms",
        )
        .bind(host_id)
        .bind(int(from_ms))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let minute: i64 = r.try_get(0)?;
                let body: Vec<u8> = r.try_get(1)?;
                Ok((minute as u64, Rollup::from_bytes(&body).unwrap_or_default()))
            })
            .collect()
    }
}

/// Rows per multi-row INSERT (4 parameters each, far below both databases' limits).
const ROWS_PER_INSERT: usize = 256;

/// `INSERT … VALUES ($1,$2,$3,$4), … ON CONFLICT DO NOTHING` for `rows` rows.
/// Only placeholders are generated here; values are always bound.
fn insert_samples_sql(rows: usize) -> String {
    let mut sql = String::from("INSERT INTO samples (host_id, seq, collected_at_ms, body) VALUES ");
    for i in 0..rows {
        let p = i * 4;
        if i > 0 {
            sql.push(',');
        }
        sql.push_str(&format!("(${}, ${}, ${}, ${})", p + 1, p + 2, p + 3, p + 4));
    }
    sql.push_str(" ON CONFLICT (host_id, seq) DO NOTHING");
    sql
}

fn provider_from_row(row: &AnyRow) -> Result<Provider, StoreError> {
    Ok(Provider {
        id: row.try_get(0)?,
        owner_code: row.try_get(1)?,
        name: row.try_get(2)?,
        uscc: row.try_get(3)?,
        region: row.try_get(4)?,
        industry: row.try_get(5)?,
        kind: row.try_get(6)?,
        contact: row.try_get(7)?,
        uscc_verified: row.try_get::<i64, _>(8)? != 0,
    })
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
