//! Market-monitoring reports (市场监测): this node's own figures per period
//! and those its children sent (their own and their descendants'), kept as
//! the encoded `MarketReport`, once per (origin, stream, period).

use suanli_protocol::node::MarketReport;

use super::*;

/// What storing one report did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kept {
    /// New: stored, to be relayed up.
    Stored,
    /// The same figures again (a resend): nothing to do.
    Resent,
    /// Other figures for a period already held: the first is kept and, for a
    /// child's, the refusal recorded for staff.
    Conflict,
}

/// What a record's reports did at the parent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReportsApplied {
    pub stored: u64,
    pub resent: u64,
    pub conflicts: u64,
}

impl ReportsApplied {
    fn count(&mut self, kept: Kept) {
        match kept {
            Kept::Stored => self.stored += 1,
            Kept::Resent => self.resent += 1,
            Kept::Conflict => self.conflicts += 1,
        }
    }
}

/// A stored report and where it came from.
#[derive(Debug, Clone)]
pub struct StoredReport {
    pub report: MarketReport,
    /// The child it came through; `None` for this node's own.
    pub child_id: Option<i64>,
    pub received_at_ms: u64,
}

/// A child's report that was not kept, and why.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ReportRefusal {
    pub origin: String,
    pub stream: String,
    pub period_start_ms: u64,
    pub received_at_ms: u64,
    pub reason: String,
}

/// A report's place: (origin, stream, period length, period start).
pub type ReportKey = (String, String, i64, i64);

impl Store {
    /// Stores this node's own report for its period.
    pub async fn store_own_report(&self, report: &MarketReport) -> Result<Kept, StoreError> {
        let mut tx = self.begin_write().await?;
        let kept = insert_report(&mut tx, None, report, now_ms()).await?;
        tx.commit().await?;
        Ok(kept)
    }

    /// Stores a child's record: its reports, the refusals of those that were
    /// out of bounds, then its filings with the child's stored sequence, so
    /// the `Ack` that follows covers all of it. A crash between the two
    /// leaves the record unacknowledged; its resent reports are resends.
    pub async fn apply_record(
        &self,
        child_id: i64,
        filings: &[suanli_protocol::node::Filing],
        reports: &[MarketReport],
        refused: &[(&MarketReport, String)],
        through_seq: u64,
    ) -> Result<(Applied, ReportsApplied), StoreError> {
        let mut applied = ReportsApplied::default();
        if !reports.is_empty() || !refused.is_empty() {
            let mut tx = self.begin_write().await?;
            let now = now_ms();
            for report in reports {
                applied.count(insert_report(&mut tx, Some(child_id), report, now).await?);
            }
            for (report, reason) in refused {
                insert_refusal(&mut tx, child_id, report, now, reason).await?;
            }
            tx.commit().await?;
        }
        let filed = self
            .apply_filings(Some(child_id), filings, Some(through_seq))
            .await?;
        Ok((filed, applied))
    }

