//! Monitoring's operations: evaluating the rules into alert rows, and what
//! people do about alerts (acknowledge, silence, route to receivers, mark
//! an accelerator healthy). Staff manage everything; a provider sees and
//! acts on its own hosts' alerts and may add receivers for them.

use std::collections::{BTreeMap, HashSet};

use serde::Deserialize;
use suanli_protocol::stream::SequencedSample;
use tracing::{debug, info};

use super::{Actor, ServiceError, audit, own_provider};
use crate::{
    alerting::{
        self, MAX_MATCHERS, MailSecurity, MailTarget, Matcher, Matchers, NodeFigures,
        RECEIVER_KINDS, REPEAT_INTERVAL_BOUNDS, ReceiverKind as Kind, ReceiverSpec, Tracker,
        Transition, inhibiting,
    },
    auth::{Principal, Role},
    check::{Check, FieldProblem, Invalid},
    health::Severity,
    i18n::{Lang, Text},
    node::Node,
    store::{
        AlertFilter, AlertRow, NewAlert, NewReceiver, ReceiverRow, SilenceRow, Store, StoreError,
        now_ms,
    },
};

/// A receiver counts as failing while its latest failure is this recent.
const RECEIVER_FAILING_WINDOW_MS: u64 = 10 * 60_000;
/// Most a silence may last.
const MAX_SILENCE_MS: i64 = 366 * 24 * 3_600_000;

/// The rules' evaluator of one replica: the tracker of pending alerts, and
/// how far it has applied staff clears.
#[derive(Debug, Default)]
pub struct Evaluator {
    tracker: Tracker,
    clears_seen: i64,
}

impl Evaluator {
    /// Starts where the store stands: staff clears made before now are
    /// history, and the faults of open GPU alerts are latched again, so a
    /// restart neither forgets a broken GPU nor brings it back into selection.
    pub async fn start(node: &Node) -> Result<Self, ServiceError> {
        let clears = node.store.gpu_clears(0).await?;
        let open = node
            .store
            .alerts(&AlertFilter {
                open: Some(true),
                limit: i64::MAX,
                ..Default::default()
            })
            .await?;
        for alert in open.iter().filter(|a| a.rule == "gpu_xid") {
            let (Some(host_id), Some(uuid), Some(xid)) = (
                alert.host_id,
                alert.labels.get("uuid"),
                alert.labels.get("xid").and_then(|x| x.parse().ok()),
            ) else {
                continue;
            };
            node.catalog
                .restore_fault(host_id, uuid, xid, alert.started_at_ms as u64);
        }
        Ok(Self {
            tracker: Tracker::default(),
            clears_seen: clears.last().map_or(0, |c| c.0),
        })
    }

    /// One evaluation at `now`: rules over the catalog, transitions into
    /// the store. Returns how many transitions were recorded.
    pub async fn evaluate(&mut self, node: &Node, now: u64) -> Result<usize, ServiceError> {
        for (id, host_id, uuid) in node.store.gpu_clears(self.clears_seen).await? {
            node.catalog.clear_faults(host_id, &uuid);
            self.clears_seen = id;
        }
        let figures = NodeFigures {
            writer_queue_fraction: Some(node.writer.queue_fraction()),
            failing_receivers: node
                .store
                .failing_receivers(now.saturating_sub(RECEIVER_FAILING_WINDOW_MS))
                .await?,
        };
        let open: HashSet<String> = node.store.open_fingerprints().await?.into_iter().collect();
        confirm_silences(node, &open, now).await?;
        let observations = alerting::evaluate(&node.catalog.read(), &figures, now);
        let transitions = self.tracker.step(now, &open, observations);
        let group_wait = group_wait_ms(node);
        let mut recorded = 0;
        for t in &transitions {
            match t {
                Transition::Fire(o) => {
                    let new = NewAlert {
                        fingerprint: &o.fingerprint,
                        rule: o.rule.name,
                        severity: o.severity.as_str(),
                        host_id: o.host_id,
                        provider_id: o.provider_id,
                        resource: o.resource.as_deref(),
                        labels: &o.labels,
                        summary: &o.summary,
                    };
                    if let Some(id) = node.store.fire_alert(&new, now, group_wait).await? {
                        info!(
                            alert = id,
                            rule = o.rule.name,
                            severity = o.severity.as_str(),
                            "{}",
                            o.summary.render(Lang::En)
                        );
                        recorded += 1;
                    }
                }
                Transition::Resolve { fingerprint } => {
                    if let Some(id) = node.store.resolve_alert(fingerprint, now).await? {
                        info!(alert = id, fingerprint, "resolved");
                        recorded += 1;
                    }
                }
            }
        }
        let reminders = node
            .store
            .schedule_repeats(now, node.settings.alerts.repeat_interval.as_millis() as u64)
            .await?;
        if reminders > 0 {
            debug!(reminders, "reminders due");
        }
        Ok(recorded)
    }
}

