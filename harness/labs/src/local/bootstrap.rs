//! Objects the local lab creates so Argo CD can run without its
//! argocd-server and without its install manifest: CRDs, `argocd-cm`
//! (with the `part-of` label Argo CD filters on), `argocd-secret`, the
//! `default` AppProject (normally created by argocd-server), a
//! `repo-creds` secret that covers every repository on the lab registry
//! (with the lab's registry user and password under `--registry-auth`),
//! and under `--registry-tls` the `argocd-tls-certs-cm` ConfigMap with the
//! registry's CA, as users configure a private CA.

use std::path::Path;
use std::time::Duration;

use kube::Client;
use serde_json::json;

use super::ARGOCD_NAMESPACE;
use crate::{RegistryEndpoint, kubeutil};

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
pub(super) const CRD_FILES: [&str; 3] = [
    "application-crd.yaml",
    "appproject-crd.yaml",
    "applicationset-crd.yaml",
];

/// Reads Argo CD's CRD documents from `crds_dir`.
fn read_crds(crds_dir: &Path) -> anyhow::Result<Vec<serde_json::Value>> {
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
    Ok(crds)
}

/// Creates Argo CD's CRDs and waits until the apiserver serves them.
pub async fn install_argocd_crds(client: &Client, crds_dir: &Path) -> anyhow::Result<()> {
    let crds = read_crds(crds_dir)?;
    kubeutil::create_documents(client, &crds, "default").await?;
    kubeutil::wait_crds_served(client, &crds, Duration::from_secs(60)).await
}

/// Argo CD's CRDs (unless the lab's seed holds them: then only waits until
/// they are served) and its configuration for this lab.
pub async fn install_argocd(
    client: &Client,
    crds_dir: &Path,
    crds_seeded: bool,
    registry: &RegistryEndpoint,
    reconciliation: Duration,
    argocd_version: &str,
) -> anyhow::Result<()> {
    let install_crds = async {
        if crds_seeded {
            let crds = read_crds(crds_dir)?;
            kubeutil::wait_crds_served(client, &crds, Duration::from_secs(60)).await
        } else {
            install_argocd_crds(client, crds_dir).await
        }
    };

    let part_of = json!({"app.kubernetes.io/part-of": "argocd"});
    let secs = reconciliation.as_secs().max(1);
    let namespace =
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ARGOCD_NAMESPACE}});
    let mut config = vec![
        json!({
            "apiVersion": "v1", "kind": "ConfigMap",
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
        repo_creds_secret(registry),
    ];
    if let Some(ca) = &registry.ca_pem {
        config.push(tls_certs_config_map(registry.host(), ca));
    }
    // The configuration needs only its namespace; it is written while the
    // apiserver establishes the CRDs.
    let install_config = async {
        kubeutil::create_documents(client, std::slice::from_ref(&namespace), "default").await?;
        kubeutil::create_documents(client, &config, ARGOCD_NAMESPACE).await
    };
    tokio::try_join!(install_crds, install_config)?;

    let project = json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "AppProject",
        "metadata": {"name": "default", "namespace": ARGOCD_NAMESPACE},
        "spec": {
            "sourceRepos": ["*"],
            "destinations": [{"namespace": "*", "server": "*"}],
            "clusterResourceWhitelist": [{"group": "*", "kind": "*"}]
        }
    });
    kubeutil::create_documents(client, &[project], ARGOCD_NAMESPACE).await
}

/// The name Argo CD mounts its repository CAs from.
pub const TLS_CERTS_CM: &str = "argocd-tls-certs-cm";

/// `argocd-tls-certs-cm` as Argo CD's docs have users write it: one key
/// per repository server, its host name without the port, the PEM of the
/// CA (or self-signed certificate) as the value.
pub fn tls_certs_config_map(host: &str, ca_pem: &str) -> serde_json::Value {
    let server_name = host_without_port(host);
    json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": TLS_CERTS_CM, "namespace": ARGOCD_NAMESPACE, "labels": {
            "app.kubernetes.io/name": TLS_CERTS_CM,
            "app.kubernetes.io/part-of": "argocd"
        }},
        "data": {server_name: ca_pem}
    })
}

