//! Each channel's request and how to read its answer: the Alertmanager v4
//! webhook (signed with `X-Suanli-Signature`), DingTalk and Feishu robots
//! (each signed its own way), the WeCom group robot, and an existing
//! Alertmanager (`POST /api/v2/alerts`). Building a request does no IO and
//! takes the time as a parameter, so each is tested against fixed vectors.

use std::collections::BTreeMap;

use base64::Engine as _;
use ring::hmac;
use serde_json::{Value, json};

pub use crate::alerting::ReceiverKind as Kind;
use crate::{i18n::Lang, store::AlertRow};

/// Robots allow 20 messages a minute each (DingTalk, WeCom; Feishu allows
/// more, and gets the same, to stay well clear).
pub const ROBOT_PER_MINUTE: u32 = 20;

/// Where a channel sends, with what.
#[derive(Debug, Clone)]
pub struct Channel {
    pub kind: Kind,
    pub url: String,
    pub secret: Option<String>,
    pub mentions: Vec<String>,
}

/// Most bytes a message body may carry.
fn text_limit(kind: Kind) -> usize {
    match kind {
        Kind::WeCom => 4_000,
        Kind::DingTalk | Kind::Feishu => 18_000,
        Kind::Webhook | Kind::Alertmanager => usize::MAX,
        Kind::Email => 100_000,
    }
}
/// One notification: alerts of one group, in one transition each.
#[derive(Debug, Clone)]
pub struct Message<'a> {
    pub receiver: &'a str,
    pub group_key: String,
    pub group_labels: BTreeMap<String, String>,
    /// Each alert, and whether this message tells of its resolution.
    pub alerts: Vec<(&'a AlertRow, bool)>,
    /// The dashboard, for links.
    pub external_url: &'a str,
}

/// A request ready to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

fn rfc3339(ms: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_millis(t).to_string()
}

/// An alert's annotations for machines: the summary in English (as
/// before the catalog) and in Chinese.
fn annotations(a: &AlertRow) -> Value {
    json!({"summary": a.summary, "summary_zh": a.summary_in(Lang::Zh)})
}

/// What Alertmanager writes for "not ended".
const NO_END: &str = "0001-01-01T00:00:00Z";

