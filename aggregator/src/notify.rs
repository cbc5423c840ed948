//! Notifications: the delivery ledger drained to each receiver.
//!
//! Every receiver has its own worker, so a receiver that hangs, fails or
//! answers slowly delays only its own messages. A worker claims its due
//! deliveries (a short lease in the shared database, renewed every second
//! while it sends: on PostgreSQL one replica sends each, and a dead
//! replica's claims pass to another within seconds), drops what a silence
//! covers, groups the rest by host,
//! sends each group as one message within a timeout, and records the
//! attempt. A failed message is retried with backoff for up to a day. Robots
//! get at most 20 messages a minute: when more groups are due than the
//! minute allows, they go as one digest, so every alert is told and none
//! is dropped.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    sync::Arc,
    time::{Duration, Instant},
};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use tokio::{sync::watch, task::JoinHandle};
use tracing::{debug, info, warn};

use crate::{
    alerting::{MailSecurity, MailTarget, inhibiting},
    node::{Node, tasks::Shutdown},
    service::alerts,
    store::{Attempt, Claimed, ReceiverRow, Store, StoreError, now_ms},
};

pub mod channels;

use channels::{Channel, Delivery, Kind, Message, Outgoing, ROBOT_PER_MINUTE};

/// How often a worker looks for due deliveries.
const POLL: Duration = Duration::from_millis(500);
/// How often the set of receivers is reloaded.
const RELOAD: Duration = Duration::from_secs(1);
/// One request's time bound.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// A claim lapses this long after its last renewal: a dead replica's
/// deliveries pass to another within about this (plus a poll).
const CLAIM_LEASE_MS: u64 = 5_000;
/// How often an inhibited notification is looked at again.
const INHIBITED_RECHECK_MS: u64 = 5_000;

/// How often a sender renews its claims while it holds them.
const RENEW: Duration = Duration::from_secs(1);
/// Retries stop this long after the transition.
const GIVE_UP_MS: i64 = 24 * 3_600_000;
/// Longest wait between retries.
const MAX_BACKOFF_MS: u64 = 600_000;
/// Deliveries claimed at once.
const CLAIM: i64 = 1_000;
/// An answer body is read up to this size.
const ANSWER_LIMIT: usize = 64 << 10;

type HttpClient = Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    Full<Bytes>,
>;

/// HTTPS with the system's roots (and plain HTTP, which receivers may use
/// only where allowed).
fn client() -> Result<HttpClient, rustls::Error> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    if roots.is_empty() {
        warn!("no system root certificates found: HTTPS receivers will fail");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .build();
    Ok(Client::builder(TokioExecutor::new()).build(connector))
}

/// Runs one worker per receiver until shutdown, following receivers as
/// they are added and deleted.
pub async fn run(node: Arc<Node>, mut shutdown: Shutdown) {
    let client = match client() {
        Ok(client) => client,
        Err(e) => {
            warn!(error = %e, "TLS could not be set up: no notifications will be sent");
            return;
        }
    };
    let mut workers: HashMap<i64, (watch::Sender<bool>, JoinHandle<()>)> = HashMap::new();
    let mut tick = tokio::time::interval(RELOAD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.wait() => break,
        }
        let receivers = match node.store.receivers().await {
            Ok(r) => r,
            Err(e) => {
                warn!(error = %e, "could not read the receivers");
                continue;
            }
        };
        workers.retain(|id, (stop, _)| {
            let keep = receivers.iter().any(|r| r.id == *id);
            if !keep {
                let _ = stop.send(true);
            }
            keep
        });
        for receiver in receivers {
            if workers.contains_key(&receiver.id) {
                continue;
            }
            let (stop, stopped) = watch::channel(false);
            let id = receiver.id;
            // One worker per receiver: a hung receiver holds up only itself.
            let handle = tokio::spawn(work(node.clone(), client.clone(), receiver, stopped));
            workers.insert(id, (stop, handle));
        }
    }
    for (_, (stop, handle)) in workers {
        let _ = stop.send(true);
        let _ = handle.await;
    }
}

/// Messages a robot may still send this minute.
#[derive(Debug)]
struct Bucket {
    per_minute: u32,
    sent: Vec<Instant>,
}

