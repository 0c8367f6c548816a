//! Provisioning of the local lab's binaries (`cargo xtask tools`).
//!
//! Every tool comes at the version pinned in [`versions`], from the first
//! source that has it:
//! 1. on PATH, if its `--version` output matches the pin;
//! 2. the cache (`$OCI_E2E_CACHE`, `$XDG_CACHE_HOME/oci-e2e` or
//!    `~/.cache/oci-e2e`), entry `tools/<name>-<version>/`;
//! 3. an official release download over HTTPS, checked against a pinned
//!    SHA-256 or else the checksum file the release publishes;
//! 4. a build from the Go module proxy with `go` (cached afterwards);
//! 5. a Debian package, when running as root.
//!
//! A tool no source could provide gives one [`ToolsError::Missing`] that
//! says what was tried and the command that fixes it. See docs/tools.md.

pub mod apt;
pub mod cache;
pub mod download;
pub mod gobuild;
pub mod version;
pub mod versions;

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use cache::Cache;
use versions::{Component, EtcdSource};

use harness_core::progress::Progress;

/// A binary the local lab runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Tool {
    Etcd,
    KubeApiserver,
    KubeControllerManager,
    KubeScheduler,
    Kwok,
    Registry,
    Redis,
    Argocd,
    Oras,
    /// Only for the signing interop tests: not provisioned unless asked for.
    Cosign,
    /// Argo CD's repo-server runs `helm template` for Helm charts: on its PATH.
    Helm,
    /// go-containerregistry's registry with the OCI 1.1 referrers API (tests only, on demand).
    ReferrersRegistry,
    /// kind itself, for the KIND lab where no `kind` is on PATH.
    Kind,
    /// The node side of Kubernetes, for the offline KIND node image.
    Kubelet,
    Kubeadm,
    Kubectl,
    /// The kube-proxy image of the offline KIND lab.
    KubeProxy,
    /// The CRI client kind runs in nodes (`kind load`, `kind export logs`).
    Crictl,
    /// The cluster DNS image of the offline KIND lab.
    Coredns,
    /// The GitHub Actions linter, for the suite's check of `.github/workflows/`
    /// (tests only, on demand).
    Actionlint,
}

impl Tool {
    pub const ALL: [Tool; 20] = [
        Tool::Etcd,
        Tool::KubeApiserver,
        Tool::KubeControllerManager,
        Tool::KubeScheduler,
        Tool::Kwok,
        Tool::Registry,
        Tool::Redis,
        Tool::Argocd,
        Tool::Oras,
        Tool::Cosign,
        Tool::Helm,
        Tool::ReferrersRegistry,
        Tool::Kind,
        Tool::Kubelet,
        Tool::Kubeadm,
        Tool::Kubectl,
        Tool::KubeProxy,
        Tool::Crictl,
        Tool::Coredns,
        Tool::Actionlint,
    ];

    /// What the local lab needs: none of the test-only, benchmark-only or
    /// KIND-only tools.
    pub fn lab_default() -> BTreeSet<Tool> {
        Self::ALL
            .into_iter()
            .filter(|t| {
                !matches!(
                    t,
                    Tool::Oras | Tool::Cosign | Tool::ReferrersRegistry | Tool::Actionlint
                ) && !Self::KIND_OFFLINE.contains(t)
            })
            .collect()
    }

    /// What the offline KIND images are made of beyond the local lab's
    /// binaries (which they reuse): kind, the node binaries, CoreDNS.
    pub const KIND_OFFLINE: [Tool; 7] = [
        Tool::Kind,
        Tool::Kubelet,
        Tool::Kubeadm,
        Tool::Kubectl,
        Tool::KubeProxy,
        Tool::Crictl,
        Tool::Coredns,
    ];

    /// Short name, as in reports and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Tool::Etcd => "etcd",
            Tool::KubeApiserver => "kube-apiserver",
            Tool::KubeControllerManager => "kube-controller-manager",
            Tool::KubeScheduler => "kube-scheduler",
            Tool::Kwok => "kwok",
            Tool::Registry => "registry",
            Tool::Redis => "redis",
            Tool::Argocd => "argocd",
            Tool::Oras => "oras",
            Tool::Cosign => "cosign",
            Tool::Helm => "helm",
            Tool::ReferrersRegistry => "referrers-registry",
            Tool::Kind => "kind",
            Tool::Kubelet => "kubelet",
            Tool::Kubeadm => "kubeadm",
            Tool::Kubectl => "kubectl",
            Tool::KubeProxy => "kube-proxy",
            Tool::Crictl => "crictl",
            Tool::Coredns => "coredns",
            Tool::Actionlint => "actionlint",
        }
    }

    /// The file name of the binary in a cache entry.
    pub fn binary_name(self) -> &'static str {
        match self {
            Tool::Redis => "redis-server",
            other => other.name(),
        }
    }

    /// Names the binary may have on PATH (Debian calls the registry
    /// `docker-registry`).
    pub fn path_names(self) -> &'static [&'static str] {
        match self {
            Tool::Etcd => &["etcd"],
            Tool::KubeApiserver => &["kube-apiserver"],
            Tool::KubeControllerManager => &["kube-controller-manager"],
            Tool::KubeScheduler => &["kube-scheduler"],
            Tool::Kwok => &["kwok"],
            Tool::Registry => &["registry", "docker-registry"],
            Tool::Redis => &["redis-server"],
            Tool::Argocd => &["argocd"],
            Tool::Oras => &["oras"],
            Tool::Cosign => &["cosign"],
            Tool::Helm => &["helm"],
            Tool::ReferrersRegistry => &["referrers-registry"],
            Tool::Kind => &["kind"],
            Tool::Kubelet => &["kubelet"],
            Tool::Kubeadm => &["kubeadm"],
            Tool::Kubectl => &["kubectl"],
            Tool::KubeProxy => &["kube-proxy"],
            Tool::Crictl => &["crictl"],
            Tool::Coredns => &["coredns"],
            Tool::Actionlint => &["actionlint"],
        }
    }
}