impl Message<'_> {
    fn status(&self) -> &'static str {
        if self.alerts.iter().any(|(_, resolved)| !resolved) {
            "firing"
        } else {
            "resolved"
        }
    }

    fn common_labels(&self) -> BTreeMap<String, String> {
        let mut common = match self.alerts.first() {
            Some((a, _)) => a.labels.clone(),
            None => return BTreeMap::new(),
        };
        for (a, _) in &self.alerts[1..] {
            common.retain(|k, v| a.labels.get(k) == Some(v));
        }
        common
    }

    fn generator_url(&self, a: &AlertRow) -> String {
        format!(
            "{}/#/alerts/{}",
            self.external_url.trim_end_matches('/'),
            a.id
        )
    }

    /// The Alertmanager v4 webhook body.
    pub fn alertmanager_webhook(&self) -> Value {
        let common = self.common_labels();
        let summaries: Vec<&str> = self
            .alerts
            .iter()
            .map(|(a, _)| a.summary.as_str())
            .collect();
        let common_annotations = match self.alerts.first() {
            Some((a, _)) if summaries.windows(2).all(|w| w[0] == w[1]) => annotations(a),
            _ => json!({}),
        };
        json!({
            "version": "4",
            "groupKey": self.group_key,
            "truncatedAlerts": 0,
            "status": self.status(),
            "receiver": self.receiver,
            "groupLabels": self.group_labels,
            "commonLabels": common,
            "commonAnnotations": common_annotations,
            "externalURL": self.external_url,
            "alerts": self.alerts.iter().map(|(a, resolved)| json!({
                "status": if *resolved { "resolved" } else { "firing" },
                "labels": a.labels,
                "annotations": annotations(a),
                "startsAt": rfc3339(a.started_at_ms),
                "endsAt": match (resolved, a.resolved_at_ms) {
                    (true, Some(end)) => rfc3339(end),
                    _ => NO_END.to_owned(),
                },
                "generatorURL": self.generator_url(a),
                "fingerprint": a.fingerprint,
            })).collect::<Vec<_>>(),
        })
    }

    /// `POST /api/v2/alerts` of an existing Alertmanager.
    fn alertmanager_alerts(&self) -> Value {
        Value::Array(
            self.alerts
                .iter()
                .map(|(a, resolved)| {
                    let mut alert = json!({
                        "labels": a.labels,
                        "annotations": annotations(a),
                        "startsAt": rfc3339(a.started_at_ms),
                        "generatorURL": self.generator_url(a),
                    });
                    match (resolved, a.resolved_at_ms) {
                        (true, Some(end)) => alert["endsAt"] = json!(rfc3339(end)),
                        // Over before its firing was sent (a test notification):
                        // Alertmanager shows it a few minutes, then lets it end.
                        (false, Some(end)) => alert["endsAt"] = json!(rfc3339(end + 300_000)),
                        _ => {}
                    }
                    alert
                })
                .collect(),
        )
    }

    /// The text people read: Chinese first, every alert counted, as many
    /// listed as fit in `limit` bytes.
    fn text(&self, markdown: bool, limit: usize) -> (String, String) {
        let firing = self.alerts.iter().filter(|(_, r)| !r).count();
        let resolved = self.alerts.len() - firing;
        let title = match (firing, resolved) {
            (0, n) => format!("[已恢复 RESOLVED] {n} 条告警"),
            (n, 0) => format!("[告警 FIRING] {n} 条"),
            (f, r) => format!("[告警 FIRING] {f} 条，已恢复 {r} 条"),
        };
        let mut by_severity: BTreeMap<&str, usize> = BTreeMap::new();
        for (a, r) in &self.alerts {
            if !r {
                *by_severity.entry(a.severity.as_str()).or_default() += 1;
            }
        }
        let mut text = if markdown {
            format!("### {title}\n\n")
        } else {
            format!("{title}\n")
        };
        if !by_severity.is_empty() {
            let counts: Vec<String> = by_severity
                .iter()
                .map(|(s, n)| format!("{s} {n}"))
                .collect();
            text.push_str(&format!("级别 severity: {}\n\n", counts.join(", ")));
        }
        let footer_room = 200;
        for (i, (a, resolved)) in self.alerts.iter().enumerate() {
            let line = format!(
                "{} **{}** {} · {}{}\n",
                if markdown { "-" } else { "•" },
                if *resolved {
                    "已恢复 resolved"
                } else {
                    a.severity.as_str()
                },
                a.rule,
                a.summary_in(Lang::Zh),
                a.resource
                    .as_deref()
                    .map(|r| format!(" · {r}"))
                    .unwrap_or_default(),
            );
            let line = if markdown {
                line
            } else {
                line.replace("**", "")
            };
            if text.len() + line.len() + footer_room > limit {
                text.push_str(&format!(
                    "…及另外 {} 条 (and {} more)\n",
                    self.alerts.len() - i,
                    self.alerts.len() - i
                ));
                break;
            }
            text.push_str(&line);
        }
        if markdown && !self.external_url.is_empty() {
            text.push_str(&format!(
                "\n[查看告警 View alerts]({}/#/alerts)\n",
                self.external_url.trim_end_matches('/')
            ));
        }
        (title, text)
    }
}

/// HMAC-SHA256.
fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), message)
        .as_ref()
        .to_vec()
}

fn base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Percent-encodes what base64 output holds that a query cannot.
fn query_escape(text: &str) -> String {
    text.replace('+', "%2B")
        .replace('/', "%2F")
        .replace('=', "%3D")
}

/// DingTalk: base64(HMAC-SHA256(key = secret, "timestamp\nsecret")), timestamp in ms.
pub fn dingtalk_sign(timestamp_ms: u64, secret: &str) -> String {
    base64(&hmac_sha256(
        secret.as_bytes(),
        format!("{timestamp_ms}\n{secret}").as_bytes(),
    ))
}

/// Feishu: base64(HMAC-SHA256(key = "timestamp\nsecret", "")), timestamp in s.
pub fn feishu_sign(timestamp_s: u64, secret: &str) -> String {
    base64(&hmac_sha256(
        format!("{timestamp_s}\n{secret}").as_bytes(),
        b"",
    ))
}

