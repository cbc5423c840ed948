//! Two aggregators serving one node from one PostgreSQL database: an agent
//! streams to one of them, and the other shows it live, selects it, and
//! learns the prices and lines set through the first; failed sign-ins
//! count against the same allowance on both. Needs PostgreSQL, which
//! `.ci/test` starts: a plain `cargo test` reports these ignored.

#![allow(clippy::unwrap_used)]

use std::{collections::HashMap, process::Command, time::Duration};

use serde_json::{Value, json};
use suanli_tests::{
    Agent, Aggregator, Backend, FAST_ALERTS, binary, http, receiver::Receiver, wait_until,
};

const WAIT: Duration = Duration::from_secs(30);

fn host_on(node: &Aggregator, id: i64) -> Option<Value> {
    let (status, body) = node.get(&format!("/api/v1/hosts/{id}"));
    (status == 200).then(|| serde_json::from_str(&body).unwrap())
}

#[test]
#[ignore = "needs PostgreSQL: run .ci/test"]
fn every_replica_shows_the_whole_fleet_live() {
    let backend = Backend::postgres("replicas");
    let dir = tempfile::tempdir().unwrap();
    let a = Aggregator::start(&dir.path().join("a"), backend, &[]);
    // The second replica has the node's identity and database.
    let b = a.replica(&dir.path().join("b"), &[]);

    // The agent joins and streams through A only.
    let join = a.join_string(None);
    let mut agent = Agent::join(&dir.path().join("agent"), &join, "200ms");
    agent.run();
    wait_until(WAIT, "A to take the agent's samples", || {
        host_on(&a, 1).is_some_and(|h| h["link"]["connected"] == true)
    });

    // B never hears from the agent, yet shows it online with live figures
    // that keep moving.
    let mut seen_seq = 0;
    wait_until(WAIT, "B to show the host live", || {
        host_on(&b, 1).is_some_and(|h| {
            seen_seq = h["vitals"]["seq"].as_u64().unwrap_or(0);
            h["state"] == "online"
                && h["link"]["connected"] == false
                && h["vitals"]["memory_total_bytes"].as_u64().is_some()
        })
    });
    wait_until(WAIT, "B's figures to move on", || {
        host_on(&b, 1).is_some_and(|h| h["vitals"]["seq"].as_u64().unwrap_or(0) > seen_seq)
    });

    // Selection on B finds it, and a price set through A reaches B.
    let code = host_on(&a, 1).unwrap()["provider"]["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, body) = http(
        a.http,
        "PUT",
        &format!("/api/v1/providers/{code}/prices"),
        Some(&a.admin_token()),
        Some(&json!({"prices": [{"resource": "cpu", "per_hour_cny": "0.02"}]}).to_string()),
    );
    assert_eq!(status, 200, "{body}");
    wait_until(WAIT, "B to select the host at A's price", || {
        let (status, body) = http(
            b.http,
            "POST",
            "/api/v1/selection",
            Some(&b.admin_token()),
            Some(&json!({"cpu_cores": 1, "availability": "installed"}).to_string()),
        );
        let answer: Value = serde_json::from_str(&body).unwrap_or_default();
        status == 200 && answer["candidates"][0]["hosts"][0]["price_per_hour_cny"] == "0.02"
    });
    // A dedicated line registered through A reaches B's paths.
    let (status, body) = http(
        a.http,
        "POST",
        "/api/v1/lines",
        Some(&a.admin_token()),
        Some(
            &json!({"name": "京沪专线", "from_region": "110108", "to_region": "310115",
                    "latency_ms": 9.5, "bandwidth_mbps": 100000, "provider": code})
            .to_string(),
        ),
    );
    assert_eq!(status, 201, "{body}");
    wait_until(WAIT, "B to route over A's line", || {
        let (_, body) = b.get("/api/v1/network");
        serde_json::from_str::<Value>(&body).unwrap_or_default()["lines"][0]["latency_ms"] == 9.5
    });
    // Failed sign-ins count on every replica: three at A and two at B
    // use up the allowance at both.
    let sign_in = |node: &Aggregator| {
        http(
            node.http,
            "POST",
            "/api/v1/session",
            None,
            Some(&json!({"login": "ghost", "password": "not the password"}).to_string()),
        )
        .0
    };
    for node in [&a, &a, &a, &b, &b] {
        assert_eq!(sign_in(node), 401);
    }
    assert_eq!((sign_in(&a), sign_in(&b)), (429, 429));
    agent.stop();
}

