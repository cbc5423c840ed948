//! Storage for the service center (算力互联网服务中心): accounts, sessions,
//! API keys, registrations under review, enrollment tokens, dedicated lines
//! and the append-only audit log. Secrets are stored only as SHA-256 hashes
//! (session and key secrets are 256-bit random, so a plain hash suffices);
//! passwords only as argon2 hashes made by the caller.

use sqlx::{Row, any::AnyRow};

use super::{NewProvider, Provider, Store, StoreError, int, now_ms};

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Account {
    pub id: i64,
    pub login: String,
    pub role: String,
    pub provider_id: Option<i64>,
    pub created_at_ms: i64,
}

#[derive(Debug, Clone)]
pub struct NewAccount {
    pub login: String,
    pub password_hash: String,
    pub role: String,
    pub provider_id: Option<i64>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ApiKeyListing {
    pub id: i64,
    pub name: String,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
    pub revoked: bool,
}

#[derive(Debug, Clone)]
pub struct NewRegistration {
    pub kind: String,
    pub name: String,
    pub uscc: String,
    pub uscc_verified: bool,
    pub region: String,
    pub industry: String,
    pub contact: String,
    pub account_id: i64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Registration {
    pub id: i64,
    pub kind: String,
    pub name: String,
    pub uscc: String,
    pub uscc_verified: bool,
    pub region: String,
    pub industry: String,
    pub contact: String,
    pub account: String,
    /// `pending`, `approved` or `rejected`.
    pub state: String,
    pub reason: Option<String>,
    pub reviewed_by: Option<String>,
    pub reviewed_at_ms: Option<i64>,
    /// The owner code assigned on approval.
    pub provider: Option<String>,
    pub created_at_ms: i64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct TokenListing {
    pub id: i64,
    pub provider: String,
    pub expires_at_ms: i64,
    pub uses_left: i64,
    pub created_at_ms: i64,
    pub created_by: String,
    pub revoked: bool,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Line {
    pub id: i64,
    pub provider: String,
    pub name: String,
    pub from_region: String,
    pub to_region: String,
    pub latency_us: i64,
    pub bandwidth_mbps: i64,
    pub price_per_mbps_month: Option<String>,
    pub state: String,
    pub created_at_ms: i64,
}

/// What may change of a line: `None` leaves it as it is.
#[derive(Debug, Clone, Default)]
pub struct LineChange {
    pub state: Option<String>,
    pub latency_us: Option<i64>,
    pub bandwidth_mbps: Option<i64>,
    pub price_per_mbps_month: Option<String>,
}

#[derive(Debug, Clone)]
pub struct NewLine {
    pub provider_id: i64,
    pub name: String,
    pub from_region: String,
    pub to_region: String,
    pub latency_us: i64,
    pub bandwidth_mbps: i64,
    pub price_per_mbps_month: Option<String>,
}

/// One entry of the audit log: who did what to what, from where.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AuditEntry {
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub detail: String,
    pub address: String,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct AuditRecord {
    pub id: i64,
    pub at_ms: i64,
    #[serde(flatten)]
    pub entry: AuditEntry,
}

/// One selection query, as recorded.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SelectionRecord {
    pub id: i64,
    pub at_ms: i64,
    pub actor: String,
    /// The demand as the user sent it (JSON).
    pub demand: serde_json::Value,
    pub matched_hosts: i64,
    pub candidates: i64,
    /// Identifiers of the first candidate's resources.
    pub chosen: serde_json::Value,
    pub elapsed_us: i64,
}

/// Latency observed from this node to one region in one minute.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RegionLatency {
    pub minute_ms: i64,
    pub from_region: String,
    pub to_region: String,
    pub hosts: i64,
    pub median_rtt_us: i64,
    pub min_rtt_us: i64,
    pub max_rtt_us: i64,
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

/// The columns [`registration_from_row`] reads (and the applicant's account id last).
macro_rules! registration_select {
    () => {
        "SELECT r.id, r.kind, r.name, r.uscc, r.uscc_verified, r.region, r.industry, r.contact, \
         a.login, r.state, r.reason, r.reviewed_by, r.reviewed_at_ms, p.owner_code, r.created_at_ms, \
         r.account_id FROM registrations r JOIN accounts a ON a.id = r.account_id \
         LEFT JOIN providers p ON p.id = r.provider_id"
    };
}

impl Store {
    pub async fn count_accounts(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query("SELECT COUNT(*) FROM accounts")
            .fetch_one(&self.pool)
            .await?
            .try_get(0)?)
    }

    pub async fn create_account(&self, new: &NewAccount) -> Result<Account, StoreError> {
        let mut tx = self.begin_write().await?;
        if sqlx::query("SELECT id FROM accounts WHERE login = $1")
            .bind(&new.login)
            .fetch_optional(&mut *tx)
            .await?
            .is_some()
        {
            return Err(StoreError::Conflict(format!(
                "the login {:?} is taken",
                new.login
            )));
        }
        let created = int(now_ms());
        let id: i64 = sqlx::query(
            "INSERT INTO accounts (login, password_hash, role, provider_id, created_at_ms) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(&new.login)
        .bind(&new.password_hash)
        .bind(&new.role)
        .bind(new.provider_id)
        .bind(created)
        .fetch_one(&mut *tx)
        .await?
        .try_get(0)?;
        tx.commit().await?;
        Ok(Account {
            id,
            login: new.login.clone(),
            role: new.role.clone(),
            provider_id: new.provider_id,
            created_at_ms: created,
        })
    }

    /// An account and its password hash, by login.
    pub async fn account_for_login(
        &self,
        login: &str,
    ) -> Result<Option<(Account, String)>, StoreError> {
        let row = sqlx::query(
            "SELECT id, login, role, provider_id, created_at_ms, password_hash FROM accounts WHERE login = $1",
        )
        .bind(login)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| Ok((account_from_row(&r)?, r.try_get(5)?)))
            .transpose()
    }

    pub async fn accounts(&self) -> Result<Vec<Account>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, login, role, provider_id, created_at_ms FROM accounts ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(account_from_row).collect()
    }

