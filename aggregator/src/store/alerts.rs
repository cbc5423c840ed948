//! Alerts, receivers, the delivery ledger and silences (运行监测).
//!
//! At most one alert per fingerprint is open: firing inserts one unless it
//! is open already, resolving closes it once, so replicas evaluating the
//! same fleet record each transition once. Each transition makes one
//! delivery per receiver, and a delivery is claimed (a lease in the row,
//! checked again in the claiming `UPDATE`) before it is sent.

use super::*;
use crate::i18n::{Lang, Text};

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AlertRow {
    pub id: i64,
    pub fingerprint: String,
    pub rule: String,
    pub severity: String,
    #[serde(skip)]
    pub host_id: Option<i64>,
    #[serde(skip)]
    pub provider_id: Option<i64>,
    pub resource: Option<String>,
    pub labels: BTreeMap<String, String>,
    /// In English, as recorded; [`AlertRow::summary_in`] gives it in either
    /// language.
    pub summary: String,
    /// The summary's catalog key and arguments (none for alerts recorded
    /// before the catalog).
    #[serde(skip)]
    pub text: Option<Text>,
    pub started_at_ms: i64,
    pub resolved_at_ms: Option<i64>,
    pub acked_by: Option<String>,
    pub acked_at_ms: Option<i64>,
    /// The silence muting this firing alert now (not stored: silences
    /// match labels at the time asked).
    pub silenced_by: Option<i64>,
    /// The firing alert inhibiting this one now, by an inhibition rule
    /// (not stored: rules match the alerts open at the time asked).
    pub inhibited_by: Option<i64>,
}

macro_rules! alert_columns {
    () => {
        "a.id, a.fingerprint, a.rule, a.severity, a.host_id, a.provider_id, a.resource, \
         a.labels, a.summary, a.started_at_ms, a.resolved_at_ms, a.acked_by, a.acked_at_ms, \
         a.summary_text"
    };
}

/// How many columns [`alert_columns`] names.
const ALERT_COLUMNS: usize = 14;

impl AlertRow {
    /// The summary in `lang`.
    pub fn summary_in(&self, lang: Lang) -> String {
        match &self.text {
            Some(text) => text.render(lang),
            None => self.summary.clone(),
        }
    }
}

fn alert_from_row(r: &AnyRow) -> Result<AlertRow, sqlx::Error> {
    alert_from_row_at(r, 0)
}

/// The alert's columns, in [`alert_columns`]'s order, from column `at` on.
fn alert_from_row_at(r: &AnyRow, at: usize) -> Result<AlertRow, sqlx::Error> {
    let labels: String = r.try_get(at + 7)?;
    let text: Option<String> = r.try_get(at + 13)?;
    Ok(AlertRow {
        id: r.try_get(at)?,
        fingerprint: r.try_get(at + 1)?,
        rule: r.try_get(at + 2)?,
        severity: r.try_get(at + 3)?,
        host_id: r.try_get(at + 4)?,
        provider_id: r.try_get(at + 5)?,
        resource: r.try_get(at + 6)?,
        labels: serde_json::from_str(&labels).unwrap_or_default(),
        summary: r.try_get(at + 8)?,
        text: text.and_then(|t| serde_json::from_str(&t).ok()),
        started_at_ms: r.try_get(at + 9)?,
        resolved_at_ms: r.try_get(at + 10)?,
        acked_by: r.try_get(at + 11)?,
        acked_at_ms: r.try_get(at + 12)?,
        silenced_by: None,
        inhibited_by: None,
    })
}

/// An alert to open.
#[derive(Debug, Clone)]
pub struct NewAlert<'a> {
    pub fingerprint: &'a str,
    pub rule: &'a str,
    pub severity: &'a str,
    pub host_id: Option<i64>,
    pub provider_id: Option<i64>,
    pub resource: Option<&'a str>,
    pub labels: &'a BTreeMap<String, String>,
    pub summary: &'a Text,
}

