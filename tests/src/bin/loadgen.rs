//! `suanli-loadgen`: many simulated agents from one process, over real QUIC
//! and real mutual TLS, against a running aggregator.
//!
//! Each simulated agent enrolls with a multi-use join string (its own key
//! and certificate), connects, and sends one sample per interval. The sample
//! is a real report of this machine (taken once) with its clock and a few
//! readings varied, so its size is what a CPU host sends. Latency is from a
//! sample's creation to the acknowledgement that covers it, which the
//! aggregator sends only after the sample's batch committed: an upper bound
//! of "created → queryable".
//!
//! ```text
//! suanli-loadgen --join 'suanli://…' --agents 2000 --interval 1s --ramp 20s --duration 30s \
//!     [--aggregator-pid PID]
//! ```
//! `tests/bench/loadgen.sh` runs the whole procedure against a fresh node.

use std::{
    collections::VecDeque,
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use anyhow::{Context, bail};
use quinn::Endpoint;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use suanli_link::transport::{self, MessageReader, SERVER_NAME, ServerTrust};
use suanli_protocol::{
    join::JoinString,
    model::HostReport,
    stream::{
        AgentMessage, AggregatorMessage, EncodedSample, EnrollRequest, Hello, InventoryUpdate,
        SequencedSample,
    },
};
use suanli_tests::bench;
use tokio::sync::Semaphore;

/// Many simulated agents from one process, over real QUIC and mutual TLS.
#[derive(Debug, clap::Parser)]
#[command(name = "suanli-loadgen")]
struct Args {
    /// A multi-use join string (`suanli-aggregator token create --uses N`).
    #[arg(long, value_parser = parse_join)]
    join: JoinString,
    /// Simulated agents.
    #[arg(long, default_value_t = 1000)]
    agents: usize,
    /// Each agent's sampling interval.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    interval: Duration,
    /// How long the agents take to connect, spread evenly.
    #[arg(long, default_value = "20s", value_parser = humantime::parse_duration)]
    ramp: Duration,
    /// How long they send after the ramp.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Client QUIC endpoints (UDP sockets) the agents share (at least one).
    #[arg(long, default_value_t = 2)]
    endpoints: usize,
    /// The aggregator's process, to report its CPU and memory.
    #[arg(long, value_name = "PID")]
    aggregator_pid: Option<u32>,
}

fn parse_join(text: &str) -> Result<JoinString, String> {
    text.parse().map_err(|e| format!("{e}"))
}

/// Figures the simulated agents share.
#[derive(Debug, Default)]
struct Tally {
    connected: AtomicU64,
    sent: AtomicU64,
    acked: AtomicU64,
    bytes: AtomicU64,
    errors: AtomicU64,
    /// Created → acknowledged, in microseconds, for samples in the measured window.
    latencies_us: Mutex<Vec<u64>>,
    measuring: std::sync::atomic::AtomicBool,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn main() -> anyhow::Result<()> {
    let mut args: Args = clap::Parser::parse();
    args.endpoints = args.endpoints.max(1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let address: SocketAddr = tokio::net::lookup_host(&args.join.address)
        .await?
        .next()
        .context("address")?;
    let template = suanli_agent::inventory::take(
        &suanli_agent::Sources::default(),
        Duration::from_millis(200),
        Duration::from_secs(2),
    )?;
    let template = Arc::new(template);
    let endpoints: Vec<Endpoint> = (0..args.endpoints)
        .map(|_| transport::endpoint(SocketAddr::from(([0, 0, 0, 0], 0)), None, None).map(|e| e.0))
        .collect::<Result<_, _>>()?;

    // Enroll everyone first, a few at a time.
    let started = Instant::now();
    let gate = Arc::new(Semaphore::new(32));
    let mut enrollments = Vec::with_capacity(args.agents);
    for i in 0..args.agents {
        let gate = gate.clone();
        let endpoint = endpoints[i % endpoints.len()].clone();
        let join = args.join.clone();
        enrollments.push(tokio::spawn(async move {
            let _permit = gate.acquire().await;
            enroll(&endpoint, address, &join, i).await
        }));
    }
    let mut identities = Vec::with_capacity(args.agents);
    for e in enrollments {
        identities.push(e.await??);
    }
    let enroll_secs = started.elapsed().as_secs_f64();
    eprintln!(
        "enrolled {} agents in {enroll_secs:.1} s ({:.1} ms each)",
        args.agents,
        enroll_secs * 1000.0 / args.agents as f64
    );

    let tally = Arc::new(Tally::default());
    let ca = identities
        .first()
        .map(|(ca, _, _)| ca.clone())
        .context("no agents")?;
    let cpu_before = args.aggregator_pid.and_then(bench::cpu_seconds);
    let stream_start = Instant::now();
    for (i, (_, cert, key)) in identities.into_iter().enumerate() {
        let delay = args.ramp.mul_f64(i as f64 / args.agents as f64);
        let endpoint = endpoints[i % endpoints.len()].clone();
        let client = transport::client_config(ServerTrust::Ca(ca.clone()), Some((cert, key)))?;
        let tally = tally.clone();
        let template = template.clone();
        let interval = args.interval;
        let stop = stream_start + args.ramp + args.duration;
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            if let Err(e) = stream(
                &endpoint, client, address, interval, stop, &template, &tally,
            )
            .await
            {
                tally.errors.fetch_add(1, Ordering::Relaxed);
                eprintln!("agent {i}: {e:#}");
            }
        });
    }
    tokio::time::sleep(args.ramp).await;
    let connected_at_ramp = tally.connected.load(Ordering::Relaxed);
    let (sent0, acked0, bytes0) = (
        tally.sent.load(Ordering::Relaxed),
        tally.acked.load(Ordering::Relaxed),
        tally.bytes.load(Ordering::Relaxed),
    );
    let cpu0 = args.aggregator_pid.and_then(bench::cpu_seconds);
    tally.measuring.store(true, Ordering::Relaxed);
    let window = Instant::now();
    tokio::time::sleep(args.duration).await;
    tally.measuring.store(false, Ordering::Relaxed);
    let secs = window.elapsed().as_secs_f64();
    let cpu1 = args.aggregator_pid.and_then(bench::cpu_seconds);
    let sent = tally.sent.load(Ordering::Relaxed) - sent0;
    let acked = tally.acked.load(Ordering::Relaxed) - acked0;
    let bytes = tally.bytes.load(Ordering::Relaxed) - bytes0;
    let mut latencies = std::mem::take(&mut *tally.latencies_us.lock().expect("lock"));
    latencies.sort_unstable();
    let pct = |p: f64| -> f64 {
        if latencies.is_empty() {
            return f64::NAN;
        }
        let i = ((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1;
        latencies[i] as f64 / 1000.0
    };
    println!("agents                 {}", args.agents);
    println!("connected after ramp   {connected_at_ramp}");
    println!(
        "errors                 {}",
        tally.errors.load(Ordering::Relaxed)
    );
    println!("interval               {:?}", args.interval);
    println!("window                 {secs:.1} s");
    println!("samples sent/s         {:.0}", sent as f64 / secs);
    println!("samples acked/s        {:.0}", acked as f64 / secs);
    println!(
        "sample frame bytes     {:.0} (protobuf + 4-byte length)",
        bytes as f64 / sent.max(1) as f64
    );
    println!(
        "created→acked ms       p50 {:.1}  p99 {:.1}  max {:.1}  (n={})",
        pct(0.5),
        pct(0.99),
        pct(1.0),
        latencies.len()
    );
    if let (Some(pid), Some(c0), Some(c1), Some(_)) = (args.aggregator_pid, cpu0, cpu1, cpu_before)
    {
        println!(
            "aggregator CPU         {:.1} % of one core",
            (c1 - c0) / secs * 100.0
        );
        println!(
            "aggregator peak RSS    {} MiB",
            peak_rss_kib(pid).unwrap_or(0) / 1024
        );
    }
    for endpoint in &endpoints {
        endpoint.close(0u32.into(), b"done");
    }
    Ok(())
}

async fn enroll(
    endpoint: &Endpoint,
    address: SocketAddr,
    join: &JoinString,
    i: usize,
) -> anyhow::Result<(
    CertificateDer<'static>,
    CertificateDer<'static>,
    PrivateKeyDer<'static>,
)> {
    let key = rcgen::KeyPair::generate()?;
    let csr = rcgen::CertificateParams::new(Vec::<String>::new())?.serialize_request(&key)?;
    let client = transport::client_config(ServerTrust::CaFingerprint(join.ca_fingerprint), None)?;
    let conn = endpoint.connect_with(client, address, SERVER_NAME)?.await?;
    let (mut send, recv) = conn.open_bi().await?;
    let mut bytes = Vec::new();
    AgentMessage::EnrollRequest(EnrollRequest {
        token: join.token.clone(),
        csr_der: csr.der().to_vec(),
        machine_id: Some(format!("loadgen-{i:06}")),
        hostname: format!("loadgen-{i:06}"),
        agent_version: "loadgen".into(),
        product_uuid: None,
        board_serial: None,
    })
    .encode(&mut bytes);
    send.write_all(&bytes).await?;
    match MessageReader::new(recv).next::<AggregatorMessage>().await? {
        Some(AggregatorMessage::Enrolled(e)) => {
            conn.close(0u32.into(), b"enrolled");
            Ok((
                CertificateDer::from(e.ca_certificate_der),
                CertificateDer::from(e.certificate_der),
                PrivateKeyDer::Pkcs8(key.serialize_der().into()),
            ))
        }
        other => bail!("enrollment {i}: {other:?} ({:?})", conn.close_reason()),
    }
}

async fn stream(
    endpoint: &Endpoint,
    client: quinn::ClientConfig,
    address: SocketAddr,
    interval: Duration,
    stop: Instant,
    template: &HostReport,
    tally: &Tally,
) -> anyhow::Result<()> {
    let conn = endpoint.connect_with(client, address, SERVER_NAME)?.await?;
    let (mut send, recv) = conn.open_bi().await?;
    let mut bytes = Vec::new();
    AgentMessage::Hello(Hello {
        min_version: 1,
        max_version: 1,
        agent_version: "loadgen".into(),
        first_pending_seq: None,
        next_seq: 0,
        dropped_samples: 0,
    })
    .encode(&mut bytes);
    send.write_all(&bytes).await?;
    let mut reader = MessageReader::new(recv);
    let next_seq = match reader.next::<AggregatorMessage>().await? {
        Some(AggregatorMessage::Welcome(w)) => w.stored_through_seq.map_or(0, |s| s + 1),
        other => bail!(
            "expected Welcome, got {other:?} ({:?})",
            conn.close_reason()
        ),
    };
    tally.connected.fetch_add(1, Ordering::Relaxed);
    let in_flight: Arc<Mutex<VecDeque<(u64, Instant, bool)>>> = Arc::default();

    let acks = {
        let in_flight = in_flight.clone();
        async move {
            while let Some(message) = reader.next::<AggregatorMessage>().await? {
                if let AggregatorMessage::Ack { through_seq } = message {
                    let now = Instant::now();
                    let mut queue = in_flight.lock().expect("lock");
                    while queue.front().is_some_and(|(seq, _, _)| *seq <= through_seq) {
                        let (_, created, measured) = queue.pop_front().expect("checked");
                        tally.acked.fetch_add(1, Ordering::Relaxed);
                        if measured {
                            tally
                                .latencies_us
                                .lock()
                                .expect("lock")
                                .push(now.duration_since(created).as_micros() as u64);
                        }
                    }
                }
            }
            anyhow::Ok(())
        }
    };
    let samples = async {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut seq = next_seq;
        let mut sample = template.sample.clone();
        // As the agent does: what the host lacks travels with the inventory.
        let (_, problems) =
            InventoryUpdate::split(template.inventory.clone(), template.problems.clone());
        while Instant::now() < stop {
            tick.tick().await;
            sample.collected_at_unix_ms = now_ms();
            sample.cpu.utilization_percent = Some((seq % 100) as f64);
            let created = Instant::now();
            let mut bytes = Vec::new();
            AgentMessage::Sample(EncodedSample::new(SequencedSample {
                seq,
                sample: sample.clone(),
                problems: problems.clone(),
            }))
            .encode(&mut bytes);
            in_flight.lock().expect("lock").push_back((
                seq,
                created,
                tally.measuring.load(Ordering::Relaxed),
            ));
            send.write_all(&bytes).await?;
            tally.sent.fetch_add(1, Ordering::Relaxed);
            tally.bytes.fetch_add(bytes.len() as u64, Ordering::Relaxed);
            seq += 1;
        }
        anyhow::Ok(())
    };
    tokio::select! {
        r = acks => r?,
        r = samples => r?,
    }
    conn.close(0u32.into(), b"done");
    Ok(())
}

fn peak_rss_kib(pid: u32) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches(" kB")
        .trim()
        .parse()
        .ok()
}
