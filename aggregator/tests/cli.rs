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
