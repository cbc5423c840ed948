//! Providers' price lists.

use super::*;

/// A listed price as stored: the provider's own, per hour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceRow {
    pub provider_id: i64,
    pub resource: String,
    pub model: String,
    pub per_hour_cny_e4: i64,
}

impl PriceRow {
    /// The price as selection reads it; a row of a kind this build does
    /// not know is left out.
    pub fn price(&self) -> Option<crate::price::Price> {
        Some(crate::price::Price {
            resource: crate::price::Priced::parse(&self.resource)?,
            model: self.model.clone(),
            per_hour_cny_e4: self.per_hour_cny_e4,
        })
    }
}

impl Store {
    /// Prices, of one provider or of all, in a stable order.
    pub async fn prices(&self, provider_id: Option<i64>) -> Result<Vec<PriceRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT provider_id, resource, model, per_hour_cny_e4 FROM prices \
             WHERE ($1 < 0 OR provider_id = $1) ORDER BY provider_id, resource, model",
        )
        .bind(provider_id.unwrap_or(-1))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(PriceRow {
                    provider_id: r.try_get(0)?,
                    resource: r.try_get(1)?,
                    model: r.try_get(2)?,
                    per_hour_cny_e4: r.try_get(3)?,
                })
            })
            .collect()
    }

    /// Replaces a provider's whole price list at once.
    pub async fn set_prices(
        &self,
        provider_id: i64,
        prices: &[PriceRow],
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM prices WHERE provider_id = $1")
            .bind(provider_id)
            .execute(&mut *tx)
            .await?;
        for p in prices {
            sqlx::query(
                "INSERT INTO prices (provider_id, resource, model, per_hour_cny_e4, updated_at_ms) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(provider_id)
            .bind(&p.resource)
            .bind(&p.model)
            .bind(p.per_hour_cny_e4)
            .bind(int(now_ms()))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
