//! The KIND lab: a kind cluster, a registry container connected to it
//! (kind's documented local-registry recipe), and Argo CD installed in the
//! cluster from the pinned `install.yaml`.
//!
//! Addresses: the host pushes to `localhost:5001` (plain HTTP, published on
//! 127.0.0.1); nodes and pods reach the same registry as
//! `kind-registry:5000` on the `kind` network, so Applications use
//! `oci://kind-registry:5000/<repo>` with `insecureOCIForceHttp`.
//!
//! [`plan`] lists every action; [`up`] executes that same plan.

mod fault;
pub mod image;
mod manifest;
mod plan;
mod run;

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;

pub use manifest::{
    PINNED_INSTALL_SHA256, argocd_install_url, fetch_install_yaml, pinned_install_sha256,
    sha256_hex,
};
pub use plan::{
    CERTS_D, CLUSTER_TEMPLATE, FIELD_MANAGER, KIND_NETWORK, KindAction, KindPlan,
    LOCAL_REGISTRY_HELP, REPO_CREDS_SECRET, SETTINGS_FIELD_MANAGER, host_registry,
    install_cache_path, local_registry_hosting, network_registry, node_names, registry_spec,
    render_cluster_config,
};
pub use run::{
    KindStatus, down, prepare_offline_images, provision_in_cluster, resolve_images,
    sequential_forward, status, up,
};

use crate::container::ContainerError;
use crate::{ComponentLog, FaultAction, Lab, LabComponent, LabKind, RegistryEndpoint};

pub use harness_tools::versions::{DEFAULT_NODE_IMAGE, DEFAULT_REGISTRY_IMAGE, KIND_VERSION};
/// The registry listens on this port inside its container.
pub const REGISTRY_CONTAINER_PORT: u16 = 5000;
/// Namespace install.yaml is written for (its ClusterRoleBindings name it).
pub const ARGOCD_NAMESPACE: &str = "argocd";

/// How the KIND lab is set up. `Default` is kind's recipe with the
/// project's pinned versions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KindLabConfig {
    /// kind cluster name (`kind create cluster --name`).
    pub cluster_name: String,
    /// Node image, best pinned by digest.
    pub node_image: String,
    /// Worker nodes besides the control plane.
    pub workers: usize,
    /// The kind release `node_image` belongs to (for the plan and checks).
    pub kind_version: String,
    pub registry_image: String,
    /// Registry container name, also its DNS name on the kind network.
    pub registry_name: String,
    /// Host IP the registry port is published on.
    pub registry_host_ip: String,
    pub registry_host_port: u16,
    /// Argo CD tag; its install.yaml checksum must be pinned.
    pub argocd_version: String,
    /// argocd-cm `timeout.reconciliation`: how soon Argo CD notices a
    /// moved tag without a refresh (whole seconds, at least 1).
    pub reconciliation: Duration,
    /// Download cache (`<cache_dir>/argocd/<version>/install.yaml`).
    pub cache_dir: PathBuf,
    /// How long to wait for Argo CD to become ready.
    pub ready_timeout: Duration,
    /// Run the node and component images built here from Debian packages
    /// and Go modules (see [`image`]) instead of pulling kind's: `lab up
    /// --build-images`, or chosen by [`resolve_images`] when the node
    /// image cannot be had.
    pub offline_images: bool,
}

impl Default for KindLabConfig {
    fn default() -> Self {
        Self {
            cluster_name: "oci-e2e".into(),
            node_image: DEFAULT_NODE_IMAGE.into(),
            workers: 0,
            kind_version: KIND_VERSION.into(),
            registry_image: DEFAULT_REGISTRY_IMAGE.into(),
            registry_name: "kind-registry".into(),
            registry_host_ip: "127.0.0.1".into(),
            registry_host_port: 5001,
            argocd_version: crate::ARGOCD_VERSION.into(),
            reconciliation: Duration::from_secs(10),
            cache_dir: harness_tools::cache::default_cache_root(),
            ready_timeout: Duration::from_secs(600),
            offline_images: false,
        }
    }
}

