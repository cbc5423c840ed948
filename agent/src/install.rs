//! `join --install` and `uninstall`: the agent as the packaged systemd service.
//!
//! The package installs the unit but enables nothing; joining is the moment
//! a host becomes a provider's, so that is when the service starts. Where
//! systemd is not PID 1 (a container, an old init) the state directory is
//! still handed over and the output says how to start the agent instead.
//!
//! The unit denies every IP address but localhost; joining knows whom the
//! agent talks to (its aggregator, the resolvers, Slurm's controllers for
//! `scontrol`) and writes exactly those into a drop-in.

use std::{
    collections::BTreeSet,
    fs,
    net::{IpAddr, ToSocketAddrs},
    os::unix::fs::{PermissionsExt, lchown},
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, bail, ensure};

/// Where the packaged unit keeps the enrollment and the spool.
pub const STATE_DIR: &str = "/var/lib/suanli-agent";
/// The user the package's sysusers file creates.
pub const SERVICE_USER: &str = "suanli-agent";
const UNIT: &str = "suanli-agent.service";
/// Opens the unit's `IPAddressDeny=any` to the agent's peers.
const NETWORK_DROP_IN: &str = "/etc/systemd/system/suanli-agent.service.d/50-network.conf";
const SLURM_CONFS: &[&str] = &["/etc/slurm/slurm.conf", "/etc/slurm-llnl/slurm.conf"];
/// The files `join` writes; the spool is the rest of the directory.
const ENROLLMENT_FILES: &[&str] = &["agent.json", "agent.key", "agent.pem", "ca.pem", "lock"];

/// The service an enrollment will be handed to, checked before enrolling so
/// a refused install never spends the join token.
#[derive(Debug)]
pub struct Service {
    user: String,
    uid: u32,
    gid: u32,
}

impl Service {
    pub fn check(state_dir: &Path, user: &str) -> anyhow::Result<Self> {
        ensure!(
            state_dir == Path::new(STATE_DIR),
            "--install enrolls into the service's state directory {STATE_DIR}, not {}",
            state_dir.display()
        );
        // SAFETY: geteuid has no preconditions and cannot fail.
        let euid = unsafe { libc::geteuid() };
        ensure!(
            euid == 0,
            "--install needs root: it hands {STATE_DIR} to {user} and starts {UNIT}"
        );
        let passwd = fs::read_to_string("/etc/passwd").context("reading /etc/passwd")?;
        let Some((uid, gid)) = account(&passwd, user) else {
            bail!(
                "no user {user:?}: install the suanli-agent package (or run install.sh) first, \
                 which creates it"
            );
        };
        Ok(Self {
            user: user.to_owned(),
            uid,
            gid,
        })
    }

    /// Hands the state directory to the service's user, lets the unit reach
    /// `aggregator` (`host:port`), then enables and starts it. Returns what
    /// it did, a line each.
    pub fn install(&self, state_dir: &Path, aggregator: &str) -> anyhow::Result<Vec<String>> {
        let mut done = Vec::new();
        fs::set_permissions(state_dir, fs::Permissions::from_mode(0o700))
            .with_context(|| format!("chmod 0700 {}", state_dir.display()))?;
        for path in tree(state_dir)? {
            lchown(&path, Some(self.uid), Some(self.gid))
                .with_context(|| format!("chown {} {}", self.user, path.display()))?;
        }
        done.push(format!(
            "{} 属于 / is owned by {} (0700)",
            state_dir.display(),
            self.user
        ));
        let (allowed, unresolved) = peers(aggregator);
        let path = Path::new(NETWORK_DROP_IN);
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        fs::write(path, drop_in(&allowed)).with_context(|| format!("writing {NETWORK_DROP_IN}"))?;
        let list: Vec<String> = allowed.iter().map(IpAddr::to_string).collect();
        done.push(format!(
            "{NETWORK_DROP_IN}: 仅允许访问 / may reach only {} (and localhost)",
            list.join(" ")
        ));
        for (name, why) in unresolved {
            done.push(format!(
                "未能解析 / could not resolve {name} ({why}): add its address to {NETWORK_DROP_IN}"
            ));
        }
        if systemd_running() {
            systemctl(&["daemon-reload"])?;
            // `enable --now` is newer than CentOS 7's systemd 219.
            systemctl(&["enable", UNIT])?;
            systemctl(&["start", UNIT])?;
            done.push(format!("已启用并启动 / enabled and started {UNIT}"));
        } else {
            done.push(format!(
                "systemd 未运行，请用本机的进程管理启动 / systemd is not running here; \
                 run `suanli-agent run --config /etc/suanli/agent.toml` as {} under this host's supervisor",
                self.user
            ));
        }
        Ok(done)
    }
}

