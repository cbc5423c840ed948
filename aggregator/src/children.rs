//! Child nodes over QUIC (ALPN `suanli-node/1`, on the agents' port): join
//! requests (the filing, 备案), polls for staff's decision, and each
//! approved child's link, which stores the identifiers it files.
//!
//! A link is the agent stream one level up: the child's `Hello`, our
//! `Welcome`, sequenced records ordered by the session core's
//! `IngestCursor` and acknowledged only after their transaction committed.
//! A filing outside the child's prefix is refused and logged; the rest of
//! its batch is stored. Each second the link re-reads the child's state, so
//! a revocation made anywhere (the dashboard, the command line, another
//! replica) closes it within a second.

use std::{collections::HashMap, sync::Arc, time::Duration};

use quinn::{Connection, SendStream};
use rustls::pki_types::CertificateDer;
use suanli_link::transport::{
    CloseCode, MessageReader, Refusal, fingerprint, first_message, peer_certificate, send_message,
    to_hex,
};
use suanli_protocol::{
    identifier::NodePrefix,
    node::{
        Approval, ChildMessage, FilingBatch, JoinRequest, JoinStatus, MAX_FILINGS_PER_BATCH,
        MAX_REPORTS_PER_BATCH, ParentMessage,
    },
    session::{IngestCursor, negotiate},
    stream::{AggregatorMessage, Hello, MAX_VERSION, MIN_VERSION, Welcome},
    uscc::Uscc,
};
use tokio::sync::{mpsc, oneshot};
use tracing::{Instrument, info, info_span, warn};

use crate::{
    auth, hierarchy,
    identity::{NodeIdentity, random_secret},
    links::{Question, Reply},
    market,
    node::{Node, NodeEvent, tasks::Shutdown},
    service::{Actor, audit},
    store::{NewChild, StoreError, now_ms},
};

/// How often a link re-reads its child's state.
const STATE_POLL: Duration = Duration::from_secs(1);
/// Live queries a link keeps waiting for before it forgets abandoned ones.
const MAX_PENDING_QUERIES: usize = 1024;

/// A link's place in [`crate::links::ChildLinks`], given up when it ends.
struct Attached<'a> {
    node: &'a Node,
    child: i64,
    generation: u64,
}

impl Drop for Attached<'_> {
    fn drop(&mut self) {
        self.node.links.detach(self.child, self.generation);
    }
}

/// Accepts the node links the agents' edge hands over, until `shutdown`.
pub async fn accept(
    node: Arc<Node>,
    handshake_timeout: Duration,
    mut incoming: mpsc::Receiver<Connection>,
    mut shutdown: Shutdown,
) {
    loop {
        let conn = tokio::select! {
            conn = incoming.recv() => conn,
            _ = shutdown.wait() => None,
        };
        let Some(conn) = conn else { break };
        let remote = conn.remote_address();
        let node = node.clone();
        tokio::spawn(
            async move { connection(conn, node, handshake_timeout).await }
                .instrument(info_span!("child node", %remote, child = tracing::field::Empty)),
        );
    }
}

async fn connection(conn: Connection, node: Arc<Node>, timeout: Duration) {
    let cert = peer_certificate(&conn);
    if let Err(refusal) = serve(&conn, cert.as_ref(), &node, timeout).await {
        if refusal.code != CloseCode::Done {
            warn!(code = ?refusal.code, "closing child node connection: {}", refusal.reason);
        }
        conn.close(refusal.code.code(), refusal.reason.as_bytes());
    }
}

async fn serve(
    conn: &Connection,
    cert: Option<&CertificateDer<'static>>,
    node: &Arc<Node>,
    timeout: Duration,
) -> Result<(), Refusal> {
    let (send, reader, first) = first_message::<ChildMessage>(conn, timeout).await?;
    match first {
        Some(ChildMessage::JoinRequest(request)) => {
            let answer = join(conn, *request, node).await?;
            answer_and_close(conn, send, answer, timeout).await
        }
        Some(ChildMessage::JoinPoll {
            request_id,
            poll_secret,
        }) => {
            let status = poll(node, request_id, &poll_secret).await?;
            answer_and_close(conn, send, ParentMessage::JoinStatus(status), timeout).await
        }
        Some(ChildMessage::Hello(hello)) => {
            let cert = cert.ok_or_else(|| {
                Refusal::new(
                    CloseCode::Unauthenticated,
                    "no node certificate: join this node first (suanli-aggregator parent join)",
                )
            })?;
            link(conn, send, reader, hello, cert, node).await
        }
        Some(_) => Err(Refusal::new(
            CloseCode::Protocol,
            "the first message must be NodeJoinRequest, NodeJoinPoll or Hello",
        )),
        None => Ok(()),
    }
}

