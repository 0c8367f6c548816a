//! The pinned version of every lab tool, in one table, and where each can
//! come from. Change a version here and nowhere else: cache keys, version
//! checks, build recipes and error messages all derive from this table.
//!
//! Versions were chosen by building them on the project's machines (Debian,
//! Go 1.26, Go module proxy only). Argo CD v3.3.19 does not build as a
//! wrapper module (its local `./gitops-engine` replace diverged from the
//! published module); v3.3.10 does.

use super::Tool;

/// Which etcd the lab runs: 3.6 built from Go modules (about a minute,
/// once). Debian's `etcd-server` 3.4.23 works with kube-apiserver 1.34 but
/// lacks `RequestWatchProgress` (3.4.31+), so watch-list clients such as
/// kwok fall back and see new Pods tens of seconds late: `cargo xtask
/// bench` measured the suite at 111 s with 3.4 and 37 s with 3.6, a
/// Deployment turning Healthy at 76 s against 2.6 s. Override per run with
/// `OCI_E2E_ETCD=debian|go`.
pub const DEFAULT_ETCD_SOURCE: EtcdSource = EtcdSource::Go;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EtcdSource {
    /// Debian's `etcd-server` package (etcd 3.4): from PATH or apt.
    Debian,
    /// etcd built from the Go module proxy (`go.etcd.io/etcd/server/v3`).
    Go,
}

impl EtcdSource {
    /// Parses `debian` or `go` (the values of `OCI_E2E_ETCD`).
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "debian" | "apt" => Some(Self::Debian),
            "go" | "build" => Some(Self::Go),
            _ => None,
        }
    }
}

/// What `--version` must report for a binary to be accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionReq {
    /// Exactly this version (`1.34.4`; a leading `v` and `+build` metadata are
    /// ignored on both sides).
    Exact(&'static str),
    /// Any version in this series: `3.4` accepts `3.4.23` but not `3.40.0`.
    Series(&'static str),
}

/// One release artifact with its pinned SHA-256.
#[derive(Debug, Clone, Copy)]
pub struct Download {
    /// Go-style architecture: `amd64`, `arm64`.
    pub arch: &'static str,
    pub tool: Tool,
    pub url: &'static str,
    pub sha256: &'static str,
    /// For a `.tar.gz`, the member to extract; `None` for a bare binary.
    pub tar_member: Option<&'static str>,
}

/// How to build a component from the Go module proxy.
#[derive(Debug, Clone, Copy)]
pub enum GoRecipe {
    /// `GOBIN=<entry>/bin go install PACKAGE@VERSION` (modules without
    /// replace directives).
    Install { package: &'static str },
    /// A wrapper module: `go install` refuses modules with `replace`
    /// directives, so require `module` from a tiny module of our own that
    /// copies its replace block, then `go build` the command packages.
    Wrapper {
        module: &'static str,
        /// The module's local replaces (`=> ./staging/...`) point into its
        /// own repository, which a module download does not have. `Some(v)`
        /// maps each one whose module it requires to that module at version
        /// `v`; `None` drops them all.
        local_replace_version: Option<&'static str>,
        /// Command packages to build; each binary is named after the last
        /// path element unless only one package is built (then it takes the
        /// component's first tool name).
        packages: &'static [&'static str],
        ldflags: &'static str,
    },
    /// A small program of our own (`main_go`, one file) built against
    /// `module` at the component's version: for a tool that exists only as
    /// a library option (e.g. a registry with the referrers API turned on).
    Program {
        module: &'static str,
        main_go: &'static str,
    },
}

/// A Debian package that provides a tool.
#[derive(Debug, Clone, Copy)]
pub struct AptPackage {
    pub package: &'static str,
}

/// A unit that is provisioned (and cached) as one: one version, one or more
/// tools, its sources in order of preference.
#[derive(Debug)]
pub struct Component {
    /// Cache key prefix: the entry is `tools/<name>-<version>/`.
    pub name: &'static str,
    pub version: &'static str,
    pub tools: &'static [Tool],
    pub accept: VersionReq,
    pub downloads: &'static [Download],
    pub go: Option<GoRecipe>,
    pub apt: Option<AptPackage>,
    /// Where a person with internet gets it (for the missing-tool message).
    pub release_page: &'static str,
    /// Rough duration of a Go build with cold caches on 2 cores (progress
    /// text only).
    pub cold_build_minutes: u32,
}

impl Component {
    /// The cache entry name, e.g. `kubernetes-v1.34.4`.
    pub fn key(&self) -> String {
        format!("{}-{}", self.name, self.version)
    }

    pub fn downloads_for(&self, tool: Tool, arch: &str) -> Option<&'static Download> {
        self.downloads
            .iter()
            .find(|d| d.tool == tool && d.arch == arch)
    }
}

pub const KUBERNETES_VERSION: &str = "v1.34.4";
pub const ARGOCD_VERSION: &str = "v3.3.10";