fn group_wait_ms(node: &Node) -> u64 {
    node.settings.alerts.group_wait.as_millis() as u64
}

/// Before a host is first judged silent, the store has the last word:
/// another replica may have stored its samples since this one last
/// followed them (its agent moved there, or the follower lags behind a
/// burst). A newer stored sample is taken in, and the host is not silent.
async fn confirm_silences(
    node: &Node,
    open: &HashSet<String>,
    now: u64,
) -> Result<(), ServiceError> {
    // Only hosts whose newest sample this replica holds: after a restart
    // the catalog has none, and the follower's first polls decide.
    let newly_silent: Vec<(i64, u64)> = node
        .catalog
        .read()
        .hosts
        .values()
        .filter(|h| alerting::silent(h, now))
        .filter(|h| !open.contains(&alerting::fingerprint("host_silent", h.host_id, "")))
        .filter_map(|h| Some((h.host_id, h.vitals.as_ref()?.seq)))
        .collect();
    for (host_id, seen) in newly_silent {
        let Some(body) = node.store.newest_sample(host_id).await? else {
            continue;
        };
        match SequencedSample::decode(&body) {
            Ok(s) if s.seq > seen => {
                info!(
                    host_id,
                    seq = s.seq,
                    "stored by another replica: not silent"
                );
                node.catalog.follow(host_id, s.seq, &s.sample, now);
            }
            Ok(_) => {}
            Err(e) => debug!(host_id, error = %e, "undecodable stored sample skipped"),
        }
    }
    Ok(())
}

/// Which alerts a caller asks for.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertQuery {
    /// firing (open) or resolved.
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub severity: Option<String>,
    /// A provider code (staff only).
    #[serde(default)]
    pub provider: Option<String>,
    /// A resource's identifier.
    #[serde(default)]
    pub resource: Option<String>,
    #[serde(default)]
    pub before: Option<i64>,
    #[serde(default)]
    pub limit: Option<i64>,
}

/// Alerts, newest first: all for staff, a provider's own otherwise.
pub async fn alerts(
    node: &Node,
    who: &Principal,
    q: &AlertQuery,
) -> Result<Vec<AlertRow>, ServiceError> {
    let mut check = Check::default();
    let open = match q.state.as_deref() {
        None => None,
        Some("firing") => Some(true),
        Some("resolved") => Some(false),
        Some(_) => {
            check.fail_text("state", Text::new("check.alerts.state"));
            None
        }
    };
    if let Some(s) = &q.severity
        && Severity::parse(s).is_none()
    {
        check.fail_text("severity", Text::new("check.alerts.severity"));
    }
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        check.fail_text("limit", Text::new("check.alerts.limit"));
    }
    check.done()?;
    let provider_id = if who.role.is_staff() {
        match &q.provider {
            Some(code) => Some(node.store.provider(code).await?.id),
            None => None,
        }
    } else {
        let own = own_provider(who)?;
        if let Some(code) = &q.provider
            && node.store.provider(code).await.map(|p| p.id).ok() != Some(own)
        {
            return Err(ServiceError::Forbidden(Text::new("error.alerts.own_only")));
        }
        Some(own)
    };
    let mut rows = node
        .store
        .alerts(&AlertFilter {
            open,
            severity: q.severity.clone(),
            provider_id,
            resource: q.resource.clone(),
            before: q.before,
            limit,
        })
        .await?;
    if rows.iter().any(|a| a.resolved_at_ms.is_none()) {
        let silences = silences_in_force(&node.store, now_ms()).await?;
        let open = node.store.open_alert_labels().await?;
        let rules = &node.settings.alerts.inhibit_rules;
        for alert in rows.iter_mut().filter(|a| a.resolved_at_ms.is_none()) {
            alert.silenced_by = silencing(&silences, &alert.labels);
            alert.inhibited_by = inhibiting(
                rules,
                open.iter().map(|(id, labels)| (*id, labels)),
                (alert.id, &alert.labels),
            );
        }
    }
    Ok(rows)
}

