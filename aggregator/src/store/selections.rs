//! Selections as recorded: scheduling business (调度业务).

use super::*;

/// One selection query, as recorded.
#[derive(Debug, Clone)]
pub struct SelectionRecord {
    pub id: i64,
    pub at_ms: i64,
    pub actor: String,
    /// The demand as the user sent it (JSON).
    pub demand: serde_json::Value,
    pub matched_hosts: i64,
    pub candidates: i64,
    /// Identifiers of the first candidate's resources.
    pub chosen: serde_json::Value,
    pub elapsed_us: i64,
    /// With no candidate, the main reason: "group", the hard constraint
    /// that eliminated the most hosts, or "no_hosts".
    pub no_match: Option<String>,
    /// Dedicated lines on the first candidate's paths.
    pub lines_used: i64,
}

impl Store {
    pub async fn record_selection(&self, r: &SelectionRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO selections (at_ms, actor, demand, matched_hosts, candidates, chosen, \
             elapsed_us, no_match, lines_used) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(r.at_ms)
        .bind(&r.actor)
        .bind(r.demand.to_string())
        .bind(r.matched_hosts)
        .bind(r.candidates)
        .bind(r.chosen.to_string())
        .bind(r.elapsed_us)
        .bind(&r.no_match)
        .bind(r.lines_used)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Recorded selections, newest first.
    pub async fn selections(
        &self,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<SelectionRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, at_ms, actor, demand, matched_hosts, candidates, chosen, elapsed_us, \
             no_match, lines_used FROM selections WHERE id < $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(before.unwrap_or(i64::MAX))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(selection_from_row).collect()
    }

    /// The selections recorded in `[from, to)`, oldest first.
    pub async fn selections_between(
        &self,
        from: u64,
        to: u64,
    ) -> Result<Vec<SelectionRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, at_ms, actor, demand, matched_hosts, candidates, chosen, elapsed_us, \
             no_match, lines_used FROM selections WHERE at_ms >= $1 AND at_ms < $2 ORDER BY id",
        )
        .bind(int(from))
        .bind(int(to))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(selection_from_row).collect()
    }
}

fn selection_from_row(r: &AnyRow) -> Result<SelectionRecord, StoreError> {
    let json = |i: usize| -> Result<serde_json::Value, StoreError> {
        let text: String = r.try_get(i)?;
        Ok(serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)))
    };
    Ok(SelectionRecord {
        id: r.try_get(0)?,
        at_ms: r.try_get(1)?,
        actor: r.try_get(2)?,
        demand: json(3)?,
        matched_hosts: r.try_get(4)?,
        candidates: r.try_get(5)?,
        chosen: json(6)?,
        elapsed_us: r.try_get(7)?,
        no_match: r.try_get(8)?,
        lines_used: r.try_get(9)?,
    })
}
