//! Accounts made by staff, and their roles. (Applicants make their own
//! when they register; see `registrations`.)

use std::time::Duration;

use serde::Deserialize;

use super::{Actor, ServiceError, Source, audit};
use crate::{
    auth::{self, Credential, MIN_PASSWORD_CHARS, Principal, Role},
    check::{Check, Invalid},
    i18n::Text,
    identity::random_secret,
    store::{Account, NewAccount, Store, StoreError, now_ms},
};

/// An account staff create.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewAccountRequest {
    pub login: String,
    /// Generated (and shown once) if not given.
    #[serde(default)]
    pub password: Option<String>,
    pub role: Role,
    /// The organisation an organisation role acts for.
    #[serde(default)]
    pub provider: Option<String>,
}

/// A role given to an existing account.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleChange {
    pub role: Role,
    #[serde(default)]
    pub provider: Option<String>,
}

/// Creates an account; returns it and the password generated for it, if
/// one was.
pub async fn create(
    store: &Store,
    who: &Principal,
    r: &NewAccountRequest,
) -> Result<(Account, Option<String>), ServiceError> {
    let mut check = Check::default();
    let login = check.login(&r.login);
    if let Some(p) = &r.password {
        check.password(p, MIN_PASSWORD_CHARS);
    }
    let provider_id = provider_for_role(store, r.role, r.provider.as_deref(), &mut check).await?;
    check.done()?;
    let generated = r.password.is_none().then(random_secret);
    let password = r.password.clone().or(generated.clone()).unwrap_or_default();
    let account = store
        .create_account(&NewAccount {
            login,
            password_hash: hash_password(password).await?,
            role: r.role.as_str().to_owned(),
            provider_id,
            must_change_password: generated.is_some(),
        })
        .await?;
    audit::record(
        store,
        &Actor::of(who),
        "account.create",
        &format!("account/{}", account.login),
        &format!("role {}", account.role),
    )
    .await;
    Ok((account, generated))
}

/// Gives `login` a role (and, for an organisation role, its provider).
pub async fn set_role(
    store: &Store,
    who: &Principal,
    login: &str,
    r: &RoleChange,
) -> Result<Account, ServiceError> {
    recently_signed_in(who, now_ms())?;
    let mut check = Check::default();
    let mut provider_id =
        provider_for_role(store, r.role, r.provider.as_deref(), &mut check).await?;
    check.done()?;
    // An organisation role given without a provider keeps the one the
    // account acts for: a role change never quietly unlinks it.
    if r.provider.is_none() && !r.role.is_staff() && r.role != Role::User {
        provider_id = store
            .account_for_login(login)
            .await?
            .and_then(|(account, _)| account.provider_id);
    }
    let account = store.set_role(login, r.role.as_str(), provider_id).await?;
    audit::record(
        store,
        &Actor::of(who),
        "account.role",
        &format!("account/{}", account.login),
        &format!("role {}", account.role),
    )
    .await;
    Ok(account)
}

/// One's own password changed: the current one, and the new.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    pub password: String,
    pub new_password: String,
}

