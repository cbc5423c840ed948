//! The robots (DingTalk, WeCom, Feishu) against real local HTTP servers
//! that check each one's signature the way the vendor documents it: a
//! burst of 500 alerts (500 simulated agents going silent at once) reaches
//! each robot as at most 20 messages within the minute, and every alert is
//! counted in them.

#![allow(clippy::unwrap_used)]

use std::{process::Command, time::Duration};

use base64::Engine as _;
use ring::hmac;
use serde_json::{Value, json};
use suanli_tests::{Aggregator, Backend, Request, binary, receiver::Receiver, wait_until};

const AGENTS: usize = 500;
const DING_SECRET: &str = "SECtest0123456789abcdef0123456789abcdef0123456789abcdef01234567";
const FEISHU_SECRET: &str = "feishu-test-secret";

fn b64_hmac(key: &[u8], message: &[u8]) -> String {
    let mac = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), message);
    base64::engine::general_purpose::STANDARD.encode(mac.as_ref())
}

fn query_value<'a>(target: &'a str, name: &str) -> Option<&'a str> {
    target
        .split_once('?')?
        .1
        .split('&')
        .find_map(|pair| pair.strip_prefix(&format!("{name}=")))
}

fn unescape(text: &str) -> String {
    text.replace("%2B", "+")
        .replace("%2F", "/")
        .replace("%3D", "=")
}

/// "[告警 FIRING] 37 条" → 37.
fn firing_count(text: &str) -> u64 {
    text.split("[告警 FIRING] ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[test]
fn a_burst_reaches_each_robot_signed_digested_and_within_its_rate() {
    let dir = tempfile::tempdir().unwrap();
    let ding = Receiver::start(r#"{"errcode":0,"errmsg":"ok"}"#);
    let wecom = Receiver::start(r#"{"errcode":0,"errmsg":"ok"}"#);
    let feishu = Receiver::start(r#"{"code":0,"msg":"success"}"#);
    let node = Aggregator::start(
        &dir.path().join("node"),
        Backend::Sqlite,
        &[
            "--alert-interval",
            "500ms",
            "--group-wait",
            "1s",
            "--alert-loopback-http",
        ],
    );
    let token = node.admin_token();
    for receiver in [
        json!({"name": "ding", "kind": "dingtalk", "url": ding.url("/robot/send?access_token=t0k"), "secret": DING_SECRET, "mentions": ["13800000000"]}),
        json!({"name": "wecom", "kind": "wecom", "url": wecom.url("/cgi-bin/webhook/send?key=k3y")}),
        json!({"name": "feishu", "kind": "feishu", "url": feishu.url("/open-apis/bot/v2/hook/h00k"), "secret": FEISHU_SECRET}),
    ] {
        let r = Request::new("POST", "/api/v1/receivers")
            .bearer(&token)
            .json(&receiver.to_string())
            .send(node.http);
        assert_eq!(r.status, 201, "{}", r.body);
    }
    // A plain-http robot elsewhere than loopback is refused, saying why.
    let r = Request::new("POST", "/api/v1/receivers")
        .bearer(&token)
        .json(&json!({"name": "bad", "kind": "dingtalk", "url": "http://oapi.example.com/robot/send", "secret": "s"}).to_string())
        .send(node.http);
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(r.body.contains("https"), "{}", r.body);

    // The simulated agents send this machine's own figures: whatever else
    // they might raise (a full disk here) is silenced, so the count is of
    // the silent hosts alone.
    let r = Request::new("POST", "/api/v1/silences")
        .bearer(&token)
        .json(&json!({"matchers": [{"name": "alertname", "op": "!=", "value": "host_silent"}], "duration": "1h", "reason": "count host_silent only"}).to_string())
        .send(node.http);
    assert_eq!(r.status, 201, "{}", r.body);
    let join = node.join_string_for(None, AGENTS);
    // The agents report for a few seconds, then all stop at once.
    let loadgen = Command::new(binary("suanli-loadgen"))
        .args([
            "--join",
            &join,
            "--agents",
            &AGENTS.to_string(),
            "--interval",
            "1s",
            "--ramp",
            "3s",
            "--duration",
            "4s",
        ])
        .output()
        .unwrap();
    assert!(
        loadgen.status.success(),
        "{}",
        String::from_utf8_lossy(&loadgen.stderr)
    );

    let told = |robot: &Receiver, text_of: fn(&Value) -> String| -> u64 {
        robot
            .received()
            .iter()
            .map(|r| firing_count(&text_of(&r.json())))
            .sum()
    };
    let ding_text = |b: &Value| {
        b["markdown"]["title"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    let wecom_text = |b: &Value| {
        b["markdown"]["content"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    let feishu_text = |b: &Value| {
        b["card"]["header"]["title"]["content"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    wait_until(
        Duration::from_secs(90),
        "every silent host told to every robot",
        || {
            told(&ding, ding_text) >= AGENTS as u64
                && told(&wecom, wecom_text) >= AGENTS as u64
                && told(&feishu, feishu_text) >= AGENTS as u64
        },
    );
    for (name, robot, text_of) in [
        ("dingtalk", &ding, ding_text as fn(&Value) -> String),
        ("wecom", &wecom, wecom_text),
        ("feishu", &feishu, feishu_text),
    ] {
        let received = robot.received();
        assert!(received.len() <= 20, "{name}: {} messages", received.len());
        assert_eq!(
            told(robot, text_of),
            AGENTS as u64,
            "{name}: each alert told once"
        );
        eprintln!("{name}: {AGENTS} alerts in {} messages", received.len());
    }

    // DingTalk: timestamp (ms) and sign in the query; sign is
    // base64(HMAC-SHA256(secret, "timestamp\nsecret")); mobiles are @-ed.
    for r in ding.received() {
        assert!(
            r.target
                .starts_with("/robot/send?access_token=t0k&timestamp="),
            "{}",
            r.target
        );
        let ts = query_value(&r.target, "timestamp").unwrap();
        assert_eq!(ts.len(), 13, "milliseconds");
        let sign = unescape(query_value(&r.target, "sign").unwrap());
        assert_eq!(
            sign,
            b64_hmac(
                DING_SECRET.as_bytes(),
                format!("{ts}\n{DING_SECRET}").as_bytes()
            )
        );
        let body = r.json();
        assert_eq!(body["msgtype"], "markdown");
        assert_eq!(body["at"]["atMobiles"], json!(["13800000000"]));
        assert!(
            body["markdown"]["text"]
                .as_str()
                .unwrap()
                .contains("@13800000000")
        );
    }
    // Feishu: timestamp (s) and sign in the body; sign is
    // base64(HMAC-SHA256("timestamp\nsecret", "")).
    for r in feishu.received() {
        let body = r.json();
        let ts = body["timestamp"].as_str().unwrap();
        assert_eq!(ts.len(), 10, "seconds");
        assert_eq!(
            body["sign"],
            b64_hmac(format!("{ts}\n{FEISHU_SECRET}").as_bytes(), b"")
        );
        assert_eq!(body["msg_type"], "interactive");
        assert_eq!(body["card"]["header"]["template"], "red");
    }
    // WeCom: no signature; the key stays in the URL; markdown within 4096 bytes.
    for r in wecom.received() {
        assert_eq!(r.target, "/cgi-bin/webhook/send?key=k3y");
        let body = r.json();
        assert_eq!(body["msgtype"], "markdown");
        assert!(body["markdown"]["content"].as_str().unwrap().len() <= 4096);
    }
}
