//! The `local` lab: a real Kubernetes control plane, kwok, a registry,
//! redis and Argo CD, all as plain processes on loopback. No Docker.
//!
//! Order of start-up (each waits for the previous to be ready):
//! etcd → kube-apiserver → controller-manager + scheduler → kwok + a fake
//! node → registry + redis → Argo CD CRDs and config → repo-server →
//! application-controller. Everything lives in one directory
//! (`<cache>/labs/local-<id>/`: certs, kubeconfigs, data, one log per
//! component, `lab.json`).

mod bootstrap;
pub mod certs;
mod components;
pub mod registry;
pub mod seed;

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use kube::Client;
use serde::{Deserialize, Serialize};

use crate::{ComponentLog, FaultAction, Lab, LabComponent, LabKind, RegistryEndpoint};
use harness_core::process::{self, ChildInfo, Supervisor};
use harness_core::progress::Progress;

pub use components::LocalBinaries;

/// Namespace of Argo CD in the local lab.
pub const ARGOCD_NAMESPACE: &str = "argocd";

/// How to build a local lab.
#[derive(Debug, Clone)]
pub struct LocalLabConfig {
    pub binaries: LocalBinaries,
    /// Parent of lab directories (`<cache>/labs`).
    pub labs_root: PathBuf,
    /// Children outlive this process (`lab up`, `--keep`).
    pub detached: bool,
    /// Argo CD's reconciliation interval (short: scenarios are fast).
    pub reconciliation: Duration,
    /// Argo CD version string, for reports (e.g. `v3.3.10`).
    pub argocd_version: String,
    /// `--registry-auth`, `--registry-tls`.
    pub registry: registry::RegistrySecurity,
    /// Where the lab's seeds are kept ([`seed`]); None starts from an
    /// empty etcd.
    pub seeds: Option<PathBuf>,
}

/// What a lab leaves on disk so that `lab status`, `lab down` and
/// `--reuse` can find it from another process.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LabState {
    pub id: String,
    pub dir: PathBuf,
    pub kubeconfig: PathBuf,
    pub apiserver: String,
    pub registry: String,
    /// The registry's CA (`--registry-tls`): the harness trusts it, and
    /// Argo CD through `argocd-tls-certs-cm`. Absent: plain HTTP.
    #[serde(default)]
    pub registry_ca: Option<PathBuf>,
    /// The registry's user and password (`--registry-auth`), a file only
    /// its owner reads; lab.json never holds the password itself.
    #[serde(default)]
    pub registry_credentials: Option<PathBuf>,
    pub argocd_version: String,
    pub detached: bool,
    pub children: Vec<ChildInfo>,
    /// How to tell that a component a fault step starts again is ready:
    /// component name -> `http://...` (2xx) or `redis://host:port` (PING).
    #[serde(default)]
    pub readiness: std::collections::BTreeMap<String, String>,
    /// When each component was started and became ready, in order of
    /// readiness (`cargo xtask bench` shows it as the start's timeline).
    #[serde(default)]
    pub startup: Vec<StartupPhase>,
}

/// One component of a lab's start: milliseconds from the start of
/// `start_all` to its spawn and to its readiness.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StartupPhase {
    pub name: String,
    pub started_ms: u64,
    pub ready_ms: u64,
}

impl LabState {
    pub fn load(dir: &Path) -> anyhow::Result<Self> {
        let path = dir.join("lab.json");
        let text = std::fs::read_to_string(&path)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        serde_json::from_str(&text)
            .map_err(|e| anyhow::anyhow!("{} is corrupt: {e}", path.display()))
    }

    fn save(&self) -> anyhow::Result<()> {
        std::fs::write(self.dir.join("lab.json"), serde_json::to_vec_pretty(self)?)?;
        Ok(())
    }
}

/// A running local lab.
pub struct LocalLab {
    state: LabState,
    registry: RegistryEndpoint,
    client: Client,
    /// Present when this process started the lab (absent when reused).
    supervisor: Option<Supervisor>,
}

