//! The HTTP API (`/api/v1`). So far: the host list, and asking a connected
//! host to change its sampling interval. Every route needs the node's admin
//! bearer token; errors are `application/problem+json`.

use std::{sync::Arc, time::Duration};

use axum::{
    Json, Router,
    extract::{DefaultBodyLimit, Path, State, rejection::JsonRejection},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde::{Deserialize, Serialize};

use crate::{ingest::Ingest, registry::LinkState, store::HostListing};

/// Bodies larger than this are refused before they are read.
const BODY_LIMIT: usize = 64 << 10;

#[derive(Debug)]
pub struct ApiState {
    pub ingest: Arc<Ingest>,
    pub admin_token: String,
}

pub fn router(state: Arc<ApiState>) -> Router {
    Router::new()
        .route("/api/v1/hosts", get(list_hosts))
        .route(
            "/api/v1/hosts/{host}/sample-interval",
            post(set_sample_interval),
        )
        .fallback(|| async { Problem::new(StatusCode::NOT_FOUND, "no such endpoint") })
        .layer(axum::middleware::from_fn(refuse_oversize))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

/// An RFC 9457 problem document.
#[derive(Debug, Serialize)]
pub struct Problem {
    #[serde(rename = "type")]
    kind: &'static str,
    title: String,
    status: u16,
    detail: String,
}

impl Problem {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Self {
            kind: "about:blank",
            title: status.canonical_reason().unwrap_or("error").to_owned(),
            status: status.as_u16(),
            detail: detail.into(),
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, Json(self)).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("application/problem+json"),
        );
        response
    }
}

/// Refuses a declared body over the limit before a byte of it is read
/// (a chunked body is still cut off at the limit while it is read).
async fn refuse_oversize(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|len| len > BODY_LIMIT) {
        return Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request bodies are limited to {BODY_LIMIT} bytes"),
        )
        .into_response();
    }
    next.run(request).await
}

fn authorize(state: &ApiState, headers: &HeaderMap) -> Result<(), Problem> {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| {
            Problem::new(
                StatusCode::UNAUTHORIZED,
                "send Authorization: Bearer <token> (the admin token is in the data directory's admin.token)",
            )
        })?;
    if constant_time_eq(presented.as_bytes(), state.admin_token.as_bytes()) {
        Ok(())
    } else {
        Err(Problem::new(StatusCode::UNAUTHORIZED, "invalid token"))
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[derive(Debug, Serialize)]
struct HostsResponse {
    hosts: Vec<HostView>,
}

#[derive(Debug, Serialize)]
struct HostView {
    #[serde(flatten)]
    stored: HostListing,
    link: LinkState,
}

async fn list_hosts(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
) -> Result<Json<HostsResponse>, Problem> {
    authorize(&state, &headers)?;
    let hosts = state
        .ingest
        .store
        .list_hosts()
        .await
        .map_err(|e| Problem::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
    let hosts = hosts
        .into_iter()
        .map(|stored| HostView {
            link: state.ingest.registry.link(stored.host_id),
            stored,
        })
        .collect();
    Ok(Json(HostsResponse { hosts }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IntervalRequest {
    interval_ms: u64,
}

async fn set_sample_interval(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    Path(host): Path<String>,
    body: Result<Json<IntervalRequest>, JsonRejection>,
) -> Result<StatusCode, Problem> {
    authorize(&state, &headers)?;
    let Json(request) = body.map_err(|e| Problem::new(e.status(), e.body_text()))?;
    if !(100..=3_600_000).contains(&request.interval_ms) {
        return Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "interval_ms must be between 100 and 3600000",
        ));
    }
    let host_id = state
        .ingest
        .store
        .host_id(&host)
        .await
        .map_err(|e| Problem::new(StatusCode::NOT_FOUND, e.to_string()))?;
    if state
        .ingest
        .registry
        .set_interval(host_id, Duration::from_millis(request.interval_ms))
    {
        Ok(StatusCode::ACCEPTED)
    } else {
        Err(Problem::new(
            StatusCode::CONFLICT,
            format!("host {host_id} is not connected"),
        ))
    }
}
