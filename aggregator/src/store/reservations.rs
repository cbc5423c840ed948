//! Holds (预留): resources of this node's hosts held for a holder until a
//! time. One `resource_holds` row per held identifier is what keeps two
//! holders off one resource, on SQLite and on PostgreSQL alike: of two
//! transactions inserting it, exactly one succeeds.

use super::*;

/// One reservation as stored.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Reservation {
    pub id: i64,
    pub host_id: i64,
    pub resources: Vec<String>,
    pub holder: String,
    pub provider_id: Option<i64>,
    pub created_at_ms: u64,
    pub expires_at_ms: u64,
    pub ended_at_ms: Option<u64>,
    /// Who ended it (the holder, staff), or `expired`.
    pub ended_by: Option<String>,
}

/// What a hold asks for.
#[derive(Debug, Clone)]
pub struct NewHold<'a> {
    /// The holder and the client's request id: a replay returns the same.
    pub request_key: &'a str,
    pub host_id: i64,
    pub resources: &'a [String],
    pub holder: &'a str,
    pub provider_id: Option<i64>,
    pub expires_at_ms: u64,
}

/// What holding did.
#[derive(Debug, Clone, PartialEq)]
pub enum Held {
    New(Reservation),
    /// The same request again: the reservation it made.
    Replayed(Reservation),
}

macro_rules! reservation_columns {
    () => {
        "id, host_id, resources, holder, provider_id, created_at_ms, expires_at_ms, ended_at_ms, ended_by"
    };
}

fn reservation(r: &AnyRow) -> Result<Reservation, StoreError> {
    let resources: String = r.try_get(2)?;
    Ok(Reservation {
        id: r.try_get(0)?,
        host_id: r.try_get(1)?,
        resources: serde_json::from_str(&resources).unwrap_or_default(),
        holder: r.try_get(3)?,
        provider_id: r.try_get(4)?,
        created_at_ms: r.try_get::<i64, _>(5)? as u64,
        expires_at_ms: r.try_get::<i64, _>(6)? as u64,
        ended_at_ms: r.try_get::<Option<i64>, _>(7)?.map(|v| v as u64),
        ended_by: r.try_get(8)?,
    })
}

impl Store {
    /// Holds `hold.resources` unless any is held by another reservation
    /// that has not expired at `now_ms` (a `Conflict` naming it), or
    /// returns the reservation the same request made before.
    pub async fn hold(&self, hold: &NewHold<'_>, now_ms: u64) -> Result<Held, StoreError> {
        let mut tx = self.begin_write().await?;
        for identifier in hold.resources {
            sqlx::query("DELETE FROM resource_holds WHERE identifier = $1 AND expires_at_ms <= $2")
                .bind(identifier)
                .bind(int(now_ms))
                .execute(&mut *tx)
                .await?;
        }
        let resources = serde_json::to_string(hold.resources).unwrap_or_default();
        // The same request made before, or at the same moment (PostgreSQL
        // lets the second wait for the first here): the hold it made.
        let inserted = sqlx::query(
            "INSERT INTO reservations (request_key, host_id, resources, holder, provider_id, \
             created_at_ms, expires_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (request_key) DO NOTHING RETURNING id",
        )
        .bind(hold.request_key)
        .bind(hold.host_id)
        .bind(&resources)
        .bind(hold.holder)
        .bind(hold.provider_id)
        .bind(int(now_ms))
        .bind(int(hold.expires_at_ms))
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = inserted else {
            drop(tx);
            return match self.reservation_for(hold.request_key).await? {
                Some(earlier) => Ok(Held::Replayed(earlier)),
                None => Err(StoreError::Conflict(Text::new(
                    "error.store.request_in_flight",
                ))),
            };
        };
        let id: i64 = row.try_get(0)?;
        for identifier in hold.resources {
            let taken = sqlx::query(
                "INSERT INTO resource_holds (identifier, reservation_id, expires_at_ms) \
                 VALUES ($1, $2, $3) ON CONFLICT (identifier) DO NOTHING",
            )
            .bind(identifier)
            .bind(id)
            .bind(int(hold.expires_at_ms))
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if taken == 0 {
                let until: Option<i64> =
                    sqlx::query("SELECT expires_at_ms FROM resource_holds WHERE identifier = $1")
                        .bind(identifier)
                        .fetch_optional(&mut *tx)
                        .await?
                        .map(|r| r.try_get(0))
                        .transpose()?;
                return Err(StoreError::Conflict(match until {
                    Some(u) => Text::new("error.reservations.held_until")
                        .arg("id", identifier)
                        .arg("until", crate::history::minute_text(u as u64)),
                    None => Text::new("error.store.held").arg("id", identifier),
                }));
            }
        }
        tx.commit().await?;
        Ok(Held::New(Reservation {
            id,
            host_id: hold.host_id,
            resources: hold.resources.to_vec(),
            holder: hold.holder.to_owned(),
            provider_id: hold.provider_id,
            created_at_ms: now_ms,
            expires_at_ms: hold.expires_at_ms,
            ended_at_ms: None,
            ended_by: None,
        }))
    }

