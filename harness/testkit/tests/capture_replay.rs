//! `cargo xtask capture` end to end: shipped scenarios run on a real local
//! lab and are kept (no `finally`, no cleanup); each Application they leave
//! is captured into a scenario file; the lab goes, a fresh one comes, and
//! the captured files replay there with the same outcome: the same sync and
//! health status, the same condition types and the same resources, which
//! the captured files also expect (so a capture that expected nothing, or
//! pushed something else, fails here).

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use harness_core::progress::Progress;
use harness_engine::lab::Lab;
use harness_engine::runner::{self, RunOptions};
use harness_labs::LabKind;
use harness_labs::session::{self, LabOptions};
use harness_scenario::Scenario;

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Shipped scenarios whose end states cover what capture must keep: a plain
/// push, a Helm chart with values, a chart with a dependency over oci://,
/// symlinks, two content layers refused (a condition), an AppProject.
const SHIPPED: &[&str] = &[
    "tagged-release",
    "helm-chart-values",
    "helm-dependency-oci",
    "symlink-inside-followed",
    "layers-two-content-refused",
    "app-project-source-repos",
];

/// An artifact holding a Secret: its data must not reach the captured file.
const SECRET_CARRIER: &str = r#"name: secret-carrier
steps:
  - push:
      repository: secret-app
      tags: [v1]
      files:
        secret.yaml: |
          apiVersion: v1
          kind: Secret
          metadata: {name: app-credentials}
          data: {password: aHVudGVyMi1zZWNyZXQ=}
        configmap.yaml: |
          apiVersion: v1
          kind: ConfigMap
          metadata: {name: app-config}
          data: {literal: "$${NOT_A_VARIABLE}"}
  - app: {name: secretive, repository: secret-app, revision: v1}
  - expect: {app: secretive, sync: Synced, health: Healthy}
"#;

/// What an Application shows, to compare the capture's lab and the replay's.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Outcome {
    sync: String,
    health: String,
    conditions: Vec<String>,
    resources: Vec<String>,
}

