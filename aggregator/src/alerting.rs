//! Runtime monitoring (运行监测): the built-in rules over the fleet, the
//! lifecycle of what they find (pending → firing → resolved) and silences.
//! Pure: the fleet, the time and the store's open alerts in; observations
//! and transitions out. [`crate::service::alerts`] writes the transitions.
//!
//! A rule is stateless: each evaluation it says, per subject, whether its
//! condition holds (`Firing`), sits between its fire and clear thresholds
//! (`Holding`: hysteresis), or is clear (no observation). The [`Tracker`]
//! turns that into transitions with `for` and `keep_firing_for`, so a value
//! oscillating around a threshold fires once and resolves once.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    time::Duration,
};

use crate::health::Severity;

mod inhibit;
mod rules;
mod silences;

pub use inhibit::{InhibitRule, InhibitSpec, compile_all as compile_inhibit_rules, inhibiting};

pub use rules::{
    NodeFigures, RULES, Rule, evaluate, fingerprint, host_observations, resource_health,
    resource_healths, rule, silent,
};
pub use silences::{
    MAX_MATCHER_NAME_CHARS, MAX_MATCHER_VALUE_CHARS, MAX_MATCHERS, Matcher, Matchers,
};

/// `[alerts]` of the config file: how often rules run, how long a group
/// gathers, and receivers declared as code.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsSection {
    /// How often the rules are evaluated (e.g. 5s).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alert_interval: Option<String>,
    /// How long a new alert waits for others of its group before it is sent (Alertmanager's group_wait; e.g. 30s).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_wait: Option<String>,
    /// How often a still-firing alert is told again (Alertmanager's repeat_interval; e.g. 4h).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repeat_interval: Option<String>,
    /// The dashboard's address as people reach it, for links in notifications.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alert_external_url: Option<String>,
    /// Allow receivers at plain-http loopback addresses, even for signed channels (for tests and local relays).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alert_loopback_http: Option<bool>,
    /// Receivers declared in the file; they replace those declared before.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub receivers: Option<Vec<ReceiverSpec>>,
    /// Inhibition rules, after the built-in one (Alertmanager's inhibit_rules).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inhibit_rules: Option<Vec<InhibitSpec>>,
}

/// A receiver as declared (in the file or through the API).
#[derive(Clone, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiverSpec {
    pub name: String,
    /// webhook, dingtalk, wecom, feishu or alertmanager.
    pub kind: String,
    pub url: String,
    /// The robot's signing secret, or the webhook's HMAC key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// Mobile numbers to @ (DingTalk, WeCom).
    #[serde(
        default,
        deserialize_with = "crate::check::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub mentions: Vec<String>,
    /// The least severity sent: info, warning (default) or critical.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_severity: Option<String>,
    /// How often a still-firing alert is told again (e.g. 4h; Alertmanager's
    /// repeat_interval); the node's `repeat_interval` when not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat_interval: Option<String>,
}

/// Reminders at most this often, at least this rarely.
pub const REPEAT_INTERVAL_BOUNDS: (Duration, Duration) =
    (Duration::from_secs(1), Duration::from_secs(30 * 24 * 3600));

impl ReceiverSpec {
    /// Its own reminder interval, if it gives a valid one.
    pub fn repeat_interval_ms(&self) -> Option<u64> {
        let d = humantime::parse_duration(self.repeat_interval.as_deref()?.trim()).ok()?;
        Some(d.as_millis() as u64)
    }
}

impl std::fmt::Debug for ReceiverSpec {
    // Robot tokens live in the URL and the secret: neither is printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReceiverSpec")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("url", &redact_url(&self.url))
            .field("secret", &self.secret.as_ref().map(|_| "<secret>"))
            .finish()
    }
}

