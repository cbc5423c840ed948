//! Resource aggregation (算力资源汇聚): agents' QUIC connections in, stored
//! samples and acknowledgements out.
//!
//! Each connection gets one task. Its first message decides what it is:
//! `EnrollRequest` (a host joining with a token, no client certificate
//! needed) or `Hello` (an enrolled host, client certificate required). Every
//! sample goes to the one [`SampleWriter`](crate::store::SampleWriter),
//! which commits batches across all connections; a connection acknowledges
//! a sample only after its batch committed, and only through the session
//! core's `IngestCursor`, which orders samples and says which `Ack` is owed.
//! A connection that breaks the protocol is closed with a reason and logged
//! once; nothing it does reaches another connection.

use std::{
    collections::{HashMap, VecDeque},
    net::IpAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use quinn::{Connection, Endpoint, Incoming, SendStream};
use rustls::pki_types::CertificateDer;
use suanli_link::transport::{
    CloseCode, MessageReader, Refusal, alpn, fingerprint, first_message, peer_certificate,
    send_message, to_hex,
};
use suanli_protocol::{
    node::NODE_ALPN,
    session::{IngestCursor, negotiate},
    stream::{
        AgentMessage, AggregatorMessage, EnrollRequest, Enrolled, Hello, InventoryUpdate,
        MAX_VERSION, MIN_VERSION, Welcome,
    },
};
use tokio::sync::{mpsc, oneshot};
use tracing::{Instrument, debug, info, info_span, warn};

use crate::{
    alerting, auth,
    identify::{self, HostIdentity},
    identity::NodeIdentity,
    live,
    node::{Node, NodeEvent, tasks::Shutdown},
    service::{Actor, audit},
    store::{HELD_BY_ANOTHER_PROVIDER, LinkFigures, SampleRow, StoreError, TokenRefusal, now_ms},
};

/// `[ingest]` of the config file: how agents reach the node.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct IngestSection {
    /// UDP address agents connect to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quic_listen: Option<std::net::SocketAddr>,
    /// How long a new connection may take to speak (e.g. 10s).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handshake_timeout: Option<String>,
    /// Agents admitted per second; beyond it they are told to come back later.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admissions_per_second: Option<f64>,
}

/// How the node treats its agents.
#[derive(Debug, Clone)]
pub struct IngestConfig {
    /// How long a new connection may take to open its stream and speak.
    pub handshake_timeout: Duration,
    /// Connections admitted per second; beyond it agents are told when to
    /// come back, so a restarted aggregator is not flattened by its
    /// returning fleet.
    pub admissions_per_second: f64,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            handshake_timeout: Duration::from_secs(10),
            admissions_per_second: 200.0,
        }
    }
}

/// Samples handed to the writer, oldest first, each with word of its
/// batch's commit.
type Committing = VecDeque<(u64, oneshot::Receiver<bool>)>;

/// Samples a connection may have waiting for their commit; past this it
/// stops reading until acknowledgements catch up.
const MAX_COMMITTING: usize = 1024;

/// What the agents' edge holds beside the node.
#[derive(Debug)]
pub struct Ingest {
    node: Arc<Node>,
    config: IngestConfig,
    admissions: Mutex<Admission>,
    unauthenticated: Mutex<Unauthenticated>,
    /// Where connections of child nodes (ALPN `suanli-node/1`) go: they
    /// share the port, not this edge.
    node_links: mpsc::Sender<Connection>,
}

impl Ingest {
    pub fn new(
        node: Arc<Node>,
        config: IngestConfig,
        node_links: mpsc::Sender<Connection>,
    ) -> Self {
        let rate = config.admissions_per_second;
        Self {
            node,
            config,
            admissions: Mutex::new(Admission::new(rate, rate.max(1.0))),
            unauthenticated: Mutex::default(),
            node_links,
        }
    }

    /// A place for one more connection without a certificate from
    /// `address`, if there is one; it is given back when dropped.
    fn unauthenticated_slot(&self, address: IpAddr) -> Option<UnauthenticatedSlot<'_>> {
        let mut open = self
            .unauthenticated
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let from_address = open.by_address.get(&address).copied().unwrap_or(0);
        if open.total >= MAX_UNAUTHENTICATED || from_address >= MAX_UNAUTHENTICATED_PER_ADDRESS {
            return None;
        }
        open.by_address.insert(address, from_address + 1);
        open.total += 1;
        Some(UnauthenticatedSlot {
            ingest: self,
            address,
        })
    }
}