/// The silences in force at `now`, their matchers compiled.
pub async fn silences_in_force(
    store: &Store,
    now: u64,
) -> Result<Vec<(i64, Matchers)>, StoreError> {
    Ok(store
        .silences(now)
        .await?
        .into_iter()
        .filter(|s| s.starts_at_ms as u64 <= now)
        .filter_map(|s| Some((s.id, Matchers::compile(&s.matchers).ok()?)))
        .collect())
}

/// The first of `silences` that mutes an alert with these labels.
pub fn silencing(silences: &[(i64, Matchers)], labels: &BTreeMap<String, String>) -> Option<i64> {
    silences
        .iter()
        .find(|(_, m)| m.matches(labels))
        .map(|(id, _)| *id)
}

/// One alert the caller may see.
async fn visible_alert(node: &Node, who: &Principal, id: i64) -> Result<AlertRow, ServiceError> {
    let alert = node.store.alert(id).await?;
    if !who.role.is_staff() && (who.provider_id.is_none() || alert.provider_id != who.provider_id) {
        // Another organisation's alert does not exist for this caller.
        return Err(ServiceError::NotFound(
            Text::new("error.alerts.no_alert").arg("id", id),
        ));
    }
    Ok(alert)
}

/// Acknowledges an alert: someone is on it. Notifications continue as
/// they would (an acknowledgement is not a silence).
pub async fn ack(node: &Node, who: &Principal, id: i64) -> Result<AlertRow, ServiceError> {
    let alert = visible_alert(node, who, id).await?;
    if alert.acked_by.is_some() {
        return Ok(alert);
    }
    let alert = node.store.ack_alert(id, &who.actor, now_ms()).await?;
    audit::record(
        &node.store,
        &Actor::of(who),
        "alert.ack",
        &format!("alert {id}"),
        &alert.summary,
    )
    .await;
    Ok(alert)
}

/// A silence to create.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SilenceRequest {
    pub matchers: Vec<Matcher>,
    /// Unix milliseconds; now if absent.
    #[serde(default, deserialize_with = "crate::check::whole::option")]
    pub starts_at_ms: Option<i64>,
    /// Unix milliseconds; or give `duration`.
    #[serde(default, deserialize_with = "crate::check::whole::option")]
    pub ends_at_ms: Option<i64>,
    /// e.g. 2h, 30m.
    #[serde(default)]
    pub duration: Option<String>,
    pub reason: String,
}

/// Creates a silence. A provider's silence covers its own hosts only: it
/// gets a `provider` matcher.
pub async fn create_silence(
    node: &Node,
    who: &Principal,
    r: &SilenceRequest,
) -> Result<SilenceRow, ServiceError> {
    let now = now_ms() as i64;
    let mut check = Check::default();
    let reason = check.text("reason", &r.reason, 500);
    if let Err(e) = Matchers::compile(&r.matchers) {
        check.fail_text("matchers", Text::plain(e));
    }
    if r.matchers.len() > MAX_MATCHERS {
        check.fail_text(
            "matchers",
            Text::new("check.alerts.max_matchers").arg("max", MAX_MATCHERS),
        );
    }
    let starts = r.starts_at_ms.unwrap_or(now);
    let ends = match (r.ends_at_ms, r.duration.as_deref()) {
        (Some(end), None) => Some(end),
        (None, Some(d)) => match humantime::parse_duration(d) {
            Ok(d) => Some(starts.saturating_add(d.as_millis() as i64)),
            Err(e) => {
                check.fail_text(
                    "duration",
                    Text::new("check.alerts.duration").arg("error", e),
                );
                None
            }
        },
        _ => {
            check.fail_text("ends_at_ms", Text::new("check.alerts.end_needed"));
            None
        }
    };
    if let Some(end) = ends {
        if end <= starts.max(now) {
            check.fail_text("ends_at_ms", Text::new("check.alerts.end_order"));
        } else if end - starts > MAX_SILENCE_MS {
            check.fail_text("ends_at_ms", Text::new("check.alerts.silence_too_long"));
        }
    }
    check.done()?;
    let mut matchers = r.matchers.clone();
    let provider_id = if who.role.is_staff() {
        None
    } else {
        let own = own_provider(who)?;
        let code = node.store.provider_by_id(own).await?.owner_code;
        matchers.retain(|m| m.name != "provider");
        matchers.push(Matcher {
            name: "provider".into(),
            value: code,
            op: "=".into(),
        });
        Some(own)
    };
    let silence = node
        .store
        .create_silence(&SilenceRow {
            id: 0,
            matchers,
            starts_at_ms: starts,
            ends_at_ms: ends.unwrap_or(starts),
            created_by: who.actor.clone(),
            reason,
            provider_id,
            created_at_ms: now,
        })
        .await?;
    let described: Vec<String> = silence
        .matchers
        .iter()
        .map(|m| format!("{}{}{:?}", m.name, m.op, m.value))
        .collect();
    audit::record(
        &node.store,
        &Actor::of(who),
        "silence.create",
        &format!("silence {}", silence.id),
        &format!(
            "{} until {}: {}",
            described.join(","),
            crate::history::minute_text(u64::try_from(silence.ends_at_ms).unwrap_or(0)),
            silence.reason
        ),
    )
    .await;
    Ok(silence)
}

