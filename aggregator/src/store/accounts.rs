//! Accounts, sessions, API keys and failed sign-ins. Session and key
//! secrets are stored only as SHA-256 hashes (they are 256-bit random, so a
//! plain hash suffices); passwords only as argon2 hashes made by the caller.
//! Failed sign-ins are counted here, so every replica shares one allowance.

use super::*;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: i64,
    pub login: String,
    pub role: String,
    pub provider_id: Option<i64>,
    pub created_at_ms: i64,
    /// Staff disabled it: it cannot sign in, and its sessions and keys do
    /// not work.
    pub disabled: bool,
    /// Its password was generated: a new one comes first.
    pub must_change_password: bool,
}

#[derive(Debug, Clone)]
pub struct NewAccount {
    pub login: String,
    pub password_hash: String,
    pub role: String,
    pub provider_id: Option<i64>,
    pub must_change_password: bool,
}

/// An account's columns, in `account_from_row`'s order, from `accounts a`.
macro_rules! account_columns {
    () => {
        "a.id, a.login, a.role, a.provider_id, a.created_at_ms, a.disabled_at_ms, a.must_change_password"
    };
}
/// How many columns `account_columns!` makes.
const ACCOUNT_COLUMNS: usize = 7;

#[derive(Debug, Clone)]
pub struct ApiKeyListing {
    pub id: i64,
    pub name: String,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
    pub revoked: bool,
}

