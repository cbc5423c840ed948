//! The HTTP API (`/api/v1`), `/metrics` and the dashboard's assets.
//!
//! Every route is one entry of [`ROUTES`]: its method, path, who may call
//! it, what it takes and what it answers. The router and the OpenAPI document are both made
//! from that table, so neither can list a route the other lacks, and the
//! access rule is enforced before a handler (or its body parser) runs.
//! Errors are `application/problem+json` (RFC 9457).

use std::{net::SocketAddr, sync::Arc};

use axum::{
    Json, Router,
    extract::{ConnectInfo, DefaultBodyLimit, Request, State},
    http::{HeaderMap, Method, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
    routing::MethodRouter,
};

use crate::{
    auth::{self, API_KEY_PREFIX, CSRF_HEADER, Credential, Principal, Role, SESSION_COOKIE},
    check::FieldProblem,
    i18n::Text,
    node::Node,
};

mod alerts;
mod center;
mod dashboard;
pub mod https;
mod metrics;
mod nodes;
mod openapi;
mod problem;
mod selection;
mod status;
mod views;

pub use openapi::openapi;
pub use problem::{Body, BodySchema, Params, Problem, Reader, parse_id};

/// `[http]` of the config file: the API and dashboard's listener.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSection {
    /// TCP address of the HTTP API.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_listen: Option<std::net::SocketAddr>,
    /// PEM certificate chain for HTTPS (with http_tls_key); without one, a non-loopback listener gets a certificate the node CA signs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_tls_cert: Option<std::path::PathBuf>,
    /// PEM private key of http_tls_cert.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_tls_key: Option<std::path::PathBuf>,
    /// Plain HTTP on a non-loopback address, behind a TLS-terminating proxy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_plaintext: Option<bool>,
}

/// Bodies larger than this are refused before they are read.
pub const BODY_LIMIT: usize = 64 << 10;