/// Silences not yet ended: all for staff, a provider's own otherwise.
pub async fn silences(node: &Node, who: &Principal) -> Result<Vec<SilenceRow>, ServiceError> {
    let all = node.store.silences(now_ms()).await?;
    if who.role.is_staff() {
        return Ok(all);
    }
    let own = own_provider(who)?;
    Ok(all
        .into_iter()
        .filter(|s| s.provider_id == Some(own))
        .collect())
}

/// Ends a silence now.
pub async fn expire_silence(node: &Node, who: &Principal, id: i64) -> Result<(), ServiceError> {
    let mine = silences(node, who).await?.iter().any(|s| s.id == id);
    if !mine {
        return Err(ServiceError::NotFound(
            Text::new("error.alerts.no_silence").arg("id", id),
        ));
    }
    node.store.expire_silence(id, now_ms()).await?;
    audit::record(
        &node.store,
        &Actor::of(who),
        "silence.expire",
        &format!("silence {id}"),
        "",
    )
    .await;
    Ok(())
}

/// Is `url` a loopback address (so plain HTTP never leaves the machine)?
fn loopback(host: &str) -> bool {
    let host = host
        .trim_start_matches('[')
        .split(']')
        .next()
        .unwrap_or(host);
    let host = host.rsplit_once(':').map_or(host, |(h, port)| {
        if port.chars().all(|c| c.is_ascii_digit()) && !host.contains("::") {
            h
        } else {
            host
        }
    });
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Checks a receiver: known kind, a URL it may use, the secret its channel
/// needs, sane mentions. Every problem at once.
pub fn check_receiver(spec: &ReceiverSpec, loopback_http: bool) -> Result<(), Invalid> {
    let mut check = Check::default();
    // Letters of any script: staff name receivers in Chinese (运维-钉钉).
    let name_ok = (1..=64).contains(&spec.name.chars().count())
        && spec
            .name
            .chars()
            .all(|c| c.is_alphanumeric() || "._-".contains(c));
    if !name_ok {
        check.fail_text("name", Text::new("check.alerts.receiver_name"));
    }
    if let Some(text) = &spec.repeat_interval {
        let (least, most) = REPEAT_INTERVAL_BOUNDS;
        let ok = spec
            .repeat_interval_ms()
            .is_some_and(|ms| (least.as_millis()..=most.as_millis()).contains(&u128::from(ms)));
        if !ok {
            check.fail_text(
                "repeat_interval",
                Text::new("check.alerts.repeat_interval").arg("value", text),
            );
        }
    }
    let kind = Kind::parse(&spec.kind);
    if kind.is_none() {
        check.fail_text(
            "kind",
            Text::new("check.alerts.kind").arg("kinds", RECEIVER_KINDS.join(", ")),
        );
    }
    let url = spec.url.trim();
    let (scheme, rest) = url.split_once("://").unwrap_or(("", ""));
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if url.len() > 2000 || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        check.fail_text("url", Text::new("check.alerts.url_form"));
    } else if kind == Some(Kind::Email) {
        match MailTarget::parse(url) {
            Err(e) => check.fail_text("url", Text::new("check.alerts.mail_url").arg("error", e)),
            Ok(t) if t.security == MailSecurity::Plain && !(loopback_http && loopback(&t.host)) => {
                check.fail_text("url", Text::new("check.alerts.mail_plain"));
            }
            Ok(_) => {}
        }
    } else if !matches!(scheme, "http" | "https") || host.is_empty() || host.contains('@') {
        check.fail_text("url", Text::new("check.alerts.url_http"));
    } else if scheme == "http" {
        let allowed = loopback_http && loopback(host);
        if !allowed && kind.is_some_and(|k| k.is_signed() || k.is_robot()) {
            check.fail_text("url", Text::new("check.alerts.url_https_signed"));
        } else if !allowed && !loopback(host) {
            check.fail_text("url", Text::new("check.alerts.url_https"));
        }
    }
    if let Some(secret) = &spec.secret
        && (secret.is_empty() || secret.len() > 500)
    {
        check.fail_text("secret", Text::new("check.alerts.secret_len"));
    }
    if matches!(kind, Some(Kind::DingTalk | Kind::Feishu)) && spec.secret.is_none() {
        check.fail_text("secret", Text::new("check.alerts.secret_needed"));
    }
    if spec.mentions.len() > 20
        || spec.mentions.iter().any(|m| {
            !(5..=20).contains(&m.len()) || !m.chars().all(|c| c.is_ascii_digit() || c == '+')
        })
    {
        check.fail_text("mentions", Text::new("check.alerts.mentions"));
    }
    if let Some(s) = &spec.min_severity
        && Severity::parse(s).is_none()
    {
        check.fail_text("min_severity", Text::new("check.alerts.severity"));
    }
    check.done()
}

