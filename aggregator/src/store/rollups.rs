//! One-minute rollups that raw samples fold into after the raw window,
//! and hourly ones made of them once an hour is whole.

use std::collections::BTreeSet;

use super::*;

impl Store {
    /// Folds raw samples collected before `cutoff_ms` into one-minute
    /// rollups and deletes them, oldest first, at most `limit` per call.
    /// Returns how many raw samples went.
    pub async fn roll_up(&self, cutoff_ms: u64, limit: usize) -> Result<usize, StoreError> {
        let mut tx = self.begin_write().await?;
        let rows = sqlx::query(
            "SELECT id, host_id, collected_at_ms, body FROM samples ORDER BY id LIMIT $1",
        )
        .bind(limit as i64)
        .fetch_all(&mut *tx)
        .await?;
        // Rows are in arrival order, which is collection order but for late
        // arrivals; stop at the first young one, so the id range below holds
        // only old rows.
        let mut minutes: BTreeMap<(i64, u64), Vec<SequencedSample>> = BTreeMap::new();
        let mut ids = None;
        for row in &rows {
            let collected: i64 = row.try_get(2)?;
            if collected as u64 >= cutoff_ms {
                break;
            }
            let id: i64 = row.try_get(0)?;
            let host_id: i64 = row.try_get(1)?;
            let body: Vec<u8> = row.try_get(3)?;
            ids = Some(ids.map_or((id, id), |(first, _)| (first, id)));
            match SequencedSample::decode(&body) {
                Ok(sample) => minutes
                    .entry((host_id, history::minute_of(collected as u64)))
                    .or_default()
                    .push(sample),
                // Validated on the way in, so this is disk corruption: the
                // row is dropped and said so rather than blocking retention.
                Err(e) => {
                    tracing::warn!(host_id, id, error = %e, "undecodable stored sample dropped")
                }
            }
        }
        let Some((first_id, last_id)) = ids else {
            return Ok(0);
        };
        // A sample late enough to land in an hour already made (an agent's
        // spool after a long outage) makes that hour again, below.
        let made_until: Option<i64> =
            sqlx::query("SELECT hourly_until_ms FROM rollup_progress WHERE id = 1")
                .fetch_optional(&mut *tx)
                .await?
                .map(|r| r.try_get(0))
                .transpose()?;
        let mut remake: BTreeSet<(i64, u64)> = BTreeSet::new();
        for ((host_id, minute), samples) in minutes {
            if made_until.is_some_and(|until| minute < until as u64) {
                remake.insert((host_id, history::hour_of(minute)));
            }
            // Fold into what an earlier pass left for this minute, sample by
            // sample, so a resend already counted is skipped.
            let mut rollup = sqlx::query(
                "SELECT body FROM sample_rollups WHERE host_id = $1 AND minute_ms = $2",
            )
            .bind(host_id)
            .bind(int(minute))
            .fetch_optional(&mut *tx)
            .await?
            .map(|row| row.try_get::<Vec<u8>, _>(0))
            .transpose()?
            .and_then(|bytes| Rollup::from_bytes(&bytes).ok())
            .unwrap_or_default();
            for sample in &samples {
                rollup.add(sample);
            }
            write_rollup(&mut tx, Span::Minute, host_id, minute, &rollup).await?;
        }
        for (host_id, hour) in remake {
            let rows = sqlx::query(
                "SELECT body FROM sample_rollups WHERE host_id = $1 AND minute_ms >= $2 AND minute_ms < $3",
            )
            .bind(host_id)
            .bind(int(hour))
            .bind(int(hour + history::HOUR_MS))
            .fetch_all(&mut *tx)
            .await?;
            let mut rollup = Rollup::default();
            for row in &rows {
                if let Ok(minute) = Rollup::from_bytes(&row.try_get::<Vec<u8>, _>(0)?) {
                    rollup.merge(&minute);
                }
            }
            write_rollup(&mut tx, Span::HourAgain, host_id, hour, &rollup).await?;
        }
        let deleted = sqlx::query("DELETE FROM samples WHERE id >= $1 AND id <= $2")
            .bind(first_id)
            .bind(last_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(deleted as usize)
    }

    /// Deletes rollups of minutes (and hours) before `before_ms`; returns
    /// how many minutes went.
    pub async fn expire_rollups(&self, before_ms: u64) -> Result<u64, StoreError> {
        sqlx::query("DELETE FROM sample_rollups_hourly WHERE hour_ms < $1")
            .bind(int(history::hour_of(before_ms)))
            .execute(&self.pool)
            .await?;
        Ok(
            sqlx::query("DELETE FROM sample_rollups WHERE minute_ms < $1")
                .bind(int(before_ms))
                .execute(&self.pool)
                .await?
                .rows_affected(),
        )
    }

    /// The first hour whose hourly rollups are not made yet (none: no hour
    /// made so far); history reads minutes from there on.
    pub async fn hourly_until(&self) -> Result<Option<u64>, StoreError> {
        let until: Option<i64> =
            sqlx::query("SELECT hourly_until_ms FROM rollup_progress WHERE id = 1")
                .fetch_optional(&self.pool)
                .await?
                .map(|r| r.try_get(0))
                .transpose()?;
        Ok(until.map(|u| u as u64))
    }

    /// Makes the hourly rollups of the first hour not made yet, from its
    /// minute rollups, if that hour ended by `until_ms` (every minute of it
    /// rolled up); a page of hosts at a time. Returns whether it made one:
    /// the caller goes on until it did not. Replicas making the same hour
    /// write the same rows, once.
    pub async fn make_hourly(&self, until_ms: u64) -> Result<bool, StoreError> {
        const PAGE: usize = 60 * 200;
        let hour = match self.hourly_until().await? {
            Some(hour) => hour,
            None => {
                let oldest: Option<i64> = sqlx::query("SELECT MIN(minute_ms) FROM sample_rollups")
                    .fetch_one(&self.pool)
                    .await?
                    .try_get(0)?;
                match oldest {
                    Some(minute) => history::hour_of(minute as u64),
                    None => return Ok(false),
                }
            }
        };
        let end = hour + history::HOUR_MS;
        if end > until_ms {
            return Ok(false);
        }
        let mut after = i64::MIN;
        loop {
            let rows = sqlx::query(
                "SELECT host_id, body FROM sample_rollups WHERE minute_ms >= $1 AND minute_ms < $2 \
                 AND host_id > $3 ORDER BY host_id, minute_ms LIMIT $4",
            )
            .bind(int(hour))
            .bind(int(end))
            .bind(after)
            .bind(PAGE as i64)
            .fetch_all(&self.pool)
            .await?;
            let full = rows.len() == PAGE;
            let mut hours: Vec<(i64, Rollup)> = Vec::new();
            for row in &rows {
                let host_id: i64 = row.try_get(0)?;
                let body: Vec<u8> = row.try_get(1)?;
                let Ok(minute) = Rollup::from_bytes(&body) else {
                    continue;
                };
                match hours.last_mut() {
                    Some((host, rollup)) if *host == host_id => rollup.merge(&minute),
                    _ => hours.push((host_id, minute)),
                }
            }
            // The page's last host may go on in the next one (a host has at
            // most 60 minutes in an hour, far fewer than a page).
            if full {
                hours.pop();
            }
            let mut tx = self.begin_write().await?;
            for (host_id, rollup) in &hours {
                write_rollup(&mut tx, Span::Hour, *host_id, hour, rollup).await?;
            }
            tx.commit().await?;
            match hours.last() {
                Some((host_id, _)) if full => after = *host_id,
                _ => break,
            }
        }
        // The next hour to make is the next one holding a minute: hours
        // without any (a node down for a week, one odd clock) are passed
        // over at once, up to the cutoff's hour.
        let next: Option<i64> =
            sqlx::query("SELECT MIN(minute_ms) FROM sample_rollups WHERE minute_ms >= $1")
                .bind(int(end))
                .fetch_one(&self.pool)
                .await?
                .try_get(0)?;
        let next = next.map_or(history::hour_of(until_ms), |minute| {
            history::hour_of(minute as u64).min(history::hour_of(until_ms))
        });
        sqlx::query(
            "INSERT INTO rollup_progress (id, hourly_until_ms) VALUES (1, $1) \
             ON CONFLICT (id) DO UPDATE SET hourly_until_ms = excluded.hourly_until_ms \
             WHERE rollup_progress.hourly_until_ms < excluded.hourly_until_ms",
        )
        .bind(int(next.max(end)))
        .execute(&self.pool)
        .await?;
        Ok(true)
    }

    /// A host's hourly rollups of the hours in `[from_ms, to_ms)` as
    /// stored, oldest first.
    pub async fn hourly_rollup_bodies(
        &self,
        host_id: i64,
        from_ms: u64,
        to_ms: u64,
    ) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        self.bodies(
            "SELECT hour_ms, body FROM sample_rollups_hourly WHERE host_id = $1 \
             AND hour_ms >= $2 AND hour_ms < $3 ORDER BY hour_ms",
            host_id,
            from_ms,
            to_ms,
        )
        .await
    }

