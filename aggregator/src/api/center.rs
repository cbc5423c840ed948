//! The service center: signing in, registration and review, accounts, API
//! keys, enrollment tokens, dedicated lines and the audit log. Every change
//! is written to the audit log with who, what and from where.

use std::sync::Arc;

use axum::{
    Extension, Json,
    extract::{FromRequest, Path, Request, State},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use serde_json::{Value, json};
use suanli_protocol::{identifier::Industry, uscc::Uscc};

use super::{
    Body, Page, Params, Problem, parse_id, peer,
    views::{self, AccountView, ApiKeyView, AuditView, LineView, RegistrationView, TokenView},
};
use crate::{
    auth::{
        self, API_KEY_PREFIX, Credential, MIN_PASSWORD_CHARS, Principal, Role, SESSION_COOKIE,
        SESSION_TTL,
    },
    check::Check,
    identity::random_secret,
    node::Node,
    service::{Actor, Source, audit, lines, own_provider, prices, providers, tokens},
    store::{NewAccount, NewRegistration, Provider, now_ms},
};

type Api = State<Arc<Node>>;
type Caller = Extension<Principal>;

fn provider_json(p: &Provider, full: bool) -> Value {
    let mut v = json!({
        "code": p.owner_code,
        "name": p.name,
        "kind": p.kind,
        "region": p.region,
        "industry": p.industry,
    });
    if full {
        v["uscc"] = json!(p.uscc);
        v["uscc_verified"] = json!(p.uscc_verified);
        v["contact"] = json!(p.contact);
    }
    v
}

// ---- sessions ----

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Login {
    login: String,
    password: String,
}

pub async fn login(State(state): Api, request: Request) -> Result<Response, Problem> {
    let address = peer(request.extensions()).map(|a| a.ip());
    let address_text = address.map(|a| a.to_string()).unwrap_or_default();
    let Body(body): Body<Login> = Body::from_request(request, &()).await?;
    let store = &state.store;
    let keys = auth::throttle_keys(address, &body.login);
    let window_ms = auth::LOGIN_WINDOW.as_millis() as u64;
    if let Some(wait_ms) = store
        .login_wait(&keys, auth::LOGIN_FAILURES_ALLOWED, window_ms, now_ms())
        .await?
    {
        let wait_s = wait_ms.div_ceil(1000).max(1);
        return Err(Problem::too_many(
            wait_s,
            format!("too many failed sign-ins; try again in {wait_s} s"),
        ));
    }
    // A login with control characters cannot exist (and NUL cannot be queried).
    let found = if body.login.chars().any(char::is_control) {
        None
    } else {
        store.account_for_login(&body.login).await?
    };
    let (hash, account) = match &found {
        Some((account, hash)) => (hash.clone(), Some(account.clone())),
        None => (auth::decoy_hash().to_owned(), None),
    };
    let password = body.password.clone();
    let verified = tokio::task::spawn_blocking(move || auth::verify_password(&hash, &password))
        .await
        .unwrap_or(false);
    let Some(account) = account.filter(|_| verified) else {
        store.login_failed(&keys, window_ms, now_ms()).await?;
        // The attempted login is recorded, never the password.
        audit::record(
            &state.store,
            &Actor::new(printable(&body.login), &address_text),
            "login.failed",
            "session",
            "",
        )
        .await;
        return Err(Problem::new(
            StatusCode::UNAUTHORIZED,
            "wrong login or password",
        ));
    };
    store.login_succeeded(&keys).await?;
    let secret = random_secret();
    let csrf_token = random_secret();
    let expires = now_ms() + SESSION_TTL.as_millis() as u64;
    store
        .create_session(
            &auth::secret_hash(&secret),
            account.id,
            &csrf_token,
            expires,
        )
        .await?;
    audit::record(
        &state.store,
        &Actor::new(&account.login, &address_text),
        "login",
        "session",
        "",
    )
    .await;
    let cookie = format!(
        "{SESSION_COOKIE}={secret}; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age={}",
        SESSION_TTL.as_secs()
    );
    let body = Json(json!({
        "login": account.login,
        "role": account.role,
        "csrf_token": csrf_token,
        "expires_at_ms": expires,
    }));
    Ok(([(header::SET_COOKIE, cookie)], body).into_response())
}

/// A login as typed, made safe to store and show.
fn printable(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).take(64).collect()
}

