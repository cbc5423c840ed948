//! Operations: each verb of the node written once, with its audit entry,
//! for every edge that offers it (the HTTP API, the command line, and the
//! node links to come).
//!
//! An operation returns a [`ServiceError`] that says what kind of failure
//! it was, so each edge answers in its own terms: the API with a problem
//! document, the command line with a message, a node link with a code.

use crate::{auth::Principal, check::Invalid, i18n::Text, store::StoreError};

pub mod accounts;
pub mod alerts;
pub mod audit;
pub mod filing;
pub mod hosts;
pub mod lines;
pub mod market;
pub mod nodes;
pub mod prices;
pub mod providers;
pub mod registrations;
pub mod reservations;
pub mod select;
pub mod tokens;

/// Who asked, as the audit log records them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// An account's login, `cli:<user>` or `node`.
    pub name: String,
    /// Where the request came from: an IP address, or `local`.
    pub address: String,
}

impl Actor {
    pub fn new(name: impl Into<String>, address: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            address: address.into(),
        }
    }

    /// The local user running an administrative command.
    pub fn cli() -> Self {
        let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
        Self::new(format!("cli:{user}"), "local")
    }

    /// A signed-in caller.
    pub fn of(who: &Principal) -> Self {
        Self::new(&who.actor, &who.address)
    }

    /// The node acting on its own (bootstrap, the local agent).
    pub fn node() -> Self {
        Self::new("node", "local")
    }
}

/// What part of the node failed, for an answer that is not the caller's
/// fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Database,
    Identity,
    Task,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Database => "the node's database",
            Source::Identity => "the node's certificate authority",
            Source::Task => "a worker of the node",
        }
    }

    /// Its name in the reader's words.
    pub fn text(self) -> Text {
        Text::new(match self {
            Source::Database => "source.database",
            Source::Identity => "source.identity",
            Source::Task => "source.task",
        })
    }
}

/// Why an operation failed, classified for the edges.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("{0}")]
    NotFound(Text),
    #[error("{0}")]
    Forbidden(Text),
    #[error("{0}")]
    Conflict(Text),
    #[error("{0}")]
    Invalid(#[from] Invalid),
    /// Too many failed tries with a password: again in this many seconds.
    #[error("too many failed sign-ins; try again in {0} s")]
    Throttled(u64),
    /// The node failed, not the request; retrying later may succeed.
    #[error("{} failed: {detail}", failed.as_str())]
    Unavailable { failed: Source, detail: String },
}

/// The organisation a caller who is not staff acts for; an applicant not
/// yet approved has none.
pub fn own_provider(who: &Principal) -> Result<i64, ServiceError> {
    who.provider_id
        .ok_or_else(|| ServiceError::Conflict(Text::new("error.not_approved")))
}

impl ServiceError {
    pub fn unavailable(source: Source, detail: impl std::fmt::Display) -> Self {
        Self::Unavailable {
            failed: source,
            detail: detail.to_string(),
        }
    }
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(text) => Self::NotFound(text),
            StoreError::NoHost(host) => {
                Self::NotFound(Text::new("error.no_host").arg("host", host))
            }
            StoreError::NoProvider(code) => {
                Self::NotFound(Text::new("error.no_provider").arg("provider", code))
            }
            StoreError::Conflict(text) => Self::Conflict(text),
            StoreError::DuplicateProvider(code) => {
                Self::Conflict(Text::new("error.duplicate_provider").arg("code", code))
            }
            e @ (StoreError::Database(_) | StoreError::UnsupportedUrl(_)) => {
                Self::unavailable(Source::Database, e)
            }
        }
    }
}
