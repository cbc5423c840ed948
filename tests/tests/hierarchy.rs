//! The 1 + M + N hierarchy with real processes: a national node, a regional
//! node and two industry nodes on loopback, each a `suanli-aggregator
//! serve`, with real agents. Joining is double opt-in (a token from the
//! parent, approval by its staff), identifiers minted at an industry node
//! resolve at every ancestor once filed, filings survive cut links and
//! killed parents stored once at their latest revision, and every bad
//! request is refused with its reason.

#![allow(clippy::unwrap_used)]

use std::{
    collections::{BTreeMap, BTreeSet},
    path::Path,
    time::{Duration, Instant},
};

use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
use serde_json::{Value, json};
use suanli_link::transport::{self, ServerTrust};
use suanli_protocol::{
    identifier::{Identifier, NodePrefix, Serial},
    node::{CapacityGroup, ChildMessage, MarketReport, ParentMessage},
};
use suanli_tests::{
    Agent, Aggregator, Backend, Request, browser,
    child::{ScriptedChild, Stream},
    nvml_standin, on_each_backend,
    relay::{Impairment, Relay},
    tree::{join, nodes, request, token},
    wait_until,
};

const WAIT: Duration = Duration::from_secs(60);

fn start(dir: &Path, name: &str, backend: &Backend, test: &str, role: &str) -> Aggregator {
    Aggregator::start(
        &dir.join(name),
        backend.for_node(&format!("{test}_{name}")),
        &["--role", role],
    )
}

fn get(node: &Aggregator, path: &str) -> (u16, Value) {
    let (status, body) = node.get(path);
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

/// A running agent on `node` as the machine `machine`, with two H100s on
/// the stand-in NVML (one busy, one free).
fn gpu_agent(dir: &Path, node: &Aggregator, interval: &str, machine: &str) -> Agent {
    let mut agent = Agent::join_as(
        &dir.join(machine),
        &node.join_string(None),
        interval,
        machine,
        &format!("{machine}-host"),
    );
    agent.env = vec![(
        "SUANLI_NVML_LIBRARY".into(),
        nvml_standin(dir).display().to_string(),
    )];
    agent.run();
    agent
}

/// The identifiers of `type` a node's own resources have now.
fn own_identifiers(node: &Aggregator, resource_type: &str) -> Vec<String> {
    let (status, body) = get(
        node,
        &format!("/api/v1/resources?type={resource_type}&limit=1000"),
    );
    assert_eq!(status, 200, "{body}");
    body["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["identifier"].as_str().unwrap().to_owned())
        .collect()
}

fn resolves(node: &Aggregator, identifier: &str) -> Option<Value> {
    let (status, body) = get(node, &format!("/api/v1/resources/{identifier}"));
    (status == 200).then_some(body)
}

/// (identifier, revision, state) of every library entry held for `prefix`.
fn library(node: &Aggregator, prefix: &str) -> BTreeSet<(String, u64, String)> {
    let mut out = BTreeSet::new();
    let mut cursor = String::new();
    loop {
        let (status, body) = get(
            node,
            &format!("/api/v1/identifiers?node={prefix}&limit=1000&cursor={cursor}"),
        );
        assert_eq!(status, 200, "{body}");
        for e in body["identifiers"].as_array().unwrap() {
            if e["state"] == "superseded" {
                continue;
            }
            out.insert((
                e["identifier"].as_str().unwrap().to_owned(),
                e["revision"].as_u64().unwrap(),
                e["state"].as_str().unwrap().to_owned(),
            ));
        }
        match body["next_cursor"].as_str() {
            Some(next) => cursor = next.to_owned(),
            None => return out,
        }
    }
}

/// A period's subtree figures at `node` (the latest complete one, or the
/// one `at` falls in).
fn report(node: &Aggregator, at: Option<u64>) -> Value {
    let path = match at {
        Some(at) => format!("/api/v1/reports?stream=resource&at={at}"),
        None => "/api/v1/reports".to_owned(),
    };
    let (status, body) = get(node, &path);
    assert_eq!(status, 200, "{body:#}");
    body
}

/// Groups summed by (region, type, model), every count added; what a
/// parent's figures must equal.
fn summed(reports: &[&Value]) -> BTreeMap<String, BTreeMap<String, u64>> {
    let mut out: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for group in reports.iter().flat_map(|r| r["groups"].as_array().unwrap()) {
        let key = format!(
            "{} {} {}",
            group["region"], group["resource_type"], group["model"]
        );
        let total = out.entry(key).or_default();
        for (field, value) in group.as_object().unwrap() {
            if let Some(n) = value.as_u64() {
                *total.entry(field.clone()).or_default() += n;
            }
        }
        for c in group["capacity"].as_array().unwrap() {
            for field in ["registered_gflops", "available_gflops", "unrated"] {
                *total
                    .entry(format!("{}.{field}", c["precision"].as_str().unwrap()))
                    .or_default() += c[field].as_u64().unwrap();
            }
        }
    }
    out
}

/// The national node's figures for one period equal the regional node's
/// (the national node has no hosts of its own), and the regional node's the
/// sum of its two industry nodes' (nor has it).
fn market_figures_add_up(national: &Aggregator, regional: &Aggregator, leaves: &[&Aggregator]) {
    let everyone = ["CN", "CN.32", "CN.32.I65", "CN.32.M73"];
    let mut latest = Value::Null;
    wait_until(
        WAIT,
        "a period the whole tree reported at the national node",
        || {
            latest = report(national, None);
            let origins: Vec<&str> = latest["origins"]
                .as_array()
                .unwrap()
                .iter()
                .map(|o| o["origin"].as_str().unwrap())
                .collect();
            latest["complete"] == true
                && everyone.iter().all(|o| origins.contains(o))
                && latest["scale"]["resources"]["C"].as_u64() >= Some(2)
        },
    );
    let at = latest["period_start_ms"].as_u64().unwrap();
    let at_regional = report(regional, Some(at));
    let at_leaves: Vec<Value> = leaves.iter().map(|n| report(n, Some(at))).collect();
    assert_eq!(summed(&[&latest]), summed(&[&at_regional]), "{latest:#}");
    assert_eq!(
        summed(&[&at_regional]),
        summed(&at_leaves.iter().collect::<Vec<_>>()),
        "{at_regional:#}"
    );
    // The GPU host's stand-in accelerators and the CPU hosts, rated.
    assert_eq!(latest["origins"].as_array().unwrap().len(), 4, "{latest:#}");
    let via: Vec<(&str, &str)> = latest["origins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["origin"].as_str().unwrap(),
                o["via"].as_str().unwrap_or("-"),
            )
        })
        .collect();
    assert_eq!(
        via,
        [
            ("CN", "-"),
            ("CN.32", "CN.32"),
            ("CN.32.I65", "CN.32"),
            ("CN.32.M73", "CN.32")
        ]
    );
    assert!(latest["headline"]["general_fp32_gflops"].as_u64().is_some());
    assert!(latest["previous"].is_object(), "{latest:#}");
    println!(
        "hierarchy: market figures of period {at} add up at every level: {}",
        latest["scale"]["resources"]
    );

    // The hourly platform stream of the last whole hour, which each node
    // reported again under its prefix once it had one: at the national
    // node, every node's accounts (an admin each) summed.
    let mut platform = Value::Null;
    wait_until(
        WAIT,
        "every node's platform hour at the national node",
        || {
            platform = get(national, "/api/v1/reports?stream=platform").1;
            platform["origins"].as_array().map(Vec::len) == Some(4)
        },
    );
    let accounts = platform["figures"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "accounts" && f["label"] == "admin")
        .and_then(|f| f["value"].as_u64());
    assert_eq!(accounts, Some(4), "{platform:#}");
    assert_eq!(platform["period_ms"], 3_600_000);
}

