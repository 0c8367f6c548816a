//! Cancelling a run (what Ctrl-C does) on a real local lab, through the
//! runner: the waiting step stops at once as cancelled, the steps after it
//! are skipped, `finally` still runs against the lab and cleanup leaves no
//! Application behind.

mod common;

use std::time::Duration;

use harness_core::progress::Progress;
use harness_engine::runner::{self, RunOptions, ScenarioStatus, StepStatus};
use harness_labs::LabKind;
use harness_labs::session::{self, LabOptions};
use kube::api::ListParams;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cancelled_run_stops_the_waiting_step_and_still_cleans_up() {
    harness_core::init_crypto();
    let progress = Progress::new();
    let scenario = common::load_scenario(
        "name: cancelled-while-waiting
steps:
  - push:
      files: {cm.yaml: \"apiVersion: v1\\nkind: ConfigMap\\nmetadata: {name: c}\\n\"}
      repository: r
      tags: [v1]
      as: v1
  - app: {name: waits, repository: r, revision: v1}
  - expect: {app: waits, sync: Synced, revision: \"${v1.digest}\"}
  - name: never true
    expect: {app: waits, sync: OutOfSync, within: 2m}
  - expect: {app: waits, sync: Synced}
finally:
  - delete: {app: waits}
",
        |_| {},
    )
    .unwrap_or_else(|e| panic!("{e:#?}"));
    let opts = LabOptions::new(LabKind::Local);
    let lab = session::start(&opts, &progress)
        .await
        .expect("local lab starts");
    let tmp = tempfile::tempdir().unwrap();
    let mut run_opts = RunOptions::new(runner::new_run_id(), tmp.path().join("report"));
    run_opts.progress = progress.clone();
    let cancel = run_opts.cancel.clone();
    let run = tokio::spawn(runner::run(lab.lab(), vec![scenario], run_opts));
    // Cancel once the scenario is waiting in step 4 (the app is Synced).
    let apps = common::argo_objects(lab.lab().as_ref(), "Application");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    loop {
        let synced = apps
            .list(&ListParams::default())
            .await
            .map(|list| {
                list.items.iter().any(|a| {
                    a.data
                        .pointer("/status/sync/status")
                        .and_then(|s| s.as_str())
                        == Some("Synced")
                })
            })
            .unwrap_or(false);
        if synced {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the app never synced"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let cancelled_at = tokio::time::Instant::now();
    cancel.cancel();
    let summary = run.await.expect("the run task");
    let stopped_after = cancelled_at.elapsed();
    let left = common::argo_object_names(lab.lab().as_ref(), "Application").await;
    lab.shutdown(&opts, &progress, None)
        .await
        .expect("lab stops");

    let report = &summary.scenarios[0];
    assert_eq!(
        report.status,
        ScenarioStatus::Cancelled,
        "{:?}",
        report.steps
    );
    let outcomes: Vec<StepStatus> = report.steps.iter().map(|s| s.outcome).collect();
    assert_eq!(
        outcomes,
        vec![
            StepStatus::Passed,
            StepStatus::Passed,
            StepStatus::Passed,
            StepStatus::Cancelled,
            StepStatus::Skipped
        ]
    );
    assert_eq!(
        report.finally[0].outcome,
        StepStatus::Passed,
        "finally still runs"
    );
    assert!(
        report.cleanup_problems.is_empty(),
        "{:?}",
        report.cleanup_problems
    );
    assert!(left.is_empty(), "Applications left behind: {left:?}");
    // The 2-minute window was not sat out: the cancel ended it (finally and
    // cleanup included, well within it).
    assert!(stopped_after < Duration::from_secs(60), "{stopped_after:?}");
}