/// File pointing at the lab kept up by `lab up` / `--keep`.
fn current_pointer(labs_root: &Path) -> PathBuf {
    labs_root.join("local.current")
}

impl LocalLab {
    pub fn state(&self) -> &LabState {
        &self.state
    }

    /// Cancelled if a component crashes (only for labs this process started).
    pub fn crashed(&self) -> Option<tokio_util::sync::CancellationToken> {
        self.supervisor.as_ref().map(Supervisor::crashed)
    }

    /// Why the lab is broken, if a component crashed.
    pub fn crash_report(&self) -> Option<String> {
        self.supervisor.as_ref().and_then(Supervisor::crash_report)
    }

    /// The registry as the harness reaches it (with the lab's credentials
    /// and CA, when it has them).
    pub fn registry_endpoint(&self) -> &RegistryEndpoint {
        &self.registry
    }

    /// Starts a new lab. On any failure everything started so far is
    /// stopped and the directory removed, and the error carries the tail of
    /// the failing component's log.
    pub async fn up(cfg: &LocalLabConfig, progress: &Progress) -> anyhow::Result<LocalLab> {
        for reclaimed in reclaim_abandoned(&cfg.labs_root) {
            progress.info(reclaimed);
        }
        let seed = seed::ensure(cfg, progress).await;
        let id = new_id();
        let dir = cfg.labs_root.join(format!("local-{id}"));
        std::fs::create_dir_all(&dir)
            .map_err(|e| anyhow::anyhow!("cannot create lab directory {}: {e}", dir.display()))?;
        // Who owns it: `lab down` leaves labs of a live harness alone.
        // Removes the directory if this future is dropped half-way (an
        // interrupt while the lab starts); declared before the supervisor,
        // so the children are killed (its drop) before the directory goes.
        let mut unfinished = UnfinishedLab(Some(dir.clone()));
        if !cfg.detached {
            std::fs::write(dir.join(OWNER_FILE), std::process::id().to_string())?;
        }
        let supervisor = Supervisor::new(cfg.detached);
        let result =
            components::start_all(cfg, &dir, &id, seed.as_deref(), &supervisor, progress).await;
        match result {
            Ok((state, client)) => {
                state.save()?;
                if cfg.detached {
                    std::fs::write(
                        current_pointer(&cfg.labs_root),
                        dir.to_string_lossy().as_bytes(),
                    )?;
                }
                let registry = registry_endpoint(&state)?;
                unfinished.0 = None;
                Ok(LocalLab {
                    state,
                    registry,
                    client,
                    supervisor: Some(supervisor),
                })
            }
            Err(e) => {
                let task = progress.task("stopping the partial lab");
                supervisor.stop_all(Duration::from_secs(5)).await;
                let keep_dir = std::env::var_os("OCI_E2E_KEEP_FAILED_LAB").is_some();
                unfinished.0 = None;
                if !keep_dir {
                    let _ = std::fs::remove_dir_all(&dir);
                }
                task.done(if keep_dir {
                    format!("logs kept in {}", dir.display())
                } else {
                    String::new()
                });
                Err(e)
            }
        }
    }

    /// Attaches to the lab kept up by `lab up` / `--keep`.
    pub async fn reuse(labs_root: &Path) -> anyhow::Result<LocalLab> {
        let pointer = current_pointer(labs_root);
        let dir = std::fs::read_to_string(&pointer).map_err(|_| {
            anyhow::anyhow!("no local lab is up to reuse (no {}); start one with `cargo xtask lab up --lab local`", pointer.display())
        })?;
        let state = LabState::load(Path::new(dir.trim()))?;
        let dead: Vec<_> = state
            .children
            .iter()
            .filter(|c| !process::alive(c.pid))
            .map(|c| c.name.clone())
            .collect();
        if !dead.is_empty() {
            anyhow::bail!(
                "the kept local lab in {} is broken: {} not running; run `cargo xtask lab down --lab local` and start a new one",
                state.dir.display(),
                dead.join(", ")
            );
        }
        let client = components::client_for(&state.kubeconfig).await?;
        let registry = registry_endpoint(&state)?;
        Ok(LocalLab {
            state,
            registry,
            client,
            supervisor: None,
        })
    }

