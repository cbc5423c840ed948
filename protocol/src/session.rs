//! The stream's state machines, with no IO and no clock.
//!
//! [`Uplink`] is the agent's side: when to dial, what to say first, which
//! spooled sample to send next, and what the aggregator has durably stored
//! (only then may the spool let a sample go). [`IngestCursor`] is the
//! aggregator's side of one connection: samples must arrive in sequence order,
//! and an acknowledgement is owed only for what storage has committed.
//!
//! Time comes in as `now` and randomness as a `u64`, so the simulation in the
//! tests below replays a lossy link and crashing aggregators from a seed.

use std::{
    ops::RangeInclusive,
    time::{Duration, Instant},
};

use crate::stream::{AggregatorMessage, Hello, MAX_VERSION, MIN_VERSION};

/// Picks the highest minor version both ends speak.
pub fn negotiate(
    theirs: RangeInclusive<u32>,
    ours: RangeInclusive<u32>,
) -> Result<u32, SessionError> {
    let high = (*theirs.end()).min(*ours.end());
    let low = (*theirs.start()).max(*ours.start());
    if low <= high {
        Ok(high)
    } else {
        Err(SessionError::Version {
            theirs: (*theirs.start(), *theirs.end()),
            ours: (*ours.start(), *ours.end()),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    #[error("no common protocol version: peer speaks {theirs:?}, this side {ours:?}")]
    Version {
        theirs: (u32, u32),
        ours: (u32, u32),
    },
    #[error("sample {seq} arrived after sample {after}: samples must be sent in sequence order")]
    OutOfOrder { seq: u64, after: u64 },
    #[error("acknowledgement of sample {through} which was never sent (highest sent: {sent:?})")]
    AckBeyondSent { through: u64, sent: Option<u64> },
    #[error("{0} was not expected now")]
    Unexpected(&'static str),
}

/// Exponential backoff with full jitter: the n-th delay is uniform in
/// `[0, min(max, base·2ⁿ)]`, so returning agents spread out instead of
/// arriving together.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    pub fn new(base: Duration, max: Duration) -> Self {
        Self {
            base,
            max,
            attempt: 0,
        }
    }

    pub fn next_delay(&mut self, random: u64) -> Duration {
        let ceiling = self
            .base
            .saturating_mul(1u32 << self.attempt.min(20))
            .min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(random % nanos.saturating_add(1))
    }

    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

/// What the agent should do after a message from the aggregator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UplinkEvent {
    /// Connected: the aggregator answered Hello.
    Connected {
        host_id: u64,
        host_identifier: String,
    },
    /// Samples up to here are stored; the spool may let them go.
    Release { through_seq: u64 },
    /// Sample at this interval.
    Interval(Duration),
    /// The agent's state was lost: number new samples from here.
    Renumber { next_seq: u64 },
    /// Close the connection and dial again at `dial_at`.
    Disconnect { dial_at: Instant, reason: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    Idle { dial_at: Instant },
    Handshaking,
    Streaming,
}

/// The agent's side of the stream.
#[derive(Debug, Clone)]
pub struct Uplink {
    phase: Phase,
    backoff: Backoff,
    acked_through: Option<u64>,
    sent_through: Option<u64>,
    /// Samples sent but not yet acknowledged, at most.
    window: u64,
}

impl Uplink {
    pub fn new(now: Instant, backoff: Backoff, window: u64) -> Self {
        Self {
            phase: Phase::Idle { dial_at: now },
            backoff,
            acked_through: None,
            sent_through: None,
            window: window.max(1),
        }
    }

    /// When to dial; `None` while a connection is up or being set up.
    pub fn dial_at(&self) -> Option<Instant> {
        match self.phase {
            Phase::Idle { dial_at } => Some(dial_at),
            _ => None,
        }
    }

    /// True once the aggregator has answered Hello. A QUIC handshake alone
    /// proves nothing: a bad client certificate is refused only afterwards.
    pub fn is_connected(&self) -> bool {
        self.phase == Phase::Streaming
    }

    /// A connection was opened; returns the Hello to send on it.
    pub fn on_connecting(
        &mut self,
        agent_version: &str,
        pending: Option<RangeInclusive<u64>>,
        next_seq: u64,
        dropped_samples: u64,
    ) -> Hello {
        self.phase = Phase::Handshaking;
        self.sent_through = None;
        Hello {
            min_version: MIN_VERSION,
            max_version: MAX_VERSION,
            agent_version: agent_version.to_owned(),
            first_pending_seq: pending.map(|p| *p.start()),
            next_seq,
            dropped_samples,
        }
    }

    /// The connection ended (or could not be made): back off and dial again.
    pub fn on_disconnected(&mut self, now: Instant, random: u64) -> Instant {
        let dial_at = now + self.backoff.next_delay(random);
        self.phase = Phase::Idle { dial_at };
        self.sent_through = None;
        dial_at
    }

    pub fn on_message(
        &mut self,
        now: Instant,
        message: AggregatorMessage,
        spool_is_empty: bool,
        next_seq: u64,
    ) -> Result<Vec<UplinkEvent>, SessionError> {
        match (message, &self.phase) {
            (AggregatorMessage::Welcome(welcome), Phase::Handshaking) => {
                negotiate(welcome.version..=welcome.version, MIN_VERSION..=MAX_VERSION)?;
                self.phase = Phase::Streaming;
                self.backoff.reset();
                let mut events = vec![UplinkEvent::Connected {
                    host_id: welcome.host_id,
                    host_identifier: welcome.host_identifier,
                }];
                events.extend(welcome.sample_interval.map(UplinkEvent::Interval));
                if let Some(stored) = welcome.stored_through_seq
                    && spool_is_empty
                    && next_seq <= stored
                {
                    events.push(UplinkEvent::Renumber {
                        next_seq: stored + 1,
                    });
                }
                Ok(events)
            }
            (AggregatorMessage::Ack { through_seq }, Phase::Streaming) => {
                if self.sent_through.is_none_or(|sent| through_seq > sent) {
                    return Err(SessionError::AckBeyondSent {
                        through: through_seq,
                        sent: self.sent_through,
                    });
                }
                if self.acked_through.is_some_and(|acked| acked >= through_seq) {
                    return Ok(Vec::new());
                }
                self.acked_through = Some(through_seq);
                Ok(vec![UplinkEvent::Release { through_seq }])
            }
            (AggregatorMessage::Configure { sample_interval }, Phase::Streaming) => {
                Ok(vec![UplinkEvent::Interval(sample_interval)])
            }
            (
                AggregatorMessage::Wait {
                    retry_after,
                    reason,
                },
                _,
            ) => {
                let dial_at = now + retry_after;
                self.phase = Phase::Idle { dial_at };
                self.sent_through = None;
                Ok(vec![UplinkEvent::Disconnect { dial_at, reason }])
            }
            (AggregatorMessage::Welcome(_), _) => Err(SessionError::Unexpected("Welcome")),
            (AggregatorMessage::Enrolled(_), _) => Err(SessionError::Unexpected("Enrolled")),
            (AggregatorMessage::Ack { .. }, _) => Err(SessionError::Unexpected("Ack")),
            (AggregatorMessage::Configure { .. }, _) => Err(SessionError::Unexpected("Configure")),
        }
    }

    /// The next spooled sample to send, given the sequence numbers the spool
    /// holds; `None` when nothing may be sent now (not connected, nothing new,
    /// or the window of unacknowledged samples is full).
    pub fn next_to_send(&self, pending: Option<RangeInclusive<u64>>) -> Option<u64> {
        if self.phase != Phase::Streaming {
            return None;
        }
        let pending = pending?;
        let after_sent = self.sent_through.map_or(0, |s| s + 1);
        let after_acked = self.acked_through.map_or(0, |a| a + 1);
        let next = (*pending.start()).max(after_sent).max(after_acked);
        if next > *pending.end() {
            return None;
        }
        let oldest_unacked = (*pending.start()).max(after_acked);
        (next - oldest_unacked < self.window).then_some(next)
    }

    pub fn on_sent(&mut self, seq: u64) {
        self.sent_through = Some(seq);
    }
}

/// The aggregator's side of one connection's samples.
#[derive(Debug, Clone, Default)]
pub struct IngestCursor {
    received_through: Option<u64>,
    acked_through: Option<u64>,
}

impl IngestCursor {
    /// A sample arrived; it must be newer than every earlier one.
    pub fn on_sample(&mut self, seq: u64) -> Result<(), SessionError> {
        if let Some(after) = self.received_through
            && seq <= after
        {
            return Err(SessionError::OutOfOrder { seq, after });
        }
        self.received_through = Some(seq);
        Ok(())
    }

    /// Storage committed everything received up to `through`: the ack to send.
    pub fn on_stored(&mut self, through: u64) -> Option<AggregatorMessage> {
        if self.acked_through.is_some_and(|a| a >= through) {
            return None;
        }
        self.acked_through = Some(through);
        Some(AggregatorMessage::Ack {
            through_seq: through,
        })
    }

    pub fn received_through(&self) -> Option<u64> {
        self.received_through
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet, VecDeque};

    use proptest::prelude::*;

    use super::*;
    use crate::stream::Welcome;

    #[test]
    fn versions_meet_at_the_highest_common() {
        assert_eq!(negotiate(1..=3, 1..=2), Ok(2));
        assert_eq!(negotiate(2..=2, 1..=5), Ok(2));
        assert!(matches!(
            negotiate(3..=4, 1..=2),
            Err(SessionError::Version { .. })
        ));
    }

    #[test]
    fn backoff_grows_to_its_ceiling_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        assert_eq!(
            b.next_delay(u64::MAX),
            Duration::from_nanos(u64::MAX % 100_000_001)
        );
        for _ in 0..10 {
            assert!(b.next_delay(u64::MAX - 1) <= Duration::from_secs(1));
        }
        b.reset();
        assert!(b.next_delay(u64::MAX) <= Duration::from_millis(100));
    }

    #[test]
    fn window_bounds_unacknowledged_samples() {
        let now = Instant::now();
        let mut up = Uplink::new(now, Backoff::new(Duration::ZERO, Duration::ZERO), 2);
        up.on_connecting("t", Some(0..=9), 10, 0);
        assert_eq!(up.next_to_send(Some(0..=9)), None, "not before Welcome");
        up.on_message(now, welcome(None), false, 10).unwrap();
        assert_eq!(up.next_to_send(Some(0..=9)), Some(0));
        up.on_sent(0);
        assert_eq!(up.next_to_send(Some(0..=9)), Some(1));
        up.on_sent(1);
        assert_eq!(up.next_to_send(Some(0..=9)), None, "window full");
        let events = up
            .on_message(now, AggregatorMessage::Ack { through_seq: 1 }, false, 10)
            .unwrap();
        assert_eq!(events, vec![UplinkEvent::Release { through_seq: 1 }]);
        assert_eq!(up.next_to_send(Some(2..=9)), Some(2));
    }

    #[test]
    fn an_ack_for_what_was_never_sent_is_an_error() {
        let now = Instant::now();
        let mut up = Uplink::new(now, Backoff::new(Duration::ZERO, Duration::ZERO), 8);
        up.on_connecting("t", None, 0, 0);
        up.on_message(now, welcome(None), true, 0).unwrap();
        let err = up
            .on_message(now, AggregatorMessage::Ack { through_seq: 5 }, true, 0)
            .unwrap_err();
        assert!(matches!(err, SessionError::AckBeyondSent { .. }));
    }

    #[test]
    fn a_fresh_agent_numbers_above_what_is_stored() {
        let now = Instant::now();
        let mut up = Uplink::new(now, Backoff::new(Duration::ZERO, Duration::ZERO), 8);
        up.on_connecting("t", None, 0, 0);
        let events = up.on_message(now, welcome(Some(41)), true, 0).unwrap();
        assert!(events.contains(&UplinkEvent::Renumber { next_seq: 42 }));
    }

    #[test]
    fn ingest_refuses_samples_out_of_order() {
        let mut cursor = IngestCursor::default();
        cursor.on_sample(3).unwrap();
        assert_eq!(
            cursor.on_sample(3),
            Err(SessionError::OutOfOrder { seq: 3, after: 3 })
        );
        assert_eq!(
            cursor.on_stored(3),
            Some(AggregatorMessage::Ack { through_seq: 3 })
        );
        assert_eq!(cursor.on_stored(3), None);
    }

    fn welcome(stored_through_seq: Option<u64>) -> AggregatorMessage {
        AggregatorMessage::Welcome(Welcome {
            version: 1,
            host_id: 1,
            host_identifier: "X".into(),
            sample_interval: Some(Duration::from_millis(100)),
            stored_through_seq,
        })
    }

    /// xorshift64*: enough randomness for a simulation, reproducible from a seed.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        fn chance(&mut self, per_mille: u64) -> bool {
            self.next() % 1000 < per_mille
        }
    }

    /// One connection's frames in flight, each with its arrival time.
    #[derive(Default)]
    struct Link {
        up: VecDeque<(Instant, u64)>,
        down: VecDeque<(Instant, AggregatorMessage)>,
    }

    /// Agent, link and aggregator in virtual time. The agent samples every
    /// 10 ms into a bounded spool; the link delays frames and is cut at
    /// random; the aggregator stores in batches and crashes at random, losing
    /// what it had received but not stored. Returns (produced, dropped, and
    /// how often each stored seq was delivered: resends are expected, storage
    /// keeps one).
    fn simulate(seed: u64, spool_cap: usize) -> (u64, u64, BTreeMap<u64, u32>, u32) {
        let mut rng = Rng(seed | 1);
        let start = Instant::now();
        let mut now = start;
        let step = Duration::from_millis(1);
        let end = start + Duration::from_secs(20);
        let heal_at = start + Duration::from_secs(15);

        let mut uplink = Uplink::new(
            now,
            Backoff::new(Duration::from_millis(5), Duration::from_millis(200)),
            16,
        );
        let mut spool: BTreeMap<u64, ()> = BTreeMap::new();
        let mut next_seq = 0u64;
        let mut dropped = 0u64;
        let mut next_sample = now;

        let mut link: Option<Link> = None;
        let mut cursor = IngestCursor::default();
        let mut unstored: Vec<u64> = Vec::new();
        let mut store: BTreeMap<u64, u32> = BTreeMap::new();
        let mut next_commit = now;
        let mut connections = 0u32;

        while now < end {
            let healed = now >= heal_at;
            // Agent produces samples until the heal, then drains.
            if !healed && now >= next_sample {
                spool.insert(next_seq, ());
                next_seq += 1;
                while spool.len() > spool_cap {
                    spool.pop_first();
                    dropped += 1;
                }
                next_sample = now + Duration::from_millis(10);
            }
            let pending = || -> Option<RangeInclusive<u64>> {
                Some(*spool.first_key_value()?.0..=*spool.last_key_value()?.0)
            };

            // Dial.
            if uplink.dial_at().is_some_and(|at| at <= now) {
                uplink.on_connecting("sim", pending(), next_seq, dropped);
                connections += 1;
                let mut l = Link::default();
                let delay = Duration::from_millis(rng.next() % 5);
                l.down.push_back((
                    now + delay,
                    AggregatorMessage::Welcome(Welcome {
                        version: 1,
                        host_id: 1,
                        host_identifier: "X".into(),
                        sample_interval: None,
                        stored_through_seq: store.last_key_value().map(|(s, _)| *s),
                    }),
                ));
                link = Some(l);
                cursor = IngestCursor::default();
                unstored.clear();
            }

            if let Some(l) = link.as_mut() {
                // Agent sends what the window allows.
                let spool_range = pending();
                while let Some(seq) = uplink.next_to_send(spool_range.clone()) {
                    // The spool only offers what it still holds.
                    let seq = *spool.range(seq..).next().expect("in range").0;
                    uplink.on_sent(seq);
                    l.up.push_back((now + Duration::from_millis(rng.next() % 5), seq));
                }
                // Aggregator receives.
                while l.up.front().is_some_and(|(at, _)| *at <= now) {
                    let (_, seq) = l.up.pop_front().expect("checked");
                    cursor.on_sample(seq).expect("in order on one connection");
                    unstored.push(seq);
                }
                // Aggregator commits a batch, then acks.
                if now >= next_commit && !unstored.is_empty() {
                    for seq in unstored.drain(..) {
                        // Insert-if-absent, as the (host, seq) key does in SQL;
                        // the count records how often a seq was delivered.
                        *store.entry(seq).or_default() += 1;
                    }
                    if let Some(ack) =
                        cursor.on_stored(cursor.received_through().expect("received"))
                    {
                        l.down
                            .push_back((now + Duration::from_millis(rng.next() % 5), ack));
                    }
                    next_commit = now + Duration::from_millis(rng.next() % 30);
                }
                // Agent receives.
                let mut cut = false;
                while l.down.front().is_some_and(|(at, _)| *at <= now) {
                    let (_, msg) = l.down.pop_front().expect("checked");
                    let events = uplink
                        .on_message(now, msg, spool.is_empty(), next_seq)
                        .expect("a well-behaved aggregator");
                    for event in events {
                        match event {
                            UplinkEvent::Release { through_seq } => {
                                // Safety: nothing is released that is not stored.
                                for seq in spool.range(..=through_seq).map(|(s, _)| *s) {
                                    assert!(
                                        store.contains_key(&seq),
                                        "seq {seq} released but not stored"
                                    );
                                }
                                spool.retain(|s, _| *s > through_seq);
                            }
                            UplinkEvent::Renumber { next_seq: n } => next_seq = n,
                            UplinkEvent::Disconnect { .. } => cut = true,
                            UplinkEvent::Connected { .. } | UplinkEvent::Interval(_) => {}
                        }
                    }
                }
                // Faults before the heal: the link is cut, or the aggregator
                // crashes and loses what it had not stored.
                if !healed && (rng.chance(3) || cut) {
                    link = None;
                    unstored.clear();
                    uplink.on_disconnected(now, rng.next());
                }
            }
            now += step;
        }
        assert!(
            spool.is_empty(),
            "after the heal the spool drains: {} left",
            spool.len()
        );
        (next_seq, dropped, store, connections)
    }

    /// The simulation exercises what conservation is about: cut links, and
    /// samples sent again after an acknowledgement was lost. A given seed
    /// need not resend anything (one in CI did not), so this is asked of a
    /// fixed set of seeds, not of every random one.
    #[test]
    fn the_simulation_cuts_links_and_resends() {
        let runs: Vec<(u32, bool)> = (0..16u64)
            .map(|seed| {
                let (_, _, store, connections) = simulate(seed, 10_000);
                (connections, store.values().any(|n| *n > 1))
            })
            .collect();
        assert!(runs.iter().all(|(c, _)| *c > 5), "{runs:?}");
        let resent = runs.iter().filter(|(_, r)| *r).count();
        assert!(resent >= 8, "{resent} of 16 seeds resent: {runs:?}");
        // The seed that resent nothing conserves all the same.
        let (produced, dropped, store, _) = simulate(14_928_983_000_124_963_798, 10_000);
        assert_eq!(dropped, 0);
        assert_eq!(
            store.keys().copied().collect::<BTreeSet<_>>(),
            (0..produced).collect()
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        /// Conservation: every sample produced is stored exactly once, except
        /// those the spool bound dropped, which are counted.
        #[test]
        fn every_sample_is_stored_once_or_counted_as_dropped(seed in any::<u64>()) {
            let (produced, dropped, store, _) = simulate(seed, 10_000);
            prop_assert_eq!(dropped, 0);
            prop_assert_eq!(store.keys().copied().collect::<BTreeSet<_>>(), (0..produced).collect());
        }

        #[test]
        fn a_small_spool_drops_oldest_and_counts_them(seed in any::<u64>()) {
            let (produced, dropped, store, _) = simulate(seed, 20);
            // A dropped sample may have been stored already (its ack was lost).
            let missing = produced - store.len() as u64;
            prop_assert!(missing <= dropped, "{} missing, {} dropped", missing, dropped);
        }
    }
}