    /// Reports not yet spooled towards the parent, oldest first, at most `limit`.
    pub async fn unspooled_reports(
        &self,
        limit: i64,
    ) -> Result<Vec<(ReportKey, MarketReport)>, StoreError> {
        let rows = sqlx::query(
            "SELECT origin, stream, period_ms, period_start_ms, body FROM market_reports \
             WHERE spooled = 0 ORDER BY received_at_ms, origin LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let key = (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?);
                Ok((key, decode(r.try_get(4)?)?))
            })
            .collect()
    }

    pub async fn mark_reports_spooled(&self, keys: &[ReportKey]) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        for (origin, stream, period_ms, start) in keys {
            sqlx::query(
                "UPDATE market_reports SET spooled = 1 WHERE origin = $1 AND stream = $2 \
                 AND period_ms = $3 AND period_start_ms = $4",
            )
            .bind(origin)
            .bind(stream)
            .bind(period_ms)
            .bind(start)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Every report of one period: this node's and its subtree's.
    pub async fn period_reports(
        &self,
        stream: &str,
        period_ms: u64,
        start_ms: u64,
    ) -> Result<Vec<StoredReport>, StoreError> {
        let rows = sqlx::query(
            "SELECT body, child_id, received_at_ms FROM market_reports \
             WHERE stream = $1 AND period_ms = $2 AND period_start_ms = $3 ORDER BY origin",
        )
        .bind(stream)
        .bind(int(period_ms))
        .bind(int(start_ms))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(StoredReport {
                    report: decode(r.try_get(0)?)?,
                    child_id: r.try_get(1)?,
                    received_at_ms: r.try_get::<i64, _>(2)? as u64,
                })
            })
            .collect()
    }

    /// The origins that reported a period of this stream in `[from, to)`,
    /// each with the number of periods it reported: who the subtree is.
    pub async fn report_origins(
        &self,
        stream: &str,
        period_ms: u64,
        from_ms: u64,
        to_ms: u64,
    ) -> Result<Vec<(String, u64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT origin, COUNT(*) FROM market_reports WHERE stream = $1 AND period_ms = $2 \
             AND period_start_ms >= $3 AND period_start_ms < $4 GROUP BY origin ORDER BY origin",
        )
        .bind(stream)
        .bind(int(period_ms))
        .bind(int(from_ms))
        .bind(int(to_ms))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get::<i64, _>(1)? as u64)))
            .collect()
    }

    /// The latest reports refused since `since_ms`, newest first, at most 100.
    pub async fn report_refusals(&self, since_ms: u64) -> Result<Vec<ReportRefusal>, StoreError> {
        let rows = sqlx::query(
            "SELECT origin, stream, period_start_ms, received_at_ms, reason FROM market_refusals \
             WHERE received_at_ms >= $1 ORDER BY id DESC LIMIT 100",
        )
        .bind(int(since_ms))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ReportRefusal {
                    origin: r.try_get(0)?,
                    stream: r.try_get(1)?,
                    period_start_ms: r.try_get::<i64, _>(2)? as u64,
                    received_at_ms: r.try_get::<i64, _>(3)? as u64,
                    reason: r.try_get(4)?,
                })
            })
            .collect()
    }

    /// Drops reports older than their period's retention
    /// (`market::retention_ms`), sent or not: a parent that was away
    /// longer has lost them; and refusals older than the 10 s reports'.
    pub async fn prune_reports(&self, now_ms: u64) -> Result<u64, StoreError> {
        use crate::market::{DAILY_MS, HOURLY_MS, RESOURCE_PERIOD_MS, retention_ms};
        let mut tx = self.begin_write().await?;
        let mut gone = 0;
        for period in [RESOURCE_PERIOD_MS, HOURLY_MS, DAILY_MS] {
            gone += sqlx::query(
                "DELETE FROM market_reports WHERE period_ms = $1 AND period_start_ms < $2",
            )
            .bind(int(period))
            .bind(int(now_ms.saturating_sub(retention_ms(period))))
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        sqlx::query("DELETE FROM market_refusals WHERE received_at_ms < $1")
            .bind(int(now_ms.saturating_sub(crate::market::RETENTION_MS)))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(gone)
    }

    /// This node's own reports (as `origin`) of `stream` and `period_ms`
    /// starting in `[from, to)`: what a rollup of them sums.
    pub async fn own_reports(
        &self,
        origin: &str,
        stream: &str,
        period_ms: u64,
        from: u64,
        to: u64,
    ) -> Result<Vec<MarketReport>, StoreError> {
        let rows = sqlx::query(
            "SELECT body FROM market_reports WHERE origin = $1 AND stream = $2 \
             AND period_ms = $3 AND period_start_ms >= $4 AND period_start_ms < $5 \
             AND child_id IS NULL ORDER BY period_start_ms",
        )
        .bind(origin)
        .bind(stream)
        .bind(int(period_ms))
        .bind(int(from))
        .bind(int(to))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| decode(r.try_get(0)?)).collect()
    }

    /// The starts of the periods of length `within_ms` (aligned as
    /// `market::period_start` aligns) in which this node (as `origin`) made
    /// a report of `stream` and `period_ms` starting in `[from, to)`.
    pub async fn own_report_periods(
        &self,
        origin: &str,
        stream: &str,
        period_ms: u64,
        within_ms: u64,
        from: u64,
        to: u64,
    ) -> Result<std::collections::BTreeSet<u64>, StoreError> {
        let rows = sqlx::query(
            "SELECT DISTINCT period_start_ms - (period_start_ms + $1) % $2 FROM market_reports \
             WHERE origin = $3 AND stream = $4 AND period_ms = $5 AND period_start_ms >= $6 \
             AND period_start_ms < $7 AND child_id IS NULL",
        )
        .bind(int(crate::market::ALIGN_MS))
        .bind(int(within_ms))
        .bind(origin)
        .bind(stream)
        .bind(int(period_ms))
        .bind(int(from))
        .bind(int(to))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok(r.try_get::<i64, _>(0)? as u64))
            .collect()
    }
}

