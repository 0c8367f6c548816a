//! Choosing, starting, reusing and stopping a lab of any kind: what the
//! CLI and the test suite call, so that neither knows lab internals.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::existing::{ExistingLab, ExistingLabConfig};
use super::kind::{KindLab, KindLabConfig};
use super::local::registry::RegistrySecurity;
use super::local::{LocalBinaries, LocalLab, LocalLabConfig};
use super::{Lab, LabKind};
use harness_core::progress::Progress;
use harness_tools::{self as tools, ProvisionOptions};

/// Where labs keep their directories: `$OCI_E2E_LABS`, else `<cache>/labs`.
pub fn labs_root() -> PathBuf {
    match std::env::var_os("OCI_E2E_LABS").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => tools::cache::default_cache_root().join("labs"),
    }
}

/// Where local labs keep their seeds (`<cache>/seeds`), unless
/// `OCI_E2E_LAB_SEED=off`.
fn harness_labs_seeds() -> Option<PathBuf> {
    crate::local::seed::seeds_dir_from_env(&tools::cache::default_cache_root())
}

/// The default lab kind and why: kind where a Docker engine and `kind`
/// are usable, local otherwise.
pub async fn default_kind() -> (LabKind, String) {
    match super::kind::detect().await {
        Ok(()) => (
            LabKind::Kind,
            "a Docker engine and `kind` are available".into(),
        ),
        Err(why) => (LabKind::Local, format!("kind lab unavailable: {why}")),
    }
}

/// How to bring a lab up.
#[derive(Debug, Clone)]
pub struct LabOptions {
    pub kind: LabKind,
    /// Leave it running after the command (and print how to use it).
    pub keep: bool,
    /// Attach to a lab that is already up instead of starting one.
    pub reuse: bool,
    /// Argo CD reconciliation interval for labs the harness configures.
    pub reconciliation: Duration,
    pub kind_config: KindLabConfig,
    /// The cluster, Argo CD namespace and registry of `--lab existing`.
    pub existing: ExistingLabConfig,
    /// The Argo CD release of the local lab (`--argocd-version`); the kind
    /// lab's is `kind_config.argocd_version`.
    pub argocd_version: String,
    /// `--registry-auth`, `--registry-tls` (the local lab only, for now).
    pub registry: RegistrySecurity,
}

impl LabOptions {
    pub fn new(kind: LabKind) -> Self {
        Self {
            kind,
            keep: false,
            reuse: false,
            reconciliation: Duration::from_secs(10),
            kind_config: KindLabConfig::default(),
            existing: ExistingLabConfig::default(),
            argocd_version: super::ARGOCD_VERSION.to_string(),
            registry: RegistrySecurity::default(),
        }
    }
}

/// Whether `--registry-auth` / `--registry-tls` fit lab `kind`: the
/// local lab secures its own registry; the others are refused with why.
pub fn check_registry_security(kind: LabKind, security: RegistrySecurity) -> Result<(), String> {
    if !security.any() {
        return Ok(());
    }
    let flags = security.flags().join(" and ");
    match kind {
        LabKind::Local => Ok(()),
        LabKind::Kind => Err(format!(
            "{flags} apply to --lab local only for now: the kind lab's registry is a container that \
             its nodes' containerd reaches as a plain-HTTP mirror and Argo CD's pods reach as \
             kind-registry:5000 with insecureOCIForceHttp; securing it needs a certificate for that \
             name in the nodes and in Argo CD's argocd-tls-certs-cm, which the kind lab does not \
             write yet. Drop the flags or pass --lab local"
        )),
        LabKind::Existing => Err(format!(
            "{flags} apply to --lab local only: an existing lab's registry is yours, already secured \
             as it is. The harness uses its credentials from OCI_E2E_REGISTRY_USERNAME/PASSWORD or \
             ~/.docker/config.json, verifies its certificate against the system's roots (or skips \
             that with --insecure-tls), and Argo CD uses what is configured there (repository \
             secrets, argocd-tls-certs-cm). Drop the flags"
        )),
    }
}

/// A lab this process is using.
pub enum RunningLab {
    Local(Arc<LocalLab>),
    Kind(Arc<KindLab>),
    Existing(Arc<ExistingLab>),
}

impl RunningLab {
    pub fn lab(&self) -> Arc<dyn Lab> {
        match self {
            RunningLab::Local(l) => l.clone(),
            RunningLab::Kind(k) => k.clone(),
            RunningLab::Existing(e) => e.clone(),
        }
    }

    /// Cancelled when a lab component crashes (local labs started here).
    pub fn crashed(&self) -> Option<CancellationToken> {
        match self {
            RunningLab::Local(l) => l.crashed(),
            RunningLab::Kind(_) | RunningLab::Existing(_) => None,
        }
    }

    pub fn crash_report(&self) -> Option<String> {
        match self {
            RunningLab::Local(l) => l.crash_report(),
            RunningLab::Kind(_) | RunningLab::Existing(_) => None,
        }
    }