/// Who may call a route.
#[derive(Debug, Clone, Copy)]
pub enum Access {
    /// Anyone, signed in or not.
    Public,
    /// A signed-in caller with one of these roles.
    Roles(&'static [Role]),
}

const ALL: &[Role] = &Role::ALL;
const STAFF: &[Role] = &[Role::Admin, Role::Operator, Role::Viewer];
const MANAGERS: &[Role] = &[Role::Admin, Role::Operator];
const ADMIN: &[Role] = &[Role::Admin];
/// Staff and organisations that own hosts.
const HOST_OWNERS: &[Role] = &[
    Role::Admin,
    Role::Operator,
    Role::Viewer,
    Role::Provider,
    Role::Reseller,
];
const HOST_MANAGERS: &[Role] = &[Role::Admin, Role::Operator, Role::Provider, Role::Reseller];

/// What a query parameter takes, exactly as its handler checks it: the
/// OpenAPI document says no more and no less (Schemathesis holds both to it).
#[derive(Debug, Clone, Copy)]
pub enum Param {
    /// Any text.
    Text,
    /// A whole number within these bounds.
    Int(i64, i64),
    /// One of these words.
    OneOf(&'static [&'static str]),
    /// `true` or `false`.
    Flag,
    /// Text matching this regular expression.
    Pattern(&'static str),
}

/// `before` of the logs read newest first ([`Page`]): any id.
const BEFORE: (&str, Param, &str) = (
    "before",
    Param::Int(i64::MIN, i64::MAX),
    "entries older than this id",
);
/// `limit` of the logs read newest first ([`Page`]).
const LOG_LIMIT: (&str, Param, &str) = (
    "limit",
    Param::Int(1, 1000),
    "at most this many (default 100)",
);
/// An opaque cursor: `next_cursor` of the previous page (empty: the first).
const CURSOR: (&str, Param, &str) = (
    "cursor",
    Param::Pattern("^(-?[0-9]{1,18})?$"),
    "next_cursor of the previous page",
);

/// The resource type codes (identifier field 5).
const RESOURCE_TYPES: &[&str] = &["C", "A", "H", "V", "K", "S", "P"];
/// Unix milliseconds, or an RFC 3339 time (UTC `Z` or none).
const TIME: &str =
    r"^([0-9]{1,15}|[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?Z?)$";

/// One route: what the router serves and the OpenAPI document describes.
#[derive(Debug)]
pub struct Route {
    pub method: Method,
    pub path: &'static str,
    pub access: Access,
    pub summary: &'static str,
    /// Query parameters: (name, what it takes, description).
    pub query: &'static [(&'static str, Param, &'static str)],
    /// Statuses this route gives beyond those every route of its kind does
    /// (see `openapi::error_statuses`).
    pub errors: &'static [u16],
    /// The JSON request body's schema, by name in `components.schemas`.
    pub body: Option<&'static str>,
    /// The JSON reply's schema, by name (see `openapi/responses.rs`).
    pub reply: Option<&'static str>,
    /// Success status and what the response is.
    pub success: (u16, &'static str),
    pub handler: fn() -> MethodRouter<Arc<Node>>,
}

macro_rules! route {
    (@or $default:expr) => { $default };
    (@or $default:expr, $value:expr) => { $value };
    ($method:ident $path:literal, $access:expr, $summary:literal, $handler:expr
     $(, query = $query:expr)? $(, body = $body:literal)? $(, reply = $reply:literal)?
     $(, success = $success:expr)? $(, errors = $errors:expr)?) => {
        Route {
            method: Method::$method,
            path: $path,
            access: $access,
            summary: $summary,
            query: route!(@or &[] $(, $query)?),
            errors: route!(@or &[] $(, $errors)?),
            body: route!(@or None $(, Some($body))?),
            reply: route!(@or None $(, Some($reply))?),
            success: route!(@or (200, "OK") $(, $success)?),
            handler: || axum::routing::on(
                axum::routing::MethodFilter::try_from(Method::$method).expect("a plain method"),
                $handler,
            ),
        }
    };
}

/// Every route of the API.
pub static ROUTES: std::sync::LazyLock<Vec<Route>> = std::sync::LazyLock::new(|| {
    use center::*;
    use status::*;
    vec![
        route!(GET "/api/v1/openapi.json", Access::Public, "This document (OpenAPI 3.1)", openapi_document),
        route!(POST "/api/v1/session", Access::Public, "Sign in; sets the session cookie and returns the CSRF token", login, body = "Login", reply = "Session", errors = &[401, 429]),
        route!(GET "/api/v1/session", Access::Roles(ALL), "Who is signed in", whoami, reply = "Me"),
        route!(DELETE "/api/v1/session", Access::Roles(ALL), "Sign out", logout, success = (204, "Signed out")),
        route!(POST "/api/v1/registrations", Access::Public, "An organisation applies to join the node (reviewed by node staff)", register, body = "Registration", reply = "RegistrationRecord", success = (201, "Filed for review")),
        route!(GET "/api/v1/registrations", Access::Roles(ALL), "Registrations: all for staff, one's own otherwise", registrations, reply = "RegistrationList"),
        route!(POST "/api/v1/registrations/{id}/approve", Access::Roles(MANAGERS), "Approve a registration; assigns the provider code", approve, body = "Review", reply = "RegistrationRecord"),
        route!(POST "/api/v1/registrations/{id}/reject", Access::Roles(MANAGERS), "Reject a registration with a reason", reject, body = "Reason", reply = "RegistrationRecord"),
        route!(GET "/api/v1/accounts", Access::Roles(ADMIN), "Accounts", accounts, reply = "AccountList"),
        route!(POST "/api/v1/accounts", Access::Roles(ADMIN), "Create an account (a password is generated if none is given)", create_account, body = "NewAccount", reply = "CreatedAccount", success = (201, "Created")),
        route!(POST "/api/v1/accounts/{login}/role", Access::Roles(ADMIN), "Change an account's role", set_role, body = "RoleChange", reply = "Account"),
        route!(POST "/api/v1/accounts/{login}/disable", Access::Roles(ADMIN), "Disable an account: it cannot sign in, its sessions end and its API keys stop working (never the last enabled admin)", disable_account, reply = "Account"),
        route!(POST "/api/v1/accounts/{login}/enable", Access::Roles(ADMIN), "Enable a disabled account again", enable_account, reply = "Account"),
        route!(POST "/api/v1/session/password", Access::Roles(ALL), "Change your own password (the current one is checked; a wrong one counts as a failed sign-in); your other sessions end", change_password, body = "PasswordChange", success = (204, "Changed"), errors = &[429]),
        route!(GET "/api/v1/api-keys", Access::Roles(ALL), "The caller's API keys", api_keys, reply = "ApiKeyList"),
        route!(POST "/api/v1/api-keys", Access::Roles(ALL), "Create an API key for the caller; the key is shown once", create_api_key, body = "NewApiKey", reply = "CreatedApiKey", success = (201, "Created")),
        route!(DELETE "/api/v1/api-keys/{id}", Access::Roles(ALL), "Revoke one of the caller's API keys", revoke_api_key, success = (204, "Revoked")),
        route!(GET "/api/v1/tokens", Access::Roles(HOST_OWNERS), "Enrollment tokens: all for staff, the organisation's own otherwise", tokens, reply = "TokenList"),
        route!(POST "/api/v1/tokens", Access::Roles(HOST_MANAGERS), "Create an enrollment token; returns the join string once", create_token, body = "NewToken", reply = "CreatedToken", success = (201, "Created")),
        route!(DELETE "/api/v1/tokens/{id}", Access::Roles(HOST_MANAGERS), "Revoke an enrollment token", revoke_token, success = (204, "Revoked")),
        route!(GET "/api/v1/audit", Access::Roles(STAFF), "The audit log, newest first", audit_log, query = &[BEFORE, LOG_LIMIT, ("actor", Param::Text, "exactly this actor (a login, admin-token, cli, node)"), ("action", Param::Text, "actions starting with this, e.g. account. or silence.create"), ("subject", Param::Text, "subjects containing this, e.g. a host or an account"), ("since", Param::Int(0, i64::MAX), "from this time, unix milliseconds"), ("until", Param::Int(0, i64::MAX), "before this time, unix milliseconds")], reply = "AuditPage"),
        route!(GET "/api/v1/summary", Access::Roles(ALL), "Node summary: hosts by state, capacity by resource type and accelerator model, utilization", summary, reply = "Summary"),
        route!(GET "/api/v1/resources", Access::Roles(ALL), "Resources, filtered, in pages", resources, query = &[
            ("type", Param::OneOf(RESOURCE_TYPES), "resource type code (C general, A AI accelerator, H supercomputing, …)"),
            ("model", Param::Text, "accelerator or CPU model, case-insensitive substring (H100 finds NVIDIA H100 80GB HBM3)"),
            ("region", Param::Text, "GB/T 2260 region code prefix (11 Beijing, 1101 its districts)"),
            ("provider", Param::Text, "provider code"),
            ("industry", Param::Text, "GB/T 4754 industry code prefix"),
            ("state", Param::OneOf(&["online", "stale", "offline", "revoked"]), "a host state"),
            ("free", Param::Flag, "true: only resources free now; false: only those in use"),
            ("q", Param::Text, "identifier or hostname substring"),
            CURSOR,
            ("limit", Param::Int(1, 1000), "page size (default 100)"),
        ], reply = "ResourcePage"),
        route!(GET "/api/v1/resources/{identifier}", Access::Roles(ALL), "Resolve an identifier in this node's subtree: a resource of this node with its live state, else the identifier library's entry (owner, state, when filed, the child holding it), else a 404 with a referral", resolve, query = &[
            ("live", Param::OneOf(&["1", "0", "true", "false"]), "1: for an identifier a descendant holds, also its live state, asked of that node over the node links within 2 s (live_state: fresh, stale or unreachable)"),
        ], reply = "ResolvedIdentifier"),
        route!(GET "/api/v1/resources/{identifier}/history", Access::Roles(ALL), "A metric of a resource over time", history, query = &[
            ("metric", Param::OneOf(METRICS), "cpu_utilization_percent, memory_used_bytes, load_average_1m (hosts); gpu_utilization_percent, gpu_memory_used_bytes, gpu_temperature_celsius, gpu_power_watts (accelerators)"),
            ("from", Param::Pattern(TIME), "start: RFC 3339 or unix milliseconds (default an hour ago)"),
            ("to", Param::Pattern(TIME), "end: RFC 3339 or unix milliseconds (default now)"),
            ("step", Param::Pattern("^[0-9]{1,9}(s|m|h|d)$"), "bucket width, at least 1s, e.g. 10s, 1m (default 1m)"),
        ], reply = "History"),
        route!(GET "/api/v1/providers", Access::Roles(ALL), "Approved organisations (public fields; staff also see credit code and contact)", providers, reply = "ProviderList"),
        route!(GET "/api/v1/providers/{code}", Access::Roles(ALL), "One organisation", provider, reply = "Provider"),
        route!(GET "/api/v1/providers/{code}/prices", Access::Roles(ALL), "An organisation's listed compute prices (per accelerator-hour by model, per core-hour)", prices, reply = "ProviderPrices"),
        route!(PUT "/api/v1/providers/{code}/prices", Access::Roles(HOST_MANAGERS), "Replace an organisation's price list: staff, or the organisation itself", set_prices, body = "PriceList", reply = "ProviderPrices"),
        route!(GET "/api/v1/lines", Access::Roles(ALL), "Dedicated lines (算力专线) registered by line providers", lines, reply = "LineList"),
        route!(POST "/api/v1/lines", Access::Roles(&[Role::Admin, Role::LineProvider]), "Register a dedicated line", create_line, body = "NewLine", reply = "Line", success = (201, "Created")),
        route!(PATCH "/api/v1/lines/{id}", Access::Roles(&[Role::Admin, Role::LineProvider]), "Change a line's state (open, maintenance, closed), latency, bandwidth or price; only open lines carry paths", update_line, body = "LineChange", reply = "Line"),
        route!(POST "/api/v1/selection", Access::Roles(ALL), "Selection: a demand becomes ranked compute with network paths, and why nothing else matched", selection::select, body = "Demand", reply = "SelectionAnswer"),
        route!(POST "/api/v1/reservations", Access::Roles(ALL), "Hold a selection candidate's accelerators for a while (at the node holding them, however deep); the same request_id again answers the same hold", selection::hold, body = "HoldRequest", reply = "Hold", success = (201, "Held")),
        route!(GET "/api/v1/reservations", Access::Roles(ALL), "Holds on this node's hosts: all for staff, those on its hosts for a provider, one's own for anyone", selection::holds, reply = "HoldList"),
        route!(DELETE "/api/v1/reservations/{id}", Access::Roles(ALL), "End a hold before its time (its holder, or staff; at the node holding it, however deep)", selection::release, reply = "Hold"),
        route!(GET "/api/v1/selections", Access::Roles(STAFF), "Selection queries as recorded (scheduling business), newest first", selection::selections, query = &[BEFORE, LOG_LIMIT], reply = "SelectionList"),
        route!(GET "/api/v1/network", Access::Roles(ALL), "The public latency table, dedicated lines, and latency observed from this node to each region (now, and the minutes kept)", selection::network, query = &[("hours", Param::Int(1, 744), "hours of kept observations (default 24)")], reply = "Network"),
        route!(GET "/api/v1/hosts", Access::Roles(HOST_OWNERS), "Hosts in every state (those enrolled and never seen, and revoked, included) with storage and link figures, filtered, in pages: all for staff, the organisation's own otherwise", hosts, query = &[
            ("cursor", Param::Int(i64::MIN, i64::MAX), "next_cursor of the previous page"),
            ("limit", Param::Int(1, 10_000), "page size (default 1000)"),
            ("state", Param::OneOf(status::LISTED_STATES), "online, stale, offline (enrolled included), revoked, or enrolled (never streamed)"),
            ("provider", Param::Text, "a provider's owner code"),
            ("region", Param::Pattern("^[0-9]{0,6}$"), "GB/T 2260 region code prefix"),
            ("q", Param::Text, "part of the hostname or of the host's identifier, any case"),
            ("model", Param::Text, "part of an accelerator model's name on the host, any case"),
        ], reply = "HostPage"),
        route!(GET "/api/v1/hosts/{host}", Access::Roles(HOST_OWNERS), "One host: inventory, live figures, link, resources", host, reply = "Host"),
        route!(GET "/api/v1/hosts/{host}/history", Access::Roles(HOST_OWNERS), "Every chart of the host page over the last hours: the host's figures and each accelerator's, means per step on one time axis (from minute rollups and raw samples)", host_history, query = &[("hours", Param::Int(1, 720), "how far back, 1 (default) to 720 (30 days); a step is a 360th of it, at least 10 s")], reply = "HostHistory"),
        route!(GET "/api/v1/hosts/{host}/live", Access::Roles(HOST_OWNERS), "Server-sent events with each new sample; while open the host samples every second", live),
        route!(POST "/api/v1/hosts/{host}/sample-interval", Access::Roles(MANAGERS), "Ask a connected host to sample at another interval", set_sample_interval, body = "Interval", success = (202, "Sent to the agent")),
        route!(POST "/api/v1/hosts/{host}/transfer", Access::Roles(MANAGERS), "Give a host to another provider (audited): its certificate is revoked and the new provider's agent joins with the new provider's token; its identifiers stay", transfer_host, body = "Transfer", reply = "Transferred"),
        route!(POST "/api/v1/hosts/{host}/revoke", Access::Roles(HOST_MANAGERS), "Revoke a host: its certificate stops working at once", revoke_host, success = (204, "Revoked")),
        route!(GET "/api/v1/alerts", Access::Roles(HOST_OWNERS), "Alerts, newest first: all for staff, the organisation's own hosts' otherwise", alerts::alerts, query = &[
            ("state", Param::OneOf(&["firing", "resolved"]), "firing or resolved"),
            ("severity", Param::OneOf(&["info", "warning", "critical"]), "at this severity"),
            ("provider", Param::Text, "provider code (staff)"),
            ("resource", Param::Text, "a resource's identifier"),
            BEFORE,
            LOG_LIMIT,
        ], reply = "AlertPage"),
        route!(POST "/api/v1/alerts/{id}/ack", Access::Roles(HOST_MANAGERS), "Acknowledge an alert (someone is on it; notifications continue)", alerts::ack, reply = "Alert"),
        route!(GET "/api/v1/silences", Access::Roles(HOST_OWNERS), "Silences not yet ended", alerts::silences, reply = "SilenceList"),
        route!(POST "/api/v1/silences", Access::Roles(HOST_MANAGERS), "Silence notifications of alerts matching label matchers, for a time, with a reason", alerts::create_silence, body = "Silence", reply = "SilenceRecord", success = (201, "Created")),
        route!(DELETE "/api/v1/silences/{id}", Access::Roles(HOST_MANAGERS), "End a silence now", alerts::expire_silence, success = (204, "Ended")),
        route!(GET "/api/v1/receivers", Access::Roles(HOST_OWNERS), "Notification receivers, with their deliveries by state (secrets never shown)", alerts::receivers, reply = "ReceiverList"),
        route!(POST "/api/v1/receivers", Access::Roles(HOST_MANAGERS), "Add a receiver: webhook, DingTalk, WeCom, Feishu or Alertmanager", alerts::create_receiver, body = "NewReceiver", reply = "Receiver", success = (201, "Created")),
        route!(DELETE "/api/v1/receivers/{id}", Access::Roles(HOST_MANAGERS), "Delete a receiver (not one declared in the config file)", alerts::delete_receiver, success = (204, "Deleted")),
        route!(POST "/api/v1/receivers/{id}/test", Access::Roles(HOST_MANAGERS), "Send a test notification to a receiver now, through the same ledger as any alert; its attempt appears among the receiver's attempts", alerts::test_receiver, success = (202, "Queued: sent within a second or two")),
        route!(GET "/api/v1/receivers/{id}/attempts", Access::Roles(HOST_OWNERS), "A receiver's delivery attempts, newest first: status, error code, latency, retry", alerts::attempts, reply = "ReceiverAttempts"),
        route!(GET "/api/v1/rules", Access::Roles(STAFF), "The built-in monitoring rules with their thresholds, and the XID catalog", alerts::rules, reply = "Rules"),
        route!(POST "/api/v1/resources/{identifier}/mark-healthy", Access::Roles(MANAGERS), "Mark an accelerator healthy after its faults were dealt with (audited): selectable again", alerts::mark_healthy, body = "Reason", success = (204, "Marked healthy")),
        route!(GET "/api/v1/identifiers", Access::Roles(ALL), "Search the identifier library (算力标识库) of this node's subtree: its own identifiers and those its descendants filed", nodes::identifiers, query = &[
            ("type", Param::OneOf(RESOURCE_TYPES), "resource type code"),
            ("model", Param::Text, "model name, case-insensitive substring"),
            ("region", Param::Pattern("^[0-9]{0,6}$"), "GB/T 2260 region code prefix"),
            ("provider", Param::Text, "owner code or USCC"),
            ("node", Param::Text, "prefix of the holding node (a child's, or this node's own)"),
            ("cursor", Param::Text, "next_cursor of the previous page"),
            ("limit", Param::Int(1, 1000), "page size (default 100)"),
        ], reply = "IdentifierPage"),
        route!(GET "/api/v1/reports", Access::Roles(STAFF), "Market monitoring (市场监测): one period's figures over this node's subtree, summed from this node's and every descendant's reports, with who reported, who is missing, the previous period and refused reports (docs/market-monitoring.md)", nodes::reports, query = &[
            ("stream", Param::OneOf(&["resource", "platform", "scheduling", "application"]), "resource (default): K1 registered and K2 available per region, type and model, with capacity by precision, every 10 s; platform, scheduling, application: hourly counts (figures)"),
            ("period", Param::OneOf(&["10s", "1h", "1d"]), "the period's length: the stream's own (10s for resource, 1h for the others; the default) or a rollup (1h of resource, 1d of any), whose counts are sums over its periods and whose scale and headline are means"),
            ("at", Param::Pattern(TIME), "a time in the period wanted: RFC 3339 or unix milliseconds (default: the latest period the whole subtree reported)"),
        ], reply = "SubtreeReport"),
        route!(GET "/api/v1/heatmap", Access::Roles(STAFF), "Each accelerator's utilization now, host by host (by region, then hostname; at most 5,000 hosts): idle and hot capacity at a glance", heatmap, reply = "Heatmap"),
        route!(GET "/api/v1/reports/trend", Access::Roles(STAFF), "Market monitoring: the subtree's capacity (K1, K2) and accelerator utilization over the last hours (a point every five minutes from the 10 s reports) or days (the hourly rollups' means up to 35 days, the daily ones beyond; utilization time-weighted)", nodes::trend, query = &[
            ("hours", Param::Int(1, 72), "how many hours back (default 24; the 10 s reports are kept 72)"),
            ("days", Param::Int(1, 400), "how many days back, instead of hours (hourly rollups are kept 35 days, daily ones 400)"),
        ], reply = "Trend"),
        route!(GET "/api/v1/reports/figures", Access::Roles(STAFF), "Market monitoring: an hourly stream's figures over the subtree, summed by (name, label), a point an hour (a day beyond 35 days)", nodes::figures, query = &[
            ("stream", Param::OneOf(&["platform", "scheduling", "application"]), "the stream (default scheduling)"),
            ("days", Param::Int(1, 400), "how many days back (default 1)"),
        ], reply = "FigureSeries"),
        route!(GET "/api/v1/nodes", Access::Roles(STAFF), "The hierarchy seen from this node: child nodes (link, heartbeat, filed identifiers, backlog), pending join requests, the parent link, organisations filed under two children", nodes::nodes, reply = "Nodes"),
        route!(POST "/api/v1/nodes/tokens", Access::Roles(ADMIN), "Create a one-time join token for a child node; returns the join string once", nodes::create_token, body = "NodeToken", reply = "CreatedNodeToken", success = (201, "Created")),
        route!(POST "/api/v1/nodes/{id}/approve", Access::Roles(MANAGERS), "Approve a child node's join request (备案): signs its certificate, assigns its prefix", nodes::approve, reply = "ChildNode"),
        route!(POST "/api/v1/nodes/{id}/reject", Access::Roles(MANAGERS), "Reject a child node's join request with a reason", nodes::reject, body = "Reason", reply = "ChildNode"),
        route!(POST "/api/v1/nodes/{id}/revoke", Access::Roles(ADMIN), "Revoke a child node: its link closes within a second, its identifiers are no longer current", nodes::revoke, body = "Reason", reply = "ChildNode"),
        route!(GET "/metrics", Access::Roles(STAFF), "Prometheus: fleet totals, ingest counters, the aggregator's health", metrics::fleet),
        route!(GET "/metrics/hosts", Access::Roles(STAFF), "Prometheus: per-host and per-GPU series, filtered", metrics::hosts, query = &[
            ("provider", Param::Text, "only this provider's hosts"),
            ("region", Param::Text, "region code prefix"),
            ("identifier", Param::Text, "only this resource's host"),
            ("limit", Param::Int(1, 10_000), "at most this many hosts (default 1000)"),
        ]),
    ]
});

pub fn router(state: Arc<Node>) -> Router {
    let mut paths: std::collections::BTreeMap<&str, MethodRouter<Arc<Node>>> = Default::default();
    for route in ROUTES.iter() {
        let guarded = (route.handler)().route_layer(axum::middleware::from_fn_with_state(
            (state.clone(), route),
            authorize,
        ));
        let merged = match paths.remove(route.path) {
            Some(existing) => existing.merge(guarded),
            None => guarded,
        };
        paths.insert(route.path, merged);
    }
    let mut router = Router::new();
    for (path, methods) in paths {
        let allow: Vec<&str> = ROUTES
            .iter()
            .filter(|r| r.path == path)
            .map(|r| r.method.as_str())
            .collect();
        let allow = allow.join(", ");
        router = router.route(
            path,
            methods.fallback(|| async move {
                let mut response = Problem::text(
                    StatusCode::METHOD_NOT_ALLOWED,
                    Text::new("error.api.method").arg("allow", &allow),
                )
                .into_response();
                if let Ok(value) = header::HeaderValue::from_str(&allow) {
                    response.headers_mut().insert(header::ALLOW, value);
                }
                response
            }),
        );
    }
    router
        .merge(dashboard::router())
        .fallback(|| async { Problem::text(StatusCode::NOT_FOUND, Text::new("error.no_endpoint")) })
        .layer(axum::middleware::from_fn(refuse_oversize))
        .layer(axum::middleware::from_fn(problem::localize))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

async fn openapi_document() -> Json<serde_json::Value> {
    Json(openapi())
}

/// `?before=ID&limit=N` for logs read newest first.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Page {
    #[serde(default)]
    pub before: Option<i64>,
    #[serde(default)]
    pub limit: Option<i64>,
}

impl Page {
    /// The page size: 100 unless asked, at most 1000.
    pub fn limit(&self) -> Result<i64, Problem> {
        let limit = self.limit.unwrap_or(100);
        if (1..=1000).contains(&limit) {
            Ok(limit)
        } else {
            Err(Problem::invalid(vec![FieldProblem::text(
                "limit",
                Text::new("check.check.between")
                    .arg("min", 1)
                    .arg("max", 1000),
            )]))
        }
    }
}

/// The client's address, as the socket saw it.
pub fn peer(parts_extensions: &axum::http::Extensions) -> Option<SocketAddr> {
    parts_extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0)
}

/// Refuses a declared body over the limit before a byte of it is read
/// (a chunked body is still cut off at the limit while it is read), and
/// NUL characters in the URI.
async fn refuse_oversize(request: Request, next: Next) -> Response {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|len| len > BODY_LIMIT) {
        return Problem::text(
            StatusCode::PAYLOAD_TOO_LARGE,
            Text::new("error.api.body_limit").arg("bytes", BODY_LIMIT),
        )
        .into_response();
    }
    // No name, code or identifier contains a NUL, and PostgreSQL cannot
    // even be asked about one: refuse it here, with a reason.
    let uri = request.uri().to_string();
    if uri.contains("%00") || uri.contains('\0') {
        return Problem::text(StatusCode::BAD_REQUEST, Text::new("error.api.nul")).into_response();
    }
    next.run(request).await
}

