//! `suanli-aggregator serve`: the node's long-running process.
//!
//! Starts the sample writer, the QUIC listener, the revocation watcher and
//! the HTTP API, each with the same shutdown signal; optionally enrolls and
//! supervises an agent for this very host (`--with-local-agent`).

use std::{io::Write, path::PathBuf, sync::Arc, time::Duration};

use anyhow::Context;
use axum::serve::ListenerExt;
use suanli_protocol::{
    join::JoinString,
    transport::{self, CloseCode, SOCKET_BUFFER_BYTES, fingerprint, to_hex},
};
use tokio::sync::watch;
use tracing::{info, warn};

use crate::{
    api::{self, ApiState},
    auth,
    catalog::Catalog,
    config::ServeConfig,
    https::{HttpTls, TlsListener},
    ingest::{Ingest, IngestConfig, SampleWriter},
    metrics::IngestCounters,
    node::{NodeIdentity, random_secret, write_private},
    store::{Backend, NewAccount, NewProvider, Store, now_ms},
};

/// How often live connections are checked against revocations: a revoked
/// host is cut off within this (plus one database read).
const REVOCATION_POLL: Duration = Duration::from_millis(250);

/// Options that only make sense for one run, not in a config file.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub with_local_agent: bool,
    /// The agent binary; next to this one by default.
    pub agent_binary: Option<PathBuf>,
    /// The local agent's own sampling interval.
    pub local_agent_interval: Option<String>,
}