/// Stops and disables the unit and forgets the enrollment. The spool stays
/// unless `purge`: samples nobody has acknowledged are the provider's to drop.
pub fn uninstall(state_dir: &Path, purge: bool) -> anyhow::Result<Vec<String>> {
    let mut done = Vec::new();
    if systemd_running() {
        systemctl(&["stop", UNIT])?;
        systemctl(&["disable", UNIT])?;
        done.push(format!("已停止并禁用 / stopped and disabled {UNIT}"));
    }
    match fs::remove_file(NETWORK_DROP_IN) {
        Ok(()) => {
            if let Some(dir) = Path::new(NETWORK_DROP_IN).parent() {
                // Only if empty: other drop-ins there are the admin's.
                let _ = fs::remove_dir(dir);
            }
            done.push(format!("已删除 / removed {NETWORK_DROP_IN}"));
            if systemd_running() {
                systemctl(&["daemon-reload"])?;
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("removing {NETWORK_DROP_IN}")),
    }
    done.extend(forget(state_dir, purge)?);
    Ok(done)
}

/// Removes the enrollment, and with `purge` the spool and the directory.
fn forget(state_dir: &Path, purge: bool) -> anyhow::Result<Option<String>> {
    if purge {
        match fs::remove_dir_all(state_dir) {
            Ok(()) => return Ok(Some(format!("已删除 / removed {}", state_dir.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("removing {}", state_dir.display())),
        }
    }
    let mut removed = 0;
    for name in ENROLLMENT_FILES {
        match fs::remove_file(state_dir.join(name)) {
            Ok(()) => removed += 1,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("removing {name}")),
        }
    }
    Ok((removed > 0).then(|| {
        format!(
            "已删除本机注册信息，保留未发送样本 / removed this host's enrollment from {}; \
             the spool is kept (--purge removes it)",
            state_dir.display()
        )
    }))
}

/// Every address the agent needs besides localhost: the aggregator's, the
/// resolvers' (to look the aggregator up again) and Slurm's controllers'.
/// Names that do not resolve come back with the reason.
fn peers(aggregator: &str) -> (BTreeSet<IpAddr>, Vec<(String, String)>) {
    let mut allowed = BTreeSet::new();
    let mut unresolved = Vec::new();
    let mut resolve = |target: String, name: String| match target.to_socket_addrs() {
        Ok(addresses) => allowed.extend(addresses.map(|a| a.ip())),
        Err(e) => unresolved.push((name, e.to_string())),
    };
    resolve(aggregator.to_owned(), aggregator.to_owned());
    for controller in SLURM_CONFS
        .iter()
        .filter_map(|path| fs::read_to_string(path).ok())
        .flat_map(|text| slurm_controllers(&text))
    {
        // An IPv6 literal needs brackets to take a port.
        let target = match controller.parse::<IpAddr>() {
            Ok(IpAddr::V6(v6)) => format!("[{v6}]:0"),
            _ => format!("{controller}:0"),
        };
        resolve(target, controller);
    }
    allowed.extend(
        fs::read_to_string("/etc/resolv.conf")
            .map(|text| nameservers(&text))
            .unwrap_or_default(),
    );
    allowed.retain(|ip| !ip.is_loopback());
    (allowed, unresolved)
}

fn nameservers(resolv_conf: &str) -> Vec<IpAddr> {
    resolv_conf
        .lines()
        .filter_map(|line| line.trim().strip_prefix("nameserver"))
        // A link-local server may carry a zone (`fe80::1%eth0`).
        .filter_map(|rest| rest.trim().split('%').next()?.parse().ok())
        .collect()
}

/// The controllers `scontrol` connects to, from slurm.conf: `SlurmctldHost`
/// (`name` or `name(address)`), or the older `ControlMachine`/`ControlAddr`
/// and their backups.
fn slurm_controllers(slurm_conf: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in slurm_conf.lines() {
        let line = line.split('#').next().unwrap_or_default().trim();
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = value.trim();
        match key.trim().to_ascii_lowercase().as_str() {
            "slurmctldhost" => {
                let host = match value.split_once('(') {
                    Some((_, address)) => address.trim_end_matches(')'),
                    None => value,
                };
                out.push(host.trim().to_owned());
            }
            "controlmachine" | "controladdr" | "backupcontroller" | "backupaddr" => {
                out.push(value.to_owned());
            }
            _ => {}
        }
    }
    out.retain(|host| !host.is_empty());
    out
}

fn drop_in(allowed: &BTreeSet<IpAddr>) -> String {
    let list: Vec<String> = allowed.iter().map(IpAddr::to_string).collect();
    format!(
        "# Written by `suanli-agent join --install`: the unit denies every IP address\n\
         # but localhost, and this opens it to the agent's aggregator, the resolvers in\n\
         # /etc/resolv.conf and Slurm's controllers. Join again (or edit this) if one\n\
         # of them moves; `suanli-agent uninstall` removes it.\n\
         [Service]\n\
         IPAddressAllow={}\n",
        list.join(" ")
    )
}

/// `name`'s uid and gid from passwd(5) text.
fn account(passwd: &str, name: &str) -> Option<(u32, u32)> {
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        (fields.next()? == name).then_some(())?;
        let _password = fields.next()?;
        Some((fields.next()?.parse().ok()?, fields.next()?.parse().ok()?))
    })
}

