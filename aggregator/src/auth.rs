//! Who is asking: roles, passwords, sessions, API keys, login throttling.
//!
//! Three credentials reach the HTTP API:
//! - a dashboard session: a random secret in an `HttpOnly; Secure;
//!   SameSite=Strict` cookie, plus a CSRF token the page must echo in
//!   `X-CSRF-Token` on every request that changes something;
//! - an API key (`sk_…`), shown once, stored hashed, expiring, revocable;
//! - the node's `admin.token` from the data directory (role admin), for
//!   scripts on the node itself.
//!
//! Bearer credentials are not sent by browsers on their own, so they need no
//! CSRF token.

use std::{net::IpAddr, time::Duration};

use argon2::{
    Argon2, PasswordHash, PasswordHasher as _, PasswordVerifier as _, password_hash::SaltString,
};
use suanli_link::transport::{fingerprint, to_hex};

use crate::store::Account;

/// A role, from most to least privileged among node staff, then the
/// organisations and users the node serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// 节点管理员: everything, including accounts and overrides.
    Admin,
    /// 节点运维: reviews registrations, manages hosts and tokens.
    Operator,
    /// 节点观察员: reads everything, changes nothing.
    Viewer,
    /// 资源提供商: its own hosts and enrollment tokens.
    Provider,
    /// 转售调度服务商: like a provider, with resale qualification.
    Reseller,
    /// 专线服务商: registers dedicated lines.
    LineProvider,
    /// 用户: looks resources up.
    User,
}

impl Role {
    pub const ALL: [Role; 7] = [
        Role::Admin,
        Role::Operator,
        Role::Viewer,
        Role::Provider,
        Role::Reseller,
        Role::LineProvider,
        Role::User,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::Viewer => "viewer",
            Role::Provider => "provider",
            Role::Reseller => "reseller",
            Role::LineProvider => "line_provider",
            Role::User => "user",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == text)
    }

    /// Node staff see every provider's data.
    pub fn is_staff(self) -> bool {
        matches!(self, Role::Admin | Role::Operator | Role::Viewer)
    }

    /// The role an approved registration of `kind` gives its account.
    pub fn for_organisation(kind: &str) -> Option<Role> {
        match kind {
            "provider" => Some(Role::Provider),
            "reseller" => Some(Role::Reseller),
            "line_provider" => Some(Role::LineProvider),
            _ => None,
        }
    }
}

/// How a request proved who it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    AdminToken,
    ApiKey,
    Session {
        secret_sha256: String,
        csrf_token: String,
        signed_in_at_ms: i64,
    },
}

/// The authenticated caller of one request.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The login, or `admin-token`: what the audit log records.
    pub actor: String,
    pub role: Role,
    pub account_id: Option<i64>,
    /// The organisation the account belongs to, once approved.
    pub provider_id: Option<i64>,
    pub credential: Credential,
    pub address: String,
}

impl Principal {
    pub fn from_account(
        account: &Account,
        credential: Credential,
        address: String,
    ) -> Option<Self> {
        Some(Self {
            actor: account.login.clone(),
            role: Role::parse(&account.role)?,
            account_id: Some(account.id),
            provider_id: account.provider_id,
            credential,
            address,
        })
    }

    /// May this caller see or act for `provider_id`'s resources?
    pub fn may_act_for(&self, provider_id: i64) -> bool {
        self.role.is_staff() || self.provider_id == Some(provider_id)
    }
}

/// How long a dashboard session lasts.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
pub const SESSION_COOKIE: &str = "suanli_session";
pub const CSRF_HEADER: &str = "x-csrf-token";
/// API keys start with this, so a leaked one is recognisable (and scannable).
pub const API_KEY_PREFIX: &str = "sk_";
pub const MIN_PASSWORD_CHARS: usize = 10;

/// The SHA-256 of a random secret, hex: how secrets are stored and looked up.
pub fn secret_hash(secret: &str) -> String {
    to_hex(&fingerprint(secret.as_bytes()))
}

/// An argon2id hash (PHC string) of `password` with a fresh salt.
pub fn hash_password(password: &str) -> Result<String, argon2::password_hash::Error> {
    let mut salt = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut salt)
        .map_err(|_| argon2::password_hash::Error::Crypto)?;
    let salt = SaltString::encode_b64(&salt)?;
    Ok(Argon2::default()
        .hash_password(password.as_bytes(), &salt)?
        .to_string())
}

pub fn verify_password(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// A hash to verify against when the login does not exist, so that an
/// unknown login costs as much time as a wrong password.
pub fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password("decoy password, never valid").unwrap_or_default())
}

pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Failed logins allowed per address and per login within [`LOGIN_WINDOW`].
pub const LOGIN_FAILURES_ALLOWED: u64 = 5;
pub const LOGIN_WINDOW: Duration = Duration::from_secs(300);

/// What failed sign-ins are counted against: the client's address and the
/// login name, so guessing one account's password from many addresses is
/// slow as well. The counts live in the database (`Store::login_failed`),
/// so every replica of a node counts the same attempts.
pub fn throttle_keys(address: Option<IpAddr>, login: &str) -> [String; 2] {
    [
        format!("ip:{}", address.map(|a| a.to_string()).unwrap_or_default()),
        format!("login:{}", login.to_lowercase()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_only_themselves() {
        let hash = hash_password("correct horse battery").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password(&hash, "correct horse battery"));
        assert!(!verify_password(&hash, "correct horse batter"));
        assert!(!verify_password("not a hash", "anything"));
        assert_ne!(
            hash,
            hash_password("correct horse battery").unwrap(),
            "salted"
        );
    }

    #[test]
    fn roles_round_trip_through_their_names() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Role::parse("root"), None);
    }
}