fn decode(body: Vec<u8>) -> Result<MarketReport, StoreError> {
    MarketReport::decode(&body).map_err(|e| {
        StoreError::Conflict(Text::new("error.store.report_undecodable").arg("error", e))
    })
}

async fn insert_report(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    child_id: Option<i64>,
    report: &MarketReport,
    now: u64,
) -> Result<Kept, StoreError> {
    let body = report.clone().encode();
    let key = (
        report.origin.as_str(),
        report.stream.as_str(),
        int(report.period_ms),
        int(report.period_start_ms),
    );
    let inserted = sqlx::query(
        "INSERT INTO market_reports (origin, stream, period_ms, period_start_ms, body, child_id, \
         received_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
    )
    .bind(key.0)
    .bind(key.1)
    .bind(key.2)
    .bind(key.3)
    .bind(&body)
    .bind(child_id)
    .bind(int(now))
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if inserted == 1 {
        return Ok(Kept::Stored);
    }
    let held: Vec<u8> = sqlx::query(
        "SELECT body FROM market_reports WHERE origin = $1 AND stream = $2 AND period_ms = $3 \
         AND period_start_ms = $4",
    )
    .bind(key.0)
    .bind(key.1)
    .bind(key.2)
    .bind(key.3)
    .fetch_one(&mut **tx)
    .await?
    .try_get(0)?;
    if held == body {
        return Ok(Kept::Resent);
    }
    // This node's own second report of a period (a restart, another
    // replica) is no one's mistake.
    if let Some(child_id) = child_id {
        insert_refusal(
            tx,
            child_id,
            report,
            now,
            "other figures for a period already held: the first report is kept",
        )
        .await?;
    }
    Ok(Kept::Conflict)
}

async fn insert_refusal(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    child_id: i64,
    report: &MarketReport,
    now: u64,
    reason: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO market_refusals (origin, stream, period_ms, period_start_ms, child_id, \
         received_at_ms, reason) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&report.origin)
    .bind(&report.stream)
    .bind(int(report.period_ms))
    .bind(int(report.period_start_ms))
    .bind(child_id)
    .bind(int(now))
    .bind(reason)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl Store {
    /// What happened on the platform in `[from, to)` (accounts as they are
    /// now): the platform stream's inputs.
    pub async fn platform_hour(
        &self,
        origin: &str,
        from: u64,
        to: u64,
    ) -> Result<crate::market::PlatformHour, StoreError> {
        let (from, to) = (int(from), int(to));
        let pairs = |rows: Vec<AnyRow>| -> Result<Vec<(String, u64)>, StoreError> {
            rows.iter()
                .map(|r| Ok((r.try_get(0)?, r.try_get::<i64, _>(1)? as u64)))
                .collect()
        };
        let accounts_by_role = pairs(
            sqlx::query("SELECT role, COUNT(*) FROM accounts GROUP BY role ORDER BY role")
                .fetch_all(&self.pool)
                .await?,
        )?;
        let audit = pairs(
            sqlx::query(
                "SELECT action, COUNT(*) FROM audit_log WHERE at_ms >= $1 AND at_ms < $2 \
                 GROUP BY action ORDER BY action",
            )
            .bind(from)
            .bind(to)
            .fetch_all(&self.pool)
            .await?,
        )?;
        let count = |sql: &'static str| sqlx::query(sql).bind(from).bind(to).fetch_one(&self.pool);
        let registrations_submitted: i64 = count(
            "SELECT COUNT(*) FROM registrations WHERE created_at_ms >= $1 AND created_at_ms < $2",
        )
        .await?
        .try_get(0)?;
        let reviews = pairs(
            sqlx::query(
                "SELECT state, reviewed_at_ms - created_at_ms FROM registrations \
                 WHERE reviewed_at_ms >= $1 AND reviewed_at_ms < $2 ORDER BY id",
            )
            .bind(from)
            .bind(to)
            .fetch_all(&self.pool)
            .await?,
        )?;
        let resource_periods: i64 = sqlx::query(
            "SELECT COUNT(*) FROM market_reports WHERE origin = $1 AND stream = 'resource' \
             AND child_id IS NULL AND period_start_ms >= $2 AND period_start_ms < $3",
        )
        .bind(origin)
        .bind(from)
        .bind(to)
        .fetch_one(&self.pool)
        .await?
        .try_get(0)?;
        Ok(crate::market::PlatformHour {
            api_calls: self.api_calls(from as u64).await?,
            accounts_by_role,
            audit,
            registrations_submitted: registrations_submitted as u64,
            reviews,
            resource_periods: resource_periods as u64,
        })
    }

    /// Adds the API's counted calls to their hours (every replica adds to
    /// the same rows).
    pub async fn add_api_calls(
        &self,
        calls: &[(crate::telemetry::ApiCall, u64)],
    ) -> Result<(), StoreError> {
        if calls.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_write().await?;
        for (call, n) in calls {
            sqlx::query(
                "INSERT INTO api_calls (hour_start_ms, route_class, credential, status_class, \
                 calls) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (hour_start_ms, route_class, \
                 credential, status_class) DO UPDATE SET calls = api_calls.calls + excluded.calls",
            )
            .bind(int(call.hour_start_ms))
            .bind(call.route_class)
            .bind(call.credential)
            .bind(call.status_class)
            .bind(int(*n))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The API's calls in the hour starting at `hour_start_ms`: (route
    /// class, credential, status class, calls).
    pub async fn api_calls(
        &self,
        hour_start_ms: u64,
    ) -> Result<Vec<crate::market::ApiCalls>, StoreError> {
        let rows = sqlx::query(
            "SELECT route_class, credential, status_class, calls FROM api_calls \
             WHERE hour_start_ms = $1 ORDER BY route_class, credential, status_class",
        )
        .bind(int(hour_start_ms))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(crate::market::ApiCalls {
                    route_class: r.try_get(0)?,
                    credential: r.try_get(1)?,
                    status_class: r.try_get(2)?,
                    calls: r.try_get::<i64, _>(3)? as u64,
                })
            })
            .collect()
    }

    /// Drops the API's hourly call counts from before `before_ms`.
    pub async fn prune_api_calls(&self, before_ms: u64) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM api_calls WHERE hour_start_ms < $1")
            .bind(int(before_ms))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// API keys neither revoked nor expired at `at_ms`.
    pub async fn active_api_keys(&self, at_ms: u64) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query(
            "SELECT COUNT(*) FROM api_keys WHERE revoked_at_ms IS NULL AND expires_at_ms > $1",
        )
        .bind(int(at_ms))
        .fetch_one(&self.pool)
        .await?
        .try_get(0)?;
        Ok(n as u64)
    }
}

