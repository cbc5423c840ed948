//! Registration and review (入驻申请与审核): an organisation applies with
//! its unified social credit code; staff approve (which files it as a
//! provider and ties the applicant's account to it) or reject with a reason.

use serde::Deserialize;
use suanli_protocol::{identifier::Industry, uscc::Uscc};

use super::{Actor, ServiceError, accounts::hash_password, audit};
use crate::{
    auth::{MIN_PASSWORD_CHARS, Principal, Role},
    check::{Check, Invalid},
    i18n::Text,
    store::{NewAccount, NewRegistration, Registration, Store},
};

/// What an organisation files.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Application {
    pub kind: String,
    pub name: String,
    pub uscc: String,
    /// The code fails its check characters but is the one on the licence;
    /// only an administrator may approve such an application.
    #[serde(default, deserialize_with = "crate::check::null_as_default")]
    pub accept_unverified_uscc: bool,
    pub region: String,
    pub industry: String,
    pub contact: String,
    pub login: String,
    pub password: String,
}

/// A reviewer's word: a reason, required to reject.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Review {
    #[serde(default)]
    pub reason: Option<String>,
}

/// Files an application from `address`, with the applicant's account.
pub async fn register(
    store: &Store,
    address: &str,
    r: &Application,
) -> Result<Registration, ServiceError> {
    let mut check = Check::default();
    let role = Role::for_organisation(&r.kind);
    if role.is_none() {
        check.fail_text("kind", Text::new("check.registrations.kind"));
    }
    let name = check.text("name", &r.name, 200);
    let contact = check.text("contact", &r.contact, 200);
    let region = check.region("region", &r.region);
    let industry = match Industry::parse(&r.industry) {
        Ok(i) => i.to_string(),
        Err(e) => {
            check.fail_text(
                "industry",
                Text::new("check.registrations.industry").arg("error", e),
            );
            String::new()
        }
    };
    let normalized = r.uscc.trim().to_ascii_uppercase();
    let uscc_verified = match Uscc::parse(&normalized) {
        Ok(_) => true,
        Err(e) if e.is_check_failure() && r.accept_unverified_uscc => false,
        Err(e) if e.is_check_failure() => {
            check.fail_text(
                "uscc",
                Text::new("check.registrations.uscc_unverified").arg("error", e),
            );
            false
        }
        Err(e) => {
            check.fail_text("uscc", Text::plain(e));
            false
        }
    };
    let login = check.login(&r.login);
    check.password(&r.password, MIN_PASSWORD_CHARS);
    check.done()?;
    let role =
        role.ok_or_else(|| Invalid::one_text("kind", Text::new("check.registrations.kind")))?;
    let hash = hash_password(r.password.clone()).await?;
    let account = store
        .create_account(&NewAccount {
            login: login.clone(),
            password_hash: hash,
            role: role.as_str().to_owned(),
            provider_id: None,
            must_change_password: false,
        })
        .await?;
    let registration = store
        .create_registration(&NewRegistration {
            kind: r.kind.clone(),
            name,
            uscc: normalized,
            uscc_verified,
            region,
            industry,
            contact,
            account_id: account.id,
        })
        .await?;
    audit::record(
        store,
        &Actor::new(&login, address),
        "registration.create",
        &format!("registration/{}", registration.id),
        &format!(
            "{} {} uscc_verified={uscc_verified}",
            registration.kind, registration.uscc
        ),
    )
    .await;
    Ok(registration)
}

/// Approves an application; one whose code failed its check only by an
/// administrator, and the override is audited.
pub async fn approve(
    store: &Store,
    who: &Principal,
    id: i64,
    review: &Review,
) -> Result<Registration, ServiceError> {
    // A note is optional on approval, but held to the rule of every reason.
    let mut check = Check::default();
    let note = review
        .reason
        .as_deref()
        .map(|r| check.text("reason", r, 500));
    check.done()?;
    let pending = store.registration(id).await?;
    if !pending.uscc_verified && who.role != Role::Admin {
        return Err(ServiceError::Forbidden(Text::new(
            "error.registrations.admin_only",
        )));
    }
    let done = store
        .review_registration(id, true, note.as_deref(), &who.actor)
        .await?;
    let detail = if done.uscc_verified {
        format!("provider {}", done.provider.as_deref().unwrap_or(""))
    } else {
        format!(
            "provider {}; uscc check override for {}",
            done.provider.as_deref().unwrap_or(""),
            done.uscc
        )
    };
    audit::record(
        store,
        &Actor::of(who),
        "registration.approve",
        &format!("registration/{id}"),
        &detail,
    )
    .await;
    Ok(done)
}

/// Rejects an application, with the reason the applicant will read.
pub async fn reject(
    store: &Store,
    who: &Principal,
    id: i64,
    review: &Review,
) -> Result<Registration, ServiceError> {
    let mut check = Check::default();
    let reason = check.text("reason", review.reason.as_deref().unwrap_or(""), 500);
    check.done()?;
    let done = store
        .review_registration(id, false, Some(&reason), &who.actor)
        .await?;
    audit::record(
        store,
        &Actor::of(who),
        "registration.reject",
        &format!("registration/{id}"),
        &reason,
    )
    .await;
    Ok(done)
}
