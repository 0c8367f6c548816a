//! `--lab existing` for real. A local lab started detached (as `lab up` /
//! `--keep` leave it) plays the shared cluster someone else runs; two runs
//! of the project's scenarios go at it at the same time through
//! `harness_e2e::run`, the code behind `cargo xtask e2e --lab existing`.
//! Both pass, and afterwards neither left an Application, a namespace or
//! its repo-creds secret. The lab's binaries come from the tool cache
//! (`cargo xtask test` provisions them first).

use std::collections::BTreeSet;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::FutureExt as _;
use harness_core::progress::Progress;
use harness_e2e::{self as e2e, E2eOptions};
use harness_labs::existing::{ExistingLab, ExistingLabConfig, ExistingLabError, secret_name};
use harness_labs::local::{self, LabState, LocalLab, LocalLabConfig};
use harness_labs::session;
use harness_labs::{Lab, LabKind};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, DynamicObject, ListParams};

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Fast scenarios of the project that need nothing beyond the lab.
const SCENARIOS: [&str; 5] = [
    "latest-follows-digest.yaml",
    "tagged-release.yaml",
    "semver-constraint.yaml",
    "prune-removed-object.yaml",
    "manual-sync.yaml",
];

fn existing_config(state: &LabState, tmp: &Path) -> ExistingLabConfig {
    ExistingLabConfig {
        kubeconfig: Some(state.kubeconfig.clone()),
        registry: Some(state.registry.clone()),
        plain_http: true,
        // Not the user's ~/.docker/config.json: anonymous, as the lab registry is.
        docker_config: Some(tmp.join("no-docker-config.json")),
        ..ExistingLabConfig::default()
    }
}

fn options(config: ExistingLabConfig, report: PathBuf) -> E2eOptions {
    E2eOptions {
        paths: SCENARIOS
            .iter()
            .map(|f| repo_root().join("scenarios").join(f))
            .collect(),
        lab: LabKind::Existing,
        report_dir: Some(report),
        keep: false,
        reuse: false,
        select: vec![],
        jobs: 3,
        names: vec![],
        shard: None,
        retries: 0,
        repeat: 1,
        existing: config,
        cancel: Default::default(),
        build_images: false,
        kind_config: None,
        argocd_versions: vec![],
        registry: Default::default(),
    }
}