/// Environment variables that override [`KindLabConfig::default`] (read
/// by [`KindLabConfig::from_env`]), with the field each one sets.
pub const ENV_OVERRIDES: &[(&str, &str)] = &[
    ("OCI_E2E_KIND_CLUSTER", "cluster name"),
    ("OCI_E2E_KIND_NODE_IMAGE", "node image"),
    ("OCI_E2E_KIND_WORKERS", "worker nodes"),
    ("OCI_E2E_KIND_REGISTRY_IMAGE", "registry image"),
    ("OCI_E2E_KIND_REGISTRY_PORT", "registry host port"),
    ("OCI_E2E_ARGOCD_VERSION", "Argo CD version"),
];

impl KindLabConfig {
    /// The defaults with the [`ENV_OVERRIDES`] that are set, validated.
    pub fn from_env() -> Result<Self, KindError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`Self::from_env`] with the variables looked up by `lookup`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, KindError> {
        let mut cfg = Self::default();
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        if let Some(v) = get("OCI_E2E_KIND_CLUSTER") {
            cfg.cluster_name = v;
        }
        if let Some(v) = get("OCI_E2E_KIND_NODE_IMAGE") {
            cfg.node_image = v;
        }
        if let Some(v) = get("OCI_E2E_KIND_WORKERS") {
            cfg.workers = v.trim().parse().map_err(|_| {
                KindError::InvalidConfig(format!("OCI_E2E_KIND_WORKERS={v:?} is not a number"))
            })?;
        }
        if let Some(v) = get("OCI_E2E_KIND_REGISTRY_IMAGE") {
            cfg.registry_image = v;
        }
        if let Some(v) = get("OCI_E2E_KIND_REGISTRY_PORT") {
            cfg.registry_host_port = v.trim().parse().map_err(|_| {
                KindError::InvalidConfig(format!(
                    "OCI_E2E_KIND_REGISTRY_PORT={v:?} is not a port number"
                ))
            })?;
        }
        if let Some(v) = get("OCI_E2E_ARGOCD_VERSION") {
            cfg.argocd_version = v;
        }
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks what would otherwise fail half-way through `up`.
    pub fn validate(&self) -> Result<(), KindError> {
        let bad = |what: &str, why: String| Err(KindError::InvalidConfig(format!("{what}: {why}")));
        let name = &self.cluster_name;
        if name.is_empty()
            || name.len() > 50
            || !name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        {
            return bad(
                "cluster name",
                format!("{name:?} must be 1-50 characters of a-z, 0-9, '-' and '.' (kind's rule)"),
            );
        }
        let reg = &self.registry_name;
        if reg.is_empty()
            || !reg.starts_with(|c: char| c.is_ascii_alphanumeric())
            || !reg
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
        {
            return bad(
                "registry container name",
                format!("{reg:?} must be letters, digits, '_', '.', '-'"),
            );
        }
        for (what, image) in [
            ("node image", &self.node_image),
            ("registry image", &self.registry_image),
        ] {
            if image.is_empty()
                || !image
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "/:@._-".contains(c))
            {
                return bad(what, format!("{image:?} is not an image reference"));
            }
        }
        if self.registry_host_ip.parse::<std::net::IpAddr>().is_err() {
            return bad(
                "registry host IP",
                format!("{:?} is not an IP address", self.registry_host_ip),
            );
        }
        if self.registry_host_port == 0 {
            return bad("registry host port", "must not be 0".into());
        }
        if self.reconciliation.as_secs() == 0 {
            return bad(
                "reconciliation interval",
                format!(
                    "{:?} is below Argo CD's resolution of 1s",
                    self.reconciliation
                ),
            );
        }
        Ok(())
    }

    /// Where this lab keeps its files (the kind kubeconfig).
    pub fn state_dir(&self) -> PathBuf {
        self.cache_dir.join("kind").join(&self.cluster_name)
    }

    /// This configuration with the offline images: the node image built
    /// here, and the registry image from Debian's package unless another
    /// than kind's default was asked for.
    pub fn with_offline_images(&self) -> Self {
        let mut cfg = self.clone();
        cfg.offline_images = true;
        cfg.node_image = image::node_image(&plan::network_registry(self), &self.argocd_version);
        if cfg.registry_image == DEFAULT_REGISTRY_IMAGE {
            cfg.registry_image = crate::container::TEST_REGISTRY_IMAGE.into();
        }
        cfg
    }

    /// The KIND lab of the project's test suite (harness/testkit/tests/
    /// kind_lab.rs), on the offline images: its own cluster, registry
    /// name and port, so it never touches a lab of the user's. `cargo
    /// xtask test` builds its images before the tests start.
    pub fn test_suite() -> Self {
        Self {
            cluster_name: "oci-e2e-suite".into(),
            registry_name: "oci-e2e-suite-registry".into(),
            registry_host_port: 5011,
            // Tags the scenarios move are noticed within this interval.
            reconciliation: Duration::from_secs(5),
            ..Self::default()
        }
        .with_offline_images()
    }

    /// The kubeconfig context kind creates.
    pub fn kube_context(&self) -> String {
        format!("kind-{}", self.cluster_name)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KindError {
    #[error("invalid KIND lab configuration: {0}")]
    InvalidConfig(String),
    #[error(
        "Argo CD {version} has no pinned install.yaml checksum (pinned: {known}): pick a pinned \
         version, or add its SHA-256 to harness/tools/src/versions.rs"
    )]
    UnpinnedArgoCd { version: String, known: String },
    #[error(
        "the KIND lab needs a Docker engine: {0}. Start Docker (or set DOCKER_HOST), or use `--lab local`"
    )]
    NoEngine(String),
    #[error(
        "the KIND lab needs the `kind` binary ({0}): install kind {KIND_VERSION} \
         (https://kind.sigs.k8s.io/docs/user/quick-start/#installation), or use `--lab local`"
    )]
    NoKind(String),
    #[error(transparent)]
    Container(#[from] ContainerError),
    #[error("`{command}` failed: {stderr}")]
    KindCommand { command: String, stderr: String },
    #[error("Kubernetes API: {what}: {source}")]
    Kube {
        what: String,
        #[source]
        source: kube::Error,
    },
    #[error("cannot download {url}: {message} (on a machine without internet use `--lab local`)")]
    Download { url: String, message: String },
    #[error(
        "Argo CD {version} install.yaml from {origin} has SHA-256 {actual}, but {expected} is \
         pinned: the file was changed or corrupted; delete the cached copy and retry, and if it \
         persists check the pin in harness/tools/src/versions.rs"
    )]
    ChecksumMismatch {
        origin: String,
        version: String,
        expected: String,
        actual: String,
    },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("timed out after {timeout:?} waiting for {what}; still not ready: {pending}")]
    Timeout {
        what: String,
        timeout: Duration,
        pending: String,
    },
    #[error("{0}")]
    Other(String),
}