/// Changes the caller's own password after checking the current one (a
/// wrong one counts as a failed sign-in); the account's other sessions end.
pub async fn change_password(
    store: &Store,
    who: &Principal,
    r: &PasswordChange,
) -> Result<(), ServiceError> {
    let Some(account_id) = who.account_id else {
        return Err(ServiceError::Conflict(Text::new(
            "error.accounts.no_password",
        )));
    };
    let mut check = Check::default();
    check.password_in("new_password", &r.new_password, MIN_PASSWORD_CHARS);
    if r.new_password == r.password {
        check.fail_text("new_password", Text::new("check.accounts.same_password"));
    }
    check.done()?;
    let keys = auth::throttle_keys(who.address.parse().ok(), &who.actor);
    let window_ms = auth::LOGIN_WINDOW.as_millis() as u64;
    if let Some(wait_ms) = store
        .login_wait(&keys, auth::LOGIN_FAILURES_ALLOWED, window_ms, now_ms())
        .await?
    {
        return Err(ServiceError::Throttled(wait_ms.div_ceil(1000).max(1)));
    }
    let hash = store
        .account_for_login(&who.actor)
        .await?
        .map(|(_, hash)| hash)
        .ok_or_else(|| ServiceError::Forbidden(Text::new("error.accounts.none")))?;
    let current = r.password.clone();
    let verified = tokio::task::spawn_blocking(move || auth::verify_password(&hash, &current))
        .await
        .map_err(|e| ServiceError::unavailable(Source::Task, e))?;
    if !verified {
        store.login_failed(&keys, window_ms, now_ms()).await?;
        audit::record(
            store,
            &Actor::of(who),
            "account.password_failed",
            &format!("account/{}", who.actor),
            "",
        )
        .await;
        return Err(
            Invalid::one_text("password", Text::new("check.accounts.wrong_password")).into(),
        );
    }
    let keep = match &who.credential {
        Credential::Session { secret_sha256, .. } => Some(secret_sha256.as_str()),
        _ => None,
    };
    let new_hash = hash_password(r.new_password.clone()).await?;
    store.set_password(account_id, &new_hash, keep).await?;
    audit::record(
        store,
        &Actor::of(who),
        "account.password",
        &format!("account/{}", who.actor),
        "",
    )
    .await;
    Ok(())
}

/// Disables an account (it cannot sign in; its sessions and API keys stop
/// working) or enables it again.
pub async fn set_disabled(
    store: &Store,
    who: &Principal,
    login: &str,
    disabled: bool,
) -> Result<Account, ServiceError> {
    recently_signed_in(who, now_ms())?;
    let account = store.set_disabled(login, disabled, now_ms()).await?;
    audit::record(
        store,
        &Actor::of(who),
        if disabled {
            "account.disable"
        } else {
            "account.enable"
        },
        &format!("account/{}", account.login),
        "",
    )
    .await;
    Ok(account)
}

/// How recent a dashboard sign-in must be to change roles: a session left
/// open on an unattended screen cannot hand out admin.
pub const ROLE_CHANGE_SIGN_IN: Duration = Duration::from_secs(10 * 60);

fn recently_signed_in(who: &Principal, now_ms: u64) -> Result<(), ServiceError> {
    if let Credential::Session {
        signed_in_at_ms, ..
    } = &who.credential
        && now_ms.saturating_sub(u64::try_from(*signed_in_at_ms).unwrap_or(0))
            > ROLE_CHANGE_SIGN_IN.as_millis() as u64
    {
        return Err(ServiceError::Forbidden(Text::new(
            "error.accounts.sign_in_again",
        )));
    }
    Ok(())
}

/// The provider an organisation role acts for; other roles act for none.
async fn provider_for_role(
    store: &Store,
    role: Role,
    code: Option<&str>,
    check: &mut Check,
) -> Result<Option<i64>, ServiceError> {
    let Some(code) = code else {
        return Ok(None);
    };
    if role.is_staff() || role == Role::User {
        check.fail_text("provider", Text::new("check.accounts.not_organisation"));
        return Ok(None);
    }
    match store.provider(code).await {
        Ok(p) => Ok(Some(p.id)),
        Err(StoreError::NoProvider(_)) => {
            check.fail_text(
                "provider",
                Text::new("check.lines.no_provider").arg("code", code),
            );
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

/// argon2 is deliberately slow: it runs off the async threads.
pub(super) async fn hash_password(password: String) -> Result<String, ServiceError> {
    tokio::task::spawn_blocking(move || auth::hash_password(&password))
        .await
        .map_err(|e| ServiceError::unavailable(Source::Task, e))?
        .map_err(|e| ServiceError::unavailable(Source::Task, e))
}
