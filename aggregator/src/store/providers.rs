//! Providers (算力提供方): registered organisations and their owner codes.

use super::*;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provider {
    pub id: i64,
    pub owner_code: String,
    pub name: String,
    pub uscc: String,
    pub region: String,
    pub industry: String,
    /// `provider`, `reseller` or `line_provider`.
    pub kind: String,
    pub contact: String,
    /// False where an administrator accepted a code failing its check character.
    pub uscc_verified: bool,
}

impl Provider {
    /// The organisation as its resources carry it.
    pub fn owner(&self) -> crate::fleet::Owner {
        crate::fleet::Owner {
            id: self.id,
            code: self.owner_code.clone(),
            name: self.name.clone(),
            region: self.region.clone(),
            industry: self.industry.clone(),
            uscc: self.uscc.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct NewProvider {
    pub name: String,
    pub uscc: String,
    pub region: String,
    pub industry: String,
    pub kind: String,
    pub contact: String,
    pub uscc_verified: bool,
}

impl Default for NewProvider {
    fn default() -> Self {
        Self {
            name: String::new(),
            uscc: String::new(),
            region: String::new(),
            industry: String::new(),
            kind: "provider".into(),
            contact: String::new(),
            uscc_verified: true,
        }
    }
}

fn provider_from_row(row: &AnyRow) -> Result<Provider, StoreError> {
    Ok(Provider {
        id: row.try_get(0)?,
        owner_code: row.try_get(1)?,
        name: row.try_get(2)?,
        uscc: row.try_get(3)?,
        region: row.try_get(4)?,
        industry: row.try_get(5)?,
        kind: row.try_get(6)?,
        contact: row.try_get(7)?,
        uscc_verified: row.try_get::<i64, _>(8)? != 0,
    })
}

impl Store {
    pub async fn create_provider(&self, new: &NewProvider) -> Result<Provider, StoreError> {
        let mut tx = self.begin_write().await?;
        let provider = Self::create_provider_in(&mut tx, new).await?;
        tx.commit().await?;
        Ok(provider)
    }

    pub(super) async fn create_provider_in(
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        new: &NewProvider,
    ) -> Result<Provider, StoreError> {
        let exists = sqlx::query("SELECT owner_code FROM providers WHERE uscc = $1")
            .bind(&new.uscc)
            .fetch_optional(&mut **tx)
            .await?;
        if let Some(row) = exists {
            return Err(StoreError::DuplicateProvider(row.try_get(0)?));
        }
        // The owner code is derived from the row id, so insert first with a
        // code no real provider can have ('-' is outside the owner alphabet).
        let placeholder = format!("-{}", new.uscc);
        let id: i64 = sqlx::query(
            "INSERT INTO providers (owner_code, name, uscc, region, industry, created_at_ms, kind, contact, uscc_verified) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
        )
        .bind(&placeholder)
        .bind(&new.name)
        .bind(&new.uscc)
        .bind(&new.region)
        .bind(&new.industry)
        .bind(int(now_ms()))
        .bind(&new.kind)
        .bind(&new.contact)
        .bind(i64::from(new.uscc_verified))
        .fetch_one(&mut **tx)
        .await?
        .try_get(0)?;
        let owner_code = format!("P{id:05}");
        sqlx::query("UPDATE providers SET owner_code = $1 WHERE id = $2")
            .bind(&owner_code)
            .bind(id)
            .execute(&mut **tx)
            .await?;
        Ok(Provider {
            id,
            owner_code,
            name: new.name.clone(),
            uscc: new.uscc.clone(),
            region: new.region.clone(),
            industry: new.industry.clone(),
            kind: new.kind.clone(),
            contact: new.contact.clone(),
            uscc_verified: new.uscc_verified,
        })
    }

    /// A provider by owner code (`P00001`) or USCC.
    pub async fn provider(&self, reference: &str) -> Result<Provider, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            provider_columns!(),
            " FROM providers WHERE owner_code = $1 OR uscc = $1"
        ))
        .bind(reference.trim().to_ascii_uppercase())
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| StoreError::NoProvider(reference.to_owned()))?;
        provider_from_row(&row)
    }

    pub async fn provider_by_id(&self, id: i64) -> Result<Provider, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            provider_columns!(),
            " FROM providers WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| StoreError::NoProvider(id.to_string()))?;
        provider_from_row(&row)
    }

    pub async fn providers(&self) -> Result<Vec<Provider>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            provider_columns!(),
            " FROM providers ORDER BY id"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(provider_from_row).collect()
    }
}
