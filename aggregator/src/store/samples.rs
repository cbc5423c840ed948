//! Samples: appended in arrival order (row id) with a unique (host, seq)
//! index, so ingest writes sequential pages and a resend is stored once.

use super::*;

/// One sample row, as stored.
#[derive(Debug, Clone)]
pub struct SampleRow {
    pub host_id: i64,
    pub seq: u64,
    pub collected_at_ms: u64,
    pub body: Vec<u8>,
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

impl Store {
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

    /// A host's newest stored sample (by sequence number), whichever
    /// replica stored it.
    pub async fn newest_sample(&self, host_id: i64) -> Result<Option<Vec<u8>>, StoreError> {
        let row =
            sqlx::query("SELECT body FROM samples WHERE host_id = $1 ORDER BY seq DESC LIMIT 1")
                .bind(host_id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|r| r.try_get(0)).transpose()?)
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