/// The kinds of receiver.
pub const RECEIVER_KINDS: &[&str] = &[
    "webhook",
    "dingtalk",
    "wecom",
    "feishu",
    "alertmanager",
    "email",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceiverKind {
    /// Alertmanager's v4 webhook body, HMAC-signed.
    Webhook,
    DingTalk,
    WeCom,
    Feishu,
    /// An existing Alertmanager's `POST /api/v2/alerts`.
    Alertmanager,
    /// Mail over SMTP: `smtp://` (loopback only), `smtp+starttls://`, `smtps://`.
    Email,
}

impl ReceiverKind {
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "webhook" => Self::Webhook,
            "dingtalk" => Self::DingTalk,
            "wecom" => Self::WeCom,
            "feishu" => Self::Feishu,
            "alertmanager" => Self::Alertmanager,
            "email" => Self::Email,
            _ => return None,
        })
    }

    /// A robot: rate-limited, read by people, digested when busy.
    pub fn is_robot(self) -> bool {
        matches!(self, Self::DingTalk | Self::WeCom | Self::Feishu)
    }

    /// Signs its requests with a secret, or carries a token in its URL:
    /// neither may cross a network in the clear.
    pub fn is_signed(self) -> bool {
        !matches!(self, Self::Alertmanager | Self::Email)
    }
}

/// Where mail goes: `smtp[s|+starttls]://[user@]host[:port]?to=a@x,b@y[&from=…]`;
/// the password is the receiver's secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailTarget {
    pub security: MailSecurity,
    pub user: Option<String>,
    pub host: String,
    pub port: u16,
    pub to: Vec<String>,
    pub from: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailSecurity {
    /// No TLS: loopback relays only.
    Plain,
    StartTls,
    /// TLS from the first byte ("SMTPS").
    Implicit,
}

impl MailTarget {
    pub fn parse(url: &str) -> Result<Self, String> {
        let (scheme, rest) = url
            .split_once("://")
            .ok_or("smtp://, smtp+starttls:// or smtps://")?;
        let (security, default_port) = match scheme {
            "smtp" => (MailSecurity::Plain, 25),
            "smtp+starttls" => (MailSecurity::StartTls, 587),
            "smtps" => (MailSecurity::Implicit, 465),
            _ => return Err("smtp://, smtp+starttls:// or smtps://".into()),
        };
        let (authority, query) = rest.split_once('?').unwrap_or((rest, ""));
        let authority = authority.trim_end_matches('/');
        let (user, hostport) = match authority.rsplit_once('@') {
            Some((user, hostport)) => (Some(user.to_owned()), hostport),
            None => (None, authority),
        };
        let (host, port) = match hostport.rsplit_once(':') {
            Some((host, port)) if !host.ends_with(':') => (
                host,
                port.parse()
                    .map_err(|_| format!("{port:?} is not a port"))?,
            ),
            _ => (hostport, default_port),
        };
        let host = host.trim_matches(['[', ']']);
        if host.is_empty() {
            return Err("a host".into());
        }
        let mut to = Vec::new();
        let mut from = None;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("to", list)) => to.extend(list.split(',').map(|a| a.trim().to_owned())),
                Some(("from", address)) => from = Some(address.trim().to_owned()),
                _ => return Err(format!("unknown parameter {pair:?}: to and from only")),
            }
        }
        let valid = |a: &String| {
            a.len() <= 254
                && a.split_once('@')
                    .is_some_and(|(l, d)| !l.is_empty() && d.contains('.') || d == "localhost")
        };
        if to.is_empty() || to.len() > 50 || !to.iter().all(valid) {
            return Err("?to= one to 50 mail addresses, comma-separated".into());
        }
        let from = from.unwrap_or_else(|| format!("suanli@{host}"));
        if !valid(&from) {
            return Err("from= a mail address".into());
        }
        Ok(Self {
            security,
            user,
            host: host.to_owned(),
            port,
            to,
            from,
        })
    }
}

/// A URL as it may be shown: scheme and host only, since robots keep
/// their tokens in the path or query.
pub fn redact_url(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = host.rsplit('@').next().unwrap_or_default();
    format!("{scheme}://{host}/…")
}

/// The alert settings the node runs with.
#[derive(Debug, Clone)]
pub struct AlertSettings {
    pub interval: Duration,
    pub group_wait: Duration,
    pub external_url: String,
    pub loopback_http: bool,
    pub receivers: Vec<ReceiverSpec>,
    /// The built-in rule, then the file's.
    pub inhibit_rules: Vec<InhibitRule>,
    /// Reminders of a still-firing alert, for receivers that set none.
    pub repeat_interval: Duration,
}