on_each_backend!(
    a_tree_of_four_nodes_files_and_resolves_identifiers("hierarchy_tree"),
    filings_survive_cut_links_and_killed_parents("hierarchy_conservation"),
);

fn a_tree_of_four_nodes_files_and_resolves_identifiers(backend: Backend) {
    let test = "hierarchy_tree";
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let national = start(dir, "national", &backend, test, "national");
    let regional = start(dir, "regional", &backend, test, "regional");
    let industry = start(dir, "industry", &backend, test, "industry");
    let other = start(dir, "other", &backend, test, "industry");

    // The provider of both industry nodes' hosts is in Jiangsu (32), the
    // regional node's province: a market report naming another province is
    // refused (see `a_child_filing_what_it_may_not_is_refused_and_harms_nothing_else`).
    for node in [&industry, &other] {
        node.create_provider("320102");
    }

    // A GPU host at the industry node, before it has a parent: its
    // identifiers are minted under CN.LOCAL.
    let mut gpu_agent = gpu_agent(dir, &industry, "200ms", "m-gpu");
    wait_until(WAIT, "the GPU host's accelerators", || {
        !own_identifiers(&industry, "A").is_empty()
    });
    let local_host = own_identifiers(&industry, "C").remove(0);
    assert!(local_host.starts_with("CN.LOCAL_"), "{local_host}");

    assert_eq!(join(&national, &regional, "regional", "32"), "CN.32");
    assert_eq!(join(&regional, &industry, "industry", "I65"), "CN.32.I65");
    let approved = Instant::now();
    assert_eq!(join(&regional, &other, "industry", "M73"), "CN.32.M73");

    // Reissued under the assigned prefix; the old identifier still resolves,
    // marked superseded by the new one.
    wait_until(WAIT, "identifiers reissued under CN.32.I65", || {
        own_identifiers(&industry, "A")
            .iter()
            .all(|id| id.starts_with("CN.32.I65_"))
    });
    let host = own_identifiers(&industry, "C").remove(0);
    assert!(host.starts_with("CN.32.I65_"), "{host}");
    let old = resolves(&industry, &local_host).expect("the old identifier resolves");
    assert_eq!(old["state"], "superseded", "{old:#}");
    assert_eq!(old["superseded_by"], host.as_str(), "{old:#}");

    // Filed up the tree: the GPU resolves at the regional and the national node.
    let gpu = own_identifiers(&industry, "A").remove(0);
    wait_until(
        WAIT,
        "the GPU's identifier to resolve at the national node",
        || resolves(&national, &gpu).is_some(),
    );
    println!(
        "hierarchy: approval at the regional node → resolvable at the national node: {} ms",
        approved.elapsed().as_millis()
    );
    let at_regional = resolves(&regional, &gpu).unwrap();
    assert_eq!(at_regional["holding_node"], "CN.32.I65", "{at_regional:#}");
    assert_eq!(at_regional["current"], true);
    assert_eq!(at_regional["type"], "A");
    assert!(at_regional["model"].is_string(), "{at_regional:#}");
    let at_national = resolves(&national, &gpu).unwrap();
    assert_eq!(at_national["holding_node"], "CN.32", "{at_national:#}");
    assert_eq!(at_national["owner"]["uscc"], "91350100M000100Y43");
    // Its live state, asked down two links to the node holding it.
    let live = resolves(&national, &format!("{gpu}?live=1")).unwrap();
    assert_eq!(live["live_state"], "fresh", "{live:#}");
    assert_eq!(live["live"]["answered_by"], "CN.32.I65", "{live:#}");
    assert_eq!(live["live"]["host_state"], "online", "{live:#}");
    // The provider approved at the industry node appears at the national
    // node with its owner code, under the node that registered it.
    let providers = nodes(&national)["providers"].clone();
    assert!(
        providers
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["node"] == "CN.32.I65"
                && p["owner_code"] == "P00001"
                && p["uscc"] == "91350100M000100Y43"
                && p["identifiers"].as_i64() >= Some(2)),
        "{providers:#}"
    );
    let (_, found) = get(&national, "/api/v1/identifiers?type=A&node=CN.32");
    assert!(
        found["identifiers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["identifier"] == gpu.as_str()),
        "{found:#}"
    );

    // Minted after the join at the other industry node: how long until the
    // national node resolves it.
    let minted = Instant::now();
    let mut host_agent = Agent::join_as(
        &dir.join("other-agent"),
        &other.join_string(None),
        "200ms",
        "m-other",
        "other-host",
    );
    host_agent.run();
    wait_until(WAIT, "the other node's host identifier", || {
        !own_identifiers(&other, "C").is_empty()
    });
    let other_host = own_identifiers(&other, "C").remove(0);
    assert!(other_host.starts_with("CN.32.M73_"), "{other_host}");
    wait_until(
        WAIT,
        "the new identifier to resolve at the national node",
        || resolves(&national, &other_host).is_some(),
    );
    println!(
        "hierarchy: minted at an industry node → resolvable at the national node: {} ms",
        minted.elapsed().as_millis()
    );

    // Market monitoring: every node reports its own figures each period and
    // relays its children's; a period's figures add up exactly at every level.
    market_figures_add_up(&national, &regional, &[&industry, &other]);

    // A sibling's identifier is outside the other node's subtree: a
    // referral to whoever holds the prefix, via the parent.
    let (status, referral) = get(&other, &format!("/api/v1/resources/{gpu}"));
    assert_eq!(status, 404, "{referral:#}");
    assert_eq!(referral["referral"]["prefix"], "CN.32.I65", "{referral:#}");
    assert_eq!(referral["referral"]["parent"], regional.quic.to_string());
    let (status, problem) = get(&national, "/api/v1/resources/not-an-identifier");
    assert_eq!(status, 404);
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("not a valid identifier"),
        "{problem:#}"
    );

    // The regional node's view of its children, and the one organisation
    // registered under both industry nodes.
    let view = nodes(&regional);
    let children = view["children"].as_array().unwrap();
    assert_eq!(children.len(), 2, "{view:#}");
    for child in children {
        assert_eq!(child["state"], "approved", "{view:#}");
        assert_eq!(child["link"], "connected", "{view:#}");
        assert!(child["identifiers"].as_i64().unwrap() >= 1, "{view:#}");
    }
    assert_eq!(view["parent"]["prefix"], "CN.32");
    wait_until(WAIT, "the regional node to see its own link up", || {
        nodes(&regional)["parent"]["link"] == "connected"
    });
    assert!(
        view["duplicate_uscc"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["uscc"] == "91350100M000100Y43"
                && d["nodes"] == serde_json::json!(["CN.32.I65", "CN.32.M73"])),
        "{view:#}"
    );
    assert!(view["identifiers"]["subtree"].as_i64() > view["identifiers"]["own"].as_i64());

    // Revoking the other industry node: its link closes, and its
    // identifiers are no longer current here and, once filed, above.
    let revoked = Instant::now();
    regional.admin_ok(&["node", "revoke", "CN.32.M73", "--reason", "测试撤销"]);
    wait_until(WAIT, "the revoked node to hear it", || {
        nodes(&other)["parent"]["state"] == "revoked"
    });
    println!(
        "hierarchy: revocation → the child's link closed: {} ms",
        revoked.elapsed().as_millis()
    );
    assert_eq!(resolves(&regional, &other_host).unwrap()["current"], false);
    let live = resolves(&regional, &format!("{other_host}?live=1")).unwrap();
    assert_eq!(live["live_state"], "unreachable", "{live:#}");
    wait_until(WAIT, "the national node to hear of the revocation", || {
        resolves(&national, &other_host).is_some_and(|r| r["current"] == false)
    });
    // Its prefix is never given to another node: what it minted keeps
    // naming what it named.
    let again = request(&other, &token(&regional, "industry", "M73", &[])).unwrap();
    let out = regional.admin(&["node", "approve", &again.to_string()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("never reassigned"), "{err}");
    // The revoked node still works on its own.
    let (status, _) = get(&other, "/api/v1/summary");
    assert_eq!(status, 200);
    assert!(gpu_agent.stop().success());
    assert!(host_agent.stop().success());
}

