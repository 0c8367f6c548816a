//! The synthetic run behind the report snapshots (`runner_report.rs`) and
//! the browser check of its page (`report_browser.rs`): one passed, one
//! failed, one cancelled scenario, with fixed times.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use harness_engine::runner::{
    Failure, RunSummary, ScenarioReport, ScenarioStatus, StepRecord, StepStatus,
};
use harness_engine::steps::StepDigest;
use harness_scenario::Location;
use serde_json::json;

pub fn location(line: u32) -> Location {
    Location {
        file: PathBuf::from("scenarios/latest.yaml"),
        line,
        column: 5,
    }
}

pub fn step(
    index: usize,
    kind: &str,
    description: &str,
    outcome: StepStatus,
    message: &str,
) -> StepRecord {
    StepRecord {
        index,
        kind: kind.into(),
        name: None,
        description: description.into(),
        location: location(4 + 6 * index as u32),
        // Steps run one after another: step k starts when k-1 ends.
        started_after: (outcome != StepStatus::Skipped)
            .then(|| Duration::from_millis(200 + 600 * (index * (index - 1)) as u64)),
        duration: Duration::from_millis(1200 * index as u64),
        outcome,
        message: message.into(),
        digests: vec![],
        observed: None,
    }
}

pub fn summary() -> RunSummary {
    let digest = "sha256:5f4c0e1b2d3a4958677685a4b3c2d1e0f9e8d7c6b5a49382716051f4e3d2c1b0";
    let mut push = step(
        1,
        "push",
        "demo-app:v1.0.0,latest",
        StepStatus::Passed,
        &format!("pushed {digest} as v1 (2 blobs uploaded, 0 skipped)"),
    );
    push.digests = vec![StepDigest {
        repository: "e2e-run/latest-follows-digest-k3x9q2a/demo-app".into(),
        digest: digest.into(),
        tags: vec!["v1.0.0".into(), "latest".into()],
        binding: Some("v1".into()),
        blobs_uploaded: Some(2),
        blobs_skipped: Some(0),
    }];
    let mut expect_ok = step(
        3,
        "expect",
        "demo Synced Healthy within 2m",
        StepStatus::Passed,
        "sync=Synced health=Healthy (4 probes, 3.1s)",
    );
    expect_ok.observed = Some(json!({"sync": "Synced", "health": "Healthy", "revision": digest}));
    let failure_message = "ConfigMap demo-k3x9q2a/demo-config: not met within 1m (23 probes over 60.0s)\n  data.version: expected \"2.0.0\", found \"1.0.0\"\n  last observed: ConfigMap demo-k3x9q2a/demo-config does not match";
    let mut expect_failed = step(
        4,
        "expect",
        "ConfigMap demo/demo-config matches within 1m",
        StepStatus::Failed,
        failure_message,
    );
    expect_failed.observed =
        Some(json!({"present": true, "matched": {"data": {"version": "1.0.0"}}}));
    let failed = ScenarioReport {
        name: "latest-follows-digest".into(),
        file: PathBuf::from("scenarios/latest.yaml"),
        status: ScenarioStatus::Failed,
        suffix: "k3x9q2a".into(),
        started: "2026-11-29T10:00:01Z".into(),
        duration: Duration::from_millis(71234),
        failure: Some(Failure {
            phase: "steps".into(),
            index: 4,
            kind: "expect".into(),
            location: Some(location(28)),
            message: failure_message.into(),
        }),
        skipped: None,
        steps: vec![
            push,
            step(
                2,
                "app",
                "demo demo-app@latest -> demo (auto)",
                StepStatus::Passed,
                "applied Application demo-k3x9q2a",
            ),
            expect_ok,
            expect_failed,
            step(
                5,
                "delete",
                "demo",
                StepStatus::Skipped,
                "not run: an earlier step failed",
            ),
        ],
        finally: vec![StepRecord {
            started_after: Some(Duration::from_millis(12700)),
            ..step(
                1,
                "delete",
                "demo",
                StepStatus::Passed,
                "deleted Application demo-k3x9q2a",
            )
        }],
        cleanup_problems: vec![],
        diagnostics: Some(PathBuf::from(
            "target/e2e/run/diagnostics/latest-follows-digest",
        )),
        log: vec![
            "scenario latest-follows-digest (names suffixed -k3x9q2a)".into(),
            "step 1/5 push demo-app:v1.0.0,latest: ok (1.2s)".into(),
            "step 4/5 expect ConfigMap demo/demo-config matches within 1m: FAILED (60.0s)".into(),
        ],
    };
    let passed = ScenarioReport {
        name: "pinned-digest".into(),
        file: PathBuf::from("scenarios/pinned.yaml"),
        status: ScenarioStatus::Passed,
        suffix: "a8b7c6d".into(),
        started: "2026-11-29T10:00:01Z".into(),
        duration: Duration::from_millis(12345),
        failure: None,
        steps: vec![step(1, "push", "demo-app:v1", StepStatus::Passed, "pushed")],
        finally: vec![],
        cleanup_problems: vec![],
        diagnostics: None,
        log: vec!["step 1/1 push demo-app:v1: ok (1.2s)".into()],
        skipped: None,
    };
    let cancelled = ScenarioReport {
        name: "semver-range".into(),
        file: PathBuf::from("scenarios/semver.yaml"),
        status: ScenarioStatus::Cancelled,
        suffix: "zz00yy1".into(),
        started: String::new(),
        duration: Duration::ZERO,
        failure: Some(Failure {
            phase: String::new(),
            index: 0,
            kind: String::new(),
            location: None,
            message: "the run was cancelled before this scenario started".into(),
        }),
        skipped: None,
        steps: vec![step(
            1,
            "push",
            "demo-app:v1",
            StepStatus::Skipped,
            "not run: the run was cancelled before this scenario started",
        )],
        finally: vec![],
        cleanup_problems: vec![],
        diagnostics: None,
        log: vec![],
    };
    let mut summary = RunSummary {
        run_id: "20261129-100000-ab12".into(),
        lab: "local".into(),
        argocd_version: "v3.3.10".into(),
        started: "2026-11-29T10:00:00Z".into(),
        finished: "2026-11-29T10:01:13Z".into(),
        duration: Duration::from_millis(73456),
        passed: 0,
        failed: 0,
        cancelled: 0,
        flaky: 0,
        skipped: 0,
        shard: None,
        scenarios: vec![passed, failed, cancelled],
        report_problems: vec![],
    };
    summary.count();
    summary
}

