//! Helpers for the end-to-end tests in `tests/tests/`, which run the real
//! binaries as a user would.

use std::path::PathBuf;

/// Path of a workspace binary built by the same `cargo test` run.
///
/// `cargo test --workspace` builds every package's binaries before running
/// any test (the agent and aggregator have integration tests of their own),
/// into the directory above this test executable's `deps/`.
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target directory");
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{} not built; run the tests with `cargo test --workspace`",
        path.display()
    );
    path
}