/// Builds the plan `up` executes; `--dry-run` prints it.
pub fn plan(cfg: &KindLabConfig) -> Result<KindPlan, KindError> {
    plan::plan(cfg)
}

/// The `kind` the user provides: `$KIND` when set, else `kind` from PATH.
pub fn user_kind_binary() -> PathBuf {
    std::env::var_os("KIND")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("kind"))
}

/// The `kind` binary to run: the user's ([`user_kind_binary`]) when it is
/// there, else the one `lab up` built into the tool cache.
pub fn kind_binary() -> PathBuf {
    let user = user_kind_binary();
    let on_path = user.is_absolute() && user.is_file()
        || harness_tools::find_executable(
            &user.to_string_lossy(),
            &std::env::var_os("PATH").unwrap_or_default(),
        )
        .is_some();
    if on_path || std::env::var_os("KIND").is_some_and(|v| !v.is_empty()) {
        return user;
    }
    let cached = harness_tools::cache::default_cache_root()
        .join("tools")
        .join(harness_tools::versions::KIND.key())
        .join("bin")
        .join("kind");
    if cached.is_file() { cached } else { user }
}

/// `kind version` output, or why kind cannot be run.
pub async fn kind_version() -> Result<String, String> {
    version_of(kind_binary()).await
}

async fn version_of(bin: PathBuf) -> Result<String, String> {
    let command = format!("{} version", bin.display());
    let mut cmd = tokio::process::Command::new(&bin);
    cmd.arg("version");
    match harness_core::command::output(&mut cmd, &command).await {
        Ok(out) if out.status.success() => {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        }
        Ok(out) => Err(format!(
            "`{command}` failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(e) => Err(format!(
            "`{}` not found on PATH: {}",
            bin.display(),
            e.detail
        )),
    }
}

