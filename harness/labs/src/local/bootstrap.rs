//! Objects the local lab creates so Argo CD can run without its
//! argocd-server and without its install manifest: CRDs, `argocd-cm`
//! (with the `part-of` label Argo CD filters on), `argocd-secret`, the
//! `default` AppProject (normally created by argocd-server), and a
//! `repo-creds` secret that covers every repository on the lab registry.

use std::path::Path;
use std::time::Duration;

use kube::Client;
use serde_json::json;

use super::ARGOCD_NAMESPACE;
use crate::kubeutil;

/// The fake node kwok manages.
pub const FAKE_NODE: &str = "kwok-node-0";

pub async fn create_fake_node(client: &Client) -> anyhow::Result<()> {
    let node = json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": FAKE_NODE,
            "annotations": {"node.alpha.kubernetes.io/ttl": "0", "kwok.x-k8s.io/node": "fake"},
            "labels": {
                "kubernetes.io/hostname": FAKE_NODE,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "kubernetes.io/role": "agent",
                "type": "kwok"
            }
        },
        "spec": {},
        "status": {
            "allocatable": {"cpu": "32", "memory": "256Gi", "pods": "110"},
            "capacity": {"cpu": "32", "memory": "256Gi", "pods": "110"}
        }
    });
    kubeutil::apply_documents(client, &[node], "default").await
}

/// The CRD files of Argo CD's `manifests/crds` that the lab needs.
const CRD_FILES: [&str; 3] = [
    "application-crd.yaml",
    "appproject-crd.yaml",
    "applicationset-crd.yaml",
];

pub async fn install_argocd(
    client: &Client,
    crds_dir: &Path,
    registry: &str,
    reconciliation: Duration,
    argocd_version: &str,
) -> anyhow::Result<()> {
    let mut crds = Vec::new();
    for file in CRD_FILES {
        let path = crds_dir.join(file);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            anyhow::anyhow!(
                "cannot read Argo CD CRD {}: {e}; run `cargo xtask tools` to provision Argo CD",
                path.display()
            )
        })?;
        crds.extend(kubeutil::parse_documents(
            &text,
            &path.display().to_string(),
        )?);
    }
    kubeutil::apply_documents(client, &crds, "default").await?;
    let names: Vec<String> = crds
        .iter()
        .filter_map(|c| c["metadata"]["name"].as_str().map(String::from))
        .collect();
    kubeutil::wait_crds_established(client, &names, Duration::from_secs(60)).await?;

    let part_of = json!({"app.kubernetes.io/part-of": "argocd"});
    let secs = reconciliation.as_secs().max(1);
    let objects = vec![
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ARGOCD_NAMESPACE}}),
        json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            // The version label is how `--lab existing` tells which Argo CD
            // runs when there is no pod image to read it from.
            "metadata": {"name": "argocd-cm", "namespace": ARGOCD_NAMESPACE, "labels": {
                "app.kubernetes.io/part-of": "argocd",
                "app.kubernetes.io/version": argocd_version
            }},
            "data": {"timeout.reconciliation": format!("{secs}s"), "timeout.reconciliation.jitter": "0s"}
        }),
        json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "argocd-rbac-cm", "namespace": ARGOCD_NAMESPACE, "labels": part_of},
        }),
        json!({
            "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": "argocd-secret", "namespace": ARGOCD_NAMESPACE, "labels": part_of},
            "stringData": {"server.secretkey": random_secret()}
        }),
        json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "AppProject",
            "metadata": {"name": "default", "namespace": ARGOCD_NAMESPACE},
            "spec": {
                "sourceRepos": ["*"],
                "destinations": [{"namespace": "*", "server": "*"}],
                "clusterResourceWhitelist": [{"group": "*", "kind": "*"}]
            }
        }),
        repo_creds_secret("oci-e2e-lab-registry", registry),
    ];
    kubeutil::apply_documents(client, &objects, ARGOCD_NAMESPACE).await
}

/// A `repo-creds` secret for every repository under `oci://<registry>`:
/// `type: oci` (without it Argo CD treats it as git) and plain HTTP.
pub fn repo_creds_secret(name: &str, registry: &str) -> serde_json::Value {
    json!({
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {
            "name": name, "namespace": ARGOCD_NAMESPACE,
            "labels": {"argocd.argoproj.io/secret-type": "repo-creds", "app.kubernetes.io/part-of": "argocd"}
        },
        "stringData": {"url": format!("oci://{registry}"), "type": "oci", "insecureOCIForceHttp": "true"}
    })
}

fn random_secret() -> String {
    use rand::Rng;
    let bytes: [u8; 24] = rand::rng().random();
    hex::encode(bytes)
}
