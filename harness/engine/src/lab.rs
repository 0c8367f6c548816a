//! What the engine needs of a lab, and nothing more: the registry as the
//! harness and as Argo CD reach it, a client for the cluster, Argo CD's
//! namespace and version, and component logs. Every lab kind (in
//! `harness-labs`) implements [`Lab`]; the engine names none of them.

use std::path::PathBuf;

use async_trait::async_trait;
use harness_oci::RegistryEndpoint;
pub use harness_scenario::{FaultAction, LabComponent};

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
    /// Which kind of lab: `local`, `kind` or `existing` (for reports; the
    /// engine never branches on it).
    fn kind(&self) -> &'static str;
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
    /// Stops, starts or restarts one component (a scenario's `fault`
    /// step); a start returns once the component is ready again. The
    /// answer is one line for the report, or why it could not be done.
    async fn fault(&self, component: LabComponent, action: FaultAction) -> Result<String, String> {
        Err(format!(
            "the {} lab cannot {} {component}: fault steps run on the local and kind labs",
            self.kind(),
            action.as_str()
        ))
    }
    /// Where this lab keeps its files (kubeconfig, logs), if anywhere.
    fn state_dir(&self) -> Option<PathBuf> {
        None
    }
}
