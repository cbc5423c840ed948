//! `suanli-aggregator serve`: the node's long-running process.
//!
//! Parse, build the [`Node`], start its tasks under one owner, wait for a
//! signal, drain: the agents' QUIC listener, the HTTP API, the periodic
//! jobs (retention, observed latency, revocations), the replica follower on
//! PostgreSQL and, with `--with-local-agent`, an agent for this very host.

use std::{io::Write, path::Path, sync::Arc, time::Duration};

use anyhow::Context;
use axum::serve::ListenerExt;
use suanli_link::{
    files,
    transport::{self, CloseCode, SOCKET_BUFFER_BYTES},
};
use suanli_protocol::identifier::NodePrefix;
use tracing::{info, warn};

use crate::{
    api::{
        self,
        https::{HttpTls, TlsListener},
    },
    auth,
    catalog::Catalog,
    children,
    config::ServeConfig,
    identity::{self, NodeIdentity, random_secret},
    ingest::{self, Ingest, IngestConfig},
    local_agent::{self, LocalAgent},
    market,
    node::{
        Node, NodeEvent, NodeSettings, Parts,
        tasks::{self, Shutdown, Tasks, every},
    },
    notify, parent, replica,
    routing::{Routing, observed_latency},
    service::{
        self,
        alerts::{self, Evaluator},
        filing::OwnFilings,
        hosts,
    },
    store::{Backend, NewAccount, SampleWriter, Store, now_ms},
    telemetry::IngestCounters,
};

/// How often live connections are checked against revocations made
/// elsewhere (the command line, another replica): a revoked host is cut
/// off within this (plus one database read).
const REVOCATION_POLL: Duration = Duration::from_millis(250);
/// Retention and observed latency run this often.
const HOUSEKEEPING: Duration = Duration::from_secs(60);
/// How long each task may take to stop.
const DRAIN_DEADLINE: Duration = Duration::from_secs(5);

fn quic_taken(config: &ServeConfig) -> String {
    format!(
        "listening for agents and child nodes (QUIC) on {}: give another address with --quic-listen",
        config.quic_listen
    )
}

fn http_taken(config: &ServeConfig) -> String {
    format!(
        "listening for HTTP on {}: give another address with --http-listen",
        config.http_listen
    )
}

/// The node's identity for this replica: its data directory's, which must
/// be that of the node the database belongs to. The first replica on a new
/// database creates one and records its CA there. A replica without one
/// on a node's database is refused and told which files to copy; it never
/// makes a CA of its own, which its agents and the other replicas' would
/// distrust.
pub async fn node_identity(data_dir: &Path, store: &Store) -> anyhow::Result<(NodeIdentity, bool)> {
    let dir = data_dir.display();
    let short = |fingerprint: &str| fingerprint.chars().take(16).collect::<String>();
    let missing = |fingerprint: &str| match store.backend() {
        Backend::Postgres => anyhow::anyhow!(
            "this database belongs to a node already (CA {}…) and {dir} holds no identity: \
             a replica joins that node, it does not found another. Copy {} from another \
             replica's data directory into {dir} (`suanli-aggregator replica init --from DIR` \
             checks and copies them), then start again",
            short(fingerprint),
            identity::FILES.join(", ")
        ),
        Backend::Sqlite => anyhow::anyhow!(
            "{dir} holds this node's database (CA {}…) but not its identity: restore {} \
             from a backup of {dir}; a new CA would cut off every enrolled agent",
            short(fingerprint),
            identity::FILES.join(", ")
        ),
    };
    let recorded = store.node_ca().await?;
    if let Some(fingerprint) = &recorded
        && !NodeIdentity::exists(data_dir)
    {
        return Err(missing(fingerprint));
    }
    let (identity, created) = NodeIdentity::load_or_create(data_dir)
        .with_context(|| format!("node identity in {dir}"))?;
    let own = identity.ca_fingerprint();
    let recorded = match recorded {
        Some(recorded) => recorded,
        None => store.record_node_ca(&own).await?,
    };
    if recorded != own && created {
        // Another replica founded the node at the same moment: this one
        // takes nothing of its own, and is told what to copy.
        for file in identity::FILES {
            let _ = std::fs::remove_file(data_dir.join(file));
        }
        return Err(missing(&recorded));
    }
    anyhow::ensure!(
        recorded == own,
        "{dir} holds the identity of another node (CA {}…) than the one this database \
         belongs to (CA {}…): give this replica that node's files ({}) or its own database",
        short(&own),
        short(&recorded),
        identity::FILES.join(", ")
    );
    Ok((identity, created))
}