pub async fn run(config: ServeConfig, options: RunOptions) -> anyhow::Result<()> {
    let (identity, created) = NodeIdentity::load_or_create(&config.data_dir)
        .with_context(|| format!("node identity in {}", config.data_dir.display()))?;
    let url = database_url(&config);
    let store = Store::open(&url)
        .await
        .with_context(|| format!("opening the database {}", redact(&url)))?;
    let counters = IngestCounters::default();
    let (writer, writer_task) = SampleWriter::start(store.clone(), counters.clone());
    let catalog = Catalog::load(&store)
        .await
        .context("loading the resource catalog")?;
    let initial_password = bootstrap_admin(&config, &store).await?;

    let server_config = transport::server_config(
        identity.ca_der.clone(),
        identity.server_der.clone(),
        identity.server_key(),
    )?;
    let (endpoint, granted) = transport::endpoint(
        config.quic_listen,
        Some(server_config),
        Some(&identity.reset_key),
    )?;
    if granted < SOCKET_BUFFER_BYTES {
        warn!(
            granted,
            wanted = SOCKET_BUFFER_BYTES,
            "UDP receive buffer smaller than asked; raise net.core.rmem_max (packaging/sysctl/60-suanli.conf)"
        );
    }
    let quic_addr = endpoint.local_addr()?;
    let http = tokio::net::TcpListener::bind(config.http_listen)
        .await
        .with_context(|| format!("binding HTTP on {}", config.http_listen))?;
    let http_addr = http.local_addr()?;
    let http_tls = config.http_tls.server_config(&identity)?;
    let scheme = if http_tls.is_some() { "https" } else { "http" };
    let advertise = config
        .advertise
        .clone()
        .unwrap_or_else(|| advertised(quic_addr).to_string());
    // `token create` reads this to put the right address into join strings.
    std::fs::write(config.data_dir.join("advertise"), &advertise)?;

    let admin_token = identity.admin_token.clone();
    let ca_fingerprint = identity.ca_fingerprint();
    let ingest = Arc::new(Ingest::new(
        store.clone(),
        identity,
        IngestConfig {
            node_prefix: config.node_prefix.clone(),
            sample_interval: config.sample_interval,
            handshake_timeout: config.handshake_timeout,
            admissions_per_second: config.admissions_per_second,
        },
        writer,
        catalog,
        counters,
    ));

    // One line on stdout for scripts and tests; the rest goes to the log.
    // Whoever started us may have stopped reading stdout: a closed pipe is
    // no reason to stop serving, so write errors are ignored.
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(
        stdout,
        "suanli-aggregator listening quic={quic_addr} {scheme}={http_addr}"
    );
    if created {
        let _ = writeln!(
            stdout,
            "新节点已创建 / new node created in {dir}\n\
             CA fingerprint: {ca_fingerprint}\n\
             注册主机 / enroll a host:\n  \
             suanli-aggregator provider create --data-dir {dir} --name NAME --uscc CODE --region CODE --industry CODE\n  \
             suanli-aggregator token create --data-dir {dir} --provider <code from provider create>\n  \
             suanli-agent join <join string>",
            dir = config.data_dir.display(),
        );
    }
    let _ = writeln!(
        stdout,
        "控制台 / dashboard: {scheme}://{}/ui/  (login admin{})\n\
         API: {scheme}://{http_addr}/api/v1/openapi.json  (Authorization: Bearer $(cat {})){}",
        advertised(http_addr),
        if initial_password {
            format!(
                ", password in {}",
                config.data_dir.join("admin.password").display()
            )
        } else {
            String::new()
        },
        config.data_dir.join("admin.token").display(),
        if matches!(config.http_tls, HttpTls::NodeCa { .. }) {
            format!(
                "\n证书由节点 CA 签发，浏览器需信任 {} / the certificate is signed by the node CA: trust {}",
                config.data_dir.join("ca.pem").display(),
                config.data_dir.join("ca.pem").display()
            )
        } else {
            String::new()
        }
    );
    let _ = stdout.flush();
    drop(stdout);

    let (shutdown_tx, shutdown) = watch::channel(false);
    let accept = tokio::spawn(crate::ingest::accept(
        endpoint.clone(),
        ingest.clone(),
        shutdown.clone(),
    ));
    let revocations = tokio::spawn(watch_revocations(ingest.clone(), shutdown.clone()));
    let latency = tokio::spawn(keep_region_latency(
        ingest.clone(),
        config.local_region.to_string(),
        config.rollup_retention,
        shutdown.clone(),
    ));
    let retention = tokio::spawn(retain(
        store.clone(),
        config.raw_retention,
        config.rollup_retention,
        shutdown.clone(),
    ));
    let network = api::load_network(&store, config.public_network)
        .await
        .context("loading dedicated lines")?;
    let api_state = Arc::new(ApiState {
        ingest: ingest.clone(),
        admin_token,
        advertise: advertise.clone(),
        ca_fingerprint: ca_fingerprint.clone(),
        started: std::time::Instant::now(),
        network: std::sync::RwLock::new(network),
        local_region: config.local_region.to_string(),
    });
    // On PostgreSQL other replicas may serve this node too.
    let peers = (store.backend() == Backend::Postgres)
        .then(|| tokio::spawn(crate::replica::follow(api_state.clone(), shutdown.clone())));
    let mut http_shutdown = shutdown.clone();
    let app = api::router(api_state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    let stopped = async move {
        let _ = http_shutdown.changed().await;
    };
    let http_task = match http_tls {
        None => {
            tokio::spawn(
                async move { axum::serve(http, app).with_graceful_shutdown(stopped).await },
            )
        }
        Some(tls) => {
            // `tap_io` is what gives a custom listener the peer address.
            let listener = TlsListener::new(http, tls)?.tap_io(|_| ());
            tokio::spawn(async move {
                axum::serve(listener, app)
                    .with_graceful_shutdown(stopped)
                    .await
            })
        }
    };

    let local_agent = if options.with_local_agent {
        let command = prepare_local_agent(&config, &options, &store, &advertise, &ca_fingerprint)
            .await
            .context("enrolling the local agent")?;
        Some(tokio::spawn(supervise(command, shutdown.clone())))
    } else {
        None
    };

    wait_for_signal().await?;
    info!("shutting down");
    let _ = shutdown_tx.send(true);
    if let Some(agent) = local_agent {
        let _ = agent.await;
    }
    ingest.registry.close_all();
    endpoint.close(CloseCode::ShuttingDown.code(), b"aggregator shutting down");
    let _ = accept.await;
    let _ = revocations.await;
    if let Some(peers) = peers {
        let _ = peers.await;
    }
    let _ = retention.await;
    let _ = latency.await;
    let _ = http_task.await;
    drop(ingest);
    // Connections are closed; what the writer already queued commits now,
    // and anything unacknowledged will simply be resent.
    let _ = tokio::time::timeout(Duration::from_secs(5), writer_task).await;
    let _ = tokio::time::timeout(Duration::from_secs(2), endpoint.wait_idle()).await;
    Ok(())
}

pub fn database_url(config: &ServeConfig) -> String {
    config
        .database_url
        .clone()
        .unwrap_or_else(|| Store::sqlite_url(&config.data_dir))
}

/// A URL with any password replaced, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// The address to tell agents: a wildcard listener is reached on loopback
/// from this machine; other machines need `--advertise`.
fn advertised(addr: std::net::SocketAddr) -> std::net::SocketAddr {
    if addr.ip().is_unspecified() {
        let ip = match addr {
            std::net::SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            std::net::SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        };
        std::net::SocketAddr::new(ip, addr.port())
    } else {
        addr
    }
}

async fn wait_for_signal() -> anyhow::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r?,
        _ = term.recv() => {}
    }
    Ok(())
}