fn conservation(backend: Backend, seed: u64) {
    let test = "hierarchy_conservation";
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let mut parent = start(dir, "regional", &backend, test, "regional");
    let child = start(dir, "industry", &backend, test, "industry");
    let relay = Relay::start(parent.quic, seed);
    let join_string = token(
        &parent,
        "industry",
        "I65",
        &["--address", &relay.addr.to_string()],
    );
    // One host before the join: its identifier is reissued, the old one never filed.
    let host_join = child.join_string_for(None, 10);
    let mut agents = vec![Agent::join_as(
        &dir.join("agent-0"),
        &host_join,
        "200ms",
        "m-0",
        "host-0",
    )];
    agents[0].run();
    wait_until(WAIT, "the first host", || {
        own_identifiers(&child, "C").len() == 1
    });
    let id = request(&child, &join_string).unwrap();
    parent.admin_ok(&["node", "approve", &id.to_string()]);
    wait_until(WAIT, "the approval", || {
        nodes(&child)["prefix"] == "CN.LOCAL.I65"
    });
    let add_host = |agents: &mut Vec<Agent>| {
        let n = agents.len();
        let mut agent = Agent::join_as(
            &dir.join(format!("agent-{n}")),
            &host_join,
            "200ms",
            &format!("m-{n}"),
            &format!("host-{n}"),
        );
        agent.run();
        agents.push(agent);
        wait_until(WAIT, "the new host's identifier", || {
            own_identifiers(&child, "C").len() == n + 1
        });
    };

    // The parent dies without warning, twice, while hosts keep joining.
    for _ in 0..2 {
        add_host(&mut agents);
        parent.restart();
        add_host(&mut agents);
    }

    // While its parent is down, the child keeps serving its own users.
    parent.kill();
    add_host(&mut agents);
    let (status, _) = get(&child, "/api/v1/summary");
    assert_eq!(status, 200);
    let selection = Request::new("POST", "/api/v1/selection")
        .bearer(&child.admin_token())
        .json(r#"{"cpu_cores": 1}"#)
        .send(child.http);
    assert_eq!(selection.status, 200, "{}", selection.body);
    let dashboard = Request::new("GET", "/ui/").send(child.http);
    assert_eq!(dashboard.status, 200);
    parent.restart();

    // The link goes dark; a host is revoked at the child (a change of
    // state, a new revision) and another joins; then the link comes back
    // lossy and the parent is killed once more.
    relay.set(Impairment {
        blackhole: true,
        ..Default::default()
    });
    child.admin_ok(&["host", "revoke", "host-1"]);
    add_host(&mut agents);
    // A period the child reported under its prefix while its link was dark
    // (the one it joined in was reported under CN.LOCAL, and stays here).
    let mut dark = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    wait_until(WAIT, "the child's own report of a dark period", || {
        let own = report(&child, Some(dark));
        match own["origins"].as_array().unwrap().first() {
            Some(o) if o["origin"] == "CN.LOCAL.I65" => true,
            Some(_) => {
                dark += 10_000;
                false
            }
            None => false,
        }
    });
    relay.set(Impairment {
        drop_per_mille: 50,
        duplicate_per_mille: 50,
        max_delay: Duration::from_millis(15),
        ..Default::default()
    });
    parent.restart();
    relay.set(Impairment::default());

    // Every filing is stored at the parent once, at its latest revision.
    let prefix = "CN.LOCAL.I65";
    let mut at_child = BTreeSet::new();
    wait_until(WAIT, "the parent's library to match the child's", || {
        at_child = library(&child, prefix);
        at_child == library(&parent, prefix)
    });
    assert_eq!(at_child.len(), agents.len(), "{at_child:?}");
    assert!(
        at_child
            .iter()
            .any(|(_, revision, state)| *revision == 2 && state == "revoked"),
        "the revoked host's second revision: {at_child:?}"
    );
    assert!(
        at_child
            .iter()
            .all(|(id, ..)| id.starts_with("CN.LOCAL.I65_")),
        "{at_child:?}"
    );
    let link = nodes(&parent)["children"][0].clone();
    assert_eq!(link["identifiers"].as_u64(), Some(at_child.len() as u64));
    // The market report of the dark period was back-filled, once: the
    // parent's figures for it (it has no hosts) are the child's.
    let mut at_parent = Value::Null;
    wait_until(WAIT, "the dark period's report at the parent", || {
        at_parent = report(&parent, Some(dark));
        at_parent["origins"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["origin"] == "CN.LOCAL.I65")
    });
    assert_eq!(
        summed(&[&at_parent]),
        summed(&[&report(&child, Some(dark))]),
        "{at_parent:#}"
    );
    for mut agent in agents {
        agent.kill();
    }
}

fn filings_survive_cut_links_and_killed_parents(backend: Backend) {
    // The relay's losses differ per backend.
    let seed = if matches!(backend, Backend::Sqlite) {
        7
    } else {
        8
    };
    conservation(backend, seed);
}

#[test]
fn bad_joins_are_refused_with_their_reason() {
    let test = "hierarchy_bad_joins";
    let backend = Backend::Sqlite;
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let national = start(dir, "national", &backend, test, "national");
    let regional = start(dir, "regional", &backend, test, "regional");
    let industry = start(dir, "industry", &backend, test, "industry");

    // A token for another role.
    let err = request(&industry, &token(&national, "regional", "32", &[])).unwrap_err();
    assert!(err.contains("is for a regional node"), "{err}");
    // Expired.
    let expired = token(&national, "regional", "32", &["--ttl", "1ms"]);
    let err = request(&regional, &expired).unwrap_err();
    assert!(err.contains("expired"), "{err}");
    // An agent's enrollment token does not join a node.
    let err = request(&industry, &national.join_string(None)).unwrap_err();
    assert!(err.contains("unknown node join token"), "{err}");
    // A join string whose address is not the parent it names: the CA
    // fingerprint of another node.
    let foreign =
        token(&national, "industry", "I65", &[]).replacen(&ca_of(&national), &ca_of(&regional), 1);
    let err = request(&industry, &foreign).unwrap_err();
    assert!(
        err.contains("is not the one the join string names"),
        "{err}"
    );
    // A node never joins its own descendant: an industry node takes no
    // children, and a regional node none of its own rank (itself included).
    let out = industry.admin(&[
        "node",
        "token",
        "create",
        "--role",
        "industry",
        "--industry",
        "I65",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("an industry node takes no child nodes"),
        "{err}"
    );
    let own = token(&regional, "industry", "I65", &[]);
    let err = request(&regional, &own).unwrap_err();
    assert!(
        err.contains("takes no regional nodes") || err.contains("cannot join itself"),
        "{err}"
    );
    // Used twice: the second request is refused.
    let once = token(&national, "regional", "32", &[]);
    request(&regional, &once).unwrap();
    let err = request(&industry, &once).unwrap_err();
    assert!(err.contains("already used"), "{err}");
    // A second parent while one request is pending, refused before the
    // parent hears of it.
    let err = request(&regional, &token(&national, "regional", "33", &[])).unwrap_err();
    assert!(err.contains("one parent per node"), "{err}");
    // Rejection with a reason reaches the child.
    let pending = nodes(&national)["children"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["state"] == "pending")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let out = national.admin(&["node", "reject", &pending.to_string(), "--reason", ""]);
    assert!(!out.status.success(), "an empty reason is refused");
    national.admin_ok(&[
        "node",
        "reject",
        &pending.to_string(),
        "--reason",
        "材料不全",
    ]);
    wait_until(WAIT, "the child to hear the rejection", || {
        let parent = &nodes(&regional)["parent"];
        parent["state"] == "rejected" && parent["reason"] == "材料不全"
    });
    // Approving what is already decided is a conflict.
    let out = national.admin(&["node", "approve", &pending.to_string()]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("already rejected"));
}

/// The CA fingerprint a node's join strings carry.
fn ca_of(node: &Aggregator) -> String {
    let join = node.join_string(None);
    join.split("ca=").nth(1).unwrap()[..64].to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_filing_what_it_may_not_is_refused_and_harms_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let parent = Aggregator::start(
        &dir.path().join("regional"),
        Backend::Sqlite,
        &["--role", "regional"],
    );
    let child = ScriptedChild::join(&parent, "I65").await;
    assert_eq!(child.prefix, "CN.LOCAL.I65");
    let ack = |seq: u64| ParentMessage::Ack { through_seq: seq };

    // One record: a filing inside the child's prefix and one outside it.
    // The outside one is refused (and logged); the rest is stored.
    let mut link = child.link().await.unwrap();
    let inside = ScriptedChild::filing(&child.prefix, 1, 2);
    let outside = ScriptedChild::filing("CN.LOCAL.M73", 1, 1);
    link.send(ScriptedChild::batch(
        0,
        vec![inside.clone(), outside.clone()],
    ))
    .await
    .unwrap();
    assert_eq!(link.next::<ParentMessage>().await.unwrap(), ack(0));
    let stored = resolves(&parent, &inside.identifier).expect("stored");
    assert_eq!(stored["revision"], 2);
    let (status, body) = get(
        &parent,
        &format!("/api/v1/resources/{}", outside.identifier),
    );
    assert_eq!(status, 404, "{body:#}");

    // A revision going backwards is ignored, acknowledged all the same.
    let mut older = inside.clone();
    older.revision = 1;
    older.state = "revoked".into();
    link.send(ScriptedChild::batch(1, vec![older]))
        .await
        .unwrap();
    assert_eq!(link.next::<ParentMessage>().await.unwrap(), ack(1));
    let kept = resolves(&parent, &inside.identifier).unwrap();
    assert_eq!(
        (kept["revision"].as_u64(), kept["state"].as_str()),
        (Some(2), Some("active"))
    );

    // Market reports: a good one is kept; each bad one is refused with its
    // reason, shown to staff, and the rest of the record and the link stand.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let period = now - now % 10_000 - 60_000;
    let report = |origin: &str, start: u64, registered: u64| MarketReport {
        origin: origin.into(),
        stream: "resource".into(),
        period_start_ms: start,
        period_ms: 10_000,
        groups: vec![CapacityGroup {
            region: "320102".into(),
            resource_type: "C".into(),
            model: "X86".into(),
            registered,
            online: registered,
            available: registered,
            healthy: registered,
            ..Default::default()
        }],
        rating_table: "2026.12-1".into(),
        figures: Vec::new(),
        periods: 0,
    };
    // An hour's rollup: kept, and one summing more periods than an hour has
    // refused.
    let hour = now - (now + 8 * 3_600_000) % 3_600_000;
    let rollup = |start: u64| MarketReport {
        period_ms: 3_600_000,
        periods: 360,
        ..report(&child.prefix, start, 360)
    };
    let mut above = report(&child.prefix, period + 10_000, 1);
    above.groups[0].available = 2;
    let mut wrapped = report(&child.prefix, period + 20_000, 1);
    wrapped.groups[0].stale = 0u64.wrapping_sub(1);
    link.send(ScriptedChild::reports(
        2,
        vec![
            report(&child.prefix, period, 1),
            report(&child.prefix, period, 5),
            report("CN.LOCAL.M73", period, 1),
            report(&child.prefix, period + 3_600_000, 1),
            above,
            wrapped,
            rollup(hour - 3_600_000),
            MarketReport {
                periods: 361,
                ..rollup(hour - 7_200_000)
            },
        ],
    ))
    .await
    .unwrap();
    assert_eq!(link.next::<ParentMessage>().await.unwrap(), ack(2));
    let (status, figures) = get(&parent, &format!("/api/v1/reports?at={period}"));
    assert_eq!(status, 200, "{figures:#}");
    let kept: Vec<(&str, u64)> = figures["origins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["origin"].as_str().unwrap(),
                o["resources"]["C"].as_u64().unwrap_or(0),
            )
        })
        .filter(|(origin, _)| *origin == child.prefix)
        .collect();
    assert_eq!(
        kept,
        [(child.prefix.as_str(), 1)],
        "the first is kept: {figures:#}"
    );
    let reasons: Vec<&str> = figures["refusals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["reason"].as_str().unwrap())
        .collect();
    for expected in [
        "already held",
        "outside the child's prefix",
        "in the future",
        "K2 available 2 is above",
        "negative",
        "a rollup of 361 periods",
    ] {
        assert!(
            reasons.iter().any(|r| r.contains(expected)),
            "{expected:?} not in {reasons:#?}"
        );
    }

    let (status, hourly) = get(
        &parent,
        &format!("/api/v1/reports?period=1h&at={}", hour - 3_600_000),
    );
    assert_eq!(status, 200, "{hourly:#}");
    let part = hourly["origins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["origin"] == child.prefix.as_str())
        .expect("the hour's rollup is kept");
    assert_eq!(part["periods"], 360);
    assert_eq!(part["resources"]["C"], 1, "its mean: 360 over 360 periods");

    // A record out of order closes the link with the reason.
    link.send(ScriptedChild::batch(1, vec![inside.clone()]))
        .await
        .unwrap();
    let err = link.next::<ParentMessage>().await.unwrap_err();
    assert!(err.contains("must be sent in sequence order"), "{err}");

    // An oversize record: refused with the limit, nothing of it stored.
    let mut link = child.link().await.unwrap();
    let many = (0..1001)
        .map(|i| ScriptedChild::filing(&child.prefix, 100 + i, 1))
        .collect();
    link.send(ScriptedChild::batch(3, many)).await.unwrap();
    let err = link.next::<ParentMessage>().await.unwrap_err();
    assert!(err.contains("exceeds the 1000"), "{err}");
    let mut link = child.link().await.unwrap();
    let many = vec![MarketReport::default(); 65];
    link.send(ScriptedChild::reports(3, many)).await.unwrap();
    let err = link.next::<ParentMessage>().await.unwrap_err();
    assert!(err.contains("and 64 allowed"), "{err}");
    assert!(
        resolves(
            &parent,
            &ScriptedChild::filing(&child.prefix, 100, 1).identifier
        )
        .is_none()
    );

    // A node certificate on the agents' ALPN.
    let err = child.as_agent().await.unwrap_err();
    assert!(err.contains("cannot open an agent stream"), "{err}");

    // An agent's certificate on the node ALPN.
    let agent = Agent::join(&dir.path().join("agent"), &parent.join_string(None), "1s");
    let read = |name: &str| agent.state_dir.join(name);
    let client = transport::node_client_config(
        ServerTrust::Ca(CertificateDer::from_pem_file(read("ca.pem")).unwrap()),
        Some((
            CertificateDer::from_pem_file(read("agent.pem")).unwrap(),
            PrivateKeyDer::from_pem_file(read("agent.key")).unwrap(),
        )),
    )
    .unwrap();
    let mut stream = Stream::open(parent.quic, client).await.unwrap();
    stream
        .send(ChildMessage::Hello(suanli_protocol::stream::Hello {
            min_version: 1,
            max_version: 1,
            agent_version: "test".into(),
            first_pending_seq: None,
            next_seq: 0,
            dropped_samples: 0,
        }))
        .await
        .unwrap();
    let err = stream.next::<ParentMessage>().await.unwrap_err();
    assert!(
        err.contains("an agent's certificate cannot open a node link"),
        "{err}"
    );

    // The parent kept serving through all of it.
    let (status, _) = get(&parent, "/api/v1/summary");
    assert_eq!(status, 200);
}

/// Signs in as the node's admin in a fresh headless Chromium.
fn signed_in(chromium: &Path, node: &Aggregator) -> browser::Browser {
    let mut page = browser::Browser::open(chromium, &format!("http://{}/", node.http));
    page.wait_for(
        WAIT,
        "the sign-in form",
        "!!document.getElementById('login-form')",
    );
    page.sign_in_changing_password("admin", &node.admin_password(), "a new long password");
    page.wait_for(
        WAIT,
        "the overview",
        "!!document.getElementById('overview-subtree-ids')",
    );
    page
}

#[test]
#[ignore = "needs Chromium: run .ci/test"]
fn staff_approve_a_child_on_the_dashboard_and_the_child_shows_its_parent() {
    let chromium = browser::chromium();
    let test = "hierarchy_dashboard";
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let national = start(dir, "national", &Backend::Sqlite, test, "national");
    let regional = start(dir, "regional", &Backend::Sqlite, test, "regional");
    let id = request(&regional, &token(&national, "regional", "32", &[])).unwrap();

    let mut page = signed_in(&chromium, &national);
    page.eval("location.hash = '#/nodes'; true");
    // The page redraws itself every 2 s: find and click at once, so the
    // click never lands between a redraw's clearing and its drawing.
    page.wait_for(
        WAIT,
        "the pending request approved by a click",
        &format!(
            "(() => {{ const b = document.getElementById('approve-{id}'); if (!b) return false; b.click(); return true; }})()"
        ),
    );
    // The page keeps itself current: the link comes up within seconds.
    page.wait_for(
        WAIT,
        "the child linked",
        &format!(
            "document.querySelector('tr[data-child=\"{id}\"]')?.textContent.includes('已连接') === true"
        ),
    );
    assert!(
        page.eval(&format!(
            "document.querySelector('tr[data-child=\"{id}\"]').textContent"
        ))
        .as_str()
        .unwrap()
        .contains("CN.32")
    );

    let mut child_page = signed_in(&chromium, &regional);
    child_page.eval("location.hash = '#/nodes'; true");
    child_page.wait_for(
        WAIT,
        "the parent panel",
        "document.getElementById('parent-state')?.textContent === '已批准'
            && document.getElementById('parent-link')?.textContent === '已连接'",
    );
    assert!(
        child_page
            .eval("document.getElementById('parent-panel').textContent")
            .as_str()
            .unwrap()
            .contains("CN.32")
    );

    // A host in Jiangsu at the regional node: the national overview leads
    // with the subtree's capacity, on the map by province and by node.
    regional.create_provider("320102");
    let mut agent = gpu_agent(dir, &regional, "1s", "m-js");
    page.eval("location.hash = '#/overview'; true");
    page.wait_for(
        WAIT,
        "Jiangsu's tile on the national node's map",
        "document.querySelector('#province-map .tile.has[data-province=\"32\"]')?.textContent.startsWith('苏') === true \
         && !!document.querySelector('tr[data-origin=\"CN.32\"]')",
    );
    assert_eq!(
        page.eval("document.querySelectorAll('#province-map .tile').length"),
        34,
        "every provincial-level division, 台湾 and 港澳 included"
    );
    let png = page.screenshot();
    let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("national-overview.png");
    std::fs::write(&out, &png).unwrap();
    eprintln!("screenshot: {} ({} bytes)", out.display(), png.len());

    // The regional node's own accelerators on its heatmap, a cell each.
    child_page.eval("location.hash = '#/overview'; true");
    child_page.wait_for(
        WAIT,
        "the heatmap of the host's accelerators",
        "Number(document.getElementById('heatmap')?.dataset.cells) >= 1",
    );
    let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("regional-overview.png");
    std::fs::write(&out, child_page.screenshot()).unwrap();

    // Selection at the national node finds the regional node's free H100,
    // and says which node answered.
    page.eval("location.hash = '#/selection'; true");
    page.wait_for(
        WAIT,
        "the selection form",
        "!!document.getElementById('selection-form')",
    );
    page.eval(
        "document.querySelector('#selection-form [name=model]').value = 'H100'; \
         document.getElementById('selection-submit').click(); true",
    );
    page.wait_for(
        WAIT,
        "a candidate held by CN.32, and CN.32 answered",
        "[...document.querySelectorAll('#selection-answer tr.candidate')].some((r) => r.textContent.includes('CN.32')) \
         && [...document.querySelectorAll('#selection-answer tr.node-outcome')].some((r) => r.textContent.includes('已应答'))",
    );
    // Held from the national node with a click, then released.
    page.eval("document.querySelector('#selection-answer button.hold').click(); true");
    page.wait_for(
        WAIT,
        "the hold made at the regional node",
        "document.getElementById('hold-notice')?.textContent.includes('CN.32:1') === true",
    );
    let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("national-selection.png");
    std::fs::write(&out, page.screenshot()).unwrap();
    // The regional node's staff see the hold on the host's page.
    child_page.eval("location.hash = '#/hosts/1'; true");
    child_page.wait_for(
        WAIT,
        "the hold on the host page",
        "document.querySelector('tr.hold-row')?.textContent.includes('CN.32:1') === true",
    );
    page.eval("document.getElementById('hold-release').click(); true");
    page.wait_for(
        WAIT,
        "the hold released",
        "document.getElementById('hold-result')?.textContent.includes('已释放') === true",
    );
    agent.kill();
}

/// `POST /api/v1/selection` at `node` as staff.
fn select(node: &Aggregator, demand: Value) -> (u16, Value) {
    let (status, body) = suanli_tests::http(
        node.http,
        "POST",
        "/api/v1/selection",
        Some(&node.admin_token()),
        Some(&demand.to_string()),
    );
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

/// What became of `prefix` in a federated answer.
fn outcome(answer: &Value, prefix: &str) -> Value {
    answer["nodes"]
        .as_array()
        .and_then(|nodes| nodes.iter().find(|n| n["node"] == prefix))
        .map_or(Value::Null, |n| n["outcome"].clone())
}

/// The nodes holding an answer's candidates, in rank order.
fn holders(answer: &Value) -> Vec<String> {
    answer["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["hosts"][0]["node"].as_str().unwrap().to_owned())
        .collect()
}

fn metric(node: &Aggregator, name: &str) -> f64 {
    let (_, text) = node.get("/metrics");
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

/// Selection across nodes on a real tree: a national node with a CPU host,
/// a regional node, and an industry node with a GPU host (two H100s on the
/// stand-in NVML, one busy, one free).
#[test]
fn a_demand_at_the_national_node_is_answered_over_its_subtree() {
    let test = "hierarchy_selection";
    let backend = Backend::Sqlite;
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let national = start(dir, "national", &backend, test, "national");
    let mut regional = start(dir, "regional", &backend, test, "regional");
    let industry = start(dir, "industry", &backend, test, "industry");
    industry.create_provider("320102");
    let mut local_agent = Agent::join_as(
        &dir.join("local-agent"),
        &national.join_string(None),
        "200ms",
        "m-local",
        "cpu-host",
    );
    local_agent.run();
    let gpu_agent = gpu_agent(dir, &industry, "200ms", "m-gpu");
    assert_eq!(join(&national, &regional, "regional", "32"), "CN.32");
    assert_eq!(join(&regional, &industry, "industry", "I65"), "CN.32.I65");

    // The free H100 two levels down, with the path from the user to it.
    let h100 = json!({"accelerator": {"model": "h100"}, "user_region": "110000"});
    let mut answer = Value::Null;
    wait_until(
        WAIT,
        "the national node to find the H100 two levels down",
        || {
            answer = select(&national, h100.clone()).1;
            holders(&answer) == ["CN.32.I65"]
        },
    );
    let host = &answer["candidates"][0]["hosts"][0];
    assert_eq!(host["region"], "320102", "{answer:#}");
    assert!(
        host["path"]["latency_ms"].as_f64().unwrap() > 0.0,
        "{answer:#}"
    );
    assert_eq!(host["path"]["segments"][0]["from_region"], "110000");
    assert!(host["parts"]["latency"].is_number(), "{answer:#}");
    let resources = host["resources"].as_array().unwrap();
    assert_eq!(resources.len(), 1);
    assert!(resources[0].as_str().unwrap().starts_with("CN.32.I65_"));
    assert_eq!(outcome(&answer, "CN.32"), "answered", "{answer:#}");
    assert_eq!(outcome(&answer, "CN.32.I65"), "answered", "{answer:#}");
    assert_eq!(answer["partial"], false);

    // The subtree's resource reports, which say which children may match,
    // count the GPU host once its node has reported a period with it.
    wait_until(WAIT, "the GPU host in the national node's figures", || {
        report(&national, None)["groups"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["resource_type"] == "A" && g["registered"] == 2)
    });

    // Local and remote hosts ranked together by the one score: each the
    // weighted mean of its parts, in order.
    let general =
        json!({"resource_type": "C", "availability": "installed", "user_region": "320102"});
    wait_until(WAIT, "both hosts in one answer", || {
        answer = select(&national, general.clone()).1;
        let mut nodes = holders(&answer);
        nodes.sort();
        nodes == ["CN", "CN.32.I65"]
    });
    let scores: Vec<f64> = answer["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let parts = &c["hosts"][0]["parts"];
            let weighted = [
                (0.4, "availability"),
                (0.3, "latency"),
                (0.3, "load"),
                (0.2, "price"),
            ]
            .iter()
            .filter_map(|(w, p)| parts[*p].as_f64().map(|v| (w * v, *w)))
            .fold((0.0, 0.0), |(s, t), (v, w)| (s + v, t + w));
            let score = c["score"].as_f64().unwrap();
            assert!((score - weighted.0 / weighted.1).abs() < 1e-9, "{c:#}");
            score
        })
        .collect();
    assert!(scores[0] >= scores[1], "{answer:#}");

    // Scope: one node's subtree, this node only, a node left out; outside
    // the subtree and past the deadline's maximum are refused.
    let scoped = |extra: Value| {
        let mut demand = general.clone();
        demand
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        select(&national, demand)
    };
    let (_, deep) = scoped(json!({"scope": "CN.32.I65"}));
    assert_eq!(holders(&deep), ["CN.32.I65"], "{deep:#}");
    let (_, local) = scoped(json!({"scope": "local"}));
    assert_eq!(holders(&local), ["CN"], "{local:#}");
    assert_eq!(local["nodes"], json!([]));
    let (_, without) = scoped(json!({"exclude_nodes": ["CN.32"]}));
    assert_eq!(holders(&without), ["CN"], "{without:#}");
    assert_eq!(outcome(&without, "CN.32"), "excluded");
    let (_, without) = scoped(json!({"exclude_nodes": ["CN.32.I65"]}));
    assert_eq!(holders(&without), ["CN"], "{without:#}");
    assert_eq!(outcome(&without, "CN.32"), "answered", "{without:#}");
    assert_eq!(outcome(&without, "CN.32.I65"), "excluded", "{without:#}");
    for bad in [
        json!({"scope": "CN.44"}),
        json!({"deadline_ms": 60_000}),
        json!({"exclude_nodes": ["CN"]}),
    ] {
        let (status, body) = scoped(bad.clone());
        assert_eq!(status, 422, "{bad}: {body:#}");
    }

    // Two free H100s on one host: the regional node's reports (its own and
    // the industry node's, relayed) say it has fewer, so it is not asked.
    let two = json!({"accelerator": {"model": "h100", "count": 2}});
    wait_until(WAIT, "the regional node skipped on its reports", || {
        answer = select(&national, two.clone()).1;
        outcome(&answer, "CN.32") == "skipped"
    });
    assert!(
        answer["nodes"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("matching accelerators free, 2 wanted"),
        "{answer:#}"
    );
    assert!(metric(&national, "suanli_selection_children_skipped_total") >= 1.0);

    // The free H100 held from the national node: the industry node alone
    // decides, and offers it to no one else until the hold ends.
    let (_, found) = select(&national, h100.clone());
    let gpu = found["candidates"][0]["hosts"][0]["resources"].clone();
    let hold = |request_id: &str, seconds: u64| {
        let body = json!({"node": "CN.32.I65", "resources": gpu, "request_id": request_id, "seconds": seconds});
        let (status, body) = suanli_tests::http(
            national.http,
            "POST",
            "/api/v1/reservations",
            Some(&national.admin_token()),
            Some(&body.to_string()),
        );
        (
            status,
            serde_json::from_str::<Value>(&body).unwrap_or(Value::Null),
        )
    };
    let (status, held) = hold("first", 3600);
    assert_eq!(status, 201, "{held:#}");
    assert_eq!(held["id"], "CN.32.I65:1", "{held:#}");
    assert_eq!(
        (held["state"].as_str(), held["replayed"].as_bool()),
        (Some("held"), Some(false))
    );
    assert!(
        held["holder"].as_str().unwrap().starts_with("CN/"),
        "{held:#}"
    );
    let (status, again) = hold("first", 3600);
    assert_eq!(
        (status, &again["id"], &again["replayed"]),
        (201, &held["id"], &json!(true)),
        "a replay is the same hold"
    );
    let (status, taken) = hold("second", 3600);
    assert_eq!(status, 409, "{taken:#}");
    assert!(taken.to_string().contains("held until"), "{taken:#}");
    // Bad requests, each refused with its reason, here or by the holder.
    let ask = |body: Value| {
        suanli_tests::http(
            national.http,
            "POST",
            "/api/v1/reservations",
            Some(&national.admin_token()),
            Some(&body.to_string()),
        )
    };
    // Well-formed identifiers of what no node below holds.
    let elsewhere = |prefix: &str, serial: &str| {
        let known = Identifier::parse(gpu[0].as_str().unwrap()).unwrap();
        Identifier::new(
            NodePrefix::parse(prefix).unwrap(),
            known.owner().clone(),
            known.industry().clone(),
            known.location().clone(),
            known.resource_type(),
            known.spec().clone(),
            Serial::parse(serial).unwrap(),
        )
        .to_string()
    };
    let (unknown, outside) = (
        elsewhere("CN.32.I65", "000999"),
        elsewhere("CN.44", "000001"),
    );
    for (body, status, words) in [
        (
            json!({"node": "CN.44", "resources": [outside], "request_id": "x"}),
            404,
            "no node below this one leads to CN.44",
        ),
        (
            json!({"node": "CN.32.I65", "resources": gpu, "request_id": "x", "seconds": 86_400}),
            422,
            "seconds",
        ),
        (
            json!({"node": "CN.32.I65", "resources": gpu, "request_id": ""}),
            422,
            "request_id",
        ),
        (
            json!({"node": "CN.32.I65", "resources": [unknown], "request_id": "x"}),
            404,
            "not a resource of node CN.32.I65",
        ),
    ] {
        let (got, answer) = ask(body.clone());
        assert_eq!(got, status, "{body}: {answer}");
        assert!(answer.contains(words), "{body}: {answer}");
    }
    let (_, here) = select(&industry, json!({"accelerator": {"model": "h100"}}));
    assert!(
        here["candidates"].as_array().unwrap().is_empty(),
        "{here:#}"
    );
    assert!(
        here["nearest_misses"]
            .to_string()
            .contains("GPU 1 held until"),
        "{here:#}"
    );
    let (status, mine) = industry.get("/api/v1/reservations");
    assert_eq!(status, 200);
    assert!(
        mine.contains("CN.32.I65:1"),
        "the holding node's staff see it: {mine}"
    );
    // A viewer changes nothing: another's hold is as if it did not exist.
    let admin = national.sign_in("admin", &national.admin_password());
    let account = json!({"login": "watch", "role": "viewer", "password": "a long enough password"});
    assert_eq!(admin.send("POST", "/api/v1/accounts", &account).status, 201);
    let viewer = national.sign_in("watch", "a long enough password");
    let refused = viewer
        .request("DELETE", "/api/v1/reservations/CN.32.I65:1")
        .send(national.http);
    assert_eq!(refused.status, 404, "{}", refused.body);
    let (status, released) = suanli_tests::http(
        national.http,
        "DELETE",
        "/api/v1/reservations/CN.32.I65:1",
        Some(&national.admin_token()),
        None,
    );
    assert_eq!(status, 200, "{released}");
    assert!(released.contains("\"released\""), "{released}");
    wait_until(WAIT, "the released H100 offered again", || {
        !select(&industry, json!({"accelerator": {"model": "h100"}})).1["candidates"]
            .as_array()
            .unwrap()
            .is_empty()
    });

    // A short hold, and the link to the national node cut: the holding
    // node ends it at its time by itself; the national node's answers are
    // partial, naming the node it cannot reach.
    let (status, short) = hold("short", 5);
    assert_eq!(status, 201, "{short:#}");
    regional.kill();
    let (status, answer) = select(
        &national,
        json!({"resource_type": "C", "availability": "installed", "deadline_ms": 1500}),
    );
    assert_eq!(status, 200, "{answer:#}");
    assert_eq!(answer["partial"], true, "{answer:#}");
    assert!(
        ["late", "unreachable"].contains(&outcome(&answer, "CN.32").as_str().unwrap()),
        "{answer:#}"
    );
    assert_eq!(holders(&answer), ["CN"]);
    wait_until(WAIT, "the short hold to end at the industry node", || {
        !select(&industry, json!({"accelerator": {"model": "h100"}})).1["candidates"]
            .as_array()
            .unwrap()
            .is_empty()
    });
    let (_, ended) = industry.get("/api/v1/reservations");
    assert!(ended.contains("\"expired\""), "{ended}");
    drop(gpu_agent);
    drop(local_agent);
}

/// Children that never answer, answer after the deadline, or answer with
/// what is not theirs: the answer still comes, partial, naming each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn children_that_answer_late_wrongly_or_never_leave_a_partial_answer() {
    let dir = tempfile::tempdir().unwrap();
    let national = std::sync::Arc::new(start(
        dir.path(),
        "national",
        &Backend::Sqlite,
        "hierarchy_selection_bad",
        "national",
    ));
    let silent = ScriptedChild::join(&national, "I65").await;
    let wrong = ScriptedChild::join(&national, "M73").await;
    let mut silent_link = silent.link().await.unwrap();
    let mut wrong_link = wrong.link().await.unwrap();
    let ask = |demand: Value| {
        let node = national.clone();
        tokio::task::spawn_blocking(move || select(&node, demand))
    };

    let asked = ask(json!({"resource_type": "C", "deadline_ms": 1000}));
    let ParentMessage::SelectionQuery {
        query_id: late_id,
        demand_json,
        deadline_ms,
    } = silent_link.next::<ParentMessage>().await.unwrap()
    else {
        panic!("no selection query")
    };
    // What is left of the 1,000 ms once the node has read its children.
    assert!((900..=1000).contains(&deadline_ms), "{deadline_ms}");
    let forwarded: Value = serde_json::from_str(&demand_json).unwrap();
    assert!(
        forwarded["deadline_ms"].as_u64().unwrap() < 1000,
        "{forwarded}"
    );
    assert_eq!(
        forwarded["user_region"], "110000",
        "the national node's region fills the user's"
    );
    let ParentMessage::SelectionQuery { query_id, .. } =
        wrong_link.next::<ParentMessage>().await.unwrap()
    else {
        panic!("no selection query")
    };
    let outside = json!({
        "candidates": [{"score": 1.0, "hosts": [{
            "node": "CN.44", "host_id": 1, "identifier": null, "hostname": "h", "provider": "P",
            "region": "440300", "industry": "M73", "state": "online", "stale": false,
            "freshness_ms": 1, "resources": [], "matching_accelerators": 0, "path": null,
            "rtt_ms": null, "fabric": null, "price_per_hour_cny": null, "score": 1.0,
            "parts": {"availability": 1.0, "latency": null, "load": 1.0, "price": null}
        }]}],
        "matched_hosts": 1, "unexamined_hosts": 0, "considered_hosts": 1, "eliminated": [],
        "nearest_misses": [], "groups_short": null, "nodes": [], "partial": false
    });
    wrong_link
        .send(ChildMessage::SelectionAnswer {
            query_id,
            answer: Ok(outside.to_string()),
        })
        .await
        .unwrap();
    let (status, answer) = asked.await.unwrap();
    assert_eq!(status, 200, "{answer:#}");
    assert_eq!(answer["partial"], true);
    assert_eq!(outcome(&answer, "CN.I65"), "late", "{answer:#}");
    assert_eq!(outcome(&answer, "CN.M73"), "refused", "{answer:#}");
    let reasons = answer["nodes"].to_string();
    assert!(
        reasons.contains("CN.44 is outside its prefix CN.M73"),
        "{reasons}"
    );
    assert!(
        answer["candidates"].as_array().unwrap().is_empty(),
        "{answer:#}"
    );

    // The silent child answers after the deadline: ignored, and counted.
    silent_link
        .send(ChildMessage::SelectionAnswer {
            query_id: late_id,
            answer: Ok("{}".into()),
        })
        .await
        .unwrap();
    let node = national.clone();
    tokio::task::spawn_blocking(move || {
        wait_until(WAIT, "the late answer counted", || {
            metric(&node, "suanli_selection_answers_late_total") >= 1.0
        })
    })
    .await
    .unwrap();

    // Malformed, and a failure the child reports, on the next demand.
    let asked = ask(json!({"resource_type": "C", "deadline_ms": 1000}));
    let ParentMessage::SelectionQuery { query_id, .. } =
        wrong_link.next::<ParentMessage>().await.unwrap()
    else {
        panic!("no selection query")
    };
    wrong_link
        .send(ChildMessage::SelectionAnswer {
            query_id,
            answer: Ok("[not json".into()),
        })
        .await
        .unwrap();
    let ParentMessage::SelectionQuery { query_id, .. } =
        silent_link.next::<ParentMessage>().await.unwrap()
    else {
        panic!("no selection query")
    };
    silent_link
        .send(ChildMessage::SelectionAnswer {
            query_id,
            answer: Err("storage unavailable".into()),
        })
        .await
        .unwrap();
    let (_, answer) = asked.await.unwrap();
    assert_eq!(outcome(&answer, "CN.M73"), "refused", "{answer:#}");
    assert!(
        answer["nodes"].to_string().contains("malformed answer"),
        "{answer:#}"
    );
    assert_eq!(outcome(&answer, "CN.I65"), "failed", "{answer:#}");
    assert!(metric(&national, "suanli_selection_answers_refused_total") >= 2.0);
}

/// Stores `reports` as the stopped node's own, not yet sent up, into its
/// SQLite database: what it would have reported had it been up.
async fn store_own_reports(data: &Path, reports: &[MarketReport]) {
    use sqlx::Connection as _;
    let url = format!("sqlite://{}", data.join("suanli.db").display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    for r in reports {
        sqlx::query(
            "INSERT INTO market_reports (origin, stream, period_ms, period_start_ms, body, \
             child_id, received_at_ms, spooled) VALUES ($1, $2, $3, $4, $5, NULL, $4, 0)",
        )
        .bind(&r.origin)
        .bind(&r.stream)
        .bind(r.period_ms as i64)
        .bind(r.period_start_ms as i64)
        .bind(r.clone().encode())
        .execute(&mut conn)
        .await
        .unwrap();
    }
}

/// A node down when its hours and its day ended makes their rollups when it
/// comes back, from its own stored reports, and they reach its parent once
/// each: the hour's sums exact, its mean time-weighted, the day's counts
/// summed and its levels the last hour's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_back_from_hours_away_rolls_them_up_and_its_parent_gets_them() {
    const HOUR: u64 = 3_600_000;
    const DAY: u64 = 24 * HOUR;
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let test = "hierarchy_rollups";
    let national = start(dir, "national", &Backend::Sqlite, test, "national");
    let mut regional = start(dir, "regional", &Backend::Sqlite, test, "regional");
    let prefix = join(&national, &regional, "regional", "32");
    regional.kill();

    // Beijing hours and days (UTC+8).
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let align = |at: u64, period: u64| at - (at + 8 * HOUR) % period;
    let hour = align(now, HOUR) - 3 * HOUR;
    // Two days ago: in the hour after midnight, yesterday's last hour is
    // the last whole hour, which the node reports live when it starts.
    let past_day = align(now, DAY) - 2 * DAY;
    // Three hours ago: 180 periods of 2 CPU hosts, then 180 of 4; the hour
    // after, only its first 180 periods (the node went down).
    let resource = |start: u64, hosts: u64| MarketReport {
        origin: prefix.clone(),
        stream: "resource".into(),
        period_start_ms: start,
        period_ms: 10_000,
        groups: vec![CapacityGroup {
            region: "320102".into(),
            resource_type: "C".into(),
            model: "X86".into(),
            registered: hosts,
            online: hosts,
            healthy: hosts,
            capacity: vec![suanli_protocol::node::PrecisionCapacity {
                precision: "fp32".into(),
                registered_gflops: 1_000 * hosts,
                ..Default::default()
            }],
            ..Default::default()
        }],
        rating_table: "2026.12-1".into(),
        ..MarketReport::default()
    };
    let mut reports: Vec<MarketReport> = (0..360)
        .map(|i| resource(hour + i * 10_000, if i < 180 { 2 } else { 4 }))
        .collect();
    reports.extend((0..180).map(|i| resource(hour + HOUR + i * 10_000, 4)));
    // That day's 24 platform hours: failed sign-ins 0, 1, …, 23; one admin
    // account until the last hour, which has two.
    reports.extend((0..24).map(|i| MarketReport {
        origin: prefix.clone(),
        stream: "platform".into(),
        period_start_ms: past_day + i * HOUR,
        period_ms: HOUR,
        figures: vec![
            suanli_protocol::node::Figure {
                name: "accounts".into(),
                label: "admin".into(),
                value: if i == 23 { 2 } else { 1 },
            },
            suanli_protocol::node::Figure {
                name: "sign_ins_failed".into(),
                label: String::new(),
                value: i,
            },
        ],
        ..MarketReport::default()
    }));
    store_own_reports(&dir.join("regional"), &reports).await;
    regional.restart();

    let origin_part = |body: &Value| -> Option<Value> {
        body["origins"]
            .as_array()?
            .iter()
            .find(|o| o["origin"] == prefix.as_str())
            .cloned()
    };
    let mut first = Value::Null;
    wait_until(
        WAIT,
        "the regional node's rollups at the national node",
        || {
            first = get(&national, &format!("/api/v1/reports?period=1h&at={hour}")).1;
            origin_part(&first).is_some()
        },
    );
    let group = &first["groups"][0];
    assert_eq!(origin_part(&first).unwrap()["periods"], 360, "{first:#}");
    assert_eq!(group["registered"], 180 * 2 + 180 * 4, "exact sums");
    assert_eq!(first["scale"]["resources"]["C"], 3, "the hour's mean");
    assert_eq!(first["headline"]["general_fp32_gflops"], 3_000);
    // The regional node holds the same rollup: the figures add up.
    let (_, at_regional) = get(&regional, &format!("/api/v1/reports?period=1h&at={hour}"));
    assert_eq!(at_regional["groups"], first["groups"], "{at_regional:#}");

    let mut second = Value::Null;
    wait_until(WAIT, "the half hour before it went down", || {
        second = get(
            &national,
            &format!("/api/v1/reports?period=1h&at={}", hour + HOUR),
        )
        .1;
        origin_part(&second).is_some()
    });
    assert_eq!(origin_part(&second).unwrap()["periods"], 180);
    assert_eq!(second["scale"]["resources"]["C"], 4);

    let mut day = Value::Null;
    wait_until(WAIT, "the platform rollup of two days ago", || {
        day = get(
            &national,
            &format!("/api/v1/reports?stream=platform&period=1d&at={past_day}"),
        )
        .1;
        origin_part(&day).is_some()
    });
    let figure = |name: &str, label: &str| {
        day["figures"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == name && f["label"] == label)
            .and_then(|f| f["value"].as_u64())
    };
    assert_eq!(
        figure("sign_ins_failed", ""),
        Some((0..24).sum()),
        "{day:#}"
    );
    assert_eq!(
        figure("accounts", "admin"),
        Some(2),
        "the level at the day's end"
    );
    assert_eq!(origin_part(&day).unwrap()["periods"], 24);

    // The hours it was up in and down at the turn of: their hourly
    // streams are reported too, from what it recorded.
    let mut catch_up = Value::Null;
    wait_until(
        WAIT,
        "the platform hours it was down at the turn of",
        || {
            catch_up = get(
                &national,
                &format!("/api/v1/reports?stream=platform&at={}", hour + HOUR),
            )
            .1;
            origin_part(&catch_up).is_some()
        },
    );
    assert_eq!(catch_up["period_ms"], HOUR, "{catch_up:#}");

    // The 30-day trend reads the hourly rollups: a point for each hour.
    let (status, trend) = get(&national, "/api/v1/reports/trend?days=1");
    assert_eq!(status, 200, "{trend:#}");
    let point = trend["points"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["period_start_ms"] == hour)
        .unwrap_or_else(|| panic!("no point at {hour}: {trend:#}"));
    assert_eq!(point["headline"]["general_fp32_gflops"], 3_000);
    assert_eq!(trend["step_ms"], HOUR);

    // And the CLI exports the two hours, one JSON object per line.
    let server = regional.http.to_string();
    let out = regional.admin_ok(&[
        "reports",
        "--server",
        &server,
        "--period",
        "1h",
        "--from",
        &hour.to_string(),
        "--to",
        &(hour + HOUR).to_string(),
    ]);
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert_eq!(lines[0]["period_start_ms"], hour);
    assert_eq!(lines[1]["scale"]["resources"]["C"], 4);
}