/// The directory and everything under it, without following links.
fn tree(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = vec![dir.to_owned()];
    let mut next = 0;
    while next < out.len() {
        let path = out[next].clone();
        next += 1;
        let meta = fs::symlink_metadata(&path).with_context(|| format!("{}", path.display()))?;
        if meta.is_dir() {
            for entry in fs::read_dir(&path).with_context(|| format!("{}", path.display()))? {
                out.push(entry?.path());
            }
        }
    }
    Ok(out)
}

fn systemd_running() -> bool {
    // sd_booted(3): systemd is PID 1 exactly when this directory exists.
    Path::new("/run/systemd/system").is_dir()
}

fn systemctl(args: &[&str]) -> anyhow::Result<()> {
    let output = Command::new("systemctl")
        .args(args)
        .output()
        .context("running systemctl")?;
    ensure!(
        output.status.success(),
        "systemctl {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr).trim()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_are_read_from_passwd() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\n\
                      suanli-agent:x:995:993:Suanli agent:/var/lib/suanli-agent:/usr/sbin/nologin\n";
        assert_eq!(account(passwd, "suanli-agent"), Some((995, 993)));
        assert_eq!(account(passwd, "suanli"), None);
        assert_eq!(account("broken:x:nan:0::/:/bin/sh\n", "broken"), None);
    }

    #[test]
    fn the_network_drop_in_names_only_the_agents_peers() {
        let resolv = "# generated\nnameserver 10.0.0.2\nnameserver fe80::1%eth0\nsearch example\nnameserver 127.0.0.53\n";
        assert_eq!(
            nameservers(resolv),
            ["10.0.0.2", "fe80::1", "127.0.0.53"].map(|a| a.parse::<IpAddr>().unwrap())
        );
        let slurm = "ClusterName=hpc\nSlurmctldHost=ctl1(10.1.0.1)\nSlurmctldHost=ctl2 # backup\n\
                     #SlurmctldHost=old\ncontrolmachine=legacy\nNodeName=gpu[01-08] CPUs=64\n";
        assert_eq!(slurm_controllers(slurm), ["10.1.0.1", "ctl2", "legacy"]);
        let allowed: BTreeSet<IpAddr> = ["192.0.2.10", "2001:db8::1"]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect();
        let text = drop_in(&allowed);
        assert!(
            text.contains("\n[Service]\nIPAddressAllow=192.0.2.10 2001:db8::1\n"),
            "{text}"
        );
    }

    #[test]
    fn peers_are_resolved_and_loopback_left_to_the_unit() {
        let (allowed, unresolved) = peers("127.0.0.1:7443");
        assert!(unresolved.is_empty(), "{unresolved:?}");
        assert!(allowed.iter().all(|ip| !ip.is_loopback()), "{allowed:?}");
    }

    #[test]
    fn install_refuses_another_state_directory_before_enrolling() {
        let e = Service::check(Path::new("/tmp/elsewhere"), SERVICE_USER).unwrap_err();
        assert!(e.to_string().contains(STATE_DIR), "{e}");
    }

    #[test]
    fn uninstall_keeps_the_spool_unless_purged() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        fs::create_dir_all(state.join("spool")).unwrap();
        for name in ENROLLMENT_FILES {
            fs::write(state.join(name), "x").unwrap();
        }
        fs::write(state.join("spool/00000001.seg"), "samples").unwrap();
        assert!(forget(&state, false).unwrap().is_some());
        for name in ENROLLMENT_FILES {
            assert!(!state.join(name).exists(), "{name} left behind");
        }
        assert!(state.join("spool/00000001.seg").exists());
        assert!(forget(&state, true).unwrap().is_some());
        assert!(!state.exists());
        assert!(
            forget(&state, true).unwrap().is_none(),
            "purging twice is fine"
        );
    }
}
