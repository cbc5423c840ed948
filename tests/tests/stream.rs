//! Nothing acknowledged is lost, nothing is stored twice: an agent streams
//! while its aggregator is SIGKILLed and restarted, while the link between
//! them is black-holed, lossy, reordering and duplicating, and while the
//! agent itself is SIGKILLed. Afterwards every sequence number the agent
//! produced is either stored exactly once or still in its spool, waiting.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use suanli_agent::spool::Spool;
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
fn conservation_on_postgres() {
    match Backend::all("conservation").pop() {
        Some(pg @ Backend::Postgres(_)) => conservation(pg, 11),
        _ => eprintln!("skipped: SUANLI_TEST_DATABASE_URL is not set"),
    }
}
