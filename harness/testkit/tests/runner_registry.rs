//! The runner end to end against a real registry process, on a lab that has
//! no cluster (its Kubernetes address refuses connections): push and tag
//! steps, variables, isolation, stop at the first failure, `finally`,
//! timeouts, cancellation, reports and diagnostics.

use std::path::{Path, PathBuf};
use std::time::Duration;

use harness_core::progress::Progress;
use harness_engine::lab::Lab;
use harness_engine::runner::{self, RunOptions, RunSummary, ScenarioStatus, StepStatus};
use harness_oci::RegistryClient;
use harness_scenario::{Scenario, load_file};

mod common;
use common::RegistryOnlyLab;

fn scenario(dir: &Path, file: &str, yaml: &str) -> Scenario {
    let path = dir.join(file);
    std::fs::write(&path, yaml).unwrap();
    match load_file(&path) {
        Ok(scenario) => scenario,
        Err(diagnostics) => panic!("{file} does not load: {diagnostics:?}"),
    }
}

fn options(dir: &Path, run_id: &str) -> RunOptions {
    let mut opts = RunOptions::new(run_id, dir.join("report"));
    opts.progress = Progress::quiet();
    opts.jobs = 2;
    opts
}

fn report_dir(dir: &Path) -> PathBuf {
    dir.join("report")
}

const PUSH_AND_TAG: &str = r#"
name: push-and-tag
steps:
  - push:
      files:
        configmap.yaml: |
          apiVersion: v1
          kind: ConfigMap
          metadata: {name: demo-config}
          data: {version: "1.0.0"}
      repository: demo-app
      tags: [v1.0.0, latest]
      as: v1
  - tag: {repository: demo-app, from: "${v1.digest}", tags: [stable]}
  - name: an artifact that names the first one
    push:
      files:
        configmap.yaml: |
          apiVersion: v1
          kind: ConfigMap
          metadata: {name: pointer}
          data: {previous: "${v1.digest}", registry: "${lab.registry}"}
      repository: demo-app
      tags: [v2]
      as: v2
"#;

const FAILS_AT_EXPECT: &str = r#"
name: fails-at-expect
steps:
  - push:
      files: {a.yaml: "kind: ConfigMap"}
      repository: other-app
      tags: [v1]
  - expect:
      resource: {apiVersion: v1, kind: ConfigMap, namespace: kube-system, name: x}
      within: 1s
  - push:
      files: {b.yaml: "kind: ConfigMap"}
      repository: other-app
      tags: [never]
