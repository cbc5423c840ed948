//! Command-line interface.

use std::{io::Write, path::PathBuf, time::Duration};

use anyhow::Context;
use clap::{Parser, Subcommand};

use suanli_protocol::join::JoinString;

use crate::{
    DEFAULT_COLLECT_TIMEOUT, Sources,
    collect::HostRoot,
    config::AgentConfig,
    enroll, install, inventory,
    uplink::{self, RunConfig},
};

const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);
const DEFAULT_SPOOL_MAX_MIB: u64 = 512;

#[derive(Debug, Parser)]
#[command(
    name = "suanli-agent",
    version,
    about = "Suanli agent: reads this host's real hardware state"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Collect once and print what this host is and is doing.
    Inventory(InventoryArgs),
    /// Enroll this host with a node, using the join string its staff gave you.
    Join(JoinArgs),
    /// Stream this host's state to its aggregator (what systemd runs).
    Run(RunArgs),
    /// Stop and disable the service and forget this host's enrollment; the
    /// spool of unsent samples is kept unless --purge.
    Uninstall(UninstallArgs),
}

#[derive(Debug, clap::Args)]
pub struct JoinArgs {
    /// suanli://HOST:PORT/?ca=…&token=… from `suanli-aggregator token create`.
    #[arg(value_name = "JOIN_STRING", env = "SUANLI_JOIN")]
    pub join: String,
    #[command(flatten)]
    pub state: StateDir,
    /// Where the host's files are read from: `/`, or the host's root
    /// mounted into a container (e.g. /host).
    #[arg(
        long,
        env = "SUANLI_HOST_ROOT",
        value_name = "DIR",
        default_value = "/"
    )]
    pub host_root: PathBuf,
    /// Then hand the state directory to the service's user and enable and
    /// start `suanli-agent.service` (as root, on a host with the package).
    #[arg(long)]
    pub install: bool,
    /// The service's user, for --install.
    #[arg(long, value_name = "NAME", default_value = install::SERVICE_USER)]
    pub user: String,
}

#[derive(Debug, clap::Args)]
pub struct StateDir {
    /// Where the enrollment and the spool of unsent samples are kept.
    #[arg(
        long,
        env = "SUANLI_STATE_DIR",
        value_name = "DIR",
        default_value = install::STATE_DIR
    )]
    pub state_dir: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct UninstallArgs {
    #[command(flatten)]
    pub state: StateDir,
    /// Also delete the spool of samples not yet acknowledged, and the directory.
    #[arg(long)]
    pub purge: bool,
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Settings file (the package's is /etc/suanli/agent.toml); flags win over it.
    #[arg(long, env = "SUANLI_AGENT_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub state: StateDir,
    /// Sampling interval until the aggregator asks for another (e.g. 5s, 1s, 200ms) [default: 5s].
    #[arg(long, env = "SUANLI_INTERVAL", value_parser = humantime::parse_duration)]
    pub interval: Option<Duration>,
    /// Most disk the spool of unacknowledged samples may take, in MiB [default: 512].
    #[arg(long, env = "SUANLI_SPOOL_MAX_MIB")]
    pub spool_max_mib: Option<u64>,
    /// Load this libnvidia-ml.so instead of the system's.
    #[arg(long, env = "SUANLI_NVML_LIBRARY", value_name = "PATH")]
    pub nvml_library: Option<PathBuf>,
    /// Another vendor's library at PATH: huawei, hygon, amd, iluvatar, … (repeatable;
    /// also SUANLI_<VENDOR>_LIBRARY). Its devices are then read even when the PCI bus does not show them.
    #[arg(long = "accel-library", value_name = "VENDOR=PATH")]
    pub accel_library: Vec<String>,
    /// Where the host's files are read from: `/`, or the host's root
    /// mounted into a container (e.g. /host).
    #[arg(
        long,
        env = "SUANLI_HOST_ROOT",
        value_name = "DIR",
        default_value = "/"
    )]
    pub host_root: PathBuf,
    /// How long a collector may take before it is reported as hung, in milliseconds [default: 2000].
    #[arg(long, value_name = "MS")]
    pub timeout_ms: Option<u64>,
}

#[derive(Debug, clap::Args)]
pub struct InventoryArgs {
    /// Print the full report as canonical proto3 JSON (stdout carries only the document).
    #[arg(long)]
    pub json: bool,
    /// Load this libnvidia-ml.so instead of the system's.
    #[arg(long, env = "SUANLI_NVML_LIBRARY", value_name = "PATH")]
    pub nvml_library: Option<PathBuf>,
    /// Another vendor's library at PATH: huawei, hygon, amd, iluvatar, … (repeatable;
    /// also SUANLI_<VENDOR>_LIBRARY). Its devices are then read even when the PCI bus does not show them.
    #[arg(long = "accel-library", value_name = "VENDOR=PATH")]
    pub accel_library: Vec<String>,
    /// Read /proc, /sys, /etc and /dev under this directory (the host's root mounted in a container).
    /// Where the host's files are read from: `/`, or the host's root
    /// mounted into a container (e.g. /host).
    #[arg(
        long,
        env = "SUANLI_HOST_ROOT",
        value_name = "DIR",
        default_value = "/"
    )]
    pub host_root: PathBuf,
    /// Use this scontrol instead of the one in PATH.
    #[arg(long, value_name = "PATH")]
    pub scontrol: Option<PathBuf>,
    /// Window over which rates and utilization are measured, in milliseconds.
    #[arg(long, default_value_t = 250, value_name = "MS")]
    pub window_ms: u64,
    /// How long a collector may take before it is reported as hung, in milliseconds.
    #[arg(long, default_value_t = DEFAULT_COLLECT_TIMEOUT.as_millis() as u64, value_name = "MS")]
    pub timeout_ms: u64,
}

