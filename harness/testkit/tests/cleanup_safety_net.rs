//! The cleanup's last resort on a real lab: an Application whose deletion
//! does not finish in time (Argo CD's resources finalizer still pending)
//! gets its finalizers removed so that nothing is left behind, and the run
//! says so.

mod common;

use std::time::Duration;

use harness_core::progress::Progress;
use harness_engine::runner::{self, RunOptions, ScenarioStatus};
use harness_labs::LabKind;
use harness_labs::session::{self, LabOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_deletion_that_does_not_finish_in_time_loses_its_finalizers() {
    harness_core::init_crypto();
    let progress = Progress::new();
    // No `finally`: cleanup deletes the app, and gets no time to wait.
    let scenario = common::load_scenario(
        "name: left-to-cleanup
steps:
  - push:
      files: {cm.yaml: \"apiVersion: v1\\nkind: ConfigMap\\nmetadata: {name: c}\\n\"}
      repository: r
      tags: [v1]
      as: v1
  - app: {name: left, repository: r, revision: v1}
  - expect: {app: left, sync: Synced, revision: \"${v1.digest}\"}
",
        |_| {},
    )
    .unwrap_or_else(|e| panic!("{e:#?}"));
    let opts = LabOptions::new(LabKind::Local);
    let lab = session::start(&opts, &progress)
        .await
        .expect("local lab starts");
    let tmp = tempfile::tempdir().unwrap();
    let run_id = runner::new_run_id();
    let mut run_opts = RunOptions::new(run_id.clone(), tmp.path().join("report"));
    run_opts.progress = progress.clone();
    run_opts.cleanup_timeout = Duration::ZERO;
    let summary = runner::run(lab.lab(), vec![scenario], run_opts).await;
    let left = common::argo_object_names(lab.lab().as_ref(), "Application").await;
    lab.shutdown(&opts, &progress, None)
        .await
        .expect("lab stops");

    let report = &summary.scenarios[0];
    assert_eq!(report.status, ScenarioStatus::Passed);
    assert_eq!(
        report.cleanup_problems.len(),
        1,
        "{:?}",
        report.cleanup_problems
    );
    assert!(
        report.cleanup_problems[0].contains("removed its finalizers to delete it"),
        "{:?}",
        report.cleanup_problems
    );
    assert!(left.is_empty(), "Applications left behind: {left:?}");
}
