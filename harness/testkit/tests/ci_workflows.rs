//! The GitHub workflows and the composite action, checked on every commit.
//!
//! - actionlint (pinned in harness/tools/src/versions.rs, built from its Go
//!   module by `cargo xtask test`) passes `.github/workflows/*.yml`. Run from
//!   the repository root, it also checks what a `uses: ./` step passes
//!   against action.yml's inputs.
//!   shellcheck (Debian's, installed by the test command) checks the
//!   workflows' `run:` scripts through actionlint, and the action's script,
//!   `.ci/run` and action.yml's `run:` scripts directly.
//! - actionlint really runs: a broken workflow, and a `uses: ./` step with a
//!   misspelt input, make it fail (so a no-op linter could not pass); so
//!   does shellcheck on a script with an unquoted variable.
//! - action.yml itself, which actionlint reads only as a local action's
//!   metadata and does not lint, is checked here: parsed with serde-saphyr,
//!   `runs.using: composite`, every `run` step has a `shell`, every input
//!   the steps use is declared (and every declared one used), no `${{ }}`
//!   pasted into a script, every output
//!   names a step that exists, every script it runs is in the repository.
//!   The same check finds each problem of a broken copy.
//! - Both workflows cache cargo by Cargo.lock and the Go and tool caches by
//!   the version table, and run what docs/ci.md says they run.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use harness_core::progress::Progress;
use harness_tools::versions::{self, GoRecipe};
use harness_tools::{self as tools, ProvisionOptions, Tool};
use serde_json::Value;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the repository root")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn yaml(path: &Path) -> Value {
    serde_saphyr::from_str(&read(path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `.github/workflows/*.yml` and `*.yaml`, sorted.
fn workflow_files() -> Vec<PathBuf> {
    let dir = repo_root().join(".github/workflows");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "yml" || x == "yaml"))
        .collect();
    files.sort();
    files
}

async fn actionlint_binary() -> PathBuf {
    let opts = ProvisionOptions {
        tools: [Tool::Actionlint].into_iter().collect(),
        ..ProvisionOptions::default()
    };
    let toolbox = tools::provision(&opts, &Progress::new())
        .await
        .unwrap_or_else(|e| panic!("actionlint must be provisionable (Go on PATH): {e}"));
    toolbox.path(Tool::Actionlint).to_path_buf()
}

/// Debian's shellcheck, which `cargo xtask test` installs: its absence
/// fails the test rather than passing a check that did not run.
fn shellcheck_binary() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    harness_tools::find_executable("shellcheck", &path).unwrap_or_else(|| {
        panic!(
            "shellcheck is not on PATH; run `cargo xtask test` or `apt-get install -y shellcheck`"
        )
    })
}

/// actionlint on `files`, from `dir` (the project it looks for local
/// actions in), with shellcheck given by path (never whatever else is on
/// PATH) and pyflakes off (no Python steps), so that the result does not
/// depend on the machine.
async fn actionlint(dir: &Path, files: &[PathBuf]) -> (Option<i32>, String) {
    let binary = actionlint_binary().await;
    let mut command = tokio::process::Command::new(&binary);
    command
        .args(["-no-color", "-pyflakes="])
        .arg(format!("-shellcheck={}", shellcheck_binary().display()))
        .args(files)
        .current_dir(dir)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(120), command.output())
        .await
        .expect("actionlint finishes within 120 s")
        .unwrap_or_else(|e| panic!("run {}: {e}", binary.display()));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

#[tokio::test]
async fn the_workflows_pass_actionlint() {
    let root = repo_root();
    let files = workflow_files();
    let names: BTreeSet<String> = files
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for wanted in ["ci.yml", "nightly.yml"] {
        assert!(
            names.contains(wanted),
            "{wanted} in .github/workflows: {names:?}"
        );
    }
    let (code, output) = actionlint(&root, &files).await;
    assert_eq!(code, Some(0), "actionlint found problems:\n{output}");
}

/// A workflow with three mistakes actionlint knows: a job that needs a job
/// that does not exist, a property the `github` context does not have, a
/// step with both `run` and `uses`.
const BROKEN_WORKFLOW: &str = r#"name: broken
on: push
jobs:
  build:
    runs-on: ubuntu-latest
    needs: no-such-job
    steps:
      - run: echo "${{ github.no_such_property }}"
      - uses: actions/checkout@v4
        run: echo both