    pub async fn set_role(
        &self,
        login: &str,
        role: &str,
        provider_id: Option<i64>,
    ) -> Result<Account, StoreError> {
        let done = sqlx::query("UPDATE accounts SET role = $1, provider_id = $2 WHERE login = $3")
            .bind(role)
            .bind(provider_id)
            .bind(login)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("no account {login:?}")));
        }
        Ok(self
            .account_for_login(login)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("no account {login:?}")))?
            .0)
    }

    pub async fn create_session(
        &self,
        secret_sha256: &str,
        account_id: i64,
        csrf_token: &str,
        expires_at_ms: u64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sessions (secret_sha256, account_id, csrf_token, created_at_ms, expires_at_ms) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(secret_sha256)
        .bind(account_id)
        .bind(csrf_token)
        .bind(int(now_ms()))
        .bind(int(expires_at_ms))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The account of a live session, and the session's CSRF token.
    pub async fn session(
        &self,
        secret_sha256: &str,
        now_ms: u64,
    ) -> Result<Option<(Account, String)>, StoreError> {
        let row = sqlx::query(
            "SELECT a.id, a.login, a.role, a.provider_id, a.created_at_ms, s.csrf_token \
             FROM sessions s JOIN accounts a ON a.id = s.account_id \
             WHERE s.secret_sha256 = $1 AND s.expires_at_ms > $2",
        )
        .bind(secret_sha256)
        .bind(int(now_ms))
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| Ok((account_from_row(&r)?, r.try_get(5)?)))
            .transpose()
    }

    pub async fn delete_session(&self, secret_sha256: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM sessions WHERE secret_sha256 = $1")
            .bind(secret_sha256)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Drops expired sessions; returns how many.
    pub async fn expire_sessions(&self, now_ms: u64) -> Result<u64, StoreError> {
        Ok(
            sqlx::query("DELETE FROM sessions WHERE expires_at_ms <= $1")
                .bind(int(now_ms))
                .execute(&self.pool)
                .await?
                .rows_affected(),
        )
    }

    pub async fn create_api_key(
        &self,
        account_id: i64,
        name: &str,
        secret_sha256: &str,
        expires_at_ms: u64,
    ) -> Result<i64, StoreError> {
        Ok(sqlx::query(
            "INSERT INTO api_keys (account_id, name, secret_sha256, created_at_ms, expires_at_ms) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(account_id)
        .bind(name)
        .bind(secret_sha256)
        .bind(int(now_ms()))
        .bind(int(expires_at_ms))
        .fetch_one(&self.pool)
        .await?
        .try_get(0)?)
    }

    /// The account of a key that is neither expired nor revoked.
    pub async fn api_key_account(
        &self,
        secret_sha256: &str,
        now_ms: u64,
    ) -> Result<Option<Account>, StoreError> {
        let row = sqlx::query(
            "SELECT a.id, a.login, a.role, a.provider_id, a.created_at_ms \
             FROM api_keys k JOIN accounts a ON a.id = k.account_id \
             WHERE k.secret_sha256 = $1 AND k.expires_at_ms > $2 AND k.revoked_at_ms IS NULL",
        )
        .bind(secret_sha256)
        .bind(int(now_ms))
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| account_from_row(&r)).transpose()
    }

    pub async fn api_keys(&self, account_id: i64) -> Result<Vec<ApiKeyListing>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, name, created_at_ms, expires_at_ms, revoked_at_ms FROM api_keys \
             WHERE account_id = $1 ORDER BY id",
        )
        .bind(account_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ApiKeyListing {
                    id: r.try_get(0)?,
                    name: r.try_get(1)?,
                    created_at_ms: r.try_get(2)?,
                    expires_at_ms: r.try_get(3)?,
                    revoked: r.try_get::<Option<i64>, _>(4)?.is_some(),
                })
            })
            .collect()
    }

    /// Revokes one of an account's keys; false if it has no such key.
    pub async fn revoke_api_key(&self, account_id: i64, id: i64) -> Result<bool, StoreError> {
        Ok(sqlx::query(
            "UPDATE api_keys SET revoked_at_ms = $1 WHERE id = $2 AND account_id = $3 AND revoked_at_ms IS NULL",
        )
        .bind(int(now_ms()))
        .bind(id)
        .bind(account_id)
        .execute(&self.pool)
        .await?
        .rows_affected()
            == 1)
    }

    /// Files a registration; a credit code already registered or under
    /// review is refused.
    pub async fn create_registration(
        &self,
        new: &NewRegistration,
    ) -> Result<Registration, StoreError> {
        let mut tx = self.begin_write().await?;
        let taken = sqlx::query(
            "SELECT 1 FROM providers WHERE uscc = $1 UNION ALL \
             SELECT 1 FROM registrations WHERE uscc = $1 AND state = 'pending'",
        )
        .bind(&new.uscc)
        .fetch_optional(&mut *tx)
        .await?;
        if taken.is_some() {
            return Err(StoreError::Conflict(format!(
                "the credit code {} is already registered or under review",
                new.uscc
            )));
        }
        let id: i64 = sqlx::query(
            "INSERT INTO registrations (kind, name, uscc, uscc_verified, region, industry, contact, \
             account_id, state, created_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', $9) \
             RETURNING id",
        )
        .bind(&new.kind)
        .bind(&new.name)
        .bind(&new.uscc)
        .bind(i64::from(new.uscc_verified))
        .bind(&new.region)
        .bind(&new.industry)
        .bind(&new.contact)
        .bind(new.account_id)
        .bind(int(now_ms()))
        .fetch_one(&mut *tx)
        .await?
        .try_get(0)?;
        tx.commit().await?;
        self.registration(id).await
    }

    pub async fn registration(&self, id: i64) -> Result<Registration, StoreError> {
        let row = sqlx::query(concat!(registration_select!(), " WHERE r.id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("no registration {id}")))?;
        registration_from_row(&row)
    }

    /// Registrations, newest first; only one account's when `account_id` is set.
    pub async fn registrations(
        &self,
        account_id: Option<i64>,
    ) -> Result<Vec<Registration>, StoreError> {
        let rows = sqlx::query(concat!(
            registration_select!(),
            " WHERE ($1 < 0 OR r.account_id = $1) ORDER BY r.id DESC"
        ))
        .bind(account_id.unwrap_or(-1))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(registration_from_row).collect()
    }

    /// Approves (creating the provider and tying the applicant's account to
    /// it) or rejects a pending registration.
    pub async fn review_registration(
        &self,
        id: i64,
        approve: bool,
        reason: Option<&str>,
        reviewer: &str,
    ) -> Result<Registration, StoreError> {
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(concat!(registration_select!(), " WHERE r.id = $1"))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("no registration {id}")))?;
        let registration = registration_from_row(&row)?;
        if registration.state != "pending" {
            return Err(StoreError::Conflict(format!(
                "registration {id} was already {}",
                registration.state
            )));
        }
        let account_id: i64 = row.try_get(15)?;
        let provider_id = if approve {
            let provider = Self::create_provider_in(
                &mut tx,
                &NewProvider {
                    name: registration.name.clone(),
                    uscc: registration.uscc.clone(),
                    region: registration.region.clone(),
                    industry: registration.industry.clone(),
                    kind: registration.kind.clone(),
                    contact: registration.contact.clone(),
                    uscc_verified: registration.uscc_verified,
                },
            )
            .await?;
            sqlx::query("UPDATE accounts SET provider_id = $1 WHERE id = $2")
                .bind(provider.id)
                .bind(account_id)
                .execute(&mut *tx)
                .await?;
            Some(provider.id)
        } else {
            None
        };
        sqlx::query(
            "UPDATE registrations SET state = $1, reason = $2, reviewed_by = $3, reviewed_at_ms = $4, \
             provider_id = $5 WHERE id = $6",
        )
        .bind(if approve { "approved" } else { "rejected" })
        .bind(reason)
        .bind(reviewer)
        .bind(int(now_ms()))
        .bind(provider_id)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.registration(id).await
    }

    pub async fn providers(&self) -> Result<Vec<Provider>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            provider_columns!(),
            " FROM providers ORDER BY id"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(super::provider_from_row).collect()
    }

    /// Enrollment tokens, newest first; one provider's when set.
    pub async fn tokens(&self, provider_id: Option<i64>) -> Result<Vec<TokenListing>, StoreError> {
        let rows = sqlx::query(
            "SELECT t.id, p.owner_code, t.expires_at_ms, t.uses_left, t.created_at_ms, t.created_by, \
             t.revoked_at_ms FROM enrollment_tokens t JOIN providers p ON p.id = t.provider_id \
             WHERE ($1 < 0 OR t.provider_id = $1) ORDER BY t.id DESC",
        )
        .bind(provider_id.unwrap_or(-1))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(TokenListing {
                    id: r.try_get(0)?,
                    provider: r.try_get(1)?,
                    expires_at_ms: r.try_get(2)?,
                    uses_left: r.try_get(3)?,
                    created_at_ms: r.try_get(4)?,
                    created_by: r.try_get(5)?,
                    revoked: r.try_get::<Option<i64>, _>(6)?.is_some(),
                })
            })
            .collect()
    }

    /// The region a token places its hosts in, if it names one.
    pub async fn token_region(&self, secret_sha256: &str) -> Result<Option<String>, StoreError> {
        Ok(
            sqlx::query("SELECT region FROM enrollment_tokens WHERE secret_sha256 = $1")
                .bind(secret_sha256)
                .fetch_optional(&self.pool)
                .await?
                .map(|r| r.try_get::<Option<String>, _>(0))
                .transpose()?
                .flatten(),
        )
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

    /// The provider a token belongs to.
    pub async fn token_provider(&self, id: i64) -> Result<i64, StoreError> {
        Ok(
            sqlx::query("SELECT provider_id FROM enrollment_tokens WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?
                .ok_or_else(|| StoreError::NotFound(format!("no enrollment token {id}")))?
                .try_get(0)?,
        )
    }

    pub async fn revoke_token(&self, id: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE enrollment_tokens SET revoked_at_ms = $1 WHERE id = $2")
            .bind(int(now_ms()))
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Records who created the newest token (tokens are created by secret hash).
    pub async fn token_created_by(
        &self,
        secret_sha256: &str,
        actor: &str,
    ) -> Result<i64, StoreError> {
        sqlx::query("UPDATE enrollment_tokens SET created_by = $1 WHERE secret_sha256 = $2")
            .bind(actor)
            .bind(secret_sha256)
            .execute(&self.pool)
            .await?;
        Ok(
            sqlx::query("SELECT id FROM enrollment_tokens WHERE secret_sha256 = $1")
                .bind(secret_sha256)
                .fetch_one(&self.pool)
                .await?
                .try_get(0)?,
        )
    }

    pub async fn create_line(&self, new: &NewLine) -> Result<Line, StoreError> {
        let id: i64 = sqlx::query(
            "INSERT INTO lines (provider_id, name, from_region, to_region, latency_us, bandwidth_mbps, \
             price_per_mbps_month, state, created_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, 'open', $8) \
             RETURNING id",
        )
        .bind(new.provider_id)
        .bind(&new.name)
        .bind(&new.from_region)
        .bind(&new.to_region)
        .bind(new.latency_us)
        .bind(new.bandwidth_mbps)
        .bind(new.price_per_mbps_month.as_deref())
        .bind(int(now_ms()))
        .fetch_one(&self.pool)
        .await?
        .try_get(0)?;
        self.lines()
            .await?
            .into_iter()
            .find(|l| l.id == id)
            .ok_or_else(|| StoreError::NotFound(format!("line {id} vanished")))
    }

    /// The provider a line belongs to, if the line exists.
    pub async fn line_owner(&self, id: i64) -> Result<Option<i64>, StoreError> {
        Ok(sqlx::query("SELECT provider_id FROM lines WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| r.try_get(0))
            .transpose()?)
    }

    /// Changes what is given of a line; the rest stays.
    pub async fn update_line(&self, id: i64, change: &LineChange) -> Result<Line, StoreError> {
        sqlx::query(
            "UPDATE lines SET state = COALESCE($1, state), latency_us = COALESCE($2, latency_us), \
             bandwidth_mbps = COALESCE($3, bandwidth_mbps), \
             price_per_mbps_month = COALESCE($4, price_per_mbps_month) WHERE id = $5",
        )
        .bind(change.state.as_deref())
        .bind(change.latency_us)
        .bind(change.bandwidth_mbps)
        .bind(change.price_per_mbps_month.as_deref())
        .bind(id)
        .execute(&self.pool)
        .await?;
        self.lines()
            .await?
            .into_iter()
            .find(|l| l.id == id)
            .ok_or_else(|| StoreError::NotFound(format!("line {id}")))
    }

    pub async fn lines(&self) -> Result<Vec<Line>, StoreError> {
        let rows = sqlx::query(
            "SELECT l.id, p.owner_code, l.name, l.from_region, l.to_region, l.latency_us, \
             l.bandwidth_mbps, l.price_per_mbps_month, l.state, l.created_at_ms \
             FROM lines l JOIN providers p ON p.id = l.provider_id ORDER BY l.id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Line {
                    id: r.try_get(0)?,
                    provider: r.try_get(1)?,
                    name: r.try_get(2)?,
                    from_region: r.try_get(3)?,
                    to_region: r.try_get(4)?,
                    latency_us: r.try_get(5)?,
                    bandwidth_mbps: r.try_get(6)?,
                    price_per_mbps_month: r.try_get(7)?,
                    state: r.try_get(8)?,
                    created_at_ms: r.try_get(9)?,
                })
            })
            .collect()
    }

    pub async fn audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO audit_log (at_ms, actor, action, subject, detail, address) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(int(now_ms()))
        .bind(&entry.actor)
        .bind(&entry.action)
        .bind(&entry.subject)
        .bind(&entry.detail)
        .bind(&entry.address)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Audit entries newest first, before entry `before` when given.
    pub async fn audit_log(
        &self,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, at_ms, actor, action, subject, detail, address FROM audit_log \
             WHERE id < $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(before.unwrap_or(i64::MAX))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AuditRecord {
                    id: r.try_get(0)?,
                    at_ms: r.try_get(1)?,
                    entry: AuditEntry {
                        actor: r.try_get(2)?,
                        action: r.try_get(3)?,
                        subject: r.try_get(4)?,
                        detail: r.try_get(5)?,
                        address: r.try_get(6)?,
                    },
                })
            })
            .collect()
    }

    pub async fn record_selection(&self, r: &SelectionRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO selections (at_ms, actor, demand, matched_hosts, candidates, chosen, elapsed_us) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(r.at_ms)
        .bind(&r.actor)
        .bind(r.demand.to_string())
        .bind(r.matched_hosts)
        .bind(r.candidates)
        .bind(r.chosen.to_string())
        .bind(r.elapsed_us)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Recorded selections, newest first.
    pub async fn selections(
        &self,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<SelectionRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, at_ms, actor, demand, matched_hosts, candidates, chosen, elapsed_us \
             FROM selections WHERE id < $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(before.unwrap_or(i64::MAX))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let json = |i: usize| -> Result<serde_json::Value, StoreError> {
                    let text: String = r.try_get(i)?;
                    Ok(serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)))
                };
                Ok(SelectionRecord {
                    id: r.try_get(0)?,
                    at_ms: r.try_get(1)?,
                    actor: r.try_get(2)?,
                    demand: json(3)?,
                    matched_hosts: r.try_get(4)?,
                    candidates: r.try_get(5)?,
                    chosen: json(6)?,
                    elapsed_us: r.try_get(7)?,
                })
            })
            .collect()
    }

    /// Keeps a minute of observed region latencies (a minute recorded
    /// twice keeps the later figures).
    pub async fn record_region_latency(&self, rows: &[RegionLatency]) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        for r in rows {
            sqlx::query(
                "INSERT INTO region_latency (minute_ms, from_region, to_region, hosts, median_rtt_us, \
                 min_rtt_us, max_rtt_us) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT (to_region, minute_ms) DO UPDATE SET hosts = excluded.hosts, \
                 median_rtt_us = excluded.median_rtt_us, min_rtt_us = excluded.min_rtt_us, \
                 max_rtt_us = excluded.max_rtt_us",
            )
            .bind(r.minute_ms)
            .bind(&r.from_region)
            .bind(&r.to_region)
            .bind(r.hosts)
            .bind(r.median_rtt_us)
            .bind(r.min_rtt_us)
            .bind(r.max_rtt_us)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Observed region latencies from `from_ms` on, oldest first.
    pub async fn region_latency(&self, from_ms: u64) -> Result<Vec<RegionLatency>, StoreError> {
        let rows = sqlx::query(
            "SELECT minute_ms, from_region, to_region, hosts, median_rtt_us, min_rtt_us, max_rtt_us \
             FROM region_latency WHERE minute_ms >= $1 ORDER BY minute_ms, to_region",
        )
        .bind(int(from_ms))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(RegionLatency {
                    minute_ms: r.try_get(0)?,
                    from_region: r.try_get(1)?,
                    to_region: r.try_get(2)?,
                    hosts: r.try_get(3)?,
                    median_rtt_us: r.try_get(4)?,
                    min_rtt_us: r.try_get(5)?,
                    max_rtt_us: r.try_get(6)?,
                })
            })
            .collect()
    }

    /// Drops observed latencies of minutes before `before_ms`.
    pub async fn expire_region_latency(&self, before_ms: u64) -> Result<u64, StoreError> {
        Ok(
            sqlx::query("DELETE FROM region_latency WHERE minute_ms < $1")
                .bind(int(before_ms))
                .execute(&self.pool)
                .await?
                .rows_affected(),
        )
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

    /// A host's raw samples collected in `[from_ms, to_ms)`, in order.
    pub async fn samples_between(
        &self,
        host_id: i64,
        from_ms: u64,
        to_ms: u64,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        let rows = sqlx::query(
            "SELECT body FROM samples WHERE host_id = $1 AND collected_at_ms >= $2 \
             AND collected_at_ms < $3 ORDER BY seq",
        )
        .bind(host_id)
        .bind(int(from_ms))
        .bind(int(to_ms))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| r.try_get(0).map_err(Into::into))
            .collect()
    }
}

