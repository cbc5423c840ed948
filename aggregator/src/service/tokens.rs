//! Enrollment tokens: a one-time secret a provider's hosts join with,
//! carried in a join string that also pins the node's CA.

use std::time::Duration;

use serde::Deserialize;
use suanli_link::transport;
use suanli_protocol::join::JoinString;

use super::{Actor, ServiceError, Source, audit, own_provider};
use crate::{
    auth::{self, Principal},
    check::Check,
    i18n::Text,
    identity::random_secret,
    node::Node,
    store::{Provider, Store, StoreError, now_ms},
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
    pub uses: u64,
    /// Where its hosts are placed, if not the provider's region.
    pub region: Option<String>,
}

/// A token as a signed-in caller asks for one.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenAsk {
    /// Which provider's; staff must say, an organisation means itself.
    #[serde(default)]
    pub provider: Option<String>,
    /// Where the hosts are, if not the provider's registered region.
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default, deserialize_with = "crate::check::whole::option")]
    pub ttl_hours: Option<u32>,
    #[serde(default, deserialize_with = "crate::check::whole::option")]
    pub uses: Option<u32>,
}

/// Issues a token on a running node: staff for any provider, a provider or
/// reseller for itself. Returns whose it is and the token.
pub async fn issue(
    node: &Node,
    who: &Principal,
    ask: &TokenAsk,
) -> Result<(Provider, Issued), ServiceError> {
    let mut check = Check::default();
    let ttl_hours = ask.ttl_hours.unwrap_or(24);
    if !(1..=720).contains(&ttl_hours) {
        check.fail_text(
            "ttl_hours",
            Text::new("check.check.between")
                .arg("min", 1)
                .arg("max", 720),
        );
    }
    let uses = ask.uses.unwrap_or(1);
    if !(1..=1000).contains(&uses) {
        check.fail_text(
            "uses",
            Text::new("check.check.between")
                .arg("min", 1)
                .arg("max", 1000),
        );
    }
    let region = ask
        .region
        .as_deref()
        .map(|code| check.region("region", code));
    let store = &node.store;
    let provider = match (&ask.provider, who.role.is_staff()) {
        (Some(code), true) => match store.provider(code).await {
            Ok(p) => Some(p),
            Err(StoreError::NoProvider(_)) => {
                check.fail_text(
                    "provider",
                    Text::new("check.lines.no_provider").arg("code", code),
                );
                None
            }
            Err(e) => return Err(e.into()),
        },
        (None, true) => {
            check.fail_text("provider", Text::new("check.tokens.provider_needed"));
            None
        }
        (Some(code), false) => {
            let own = store.provider_by_id(own_provider(who)?).await?;
            if !own.owner_code.eq_ignore_ascii_case(code.trim()) {
                return Err(ServiceError::Forbidden(Text::new("error.tokens.own_only")));
            }
            Some(own)
        }
        (None, false) => Some(store.provider_by_id(own_provider(who)?).await?),
    };
    check.done()?;
    let Some(provider) = provider else {
        return Err(crate::check::Invalid::one_text(
            "provider",
            Text::new("check.tokens.no_such_provider"),
        )
        .into());
    };
    let issued = create(
        store,
        &Actor::of(who),
        TokenRequest {
            provider: &provider,
            address: &node.settings.advertise,
            ca_fingerprint: &node.identity.ca_fingerprint(),
            ttl: Duration::from_secs(u64::from(ttl_hours) * 3600),
            uses: u64::from(uses),
            region: region.as_deref(),
        },
    )
    .await?;
    Ok((provider, issued))
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
        uses: request.uses,
        region: request.region.map(str::to_owned),
    })
}