/// Which alerts to list.
#[derive(Debug, Clone, Default)]
pub struct AlertFilter {
    /// `Some(true)`: open only; `Some(false)`: resolved only.
    pub open: Option<bool>,
    pub severity: Option<String>,
    pub provider_id: Option<i64>,
    pub resource: Option<String>,
    pub before: Option<i64>,
    pub limit: i64,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ReceiverRow {
    pub id: i64,
    pub name: String,
    pub kind: String,
    /// Shown without its query string: robot tokens live there.
    #[serde(skip)]
    pub url: String,
    #[serde(skip)]
    pub secret: Option<String>,
    pub mentions: Vec<String>,
    pub min_severity: String,
    #[serde(skip)]
    pub provider_id: Option<i64>,
    /// Declared in the config file (and replaced from it at start).
    pub declared: bool,
    pub created_by: String,
    pub created_at_ms: i64,
    /// Its own reminder interval; `None`: the node's `repeat_interval`.
    pub repeat_interval_ms: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct NewReceiver {
    pub name: String,
    pub kind: String,
    pub url: String,
    pub secret: Option<String>,
    pub mentions: Vec<String>,
    pub min_severity: String,
    pub provider_id: Option<i64>,
    pub declared: bool,
    pub created_by: String,
    /// Reminders of a still-firing alert at this interval; `None`: the node's.
    pub repeat_interval_ms: Option<u64>,
}

macro_rules! receiver_columns {
    () => {
        "id, name, kind, url, secret, mentions, min_severity, provider_id, declared, created_by, created_at_ms, \
         repeat_interval_ms"
    };
}

fn receiver_from_row(r: &AnyRow) -> Result<ReceiverRow, sqlx::Error> {
    let mentions: String = r.try_get(5)?;
    Ok(ReceiverRow {
        id: r.try_get(0)?,
        name: r.try_get(1)?,
        kind: r.try_get(2)?,
        url: r.try_get(3)?,
        secret: r.try_get(4)?,
        mentions: serde_json::from_str(&mentions).unwrap_or_default(),
        min_severity: r.try_get(6)?,
        provider_id: r.try_get(7)?,
        declared: r.try_get::<i64, _>(8)? != 0,
        created_by: r.try_get(9)?,
        created_at_ms: r.try_get(10)?,
        repeat_interval_ms: r.try_get::<Option<i64>, _>(11)?.map(|ms| ms.max(0) as u64),
    })
}

/// A delivery claimed for sending, with its alert.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub delivery_id: i64,
    pub transition: String,
    pub attempts: i64,
    /// For a resolved notification: was the firing one sent? Only then is
    /// this one owed.
    pub firing_sent: bool,
    pub alert: AlertRow,
}

/// One attempt to reach a receiver, as the ledger shows it.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Attempt {
    pub at_ms: i64,
    /// Alerts the message carried.
    pub alerts: i64,
    pub http_status: Option<i64>,
    /// The provider's own code, e.g. DingTalk's errcode.
    pub errcode: Option<String>,
    pub error: Option<String>,
    pub latency_ms: i64,
    /// 0 for the first try.
    pub retry: i64,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SilenceRow {
    pub id: i64,
    pub matchers: Vec<crate::alerting::Matcher>,
    pub starts_at_ms: i64,
    pub ends_at_ms: i64,
    pub created_by: String,
    pub reason: String,
    #[serde(skip)]
    pub provider_id: Option<i64>,
    pub created_at_ms: i64,
}

const SEVERITY_RANK: &[&str] = &["info", "warning", "critical"];

fn rank(severity: &str) -> usize {
    SEVERITY_RANK
        .iter()
        .position(|s| *s == severity)
        .unwrap_or(0)
}

/// Inserts an alert starting at `now_ms` (and over at `over_at_ms`, for
/// one never open); `None` if one with its fingerprint is open.
async fn insert_alert(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    new: &NewAlert<'_>,
    now_ms: u64,
    over_at_ms: Option<u64>,
) -> Result<Option<i64>, StoreError> {
    Ok(sqlx::query(
        "INSERT INTO alerts (fingerprint, rule, severity, host_id, provider_id, resource, labels, \
         summary, started_at_ms, resolved_at_ms, summary_text) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
         ON CONFLICT DO NOTHING RETURNING id",
    )
    .bind(new.fingerprint)
    .bind(new.rule)
    .bind(new.severity)
    .bind(new.host_id)
    .bind(new.provider_id)
    .bind(new.resource)
    .bind(serde_json::to_string(new.labels).unwrap_or_default())
    .bind(new.summary.render(Lang::En))
    .bind(int(now_ms))
    .bind(over_at_ms.map(int))
    .bind(serde_json::to_string(new.summary).ok())
    .fetch_optional(&mut **tx)
    .await?
    .map(|r| r.try_get(0))
    .transpose()?)
}

/// A firing notification of `alert_id` owed to `receiver_id`, due at `due_ms`.
async fn insert_firing(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    alert_id: i64,
    receiver_id: i64,
    due_ms: u64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO deliveries (alert_id, receiver_id, transition, state, due_at_ms, attempts) \
         VALUES ($1, $2, 'firing', 'pending', $3, 0)",
    )
    .bind(alert_id)
    .bind(receiver_id)
    .bind(int(due_ms))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl Store {
    /// The fingerprints of every open alert.
    pub async fn open_fingerprints(&self) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query("SELECT fingerprint FROM alerts WHERE resolved_at_ms IS NULL")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()?)
    }

    /// Every open alert's id and labels, for inhibition.
    pub async fn open_alert_labels(
        &self,
    ) -> Result<Vec<(i64, BTreeMap<String, String>)>, StoreError> {
        let rows = sqlx::query("SELECT id, labels FROM alerts WHERE resolved_at_ms IS NULL")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let labels: String = r.try_get(1)?;
                Ok((
                    r.try_get(0)?,
                    serde_json::from_str(&labels).unwrap_or_default(),
                ))
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    /// Opens an alert unless one with its fingerprint is open, with a
    /// delivery, due after `group_wait_ms`, for each receiver it concerns.
    /// Returns the new alert's id; `None` if it was open already.
    pub async fn fire_alert(
        &self,
        new: &NewAlert<'_>,
        now_ms: u64,
        group_wait_ms: u64,
    ) -> Result<Option<i64>, StoreError> {
        let mut tx = self.begin_write().await?;
        let Some(id) = insert_alert(&mut tx, new, now_ms, None).await? else {
            return Ok(None);
        };
        let receivers = sqlx::query(
            "SELECT id, min_severity FROM receivers WHERE deleted_at_ms IS NULL \
             AND (provider_id IS NULL OR provider_id = $1)",
        )
        .bind(new.provider_id)
        .fetch_all(&mut *tx)
        .await?;
        for r in receivers {
            let (receiver_id, min): (i64, String) = (r.try_get(0)?, r.try_get(1)?);
            if rank(new.severity) < rank(&min) {
                continue;
            }
            insert_firing(&mut tx, id, receiver_id, now_ms + group_wait_ms).await?;
        }
        tx.commit().await?;
        Ok(Some(id))
    }

    /// Records a test notification to one receiver: an alert that is over
    /// as it starts (it is never open, so nothing evaluates or resolves
    /// it), with one firing delivery, due now, through the same ledger and
    /// sender as any other. Returns the alert's id.
    pub async fn fire_test(
        &self,
        receiver_id: i64,
        new: &NewAlert<'_>,
        now_ms: u64,
    ) -> Result<i64, StoreError> {
        let mut tx = self.begin_write().await?;
        let id = insert_alert(&mut tx, new, now_ms, Some(now_ms))
            .await?
            .ok_or_else(|| {
                StoreError::Conflict(Text::plain(format!("alert {} exists", new.fingerprint)))
            })?;
        insert_firing(&mut tx, id, receiver_id, now_ms).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Reminders, as Alertmanager's `repeat_interval`: each receiver told
    /// of an alert still open is told again once its interval (its own, or
    /// `default_repeat_ms`) has passed since it was last told (its firing
    /// notification, then its reminder). Every replica may run this: a
    /// reminder is one row per alert and receiver, made pending once.
    /// Returns how many reminders fell due.
    pub async fn schedule_repeats(
        &self,
        now_ms: u64,
        default_repeat_ms: u64,
    ) -> Result<u64, StoreError> {
        let mut tx = self.begin_write().await?;
        let first = sqlx::query(
            "INSERT INTO deliveries (alert_id, receiver_id, transition, state, due_at_ms, attempts) \
             SELECT f.alert_id, f.receiver_id, 'repeat', 'pending', $1, 0 \
             FROM deliveries f JOIN alerts a ON a.id = f.alert_id \
             JOIN receivers r ON r.id = f.receiver_id \
             WHERE f.transition = 'firing' AND f.state = 'sent' AND a.resolved_at_ms IS NULL \
             AND r.deleted_at_ms IS NULL \
             AND f.done_at_ms + COALESCE(r.repeat_interval_ms, $2) <= $1 \
             AND NOT EXISTS (SELECT 1 FROM deliveries x WHERE x.alert_id = f.alert_id \
               AND x.receiver_id = f.receiver_id AND x.transition = 'repeat') \
             ON CONFLICT DO NOTHING",
        )
        .bind(int(now_ms))
        .bind(int(default_repeat_ms))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        // Told, or tried and given up on, or muted: a reminder is owed again.
        let again = sqlx::query(
            "UPDATE deliveries SET state = 'pending', due_at_ms = $1, attempts = 0, outcome = NULL, \
             done_at_ms = NULL, claimed_until_ms = NULL, claimed_by = NULL \
             WHERE id IN (SELECT d.id FROM deliveries d JOIN alerts a ON a.id = d.alert_id \
               JOIN receivers r ON r.id = d.receiver_id \
               WHERE d.transition = 'repeat' AND d.state IN ('sent', 'failed', 'suppressed') \
               AND a.resolved_at_ms IS NULL \
               AND r.deleted_at_ms IS NULL \
               AND d.done_at_ms + COALESCE(r.repeat_interval_ms, $2) <= $1)",
        )
        .bind(int(now_ms))
        .bind(int(default_repeat_ms))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(first + again)
    }

    /// Resolves the open alert of `fingerprint`, once. Every receiver that
    /// got (or is getting) its firing notification gets a resolved one; a
    /// firing notification not yet sent is dropped instead: the alert came
    /// and went within the group wait.
    pub async fn resolve_alert(
        &self,
        fingerprint: &str,
        now_ms: u64,
    ) -> Result<Option<i64>, StoreError> {
        let mut tx = self.begin_write().await?;
        let id: Option<i64> = sqlx::query(
            "UPDATE alerts SET resolved_at_ms = $1 WHERE fingerprint = $2 AND resolved_at_ms IS NULL RETURNING id",
        )
        .bind(int(now_ms))
        .bind(fingerprint)
        .fetch_optional(&mut *tx)
        .await?
        .map(|r| r.try_get(0))
        .transpose()?;
        let Some(id) = id else {
            return Ok(None);
        };
        // A firing notification no replica has claimed is not sent at all;
        // one claimed (its sender alive, or dead and its claim passing on)
        // may be on its way, so its resolution is owed too.
        sqlx::query(
            "UPDATE deliveries SET state = 'superseded', outcome = 'resolved before it was sent', done_at_ms = $1 \
             WHERE alert_id = $2 AND transition = 'firing' AND state = 'pending' AND attempts = 0 \
             AND claimed_by IS NULL",
        )
        .bind(int(now_ms))
        .bind(id)
        .execute(&mut *tx)
        .await?;
        // A reminder still to send says nothing true any more.
        sqlx::query(
            "UPDATE deliveries SET state = 'superseded', outcome = 'resolved before it was sent', done_at_ms = $1 \
             WHERE alert_id = $2 AND transition = 'repeat' AND state = 'pending'",
        )
        .bind(int(now_ms))
        .bind(id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO deliveries (alert_id, receiver_id, transition, state, due_at_ms, attempts) \
             SELECT alert_id, receiver_id, 'resolved', 'pending', $1, 0 FROM deliveries \
             WHERE alert_id = $2 AND transition = 'firing' AND state <> 'superseded'",
        )
        .bind(int(now_ms))
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(id))
    }

    pub async fn alerts(&self, f: &AlertFilter) -> Result<Vec<AlertRow>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ", alert_columns!(), " FROM alerts a WHERE \
             ($1 = 0 OR ($1 = 1 AND a.resolved_at_ms IS NULL) OR ($1 = 2 AND a.resolved_at_ms IS NOT NULL)) \
             AND ($2 IS NULL OR a.severity = $2) AND ($3 IS NULL OR a.provider_id = $3) \
             AND ($4 IS NULL OR a.resource = $4) AND ($5 IS NULL OR a.id < $5) \
             ORDER BY a.id DESC LIMIT $6"
        ))
        .bind(match f.open {
            None => 0i64,
            Some(true) => 1,
            Some(false) => 2,
        })
        .bind(f.severity.as_deref())
        .bind(f.provider_id)
        .bind(f.resource.as_deref())
        .bind(f.before)
        .bind(f.limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(alert_from_row).collect::<Result<_, _>>()?)
    }

    pub async fn alert(&self, id: i64) -> Result<AlertRow, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            alert_columns!(),
            " FROM alerts a WHERE a.id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| StoreError::NotFound(Text::new("error.alerts.no_alert").arg("id", id)))?;
        Ok(alert_from_row(&row)?)
    }

    /// Open alerts by severity, for the overview and `/metrics`.
    pub async fn open_alert_counts(&self) -> Result<Vec<(String, String, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT rule, severity, COUNT(*) FROM alerts WHERE resolved_at_ms IS NULL GROUP BY rule, severity",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
            .collect::<Result<_, sqlx::Error>>()?)
    }

    pub async fn ack_alert(&self, id: i64, by: &str, now_ms: u64) -> Result<AlertRow, StoreError> {
        sqlx::query(
            "UPDATE alerts SET acked_by = $1, acked_at_ms = $2 WHERE id = $3 AND acked_by IS NULL",
        )
        .bind(by)
        .bind(int(now_ms))
        .bind(id)
        .execute(&self.pool)
        .await?;
        self.alert(id).await
    }

    /// Adds a receiver. It is owed what fires now, as Alertmanager's
    /// receivers are after a reload: each open alert in its scope and at
    /// its severity, due when the alert's group wait ends (or now).
    pub async fn create_receiver(
        &self,
        new: &NewReceiver,
        group_wait_ms: u64,
    ) -> Result<ReceiverRow, StoreError> {
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        let id: i64 = sqlx::query(
            "INSERT INTO receivers (name, kind, url, secret, mentions, min_severity, provider_id, declared, \
             created_by, created_at_ms, repeat_interval_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
        )
        .bind(&new.name)
        .bind(&new.kind)
        .bind(&new.url)
        .bind(new.secret.as_deref())
        .bind(serde_json::to_string(&new.mentions).unwrap_or_default())
        .bind(&new.min_severity)
        .bind(new.provider_id)
        .bind(i64::from(new.declared))
        .bind(&new.created_by)
        .bind(int(now))
        .bind(new.repeat_interval_ms.map(int))
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| match &e {
            sqlx::Error::Database(d) if d.is_unique_violation() => {
                StoreError::Conflict(Text::new("error.store.receiver_exists").arg("name", &new.name))
            }
            _ => e.into(),
        })?
        .try_get(0)?;
        // On PostgreSQL the open alerts are held until this commits: one
        // resolving meanwhile then sees the new receiver's firing delivery
        // and owes it the resolution too. (SQLite's writer is alone.)
        let hold = match self.backend {
            Backend::Postgres => " FOR SHARE",
            Backend::Sqlite => "",
        };
        let open = match new.provider_id {
            Some(provider_id) => {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT id, severity, started_at_ms FROM alerts \
                     WHERE resolved_at_ms IS NULL AND provider_id = $1{hold}"
                )))
                .bind(provider_id)
                .fetch_all(&mut *tx)
                .await?
            }
            None => sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT id, severity, started_at_ms FROM alerts WHERE resolved_at_ms IS NULL{hold}"
            )))
            .fetch_all(&mut *tx)
            .await?,
        };
        for alert in open {
            let (alert_id, severity, started): (i64, String, i64) =
                (alert.try_get(0)?, alert.try_get(1)?, alert.try_get(2)?);
            if rank(&severity) < rank(&new.min_severity) {
                continue;
            }
            let due = (started.max(0) as u64 + group_wait_ms).max(now);
            insert_firing(&mut tx, alert_id, id, due).await?;
        }
        tx.commit().await?;
        self.receiver(id).await
    }

    pub async fn receiver(&self, id: i64) -> Result<ReceiverRow, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            receiver_columns!(),
            " FROM receivers WHERE id = $1 AND deleted_at_ms IS NULL"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| StoreError::NotFound(Text::new("error.alerts.no_receiver").arg("id", id)))?;
        Ok(receiver_from_row(&row)?)
    }

    /// Receivers in use: all, or those of one provider and the node's own.
    pub async fn receivers(&self) -> Result<Vec<ReceiverRow>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            receiver_columns!(),
            " FROM receivers WHERE deleted_at_ms IS NULL ORDER BY id"
        ))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(receiver_from_row)
            .collect::<Result<_, _>>()?)
    }

    /// Takes a receiver out of use; what it was sent stays in the ledger,
    /// and its pending deliveries end as such. The name is free again.
    pub async fn delete_receiver(&self, id: i64, now_ms: u64) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE receivers SET deleted_at_ms = $1, name = name || '#' || CAST(id AS TEXT) \
             WHERE id = $2 AND deleted_at_ms IS NULL",
        )
        .bind(int(now_ms))
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(
                Text::new("error.alerts.no_receiver").arg("id", id),
            ));
        }
        sqlx::query(
            "UPDATE deliveries SET state = 'dropped', outcome = 'receiver deleted', done_at_ms = $1 \
             WHERE receiver_id = $2 AND state = 'pending'",
        )
        .bind(int(now_ms))
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Claims up to `limit` of a receiver's due deliveries for `holder`
    /// until `now + lease`. A resolved notification waits for its firing one.
    pub async fn claim_deliveries(
        &self,
        receiver_id: i64,
        holder: &str,
        now_ms: u64,
        lease_ms: u64,
        limit: i64,
    ) -> Result<Vec<Claimed>, StoreError> {
        // The conditions are repeated outside the subquery: a replica that
        // waited for another's claim re-checks them on the claimed row.
        let ids: Vec<i64> = sqlx::query(
            "UPDATE deliveries SET claimed_until_ms = $3, claimed_by = $5 WHERE id IN ( \
               SELECT d.id FROM deliveries d WHERE d.receiver_id = $1 AND d.state = 'pending' \
               AND d.due_at_ms <= $2 AND (d.claimed_until_ms IS NULL OR d.claimed_until_ms < $2) \
               AND (d.transition = 'firing' OR NOT EXISTS (SELECT 1 FROM deliveries f \
                 WHERE f.alert_id = d.alert_id AND f.receiver_id = d.receiver_id \
                 AND f.transition = 'firing' AND f.state = 'pending')) \
               ORDER BY d.id LIMIT $4) \
             AND state = 'pending' AND (claimed_until_ms IS NULL OR claimed_until_ms < $2) RETURNING id",
        )
        .bind(receiver_id)
        .bind(int(now_ms))
        .bind(int(now_ms + lease_ms))
        .bind(limit)
        .bind(holder)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()?;
        let mut claimed = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(100) {
            let list = super::id_list(chunk);
            // Ids are integers the database gave: nothing to inject.
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                concat!("SELECT d.id, d.transition, d.attempts, ", alert_columns!(), ", \
                 (SELECT f.state FROM deliveries f WHERE f.alert_id = d.alert_id \
                   AND f.receiver_id = d.receiver_id AND f.transition = 'firing') \
                 FROM deliveries d JOIN alerts a ON a.id = d.alert_id WHERE d.id IN ({}) ORDER BY d.id"),
                list
            )))
            .fetch_all(&self.pool)
            .await?;
            for r in rows {
                // The alert's columns follow the delivery's three.
                let alert = alert_from_row_at(&r, 3)?;
                let firing_state: Option<String> = r.try_get(3 + ALERT_COLUMNS)?;
                claimed.push(Claimed {
                    delivery_id: r.try_get(0)?,
                    transition: r.try_get(1)?,
                    attempts: r.try_get(2)?,
                    firing_sent: firing_state.as_deref() == Some("sent"),
                    alert,
                });
            }
        }
        Ok(claimed)
    }

    /// Extends `holder`'s claims on these deliveries to `until_ms`; returns
    /// those it still holds (another replica takes a claim only after it
    /// lapsed, and a finished delivery needs none).
    pub async fn renew_claims(
        &self,
        ids: &[i64],
        holder: &str,
        until_ms: u64,
    ) -> Result<Vec<i64>, StoreError> {
        let mut held = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(100) {
            let list = super::id_list(chunk);
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE deliveries SET claimed_until_ms = $1 \
                 WHERE id IN ({list}) AND claimed_by = $2 AND state = 'pending' RETURNING id"
            )))
            .bind(int(until_ms))
            .bind(holder)
            .fetch_all(&self.pool)
            .await?;
            for r in rows {
                held.push(r.try_get(0)?);
            }
        }
        Ok(held)
    }

    /// Ends deliveries: `sent`, `suppressed` (silenced), `failed` (gave up).
    /// Gives a claimed delivery back, pending, to be looked at again at
    /// `due_ms`, saying why it waits.
    pub async fn defer_delivery(&self, id: i64, due_ms: u64, why: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE deliveries SET due_at_ms = $2, outcome = $3, claimed_until_ms = NULL, claimed_by = NULL \
             WHERE id = $1 AND state = 'pending'",
        )
        .bind(id)
        .bind(int(due_ms))
        .bind(why)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn finish_deliveries(
        &self,
        ids: &[i64],
        state: &str,
        outcome: &str,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        for chunk in ids.chunks(100) {
            let list = super::id_list(chunk);
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE deliveries SET state = $1, outcome = $2, done_at_ms = $3, claimed_until_ms = NULL, claimed_by = NULL, \
                 attempts = attempts + 1 WHERE id IN ({list}) AND state = 'pending'"
            )))
            .bind(state)
            .bind(outcome)
            .bind(int(now_ms))
            .execute(&self.pool)
            .await?;
        }
        Ok(())
    }

    /// Puts `holder`'s claimed deliveries back for another try at `due_ms`.
    pub async fn retry_deliveries(
        &self,
        ids: &[i64],
        holder: &str,
        due_ms: u64,
        outcome: &str,
    ) -> Result<(), StoreError> {
        for chunk in ids.chunks(100) {
            let list = super::id_list(chunk);
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE deliveries SET due_at_ms = $1, outcome = $2, claimed_until_ms = NULL, claimed_by = NULL, \
                 attempts = attempts + 1 WHERE id IN ({list}) AND state = 'pending' AND claimed_by = $3"
            )))
            .bind(int(due_ms))
            .bind(outcome)
            .bind(holder)
            .execute(&self.pool)
            .await?;
        }
        Ok(())
    }

    pub async fn record_attempt(&self, receiver_id: i64, a: &Attempt) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO delivery_attempts (receiver_id, at_ms, alerts, http_status, errcode, error, latency_ms, retry) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(receiver_id)
        .bind(a.at_ms)
        .bind(a.alerts)
        .bind(a.http_status)
        .bind(a.errcode.as_deref())
        .bind(a.error.as_deref())
        .bind(a.latency_ms)
        .bind(a.retry)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A receiver's latest attempts, newest first.
    pub async fn attempts(&self, receiver_id: i64, limit: i64) -> Result<Vec<Attempt>, StoreError> {
        let rows = sqlx::query(
            "SELECT at_ms, alerts, http_status, errcode, error, latency_ms, retry FROM delivery_attempts \
             WHERE receiver_id = $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(receiver_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| {
                Ok(Attempt {
                    at_ms: r.try_get(0)?,
                    alerts: r.try_get(1)?,
                    http_status: r.try_get(2)?,
                    errcode: r.try_get(3)?,
                    error: r.try_get(4)?,
                    latency_ms: r.try_get(5)?,
                    retry: r.try_get(6)?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()?)
    }

    /// Receivers whose latest attempt, since `since_ms`, failed after
    /// retries: (name, error).
    pub async fn failing_receivers(
        &self,
        since_ms: u64,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT r.name, a.error FROM receivers r JOIN delivery_attempts a ON a.id = \
             (SELECT MAX(id) FROM delivery_attempts WHERE receiver_id = r.id) \
             WHERE r.deleted_at_ms IS NULL AND a.error IS NOT NULL AND a.retry >= 2 AND a.at_ms > $1",
        )
        .bind(int(since_ms))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect::<Result<_, sqlx::Error>>()?)
    }

    /// Deliveries by state, per receiver: what `/metrics` and the receiver page count.
    pub async fn delivery_counts(&self) -> Result<Vec<(i64, String, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT receiver_id, state, COUNT(*) FROM deliveries GROUP BY receiver_id, state",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
            .collect::<Result<_, sqlx::Error>>()?)
    }

    pub async fn create_silence(&self, s: &SilenceRow) -> Result<SilenceRow, StoreError> {
        let id: i64 = sqlx::query(
            "INSERT INTO silences (matchers, starts_at_ms, ends_at_ms, created_by, reason, provider_id, created_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(serde_json::to_string(&s.matchers).unwrap_or_default())
        .bind(s.starts_at_ms)
        .bind(s.ends_at_ms)
        .bind(&s.created_by)
        .bind(&s.reason)
        .bind(s.provider_id)
        .bind(s.created_at_ms)
        .fetch_one(&self.pool)
        .await?
        .try_get(0)?;
        Ok(SilenceRow { id, ..s.clone() })
    }

    /// Silences that have not ended by `now_ms` (active or still to start).
    pub async fn silences(&self, now_ms: u64) -> Result<Vec<SilenceRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, matchers, starts_at_ms, ends_at_ms, created_by, reason, provider_id, created_at_ms \
             FROM silences WHERE ends_at_ms > $1 ORDER BY id",
        )
        .bind(int(now_ms))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| {
                Ok(SilenceRow {
                    id: r.try_get(0)?,
                    matchers: serde_json::from_str(&r.try_get::<String, _>(1)?).unwrap_or_default(),
                    starts_at_ms: r.try_get(2)?,
                    ends_at_ms: r.try_get(3)?,
                    created_by: r.try_get(4)?,
                    reason: r.try_get(5)?,
                    provider_id: r.try_get(6)?,
                    created_at_ms: r.try_get(7)?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()?)
    }

    /// Ends a silence now; returns its provider.
    pub async fn expire_silence(&self, id: i64, now_ms: u64) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query(
            "UPDATE silences SET ends_at_ms = $1 WHERE id = $2 AND ends_at_ms > $1 RETURNING provider_id",
        )
        .bind(int(now_ms))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| StoreError::NotFound(Text::new("error.alerts.no_silence").arg("id", id)))?;
        Ok(row.try_get(0)?)
    }

    /// Staff marked an accelerator healthy.
    pub async fn record_gpu_clear(
        &self,
        host_id: i64,
        uuid: &str,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO gpu_clears (host_id, gpu_uuid, at_ms) VALUES ($1, $2, $3)")
            .bind(host_id)
            .bind(uuid)
            .bind(int(now_ms))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Clears after `after_id`: (id, host, GPU UUID).
    pub async fn gpu_clears(&self, after_id: i64) -> Result<Vec<(i64, i64, String)>, StoreError> {
        let rows =
            sqlx::query("SELECT id, host_id, gpu_uuid FROM gpu_clears WHERE id > $1 ORDER BY id")
                .bind(after_id)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
            .collect::<Result<_, sqlx::Error>>()?)
    }
}
