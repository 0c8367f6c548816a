//! Every scenario in `scenarios/` on one real local lab shared by this
//! test, in parallel, through the same runner `cargo xtask e2e` uses; plus
//! a scenario that must fail, to prove failures are caught and diagnosed.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use harness_core::progress::Progress;
use harness_engine::runner::{self, RunOptions, ScenarioStatus};
use harness_labs::LabKind;
use harness_labs::session::{self, LabOptions};

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn scenarios_pass_on_the_local_lab_and_a_wrong_expectation_fails() {
    harness_core::init_crypto();
    let progress = Progress::new();
    let mut scenarios = harness_scenario::load_paths(&[repo_root().join("scenarios")])
        .unwrap_or_else(|d| {
            panic!(
                "scenarios/ must load: {}",
                d.iter()
                    .map(|d| d.to_string())
                    .collect::<Vec<_>>()
                    .join("\n")
            )
        });
    let expected_passing: Vec<String> = scenarios.iter().map(|s| s.name.clone()).collect();
    // Exactly one scenario per file in scenarios/: none silently dropped.
    let files = std::fs::read_dir(repo_root().join("scenarios"))
        .expect("scenarios/")
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "yaml"))
        .count();
    assert_eq!(
        expected_passing.len(),
        files,
        "every file in scenarios/ is a scenario of the run: {expected_passing:?}"
    );

    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("must-fail.yaml");
    std::fs::write(&bad, common::WRONG_EXPECTATION).unwrap();
    scenarios.push(harness_scenario::load_file(&bad).expect("the failing scenario is valid"));
    let late = tmp.path().join("times-out.yaml");
    std::fs::write(&late, common::TIMES_OUT).unwrap();
    scenarios.push(harness_scenario::load_file(&late).expect("the timing-out scenario is valid"));

    let opts = LabOptions::new(LabKind::Local);
    let lab = session::start(&opts, &progress)
        .await
        .expect("local lab starts");
    let report_dir = tmp.path().join("report");
    let mut run_opts = RunOptions::new(runner::new_run_id(), &report_dir);
    run_opts.jobs = 4;
    run_opts.progress = progress.clone();
    let summary = runner::run(lab.lab(), scenarios, run_opts).await;
    let lab_dir = lab.lab().state_dir();
    lab.shutdown(&opts, &progress, None)
        .await
        .expect("lab stops");

    // Every scenario of the project passes...
    let failures: Vec<String> = common::not_passed(&summary)
        .into_iter()
        .filter(|line| {
            expected_passing
                .iter()
                .any(|name| line.starts_with(&format!("{name}: ")))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "scenarios failed on the local lab:\n{}",
        failures.join("\n")
    );

    // ...and the wrong expectation fails, at its step, with a diff and diagnostics.
    let bad = summary
        .scenarios
        .iter()
        .find(|s| s.name == "must-fail-wrong-data")
        .expect("reported");
    assert_eq!(bad.status, ScenarioStatus::Failed);
    let failure = bad.failure.as_ref().expect("a failure");
    assert_eq!(
        (failure.index, failure.kind.as_str()),
        (4, "expect"),
        "{}",
        failure.headline()
    );
    assert!(
        failure.message.contains("9.9.9") && failure.message.contains("1.0.0"),
        "diff shows both values: {}",
        failure.message
    );
    // Stopped at the first failure, on a real mismatch (not a refused
    // connection), and `finally` still ran against the real lab.
    assert_eq!(bad.steps.len(), 5, "{:?}", bad.steps);
    assert!(
        bad.steps[4..]
            .iter()
            .all(|step| step.outcome == harness_engine::runner::StepStatus::Skipped),
        "steps after the failure are skipped: {:?}",
        bad.steps
    );
    assert!(
        failure.message.contains("last observed")
            && !failure.message.contains("connection refused"),
        "a real mismatch: {}",
        failure.message
    );
    assert_eq!(bad.finally.len(), 1);
    assert_eq!(
        bad.finally[0].outcome,
        harness_engine::runner::StepStatus::Passed,
        "finally deleted the app: {:?}",
        bad.finally[0]
    );
    assert!(
        bad.cleanup_problems.is_empty(),
        "{:?}",
        bad.cleanup_problems
    );
    // The scenario timeout on the real lab: the waiting expect is cut at the
    // deadline, the rest is skipped, `finally` still cleans up.
    let late = summary
        .scenarios
        .iter()
        .find(|s| s.name == "must-fail-scenario-timeout")
        .expect("reported");
    assert_eq!(late.status, ScenarioStatus::Failed);
    let cut = late.failure.as_ref().expect("a failure");
    assert_eq!(
        (cut.index, cut.kind.as_str()),
        (5, "expect"),
        "{}",
        cut.headline()
    );
    assert!(
        cut.message.contains("scenario timeout"),
        "the timeout is named: {}",
        cut.message
    );
    assert_eq!(
        late.steps[5].outcome,
        harness_engine::runner::StepStatus::Skipped
    );
    assert_eq!(
        late.finally[0].outcome,
        harness_engine::runner::StepStatus::Passed
    );
    let diag = bad.diagnostics.as_ref().expect("diagnostics folder");
    for file in ["applications.yaml", "events.txt", "registry.txt"] {
        assert!(diag.join(file).is_file(), "{file} in {}", diag.display());
    }
    let apps = std::fs::read_to_string(diag.join("applications.yaml")).unwrap();
    assert!(
        apps.contains("oci://"),
        "the Application's OCI source is in the diagnostics"
    );

    // Reports: JUnit with a testcase per scenario and the JSON summary.
    let junit = std::fs::read_to_string(report_dir.join("junit.xml")).expect("junit.xml");
    assert_eq!(junit.matches("<testcase").count(), summary.scenarios.len());
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(report_dir.join("summary.json")).expect("summary.json"),
    )
    .unwrap();
    assert_eq!(json["lab"], "local");
    assert_eq!(json["failed"], 2);

    // Nothing of the lab is left running.
    if let Some(dir) = lab_dir {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !harness_core::process::find_by_cmdline(&dir).is_empty()
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(
            harness_core::process::find_by_cmdline(&dir).is_empty(),
            "lab processes left behind 10 s after the lab stopped"
        );
        assert!(!dir.exists());
    }
}