    /// A host's rollups of the minutes in `[from_ms, to_ms)` as stored,
    /// oldest first: the caller decodes them where it may take its time.
    pub async fn rollup_bodies(
        &self,
        host_id: i64,
        from_ms: u64,
        to_ms: u64,
    ) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        self.bodies(
            "SELECT minute_ms, body FROM sample_rollups WHERE host_id = $1 \
             AND minute_ms >= $2 AND minute_ms < $3 ORDER BY minute_ms",
            host_id,
            from_ms,
            to_ms,
        )
        .await
    }

    /// (time, body) rows of one host in `[from_ms, to_ms)`, as `sql` reads them.
    async fn bodies(
        &self,
        sql: &'static str,
        host_id: i64,
        from_ms: u64,
        to_ms: u64,
    ) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let rows = sqlx::query(sql)
            .bind(host_id)
            .bind(int(from_ms))
            .bind(int(to_ms))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get::<i64, _>(0)? as u64, r.try_get(1)?)))
            .collect()
    }

    /// A host's rollups from `from_ms` on, oldest first (for checks and the history API).
    pub async fn rollups(
        &self,
        host_id: i64,
        from_ms: u64,
    ) -> Result<Vec<(u64, Rollup)>, StoreError> {
        let rows = sqlx::query(
            "SELECT minute_ms, body FROM sample_rollups WHERE host_id = $1 AND minute_ms >= $2 ORDER BY minute_ms",
        )
        .bind(host_id)
        .bind(int(from_ms))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let minute: i64 = r.try_get(0)?;
                let body: Vec<u8> = r.try_get(1)?;
                Ok((minute as u64, Rollup::from_bytes(&body).unwrap_or_default()))
            })
            .collect()
    }
}

