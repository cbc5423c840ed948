//! The messages of the node link (child node ↔ parent node) and their
//! framing: the same frames as the agent stream, with `NodeFrame` inside.
//!
//! A linked child speaks the agent stream's session (`Hello`, `Welcome`,
//! `Ack`, `Wait`), so [`crate::session::Uplink`] drives it unchanged: the
//! parent's answers convert into [`AggregatorMessage`]s for it. A filing
//! record is spooled as encoded [`FilingBatch`] bytes and framed by
//! [`crate::stream::encode_sample_frame`]: `NodeFrame.filings` is field 6, as
//! `Frame.sample` is.

use prost::Message as _;

use crate::{
    proto::{self, node_frame::Body, node_join_status::State},
    stream::{AggregatorMessage, FrameError, Hello, Inbound, Outbound, Welcome},
};

/// ALPN of the node link.
pub const NODE_ALPN: &[u8] = b"suanli-node/1";

/// Filings in one record, at most: a record is one spool entry and one
/// commit at the parent.
pub const MAX_FILINGS_PER_BATCH: usize = 1000;

/// A node's place in the 1 + M + N hierarchy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    National,
    Regional,
    Industry,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::National, Role::Regional, Role::Industry];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::National => "national",
            Role::Regional => "regional",
            Role::Industry => "industry",
        }
    }

    pub fn name_zh(self) -> &'static str {
        match self {
            Role::National => "国家节点",
            Role::Regional => "区域节点",
            Role::Industry => "行业节点",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == text.trim())
    }

    fn to_wire(self) -> i32 {
        match self {
            Role::National => proto::NodeRole::National as i32,
            Role::Regional => proto::NodeRole::Regional as i32,
            Role::Industry => proto::NodeRole::Industry as i32,
        }
    }

    fn from_wire(value: i32) -> Option<Role> {
        match proto::NodeRole::try_from(value).ok()? {
            proto::NodeRole::National => Some(Role::National),
            proto::NodeRole::Regional => Some(Role::Regional),
            proto::NodeRole::Industry => Some(Role::Industry),
            proto::NodeRole::Unspecified => None,
        }
    }
}

#[derive(Clone, PartialEq, Eq)]
pub struct JoinRequest {
    pub token: String,
    pub csr_der: Vec<u8>,
    pub role: Option<Role>,
    pub operator_name: String,
    pub operator_uscc: String,
    pub ca_fingerprint: String,
    pub advertise: String,
    pub node_version: String,
}

impl std::fmt::Debug for JoinRequest {
    // The token is a secret: never in logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JoinRequest")
            .field("role", &self.role)
            .field("operator_name", &self.operator_name)
            .field("operator_uscc", &self.operator_uscc)
            .field("advertise", &self.advertise)
            .finish_non_exhaustive()
    }
}

/// The parent's decision on a join request, as the child learns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoinStatus {
    Pending,
    Approved(Approval),
    Rejected { reason: String },
    Revoked { reason: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approval {
    pub child_id: u64,
    pub certificate_der: Vec<u8>,
    pub ca_certificate_der: Vec<u8>,
    pub prefix: String,
    pub parent_prefix: String,
}

/// One identifier as filed (see `node.proto`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Filing {
    pub identifier: String,
    pub revision: u64,
    pub resource_type: String,
    pub owner_code: String,
    pub provider_name: String,
    pub provider_uscc: String,
    pub industry: String,
    pub region: String,
    pub spec: String,
    pub model: Option<String>,
    pub memory_bytes: Option<u64>,
    pub logical_cpus: Option<u32>,
    pub state: String,
    /// Empty unless superseded.
    pub superseded_by: String,
    pub changed_at_unix_ms: u64,
}

/// One sequenced record of filings and market-monitoring reports.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FilingBatch {
    pub seq: u64,
    pub filings: Vec<Filing>,
    pub reports: Vec<MarketReport>,
}