/// Runs the node until SIGINT or SIGTERM; with `local_agent`, also an
/// agent for this host.
pub async fn run(config: ServeConfig, local_agent: Option<LocalAgent>) -> anyhow::Result<()> {
    // A taken address fails the start before anything is created.
    std::net::UdpSocket::bind(config.quic_listen).with_context(|| quic_taken(&config))?;
    std::net::TcpListener::bind(config.http_listen).with_context(|| http_taken(&config))?;
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating {}", config.data_dir.display()))?;
    let url = database_url(&config);
    let store = Store::open(&url)
        .await
        .with_context(|| format!("opening the database {}", redact(&url)))?;
    let (identity, created) = node_identity(&config.data_dir, &store).await?;
    let mut tasks = Tasks::default();
    let counters = IngestCounters::default();
    let (writer, writing) = SampleWriter::new(store.clone(), counters.clone());
    tasks.spawn_draining("sample writer", writing);
    let catalog = Catalog::load(&store)
        .await
        .context("loading the resource catalog")?;
    let routing = Routing::load(&store, config.public_network)
        .await
        .context("loading dedicated lines")?;
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
    )
    .with_context(|| quic_taken(&config))?;
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
        .with_context(|| http_taken(&config))?;
    let http_addr = http.local_addr()?;
    let http_tls = config.http_tls.server_config(&identity)?;
    let scheme = if http_tls.is_some() { "https" } else { "http" };
    let advertise = config
        .advertise
        .clone()
        .unwrap_or_else(|| advertised(quic_addr).to_string());
    // `token create` reads this to put the right address into join strings.
    std::fs::write(config.data_dir.join("advertise"), &advertise)?;

    let ca_fingerprint = identity.ca_fingerprint();
    // A prefix the parent assigned outlives the configured one.
    let prefix = match store.parent_link().await? {
        Some(link) if link.state == "approved" => link
            .prefix
            .as_deref()
            .and_then(|p| NodePrefix::parse(p).ok())
            .unwrap_or_else(|| config.node_prefix.clone()),
        _ => config.node_prefix.clone(),
    };
    store
        .set_profile(config.role.as_str(), &prefix.to_string())
        .await
        .context("recording the node's role and prefix")?;
    let (node, selections) = Node::new(Parts {
        settings: NodeSettings {
            node_prefix: config.node_prefix.clone(),
            role: config.role,
            sample_interval: config.sample_interval,
            local_region: config.local_region.clone(),
            local_industry: config.local_industry.clone(),
            advertise: advertise.clone(),
            alerts: config.alerts.clone(),
        },
        identity,
        store: store.clone(),
        writer,
        catalog,
        routing,
        counters,
        prefix,
    });
    tasks.spawn_draining(
        "selection record",
        tasks::record_selections(store.clone(), selections),
    );

    // Its name in the claims replicas share, and in the notifications it sends.
    info!(replica = %node.replica, database = %redact(&url), "serving");
    // One line on stdout for scripts and tests; the rest goes to the log.
    // Whoever started us may have stopped reading stdout: a closed pipe is
    // no reason to stop serving, so write errors are ignored.
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(
        stdout,
        "suanli-aggregator listening quic={quic_addr} {scheme}={http_addr}"
    );
    if created {
        // The administrative commands find the node's store as serve does.
        let store_args = match &config.database_url {
            Some(_) => format!(
                "--data-dir {} --database-url <the same URL>",
                config.data_dir.display()
            ),
            None => format!("--data-dir {}", config.data_dir.display()),
        };
        let _ = writeln!(
            stdout,
            "新节点已创建 / new node created in {dir}\n\
             CA fingerprint: {ca_fingerprint}\n\
             注册主机 / enroll a host:\n  \
             suanli-aggregator provider create {store_args} --name NAME --uscc CODE --region CODE --industry CODE\n  \
             suanli-aggregator token create {store_args} --provider <code from provider create>\n  \
             suanli-agent join <join string>\n  \
             suanli-agent run    (或安装为服务 / or as the service: suanli-agent join --install <join string>)",
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

    // Child nodes share the agents' port; their connections are handed over.
    let (node_links, linking) = tokio::sync::mpsc::channel(64);
    let ingest = Arc::new(Ingest::new(
        node.clone(),
        IngestConfig {
            handshake_timeout: config.handshake_timeout,
            admissions_per_second: config.admissions_per_second,
        },
        node_links,
    ));
    tasks.spawn(
        "agent listener",
        ingest::accept(endpoint.clone(), ingest, tasks.shutdown()),
    );
    tasks.spawn(
        "child node listener",
        children::accept(
            node.clone(),
            config.handshake_timeout,
            linking,
            tasks.shutdown(),
        ),
    );
    let own = OwnFilings::load(&node)
        .await
        .context("loading the identifier library")?;
    tasks.spawn("filing", file_own(node.clone(), own, tasks.shutdown()));
    tasks.spawn(
        "parent link",
        parent::run(node.clone(), config.data_dir.clone(), tasks.shutdown()),
    );
    tasks.spawn(
        "market reports",
        report_market(node.clone(), tasks.shutdown()),
    );
    tasks.spawn("holds", keep_holds(node.clone(), tasks.shutdown()));
    tasks.spawn(
        "revocation watch",
        watch_revocations(node.clone(), tasks.shutdown()),
    );
    tasks.spawn(
        "observed latency",
        keep_region_latency(node.clone(), config.rollup_retention, tasks.shutdown()),
    );
    tasks.spawn(
        "retention",
        retain(
            store.clone(),
            config.raw_retention,
            config.rollup_retention,
            tasks.shutdown(),
        ),
    );
    alerts::declare_receivers(&node, &config.alerts.receivers)
        .await
        .context("declaring the receivers of the config file")?;
    let evaluator = Evaluator::start(&node)
        .await
        .context("loading open alerts")?;
    tasks.spawn(
        "monitoring",
        monitor(node.clone(), evaluator, tasks.shutdown()),
    );
    tasks.spawn("notifications", notify::run(node.clone(), tasks.shutdown()));
    // On PostgreSQL other replicas may serve this node too.
    if store.backend() == Backend::Postgres {
        tasks.spawn(
            "replica follower",
            replica::follow(node.clone(), tasks.shutdown()),
        );
    }
    let app =
        api::router(node.clone()).into_make_service_with_connect_info::<std::net::SocketAddr>();
    let mut http_shutdown = tasks.shutdown();
    let stopped = async move { http_shutdown.wait().await };
    match http_tls {
        None => tasks.spawn("http", async move {
            if let Err(e) = axum::serve(http, app).with_graceful_shutdown(stopped).await {
                warn!(error = %e, "HTTP server failed");
            }
        }),
        Some(tls) => {
            // `tap_io` is what gives a custom listener the peer address.
            let listener = TlsListener::new(http, tls)?.tap_io(|_| ());
            tasks.spawn("https", async move {
                if let Err(e) = axum::serve(listener, app)
                    .with_graceful_shutdown(stopped)
                    .await
                {
                    warn!(error = %e, "HTTPS server failed");
                }
            });
        }
    }
    if let Some(options) = local_agent {
        let command = local_agent::prepare(&config, &options, &node, &ca_fingerprint)
            .await
            .context("enrolling the local agent")?;
        tasks.spawn(
            "local agent",
            local_agent::supervise(command, tasks.shutdown()),
        );
    }

    wait_for_signal().await?;
    info!("shutting down");
    // Every task first, the last started first: the local agent says
    // goodbye over its connection before the connections are cut.
    tasks.join(DRAIN_DEADLINE).await;
    node.registry.close_all();
    endpoint.close(CloseCode::ShuttingDown.code(), b"aggregator shutting down");
    // Connections are closed; what the writer already queued commits once
    // the node is gone, and anything unacknowledged will simply be resent.
    drop(node);
    tasks.drain(DRAIN_DEADLINE).await;
    let _ = tokio::time::timeout(Duration::from_secs(2), endpoint.wait_idle()).await;
    Ok(())
}

pub fn database_url(config: &ServeConfig) -> String {
    config
        .database_url
        .clone()
        .unwrap_or_else(|| Store::sqlite_url(&config.data_dir))
}

/// A URL with any password replaced, for messages: the userinfo's (up to
/// the authority's last `@`, so a password holding an unencoded `@` is
/// hidden whole) and a `password=` query parameter's.
pub fn redact(url: &str) -> String {
    let Some(scheme) = url.find("://") else {
        return url.to_owned();
    };
    let (head, rest) = url.split_at(scheme + 3);
    let (location, query) = match rest.split_once('?') {
        Some((location, query)) => (location, Some(query)),
        None => (rest, None),
    };
    let authority_end = location.find('/').unwrap_or(location.len());
    let mut out = head.to_owned();
    match location[..authority_end].rfind('@') {
        Some(at) => {
            match location[..at].split_once(':') {
                Some((user, _)) => out.push_str(&format!("{user}:***")),
                None => out.push_str(&location[..at]),
            }
            out.push_str(&location[at..]);
        }
        None => out.push_str(location),
    }
    if let Some(query) = query {
        let params: Vec<String> = query
            .split('&')
            .map(|p| match p.split_once('=') {
                Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=***"),
                _ => p.to_owned(),
            })
            .collect();
        out.push('?');
        out.push_str(&params.join("&"));
    }
    out
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

/// Evaluates the monitoring rules every interval.
async fn monitor(node: Arc<Node>, mut evaluator: Evaluator, mut shutdown: Shutdown) {
    let mut tick = tokio::time::interval(node.settings.alerts.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.wait() => return,
        }
        if let Err(e) = evaluator.evaluate(&node, now_ms()).await {
            warn!(error = %e, "evaluating the monitoring rules failed");
        }
    }
}

/// Folds raw samples older than `raw` into rollups (in bounded batches,
/// so ingest keeps its turn at the database) and drops rollups older than
/// `rollups`; expires sessions.
async fn retain(store: Store, raw: Duration, rollups: Duration, shutdown: Shutdown) {
    let stopping = shutdown.clone();
    every(HOUSEKEEPING, shutdown, || async {
        let now = now_ms();
        let cutoff = now.saturating_sub(raw.as_millis() as u64);
        let mut folded = 0;
        let rolled_up = loop {
            match store.roll_up(cutoff, 5_000).await {
                Ok(0) => break true,
                Ok(n) => folded += n,
                Err(e) => {
                    warn!(error = %e, "rolling up old samples failed");
                    break false;
                }
            }
            if stopping.is_set() {
                return;
            }
        };
        // Whole hours before the cutoff make hourly rollups (a first start
        // after an upgrade makes every hour kept, a page of hosts at a
        // time). A sample rolled up later into an hour already made (it
        // arrived late, or waited behind younger rows) makes it again.
        let mut hours = 0;
        // Only once the rollup above went through: an hour made without
        // minutes that failed to fold in would stay without them.
        if rolled_up {
            loop {
                match store.make_hourly(cutoff).await {
                    Ok(true) => hours += 1,
                    Ok(false) => break,
                    Err(e) => {
                        warn!(error = %e, "making hourly rollups failed");
                        break;
                    }
                }
                if stopping.is_set() {
                    return;
                }
            }
        }
        let expired = store
            .expire_rollups(now.saturating_sub(rollups.as_millis() as u64))
            .await
            .unwrap_or_else(|e| {
                warn!(error = %e, "expiring rollups failed");
                0
            });
        if folded > 0 || expired > 0 || hours > 0 {
            info!(folded, hours, expired, "retention");
        }
        if let Err(e) = store.prune_reports(now).await {
            warn!(error = %e, "pruning market reports failed");
        }
        if let Err(e) = store
            .prune_api_calls(now.saturating_sub(market::retention_ms(market::HOURLY_MS)))
            .await
        {
            warn!(error = %e, "pruning API call counts failed");
        }
        if let Err(e) = store.expire_sessions(now).await {
            warn!(error = %e, "expiring sessions failed");
        }
    })
    .await;
}

/// Keeps the latency observed from this node to each region (beside the
/// configured table), for as long as rollups are kept.
async fn keep_region_latency(node: Arc<Node>, keep: Duration, shutdown: Shutdown) {
    let from = node.settings.local_region.to_string();
    every(HOUSEKEEPING, shutdown, || async {
        let now = now_ms();
        let rows = observed_latency(&node.catalog, &from, now);
        if let Err(e) = node.store.record_region_latency(&rows).await {
            warn!(error = %e, "could not keep observed region latency");
        }
        if let Err(e) = node
            .store
            .expire_region_latency(now.saturating_sub(keep.as_millis() as u64))
            .await
        {
            warn!(error = %e, "could not expire observed region latency");
        }
    })
    .await;
}

/// How often this node's own identifiers are reconciled with the library
/// when no change announced itself (an inventory change does at once).
const FILING_SWEEP: Duration = Duration::from_secs(10);
/// How long changes gather before this node's identifiers are reconciled.
const FILING_COALESCE: Duration = Duration::from_millis(100);

/// Files this node's own identifiers into its library as they change.
async fn file_own(node: Arc<Node>, mut own: OwnFilings, mut shutdown: Shutdown) {
    let mut events = node.subscribe();
    let mut sweep = tokio::time::interval(FILING_SWEEP);
    loop {
        tokio::select! {
            _ = shutdown.wait() => return,
            _ = sweep.tick() => {}
            event = events.recv() => match event {
                Ok(NodeEvent::PrefixAssigned) => {
                    if let Err(e) = own.reload(&node).await {
                        warn!(error = %e, "could not reload the identifier library");
                    }
                }
                Ok(NodeEvent::InventoryChanged { .. } | NodeEvent::Enrolled { .. } | NodeEvent::Revoked { .. })
                | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Ok(_) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            },
        }
        // A reconciliation looks at the whole fleet: a burst of changes (a
        // returning fleet's inventories) becomes one.
        tokio::time::sleep(FILING_COALESCE).await;
        loop {
            match events.try_recv() {
                Ok(NodeEvent::PrefixAssigned) => {
                    if let Err(e) = own.reload(&node).await {
                        warn!(error = %e, "could not reload the identifier library");
                    }
                }
                Ok(_) | Err(tokio::sync::broadcast::error::TryRecvError::Lagged(_)) => {}
                Err(_) => break,
            }
        }
        if let Err(e) = own.reconcile(&node).await {
            warn!(error = %e, "could not file this node's identifiers");
        }
    }
}

/// How often this node's own market report is made: twice a period, so
/// that no period is skipped however the ticks fall.
const MARKET_TICK: Duration = Duration::from_millis(market::RESOURCE_PERIOD_MS / 2);

/// Reports this node's own figures each period (市场监测).
async fn report_market(node: Arc<Node>, shutdown: Shutdown) {
    // The period each stream last reported, and the hour whose rollups
    // were last made; one tick at a time.
    let last = tokio::sync::Mutex::new((None, std::collections::BTreeMap::new(), None));
    every(MARKET_TICK, shutdown, || async {
        let mut last = last.lock().await;
        let now = now_ms();
        match service::market::report_own(&node, last.0, now).await {
            Ok(period) => last.0 = Some(period),
            Err(e) => warn!(error = %e, "could not store this node's market report"),
        }
        if let Err(e) = service::market::store_api_calls(&node).await {
            warn!(error = %e, "could not store the API's call counts");
        }
        if let Err(e) = service::market::report_hourly(&node, &mut last.1, now).await {
            warn!(error = %e, "could not store this node's hourly market reports");
        }
        // Once an hour, a minute after it begins (and once at start).
        let hour = market::period_start(
            now.saturating_sub(service::market::ROLLUP_SETTLE_MS),
            market::HOURLY_MS,
        );
        if last.2 != Some(hour) {
            match service::market::roll_up(&node, now).await {
                Ok(_) => last.2 = Some(hour),
                Err(e) => warn!(error = %e, "could not store this node's market rollups"),
            }
        }
    })
    .await;
}

/// How often holds are expired and the catalog's holds re-read (those
/// another replica made included).
const HOLDS_TICK: Duration = Duration::from_secs(1);

/// Ends holds at their time, by this node's own clock.
async fn keep_holds(node: Arc<Node>, shutdown: Shutdown) {
    every(HOLDS_TICK, shutdown, || async {
        if let Err(e) = service::reservations::refresh(&node).await {
            warn!(error = %e, "could not expire holds");
        }
    })
    .await;
}

/// Applies revocations made outside this process.
async fn watch_revocations(node: Arc<Node>, shutdown: Shutdown) {
    every(REVOCATION_POLL, shutdown, || async {
        if node.registry.connected() == 0 {
            return;
        }
        match node.store.revoked_hosts().await {
            Ok(revoked) => {
                let closed = hosts::apply_revoked(&node, &revoked);
                if closed > 0 {
                    info!(closed, "closed connections of revoked hosts");
                }
            }
            Err(e) => warn!(error = %e, "could not read revocations"),
        }
    })
    .await;
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
            must_change_password: true,
        })
        .await?;
    files::write_private(
        &config.data_dir.join("admin.password"),
        format!("{password}\n").as_bytes(),
    )?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn a_database_password_never_reaches_a_message() {
        for (url, shown) in [
            (
                "postgres://suanli:s3cret@db:5432/suanli",
                "postgres://suanli:***@db:5432/suanli",
            ),
            (
                "postgres://suanli:p@ss@db/suanli",
                "postgres://suanli:***@db/suanli",
            ),
            (
                "postgres://db/suanli?user=suanli&password=s3cret&sslmode=require",
                "postgres://db/suanli?user=suanli&password=***&sslmode=require",
            ),
            (
                "sqlite:///var/lib/suanli/suanli.db",
                "sqlite:///var/lib/suanli/suanli.db",
            ),
            ("postgres://suanli@db/suanli", "postgres://suanli@db/suanli"),
        ] {
            assert_eq!(redact(url), shown);
        }
    }
}