impl fmt::Display for Tool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Tool {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Tool::ALL
            .into_iter()
            .find(|t| t.name() == s || t.binary_name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Tool::ALL.iter().map(|t| t.name()).collect();
                format!("unknown tool `{s}`; known tools: {}", names.join(", "))
            })
    }
}

/// Where a provisioned tool came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolSource {
    /// Found on PATH at the pinned version.
    Path,
    /// A complete cache entry from an earlier run; `origin` is how it was made.
    Cache { entry: String, origin: String },
    /// Downloaded now over HTTPS and verified as `verified` says.
    Download {
        url: String,
        verified: download::Verified,
    },
    /// Built now from the Go module proxy (and cached).
    GoBuild { entry: String },
    /// Installed now with apt-get.
    Apt { package: String },
}

impl fmt::Display for ToolSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ToolSource::Path => f.write_str("PATH"),
            ToolSource::Cache { entry, origin } => write!(f, "cache {entry} ({origin})"),
            ToolSource::Download { url, verified } => write!(f, "downloaded {url} ({verified})"),
            ToolSource::GoBuild { entry } => write!(f, "built with go, cached as {entry}"),
            ToolSource::Apt { package } => write!(f, "apt-get install {package}"),
        }
    }
}

/// One line of `cargo xtask tools`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolReport {
    pub tool: Tool,
    /// Without a leading `v`: `1.34.4`, `3.4.23`.
    pub version: String,
    pub path: PathBuf,
    pub source: ToolSource,
}

/// The provisioned tools: where each binary is.
#[derive(Debug, Clone)]
pub struct Toolbox {
    tools: BTreeMap<Tool, ToolReport>,
    argocd_crds: Option<PathBuf>,
}

impl Toolbox {
    /// The binary of `tool`.
    ///
    /// # Panics
    /// If `tool` was not in [`ProvisionOptions::tools`] (a bug in the
    /// caller, not a runtime condition); use [`Toolbox::get`] otherwise.
    pub fn path(&self, tool: Tool) -> &Path {
        match self.get(tool) {
            Some(p) => p,
            None => panic!("tool {tool} was not provisioned: add it to ProvisionOptions::tools"),
        }
    }

    pub fn get(&self, tool: Tool) -> Option<&Path> {
        self.tools.get(&tool).map(|r| r.path.as_path())
    }

    /// The directory holding Argo CD's CRDs (`application-crd.yaml`,
    /// `appproject-crd.yaml`, `applicationset-crd.yaml`) of the pinned version.
    ///
    /// # Panics
    /// If [`Tool::Argocd`] was not provisioned; see [`Toolbox::get_argocd_crds_dir`].
    pub fn argocd_crds_dir(&self) -> &Path {
        match self.get_argocd_crds_dir() {
            Some(p) => p,
            None => panic!(
                "Argo CD CRDs were not provisioned: add Tool::Argocd to ProvisionOptions::tools"
            ),
        }
    }

    pub fn get_argocd_crds_dir(&self) -> Option<&Path> {
        self.argocd_crds.as_deref()
    }

    pub fn report(&self) -> Vec<ToolReport> {
        self.tools.values().cloned().collect()
    }

    /// The report as aligned text lines (what `cargo xtask tools` prints).
    pub fn render_report(&self) -> String {
        let rows: Vec<[String; 4]> = self
            .tools
            .values()
            .map(|r| {
                [
                    r.tool.to_string(),
                    r.version.clone(),
                    r.path.display().to_string(),
                    r.source.to_string(),
                ]
            })
            .collect();
        let mut widths = [0usize; 3];
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row.iter()) {
                *w = (*w).max(cell.len());
            }
        }
        let mut out = String::new();
        for [tool, version, path, source] in rows {
            out.push_str(&format!(
                "{tool:<w0$}  {version:<w1$}  {path:<w2$}  {source}\n",
                w0 = widths[0],
                w1 = widths[1],
                w2 = widths[2]
            ));
        }
        if let Some(crds) = &self.argocd_crds {
            out.push_str(&format!("argocd CRDs: {}\n", crds.display()));
        }
        out
    }
}

