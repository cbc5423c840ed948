//! This node's link to its parent node (ALPN `suanli-node/1`): the join
//! request (`parent join`), waiting for the parent's staff to decide, and
//! once approved, filing the identifier library upwards.
//!
//! Filing goes the way an agent's samples go: the library's changed rows
//! are appended to an on-disk spool (`DATA_DIR/parent-spool`) as sequenced
//! records, then marked spooled; `session::Uplink` decides what may be sent
//! and `suanli_link::uplink::pump` sends it; a record leaves the spool only
//! when the parent's `Ack` (sent after its commit) covers it. A crash
//! between spooling and marking spools a row twice; the parent ignores a
//! revision it already holds, so it is stored once.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant},
};

use quinn::{ClientConfig, Endpoint};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
use suanli_link::{
    files,
    spool::{Spool, SpoolError},
    transport::{self, CloseCode, MessageReader, SERVER_NAME, ServerTrust, TransportError},
    uplink::{
        DialError, Link, dial, next_message, pump, random_u64, resolve, sleep_or_never,
        unspecified_for,
    },
};
use suanli_protocol::{
    identifier::NodePrefix,
    join::JoinString,
    node::{
        ChildMessage, FilingBatch, Heartbeat, JoinRequest, JoinStatus, MAX_FILINGS_PER_BATCH,
        MAX_REPORTS_PER_BATCH, ParentMessage, Role,
    },
    session::{Backoff, Uplink, UplinkEvent},
};
use tokio::{sync::broadcast::error::RecvError, task::JoinSet};
use tracing::{debug, info, warn};

use crate::{
    hierarchy,
    i18n::Text,
    node::{Node, NodeEvent, tasks::Shutdown},
    service::{nodes, reservations, select},
    store::{Lease, ParentLink, Store, StoreError, now_ms},
};