impl Bucket {
    fn available(&mut self, now: Instant) -> u32 {
        self.sent
            .retain(|t| now.duration_since(*t) < Duration::from_secs(60));
        self.per_minute.saturating_sub(self.sent.len() as u32)
    }
}

async fn work(
    node: Arc<Node>,
    client: HttpClient,
    receiver: ReceiverRow,
    mut stop: watch::Receiver<bool>,
) {
    let Some(kind) = Kind::parse(&receiver.kind) else {
        warn!(
            receiver = receiver.name,
            kind = receiver.kind,
            "unknown receiver kind; not sending"
        );
        return;
    };
    let channel = Channel {
        kind,
        url: receiver.url.clone(),
        secret: receiver.secret.clone(),
        mentions: receiver.mentions.clone(),
    };
    let mut bucket = Bucket {
        per_minute: if kind.is_robot() {
            ROBOT_PER_MINUTE
        } else {
            u32::MAX
        },
        sent: Vec::new(),
    };
    debug!(receiver = receiver.name, "notifying");
    loop {
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            _ = stop.changed() => return,
        }
        let room = bucket.available(Instant::now());
        if room == 0 {
            continue;
        }
        if let Err(e) = drain(&node, &client, &receiver, &channel, room, &mut bucket).await {
            warn!(receiver = receiver.name, error = %e, "notifications could not be read or recorded");
        }
    }
}