/// Environment variable that picks the etcd source for a run: `debian` or `go`.
pub const ETCD_ENV: &str = "OCI_E2E_ETCD";

/// What to provision and which sources are allowed.
#[derive(Debug, Clone)]
pub struct ProvisionOptions {
    pub tools: BTreeSet<Tool>,
    /// The cache root (`tools/` is created under it).
    pub cache_dir: PathBuf,
    /// Try the official release downloads.
    pub allow_download: bool,
    /// Where release downloads come from (a mirror, extra CAs).
    pub download: download::DownloadOptions,
    /// Build from the Go module proxy when `go` is available.
    pub allow_build: bool,
    /// Install Debian packages (needs root).
    pub allow_apt: bool,
    pub etcd: EtcdSource,
    /// Where to look for binaries and `go`; `None` means `$PATH`.
    pub search_path: Option<OsString>,
    /// Which Argo CD release (binary and CRDs): one of
    /// [`versions::ARGOCD_RELEASES`]; the default is [`versions::ARGOCD_VERSION`].
    pub argocd_version: String,
}

impl Default for ProvisionOptions {
    fn default() -> Self {
        Self {
            tools: Tool::lab_default(),
            cache_dir: cache::default_cache_root(),
            allow_download: true,
            download: download::DownloadOptions::from_env(),
            allow_build: true,
            allow_apt: apt::running_as_root(),
            etcd: std::env::var(ETCD_ENV)
                .ok()
                .and_then(|v| EtcdSource::parse(&v))
                .unwrap_or(versions::DEFAULT_ETCD_SOURCE),
            search_path: None,
            argocd_version: versions::ARGOCD_VERSION.to_string(),
        }
    }
}

