//! Tidy: the layers and habits ARCHITECTURE.md promises, checked on the
//! source text (rust-analyzer's `tidy.rs` is the model). No dependency: the
//! sources are read as text, test modules and comments left out.
//!
//! When a check fails, change the code, or change the rule here and in
//! ARCHITECTURE.md together, on purpose.

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    path::{Path, PathBuf},
};

/// The aggregator's top-level modules by layer (ARCHITECTURE.md, "Layers").
/// A module uses only its own layer or lower ones, without cycles; an edge
/// uses no other edge.
const LAYERS: &[(u8, &str, &[&str])] = &[
    (
        1,
        "core",
        &[
            "i18n",
            "check",
            "accel",
            "fleet",
            "price",
            "identify",
            "history",
            "selection",
            "health",
            "alerting",
            "hierarchy",
            "capacity",
            "market",
        ],
    ),
    (
        2,
        "state",
        &[
            "store",
            "catalog",
            "registry",
            "links",
            "live",
            "routing",
            "telemetry",
            "identity",
            "auth",
            "trends",
        ],
    ),
    (3, "node", &["node"]),
    (4, "operations", &["service"]),
    (
        5,
        "edges",
        &["ingest", "api", "replica", "notify", "parent", "children"],
    ),
    (6, "process", &["run", "local_agent", "cli", "config"]),
];
const EDGES: u8 = 5;
const CORE: u8 = 1;

/// What core modules must not mention: they do no IO, read no clock and
/// run no async.
const NOT_IN_CORE: &[&str] = &[
    "tokio",
    "sqlx",
    "axum",
    "quinn",
    "std::fs",
    "std::net",
    "Instant::now",
    "SystemTime::now",
    "now_ms()",
    "async fn",
];

/// Crates that do IO: `suanli-protocol` depends on none of them.
const IO_CRATES: &[&str] = &[
    "tokio",
    "quinn",
    "quinn-proto",
    "socket2",
    "rustls",
    "sqlx",
    "axum",
    "ring",
];

/// Where the aggregator and the link spawn outside the task owner: code
/// that serves one connection or one request and ends with it.
const SPAWN_PER_CONNECTION: &[&str] = &[
    "aggregator/src/node/tasks.rs",
    "aggregator/src/ingest.rs",
    "aggregator/src/api/status.rs",
    "aggregator/src/api/https.rs",
    "aggregator/src/notify.rs",
    "aggregator/src/children.rs",
    "aggregator/src/parent.rs",
    "protocol/link/src/uplink.rs",
];

/// The only files with `unsafe`, each for a libc call with no safe
/// wrapper in the dependencies, or (`collect/accel/ffi*`) the agent's one
/// place that calls vendor libraries (each site has a SAFETY comment).
const UNSAFE_ALLOWED: &[&str] = &[
    "agent/src/state.rs",
    "agent/src/install.rs",
    "agent/src/collect/accel/ffi.rs",
    "agent/src/collect/accel/ffi/cndev.rs",
    "agent/src/collect/accel/ffi/dcmi.rs",
    "agent/src/collect/accel/ffi/mxsml.rs",
    "agent/src/collect/accel/ffi/rsmi.rs",
    "agent/src/collect/host.rs",
    "agent/src/collect/filesystem.rs",
    "agent/benches/collect.rs",
    "aggregator/src/local_agent.rs",
    "aggregator/src/telemetry.rs",
    "tests/src/lib.rs",
    "tests/src/browser.rs",
    "tests/src/bin/apibench.rs",
    "tests/src/bench.rs",
];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the workspace")
        .to_owned()
}

/// Every tracked-looking `.rs` file under `dir`, relative to the workspace.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            if path.is_dir() {
                if name != "target" && !name.to_string_lossy().starts_with('.') {
                    stack.push(path);
                }
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

fn all_sources() -> Vec<(String, String)> {
    let root = workspace();
    ["protocol", "agent", "aggregator", "tests"]
        .iter()
        .flat_map(|dir| rust_files(&root.join(dir)))
        .map(|path| {
            let rel = path
                .strip_prefix(&root)
                .expect("under the workspace")
                .to_string_lossy()
                .into_owned();
            let text = fs::read_to_string(&path).expect("readable source");
            (rel, text)
        })
        .collect()
}

