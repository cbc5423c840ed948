//! What the API shows of stored rows. Each response is its own type here,
//! mapped from its row in one place, so storage can rename or add a column
//! without the API changing under its clients.

use serde::Serialize;
use serde_json::Value;

use crate::store::{
    Account, ApiKeyListing, AuditEntry, AuditRecord, HostListing, Line, RegionLatency,
    Registration, ResourceListing, SelectionRecord, TokenListing,
};

/// A list of rows as their views.
pub fn all<'a, R, V: From<&'a R>>(rows: &'a [R]) -> Vec<V> {
    rows.iter().map(V::from).collect()
}

#[derive(Debug, Serialize)]
pub struct AccountView<'a> {
    id: i64,
    login: &'a str,
    role: &'a str,
    provider_id: Option<i64>,
    created_at_ms: i64,
    disabled: bool,
    must_change_password: bool,
}

impl<'a> From<&'a Account> for AccountView<'a> {
    fn from(r: &'a Account) -> Self {
        Self {
            id: r.id,
            login: &r.login,
            role: &r.role,
            provider_id: r.provider_id,
            created_at_ms: r.created_at_ms,
            disabled: r.disabled,
            must_change_password: r.must_change_password,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct ApiKeyView<'a> {
    id: i64,
    name: &'a str,
    created_at_ms: i64,
    expires_at_ms: i64,
    revoked: bool,
}

impl<'a> From<&'a ApiKeyListing> for ApiKeyView<'a> {
    fn from(r: &'a ApiKeyListing) -> Self {
        Self {
            id: r.id,
            name: &r.name,
            created_at_ms: r.created_at_ms,
            expires_at_ms: r.expires_at_ms,
            revoked: r.revoked,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct RegistrationView<'a> {
    id: i64,
    kind: &'a str,
    name: &'a str,
    uscc: &'a str,
    uscc_verified: bool,
    region: &'a str,
    industry: &'a str,
    contact: &'a str,
    account: &'a str,
    state: &'a str,
    reason: Option<&'a str>,
    reviewed_by: Option<&'a str>,
    reviewed_at_ms: Option<i64>,
    provider: Option<&'a str>,
    created_at_ms: i64,
}

impl<'a> From<&'a Registration> for RegistrationView<'a> {
    fn from(r: &'a Registration) -> Self {
        Self {
            id: r.id,
            kind: &r.kind,
            name: &r.name,
            uscc: &r.uscc,
            uscc_verified: r.uscc_verified,
            region: &r.region,
            industry: &r.industry,
            contact: &r.contact,
            account: &r.account,
            state: &r.state,
            reason: r.reason.as_deref(),
            reviewed_by: r.reviewed_by.as_deref(),
            reviewed_at_ms: r.reviewed_at_ms,
            provider: r.provider.as_deref(),
            created_at_ms: r.created_at_ms,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct TokenView<'a> {
    id: i64,
    provider: &'a str,
    expires_at_ms: i64,
    uses_left: i64,
    created_at_ms: i64,
    created_by: &'a str,
    revoked: bool,
}

impl<'a> From<&'a TokenListing> for TokenView<'a> {
    fn from(r: &'a TokenListing) -> Self {
        Self {
            id: r.id,
            provider: &r.provider,
            expires_at_ms: r.expires_at_ms,
            uses_left: r.uses_left,
            created_at_ms: r.created_at_ms,
            created_by: &r.created_by,
            revoked: r.revoked,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct LineView<'a> {
    id: i64,
    provider: &'a str,
    name: &'a str,
    from_region: &'a str,
    to_region: &'a str,
    latency_us: i64,
    bandwidth_mbps: i64,
    price_per_mbps_month: Option<&'a str>,
    state: &'a str,
    created_at_ms: i64,
}

impl<'a> From<&'a Line> for LineView<'a> {
    fn from(r: &'a Line) -> Self {
        Self {
            id: r.id,
            provider: &r.provider,
            name: &r.name,
            from_region: &r.from_region,
            to_region: &r.to_region,
            latency_us: r.latency_us,
            bandwidth_mbps: r.bandwidth_mbps,
            price_per_mbps_month: r.price_per_mbps_month.as_deref(),
            state: &r.state,
            created_at_ms: r.created_at_ms,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct AuditEntryView<'a> {
    actor: &'a str,
    action: &'a str,
    subject: &'a str,
    detail: &'a str,
    address: &'a str,
}

impl<'a> From<&'a AuditEntry> for AuditEntryView<'a> {
    fn from(r: &'a AuditEntry) -> Self {
        Self {
            actor: &r.actor,
            action: &r.action,
            subject: &r.subject,
            detail: &r.detail,
            address: &r.address,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct AuditView<'a> {
    id: i64,
    at_ms: i64,
    #[serde(flatten)]
    entry: AuditEntryView<'a>,
}

impl<'a> From<&'a AuditRecord> for AuditView<'a> {
    fn from(r: &'a AuditRecord) -> Self {
        Self {
            id: r.id,
            at_ms: r.at_ms,
            entry: (&r.entry).into(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct SelectionView<'a> {
    id: i64,
    at_ms: i64,
    actor: &'a str,
    demand: &'a Value,
    matched_hosts: i64,
    candidates: i64,
    chosen: &'a Value,
    elapsed_us: i64,
    no_match: Option<&'a str>,
    lines_used: i64,
}

impl<'a> From<&'a SelectionRecord> for SelectionView<'a> {
    fn from(r: &'a SelectionRecord) -> Self {
        Self {
            id: r.id,
            at_ms: r.at_ms,
            actor: &r.actor,
            demand: &r.demand,
            matched_hosts: r.matched_hosts,
            candidates: r.candidates,
            chosen: &r.chosen,
            elapsed_us: r.elapsed_us,
            no_match: r.no_match.as_deref(),
            lines_used: r.lines_used,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct LatencyView<'a> {
    minute_ms: i64,
    from_region: &'a str,
    to_region: &'a str,
    hosts: i64,
    median_rtt_us: i64,
    min_rtt_us: i64,
    max_rtt_us: i64,
}

impl<'a> From<&'a RegionLatency> for LatencyView<'a> {
    fn from(r: &'a RegionLatency) -> Self {
        Self {
            minute_ms: r.minute_ms,
            from_region: &r.from_region,
            to_region: &r.to_region,
            hosts: r.hosts,
            median_rtt_us: r.median_rtt_us,
            min_rtt_us: r.min_rtt_us,
            max_rtt_us: r.max_rtt_us,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct HostView<'a> {
    host_id: i64,
    hostname: &'a str,
    provider: &'a str,
    identifier: Option<&'a str>,
    enrolled_at_ms: i64,
    revoked: bool,
    last_seen_ms: Option<i64>,
    rtt_us: Option<i64>,
    sent_packets: Option<i64>,
    lost_packets: Option<i64>,
    dropped_samples: Option<i64>,
    samples_stored: i64,
    first_seq: Option<i64>,
    last_seq: Option<i64>,
    gaps: i64,
    resources: Vec<HostResourceView<'a>>,
}

impl<'a> From<&'a HostListing> for HostView<'a> {
    fn from(r: &'a HostListing) -> Self {
        Self {
            host_id: r.host_id,
            hostname: &r.hostname,
            provider: &r.provider,
            identifier: r.identifier.as_deref(),
            enrolled_at_ms: r.enrolled_at_ms,
            revoked: r.revoked,
            last_seen_ms: r.last_seen_ms,
            rtt_us: r.rtt_us,
            sent_packets: r.sent_packets,
            lost_packets: r.lost_packets,
            dropped_samples: r.dropped_samples,
            samples_stored: r.samples_stored,
            first_seq: r.first_seq,
            last_seq: r.last_seq,
            gaps: r.gaps,
            resources: r.resources.iter().map(Into::into).collect(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct HostResourceView<'a> {
    identifier: &'a str,
    resource_type: &'a str,
    resource_key: &'a str,
}

impl<'a> From<&'a ResourceListing> for HostResourceView<'a> {
    fn from(r: &'a ResourceListing) -> Self {
        Self {
            identifier: &r.identifier,
            resource_type: &r.resource_type,
            resource_key: &r.resource_key,
        }
    }
}
