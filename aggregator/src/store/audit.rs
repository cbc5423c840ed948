//! The append-only audit log (the database refuses updates and deletes).

use super::*;

/// One entry of the audit log: who did what to what, from where.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub detail: String,
    pub address: String,
}

/// Which audit entries to read, newest first.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Older than this entry.
    pub before: Option<i64>,
    pub limit: i64,
    /// Exactly this actor.
    pub actor: Option<String>,
    /// Actions starting with this (`account.` for every account action).
    pub action: Option<String>,
    /// Subjects containing this.
    pub subject: Option<String>,
    /// From this time (unix milliseconds), inclusive.
    pub since: Option<i64>,
    /// Before this time.
    pub until: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct AuditRecord {
    pub id: i64,
    pub at_ms: i64,
    pub entry: AuditEntry,
}

impl Store {
    pub async fn audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO audit_log (at_ms, actor, action, subject, detail, address) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(int(now_ms()))
        .bind(&entry.actor)
        .bind(&entry.action)
        .bind(&entry.subject)
        .bind(&entry.detail)
        .bind(&entry.address)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Audit entries newest first, as `filter` asks.
    pub async fn audit_log(&self, filter: &AuditFilter) -> Result<Vec<AuditRecord>, StoreError> {
        // Typed text is matched literally (LIKE's wildcards escaped with
        // `!`, which reads the same in both dialects) and regardless of
        // case (SQLite's LIKE ignores ASCII case, PostgreSQL's does not).
        let literal = |text: &str| {
            text.to_lowercase()
                .replace('!', "!!")
                .replace('%', "!%")
                .replace('_', "!_")
        };
        let rows = sqlx::query(
            "SELECT id, at_ms, actor, action, subject, detail, address FROM audit_log \
             WHERE id < $1 AND ($2 = '' OR actor = $2) AND lower(action) LIKE $3 ESCAPE '!' \
             AND lower(subject) LIKE $4 ESCAPE '!' AND at_ms >= $5 AND at_ms < $6 \
             ORDER BY id DESC LIMIT $7",
        )
        .bind(filter.before.unwrap_or(i64::MAX))
        .bind(filter.actor.as_deref().unwrap_or_default())
        .bind(format!(
            "{}%",
            literal(filter.action.as_deref().unwrap_or_default())
        ))
        .bind(format!(
            "%{}%",
            literal(filter.subject.as_deref().unwrap_or_default())
        ))
        .bind(filter.since.unwrap_or(0))
        .bind(filter.until.unwrap_or(i64::MAX))
        .bind(filter.limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AuditRecord {
                    id: r.try_get(0)?,
                    at_ms: r.try_get(1)?,
                    entry: AuditEntry {
                        actor: r.try_get(2)?,
                        action: r.try_get(3)?,
                        subject: r.try_get(4)?,
                        detail: r.try_get(5)?,
                        address: r.try_get(6)?,
                    },
                })
            })
            .collect()
    }
}