/// Which rollup a write is, and what it does to one already there.
#[derive(Clone, Copy)]
enum Span {
    /// A minute, replaced: it holds what it held and more.
    Minute,
    /// An hour made the first time: replicas making the same one write the
    /// same rows, and the first stays.
    Hour,
    /// An hour made again with a late minute: replaced.
    HourAgain,
}

async fn write_rollup(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    span: Span,
    host_id: i64,
    at_ms: u64,
    rollup: &Rollup,
) -> Result<(), StoreError> {
    let sql = match span {
        Span::Minute => {
            "INSERT INTO sample_rollups (host_id, minute_ms, samples, body) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (host_id, minute_ms) DO UPDATE SET samples = excluded.samples, body = excluded.body"
        }
        Span::Hour => {
            "INSERT INTO sample_rollups_hourly (host_id, hour_ms, samples, body) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (host_id, hour_ms) DO NOTHING"
        }
        Span::HourAgain => {
            "INSERT INTO sample_rollups_hourly (host_id, hour_ms, samples, body) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (host_id, hour_ms) DO UPDATE SET samples = excluded.samples, body = excluded.body"
        }
    };
    sqlx::query(sql)
        .bind(host_id)
        .bind(int(at_ms))
        .bind(int(rollup.samples))
        .bind(rollup.to_bytes())
        .execute(&mut **tx)
        .await?;
    Ok(())
}
