//! The architecture's dependency directions, checked on the real workspace
//! graph (`cargo metadata`): a crate that gains a forbidden dependency,
//! directly or through another crate, fails here with the path that brings
//! it in. ARCHITECTURE.md lists the same rules.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// What each library crate may not depend on, directly or transitively
/// (normal dependencies; dev-dependencies are the tests' business).
const FORBIDDEN: &[(&str, &[&str], &str)] = &[
    (
        "harness-core",
        &[
            "harness-scenario",
            "harness-artifact",
            "harness-oci",
            "harness-engine",
            "harness-capture",
            "harness-tools",
            "harness-labs",
            "harness-e2e",
            "harness-testkit",
            "harness-bench",
            "kube",
            "bollard",
        ],
        "core is the bottom layer: every other crate builds on it",
    ),
    (
        "harness-artifact",
        &[
            "tokio",
            "kube",
            "bollard",
            "reqwest",
            "oci-client",
            "harness-core",
        ],
        "artifact formats are pure: no runtime, no network",
    ),
    (
        "harness-scenario",
        &[
            "tokio",
            "kube",
            "bollard",
            "reqwest",
            "oci-client",
            "hyper",
            "harness-oci",
            "harness-engine",
            "harness-labs",
            "harness-tools",
        ],
        "the scenario language is pure: no runtime, no cluster, no network",
    ),
    (
        "harness-oci",
        &[
            "kube",
            "bollard",
            "harness-scenario",
            "harness-engine",
            "harness-labs",
            "harness-tools",
        ],
        "the OCI client knows registries only",
    ),
    (
        "harness-engine",
        &[
            "bollard",
            "harness-labs",
            "harness-tools",
            "harness-capture",
            "harness-e2e",
            "harness-testkit",
            "harness-bench",
        ],
        "the engine runs plans on any lab and names no lab kind",
    ),
    (
        "harness-tools",
        &[
            "kube",
            "bollard",
            "harness-scenario",
            "harness-oci",
            "harness-engine",
            "harness-labs",
        ],
        "provisioning knows binaries and pins, nothing of labs or scenarios",
    ),
    (
        "harness-labs",
        &["harness-e2e", "harness-testkit", "harness-bench"],
        "labs serve the engine; they do not orchestrate runs",
    ),
    (
        "harness-capture",
        &[
            "bollard",
            "harness-labs",
            "harness-tools",
            "harness-e2e",
            "harness-testkit",
            "harness-bench",
        ],
        "capture reads any lab through the engine's Lab trait and names no lab kind",
    ),
    (
        "harness-e2e",
        &["harness-testkit", "harness-bench"],
        "the orchestration is what users run, never test support",
    ),
];

struct Graph {
    /// package name -> names of its normal (non-dev, non-build) dependencies.
    deps: BTreeMap<String, BTreeSet<String>>,
}

