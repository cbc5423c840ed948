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
}

impl Store {
    pub async fn record_selection(&self, r: &SelectionRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO selections (at_ms, actor, demand, matched_hosts, candidates, chosen, elapsed_us) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(r.at_ms)
        .bind(&r.actor)
        .bind(r.demand.to_string())
        .bind(r.matched_hosts)
        .bind(r.candidates)
        .bind(r.chosen.to_string())
        .bind(r.elapsed_us)
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
            "SELECT id, at_ms, actor, demand, matched_hosts, candidates, chosen, elapsed_us \
             FROM selections WHERE id < $1 ORDER BY id DESC LIMIT $2",
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
            "SELECT id, at_ms, actor, demand, matched_hosts, candidates, chosen, elapsed_us \
             FROM selections WHERE at_ms >= $1 AND at_ms < $2 ORDER BY id",
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
    })
}