async fn answer_and_close(
    conn: &Connection,
    mut send: SendStream,
    answer: ParentMessage,
    timeout: Duration,
) -> Result<(), Refusal> {
    send_message(&mut send, answer).await?;
    let _ = send.finish();
    // Let the child read the answer and close; it has what it needs.
    let _ = tokio::time::timeout(timeout, conn.closed()).await;
    Ok(())
}

fn refused(reason: impl Into<String>) -> Refusal {
    Refusal::new(CloseCode::EnrollmentRefused, reason)
}

/// Files a joining node's request for staff to review.
async fn join(
    conn: &Connection,
    request: JoinRequest,
    node: &Node,
) -> Result<ParentMessage, Refusal> {
    let role = request
        .role
        .ok_or_else(|| refused("the request names no role"))?;
    // What is wrong with the request itself must not spend the token.
    hierarchy::may_adopt(node.settings.role, role).map_err(|m| refused(m.to_string()))?;
    if request
        .ca_fingerprint
        .eq_ignore_ascii_case(&node.identity.ca_fingerprint())
    {
        return Err(refused("a node cannot join itself"));
    }
    NodeIdentity::check_csr(&request.csr_der).map_err(|e| refused(format!("bad CSR: {e}")))?;
    let uscc =
        Uscc::parse(&request.operator_uscc).map_err(|e| refused(format!("operator USCC: {e}")))?;
    let name = request.operator_name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(refused("operator name: 1 to 200 characters"));
    }
    let ca = &request.ca_fingerprint;
    if ca.len() != 64 || !ca.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(refused(
            "ca_fingerprint: a SHA-256 fingerprint, 64 hex digits",
        ));
    }
    if request.advertise.trim().is_empty() || request.advertise.len() > 255 {
        return Err(refused(
            "advertise: the node's host:port, at most 255 characters",
        ));
    }
    let poll_secret = random_secret();
    let filed = node
        .store
        .file_join_request(
            &auth::secret_hash(&request.token),
            now_ms(),
            &NewChild {
                role: role.as_str(),
                operator_name: name,
                operator_uscc: uscc.as_str(),
                advertise: request.advertise.trim(),
                ca_sha256: &request.ca_fingerprint.to_ascii_lowercase(),
                csr: &request.csr_der,
                poll_secret_sha256: &auth::secret_hash(&poll_secret),
            },
        )
        .await?;
    let (id, token) = filed.map_err(|e| refused(e.to_string()))?;
    audit::record(
        &node.store,
        &Actor::new("node-link", conn.remote_address().ip().to_string()),
        "node.request",
        &format!("node/{id}"),
        &format!(
            "{} {} operator {} ({})",
            role.as_str(),
            token.segment,
            name,
            uscc.as_str()
        ),
    )
    .await;
    info!(request = id, role = role.as_str(), segment = %token.segment, "child node asks to join");
    Ok(ParentMessage::JoinReceipt {
        request_id: id as u64,
        poll_secret,
    })
}

/// Staff's decision on a request, for the requester only.
async fn poll(node: &Node, request_id: u64, secret: &str) -> Result<JoinStatus, Refusal> {
    let unknown = || refused("no such join request");
    let id = i64::try_from(request_id).map_err(|_| unknown())?;
    let child = match node.store.child(id).await {
        Ok(c) => c,
        Err(StoreError::NotFound(_)) => return Err(unknown()),
        Err(e) => return Err(e.into()),
    };
    if auth::secret_hash(secret) != child.poll_secret_sha256 {
        return Err(unknown());
    }
    Ok(match child.state.as_str() {
        "approved" => JoinStatus::Approved(Approval {
            child_id: request_id,
            certificate_der: child.certificate.unwrap_or_default(),
            ca_certificate_der: node.identity.ca_der.to_vec(),
            prefix: child.prefix.unwrap_or_default(),
            parent_prefix: node.prefix().to_string(),
        }),
        "rejected" => JoinStatus::Rejected {
            reason: child.reason.unwrap_or_default(),
        },
        "revoked" => JoinStatus::Revoked {
            reason: child.reason.unwrap_or_default(),
        },
        _ => JoinStatus::Pending,
    })
}

