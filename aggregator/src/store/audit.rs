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

    /// Audit entries newest first, before entry `before` when given.
    pub async fn audit_log(
        &self,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, at_ms, actor, action, subject, detail, address FROM audit_log \
             WHERE id < $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(before.unwrap_or(i64::MAX))
        .bind(limit)
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
