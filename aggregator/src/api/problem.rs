//! Problem documents (RFC 9457) and the extractors whose rejections are
//! problem documents, so every error the API gives has one shape.

use axum::{
    Json,
    body::Bytes,
    extract::{
        FromRequest, FromRequestParts, Request,
        rejection::{JsonRejection, QueryRejection},
    },
    http::{StatusCode, header, request::Parts},
    response::{IntoResponse, Response},
};
use serde::{
    Serialize,
    de::{DeserializeOwned, IgnoredAny},
};
use tracing::warn;

use crate::{
    check::{FieldProblem, Invalid},
    i18n::{Lang, Text},
    service::{ServiceError, Source},
    store::StoreError,
};

/// A numeric id from a path. Anything else names nothing here: a 404, as
/// for an identifier no resource has (a client that took a line's
/// identifier, `P00005-L000026`, for its id is told so, not blamed).
pub fn parse_id(text: &str, what: &str) -> Result<i64, Problem> {
    text.parse().map_err(|_| {
        // As `{text:?}` wrote it, the quotes in the wording.
        let quoted = format!("{text:?}");
        let what = match what {
            "a child node" => Text::new("error.api.id_child_node"),
            "an alert" => Text::new("error.api.id_alert"),
            "a silence" => Text::new("error.api.id_silence"),
            "a receiver" => Text::new("error.api.id_receiver"),
            "a registration" => Text::new("error.api.id_registration"),
            "a key" => Text::new("error.api.id_key"),
            "a token" => Text::new("error.api.id_token"),
            "a line" => Text::new("error.api.id_line"),
            other => Text::plain(other),
        };
        Problem::text(
            StatusCode::NOT_FOUND,
            Text::new("error.api.not_an_id")
                .arg("text", &quoted[1..quoted.len() - 1])
                .arg_text("what", what),
        )
    })
}

/// An RFC 9457 problem document. Its title, and its detail and fields'
/// messages where they come from the catalog, are given in the reader's
/// language by [`localize`].
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    #[serde(rename = "type")]
    kind: &'static str,
    title: String,
    status: u16,
    detail: String,
    /// For 422: every field that is wrong, at once.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    errors: Vec<FieldProblem>,
    /// For a 404 on an identifier outside this node: who holds its prefix.
    #[serde(skip_serializing_if = "Option::is_none")]
    referral: Option<Box<serde_json::Value>>,
    #[serde(skip)]
    /// (Seconds fit in 32 bits; a smaller problem is cheaper to return and to clone.)
    retry_after_s: Option<u32>,
    /// The detail as words of the catalog.
    #[serde(skip)]
    text: Option<Box<Text>>,
}

impl Problem {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Self {
            kind: "about:blank",
            title: status.canonical_reason().unwrap_or("error").to_owned(),
            status: status.as_u16(),
            detail: detail.into(),
            errors: Vec::new(),
            referral: None,
            retry_after_s: None,
            text: None,
        }
    }

    /// A problem whose detail is words of the catalog.
    pub fn text(status: StatusCode, text: Text) -> Self {
        let mut problem = Self::new(status, text.render(Lang::En));
        problem.text = Some(Box::new(text));
        problem
    }

    /// The document in `lang`.
    fn localized(mut self, lang: Lang) -> Self {
        let title = Text::new(&format!("http.{}", self.status));
        if title.known() {
            self.title = title.render(lang);
        }
        if let Some(text) = &self.text {
            self.detail = text.render(lang);
        }
        for e in &mut self.errors {
            if let Some(text) = &e.text {
                e.message = text.render(lang);
            }
        }
        self
    }

    /// Names who holds what was asked for, as DNS refers a query on.
    pub fn with_referral(mut self, referral: serde_json::Value) -> Self {
        self.referral = Some(Box::new(referral));
        self
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, detail)
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, detail)
    }

    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, detail)
    }

    /// 422 naming every bad field.
    pub fn invalid(errors: Vec<FieldProblem>) -> Self {
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        let mut problem = Self::text(
            StatusCode::UNPROCESSABLE_ENTITY,
            Text::new("error.api.invalid_fields").arg("fields", fields.join(", ")),
        );
        problem.errors = errors;
        problem
    }

    pub fn too_many(retry_after_s: u64, detail: impl Into<String>) -> Self {
        let mut problem = Self::new(StatusCode::TOO_MANY_REQUESTS, detail);
        problem.retry_after_s = Some(u32::try_from(retry_after_s).unwrap_or(u32::MAX));
        problem
    }

    /// 429 after too many failed sign-ins.
    pub fn throttled(retry_after_s: u64) -> Self {
        let mut problem = Self::text(
            StatusCode::TOO_MANY_REQUESTS,
            Text::new("error.throttled").arg("seconds", retry_after_s),
        );
        problem.retry_after_s = Some(u32::try_from(retry_after_s).unwrap_or(u32::MAX));
        problem
    }

    /// 503: a part of the node failed, not the request; says which, and
    /// logs the error (which may hold details the caller must not see).
    pub fn unavailable(source: Source, error: impl std::fmt::Display) -> Self {
        warn!(error = %error, source = source.as_str(), "request failed");
        Self::text(
            StatusCode::SERVICE_UNAVAILABLE,
            Text::new("error.unavailable").arg_text("source", source.text()),
        )
    }
}

