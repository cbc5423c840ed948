//! Providers (算力提供方): the organisations whose hosts the node holds.
//! Made from the command line, by approving a registration (see the
//! service center), or once for the node's own machine.

use suanli_protocol::identifier::{Industry, RegionCode};

use super::{Actor, ServiceError, audit};
use crate::store::{NewProvider, Provider, Store, StoreError};

/// Stands in the USCC column for the node's own provider. Not a credit code
/// (it is not 18 characters), so it can never collide with a real one.
pub const LOCAL_PROVIDER_USCC: &str = "LOCAL";

/// Registers a provider and audits it.
pub async fn create(
    store: &Store,
    actor: &Actor,
    new: &NewProvider,
) -> Result<Provider, ServiceError> {
    let provider = store.create_provider(new).await?;
    audit::record(
        store,
        actor,
        "provider.create",
        &format!("provider/{}", provider.owner_code),
        &new.uscc,
    )
    .await;
    Ok(provider)
}

/// The provider the node's own machine is registered under: the node
/// operator itself, which has no credit code of its own here. Made on
/// first use.
pub async fn local(
    store: &Store,
    region: &RegionCode,
    industry: &Industry,
) -> Result<Provider, ServiceError> {
    match store.provider(LOCAL_PROVIDER_USCC).await {
        Ok(p) => return Ok(p),
        Err(StoreError::NoProvider(_)) => {}
        Err(e) => return Err(e.into()),
    }
    create(
        store,
        &Actor::node(),
        &NewProvider {
            name: "本节点 / this node".into(),
            uscc: LOCAL_PROVIDER_USCC.into(),
            region: region.to_string(),
            industry: industry.to_string(),
            kind: "provider".into(),
            contact: String::new(),
            uscc_verified: false,
        },
    )
    .await
}

/// Whether a caller who is not staff may see `provider`: everyone but the
/// node's own.
pub fn is_public(provider: &Provider) -> bool {
    provider.uscc != LOCAL_PROVIDER_USCC
}