    /// Stops a lab this process started (no-op for a reused one) and
    /// removes its directory. `keep_logs` copies the logs there first.
    pub async fn shutdown(self, labs_root: &Path, keep_logs: Option<&Path>) -> anyhow::Result<()> {
        if let Some(sup) = &self.supervisor {
            sup.stop_all(Duration::from_secs(10)).await;
        } else {
            return Ok(());
        }
        if let Some(dest) = keep_logs {
            copy_logs(&self.state.dir, dest);
        }
        let pointer = current_pointer(labs_root);
        if std::fs::read_to_string(&pointer).is_ok_and(|p| Path::new(p.trim()) == self.state.dir) {
            let _ = std::fs::remove_file(pointer);
        }
        std::fs::remove_dir_all(&self.state.dir)
            .map_err(|e| anyhow::anyhow!("cannot remove {}: {e}", self.state.dir.display()))
    }
}

/// How the harness reaches the lab's registry: plain HTTP, or HTTPS
/// trusting the lab's CA (never skipping verification); with the lab's
/// credentials under `--registry-auth`.
fn registry_endpoint(state: &LabState) -> anyhow::Result<RegistryEndpoint> {
    let ca_pem = match &state.registry_ca {
        Some(path) => Some(std::fs::read_to_string(path).map_err(|e| {
            anyhow::anyhow!("cannot read the lab registry's CA {}: {e}", path.display())
        })?),
        None => None,
    };
    let auth = match &state.registry_credentials {
        Some(path) => Some(registry::load_credentials(path)?),
        None => None,
    };
    Ok(RegistryEndpoint {
        address: state.registry.clone(),
        plain_http: ca_pem.is_none(),
        insecure_tls: false,
        ca_pem,
        auth,
    })
}

impl LabState {
    /// How the registry is secured, from what the lab wrote.
    pub fn registry_security(&self) -> registry::RegistrySecurity {
        registry::RegistrySecurity {
            auth: self.registry_credentials.is_some(),
            tls: self.registry_ca.is_some(),
        }
    }
}

fn copy_logs(lab_dir: &Path, dest: &Path) {
    let Ok(entries) = std::fs::read_dir(lab_dir.join("logs")) else {
        return;
    };
    let _ = std::fs::create_dir_all(dest);
    for e in entries.flatten() {
        let _ = std::fs::copy(e.path(), dest.join(e.file_name()));
    }
}

fn new_id() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..6)
        .map(|_| char::from(b"abcdefghijklmnopqrstuvwxyz0123456789"[rng.random_range(0..36)]))
        .collect()
}

/// Holds the pid of the harness that runs a lab it does not keep.
const OWNER_FILE: &str = "owner.pid";

/// Removes the directories of labs whose harness was killed (SIGKILL, a
/// crash): an owner file naming a process that is gone, no process of the
/// lab left, not the kept lab. Their processes died with the harness
/// (PDEATHSIG); their data (etcd, the registry: ~130 MB) stays until here.
/// Labs started by `lab up` or `--keep` have no owner file and are left to
/// `lab down`. One line per directory removed, for the user.
pub fn reclaim_abandoned(labs_root: &Path) -> Vec<String> {
    let st = status(labs_root);
    let mut done = Vec::new();
    for dir in st.stray_dirs {
        let Ok(owner) = std::fs::read_to_string(dir.join(OWNER_FILE)) else {
            continue;
        };
        let needle = format!("{}/", dir.display());
        if st
            .stray_processes
            .iter()
            .any(|(_, cmd)| cmd.contains(&needle))
        {
            continue;
        }
        let size = directory_size(&dir);
        if std::fs::remove_dir_all(&dir).is_ok() {
            done.push(format!(
                "reclaimed {} ({:.0} MB), left by a harness that was killed (pid {})",
                dir.display(),
                size as f64 / 1e6,
                owner.trim()
            ));
        }
    }
    done
}