fn registration_from_row(r: &AnyRow) -> Result<Registration, StoreError> {
    Ok(Registration {
        id: r.try_get(0)?,
        kind: r.try_get(1)?,
        name: r.try_get(2)?,
        uscc: r.try_get(3)?,
        uscc_verified: r.try_get::<i64, _>(4)? != 0,
        region: r.try_get(5)?,
        industry: r.try_get(6)?,
        contact: r.try_get(7)?,
        account: r.try_get(8)?,
        state: r.try_get(9)?,
        reason: r.try_get(10)?,
        reviewed_by: r.try_get(11)?,
        reviewed_at_ms: r.try_get(12)?,
        provider: r.try_get(13)?,
        created_at_ms: r.try_get(14)?,
    })
}

fn account_from_row(r: &AnyRow) -> Result<Account, StoreError> {
    Ok(Account {
        id: r.try_get(0)?,
        login: r.try_get(1)?,
        role: r.try_get(2)?,
        provider_id: r.try_get(3)?,
        created_at_ms: r.try_get(4)?,
    })
}

/// A listed price as stored: the provider's own, per hour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceRow {
    pub provider_id: i64,
    pub resource: String,
    pub model: String,
    pub per_hour_cny_e4: i64,
}

impl PriceRow {
    /// The price as selection reads it; a row of a kind this build does
    /// not know is left out.
    pub fn price(&self) -> Option<crate::price::Price> {
        Some(crate::price::Price {
            resource: crate::price::Priced::parse(&self.resource)?,
            model: self.model.clone(),
            per_hour_cny_e4: self.per_hour_cny_e4,
        })
    }
}