"#;

/// A valid workflow whose one script has an unquoted variable: only
/// shellcheck, through actionlint, finds it.
const UNQUOTED_WORKFLOW: &str = r#"name: unquoted
on: push
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - run: rm -rf $HOME/unquoted
"#;

#[tokio::test]
async fn actionlint_fails_a_broken_workflow() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broken = dir.path().join("broken.yml");
    std::fs::write(&broken, BROKEN_WORKFLOW).unwrap();
    let unquoted = dir.path().join("unquoted.yml");
    std::fs::write(&unquoted, UNQUOTED_WORKFLOW).unwrap();
    let (code, output) = actionlint(dir.path(), &[broken, unquoted]).await;
    assert_eq!(code, Some(1), "actionlint must fail them:\n{output}");
    for needle in [
        "broken.yml:4:3: job \"build\" needs job \"no-such-job\"",
        "no_such_property",
        "unexpected key \"uses\"",
        "unquoted.yml:7:9: shellcheck reported issue in this script: SC2086",
    ] {
        assert!(output.contains(needle), "{needle:?} in:\n{output}");
    }
}

/// A caller's workflow for `uses: ./` with the action.yml of this
/// repository beside it, in a temporary project (actionlint looks for
/// `.git` and `.github/workflows` to find local actions).
fn project_using_the_action(with: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join(".git")).unwrap();
    std::fs::create_dir_all(dir.path().join(".github/workflows")).unwrap();
    std::fs::copy(
        repo_root().join("action.yml"),
        dir.path().join("action.yml"),
    )
    .unwrap();
    let file = dir.path().join(".github/workflows/e2e.yml");
    std::fs::write(
        &file,
        format!(
            "name: e2e\non: pull_request\njobs:\n  e2e:\n    runs-on: ubuntu-latest\n    steps:\n      - uses: actions/checkout@v4\n      - uses: ./\n        with:\n{with}"
        ),
    )
    .unwrap();
    (dir, file)
}

#[tokio::test]
async fn actionlint_checks_what_a_caller_passes_to_the_action() {
    let (good_dir, good) = project_using_the_action("          scenarios: e2e\n");
    let (code, output) = actionlint(good_dir.path(), &[good]).await;
    assert_eq!(code, Some(0), "a correct caller passes:\n{output}");

    // `scenario` (no s): an input action.yml does not declare, and the
    // required `scenarios` missing.
    let (bad_dir, bad) = project_using_the_action("          scenario: e2e\n");
    let (code, output) = actionlint(bad_dir.path(), &[bad]).await;
    assert_eq!(code, Some(1), "a misspelt input must fail:\n{output}");
    assert!(output.contains("\"scenario\""), "{output}");
    assert!(output.contains("\"scenarios\""), "{output}");
}

