//! Resource aggregation (算力资源汇聚): agents' QUIC connections in, stored
//! samples and acknowledgements out.
//!
//! Each connection gets one task. Its first message decides what it is:
//! `EnrollRequest` (a host joining with a token, no client certificate
//! needed) or `Hello` (an enrolled host, client certificate required). Every
//! sample goes to the one [`SampleWriter`], which commits batches across all
//! connections; a connection acknowledges a sample only after its batch
//! committed. A connection that breaks the protocol is closed with a reason
//! and logged once; nothing it does reaches another connection.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use quinn::{Connection, Endpoint, Incoming, SendStream};
use rustls::pki_types::CertificateDer;
use suanli_protocol::{
    identifier::NodePrefix,
    session::{IngestCursor, negotiate},
    stream::{
        AgentMessage, AggregatorMessage, EnrollRequest, Enrolled, Hello, InventoryUpdate,
        MAX_VERSION, MIN_VERSION, Welcome,
    },
    transport::{CloseCode, MessageReader, ReadError, fingerprint, to_hex},
};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{Instrument, debug, info, info_span, warn};

use crate::{
    catalog::Catalog,
    identify,
    metrics::IngestCounters,
    node::NodeIdentity,
    registry::Registry,
    store::{LinkFigures, SampleRow, Store, now_ms},
};

/// How the node treats its agents.
#[derive(Debug, Clone)]
pub struct IngestConfig {
    pub node_prefix: NodePrefix,
    /// Interval to impose on agents; `None` lets each keep its own.
    pub sample_interval: Option<Duration>,
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
            node_prefix: NodePrefix::national(),
            sample_interval: None,
            handshake_timeout: Duration::from_secs(10),
            admissions_per_second: 200.0,
        }
    }
}

/// Everything a connection task needs.
#[derive(Debug)]
pub struct Ingest {
    pub store: Store,
    pub identity: NodeIdentity,
    pub registry: Registry,
    pub config: IngestConfig,
    pub writer: SampleWriter,
    pub catalog: Catalog,
    pub counters: IngestCounters,
    admissions: Mutex<Admission>,
}

impl Ingest {
    pub fn new(
        store: Store,
        identity: NodeIdentity,
        config: IngestConfig,
        writer: SampleWriter,
        catalog: Catalog,
        counters: IngestCounters,
    ) -> Self {
        let rate = config.admissions_per_second;
        Self {
            store,
            identity,
            registry: Registry::default(),
            config,
            writer,
            catalog,
            counters,
            admissions: Mutex::new(Admission::new(rate, rate.max(1.0))),
        }
    }
}