fn directory_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|entry| match entry.metadata() {
                    Ok(m) if m.is_dir() => directory_size(&entry.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

/// The live harness that owns the lab in `dir`, if any.
fn live_owner(dir: &Path) -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(dir.join(OWNER_FILE))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    process::alive(pid).then_some(pid)
}

/// What `lab status` reports.
#[derive(Debug, Clone, Serialize)]
pub struct LocalStatus {
    pub current: Option<LabState>,
    /// name -> alive, for the current lab's components.
    pub components: Vec<(String, u32, bool)>,
    /// Lab directories that are not the current lab and whose harness is
    /// gone (leftovers of killed runs).
    pub stray_dirs: Vec<PathBuf>,
    /// Processes mentioning the labs directory that belong neither to the
    /// current lab nor to a lab a live harness is using.
    pub stray_processes: Vec<(u32, String)>,
    /// Labs other harness processes are running right now (left alone).
    pub in_use: Vec<(PathBuf, u32)>,
}

pub fn status(labs_root: &Path) -> LocalStatus {
    let current = std::fs::read_to_string(current_pointer(labs_root))
        .ok()
        .and_then(|d| LabState::load(Path::new(d.trim())).ok());
    let components = current
        .iter()
        .flat_map(|s| {
            s.children
                .iter()
                .map(|c| (c.name.clone(), c.pid, process::alive(c.pid)))
        })
        .collect();
    let current_dir = current.as_ref().map(|s| s.dir.clone());
    let lab_dirs: Vec<PathBuf> = std::fs::read_dir(labs_root)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.is_dir()
                        && p.file_name()
                            .is_some_and(|n| n.to_string_lossy().starts_with("local-"))
                })
                .filter(|p| Some(p) != current_dir.as_ref())
                .collect()
        })
        .unwrap_or_default();
    let (in_use, stray_dirs): (Vec<_>, Vec<_>) =
        lab_dirs.into_iter().partition(|d| live_owner(d).is_some());
    let in_use: Vec<(PathBuf, u32)> = in_use
        .into_iter()
        .filter_map(|d| live_owner(&d).map(|pid| (d, pid)))
        .collect();
    // Directories whose processes are not strays: the kept lab's and those
    // of labs a live harness is using.
    let protected: Vec<String> = current_dir
        .iter()
        .chain(in_use.iter().map(|(d, _)| d))
        .map(|d| format!("{}/", d.display()))
        .collect();
    let stray_processes = process::find_by_cmdline(labs_root)
        .into_iter()
        .filter(|(_, cmd)| !protected.iter().any(|d| cmd.contains(d.as_str())))
        .collect();
    LocalStatus {
        current,
        components,
        stray_dirs,
        stray_processes,
        in_use,
    }
}

/// Stops the kept lab and every stray of killed runs; removes their
/// directories. Returns what it stopped, for the user.
pub async fn down(labs_root: &Path, progress: &Progress) -> anyhow::Result<Vec<String>> {
    let mut done = Vec::new();
    let st = status(labs_root);
    if let Some(state) = &st.current {
        let task = progress.task(format!("stopping local lab {}", state.id));
        for child in state.children.iter().rev() {
            if process::alive(child.pid) {
                process::terminate(child.pid, Duration::from_secs(10)).await;
                done.push(format!("stopped {} (pid {})", child.name, child.pid));
            }
        }
        let _ = std::fs::remove_dir_all(&state.dir);
        let _ = std::fs::remove_file(current_pointer(labs_root));
        task.done("");
    }
    for (pid, cmd) in st.stray_processes {
        process::terminate(pid, Duration::from_secs(5)).await;
        let name = cmd.split_whitespace().next().unwrap_or("?").to_string();
        done.push(format!("stopped stray {name} (pid {pid})"));
    }
    for dir in st.stray_dirs {
        if std::fs::remove_dir_all(&dir).is_ok() {
            done.push(format!("removed {}", dir.display()));
        }
    }
    for (dir, pid) in st.in_use {
        progress.info(format!(
            "left alone: {} (in use by the harness with pid {pid})",
            dir.display()
        ));
    }
    Ok(done)
}

