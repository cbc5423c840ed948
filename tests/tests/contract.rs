//! The API does what its OpenAPI document says: Schemathesis, from PyPI
//! (`.ci/contract.sh` installs it and sets `SUANLI_SCHEMATHESIS`), runs
//! every check it has, in every phase including the stateful one, against
//! a node this test starts and seeds with what each route works on:
//! organisations of every kind, a streaming host, enrollment tokens, API
//! keys, lines, prices, a receiver, a silence and a child node's token. It
//! calls as two providers (peers, which must not see each other's objects)
//! and as staff.
//! Its settings, and the checks left out with their reasons, are in
//! `tests/contract/schemathesis.toml`. A plain `cargo test` reports it
//! ignored; `.ci/test` installs Schemathesis and runs it.

#![allow(clippy::unwrap_used)]

use std::{path::PathBuf, process::Command, time::Duration};

use serde_json::json;
use suanli_tests::{Agent, Aggregator, Backend, Request, component, wait_until};

const WAIT: Duration = Duration::from_secs(30);
const PASSWORD: &str = "a long enough password";
const USCC: [&str; 4] = [
    "91350100M000100Y43",
    "91110108551385082Q",
    "91440300708461136T",
    "91510100MA6C4K2P27",
];

fn schemathesis() -> PathBuf {
    let Some(st) = std::env::var_os("SUANLI_SCHEMATHESIS")
        .map(PathBuf::from)
        .filter(|p| p.exists())
    else {
        component::missing("Schemathesis", "SUANLI_SCHEMATHESIS names no file");
    };
    component::found("Schemathesis");
    st
}