/// `127.0.0.1:5000` -> `127.0.0.1`, `[::1]:5000` -> `::1`.
fn host_without_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    host.rsplit_once(':').map_or(host, |(h, _)| h)
}

/// What the kubelet does with the ConfigMap volume Argo CD's manifests
/// mount at `/app/config/tls`: one file per key, in `dir` (the
/// repo-server's `ARGOCD_TLS_DATA_PATH`). Read back from the cluster, so
/// what Argo CD trusts is what the ConfigMap says.
pub async fn project_tls_certs(client: &Client, dir: &Path) -> anyhow::Result<usize> {
    use k8s_openapi::api::core::v1::ConfigMap;
    std::fs::create_dir_all(dir)?;
    let api: kube::Api<ConfigMap> = kube::Api::namespaced(client.clone(), ARGOCD_NAMESPACE);
    let Some(cm) = api.get_opt(TLS_CERTS_CM).await? else {
        return Ok(0);
    };
    let data = cm.data.unwrap_or_default();
    for (key, value) in &data {
        if key.contains('/') || key.starts_with('.') {
            anyhow::bail!("{TLS_CERTS_CM} has a key {key:?} that is not a host name");
        }
        std::fs::write(dir.join(key), value)?;
    }
    Ok(data.len())
}

/// A `repo-creds` secret for every repository under `oci://<registry>`,
/// written as `--lab existing` writes its run-scoped one.
pub fn repo_creds_secret(registry: &RegistryEndpoint) -> serde_json::Value {
    let mut labels = serde_json::Map::new();
    labels.insert("app.kubernetes.io/part-of".into(), json!("argocd"));
    crate::existing::oci_repo_creds_secret(
        "oci-e2e-lab-registry",
        ARGOCD_NAMESPACE,
        &format!("oci://{}", registry.address),
        registry,
        labels,
    )
}

fn random_secret() -> String {
    use rand::Rng;
    let bytes: [u8; 24] = rand::rng().random();
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_certs_key_is_the_host_without_port() {
        assert_eq!(host_without_port("127.0.0.1:5000"), "127.0.0.1");
        assert_eq!(host_without_port("localhost"), "localhost");
        assert_eq!(host_without_port("[::1]:5000"), "::1");
        let cm = tls_certs_config_map("127.0.0.1:41234", "PEM");
        assert_eq!(cm["data"]["127.0.0.1"], "PEM");
        assert_eq!(cm["metadata"]["name"], "argocd-tls-certs-cm");
    }

    #[test]
    fn repo_creds_follow_the_endpoint() {
        let plain = RegistryEndpoint {
            address: "127.0.0.1:5000".into(),
            plain_http: true,
            ..RegistryEndpoint::default()
        };
        let secret = repo_creds_secret(&plain);
        assert_eq!(secret["stringData"]["insecureOCIForceHttp"], "true");
        assert!(secret["stringData"].get("password").is_none());
        let secured = RegistryEndpoint {
            address: "127.0.0.1:5000".into(),
            ca_pem: Some("PEM".into()),
            auth: Some(crate::BasicAuth {
                username: "u".into(),
                password: "p".into(),
            }),
            ..RegistryEndpoint::default()
        };
        let secret = repo_creds_secret(&secured);
        let data = &secret["stringData"];
        assert_eq!(data["url"], "oci://127.0.0.1:5000");
        assert_eq!(data["type"], "oci");
        assert_eq!(
            (data["username"].as_str(), data["password"].as_str()),
            (Some("u"), Some("p"))
        );
        assert!(data.get("insecureOCIForceHttp").is_none());
        assert!(
            data.get("insecure").is_none(),
            "TLS is verified, not skipped"
        );
        assert_eq!(
            secret["metadata"]["labels"]["argocd.argoproj.io/secret-type"],
            "repo-creds"
        );
    }
}