impl Default for AlertSettings {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(5),
            group_wait: Duration::from_secs(30),
            external_url: String::new(),
            loopback_http: false,
            receivers: Vec::new(),
            // The built-in rule compiles (a unit test says so).
            inhibit_rules: compile_inhibit_rules(&[]).unwrap_or_default(),
            repeat_interval: Duration::from_secs(4 * 3600),
        }
    }
}

/// Does this evaluation see the condition hold, or only not yet clear?
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Firing,
    /// Between the fire and clear thresholds, or not judged now (a silent
    /// host's other rules): what is firing or pending stays so, nothing
    /// new begins.
    Holding,
}

/// What one rule found about one subject in one evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// The rule, the host and the subject: one alert per fingerprint at a time.
    pub fingerprint: String,
    pub rule: &'static Rule,
    pub severity: Severity,
    pub level: Level,
    pub host_id: Option<i64>,
    pub provider_id: Option<i64>,
    /// The identifier of the resource it is about.
    pub resource: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub summary: crate::i18n::Text,
}

/// A change the store must record.
#[derive(Debug, Clone, PartialEq)]
pub enum Transition {
    Fire(Observation),
    Resolve { fingerprint: String },
}

#[derive(Debug, Clone, Copy)]
enum Phase {
    Pending { since: u64 },
    Firing { last_true: u64 },
}

/// Pending and firing alerts of one evaluator. The store holds the truth of
/// what is firing; the tracker keeps only what the store does not: how long
/// a condition has been pending, and when a firing one last held.
#[derive(Debug, Default)]
pub struct Tracker {
    phases: HashMap<String, Phase>,
    /// Alerts another replica resolved, not to be fired again until then.
    quiet: HashMap<String, u64>,
}

/// Replicas see the fleet up to a poll or two apart. An alert another
/// replica (or an earlier run) opened is held this long before this one
/// resolves it, and one another replica resolved is not fired again by
/// this one within it: otherwise the replica that lags would flap it.
pub const REPLICA_GRACE_MS: u64 = 5_000;

