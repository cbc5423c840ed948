//! A UDP relay that impairs the path between agents and an aggregator:
//! this kernel has no `tc netem`, so loss, delay, reordering, duplication
//! and black-holing happen here, in userspace, from a seed.
//!
//! Agents send to [`Relay::addr`]; each agent address gets its own upstream
//! socket towards the aggregator, as a NAT would give it.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::net::UdpSocket;

/// What the relay does to each datagram, in either direction.
#[derive(Debug, Clone, Default)]
pub struct Impairment {
    /// Drop everything.
    pub blackhole: bool,
    /// Drop this many datagrams in a thousand.
    pub drop_per_mille: u64,
    /// Send this many datagrams in a thousand twice.
    pub duplicate_per_mille: u64,
    /// Delay each datagram by a random time up to this (so they reorder).
    pub max_delay: Duration,
}

#[derive(Debug)]
struct Shared {
    impairment: Impairment,
    /// Where agents' datagrams go: a load balancer may move them.
    upstream: SocketAddr,
    rng: u64,
    forwarded: u64,
    dropped: u64,
}

impl Shared {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// How to send one datagram: `None` to drop it, else delays for each copy.
    fn fate(&mut self) -> Option<Vec<Duration>> {
        let imp = self.impairment.clone();
        if imp.blackhole || self.next() % 1000 < imp.drop_per_mille {
            self.dropped += 1;
            return None;
        }
        self.forwarded += 1;
        let copies = if self.next() % 1000 < imp.duplicate_per_mille {
            2
        } else {
            1
        };
        let max = imp.max_delay.as_micros() as u64;
        Some(
            (0..copies)
                .map(|_| Duration::from_micros(if max == 0 { 0 } else { self.next() % max }))
                .collect(),
        )
    }
}

/// A running relay; stops when dropped.
#[derive(Debug)]
pub struct Relay {
    pub addr: SocketAddr,
    shared: Arc<Mutex<Shared>>,
    _runtime: tokio::runtime::Runtime,
}

impl Relay {
    pub fn start(upstream: SocketAddr, seed: u64) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("relay runtime");
        let shared = Arc::new(Mutex::new(Shared {
            impairment: Impairment::default(),
            upstream,
            rng: seed | 1,
            forwarded: 0,
            dropped: 0,
        }));
        let listener = runtime
            .block_on(UdpSocket::bind("127.0.0.1:0"))
            .expect("relay socket");
        let addr = listener.local_addr().expect("relay address");
        runtime.spawn(run(Arc::new(listener), shared.clone()));
        Self {
            addr,
            shared,
            _runtime: runtime,
        }
    }

    pub fn set(&self, impairment: Impairment) {
        self.shared.lock().expect("relay lock").impairment = impairment;
    }

    /// Sends the agents' datagrams to `upstream` from now on, as a load
    /// balancer moving them to another replica would: the one they leave
    /// is never told, and holds their connections until they time out.
    pub fn redirect(&self, upstream: SocketAddr) {
        self.shared.lock().expect("relay lock").upstream = upstream;
    }

    /// (forwarded, dropped) datagrams so far.
    pub fn counts(&self) -> (u64, u64) {
        let s = self.shared.lock().expect("relay lock");
        (s.forwarded, s.dropped)
    }
}

async fn run(listener: Arc<UdpSocket>, shared: Arc<Mutex<Shared>>) {
    let mut peers: HashMap<SocketAddr, Arc<UdpSocket>> = HashMap::new();
    let mut buf = vec![0u8; 65536];
    loop {
        let Ok((n, from)) = listener.recv_from(&mut buf).await else {
            return;
        };
        let socket = match peers.get(&from) {
            Some(s) => s.clone(),
            None => {
                let Ok(socket) = UdpSocket::bind("127.0.0.1:0").await else {
                    continue;
                };
                let socket = Arc::new(socket);
                peers.insert(from, socket.clone());
                tokio::spawn(back(socket.clone(), listener.clone(), from, shared.clone()));
                socket
            }
        };
        let upstream = shared.lock().expect("relay lock").upstream;
        forward(&shared, &buf[..n], socket, upstream);
    }
}

/// Replies from the aggregator, back to one agent.
async fn back(
    socket: Arc<UdpSocket>,
    listener: Arc<UdpSocket>,
    agent: SocketAddr,
    shared: Arc<Mutex<Shared>>,
) {
    let mut buf = vec![0u8; 65536];
    loop {
        let Ok((n, _)) = socket.recv_from(&mut buf).await else {
            return;
        };
        forward(&shared, &buf[..n], listener.clone(), agent);
    }
}

fn forward(shared: &Mutex<Shared>, datagram: &[u8], via: Arc<UdpSocket>, to: SocketAddr) {
    let Some(delays) = shared.lock().expect("relay lock").fate() else {
        return;
    };
    for delay in delays {
        let datagram = datagram.to_vec();
        let via = via.clone();
        if delay.is_zero() {
            let _ = via.try_send_to(&datagram, to);
        } else {
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let _ = via.send_to(&datagram, to).await;
            });
        }
    }
}