/// Whether a host's agent is connected and reporting: a second agent
/// claiming its identity now is a copy, not a reinstall. A connection whose
/// agent died quietly lingers until the idle timeout, but its host falls
/// silent within a few intervals, and then joining again is a reinstall.
fn reporting_now(node: &Node, host_id: i64) -> bool {
    node.registry.is_connected(host_id)
        && node
            .catalog
            .read()
            .hosts
            .get(&host_id)
            .is_some_and(|host| host.last_seen_ms.is_some() && !alerting::silent(host, now_ms()))
}

/// A connection without a client certificate may only enroll. It gets this
/// long to send its request, and only so many may be open at once, in all
/// and from one address, so they cannot crowd out agents. A rack behind one
/// NAT address enrolling in parallel needs a few dozen at once.
const ENROLL_DEADLINE: Duration = Duration::from_secs(5);
const MAX_UNAUTHENTICATED: usize = 1024;
const MAX_UNAUTHENTICATED_PER_ADDRESS: usize = 64;

#[derive(Debug, Default)]
struct Unauthenticated {
    total: usize,
    by_address: HashMap<IpAddr, usize>,
}

#[derive(Debug)]
struct UnauthenticatedSlot<'a> {
    ingest: &'a Ingest,
    address: IpAddr,
}

impl Drop for UnauthenticatedSlot<'_> {
    fn drop(&mut self) {
        let mut open = self
            .ingest
            .unauthenticated
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        open.total = open.total.saturating_sub(1);
        if let Some(n) = open.by_address.get_mut(&self.address) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.by_address.remove(&self.address);
            }
        }
    }
}

/// Accepts connections until `shutdown` flips.
pub async fn accept(endpoint: Endpoint, ingest: Arc<Ingest>, mut shutdown: Shutdown) {
    loop {
        let incoming = tokio::select! {
            incoming = endpoint.accept() => incoming,
            _ = shutdown.wait() => None,
        };
        let Some(incoming) = incoming else { break };
        let remote = incoming.remote_address();
        let ingest = ingest.clone();
        tokio::spawn(
            async move { connection(incoming, ingest).await }
                .instrument(info_span!("agent", %remote, host_id = tracing::field::Empty)),
        );
    }
}

async fn connection(incoming: Incoming, ingest: Arc<Ingest>) {
    // A TLS handshake that stalls is given up, not left to the idle timeout.
    let conn = match tokio::time::timeout(ingest.config.handshake_timeout, incoming).await {
        Ok(Ok(conn)) => conn,
        Ok(Err(e)) => {
            debug!(error = %e, "handshake failed");
            return;
        }
        Err(_) => {
            debug!("handshake timed out");
            return;
        }
    };
    if alpn(&conn).as_deref() == Some(NODE_ALPN) {
        if let Err(refused) = ingest.node_links.try_send(conn) {
            refused.into_inner().close(
                CloseCode::ShuttingDown.code(),
                b"too many child node connections at once; try again",
            );
        }
        return;
    }
    let cert = peer_certificate(&conn);
    let _slot = match cert {
        Some(_) => None,
        None => match ingest.unauthenticated_slot(conn.remote_address().ip()) {
            Some(slot) => Some(slot),
            None => {
                ingest
                    .node
                    .counters
                    .connections_refused
                    .get_or_create(&vec![("code", format!("{:?}", CloseCode::Busy))])
                    .inc();
                conn.close(
                    CloseCode::Busy.code(),
                    b"too many connections without a certificate from this address; try again shortly",
                );
                return;
            }
        },
    };
    match serve(&conn, cert.as_ref(), &ingest).await {
        Ok(()) => {}
        Err(refusal) => {
            if refusal.code != CloseCode::Done {
                ingest
                    .node
                    .counters
                    .connections_refused
                    .get_or_create(&vec![("code", format!("{:?}", refusal.code))])
                    .inc();
                warn!(
                    code = ?refusal.code,
                    certificate = cert.as_ref().map(|c| to_hex(&fingerprint(c))).as_deref().unwrap_or("none"),
                    "closing connection: {}", refusal.reason
                );
            }
            conn.close(refusal.code.code(), refusal.reason.as_bytes());
        }
    }
}