/// Reports in one record, at most.
pub const MAX_REPORTS_PER_BATCH: usize = 64;
/// Groups in one report, at most: (region, type, model) triples of one node.
pub const MAX_GROUPS_PER_REPORT: usize = 4096;

/// One node's own figures of one stream for one period (see `node.proto`).
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct MarketReport {
    /// The prefix of the node whose own figures these are.
    pub origin: String,
    pub stream: String,
    pub period_start_ms: u64,
    pub period_ms: u64,
    pub groups: Vec<CapacityGroup>,
    pub rating_table: String,
    /// The hourly streams' counts.
    pub figures: Vec<Figure>,
    /// A rollup's reports of the period just shorter; 0 for a base period.
    pub periods: u64,
}

/// One count of an hourly stream (see `node.proto`).
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Default, serde::Serialize, serde::Deserialize,
)]
pub struct Figure {
    pub name: String,
    /// Empty, or what the count is split by (a role, `le=3600`).
    pub label: String,
    pub value: u64,
}

/// Figures in one report, at most.
pub const MAX_FIGURES_PER_REPORT: usize = 1024;

/// K1 and K2 of one (region, resource type, model): see `node.proto`.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct CapacityGroup {
    pub region: String,
    pub resource_type: String,
    pub model: String,
    pub registered: u64,
    pub online: u64,
    pub stale: u64,
    pub offline: u64,
    pub available: u64,
    pub healthy: u64,
    pub degraded: u64,
    pub critical: u64,
    pub health_unknown: u64,
    pub memory_bytes: u64,
    pub available_memory_bytes: u64,
    pub logical_cpus: u64,
    pub available_logical_cpus: u64,
    pub utilization_permille_sum: u64,
    pub utilization_readings: u64,
    pub capacity: Vec<PrecisionCapacity>,
}

/// Peak dense throughput at one precision, in GFLOPS (GOPS for int8).
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct PrecisionCapacity {
    pub precision: String,
    pub registered_gflops: u64,
    pub available_gflops: u64,
    /// Resources with no rating at this precision.
    pub unrated: u64,
}