/// Accepts connections until `shutdown` flips.
pub async fn accept(endpoint: Endpoint, ingest: Arc<Ingest>, mut shutdown: watch::Receiver<bool>) {
    loop {
        let incoming = tokio::select! {
            incoming = endpoint.accept() => incoming,
            _ = shutdown.changed() => None,
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

/// Why a connection was closed by us.
#[derive(Debug)]
struct Refusal {
    code: CloseCode,
    reason: String,
}

impl Refusal {
    fn new(code: CloseCode, reason: impl Into<String>) -> Self {
        Self {
            code,
            reason: reason.into(),
        }
    }
}

impl From<ReadError> for Refusal {
    fn from(e: ReadError) -> Self {
        match e {
            ReadError::Frame(f) => Refusal::new(CloseCode::Protocol, f.to_string()),
            ReadError::Stream(s) => Refusal::new(CloseCode::Done, format!("stream: {s}")),
        }
    }
}

async fn connection(incoming: Incoming, ingest: Arc<Ingest>) {
    let conn = match incoming.await {
        Ok(conn) => conn,
        Err(e) => {
            debug!(error = %e, "handshake failed");
            return;
        }
    };
    let cert = peer_certificate(&conn);
    match serve(&conn, cert.as_ref(), &ingest).await {
        Ok(()) => {}
        Err(refusal) => {
            if refusal.code != CloseCode::Done {
                ingest
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

fn peer_certificate(conn: &Connection) -> Option<CertificateDer<'static>> {
    conn.peer_identity()?
        .downcast::<Vec<CertificateDer<'static>>>()
        .ok()?
        .into_iter()
        .next()
}

async fn serve(
    conn: &Connection,
    cert: Option<&CertificateDer<'static>>,
    ingest: &Arc<Ingest>,
) -> Result<(), Refusal> {
    let timeout = ingest.config.handshake_timeout;
    let idle = || Refusal::new(CloseCode::Idle, "no message within the handshake timeout");
    let (send, recv) = tokio::time::timeout(timeout, conn.accept_bi())
        .await
        .map_err(|_| idle())?
        .map_err(|e| Refusal::new(CloseCode::Done, format!("connection: {e}")))?;
    let mut reader = MessageReader::new(recv);
    let first = tokio::time::timeout(timeout, reader.next::<AgentMessage>())
        .await
        .map_err(|_| idle())??;
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

async fn send_message(send: &mut SendStream, message: AggregatorMessage) -> Result<(), Refusal> {
    let mut bytes = Vec::new();
    message.encode(&mut bytes);
    send.write_all(&bytes)
        .await
        .map_err(|e| Refusal::new(CloseCode::Done, format!("write: {e}")))
}

async fn enroll(
    conn: &Connection,
    mut send: SendStream,
    request: EnrollRequest,
    ingest: &Ingest,
) -> Result<(), Refusal> {
    let internal = |e: &dyn std::fmt::Display| Refusal::new(CloseCode::Internal, e.to_string());
    // A broken request must not spend the token.
    NodeIdentity::check_csr(&request.csr_der)
        .map_err(|e| Refusal::new(CloseCode::EnrollmentRefused, format!("bad CSR: {e}")))?;
    let secret_hash = to_hex(&fingerprint(request.token.as_bytes()));
    let provider_id = match ingest
        .store
        .redeem_token(&secret_hash, now_ms())
        .await
        .map_err(|e| internal(&e))?
    {
        Ok(id) => id,
        Err(refusal) => {
            return Err(Refusal::new(
                CloseCode::EnrollmentRefused,
                refusal.to_string(),
            ));
        }
    };
    let machine_key = match &request.machine_id {
        Some(id) if !id.trim().is_empty() => id.trim().to_owned(),
        // Without a machine-id the certificate is the only stable thing.
        _ => format!("cert:{}", to_hex(&fingerprint(&request.csr_der))),
    };
    // The host id goes into the certificate, so enroll with a placeholder
    // fingerprint first and record the real one once signed.
    let pending = format!("pending:{}", to_hex(&fingerprint(&request.csr_der)));
    let host_id = ingest
        .store
        .enroll_host(provider_id, &machine_key, &request.hostname, &pending)
        .await
        .map_err(|e| internal(&e))?;
    let certificate = ingest
        .identity
        .sign_client(&request.csr_der, host_id)
        .map_err(|e| Refusal::new(CloseCode::EnrollmentRefused, format!("bad CSR: {e}")))?;
    ingest
        .store
        .enroll_host(
            provider_id,
            &machine_key,
            &request.hostname,
            &to_hex(&fingerprint(&certificate)),
        )
        .await
        .map_err(|e| internal(&e))?;
    if let Some(region) = ingest
        .store
        .token_region(&secret_hash)
        .await
        .map_err(|e| internal(&e))?
    {
        ingest
            .store
            .set_host_region(host_id, &region)
            .await
            .map_err(|e| internal(&e))?;
    }
    info!(host_id, hostname = %request.hostname, machine_key = %machine_key, "host enrolled");
    ingest.counters.enrollments.inc();
    if let Err(e) = ingest.catalog.refresh_host(&ingest.store, host_id).await {
        warn!(host_id, error = %e, "could not load the enrolled host into the catalog");
    }
    send_message(
        &mut send,
        AggregatorMessage::Enrolled(Enrolled {
            host_id: host_id as u64,
            host_identifier: String::new(),
            certificate_der: certificate.to_vec(),
            ca_certificate_der: ingest.identity.ca_der.to_vec(),
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
    let internal = |e: &dyn std::fmt::Display| Refusal::new(CloseCode::Internal, e.to_string());
    let auth = ingest
        .store
        .host_by_cert(&to_hex(&fingerprint(cert)))
        .await
        .map_err(|e| internal(&e))?
        .ok_or_else(|| {
            Refusal::new(
                CloseCode::Unauthenticated,
                "certificate not enrolled on this node (re-enrolled elsewhere?)",
            )
        })?;
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

    let stored_through = ingest
        .store
        .stored_through(host_id)
        .await
        .map_err(|e| internal(&e))?;
    let identifier = ingest
        .store
        .host_identifier(host_id)
        .await
        .map_err(|e| internal(&e))?;
    send_message(
        &mut send,
        AggregatorMessage::Welcome(Welcome {
            version,
            host_id: host_id as u64,
            host_identifier: identifier.unwrap_or_default(),
            sample_interval: ingest.config.sample_interval,
            stored_through_seq: stored_through,
        }),
    )
    .await?;
    info!(host_id, agent_version = %hello.agent_version, version, "agent connected");

    let (interval_tx, mut interval_rx) = mpsc::channel(4);
    let generation = ingest.registry.connect(host_id, conn.clone(), interval_tx);
    ingest.counters.connections_accepted.inc();
    ingest.catalog.set_spooled_through(
        host_id,
        hello
            .first_pending_seq
            .and_then(|_| hello.next_seq.checked_sub(1)),
    );
    // Someone is watching this host live: keep it at the live interval
    // across its reconnects.
    if ingest.catalog.watched(host_id) {
        ingest
            .registry
            .set_interval(host_id, crate::api::LIVE_INTERVAL);
    }
    let (out_tx, out_rx) = mpsc::channel(1024);
    let acker = tokio::spawn(acknowledge(send, out_rx, conn.clone()));

    let mut cursor = IngestCursor::default();
    let mut link = LinkFigures {
        dropped_samples: hello.dropped_samples,
        ..Default::default()
    };
    let mut link_tick = tokio::time::interval(Duration::from_secs(5));
    let result = loop {
        tokio::select! {
            message = reader.next::<AgentMessage>() => match message {
                Ok(Some(AgentMessage::Sample(sample))) => {
                    if let Err(e) = cursor.on_sample(sample.seq) {
                        break Err(Refusal::new(CloseCode::Protocol, e.to_string()));
                    }
                    link.last_seen_ms = now_ms();
                    ingest.counters.samples_received.inc();
                    if let Ok(decoded) = sample.decode() {
                        ingest.catalog.observe(host_id, decoded.seq, &decoded.sample, link.last_seen_ms);
                    }
                    let seq = sample.seq;
                    let done = ingest.writer.submit(SampleRow {
                        host_id,
                        seq,
                        collected_at_ms: sample.collected_at_unix_ms,
                        body: sample.bytes,
                    }).await;
                    if out_tx.send(Outgoing::AfterStored(seq, done)).await.is_err() {
                        break Ok(());
                    }
                }
                Ok(Some(AgentMessage::Inventory(update))) => {
                    if let Err(e) = record_inventory(ingest, host_id, auth.provider_id, *update).await {
                        break Err(internal(&e));
                    }
                }
                Ok(Some(AgentMessage::Hello(_) | AgentMessage::EnrollRequest(_))) => {
                    break Err(Refusal::new(CloseCode::Protocol, "Hello or EnrollRequest after the handshake"));
                }
                Ok(None) => break Ok(()),
                Err(e) => break Err(e.into()),
            },
            Some(interval) = interval_rx.recv() => {
                if out_tx.send(Outgoing::Message(AggregatorMessage::Configure { sample_interval: interval })).await.is_err() {
                    break Ok(());
                }
            }
            _ = link_tick.tick() => {
                let stats = conn.stats();
                link.rtt_us = stats.path.rtt.as_micros() as u64;
                link.sent_packets = stats.path.sent_packets;
                link.lost_packets = stats.path.lost_packets;
                ingest.catalog.set_rtt(host_id, link.rtt_us);
                if link.last_seen_ms > 0 && let Err(e) = ingest.store.record_link(host_id, link).await {
                    warn!(host_id, error = %e, "could not record link figures");
                }
            }
        }
    };
    ingest.registry.disconnect(host_id, generation);
    drop(out_tx);
    let _ = acker.await;
    if link.last_seen_ms > 0 {
        let _ = ingest.store.record_link(host_id, link).await;
    }
    info!(host_id, "agent disconnected");
    result
}

async fn record_inventory(
    ingest: &Ingest,
    host_id: i64,
    provider_id: i64,
    update: InventoryUpdate,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    ingest.counters.inventories.inc();
    let inventory = update.inventory.clone();
    let encoded = update.encode();
    ingest.store.record_inventory(host_id, &encoded).await?;
    let mut provider = ingest.store.provider_by_id(provider_id).await?;
    // Identifiers carry where the resource is: the host's site, if its
    // token named one.
    if let Some(region) = ingest
        .store
        .host_rows(Some(host_id))
        .await?
        .into_iter()
        .find_map(|h| h.region)
    {
        provider.region = region;
    }
    let machine_key = ingest.store.machine_key(host_id).await?;
    for sighting in identify::sightings(&machine_key, &inventory) {
        // Minting cannot fail once the provider's fields are known to be
        // valid, so check them before any row is written.
        identify::mint(&ingest.config.node_prefix, &provider, &sighting, 0)?;
        let prefix = ingest.config.node_prefix.clone();
        let provider = provider.clone();
        let s = sighting.clone();
        ingest
            .store
            .ensure_resource(
                host_id,
                &sighting.key,
                sighting.resource_type.name_en(),
                move |serial| {
                    identify::mint(&prefix, &provider, &s, serial)
                        .map(|id| id.to_string())
                        .unwrap_or_else(|_| format!("-{}", s.key))
                },
            )
            .await?;
    }
    ingest.catalog.refresh_host(&ingest.store, host_id).await?;
    Ok(())
}

/// What a connection's writer half sends, in order.
#[derive(Debug)]
enum Outgoing {
    Message(AggregatorMessage),
    /// Acknowledge `seq` once its batch has committed.
    AfterStored(u64, oneshot::Receiver<bool>),
}

/// Writes a connection's messages in order; acknowledgements wait for their
/// commit, and consecutive committed samples share one `Ack`.
async fn acknowledge(mut send: SendStream, mut rx: mpsc::Receiver<Outgoing>, conn: Connection) {
    let mut owed: Option<u64> = None;
    loop {
        let item = if owed.is_some() {
            match rx.try_recv() {
                Ok(item) => Some(item),
                Err(mpsc::error::TryRecvError::Empty) => None,
                Err(mpsc::error::TryRecvError::Disconnected) => None,
            }
        } else {
            rx.recv().await
        };
        let item = match item {
            Some(item) => item,
            None => match owed.take() {
                Some(through_seq) => {
                    if send_message(&mut send, AggregatorMessage::Ack { through_seq })
                        .await
                        .is_err()
                    {
                        return;
                    }
                    continue;
                }
                None => return,
            },
        };
        match item {
            Outgoing::AfterStored(seq, done) => match done.await {
                Ok(true) => owed = Some(seq),
                _ => {
                    conn.close(CloseCode::Internal.code(), b"storage failed; resend later");
                    return;
                }
            },
            Outgoing::Message(message) => {
                if let Some(through_seq) = owed.take()
                    && send_message(&mut send, AggregatorMessage::Ack { through_seq })
                        .await
                        .is_err()
                {
                    return;
                }
                if send_message(&mut send, message).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// The single writer: batches samples from every connection into one
/// transaction, so commits (and fsyncs) are shared.
#[derive(Debug, Clone)]
pub struct SampleWriter {
    tx: mpsc::Sender<(SampleRow, oneshot::Sender<bool>)>,
}

/// Most samples committed in one transaction.
const MAX_BATCH: usize = 2048;
/// How long the writer gathers samples before committing them together.
const GROUP_COMMIT_WINDOW: Duration = Duration::from_millis(10);

impl SampleWriter {
    /// Starts the writer task; it ends when every `SampleWriter` is dropped
    /// and the queue has drained.
    pub fn start(store: Store, counters: IngestCounters) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, mut rx) = mpsc::channel::<(SampleRow, oneshot::Sender<bool>)>(MAX_BATCH * 2);
        let task = tokio::spawn(async move {
            let mut rows = Vec::with_capacity(MAX_BATCH);
            let mut waiters = Vec::with_capacity(MAX_BATCH);
            while let Some((row, done)) = rx.recv().await {
                rows.push(row);
                waiters.push(done);
                // Group commit: gather what arrives within a short window, so
                // a thousand agents share one fsync instead of paying one each.
                let window = tokio::time::sleep(GROUP_COMMIT_WINDOW);
                tokio::pin!(window);
                while rows.len() < MAX_BATCH {
                    tokio::select! {
                        next = rx.recv() => match next {
                            Some((row, done)) => {
                                rows.push(row);
                                waiters.push(done);
                            }
                            None => break,
                        },
                        _ = &mut window => break,
                    }
                }
                let ok = match store.store_samples(&rows).await {
                    Ok(()) => {
                        counters.batches_committed.inc();
                        counters.samples_stored.inc_by(rows.len() as u64);
                        true
                    }
                    Err(e) => {
                        counters.batches_failed.inc();
                        warn!(error = %e, samples = rows.len(), "storing a batch failed; its agents will resend");
                        false
                    }
                };
                for done in waiters.drain(..) {
                    let _ = done.send(ok);
                }
                rows.clear();
            }
        });
        (Self { tx }, task)
    }

    /// Queues a row; the receiver says whether its batch committed.
    pub async fn submit(&self, row: SampleRow) -> oneshot::Receiver<bool> {
        let (done, rx) = oneshot::channel();
        // If the writer is gone the receiver reports failure.
        let _ = self.tx.send((row, done)).await;
        rx
    }
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
