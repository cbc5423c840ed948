//! The audit log: who did what, when, from where. Append-only (the
//! database refuses updates and deletes); a write that fails is logged,
//! never hidden, and does not undo what was done.

use tracing::warn;

use super::Actor;
use crate::store::{AuditEntry, Store};

pub async fn record(store: &Store, actor: &Actor, action: &str, subject: &str, detail: &str) {
    let entry = AuditEntry {
        actor: actor.name.clone(),
        action: action.to_owned(),
        subject: subject.to_owned(),
        detail: detail.to_owned(),
        address: actor.address.clone(),
    };
    if let Err(e) = store.audit(&entry).await {
        warn!(error = %e, action, subject, "could not write the audit log");
    }
}