/// One approved child's link, until it closes or the child is revoked.
async fn link(
    conn: &Connection,
    mut send: SendStream,
    mut reader: MessageReader,
    hello: Hello,
    cert: &CertificateDer<'static>,
    node: &Arc<Node>,
) -> Result<(), Refusal> {
    let cert_sha256 = to_hex(&fingerprint(cert));
    let Some(child) = node.store.child_by_cert(&cert_sha256).await? else {
        let reason = if node.store.host_by_cert(&cert_sha256).await?.is_some() {
            "an agent's certificate cannot open a node link"
        } else {
            "certificate of no child node of this node"
        };
        return Err(Refusal::new(CloseCode::Unauthenticated, reason));
    };
    if child.state != "approved" {
        return Err(Refusal::new(
            CloseCode::Revoked,
            format!("this child node is {}", child.state),
        ));
    }
    let prefix = child
        .prefix
        .as_deref()
        .and_then(|p| NodePrefix::parse(p).ok())
        .ok_or_else(|| Refusal::new(CloseCode::Internal, "the child's prefix is not stored"))?;
    let version = negotiate(
        hello.min_version..=hello.max_version,
        MIN_VERSION..=MAX_VERSION,
    )
    .map_err(|e| Refusal::new(CloseCode::Version, e.to_string()))?;
    tracing::Span::current().record("child", child.id);
    // Hello says what the child's spool holds: its backlog until the first
    // heartbeat.
    let backlog = hello
        .first_pending_seq
        .map_or(0, |first| hello.next_seq.saturating_sub(first));
    node.store
        .child_heartbeat(child.id, now_ms(), backlog, hello.dropped_samples)
        .await?;
    send_message(
        &mut send,
        ParentMessage::Welcome(Welcome {
            version,
            host_id: child.id as u64,
            host_identifier: prefix.to_string(),
            sample_interval: None,
            stored_through_seq: child.stored_through_seq.map(|s| s as u64),
        }),
    )
    .await?;
    info!(child = child.id, %prefix, "child node linked");
    let (generation, mut asks) = node.links.attach(child.id);
    let _attached = Attached {
        node,
        child: child.id,
        generation,
    };
    let mut pending: HashMap<u64, oneshot::Sender<Result<Reply, String>>> = HashMap::new();
    let mut next_query = 0u64;
    let mut events = node.subscribe();
    let mut cursor = IngestCursor::default();
    let mut state_poll = tokio::time::interval(STATE_POLL);
    loop {
        tokio::select! {
            message = reader.next::<ChildMessage>() => match message? {
                Some(ChildMessage::Filings(batch)) => {
                    let ack = store_batch(node, child.id, &prefix, &mut cursor, batch).await?;
                    if let Some(ack) = ack {
                        send_message(&mut send, ack).await?;
                    }
                }
                Some(ChildMessage::Heartbeat(beat)) => {
                    node.store.child_heartbeat(child.id, now_ms(), beat.backlog, beat.dropped).await?;
                }
                Some(ChildMessage::LiveAnswer { query_id, state }) => {
                    if let Some(reply) = pending.remove(&query_id) {
                        let _ = reply.send(state.map(Reply::Live));
                    }
                }
                Some(ChildMessage::SelectionAnswer { query_id, answer }) => {
                    // The asker gave up at its deadline: the answer is late.
                    let delivered = pending
                        .remove(&query_id)
                        .is_some_and(|reply| reply.send(answer.map(Reply::Select)).is_ok());
                    if !delivered {
                        node.counters.selection_answers_late.inc();
                    }
                }
                Some(ChildMessage::ReservationAnswer { query_id, answer_json }) => {
                    if let Some(reply) = pending.remove(&query_id) {
                        let _ = reply.send(Ok(Reply::Reserve(answer_json)));
                    }
                }
                Some(_) => return Err(Refusal::new(CloseCode::Protocol, "only filings and heartbeats after Hello")),
                None => return Ok(()),
            },
            ask = asks.recv() => {
                let Some(ask) = ask else { continue };
                if pending.len() >= MAX_PENDING_QUERIES {
                    // Askers that gave up no longer wait for their answers.
                    pending.retain(|_, reply| !reply.is_closed());
                }
                let query_id = next_query;
                next_query += 1;
                pending.insert(query_id, ask.reply);
                let deadline_ms = u64::try_from(ask.deadline.as_millis()).unwrap_or(u64::MAX);
                let question = match ask.question {
                    Question::Live { identifier } => ParentMessage::LiveQuery { query_id, identifier, deadline_ms },
                    Question::Select { demand_json } => ParentMessage::SelectionQuery { query_id, demand_json, deadline_ms },
                    Question::Reserve { request_json } => ParentMessage::ReservationQuery { query_id, request_json, deadline_ms },
                };
                send_message(&mut send, question).await?;
            }
            _ = state_poll.tick() => {
                let state = node.store.child_state(child.id).await?;
                if state != "approved" {
                    return Err(Refusal::new(CloseCode::Revoked, format!("this child node was {state}")));
                }
            }
            event = events.recv() => {
                if let Ok(NodeEvent::ChildRevoked { child_id }) = event && child_id == child.id {
                    return Err(Refusal::new(CloseCode::Revoked, "this child node was revoked"));
                }
            }
            _ = conn.closed() => return Ok(()),
        }
    }
}