async fn serve(
    conn: &Connection,
    cert: Option<&CertificateDer<'static>>,
    ingest: &Arc<Ingest>,
) -> Result<(), Refusal> {
    let timeout = ingest.config.handshake_timeout;
    let (send, reader, first) = match cert {
        Some(_) => first_message::<AgentMessage>(conn, timeout).await?,
        // Only enrollment comes without a certificate, and it is quick.
        None => {
            let deadline = ENROLL_DEADLINE.min(timeout);
            tokio::time::timeout(deadline, first_message::<AgentMessage>(conn, timeout))
                .await
                .map_err(|_| {
                    Refusal::new(
                        CloseCode::Idle,
                        format!(
                            "no enrollment request within {} s of connecting without a certificate",
                            deadline.as_secs()
                        ),
                    )
                })??
        }
    };
    match first {
        Some(AgentMessage::EnrollRequest(request)) => enroll(conn, send, request, ingest).await,
        Some(AgentMessage::Hello(hello)) => {
            let cert = cert.ok_or_else(|| {
                Refusal::new(
                    CloseCode::Unauthenticated,
                    "no client certificate: join the node first",
                )
            })?;
            stream(conn, send, reader, hello, cert, ingest).await
        }
        Some(_) => Err(Refusal::new(
            CloseCode::Protocol,
            "the first message must be Hello or EnrollRequest",
        )),
        None => Ok(()),
    }
}

async fn enroll(
    conn: &Connection,
    mut send: SendStream,
    request: EnrollRequest,
    ingest: &Ingest,
) -> Result<(), Refusal> {
    // A broken request must not spend the token.
    NodeIdentity::check_csr(&request.csr_der)
        .map_err(|e| Refusal::new(CloseCode::EnrollmentRefused, format!("bad CSR: {e}")))?;
    let secret_hash = auth::secret_hash(&request.token);
    let store = &ingest.node.store;
    let identity = HostIdentity::claimed(
        request.machine_id.as_deref(),
        request.product_uuid.as_deref(),
        request.board_serial.as_deref(),
    );
    // Who the host is and who would own it are settled before the token is
    // spent, so a refused claim leaves the token usable.
    let token_refused = |r: TokenRefusal| Refusal::new(CloseCode::EnrollmentRefused, r.to_string());
    let token_provider = store
        .provider_of_token(&secret_hash, now_ms())
        .await?
        .map_err(token_refused)?;
    let (machine_key, claim) = match &identity {
        Some(identity) => store.host_for_identity(identity).await?,
        // Without a machine-id the certificate is the only stable thing.
        None => (
            format!("cert:{}", to_hex(&fingerprint(&request.csr_der))),
            None,
        ),
    };
    if let Some(claim) = claim {
        let address = conn.remote_address().ip().to_string();
        let refused = if claim.provider_id != token_provider {
            Some(HELD_BY_ANOTHER_PROVIDER)
        } else if reporting_now(&ingest.node, claim.host_id) {
            ingest
                .node
                .catalog
                .note_clone_refused(claim.host_id, now_ms(), address.clone());
            Some(
                "this host's identity is in use by an agent reporting now: a copy of its disk \
                 image? Give each host its own /etc/machine-id (systemd-machine-id-setup) and join again",
            )
        } else {
            None
        };
        if let Some(reason) = refused {
            let actor = Actor::new("agent", address);
            audit::record(
                store,
                &actor,
                "host.enroll_refused",
                &format!("host/{}", claim.host_id),
                reason,
            )
            .await;
            warn!(host_id = claim.host_id, hostname = %request.hostname, "{reason}");
            return Err(Refusal::new(CloseCode::EnrollmentRefused, reason));
        }
    }
    let provider_id = store
        .redeem_token(&secret_hash, now_ms())
        .await?
        .map_err(token_refused)?;
    let hardware = identity.as_ref().and_then(|i| i.hardware.as_deref());
    // The host id goes into the certificate, so enroll with a placeholder
    // fingerprint first and record the real one once signed.
    let pending = format!("pending:{}", to_hex(&fingerprint(&request.csr_der)));
    let host_id = store
        .enroll_host(
            provider_id,
            &machine_key,
            hardware,
            &request.hostname,
            &pending,
        )
        .await
        .map_err(|e| match e {
            // Another provider's enrollment won a race with this one.
            StoreError::Conflict(reason) => {
                Refusal::new(CloseCode::EnrollmentRefused, reason.to_string())
            }
            e => e.into(),
        })?;
    let certificate = ingest
        .node
        .identity
        .sign_client(&request.csr_der, host_id)
        .map_err(|e| Refusal::new(CloseCode::EnrollmentRefused, format!("bad CSR: {e}")))?;
    store
        .enroll_host(
            provider_id,
            &machine_key,
            hardware,
            &request.hostname,
            &to_hex(&fingerprint(&certificate)),
        )
        .await?;
    if let Some(region) = ingest.node.store.token_region(&secret_hash).await? {
        ingest.node.store.set_host_region(host_id, &region).await?;
    }
    info!(host_id, hostname = %request.hostname, machine_key = %machine_key, "host enrolled");
    ingest.node.counters.enrollments.inc();
    ingest.node.publish(NodeEvent::Enrolled { host_id });
    if let Err(e) = ingest
        .node
        .catalog
        .refresh_host(&ingest.node.store, host_id)
        .await
    {
        warn!(host_id, error = %e, "could not load the enrolled host into the catalog");
    }
    send_message(
        &mut send,
        AggregatorMessage::Enrolled(Enrolled {
            host_id: host_id as u64,
            host_identifier: String::new(),
            certificate_der: certificate.to_vec(),
            ca_certificate_der: ingest.node.identity.ca_der.to_vec(),
        }),
    )
    .await?;
    let _ = send.finish();
    // Let the agent read the answer and close; it has what it needs.
    let _ = tokio::time::timeout(ingest.config.handshake_timeout, conn.closed()).await;
    Ok(())
}