/// The code of a file: comments dropped, and everything from the first
/// `#[cfg(test)]` on (test modules sit at the end).
fn code(text: &str) -> String {
    let text = text.split("#[cfg(test)]").next().unwrap_or_default();
    text.lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The aggregator's top-level modules a file names through `crate::`.
fn used_modules(code: &str) -> BTreeSet<String> {
    let mut used = BTreeSet::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let after = &rest[at + "crate::".len()..];
        if let Some(group) = after.strip_prefix('{') {
            // `crate::{a, b::{c, d}, e}`: the names at depth 1.
            let mut depth = 0;
            let mut item = String::new();
            for ch in group.chars() {
                match ch {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        used.insert(first_segment(&item));
                        item.clear();
                        continue;
                    }
                    _ => {}
                }
                if depth == 0 {
                    item.push(ch);
                }
            }
            used.insert(first_segment(&item));
        } else {
            used.insert(first_segment(after));
        }
        rest = after;
    }
    used.remove("");
    used.remove("self");
    used
}

fn first_segment(path: &str) -> String {
    path.trim()
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

fn layer_of(module: &str) -> Option<u8> {
    LAYERS
        .iter()
        .find(|(_, _, modules)| modules.contains(&module))
        .map(|(layer, _, _)| *layer)
}

/// The aggregator module a file belongs to: `api/status.rs` is `api`.
fn top_module(rel: &str) -> Option<String> {
    let inside = rel.strip_prefix("aggregator/src/")?;
    let first = inside.split('/').next()?.trim_end_matches(".rs");
    (first != "lib" && first != "main").then(|| first.to_owned())
}

/// module → the modules it uses, for every aggregator source file.
fn aggregator_graph() -> BTreeMap<String, BTreeSet<String>> {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (rel, text) in all_sources() {
        let Some(from) = top_module(&rel) else {
            continue;
        };
        let uses = graph.entry(from.clone()).or_default();
        uses.extend(
            used_modules(&code(&text))
                .into_iter()
                .filter(|m| *m != from),
        );
    }
    graph
}

#[test]
fn every_aggregator_module_is_in_a_layer() {
    let unplaced: Vec<String> = aggregator_graph()
        .keys()
        .filter(|m| layer_of(m).is_none())
        .cloned()
        .collect();
    assert!(
        unplaced.is_empty(),
        "modules in no layer (add them to LAYERS here and in ARCHITECTURE.md): {unplaced:?}"
    );
}

#[test]
fn aggregator_modules_use_only_their_layer_or_lower_and_edges_never_each_other() {
    let mut wrong = Vec::new();
    for (from, uses) in aggregator_graph() {
        let Some(from_layer) = layer_of(&from) else {
            continue;
        };
        for to in uses {
            let Some(to_layer) = layer_of(&to) else {
                wrong.push(format!("{from} uses {to}, which is in no layer"));
                continue;
            };
            if to_layer > from_layer {
                wrong.push(format!(
                    "{from} (layer {from_layer}) uses {to} (layer {to_layer})"
                ));
            } else if from_layer == EDGES && to_layer == EDGES {
                wrong.push(format!("edge {from} uses edge {to}"));
            }
        }
    }
    assert!(wrong.is_empty(), "layer violations:\n{}", wrong.join("\n"));
}

#[test]
fn aggregator_modules_form_no_cycle() {
    let graph = aggregator_graph();
    // Depth-first search; a module met again while still on the path closes a cycle.
    fn visit(
        module: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
        cycles: &mut Vec<String>,
    ) {
        if done.contains(module) {
            return;
        }
        if let Some(at) = path.iter().position(|m| m == module) {
            let mut cycle = path[at..].to_vec();
            cycle.push(module.to_owned());
            cycles.push(cycle.join(" → "));
            return;
        }
        path.push(module.to_owned());
        for next in graph.get(module).into_iter().flatten() {
            visit(next, graph, path, done, cycles);
        }
        path.pop();
        done.insert(module.to_owned());
    }
    let mut cycles = Vec::new();
    let mut done = BTreeSet::new();
    for module in graph.keys() {
        visit(module, &graph, &mut Vec::new(), &mut done, &mut cycles);
    }
    assert!(
        cycles.is_empty(),
        "dependency cycles:\n{}",
        cycles.join("\n")
    );
}

#[test]
fn core_modules_do_no_io_and_read_no_clock() {
    let mut wrong = Vec::new();
    for (rel, text) in all_sources() {
        let Some(module) = top_module(&rel) else {
            continue;
        };
        if layer_of(&module) != Some(CORE) {
            continue;
        }
        let code = code(&text);
        for word in NOT_IN_CORE.iter().filter(|w| code.contains(*w)) {
            wrong.push(format!("{rel}: core module mentions `{word}`"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// The `[dependencies]` crate names of a manifest.
fn dependencies(manifest: &str) -> Vec<String> {
    let text = fs::read_to_string(workspace().join(manifest)).expect("manifest");
    let mut deps = Vec::new();
    let mut in_deps = false;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_deps = line == "[dependencies]";
            continue;
        }
        if in_deps && let Some((name, _)) = line.split_once('=') {
            deps.push(name.trim().trim_end_matches(".workspace").to_owned());
        }
    }
    deps
}

#[test]
fn the_protocol_crate_does_no_io() {
    let deps = dependencies("protocol/Cargo.toml");
    let io: Vec<&String> = deps
        .iter()
        .filter(|d| IO_CRATES.contains(&d.as_str()))
        .collect();
    assert!(
        io.is_empty(),
        "suanli-protocol depends on IO crates: {io:?}"
    );
    let mut wrong = Vec::new();
    for (rel, text) in all_sources() {
        if !rel.starts_with("protocol/src/") {
            continue;
        }
        let code = code(&text);
        for word in ["std::fs", "std::net", "Instant::now", "SystemTime::now"] {
            if code.contains(word) {
                wrong.push(format!("{rel} mentions `{word}`"));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn agent_and_aggregator_never_depend_on_each_other() {
    assert!(
        !dependencies("agent/Cargo.toml").contains(&"suanli-aggregator".to_owned()),
        "the agent depends on the aggregator"
    );
    assert!(
        !dependencies("aggregator/Cargo.toml").contains(&"suanli-agent".to_owned()),
        "the aggregator depends on the agent"
    );
}

#[test]
fn every_file_opens_with_a_module_doc_and_none_is_a_mod_rs() {
    let mut wrong = Vec::new();
    for (rel, text) in all_sources() {
        if rel.contains("/fixtures/") {
            continue;
        }
        if !text.starts_with("//!") {
            wrong.push(format!("{rel}: does not open with a `//!` doc"));
        }
        if rel.ends_with("/mod.rs") {
            wrong.push(format!("{rel}: use `foo.rs` + `foo/`, not `mod.rs`"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn only_the_task_owner_and_per_connection_code_spawn() {
    let mut wrong = Vec::new();
    for (rel, text) in all_sources() {
        let product = rel.starts_with("aggregator/src/") || rel.starts_with("protocol/link/src/");
        if product
            && !SPAWN_PER_CONNECTION.contains(&rel.as_str())
            && code(&text).contains("tokio::spawn")
        {
            wrong.push(format!(
                "{rel}: spawns outside the task owner (aggregator/src/node/tasks.rs)"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn unsafe_only_where_listed() {
    let mut wrong = Vec::new();
    for (rel, text) in all_sources() {
        // Test modules count too: the list is of files.
        let text: String = text
            .lines()
            .filter(|line| !line.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        // Spelled in two parts so this file does not match itself.
        if text.contains(concat!("unsafe", " {")) && !UNSAFE_ALLOWED.contains(&rel.as_str()) {
            wrong.push(format!("{rel}: `unsafe` outside the allowed files"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// ARCHITECTURE.md's layer table, as (layer, modules).
fn documented_layers() -> Vec<(u8, Vec<String>)> {
    let text = fs::read_to_string(workspace().join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let section = text
        .split("\n## Layers")
        .nth(1)
        .expect("ARCHITECTURE.md has a Layers section");
    section
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .filter_map(|row| {
            let cells: Vec<&str> = row.split('|').map(str::trim).collect();
            let layer: u8 = cells.get(1)?.parse().ok()?;
            let modules = cells
                .get(3)?
                .split(',')
                .map(|m| m.trim().trim_matches('`').to_owned())
                .filter(|m| !m.is_empty())
                .collect();
            Some((layer, modules))
        })
        .collect()
}

#[test]
fn architecture_md_has_the_same_layer_table() {
    let here: Vec<(u8, Vec<String>)> = LAYERS
        .iter()
        .map(|(layer, _, modules)| (*layer, modules.iter().map(|m| m.to_string()).collect()))
        .collect();
    assert_eq!(documented_layers(), here);
}

#[test]
fn the_reader_of_uses_finds_grouped_and_inline_paths() {
    let code = "use crate::{a::{B, C}, d, e::f};\nfn x() { crate::g::h(); }\n";
    let used: Vec<String> = used_modules(code).into_iter().collect();
    assert_eq!(used, ["a", "d", "e", "g"]);
}