/// The webhook's `X-Suanli-Signature`: `sha256=` and the hex HMAC of the body.
pub fn webhook_signature(secret: &str, body: &[u8]) -> String {
    let mac = hmac_sha256(secret.as_bytes(), body);
    let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

/// A message as its channel sends it.
#[derive(Debug, Clone, PartialEq)]
pub enum Delivery {
    Http(Outgoing),
    Mail { subject: String, text: String },
}

impl Channel {
    /// What to send for `message` at `now_ms`.
    pub fn prepare(&self, message: &Message<'_>, now_ms: u64) -> Delivery {
        if self.kind == Kind::Email {
            let (subject, text) = message.text(false, text_limit(self.kind));
            return Delivery::Mail { subject, text };
        }
        Delivery::Http(self.request(message, now_ms))
    }

    /// The HTTP request for `message` at `now_ms`.
    fn request(&self, message: &Message<'_>, now_ms: u64) -> Outgoing {
        let json_body = |v: Value| serde_json::to_vec(&v).unwrap_or_default();
        let limit = text_limit(self.kind);
        let mut headers = vec![("content-type", "application/json".to_owned())];
        let (url, body) = match self.kind {
            Kind::Webhook => {
                let body = json_body(message.alertmanager_webhook());
                if let Some(secret) = &self.secret {
                    headers.push(("x-suanli-signature", webhook_signature(secret, &body)));
                }
                (self.url.clone(), body)
            }
            Kind::Email => (String::new(), Vec::new()),
            Kind::Alertmanager => (
                format!("{}/api/v2/alerts", self.url.trim_end_matches('/')),
                json_body(message.alertmanager_alerts()),
            ),
            Kind::DingTalk => {
                let (title, mut text) = message.text(true, limit);
                for m in &self.mentions {
                    text.push_str(&format!(" @{m}"));
                }
                let url = match &self.secret {
                    Some(secret) => format!(
                        "{}{}timestamp={now_ms}&sign={}",
                        self.url,
                        if self.url.contains('?') { "&" } else { "?" },
                        query_escape(&dingtalk_sign(now_ms, secret))
                    ),
                    None => self.url.clone(),
                };
                let body = json!({
                    "msgtype": "markdown",
                    "markdown": {"title": title, "text": text},
                    "at": {"atMobiles": self.mentions, "isAtAll": false},
                });
                (url, json_body(body))
            }
            Kind::WeCom => {
                // Mentions by mobile number work in text messages only.
                let body = if self.mentions.is_empty() {
                    let (_, text) = message.text(true, limit);
                    json!({"msgtype": "markdown", "markdown": {"content": text}})
                } else {
                    let (_, text) = message.text(false, limit.min(2_000));
                    json!({"msgtype": "text", "text": {"content": text, "mentioned_mobile_list": self.mentions}})
                };
                (self.url.clone(), json_body(body))
            }
            Kind::Feishu => {
                let (title, text) = message.text(true, limit);
                let template = if message.status() == "firing" {
                    "red"
                } else {
                    "green"
                };
                let mut body = json!({
                    "msg_type": "interactive",
                    "card": {
                        "config": {"wide_screen_mode": true},
                        "header": {"title": {"tag": "plain_text", "content": title}, "template": template},
                        "elements": [{"tag": "div", "text": {"tag": "lark_md", "content": text}}],
                    },
                });
                if let Some(secret) = &self.secret {
                    let ts = now_ms / 1000;
                    body["timestamp"] = json!(ts.to_string());
                    body["sign"] = json!(feishu_sign(ts, secret));
                }
                (self.url.clone(), json_body(body))
            }
        };
        Outgoing { url, headers, body }
    }

    /// Did the receiver take it? `Err` carries the provider's error code
    /// or the HTTP status.
    pub fn judge(&self, status: u16, body: &[u8]) -> Result<(), String> {
        if !(200..300).contains(&status) {
            return Err(format!("HTTP {status}"));
        }
        let code = |field: &str| -> Result<(), String> {
            let v: Value =
                serde_json::from_slice(body).map_err(|_| "unreadable answer".to_owned())?;
            match v.get(field).and_then(Value::as_i64) {
                Some(0) => Ok(()),
                Some(code) => Err(code.to_string()),
                None => Err(format!("answer without {field}")),
            }
        };
        match self.kind {
            Kind::Webhook | Kind::Alertmanager | Kind::Email => Ok(()),
            Kind::DingTalk | Kind::WeCom => code("errcode"),
            Kind::Feishu => code("code"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Vectors computed independently (Python's hmac, hashlib and base64)
    // from each vendor's published algorithm.
    #[test]
    fn dingtalk_signs_timestamp_newline_secret_keyed_by_the_secret() {
        let secret = "SECa3f1e0c2b5d94e7f8a6b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2";
        let sign = dingtalk_sign(1_700_000_000_000, secret);
        assert_eq!(sign, "gRnp4mcKj0Lc75oMPUkm6apTlsS3wpJgebHl0fK+kEQ=");
        assert_eq!(
            query_escape(&sign),
            "gRnp4mcKj0Lc75oMPUkm6apTlsS3wpJgebHl0fK%2BkEQ%3D"
        );
    }

    #[test]
    fn feishu_signs_an_empty_message_keyed_by_timestamp_newline_secret() {
        assert_eq!(
            feishu_sign(1_700_000_000, "Vc9Yw2lHq0mJX3kzT7pR1a"),
            "5FbWwOdQwMeqQsfeO273w0hSqGs0kbL9IUzUkkDJ4r8="
        );
    }

    #[test]
    fn the_webhook_signature_is_the_hex_hmac_of_the_body() {
        assert_eq!(
            webhook_signature("webhook-secret", br#"{"a":1}"#),
            "sha256=7636aa12ed84a427b685e3c629daaa79b2732c8f15c200a639978d3b48f509f0"
        );
    }

    fn alert(id: i64, severity: &str) -> AlertRow {
        AlertRow {
            id,
            fingerprint: format!("host_silent/{id}/"),
            rule: "host_silent".into(),
            severity: severity.into(),
            host_id: Some(id),
            provider_id: Some(1),
            resource: Some(format!("CN.LOCAL.C.{id}")),
            labels: BTreeMap::from([
                ("alertname".into(), "host_silent".into()),
                ("hostname".into(), format!("h{id}")),
            ]),
            summary: format!("h{id} has sent no sample for 31 s"),
            text: Some(
                crate::i18n::Text::new("alert.host_silent")
                    .arg("hostname", format!("h{id}"))
                    .arg("seconds", 31),
            ),
            started_at_ms: 1_700_000_000_000,
            resolved_at_ms: None,
            acked_by: None,
            acked_at_ms: None,
            silenced_by: None,
            inhibited_by: None,
        }
    }

    #[test]
    fn a_long_digest_counts_every_alert_within_the_robots_limit() {
        let alerts: Vec<AlertRow> = (0..500).map(|i| alert(i, "critical")).collect();
        let message = Message {
            receiver: "ops",
            group_key: "{}".into(),
            group_labels: BTreeMap::new(),
            alerts: alerts.iter().map(|a| (a, false)).collect(),
            external_url: "https://node.example",
        };
        let channel = Channel {
            kind: Kind::WeCom,
            url: "http://x".into(),
            secret: None,
            mentions: vec![],
        };
        let out = channel.request(&message, 0);
        assert!(out.body.len() <= 4_096 + 100, "{}", out.body.len());
        let body: Value = serde_json::from_slice(&out.body).expect("json");
        let text = body["markdown"]["content"].as_str().expect("text");
        assert!(text.contains("[告警 FIRING] 500 条"), "{text}");
        // People read the summaries in Chinese.
        assert!(text.contains("h0 已 31 秒未上报样本"), "{text}");
        assert!(text.contains("critical 500"));
        assert!(text.contains("more)"));
    }

    #[test]
    fn the_webhook_body_is_alertmanagers_v4() {
        let mut a = alert(1, "critical");
        a.resolved_at_ms = Some(1_700_000_060_000);
        let message = Message {
            receiver: "hook",
            group_key: "{}/{hostname=\"h1\"}".into(),
            group_labels: BTreeMap::from([("hostname".into(), "h1".into())]),
            alerts: vec![(&a, true)],
            external_url: "http://127.0.0.1:8080",
        };
        let v = message.alertmanager_webhook();
        assert_eq!(v["version"], "4");
        assert_eq!(v["status"], "resolved");
        assert_eq!(v["alerts"][0]["startsAt"], "2023-11-14T22:13:20.000Z");
        assert_eq!(v["alerts"][0]["endsAt"], "2023-11-14T22:14:20.000Z");
        assert_eq!(v["commonLabels"]["hostname"], "h1");
        // Machines get the English words as before, and the Chinese beside.
        let annotations = &v["alerts"][0]["annotations"];
        assert_eq!(annotations["summary"], "h1 has sent no sample for 31 s");
        assert_eq!(annotations["summary_zh"], "h1 已 31 秒未上报样本");
        for key in [
            "groupKey",
            "truncatedAlerts",
            "receiver",
            "groupLabels",
            "commonAnnotations",
            "externalURL",
        ] {
            assert!(v.get(key).is_some(), "{key}");
        }
    }

    #[test]
    fn robots_answer_200_with_their_own_error_codes() {
        let ding = Channel {
            kind: Kind::DingTalk,
            url: "u".into(),
            secret: None,
            mentions: vec![],
        };
        assert_eq!(ding.judge(200, br#"{"errcode":0,"errmsg":"ok"}"#), Ok(()));
        assert_eq!(
            ding.judge(200, br#"{"errcode":90030,"errmsg":"send too fast"}"#),
            Err("90030".into())
        );
        assert_eq!(ding.judge(500, b""), Err("HTTP 500".into()));
        let feishu = Channel {
            kind: Kind::Feishu,
            ..ding
        };
        assert_eq!(
            feishu.judge(200, br#"{"code":19021,"msg":"sign match fail"}"#),
            Err("19021".into())
        );
    }
}