fn account_from_row(r: &AnyRow) -> Result<Account, StoreError> {
    Ok(Account {
        id: r.try_get(0)?,
        login: r.try_get(1)?,
        role: r.try_get(2)?,
        provider_id: r.try_get(3)?,
        created_at_ms: r.try_get(4)?,
        disabled: r.try_get::<Option<i64>, _>(5)?.is_some(),
        must_change_password: r.try_get::<i64, _>(6)? != 0,
    })
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
            return Err(StoreError::Conflict(
                Text::new("error.store.login_taken").arg("login", &new.login),
            ));
        }
        let created = int(now_ms());
        let id: i64 = sqlx::query(
            "INSERT INTO accounts (login, password_hash, role, provider_id, created_at_ms, \
             must_change_password) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(&new.login)
        .bind(&new.password_hash)
        .bind(&new.role)
        .bind(new.provider_id)
        .bind(created)
        .bind(i64::from(new.must_change_password))
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
            disabled: false,
            must_change_password: new.must_change_password,
        })
    }

    /// An account and its password hash, by login.
    pub async fn account_for_login(
        &self,
        login: &str,
    ) -> Result<Option<(Account, String)>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            account_columns!(),
            ", a.password_hash FROM accounts a WHERE a.login = $1"
        ))
        .bind(login)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| Ok((account_from_row(&r)?, r.try_get(ACCOUNT_COLUMNS)?)))
            .transpose()
    }

    pub async fn accounts(&self) -> Result<Vec<Account>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            account_columns!(),
            " FROM accounts a ORDER BY a.id"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(account_from_row).collect()
    }

    /// Holds the admins' rows until `tx` ends: on PostgreSQL two changes
    /// that each leave one admin would otherwise both count two. (SQLite's
    /// write transaction already excludes every other writer.)
    async fn lock_admins(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    ) -> Result<(), StoreError> {
        if self.backend() == Backend::Postgres {
            sqlx::query("SELECT id FROM accounts WHERE role = 'admin' FOR UPDATE")
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }

    /// Sets an account's own new password; its other sessions end.
    pub async fn set_password(
        &self,
        account_id: i64,
        password_hash: &str,
        keep_session: Option<&str>,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "UPDATE accounts SET password_hash = $1, must_change_password = 0 WHERE id = $2",
        )
        .bind(password_hash)
        .bind(account_id)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM sessions WHERE account_id = $1 AND secret_sha256 <> $2")
            .bind(account_id)
            .bind(keep_session.unwrap_or_default())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Disables an account (its sessions end) or enables it again. The
    /// node never loses its last enabled admin.
    pub async fn set_disabled(
        &self,
        login: &str,
        disabled: bool,
        now_ms: u64,
    ) -> Result<Account, StoreError> {
        let mut tx = self.begin_write().await?;
        self.lock_admins(&mut tx).await?;
        let done = if disabled {
            sqlx::query(
                "UPDATE accounts SET disabled_at_ms = $1 WHERE login = $2 AND disabled_at_ms IS NULL \
                 AND (role <> 'admin' OR (SELECT COUNT(*) FROM accounts \
                      WHERE role = 'admin' AND disabled_at_ms IS NULL) > 1)",
            )
            .bind(int(now_ms))
            .bind(login)
            .execute(&mut *tx)
            .await?
            .rows_affected()
        } else {
            sqlx::query("UPDATE accounts SET disabled_at_ms = NULL WHERE login = $1")
                .bind(login)
                .execute(&mut *tx)
                .await?
                .rows_affected()
        };
        if disabled && done > 0 {
            sqlx::query(
                "DELETE FROM sessions WHERE account_id = (SELECT id FROM accounts WHERE login = $1)",
            )
            .bind(login)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        let account = self
            .account_for_login(login)
            .await?
            .ok_or_else(|| {
                StoreError::NotFound(Text::new("error.store.no_account").arg("login", login))
            })?
            .0;
        if done == 0 && disabled && !account.disabled {
            return Err(StoreError::Conflict(
                Text::new("error.store.last_enabled_admin").arg("login", login),
            ));
        }
        Ok(account)
    }

    pub async fn set_role(
        &self,
        login: &str,
        role: &str,
        provider_id: Option<i64>,
    ) -> Result<Account, StoreError> {
        // The node never loses its last enabled admin: checked in the same
        // statement as the change, with the admins locked, so no other
        // change can slip in between.
        let mut tx = self.begin_write().await?;
        self.lock_admins(&mut tx).await?;
        let done = sqlx::query(
            "UPDATE accounts SET role = $1, provider_id = $2 WHERE login = $3 \
             AND (role <> 'admin' OR $1 = 'admin' OR disabled_at_ms IS NOT NULL \
                  OR (SELECT COUNT(*) FROM accounts WHERE role = 'admin' AND disabled_at_ms IS NULL) > 1)",
        )
        .bind(role)
        .bind(provider_id)
        .bind(login)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        if done.rows_affected() == 0 {
            return Err(match self.account_for_login(login).await? {
                Some(_) => {
                    StoreError::Conflict(Text::new("error.store.last_admin").arg("login", login))
                }
                None => {
                    StoreError::NotFound(Text::new("error.store.no_account").arg("login", login))
                }
            });
        }
        Ok(self
            .account_for_login(login)
            .await?
            .ok_or_else(|| {
                StoreError::NotFound(Text::new("error.store.no_account").arg("login", login))
            })?
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

    /// A live session's account (not disabled), CSRF token and sign-in time.
    pub async fn session(
        &self,
        secret_sha256: &str,
        now_ms: u64,
    ) -> Result<Option<(Account, String, i64)>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            account_columns!(),
            ", s.csrf_token, s.created_at_ms \
             FROM sessions s JOIN accounts a ON a.id = s.account_id \
             WHERE s.secret_sha256 = $1 AND s.expires_at_ms > $2 AND a.disabled_at_ms IS NULL"
        ))
        .bind(secret_sha256)
        .bind(int(now_ms))
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok((
                account_from_row(&r)?,
                r.try_get(ACCOUNT_COLUMNS)?,
                r.try_get(ACCOUNT_COLUMNS + 1)?,
            ))
        })
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
        let row = sqlx::query(concat!(
            "SELECT ",
            account_columns!(),
            " FROM api_keys k JOIN accounts a ON a.id = k.account_id \
             WHERE k.secret_sha256 = $1 AND k.expires_at_ms > $2 AND k.revoked_at_ms IS NULL \
             AND a.disabled_at_ms IS NULL"
        ))
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