async fn stream(
    conn: &Connection,
    mut send: SendStream,
    mut reader: MessageReader,
    hello: Hello,
    cert: &CertificateDer<'static>,
    ingest: &Arc<Ingest>,
) -> Result<(), Refusal> {
    let cert_sha256 = to_hex(&fingerprint(cert));
    let Some(auth) = ingest.node.store.host_by_cert(&cert_sha256).await? else {
        let reason = if ingest
            .node
            .store
            .child_by_cert(&cert_sha256)
            .await?
            .is_some()
        {
            "a child node's certificate cannot open an agent stream (its ALPN is suanli-node/1)"
        } else {
            "certificate not enrolled on this node (re-enrolled elsewhere?)"
        };
        return Err(Refusal::new(CloseCode::Unauthenticated, reason));
    };
    if auth.revoked {
        return Err(Refusal::new(CloseCode::Revoked, "host revoked"));
    }
    let host_id = auth.host_id;
    tracing::Span::current().record("host_id", host_id);
    let version = negotiate(
        hello.min_version..=hello.max_version,
        MIN_VERSION..=MAX_VERSION,
    )
    .map_err(|e| Refusal::new(CloseCode::Version, e.to_string()))?;

    let admission = ingest
        .admissions
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .admit(fingerprint(cert), Instant::now());
    if let Err(retry_after) = admission {
        send_message(
            &mut send,
            AggregatorMessage::Wait {
                retry_after,
                reason: "aggregator busy admitting agents".into(),
            },
        )
        .await?;
        let _ = send.finish();
        let _ = tokio::time::timeout(ingest.config.handshake_timeout, conn.closed()).await;
        return Ok(());
    }

    let stored_through = ingest.node.store.stored_through(host_id).await?;
    let identifier = ingest.node.store.host_identifier(host_id).await?;
    send_message(
        &mut send,
        AggregatorMessage::Welcome(Welcome {
            version,
            host_id: host_id as u64,
            host_identifier: identifier.unwrap_or_default(),
            sample_interval: ingest.node.settings.sample_interval,
            stored_through_seq: stored_through,
        }),
    )
    .await?;
    info!(host_id, agent_version = %hello.agent_version, version, "agent connected");

    let (interval_tx, mut interval_rx) = mpsc::channel(4);
    let node = &ingest.node;
    let _registered = Registered {
        node,
        host_id,
        generation: node.registry.connect(host_id, conn.clone(), interval_tx),
    };
    node.counters.connections_accepted.inc();
    node.catalog.set_spooled_through(
        host_id,
        hello
            .first_pending_seq
            .and_then(|_| hello.next_seq.checked_sub(1)),
    );
    live::on_connect(&node.catalog, &node.registry, host_id);

    // Ordering and acknowledgement are the session core's: what runs here
    // is what the seeded simulation in `suanli_protocol::session` proves.
    let mut cursor = IngestCursor::default();
    let mut committing = Committing::new();
    let mut link = LinkFigures {
        dropped_samples: hello.dropped_samples,
        ..Default::default()
    };
    let mut link_tick = tokio::time::interval(Duration::from_secs(5));
    let result = loop {
        tokio::select! {
            committed = committed(&mut committing), if !committing.is_empty() => match committed {
                Some(through) => {
                    if let Some(ack) = cursor.on_stored(through)
                        && let Err(e) = send_message(&mut send, ack).await
                    {
                        break Err(e);
                    }
                }
                None => break Err(Refusal::new(CloseCode::Internal, "storage failed; resend later")),
            },
            message = reader.next::<AgentMessage>(), if committing.len() < MAX_COMMITTING => match message {
                Ok(Some(AgentMessage::Sample(sample))) => {
                    if let Err(e) = cursor.on_sample(sample.seq) {
                        break Err(Refusal::new(CloseCode::Protocol, e.to_string()));
                    }
                    link.last_seen_ms = now_ms();
                    node.counters.samples_received.inc();
                    if let Ok(decoded) = sample.decode() {
                        node.catalog.observe(host_id, decoded.seq, &decoded.sample, link.last_seen_ms);
                        for event in &decoded.sample.xid_events {
                            node.publish(NodeEvent::DeviceEvent {
                                host_id,
                                gpu_index: event.gpu_index,
                                code: event.xid,
                            });
                        }
                    }
                    let seq = sample.seq;
                    let done = node.writer.submit(SampleRow {
                        host_id,
                        seq,
                        collected_at_ms: sample.collected_at_unix_ms,
                        body: sample.bytes,
                    }).await;
                    committing.push_back((seq, done));
                }
                Ok(Some(AgentMessage::Inventory(update))) => {
                    if let Err(refusal) = record_inventory(node, host_id, auth.provider_id, *update).await {
                        break Err(refusal);
                    }
                }
                Ok(Some(AgentMessage::Hello(_) | AgentMessage::EnrollRequest(_))) => {
                    break Err(Refusal::new(CloseCode::Protocol, "Hello or EnrollRequest after the handshake"));
                }
                Ok(None) => break Ok(()),
                Err(e) => break Err(e.into()),
            },
            Some(interval) = interval_rx.recv() => {
                let configure = AggregatorMessage::Configure { sample_interval: interval };
                if let Err(e) = send_message(&mut send, configure).await {
                    break Err(e);
                }
            }
            _ = link_tick.tick() => {
                let stats = conn.stats();
                link.rtt_us = stats.path.rtt.as_micros() as u64;
                link.sent_packets = stats.path.sent_packets;
                link.lost_packets = stats.path.lost_packets;
                node.catalog.set_rtt(host_id, link.rtt_us);
                if link.last_seen_ms > 0 && let Err(e) = node.store.record_link(host_id, link).await {
                    warn!(host_id, error = %e, "could not record link figures");
                }
            }
        }
    };
    // A clean end (the agent said goodbye) still acknowledges what commits.
    let result = match result {
        Ok(()) => acknowledge_rest(&mut cursor, committing, &mut send).await,
        refused => refused,
    };
    drop(_registered);
    if link.last_seen_ms > 0 {
        let _ = node.store.record_link(host_id, link).await;
    }
    info!(host_id, "agent disconnected");
    result
}

