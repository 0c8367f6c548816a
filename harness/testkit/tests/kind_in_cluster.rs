//! The KIND lab's in-cluster half for real, on a machine without Docker:
//! the plan's Kubernetes actions (local-registry-hosting ConfigMap, Argo
//! CD's pinned install.yaml applied server-side, argocd-cm settings and
//! restarts, repo-creds Secret, readiness wait) run against the local
//! lab's real kube-apiserver, controller-manager, scheduler and kwok (which
//! marks the install's pods ready), exactly as `up` runs them against a
//! kind cluster.
//!
//! install.yaml cannot be downloaded here; it is taken from Argo CD's Go
//! module (the Go module proxy is reachable, and the local lab's tools
//! fetched the module already), which also checks the pinned SHA-256
//! against a second source: the cache is used only when it matches.

use std::path::PathBuf;
use std::time::Duration;

use harness_core::progress::Progress;
use harness_engine::lab::Lab;
use harness_labs::kind::{self, KindAction, KindLabConfig};
use harness_labs::local::{LocalLab, LocalLabConfig};
use harness_labs::session;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;

/// `manifests/install.yaml` of Argo CD `version` from its Go module
/// (`go mod download` is a no-op when the module is cached).
fn install_yaml_from_go_module(version: &str) -> PathBuf {
    let go = ["go", "/usr/local/go/bin/go"]
        .into_iter()
        .find(|g| {
            std::process::Command::new(g)
                .arg("version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .expect("a Go toolchain (the local lab's tools need one too)");
    let scratch = tempfile::tempdir().expect("tempdir");
    let out = std::process::Command::new(go)
        .args([
            "mod",
            "download",
            "-json",
            &format!("github.com/argoproj/argo-cd/v3@{version}"),
        ])
        .current_dir(scratch.path())
        .env("GO111MODULE", "on")
        .env("GOFLAGS", "-mod=mod")
        .env("GOWORK", "off")
        .output()
        .expect("run go mod download");
    assert!(
        out.status.success(),
        "go mod download failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let info: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("go mod download -json output");
    let dir = info["Dir"].as_str().expect("module Dir");
    PathBuf::from(dir).join("manifests/install.yaml")
}

/// Phase, conditions and node of each pod in argocd (for failures).
async fn pod_summary(client: &kube::Client) -> String {
    use k8s_openapi::api::core::v1::Pod;
    let pods = match Api::<Pod>::namespaced(client.clone(), "argocd")
        .list(&Default::default())
        .await
    {
        Ok(p) => p,
        Err(e) => return format!("(cannot list pods: {e})"),
    };
    let events = Api::<k8s_openapi::api::core::v1::Event>::namespaced(client.clone(), "argocd")
        .list(&Default::default())
        .await
        .map(|l| {
            l.items
                .iter()
                .filter(|e| e.type_.as_deref() == Some("Warning"))
                .map(|e| {
                    format!(
                        "  event {}: {}",
                        e.reason.clone().unwrap_or_default(),
                        e.message.clone().unwrap_or_default()
                    )
                })
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default();
    let lines: Vec<String> = pods
        .items
        .iter()
        .map(|p| {
            let st = p.status.clone().unwrap_or_default();
            let conds: Vec<String> = st
                .conditions
                .unwrap_or_default()
                .iter()
                .map(|c| format!("{}={}", c.type_, c.status))
                .collect();
            format!(
                "  {} phase={} node={} {}",
                p.metadata.name.clone().unwrap_or_default(),
                st.phase.unwrap_or_default(),
                p.spec
                    .as_ref()
                    .and_then(|s| s.node_name.clone())
                    .unwrap_or_default(),
                conds.join(",")
            )
        })
        .collect();
    format!("{}\n{events}", lines.join("\n"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plan_provisions_argo_cd_in_a_real_cluster_and_is_idempotent() {
    harness_core::init_crypto();
    let progress = Progress::new();
    let root = tempfile::tempdir().expect("tempdir");
    let binaries = session::local_binaries(&progress, harness_labs::ARGOCD_VERSION)
        .await
        .expect("provision the local lab's tools");
    let local_cfg = LocalLabConfig {
        binaries,
        labs_root: root.path().to_path_buf(),
        detached: false,
        // Not the kind plan's 10s: the settings step below must find
        // argocd-cm different, change it and restart the controller, as on
        // a fresh install whose argocd-cm has no settings at all.
        reconciliation: Duration::from_secs(37),
        argocd_version: harness_labs::ARGOCD_VERSION.to_string(),
        registry: Default::default(),
        seeds: harness_labs::local::seed::seeds_dir_from_env(
            &harness_tools::cache::default_cache_root(),
        ),
    };
    let lab = LocalLab::up(&local_cfg, &progress)
        .await
        .expect("local lab (the cluster under test) starts");
    let client = lab.kube();
    let before = Api::<ConfigMap>::namespaced(client.clone(), "argocd")
        .get("argocd-cm")
        .await
        .expect("the local lab's argocd-cm");
    assert_eq!(
        before
            .data
            .unwrap_or_default()
            .get("timeout.reconciliation")
            .map(String::as_str),
        Some("37s"),
        "the settings step must have something to change"
    );

    let cache = tempfile::tempdir().expect("tempdir");
    let cfg = KindLabConfig {
        cache_dir: cache.path().to_path_buf(),
        ..KindLabConfig::default()
    };
    let plan = kind::plan(&cfg).expect("plan");
    let cached = kind::install_cache_path(&cfg);
    std::fs::create_dir_all(cached.parent().expect("parent")).expect("mkdir");
    let module_copy = install_yaml_from_go_module(&cfg.argocd_version);
    std::fs::copy(&module_copy, &cached).expect("seed the install.yaml cache");
    let bytes = std::fs::read(&cached).expect("read");
    assert_eq!(
        Some(kind::sha256_hex(&bytes).as_str()),
        kind::pinned_install_sha256(&cfg.argocd_version),
        "the pinned checksum must match install.yaml in Argo CD's Go module"
    );

    // Everything but the readiness wait: this cluster's kwok node is not
    // kept Ready, so the install's pods never turn Ready here (they do on
    // kind, in the nightly run). The wait itself is checked below.
    let mut without_wait = plan.clone();
    without_wait
        .actions
        .retain(|a| !matches!(a, KindAction::WaitReady { .. }));
    assert_eq!(without_wait.actions.len() + 1, plan.actions.len());
    let result = kind::provision_in_cluster(&client, &without_wait, &progress).await;
    if let Err(e) = &result {
        let pods = pod_summary(&client).await;
        let _ = lab.shutdown(root.path(), None).await;
        panic!("provisioning failed: {e}\npods in argocd:\n{pods}");
    }

    // KEP-1755 ConfigMap, as planned.
    let planned_hosting = plan
        .actions
        .iter()
        .find_map(|a| match a {
            KindAction::ConfigMap { data, .. } => Some(data.clone()),
            _ => None,
        })
        .expect("planned ConfigMap");
    let cm = Api::<ConfigMap>::namespaced(client.clone(), "kube-public")
        .get("local-registry-hosting")
        .await
        .expect("local-registry-hosting exists");
    assert_eq!(cm.data, Some(planned_hosting));

    // install.yaml applied: CRDs and the workloads.
    let crds = Api::<CustomResourceDefinition>::all(client.clone());
    for name in [
        "applications.argoproj.io",
        "applicationsets.argoproj.io",
        "appprojects.argoproj.io",
    ] {
        assert!(
            crds.get_opt(name).await.expect("read CRD").is_some(),
            "{name}"
        );
    }
    let deployments = Api::<Deployment>::namespaced(client.clone(), "argocd");
    let repo = deployments
        .get("argocd-repo-server")
        .await
        .expect("argocd-repo-server deployment");
    let image = repo
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .map(|p| p.containers[0].image.clone());
    assert_eq!(
        image.flatten(),
        Some(format!("quay.io/argoproj/argocd:{}", cfg.argocd_version))
    );

    // Settings, and the restart that makes the controller read them.
    let argocd_cm = Api::<ConfigMap>::namespaced(client.clone(), "argocd")
        .get("argocd-cm")
        .await
        .expect("argocd-cm");
    let data = argocd_cm.data.unwrap_or_default();
    assert_eq!(
        data.get("timeout.reconciliation").map(String::as_str),
        Some("10s")
    );
    assert_eq!(
        data.get("timeout.reconciliation.jitter")
            .map(String::as_str),
        Some("0s")
    );
    let restarted_at = |annotations: Option<std::collections::BTreeMap<String, String>>| {
        annotations.and_then(|a| a.get("kubectl.kubernetes.io/restartedAt").cloned())
    };
    let sts = Api::<StatefulSet>::namespaced(client.clone(), "argocd")
        .get("argocd-application-controller")
        .await
        .expect("controller statefulset");
    let sts_restart = restarted_at(
        sts.spec
            .and_then(|s| s.template.metadata)
            .and_then(|m| m.annotations),
    );
    assert!(
        sts_restart.is_some(),
        "the controller was not restarted after the settings changed"
    );

    // repo-creds for the registry as pods reach it.
    let secret = Api::<Secret>::namespaced(client.clone(), "argocd")
        .get(kind::REPO_CREDS_SECRET)
        .await
        .expect("secret");
    let labels = secret.metadata.labels.unwrap_or_default();
    assert_eq!(
        labels
            .get("argocd.argoproj.io/secret-type")
            .map(String::as_str),
        Some("repo-creds")
    );
    let data: std::collections::BTreeMap<String, String> = secret
        .data
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
        .collect();
    assert_eq!(
        data.get("url").map(String::as_str),
        Some("oci://kind-registry:5000")
    );
    assert_eq!(data.get("type").map(String::as_str), Some("oci"));
    assert_eq!(
        data.get("insecureOCIForceHttp").map(String::as_str),
        Some("true")
    );

    // Component logs find the install's pods by their labels (kwok serves
    // no logs, so the tails here say why they are missing).
    let kind_lab = kind::KindLab::with_client(&cfg, client.clone());
    assert_eq!(kind_lab.registry().address, "localhost:5001");
    assert_eq!(kind_lab.registry_for_argo(), "kind-registry:5000");
    let logs = kind_lab.component_logs(5).await;
    let components: Vec<&str> = logs.iter().map(|l| l.component.as_str()).collect();
    assert!(
        components
            .iter()
            .any(|c| c.starts_with("argocd-repo-server (argocd-repo-server-"))
            && components
                .contains(&"argocd-application-controller (argocd-application-controller-0)"),
        "{components:?}"
    );

    // The readiness wait: satisfied by what exists (the AppProject), and
    // naming what is missing when it gives up.
    let wait = |workloads: Vec<String>, timeout: Duration| kind::KindPlan {
        actions: vec![KindAction::WaitReady {
            namespace: "argocd".into(),
            workloads,
            app_project: "default".into(),
            timeout,
        }],
        ..plan.clone()
    };
    // A workload that is ready on this cluster too (no pods to wait for):
    // the wait must look at it and let it pass, not pass an empty list.
    let zero: Deployment = serde_json::from_value(serde_json::json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "oci-e2e-zero", "namespace": "argocd"},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": "oci-e2e-zero"}},
            "template": {
                "metadata": {"labels": {"app": "oci-e2e-zero"}},
                "spec": {"containers": [{"name": "c", "image": "registry.invalid/none"}]}
            }
        }
    }))
    .expect("a Deployment");
    let created = Api::<Deployment>::namespaced(client.clone(), "argocd")
        .create(&Default::default(), &zero)
        .await;
    let ready = kind::provision_in_cluster(
        &client,
        &wait(
            vec!["deployment/oci-e2e-zero".into()],
            Duration::from_secs(30),
        ),
        &progress,
    )
    .await;
    let missing = kind::provision_in_cluster(
        &client,
        &wait(
            vec!["deployment/oci-e2e-absent".into()],
            Duration::from_secs(2),
        ),
        &progress,
    )
    .await;

    // A second run reuses everything: no second restart.
    let again = kind::provision_in_cluster(&client, &without_wait, &progress).await;
    let sts = Api::<StatefulSet>::namespaced(client.clone(), "argocd")
        .get("argocd-application-controller")
        .await;
    let shutdown = lab.shutdown(root.path(), None).await;
    again.expect("second provisioning (reuse)");
    let sts = sts.expect("controller statefulset");
    assert_eq!(
        restarted_at(
            sts.spec
                .and_then(|s| s.template.metadata)
                .and_then(|m| m.annotations)
        ),
        sts_restart,
        "unchanged settings must not restart the controller"
    );
    shutdown.expect("local lab shuts down");
    created.expect("create deployment/oci-e2e-zero");
    ready.expect("the default AppProject exists and deployment/oci-e2e-zero is ready");
    let err = missing.expect_err("an absent deployment never becomes ready");
    let msg = err.to_string();
    assert!(matches!(err, kind::KindError::Timeout { .. }), "{err:?}");
    assert!(
        msg.contains("deployment/oci-e2e-absent: not found"),
        "{msg}"
    );
}