async fn drain(
    node: &Node,
    client: &HttpClient,
    receiver: &ReceiverRow,
    channel: &Channel,
    room: u32,
    bucket: &mut Bucket,
) -> Result<(), StoreError> {
    let store = &node.store;
    let me = node.replica.as_str();
    let now = now_ms();
    let claimed = store
        .claim_deliveries(receiver.id, me, now, CLAIM_LEASE_MS, CLAIM)
        .await?;
    if claimed.is_empty() {
        return Ok(());
    }
    let silences = alerts::silences_in_force(store, now).await?;
    let open = store.open_alert_labels().await?;
    let inhibit_rules = &node.settings.alerts.inhibit_rules;
    let mut groups: BTreeMap<String, Vec<&Claimed>> = BTreeMap::new();
    for c in &claimed {
        let resolved = c.transition == "resolved";
        if resolved && !c.firing_sent {
            store
                .finish_deliveries(
                    &[c.delivery_id],
                    "suppressed",
                    "its firing notification was not sent",
                    now,
                )
                .await?;
            continue;
        }
        // A test is sent whatever mutes alerts: that is what it tests.
        let mutable = !resolved && c.alert.rule != alerts::TEST_RULE;
        if mutable && let Some(id) = alerts::silencing(&silences, &c.alert.labels) {
            store
                .finish_deliveries(
                    &[c.delivery_id],
                    "suppressed",
                    &format!("silenced by silence {id}"),
                    now,
                )
                .await?;
            continue;
        }
        // Inhibited: held, not dropped. As in Alertmanager, it is told once
        // the alert inhibiting it resolves, if it still fires then.
        if mutable
            && let Some(id) = inhibiting(
                inhibit_rules,
                open.iter().map(|(id, labels)| (*id, labels)),
                (c.alert.id, &c.alert.labels),
            )
        {
            store
                .defer_delivery(
                    c.delivery_id,
                    now + INHIBITED_RECHECK_MS,
                    &format!("inhibited by alert {id}"),
                )
                .await?;
            continue;
        }
        groups.entry(group_key(c)).or_default().push(c);
    }
    if groups.len() > room as usize {
        // More groups than the minute allows: one digest of them all.
        let all: Vec<&Claimed> = groups.into_values().flatten().collect();
        groups = BTreeMap::from([("{}:digest".to_owned(), all)]);
    }
    let external_url = node.settings.alerts.external_url.as_str();
    let user_agent = format!(
        "suanli-aggregator/{} (replica {me})",
        env!("CARGO_PKG_VERSION")
    );
    let mut held: BTreeSet<i64> = groups.values().flatten().map(|c| c.delivery_id).collect();
    for (key, members) in groups {
        // A claim that lapsed while this replica stalled may have passed
        // to another: what it took is its to send.
        keep(store, me, &mut held).await?;
        let members: Vec<&Claimed> = members
            .into_iter()
            .filter(|c| held.contains(&c.delivery_id))
            .collect();
        if members.is_empty() {
            continue;
        }
        let group_labels: BTreeMap<String, String> = members
            .first()
            .and_then(|c| c.alert.labels.get("hostname"))
            .filter(|_| !key.ends_with(":digest"))
            .map(|h| BTreeMap::from([("hostname".to_owned(), h.clone())]))
            .unwrap_or_default();
        let message = Message {
            receiver: &receiver.name,
            group_key: key.clone(),
            group_labels,
            alerts: members
                .iter()
                .map(|c| (&c.alert, c.transition == "resolved"))
                .collect(),
            external_url,
        };
        let ids: Vec<i64> = members.iter().map(|c| c.delivery_id).collect();
        let retry = members.iter().map(|c| c.attempts).max().unwrap_or(0);
        let started = Instant::now();
        bucket.sent.push(started);
        let send = async {
            match channel.prepare(&message, now_ms()) {
                Delivery::Http(outgoing) => post(client, &outgoing, &user_agent).await,
                Delivery::Mail { subject, text } => mail(channel, &subject, text).await,
            }
        };
        let answer = renewing(store, me, &mut held, send).await;
        let latency_ms = started.elapsed().as_millis() as i64;
        let (status, verdict) = match &answer {
            Ok((status, body)) => (Some(i64::from(*status)), channel.judge(*status, body)),
            Err(e) => (None, Err(e.clone())),
        };
        let attempt = Attempt {
            at_ms: now_ms() as i64,
            alerts: ids.len() as i64,
            http_status: status,
            errcode: match &verdict {
                Err(code) if answer.is_ok() && !code.starts_with("HTTP") => Some(code.clone()),
                _ => None,
            },
            error: verdict.as_ref().err().cloned(),
            latency_ms,
            retry,
        };
        let done = now_ms();
        // What was sent is marked so first, before anything else can fail
        // and leave its claim to lapse and the message to go again.
        if verdict.is_ok() {
            store.finish_deliveries(&ids, "sent", "sent", done).await?;
        }
        if let Err(e) = store.record_attempt(receiver.id, &attempt).await {
            warn!(receiver = receiver.name, error = %e, "the attempt could not be recorded");
        }
        match verdict {
            Ok(()) => {
                info!(
                    receiver = receiver.name,
                    alerts = ids.len(),
                    latency_ms,
                    "notified"
                );
                held.retain(|id| !ids.contains(id));
            }
            Err(why) => {
                warn!(
                    receiver = receiver.name,
                    alerts = ids.len(),
                    error = why,
                    "notification failed; will retry"
                );
                // Each gives up a day after its transition.
                let (expired, live): (Vec<&Claimed>, Vec<&Claimed>) =
                    members.iter().partition(|c| {
                        let since = match c.transition.as_str() {
                            "resolved" => c.alert.resolved_at_ms.unwrap_or(c.alert.started_at_ms),
                            _ => c.alert.started_at_ms,
                        };
                        done as i64 - since > GIVE_UP_MS
                    });
                let expired: Vec<i64> = expired.iter().map(|c| c.delivery_id).collect();
                let live: Vec<i64> = live.iter().map(|c| c.delivery_id).collect();
                store
                    .finish_deliveries(&expired, "failed", &why, done)
                    .await?;
                store
                    .retry_deliveries(&live, me, done + backoff_ms(retry), &why)
                    .await?;
                held.retain(|id| !ids.contains(id));
            }
        }
    }
    Ok(())
}

/// Renews the claims still `held`, keeping only those this replica still
/// holds.
async fn keep(store: &Store, me: &str, held: &mut BTreeSet<i64>) -> Result<(), StoreError> {
    let ids: Vec<i64> = held.iter().copied().collect();
    let still = store
        .renew_claims(&ids, me, now_ms() + CLAIM_LEASE_MS)
        .await?;
    if still.len() < ids.len() {
        warn!(
            lost = ids.len() - still.len(),
            "claims lapsed and passed to another replica; it sends them"
        );
    }
    *held = still.into_iter().collect();
    Ok(())
}