impl FilingBatch {
    /// The bytes the child spools.
    pub fn encode(self) -> Vec<u8> {
        proto::FilingBatch::from(self).encode_to_vec()
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, FrameError> {
        Ok(proto::FilingBatch::decode(bytes)?.into())
    }
}

/// A resource's live state as the node holding it sees it now.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LiveState {
    /// online, stale, offline or revoked.
    pub host_state: String,
    /// healthy, degraded, critical or unknown.
    pub health: String,
    pub free_now: Option<bool>,
    pub last_seen_unix_ms: Option<u64>,
    pub utilization_percent: Option<f64>,
    pub memory_used_bytes: Option<u64>,
    pub memory_total_bytes: Option<u64>,
    /// The prefix of the node that answered.
    pub answered_by: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Heartbeat {
    pub backlog: u64,
    pub dropped: u64,
}

/// What a child node sends.
#[derive(Debug, Clone, PartialEq)]
pub enum ChildMessage {
    JoinRequest(Box<JoinRequest>),
    JoinPoll {
        request_id: u64,
        poll_secret: String,
    },
    Hello(Hello),
    Filings(FilingBatch),
    Heartbeat(Heartbeat),
    /// The answer to a [`ParentMessage::LiveQuery`]: the state, or why not.
    LiveAnswer {
        query_id: u64,
        state: Result<LiveState, String>,
    },
    /// The answer to a [`ParentMessage::SelectionQuery`]: the answer's
    /// JSON, or why there is none.
    SelectionAnswer {
        query_id: u64,
        answer: Result<String, String>,
    },
    /// The answer to a [`ParentMessage::ReservationQuery`] (JSON).
    ReservationAnswer {
        query_id: u64,
        answer_json: String,
    },
}

/// What a parent node sends.
#[derive(Debug, Clone, PartialEq)]
pub enum ParentMessage {
    JoinReceipt {
        request_id: u64,
        poll_secret: String,
    },
    JoinStatus(JoinStatus),
    Welcome(Welcome),
    Ack {
        through_seq: u64,
    },
    Wait {
        retry_after_ms: u64,
        reason: String,
    },
    /// What is the live state of this identifier the child holds?
    LiveQuery {
        query_id: u64,
        identifier: String,
        deadline_ms: u64,
    },
    /// Which resources of your subtree meet this demand (JSON)?
    SelectionQuery {
        query_id: u64,
        demand_json: String,
        deadline_ms: u64,
    },
    /// Hold or release resources of your subtree (JSON).
    ReservationQuery {
        query_id: u64,
        request_json: String,
        deadline_ms: u64,
    },
}

impl ParentMessage {
    /// The same message as the session core knows it, for the link's part
    /// that is the agent stream's (`None` for joining messages).
    pub fn into_session(self) -> Option<AggregatorMessage> {
        match self {
            ParentMessage::Welcome(w) => Some(AggregatorMessage::Welcome(w)),
            ParentMessage::Ack { through_seq } => Some(AggregatorMessage::Ack { through_seq }),
            ParentMessage::Wait {
                retry_after_ms,
                reason,
            } => Some(AggregatorMessage::Wait {
                retry_after: std::time::Duration::from_millis(retry_after_ms),
                reason,
            }),
            ParentMessage::JoinReceipt { .. }
            | ParentMessage::JoinStatus(_)
            | ParentMessage::LiveQuery { .. }
            | ParentMessage::SelectionQuery { .. }
            | ParentMessage::ReservationQuery { .. } => None,
        }
    }
}

fn encode_body(body: Body, out: &mut Vec<u8>) {
    let frame = proto::NodeFrame { body: Some(body) };
    let len = frame.encoded_len();
    out.reserve(4 + len);
    out.extend_from_slice(&(len as u32).to_be_bytes());
    frame
        .encode(out)
        .expect("a Vec grows to fit, so encoding cannot run out of space");
}

impl ChildMessage {
    pub fn encode(self, out: &mut Vec<u8>) {
        let body = match self {
            ChildMessage::JoinRequest(r) => Body::JoinRequest(proto::NodeJoinRequest {
                token: r.token,
                csr_der: r.csr_der,
                role: r.role.map_or(0, Role::to_wire),
                operator_name: r.operator_name,
                operator_uscc: r.operator_uscc,
                ca_fingerprint: r.ca_fingerprint,
                advertise: r.advertise,
                node_version: r.node_version,
            }),
            ChildMessage::JoinPoll {
                request_id,
                poll_secret,
            } => Body::JoinPoll(proto::NodeJoinPoll {
                request_id,
                poll_secret,
            }),
            ChildMessage::Hello(h) => Body::Hello(h.into()),
            ChildMessage::Filings(b) => Body::Filings(b.into()),
            ChildMessage::Heartbeat(h) => Body::Heartbeat(proto::Heartbeat {
                backlog: h.backlog,
                dropped: h.dropped,
            }),
            ChildMessage::LiveAnswer { query_id, state } => {
                let (state, reason) = match state {
                    Ok(s) => (Some(s.into()), String::new()),
                    Err(reason) => (None, reason),
                };
                Body::LiveAnswer(proto::LiveAnswer {
                    query_id,
                    state,
                    reason,
                })
            }
            ChildMessage::SelectionAnswer { query_id, answer } => {
                let (answer_json, reason) = match answer {
                    Ok(json) => (json, String::new()),
                    Err(reason) => (String::new(), reason),
                };
                Body::SelectionAnswer(proto::SelectionAnswer {
                    query_id,
                    answer_json,
                    reason,
                })
            }
            ChildMessage::ReservationAnswer {
                query_id,
                answer_json,
            } => Body::ReservationAnswer(proto::ReservationAnswer {
                query_id,
                answer_json,
            }),
        };
        encode_body(body, out)
    }
}

impl Outbound for ChildMessage {
    fn encode(self, out: &mut Vec<u8>) {
        ChildMessage::encode(self, out)
    }
}

impl Outbound for ParentMessage {
    fn encode(self, out: &mut Vec<u8>) {
        ParentMessage::encode(self, out)
    }
}

impl Inbound for ChildMessage {
    fn from_frame(body: &[u8]) -> Result<Self, FrameError> {
        let frame = proto::NodeFrame::decode(body)?;
        Ok(match frame.body.ok_or(FrameError::UnknownMessage)? {
            Body::JoinRequest(r) => ChildMessage::JoinRequest(Box::new(JoinRequest {
                token: r.token,
                csr_der: r.csr_der,
                role: Role::from_wire(r.role),
                operator_name: r.operator_name,
                operator_uscc: r.operator_uscc,
                ca_fingerprint: r.ca_fingerprint,
                advertise: r.advertise,
                node_version: r.node_version,
            })),
            Body::JoinPoll(p) => ChildMessage::JoinPoll {
                request_id: p.request_id,
                poll_secret: p.poll_secret,
            },
            Body::Hello(h) => ChildMessage::Hello(h.into()),
            Body::Filings(b) => ChildMessage::Filings(b.into()),
            Body::Heartbeat(h) => ChildMessage::Heartbeat(Heartbeat {
                backlog: h.backlog,
                dropped: h.dropped,
            }),
            Body::LiveAnswer(a) => ChildMessage::LiveAnswer {
                query_id: a.query_id,
                state: a.state.map(LiveState::from).ok_or(a.reason),
            },
            Body::SelectionAnswer(a) => ChildMessage::SelectionAnswer {
                query_id: a.query_id,
                answer: if a.answer_json.is_empty() {
                    Err(a.reason)
                } else {
                    Ok(a.answer_json)
                },
            },
            Body::LiveQuery(_) => return Err(FrameError::Unexpected("LiveQuery")),
            Body::ReservationAnswer(a) => ChildMessage::ReservationAnswer {
                query_id: a.query_id,
                answer_json: a.answer_json,
            },
            Body::SelectionQuery(_) => return Err(FrameError::Unexpected("SelectionQuery")),
            Body::ReservationQuery(_) => return Err(FrameError::Unexpected("ReservationQuery")),
            Body::JoinReceipt(_) => return Err(FrameError::Unexpected("NodeJoinReceipt")),
            Body::JoinStatus(_) => return Err(FrameError::Unexpected("NodeJoinStatus")),
            Body::Welcome(_) => return Err(FrameError::Unexpected("Welcome")),
            Body::Ack(_) => return Err(FrameError::Unexpected("Ack")),
            Body::Wait(_) => return Err(FrameError::Unexpected("Wait")),
        })
    }
}

impl ParentMessage {
    pub fn encode(self, out: &mut Vec<u8>) {
        let body = match self {
            ParentMessage::JoinReceipt {
                request_id,
                poll_secret,
            } => Body::JoinReceipt(proto::NodeJoinReceipt {
                request_id,
                poll_secret,
            }),
            ParentMessage::JoinStatus(status) => Body::JoinStatus(status.into()),
            ParentMessage::Welcome(w) => Body::Welcome(proto::Welcome {
                version: w.version,
                host_id: w.host_id,
                host_identifier: w.host_identifier,
                sample_interval_ms: 0,
                stored_through_seq: w.stored_through_seq,
            }),
            ParentMessage::Ack { through_seq } => Body::Ack(proto::Ack { through_seq }),
            ParentMessage::Wait {
                retry_after_ms,
                reason,
            } => Body::Wait(proto::Wait {
                retry_after_ms,
                reason,
            }),
            ParentMessage::LiveQuery {
                query_id,
                identifier,
                deadline_ms,
            } => Body::LiveQuery(proto::LiveQuery {
                query_id,
                identifier,
                deadline_ms,
            }),
            ParentMessage::SelectionQuery {
                query_id,
                demand_json,
                deadline_ms,
            } => Body::SelectionQuery(proto::SelectionQuery {
                query_id,
                demand_json,
                deadline_ms,
            }),
            ParentMessage::ReservationQuery {
                query_id,
                request_json,
                deadline_ms,
            } => Body::ReservationQuery(proto::ReservationQuery {
                query_id,
                request_json,
                deadline_ms,
            }),
        };
        encode_body(body, out)
    }
}

impl Inbound for ParentMessage {
    fn from_frame(body: &[u8]) -> Result<Self, FrameError> {
        let frame = proto::NodeFrame::decode(body)?;
        Ok(match frame.body.ok_or(FrameError::UnknownMessage)? {
            Body::JoinReceipt(r) => ParentMessage::JoinReceipt {
                request_id: r.request_id,
                poll_secret: r.poll_secret,
            },
            Body::JoinStatus(s) => ParentMessage::JoinStatus(s.try_into()?),
            Body::Welcome(w) => ParentMessage::Welcome(Welcome {
                version: w.version,
                host_id: w.host_id,
                host_identifier: w.host_identifier,
                sample_interval: None,
                stored_through_seq: w.stored_through_seq,
            }),
            Body::Ack(a) => ParentMessage::Ack {
                through_seq: a.through_seq,
            },
            Body::Wait(w) => ParentMessage::Wait {
                retry_after_ms: w.retry_after_ms,
                reason: w.reason,
            },
            Body::LiveQuery(q) => ParentMessage::LiveQuery {
                query_id: q.query_id,
                identifier: q.identifier,
                deadline_ms: q.deadline_ms,
            },
            Body::SelectionQuery(q) => ParentMessage::SelectionQuery {
                query_id: q.query_id,
                demand_json: q.demand_json,
                deadline_ms: q.deadline_ms,
            },
            Body::LiveAnswer(_) => return Err(FrameError::Unexpected("LiveAnswer")),
            Body::ReservationQuery(q) => ParentMessage::ReservationQuery {
                query_id: q.query_id,
                request_json: q.request_json,
                deadline_ms: q.deadline_ms,
            },
            Body::SelectionAnswer(_) => return Err(FrameError::Unexpected("SelectionAnswer")),
            Body::ReservationAnswer(_) => return Err(FrameError::Unexpected("ReservationAnswer")),
            Body::JoinRequest(_) => return Err(FrameError::Unexpected("NodeJoinRequest")),
            Body::JoinPoll(_) => return Err(FrameError::Unexpected("NodeJoinPoll")),
            Body::Hello(_) => return Err(FrameError::Unexpected("Hello")),
            Body::Filings(_) => return Err(FrameError::Unexpected("FilingBatch")),
            Body::Heartbeat(_) => return Err(FrameError::Unexpected("Heartbeat")),
        })
    }
}

impl From<JoinStatus> for proto::NodeJoinStatus {
    fn from(status: JoinStatus) -> Self {
        let mut out = proto::NodeJoinStatus::default();
        match status {
            JoinStatus::Pending => out.state = State::Pending as i32,
            JoinStatus::Rejected { reason } => {
                out.state = State::Rejected as i32;
                out.reason = reason;
            }
            JoinStatus::Revoked { reason } => {
                out.state = State::Revoked as i32;
                out.reason = reason;
            }
            JoinStatus::Approved(a) => {
                out.state = State::Approved as i32;
                out.child_id = a.child_id;
                out.certificate_der = a.certificate_der;
                out.ca_certificate_der = a.ca_certificate_der;
                out.prefix = a.prefix;
                out.parent_prefix = a.parent_prefix;
            }
        }
        out
    }
}

impl TryFrom<proto::NodeJoinStatus> for JoinStatus {
    type Error = FrameError;

