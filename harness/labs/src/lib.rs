//! Labs: a Kubernetes cluster, an OCI registry it can reach, and Argo CD.
//!
//! The runner sees a lab only through [`Lab`]. Each lab kind (`local`,
//! `kind`, `existing`) lives in its own module and brings its own
//! lifecycle (up / down / status / dry-run plan).

pub mod container;
pub mod existing;
pub mod kind;
pub mod kubeutil;
pub mod local;
pub mod session;

/// The Argo CD version every lab installs by default (kind: the pinned
/// install.yaml; local: the binaries built from Go modules). One pin, in
/// the tools' version table.
pub use harness_tools::versions::ARGOCD_VERSION;

pub use harness_engine::lab::{ComponentLog, FaultAction, Lab, LabComponent};
pub use harness_oci::{BasicAuth, RegistryEndpoint};

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
