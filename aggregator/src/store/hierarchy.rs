//! The hierarchy: this node's role and prefix, the join tokens and requests
//! of its child nodes, its own link to a parent, and the identifier library
//! (算力标识库) of its whole subtree.

use std::collections::HashMap;

use suanli_protocol::node::Filing;

use super::*;

/// A join token's row, for the redeeming request.
#[derive(Debug, Clone)]
pub struct NodeToken {
    pub id: i64,
    pub role: String,
    pub segment: String,
}

/// Why a node join token was not accepted; nothing was spent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NodeTokenRefusal {
    #[error("unknown node join token (a host's enrollment token does not join a node)")]
    Unknown,
    #[error("node join token expired")]
    Expired,
    #[error("node join token already used")]
    Used,
    #[error("node join token is for a {token} node, but this node is {requested}")]
    WrongRole { token: String, requested: String },
}

/// A child node's request, from filing to revocation.
#[derive(Debug, Clone)]
pub struct ChildNode {
    pub id: i64,
    pub role: String,
    pub segment: String,
    pub operator_name: String,
    pub operator_uscc: String,
    pub advertise: String,
    pub ca_sha256: String,
    pub csr: Vec<u8>,
    pub poll_secret_sha256: String,
    /// `pending`, `approved`, `rejected` or `revoked`.
    pub state: String,
    pub reason: Option<String>,
    pub prefix: Option<String>,
    pub certificate: Option<Vec<u8>>,
    pub requested_at_ms: i64,
    pub reviewed_by: Option<String>,
    pub reviewed_at_ms: Option<i64>,
    pub last_heartbeat_ms: Option<i64>,
    pub backlog: Option<i64>,
    pub dropped: Option<i64>,
    pub stored_through_seq: Option<i64>,
}

/// What a joining node asked for.
#[derive(Debug, Clone)]
pub struct NewChild<'a> {
    pub role: &'a str,
    pub operator_name: &'a str,
    pub operator_uscc: &'a str,
    pub advertise: &'a str,
    pub ca_sha256: &'a str,
    pub csr: &'a [u8],
    pub poll_secret_sha256: &'a str,
}

/// This node's link to its parent, as stored by `parent join`.
#[derive(Debug, Clone)]
pub struct ParentLink {
    pub address: String,
    pub ca_sha256: String,
    pub role: String,
    pub request_id: i64,
    pub poll_secret: String,
    /// `pending`, `approved`, `rejected` or `revoked`.
    pub state: String,
    pub reason: Option<String>,
    pub child_id: Option<i64>,
    pub prefix: Option<String>,
    pub parent_prefix: Option<String>,
    pub certificate: Option<Vec<u8>>,
    pub parent_ca: Option<Vec<u8>>,
    pub requested_at_ms: i64,
    pub decided_at_ms: Option<i64>,
}

/// One identifier in the library, with where it came from.
#[derive(Debug, Clone)]
pub struct LibraryEntry {
    pub filing: Filing,
    /// The child it was filed through; `None` when minted here.
    pub child_id: Option<i64>,
    pub child_prefix: Option<String>,
    pub child_state: Option<String>,
    pub filed_at_ms: i64,
}

/// Filters of a library search; all optional, combined with AND.
#[derive(Debug, Clone, Default)]
pub struct LibraryQuery {
    pub resource_type: Option<String>,
    /// Case-insensitive substring of the model name.
    pub model: Option<String>,
    /// GB/T 2260 prefix of the location.
    pub region: Option<String>,
    /// Owner code or USCC.
    pub provider: Option<String>,
    /// Prefix of the node holding it (a child's, or this node's own).
    pub node: Option<String>,
    /// Identifiers after this one.
    pub after: Option<String>,
    pub limit: i64,
}

/// Who runs the link to the parent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lease {
    /// This replica holds it; `taken` when it just took it over from
    /// another (or from nobody), whose spool it cannot see.
    Held {
        taken: bool,
    },
    HeldElsewhere {
        holder: String,
    },
}

/// An organisation known from its filed identifiers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FiledProvider {
    /// The prefix of the node it registered with.
    pub node: String,
    pub owner_code: String,
    pub name: String,
    pub uscc: String,
    pub identifiers: i64,
}

