//! Two aggregators serving one node from one PostgreSQL database: an agent
//! streams to one of them, and the other shows it live, selects it, and
//! learns the prices and lines set through the first; failed sign-ins
//! count against the same allowance on both. Needs PostgreSQL
//! (`SUANLI_TEST_DATABASE_URL`, set by `.ci/run`); says so and does nothing
//! without it.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use serde_json::{Value, json};
use suanli_tests::{Agent, Aggregator, Backend, http, wait_until};

const WAIT: Duration = Duration::from_secs(30);

fn host_on(node: &Aggregator) -> Option<Value> {
    let (status, body) = node.get("/api/v1/hosts/1");
    (status == 200).then(|| serde_json::from_str(&body).unwrap())
}

#[test]
fn every_replica_shows_the_whole_fleet_live() {
    let Some(backend) = Backend::all("replicas")
        .into_iter()
        .find(|b| matches!(b, Backend::Postgres(_)))
    else {
        eprintln!("skipped: replicas share PostgreSQL; SUANLI_TEST_DATABASE_URL is not set");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let a = Aggregator::start(&dir.path().join("a"), backend.clone(), &[]);
    // The second replica has the node's identity and database.
    std::fs::create_dir_all(dir.path().join("b")).unwrap();
    for file in [
        "ca.pem",
        "ca.key",
        "server.pem",
        "server.key",
        "admin.token",
        "reset.key",
    ] {
        std::fs::copy(a.data_dir.join(file), dir.path().join("b").join(file)).unwrap();
    }
    let b = Aggregator::start(&dir.path().join("b"), backend, &[]);

    // The agent joins and streams through A only.
    let join = a.join_string(None);
    let mut agent = Agent::join(&dir.path().join("agent"), &join, "200ms");
    agent.run();
    wait_until(WAIT, "A to take the agent's samples", || {
        host_on(&a).is_some_and(|h| h["link"]["connected"] == true)
    });

    // B never hears from the agent, yet shows it online with live figures
    // that keep moving.
    let mut seen_seq = 0;
    wait_until(WAIT, "B to show the host live", || {
        host_on(&b).is_some_and(|h| {
            seen_seq = h["vitals"]["seq"].as_u64().unwrap_or(0);
            h["state"] == "online"
                && h["link"]["connected"] == false
                && h["vitals"]["memory_total_bytes"].as_u64().is_some()
        })
    });
    wait_until(WAIT, "B's figures to move on", || {
        host_on(&b).is_some_and(|h| h["vitals"]["seq"].as_u64().unwrap_or(0) > seen_seq)
    });

    // Selection on B finds it, and a price set through A reaches B.
    let code = host_on(&a).unwrap()["provider"]["code"]
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