pub const KUBERNETES: Component = Component {
    name: "kubernetes",
    version: KUBERNETES_VERSION,
    tools: &[
        Tool::KubeApiserver,
        Tool::KubeControllerManager,
        Tool::KubeScheduler,
    ],
    accept: VersionReq::Exact("1.34.4"),
    // dl.k8s.io publishes a .sha256 next to each binary, but it is not
    // reachable from the machines that pinned this table, so no hash is
    // known here. See docs/tools.md.
    downloads: &[],
    go: Some(GoRecipe::Wrapper {
        module: "k8s.io/kubernetes",
        local_replace_version: Some("v0.34.4"),
        packages: &[
            "k8s.io/kubernetes/cmd/kube-apiserver",
            "k8s.io/kubernetes/cmd/kube-controller-manager",
            "k8s.io/kubernetes/cmd/kube-scheduler",
        ],
        ldflags: "-s -w \
            -X k8s.io/component-base/version.gitVersion=v1.34.4 \
            -X k8s.io/component-base/version.gitMajor=1 \
            -X k8s.io/component-base/version.gitMinor=34 \
            -X k8s.io/component-base/version.gitTreeState=clean \
            -X k8s.io/component-base/version.buildDate=2026-01-01T00:00:00Z",
    }),
    apt: None,
    release_page: "https://dl.k8s.io/release/v1.34.4/bin/linux/amd64/",
    cold_build_minutes: 11,
};

pub const ARGOCD: Component = Component {
    name: "argocd",
    version: ARGOCD_VERSION,
    tools: &[Tool::Argocd],
    accept: VersionReq::Exact("3.3.10"),
    downloads: &[],
    go: Some(GoRecipe::Wrapper {
        module: "github.com/argoproj/argo-cd/v3",
        local_replace_version: None,
        packages: &["github.com/argoproj/argo-cd/v3/cmd"],
        ldflags: "-s -w -X github.com/argoproj/argo-cd/v3/common.version=3.3.10",
    }),
    apt: None,
    release_page: "https://github.com/argoproj/argo-cd/releases/download/v3.3.10/argocd-linux-amd64",
    cold_build_minutes: 10,
};

/// The Argo CD CRDs of [`ARGOCD`]'s version, taken from the Go module
/// (`manifests/crds/` in the module zip).
pub const ARGOCD_CRDS: Component = Component {
    name: "argocd-crds",
    version: ARGOCD_VERSION,
    tools: &[],
    accept: VersionReq::Exact("3.3.10"),
    downloads: &[],
    go: None,
    apt: None,
    release_page: "https://github.com/argoproj/argo-cd/tree/v3.3.10/manifests/crds",
    cold_build_minutes: 1,
};

/// The CRD files copied from the Argo CD module.
pub const ARGOCD_CRD_FILES: &[&str] = &[
    "application-crd.yaml",
    "appproject-crd.yaml",
    "applicationset-crd.yaml",
];

pub const KWOK: Component = Component {
    name: "kwok",
    version: "v0.7.0",
    tools: &[Tool::Kwok],
    accept: VersionReq::Exact("0.7.0"),
    downloads: &[],
    go: Some(GoRecipe::Install {
        package: "sigs.k8s.io/kwok/cmd/kwok",
    }),
    apt: None,
    release_page: "https://github.com/kubernetes-sigs/kwok/releases/download/v0.7.0/kwok-linux-amd64",
    cold_build_minutes: 3,
};

/// oras is only for benchmarks: not provisioned unless asked for.
pub const ORAS: Component = Component {
    name: "oras",
    version: "v1.3.0",
    tools: &[Tool::Oras],
    accept: VersionReq::Exact("1.3.0"),
    downloads: &[],
    go: Some(GoRecipe::Install {
        package: "oras.land/oras/cmd/oras",
    }),
    apt: None,
    release_page: "https://github.com/oras-project/oras/releases/download/v1.3.0/oras_1.3.0_linux_amd64.tar.gz",
    cold_build_minutes: 2,
};

/// cosign is only for the signing interop tests (harness/tests/sign_*.rs):
/// not provisioned unless asked for. Its go.mod has no replace directives,
/// so a plain `go install` builds it (about 9 minutes cold on 2 cores).
pub const COSIGN: Component = Component {
    name: "cosign",
    version: "v2.6.5",
    tools: &[Tool::Cosign],
    accept: VersionReq::Exact("2.6.5"),
    downloads: &[],
    go: Some(GoRecipe::Install {
        package: "github.com/sigstore/cosign/v2/cmd/cosign",
    }),
    apt: None,
    release_page: "https://github.com/sigstore/cosign/releases/download/v2.6.5/cosign-linux-amd64",
    cold_build_minutes: 9,
};