/// Adds a receiver: staff for the node (or, an administrator, for a
/// provider), a provider for its own hosts.
pub async fn create_receiver(
    node: &Node,
    who: &Principal,
    spec: &ReceiverSpec,
    provider: Option<&str>,
) -> Result<ReceiverRow, ServiceError> {
    check_receiver(spec, node.settings.alerts.loopback_http)?;
    let provider_id = match (who.role, provider) {
        (Role::Admin, Some(code)) => Some(node.store.provider(code).await?.id),
        (_, Some(_)) if who.role.is_staff() => {
            return Err(ServiceError::Forbidden(Text::new(
                "error.alerts.receiver_admin_only",
            )));
        }
        (_, None) if who.role.is_staff() => None,
        _ => Some(own_provider(who)?),
    };
    let row = node
        .store
        .create_receiver(
            &NewReceiver {
                name: spec.name.clone(),
                kind: spec.kind.clone(),
                url: spec.url.trim().to_owned(),
                secret: spec.secret.clone(),
                mentions: spec.mentions.clone(),
                min_severity: spec
                    .min_severity
                    .clone()
                    .unwrap_or_else(|| "warning".into()),
                provider_id,
                declared: false,
                created_by: who.actor.clone(),
                repeat_interval_ms: spec.repeat_interval_ms(),
            },
            group_wait_ms(node),
        )
        .await?;
    audit::record(
        &node.store,
        &Actor::of(who),
        "receiver.create",
        &format!("receiver {}", row.name),
        &format!("{} {}", row.kind, alerting::redact_url(&row.url)),
    )
    .await;
    Ok(row)
}

/// Receivers: all for staff, a provider's own otherwise.
pub async fn receivers(node: &Node, who: &Principal) -> Result<Vec<ReceiverRow>, ServiceError> {
    let all = node.store.receivers().await?;
    if who.role.is_staff() {
        return Ok(all);
    }
    let own = own_provider(who)?;
    Ok(all
        .into_iter()
        .filter(|r| r.provider_id == Some(own))
        .collect())
}

/// A receiver the caller may manage.
pub async fn receiver(node: &Node, who: &Principal, id: i64) -> Result<ReceiverRow, ServiceError> {
    receivers(node, who)
        .await?
        .into_iter()
        .find(|r| r.id == id)
        .ok_or_else(|| ServiceError::NotFound(Text::new("error.alerts.no_receiver").arg("id", id)))
}

pub async fn delete_receiver(node: &Node, who: &Principal, id: i64) -> Result<(), ServiceError> {
    let row = receiver(node, who, id).await?;
    if row.declared {
        return Err(ServiceError::Conflict(
            Text::new("error.alerts.receiver_declared").arg("name", &row.name),
        ));
    }
    node.store.delete_receiver(id, now_ms()).await?;
    audit::record(
        &node.store,
        &Actor::of(who),
        "receiver.delete",
        &format!("receiver {}", row.name),
        "",
    )
    .await;
    Ok(())
}

