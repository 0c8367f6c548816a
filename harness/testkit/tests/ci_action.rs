//! The composite action (action.yml) run the way GitHub runs it, against a
//! caller's scenario folder on the real local lab.
//!
//! The test reads action.yml's `run` step: its `run:` text is written to a
//! file and run with `bash --noprofile --norc -eo pipefail FILE` (GitHub's
//! `shell: bash`), its `env:` gets the inputs (`${{ inputs.NAME }}`, or the
//! declared default), and the rest of the environment is what a runner
//! sets: GITHUB_ACTION_PATH (this repository), GITHUB_WORKSPACE (a temporary
//! caller's checkout), RUNNER_TEMP, GITHUB_OUTPUT, CI, GITHUB_ACTIONS, plus
//! PATH and HOME. One difference: CARGO_TARGET_DIR is the target directory
//! this test was built in (and RUSTFLAGS, if set, is kept), so the CLI
//! `cargo xtask test` already built is not built a second time.
//!
//! - The action's example scenario in a caller's folder passes: exit 0,
//!   junit.xml and summary.json in the report folder the step's outputs
//!   name, the scenario passed.
//! - A failing scenario makes the step exit 1, and the report (with the
//!   failure) is still there for the upload steps.
//! - An empty `scenarios` input is refused by the script itself (exit 2,
//!   named), before any build or lab.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the repository root")
}

/// The target directory this test binary was built in
/// (`<target>/debug/deps/ci_action-<hash>`).
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    exe.ancestors()
        .nth(3)
        .unwrap_or_else(|| panic!("no target directory above {}", exe.display()))
        .to_path_buf()
}

/// action.yml's step `id: run`: its script and its environment with the
/// inputs filled in as GitHub would.
fn run_step(inputs: &[(&str, &str)]) -> (String, BTreeMap<String, String>) {
    let path = repo_root().join("action.yml");
    let text = std::fs::read_to_string(&path).expect("action.yml");
    let doc: Value = serde_saphyr::from_str(&text).expect("action.yml parses");
    let given: BTreeMap<&str, &str> = inputs.iter().copied().collect();
    for name in given.keys() {
        assert!(
            doc["inputs"].get(*name).is_some(),
            "action.yml declares no input {name}"
        );
    }
    let step = doc["runs"]["steps"]
        .as_array()
        .expect("runs.steps")
        .iter()
        .find(|s| s["id"] == "run")
        .expect("a step with id `run`");
    assert_eq!(step["shell"], "bash");
    let mut env = BTreeMap::new();
    for (key, value) in step["env"].as_object().expect("the run step's env") {
        let value = value.as_str().expect("env values are strings");
        let name = value
            .strip_prefix("${{ inputs.")
            .and_then(|v| v.strip_suffix(" }}"))
            .unwrap_or_else(|| panic!("{key}: {value} is not `${{{{ inputs.NAME }}}}`"));
        let filled = match given.get(name) {
            Some(v) => v.to_string(),
            None => doc["inputs"][name]["default"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        };
        env.insert(key.clone(), filled);
    }
    (step["run"].as_str().expect("run").to_string(), env)
}

struct StepRun {
    code: Option<i32>,
    output: String,
    /// `name=value` lines the step wrote to GITHUB_OUTPUT.
    outputs: BTreeMap<String, String>,
}

/// Runs the action's run step with `workspace` as the caller's checkout.
async fn run_action(workspace: &Path, inputs: &[(&str, &str)]) -> StepRun {
    let (script, step_env) = run_step(inputs);
    let runner_temp = tempfile::tempdir().expect("RUNNER_TEMP");
    let script_file = runner_temp.path().join("step.sh");
    std::fs::write(&script_file, &script).unwrap();
    let output_file = runner_temp.path().join("github_output");
    std::fs::write(&output_file, "").unwrap();

    let mut command = tokio::process::Command::new("bash");
    command
        .args(["--noprofile", "--norc", "-eo", "pipefail"])
        .arg(&script_file)
        .env_clear()
        .current_dir(workspace)
        .envs(&step_env)
        .env("CI", "true")
        .env("GITHUB_ACTIONS", "true")
        .env("RUNNER_OS", "Linux")
        .env("GITHUB_ACTION_PATH", repo_root())
        .env("GITHUB_WORKSPACE", workspace)
        .env("RUNNER_TEMP", runner_temp.path())
        .env("GITHUB_OUTPUT", &output_file)
        .env("CARGO_TARGET_DIR", target_dir())
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    // What a runner has besides: the toolchain, the tool cache.
    for key in [
        "PATH",
        "HOME",
        "RUSTFLAGS",
        "CARGO_HOME",
        "RUSTUP_HOME",
        "RUSTUP_TOOLCHAIN",
        "OCI_E2E_CACHE",
        "XDG_CACHE_HOME",
    ] {
        if let Some(value) = std::env::var_os(key) {
            command.env(key, value);
        }
    }
    let out = command.output().await.expect("run bash");
    let outputs = std::fs::read_to_string(&output_file)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    StepRun {
        code: out.status.code(),
        output: format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        outputs,
    }
}

/// A caller's checkout with `files` (path, contents) in it.
fn caller_workspace(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("workspace");
    for (path, contents) in files {
        let file = dir.path().join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, contents).unwrap();
    }
    dir
}