fn metadata() -> Graph {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        // The host's graph only: other platforms' crates are never
        // downloaded here, and the rules are the same on every platform.
        .args(["metadata", "--format-version", "1", "--offline"])
        .args(["--filter-platform", env!("TIDY_HOST_TARGET")])
        .current_dir(&root)
        .output()
        .expect("run cargo metadata");
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: Value = serde_json::from_slice(&out.stdout).expect("cargo metadata is JSON");
    let names: BTreeMap<&str, &str> = meta["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .map(|p| (p["id"].as_str().unwrap(), p["name"].as_str().unwrap()))
        .collect();
    let mut deps = BTreeMap::new();
    for node in meta["resolve"]["nodes"].as_array().expect("resolve.nodes") {
        let name = names[node["id"].as_str().unwrap()].to_string();
        let normal: BTreeSet<String> = node["deps"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| {
                d["dep_kinds"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|k| k["kind"].is_null())
            })
            .map(|d| names[d["pkg"].as_str().unwrap()].to_string())
            .collect();
        deps.entry(name)
            .or_insert_with(BTreeSet::new)
            .extend(normal);
    }
    Graph { deps }
}

impl Graph {
    /// The shortest dependency path from `from` to `to`, if any.
    fn path(&self, from: &str, to: &str) -> Option<Vec<String>> {
        let mut queue = VecDeque::from([vec![from.to_string()]]);
        let mut seen = BTreeSet::from([from.to_string()]);
        while let Some(path) = queue.pop_front() {
            let last = path.last().unwrap();
            for next in self.deps.get(last).into_iter().flatten() {
                if next == to {
                    let mut found = path.clone();
                    found.push(next.clone());
                    return Some(found);
                }
                if seen.insert(next.clone()) {
                    let mut longer = path.clone();
                    longer.push(next.clone());
                    queue.push_back(longer);
                }
            }
        }
        None
    }
}

#[test]
fn crates_keep_their_dependency_directions() {
    let graph = metadata();
    let mut violations = Vec::new();
    for (krate, forbidden, why) in FORBIDDEN {
        assert!(
            graph.deps.contains_key(*krate),
            "{krate} is not in the workspace: update this test and ARCHITECTURE.md together"
        );
        for target in *forbidden {
            if let Some(path) = graph.path(krate, target) {
                violations.push(format!(
                    "{krate} -> {target} ({why}): {}",
                    path.join(" -> ")
                ));
            }
        }
    }
    assert!(
        violations.is_empty(),
        "forbidden dependencies:\n{}",
        violations.join("\n")
    );
}

/// Every crate under harness/ is named by a rule above, so a new crate
/// cannot slip in without deciding its place.
#[test]
fn every_harness_crate_has_a_place() {
    let graph = metadata();
    let ruled: BTreeSet<&str> = FORBIDDEN.iter().map(|(k, _, _)| *k).collect();
    let unruled: Vec<&String> = graph
        .deps
        .keys()
        .filter(|name| name.starts_with("harness-"))
        .filter(|name| {
            !ruled.contains(name.as_str())
                && !["harness-testkit", "harness-bench"].contains(&name.as_str())
        })
        .collect();
    assert!(
        unruled.is_empty(),
        "crates without dependency rules in tests/tidy.rs: {unruled:?}"
    );
}

/// The rules can fail: a graph with a planted back arrow is caught, with
/// the path that brings it in.
#[test]
fn a_planted_back_arrow_is_found() {
    let mut graph = metadata();
    graph
        .deps
        .get_mut("harness-oci")
        .unwrap()
        .insert("harness-labs".into());
    assert_eq!(
        graph.path("harness-engine", "bollard"),
        Some(vec![
            "harness-engine".to_string(),
            "harness-oci".to_string(),
            "harness-labs".to_string(),
            "bollard".to_string()
        ])
    );
}

/// Library crates neither print to stdout nor end the process: that is the
/// CLI's job (xtask), so that every library call can be composed and tested.
#[test]
fn only_the_cli_prints_or_exits() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut offenders = Vec::new();
    for krate in [
        "core", "scenario", "artifact", "oci", "engine", "tools", "labs", "e2e",
    ] {
        let src = root.join(krate).join("src");
        let files = rust_files(&src);
        // A walk that finds nothing would pass vacuously.
        assert!(!files.is_empty(), "no Rust files under {}", src.display());
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            // Only the code before a file's unit tests counts.
            let code = text.split("#[cfg(test)]").next().unwrap_or("");
            for (n, line) in code.lines().enumerate() {
                let line = line.trim_start();
                if line.starts_with("//") {
                    continue;
                }
                // `Progress` (core/src/progress.rs) is the one channel
                // through which library code reports on long work.
                if file.ends_with("core/src/progress.rs") {
                    continue;
                }
                for banned in ["process::exit(", "println!(", "print!(", "eprint!("] {
                    if line.contains(banned) {
                        offenders.push(format!("{}:{}: {line}", file.display(), n + 1));
                    }
                }
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "library code prints or exits (return the text or the code to xtask instead):\n{}",
        offenders.join("\n")
    );
}

/// Every manifest PUT goes through `RegistryClient::put_manifest`, the one
/// path that cannot reach oci-client's panic on a digest PUT answered
/// without `Location` (tests/registry_faults.rs proves both sides). clippy's
/// `disallowed-methods` (clippy.toml) says the same to an editor; this test
/// says it in the suite.
#[test]
fn manifest_puts_go_through_the_guarded_path() {
    let harness = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&harness).unwrap() {
        let src = entry.unwrap().path().join("src");
        if src.is_dir() {
            files.extend(rust_files(&src));
        }
    }
    files.extend(rust_files(&harness.join("../xtask/src")));
    assert!(
        files.len() > 50,
        "the walk found only {} files",
        files.len()
    );
    let mut calls = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for (n, line) in text.lines().enumerate() {
            if line.trim_start().starts_with("//") {
                continue;
            }
            for call in [
                ".push_manifest_raw(",
                ".push_manifest(",
                ".push_manifest_list(",
            ] {
                if line.contains(call) {
                    calls.push(format!("{}:{}", file.display(), n + 1));
                }
            }
        }
    }
    assert_eq!(
        calls.len(),
        1,
        "manifest PUTs outside put_manifest: {calls:#?}"
    );
    assert!(calls[0].contains("oci/src/client.rs"), "{calls:?}");
}