/// A host's place in the [`crate::registry::Registry`], given up when its
/// connection's task ends, however it ends: an error sending to a closed
/// connection must not leave a revoked or vanished host shown connected.
struct Registered<'a> {
    node: &'a Node,
    host_id: i64,
    generation: u64,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.node.registry.disconnect(self.host_id, self.generation);
    }
}

/// Waits for the oldest sample's batch to commit; returns the newest seq
/// committed in an unbroken run from the front (consecutive commits share
/// one acknowledgement), or `None` if storage failed. Cancel-safe: nothing
/// is taken off the queue until it has committed.
async fn committed(queue: &mut Committing) -> Option<u64> {
    let (_, front) = queue.front_mut()?;
    if !front.await.unwrap_or(false) {
        return None;
    }
    let (mut through, _) = queue.pop_front()?;
    while let Some((seq, next)) = queue.front_mut() {
        match next.try_recv() {
            Ok(true) => {
                through = *seq;
                queue.pop_front();
            }
            // Failed: the run ends before it, and the next wait reports it.
            Ok(false) => {
                *next = failed();
                break;
            }
            // Not committed yet.
            Err(_) => break,
        }
    }
    Some(through)
}

/// A commit already known to have failed.
fn failed() -> oneshot::Receiver<bool> {
    let (tx, rx) = oneshot::channel();
    let _ = tx.send(false);
    rx
}