/// Helm, at the version Argo CD v3.3.10 ships in its image
/// (hack/tool-versions.sh `helm3_version`): the repo-server runs
/// `helm template` for Helm charts, so the local lab puts it on its PATH;
/// the Helm interop test (harness/tests/helm_interop.rs) runs its CLI. Its
/// go.mod has no replace directives, but `go install` cannot stamp the
/// version (`helm version` would say `v3.19`): a wrapper module with
/// ldflags does.
pub const HELM: Component = Component {
    name: "helm",
    version: "v3.19.4",
    tools: &[Tool::Helm],
    accept: VersionReq::Exact("3.19.4"),
    downloads: &[],
    go: Some(GoRecipe::Wrapper {
        module: "helm.sh/helm/v3",
        local_replace_version: None,
        packages: &["helm.sh/helm/v3/cmd/helm"],
        ldflags: "-s -w -X helm.sh/helm/v3/internal/version.version=v3.19.4",
    }),
    apt: None,
    release_page: "https://get.helm.sh/helm-v3.19.4-linux-amd64.tar.gz",
    cold_build_minutes: 5,
};

/// A registry with the OCI 1.1 referrers API, for the referrers tests:
/// go-containerregistry's `pkg/registry` with `WithReferrersSupport(true)`
/// (neither `crane registry serve` nor its `cmd/registry` turns it on), in
/// memory. zot would do too, but its module host is not reachable from the
/// Go module proxy here. About 1 minute cold on 2 cores.
pub const REFERRERS_REGISTRY: Component = Component {
    name: "referrers-registry",
    version: "v0.20.7",
    tools: &[Tool::ReferrersRegistry],
    accept: VersionReq::Exact("0.20.7"),
    downloads: &[],
    go: Some(GoRecipe::Program {
        module: "github.com/google/go-containerregistry",
        main_go: include_str!("programs/referrers-registry.go"),
    }),
    apt: None,
    release_page: "https://github.com/google/go-containerregistry/tree/v0.20.7/pkg/registry",
    cold_build_minutes: 1,
};

pub const ETCD_DEBIAN: Component = Component {
    name: "etcd",
    version: "3.4",
    tools: &[Tool::Etcd],
    accept: VersionReq::Series("3.4"),
    downloads: &[],
    go: None,
    apt: Some(AptPackage {
        package: "etcd-server",
    }),
    release_page: "https://packages.debian.org/bookworm/etcd-server",
    cold_build_minutes: 0,
};

pub const ETCD_GO: Component = Component {
    name: "etcd",
    version: "v3.6.8",
    tools: &[Tool::Etcd],
    accept: VersionReq::Exact("3.6.8"),
    downloads: &[],
    go: Some(GoRecipe::Wrapper {
        module: "go.etcd.io/etcd/server/v3",
        // server/v3's go.mod replaces its sibling modules (api, client, pkg)
        // with ../ paths; use the published ones of the same release.
        local_replace_version: Some("v3.6.8"),
        packages: &["go.etcd.io/etcd/server/v3"],
        ldflags: "-s -w",
    }),
    apt: None,
    release_page: "https://github.com/etcd-io/etcd/releases/download/v3.6.8/etcd-v3.6.8-linux-amd64.tar.gz",
    cold_build_minutes: 3,
};

/// The CNCF distribution registry as Debian packages it (2.8).
pub const REGISTRY: Component = Component {
    name: "registry",
    version: "2.8",
    tools: &[Tool::Registry],
    accept: VersionReq::Series("2.8"),
    downloads: &[],
    go: None,
    apt: Some(AptPackage {
        package: "docker-registry",
    }),
    release_page: "https://packages.debian.org/bookworm/docker-registry",
    cold_build_minutes: 0,
};

pub const REDIS: Component = Component {
    name: "redis",
    version: "7",
    tools: &[Tool::Redis],
    accept: VersionReq::Series("7"),
    downloads: &[],
    go: None,
    apt: Some(AptPackage {
        package: "redis-server",
    }),
    release_page: "https://packages.debian.org/bookworm/redis-server",
    cold_build_minutes: 0,
};

/// The component that provides `tool`.
pub fn component_for(tool: Tool, etcd: EtcdSource) -> &'static Component {
    match tool {
        Tool::Etcd => match etcd {
            EtcdSource::Debian => &ETCD_DEBIAN,
            EtcdSource::Go => &ETCD_GO,
        },
        Tool::KubeApiserver | Tool::KubeControllerManager | Tool::KubeScheduler => &KUBERNETES,
        Tool::Kwok => &KWOK,
        Tool::Registry => &REGISTRY,
        Tool::Redis => &REDIS,
        Tool::Argocd => &ARGOCD,
        Tool::Oras => &ORAS,
        Tool::Cosign => &COSIGN,
        Tool::ReferrersRegistry => &REFERRERS_REGISTRY,
        Tool::Helm => &HELM,
    }
}

/// Every component in the table (both etcd variants included).
pub const ALL_COMPONENTS: &[&Component] = &[
    &ETCD_DEBIAN,
    &ETCD_GO,
    &KUBERNETES,
    &KWOK,
    &REGISTRY,
    &REDIS,
    &ARGOCD,
    &ARGOCD_CRDS,
    &ORAS,
    &COSIGN,
    &REFERRERS_REGISTRY,
    &HELM,
];