pub async fn whoami(State(state): Api, Extension(me): Caller) -> Result<Json<Value>, Problem> {
    let provider = match me.provider_id {
        Some(id) => Some(state.store.provider_by_id(id).await?),
        None => None,
    };
    let csrf = match &me.credential {
        Credential::Session { csrf_token, .. } => Some(csrf_token.clone()),
        _ => None,
    };
    Ok(Json(json!({
        "login": me.actor,
        "role": me.role,
        "provider": provider.map(|p| provider_json(&p, true)),
        "csrf_token": csrf,
    })))
}

pub async fn logout(State(state): Api, Extension(me): Caller) -> Result<Response, Problem> {
    if let Credential::Session { secret_sha256, .. } = &me.credential {
        state.store.delete_session(secret_sha256).await?;
        audit::record(&state.store, &Actor::of(&me), "logout", "session", "").await;
    }
    let clear = format!("{SESSION_COOKIE}=; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=0");
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, clear)]).into_response())
}

// ---- registration and review ----

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistrationRequest {
    kind: String,
    name: String,
    uscc: String,
    #[serde(default)]
    accept_unverified_uscc: bool,
    region: String,
    industry: String,
    contact: String,
    login: String,
    password: String,
}

pub async fn register(State(state): Api, request: Request) -> Result<Response, Problem> {
    let address = peer(request.extensions())
        .map(|a| a.ip().to_string())
        .unwrap_or_default();
    let Body(r): Body<RegistrationRequest> = Body::from_request(request, &()).await?;
    let mut check = Check::default();
    let role = Role::for_organisation(&r.kind);
    if role.is_none() {
        check.fail("kind", "one of provider, reseller, line_provider");
    }
    let name = check.text("name", &r.name, 200);
    let contact = check.text("contact", &r.contact, 200);
    let region = check.region("region", &r.region);
    let industry = match Industry::parse(&r.industry) {
        Ok(i) => i.to_string(),
        Err(e) => {
            check.fail("industry", format!("not a GB/T 4754 industry code: {e}"));
            String::new()
        }
    };
    let normalized = r.uscc.trim().to_ascii_uppercase();
    let uscc_verified = match Uscc::parse(&normalized) {
        Ok(_) => true,
        Err(e) if e.is_check_failure() && r.accept_unverified_uscc => false,
        Err(e) if e.is_check_failure() => {
            check.fail(
                "uscc",
                format!(
                    "{e}; if this is the code on the business licence, file again with \
                     accept_unverified_uscc: true and an administrator will review it"
                ),
            );
            false
        }
        Err(e) => {
            check.fail("uscc", e.to_string());
            false
        }
    };
    let login = check.login(&r.login);
    check.password(&r.password, MIN_PASSWORD_CHARS);
    check.done()?;
    let role = role.ok_or_else(|| Problem::bad_request("kind"))?;
    let password = r.password.clone();
    let hash = tokio::task::spawn_blocking(move || auth::hash_password(&password))
        .await
        .map_err(|e| Problem::unavailable(Source::Task, e))?
        .map_err(|e| Problem::unavailable(Source::Task, e))?;
    let store = &state.store;
    let account = store
        .create_account(&NewAccount {
            login: login.clone(),
            password_hash: hash,
            role: role.as_str().to_owned(),
            provider_id: None,
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
        &state.store,
        &Actor::new(&login, &address),
        "registration.create",
        &format!("registration/{}", registration.id),
        &format!(
            "{} {} uscc_verified={uscc_verified}",
            registration.kind, registration.uscc
        ),
    )
    .await;
    Ok((
        StatusCode::CREATED,
        Json(RegistrationView::from(&registration)),
    )
        .into_response())
}

pub async fn registrations(
    State(state): Api,
    Extension(me): Caller,
) -> Result<Json<Value>, Problem> {
    let own = if me.role.is_staff() {
        None
    } else {
        Some(
            me.account_id
                .ok_or_else(|| Problem::forbidden("no account"))?,
        )
    };
    let list = state.store.registrations(own).await?;
    Ok(Json(
        json!({ "registrations": views::all::<_, RegistrationView<'_>>(&list) }),
    ))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Review {
    #[serde(default)]
    reason: Option<String>,
}

pub async fn approve(
    State(state): Api,
    Extension(me): Caller,
    Path(id): Path<String>,
    Body(review): Body<Review>,
) -> Result<Json<Value>, Problem> {
    let id = parse_id(&id, "a registration")?;
    let store = &state.store;
    let pending = store.registration(id).await?;
    if !pending.uscc_verified && me.role != Role::Admin {
        return Err(Problem::forbidden(
            "this credit code fails its check character; only an administrator may approve it",
        ));
    }
    let done = store
        .review_registration(id, true, review.reason.as_deref(), &me.actor)
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
        &state.store,
        &Actor::of(&me),
        "registration.approve",
        &format!("registration/{id}"),
        &detail,
    )
    .await;
    Ok(Json(json!(RegistrationView::from(&done))))
}

pub async fn reject(
    State(state): Api,
    Extension(me): Caller,
    Path(id): Path<String>,
    Body(review): Body<Review>,
) -> Result<Json<Value>, Problem> {
    let id = parse_id(&id, "a registration")?;
    let mut check = Check::default();
    let reason = check.text("reason", review.reason.as_deref().unwrap_or(""), 500);
    check.done()?;
    let done = state
        .store
        .review_registration(id, false, Some(&reason), &me.actor)
        .await?;
    audit::record(
        &state.store,
        &Actor::of(&me),
        "registration.reject",
        &format!("registration/{id}"),
        &reason,
    )
    .await;
    Ok(Json(json!(RegistrationView::from(&done))))
}

// ---- accounts ----

pub async fn accounts(State(state): Api) -> Result<Json<Value>, Problem> {
    let accounts = state.store.accounts().await?;
    Ok(Json(
        json!({ "accounts": views::all::<_, AccountView<'_>>(&accounts) }),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewAccountRequest {
    login: String,
    #[serde(default)]
    password: Option<String>,
    role: Role,
    #[serde(default)]
    provider: Option<String>,
}

async fn provider_for_role(
    state: &Node,
    role: Role,
    code: Option<&str>,
    check: &mut Check,
) -> Result<Option<i64>, Problem> {
    let Some(code) = code else {
        return Ok(None);
    };
    if role.is_staff() || role == Role::User {
        check.fail("provider", "only organisation roles act for a provider");
        return Ok(None);
    }
    match state.store.provider(code).await {
        Ok(p) => Ok(Some(p.id)),
        Err(crate::store::StoreError::NoProvider(_)) => {
            check.fail("provider", format!("no provider {code}"));
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn create_account(
    State(state): Api,
    Extension(me): Caller,
    Body(r): Body<NewAccountRequest>,
) -> Result<Response, Problem> {
    let mut check = Check::default();
    let login = check.login(&r.login);
    if let Some(p) = &r.password {
        check.password(p, MIN_PASSWORD_CHARS);
    }
    let provider_id = provider_for_role(&state, r.role, r.provider.as_deref(), &mut check).await?;
    check.done()?;
    let generated = r.password.is_none().then(random_secret);
    let password = r.password.clone().or(generated.clone()).unwrap_or_default();
    let hash = tokio::task::spawn_blocking(move || auth::hash_password(&password))
        .await
        .map_err(|e| Problem::unavailable(Source::Task, e))?
        .map_err(|e| Problem::unavailable(Source::Task, e))?;
    let account = state
        .store
        .create_account(&NewAccount {
            login,
            password_hash: hash,
            role: r.role.as_str().to_owned(),
            provider_id,
        })
        .await?;
    audit::record(
        &state.store,
        &Actor::of(&me),
        "account.create",
        &format!("account/{}", account.login),
        &format!("role {}", account.role),
    )
    .await;
    let mut body = json!(AccountView::from(&account));
    if let Some(password) = generated {
        body["password"] = json!(password);
    }
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleChange {
    role: Role,
    #[serde(default)]
    provider: Option<String>,
}

pub async fn set_role(
    State(state): Api,
    Extension(me): Caller,
    Path(login): Path<String>,
    Body(r): Body<RoleChange>,
) -> Result<Json<Value>, Problem> {
    let mut check = Check::default();
    let provider_id = provider_for_role(&state, r.role, r.provider.as_deref(), &mut check).await?;
    check.done()?;
    let account = state
        .store
        .set_role(&login, r.role.as_str(), provider_id)
        .await?;
    audit::record(
        &state.store,
        &Actor::of(&me),
        "account.role",
        &format!("account/{}", account.login),
        &format!("role {}", account.role),
    )
    .await;
    Ok(Json(json!(AccountView::from(&account))))
}

// ---- API keys ----

pub async fn api_keys(State(state): Api, Extension(me): Caller) -> Result<Json<Value>, Problem> {
    let keys = match me.account_id {
        Some(id) => state.store.api_keys(id).await?,
        None => Vec::new(),
    };
    Ok(Json(
        json!({ "api_keys": views::all::<_, ApiKeyView<'_>>(&keys) }),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewApiKey {
    name: String,
    #[serde(default)]
    ttl_days: Option<u32>,
}

pub async fn create_api_key(
    State(state): Api,
    Extension(me): Caller,
    Body(r): Body<NewApiKey>,
) -> Result<Response, Problem> {
    let account_id = me.account_id.ok_or_else(|| {
        Problem::conflict("the admin token has no account to hold keys; sign in as an account")
    })?;
    let mut check = Check::default();
    let name = check.text("name", &r.name, 100);
    let ttl_days = r.ttl_days.unwrap_or(90);
    if !(1..=365).contains(&ttl_days) {
        check.fail("ttl_days", "between 1 and 365");
    }
    check.done()?;
    let key = format!("{API_KEY_PREFIX}{}", random_secret());
    let expires = now_ms() + u64::from(ttl_days) * 86_400_000;
    let id = state
        .store
        .create_api_key(account_id, &name, &auth::secret_hash(&key), expires)
        .await?;
    audit::record(
        &state.store,
        &Actor::of(&me),
        "api_key.create",
        &format!("api_key/{id}"),
        &name,
    )
    .await;
    Ok((
        StatusCode::CREATED,
        Json(json!({"id": id, "name": name, "key": key, "expires_at_ms": expires})),
    )
        .into_response())
}

pub async fn revoke_api_key(
    State(state): Api,
    Extension(me): Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    let id = parse_id(&id, "a key")?;
    let account_id = me
        .account_id
        .ok_or_else(|| Problem::not_found(format!("no API key {id}")))?;
    if !state.store.revoke_api_key(account_id, id).await? {
        return Err(Problem::not_found(format!("no API key {id} of yours")));
    }
    audit::record(
        &state.store,
        &Actor::of(&me),
        "api_key.revoke",
        &format!("api_key/{id}"),
        "",
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

// ---- enrollment tokens ----

pub async fn tokens(State(state): Api, Extension(me): Caller) -> Result<Json<Value>, Problem> {
    let scope = if me.role.is_staff() {
        None
    } else {
        Some(own_provider(&me)?)
    };
    let tokens = state.store.tokens(scope).await?;
    Ok(Json(
        json!({ "tokens": views::all::<_, TokenView<'_>>(&tokens) }),
    ))
}

pub async fn create_token(
    State(state): Api,
    Extension(me): Caller,
    Body(r): Body<tokens::TokenAsk>,
) -> Result<Response, Problem> {
    let (provider, issued) = tokens::issue(&state, &me, &r).await?;
    let join = &issued.join;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "id": issued.id,
            "provider": provider.owner_code,
            "join": join.to_string(),
            "command": format!("suanli-agent join '{join}'"),
            "expires_at_ms": issued.expires_at_ms,
            "uses": issued.uses,
            "region": issued.region.unwrap_or(provider.region),
        })),
    )
        .into_response())
}

pub async fn revoke_token(
    State(state): Api,
    Extension(me): Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    let id = parse_id(&id, "a token")?;
    let store = &state.store;
    let provider_id = store.token_provider(id).await?;
    if !me.may_act_for(provider_id) {
        return Err(Problem::not_found(format!("no enrollment token {id}")));
    }
    store.revoke_token(id).await?;
    audit::record(
        &state.store,
        &Actor::of(&me),
        "token.revoke",
        &format!("token/{id}"),
        "",
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

// ---- providers and lines ----

pub async fn providers(State(state): Api, Extension(me): Caller) -> Result<Json<Value>, Problem> {
    let list: Vec<Value> = state
        .store
        .providers()
        .await?
        .iter()
        .filter(|p| providers::is_public(p) || me.role.is_staff())
        .map(|p| provider_json(p, me.may_act_for(p.id)))
        .collect();
    Ok(Json(json!({ "providers": list })))
}

pub async fn provider(
    State(state): Api,
    Extension(me): Caller,
    Path(code): Path<String>,
) -> Result<Json<Value>, Problem> {
    let p = state.store.provider(&code).await?;
    Ok(Json(provider_json(&p, me.may_act_for(p.id))))
}

// ---- prices ----

pub async fn prices(State(state): Api, Path(code): Path<String>) -> Result<Json<Value>, Problem> {
    let store = &state.store;
    let p = store.provider(&code).await?;
    let list: Vec<Value> = store
        .prices(Some(p.id))
        .await?
        .iter()
        .map(prices::shown)
        .collect();
    Ok(Json(json!({ "provider": p.owner_code, "prices": list })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceListRequest {
    prices: Vec<prices::PriceEntry>,
}

pub async fn set_prices(
    State(state): Api,
    Extension(me): Caller,
    Path(code): Path<String>,
    Body(r): Body<PriceListRequest>,
) -> Result<Json<Value>, Problem> {
    let (provider, rows) = prices::set(&state, &me, &code, &r.prices).await?;
    let listed: Vec<Value> = rows.iter().map(prices::shown).collect();
    Ok(Json(
        json!({ "provider": provider.owner_code, "prices": listed }),
    ))
}

pub async fn lines(State(state): Api) -> Result<Json<Value>, Problem> {
    let lines = state.store.lines().await?;
    Ok(Json(
        json!({ "lines": views::all::<_, LineView<'_>>(&lines) }),
    ))
}

pub async fn create_line(
    State(state): Api,
    Extension(me): Caller,
    Body(r): Body<lines::LineRequest>,
) -> Result<Response, Problem> {
    let line = lines::create(&state, &me, &r).await?;
    Ok((StatusCode::CREATED, Json(json!(LineView::from(&line)))).into_response())
}

pub async fn update_line(
    State(state): Api,
    Extension(me): Caller,
    Path(id): Path<String>,
    Body(r): Body<lines::LineUpdate>,
) -> Result<Json<Value>, Problem> {
    let id = parse_id(&id, "a line")?;
    let line = lines::update(&state, &me, id, &r).await?;
    Ok(Json(json!(LineView::from(&line))))
}

// ---- audit log ----

pub async fn audit_log(State(state): Api, Params(q): Params<Page>) -> Result<Json<Value>, Problem> {
    let limit = q.limit()?;
    let entries = state.store.audit_log(q.before, limit).await?;
    let next = (entries.len() as i64 == limit)
        .then(|| entries.last().map(|e| e.id))
        .flatten();
    Ok(Json(
        json!({ "entries": views::all::<_, AuditView<'_>>(&entries), "next_before": next }),
    ))
}
