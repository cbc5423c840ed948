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

use super::{
    Body, Page, Params, Problem, parse_id, peer,
    views::{self, AccountView, ApiKeyView, AuditView, LineView, RegistrationView, TokenView},
};
use crate::{
    auth::{self, API_KEY_PREFIX, Credential, Principal, SESSION_COOKIE, SESSION_TTL},
    check::Check,
    i18n::Text,
    identity::random_secret,
    node::Node,
    service::{
        Actor, accounts, audit, lines, own_provider, prices, providers, registrations, tokens,
    },
    store::{AuditFilter, Provider, now_ms},
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
        return Err(Problem::throttled(wait_ms.div_ceil(1000).max(1)));
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
        return Err(Problem::text(
            StatusCode::UNAUTHORIZED,
            Text::new("error.wrong_login"),
        ));
    };
    if account.disabled {
        audit::record(
            &state.store,
            &Actor::new(&account.login, &address_text),
            "login.refused",
            "session",
            "the account is disabled",
        )
        .await;
        return Err(Problem::text(
            StatusCode::FORBIDDEN,
            Text::new("error.account_disabled"),
        ));
    }
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
        "must_change_password": account.must_change_password,
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
    let must_change_password = match me.account_id {
        Some(_) => state
            .store
            .account_for_login(&me.actor)
            .await?
            .is_some_and(|(a, _)| a.must_change_password),
        None => false,
    };
    Ok(Json(json!({
        "login": me.actor,
        "role": me.role,
        "provider": provider.map(|p| provider_json(&p, true)),
        "csrf_token": csrf,
        "must_change_password": must_change_password,
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

pub async fn register(State(state): Api, request: Request) -> Result<Response, Problem> {
    let address = peer(request.extensions())
        .map(|a| a.ip().to_string())
        .unwrap_or_default();
    let Body(r): Body<registrations::Application> = Body::from_request(request, &()).await?;
    let registration = registrations::register(&state.store, &address, &r).await?;
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
        Some(me.account_id.ok_or_else(|| {
            Problem::text(StatusCode::FORBIDDEN, Text::new("error.accounts.none"))
        })?)
    };
    let list = state.store.registrations(own).await?;
    Ok(Json(
        json!({ "registrations": views::all::<_, RegistrationView<'_>>(&list) }),
    ))
}

pub async fn approve(
    State(state): Api,
    Extension(me): Caller,
    Path(id): Path<String>,
    Body(review): Body<registrations::Review>,
) -> Result<Json<Value>, Problem> {
    let id = parse_id(&id, "a registration")?;
    let done = registrations::approve(&state.store, &me, id, &review).await?;
    Ok(Json(json!(RegistrationView::from(&done))))
}

pub async fn reject(
    State(state): Api,
    Extension(me): Caller,
    Path(id): Path<String>,
    Body(review): Body<registrations::Review>,
) -> Result<Json<Value>, Problem> {
    let id = parse_id(&id, "a registration")?;
    let done = registrations::reject(&state.store, &me, id, &review).await?;
    Ok(Json(json!(RegistrationView::from(&done))))
}

// ---- accounts ----

pub async fn accounts(State(state): Api) -> Result<Json<Value>, Problem> {
    let accounts = state.store.accounts().await?;
    Ok(Json(
        json!({ "accounts": views::all::<_, AccountView<'_>>(&accounts) }),
    ))
}

pub async fn create_account(
    State(state): Api,
    Extension(me): Caller,
    Body(r): Body<accounts::NewAccountRequest>,
) -> Result<Response, Problem> {
    let (account, generated) = accounts::create(&state.store, &me, &r).await?;
    let mut body = json!(AccountView::from(&account));
    if let Some(password) = generated {
        body["password"] = json!(password);
    }
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

pub async fn set_role(
    State(state): Api,
    Extension(me): Caller,
    Path(login): Path<String>,
    Body(r): Body<accounts::RoleChange>,
) -> Result<Json<Value>, Problem> {
    let account = accounts::set_role(&state.store, &me, &login, &r).await?;
    Ok(Json(json!(AccountView::from(&account))))
}

pub async fn disable_account(
    State(state): Api,
    Extension(me): Caller,
    Path(login): Path<String>,
) -> Result<Json<Value>, Problem> {
    let account = accounts::set_disabled(&state.store, &me, &login, true).await?;
    Ok(Json(json!(AccountView::from(&account))))
}

pub async fn enable_account(
    State(state): Api,
    Extension(me): Caller,
    Path(login): Path<String>,
) -> Result<Json<Value>, Problem> {
    let account = accounts::set_disabled(&state.store, &me, &login, false).await?;
    Ok(Json(json!(AccountView::from(&account))))
}

pub async fn change_password(
    State(state): Api,
    Extension(me): Caller,
    Body(r): Body<accounts::PasswordChange>,
) -> Result<StatusCode, Problem> {
    accounts::change_password(&state.store, &me, &r).await?;
    Ok(StatusCode::NO_CONTENT)
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
    #[serde(default, deserialize_with = "crate::check::whole::option")]
    ttl_days: Option<u32>,
}

pub async fn create_api_key(
    State(state): Api,
    Extension(me): Caller,
    Body(r): Body<NewApiKey>,
) -> Result<Response, Problem> {
    let account_id = me.account_id.ok_or_else(|| {
        Problem::text(
            StatusCode::CONFLICT,
            Text::new("error.center.no_key_account"),
        )
    })?;
    let mut check = Check::default();
    let name = check.text("name", &r.name, 100);
    let ttl_days = r.ttl_days.unwrap_or(90);
    if !(1..=365).contains(&ttl_days) {
        check.fail_text(
            "ttl_days",
            Text::new("check.check.between")
                .arg("min", 1)
                .arg("max", 365),
        );
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
    let account_id = me.account_id.ok_or_else(|| {
        Problem::text(
            StatusCode::NOT_FOUND,
            Text::new("error.center.no_api_key").arg("id", id),
        )
    })?;
    if !state.store.revoke_api_key(account_id, id).await? {
        return Err(Problem::text(
            StatusCode::NOT_FOUND,
            Text::new("error.center.no_own_api_key").arg("id", id),
        ));
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
        return Err(Problem::text(
            StatusCode::NOT_FOUND,
            Text::new("error.center.no_token").arg("id", id),
        ));
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

/// Which audit entries: a [`Page`] with filters.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    #[serde(default)]
    before: Option<i64>,
    #[serde(default)]
    limit: Option<i64>,
    #[serde(default)]
    actor: Option<String>,
    #[serde(default)]
    action: Option<String>,
    #[serde(default)]
    subject: Option<String>,
    #[serde(default)]
    since: Option<i64>,
    #[serde(default)]
    until: Option<i64>,
}

pub async fn audit_log(
    State(state): Api,
    Params(q): Params<AuditQuery>,
) -> Result<Json<Value>, Problem> {
    let limit = Page {
        before: q.before,
        limit: q.limit,
    }
    .limit()?;
    let mut check = Check::default();
    for (field, at) in [("since", q.since), ("until", q.until)] {
        if at.is_some_and(|ms| ms < 0) {
            check.fail_text(field, Text::new("check.center.unix_ms"));
        }
    }
    check.done()?;
    let entries = state
        .store
        .audit_log(&AuditFilter {
            before: q.before,
            limit,
            actor: q.actor.filter(|a| !a.is_empty()),
            action: q.action,
            subject: q.subject,
            since: q.since,
            until: q.until,
        })
        .await?;
    let next = (entries.len() as i64 == limit)
        .then(|| entries.last().map(|e| e.id))
        .flatten();
    Ok(Json(
        json!({ "entries": views::all::<_, AuditView<'_>>(&entries), "next_before": next }),
    ))
}
