//! `fault:` steps, and the proof they give the `reconciles:` holds: with
//! the application controller stopped just before it, every shipped
//! scenario whose point is "after Argo CD looked again" fails at that step,
//! and the runner starts the controller again, so a control scenario run
//! after them on the same lab passes.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use harness_core::progress::Progress;
use harness_engine::runner::{self, RunOptions, ScenarioStatus};
use harness_labs::LabKind;
use harness_labs::session::{self, LabOptions};
use harness_scenario::{
    Action, Fault, FaultAction, LabComponent, Scenario, Step, Timing, load_paths,
};

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The shipped scenarios that hold through reconciliations: exactly these,
/// so a scenario moved back to a wall-clock window (or a new one) is
/// noticed here.
const RECONCILING: &[&str] = &[
    "index-tag",
    "layers-two-content-refused",
    "manual-sync",
    "pinned-digest-ignores-latest",
    "sbom-referrers-keep-subject",
    "signed-artifact-gate",
    "symlink-leaving-refused",
    "unsupported-layer-media-type",
];

/// 1-based index of the first `reconciles:` expect of `scenario`.
fn first_reconciles(scenario: &Scenario) -> Option<usize> {
    scenario.steps.iter().position(|step| {
        matches!(&step.action, Action::Expect(e) if matches!(e.timing, Timing::Reconciles(_)))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stopped_application_controller_fails_every_reconciles_scenario() {
    harness_core::init_crypto();
    let progress = Progress::new();
    let all = load_paths(&[repo_root().join("scenarios")]).unwrap_or_else(|d| {
        panic!(
            "scenarios/ must load: {}",
            d.iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        )
    });
    let mut reconciling: Vec<Scenario> = all
        .iter()
        .filter(|s| first_reconciles(s).is_some())
        .cloned()
        .collect();
    reconciling.sort_by(|a, b| a.name.cmp(&b.name));
    let names: Vec<&str> = reconciling.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names, RECONCILING,
        "the scenarios that hold through reconciliations"
    );

    // The controller stops right before each scenario's first `reconciles:`.
    let mut faulted = Vec::new();
    let mut failing_step = std::collections::HashMap::new();
    for mut scenario in reconciling.clone() {
        let at = first_reconciles(&scenario).expect("selected for it");
        let location = scenario.steps[at].location.clone();
        scenario.steps.insert(
            at,
            Step {
                name: Some("stop the application controller (fault_steps test)".into()),
                when: None,
                action: Action::Fault(Fault {
                    action: FaultAction::Stop,
                    component: LabComponent::ArgocdApplicationController,
                }),
                location,
            },
        );
        assert!(scenario.disrupts_lab());
        // 1-based: the fault is step `at + 1`, the reconciles step `at + 2`.
        failing_step.insert(scenario.name.clone(), at + 2);
        faulted.push(scenario);
    }
    // A control, after them on the same lab: the restored controller
    // reconciles again, so the unmodified scenario passes.
    let mut control = reconciling
        .iter()
        .find(|s| s.name == "pinned-digest-ignores-latest")
        .expect("shipped")
        .clone();
    control.name = "control-pinned-digest".into();
    assert!(!control.disrupts_lab());
    let mut scenarios = faulted;
    scenarios.push(control);

    let opts = LabOptions::new(LabKind::Local);
    let lab = session::start(&opts, &progress)
        .await
        .expect("local lab starts");
    let tmp = tempfile::tempdir().unwrap();
    let mut run_opts = RunOptions::new(runner::new_run_id(), tmp.path().join("report"));
    // More than one slot, so that running alone is the runner's doing.
    run_opts.jobs = 3;
    run_opts.progress = progress.clone();
    // A running controller acknowledges a refresh well within a second;
    // this only bounds how long each scenario waits for a stopped one.
    run_opts.reconcile_budget = Duration::from_secs(5);
    let summary = runner::run(lab.lab(), scenarios, run_opts).await;
    // The lab's record of its processes (what `lab status` and `--reuse`
    // read) names the restarted controller, alive.
    let state = harness_labs::local::LabState::load(&lab.lab().state_dir().expect("a local lab"))
        .expect("lab.json");
    let controllers_after: Vec<u32> = state
        .children
        .iter()
        .filter(|c| c.name == "argocd-application-controller")
        .map(|c| c.pid)
        .filter(|&pid| harness_core::process::alive(pid))
        .collect();
    lab.shutdown(&opts, &progress, None)
        .await
        .expect("lab stops");

    let mut problems = Vec::new();
    for report in &summary.scenarios {
        if report.name == "control-pinned-digest" {
            if report.status != ScenarioStatus::Passed {
                problems.push(format!(
                    "the control failed after the faulted scenarios: {}",
                    report
                        .failure
                        .as_ref()
                        .map(|f| f.headline())
                        .unwrap_or_default()
                ));
            }
            continue;
        }
        let Some(failure) = report.failure.as_ref() else {
            problems.push(format!(
                "{} passed with the controller stopped",
                report.name
            ));
            continue;
        };
        let want = failing_step[&report.name];
        if (failure.phase.as_str(), failure.index, failure.kind.as_str())
            != ("steps", want, "expect")
            || !failure.message.contains("did not reconcile")
            || !failure
                .message
                .contains("is the application controller running?")
        {
            problems.push(format!(
                "{}: wanted the reconciles expect (step {want}) to fail for want of a reconciliation, got {}",
                report.name,
                failure.headline()
            ));
        }
        if !report.log.iter().any(|line| {
            line.starts_with("restored after the steps: started argocd-application-controller")
        }) {
            problems.push(format!(
                "{}: the runner did not start the controller again: {:?}",
                report.name, report.log
            ));
        }
        if !report.cleanup_problems.is_empty() {
            problems.push(format!(
                "{}: cleanup: {:?}",
                report.name, report.cleanup_problems
            ));
        }
    }
    assert_eq!(summary.scenarios.len(), RECONCILING.len() + 1);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert_eq!(
        controllers_after.len(),
        1,
        "one application controller runs at the end: {:?}",
        state.children
    );
}

#[test]
fn fault_steps_are_checked_where_they_are_written() {
    let errors = common::load_scenario(
        "name: s
steps:
  - fault: {stop: argocd-aplication-controller}
  - fault: {}
  - fault: {stop: registry, start: registry}
  - fault: {restart: etcd}
",
        |_| {},
    )
    .expect_err("invalid");
    common::assert_errors(
        &errors,
        &[
            ("3:19: ", "did you mean `argocd-application-controller`?"),
            (
                "4:12: ",
                "`fault` needs one of `stop`, `start` or `restart`",
            ),
            ("5:12: ", "`fault` has 2 (stop, start)"),
            (
                "6:22: ",
                "`etcd` is not a lab component a fault can restart: one of registry",
            ),
        ],
    );
}
