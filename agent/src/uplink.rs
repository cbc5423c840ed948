//! `suanli-agent run`: sample, spool, stream.
//!
//! Three parts with one owner each: the sampling thread (collectors block,
//! so they stay off the async runtime), the spool (only this task writes
//! it), and the connection (a reader task forwards the aggregator's
//! messages). [`Uplink`] from `suanli_protocol::session` decides what
//! happens; this module only moves bytes between it, the disk and QUIC.

use std::{
    path::PathBuf,
    sync::mpsc as std_mpsc,
    time::{Duration, Instant},
};

use anyhow::bail;
use quinn::Endpoint;
use suanli_link::{
    spool::Spool,
    transport::{self, CloseCode, ServerTrust},
    uplink::{Link, dial, next_message, pump, random_u64, sleep_or_never},
};
use suanli_protocol::{
    model::HostReport,
    session::{Backoff, Uplink, UplinkEvent},
    stream::{AgentMessage, AggregatorMessage, InventoryUpdate, SequencedSample},
};
use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn};

use crate::{
    Sources,
    collect::Sampler,
    state::{self, AgentState, spool_dir},
};

/// How `run` behaves.
#[derive(Debug, Clone)]
pub struct RunConfig {
    pub state_dir: PathBuf,
    pub interval: Duration,
    pub spool_max_bytes: u64,
    pub sources: Sources,
    pub collect_timeout: Duration,
}

/// Samples on the wire but not yet acknowledged, at most.
const WINDOW: u64 = 512;

/// Runs until `shutdown` flips or the aggregator refuses this host for good.
pub async fn run(config: RunConfig, mut shutdown: watch::Receiver<bool>) -> anyhow::Result<()> {
    let state = AgentState::load(&config.state_dir)?;
    let _lock = state::lock(&config.state_dir)?;
    let address = state.enrollment.aggregator.clone();
    let client = transport::client_config(
        ServerTrust::Ca(state.ca.clone()),
        Some((state.certificate.clone(), state.key.clone_key())),
    )?;
    let mut spool = Spool::open(&spool_dir(&config.state_dir), config.spool_max_bytes)?;
    info!(
        host_id = state.enrollment.host_id,
        aggregator = %address,
        pending = ?spool.pending(),
        "agent starting"
    );

    let (reports_tx, mut reports) = mpsc::channel::<HostReport>(4);
    let (interval_tx, interval_rx) = std_mpsc::channel::<Duration>();
    let sampler = Sampler::new(config.sources.collectors(), config.collect_timeout)?;
    let sampling = std::thread::Builder::new()
        .name("sample".into())
        .spawn(move || sample_loop(sampler, config.interval, interval_rx, reports_tx))?;

    let mut uplink = Uplink::new(
        Instant::now(),
        Backoff::new(Duration::from_millis(200), Duration::from_secs(60)),
        WINDOW,
    );
    let mut link: Option<Link<AggregatorMessage>> = None;
    let mut endpoint: Option<Endpoint> = None;
    let mut inventory: Option<InventoryUpdate> = None;
    let mut inventory_sent = false;

    let result = loop {
        let dial_in = uplink
            .dial_at()
            .map(|at| at.saturating_duration_since(Instant::now()));
        tokio::select! {
            _ = shutdown.changed() => break Ok(()),
            report = reports.recv() => {
                let Some(report) = report else { break Err(anyhow::anyhow!("the sampling thread stopped")) };
                let (update, problems) = InventoryUpdate::split(report.inventory, report.problems);
                if inventory.as_ref() != Some(&update) {
                    inventory = Some(update);
                    inventory_sent = false;
                }
                let seq = spool.next_seq();
                let bytes = SequencedSample { seq, sample: report.sample, problems }.encode();
                spool.append(seq, &bytes)?;
            }
            _ = sleep_or_never(dial_in) => {
                let random = random_u64();
                match connect(&mut endpoint, &address, &client, &mut uplink, &spool).await {
                    Ok(new) => {
                        link = Some(new);
                        inventory_sent = false;
                    }
                    Err(e) => {
                        let at = uplink.on_disconnected(Instant::now(), random);
                        warn!(error = %format!("{e:#}"), retry_in_ms = at.saturating_duration_since(Instant::now()).as_millis() as u64, "cannot reach the aggregator");
                    }
                }
            }
            message = next_message(&mut link) => {
                match message {
                    Ok(message) => {
                        let events = match uplink.on_message(Instant::now(), message, spool.pending().is_none(), spool.next_seq()) {
                            Ok(events) => events,
                            Err(e) => {
                                warn!(error = %e, "the aggregator broke the protocol; reconnecting");
                                drop_link(&mut link, &mut uplink, CloseCode::Protocol, &e.to_string());
                                continue;
                            }
                        };
                        for event in events {
                            match event {
                                UplinkEvent::Connected { host_id, host_identifier } => {
                                    info!(host_id, identifier = %host_identifier, pending = ?spool.pending(), "connected");
                                }
                                UplinkEvent::Release { through_seq } => spool.release(through_seq)?,
                                UplinkEvent::Interval(interval) => {
                                    info!(interval_ms = interval.as_millis() as u64, "sampling interval set by the aggregator");
                                    let _ = interval_tx.send(interval);
                                }
                                UplinkEvent::Renumber { next_seq } => spool.renumber(next_seq)?,
                                UplinkEvent::Disconnect { dial_at, reason } => {
                                    info!(reason = %reason, retry_in_ms = dial_at.saturating_duration_since(Instant::now()).as_millis() as u64, "asked to wait");
                                    if let Some(l) = link.take() {
                                        l.connection.close(CloseCode::Done.code(), b"waiting as asked");
                                    }
                                }
                            }
                        }
                    }
                    Err(closed) => {
                        link = None;
                        if let Some(code) = closed.code && !code.is_retryable() {
                            break Err(anyhow::anyhow!("the aggregator refused this host ({code:?}): {}", closed.reason));
                        }
                        let at = uplink.on_disconnected(Instant::now(), random_u64());
                        warn!(reason = %closed.reason, retry_in_ms = at.saturating_duration_since(Instant::now()).as_millis() as u64, "connection lost");
                    }
                }
            }
        }
        // Whatever happened, send what may be sent now.
        if let Some(l) = link.as_mut()
            && uplink.is_connected()
        {
            if !inventory_sent && let Some(inv) = &inventory {
                let mut bytes = Vec::new();
                AgentMessage::Inventory(Box::new(inv.clone())).encode(&mut bytes);
                if l.send.write_all(&bytes).await.is_ok() {
                    inventory_sent = true;
                }
            }
            if let Err(e) = pump(&mut l.send, &mut uplink, &mut spool).await {
                debug!(error = %e, "write failed; the reader will see the close");
            }
        }
    };

    if let Some(mut l) = link.take() {
        let _ = l.send.finish();
        l.connection
            .close(CloseCode::Done.code(), b"agent stopping");
    }
    spool.sync()?;
    drop(reports);
    drop(interval_tx);
    if let Some(endpoint) = endpoint {
        let _ = tokio::time::timeout(Duration::from_secs(1), endpoint.wait_idle()).await;
    }
    let _ = sampling.join();
    result
}

