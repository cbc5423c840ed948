//! The real components some tests run against: a browser, Schemathesis,
//! Alertmanager, an SMTP server, PostgreSQL.
//!
//! Such a test is `#[ignore = "needs …: run .ci/test"]`, so a plain
//! `cargo test --workspace` counts it as ignored, never as passed. `.ci/test`
//! installs and starts the components and runs the ignored tests too; there
//! a component that cannot be found is a failure that says how to get it
//! ([`missing`]). Each test that found its component notes it ([`found`]) in
//! the file `SUANLI_COMPONENT_LOG` names, for the suite's closing report.

use std::{fs::OpenOptions, io::Write};

/// Notes that the running test reached `component` for real.
pub fn found(component: &str) {
    let Some(log) = std::env::var_os("SUANLI_COMPONENT_LOG") else {
        return;
    };
    // libtest names each test's thread after the test.
    let test = std::thread::current()
        .name()
        .unwrap_or("unnamed")
        .to_owned();
    // One short line in one append: concurrent test processes never interleave.
    let line = format!("{component}\t{test}\n");
    let appended = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .and_then(|mut file| file.write_all(line.as_bytes()));
    if let Err(e) = appended {
        panic!("cannot note {component} in {}: {e}", log.display());
    }
}

/// Fails the running test: `component` is not here.
pub fn missing(component: &str, looked_for: &str) -> ! {
    panic!(
        "needs {component} ({looked_for}): run .ci/test, which installs and starts \
         every component the suite needs"
    )
}