/// shellcheck on `files`: (exit code, output).
async fn shellcheck(files: &[PathBuf]) -> (Option<i32>, String) {
    let binary = shellcheck_binary();
    let out = tokio::process::Command::new(&binary)
        .args(["--shell=bash", "--color=never"])
        .args(files)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .unwrap_or_else(|e| panic!("run {}: {e}", binary.display()));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

/// The action's script, `.ci/run`, and each `run:` of action.yml (which
/// actionlint does not see) pass shellcheck; a script with an unquoted
/// variable does not, so the check is real.
#[tokio::test]
async fn the_scripts_pass_shellcheck() {
    let root = repo_root();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut files = vec![root.join(".github/action/run.sh"), root.join(".ci/run")];
    let action = yaml(&root.join("action.yml"));
    for (i, step) in action["runs"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        if let Some(run) = step["run"].as_str() {
            assert_eq!(step["shell"], "bash", "action.yml runs.steps[{i}]");
            let file = dir.path().join(format!("action-step-{i}.sh"));
            std::fs::write(&file, run).unwrap();
            files.push(file);
        }
    }
    assert!(files.len() >= 4, "{files:?}");
    let (code, output) = shellcheck(&files).await;
    assert_eq!(code, Some(0), "shellcheck found problems:\n{output}");

    let bad = dir.path().join("bad.sh");
    std::fs::write(&bad, "#!/usr/bin/env bash\nrm -rf $HOME/unquoted\n").unwrap();
    let (code, output) = shellcheck(&[bad]).await;
    assert_eq!(code, Some(1), "{output}");
    assert!(output.contains("SC2086"), "{output}");
}

// --- action.yml's structure, which actionlint does not lint ---

/// The names `prefix` is followed by (`inputs.` -> `scenarios`) inside the
/// `${{ ... }}` expressions of `text`.
fn expression_names(text: &str, prefix: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("${{") {
        let after = &rest[start + 3..];
        let Some(end) = after.find("}}") else { break };
        let expr = &after[..end];
        let mut at = 0;
        while let Some(found) = expr[at..].find(prefix) {
            let pos = at + found;
            let boundary = expr[..pos]
                .chars()
                .next_back()
                .is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.'));
            let name: String = expr[pos + prefix.len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
                .collect();
            if boundary && !name.is_empty() {
                names.push(name);
            }
            at = pos + prefix.len();
        }
        rest = &after[end + 2..];
    }
    names
}

/// Every string under `value`, with where it is (`runs.steps[2].with.path`).
fn strings<'a>(value: &'a Value, at: String, out: &mut Vec<(String, &'a str)>) {
    match value {
        Value::String(s) => out.push((at, s)),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                strings(item, format!("{at}[{i}]"), out);
            }
        }
        Value::Object(map) => {
            for (k, v) in map {
                strings(v, format!("{at}.{k}"), out);
            }
        }
        _ => {}
    }
}