/// Runs `send`, renewing the claims every second until it ends: a slow
/// receiver (up to the send timeout) keeps its deliveries claimed, and a
/// replica that dies stops renewing.
async fn renewing<T>(
    store: &Store,
    me: &str,
    held: &mut BTreeSet<i64>,
    send: impl Future<Output = T>,
) -> T {
    tokio::pin!(send);
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + RENEW, RENEW);
    loop {
        // The renewal runs beside the request, which goes on meanwhile; a
        // renewal that hangs gives way to the next.
        let renew = async {
            tick.tick().await;
            match tokio::time::timeout(RENEW, keep(store, me, held)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => warn!(error = %e, "claims could not be renewed"),
                Err(_) => warn!("renewing the claims took over a second"),
            }
        };
        tokio::select! {
            out = &mut send => return out,
            () = renew => {}
        }
    }
}

/// A group is a host's alerts (or a rule's, for the node's own).
fn group_key(c: &Claimed) -> String {
    match c.alert.labels.get("hostname") {
        Some(host) => format!("{{}}:{{hostname=\"{host}\"}}"),
        None => format!("{{}}:{{alertname=\"{}\"}}", c.alert.rule),
    }
}

/// 1 s, doubling per retry, at most ten minutes.
fn backoff_ms(retry: i64) -> u64 {
    1_000u64
        .saturating_mul(1u64 << retry.clamp(0, 20))
        .min(MAX_BACKOFF_MS)
}

async fn post(
    client: &HttpClient,
    out: &Outgoing,
    user_agent: &str,
) -> Result<(u16, Vec<u8>), String> {
    let mut request = hyper::Request::post(&out.url).header("user-agent", user_agent);
    for (name, value) in &out.headers {
        request = request.header(*name, value);
    }
    let request = request
        .body(Full::new(Bytes::from(out.body.clone())))
        .map_err(|e| format!("bad request: {e}"))?;
    let exchange = async {
        let response = client.request(request).await.map_err(|e| describe(&e))?;
        let status = response.status().as_u16();
        let body = http_body_util::Limited::new(response.into_body(), ANSWER_LIMIT)
            .collect()
            .await
            .map_err(|e| format!("reading the answer: {e}"))?
            .to_bytes();
        Ok((status, body.to_vec()))
    };
    tokio::time::timeout(SEND_TIMEOUT, exchange)
        .await
        .map_err(|_| format!("no answer within {} s", SEND_TIMEOUT.as_secs()))?
}

/// Sends a notification by mail; an SMTP reply code stands in for the status.
async fn mail(channel: &Channel, subject: &str, text: String) -> Result<(u16, Vec<u8>), String> {
    use lettre::{
        AsyncSmtpTransport, AsyncTransport, Message as Mail, Tokio1Executor,
        message::header::ContentType, transport::smtp::authentication::Credentials,
    };
    let target = MailTarget::parse(&channel.url)?;
    let mut mail = Mail::builder()
        .from(target.from.parse().map_err(|e| format!("from: {e}"))?)
        .subject(subject)
        .header(ContentType::TEXT_PLAIN);
    for to in &target.to {
        mail = mail.to(to.parse().map_err(|e| format!("to {to}: {e}"))?);
    }
    let mail = mail.body(text).map_err(|e| e.to_string())?;
    let builder = match target.security {
        MailSecurity::Plain => {
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&target.host)
        }
        MailSecurity::StartTls => {
            AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&target.host)
                .map_err(|e| e.to_string())?
        }
        MailSecurity::Implicit => {
            AsyncSmtpTransport::<Tokio1Executor>::relay(&target.host).map_err(|e| e.to_string())?
        }
    };
    let mut builder = builder.port(target.port).timeout(Some(SEND_TIMEOUT));
    if let (Some(user), Some(password)) = (&target.user, &channel.secret) {
        builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
    }
    let response = builder.build().send(mail).await.map_err(|e| describe(&e))?;
    Ok((u16::from(response.code()), Vec::new()))
}

/// The error and its causes, which hyper keeps in its source chain.
fn describe(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_ten_minutes() {
        assert_eq!(backoff_ms(0), 1_000);
        assert_eq!(backoff_ms(3), 8_000);
        assert_eq!(backoff_ms(30), MAX_BACKOFF_MS);
        assert_eq!(backoff_ms(-1), 1_000);
    }
}
