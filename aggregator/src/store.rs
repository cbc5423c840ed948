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
//!
//! One `Store`, its methods in a file per concept (`store/providers.rs`,
//! `hosts.rs`, `samples.rs`, `accounts.rs`, …), each with its row types and
//! their mapping from SQL rows. Rows are not the API's JSON: the API maps
//! them to its own response types.

use std::{
    collections::BTreeMap,
    time::{SystemTime, UNIX_EPOCH},
};

use sqlx::{
    AnyPool, Row,
    any::{AnyPoolOptions, AnyRow},
};

use suanli_protocol::stream::SequencedSample;

use crate::{
    history::{self, Rollup},
    i18n::Text,
};

/// The columns [`provider_from_row`] reads, in its order.
macro_rules! provider_columns {
    () => {
        "id, owner_code, name, uscc, region, industry, kind, contact, uscc_verified"
    };
}

mod accounts;
mod alerts;
mod audit;
mod hierarchy;
mod hosts;
mod latency;
mod lines;
mod market;
mod prices;
mod providers;
mod registrations;
mod reservations;
mod rollups;
mod samples;
mod selections;
mod tokens;
mod writer;

pub use accounts::*;
pub use alerts::*;
pub use audit::*;
pub use hierarchy::*;
pub use hosts::*;
pub use latency::*;
pub use lines::*;
pub use market::*;
pub use prices::*;
pub use providers::*;
pub use registrations::*;
pub use reservations::*;
pub use samples::*;
pub use selections::*;
pub use tokens::*;
pub use writer::SampleWriter;

/// `[retention]` of the config file: how long history is kept.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionSection {
    /// How long raw samples are kept before they fold into one-minute rollups (e.g. 24h).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw_retention: Option<String>,
    /// How long one-minute rollups are kept (e.g. 30d).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollup_retention: Option<String>,
}

/// `[store]` of the config file.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSection {
    /// postgres://… for a node with several aggregator replicas; SQLite in the data dir by default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
}

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
    NotFound(Text),
    #[error("{0}")]
    Conflict(Text),
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
    (
        9,
        include_str!("../migrations/0009-sqlite.sql"),
        include_str!("../migrations/0009-postgres.sql"),
    ),
    (
        10,
        include_str!("../migrations/0010-sqlite.sql"),
        include_str!("../migrations/0010-postgres.sql"),
    ),
    (
        11,
        include_str!("../migrations/0011-sqlite.sql"),
        include_str!("../migrations/0011-postgres.sql"),
    ),
    (
        12,
        include_str!("../migrations/0012-sqlite.sql"),
        include_str!("../migrations/0012-postgres.sql"),
    ),
    (
        13,
        include_str!("../migrations/0013-sqlite.sql"),
        include_str!("../migrations/0013-postgres.sql"),
    ),
    (
        14,
        include_str!("../migrations/0014-sqlite.sql"),
        include_str!("../migrations/0014-postgres.sql"),
    ),
    (
        15,
        include_str!("../migrations/0015-sqlite.sql"),
        include_str!("../migrations/0015-postgres.sql"),
    ),
    (
        16,
        include_str!("../migrations/0016-sqlite.sql"),
        include_str!("../migrations/0016-postgres.sql"),
    ),
    (
        17,
        include_str!("../migrations/0017-sqlite.sql"),
        include_str!("../migrations/0017-postgres.sql"),
    ),
    (
        18,
        include_str!("../migrations/0018-sqlite.sql"),
        include_str!("../migrations/0018-postgres.sql"),
    ),
];

/// A review's state (a registration's, a child node's) in the reader's
/// words; the English is the state as stored.
pub fn review_state(state: &str) -> Text {
    Text::key_or_plain(&format!("review_state.{state}"), state)
}

/// Ids written into a query's `IN (…)`: integers from this node's own
/// catalog or rows, so nothing a caller typed reaches the SQL.
fn id_list(ids: &[i64]) -> String {
    ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",")
}

#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

/// A storage failure is the node's, not the peer's: it may come back.
impl From<StoreError> for suanli_link::transport::Refusal {
    fn from(e: StoreError) -> Self {
        Self::new(suanli_link::transport::CloseCode::Internal, e.to_string())
    }
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
        format!(
            "sqlite://{}?mode=rwc",
            Self::sqlite_path(data_dir).display()
        )
    }

    /// The embedded database's file in a data directory.
    pub fn sqlite_path(data_dir: &std::path::Path) -> std::path::PathBuf {
        data_dir.join("suanli.db")
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
}
