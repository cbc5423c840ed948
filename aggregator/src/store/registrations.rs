//! Registrations under review (入驻申请) and their approval, which creates
//! the provider.

use super::*;

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

#[derive(Debug, Clone)]
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

/// The columns [`registration_from_row`] reads (and the applicant's account id last).
macro_rules! registration_select {
    () => {
        "SELECT r.id, r.kind, r.name, r.uscc, r.uscc_verified, r.region, r.industry, r.contact, \
         a.login, r.state, r.reason, r.reviewed_by, r.reviewed_at_ms, p.owner_code, r.created_at_ms, \
         r.account_id FROM registrations r JOIN accounts a ON a.id = r.account_id \
         LEFT JOIN providers p ON p.id = r.provider_id"
    };
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

impl Store {
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
            return Err(StoreError::Conflict(
                Text::new("error.store.uscc_taken").arg("uscc", &new.uscc),
            ));
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
            .ok_or_else(|| {
                StoreError::NotFound(Text::new("error.store.no_registration").arg("id", id))
            })?;
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
            .ok_or_else(|| {
                StoreError::NotFound(Text::new("error.store.no_registration").arg("id", id))
            })?;
        let registration = registration_from_row(&row)?;
        if registration.state != "pending" {
            return Err(StoreError::Conflict(
                Text::new("error.store.registration_reviewed")
                    .arg("id", id)
                    .arg_text("state", review_state(&registration.state)),
            ));
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
}
