//! Nothing acknowledged is lost, nothing is stored twice: an agent streams
//! while its aggregator is SIGKILLed and restarted, while the link between
//! them is black-holed, lossy, reordering and duplicating, and while the
//! agent itself is SIGKILLed. Afterwards every sequence number the agent
//! produced is either stored exactly once or still in its spool, waiting.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use suanli_link::spool::Spool;
use suanli_tests::{
    Agent, Aggregator, Backend,
    relay::{Impairment, Relay},
    wait_until,
};

const WAIT: Duration = Duration::from_secs(60);

fn stored(node: &Aggregator) -> i64 {
    node.host()
        .map(|h| h["samples_stored"].as_i64().unwrap())
        .unwrap_or(0)
}

/// Waits until `more` samples beyond the current count are stored.
fn progress(node: &Aggregator, more: i64, what: &str) {
    let before = stored(node);
    wait_until(WAIT, what, || stored(node) >= before + more);
}

fn conservation(backend: Backend, seed: u64) {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Aggregator::start(&dir.path().join("node"), backend, &[]);
    let relay = Relay::start(node.quic, seed);
    let join = node.join_string(Some(relay.addr));
    let mut agent = Agent::join(&dir.path().join("agent"), &join, "20ms");
    agent.run();
    progress(&node, 20, "the first samples to be stored");

    // The aggregator dies without warning, twice.
    for round in 0..2 {
        node.restart();
        progress(
            &node,
            20,
            &format!("ingest to resume after restart {round}"),
        );
    }

    // The link goes dark: the agent keeps sampling into its spool.
    relay.set(Impairment {
        blackhole: true,
        ..Default::default()
    });
    let (_, dropped_before) = relay.counts();
    wait_until(WAIT, "the black hole to swallow traffic", || {
        relay.counts().1 >= dropped_before + 20
    });
    // It comes back bad: loss, duplicates, reordering; and the aggregator
    // is killed again in the middle of it.
    relay.set(Impairment {
        drop_per_mille: 50,
        duplicate_per_mille: 50,
        max_delay: Duration::from_millis(15),
        ..Default::default()
    });
    progress(&node, 40, "catch-up over a lossy link");
    node.restart();
    progress(&node, 20, "ingest after a restart on a lossy link");
    relay.set(Impairment::default());

    // The agent dies without warning and comes back.
    agent.kill();
    agent.run();
    progress(&node, 20, "ingest after the agent's restart");
    assert!(agent.stop().success(), "agent log:\n{}", agent.log());

    // Conservation.
    let spool = Spool::open(&agent.state_dir.join("spool"), 512 << 20).unwrap();
    let host = node.host().unwrap();
    assert_eq!(spool.dropped(), 0, "the spool bound was never reached");
    assert_eq!(host["first_seq"].as_i64(), Some(0), "{host:#}");
    assert_eq!(
        host["gaps"].as_i64(),
        Some(0),
        "stored samples are contiguous: {host:#}"
    );
    let last_stored = host["last_seq"].as_i64().unwrap() as u64;
    let produced_through = spool.next_seq() - 1;
    assert!(last_stored <= produced_through, "{host:#}");
    match spool.pending() {
        // What was not acknowledged yet is still spooled, with no hole
        // between it and what is stored.
        Some(pending) => {
            assert!(
                *pending.start() <= last_stored + 1,
                "{pending:?} vs {host:#}"
            );
            assert_eq!(*pending.end(), produced_through);
        }
        None => assert_eq!(last_stored, produced_through),
    }
    assert_eq!(
        host["samples_stored"].as_i64().unwrap() as u64,
        last_stored + 1,
        "each sequence number stored once"
    );
}

#[test]
fn conservation_on_sqlite() {
    conservation(Backend::Sqlite, 7);
}

#[test]
#[ignore = "needs PostgreSQL: run .ci/test"]
fn conservation_on_postgres() {
    conservation(Backend::postgres("conservation"), 11);
}

/// The README's first command: a node with this host enrolled and streaming.
#[test]
fn serve_with_local_agent_streams_this_host() {
    let dir = tempfile::tempdir().unwrap();
    let agent = suanli_tests::binary("suanli-agent");
    let mut node = Aggregator::start(
        &dir.path().join("node"),
        Backend::Sqlite,
        &[
            "--with-local-agent",
            "--agent-binary",
            agent.to_str().unwrap(),
            "--local-agent-interval",
            "100ms",
        ],
    );
    wait_until(WAIT, "this host to stream", || {
        node.host()
            .is_some_and(|h| h["samples_stored"].as_i64().unwrap() >= 5)
    });
    let host = node.host().unwrap();
    assert_eq!(host["gaps"].as_i64(), Some(0), "{host:#}");
    assert_eq!(host["link"]["connected"].as_bool(), Some(true), "{host:#}");
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(host["hostname"].as_str(), Some(hostname.trim()));
    assert!(
        host["identifier"]
            .as_str()
            .unwrap()
            .starts_with("CN.LOCAL_P00001_I65_110000_C_"),
        "{host:#}"
    );
    // A restart reuses the enrollment instead of joining again, and the
    // killed aggregator's agent went with it: one agent, not two.
    node.restart();
    progress(&node, 5, "this host to stream after a restart");
    assert_eq!(node.hosts().len(), 1);
    let state_dir = dir.path().join("node/local-agent");
    wait_until(WAIT, "the orphaned agent to exit", || {
        agents_running(&state_dir) == 1
    });
}

/// How many `suanli-agent run` processes use `state_dir`.
fn agents_running(state_dir: &std::path::Path) -> usize {
    let needle = state_dir.to_str().unwrap();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| std::fs::read(e.ok()?.path().join("cmdline")).ok())
        .filter(|cmdline| {
            let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
            args.iter().any(|a| a.ends_with(b"suanli-agent"))
                && args.contains(&b"run".as_slice())
                && args.contains(&needle.as_bytes())
        })
        .count()
}

/// A restarted aggregator facing its whole fleet admits it at its own pace:
/// agents beyond the rate are told when to come back, and do.
#[test]
fn a_crowd_is_admitted_at_the_configured_rate() {
    let dir = tempfile::tempdir().unwrap();
    let node = Aggregator::start(
        &dir.path().join("node"),
        Backend::Sqlite,
        &["--admissions-per-second", "0.5"],
    );
    let mut agents: Vec<Agent> = (0..4)
        .map(|i| {
            let join = node.join_string(None);
            Agent::join_as(
                &dir.path().join(format!("agent{i}")),
                &join,
                "100ms",
                &format!("{i:032x}"),
                &format!("crowd-{i}"),
            )
        })
        .collect();
    // All at once, as a fleet returning to a restarted aggregator would.
    for agent in &mut agents {
        agent.run();
    }
    wait_until(WAIT, "every agent to be admitted", || {
        let hosts = node.hosts();
        hosts.len() == 4
            && hosts
                .iter()
                .all(|h| h["samples_stored"].as_i64().unwrap() > 0)
    });
    let waited = agents
        .iter()
        .filter(|a| a.log().contains("asked to wait"))
        .count();
    assert!(
        waited >= 1,
        "one admission per 2 s: four at once means some wait"
    );
    for agent in &mut agents {
        assert!(agent.stop().success());
    }
}