    /// How a person can use a kept lab.
    pub fn usage(&self) -> String {
        match self {
            RunningLab::Local(l) => {
                let s = l.state();
                format!(
                    "local lab {} is up (directory {}):\n  export KUBECONFIG={}\n  registry {} ({})\n  Argo CD {} in namespace argocd (Applications: kubectl -n argocd get applications)\n  logs: {}/logs/\n  reuse it: cargo xtask e2e --lab local --reuse\n  stop it:  cargo xtask lab down --lab local",
                    s.id,
                    s.dir.display(),
                    s.kubeconfig.display(),
                    s.registry,
                    super::local::registry_text(s),
                    s.argocd_version,
                    s.dir.display()
                )
            }
            RunningLab::Kind(k) => {
                let c = k.config();
                format!(
                    "kind lab is up:\n  kubectl context: kind-{}\n  registry from the host: {}:{}  (from the cluster: {}:5000)\n  reuse it: cargo xtask e2e --lab kind --reuse\n  stop it:  cargo xtask lab down --lab kind",
                    c.cluster_name, c.registry_host_ip, c.registry_host_port, c.registry_name
                )
            }
            RunningLab::Existing(e) => e.usage(),
        }
    }

    /// Stops the lab unless it was reused or is to be kept.
    /// `keep_logs`: copy component logs there first (failed runs).
    pub async fn shutdown(
        self,
        opts: &LabOptions,
        progress: &Progress,
        keep_logs: Option<&std::path::Path>,
    ) -> anyhow::Result<()> {
        if opts.keep || opts.reuse {
            return Ok(());
        }
        match self {
            RunningLab::Local(l) => {
                let task = progress.task("stopping the local lab");
                let lab = Arc::try_unwrap(l)
                    .map_err(|_| anyhow::anyhow!("the local lab is still in use"))?;
                let r = lab.shutdown(&labs_root(), keep_logs).await;
                match &r {
                    Ok(()) => task.done(""),
                    Err(e) => task.fail(e.to_string()),
                }
                r
            }
            RunningLab::Kind(_) => {
                super::kind::down(&opts.kind_config, progress).await?;
                Ok(())
            }
            // Nothing to stop: only what this run created goes.
            RunningLab::Existing(e) => {
                if let Some(name) = e.created_secret() {
                    let task = progress.task(format!("deleting the repo-creds secret {name}"));
                    match e.shutdown().await {
                        Ok(()) => task.done(""),
                        Err(error) => {
                            task.fail(error.to_string());
                            return Err(error.into());
                        }
                    }
                }
                Ok(())
            }
        }
    }
}

/// Provisions the local lab's binaries with Argo CD `argocd_version`
/// (cheap when cached; a release not built before is built once).
pub async fn local_binaries(
    progress: &Progress,
    argocd_version: &str,
) -> anyhow::Result<LocalBinaries> {
    let opts = ProvisionOptions {
        argocd_version: argocd_version.to_string(),
        ..ProvisionOptions::default()
    };
    let toolbox = tools::provision(&opts, progress).await?;
    LocalBinaries::from_toolbox(&toolbox)
}

fn describe(security: RegistrySecurity) -> String {
    match security.flags().as_slice() {
        [] => "neither --registry-auth nor --registry-tls".to_string(),
        flags => flags.join(" and "),
    }
}

/// `v3.1.0` and `3.1.0` are the same release.
fn versions_differ(a: &str, b: &str) -> bool {
    a.trim_start_matches('v') != b.trim_start_matches('v')
}

/// Starts (or attaches to) a lab.
pub async fn start(opts: &LabOptions, progress: &Progress) -> anyhow::Result<RunningLab> {
    check_registry_security(opts.kind, opts.registry).map_err(|e| anyhow::anyhow!(e))?;
    match opts.kind {
        LabKind::Local => {
            if opts.reuse {
                let lab = LocalLab::reuse(&labs_root()).await?;
                let kept = lab.state().registry_security();
                if opts.registry.any() && kept != opts.registry {
                    anyhow::bail!(
                        "the local lab that is up has a registry with {}, not {}: stop it (`cargo xtask lab down --lab local`) or drop --reuse",
                        describe(kept),
                        describe(opts.registry)
                    );
                }
                let running = &lab.state().argocd_version;
                if versions_differ(running, &opts.argocd_version) {
                    anyhow::bail!(
                        "the local lab that is up runs Argo CD {running}, not {}: stop it (`cargo xtask lab down --lab local`) or drop --reuse",
                        opts.argocd_version
                    );
                }
                return Ok(RunningLab::Local(Arc::new(lab)));
            }
            let binaries = local_binaries(progress, &opts.argocd_version).await?;
            let cfg = LocalLabConfig {
                binaries,
                labs_root: labs_root(),
                detached: opts.keep,
                reconciliation: opts.reconciliation,
                argocd_version: opts.argocd_version.clone(),
                registry: opts.registry,
                seeds: harness_labs_seeds(),
            };
            Ok(RunningLab::Local(Arc::new(
                LocalLab::up(&cfg, progress).await?,
            )))
        }
        LabKind::Kind => {
            if opts.reuse {
                return Ok(RunningLab::Kind(Arc::new(
                    KindLab::connect(&opts.kind_config).await?,
                )));
            }
            Ok(RunningLab::Kind(Arc::new(
                super::kind::up(&opts.kind_config, progress).await?,
            )))
        }
        LabKind::Existing => Ok(RunningLab::Existing(Arc::new(
            ExistingLab::connect(&opts.existing, progress).await?,
        ))),
    }
}
