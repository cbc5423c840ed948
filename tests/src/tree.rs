//! A tree of nodes for tests and benchmarks: join tokens, join requests
//! and approval through each node's own command line, as staff do it.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use serde_json::Value;

use crate::{Aggregator, wait_until};

/// The operator of every test node (a valid USCC).
pub const OPERATOR_USCC: &str = "91110108551385082Q";
const WAIT: Duration = Duration::from_secs(60);

/// `GET /api/v1/nodes` as staff.
pub fn nodes(node: &Aggregator) -> Value {
    let (status, body) = node.get("/api/v1/nodes");
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap_or(Value::Null)
}

/// A join token from `parent` for a child of `role` at `segment`.
pub fn token(parent: &Aggregator, role: &str, segment: &str, extra: &[&str]) -> String {
    let flag = if role == "regional" {
        "--region"
    } else {
        "--industry"
    };
    let mut args = vec!["node", "token", "create", "--role", role, flag, segment];
    args.extend_from_slice(extra);
    parent.admin_ok(&args)
}

/// `parent join`: the request's id, or the refusal's words.
pub fn request(child: &Aggregator, join: &str) -> Result<i64, String> {
    let out = child.admin(&[
        "parent",
        "join",
        join,
        "--operator-name",
        "测试节点运营方",
        "--operator-uscc",
        OPERATOR_USCC,
    ]);
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let stdout = String::from_utf8(out.stdout).unwrap();
    Ok(stdout
        .split_whitespace()
        .nth(2)
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("no request id in {stdout:?}")))
}

/// Joins `child` to `parent` and waits until the child knows its prefix.
pub fn join(parent: &Aggregator, child: &Aggregator, role: &str, segment: &str) -> String {
    let id = request(child, &token(parent, role, segment, &[])).unwrap();
    let pending = nodes(parent);
    assert!(
        pending["children"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["id"] == id && c["state"] == "pending" && c["link"] == "pending"),
        "{pending:#}"
    );
    let approved = parent.admin_ok(&["node", "approve", &id.to_string()]);
    let prefix = approved.rsplit(' ').next().unwrap().to_owned();
    wait_until(WAIT, "the child to learn its approval", || {
        nodes(child)["parent"]["state"] == "approved" && nodes(child)["prefix"] == prefix.as_str()
    });
    prefix
}