/// Stores one record: the filings inside the child's prefix, at their
/// highest revision, and its market reports (each checked: one out of
/// bounds is refused with its reason, recorded for staff, and harms
/// nothing else), and says which `Ack` is owed once it committed.
async fn store_batch(
    node: &Node,
    child_id: i64,
    prefix: &NodePrefix,
    cursor: &mut IngestCursor,
    batch: FilingBatch,
) -> Result<Option<ParentMessage>, Refusal> {
    if batch.filings.len() > MAX_FILINGS_PER_BATCH || batch.reports.len() > MAX_REPORTS_PER_BATCH {
        return Err(Refusal::new(
            CloseCode::Protocol,
            format!(
                "a record of {} filings and {} reports exceeds the {MAX_FILINGS_PER_BATCH} and {MAX_REPORTS_PER_BATCH} allowed",
                batch.filings.len(),
                batch.reports.len(),
            ),
        ));
    }
    cursor
        .on_sample(batch.seq)
        .map_err(|e| Refusal::new(CloseCode::Protocol, e.to_string()))?;
    let (valid, refused): (Vec<_>, Vec<_>) = batch
        .filings
        .into_iter()
        .map(|f| match hierarchy::check_filing(&f, prefix) {
            Ok(()) => Ok(f),
            Err(reason) => Err(reason),
        })
        .partition(Result::is_ok);
    for reason in refused.into_iter().filter_map(Result::err) {
        warn!(child = child_id, "filing refused: {reason}");
        node.counters.filings_refused.inc();
    }
    let valid: Vec<_> = valid.into_iter().filter_map(Result::ok).collect();
    let now = now_ms();
    let mut reports = Vec::with_capacity(batch.reports.len());
    let mut refused_reports = Vec::new();
    for report in &batch.reports {
        match market::check_report(report, prefix, now) {
            Ok(()) => reports.push(report.clone()),
            Err(reason) => {
                warn!(child = child_id, origin = %report.origin, "report refused: {reason}");
                refused_reports.push((report, reason));
            }
        }
    }
    let (applied, reported) = node
        .store
        .apply_record(child_id, &valid, &reports, &refused_reports, batch.seq)
        .await?;
    node.counters.filings_stored.inc_by(applied.stored);
    node.counters
        .reports_refused
        .inc_by(refused_reports.len() as u64 + reported.conflicts);
    if applied.stored > 0 {
        node.publish(NodeEvent::LibraryChanged);
    }
    if reported.stored > 0 {
        node.publish(NodeEvent::ReportsStored);
    }
    node.links.reported(child_id, &reports);
    Ok(match cursor.on_stored(batch.seq) {
        Some(AggregatorMessage::Ack { through_seq }) => Some(ParentMessage::Ack { through_seq }),
        _ => None,
    })
}
