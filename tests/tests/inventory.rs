//! `suanli-agent inventory --json` on this machine agrees with the OS's own tools.

#![allow(clippy::unwrap_used)]

use std::{collections::BTreeSet, process::Command};

use serde_json::Value;
use suanli_tests::binary;

fn inventory() -> Value {
    let out = Command::new(binary("suanli-agent"))
        .args(["inventory", "--json", "--window-ms", "100"])
        .output()
        .expect("run suanli-agent");
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("stdout is exactly one JSON document")
}

fn tool(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd).args(args).output().expect(cmd);
    assert!(out.status.success(), "{cmd} failed");
    String::from_utf8(out.stdout).unwrap()
}

/// JSON int64/uint64 are strings in the canonical proto3 mapping.
fn u64_field(v: &Value) -> u64 {
    v.as_str()
        .map_or_else(|| v.as_u64().unwrap(), |s| s.parse().unwrap())
}

#[test]
fn memory_total_matches_proc_meminfo() {
    let report = inventory();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap();
    let kib: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next())
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        u64_field(&report["inventory"]["memoryTotalBytes"]),
        kib * 1024
    );
}

#[test]
fn logical_cpus_match_nproc() {
    let report = inventory();
    let nproc: u64 = tool("nproc", &[]).trim().parse().unwrap();
    assert_eq!(
        report["inventory"]["cpu"]["logicalCpus"].as_u64().unwrap(),
        nproc
    );
}

#[test]
fn filesystems_match_df() {
    let report = inventory();
    let ours: BTreeSet<String> = report["inventory"]["filesystems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["mountPoint"].as_str().unwrap().to_owned())
        .collect();
    let df: BTreeSet<String> = tool("df", &["--output=target"])
        .lines()
        .skip(1)
        .map(str::to_owned)
        .collect();
    assert_eq!(ours, df);
}

#[test]
fn interfaces_match_ip_link() {
    let report = inventory();
    let ours: BTreeSet<String> = report["inventory"]["networkInterfaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap().to_owned())
        .collect();
    // `ip -o link` lines look like "2: eth0@if5: <...>": the name ends at '@' or ':'.
    let ip: BTreeSet<String> = tool("ip", &["-o", "link"])
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap().to_owned())
        .collect();
    assert_eq!(ours, ip);
}

#[test]
fn a_host_without_gpus_slurm_or_infiniband_is_normal() {
    let report = inventory();
    // This machine has none of them: each is "unsupported", none is a failure,
    // and the report says so instead of inventing zeros.
    let problems = report["problems"].as_array().cloned().unwrap_or_default();
    for p in &problems {
        assert_ne!(p["kind"], "KIND_FAILED", "{p}");
    }
    let unsupported: BTreeSet<&str> = problems
        .iter()
        .filter(|p| p["kind"] == "KIND_UNSUPPORTED")
        .map(|p| p["collector"].as_str().unwrap())
        .collect();
    assert!(unsupported.contains("nvidia"), "{problems:?}");
    assert!(report["inventory"].get("gpus").is_none());
}

#[test]
fn human_summary_names_the_host() {
    let out = Command::new(binary("suanli-agent"))
        .args(["inventory", "--window-ms", "50"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let hostname = tool("hostname", &[]);
    assert!(
        text.starts_with(&format!("Host        {}", hostname.trim())),
        "{text}"
    );
}

#[test]
fn bad_flags_get_a_clear_error() {
    let out = Command::new(binary("suanli-agent"))
        .args(["inventory", "--window-ms", "soon"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--window-ms"), "{err}");
    assert!(out.stdout.is_empty());
}
