//! The KIND lab for real: a kind cluster on the offline node image, the
//! lab registry, Argo CD from its install.yaml, all on this machine's
//! engine (podman's Docker API here), brought up once; the versioning
//! scenarios, a Helm chart and a signed artifact run on it through
//! `cargo xtask e2e`'s own code path, with one scenario that must fail,
//! and the lab is torn down after: nothing may be left.
//!
//! `cargo xtask test` builds the images before the tests start
//! (`KindLabConfig::test_suite`), so this test waits only for the lab.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use harness_core::progress::Progress;
use harness_e2e::E2eOptions;
use harness_labs::LabKind;
use harness_labs::container;
use harness_labs::kind::KindLabConfig;

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// File name -> the scenario's name, as the summary reports it.
const SCENARIOS: &[(&str, &str)] = &[
    ("tagged-release.yaml", "tagged-release-deploys"),
    ("latest-follows-digest.yaml", "latest-follows-digest"),
    ("pinned-digest.yaml", "pinned-digest-ignores-latest"),
    ("helm-chart-values.yaml", "helm-chart-values"),
    ("signed-artifact-gate.yaml", "signed-artifact-gate"),
    // Fault steps on kind: the registry container stopped and started, the
    // controller's StatefulSet scaled to 0 and back.
    ("registry-outage-recovers.yaml", "registry-outage-recovers"),
    (
        "controller-down-catches-up.yaml",
        "controller-down-catches-up",
    ),
];

fn summary(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("summary.json"))
        .unwrap_or_else(|e| panic!("{}/summary.json: {e}", dir.display()));
    serde_json::from_str(&text).expect("summary.json is JSON")
}

/// What of the suite's lab exists on the engine: its node containers, its
/// registry container, its node volumes.
async fn residue(cfg: &KindLabConfig) -> Vec<String> {
    // Started again if it idled out while the lab talked only to its cluster.
    let engine = container::ensure_engine().await.expect("a Docker API");
    let mut found = Vec::new();
    let label = format!("io.x-k8s.kind.cluster={}", cfg.cluster_name);
    let containers = engine
        .docker
        .list_containers(Some(bollard::query_parameters::ListContainersOptions {
            all: true,
            ..Default::default()
        }))
        .await
        .expect("list containers");
    for c in containers {
        let names = c.names.unwrap_or_default().join(",");
        let labels = c.labels.unwrap_or_default();
        let of_cluster = labels
            .get("io.x-k8s.kind.cluster")
            .is_some_and(|v| *v == cfg.cluster_name);
        if of_cluster || names.trim_start_matches('/') == cfg.registry_name {
            found.push(format!("container {names}"));
        }
    }
    let volumes = engine
        .docker
        .list_volumes(None::<bollard::query_parameters::ListVolumesOptions>)
        .await
        .expect("list volumes");
    for v in volumes.volumes.unwrap_or_default() {
        if v.labels
            .get("io.x-k8s.kind.cluster")
            .is_some_and(|c| *c == cfg.cluster_name)
        {
            found.push(format!("volume {} ({label})", v.name));
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn scenarios_pass_on_a_real_kind_lab_and_nothing_is_left() {
    let cfg = KindLabConfig::test_suite();
    assert!(cfg.offline_images, "the suite runs the offline images");
    let before = residue(&cfg).await;
    assert!(
        before.is_empty(),
        "a KIND lab of the suite is already there ({before:?}): `cargo xtask lab down --lab kind` \
         with OCI_E2E_KIND_CLUSTER={} removes it",
        cfg.cluster_name
    );
    let tmp = tempfile::tempdir().expect("tempdir");
    let report = tmp.path().join("report");
    let must_fail = tmp.path().join("must-fail.yaml");
    std::fs::write(&must_fail, common::WRONG_EXPECTATION).expect("write the failing scenario");
    let opts = E2eOptions {
        paths: SCENARIOS
            .iter()
            .map(|(f, _)| repo_root().join("scenarios").join(f))
            .chain([must_fail])
            .collect(),
        lab: LabKind::Kind,
        report_dir: Some(report.clone()),
        keep: false,
        reuse: false,
        select: vec![],
        jobs: 3,
        names: vec![],
        shard: None,
        retries: 0,
        repeat: 1,
        existing: Default::default(),
        cancel: Default::default(),
        build_images: true,
        kind_config: Some(cfg.clone()),
        argocd_versions: vec![],
        registry: Default::default(),
    };
    let outcome = tokio::time::timeout(
        Duration::from_secs(1500),
        harness_e2e::run(opts, &Progress::quiet()),
    )
    .await
    .expect("the KIND lab run ends within 25 minutes");
    let left = residue(&cfg).await;
    assert!(
        left.is_empty(),
        "the run (with a failure) left {left:?} behind"
    );
    assert_eq!(
        outcome.code, 1,
        "exit 1: one scenario failed on purpose: {:?} {:?}",
        outcome.output, outcome.errors
    );

    let summary = summary(&report);
    assert_eq!(summary["lab"], "kind", "{summary}");
    let scenarios = summary["scenarios"].as_array().expect("scenarios");
    let mut names: Vec<&str> = scenarios
        .iter()
        .map(|s| s["name"].as_str().unwrap_or(""))
        .collect();
    names.sort_unstable();
    let mut want: Vec<&str> = SCENARIOS
        .iter()
        .map(|(_, n)| *n)
        .chain(["must-fail-wrong-data"])
        .collect();
    want.sort_unstable();
    assert_eq!(names, want, "exactly the selected scenarios ran");
    for s in scenarios {
        if s["name"] == "must-fail-wrong-data" {
            assert_eq!(s["status"], "failed", "{s}");
            let text = s.to_string();
            assert!(
                text.contains("9.9.9") && text.contains("1.0.0"),
                "the diff: {s}"
            );
            assert!(
                report
                    .join("diagnostics")
                    .join("must-fail-wrong-data")
                    .is_dir(),
                "diagnostics of the failure are collected from the cluster"
            );
        } else {
            assert_eq!(s["status"], "passed", "{s}");
        }
    }
    // Really on the cluster: the digests Argo CD reported came from the
    // registry the KIND lab runs, and the runs pushed through its port.
    let text = std::fs::read_to_string(report.join("summary.json")).expect("summary");
    assert!(
        text.contains(&format!("localhost:{}", cfg.registry_host_port))
            || text.contains(&cfg.registry_name),
        "the summary names the KIND lab's registry: {text}"
    );
    // Image builds leave nothing in the cache folder but the images.
    let work = cfg.cache_dir.join("kind-images");
    if let Ok(dir) = std::fs::read_dir(&work) {
        let builds: Vec<String> = dir
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("build-"))
            .collect();
        assert!(
            builds.is_empty(),
            "build folders left in {}: {builds:?}",
            work.display()
        );
    }
}