/// A tool that no allowed source could provide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingTool {
    pub tool: Tool,
    /// The pinned version, e.g. `1.34.4` or `3.4.x`.
    pub wanted: String,
    /// What was tried, one line each.
    pub tried: Vec<String>,
    /// The command or step that fixes it.
    pub fix: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ToolsError {
    #[error("{}", render_missing(.0))]
    Missing(Vec<MissingTool>),
    #[error("cannot {what} ({}): {source}", path.display())]
    Io {
        what: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot lock the tool cache entry {}: {source}; check that the cache directory is writable or set OCI_E2E_CACHE", path.display())]
    Lock {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{what}` failed: {detail}{}", log.as_ref().map(|l| format!("\n  full log: {}", l.display())).unwrap_or_default())]
    Command {
        what: String,
        detail: String,
        log: Option<PathBuf>,
    },
    #[error("download {url} failed: {detail}")]
    Download { url: String, detail: String },
    #[error("{0}")]
    Version(String),
    #[error("{name}={value:?} is not valid: use {expected}")]
    InvalidSetting {
        name: &'static str,
        value: String,
        expected: &'static str,
    },
}

impl ToolsError {
    pub(crate) fn io(what: &str, path: &Path, source: std::io::Error) -> Self {
        ToolsError::Io {
            what: what.to_owned(),
            path: path.to_owned(),
            source,
        }
    }
}

fn render_missing(missing: &[MissingTool]) -> String {
    let mut out = String::new();
    for (i, m) in missing.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&format!("{} {} is not available.\n", m.tool, m.wanted));
        for t in &m.tried {
            out.push_str(&format!("  tried: {t}\n"));
        }
        out.push_str(&format!("  fix: {}", m.fix));
    }
    out
}

/// Provisions `opts.tools`, building or installing what is missing. Cheap
/// when everything is on PATH or cached.
pub async fn provision(
    opts: &ProvisionOptions,
    progress: &Progress,
) -> Result<Toolbox, ToolsError> {
    if let Ok(value) = std::env::var(ETCD_ENV)
        && EtcdSource::parse(&value).is_none()
    {
        return Err(ToolsError::InvalidSetting {
            name: ETCD_ENV,
            value,
            expected: "`debian` (Debian's etcd-server) or `go` (build etcd from Go modules)",
        });
    }
    let search_path = opts
        .search_path
        .clone()
        .or_else(|| std::env::var_os("PATH"))
        .unwrap_or_default();
    let fetcher = download::Fetcher::new(&opts.download)?;
    let mut run = Run {
        opts,
        progress,
        fetcher,
        cache: Cache::new(&opts.cache_dir),
        go: gobuild::find_go(&search_path),
        search_path,
        apt: apt::Apt::default(),
    };

    // One component (cache entry) may provide several tools.
    let mut components: Vec<(&'static Component, Vec<Tool>)> = Vec::new();
    let (argocd, argocd_crds) = versions::argocd_components(&opts.argocd_version)
        .map_err(|e| ToolsError::Version(e.to_string()))?;
    for tool in &opts.tools {
        let component = match tool {
            Tool::Argocd => argocd,
            _ => versions::component_for(*tool, opts.etcd),
        };
        match components
            .iter_mut()
            .find(|(c, _)| std::ptr::eq(*c, component))
        {
            Some((_, tools)) => tools.push(*tool),
            None => components.push((component, vec![*tool])),
        }
    }

    let mut found = BTreeMap::new();
    let mut missing = Vec::new();
    for (component, tools) in components {
        match run.component(component, &tools).await? {
            Ok(reports) => found.extend(reports.into_iter().map(|r| (r.tool, r))),
            Err(m) => missing.extend(m),
        }
    }
    let argocd_crds = if opts.tools.contains(&Tool::Argocd) {
        match run.argocd_crds(argocd, argocd_crds).await? {
            Ok(dir) => Some(dir),
            Err(m) => {
                missing.push(m);
                None
            }
        }
    } else {
        None
    };
    if !missing.is_empty() {
        return Err(ToolsError::Missing(missing));
    }
    Ok(Toolbox {
        tools: found,
        argocd_crds,
    })
}

struct Run<'a> {
    opts: &'a ProvisionOptions,
    progress: &'a Progress,
    fetcher: download::Fetcher,
    cache: Cache,
    search_path: OsString,
    go: Option<PathBuf>,
    apt: apt::Apt,
}

/// The outer `Result` is for errors that stop provisioning (cache I/O); the
/// inner one for tools that are simply not available.
type Outcome<T, M> = Result<Result<T, M>, ToolsError>;

impl Run<'_> {
    async fn component(
        &mut self,
        component: &'static Component,
        tools: &[Tool],
    ) -> Outcome<Vec<ToolReport>, Vec<MissingTool>> {
        let wanted = component.accept.to_string();
        let mut reports = Vec::new();
        let mut notes: BTreeMap<Tool, Vec<String>> = BTreeMap::new();

        // 1. PATH.
        let mut remaining = Vec::new();
        for &tool in tools {
            let (hit, wrong) = find_on_path(tool, component, &self.search_path).await;
            notes.entry(tool).or_default().extend(wrong);
            match hit {
                Some((path, version)) => reports.push(ToolReport {
                    tool,
                    version,
                    path,
                    source: ToolSource::Path,
                }),
                None => remaining.push(tool),
            }
        }
        if remaining.is_empty() {
            return Ok(Ok(reports));
        }

        // 2. Cache (apt-only components have no cache entry).
        let key = component.key();
        let cacheable = !component.downloads.is_empty() || component.go.is_some();
        if cacheable {
            if let Some(r) = self.cached_entry(component, &remaining) {
                reports.extend(r);
                return Ok(Ok(reports));
            }
            for &tool in &remaining {
                notes.entry(tool).or_default().push(format!(
                    "cache: no complete entry {}",
                    self.cache.entry_dir(&key).display()
                ));
            }
        }

        let lock = if cacheable {
            let lock = self.lock_blocking(&key).await?;
            // Someone else may have finished it while we waited.
            if let Some(r) = self.cached_entry(component, &remaining) {
                reports.extend(r);
                return Ok(Ok(reports));
            }
            Some(lock)
        } else {
            None
        };

        // 3. Release downloads (HTTPS, verified), all tools of the
        // component or none.
        let arch = go_arch();
        let artifacts: Vec<_> = remaining
            .iter()
            .map(|t| component.downloads_for(*t, arch))
            .collect();
        let downloads: Option<Vec<_>> = artifacts
            .iter()
            .map(|d| d.filter(|d| d.verifiable()))
            .collect();
        if let (Some(lock), Some(downloads), true) = (&lock, &downloads, self.opts.allow_download) {
            match self.download(component, downloads, lock).await {
                Ok(r) => {
                    reports.extend(r);
                    return Ok(Ok(reports));
                }
                Err(e) => {
                    self.progress.info(format!(
                        "{key}: release download failed: {e}; {}",
                        self.next_source(component)
                    ));
                    for &tool in &remaining {
                        notes
                            .entry(tool)
                            .or_default()
                            .push(format!("release download: {e}"));
                    }
                }
            }
        } else if cacheable && self.opts.allow_download {
            let why = if artifacts.iter().any(|a| a.is_none()) {
                format!("no official release artifact for linux/{arch} in the versions table")
            } else {
                "the release publishes no checksum file and no SHA-256 is pinned".to_string()
            };
            if component.go.is_some() {
                self.progress.info(format!(
                    "{key}: no verifiable release download ({why}); {}",
                    self.next_source(component)
                ));
            }
            for &tool in &remaining {
                notes
                    .entry(tool)
                    .or_default()
                    .push(format!("release download: {why}"));
            }
        }

        // 4. Go build.
        let mut build_failed_log = None;
        if let (Some(lock), Some(recipe)) = (&lock, &component.go) {
            match (&self.go, self.opts.allow_build) {
                (_, false) => {
                    for &tool in &remaining {
                        notes
                            .entry(tool)
                            .or_default()
                            .push("go build: not allowed (allow_build is off)".into());
                    }
                }
                (None, true) => {
                    for &tool in &remaining {
                        notes
                            .entry(tool)
                            .or_default()
                            .push("go build: `go` is not on PATH".into());
                    }
                }
                (Some(go), true) => {
                    let go = go.clone();
                    match self.go_build(&go, component, recipe, lock).await? {
                        Ok(r) => {
                            reports.extend(r.into_iter().filter(|r| remaining.contains(&r.tool)));
                            return Ok(Ok(reports));
                        }
                        Err(e) => {
                            build_failed_log = Some(self.cache.log_path(&key));
                            for &tool in &remaining {
                                notes
                                    .entry(tool)
                                    .or_default()
                                    .push(format!("go build: {e}"));
                            }
                        }
                    }
                }
            }
        }
        drop(lock);

        // 5. Debian package.
        let mut apt_failed = false;
        if let Some(pkg) = &component.apt {
            if self.opts.allow_apt && apt::running_as_root() {
                // dpkg allows one installer at a time: serialise our own
                // processes, and look again once we hold the lock (another
                // process may just have installed it).
                let _apt_lock = self.lock_blocking("apt").await?;
                let mut again = Vec::new();
                for &tool in &remaining {
                    if let (Some((path, version)), _) =
                        find_on_path(tool, component, &self.search_path).await
                    {
                        again.push(ToolReport {
                            tool,
                            version,
                            path,
                            source: ToolSource::Path,
                        });
                    }
                }
                if again.len() == remaining.len() {
                    reports.extend(again);
                    return Ok(Ok(reports));
                }
                let task = self.progress.task(format!(
                    "{}: apt-get install {}",
                    component.name, pkg.package
                ));
                match self.apt.install(pkg.package, &task).await {
                    Ok(()) => {
                        let mut all = true;
                        for &tool in &remaining {
                            match find_on_path(tool, component, &self.search_path).await {
                                (Some((path, version)), _) => reports.push(ToolReport {
                                    tool,
                                    version,
                                    path,
                                    source: ToolSource::Apt {
                                        package: pkg.package.to_owned(),
                                    },
                                }),
                                (None, wrong) => {
                                    all = false;
                                    let n = notes.entry(tool).or_default();
                                    n.push(format!("apt-get install {}: installed, but no {tool} {wanted} on PATH", pkg.package));
                                    n.extend(wrong);
                                }
                            }
                        }
                        if all {
                            task.done("installed");
                            return Ok(Ok(reports));
                        }
                        apt_failed = true;
                        task.fail("the package does not provide the pinned version");
                    }
                    Err(e) => {
                        apt_failed = true;
                        task.fail(e.to_string());
                        for &tool in &remaining {
                            notes.entry(tool).or_default().push(format!("apt: {e}"));
                        }
                    }
                }
            } else {
                let why = if apt::running_as_root() {
                    "not allowed (allow_apt is off)"
                } else {
                    "not running as root"
                };
                for &tool in &remaining {
                    notes
                        .entry(tool)
                        .or_default()
                        .push(format!("apt-get install {}: {why}", pkg.package));
                }
            }
        }

        let fix = self.fix(component, build_failed_log.as_deref(), apt_failed);
        Ok(Err(remaining
            .into_iter()
            .map(|tool| MissingTool {
                tool,
                wanted: wanted.clone(),
                tried: notes.remove(&tool).unwrap_or_default(),
                fix: fix.clone(),
            })
            .collect()))
    }

    /// Takes the cache lock `key` without blocking the runtime, saying so
    /// if another process holds it.
    async fn lock_blocking(&self, key: &str) -> Result<cache::EntryLock, ToolsError> {
        let progress = self.progress.clone();
        let cache = self.cache.clone();
        let key2 = key.to_owned();
        tokio::task::spawn_blocking(move || {
            cache.lock_entry(&key2, |path| {
                progress.info(format!(
                    "waiting for another process that is provisioning {key2} (lock {})",
                    path.display()
                ))
            })
        })
        .await
        .map_err(|e| ToolsError::Lock {
            path: self.cache.lock_path(key),
            source: std::io::Error::other(e),
        })?
    }

    /// What provisioning does after a release download, said at once.
    fn next_source(&self, component: &Component) -> String {
        match (&component.go, &self.go, self.opts.allow_build) {
            (Some(_), Some(_), true) => format!(
                "building it from the Go module proxy instead (about {} min on 2 cores with cold caches)",
                component.cold_build_minutes.max(1)
            ),
            _ if component.apt.is_some() => "trying its Debian package".into(),
            _ => "no other source is allowed".into(),
        }
    }

    /// The exact next step for a component no source could provide.
    fn fix(&self, component: &Component, build_log: Option<&Path>, apt_failed: bool) -> String {
        if let Some(log) = build_log {
            return format!(
                "read the build log {} (the Go module proxy must be reachable), fix the cause, then run `cargo xtask tools`",
                log.display()
            );
        }
        if let Some(pkg) = &component.apt {
            let mut fix = if apt_failed {
                format!(
                    "`{}` failed above; fix apt (e.g. run `apt-get update`), then run `cargo xtask tools`",
                    apt::install_command(pkg.package)
                )
            } else {
                format!("run `{}`", apt::install_command(pkg.package))
            };
            if component.name == "etcd" {
                fix.push_str(" or build etcd from Go modules with OCI_E2E_ETCD=go");
            }
            return fix;
        }
        if component.go.is_some() {
            if self.go.is_none() {
                return format!(
                    "install Go 1.26 (https://go.dev/dl) and put `go` on PATH, then run `cargo xtask tools` \
                     (builds {} {} from the Go module proxy); or put the release binary on PATH: {}",
                    component.name, component.version, component.release_page
                );
            }
            if !self.opts.allow_build {
                return format!(
                    "run `cargo xtask tools` to build {} {} from the Go module proxy (~{} min cold)",
                    component.name, component.version, component.cold_build_minutes
                );
            }
        }
        format!(
            "put {} {} on PATH: {}",
            component.name, component.version, component.release_page
        )
    }

    fn cached_entry(&self, component: &Component, tools: &[Tool]) -> Option<Vec<ToolReport>> {
        let key = component.key();
        let manifest = self.cache.complete_entry(&key)?;
        tools
            .iter()
            .map(|&tool| {
                let rel = format!("bin/{}", tool.binary_name());
                manifest
                    .files
                    .iter()
                    .any(|f| f.path == rel)
                    .then(|| ToolReport {
                        tool,
                        version: version::normalise(&manifest.version),
                        path: self.cache.binary_path(&key, tool.binary_name()),
                        source: ToolSource::Cache {
                            entry: key.clone(),
                            origin: manifest.source.clone(),
                        },
                    })
            })
            .collect()
    }

    async fn download(
        &self,
        component: &Component,
        downloads: &[&versions::Download],
        lock: &cache::EntryLock,
    ) -> Result<Vec<ToolReport>, ToolsError> {
        let key = component.key();
        let staging = self.cache.begin(&key, lock)?;
        let task = self
            .progress
            .task(format!("{key}: downloading the release"));
        let mut files = Vec::new();
        let mut verified = Vec::new();
        for d in downloads {
            task.update(d.url);
            let dest = staging.bin_dir().join(d.tool.binary_name());
            match self.fetcher.fetch(d, &dest).await {
                Ok(v) => verified.push(v),
                Err(e) => {
                    task.fail(e.to_string());
                    return Err(e);
                }
            }
            if let Err(e) = check_built_version(d.tool, component, &dest).await {
                task.fail(e.to_string());
                return Err(e);
            }
            files.push(format!("bin/{}", d.tool.binary_name()));
        }
        let origin = format!(
            "release download {} ({})",
            downloads.first().map(|d| d.url).unwrap_or_default(),
            verified
                .first()
                .map(ToString::to_string)
                .unwrap_or_default()
        );
        self.cache.commit(
            staging,
            lock,
            component.name,
            component.version,
            &origin,
            &files,
        )?;
        task.done("verified");
        Ok(downloads
            .iter()
            .zip(verified)
            .map(|(d, verified)| ToolReport {
                tool: d.tool,
                version: version::normalise(component.version),
                path: self.cache.binary_path(&key, d.tool.binary_name()),
                source: ToolSource::Download {
                    url: d.url.to_owned(),
                    verified,
                },
            })
            .collect())
    }

    async fn go_build(
        &self,
        go: &Path,
        component: &Component,
        recipe: &versions::GoRecipe,
        lock: &cache::EntryLock,
    ) -> Outcome<Vec<ToolReport>, ToolsError> {
        let key = component.key();
        let log = self.cache.log_path(&key);
        if let Some(dir) = log.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| ToolsError::io("create the log directory", dir, e))?;
        }
        // A fresh log per attempt.
        std::fs::write(&log, format!("# {key}: go build started {}\n", now()))
            .map_err(|e| ToolsError::io("write the build log", &log, e))?;
        let staging = self.cache.begin(&key, lock)?;
        let names: Vec<&str> = component.tools.iter().map(|t| t.name()).collect();
        self.progress.info(format!(
            "{key}: not on PATH or in the cache; building it from the Go module proxy (log: {})",
            log.display()
        ));
        let task = self.progress.task(format!(
            "building {} {} (go build, ~{} min cold)",
            names.join(", "),
            component.version,
            component.cold_build_minutes,
        ));
        let built = gobuild::build(
            go,
            component,
            recipe,
            staging.dir(),
            &staging.bin_dir(),
            &log,
            &task,
        )
        .await;
        let source = match built {
            Ok(source) => source,
            Err(e) => {
                task.fail(format!("see {}", log.display()));
                return Ok(Err(e));
            }
        };
        let mut files = Vec::new();
        for &tool in component.tools {
            let bin = staging.bin_dir().join(tool.binary_name());
            if let Err(e) = check_built_version(tool, component, &bin).await {
                task.fail(e.to_string());
                return Ok(Err(e));
            }
            files.push(format!("bin/{}", tool.binary_name()));
        }
        self.cache.commit(
            staging,
            lock,
            component.name,
            component.version,
            &source,
            &files,
        )?;
        task.done(format!(
            "cached in {}",
            self.cache.entry_dir(&key).display()
        ));
        Ok(Ok(component
            .tools
            .iter()
            .map(|&tool| ToolReport {
                tool,
                version: version::normalise(component.version),
                path: self.cache.binary_path(&key, tool.binary_name()),
                source: ToolSource::GoBuild { entry: key.clone() },
            })
            .collect()))
    }

    /// Argo CD's CRDs of `component`'s version, copied from the Go module
    /// `argocd` is built from.
    async fn argocd_crds(
        &self,
        argocd: &'static Component,
        component: &'static Component,
    ) -> Outcome<PathBuf, MissingTool> {
        let key = component.key();
        let dir = self.cache.entry_dir(&key).join("crds");
        if self.cache.complete_entry(&key).is_some() {
            return Ok(Ok(dir));
        }
        let missing = |tried: String, fix: String| MissingTool {
            tool: Tool::Argocd,
            wanted: format!("CRDs {}", component.version),
            tried: vec![tried],
            fix,
        };
        let mut tried = Vec::new();
        if self.opts.allow_download {
            match self.argocd_crds_download(component).await? {
                Ok(dir) => return Ok(Ok(dir)),
                Err(note) => tried.push(note),
            }
        }
        let Some(go) = &self.go else {
            tried.push("argocd CRDs: `go` is not on PATH (they come from the Go module)".into());
            return Ok(Err(MissingTool {
                tried,
                ..missing(
                    String::new(),
                    format!(
                        "install Go 1.26 (https://go.dev/dl), then run `cargo xtask tools`; the CRDs are at {}",
                        component.release_page
                    ),
                )
            }));
        };
        let lock = self.lock_blocking(&key).await?;
        if self.cache.complete_entry(&key).is_some() {
            return Ok(Ok(dir));
        }
        let staging = self.cache.begin(&key, &lock)?;
        let module = match &argocd.go {
            Some(versions::GoRecipe::Wrapper { module, .. }) => *module,
            _ => "github.com/argoproj/argo-cd/v3",
        };
        let task = self.progress.task(format!(
            "{key}: Argo CD CRDs from the Go module {module}@{}",
            component.version
        ));
        let downloaded = match gobuild::mod_download(go, staging.dir(), module, component.version)
            .await
        {
            Ok(d) => d,
            Err(e) => {
                task.fail(e.to_string());
                return Ok(Err(missing(
                    format!("argocd CRDs: {e}"),
                    "check that the Go module proxy is reachable (`go env GOPROXY`), then run `cargo xtask tools`".into(),
                )));
            }
        };
        let Some(src) = downloaded.dir.map(|d| d.join("manifests").join("crds")) else {
            task.fail("no module directory");
            return Ok(Err(missing(
                "argocd CRDs: `go mod download` named no directory".into(),
                "run `cargo xtask tools` again".into(),
            )));
        };
        // This entry holds no binaries.
        let _ = std::fs::remove_dir(staging.bin_dir());
        let crds = staging.dir().join("crds");
        std::fs::create_dir_all(&crds).map_err(|e| ToolsError::io("create", &crds, e))?;
        let mut files = Vec::new();
        for name in versions::ARGOCD_CRD_FILES {
            let from = src.join(name);
            let to = crds.join(name);
            std::fs::copy(&from, &to)
                .map_err(|e| ToolsError::io("copy an Argo CD CRD", &from, e))?;
            files.push(format!("crds/{name}"));
        }
        let origin = format!(
            "go mod download {module}@{} (manifests/crds)",
            component.version
        );
        self.cache.commit(
            staging,
            &lock,
            component.name,
            component.version,
            &origin,
            &files,
        )?;
        task.done(format!("{} CRDs", files.len()));
        Ok(Ok(dir))
    }

    /// The CRDs out of the release's `install.yaml`, downloaded over HTTPS
    /// and verified against the SHA-256 pinned for the version. The inner
    /// error is a note for the missing-tool message.
    async fn argocd_crds_download(
        &self,
        component: &'static Component,
    ) -> Outcome<PathBuf, String> {
        let key = component.key();
        let Some(pin) = versions::pinned_install_sha256(component.version) else {
            return Ok(Err(format!(
                "argocd CRDs: release download: no SHA-256 of install.yaml pinned for {}",
                component.version
            )));
        };
        let url = versions::argocd_install_url(component.version);
        let lock = self.lock_blocking(&key).await?;
        let dir = self.cache.entry_dir(&key).join("crds");
        if self.cache.complete_entry(&key).is_some() {
            return Ok(Ok(dir));
        }
        let task = self.progress.task(format!(
            "{key}: Argo CD CRDs from the release's install.yaml"
        ));
        let text = match self.fetcher.fetch_bytes_verified(&url, pin).await {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(e) => {
                task.fail(e.to_string());
                self.progress.info(format!(
                    "{key}: release download failed: {e}; taking the CRDs from the Go module instead"
                ));
                return Ok(Err(format!("argocd CRDs: release download: {e}")));
            }
        };
        let names: Vec<&str> = versions::ARGOCD_CRD_NAMES.iter().map(|(n, _)| *n).collect();
        let Some(crds) = download::crds_from_install_yaml(&text, &names) else {
            task.fail("not every CRD is in it");
            return Ok(Err(format!(
                "argocd CRDs: {url} (verified) does not hold each of {} once",
                names.join(", ")
            )));
        };
        let staging = self.cache.begin(&key, &lock)?;
        let _ = std::fs::remove_dir(staging.bin_dir());
        let out = staging.dir().join("crds");
        std::fs::create_dir_all(&out).map_err(|e| ToolsError::io("create", &out, e))?;
        let mut files = Vec::new();
        for (name, file) in versions::ARGOCD_CRD_NAMES {
            let path = out.join(file);
            let doc = crds.get(*name).copied().unwrap_or_default();
            std::fs::write(&path, format!("{}\n", doc.trim_end()))
                .map_err(|e| ToolsError::io("write an Argo CD CRD", &path, e))?;
            files.push(format!("crds/{file}"));
        }
        let origin = format!("release download {url} (SHA-256 pinned in the versions table)");
        self.cache.commit(
            staging,
            &lock,
            component.name,
            component.version,
            &origin,
            &files,
        )?;
        task.done(format!("{} CRDs, verified", files.len()));
        Ok(Ok(dir))
    }
}

/// The first binary for `tool` on `search_path` whose version matches the
/// pin, and a note for each one that does not.
pub async fn find_on_path(
    tool: Tool,
    component: &Component,
    search_path: &OsStr,
) -> (Option<(PathBuf, String)>, Vec<String>) {
    let mut wrong = Vec::new();
    for dir in std::env::split_paths(search_path) {
        for name in tool.path_names() {
            let candidate = dir.join(name);
            if !is_executable(&candidate) {
                continue;
            }
            match probe_version(tool, &candidate).await {
                Ok(v) if component.accept.matches(&v) => return (Some((candidate, v)), wrong),
                Ok(v) => wrong.push(format!(
                    "PATH: {} is version {v}, not {}",
                    candidate.display(),
                    component.accept
                )),
                Err(e) => wrong.push(format!("PATH: {}: {e}", candidate.display())),
            }
        }
    }
    if wrong.is_empty() {
        wrong.push(format!("PATH: no {}", tool.path_names().join(" or ")));
    }
    (None, wrong)
}

/// Runs the binary's version command and parses its output.
pub async fn probe_version(tool: Tool, binary: &Path) -> Result<String, String> {
    let run = tokio::process::Command::new(binary)
        .args(version::version_args(tool))
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = match tokio::time::timeout(Duration::from_secs(30), run).await {
        Ok(Ok(out)) => out,
        Ok(Err(e)) => return Err(format!("cannot run it: {e}")),
        Err(_) => return Err("its version command did not finish within 30s".into()),
    };
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    version::parse_version(tool, &text).ok_or_else(|| {
        let first = text
            .trim()
            .lines()
            .next()
            .unwrap_or("")
            .chars()
            .take(100)
            .collect::<String>();
        format!("unrecognised version output {first:?}")
    })
}

async fn check_built_version(
    tool: Tool,
    component: &Component,
    binary: &Path,
) -> Result<(), ToolsError> {
    match probe_version(tool, binary).await {
        Ok(v) if component.accept.matches(&v) => Ok(()),
        Ok(v) => Err(ToolsError::Command {
            what: format!(
                "{} {}",
                binary.display(),
                version::version_args(tool).join(" ")
            ),
            detail: format!("reports version {v}, the pin is {}", component.accept),
            log: None,
        }),
        Err(e) => Err(ToolsError::Command {
            what: format!(
                "{} {}",
                binary.display(),
                version::version_args(tool).join(" ")
            ),
            detail: e,
            log: None,
        }),
    }
}

/// `name` in one of the directories of `search_path`, if executable.
pub fn find_executable(name: &str, search_path: &OsStr) -> Option<PathBuf> {
    std::env::split_paths(search_path)
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// This machine's architecture in Go's spelling.
pub fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