/// What a batch of filings did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Applied {
    /// New identifiers, or a higher revision of one held.
    pub stored: u64,
    /// A revision not above the one held: a resend, or out of date.
    pub ignored: u64,
}

/// Filings in one upsert statement on PostgreSQL: 18 parameters each, well
/// inside its 65,535.
const FILINGS_PER_UPSERT: usize = 500;
const FILING_COLUMNS: usize = 18;

/// `INSERT … ON CONFLICT` of `rows` filings: a row is replaced only by a
/// higher revision.
fn upsert_filings_sql(rows: usize) -> String {
    let mut sql = String::from(
        "INSERT INTO library (identifier, revision, resource_type, owner_code, provider_name, \
         provider_uscc, industry, region, spec, model, memory_bytes, logical_cpus, state, \
         superseded_by, changed_at_ms, child_id, filed_at_ms, origin) VALUES ",
    );
    for row in 0..rows {
        sql.push_str(if row == 0 { "(" } else { ", (" });
        for column in 0..FILING_COLUMNS {
            if column > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("${}", row * FILING_COLUMNS + column + 1));
        }
        sql.push(')');
    }
    sql.push_str(
        " ON CONFLICT (identifier) DO UPDATE SET revision = excluded.revision, \
         resource_type = excluded.resource_type, owner_code = excluded.owner_code, \
         provider_name = excluded.provider_name, provider_uscc = excluded.provider_uscc, \
         industry = excluded.industry, region = excluded.region, spec = excluded.spec, \
         model = excluded.model, memory_bytes = excluded.memory_bytes, \
         logical_cpus = excluded.logical_cpus, state = excluded.state, \
         superseded_by = excluded.superseded_by, changed_at_ms = excluded.changed_at_ms, \
         child_id = excluded.child_id, filed_at_ms = excluded.filed_at_ms, origin = excluded.origin \
         WHERE excluded.revision > library.revision",
    );
    sql
}

/// `SELECT` of the columns [`child_from_row`] reads, then `$rest`.
macro_rules! child_select {
    ($rest:literal) => {
        concat!(
            "SELECT id, role, segment, operator_name, operator_uscc, advertise, ca_sha256, csr, \
             poll_secret_sha256, state, reason, prefix, certificate, requested_at_ms, reviewed_by, \
             reviewed_at_ms, last_heartbeat_ms, backlog, dropped, stored_through_seq FROM child_nodes ",
            $rest
        )
    };
}

fn child_from_row(r: &AnyRow) -> Result<ChildNode, StoreError> {
    Ok(ChildNode {
        id: r.try_get(0)?,
        role: r.try_get(1)?,
        segment: r.try_get(2)?,
        operator_name: r.try_get(3)?,
        operator_uscc: r.try_get(4)?,
        advertise: r.try_get(5)?,
        ca_sha256: r.try_get(6)?,
        csr: r.try_get(7)?,
        poll_secret_sha256: r.try_get(8)?,
        state: r.try_get(9)?,
        reason: r.try_get(10)?,
        prefix: r.try_get(11)?,
        certificate: r.try_get(12)?,
        requested_at_ms: r.try_get(13)?,
        reviewed_by: r.try_get(14)?,
        reviewed_at_ms: r.try_get(15)?,
        last_heartbeat_ms: r.try_get(16)?,
        backlog: r.try_get(17)?,
        dropped: r.try_get(18)?,
        stored_through_seq: r.try_get(19)?,
    })
}

/// `SELECT` of the columns [`entry_from_row`] reads, then `$rest`.
macro_rules! library_select {
    ($rest:literal) => {
        concat!(
            "SELECT l.identifier, l.revision, l.resource_type, l.owner_code, l.provider_name, \
             l.provider_uscc, l.industry, l.region, l.spec, l.model, l.memory_bytes, l.logical_cpus, \
             l.state, l.superseded_by, l.changed_at_ms, l.child_id, c.prefix, c.state, l.filed_at_ms \
             FROM library l LEFT JOIN child_nodes c ON c.id = l.child_id ",
            $rest
        )
    };
}

