//! Compute prices (算力价格): a provider's list replaces the one before, in
//! storage and in what selection ranks by, at once.

use serde::Deserialize;
use serde_json::Value;

use super::{Actor, ServiceError, audit};
use crate::{
    auth::Principal,
    check::Check,
    i18n::Text,
    node::{Node, NodeEvent},
    price::{PriceList, Priced, format_cny, parse_cny},
    store::{PriceRow, Provider},
};

/// The most entries a price list may have.
pub const MAX_PRICES: usize = 100;

/// One price as a provider lists it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceEntry {
    /// `accelerator` or `cpu`.
    pub resource: String,
    /// Words the accelerator's name must contain; none for any.
    #[serde(default)]
    pub model: Option<String>,
    /// Yuan per hour: a decimal string or number ("18.50").
    pub per_hour_cny: Value,
}

/// A stored price as people read it.
pub fn shown(p: &PriceRow) -> Value {
    serde_json::json!({
        "resource": p.resource,
        "model": (!p.model.is_empty()).then_some(&p.model),
        "per_hour_cny": format_cny(p.per_hour_cny_e4),
    })
}

/// Replaces `provider`'s price list: staff for any provider, an
/// organisation for itself.
pub async fn set(
    node: &Node,
    who: &Principal,
    provider: &str,
    entries: &[PriceEntry],
) -> Result<(Provider, Vec<PriceRow>), ServiceError> {
    let store = &node.store;
    let provider = store.provider(provider).await?;
    if !who.may_act_for(provider.id) {
        return Err(ServiceError::Forbidden(Text::new("error.prices.own_only")));
    }
    let mut check = Check::default();
    if entries.len() > MAX_PRICES {
        check.fail_text(
            "prices",
            Text::new("check.prices.too_many").arg("max", MAX_PRICES),
        );
    }
    let mut rows: Vec<PriceRow> = Vec::new();
    for (i, p) in entries.iter().enumerate() {
        let field = |name: &str| format!("prices[{i}].{name}");
        let resource = Priced::parse(&p.resource);
        if resource.is_none() {
            check.fail_text(&field("resource"), Text::new("check.prices.resource"));
        }
        let model = match (resource, p.model.as_deref()) {
            (Some(Priced::Cpu), Some(_)) => {
                check.fail_text(&field("model"), Text::new("check.prices.cpu_model"));
                String::new()
            }
            (_, Some(m)) => check.text(&field("model"), m, 100),
            (_, None) => String::new(),
        };
        let amount = parse_cny(&p.per_hour_cny)
            // parse_cny's one rule, in the reader's words.
            .map_err(|_| check.fail_text(&field("per_hour_cny"), Text::new("check.prices.amount")))
            .unwrap_or(0);
        let Some(resource) = resource else { continue };
        if rows
            .iter()
            .any(|r| r.resource == resource.as_str() && r.model.eq_ignore_ascii_case(&model))
        {
            check.fail_text(&field("model"), Text::new("check.prices.listed_twice"));
        }
        rows.push(PriceRow {
            provider_id: provider.id,
            resource: resource.as_str().to_owned(),
            model,
            per_hour_cny_e4: amount,
        });
    }
    check.done()?;
    store.set_prices(provider.id, &rows).await?;
    node.catalog.set_prices(
        provider.id,
        PriceList(rows.iter().filter_map(PriceRow::price).collect()),
    );
    node.publish(NodeEvent::PricesChanged {
        provider_id: provider.id,
    });
    let listed: Vec<Value> = rows.iter().map(shown).collect();
    audit::record(
        store,
        &Actor::of(who),
        "prices.set",
        &format!("provider/{}", provider.owner_code),
        &serde_json::to_string(&listed).unwrap_or_default(),
    )
    .await;
    Ok((provider, rows))
}