/// Entry point for the binary.
pub fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // Colours only for a person at a terminal, not in journald or a file.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SUANLI_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    match cli.command {
        Command::Inventory(args) => run_inventory(args),
        Command::Join(args) => runtime()?.block_on(run_join(args)),
        Command::Run(args) => runtime()?.block_on(run_uplink(args)),
        Command::Uninstall(args) => {
            for step in install::uninstall(&args.state.state_dir, args.purge)? {
                println!("{step}");
            }
            Ok(())
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    // One thread: the agent is one connection and a spool, not a server, and
    // every cross-thread wakeup is CPU taken from the provider's host.
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

async fn run_join(args: JoinArgs) -> anyhow::Result<()> {
    let join: JoinString = args.join.parse().context("invalid join string")?;
    // Checked before enrolling, so a host is never enrolled into a
    // directory the service will not run from, or by a user who cannot hand it over.
    let service = if args.install {
        Some(install::Service::check(&args.state.state_dir, &args.user)?)
    } else {
        None
    };
    let enrollment =
        enroll::join(&join, &args.state.state_dir, &HostRoot::at(&args.host_root)).await?;
    println!(
        "已加入 / joined: host {} at {} (state in {})",
        enrollment.host_id,
        enrollment.aggregator,
        args.state.state_dir.display()
    );
    match service {
        Some(service) => {
            for step in service.install(&args.state.state_dir, &enrollment.aggregator)? {
                println!("{step}");
            }
        }
        None => println!(
            "下一步 / next: suanli-agent run --state-dir {}",
            args.state.state_dir.display()
        ),
    }
    Ok(())
}

async fn run_uplink(args: RunArgs) -> anyhow::Result<()> {
    let file = match &args.config {
        Some(path) => AgentConfig::load(path)?,
        None => AgentConfig::default(),
    };
    let interval = match args.interval {
        Some(interval) => interval,
        None => file
            .interval()
            .map_err(anyhow::Error::msg)?
            .unwrap_or(DEFAULT_INTERVAL),
    };
    // The file's libraries first, so a flag or variable for the same vendor wins.
    let mut libraries = crate::accel_libraries(&file.accel_library_flags(), |_| None)
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.config.unwrap_or_default().display()))?;
    libraries.extend(accel_libraries(&args.accel_library)?);
    let config = RunConfig {
        state_dir: args.state.state_dir,
        interval: uplink::check_interval(interval)?,
        spool_max_bytes: args
            .spool_max_mib
            .or(file.spool_max_mib)
            .unwrap_or(DEFAULT_SPOOL_MAX_MIB)
            .saturating_mul(1 << 20),
        sources: Sources {
            root: HostRoot::at(&args.host_root),
            nvml_library: args.nvml_library.or(file.nvml_library.map(PathBuf::from)),
            scontrol: None,
            accel_libraries: libraries,
        },
        collect_timeout: args
            .timeout_ms
            .or(file.timeout_ms)
            .map_or(DEFAULT_COLLECT_TIMEOUT, Duration::from_millis),
    };
    let (tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => return,
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        let _ = tx.send(true);
    });
    uplink::run(config, rx).await
}

fn accel_libraries(
    flags: &[String],
) -> anyhow::Result<std::collections::BTreeMap<suanli_protocol::model::AcceleratorVendor, PathBuf>>
{
    crate::accel_libraries(flags, |key| std::env::var(key).ok()).map_err(anyhow::Error::msg)
}

fn run_inventory(args: InventoryArgs) -> anyhow::Result<()> {
    let sources = Sources {
        root: HostRoot::at(&args.host_root),
        nvml_library: args.nvml_library,
        scontrol: args.scontrol,
        accel_libraries: accel_libraries(&args.accel_library)?,
    };
    let report = inventory::take(
        &sources,
        Duration::from_millis(args.window_ms),
        Duration::from_millis(args.timeout_ms),
    )
    .context("starting collectors")?;
    for problem in &report.problems {
        tracing::info!(collector = %problem.collector, kind = ?problem.kind, "{}", problem.message);
    }
    let text = if args.json {
        inventory::to_json(report).context("encoding the report as JSON")? + "\n"
    } else {
        inventory::summary(&report)
    };
    std::io::stdout()
        .lock()
        .write_all(text.as_bytes())
        .context("writing to stdout")
}