/// Sends a test notification to one receiver the caller manages, through
/// the same ledger and sender as any alert: its attempt is recorded like
/// any other. Returns the test alert's id.
pub async fn test_receiver(node: &Node, who: &Principal, id: i64) -> Result<i64, ServiceError> {
    let row = receiver(node, who, id).await?;
    let now = now_ms();
    let actor = Actor::of(who);
    let labels = BTreeMap::from([
        ("alertname".to_owned(), TEST_RULE.to_owned()),
        ("severity".to_owned(), Severity::Info.as_str().to_owned()),
        ("receiver".to_owned(), row.name.clone()),
    ]);
    let summary = Text::new("alert.receiver_test")
        .arg("who", &actor.name)
        .arg("receiver", &row.name);
    let fingerprint = format!("{TEST_RULE}:{id}:{now}");
    let new = NewAlert {
        fingerprint: &fingerprint,
        rule: TEST_RULE,
        severity: Severity::Info.as_str(),
        host_id: None,
        provider_id: row.provider_id,
        resource: None,
        labels: &labels,
        summary: &summary,
    };
    let alert = node.store.fire_test(row.id, &new, now).await?;
    audit::record(
        &node.store,
        &actor,
        "receiver.test",
        &format!("receiver {}", row.name),
        "",
    )
    .await;
    Ok(alert)
}

/// The rule name a test notification carries: no rule of the node's.
pub const TEST_RULE: &str = "receiver_test";

/// Makes the receivers declared in the config file the declared ones:
/// new ones added, changed ones replaced, removed ones deleted.
pub async fn declare_receivers(node: &Node, specs: &[ReceiverSpec]) -> Result<(), ServiceError> {
    let existing = node.store.receivers().await?;
    let now = now_ms();
    let same = |r: &ReceiverRow, s: &ReceiverSpec| {
        r.name == s.name
            && r.kind == s.kind
            && r.url == s.url.trim()
            && r.secret == s.secret
            && r.mentions == s.mentions
            && r.min_severity == s.min_severity.clone().unwrap_or_else(|| "warning".into())
            && r.repeat_interval_ms == s.repeat_interval_ms()
    };
    for r in existing.iter().filter(|r| r.declared) {
        if !specs.iter().any(|s| same(r, s)) {
            node.store.delete_receiver(r.id, now).await?;
        }
    }
    for s in specs {
        if existing.iter().any(|r| r.declared && same(r, s)) {
            continue;
        }
        node.store
            .create_receiver(
                &NewReceiver {
                    name: s.name.clone(),
                    kind: s.kind.clone(),
                    url: s.url.trim().to_owned(),
                    secret: s.secret.clone(),
                    mentions: s.mentions.clone(),
                    min_severity: s.min_severity.clone().unwrap_or_else(|| "warning".into()),
                    provider_id: None,
                    declared: true,
                    created_by: "config".into(),
                    repeat_interval_ms: s.repeat_interval_ms(),
                },
                group_wait_ms(node),
            )
            .await?;
        info!(
            receiver = s.name,
            kind = s.kind,
            "receiver declared in the config file"
        );
    }
    Ok(())
}

/// Staff mark an accelerator healthy after dealing with its faults: it is
/// selectable again on every replica, and its fault alerts resolve.
pub async fn mark_healthy(
    node: &Node,
    who: &Principal,
    identifier: &str,
    reason: &str,
) -> Result<(), ServiceError> {
    let mut check = Check::default();
    let reason = check.text("reason", reason, 500);
    check.done()?;
    let (host_id, uuid) = {
        let fleet = node.catalog.read();
        let resource = fleet
            .by_identifier
            .get(identifier)
            .and_then(|id| fleet.resources.get(id))
            .ok_or_else(|| {
                ServiceError::NotFound(
                    Text::new("error.alerts.no_resource").arg("identifier", identifier),
                )
            })?;
        let uuid = resource.gpu_uuid.clone().ok_or_else(|| {
            ServiceError::Invalid(Invalid(vec![FieldProblem::text(
                "identifier",
                Text::new("check.alerts.not_accelerator"),
            )]))
        })?;
        (resource.host_id, uuid)
    };
    let now = now_ms();
    node.store.record_gpu_clear(host_id, &uuid, now).await?;
    node.catalog.clear_faults(host_id, &uuid);
    audit::record(
        &node.store,
        &Actor::of(who),
        "resource.mark_healthy",
        identifier,
        &reason,
    )
    .await;
    Ok(())
}
