//! Enrollment tokens: a one-time secret a provider's hosts join with,
//! carried in a join string that also pins the node's CA.

use std::time::Duration;

use suanli_link::transport;
use suanli_protocol::join::JoinString;

use super::{Actor, ServiceError, Source, audit};
use crate::{
    auth,
    identity::random_secret,
    store::{Provider, Store, now_ms},
};

/// What a new token is for.
#[derive(Debug, Clone)]
pub struct TokenRequest<'a> {
    pub provider: &'a Provider,
    /// The QUIC address agents dial.
    pub address: &'a str,
    /// The node CA's SHA-256 fingerprint, hex.
    pub ca_fingerprint: &'a str,
    pub ttl: Duration,
    pub uses: u64,
    /// Where the hosts are, if not the provider's registered region.
    pub region: Option<&'a str>,
}

/// A token made: its join string is shown once and never stored.
#[derive(Debug)]
pub struct Issued {
    pub id: i64,
    pub join: JoinString,
    pub expires_at_ms: u64,
}

/// Creates a token and audits it.
pub async fn create(
    store: &Store,
    actor: &Actor,
    request: TokenRequest<'_>,
) -> Result<Issued, ServiceError> {
    let ca_fingerprint = transport::from_hex(request.ca_fingerprint)
        .and_then(|v| <[u8; 32]>::try_from(v).ok())
        .ok_or_else(|| {
            ServiceError::unavailable(
                Source::Identity,
                "the CA fingerprint is not 32 bytes of hex",
            )
        })?;
    let secret = random_secret();
    let hash = auth::secret_hash(&secret);
    let expires_at_ms = now_ms().saturating_add(request.ttl.as_millis() as u64);
    store
        .create_token(
            request.provider.id,
            &hash,
            expires_at_ms,
            request.uses,
            request.region,
        )
        .await?;
    let id = store.token_created_by(&hash, &actor.name).await?;
    audit::record(
        store,
        actor,
        "token.create",
        &format!("token/{id}"),
        &format!(
            "provider {} uses {} ttl {}",
            request.provider.owner_code,
            request.uses,
            humantime::format_duration(request.ttl)
        ),
    )
    .await;
    Ok(Issued {
        id,
        join: JoinString {
            address: request.address.to_owned(),
            ca_fingerprint,
            token: secret,
        },
        expires_at_ms,
    })
}
