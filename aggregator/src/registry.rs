//! Live state: which hosts are connected right now, over which connection,
//! and how that link is doing. Storage holds everything durable; this holds
//! what only exists while a connection does.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use suanli_link::transport::CloseCode;
use tokio::sync::mpsc;

/// One connected host.
#[derive(Debug)]
pub struct LiveHost {
    pub connection: quinn::Connection,
    pub connected_at: Instant,
    /// Asks the connection's task to send a `Configure`.
    pub interval: mpsc::Sender<Duration>,
    /// Which connection this is, so a replaced one does not unregister its successor.
    pub generation: u64,
}

/// What the API shows of a live connection.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct LinkState {
    pub connected: bool,
    pub rtt_us: Option<u64>,
    pub sent_packets: Option<u64>,
    pub lost_packets: Option<u64>,
    /// UDP payload bytes received from / sent to the agent on this connection.
    pub rx_bytes: Option<u64>,
    pub tx_bytes: Option<u64>,
    pub connected_for_ms: Option<u64>,
}

#[derive(Debug, Default)]
pub struct Registry {
    hosts: Mutex<HashMap<i64, LiveHost>>,
    generations: std::sync::atomic::AtomicU64,
}

impl Registry {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, LiveHost>> {
        // A panic while holding the lock leaves a map that is still valid.
        self.hosts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a host's new connection; an older one is closed as replaced.
    pub fn connect(
        &self,
        host_id: i64,
        connection: quinn::Connection,
        interval: mpsc::Sender<Duration>,
    ) -> u64 {
        let generation = self
            .generations
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let old = self.lock().insert(
            host_id,
            LiveHost {
                connection,
                connected_at: Instant::now(),
                interval,
                generation,
            },
        );
        if let Some(old) = old {
            old.connection.close(
                CloseCode::Replaced.code(),
                b"a newer connection of this host took over",
            );
        }
        generation
    }

    pub fn disconnect(&self, host_id: i64, generation: u64) {
        let mut hosts = self.lock();
        if hosts
            .get(&host_id)
            .is_some_and(|h| h.generation == generation)
        {
            hosts.remove(&host_id);
        }
    }

    /// Closes the live connection of each revoked host; returns how many.
    pub fn close_revoked(&self, revoked: &[i64]) -> usize {
        let hosts = self.lock();
        let mut closed = 0;
        for id in revoked {
            if let Some(host) = hosts.get(id) {
                host.connection
                    .close(CloseCode::Revoked.code(), b"host revoked");
                closed += 1;
            }
        }
        closed
    }

    pub fn link(&self, host_id: i64) -> LinkState {
        match self.lock().get(&host_id) {
            Some(host) => {
                let stats = host.connection.stats();
                LinkState {
                    connected: true,
                    rtt_us: Some(stats.path.rtt.as_micros() as u64),
                    sent_packets: Some(stats.path.sent_packets),
                    lost_packets: Some(stats.path.lost_packets),
                    rx_bytes: Some(stats.udp_rx.bytes),
                    tx_bytes: Some(stats.udp_tx.bytes),
                    connected_for_ms: Some(host.connected_at.elapsed().as_millis() as u64),
                }
            }
            None => LinkState {
                connected: false,
                rtt_us: None,
                sent_packets: None,
                lost_packets: None,
                rx_bytes: None,
                tx_bytes: None,
                connected_for_ms: None,
            },
        }
    }

    /// Asks a connected host to sample at `interval`; false if it is not connected.
    pub fn set_interval(&self, host_id: i64, interval: Duration) -> bool {
        self.lock()
            .get(&host_id)
            .is_some_and(|h| h.interval.try_send(interval).is_ok())
    }

    pub fn is_connected(&self, host_id: i64) -> bool {
        self.lock().contains_key(&host_id)
    }

    pub fn connected(&self) -> usize {
        self.lock().len()
    }

    pub fn close_all(&self) {
        for host in self.lock().values() {
            host.connection
                .close(CloseCode::ShuttingDown.code(), b"aggregator shutting down");
        }
    }
}