/// The failed scenario's diagnostics folder in the fixture.
pub const DIAGNOSTICS: &str = "target/e2e/run/diagnostics/latest-follows-digest";

/// The expect's message as the matcher writes it: problems, the last
/// observation, then a unified diff of expected against observed.
pub const DIFF_MESSAGE: &str =
    "ConfigMap demo-k3x9q2a/demo-config: not met within 1m (23 probes over 60.0s)
  data.version: expected \"2.0.0\", found \"1.0.0\"
  last observed: ConfigMap demo-k3x9q2a/demo-config does not match
--- expected
+++ observed
@@ -1,2 +1,2 @@
 data:
-  version: 2.0.0
+  version: 1.0.0";

pub fn diagnostics_files() -> harness_engine::report::DiagnosticsFiles {
    harness_engine::report::DiagnosticsFiles {
        applications: Some(
            "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: demo-k3x9q2a\n  namespace: argocd\nstatus:\n  sync:\n    status: OutOfSync\n    revision: sha256:5f4c0e1b2d3a4958677685a4b3c2d1e0f9e8d7c6b5a49382716051f4e3d2c1b0\n  health:\n    status: Healthy\n  operationState:\n    phase: Succeeded\n    message: successfully synced (all tasks run)\n  conditions:\n  - type: ComparisonError\n    message: 'failed to load target state: <unknown> & more'\n".into(),
        ),
        registry: Some(
            "registry 127.0.0.1:5000\ne2e-run/latest-follows-digest-k3x9q2a/demo-app:\n  latest -> sha256:5f4c0e1b2d3a4958677685a4b3c2d1e0f9e8d7c6b5a49382716051f4e3d2c1b0\n  v1.0.0 -> sha256:5f4c0e1b2d3a4958677685a4b3c2d1e0f9e8d7c6b5a49382716051f4e3d2c1b0\n".into(),
        ),
        events: Some("2026-11-29T10:00:05Z demo-k3x9q2a Normal Created ConfigMap/demo-config: created\n".into()),
        logs: vec![(
            "argocd-repo-server".into(),
            "time=10:00:04 level=info msg=\"manifest cache miss\"\ntime=10:00:05 level=info msg=\"generated manifests\"\n".into(),
        )],
        problems: None,
        unreadable: vec![],
    }
}

/// The fixture with the matcher's diff in the failed step's message.
pub fn summary_with_diff() -> RunSummary {
    let mut summary = summary();
    summary.scenarios[1].steps[3].message = DIFF_MESSAGE.into();
    summary.scenarios[1].failure.as_mut().unwrap().message = DIFF_MESSAGE.into();
    summary
}

pub fn page(summary: &RunSummary) -> String {
    let diagnostics = BTreeMap::from([(PathBuf::from(DIAGNOSTICS), diagnostics_files())]);
    harness_engine::report::html_report(summary, &diagnostics)
}