#[async_trait]
impl Lab for LocalLab {
    fn kind(&self) -> &'static str {
        LabKind::Local.as_str()
    }
    fn registry(&self) -> &RegistryEndpoint {
        &self.registry
    }
    fn registry_for_argo(&self) -> &str {
        // Argo CD runs on the host too: same address.
        &self.state.registry
    }
    fn kube(&self) -> Client {
        self.client.clone()
    }
    fn argocd_namespace(&self) -> &str {
        ARGOCD_NAMESPACE
    }
    fn argocd_version(&self) -> &str {
        &self.state.argocd_version
    }
    async fn component_logs(&self, lines: usize) -> Vec<ComponentLog> {
        [
            "argocd-repo-server",
            "argocd-application-controller",
            "kube-apiserver",
            "registry",
        ]
        .iter()
        .map(|c| ComponentLog {
            component: c.to_string(),
            tail: process::tail_file(&self.state.dir.join("logs").join(format!("{c}.log")), lines),
        })
        .collect()
    }
    fn state_dir(&self) -> Option<PathBuf> {
        Some(self.state.dir.clone())
    }
    async fn fault(&self, component: LabComponent, action: FaultAction) -> Result<String, String> {
        self.fault_process(component.as_str(), action)
            .await
            .map_err(|e| format!("{e:#}"))
    }
}

impl LocalLab {
    /// A fault step on the process `name`: stopped with SIGTERM (its
    /// ports and data directory stay), started again with the same
    /// command line, and waited for with the readiness probe of start-up.
    async fn fault_process(&self, name: &str, action: FaultAction) -> anyhow::Result<String> {
        let Some(sup) = &self.supervisor else {
            anyhow::bail!(
                "this run attached to a kept lab (--reuse), whose processes another harness started; fault steps need a lab this run starts (drop --reuse)"
            );
        };
        let running = sup.children().iter().any(|c| c.name == name);
        let mut done = Vec::new();
        if matches!(action, FaultAction::Stop | FaultAction::Restart) {
            let child = sup.stop_child(name, Duration::from_secs(10)).await.ok_or_else(|| {
                anyhow::anyhow!("{name} is not running (an earlier fault step stopped it); `start` it instead")
            })?;
            done.push(format!("stopped {name} (pid {})", child.pid));
        } else if running {
            anyhow::bail!("{name} is already running; `stop` it first, or `restart` it");
        }
        if matches!(action, FaultAction::Start | FaultAction::Restart) {
            let started = tokio::time::Instant::now();
            let child = sup.respawn(name)?;
            let url = self
                .state
                .readiness
                .get(name)
                .ok_or_else(|| anyhow::anyhow!("the lab has no readiness probe for {name}"))?;
            components::wait_ready_again(name, url, &child.log, sup, &self.registry).await?;
            done.push(format!(
                "started {name} (pid {}), ready in {:.1}s",
                child.pid,
                started.elapsed().as_secs_f64()
            ));
        }
        // `lab status` and `--reuse` read the pids from lab.json.
        let mut state = self.state.clone();
        state.children = sup.children();
        state.save()?;
        Ok(done.join(", "))
    }
}

/// How the registry is secured and where its CA and credentials are
/// (never the password itself).
pub fn registry_text(s: &LabState) -> String {
    let mut parts = vec![match &s.registry_ca {
        Some(ca) => format!("HTTPS, CA {}", ca.display()),
        None => "plain HTTP".to_string(),
    }];
    match &s.registry_credentials {
        Some(file) => parts.push(format!("htpasswd, credentials in {}", file.display())),
        None => parts.push("anonymous".to_string()),
    }
    parts.join("; ")
}