fn summary(report: &Path) -> Value {
    let path = report.join("summary.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("summary.json is JSON")
}

#[tokio::test]
async fn the_action_runs_a_callers_scenarios_and_reports_them() {
    let example =
        std::fs::read_to_string(repo_root().join(".github/action/example/configmap-synced.yaml"))
            .expect("the action's example");
    let workspace = caller_workspace(&[("e2e/configmap-synced.yaml", &example)]);
    let run = run_action(workspace.path(), &[("scenarios", "e2e")]).await;
    assert_eq!(run.code, Some(0), "the step failed:\n{}", run.output);

    // The outputs the upload steps use: the default report folder, in the
    // caller's checkout.
    let report = workspace.path().join("oci-e2e-report");
    assert_eq!(
        run.outputs.get("report-dir").map(PathBuf::from),
        Some(report.clone()),
        "{:?}",
        run.outputs
    );
    let junit_path = report.join("junit.xml");
    assert_eq!(
        run.outputs.get("junit").map(PathBuf::from),
        Some(junit_path.clone())
    );
    let junit = std::fs::read_to_string(&junit_path).expect("junit.xml");
    assert_eq!(junit.matches("<testcase").count(), 1, "{junit}");
    assert!(junit.contains("action-example-configmap"), "{junit}");
    assert!(!junit.contains("<failure"), "{junit}");

    let json = summary(&report);
    assert_eq!(json["lab"], "local");
    assert_eq!(json["passed"], 1, "{json}");
    assert_eq!(json["failed"], 0, "{json}");
    let scenario = &json["scenarios"][0];
    assert_eq!(scenario["name"], "action-example-configmap");
    assert_eq!(scenario["status"], "passed");
    let file = PathBuf::from(scenario["file"].as_str().expect("file"));
    assert!(
        file.ends_with("e2e/configmap-synced.yaml"),
        "the caller's file ran: {}",
        file.display()
    );
}

/// Pushed, never signed, and verified as if it were: fails at once.
const UNSIGNED: &str = r#"name: unsigned-is-refused
steps:
  - push:
      repository: unsigned-app
      tags: [v1.0.0]
      as: v1
      files:
        configmap.yaml: |
          apiVersion: v1
          kind: ConfigMap
          metadata: {name: unsigned-config}
          data: {version: "1.0.0"}
  - verify: {repository: unsigned-app, digest: "${v1.digest}", key: release}
"#;

#[tokio::test]
async fn a_failing_scenario_fails_the_action_and_keeps_its_report() {
    let workspace = caller_workspace(&[("tests/e2e/unsigned.yaml", UNSIGNED)]);
    let run = run_action(
        workspace.path(),
        &[("scenarios", "tests/e2e\n"), ("report-dir", "out/e2e")],
    )
    .await;
    assert_eq!(
        run.code,
        Some(1),
        "a failed scenario is exit 1:\n{}",
        run.output
    );
    let report = workspace.path().join("out/e2e");
    assert_eq!(
        run.outputs.get("report-dir").map(PathBuf::from),
        Some(report.clone())
    );
    let junit = std::fs::read_to_string(report.join("junit.xml")).expect("junit.xml");
    assert!(junit.contains("<failure"), "{junit}");
    let json = summary(&report);
    assert_eq!(json["failed"], 1, "{json}");
    assert_eq!(json["passed"], 0, "{json}");
    assert_eq!(json["scenarios"][0]["name"], "unsigned-is-refused");
    assert_eq!(json["scenarios"][0]["status"], "failed");
}

#[tokio::test]
async fn an_empty_scenarios_input_is_refused_by_name() {
    let workspace = caller_workspace(&[]);
    let run = run_action(workspace.path(), &[("scenarios", " \n  \n")]).await;
    assert_eq!(run.code, Some(2), "{}", run.output);
    assert!(
        run.output
            .contains("the action's 'scenarios' input is empty"),
        "{}",
        run.output
    );
    assert!(
        !workspace.path().join("oci-e2e-report").exists(),
        "nothing ran"
    );
}