/// Acknowledges every sample still committing, then finishes the stream.
async fn acknowledge_rest(
    cursor: &mut IngestCursor,
    mut committing: Committing,
    send: &mut SendStream,
) -> Result<(), Refusal> {
    while !committing.is_empty() {
        let through = committed(&mut committing)
            .await
            .ok_or_else(|| Refusal::new(CloseCode::Internal, "storage failed; resend later"))?;
        if let Some(ack) = cursor.on_stored(through) {
            send_message(send, ack).await?;
        }
    }
    let _ = send.finish();
    Ok(())
}

async fn record_inventory(
    node: &Node,
    host_id: i64,
    provider_id: i64,
    update: InventoryUpdate,
) -> Result<(), Refusal> {
    node.counters.inventories.inc();
    let inventory = update.inventory.clone();
    let encoded = update.encode();
    let store = &node.store;
    store.record_inventory(host_id, &encoded).await?;
    let mut owner = store.provider_by_id(provider_id).await?.owner();
    // Identifiers carry where the resource is: the host's site, if its
    // token named one.
    if let Some(region) = store
        .host_rows(Some(host_id))
        .await?
        .into_iter()
        .find_map(|h| h.region)
    {
        owner.region = region;
    }
    let machine_key = store.machine_key(host_id).await?;
    let prefix = &node.prefix();
    for sighting in identify::sightings(&machine_key, &inventory) {
        // Minting cannot fail once the provider's fields are known to be
        // valid, so check them before any row is written.
        identify::mint(prefix, &owner, &sighting, 0)
            .map_err(|e| Refusal::new(CloseCode::Internal, e.to_string()))?;
        let prefix = prefix.clone();
        let owner = owner.clone();
        let s = sighting.clone();
        let minted = store
            .ensure_resource(
                host_id,
                &sighting.key,
                sighting.resource_type.name_en(),
                move |serial| {
                    identify::mint(&prefix, &owner, &s, serial)
                        .map(|id| id.to_string())
                        .unwrap_or_else(|_| format!("-{}", s.key))
                },
            )
            .await;
        match minted {
            Ok(_) => {}
            // The rest of the host is still named and streams.
            Err(StoreError::Conflict(reason)) => {
                warn!(host_id, "{reason}");
                audit::record(
                    store,
                    // The node refuses to name it; the host is the target.
                    &Actor::node(),
                    "resource.refused",
                    &format!("host/{host_id}"),
                    &reason.to_string(),
                )
                .await;
            }
            Err(e) => return Err(e.into()),
        }
    }
    node.catalog.refresh_host(store, host_id).await?;
    node.publish(NodeEvent::InventoryChanged { host_id });
    Ok(())
}

/// Admission control: `rate` connections per second, bursts up to `burst`.
///
/// An agent refused now is given a slot: the bucket goes into debt for it,
/// and it is told to come back when the debt is paid. Slots are handed out
/// one `1/rate` apart, so a returning fleet arrives spread out at the rate
/// the aggregator can take, not all at once again; an agent back at its
/// slot is admitted without paying twice.
#[derive(Debug)]
struct Admission {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Option<Instant>,
    slots: HashMap<[u8; 32], Instant>,
}

/// How early an agent may come back for its slot.
const SLOT_SLACK: Duration = Duration::from_millis(100);

impl Admission {
    fn new(rate: f64, burst: f64) -> Self {
        Self {
            rate,
            burst,
            tokens: burst,
            last: None,
            slots: HashMap::new(),
        }
    }