/// Once a minute: fold raw samples older than `raw` into rollups (in
/// bounded batches, so ingest keeps its turn at the database) and drop
/// rollups older than `rollups`.
async fn retain(
    store: Store,
    raw: Duration,
    rollups: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        let now = now_ms();
        let cutoff = now.saturating_sub(raw.as_millis() as u64);
        let mut folded = 0;
        loop {
            match store.roll_up(cutoff, 5_000).await {
                Ok(0) => break,
                Ok(n) => folded += n,
                Err(e) => {
                    warn!(error = %e, "rolling up old samples failed");
                    break;
                }
            }
            if *shutdown.borrow() {
                return;
            }
        }
        let expired = store
            .expire_rollups(now.saturating_sub(rollups.as_millis() as u64))
            .await
            .unwrap_or_else(|e| {
                warn!(error = %e, "expiring rollups failed");
                0
            });
        if folded > 0 || expired > 0 {
            info!(folded, expired, "retention");
        }
        if let Err(e) = store.expire_sessions(now).await {
            warn!(error = %e, "expiring sessions failed");
        }
    }
}

/// Once a minute: keep the latency observed from this node to each region
/// (beside the configured table), for as long as rollups are kept.
async fn keep_region_latency(
    ingest: Arc<Ingest>,
    local_region: String,
    keep: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        let now = now_ms();
        let rows = api::observed_latency(&ingest.catalog, &local_region, now);
        if let Err(e) = ingest.store.record_region_latency(&rows).await {
            warn!(error = %e, "could not keep observed region latency");
        }
        if let Err(e) = ingest
            .store
            .expire_region_latency(now.saturating_sub(keep.as_millis() as u64))
            .await
        {
            warn!(error = %e, "could not expire observed region latency");
        }
    }
}

async fn watch_revocations(ingest: Arc<Ingest>, mut shutdown: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(REVOCATION_POLL);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        if ingest.registry.connected() == 0 {
            continue;
        }
        match ingest.store.revoked_hosts().await {
            Ok(revoked) => {
                for host_id in &revoked {
                    ingest.catalog.set_revoked(*host_id);
                }
                let closed = ingest.registry.close_revoked(&revoked);
                if closed > 0 {
                    info!(closed, "closed connections of revoked hosts");
                }
            }
            Err(e) => warn!(error = %e, "could not read revocations"),
        }
    }
}

/// Creates a one-use token for `provider_id`; returns the join string.
pub async fn create_join_string(
    store: &Store,
    provider_id: i64,
    address: &str,
    ca_fingerprint_hex: &str,
    ttl: Duration,
    uses: u64,
    region: Option<&str>,
) -> anyhow::Result<JoinString> {
    let secret = random_secret();
    store
        .create_token(
            provider_id,
            &to_hex(&fingerprint(secret.as_bytes())),
            now_ms().saturating_add(ttl.as_millis() as u64),
            uses,
            region,
        )
        .await?;
    let fp = transport::from_hex(ca_fingerprint_hex)
        .and_then(|v| <[u8; 32]>::try_from(v).ok())
        .context("CA fingerprint")?;
    Ok(JoinString {
        address: address.to_owned(),
        ca_fingerprint: fp,
        token: secret,
    })
}

