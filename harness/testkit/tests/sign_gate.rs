//! The signature gate through the runner, on a real registry and a lab
//! without a cluster: `app: {requireSignature}` refuses an unsigned digest
//! and one signed with another key before anything reaches Kubernetes, and
//! lets a verified digest through (that step then fails only because this
//! lab has no cluster). `verify` with a cosign.pub file works the same way.

use std::path::Path;

use harness_core::progress::Progress;
use harness_engine::runner::{self, RunOptions, ScenarioStatus, StepStatus};
use harness_oci::sign::SigningKey;
use harness_scenario::{Scenario, load_file};

mod common;
use common::RegistryOnlyLab;

fn scenario(dir: &Path, name: &str, steps: &str) -> Scenario {
    let path = dir.join(format!("{name}.yaml"));
    let yaml = format!(
        "name: {name}\nsteps:\n  - push: {{files: {{a.yaml: \"kind: ConfigMap\"}}, repository: demo-app, tags: [v1.0.0], as: v1}}\n{steps}"
    );
    std::fs::write(&path, yaml).unwrap();
    load_file(&path).unwrap_or_else(|d| panic!("{name} does not load: {d:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn require_signature_refuses_unsigned_and_wrongly_signed_digests() {
    let dir = tempfile::tempdir().unwrap();
    let lab = RegistryOnlyLab::start(dir.path()).await;
    let other_pub = dir.path().join("other.pub");
    std::fs::write(&other_pub, SigningKey::generate().public_key().to_pem()).unwrap();
    let scenarios = vec![
        scenario(
            dir.path(),
            "unsigned",
            "  - app: {name: gated, repository: demo-app, revision: v1.0.0, requireSignature: {key: release}}\n",
        ),
        scenario(
            dir.path(),
            "wrong-key",
            "  - sign: {repository: demo-app, digest: \"${v1.digest}\", key: ci}\n  - app: {name: gated, repository: demo-app, revision: v1.0.0, requireSignature: {key: release}}\n",
        ),
        scenario(
            dir.path(),
            "signed",
            "  - sign: {repository: demo-app, digest: \"${v1.digest}\", key: release}\n  - verify: {repository: demo-app, digest: \"${v1.digest}\", publicKey: other.pub, expect: wrongKey}\n  - app: {name: gated, repository: demo-app, revision: v1.0.0, requireSignature: {key: release}}\n",
        ),
    ];
    let mut opts = RunOptions::new("gate", dir.path().join("report"));
    opts.progress = Progress::quiet();
    opts.jobs = 3;
    let summary = runner::run(lab.clone(), scenarios, opts).await;

    let by_name = |name: &str| {
        summary
            .scenarios
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("{name} ran"))
    };
    for name in ["unsigned", "wrong-key", "signed"] {
        assert_eq!(by_name(name).status, ScenarioStatus::Failed, "{name}");
    }

    let app_step = |name: &str| {
        let steps = &by_name(name).steps;
        let step = steps.iter().find(|s| s.kind == "app").expect("an app step");
        assert_eq!(step.outcome, StepStatus::Failed, "{name}: {steps:#?}");
        assert!(
            steps
                .iter()
                .filter(|s| s.kind != "app")
                .all(|s| s.outcome == StepStatus::Passed),
            "{name}: only the app step fails: {steps:#?}"
        );
        step.message.clone()
    };
    let unsigned = app_step("unsigned");
    assert!(
        unsigned.contains("refusing to point Application gated-")
            && unsigned.contains("no cosign signature")
            && unsigned.contains(".sig")
            && unsigned.contains("run key `release`"),
        "{unsigned}"
    );
    let wrong = app_step("wrong-key");
    assert!(
        wrong.contains("refusing to point Application")
            && wrong.contains("does not verify with key"),
        "{wrong}"
    );
    // The verified digest passes the gate: what fails is reaching a cluster
    // that is not there, not the signature.
    let signed = app_step("signed");
    assert!(
        !signed.contains("refusing") && signed.contains("applying Application gated-"),
        "{signed}"
    );
}