#[test]
#[ignore = "needs Schemathesis: run .ci/test"]
fn the_api_does_what_its_openapi_document_says() {
    let st = schemathesis();
    let dir = tempfile::tempdir().unwrap();
    let node = Aggregator::start(&dir.path().join("node"), Backend::Sqlite, &[]);
    let staff = node.sign_in("admin", &node.admin_password());

    // Organisations of each kind; a pending registration to review.
    let provider = node.organisation(&staff, "provider", USCC[0], "prov", PASSWORD);
    node.organisation(&staff, "reseller", USCC[1], "resell", PASSWORD);
    let liner = node.organisation(&staff, "line_provider", USCC[2], "liner", PASSWORD);
    let rival = node.organisation(&staff, "provider", USCC[3], "rival", PASSWORD);
    let r = Request::new("POST", "/api/v1/registrations")
        .json(
            &json!({
                "kind": "provider", "name": "待审 有限公司", "uscc": "9144030071526726XG",
                "region": "110108", "industry": "I65", "contact": "李四", "login": "pending",
                "password": PASSWORD,
            })
            .to_string(),
        )
        .send(node.http);
    assert_eq!(r.status, 201, "{}", r.body);

    // A streaming host of the provider's, enrolled with its own token.
    let r = provider.send(
        "POST",
        "/api/v1/tokens",
        &json!({"ttl_hours": 24, "region": "510107", "uses": 5}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let mut agent = Agent::join_as(
        &dir.path().join("agent"),
        r.json()["join"].as_str().unwrap(),
        "1s",
        "contract-machine-1",
        "contract-gpu-01",
    );
    agent.run();
    wait_until(WAIT, "the provider's host to report", || {
        provider.get("/api/v1/resources?q=contract").json()["resources"][0]["state"] == "online"
    });

    // Lines, prices, an API key, a receiver, a silence, a child's token.
    let r = liner.send(
        "POST",
        "/api/v1/lines",
        &json!({"name": "成渝专线", "from_region": "510107", "to_region": "500103",
                "latency_ms": 4.5, "bandwidth_mbps": 10000, "price_per_mbps_month": "30"}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let code = provider.get("/api/v1/session").json()["provider"]["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = provider.send(
        "PUT",
        &format!("/api/v1/providers/{code}/prices"),
        &json!({"prices": [{"resource": "accelerator", "model": "H100", "per_hour_cny": "18.50"},
                           {"resource": "cpu", "per_hour_cny": "0.12"}]}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let r = provider.send(
        "POST",
        "/api/v1/receivers",
        &json!({"name": "duty", "kind": "webhook", "url": "https://hooks.example.invalid/suanli",
                "secret": "an HMAC key"}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let r = rival.send("POST", "/api/v1/tokens", &json!({"ttl_hours": 24}));
    assert_eq!(r.status, 201, "{}", r.body);
    let r = staff.send(
        "POST",
        "/api/v1/silences",
        &json!({"matchers": [{"name": "alertname", "value": "HostDown"}],
                "duration": "2h", "reason": "维护"}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let r = staff.send(
        "POST",
        "/api/v1/nodes/tokens",
        &json!({"role": "industry", "industry": "I65"}),
    );
    assert_eq!(r.status, 201, "{}", r.body);

    // Who Schemathesis calls as. Two runs: as two providers first (Web
    // Fuzzing Commons auth, tried in order per operation), peers that must
    // not read what the other made (object_level_authorization), while the
    // seeded objects are as made: staff operations are refused them, and
    // nothing they can do changes who they are; then as staff (the admin
    // token), for every operation. Schemathesis revokes keys too: the ids it
    // tries first (small ones, the first a list shows) are another
    // account's or a spare's, never a key it calls with.
    let key = |session: &suanli_tests::Session| {
        let r = session.send("POST", "/api/v1/api-keys", &json!({"name": "contract"}));
        assert_eq!(r.status, 201, "{}", r.body);
        r.json()["key"].as_str().unwrap().to_owned()
    };
    for _ in 0..100 {
        key(&liner);
    }
    key(&provider);
    key(&rival);
    let user = |name: &str, token: &str| json!({"name": name, "fixedHeaders": [{"name": "Authorization", "value": format!("Bearer {token}")}]});
    let users = json!({"auth": [
        user("provider-a", &key(&provider)),
        user("provider-b", &key(&rival)),
    ]});
    let wfc = dir.path().join("providers.json");
    std::fs::write(&wfc, users.to_string()).unwrap();
    let settings = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("contract/schemathesis.toml"),
    )
    .unwrap();
    let runs = [
        (
            "providers",
            format!(
                "[auth.wfc]\npath = {:?}\npeers = [\"provider-a\", \"provider-b\"]\n",
                wfc.display().to_string()
            ),
        ),
        (
            "staff",
            format!("[auth.openapi.bearer]\nbearer = {:?}\n", node.admin_token()),
        ),
    ];
    // Random cases each run, replayable: the seed is printed, and taken
    // from SUANLI_CONTRACT_SEED when set.
    let seed: u64 = match std::env::var("SUANLI_CONTRACT_SEED") {
        Ok(seed) => seed.parse().expect("SUANLI_CONTRACT_SEED is a number"),
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
            .into(),
    };
    eprintln!(
        "contract: seed {seed} (replay: SUANLI_CONTRACT_SEED={seed} .ci/test --test contract)"
    );
    for (run, auth) in runs {
        let config = dir.path().join(format!("{run}.toml"));
        std::fs::write(&config, format!("{settings}\n{auth}")).unwrap();
        let schemathesis = |seed: u64| {
            let output = Command::new(&st)
                .arg("--config-file")
                .arg(&config)
                .arg("run")
                .arg(format!("--seed={seed}"))
                .arg(format!("http://{}/api/v1/openapi.json", node.http))
                .arg("--report-dir")
                .arg(dir.path().join(run))
                .current_dir(dir.path())
                .env("NO_COLOR", "1")
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&output.stdout).into_owned();
            eprintln!(
                "== as {run}, seed {seed}\n{text}{}",
                String::from_utf8_lossy(&output.stderr)
            );
            (output.status.success(), text)
        };
        let (mut passed, mut text) = schemathesis(seed);
        // A run that failed with no check failing (no FAILURES section: an
        // exception inside the tool, a KeyError in its coverage phase seen
        // once in a few dozen runs) says nothing of the API: it runs once
        // more, with the next seed. A check that failed never runs again.
        if !passed && !text.contains(" FAILURES ") {
            eprintln!(
                "contract: Schemathesis erred inside itself; once more with seed {}",
                seed + 1
            );
            (passed, text) = schemathesis(seed + 1);
        }
        assert!(
            passed,
            "as {run}, Schemathesis found the API and its document disagree (above); seed {seed}"
        );
        // Not vacuous: it ran operations and finished every phase.
        assert!(text.contains("passed"), "{text}");
    }
    agent.kill();
}