    /// `Ok` to admit `who` now, or how long it must wait.
    fn admit(&mut self, who: [u8; 32], now: Instant) -> Result<(), Duration> {
        if let Some(last) = self.last {
            self.tokens =
                (self.tokens + now.duration_since(last).as_secs_f64() * self.rate).min(self.burst);
        }
        self.last = Some(now);
        if let Some(due) = self.slots.get(&who).copied() {
            if now + SLOT_SLACK >= due {
                self.slots.remove(&who);
                return Ok(());
            }
            return Err(due - now);
        }
        self.tokens -= 1.0;
        if self.tokens >= 0.0 {
            return Ok(());
        }
        let due = now + Duration::from_secs_f64(-self.tokens / self.rate);
        // Forget slots nobody came back for, so the map stays bounded.
        if self.slots.len() >= 1024 {
            self.slots
                .retain(|_, slot| *slot + Duration::from_secs(60) > now);
        }
        self.slots.insert(who, due);
        Err(due - now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue(n: u64) -> (Committing, Vec<oneshot::Sender<bool>>) {
        let mut queue = VecDeque::new();
        let mut commits = Vec::new();
        for seq in 0..n {
            let (tx, rx) = oneshot::channel();
            queue.push_back((seq, rx));
            commits.push(tx);
        }
        (queue, commits)
    }

    #[tokio::test]
    async fn consecutive_commits_share_one_acknowledgement_and_a_pending_one_stops_the_run() {
        let (mut queue, commits) = queue(4);
        let mut commits = commits.into_iter();
        for _ in 0..2 {
            commits.next().unwrap().send(true).unwrap();
        }
        let third = commits.next().unwrap();
        assert_eq!(committed(&mut queue).await, Some(1), "0 and 1 in one ack");
        assert_eq!(queue.len(), 2);
        third.send(true).unwrap();
        commits.next().unwrap().send(true).unwrap();
        assert_eq!(committed(&mut queue).await, Some(3));
        assert!(queue.is_empty());
    }

    #[tokio::test]
    async fn a_failed_batch_acknowledges_nothing_past_what_committed() {
        let (mut queue, commits) = queue(3);
        let mut commits = commits.into_iter();
        commits.next().unwrap().send(true).unwrap();
        commits.next().unwrap().send(false).unwrap();
        // 0 committed and is owed; 1 failed, and the next wait says so.
        assert_eq!(committed(&mut queue).await, Some(0));
        assert_eq!(committed(&mut queue).await, None);
        let (mut queue, commits) = self::queue(1);
        drop(commits);
        assert_eq!(
            committed(&mut queue).await,
            None,
            "a writer gone is a failure"
        );
    }

    #[tokio::test]
    async fn waiting_for_a_commit_is_cancel_safe() {
        let (mut queue, mut commits) = queue(2);
        // Given up on while the oldest is still committing: nothing is lost.
        let waited = tokio::time::timeout(Duration::from_millis(1), committed(&mut queue)).await;
        assert!(waited.is_err());
        assert_eq!(queue.len(), 2);
        for tx in commits.drain(..) {
            tx.send(true).unwrap();
        }
        assert_eq!(committed(&mut queue).await, Some(1));
    }

    /// What the connection does with the cursor: the acknowledgements it
    /// sends cover exactly what committed, each seq once, in order.
    #[tokio::test]
    async fn the_cursor_acknowledges_each_committed_run_once() {
        let (mut queue, commits) = queue(3);
        let mut cursor = IngestCursor::default();
        for seq in 0..3 {
            cursor.on_sample(seq).unwrap();
        }
        for tx in commits {
            tx.send(true).unwrap();
        }
        let through = committed(&mut queue).await.unwrap();
        assert_eq!(
            cursor.on_stored(through),
            Some(AggregatorMessage::Ack { through_seq: 2 })
        );
        assert_eq!(cursor.on_stored(through), None, "never twice");
    }

    #[test]
    fn a_refused_fleet_gets_spread_out_slots_and_is_let_in_at_them() {
        let start = Instant::now();
        let mut admission = Admission::new(2.0, 2.0);
        let who = |n: u8| [n; 32];
        assert_eq!(admission.admit(who(1), start), Ok(()));
        assert_eq!(admission.admit(who(2), start), Ok(()));
        let wait3 = admission.admit(who(3), start).unwrap_err();
        let wait4 = admission.admit(who(4), start).unwrap_err();
        assert_eq!(wait3, Duration::from_millis(500));
        assert_eq!(wait4, Duration::from_millis(1000), "one slot apart");
        // Too early: told the rest of the wait.
        assert_eq!(
            admission.admit(who(4), start + Duration::from_millis(400)),
            Err(Duration::from_millis(600))
        );
        // Back at their slots: admitted, without taking anyone else's.
        assert_eq!(admission.admit(who(3), start + wait3), Ok(()));
        assert_eq!(admission.admit(who(4), start + wait4), Ok(()));
        // A newcomer at that moment waits behind the debt already handed out.
        assert!(admission.admit(who(5), start + wait4).is_err());
    }
}
