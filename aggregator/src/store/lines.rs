//! Dedicated lines (专线) that providers register between regions.

use super::*;

#[derive(Debug, Clone)]
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

impl Store {
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
            .ok_or_else(|| {
                StoreError::NotFound(Text::new("error.store.line_vanished").arg("id", id))
            })
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
            .ok_or_else(|| StoreError::NotFound(Text::new("error.store.line").arg("id", id)))
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
}