/// Two replicas evaluate the same fleet and drain the same delivery
/// ledger: 100 hosts go silent and come back, one replica is SIGKILLed in
/// between, and the receiver hears of each firing and each resolution
/// exactly once.
#[test]
#[ignore = "needs PostgreSQL: run .ci/test"]
fn replicas_notify_each_transition_once() {
    let backend = Backend::postgres("replicas_notify");
    const HOSTS: usize = 100;
    let dir = tempfile::tempdir().unwrap();
    let a = Aggregator::start(&dir.path().join("a"), backend, FAST_ALERTS);
    let mut b = a.replica(&dir.path().join("b"), FAST_ALERTS);
    let hook = Receiver::start("{}");
    let (status, body) = http(
        a.http,
        "POST",
        "/api/v1/receivers",
        Some(&a.admin_token()),
        Some(&json!({"name": "hook", "kind": "webhook", "url": hook.url("/")}).to_string()),
    );
    assert_eq!(status, 201, "{body}");
    let join = a.join_string_for(None, 1000);
    let report = |seconds: &str| {
        let out = Command::new(binary("suanli-loadgen"))
            .args([
                "--join",
                &join,
                "--agents",
                &HOSTS.to_string(),
                "--interval",
                "500ms",
            ])
            .args(["--ramp", "2s", "--duration", seconds])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    // Each fingerprint's transitions as the receiver heard them.
    let heard = || {
        let mut by: HashMap<String, Vec<String>> = HashMap::new();
        for r in hook.received() {
            for alert in r.json()["alerts"].as_array().cloned().unwrap_or_default() {
                if alert["labels"]["alertname"] == "host_silent" {
                    by.entry(alert["fingerprint"].as_str().unwrap().to_owned())
                        .or_default()
                        .push(alert["status"].as_str().unwrap().to_owned());
                }
            }
        }
        by
    };
    report("4s");
    wait_until(Duration::from_secs(60), "every silent host told", || {
        heard().len() == HOSTS
    });
    b.kill();
    // The same hosts report again (same machine ids), then go for good.
    report("3s");
    wait_until(Duration::from_secs(60), "every return told", || {
        heard()
            .values()
            .filter(|t| t.iter().any(|s| s == "resolved"))
            .count()
            == HOSTS
    });
    for (fingerprint, told) in heard() {
        assert!(
            told.starts_with(&["firing".to_owned(), "resolved".to_owned()]),
            "{fingerprint}: {told:?}"
        );
        // Never the same transition twice in a row: each told once.
        assert!(
            told.windows(2).all(|w| w[0] != w[1]),
            "{fingerprint}: {told:?}"
        );
        // After the second run the hosts go silent again: a new alert, so
        // at most one more firing (and nothing told twice).
        assert!(told.len() <= 3, "{fingerprint}: {told:?}");
    }
}

/// A silence made through one replica holds on the other, and after both
/// are SIGKILLed and restarted: the silenced host is never told, the other
/// is.
#[test]
#[ignore = "needs PostgreSQL: run .ci/test"]
fn a_silence_holds_on_every_replica_and_survives_both_dying() {
    let backend = Backend::postgres("replicas_silence");
    let dir = tempfile::tempdir().unwrap();
    let mut a = Aggregator::start(&dir.path().join("a"), backend, FAST_ALERTS);
    let mut b = a.replica(&dir.path().join("b"), FAST_ALERTS);
    let hook = Receiver::start("{}");
    let (status, body) = http(
        a.http,
        "POST",
        "/api/v1/receivers",
        Some(&a.admin_token()),
        Some(&json!({"name": "hook", "kind": "webhook", "url": hook.url("/")}).to_string()),
    );
    assert_eq!(status, 201, "{body}");
    // Made through B.
    let (status, body) = http(
        b.http,
        "POST",
        "/api/v1/silences",
        Some(&b.admin_token()),
        Some(
            &json!({"matchers": [{"name": "hostname", "value": "muted-host"}], "duration": "1h", "reason": "维护"})
                .to_string(),
        ),
    );
    assert_eq!(status, 201, "{body}");
    a.restart();
    b.restart();
    let join = a.join_string_for(None, 2);
    let mut muted = Agent::join_as(
        &dir.path().join("muted"),
        &join,
        "200ms",
        "m-muted",
        "muted-host",
    );
    let mut loud = Agent::join_as(
        &dir.path().join("loud"),
        &join,
        "200ms",
        "m-loud",
        "loud-host",
    );
    muted.run();
    loud.run();
    wait_until(
        WAIT,
        "both hosts at their interval on both replicas",
        || {
            [&a, &b].iter().all(|node| {
                (1..=2).all(|id| {
                    host_on(node, id)
                        .is_some_and(|h| h["state"] == "online" && !h["interval_ms"].is_null())
                })
            })
        },
    );
    muted.kill();
    loud.kill();
    let told = |host: &str| {
        hook.received()
            .iter()
            .flat_map(|r| r.json()["alerts"].as_array().cloned().unwrap_or_default())
            .filter(|a| {
                a["labels"]["hostname"] == host && a["labels"]["alertname"] == "host_silent"
            })
            .count()
    };
    wait_until(WAIT, "the loud host told", || told("loud-host") == 1);
    wait_until(WAIT, "the muted host's alert suppressed", || {
        let (_, body) = b.get("/api/v1/receivers");
        let v: Value = serde_json::from_str(&body).unwrap_or_default();
        v["receivers"][0]["deliveries"]["suppressed"]
            .as_i64()
            .unwrap_or(0)
            >= 1
    });
    assert_eq!(told("muted-host"), 0);
}