/// The spool of filing records, under the data directory.
pub const SPOOL_DIR: &str = "parent-spool";
/// The node's link key; the parent signs a certificate for it.
pub const KEY_FILE: &str = "parent.key";
/// The spool's bound. A filing takes about 164 bytes in a record (measured
/// by `suanli-filebench`), so a whole re-filing of 160,000 accelerators is
/// ~26 MiB; a node files only on change, so this holds far more than 72
/// hours of its changes. Drops are counted and reported in each heartbeat.
pub const SPOOL_MAX_BYTES: u64 = 256 << 20;
/// Records on the wire but not yet acknowledged, at most.
const WINDOW: u64 = 256;
/// How often a pending request asks whether staff decided, and how often a
/// node without a parent link looks for one `parent join` stored.
const POLL_INTERVAL: Duration = Duration::from_secs(1);
const HEARTBEAT: Duration = Duration::from_millis(hierarchy::HEARTBEAT_INTERVAL_MS);
/// Live queries answered at once, at most; more are not answered (the
/// asker's deadline passes and it says so).
const MAX_ANSWERING: usize = 256;
/// What a node keeps of its parent's deadline for the answer's way up.
const LIVE_MARGIN: Duration = Duration::from_millis(100);
/// The largest selection answer sent up: a quarter of a frame.
const MAX_SELECTION_ANSWER_BYTES: usize = suanli_protocol::stream::MAX_FRAME_LEN / 4;
/// How often the replica running the parent link renews its lease.
const LEASE_RENEW: Duration = Duration::from_secs(2);
/// How long it holds the link without renewing: a dead replica's link
/// moves to a standby within this and a poll.
const LEASE_MS: u64 = 3 * LEASE_RENEW.as_millis() as u64;
/// The replica's name in the lease, under the data directory.
const REPLICA_ID_FILE: &str = "replica.id";
/// How long one join or poll exchange may take.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, thiserror::Error)]
pub enum ParentError {
    #[error("{0}")]
    Dial(#[from] DialError),
    #[error("{0}")]
    Transport(#[from] TransportError),
    #[error("the parent refused: {0}")]
    Refused(String),
    #[error(
        "{address} does not speak the node link (suanli-node/1), or its CA is not the one the join string names: {detail}"
    )]
    NotAParent { address: String, detail: String },
    #[error("no answer from the parent within {0:?}")]
    Timeout(Duration),
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Spool(#[from] SpoolError),
    #[error("the link key: {0}")]
    Key(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// What `parent join` sends.
#[derive(Debug, Clone)]
pub struct JoinAsk {
    pub join: JoinString,
    pub role: Role,
    pub operator_name: String,
    pub operator_uscc: String,
    /// Where this node's agents and children reach it.
    pub advertise: String,
    /// This node's own CA fingerprint, hex.
    pub ca_fingerprint: String,
}

/// Sends a join request to the parent the join string names, and stores
/// the pending link for `serve` to follow. Returns the request's id.
pub async fn request_join(
    store: &Store,
    data_dir: &Path,
    ask: JoinAsk,
) -> Result<u64, ParentError> {
    if let Some(link) = store.parent_link().await?
        && (link.state == "pending" || link.state == "approved")
    {
        return Err(ParentError::Store(StoreError::Conflict(
            Text::new("error.hierarchy.parent_link_at")
                .arg("state", &link.state)
                .arg("address", &link.address),
        )));
    }
    let key = rcgen::KeyPair::generate().map_err(|e| ParentError::Key(e.to_string()))?;
    let csr = rcgen::CertificateParams::new(Vec::<String>::new())
        .and_then(|p| p.serialize_request(&key))
        .map_err(|e| ParentError::Key(e.to_string()))?;
    let answer = exchange(
        &ask.join.address,
        ask.join.ca_fingerprint,
        ChildMessage::JoinRequest(Box::new(JoinRequest {
            token: ask.join.token.clone(),
            csr_der: csr.der().to_vec(),
            role: Some(ask.role),
            operator_name: ask.operator_name,
            operator_uscc: ask.operator_uscc,
            ca_fingerprint: ask.ca_fingerprint,
            advertise: ask.advertise,
            node_version: env!("CARGO_PKG_VERSION").to_owned(),
        })),
    )
    .await?;
    let ParentMessage::JoinReceipt {
        request_id,
        poll_secret,
    } = answer
    else {
        return Err(ParentError::Refused(format!(
            "unexpected answer {answer:?}"
        )));
    };
    files::write_private(&data_dir.join(KEY_FILE), key.serialize_pem().as_bytes())?;
    store
        .save_parent_request(&ParentLink {
            address: ask.join.address.clone(),
            ca_sha256: transport::to_hex(&ask.join.ca_fingerprint),
            role: ask.role.as_str().into(),
            request_id: request_id as i64,
            poll_secret,
            state: "pending".into(),
            reason: None,
            child_id: None,
            prefix: None,
            parent_prefix: None,
            certificate: None,
            parent_ca: None,
            requested_at_ms: now_ms() as i64,
            decided_at_ms: None,
        })
        .await?;
    Ok(request_id)
}

/// One request and its answer on a joining connection (no client
/// certificate, the parent's CA pinned by fingerprint).
async fn exchange(
    address: &str,
    ca_fingerprint: [u8; 32],
    message: ChildMessage,
) -> Result<ParentMessage, ParentError> {
    let client = transport::node_client_config(ServerTrust::CaFingerprint(ca_fingerprint), None)?;
    let remote = resolve(address).await?;
    let (endpoint, _) = transport::endpoint(unspecified_for(remote), None, None)?;
    let result = tokio::time::timeout(EXCHANGE_TIMEOUT, async {
        let conn = endpoint
            .connect_with(client, remote, SERVER_NAME)
            .map_err(DialError::from)?
            .await
            .map_err(|e| ParentError::NotAParent {
                address: address.to_owned(),
                detail: e.to_string(),
            })?;
        let (mut send, recv) = conn.open_bi().await.map_err(DialError::from)?;
        let mut bytes = Vec::new();
        message.encode(&mut bytes);
        send.write_all(&bytes)
            .await
            .map_err(|e| ParentError::Refused(e.to_string()))?;
        let mut reader = MessageReader::new(recv);
        match reader.next::<ParentMessage>().await {
            Ok(Some(answer)) => {
                conn.close(CloseCode::Done.code(), b"answered");
                Ok(answer)
            }
            // A refusal is a close with a reason; the stream may end first.
            _ => Err(ParentError::Refused(
                match transport::close_reason(&conn).await {
                    Some(quinn::ConnectionError::ApplicationClosed(c)) => {
                        String::from_utf8_lossy(&c.reason).into_owned()
                    }
                    Some(other) => other.to_string(),
                    None => "the connection ended without an answer".into(),
                },
            )),
        }
    })
    .await
    .map_err(|_| ParentError::Timeout(EXCHANGE_TIMEOUT))?;
    endpoint.close(CloseCode::Done.code(), b"done");
    result
}

/// Runs the parent link for as long as the node runs: waits for a
/// request, follows it to a decision, then keeps the link and files.
pub async fn run(node: Arc<Node>, data_dir: PathBuf, mut shutdown: Shutdown) {
    let mut spool: Option<Spool> = None;
    let holder = match replica_id(&data_dir) {
        Ok(id) => id,
        Err(e) => {
            warn!(error = %e, "parent link: no replica id; the link does not run");
            return;
        }
    };
    loop {
        let wait = match step(&node, &data_dir, &holder, &mut spool, &mut shutdown).await {
            Ok(Step::Again) => Duration::ZERO,
            Ok(Step::Wait) => POLL_INTERVAL,
            Ok(Step::Stop) => return,
            Err(e) => {
                warn!(error = %e, "parent link");
                POLL_INTERVAL * 5
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.wait() => return,
        }
    }
}

enum Step {
    Again,
    Wait,
    Stop,
}

/// This replica's name for the parent link's lease, kept in the data
/// directory so that a restarted replica is the same holder.
fn replica_id(data_dir: &Path) -> Result<String, ParentError> {
    let path = data_dir.join(REPLICA_ID_FILE);
    match std::fs::read_to_string(&path) {
        Ok(id) if !id.trim().is_empty() => Ok(id.trim().to_owned()),
        _ => {
            let id = crate::identity::random_secret()[..16].to_owned();
            files::write_private(&path, id.as_bytes())?;
            Ok(id)
        }
    }
}

/// Renews the parent link's lease every [`LEASE_RENEW`] until another
/// replica holds it, then says so through `lost`.
async fn renew_lease(node: Arc<Node>, holder: String, lost: tokio::sync::watch::Sender<bool>) {
    let mut tick = tokio::time::interval(LEASE_RENEW);
    loop {
        tick.tick().await;
        match node
            .store
            .take_parent_lease(&holder, now_ms(), LEASE_MS)
            .await
        {
            Ok(Lease::Held { taken: false }) => {}
            Ok(_) => {
                let _ = lost.send(true);
                return;
            }
            Err(e) => warn!(error = %e, "the parent link's lease could not be renewed"),
        }
    }
}

/// Installs the prefix the parent assigned, when another replica of this
/// node received the approval.
async fn adopt_prefix(node: &Node, link: &ParentLink) -> Result<(), ParentError> {
    let Some(prefix) = link
        .prefix
        .as_deref()
        .and_then(|p| NodePrefix::parse(p).ok())
    else {
        return Ok(());
    };
    if node.prefix() != prefix {
        node.set_prefix(prefix.clone());
        let hosts = node.store.host_rows(None).await?;
        let rows = node.store.catalog_rows(None).await?;
        node.catalog.install(hosts, rows);
        node.publish(NodeEvent::PrefixAssigned);
        info!(%prefix, "the parent's approval, received by another replica, applies here too");
    }
    Ok(())
}

async fn step(
    node: &Arc<Node>,
    data_dir: &Path,
    holder: &str,
    spool: &mut Option<Spool>,
    shutdown: &mut Shutdown,
) -> Result<Step, ParentError> {
    let Some(link) = node.store.parent_link().await? else {
        return Ok(Step::Wait);
    };
    match link.state.as_str() {
        "pending" => {
            let fingerprint = transport::from_hex(&link.ca_sha256)
                .and_then(|v| <[u8; 32]>::try_from(v).ok())
                .ok_or_else(|| ParentError::Key("stored CA fingerprint".into()))?;
            let answer = exchange(
                &link.address,
                fingerprint,
                ChildMessage::JoinPoll {
                    request_id: link.request_id as u64,
                    poll_secret: link.poll_secret.clone(),
                },
            )
            .await?;
            match answer {
                ParentMessage::JoinStatus(JoinStatus::Pending) => Ok(Step::Wait),
                ParentMessage::JoinStatus(JoinStatus::Approved(approval)) => {
                    let prefix = NodePrefix::parse(&approval.prefix)
                        .map_err(|e| ParentError::Refused(format!("assigned prefix: {e}")))?;
                    // Mint under the new prefix from now on, then reissue
                    // what was minted before; a resource minted between the
                    // two already carries the new prefix.
                    node.set_prefix(prefix.clone());
                    let reissued = node
                        .store
                        .parent_approved(
                            approval.child_id,
                            &approval.prefix,
                            &approval.parent_prefix,
                            &approval.certificate_der,
                            &approval.ca_certificate_der,
                            |old| hierarchy::reprefix(old, &prefix),
                        )
                        .await?;
                    let hosts = node.store.host_rows(None).await?;
                    let rows = node.store.catalog_rows(None).await?;
                    node.catalog.install(hosts, rows);
                    node.publish(NodeEvent::PrefixAssigned);
                    info!(%prefix, parent = %link.address, reissued, "the parent approved this node");
                    Ok(Step::Again)
                }
                ParentMessage::JoinStatus(JoinStatus::Rejected { reason }) => {
                    warn!(%reason, "the parent rejected this node's request");
                    node.store.parent_refused("rejected", &reason).await?;
                    Ok(Step::Wait)
                }
                ParentMessage::JoinStatus(JoinStatus::Revoked { reason }) => {
                    node.store.parent_refused("revoked", &reason).await?;
                    Ok(Step::Wait)
                }
                other => Err(ParentError::Refused(format!("unexpected answer {other:?}"))),
            }
        }
        "approved" => {
            adopt_prefix(node, &link).await?;
            // A replica without the link key (it lives where `parent join`
            // ran; copy it to let another replica take over) stands by.
            if !data_dir.join(KEY_FILE).exists() {
                return Ok(Step::Wait);
            }
            // One replica of a node runs the link; the others stand by.
            if let Lease::HeldElsewhere { holder: other } = node
                .store
                .take_parent_lease(holder, now_ms(), LEASE_MS)
                .await?
            {
                debug!(%other, "another replica runs the parent link");
                return Ok(Step::Wait);
            }
            let spool = match spool {
                Some(s) => s,
                None => spool.insert(Spool::open(&data_dir.join(SPOOL_DIR), SPOOL_MAX_BYTES)?),
            };
            linked(node, data_dir, holder, &link, spool, shutdown).await
        }
        _ => Ok(Step::Wait),
    }
}

fn link_client(data_dir: &Path, link: &ParentLink) -> Result<ClientConfig, ParentError> {
    let missing = |what: &str| ParentError::Key(format!("the approval stored no {what}"));
    let ca = CertificateDer::from(link.parent_ca.clone().ok_or_else(|| missing("parent CA"))?);
    let cert = CertificateDer::from(
        link.certificate
            .clone()
            .ok_or_else(|| missing("certificate"))?,
    );
    let key_path = data_dir.join(KEY_FILE);
    let key = PrivateKeyDer::from_pem_file(&key_path)
        .map_err(|e| ParentError::Key(format!("{}: {e}", key_path.display())))?;
    Ok(transport::node_client_config(
        ServerTrust::Ca(ca),
        Some((cert, key)),
    )?)
}

/// The approved link: files the library's changes through the spool until
/// shutdown, or until the parent revokes this node.
async fn linked(
    node: &Arc<Node>,
    data_dir: &Path,
    holder: &str,
    link: &ParentLink,
    spool: &mut Spool,
    shutdown: &mut Shutdown,
) -> Result<Step, ParentError> {
    let client = link_client(data_dir, link)?;
    let mut uplink = Uplink::new(
        Instant::now(),
        Backoff::new(Duration::from_millis(200), Duration::from_secs(30)),
        WINDOW,
    );
    let mut connection: Option<Link<ParentMessage>> = None;
    let mut endpoint: Option<Endpoint> = None;
    let mut events = node.subscribe();
    let mut heartbeat = tokio::time::interval(HEARTBEAT);
    // The lease is renewed on its own, so that a long dial or a whole
    // library refiled never lets it lapse while this replica is alive; it
    // ends with the link.
    let (lost, mut lease_lost) = tokio::sync::watch::channel(false);
    let mut lease: JoinSet<()> = JoinSet::new();
    lease.spawn(renew_lease(node.clone(), holder.to_owned(), lost));
    // Live queries being answered; they end with the link.
    let mut answering: JoinSet<ChildMessage> = JoinSet::new();
    spool_changes(node, spool).await?;
    let result = loop {
        let dial_in = uplink
            .dial_at()
            .map(|at| at.saturating_duration_since(Instant::now()));
        tokio::select! {
            _ = shutdown.wait() => break Ok(Step::Stop),
            event = events.recv() => match event {
                Ok(NodeEvent::LibraryChanged | NodeEvent::ReportsStored) | Err(RecvError::Lagged(_)) => spool_changes(node, spool).await?,
                Ok(_) => {}
                Err(RecvError::Closed) => break Ok(Step::Stop),
            },
            _ = lease_lost.changed() => {
                // Another replica took over (this one could not renew in
                // time); it refiles everything, so stand by.
                warn!("the parent link's lease moved to another replica");
                break Ok(Step::Wait);
            }
            _ = heartbeat.tick() => {
                // A change another replica filed, or one a failed spooling left.
                spool_changes(node, spool).await?;
                if let Some(l) = connection.as_mut() && uplink.is_connected() {
                    let mut bytes = Vec::new();
                    ChildMessage::Heartbeat(Heartbeat {
                        backlog: spool.pending().map_or(0, |p| p.end() - p.start() + 1),
                        dropped: spool.dropped(),
                    })
                    .encode(&mut bytes);
                    if let Err(e) = l.send.write_all(&bytes).await {
                        debug!(error = %e, "heartbeat not sent; the reader will see the close");
                    }
                }
            }
            _ = sleep_or_never(dial_in) => {
                match dial(&mut endpoint, &link.address, &client).await {
                    Ok((conn, mut send, recv)) => {
                        let hello = uplink.on_connecting(
                            env!("CARGO_PKG_VERSION"),
                            spool.pending(),
                            spool.next_seq(),
                            spool.dropped(),
                        );
                        let mut bytes = Vec::new();
                        ChildMessage::Hello(hello).encode(&mut bytes);
                        if send.write_all(&bytes).await.is_ok() {
                            connection = Some(Link::new(conn, send, recv));
                        } else {
                            uplink.on_disconnected(Instant::now(), random_u64());
                        }
                    }
                    Err(e) => {
                        let at = uplink.on_disconnected(Instant::now(), random_u64());
                        warn!(error = %e, retry_in_ms = at.saturating_duration_since(Instant::now()).as_millis() as u64, "cannot reach the parent node");
                    }
                }
            }
            Some(done) = answering.join_next(), if !answering.is_empty() => {
                if let (Ok(answer), Some(l)) = (done, connection.as_mut()) {
                    let mut bytes = Vec::new();
                    answer.encode(&mut bytes);
                    if let Err(e) = l.send.write_all(&bytes).await {
                        debug!(error = %e, "live answer not sent; the reader will see the close");
                    }
                }
            }
            message = next_message(&mut connection) => match message {
                Ok(ParentMessage::LiveQuery { query_id, identifier, deadline_ms }) => {
                    if answering.len() < MAX_ANSWERING {
                        answering.spawn(answer_live(node.clone(), query_id, identifier, deadline_ms));
                    }
                }
                Ok(ParentMessage::SelectionQuery { query_id, demand_json, deadline_ms }) => {
                    if answering.len() < MAX_ANSWERING {
                        answering.spawn(answer_selection(node.clone(), query_id, demand_json, deadline_ms));
                    } else {
                        // Said at once, so the parent does not wait out its deadline.
                        answering.spawn(async move {
                            ChildMessage::SelectionAnswer { query_id, answer: Err("this node is answering too many questions".into()) }
                        });
                    }
                }
                Ok(ParentMessage::ReservationQuery { query_id, request_json, deadline_ms }) => {
                    let (node, parent) = (node.clone(), link.parent_prefix.clone().unwrap_or_default());
                    let within = select::inside(Duration::from_millis(deadline_ms));
                    let busy = answering.len() >= MAX_ANSWERING;
                    answering.spawn(async move {
                        let answer_json = if busy {
                            reservations::busy()
                        } else {
                            reservations::answer_link(&node, &parent, &request_json, within).await
                        };
                        ChildMessage::ReservationAnswer { query_id, answer_json }
                    });
                }
                Ok(message) => {
                    let Some(message) = message.into_session() else {
                        drop_link(&mut connection, &mut uplink, "a joining message on a link");
                        continue;
                    };
                    let events = match uplink.on_message(Instant::now(), message, spool.pending().is_none(), spool.next_seq()) {
                        Ok(events) => events,
                        Err(e) => {
                            warn!(error = %e, "the parent broke the protocol; reconnecting");
                            drop_link(&mut connection, &mut uplink, &e.to_string());
                            continue;
                        }
                    };
                    for event in events {
                        match event {
                            UplinkEvent::Connected { .. } => info!(parent = %link.address, pending = ?spool.pending(), "linked to the parent node"),
                            UplinkEvent::Release { through_seq } => {
                                spool.release(through_seq)?;
                                node.uplink.update(|s| s.last_ack_ms = Some(now_ms()));
                            }
                            UplinkEvent::Renumber { next_seq } => spool.renumber(next_seq)?,
                            UplinkEvent::Interval(_) => {}
                            UplinkEvent::Disconnect { reason, .. } => {
                                info!(%reason, "the parent asked this node to wait");
                                if let Some(l) = connection.take() {
                                    l.connection.close(CloseCode::Done.code(), b"waiting as asked");
                                }
                            }
                        }
                    }
                }
                Err(closed) => {
                    connection = None;
                    if closed.code == Some(CloseCode::Revoked) {
                        warn!(reason = %closed.reason, "the parent revoked this node");
                        node.store.parent_refused("revoked", &closed.reason).await?;
                        break Ok(Step::Wait);
                    }
                    let at = uplink.on_disconnected(Instant::now(), random_u64());
                    warn!(reason = %closed.reason, retry_in_ms = at.saturating_duration_since(Instant::now()).as_millis() as u64, "parent link lost");
                }
            },
        }
        if let Some(l) = connection.as_mut()
            && uplink.is_connected()
            && let Err(e) = pump(&mut l.send, &mut uplink, spool).await
        {
            debug!(error = %e, "write failed; the reader will see the close");
        }
        node.uplink.update(|s| {
            s.connected = connection.is_some() && uplink.is_connected();
            s.backlog = Some(spool.pending().map_or(0, |p| p.end() - p.start() + 1));
            s.dropped = Some(spool.dropped());
        });
    };
    node.uplink.update(|s| s.connected = false);
    if let Some(mut l) = connection.take() {
        let _ = l.send.finish();
        l.connection.close(CloseCode::Done.code(), b"node stopping");
    }
    spool.sync()?;
    result
}

/// Answers the parent's question about an identifier this node holds,
/// asking its own child in turn (a little inside the parent's deadline,
/// so the answer can still travel up).
async fn answer_live(
    node: Arc<Node>,
    query_id: u64,
    identifier: String,
    deadline_ms: u64,
) -> ChildMessage {
    let deadline = Duration::from_millis(deadline_ms)
        .saturating_sub(LIVE_MARGIN)
        .max(LIVE_MARGIN);
    let state = nodes::live(&node, &identifier, deadline)
        .await
        .map_err(|e| e.to_string());
    ChildMessage::LiveAnswer { query_id, state }
}

/// Answers the parent's demand over this node's subtree, as the selection
/// API would (the parent set the deadline inside the demand, a little
/// inside its own). An answer too large for one frame loses its lowest
/// candidates until it fits.
async fn answer_selection(
    node: Arc<Node>,
    query_id: u64,
    demand_json: String,
    deadline_ms: u64,
) -> ChildMessage {
    let within = select::inside(Duration::from_millis(deadline_ms));
    let answer = match serde_json::from_str(&demand_json) {
        Ok(body) => select::select(&node, select::Asker::Parent { within }, body)
            .await
            .map_err(|e| e.to_string())
            .and_then(|selected| {
                let mut answer = selected.answer;
                loop {
                    let json = serde_json::to_string(&answer).map_err(|e| e.to_string())?;
                    if json.len() <= MAX_SELECTION_ANSWER_BYTES || answer.candidates.is_empty() {
                        break Ok(json);
                    }
                    answer.candidates.truncate(answer.candidates.len() / 2);
                }
            }),
        Err(e) => Err(format!("the demand is not JSON: {e}")),
    };
    ChildMessage::SelectionAnswer { query_id, answer }
}

fn drop_link(connection: &mut Option<Link<ParentMessage>>, uplink: &mut Uplink, reason: &str) {
    if let Some(l) = connection.take() {
        l.connection
            .close(CloseCode::Protocol.code(), reason.as_bytes());
    }
    uplink.on_disconnected(Instant::now(), random_u64());
}

/// Appends the library's unspooled rows to the spool, a record of at most
/// [`MAX_FILINGS_PER_BATCH`] at a time, and marks them spooled; then the
/// unspooled market reports, [`MAX_REPORTS_PER_BATCH`] a record.
async fn spool_changes(node: &Node, spool: &mut Spool) -> Result<(), ParentError> {
    loop {
        let rows = node.store.unspooled(MAX_FILINGS_PER_BATCH as i64).await?;
        if rows.is_empty() {
            break;
        }
        let filed: Vec<(String, u64)> = rows
            .iter()
            .map(|f| (f.identifier.clone(), f.revision))
            .collect();
        let seq = spool.next_seq();
        let record = FilingBatch {
            seq,
            filings: rows,
            reports: Vec::new(),
        };
        spool.append(seq, &record.encode())?;
        node.store.mark_spooled(&filed).await?;
    }
    // This node's reports from before its prefix was assigned name a node
    // the parent does not know: they stay here.
    let prefix = node.prefix();
    loop {
        let rows = node
            .store
            .unspooled_reports(MAX_REPORTS_PER_BATCH as i64)
            .await?;
        if rows.is_empty() {
            return Ok(());
        }
        let (keys, reports): (Vec<_>, Vec<_>) = rows.into_iter().unzip();
        let reports: Vec<_> = reports
            .into_iter()
            .filter(|r| NodePrefix::parse(&r.origin).is_ok_and(|o| prefix.contains(&o)))
            .collect();
        if !reports.is_empty() {
            let seq = spool.next_seq();
            let record = FilingBatch {
                seq,
                filings: Vec::new(),
                reports,
            };
            spool.append(seq, &record.encode())?;
        }
        node.store.mark_reports_spooled(&keys).await?;
    }
}