finally:
  - push:
      files: {c.yaml: "kind: ConfigMap"}
      repository: other-app
      tags: [from-finally]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steps_push_tag_bind_and_render_in_isolated_repositories() {
    let dir = tempfile::tempdir().unwrap();
    let lab = RegistryOnlyLab::start(dir.path()).await;
    let scenarios = vec![
        scenario(dir.path(), "a.yaml", PUSH_AND_TAG),
        scenario(dir.path(), "b.yaml", FAILS_AT_EXPECT),
    ];
    let summary: RunSummary =
        runner::run(lab.clone(), scenarios, options(dir.path(), "run-one")).await;

    assert_eq!(summary.exit_code(), 1);
    let passed = &summary.scenarios[0];
    assert_eq!(passed.status, ScenarioStatus::Passed, "{passed:#?}");
    assert!(passed.steps.iter().all(|s| s.outcome == StepStatus::Passed));

    // Digests are recorded per step; the tag step points at the bound digest.
    let v1 = &passed.steps[0].digests[0];
    assert_eq!(v1.binding.as_deref(), Some("v1"));
    assert_eq!(v1.tags, vec!["v1.0.0", "latest"]);
    assert_eq!(passed.steps[1].digests[0].digest, v1.digest);
    let repository = &v1.repository;
    assert!(
        repository.starts_with("e2e-run-one/push-and-tag-") && repository.ends_with("/demo-app"),
        "{repository}"
    );

    // What the registry holds, read back with the OCI client.
    let client = RegistryClient::new(lab.registry().clone());
    assert_eq!(
        client.resolve(repository, "stable").await.unwrap(),
        v1.digest
    );
    let v2 = &passed.steps[2].digests[0];
    let pulled = client.pull(repository, "v2").await.unwrap();
    assert_eq!(pulled.digest, v2.digest);
    let layer = flate2::read::GzDecoder::new(pulled.layers[0].1.as_slice());
    let mut archive = tar::Archive::new(layer);
    let mut content = String::new();
    for entry in archive.entries().unwrap() {
        use std::io::Read as _;
        entry.unwrap().read_to_string(&mut content).unwrap();
    }
    assert!(
        content.contains(&format!("previous: \"{}\"", v1.digest)),
        "{content}"
    );
    assert!(
        content.contains(&format!("registry: \"{}\"", lab.registry().address)),
        "{content}"
    );

    // The failing scenario: stopped at the expect, skipped the rest, ran finally.
    let failed = &summary.scenarios[1];
    assert_eq!(failed.status, ScenarioStatus::Failed);
    let outcomes: Vec<StepStatus> = failed.steps.iter().map(|s| s.outcome).collect();
    assert_eq!(
        outcomes,
        vec![StepStatus::Passed, StepStatus::Failed, StepStatus::Skipped]
    );
    assert_eq!(failed.finally[0].outcome, StepStatus::Passed);
    let failure = failed.failure.as_ref().unwrap();
    assert_eq!((failure.phase.as_str(), failure.index), ("steps", 2));
    let location = failure.location.as_ref().unwrap();
    assert_eq!((location.line, location.column), (8, 5), "{location}");
    assert!(
        failure
            .message
            .contains("ConfigMap kube-system/x: not met within 1s"),
        "{}",
        failure.message
    );
    let other = &failed.steps[0].digests[0].repository;
    let tags = client.list_tags(other).await.unwrap();
    assert!(
        tags.contains(&"from-finally".to_string()) && !tags.contains(&"never".to_string()),
        "{tags:?}"
    );

    // Reports and diagnostics.
    let junit = std::fs::read_to_string(report_dir(dir.path()).join("junit.xml")).unwrap();
    assert!(
        junit.contains(&format!("{}:8:5", failed.file.display())),
        "{junit}"
    );
    let diagnostics = failed
        .diagnostics
        .as_ref()
        .expect("diagnostics of the failed scenario");
    let registry_txt = std::fs::read_to_string(diagnostics.join("registry.txt")).unwrap();
    assert!(
        registry_txt.contains(&format!("  v1 -> {}", failed.steps[0].digests[0].digest)),
        "{registry_txt}"
    );
    // Collected when the steps failed, before `finally` changed the lab.
    assert!(!registry_txt.contains("from-finally"), "{registry_txt}");
    let problems = std::fs::read_to_string(diagnostics.join("problems.txt")).unwrap();
    assert!(
        problems.contains("Applications:") && problems.contains("events:"),
        "{problems}"
    );
    assert!(diagnostics.join("logs/docker-registry.log").exists());
    assert!(passed.diagnostics.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenario_timeout_cuts_an_expect_short_and_finally_still_runs() {
    let dir = tempfile::tempdir().unwrap();
    let lab = RegistryOnlyLab::start(dir.path()).await;
    let yaml = r#"
name: short-timeout
timeout: 3s
steps:
  - push: {files: {a.yaml: "x: 1"}, repository: demo-app, tags: [first]}
  - name: its window ends with the scenario's, a little before its own 3s
    expect:
      resource: {apiVersion: v1, kind: ConfigMap, namespace: kube-system, name: x}
      within: 3s
finally:
  - push: {files: {a.yaml: "x: 1"}, repository: demo-app, tags: [cleanup]}
"#;
    let summary = runner::run(
        lab,
        vec![scenario(dir.path(), "t.yaml", yaml)],
        options(dir.path(), "run-two"),
    )
    .await;
    let report = &summary.scenarios[0];
    assert_eq!(report.status, ScenarioStatus::Failed);
    assert_eq!(report.steps[1].outcome, StepStatus::Failed);
    assert!(
        report.steps[1]
            .message
            .contains("cut short by the scenario timeout"),
        "{}",
        report.steps[1].message
    );
    assert_eq!(report.finally[0].outcome, StepStatus::Passed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancellation_stops_steps_but_runs_finally() {
    let dir = tempfile::tempdir().unwrap();
    let lab = RegistryOnlyLab::start(dir.path()).await;
    let yaml = r#"
name: cancelled
steps:
  - expect:
      resource: {apiVersion: v1, kind: ConfigMap, namespace: kube-system, name: x}
      within: 4m
  - push: {files: {a.yaml: "x: 1"}, repository: demo-app, tags: [after]}
finally:
  - push: {files: {a.yaml: "x: 1"}, repository: demo-app, tags: [finally]}
"#;
    let opts = options(dir.path(), "run-three");
    let cancel = opts.cancel.clone();
    let run = tokio::spawn(runner::run(
        lab,
        vec![scenario(dir.path(), "c.yaml", yaml)],
        opts,
    ));
    // Whenever it lands (before or during the expect), the outcome is the same.
    tokio::time::sleep(Duration::from_millis(500)).await;
    cancel.cancel();
    let summary = run.await.unwrap();
    let report = &summary.scenarios[0];
    assert_eq!(report.status, ScenarioStatus::Cancelled, "{report:#?}");
    assert_eq!(report.steps[1].outcome, StepStatus::Skipped);
    assert_eq!(report.finally[0].outcome, StepStatus::Passed);
    assert_eq!(summary.exit_code(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_cancelled_before_it_starts_reports_every_scenario_cancelled() {
    let dir = tempfile::tempdir().unwrap();
    let lab = RegistryOnlyLab::start(dir.path()).await;
    let opts = options(dir.path(), "run-four");
    opts.cancel.cancel();
    let summary = runner::run(
        lab,
        vec![scenario(dir.path(), "a.yaml", PUSH_AND_TAG)],
        opts,
    )
    .await;
    assert_eq!(summary.scenarios[0].status, ScenarioStatus::Cancelled);
    assert!(
        summary.scenarios[0]
            .steps
            .iter()
            .all(|s| s.outcome == StepStatus::Skipped)
    );
    assert!(report_dir(dir.path()).join("summary.json").exists());
}