/// What is wrong with a composite action's metadata (`file` names it in
/// each message; `dir` is where its scripts are looked up).
fn action_problems(file: &str, text: &str, dir: &Path) -> Vec<String> {
    let doc: Value = match serde_saphyr::from_str(text) {
        Ok(v) => v,
        Err(e) => return vec![format!("{file}: not YAML: {e}")],
    };
    let mut problems = Vec::new();
    for key in ["name", "description"] {
        if !doc[key].is_string() {
            problems.push(format!("{file}: `{key}:` is required (a string)"));
        }
    }
    if doc["runs"]["using"] != "composite" {
        problems.push(format!(
            "{file}: runs.using is {}, not `composite`",
            doc["runs"]["using"]
        ));
    }
    let empty = Vec::new();
    let steps = doc["runs"]["steps"].as_array().unwrap_or(&empty);
    if steps.is_empty() {
        problems.push(format!("{file}: runs.steps is empty or missing"));
    }
    let mut ids = BTreeSet::new();
    for (i, step) in steps.iter().enumerate() {
        let label = match step["name"].as_str() {
            Some(name) => format!("{file}: runs.steps[{i}] ({name})"),
            None => format!("{file}: runs.steps[{i}]"),
        };
        if let Some(id) = step["id"].as_str()
            && !ids.insert(id.to_string())
        {
            problems.push(format!("{label}: id `{id}` is used twice"));
        }
        match (step.get("run"), step.get("uses")) {
            (Some(run), None) => {
                if !step["shell"].is_string() {
                    problems.push(format!(
                        "{label}: a `run` step of a composite action needs `shell:` (there is no default)"
                    ));
                }
                let run = run.as_str().unwrap_or_default();
                // An expression in a script is pasted in before bash reads
                // it (script injection): values go through `env:`.
                if run.contains("${{") {
                    problems.push(format!(
                        "{label}: `${{{{ }}}}` in a `run:` script: pass the value through `env:` instead"
                    ));
                }
                // Scripts it runs from the action's checkout must be there.
                for piece in run.split(['"', '\'', ' ', '\n']) {
                    if let Some(rel) = piece.strip_prefix("$GITHUB_ACTION_PATH/") {
                        let script = dir.join(rel);
                        if !script.is_file() {
                            problems.push(format!(
                                "{label}: runs {piece}, but {} does not exist",
                                script.display()
                            ));
                        }
                    }
                }
            }
            (None, Some(uses)) => {
                if !uses
                    .as_str()
                    .is_some_and(|u| u.contains('@') || u.starts_with("./"))
                {
                    problems.push(format!(
                        "{label}: `uses: {uses}` names no version (`owner/repo@ref`)"
                    ));
                }
            }
            _ => problems.push(format!(
                "{label}: a step needs exactly one of `run` and `uses`"
            )),
        }
    }

    let declared: BTreeSet<String> = doc["inputs"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    if let Some(inputs) = doc["inputs"].as_object() {
        for (name, input) in inputs {
            if !input["description"].is_string() {
                problems.push(format!("{file}: inputs.{name} has no description"));
            }
        }
    }
    let mut texts = Vec::new();
    strings(&doc["runs"], "runs".into(), &mut texts);
    strings(&doc["outputs"], "outputs".into(), &mut texts);
    let mut used = BTreeSet::new();
    for (at, text) in &texts {
        for name in expression_names(text, "inputs.") {
            if !declared.contains(&name) {
                problems.push(format!(
                    "{file}: {at} uses inputs.{name}, which `inputs:` does not declare"
                ));
            }
            used.insert(name);
        }
        for id in expression_names(text, "steps.") {
            if !ids.contains(&id) {
                problems.push(format!(
                    "{file}: {at} names steps.{id}, but no step has `id: {id}`"
                ));
            }
        }
    }
    for name in declared.difference(&used) {
        problems.push(format!(
            "{file}: inputs.{name} is declared but no step uses it"
        ));
    }
    if let Some(outputs) = doc["outputs"].as_object() {
        for (name, output) in outputs {
            if !output["value"].is_string() {
                problems.push(format!(
                    "{file}: outputs.{name} needs a `value:` (composite actions map outputs from steps)"
                ));
            }
        }
    }
    problems
}

#[test]
fn the_action_is_a_well_formed_composite_action() {
    let root = repo_root();
    let text = read(&root.join("action.yml"));
    let problems = action_problems("action.yml", &text, &root);
    assert!(problems.is_empty(), "{}", problems.join("\n"));

    let doc: Value = serde_saphyr::from_str(&text).unwrap();
    assert_eq!(doc["inputs"]["scenarios"]["required"], true);
    let steps = doc["runs"]["steps"].as_array().unwrap();
    // One run step calls the script kept in the repository, with the inputs
    // in its environment.
    let run = steps
        .iter()
        .find(|s| s["id"] == "run")
        .expect("a step with id `run`");
    assert_eq!(run["run"], "\"$GITHUB_ACTION_PATH/.github/action/run.sh\"");
    assert_eq!(run["env"]["INPUT_SCENARIOS"], "${{ inputs.scenarios }}");
    let script = root.join(".github/action/run.sh");
    let mode = std::os::unix::fs::PermissionsExt::mode(&script.metadata().unwrap().permissions());
    assert_ne!(mode & 0o111, 0, "{} is executable", script.display());
    let script_text = read(&script);
    assert!(
        script_text.contains("exec cargo xtask \"${args[@]}\"")
            && script_text.contains("args=(e2e --lab local"),
        "the script calls the CLI on the local lab"
    );
    // The JUnit file and the report are uploaded, even when a scenario failed.
    let uploads: Vec<&Value> = steps
        .iter()
        .filter(|s| {
            s["uses"]
                .as_str()
                .is_some_and(|u| u.starts_with("actions/upload-artifact@"))
        })
        .collect();
    assert_eq!(uploads.len(), 2, "two artifacts: JUnit and the report");
    for upload in &uploads {
        assert_eq!(upload["if"], "always()");
    }
    assert!(uploads[0]["with"]["path"].as_str().is_some_and(|p| {
        p.contains("steps.run.outputs.report-dir") && p.ends_with("/**/junit.xml")
    }));
    assert!(
        uploads[1]["with"]["path"]
            .as_str()
            .is_some_and(|p| p.contains("steps.run.outputs.report-dir"))
    );
}

/// A broken copy: each mistake is found and named.
const BROKEN_ACTION: &str = r#"name: broken
description: every mistake the check knows
inputs:
  scenarios:
    description: declared, used
  unused:
    description: declared, never used
  nodesc: {}
outputs:
  junit:
    value: ${{ steps.nosuchstep.outputs.junit }}
  novalue:
    description: no value
runs:
  using: node20
  steps:
    - name: no shell
      run: echo "${{ inputs.scenarios }} ${{ inputs.undeclared }} ${{ inputs.nodesc }}"
    - name: both
      run: echo
      shell: bash
      uses: actions/checkout@v4
    - name: unpinned
      uses: actions/checkout
    - name: missing script
      shell: bash
      run: '"$GITHUB_ACTION_PATH/no/such/script.sh"'
    - name: inline expression
      shell: bash
      env:
        SCENARIOS: ${{ inputs.scenarios }}
      run: echo "$SCENARIOS ${{ github.ref }}"
"#;

#[test]
fn the_structure_check_names_each_mistake() {
    let dir = tempfile::tempdir().expect("tempdir");
    let problems = action_problems("broken.yml", BROKEN_ACTION, dir.path());
    let all = problems.join("\n");
    let expected = [
        "runs.using is \"node20\", not `composite`",
        "runs.steps[0] (no shell): a `run` step of a composite action needs `shell:`",
        "runs.steps[0] (no shell): `${{ }}` in a `run:` script",
        "runs.steps[1] (both): a step needs exactly one of `run` and `uses`",
        "runs.steps[2] (unpinned): `uses: \"actions/checkout\"` names no version",
        "runs.steps[3] (missing script): runs $GITHUB_ACTION_PATH/no/such/script.sh",
        "runs.steps[4] (inline expression): `${{ }}` in a `run:` script: pass the value through `env:`",
        "uses inputs.undeclared, which `inputs:` does not declare",
        "inputs.unused is declared but no step uses it",
        "inputs.nodesc has no description",
        "names steps.nosuchstep, but no step has `id: nosuchstep`",
        "outputs.novalue needs a `value:`",
    ];
    for needle in expected {
        assert!(all.contains(needle), "{needle:?} in:\n{all}");
    }
    assert!(all.lines().all(|l| l.starts_with("broken.yml: ")), "{all}");
    assert_eq!(problems.len(), expected.len(), "nothing else:\n{all}");

    let not_yaml = action_problems("bad.yml", "runs: [unclosed", dir.path());
    assert_eq!(not_yaml.len(), 1);
    assert!(
        not_yaml[0].starts_with("bad.yml: not YAML: "),
        "{not_yaml:?}"
    );
}

// --- caches and commands ---

/// The `actions/cache` steps of a job: (paths, key, restore-keys).
fn caches(steps: &[Value]) -> Vec<(String, String, String)> {
    steps
        .iter()
        .filter(|s| {
            s["uses"]
                .as_str()
                .is_some_and(|u| u.starts_with("actions/cache@"))
        })
        .map(|s| {
            let with = &s["with"];
            (
                with["path"].as_str().unwrap_or_default().to_string(),
                with["key"].as_str().unwrap_or_default().to_string(),
                with["restore-keys"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect()
}

/// The cache whose paths include `path`: its key and restore key.
fn cache_for<'a>(
    caches: &'a [(String, String, String)],
    path: &str,
    what: &str,
) -> &'a (String, String, String) {
    caches
        .iter()
        .find(|(paths, _, _)| paths.lines().any(|p| p.trim() == path))
        .unwrap_or_else(|| panic!("{what}: no cache of {path}: {caches:?}"))
}

const VERSIONS_HASH: &str = "hashFiles('harness/tools/src/versions.rs')";
const LOCK_HASH: &str = "hashFiles('Cargo.lock')";

fn assert_keyed(steps: &[Value], what: &str) {
    let caches = caches(steps);
    for path in ["~/.cache/oci-e2e", "~/go/pkg/mod", "~/.cache/go-build"] {
        let (_, key, restore) = cache_for(&caches, path, what);
        assert!(key.contains(VERSIONS_HASH), "{what}: {path} keyed by {key}");
        // The restore key is the key without the hash: entries of pins that
        // did not change come back.
        assert_eq!(
            key.strip_suffix(&format!("${{{{ {VERSIONS_HASH} }}}}")),
            Some(restore.as_str()),
            "{what}: {path}: the restore key is the key up to the hash"
        );
    }
    for path in ["~/.cargo/registry/index", "target"] {
        let (_, key, _) = cache_for(&caches, path, what);
        assert!(key.contains(LOCK_HASH), "{what}: {path} keyed by {key}");
    }
}

#[test]
fn pull_requests_run_the_test_command_with_caches_keyed_by_the_version_table() {
    let root = repo_root();
    let wf = yaml(&root.join(".github/workflows/ci.yml"));
    assert!(
        wf["on"].get("pull_request").is_some(),
        "runs on pull requests"
    );
    let steps = wf["jobs"]["test"]["steps"]
        .as_array()
        .expect("jobs.test.steps");
    assert_keyed(steps, "ci.yml");
    let test_caches = caches(steps);
    let (_, nextest_key, nextest_restore) =
        cache_for(&test_caches, "~/.cargo/bin/cargo-nextest", "ci.yml");
    assert!(nextest_key.contains(VERSIONS_HASH));
    assert!(nextest_restore.is_empty(), "no other nextest comes back");
    assert!(
        steps.iter().any(|s| s["run"] == ".ci/run"),
        "the job runs .ci/run"
    );
    assert!(
        read(&root.join(".ci/run")).contains("exec cargo xtask test"),
        ".ci/run is `cargo xtask test`"
    );
    // The action job runs the composite action on its example folder.
    let action_steps = wf["jobs"]["action"]["steps"]
        .as_array()
        .expect("jobs.action");
    let uses = action_steps
        .iter()
        .find(|s| s["uses"] == "./")
        .expect("a `uses: ./` step");
    let example = uses["with"]["scenarios"].as_str().unwrap();
    assert!(root.join(example).is_dir(), "{example} exists");
}

#[test]
fn the_nightly_kind_run_has_the_same_caches() {
    let wf = yaml(&repo_root().join(".github/workflows/nightly.yml"));
    assert!(wf["on"]["schedule"][0]["cron"].is_string());
    let steps = wf["jobs"]["e2e-kind"]["steps"].as_array().expect("steps");
    assert_keyed(steps, "nightly.yml");
    assert!(steps.iter().any(|s| {
        s["run"]
            .as_str()
            .is_some_and(|r| r.contains("cargo xtask e2e --lab kind"))
    }));
    // Both workflows build the tools with the same Go.
    let ci = yaml(&repo_root().join(".github/workflows/ci.yml"));
    assert_eq!(wf["env"]["GO_VERSION"], ci["env"]["GO_VERSION"]);
}

#[test]
fn the_action_keys_its_caches_on_its_own_version_table() {
    let doc = yaml(&repo_root().join("action.yml"));
    let steps = doc["runs"]["steps"].as_array().unwrap();
    let keys = steps.iter().find(|s| s["id"] == "keys").expect("keys step");
    let run = keys["run"].as_str().unwrap();
    assert!(run.contains("sha256sum \"$GITHUB_ACTION_PATH/harness/tools/src/versions.rs\""));
    assert!(run.contains("sha256sum \"$GITHUB_ACTION_PATH/Cargo.lock\""));
    let caches = caches(steps);
    for path in ["~/.cache/oci-e2e", "~/go/pkg/mod", "~/.cache/go-build"] {
        let (_, key, _) = cache_for(&caches, path, "action.yml");
        assert!(key.contains("steps.keys.outputs.versions"), "{path}: {key}");
    }
    let (_, key, _) = cache_for(&caches, "~/.cache/oci-e2e-action/target", "action.yml");
    assert!(key.contains("steps.keys.outputs.cargo"), "{key}");
    assert!(
        read(&repo_root().join(".github/action/run.sh"))
            .contains("CARGO_TARGET_DIR:-$HOME/.cache/oci-e2e-action/target"),
        "the script builds where the cargo cache is"
    );
}

#[test]
fn actionlint_is_a_pinned_go_install_that_the_test_command_builds() {
    let component = versions::component_for(Tool::Actionlint, versions::DEFAULT_ETCD_SOURCE);
    assert!(
        versions::ALL_COMPONENTS
            .iter()
            .any(|c| c.key() == component.key()),
        "in ALL_COMPONENTS (the cache tests walk it)"
    );
    assert!(matches!(
        component.go,
        Some(GoRecipe::Install {
            package: "github.com/rhysd/actionlint/cmd/actionlint"
        })
    ));
    assert!(component.version.starts_with('v'));
    assert!(component.accept.matches(component.version));
    assert!(
        !Tool::lab_default().contains(&Tool::Actionlint),
        "tests only"
    );
    let test_cmd = read(&repo_root().join("xtask/src/test_cmd.rs"));
    assert!(
        test_cmd.contains("harness_tools::Tool::Actionlint"),
        "`cargo xtask test` provisions actionlint before the tests run"
    );
}
