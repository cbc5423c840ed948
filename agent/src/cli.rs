//! Command-line interface.

use std::{io::Write, path::PathBuf, time::Duration};

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::{DEFAULT_COLLECT_TIMEOUT, Sources, collect::HostRoot, inventory};

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
}

#[derive(Debug, clap::Args)]
pub struct InventoryArgs {
    /// Print the full report as canonical proto3 JSON (stdout carries only the document).
    #[arg(long)]
    pub json: bool,
    /// Load this libnvidia-ml.so instead of the system's.
    #[arg(long, env = "SUANLI_NVML_LIBRARY", value_name = "PATH")]
    pub nvml_library: Option<PathBuf>,
    /// Read /proc, /sys, /etc and /dev under this directory (the host's root mounted in a container).
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
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SUANLI_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    match cli.command {
        Command::Inventory(args) => run_inventory(args),
    }
}

fn run_inventory(args: InventoryArgs) -> anyhow::Result<()> {
    let sources = Sources {
        root: HostRoot::at(&args.host_root),
        nvml_library: args.nvml_library,
        scontrol: args.scontrol,
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