fn rust_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

/// ARCHITECTURE.md's code map keeps up with the tree: every crate has its
/// section, and every source file (but `lib.rs` and `mod.rs`) is named.
#[test]
fn the_code_map_names_every_crate_and_file() {
    let harness = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let map = std::fs::read_to_string(harness.join("../ARCHITECTURE.md")).unwrap();
    let mut missing = Vec::new();
    let mut crates = 0;
    for entry in std::fs::read_dir(&harness).unwrap() {
        let dir = entry.unwrap().path();
        if !dir.join("Cargo.toml").is_file() {
            continue;
        }
        crates += 1;
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        if !map.contains(&format!("### `harness/{name}`")) {
            missing.push(format!("section for harness/{name}"));
        }
        // The fuzz crate keeps its sources in `fuzz_targets/`, as cargo-fuzz wants.
        let sources = ["src", "fuzz_targets"]
            .iter()
            .map(|sub| dir.join(sub))
            .filter(|sub| sub.is_dir())
            .flat_map(|sub| rust_files(&sub));
        for file in sources {
            let base = file.file_name().unwrap().to_string_lossy().into_owned();
            if base == "lib.rs" || base == "mod.rs" {
                continue;
            }
            if !map.contains(&format!("`{base}`")) && !map.contains(&base) {
                missing.push(file.display().to_string());
            }
        }
    }
    // Every rule-bearing crate plus testkit, bench and fuzz: a walk that
    // found fewer would pass vacuously.
    assert_eq!(crates, FORBIDDEN.len() + 3, "crates found under harness/");
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md's code map does not name:\n{}",
        missing.join("\n")
    );
}

/// `harness/fuzz` (cargo-fuzz targets, nightly only) is its own workspace,
/// excluded from this one, so it needs no rule above: nothing in the
/// workspace can depend on it, and it depends only on the two pure crates
/// whose input it feeds.
#[test]
fn the_fuzz_crate_stays_outside_the_workspace() {
    let harness = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let root_manifest = std::fs::read_to_string(harness.join("../Cargo.toml")).unwrap();
    assert!(
        root_manifest.contains(r#"exclude = ["harness/fuzz"]"#),
        "the root Cargo.toml must exclude harness/fuzz"
    );
    assert!(!metadata().deps.contains_key("harness-fuzz"));
    let manifest = std::fs::read_to_string(harness.join("fuzz/Cargo.toml")).unwrap();
    assert!(manifest.lines().any(|l| l.trim() == "[workspace]"));
    let harness_deps: BTreeSet<&str> = manifest
        .lines()
        .filter_map(|l| l.split_once(" = ").map(|(key, _)| key.trim()))
        .filter(|key| key.starts_with("harness-"))
        .collect();
    assert_eq!(
        harness_deps,
        BTreeSet::from(["harness-artifact", "harness-scenario"]),
        "the fuzz targets feed the pure crates only"
    );
}
