//! `serve --with-local-agent`: enrolls an agent for the node's own machine
//! on first start (under the node's own provider) and keeps it running.

use std::{path::PathBuf, time::Duration};

use anyhow::Context;
use tracing::{info, warn};

use crate::{
    config::{RegionSource, ServeConfig},
    node::{Node, tasks::Shutdown},
    service::{
        Actor, providers,
        tokens::{self, TokenRequest},
    },
};

/// How to run the local agent: flags of one run, not configuration.
#[derive(Debug, Clone, Default)]
pub struct LocalAgent {
    /// The agent binary; next to this one by default.
    pub binary: Option<PathBuf>,
    /// The agent's own sampling interval.
    pub interval: Option<String>,
}

/// Enrolls this host's agent on first start; returns how to run it.
pub async fn prepare(
    config: &ServeConfig,
    options: &LocalAgent,
    node: &Node,
    ca_fingerprint: &str,
) -> anyhow::Result<tokio::process::Command> {
    let binary = match &options.binary {
        Some(path) => path.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("the aggregator binary has no directory")?
            .join("suanli-agent"),
    };
    let state_dir = config.data_dir.join("local-agent");
    if !state_dir.join("agent.json").exists() {
        // The region goes into this host's identifiers for good: say where
        // it came from when no one gave it.
        let said = match config.local_region_source {
            RegionSource::Configured => None,
            RegionSource::Prefix => Some("按本节点前缀所在省 / from the node's prefix"),
            RegionSource::Assumed => Some("未配置，按北京 / not configured, assumed Beijing"),
        };
        if let Some(said) = said {
            println!(
                "本机地区 / this host's region: {} ({said})\n  \
                 本机的算力标识含此地区码。不对时：新节点可删除数据目录后加 --local-region CODE 重启 / \
                 this host's identifiers carry it; if wrong on a new node, remove the data directory and start again with --local-region CODE",
                config.local_region,
            );
            warn!(region = %config.local_region, "the local agent's region was not configured: {said}");
        }
        let provider = providers::local(
            &node.store,
            &node.settings.local_region,
            &node.settings.local_industry,
        )
        .await?;
        let join = tokens::create(
            &node.store,
            &Actor::node(),
            TokenRequest {
                provider: &provider,
                address: &node.settings.advertise,
                ca_fingerprint,
                ttl: Duration::from_secs(600),
                uses: 1,
                region: Some(&config.local_region.to_string()),
            },
        )
        .await?
        .join;
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
    if let Some(interval) = &options.interval {
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
pub async fn supervise(mut command: tokio::process::Command, mut shutdown: Shutdown) {
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
            _ = shutdown.wait() => {
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
            _ = shutdown.wait() => return,
        }
    }
}