impl Store {
    /// Prices, of one provider or of all, in a stable order.
    pub async fn prices(&self, provider_id: Option<i64>) -> Result<Vec<PriceRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT provider_id, resource, model, per_hour_cny_e4 FROM prices \
             WHERE ($1 < 0 OR provider_id = $1) ORDER BY provider_id, resource, model",
        )
        .bind(provider_id.unwrap_or(-1))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(PriceRow {
                    provider_id: r.try_get(0)?,
                    resource: r.try_get(1)?,
                    model: r.try_get(2)?,
                    per_hour_cny_e4: r.try_get(3)?,
                })
            })
            .collect()
    }

    /// Replaces a provider's whole price list at once.
    pub async fn set_prices(
        &self,
        provider_id: i64,
        prices: &[PriceRow],
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM prices WHERE provider_id = $1")
            .bind(provider_id)
            .execute(&mut *tx)
            .await?;
        for p in prices {
            sqlx::query(
                "INSERT INTO prices (provider_id, resource, model, per_hour_cny_e4, updated_at_ms) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(provider_id)
            .bind(&p.resource)
            .bind(&p.model)
            .bind(p.per_hour_cny_e4)
            .bind(int(now_ms()))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

impl Store {
    /// How long until none of `keys` is over `allowed` failures within
    /// `window_ms`; `None` if none is now.
    pub async fn login_wait(
        &self,
        keys: &[String],
        allowed: u64,
        window_ms: u64,
        now_ms: u64,
    ) -> Result<Option<u64>, StoreError> {
        let mut wait = None;
        for key in keys {
            let row = sqlx::query("SELECT failures, since_ms FROM login_failures WHERE key = $1")
                .bind(key)
                .fetch_optional(&self.pool)
                .await?;
            if let Some(row) = row {
                let failures: i64 = row.try_get(0)?;
                let since: i64 = row.try_get(1)?;
                let elapsed = now_ms.saturating_sub(since.max(0) as u64);
                if failures as u64 >= allowed && elapsed < window_ms {
                    wait = wait.max(Some(window_ms - elapsed));
                }
            }
        }
        Ok(wait)
    }

    /// Counts a failed sign-in against each key; a count older than the
    /// window starts again.
    pub async fn login_failed(
        &self,
        keys: &[String],
        window_ms: u64,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        let now = int(now_ms);
        let fresh_after = int(now_ms.saturating_sub(window_ms));
        for key in keys {
            sqlx::query(
                "INSERT INTO login_failures (key, failures, since_ms) VALUES ($1, 1, $2) \
                 ON CONFLICT (key) DO UPDATE SET \
                 failures = CASE WHEN login_failures.since_ms > $3 THEN login_failures.failures + 1 ELSE 1 END, \
                 since_ms = CASE WHEN login_failures.since_ms > $3 THEN login_failures.since_ms ELSE $2 END",
            )
            .bind(key)
            .bind(now)
            .bind(fresh_after)
            .execute(&self.pool)
            .await?;
        }
        // Keep the table to the keys still counting.
        sqlx::query("DELETE FROM login_failures WHERE since_ms <= $1")
            .bind(fresh_after)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn login_succeeded(&self, keys: &[String]) -> Result<(), StoreError> {
        for key in keys {
            sqlx::query("DELETE FROM login_failures WHERE key = $1")
                .bind(key)
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }
}