async fn connect(
    endpoint: &mut Option<Endpoint>,
    address: &str,
    client: &quinn::ClientConfig,
    uplink: &mut Uplink,
    spool: &Spool,
) -> anyhow::Result<Link<AggregatorMessage>> {
    let (connection, mut send, recv) = dial(endpoint, address, client).await?;
    let hello = uplink.on_connecting(
        env!("CARGO_PKG_VERSION"),
        spool.pending(),
        spool.next_seq(),
        spool.dropped(),
    );
    let mut bytes = Vec::new();
    AgentMessage::Hello(hello).encode(&mut bytes);
    send.write_all(&bytes).await?;
    // Connected only once Welcome arrives: a bad certificate is refused after
    // the QUIC handshake has already "succeeded".
    Ok(Link::new(connection, send, recv))
}

fn drop_link(
    link: &mut Option<Link<AggregatorMessage>>,
    uplink: &mut Uplink,
    code: CloseCode,
    reason: &str,
) {
    if let Some(l) = link.take() {
        l.connection.close(code.code(), reason.as_bytes());
    }
    uplink.on_disconnected(Instant::now(), random_u64());
}

/// Samples every `interval` until the receiver is gone. The first cycle only
/// primes the counters that rates are computed from, so it is not sent; the
/// first report follows after at most [`FIRST_WINDOW`], so a host that has
/// just started or joined is seen at once rather than a whole interval later.
fn sample_loop(
    mut sampler: Sampler,
    mut interval: Duration,
    intervals: std_mpsc::Receiver<Duration>,
    reports: mpsc::Sender<HostReport>,
) {
    sampler.sample();
    let mut next = Instant::now() + interval.min(FIRST_WINDOW);
    loop {
        match intervals.recv_timeout(next.saturating_duration_since(Instant::now())) {
            Ok(new) => {
                interval = new;
                next = Instant::now() + interval;
                continue;
            }
            Err(std_mpsc::RecvTimeoutError::Timeout) => {}
            Err(std_mpsc::RecvTimeoutError::Disconnected) => return,
        }
        let report = sampler.sample();
        if reports.blocking_send(report).is_err() {
            return;
        }
        // Keep the cadence; after a stall, do not burst to catch up.
        next += interval;
        let now = Instant::now();
        if next < now {
            next = now + interval;
        }
    }
}

/// The window the first report's rates are measured over.
const FIRST_WINDOW: Duration = Duration::from_secs(1);

/// Refuses to run with an interval that would starve the host.
pub fn check_interval(interval: Duration) -> anyhow::Result<Duration> {
    if interval < Duration::from_millis(10) {
        bail!("--interval must be at least 10ms");
    }
    Ok(interval)
}