/// Whether the KIND lab can run here, and if not why: a Docker API must
/// answer and `kind` must run. The CLI uses it to pick the default lab.
pub async fn detect() -> Result<(), String> {
    let engine = crate::container::engine_available()
        .await
        .map_err(|e| e.to_string());
    // Only a kind the user installed makes KIND the default lab; the one
    // `lab up --lab kind` may have built into the tool cache does not.
    let kind = version_of(user_kind_binary()).await;
    match (engine, kind) {
        (Ok(_), Ok(_)) => Ok(()),
        (Err(e), Ok(_)) => Err(e),
        (Ok(_), Err(k)) => Err(k),
        (Err(e), Err(k)) => Err(format!("{e}; {k}")),
    }
}

/// A running KIND lab, as the runner uses it.
pub struct KindLab {
    cfg: KindLabConfig,
    registry: RegistryEndpoint,
    registry_for_argo: String,
    client: kube::Client,
}

impl KindLab {
    /// Connects to a KIND lab that is already up (after [`up`], or for
    /// `--reuse`): the kube client comes from `kind get kubeconfig`.
    pub async fn connect(cfg: &KindLabConfig) -> Result<Self, KindError> {
        let client = run::kube_client(cfg).await?;
        Ok(Self::with_client(cfg, client))
    }

    /// The lab over an already provisioned cluster reached by `client`
    /// (after [`provision_in_cluster`] on a cluster of your own).
    pub fn with_client(cfg: &KindLabConfig, client: kube::Client) -> Self {
        Self {
            cfg: cfg.clone(),
            registry: RegistryEndpoint {
                address: host_registry(cfg),
                plain_http: true,
                insecure_tls: false,
                ca_pem: None,
                auth: None,
            },
            registry_for_argo: network_registry(cfg),
            client,
        }
    }

    pub fn config(&self) -> &KindLabConfig {
        &self.cfg
    }
}

#[async_trait]
impl Lab for KindLab {
    fn kind(&self) -> &'static str {
        LabKind::Kind.as_str()
    }

    fn registry(&self) -> &RegistryEndpoint {
        &self.registry
    }

    fn registry_for_argo(&self) -> &str {
        &self.registry_for_argo
    }

    fn kube(&self) -> kube::Client {
        self.client.clone()
    }

    fn argocd_namespace(&self) -> &str {
        ARGOCD_NAMESPACE
    }

    fn argocd_version(&self) -> &str {
        &self.cfg.argocd_version
    }

    async fn component_logs(&self, lines: usize) -> Vec<ComponentLog> {
        crate::argocd_pod_logs(&self.client, ARGOCD_NAMESPACE, lines).await
    }

    async fn fault(&self, component: LabComponent, action: FaultAction) -> Result<String, String> {
        self.fault_component(component, action)
            .await
            .map_err(|e| e.to_string())
    }

    fn state_dir(&self) -> Option<PathBuf> {
        Some(self.cfg.state_dir())
    }
}
