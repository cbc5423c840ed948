//! The agent binary's command line.

#![allow(clippy::unwrap_used)]

use std::process::Command;

#[test]
fn help_lists_the_inventory_command() {
    let out = Command::new(env!("CARGO_BIN_EXE_suanli-agent"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("inventory"));
}

#[test]
fn unknown_commands_are_refused() {
    let out = Command::new(env!("CARGO_BIN_EXE_suanli-agent"))
        .arg("explode")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unrecognized subcommand"));
}

#[test]
fn host_root_reads_a_fixture_tree() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let write = |path: &str, text: &str| {
        let p = root.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    write(
        "proc/meminfo",
        "MemTotal:       1024 kB\nMemAvailable:    512 kB\nSwapTotal:         0 kB\nSwapFree:          0 kB\n",
    );
    write(
        "proc/stat",
        "cpu  10 0 10 80 0 0 0 0 0 0\ncpu0 5 0 5 40 0 0 0 0 0 0\ncpu1 5 0 5 40 0 0 0 0 0 0\nbtime 1700000000\n",
    );
    write("proc/sys/kernel/hostname", "fixture-host\n");
    write("etc/machine-id", "0123456789abcdef0123456789abcdef\n");
    write("sys/class/net/eth9/address", "aa:bb:cc:dd:ee:ff\n");
    write("sys/class/net/eth9/mtu", "9000\n");
    write("sys/class/net/eth9/speed", "100000\n");
    write("sys/class/net/eth9/operstate", "up\n");
    write("sys/class/dmi/id/sys_vendor", "Inspur\n");
    write("sys/class/dmi/id/product_name", "NF5688M7\n");
    let out = Command::new(env!("CARGO_BIN_EXE_suanli-agent"))
        .args([
            "inventory",
            "--json",
            "--window-ms",
            "1",
            "--nvml-library",
            "/nonexistent/libnvidia-ml.so.1",
        ])
        .arg("--host-root")
        .arg(root)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let inv = &v["inventory"];
    assert_eq!(inv["hostname"], "fixture-host");
    assert_eq!(inv["machineId"], "0123456789abcdef0123456789abcdef");
    assert_eq!(inv["memoryTotalBytes"], "1048576");
    assert_eq!(inv["cpu"]["logicalCpus"], 2);
    assert_eq!(inv["dmi"]["systemVendor"], "Inspur");
    assert_eq!(inv["dmi"]["productName"], "NF5688M7");
    assert!(
        inv["dmi"].get("productSerial").is_none(),
        "unreadable serial is absent"
    );
    let nic = &inv["networkInterfaces"][0];
    assert_eq!(nic["name"], "eth9");
    assert_eq!(nic["mtu"], 9000);
    assert_eq!(nic["speedMbps"], "100000");
    assert_eq!(nic["macAddress"], "aa:bb:cc:dd:ee:ff");
    assert_eq!(v["sample"]["memory"]["availableBytes"], "524288");
}