/// Enrolls this host's agent on first start; returns how to run it.
async fn prepare_local_agent(
    config: &ServeConfig,
    options: &RunOptions,
    store: &Store,
    advertise: &str,
    ca_fingerprint: &str,
) -> anyhow::Result<tokio::process::Command> {
    let binary = match &options.agent_binary {
        Some(path) => path.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("the aggregator binary has no directory")?
            .join("suanli-agent"),
    };
    let state_dir = config.data_dir.join("local-agent");
    if !state_dir.join("agent.json").exists() {
        let provider = local_provider(config, store).await?;
        let join = create_join_string(
            store,
            provider,
            advertise,
            ca_fingerprint,
            Duration::from_secs(600),
            1,
            None,
        )
        .await?;
        let status = tokio::process::Command::new(&binary)
            .arg("join")
            .arg(join.to_string())
            .arg("--state-dir")
            .arg(&state_dir)
            .status()
            .await
            .with_context(|| format!("running {}", binary.display()))?;
        anyhow::ensure!(status.success(), "suanli-agent join failed: {status}");
    }
    let mut command = tokio::process::Command::new(&binary);
    command.arg("run").arg("--state-dir").arg(&state_dir);
    if let Some(interval) = &options.local_agent_interval {
        command.arg("--interval").arg(interval);
    }
    command.kill_on_drop(true);
    // SAFETY: prctl is async-signal-safe; it only asks the kernel to send
    // SIGTERM to the agent if this process dies, so a SIGKILLed aggregator
    // leaves no agent behind.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
    Ok(command)
}

/// Keeps the local agent running until shutdown; an agent that exits (or
/// finds its predecessor still holding the state directory) is started
/// again after a pause.
async fn supervise(mut command: tokio::process::Command, mut shutdown: watch::Receiver<bool>) {
    loop {
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(e) => {
                warn!(error = %e, "cannot start the local agent");
                return;
            }
        };
        info!(pid = child.id(), "local agent started");
        tokio::select! {
            status = child.wait() => {
                warn!(status = ?status.ok(), "local agent exited; starting it again in 1 s");
            }
            _ = shutdown.changed() => {
                // SIGTERM first: the agent syncs its spool and says goodbye.
                if let Some(pid) = child.id() {
                    // SAFETY: kill(2) on our own child's pid.
                    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
                }
                if tokio::time::timeout(Duration::from_secs(5), child.wait()).await.is_err() {
                    let _ = child.start_kill();
                    let _ = child.wait().await;
                }
                return;
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// The provider the node's own machine is registered under: the node
/// operator itself, which has no credit code of its own here.
async fn local_provider(config: &ServeConfig, store: &Store) -> anyhow::Result<i64> {
    if let Ok(p) = store.provider(LOCAL_PROVIDER_USCC).await {
        return Ok(p.id);
    }
    let provider = store
        .create_provider(&NewProvider {
            name: "本节点 / this node".into(),
            uscc: LOCAL_PROVIDER_USCC.into(),
            region: config.local_region.to_string(),
            industry: config.local_industry.to_string(),
            kind: "provider".into(),
            contact: String::new(),
            uscc_verified: false,
        })
        .await?;
    Ok(provider.id)
}

/// On a node with no accounts, creates `admin` with a random password in
/// `admin.password` (0600). Returns whether it did.
async fn bootstrap_admin(config: &ServeConfig, store: &Store) -> anyhow::Result<bool> {
    if store.count_accounts().await? > 0 {
        return Ok(false);
    }
    let password = random_secret()[..20].to_owned();
    let hash = auth::hash_password(&password)
        .map_err(|e| anyhow::anyhow!("hashing the initial password: {e}"))?;
    store
        .create_account(&NewAccount {
            login: "admin".into(),
            password_hash: hash,
            role: auth::Role::Admin.as_str().into(),
            provider_id: None,
        })
        .await?;
    write_private(
        &config.data_dir.join("admin.password"),
        format!("{password}\n").as_bytes(),
    )?;
    Ok(true)
}

/// Stands in the USCC column for the node's own provider. Not a credit code
/// (it is not 18 characters), so it can never collide with a real one.
pub const LOCAL_PROVIDER_USCC: &str = "LOCAL";