/// `lab status --lab local` as text.
pub fn status_text(st: &LocalStatus) -> String {
    let mut out = String::new();
    match &st.current {
        Some(s) => {
            out.push_str(&format!("local lab {} in {}\n", s.id, s.dir.display()));
            out.push_str(&format!(
                "  KUBECONFIG={}\n  apiserver {}\n  registry {} ({})\n  Argo CD {}\n",
                s.kubeconfig.display(),
                s.apiserver,
                s.registry,
                registry_text(s),
                s.argocd_version
            ));
            for (name, pid, alive) in &st.components {
                out.push_str(&format!(
                    "  {name:<30} pid {pid:<8} {}\n",
                    if *alive { "running" } else { "NOT RUNNING" }
                ));
            }
        }
        None => {
            out.push_str("no local lab is up (start one with `cargo xtask lab up --lab local`)\n")
        }
    }
    for (d, pid) in &st.in_use {
        out.push_str(&format!(
            "lab in use by a running harness (pid {pid}): {}\n",
            d.display()
        ));
    }
    for d in &st.stray_dirs {
        out.push_str(&format!(
            "stray lab directory: {} (remove with `cargo xtask lab down --lab local`)\n",
            d.display()
        ));
    }
    for (pid, cmd) in &st.stray_processes {
        let short: String = cmd.chars().take(100).collect();
        out.push_str(&format!(
            "stray process {pid}: {short} (stop with `cargo xtask lab down --lab local`)\n"
        ));
    }
    out
}

/// `lab up --lab local --dry-run`: what would be started, in order.
pub fn plan_text(labs_root: &Path) -> String {
    use harness_tools::versions;
    let mut out = String::new();
    out.push_str(&format!(
        "local lab plan (directory {}/local-<id>/, loopback only, free ports):\n",
        labs_root.display()
    ));
    out.push_str(
        "  0. provision binaries (cargo xtask tools): cached under ~/.cache/oci-e2e/tools\n",
    );
    out.push_str("  1. PKI: CA, apiserver serving cert, admin client cert (system:masters), service-account key pair\n");
    out.push_str(
        "  2. etcd: --data-dir <lab>/etcd, client+peer on 127.0.0.1; ready: GET /health\n",
    );
    out.push_str(&format!(
        "  3. kube-apiserver {}: RBAC, --endpoint-reconciler-type=none; ready: GET /readyz\n",
        versions::KUBERNETES_VERSION
    ));
    out.push_str("  4. kube-controller-manager (no cloud/ipam/route controllers), kube-scheduler; ready: ServiceAccount default/default exists\n");
    out.push_str(
        "  5. kwok + Node kwok-node-0 (annotation kwok.x-k8s.io/node=fake); ready: node Ready\n",
    );
    out.push_str("  6. registry (distribution, delete enabled; plain HTTP, or with --registry-tls HTTPS from a CA made for the lab;\n     with --registry-auth htpasswd, a random user and password) and redis; ready: GET /v2/ (2xx or 401), PING\n");
    out.push_str(&format!(
        "  7. Argo CD {} CRDs (application, appproject, applicationset), namespace argocd,\n",
        versions::ARGOCD_VERSION
    ));
    out.push_str("     argocd-cm (part-of label, timeout.reconciliation 10s), argocd-rbac-cm, argocd-secret,\n");
    out.push_str("     AppProject default, repo-creds Secret oci://<registry> (type oci; insecureOCIForceHttp, or username/password),\n     with --registry-tls argocd-tls-certs-cm (key 127.0.0.1: the lab CA), projected into <lab>/argocd-tls\n");
    out.push_str(
        "  8. argocd-repo-server (--disable-tls, ARGOCD_TLS_DATA_PATH=<lab>/argocd-tls); ready: GET /healthz on its metrics port\n",
    );
    out.push_str(
        "  9. argocd-application-controller (--repo-server-plaintext); ready: GET /healthz\n",
    );
    out
}

/// A lab directory whose `up` has not finished: removed on drop unless
/// `up` took it over (set to `None`).
struct UnfinishedLab(Option<PathBuf>);

impl Drop for UnfinishedLab {
    fn drop(&mut self) {
        if let Some(dir) = self.0.take()
            && std::env::var_os("OCI_E2E_KEEP_FAILED_LAB").is_none()
        {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}