/// Admits the call (see [`admit`]) and counts it for market monitoring,
/// by route class, credential and status.
async fn authorize(
    State((state, route)): State<(Arc<Node>, &'static Route)>,
    request: Request,
    next: Next,
) -> Response {
    let (response, credential) = admit(&state, route, request, next).await;
    let status = response.status().as_u16();
    state.api_calls.count(crate::telemetry::ApiCall {
        hour_start_ms: crate::market::period_start(
            crate::store::now_ms(),
            crate::market::HOURLY_MS,
        ),
        route_class: route_class(route.path),
        credential,
        status_class: ["1xx", "2xx", "3xx", "4xx", "5xx"]
            .get(usize::from(status / 100).saturating_sub(1))
            .copied()
            .unwrap_or("5xx"),
    });
    response
}

/// `/api/v1/hosts/{host}` → `hosts`; `/metrics/hosts` → `metrics`.
fn route_class(path: &'static str) -> &'static str {
    let rest = path
        .strip_prefix("/api/v1/")
        .unwrap_or(path.trim_start_matches('/'));
    rest.split(['/', '.']).next().unwrap_or(rest)
}

/// Names the route's request schema for [`Body`], authenticates the caller
/// and applies the route's access rule; handlers find the [`Principal`] in
/// the request's extensions. Returns the answer and the kind of credential
/// the caller presented (`none` when it was refused).
async fn admit(
    state: &Node,
    route: &'static Route,
    mut request: Request,
    next: Next,
) -> (Response, &'static str) {
    if let Some(schema) = route.body {
        request.extensions_mut().insert(BodySchema(schema));
    }
    let Access::Roles(roles) = route.access else {
        return (next.run(request).await, "none");
    };
    let address = peer(request.extensions())
        .map(|a| a.ip().to_string())
        .unwrap_or_default();
    let principal = match authenticate(state, request.headers(), address).await {
        Ok(principal) => principal,
        Err(problem) => return (problem.into_response(), "none"),
    };
    let credential = match principal.credential {
        Credential::AdminToken => "admin_token",
        Credential::ApiKey => "api_key",
        Credential::Session { .. } => "session",
    };
    if !roles.contains(&principal.role) {
        let allowed: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
        let refusal = Problem::text(
            StatusCode::FORBIDDEN,
            Text::new("error.role_forbidden")
                .arg("role", principal.role.as_str())
                .arg("allowed", allowed.join(", ")),
        );
        return (refusal.into_response(), credential);
    }
    if let Credential::Session { csrf_token, .. } = &principal.credential
        && !request.method().is_safe()
    {
        let presented = request
            .headers()
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if !auth::constant_time_eq(presented.as_bytes(), csrf_token.as_bytes()) {
            let refusal = Problem::text(StatusCode::FORBIDDEN, Text::new("error.csrf"));
            return (refusal.into_response(), credential);
        }
    }
    request.extensions_mut().insert(principal);
    (next.run(request).await, credential)
}

async fn authenticate(
    state: &Node,
    headers: &HeaderMap,
    address: String,
) -> Result<Principal, Problem> {
    let unauthorized = |text: Text| Problem::text(StatusCode::UNAUTHORIZED, text);
    let now = crate::store::now_ms();
    let store = &state.store;
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| unauthorized(Text::new("error.api.bearer")))?;
        if auth::constant_time_eq(token.as_bytes(), state.identity.admin_token.as_bytes()) {
            return Ok(Principal {
                actor: "admin-token".into(),
                role: Role::Admin,
                account_id: None,
                provider_id: None,
                credential: Credential::AdminToken,
                address,
            });
        }
        if token.starts_with(API_KEY_PREFIX)
            && let Some(account) = store
                .api_key_account(&auth::secret_hash(token), now)
                .await
                .map_err(Problem::from)?
        {
            return Principal::from_account(&account, Credential::ApiKey, address)
                .ok_or_else(|| unauthorized(Text::new("error.api.key_role")));
        }
        return Err(unauthorized(Text::new("error.api.bad_key")));
    }
    if let Some(secret) = session_cookie(headers) {
        let secret_sha256 = auth::secret_hash(secret);
        if let Some((account, csrf_token, signed_in_at_ms)) = store
            .session(&secret_sha256, now)
            .await
            .map_err(Problem::from)?
        {
            return Principal::from_account(
                &account,
                Credential::Session {
                    secret_sha256,
                    csrf_token,
                    signed_in_at_ms,
                },
                address,
            )
            .ok_or_else(|| unauthorized(Text::new("error.api.session_role")));
        }
        return Err(Problem::text(
            StatusCode::UNAUTHORIZED,
            Text::new("error.session_expired"),
        ));
    }
    Err(Problem::text(
        StatusCode::UNAUTHORIZED,
        Text::new("error.sign_in"),
    ))
}

fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == SESSION_COOKIE).then_some(value)
        })
}