impl Store {
    /// How many reports of `stream` and `period_ms` each period in
    /// `[from, to)` starting on a multiple of `step_ms` has: (start, count),
    /// in order.
    pub async fn report_counts(
        &self,
        stream: &str,
        period_ms: u64,
        step_ms: u64,
        from: u64,
        to: u64,
    ) -> Result<Vec<(u64, u64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT period_start_ms, COUNT(*) FROM market_reports WHERE stream = $1 \
             AND period_ms = $2 AND period_start_ms >= $3 AND period_start_ms < $4 \
             AND (period_start_ms + $5) % $6 = 0 GROUP BY period_start_ms ORDER BY period_start_ms",
        )
        .bind(stream)
        .bind(int(period_ms))
        .bind(int(from))
        .bind(int(to))
        .bind(int(crate::market::ALIGN_MS))
        .bind(int(step_ms))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get::<i64, _>(0)? as u64,
                    r.try_get::<i64, _>(1)? as u64,
                ))
            })
            .collect()
    }

    /// This subtree's reports of `stream` and `period_ms` in `[from, to)`
    /// that start on a multiple of `step_ms` (aligned as periods are): the
    /// points of a trend.
    pub async fn reports_every(
        &self,
        stream: &str,
        period_ms: u64,
        step_ms: u64,
        from: u64,
        to: u64,
    ) -> Result<Vec<MarketReport>, StoreError> {
        let rows = sqlx::query(
            "SELECT body FROM market_reports WHERE stream = $1 AND period_ms = $2 \
             AND period_start_ms >= $3 AND period_start_ms < $4 \
             AND (period_start_ms + $5) % $6 = 0 ORDER BY period_start_ms",
        )
        .bind(stream)
        .bind(int(period_ms))
        .bind(int(from))
        .bind(int(to))
        .bind(int(crate::market::ALIGN_MS))
        .bind(int(step_ms))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| decode(r.try_get(0)?)).collect()
    }
}