impl Tracker {
    /// One evaluation: `open` is what the store has firing now (from any
    /// replica, or from before a restart), `observations` what the rules found.
    pub fn step(
        &mut self,
        now_ms: u64,
        open: &HashSet<String>,
        observations: Vec<Observation>,
    ) -> Vec<Transition> {
        // The store is the truth: adopt what it has open, forget what it closed.
        let adopted = Phase::Firing {
            last_true: now_ms + REPLICA_GRACE_MS,
        };
        for fingerprint in open {
            let phase = self.phases.entry(fingerprint.clone()).or_insert(adopted);
            if let Phase::Pending { .. } = phase {
                *phase = adopted;
            }
        }
        self.quiet.retain(|_, until| *until > now_ms);
        let quiet = &mut self.quiet;
        self.phases.retain(|f, p| {
            let closed_elsewhere = matches!(p, Phase::Firing { .. }) && !open.contains(f);
            if closed_elsewhere {
                quiet.insert(f.clone(), now_ms + REPLICA_GRACE_MS);
            }
            !closed_elsewhere
        });
        let mut out = Vec::new();
        let mut observed = HashSet::with_capacity(observations.len());
        for o in observations {
            observed.insert(o.fingerprint.clone());
            match (self.phases.get_mut(&o.fingerprint), o.level) {
                (Some(Phase::Firing { last_true }), _) => *last_true = now_ms,
                (Some(Phase::Pending { since }), Level::Firing) => {
                    if now_ms.saturating_sub(*since) >= o.rule.for_ms {
                        self.phases
                            .insert(o.fingerprint.clone(), Phase::Firing { last_true: now_ms });
                        out.push(Transition::Fire(o));
                    }
                }
                // Hysteresis: between the thresholds, pending stays pending.
                (Some(Phase::Pending { .. }), Level::Holding) => {}
                (None, Level::Firing) if self.quiet.contains_key(&o.fingerprint) => {}
                (None, Level::Firing) => {
                    if o.rule.for_ms == 0 {
                        self.phases
                            .insert(o.fingerprint.clone(), Phase::Firing { last_true: now_ms });
                        out.push(Transition::Fire(o));
                    } else {
                        self.phases
                            .insert(o.fingerprint.clone(), Phase::Pending { since: now_ms });
                    }
                }
                (None, Level::Holding) => {}
            }
        }
        let mut resolved = Vec::new();
        self.phases.retain(|fingerprint, phase| {
            if observed.contains(fingerprint) {
                return true;
            }
            match phase {
                Phase::Pending { .. } => false,
                Phase::Firing { last_true } => {
                    let keep = rule(fingerprint.split('/').next().unwrap_or_default())
                        .map_or(0, |r| r.keep_firing_for_ms);
                    if now_ms >= *last_true + keep {
                        resolved.push(fingerprint.clone());
                        false
                    } else {
                        true
                    }
                }
            }
        });
        resolved.sort();
        out.extend(
            resolved
                .into_iter()
                .map(|fingerprint| Transition::Resolve { fingerprint }),
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::i18n::{Lang, Text};

    /// Staff read every rule's description in both languages.
    #[test]
    fn every_rule_is_described_in_the_catalog() {
        for rule in RULES {
            let text = Text::new(&format!("rule.{}", rule.name));
            assert!(text.known(), "{} has no description", rule.name);
            assert_ne!(
                text.render(Lang::Zh),
                text.render(Lang::En),
                "{}",
                rule.name
            );
        }
        // The words made from a name (`severity.…`, `host_state.…`).
        for severity in crate::health::Severity::ALL {
            assert!(severity.text().known(), "{}", severity.as_str());
        }
        for state in crate::fleet::HostState::ALL {
            assert!(state.text().known(), "{}", state.as_str());
        }
    }

    #[test]
    fn mail_targets_read_security_user_port_and_recipients() {
        let t = MailTarget::parse("smtps://alerts@smtp.example.cn?to=a@x.cn,b@y.cn&from=n@x.cn")
            .expect("valid");
        assert_eq!(
            (t.security, t.port, t.host.as_str()),
            (MailSecurity::Implicit, 465, "smtp.example.cn")
        );
        assert_eq!(t.user.as_deref(), Some("alerts"));
        assert_eq!(t.to, ["a@x.cn", "b@y.cn"]);
        let t =
            MailTarget::parse("smtp+starttls://smtp.example.cn:2587/?to=a@x.cn").expect("valid");
        assert_eq!(
            (t.security, t.port, t.from.as_str()),
            (MailSecurity::StartTls, 2587, "suanli@smtp.example.cn")
        );
        for bad in [
            "https://x.cn?to=a@x.cn",
            "smtp://x.cn",
            "smtp://x.cn?to=nobody",
            "smtp://x.cn:port?to=a@x.cn",
            "smtp://?to=a@x.cn",
            "smtp://x.cn?to=a@x.cn&cc=b@x.cn",
        ] {
            assert!(MailTarget::parse(bad).is_err(), "{bad}");
        }
    }

    fn rule_named(name: &str) -> &'static Rule {
        rule(name).expect("a built-in rule")
    }

    fn temperature(level: Level) -> Observation {
        Observation {
            fingerprint: "gpu_temperature/1/GPU-1".into(),
            rule: rule_named("gpu_temperature"),
            severity: Severity::Warning,
            level,
            host_id: Some(1),
            provider_id: Some(1),
            resource: None,
            labels: BTreeMap::new(),
            summary: crate::i18n::Text::empty(),
        }
    }

    /// The store, as far as the tracker needs it: what is open.
    fn apply(
        open: &mut HashSet<String>,
        transitions: &[Transition],
        fired: &mut u32,
        resolved: &mut u32,
    ) {
        for t in transitions {
            match t {
                Transition::Fire(o) => {
                    open.insert(o.fingerprint.clone());
                    *fired += 1;
                }
                Transition::Resolve { fingerprint } => {
                    open.remove(fingerprint);
                    *resolved += 1;
                }
            }
        }
    }

    #[test]
    fn a_temperature_oscillating_around_its_threshold_fires_once_and_resolves_once() {
        // 89 °C slowdown: the value swings 86..=92 at 1 Hz for an hour.
        let limit = 89u32;
        let mut tracker = Tracker::default();
        let mut open = HashSet::new();
        let (mut fired, mut resolved) = (0, 0);
        for second in 0..3_600u64 {
            let t = 86 + (second % 7) as u32;
            let observation = if t >= limit {
                Some(temperature(Level::Firing))
            } else if t + 5 >= limit {
                Some(temperature(Level::Holding))
            } else {
                None
            };
            let out = tracker.step(second * 1000, &open, observation.into_iter().collect());
            apply(&mut open, &out, &mut fired, &mut resolved);
        }
        assert_eq!((fired, resolved), (1, 0));
        // Then it cools below the clear threshold.
        let out = tracker.step(3_601_000, &open, Vec::new());
        apply(&mut open, &out, &mut fired, &mut resolved);
        assert_eq!((fired, resolved), (1, 1));
    }

    #[test]
    fn a_condition_must_hold_for_its_for_before_it_fires() {
        let mut tracker = Tracker::default();
        let open = HashSet::new();
        assert!(
            tracker
                .step(0, &open, vec![temperature(Level::Firing)])
                .is_empty()
        );
        assert!(
            tracker
                .step(59_000, &open, vec![temperature(Level::Firing)])
                .is_empty()
        );
        // A break resets the pending time.
        assert!(tracker.step(59_500, &open, Vec::new()).is_empty());
        assert!(
            tracker
                .step(60_000, &open, vec![temperature(Level::Firing)])
                .is_empty()
        );
        let out = tracker.step(120_000, &open, vec![temperature(Level::Firing)]);
        assert!(matches!(out.as_slice(), [Transition::Fire(_)]));
    }

    #[test]
    fn what_the_store_has_open_is_resolved_when_its_condition_is_gone() {
        // After a restart, or after the host or the rule disappeared.
        let mut tracker = Tracker::default();
        let open = HashSet::from(["host_silent/7/".to_owned()]);
        // Not at once: another replica may simply see further ahead.
        assert!(tracker.step(1_000, &open, Vec::new()).is_empty());
        let out = tracker.step(1_000 + REPLICA_GRACE_MS, &open, Vec::new());
        assert_eq!(
            out,
            vec![Transition::Resolve {
                fingerprint: "host_silent/7/".into()
            }]
        );
        // Still firing: adopted, not fired again.
        let mut tracker = Tracker::default();
        let mut o = temperature(Level::Firing);
        o.fingerprint = "host_silent/7/".into();
        o.rule = rule_named("host_silent");
        assert!(tracker.step(1_000, &open, vec![o.clone()]).is_empty());
        // Another replica, seeing further ahead, resolved it: this one, a
        // poll behind, does not fire it again within the grace.
        let none = HashSet::new();
        assert!(tracker.step(2_000, &none, vec![o.clone()]).is_empty());
        assert!(
            tracker
                .step(2_000 + REPLICA_GRACE_MS - 1, &none, vec![o.clone()])
                .is_empty()
        );
        let out = tracker.step(2_000 + REPLICA_GRACE_MS, &none, vec![o]);
        assert!(matches!(out.as_slice(), [Transition::Fire(_)]), "{out:?}");
    }

    #[test]
    fn keep_firing_for_holds_an_alert_past_a_brief_clear() {
        let mut tracker = Tracker::default();
        let mut open = HashSet::new();
        let mut ecc = temperature(Level::Firing);
        ecc.fingerprint = "gpu_ecc_uncorrected/1/GPU-1".into();
        ecc.rule = rule_named("gpu_ecc_uncorrected");
        let (mut fired, mut resolved) = (0, 0);
        let out = tracker.step(0, &open, vec![ecc.clone()]);
        apply(&mut open, &out, &mut fired, &mut resolved);
        let out = tracker.step(300_000, &open, Vec::new());
        apply(&mut open, &out, &mut fired, &mut resolved);
        assert_eq!((fired, resolved), (1, 0));
        let out = tracker.step(600_000, &open, Vec::new());
        apply(&mut open, &out, &mut fired, &mut resolved);
        assert_eq!((fired, resolved), (1, 1));
    }
}