fn entry_from_row(r: &AnyRow) -> Result<LibraryEntry, StoreError> {
    Ok(LibraryEntry {
        filing: Filing {
            identifier: r.try_get(0)?,
            revision: r.try_get::<i64, _>(1)? as u64,
            resource_type: r.try_get(2)?,
            owner_code: r.try_get(3)?,
            provider_name: r.try_get(4)?,
            provider_uscc: r.try_get(5)?,
            industry: r.try_get(6)?,
            region: r.try_get(7)?,
            spec: r.try_get(8)?,
            model: r.try_get(9)?,
            memory_bytes: r.try_get::<Option<i64>, _>(10)?.map(|v| v as u64),
            logical_cpus: r.try_get::<Option<i64>, _>(11)?.map(|v| v as u32),
            state: r.try_get(12)?,
            superseded_by: r.try_get::<Option<String>, _>(13)?.unwrap_or_default(),
            changed_at_unix_ms: r.try_get::<i64, _>(14)? as u64,
        },
        child_id: r.try_get(15)?,
        child_prefix: r.try_get(16)?,
        child_state: r.try_get(17)?,
        filed_at_ms: r.try_get(18)?,
    })
}

impl Store {
    /// Records this node's role and current prefix, for the administrative
    /// commands (which do not read the config file).
    pub async fn set_profile(&self, role: &str, prefix: &str) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO node_profile (id, role, prefix, updated_at_ms) VALUES (1, $1, $2, $3) \
             ON CONFLICT (id) DO UPDATE SET role = excluded.role, prefix = excluded.prefix, \
             updated_at_ms = excluded.updated_at_ms",
        )
        .bind(role)
        .bind(prefix)
        .bind(int(now_ms()))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// This node's role and prefix, as `serve` last recorded them.
    pub async fn profile(&self) -> Result<Option<(String, String)>, StoreError> {
        let row = sqlx::query("SELECT role, prefix FROM node_profile WHERE id = 1")
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).transpose()
    }

    /// Records the node's CA (its fingerprint) unless one is recorded;
    /// returns the one recorded, which the caller compares with its own.
    pub async fn record_node_ca(&self, fingerprint: &str) -> Result<String, StoreError> {
        sqlx::query(
            "INSERT INTO node_identity (id, ca_fingerprint, recorded_at_ms) VALUES (1, $1, $2) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(fingerprint)
        .bind(int(now_ms()))
        .execute(&self.pool)
        .await?;
        Ok(self.node_ca().await?.unwrap_or_default())
    }

    /// The fingerprint of the CA of the node this database belongs to,
    /// once a replica has started on it.
    pub async fn node_ca(&self) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT ca_fingerprint FROM node_identity WHERE id = 1")
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get(0)).transpose()?)
    }

    pub async fn create_node_token(
        &self,
        secret_sha256: &str,
        role: &str,
        segment: &str,
        expires_at_ms: u64,
        created_by: &str,
    ) -> Result<i64, StoreError> {
        Ok(sqlx::query(
            "INSERT INTO node_tokens (secret_sha256, role, segment, expires_at_ms, created_by, created_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(secret_sha256)
        .bind(role)
        .bind(segment)
        .bind(int(expires_at_ms))
        .bind(created_by)
        .bind(int(now_ms()))
        .fetch_one(&self.pool)
        .await?
        .try_get(0)?)
    }

    /// Spends a node join token on a request, in one transaction: the token
    /// is spent only if the request is stored. Returns the request's id and
    /// the token's segment.
    pub async fn file_join_request(
        &self,
        token_sha256: &str,
        now: u64,
        child: &NewChild<'_>,
    ) -> Result<Result<(i64, NodeToken), NodeTokenRefusal>, StoreError> {
        let mut tx = self.begin_write().await?;
        let Some(row) = sqlx::query(
            "SELECT id, role, segment, expires_at_ms, used_at_ms FROM node_tokens WHERE secret_sha256 = $1",
        )
        .bind(token_sha256)
        .fetch_optional(&mut *tx)
        .await?
        else {
            return Ok(Err(NodeTokenRefusal::Unknown));
        };
        let token = NodeToken {
            id: row.try_get(0)?,
            role: row.try_get(1)?,
            segment: row.try_get(2)?,
        };
        if row.try_get::<Option<i64>, _>(4)?.is_some() {
            return Ok(Err(NodeTokenRefusal::Used));
        }
        if row.try_get::<i64, _>(3)? <= int(now) {
            return Ok(Err(NodeTokenRefusal::Expired));
        }
        if token.role != child.role {
            return Ok(Err(NodeTokenRefusal::WrongRole {
                token: token.role,
                requested: child.role.to_owned(),
            }));
        }
        sqlx::query("UPDATE node_tokens SET used_at_ms = $1 WHERE id = $2")
            .bind(int(now))
            .bind(token.id)
            .execute(&mut *tx)
            .await?;
        let id: i64 = sqlx::query(
            "INSERT INTO child_nodes (token_id, role, segment, operator_name, operator_uscc, advertise, \
             ca_sha256, csr, poll_secret_sha256, state, requested_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'pending', $10) RETURNING id",
        )
        .bind(token.id)
        .bind(child.role)
        .bind(&token.segment)
        .bind(child.operator_name)
        .bind(child.operator_uscc)
        .bind(child.advertise)
        .bind(child.ca_sha256)
        .bind(child.csr)
        .bind(child.poll_secret_sha256)
        .bind(int(now))
        .fetch_one(&mut *tx)
        .await?
        .try_get(0)?;
        tx.commit().await?;
        Ok(Ok((id, token)))
    }

    /// Child nodes, newest first; only those in `state` when given.
    pub async fn children(&self, state: Option<&str>) -> Result<Vec<ChildNode>, StoreError> {
        let rows = sqlx::query(child_select!(
            "WHERE ($1 = '' OR state = $1) ORDER BY id DESC"
        ))
        .bind(state.unwrap_or(""))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(child_from_row).collect()
    }

    pub async fn child(&self, id: i64) -> Result<ChildNode, StoreError> {
        let row = sqlx::query(child_select!("WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| {
                StoreError::NotFound(Text::new("error.hierarchy.no_request").arg("id", id))
            })?;
        child_from_row(&row)
    }

    /// The approved or revoked child whose node certificate this is.
    pub async fn child_by_cert(&self, cert_sha256: &str) -> Result<Option<ChildNode>, StoreError> {
        let row = sqlx::query(child_select!("WHERE cert_sha256 = $1"))
            .bind(cert_sha256)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(child_from_row).transpose()
    }

    /// Approves a pending request: the certificate signed, the prefix
    /// assigned. A prefix another approved child holds is a conflict.
    pub async fn approve_child(
        &self,
        id: i64,
        prefix: &str,
        certificate: &[u8],
        cert_sha256: &str,
        reviewer: &str,
    ) -> Result<(), StoreError> {
        let done = sqlx::query(
            "UPDATE child_nodes SET state = 'approved', prefix = $1, certificate = $2, cert_sha256 = $3, \
             reviewed_by = $4, reviewed_at_ms = $5 WHERE id = $6 AND state = 'pending'",
        )
        .bind(prefix)
        .bind(certificate)
        .bind(cert_sha256)
        .bind(reviewer)
        .bind(int(now_ms()))
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(|e| match e {
            sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::Conflict(
                Text::new("error.hierarchy.prefix_taken").arg("prefix", prefix),
            ),
            e => e.into(),
        })?;
        if done.rows_affected() == 0 {
            return Err(self.not_pending(id).await);
        }
        Ok(())
    }

    async fn not_pending(&self, id: i64) -> StoreError {
        match self.child(id).await {
            Ok(c) => StoreError::Conflict(
                Text::new("error.nodes.already")
                    .arg("id", id)
                    .arg_text("state", review_state(&c.state)),
            ),
            Err(e) => e,
        }
    }

    pub async fn reject_child(
        &self,
        id: i64,
        reason: &str,
        reviewer: &str,
    ) -> Result<(), StoreError> {
        let done = sqlx::query(
            "UPDATE child_nodes SET state = 'rejected', reason = $1, reviewed_by = $2, reviewed_at_ms = $3 \
             WHERE id = $4 AND state = 'pending'",
        )
        .bind(reason)
        .bind(reviewer)
        .bind(int(now_ms()))
        .bind(id)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(self.not_pending(id).await);
        }
        Ok(())
    }

    /// Revokes an approved child: its certificate is refused from now on
    /// and its identifiers are no longer current.
    pub async fn revoke_child(
        &self,
        id: i64,
        reason: &str,
        reviewer: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        let now = int(now_ms());
        let done = sqlx::query(
            "UPDATE child_nodes SET state = 'revoked', reason = $1, reviewed_by = $2, reviewed_at_ms = $3 \
             WHERE id = $4 AND state = 'approved'",
        )
        .bind(reason)
        .bind(reviewer)
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            drop(tx);
            return Err(match self.child(id).await {
                Ok(c) => StoreError::Conflict(
                    Text::new("error.hierarchy.not_approved")
                        .arg("id", id)
                        .arg_text("state", review_state(&c.state)),
                ),
                Err(e) => e,
            });
        }
        // Its identifiers are no longer current, here and, as this node
        // files the change, at every ancestor.
        sqlx::query(
            "UPDATE library SET state = 'revoked', revision = revision + 1, changed_at_ms = $1 \
             WHERE child_id = $2 AND state = 'active'",
        )
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn child_heartbeat(
        &self,
        id: i64,
        at_ms: u64,
        backlog: u64,
        dropped: u64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE child_nodes SET last_heartbeat_ms = $1, backlog = $2, dropped = $3 WHERE id = $4",
        )
        .bind(int(at_ms))
        .bind(int(backlog))
        .bind(int(dropped))
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The child's state, re-read each second by its link so that a
    /// revocation made anywhere closes it.
    pub async fn child_state(&self, id: i64) -> Result<String, StoreError> {
        Ok(sqlx::query("SELECT state FROM child_nodes WHERE id = $1")
            .bind(id)
            .fetch_one(&self.pool)
            .await?
            .try_get(0)?)
    }

    /// Stores a batch a child filed, and how far its records are stored, in
    /// one transaction: each identifier at its highest revision.
    pub async fn apply_filings(
        &self,
        child_id: Option<i64>,
        filings: &[Filing],
        through_seq: Option<u64>,
    ) -> Result<Applied, StoreError> {
        // One row per identifier in a statement (an upsert may not touch a
        // row twice): the highest revision of each, in the order they came
        // (a child files in identifier order, which the index likes).
        let mut at: HashMap<&str, usize> = HashMap::new();
        let mut unique: Vec<&Filing> = Vec::with_capacity(filings.len());
        for f in filings {
            match at.get(f.identifier.as_str()) {
                Some(&i) if f.revision > unique[i].revision => unique[i] = f,
                Some(_) => {}
                None => {
                    at.insert(&f.identifier, unique.len());
                    unique.push(f);
                }
            }
        }
        let mut tx = self.begin_write().await?;
        let now = int(now_ms());
        let mut stored = 0;
        // On PostgreSQL each statement is a network round trip, so many
        // rows go in one (8,100 → 25,700 filings/s measured); SQLite's
        // multi-row upsert ran 6 times slower than a row at a time
        // (3,900 vs 22,900/s, `suanli-filebench`), so it gets one row each.
        let per_statement = match self.backend {
            Backend::Sqlite => 1,
            Backend::Postgres => FILINGS_PER_UPSERT,
        };
        for chunk in unique.chunks(per_statement) {
            let mut query = sqlx::query(sqlx::AssertSqlSafe(upsert_filings_sql(chunk.len())));
            for f in chunk {
                query = query
                    .bind(f.identifier.as_str())
                    .bind(int(f.revision))
                    .bind(f.resource_type.as_str())
                    .bind(f.owner_code.as_str())
                    .bind(f.provider_name.as_str())
                    .bind(f.provider_uscc.as_str())
                    .bind(f.industry.as_str())
                    .bind(f.region.as_str())
                    .bind(f.spec.as_str())
                    .bind(f.model.as_deref())
                    .bind(f.memory_bytes.map(int))
                    .bind(f.logical_cpus.map(i64::from))
                    .bind(f.state.as_str())
                    .bind((!f.superseded_by.is_empty()).then_some(f.superseded_by.as_str()))
                    .bind(int(f.changed_at_unix_ms))
                    .bind(child_id)
                    .bind(now)
                    .bind(f.identifier.split('_').next().unwrap_or_default());
            }
            stored += query.execute(&mut *tx).await?.rows_affected();
        }
        let applied = Applied {
            stored,
            ignored: filings.len() as u64 - stored,
        };
        if let (Some(child), Some(seq)) = (child_id, through_seq) {
            sqlx::query(
                "UPDATE child_nodes SET stored_through_seq = $1 WHERE id = $2 \
                 AND (stored_through_seq IS NULL OR stored_through_seq < $1)",
            )
            .bind(int(seq))
            .bind(child)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(applied)
    }

    /// The library's own identifiers (minted here), for reconciling them
    /// with the catalog.
    pub async fn own_filings(&self) -> Result<Vec<Filing>, StoreError> {
        let rows = sqlx::query(library_select!("WHERE l.child_id IS NULL"))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| entry_from_row(r).map(|e| e.filing))
            .collect()
    }

    /// Rows changed since they were last spooled towards the parent, at
    /// most `limit`.
    pub async fn unspooled(&self, limit: i64) -> Result<Vec<Filing>, StoreError> {
        let rows = sqlx::query(library_select!(
            "WHERE l.revision > l.spooled_revision ORDER BY l.identifier LIMIT $1"
        ))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| entry_from_row(r).map(|e| e.filing))
            .collect()
    }

    /// Marks these revisions spooled (a newer revision stays unspooled).
    pub async fn mark_spooled(&self, filed: &[(String, u64)]) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        for (identifier, revision) in filed {
            sqlx::query(
                "UPDATE library SET spooled_revision = $1 WHERE identifier = $2 AND spooled_revision < $1",
            )
            .bind(int(*revision))
            .bind(identifier)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn library_entry(
        &self,
        identifier: &str,
    ) -> Result<Option<LibraryEntry>, StoreError> {
        let row = sqlx::query(library_select!("WHERE l.identifier = $1"))
            .bind(identifier)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(entry_from_row).transpose()
    }

    /// A page of the library in identifier order.
    pub async fn search_library(&self, q: &LibraryQuery) -> Result<Vec<LibraryEntry>, StoreError> {
        let like_model = q
            .model
            .as_deref()
            .map(|m| format!("%{}%", m.to_lowercase()))
            .unwrap_or_default();
        let region = q
            .region
            .as_deref()
            .map(|r| format!("{r}%"))
            .unwrap_or_default();
        let node = q.node.clone().unwrap_or_default();
        let rows = sqlx::query(library_select!(
            "WHERE l.identifier > $1 AND ($2 = '' OR l.resource_type = $2) \
             AND ($3 = '' OR LOWER(COALESCE(l.model, '')) LIKE $3) \
             AND ($4 = '' OR l.region LIKE $4) \
             AND ($5 = '' OR l.owner_code = $5 OR l.provider_uscc = $5) \
             AND ($6 = '' OR COALESCE(c.prefix, $7) = $6) \
             ORDER BY l.identifier LIMIT $8"
        ))
        .bind(q.after.clone().unwrap_or_default())
        .bind(q.resource_type.clone().unwrap_or_default())
        .bind(like_model)
        .bind(region)
        .bind(q.provider.clone().unwrap_or_default())
        .bind(&node)
        .bind(self.profile().await?.map(|(_, p)| p).unwrap_or_default())
        .bind(q.limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(entry_from_row).collect()
    }

    /// Identifiers in the library by holding child (`None`: this node's own).
    pub async fn library_counts(&self) -> Result<Vec<(Option<i64>, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT child_id, COUNT(*) FROM library GROUP BY child_id ORDER BY child_id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    /// The organisations whose identifiers descendants filed, by the node
    /// that registered them (an owner code is that node's): the minting
    /// node's prefix, owner code, name, USCC and how many identifiers.
    pub async fn filed_providers(&self) -> Result<Vec<FiledProvider>, StoreError> {
        let rows = sqlx::query(
            "SELECT origin, owner_code, provider_name, provider_uscc, COUNT(*) FROM library \
             WHERE child_id IS NOT NULL GROUP BY origin, owner_code, provider_name, provider_uscc \
             ORDER BY origin, owner_code",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(FiledProvider {
                    node: r.try_get(0)?,
                    owner_code: r.try_get(1)?,
                    name: r.try_get(2)?,
                    uscc: r.try_get(3)?,
                    identifiers: r.try_get(4)?,
                })
            })
            .collect()
    }

    /// Identifiers not yet spooled towards the parent.
    pub async fn unspooled_count(&self) -> Result<i64, StoreError> {
        Ok(
            sqlx::query("SELECT COUNT(*) FROM library WHERE revision > spooled_revision")
                .fetch_one(&self.pool)
                .await?
                .try_get(0)?,
        )
    }

    /// USCCs filed through more than one child (or here and through a
    /// child): the same organisation registered twice in the subtree, for
    /// staff to look at. Each with the holding nodes' prefixes.
    pub async fn duplicate_usccs(&self) -> Result<Vec<(String, Vec<String>)>, StoreError> {
        let rows = sqlx::query(
            "SELECT DISTINCT l.provider_uscc, COALESCE(c.prefix, '') FROM library l \
             LEFT JOIN child_nodes c ON c.id = l.child_id WHERE l.provider_uscc IN ( \
             SELECT provider_uscc FROM library WHERE provider_uscc <> '' GROUP BY provider_uscc \
             HAVING COUNT(DISTINCT COALESCE(child_id, 0)) > 1) ORDER BY 1, 2",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut out: Vec<(String, Vec<String>)> = Vec::new();
        for r in &rows {
            let uscc: String = r.try_get(0)?;
            let prefix: String = r.try_get(1)?;
            match out.last_mut() {
                Some((u, prefixes)) if *u == uscc => prefixes.push(prefix),
                _ => out.push((uscc, vec![prefix])),
            }
        }
        Ok(out)
    }

    /// Takes or renews the lease on the parent link for `ttl_ms`. A replica
    /// that takes it over refiles the whole library: what the previous
    /// holder had spooled but not sent is in a spool this one cannot read
    /// (the parent ignores revisions it holds, so nothing is stored twice).
    pub async fn take_parent_lease(
        &self,
        holder: &str,
        now: u64,
        ttl_ms: u64,
    ) -> Result<Lease, StoreError> {
        let mut tx = self.begin_write().await?;
        let current = sqlx::query("SELECT holder, expires_at_ms FROM parent_lease WHERE id = 1")
            .fetch_optional(&mut *tx)
            .await?
            .map(|r| Ok::<_, StoreError>((r.try_get::<String, _>(0)?, r.try_get::<i64, _>(1)?)))
            .transpose()?;
        let taken = match &current {
            Some((h, _)) if h == holder => false,
            Some((h, expires)) if *expires > int(now) => {
                return Ok(Lease::HeldElsewhere { holder: h.clone() });
            }
            _ => true,
        };
        sqlx::query(
            "INSERT INTO parent_lease (id, holder, expires_at_ms) VALUES (1, $1, $2) \
             ON CONFLICT (id) DO UPDATE SET holder = excluded.holder, expires_at_ms = excluded.expires_at_ms",
        )
        .bind(holder)
        .bind(int(now.saturating_add(ttl_ms)))
        .execute(&mut *tx)
        .await?;
        if taken {
            // Own superseded identifiers are never filed (outside the prefix).
            sqlx::query(
                "UPDATE library SET spooled_revision = 0 \
                 WHERE NOT (child_id IS NULL AND state = 'superseded')",
            )
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(Lease::Held { taken })
    }

    /// Stores `parent join`'s request: one parent per node.
    pub async fn save_parent_request(&self, link: &ParentLink) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        if let Some(row) = sqlx::query("SELECT state FROM parent_link WHERE id = 1")
            .fetch_optional(&mut *tx)
            .await?
        {
            let state: String = row.try_get(0)?;
            if state == "pending" || state == "approved" {
                return Err(StoreError::Conflict(
                    Text::new("error.hierarchy.parent_link").arg("state", state),
                ));
            }
            sqlx::query("DELETE FROM parent_link WHERE id = 1")
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query(
            "INSERT INTO parent_link (id, address, ca_sha256, role, request_id, poll_secret, state, \
             requested_at_ms) VALUES (1, $1, $2, $3, $4, $5, 'pending', $6)",
        )
        .bind(&link.address)
        .bind(&link.ca_sha256)
        .bind(&link.role)
        .bind(link.request_id)
        .bind(&link.poll_secret)
        .bind(link.requested_at_ms)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn parent_link(&self) -> Result<Option<ParentLink>, StoreError> {
        let row = sqlx::query(
            "SELECT address, ca_sha256, role, request_id, poll_secret, state, reason, child_id, prefix, \
             parent_prefix, certificate, parent_ca, requested_at_ms, decided_at_ms FROM parent_link WHERE id = 1",
        )
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(ParentLink {
                address: r.try_get(0)?,
                ca_sha256: r.try_get(1)?,
                role: r.try_get(2)?,
                request_id: r.try_get(3)?,
                poll_secret: r.try_get(4)?,
                state: r.try_get(5)?,
                reason: r.try_get(6)?,
                child_id: r.try_get(7)?,
                prefix: r.try_get(8)?,
                parent_prefix: r.try_get(9)?,
                certificate: r.try_get(10)?,
                parent_ca: r.try_get(11)?,
                requested_at_ms: r.try_get(12)?,
                decided_at_ms: r.try_get(13)?,
            })
        })
        .transpose()
    }

    /// The parent refused or revoked this node.
    pub async fn parent_refused(&self, state: &str, reason: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE parent_link SET state = $1, reason = $2, decided_at_ms = $3 WHERE id = 1",
        )
        .bind(state)
        .bind(reason)
        .bind(int(now_ms()))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The parent approved this node: keeps what it sent and reissues every
    /// identifier minted here under the assigned prefix, in one transaction.
    /// Each old identifier stays in the library, superseded by its new one
    /// (so it still resolves), and is never filed: it is outside the prefix.
    pub async fn parent_approved(
        &self,
        child_id: u64,
        prefix: &str,
        parent_prefix: &str,
        certificate: &[u8],
        parent_ca: &[u8],
        reissue: impl Fn(&str) -> Option<String>,
    ) -> Result<u64, StoreError> {
        let mut tx = self.begin_write().await?;
        let now = int(now_ms());
        sqlx::query(
            "UPDATE parent_link SET state = 'approved', child_id = $1, prefix = $2, parent_prefix = $3, \
             certificate = $4, parent_ca = $5, decided_at_ms = $6, reason = NULL WHERE id = 1",
        )
        .bind(int(child_id))
        .bind(prefix)
        .bind(parent_prefix)
        .bind(certificate)
        .bind(parent_ca)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let rows = sqlx::query("SELECT id, identifier FROM resources ORDER BY id")
            .fetch_all(&mut *tx)
            .await?;
        let mut reissued = 0;
        for row in &rows {
            let id: i64 = row.try_get(0)?;
            let old: String = row.try_get(1)?;
            let Some(new) = reissue(&old).filter(|n| *n != old) else {
                continue;
            };
            sqlx::query("UPDATE resources SET identifier = $1 WHERE id = $2")
                .bind(&new)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "UPDATE library SET state = 'superseded', superseded_by = $1, revision = revision + 1, \
                 spooled_revision = revision + 1, changed_at_ms = $2 WHERE identifier = $3",
            )
            .bind(&new)
            .bind(now)
            .bind(&old)
            .execute(&mut *tx)
            .await?;
            reissued += 1;
        }
        sqlx::query("UPDATE node_profile SET prefix = $1, updated_at_ms = $2 WHERE id = 1")
            .bind(prefix)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(reissued)
    }
}