async fn outcomes(lab: &dyn Lab) -> BTreeMap<String, (String, Outcome)> {
    let apps = common::argo_objects(lab, "Application")
        .list(&Default::default())
        .await
        .expect("list Applications");
    let mut out = BTreeMap::new();
    for app in apps.items {
        let name = app.metadata.name.clone().unwrap_or_default();
        let value = serde_json::to_value(&app).expect("json");
        let text = |path: &[&str]| {
            let mut v = &value["status"];
            for key in path {
                v = &v[*key];
            }
            v.as_str().unwrap_or_default().to_string()
        };
        let mut conditions: Vec<String> = value["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["type"].as_str().map(str::to_string))
            .collect();
        conditions.sort();
        let mut resources: Vec<String> = value["status"]["resources"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| {
                format!(
                    "{}/{} {}",
                    r["kind"].as_str().unwrap_or_default(),
                    r["name"].as_str().unwrap_or_default(),
                    r["status"].as_str().unwrap_or_default()
                )
            })
            .collect();
        resources.sort();
        // The name without the run suffix: what the captured file calls it.
        let base = name
            .rsplit_once('-')
            .map_or(name.clone(), |(base, _)| base.to_string());
        out.insert(
            base,
            (
                name,
                Outcome {
                    sync: text(&["sync", "status"]),
                    health: text(&["health", "status"]),
                    conditions,
                    resources,
                },
            ),
        );
    }
    out
}

/// Runs `scenarios` on `lab`, keeping what they leave; all must pass.
async fn run_kept(lab: &session::RunningLab, scenarios: Vec<Scenario>, report: &Path) {
    let mut opts = RunOptions::new(runner::new_run_id(), report);
    opts.jobs = 4;
    opts.keep = true;
    let summary = runner::run(lab.lab(), scenarios, opts).await;
    let failed = common::not_passed(&summary);
    assert!(
        failed.is_empty(),
        "scenarios failed:\n{}",
        failed.join("\n")
    );
}

fn without_finally(mut scenario: Scenario) -> Scenario {
    scenario.finally.clear();
    scenario
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn captured_applications_replay_on_a_fresh_lab_with_the_same_outcomes() {
    harness_core::init_crypto();
    let progress = Progress::new();
    let tmp = tempfile::tempdir().expect("temporary directory");
    let mut scenarios: Vec<Scenario> = SHIPPED
        .iter()
        .map(|name| {
            let path = repo_root().join("scenarios").join(format!("{name}.yaml"));
            harness_scenario::load_file(&path)
                .unwrap_or_else(|d| panic!("{}: {d:?}", path.display()))
        })
        .map(without_finally)
        .collect();
    let carrier = tmp.path().join("secret-carrier.yaml");
    std::fs::write(&carrier, SECRET_CARRIER).expect("write");
    scenarios.push(harness_scenario::load_file(&carrier).expect("valid"));

    // 1. The shipped scenarios on a lab, kept; their Applications captured.
    let opts = LabOptions::new(LabKind::Local);
    let first = session::start(&opts, &progress).await.expect("lab starts");
    run_kept(&first, scenarios, &tmp.path().join("report-1")).await;
    let before = outcomes(first.lab().as_ref()).await;
    assert!(
        before.len() > SHIPPED.len(),
        "every scenario left its Applications: {before:?}"
    );
    let captured_dir = tmp.path().join("captured");
    let mut files = Vec::new();
    for (base, (name, _)) in &before {
        let output = captured_dir.join(format!("{base}.yaml"));
        // Some captures write their files under --fixtures.
        let fixtures = ["demo", "linked", "umbrella"]
            .contains(&base.as_str())
            .then(|| captured_dir.join(format!("{base}-files")));
        let captured = harness_capture::capture(
            first.lab().as_ref(),
            &harness_capture::CaptureOptions {
                app: name.clone(),
                name: Some(format!("captured-{base}")),
                fixtures: fixtures.clone(),
                output: Some(output.clone()),
            },
        )
        .await
        .unwrap_or_else(|e| panic!("capture {name}: {e}"));
        captured.write(Some(&output)).expect("write the capture");
        let text = std::fs::read_to_string(&output).expect("read back");
        // Past the comments and the description (which say where it came
        // from), nothing names the first lab's run.
        let body: String = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.starts_with("description:"))
            .collect::<Vec<_>>()
            .join("\n");
        assert!(!body.contains(name.as_str()), "{name} is named:\n{text}");
        // A Helm config is kept byte for byte (it takes no variables), and
        // the file says so; nothing else names a run repository.
        for line in body.lines().filter(|l| l.contains("e2e-20")) {
            assert!(
                line.trim_start().starts_with("content: \"{")
                    && text.contains("names the captured lab's registry and is kept byte for byte"),
                "{name}: a run repository path in {line:?}:\n{text}"
            );
        }
        files.push((base.clone(), output, text, fixtures));
    }
    // A name that is not there: the error lists the ones that are.
    let missing = harness_capture::capture(
        first.lab().as_ref(),
        &harness_capture::CaptureOptions {
            app: "no-such-app".into(),
            ..Default::default()
        },
    )
    .await
    .expect_err("no such Application")
    .to_string();
    let (some_base, (some_name, _)) = before.iter().next().expect("apps");
    assert!(
        missing.contains("Application no-such-app not found in namespace argocd")
            && missing.contains(some_name.as_str()),
        "{some_base}: {missing}"
    );
    let lab_dir = first.lab().state_dir();
    first
        .shutdown(&opts, &progress, None)
        .await
        .expect("the first lab stops");
    if let Some(dir) = lab_dir {
        assert!(!dir.exists(), "the first lab is gone: {}", dir.display());
    }

    // What the files say: the observed status is expected, names are the
    // scenario's own, Secrets' data is left out, `${` stays literal.
    for (base, _, text, fixtures) in &files {
        let (_, outcome) = &before[base];
        assert!(
            text.contains(&format!("sync: {}", outcome.sync)),
            "{base}: the captured file expects sync {}:\n{text}",
            outcome.sync
        );
        for condition in &outcome.conditions {
            assert!(
                text.contains(&format!("type: {condition}")),
                "{base}:\n{text}"
            );
        }
        assert!(text.contains(&format!("name: {base}\n")), "{base}:\n{text}");
        if base == "secretive" {
            assert!(
                !text.contains("aHVudGVyMi1zZWNyZXQ="),
                "Secret data leaked:\n{text}"
            );
            assert!(
                text.contains("$${NOT_A_VARIABLE}"),
                "`${{` escaped:\n{text}"
            );
        }
        if let Some(dir) = fixtures {
            let layer_dirs = std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0);
            assert!(
                layer_dirs > 0 || text.contains("inline although --fixtures"),
                "{base}: --fixtures wrote files or said why not:\n{text}"
            );
        }
    }
    assert!(
        files
            .iter()
            .any(|(_, _, _, f)| f.as_ref().is_some_and(|d| d.exists())),
        "at least one capture wrote fixtures"
    );

    // 2. A fresh lab: the captured files alone, kept to compare outcomes.
    let captured: Vec<Scenario> = files
        .iter()
        .map(|(_, path, _, _)| {
            harness_scenario::load_file(path)
                .unwrap_or_else(|d| panic!("{}: {d:?}", path.display()))
        })
        .map(without_finally)
        .collect();
    let second = session::start(&opts, &progress).await.expect("a fresh lab");
    run_kept(&second, captured, &tmp.path().join("report-2")).await;
    let after = outcomes(second.lab().as_ref()).await;
    second
        .shutdown(&opts, &progress, None)
        .await
        .expect("the second lab stops");
    for (base, (_, outcome)) in &before {
        let replayed = after
            .get(base)
            .map(|(_, o)| o)
            .unwrap_or_else(|| panic!("{base} was replayed: {after:?}"));
        assert_eq!(
            replayed, outcome,
            "{base}: the same outcome on the fresh lab"
        );
    }
}