fn summary(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("summary.json"))
        .unwrap_or_else(|e| panic!("{}/summary.json: {e}", dir.display()));
    serde_json::from_str(&text).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_concurrent_runs_on_one_existing_cluster_pass_and_leave_nothing_behind() {
    harness_core::init_crypto();
    let root = tempfile::tempdir().unwrap();
    let binaries = session::local_binaries(&Progress::new(), harness_labs::ARGOCD_VERSION)
        .await
        .expect("provision the local lab's tools");
    let cfg = LocalLabConfig {
        binaries,
        labs_root: root.path().to_path_buf(),
        detached: true,
        reconciliation: Duration::from_secs(10),
        argocd_version: harness_labs::ARGOCD_VERSION.to_string(),
        registry: Default::default(),
        seeds: harness_labs::local::seed::seeds_dir_from_env(
            &harness_tools::cache::default_cache_root(),
        ),
    };
    let lab = LocalLab::up(&cfg, &Progress::new())
        .await
        .expect("local lab starts");
    let state = lab.state().clone();
    let client = lab.kube();
    // Forget it, as a `lab up` process that has exited would: from here on
    // it is "a cluster someone else runs".
    drop(lab);

    let body = AssertUnwindSafe(check_on_kept_lab(&state, client, root.path())).catch_unwind();
    let outcome = body.await;
    local::down(root.path(), &Progress::new())
        .await
        .expect("lab down");
    assert!(
        harness_core::process::find_by_cmdline(root.path()).is_empty(),
        "lab processes left"
    );
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

async fn check_on_kept_lab(state: &LabState, client: kube::Client, tmp: &Path) {
    // Bad input to the lab is a clear error, before anything is created.
    let mut wrong_namespace = existing_config(state, tmp);
    wrong_namespace.argocd_namespace = "not-argocd".into();
    let error = ExistingLab::connect(&wrong_namespace, &Progress::new())
        .await
        .err()
        .expect("no such namespace");
    assert!(
        matches!(error, ExistingLabError::NoArgoNamespace { .. }),
        "{error}"
    );
    assert!(error.to_string().contains("--argocd-namespace"), "{error}");
    let mut wrong_scheme = existing_config(state, tmp);
    wrong_scheme.plain_http = false;
    let error = ExistingLab::connect(&wrong_scheme, &Progress::new())
        .await
        .err()
        .expect("the lab registry speaks plain HTTP");
    assert!(
        matches!(error, ExistingLabError::RegistryUnreachable { .. }),
        "{error}"
    );
    assert!(error.to_string().contains("--plain-http"), "{error}");

    // Two runs at once; the first also creates (and must remove) its own
    // repo-creds secret, the second repeats every scenario twice.
    let mut first = existing_config(state, tmp);
    first.create_repo_creds = true;
    let second = existing_config(state, tmp);
    let (report_a, report_b) = (tmp.join("report-a"), tmp.join("report-b"));
    let mut options_b = options(second, report_b.clone());
    options_b.repeat = 2;
    let progress = Progress::new();
    let (out_a, out_b) = tokio::join!(
        e2e::run(options(first, report_a.clone()), &progress),
        e2e::run(options_b, &progress),
    );
    let (code_a, code_b) = (out_a.code, out_b.code);
    let (a, b) = (summary(&report_a), summary(&report_b));
    assert_eq!((code_a, code_b), (0, 0), "both pass:\n{a:#}\n{b:#}");
    for s in [&a, &b] {
        assert_eq!(s["lab"], "existing");
        assert!(s["argocdVersion"].is_string());
    }
    assert_ne!(a["runId"], b["runId"]);
    assert_eq!(a["passed"], SCENARIOS.len());
    assert_eq!(b["passed"], 2 * SCENARIOS.len(), "each scenario twice");
    let names_b: BTreeSet<String> = b["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect();
    assert!(names_b.contains("semver-constraint#1") && names_b.contains("semver-constraint#2"));

    // Every scenario run had its own names: no suffix shared across runs or repetitions.
    let suffixes: Vec<String> = [&a, &b]
        .iter()
        .flat_map(|s| s["scenarios"].as_array().unwrap().iter())
        .map(|s| s["suffix"].as_str().unwrap().to_string())
        .collect();
    let unique: BTreeSet<&String> = suffixes.iter().collect();
    assert_eq!(unique.len(), suffixes.len(), "{suffixes:?}");

    // Nothing of either run is left: Applications, namespaces, the secret.
    let apps: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        "argocd",
        &harness_engine::argocd::application_resource(),
    );
    for s in [&a, &b] {
        let run_label = harness_engine::isolation::label_value(s["runId"].as_str().unwrap());
        let left = apps
            .list(&ListParams::default().labels(&format!("oci-e2e.dev/run-id={run_label}")))
            .await
            .unwrap();
        assert!(left.items.is_empty(), "Applications left: {:?}", left.items);
    }
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "argocd");
    let secret = secret_name(a["runId"].as_str().unwrap());
    assert!(
        secrets.get_opt(&secret).await.unwrap().is_none(),
        "repo-creds secret {secret} left"
    );
    assert!(
        secrets
            .get_opt("oci-e2e-lab-registry")
            .await
            .unwrap()
            .is_some(),
        "the lab's own secret is not ours to delete"
    );
    // Namespace deletion is asynchronous (finalizers): wait for it, bounded.
    let namespaces: Api<Namespace> = Api::all(client);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let left: Vec<String> = namespaces
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter_map(|n| n.metadata.name)
            .filter(|n| suffixes.iter().any(|s| n.ends_with(&format!("-{s}"))))
            .collect();
        if left.is_empty() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "namespaces of the runs still there: {left:?}"
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}
