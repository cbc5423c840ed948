//! Latency observed from this node to each region, per minute.

use super::*;

/// Latency observed from this node to one region in one minute.
#[derive(Debug, Clone, PartialEq)]
pub struct RegionLatency {
    pub minute_ms: i64,
    pub from_region: String,
    pub to_region: String,
    pub hosts: i64,
    pub median_rtt_us: i64,
    pub min_rtt_us: i64,
    pub max_rtt_us: i64,
}

impl Store {
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
}