impl From<Invalid> for Problem {
    fn from(Invalid(errors): Invalid) -> Self {
        Problem::invalid(errors)
    }
}

impl From<ServiceError> for Problem {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::NotFound(text) => Problem::text(StatusCode::NOT_FOUND, text),
            ServiceError::Forbidden(text) => Problem::text(StatusCode::FORBIDDEN, text),
            ServiceError::Conflict(text) => Problem::text(StatusCode::CONFLICT, text),
            ServiceError::Invalid(invalid) => invalid.into(),
            ServiceError::Throttled(wait_s) => Problem::throttled(wait_s),
            ServiceError::Unavailable { failed, detail } => Problem::unavailable(failed, detail),
        }
    }
}

impl From<StoreError> for Problem {
    fn from(e: StoreError) -> Self {
        ServiceError::from(e).into()
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let retry = self.retry_after_s;
        let localizable = self.clone();
        let mut response = (status, Json(self)).into_response();
        response.extensions_mut().insert(localizable);
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("application/problem+json"),
        );
        if let Some(seconds) = retry {
            headers.insert(header::RETRY_AFTER, header::HeaderValue::from(seconds));
        }
        response
    }
}

/// A JSON body whose rejection is a problem document: 400 for malformed
/// JSON, 415 without the JSON content type, 413 over the limit, 422 for
/// anything but an object, a field over its documented bound, wrong types,
/// missing or unknown fields.
#[derive(Debug)]
pub struct Body<T>(pub T);

/// The name of the route's request schema, which the router puts in each
/// request's extensions so that [`Body`] holds it to the schema's bounds.
#[derive(Debug, Clone, Copy)]
pub struct BodySchema(pub &'static str);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = Problem;

    async fn from_request(request: Request, state: &S) -> Result<Self, Problem> {
        if !json_content_type(request.headers()) {
            return Err(Problem::text(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                Text::new("error.api.content_type"),
            ));
        }
        let schema = request
            .extensions()
            .get::<BodySchema>()
            .and_then(|name| super::openapi::request_schema(name.0));
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|e| Problem::new(e.status(), e.body_text()))?;
        // serde reads a struct from an array as well (`[null, null]`): a
        // request body is an object, and other well-formed JSON is told so.
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{')
            && serde_json::from_slice::<IgnoredAny>(&bytes).is_ok()
        {
            return Err(Problem::invalid(vec![FieldProblem::text(
                "body",
                Text::new("check.json_object"),
            )]));
        }
        if let Some(schema) = schema
            && let Ok(value) = serde_json::from_slice::<serde_json::Value>(&bytes)
        {
            let mut problems = Vec::new();
            super::openapi::over_bounds(schema, &value, "", &mut problems);
            if !problems.is_empty() {
                return Err(Problem::invalid(problems));
            }
        }
        Json::<T>::from_bytes(&bytes)
            .map(|Json(value)| Body(value))
            .map_err(json_problem)
    }
}

/// `application/json`, or any `application/…+json`, parameters aside.
fn json_content_type(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            let media = v.split(';').next().unwrap_or_default().trim();
            let media = media.to_ascii_lowercase();
            media == "application/json"
                || (media.starts_with("application/") && media.ends_with("+json"))
        })
}

fn json_problem(rejection: JsonRejection) -> Problem {
    let status = rejection.status();
    let text = rejection.body_text();
    if status == StatusCode::UNPROCESSABLE_ENTITY {
        // "Failed to deserialize the JSON body into the target type: role: unknown variant …"
        let detail = text
            .split_once("target type: ")
            .map_or(text.as_str(), |(_, d)| d);
        let field = detail
            .split_once(": ")
            .map_or("body", |(f, _)| f)
            .to_owned();
        return Problem::invalid(vec![FieldProblem::new(field, detail)]);
    }
    Problem::new(status, text)
}

/// Query parameters whose rejection is a 400 problem document.
#[derive(Debug)]
pub struct Params<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Params<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Params(q.0))
            .map_err(|e: QueryRejection| Problem::bad_request(e.body_text()))
    }
}

/// The reader's language, from `Accept-Language` (the dashboard sends the
/// one chosen there); English when none is named.
#[derive(Debug, Clone, Copy)]
pub struct Reader(pub Lang);

impl<S: Send + Sync> FromRequestParts<S> for Reader {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Reader(reader_lang(&parts.headers)))
    }
}

/// Gives problem documents in the reader's language: the handlers make
/// them in English, before anyone asked which.
pub async fn localize(request: Request, next: axum::middleware::Next) -> Response {
    let lang = reader_lang(request.headers());
    let mut response = next.run(request).await;
    // What a response says may depend on the reader's language: caches keep one per language.
    response.headers_mut().append(
        header::VARY,
        header::HeaderValue::from_static("accept-language"),
    );
    let problem = response.extensions_mut().remove::<Problem>();
    let Some(problem) = problem.filter(|_| lang != Lang::En) else {
        return response;
    };
    let (mut parts, _) = response.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    let body = serde_json::to_vec(&problem.localized(lang)).unwrap_or_default();
    Response::from_parts(parts, axum::body::Body::from(body))
}

fn reader_lang(headers: &axum::http::HeaderMap) -> Lang {
    let header = headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    Lang::negotiate(header)
}
