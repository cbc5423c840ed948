//! The aggregator binary's command line.

#![allow(clippy::unwrap_used)]

use std::process::Command;

fn run(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_suanli-aggregator"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn a_bad_uscc_is_refused_with_the_reason() {
    let out = run(&["uscc", "check", "91350100M000100Y4"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("invalid code"), "{err}");
}

#[test]
fn a_bad_identifier_is_refused_with_the_reason() {
    let out = run(&["identifier", "check", "not-an-identifier"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid identifier"));
}

#[test]
fn the_default_config_prints_and_checks() {
    let out = run(&["print-default-config"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let table: toml::Table = toml::from_str(&text).unwrap();
    assert_eq!(
        table["ingest"]["quic_listen"].as_str(),
        Some("0.0.0.0:7443"),
        "{text}"
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("aggregator.toml");
    std::fs::write(&file, &text).unwrap();
    let out = run(&["check-config", "--config", file.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A summary staff read, not a debug dump.
    let summary = String::from_utf8(out.stdout).unwrap();
    assert!(summary.contains("configuration is valid"), "{summary}");
    assert!(
        summary.contains("quic_listen       0.0.0.0:7443"),
        "{summary}"
    );
    assert!(!summary.contains("ServeConfig {"), "{summary}");
}

#[test]
fn a_bad_config_lists_every_problem_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("aggregator.toml");
    std::fs::write(
        &file,
        "[node]\nnode_prefix = \"XX\"\nsample_interval = \"soon\"\n",
    )
    .unwrap();
    let out = run(&["check-config", "--config", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("node_prefix") && err.contains("sample_interval"),
        "{err}"
    );

    std::fs::write(&file, "[ingest]\nquic_lisen = \"0.0.0.0:1\"\n").unwrap();
    let out = run(&["check-config", "--config", file.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("quic_lisen"), "{err}");

    // A file that cannot be read is named.
    let out = run(&["check-config", "--config", "/nonexistent/aggregator.toml"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/aggregator.toml"));
}

#[test]
fn a_flat_config_of_earlier_versions_still_checks_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("aggregator.toml");
    std::fs::write(&file, "node_prefix = \"CN.11\"\n").unwrap();
    let out = run(&["check-config", "--config", file.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("move it under [node]"), "{err}");
}