    /// The reservation a request made, if it was made before.
    pub async fn reservation_for(
        &self,
        request_key: &str,
    ) -> Result<Option<Reservation>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            reservation_columns!(),
            " FROM reservations WHERE request_key = $1"
        ))
        .bind(request_key)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(reservation).transpose()
    }

    pub async fn reservation(&self, id: i64) -> Result<Reservation, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            reservation_columns!(),
            " FROM reservations WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| StoreError::NotFound(Text::new("error.reservations.none").arg("id", id)))?;
        reservation(&row)
    }

    /// Ends an open reservation and lets its resources go; the reservation
    /// as it ended, or as it was if it had ended already.
    pub async fn release(&self, id: i64, by: &str, now_ms: u64) -> Result<Reservation, StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "UPDATE reservations SET ended_at_ms = $1, ended_by = $2 \
             WHERE id = $3 AND ended_at_ms IS NULL AND expires_at_ms > $1",
        )
        .bind(int(now_ms))
        .bind(by)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM resource_holds WHERE reservation_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.reservation(id).await
    }

    /// Marks the reservations whose time has passed as expired and lets
    /// their resources go; how many.
    pub async fn expire_holds(&self, now_ms: u64) -> Result<u64, StoreError> {
        // Most ticks find nothing: a read, and no write transaction.
        let due = sqlx::query("SELECT 1 FROM resource_holds WHERE expires_at_ms <= $1 LIMIT 1")
            .bind(int(now_ms))
            .fetch_optional(&self.pool)
            .await?
            .is_some()
            || sqlx::query(
                "SELECT 1 FROM reservations WHERE ended_at_ms IS NULL AND expires_at_ms <= $1 LIMIT 1",
            )
            .bind(int(now_ms))
            .fetch_optional(&self.pool)
            .await?
            .is_some();
        if !due {
            return Ok(0);
        }
        let mut tx = self.begin_write().await?;
        let ended = sqlx::query(
            "UPDATE reservations SET ended_at_ms = expires_at_ms, ended_by = 'expired' \
             WHERE ended_at_ms IS NULL AND expires_at_ms <= $1",
        )
        .bind(int(now_ms))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        sqlx::query("DELETE FROM resource_holds WHERE expires_at_ms <= $1")
            .bind(int(now_ms))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(ended)
    }

    /// The reservations open at `now_ms`, oldest first.
    pub async fn open_reservations(&self, now_ms: u64) -> Result<Vec<Reservation>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            reservation_columns!(),
            " FROM reservations WHERE ended_at_ms IS NULL AND expires_at_ms > $1 ORDER BY id"
        ))
        .bind(int(now_ms))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(reservation).collect()
    }

    /// The latest reservations, open or ended, newest first, at most `limit`.
    pub async fn reservations(&self, limit: i64) -> Result<Vec<Reservation>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            reservation_columns!(),
            " FROM reservations ORDER BY id DESC LIMIT $1"
        ))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(reservation).collect()
    }
}