    fn try_from(s: proto::NodeJoinStatus) -> Result<Self, FrameError> {
        Ok(match State::try_from(s.state) {
            Ok(State::Pending) => JoinStatus::Pending,
            Ok(State::Rejected) => JoinStatus::Rejected { reason: s.reason },
            Ok(State::Revoked) => JoinStatus::Revoked { reason: s.reason },
            Ok(State::Approved) => JoinStatus::Approved(Approval {
                child_id: s.child_id,
                certificate_der: s.certificate_der,
                ca_certificate_der: s.ca_certificate_der,
                prefix: s.prefix,
                parent_prefix: s.parent_prefix,
            }),
            _ => return Err(FrameError::Invalid("a join status without a state")),
        })
    }
}

impl From<LiveState> for proto::LiveState {
    fn from(s: LiveState) -> Self {
        Self {
            host_state: s.host_state,
            health: s.health,
            free_now: s.free_now,
            last_seen_unix_ms: s.last_seen_unix_ms,
            utilization_percent: s.utilization_percent,
            memory_used_bytes: s.memory_used_bytes,
            memory_total_bytes: s.memory_total_bytes,
            answered_by: s.answered_by,
        }
    }
}

impl From<proto::LiveState> for LiveState {
    fn from(s: proto::LiveState) -> Self {
        Self {
            host_state: s.host_state,
            health: s.health,
            free_now: s.free_now,
            last_seen_unix_ms: s.last_seen_unix_ms,
            utilization_percent: s.utilization_percent,
            memory_used_bytes: s.memory_used_bytes,
            memory_total_bytes: s.memory_total_bytes,
            answered_by: s.answered_by,
        }
    }
}

impl From<FilingBatch> for proto::FilingBatch {
    fn from(b: FilingBatch) -> Self {
        Self {
            seq: b.seq,
            reports: b.reports.into_iter().map(Into::into).collect(),
            filings: b
                .filings
                .into_iter()
                .map(|f| proto::Filing {
                    identifier: f.identifier,
                    revision: f.revision,
                    resource_type: f.resource_type,
                    owner_code: f.owner_code,
                    provider_name: f.provider_name,
                    provider_uscc: f.provider_uscc,
                    industry: f.industry,
                    region: f.region,
                    spec: f.spec,
                    model: f.model,
                    memory_bytes: f.memory_bytes,
                    logical_cpus: f.logical_cpus,
                    state: f.state,
                    superseded_by: f.superseded_by,
                    changed_at_unix_ms: f.changed_at_unix_ms,
                })
                .collect(),
        }
    }
}

impl From<proto::FilingBatch> for FilingBatch {
    fn from(b: proto::FilingBatch) -> Self {
        Self {
            seq: b.seq,
            reports: b.reports.into_iter().map(Into::into).collect(),
            filings: b
                .filings
                .into_iter()
                .map(|f| Filing {
                    identifier: f.identifier,
                    revision: f.revision,
                    resource_type: f.resource_type,
                    owner_code: f.owner_code,
                    provider_name: f.provider_name,
                    provider_uscc: f.provider_uscc,
                    industry: f.industry,
                    region: f.region,
                    spec: f.spec,
                    model: f.model,
                    memory_bytes: f.memory_bytes,
                    logical_cpus: f.logical_cpus,
                    state: f.state,
                    superseded_by: f.superseded_by,
                    changed_at_unix_ms: f.changed_at_unix_ms,
                })
                .collect(),
        }
    }
}

impl From<MarketReport> for proto::MarketReport {
    fn from(r: MarketReport) -> Self {
        Self {
            origin: r.origin,
            stream: r.stream,
            period_start_unix_ms: r.period_start_ms,
            period_ms: r.period_ms,
            groups: r.groups.into_iter().map(Into::into).collect(),
            rating_table: r.rating_table,
            figures: r
                .figures
                .into_iter()
                .map(|f| proto::Figure {
                    name: f.name,
                    label: f.label,
                    value: f.value,
                })
                .collect(),
            periods: r.periods,
        }
    }
}

impl From<proto::MarketReport> for MarketReport {
    fn from(r: proto::MarketReport) -> Self {
        Self {
            origin: r.origin,
            stream: r.stream,
            period_start_ms: r.period_start_unix_ms,
            period_ms: r.period_ms,
            groups: r.groups.into_iter().map(Into::into).collect(),
            rating_table: r.rating_table,
            figures: r
                .figures
                .into_iter()
                .map(|f| Figure {
                    name: f.name,
                    label: f.label,
                    value: f.value,
                })
                .collect(),
            periods: r.periods,
        }
    }
}

impl From<CapacityGroup> for proto::CapacityGroup {
    fn from(g: CapacityGroup) -> Self {
        Self {
            region: g.region,
            resource_type: g.resource_type,
            model: g.model,
            registered: g.registered,
            online: g.online,
            stale: g.stale,
            offline: g.offline,
            available: g.available,
            healthy: g.healthy,
            degraded: g.degraded,
            critical: g.critical,
            health_unknown: g.health_unknown,
            memory_bytes: g.memory_bytes,
            available_memory_bytes: g.available_memory_bytes,
            logical_cpus: g.logical_cpus,
            available_logical_cpus: g.available_logical_cpus,
            utilization_permille_sum: g.utilization_permille_sum,
            utilization_readings: g.utilization_readings,
            capacity: g
                .capacity
                .into_iter()
                .map(|c| proto::PrecisionCapacity {
                    precision: c.precision,
                    registered_gflops: c.registered_gflops,
                    available_gflops: c.available_gflops,
                    unrated: c.unrated,
                })
                .collect(),
        }
    }
}

impl From<proto::CapacityGroup> for CapacityGroup {
    fn from(g: proto::CapacityGroup) -> Self {
        Self {
            region: g.region,
            resource_type: g.resource_type,
            model: g.model,
            registered: g.registered,
            online: g.online,
            stale: g.stale,
            offline: g.offline,
            available: g.available,
            healthy: g.healthy,
            degraded: g.degraded,
            critical: g.critical,
            health_unknown: g.health_unknown,
            memory_bytes: g.memory_bytes,
            available_memory_bytes: g.available_memory_bytes,
            logical_cpus: g.logical_cpus,
            available_logical_cpus: g.available_logical_cpus,
            utilization_permille_sum: g.utilization_permille_sum,
            utilization_readings: g.utilization_readings,
            capacity: g
                .capacity
                .into_iter()
                .map(|c| PrecisionCapacity {
                    precision: c.precision,
                    registered_gflops: c.registered_gflops,
                    available_gflops: c.available_gflops,
                    unrated: c.unrated,
                })
                .collect(),
        }
    }
}

impl MarketReport {
    /// The report's bytes as they travel, for storage and comparison.
    pub fn encode(self) -> Vec<u8> {
        proto::MarketReport::from(self).encode_to_vec()
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, FrameError> {
        Ok(proto::MarketReport::decode(bytes)?.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::{FrameDecoder, encode_sample_frame};

    fn decode<M: Inbound>(bytes: &[u8]) -> M {
        let mut decoder = FrameDecoder::default();
        decoder.push(bytes);
        decoder.decode::<M>().unwrap().unwrap()
    }

    #[test]
    fn a_spooled_batch_framed_as_a_sample_reads_as_filings_and_reports() {
        let batch = FilingBatch {
            seq: 7,
            filings: vec![Filing {
                identifier: "CN.32.I65_P00001_I65_320102_A_H100-80G_000002_Q".into(),
                revision: 3,
                memory_bytes: Some(80 << 30),
                ..Default::default()
            }],
            reports: vec![MarketReport {
                origin: "CN.32.I65".into(),
                stream: "resource".into(),
                period_start_ms: 1_800_000_000_000,
                period_ms: 10_000,
                groups: vec![CapacityGroup {
                    region: "320102".into(),
                    resource_type: "A".into(),
                    model: "NVIDIA H100 80GB HBM3".into(),
                    registered: 8,
                    capacity: vec![PrecisionCapacity {
                        precision: "fp16".into(),
                        registered_gflops: 8 * 989_500,
                        available_gflops: 0,
                        unrated: 0,
                    }],
                    ..Default::default()
                }],
                rating_table: "2026.12-1".into(),
                figures: vec![Figure {
                    name: "accounts".into(),
                    label: "admin".into(),
                    value: 1,
                }],
                periods: 360,
            }],
        };
        let report = batch.reports[0].clone();
        assert_eq!(
            MarketReport::decode(&report.clone().encode()).unwrap(),
            report
        );
        let mut bytes = Vec::new();
        encode_sample_frame(&batch.clone().encode(), &mut bytes);
        assert_eq!(decode::<ChildMessage>(&bytes), ChildMessage::Filings(batch));
    }

    #[test]
    fn messages_round_trip_and_each_side_refuses_the_others() {
        let status = ParentMessage::JoinStatus(JoinStatus::Approved(Approval {
            child_id: 2,
            certificate_der: vec![1, 2],
            ca_certificate_der: vec![3],
            prefix: "CN.32".into(),
            parent_prefix: "CN".into(),
        }));
        let mut bytes = Vec::new();
        status.clone().encode(&mut bytes);
        assert_eq!(decode::<ParentMessage>(&bytes), status);
        let mut decoder = FrameDecoder::default();
        decoder.push(&bytes);
        assert!(decoder.decode::<ChildMessage>().is_err());

        let request = ChildMessage::JoinRequest(Box::new(JoinRequest {
            token: "secret".into(),
            csr_der: vec![9],
            role: Some(Role::Industry),
            operator_name: "某行业节点".into(),
            operator_uscc: "91110108551385082Q".into(),
            ca_fingerprint: "ab".into(),
            advertise: "127.0.0.1:1".into(),
            node_version: "0.1.0".into(),
        }));
        assert!(!format!("{request:?}").contains("secret"));
        let mut bytes = Vec::new();
        request.clone().encode(&mut bytes);
        assert_eq!(decode::<ChildMessage>(&bytes), request);
        let mut decoder = FrameDecoder::default();
        decoder.push(&bytes);
        assert!(decoder.decode::<ParentMessage>().is_err());

        let query = ParentMessage::SelectionQuery {
            query_id: 7,
            demand_json: r#"{"accelerator":{"model":"h800","count":8}}"#.into(),
            deadline_ms: 2000,
        };
        let mut bytes = Vec::new();
        query.clone().encode(&mut bytes);
        assert_eq!(decode::<ParentMessage>(&bytes), query);
        for answer in [
            Ok("{}".to_owned()),
            Err("no answer within 1900 ms".to_owned()),
        ] {
            let answer = ChildMessage::SelectionAnswer {
                query_id: 7,
                answer,
            };
            let mut bytes = Vec::new();
            answer.clone().encode(&mut bytes);
            assert_eq!(decode::<ChildMessage>(&bytes), answer);
        }
        let query = ParentMessage::ReservationQuery {
            query_id: 8,
            request_json: r#"{"op":"release","id":"CN.32:1"}"#.into(),
            deadline_ms: 5000,
        };
        let mut bytes = Vec::new();
        query.clone().encode(&mut bytes);
        assert_eq!(decode::<ParentMessage>(&bytes), query);
        let answer = ChildMessage::ReservationAnswer {
            query_id: 8,
            answer_json: "{}".into(),
        };
        let mut bytes = Vec::new();
        answer.clone().encode(&mut bytes);
        assert_eq!(decode::<ChildMessage>(&bytes), answer);
    }

    #[test]
    fn roles_parse_by_name() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(role));
            assert_eq!(Role::from_wire(role.to_wire()), Some(role));
        }
        assert_eq!(Role::parse("provincial"), None);
        assert_eq!(Role::from_wire(0), None);
    }
}
