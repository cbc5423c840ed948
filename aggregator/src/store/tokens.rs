//! Enrollment tokens: stored as SHA-256 hashes, redeemed once per use.

use super::*;

#[derive(Debug, Clone)]
pub struct TokenListing {
    pub id: i64,
    pub provider: String,
    pub expires_at_ms: i64,
    pub uses_left: i64,
    pub created_at_ms: i64,
    pub created_by: String,
    pub revoked: bool,
}

const TOKEN_STATE: &str = "SELECT id, provider_id, expires_at_ms, uses_left, revoked_at_ms \
     FROM enrollment_tokens WHERE secret_sha256 = $1";

/// A token's id and provider if it may enroll a host now, else why not.
fn token_state(
    row: Option<AnyRow>,
    now_ms: u64,
) -> Result<Result<(i64, i64), TokenRefusal>, StoreError> {
    let Some(row) = row else {
        return Ok(Err(TokenRefusal::Unknown));
    };
    let (id, provider_id, expires, uses): (i64, i64, i64, i64) = (
        row.try_get(0)?,
        row.try_get(1)?,
        row.try_get(2)?,
        row.try_get(3)?,
    );
    Ok(if row.try_get::<Option<i64>, _>(4)?.is_some() {
        Err(TokenRefusal::Revoked)
    } else if expires <= int(now_ms) {
        Err(TokenRefusal::Expired)
    } else if uses <= 0 {
        Err(TokenRefusal::UsedUp)
    } else {
        Ok((id, provider_id))
    })
}

impl Store {
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

    /// The provider a token would enroll a host for, without spending it:
    /// what enrollment checks a host's claim against before it redeems.
    pub async fn provider_of_token(
        &self,
        secret_sha256: &str,
        now_ms: u64,
    ) -> Result<Result<i64, TokenRefusal>, StoreError> {
        let row = sqlx::query(TOKEN_STATE)
            .bind(secret_sha256)
            .fetch_optional(&self.pool)
            .await?;
        Ok(token_state(row, now_ms)?.map(|(_, provider_id)| provider_id))
    }

    /// Spends one use of a token; the provider it enrolls for.
    pub async fn redeem_token(
        &self,
        secret_sha256: &str,
        now_ms: u64,
    ) -> Result<Result<i64, TokenRefusal>, StoreError> {
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(TOKEN_STATE)
            .bind(secret_sha256)
            .fetch_optional(&mut *tx)
            .await?;
        let (id, provider_id) = match token_state(row, now_ms)? {
            Ok(token) => token,
            Err(refusal) => return Ok(Err(refusal)),
        };
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

    /// The provider a token belongs to.
    pub async fn token_provider(&self, id: i64) -> Result<i64, StoreError> {
        Ok(
            sqlx::query("SELECT provider_id FROM enrollment_tokens WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?
                .ok_or_else(|| {
                    StoreError::NotFound(Text::new("error.center.no_token").arg("id", id))
                })?
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
}
