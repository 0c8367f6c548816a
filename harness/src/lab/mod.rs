//! Labs: a Kubernetes cluster, an OCI registry it can reach, and Argo CD.
//!
//! The runner sees a lab only through [`Lab`]. Each lab kind (`local`,
//! `kind`, `existing`) lives in its own module and brings its own
//! lifecycle (up / down / status / dry-run plan).

use std::path::PathBuf;

pub mod existing;
pub mod kind;
pub mod local;
pub mod session;

/// The Argo CD version every lab installs by default (kind: the pinned
/// install.yaml; local: the binaries built from Go modules). One pin, in
/// the tools' version table.
pub use crate::tools::versions::ARGOCD_VERSION;

use async_trait::async_trait;

/// Which kind of lab.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LabKind {
    Local,
    Kind,
    Existing,
}

impl LabKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LabKind::Local => "local",
            LabKind::Kind => "kind",
            LabKind::Existing => "existing",
        }
    }
}

impl std::fmt::Display for LabKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Credentials for a registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BasicAuth {
    pub username: String,
    pub password: String,
}

/// How to reach a registry from the machine running the harness.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryEndpoint {
    /// `host:port`, optionally followed by `/prefix` under which every
    /// repository is created (e.g. `ghcr.io/acme/e2e`).
    pub address: String,
    /// Speak plain HTTP instead of HTTPS.
    pub plain_http: bool,
    /// Skip TLS verification (self-signed lab registries).
    pub insecure_tls: bool,
    pub auth: Option<BasicAuth>,
}

/// A component log the lab can hand to diagnostics.
#[derive(Debug, Clone)]
pub struct ComponentLog {
    /// e.g. `argocd-repo-server`.
    pub component: String,
    /// The tail of its log (already truncated by the lab).
    pub tail: String,
}

/// A running lab, as the runner uses it.
#[async_trait]
pub trait Lab: Send + Sync {
    fn kind(&self) -> LabKind;
    /// The registry as the harness (on the host) pushes to it.
    fn registry(&self) -> &RegistryEndpoint;
    /// `host:port[/prefix]` as Argo CD's repo-server reaches the same
    /// registry; Applications use `oci://<this>/<repository>`.
    fn registry_for_argo(&self) -> &str;
    /// A client for the lab's cluster.
    fn kube(&self) -> kube::Client;
    /// Namespace where Argo CD runs and Applications live.
    fn argocd_namespace(&self) -> &str;
    /// Argo CD version, e.g. `v3.3.19` (for reports).
    fn argocd_version(&self) -> &str;
    /// Tails of the Argo CD components' logs (repo-server, controller...).
    async fn component_logs(&self, lines: usize) -> Vec<ComponentLog>;
    /// Where this lab keeps its files (kubeconfig, logs), if anywhere.
    fn state_dir(&self) -> Option<PathBuf> {
        None
    }
}

/// Tails of Argo CD's repo-server and application-controller logs, from
/// their pods in `namespace` (the kind and existing labs), one entry per
/// pod, named `component (pod)`. A component without a pod gets an entry
/// that says so and where else to look.
pub async fn argocd_pod_logs(
    client: &kube::Client,
    namespace: &str,
    lines: usize,
) -> Vec<ComponentLog> {
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::{Api, ListParams, LogParams};
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let mut logs = Vec::new();
    for component in ["argocd-repo-server", "argocd-application-controller"] {
        let selector = format!("app.kubernetes.io/name={component}");
        let note = |tail: String| ComponentLog {
            component: component.to_string(),
            tail,
        };
        match pods.list(&ListParams::default().labels(&selector)).await {
            Err(e) => logs.push(note(format!("(cannot list the pods labelled {selector} in {namespace}: {e})"))),
            Ok(list) if list.items.is_empty() => logs.push(note(format!(
                "(no pod labelled {selector} in namespace {namespace}: here {component} does not run as a pod; a local lab runs it as a process and its log is in the lab directory, see `cargo xtask lab status --lab local`)"
            ))),
            Ok(list) => {
                for pod in list.items {
                    let name = pod.metadata.name.unwrap_or_default();
                    let params = LogParams { tail_lines: Some(lines as i64), ..LogParams::default() };
                    let tail = match pods.logs(&name, &params).await {
                        Ok(t) => t,
                        Err(e) => format!("(cannot read the log of pod {name}: {e})"),
                    };
                    logs.push(ComponentLog { component: format!("{component} ({name})"), tail });
                }
            }
        }
    }
    logs
}
