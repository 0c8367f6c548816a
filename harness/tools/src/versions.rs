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

/// How a release publishes the SHA-256 of its artifacts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checksums {
    /// `<artifact URL>.sha256` holding the bare hex digest (dl.k8s.io).
    BareSibling,
    /// `<artifact URL><suffix>` in `sha256sum` format (get.helm.sh:
    /// `.sha256sum`).
    SumSibling(&'static str),
    /// One `sha256sum`-format file for the whole release, at this URL
    /// (etcd's `SHA256SUMS`, Argo CD's `cli_checksums.txt`).
    SumFile(&'static str),
    /// The release publishes none (kwok uploads bare binaries): only a
    /// pinned SHA-256 could verify a download.
    None,
}

impl Checksums {
    /// The checksum file's URL for an artifact at `url`.
    pub fn url_for(self, url: &str) -> Option<String> {
        match self {
            Checksums::BareSibling => Some(format!("{url}.sha256")),
            Checksums::SumSibling(suffix) => Some(format!("{url}{suffix}")),
            Checksums::SumFile(file) => Some(file.to_owned()),
            Checksums::None => None,
        }
    }
}

/// One official release artifact (HTTPS), and how to verify it.
#[derive(Debug, Clone, Copy)]
pub struct Download {
    /// Go-style architecture: `amd64`, `arm64`.
    pub arch: &'static str,
    pub tool: Tool,
    pub url: &'static str,
    /// Pinned here when known; it wins over the release's checksum file.
    pub sha256: Option<&'static str>,
    /// The release's own checksums, used when nothing is pinned.
    pub checksums: Checksums,
    /// For a `.tar.gz`, the member to extract; `None` for a bare binary.
    pub tar_member: Option<&'static str>,
}

impl Download {
    /// Whether this artifact can be verified at all (a pin or a checksum file).
    pub fn verifiable(&self) -> bool {
        self.sha256.is_some() || self.checksums != Checksums::None
    }
}

/// Kubernetes server binaries from dl.k8s.io, one per architecture, each
/// with its `.sha256` beside it.
macro_rules! kubernetes_binary {
    ($tool:expr, $name:literal, $arch:literal) => {
        Download {
            arch: $arch,
            tool: $tool,
            url: concat!(
                "https://dl.k8s.io/release/v1.34.4/bin/linux/",
                $arch,
                "/",
                $name
            ),
            sha256: None,
            checksums: Checksums::BareSibling,
            tar_member: None,
        }
    };
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

// --- The KIND lab ---

/// The kind release this lab is pinned to; nightly CI installs it.
pub const KIND_VERSION: &str = "v0.31.0";
/// kind v0.31.0's default node image (Kubernetes v1.35.0, the newest that
/// Argo CD 3.3 is tested against), pinned by digest.
pub const DEFAULT_NODE_IMAGE: &str =
    "kindest/node:v1.35.0@sha256:452d707d4862f52530247495d180205e029056831160e22870e37e3f6c1ac31f";
/// kind's recipe uses the distribution registry v3.
pub const DEFAULT_REGISTRY_IMAGE: &str = "registry:3";

/// kind itself, built from its Go module where no `kind` is on PATH
/// (no replace directives: a plain `go install`).
pub const KIND: Component = Component {
    name: "kind",
    version: KIND_VERSION,
    tools: &[Tool::Kind],
    accept: VersionReq::Exact("0.31.0"),
    downloads: &[],
    go: Some(GoRecipe::Install {
        package: "sigs.k8s.io/kind",
    }),
    apt: None,
    release_page: "https://github.com/kubernetes-sigs/kind/releases/tag/v0.31.0",
    cold_build_minutes: 1,
};

/// The node side of [`KUBERNETES`]'s release, for the offline KIND node
/// image and its kube-proxy: the same wrapper module and ldflags, so the Go
/// build cache the local lab's build left is reused (about a minute warm).
/// The node must run Kubernetes 1.34: kubelet 1.35+ refuses cgroup v1
/// hosts by default.
pub const KUBERNETES_NODE: Component = Component {
    name: "kubernetes-node",
    version: KUBERNETES_VERSION,
    tools: &[Tool::Kubelet, Tool::Kubeadm, Tool::Kubectl, Tool::KubeProxy],
    accept: VersionReq::Exact("1.34.4"),
    downloads: &[],
    go: Some(GoRecipe::Wrapper {
        module: "k8s.io/kubernetes",
        local_replace_version: Some("v0.34.4"),
        packages: &[
            "k8s.io/kubernetes/cmd/kubelet",
            "k8s.io/kubernetes/cmd/kubeadm",
            "k8s.io/kubernetes/cmd/kubectl",
            "k8s.io/kubernetes/cmd/kube-proxy",
        ],
        ldflags: KUBERNETES_LDFLAGS,
    }),
    apt: None,
    release_page: "https://dl.k8s.io/release/v1.34.4/bin/linux/amd64/",
    cold_build_minutes: 6,
};

/// crictl, which kind runs in nodes. A wrapper module only to stamp the
/// version (`go install` leaves it "unknown").
pub const CRICTL: Component = Component {
    name: "crictl",
    version: "v1.34.0",
    tools: &[Tool::Crictl],
    accept: VersionReq::Exact("1.34.0"),
    downloads: &[],
    go: Some(GoRecipe::Wrapper {
        module: "sigs.k8s.io/cri-tools",
        local_replace_version: None,
        packages: &["sigs.k8s.io/cri-tools/cmd/crictl"],
        ldflags: "-s -w -X sigs.k8s.io/cri-tools/pkg/version.Version=v1.34.0",
    }),
    apt: None,
    release_page: "https://github.com/kubernetes-sigs/cri-tools/releases/tag/v1.34.0",
    cold_build_minutes: 1,
};

/// CoreDNS at the version kubeadm 1.34 deploys (`CoreDNSVersion` in
/// cmd/kubeadm/app/constants).
pub const COREDNS: Component = Component {
    name: "coredns",
    version: "v1.12.1",
    tools: &[Tool::Coredns],
    accept: VersionReq::Exact("1.12.1"),
    downloads: &[],
    go: Some(GoRecipe::Install {
        package: "github.com/coredns/coredns",
    }),
    apt: None,
    release_page: "https://github.com/coredns/coredns/releases/tag/v1.12.1",
    cold_build_minutes: 3,
};

/// The pause image tag kubeadm 1.34 asks for (`PauseVersion`); the offline
/// node's containerd uses it as its sandbox image.
pub const PAUSE_VERSION: &str = "3.10.1";

/// SHA-256 of `manifests/install.yaml` at each Argo CD tag, the bytes
/// raw.githubusercontent.com serves. Computed from the git blobs of the
/// tags in argoproj/argo-cd (`git show <tag>:manifests/install.yaml |
/// sha256sum`); v3.3.10 and v3.3.19 cross-checked against the file in the
/// Go module zips (from the Go module proxy, github.com/argoproj/argo-cd/v3).
/// Native `oci://` sources need v3.1.0 or later, so the table starts there.
pub const PINNED_INSTALL_SHA256: &[(&str, &str)] = &[
    (
        "v3.1.0",
        "3d4973d5c4a0cf3d8395450e0f27aa41e24333cef56a1117b6e66d3396ff1b66",
    ),
    (
        "v3.1.1",
        "7072c73afd49fa38a6f692e458521f37255854641a1e432731cfc5d2c265183d",
    ),
    (
        "v3.1.2",
        "d633b7b90144f8bec98541bda2f2fc5704512e821b708eec6a02963cab038d71",
    ),
    (
        "v3.1.3",
        "2214b6592d812040a7c77593f88ab7f324bc2cfd87c993a11743c7bb8763ff31",
    ),
    (
        "v3.1.4",
        "36e97d8424d3b8a6ea59a321ab239bb9d49e838299758e5c3759bcf41afd8590",
    ),
    (
        "v3.1.5",
        "210e4fdfa6934dbcc21a1597d6e500debe2976513b76517fdd31f8df8e0b96c4",
    ),
    (
        "v3.1.6",
        "62140eda913f61e4ca4171f85e0801c1f3f4b5de8c75f8eb1d6e2733e2fd6eaa",
    ),
    (
        "v3.1.7",
        "5b0f557831d0820ed935c05478f51206b787c735571a467fe803ec45bb17211f",
    ),
    (
        "v3.1.8",
        "ef7e0bc4219861f5e7028d10cf0e4be58cbe3c0a178aa9069eed5c5a0574eb98",
    ),
    (
        "v3.1.9",
        "39e1851b3b192b5aa0d2fb7c817796d6c4e23d782c2982e0c8b427c1137e8efc",
    ),
    (
        "v3.1.10",
        "8ca89e93944cc723daf27a0516f4fad2cf44bf7204cd67a19f96fe08686dd195",
    ),
    (
        "v3.1.11",
        "743d50534c405110b4e3b41e010f490336a131a32e2caa470f158399742c1240",
    ),
    (
        "v3.1.12",
        "39f1221c80274c4cde124f41f328c25028180072723c374ab34ca8ac6b6e6acb",
    ),
    (
        "v3.1.13",
        "e89be6c8fe86158ef31a4078fd0f2f9835e379e03ca114165d3a43d3591d91ae",
    ),
    (
        "v3.1.14",
        "36511f941c0840cfe4321b59af7d3a272d46b95b47e11715ba394267c83d1c14",
    ),
    (
        "v3.1.15",
        "66b151847b2c7f33755bd2dec29c3961e42b3c6c91312a005fedabce0cc83747",
    ),
    (
        "v3.1.16",
        "e2f69ec0c5fd716cc9122e5c66470827214595f32b4348b1c3b11de8f5fa7f47",
    ),
    (
        "v3.2.0",
        "51299a0ff760849a4b92bb6c0044875bc17f0725c0a475203cd555457b2e38a4",
    ),
    (
        "v3.2.1",
        "a5e687d4e38edc603a67e45316087fe89a06603be9de908b07ab0afe98352c61",
    ),
    (
        "v3.2.2",
        "75e73e0d5c7abf59dde24d91cee09330aaaa900b563a3e6db5567896b2858d7a",
    ),
    (
        "v3.2.3",
        "db2b309ec3272162b9242323f665cee22aa5d5f8922fb1aaa6a429634e2b23c9",
    ),
    (
        "v3.2.4",
        "418eb6b2cf5a460a04d8e58c5935bca7514eb06355e30502573e4e354d637dd7",
    ),
    (
        "v3.2.5",
        "ee087a1327b3c294163702aa3ea3737dc9e02ef4106b993b1568ab63fada4ed1",
    ),
    (
        "v3.2.6",
        "584d53e4155689b7ac7154f6e89206af8e9eae1db2e42784ca7d01bb122ceba8",
    ),
    (
        "v3.2.7",
        "0c9ab6ffbab9c5c1f34c417960e3ef6258aed131fb3e9ce96b4c2fd15a87763f",
    ),
    (
        "v3.2.8",
        "7fbf9c852b8a078018dc2735cf9cc02eae6599025cbdf734c0d3fa2113aefae4",
    ),
    (
        "v3.2.9",
        "a20131bd25ff5ad7ad9d421af431406813f53c087337237525a65365b6ff2762",
    ),
    (
        "v3.2.10",
        "eb9af7f0ca4ea1944ecd0d96a7107c5a8f9f1fb2f742440d340be033de609b25",
    ),
    (
        "v3.2.11",
        "6cdd269e07f27b50f9e481cc7e685443b26b79372001ff7868ff1543610417bd",
    ),
    (
        "v3.2.12",
        "1097a8e8cdc1ed00831ec35338584ecaa2f79d29868fc0c2c5be61cce96253b8",
    ),
    (
        "v3.3.0",
        "a6120f20bb0b8d458fa1753fefe7dd2c36eadfd8e09bbdf81ca61849ef6a2f6f",
    ),
    (
        "v3.3.1",
        "ef8640e5cc4c8dab66d3795577a7c34c6c5c55a6e2d1c22e107b915ed3cda5e3",
    ),
    (
        "v3.3.2",
        "bec08b774820f68182a1fe25e831aacbc7551004328da41f101de8a9eb15c384",
    ),
    (
        "v3.3.3",
        "6f6fadaf2ce5f331a9b3851329c19ae8b8fed5a999598f07a712987ac9c78592",
    ),
    (
        "v3.3.4",
        "9bd662fafe903d0d410a6ed01ab60f979c36bc023a30dbb0b7bcac998ed26d72",
    ),
    (
        "v3.3.5",
        "166420df1f9a2fe4e53f50801b40fb3032ff98ae1a6a4ec3205a04d7984a3f3c",
    ),
    (
        "v3.3.6",
        "b610fc3a0097307d305785fdaaa1ca01b18818c922455a169877c3537bd783ec",
    ),
    (
        "v3.3.7",
        "bf1844394bf6213a60d316c2e3b0229495eb1d97689347f427bb2db69c1b510e",
    ),
    (
        "v3.3.8",
        "75390e0cc232195d6d1a9614631f2beb0baa23ef227db380351ea235904a1f0d",
    ),
    (
        "v3.3.9",
        "0e12d46216952eb872dc2bd216da5ac834edae60647f4fe8852405bbc39ad6b5",
    ),
    (
        "v3.3.10",
        "46a2d29b20977f1b1da70a26c92ae89b09e4482cc67bb01a6e757ecd8fa2fc9e",
    ),
    (
        "v3.3.11",
        "db9d0dec3ec4af6916a2cf7cce1689f23cae43d1dfdb2b834969add4cebe1a2f",
    ),
    (
        "v3.3.12",
        "9e73ddd9729b6d2b6d700f94305e65ba4109d3bfe7e87357d640254e8b09b701",
    ),
    (
        "v3.3.13",
        "4a7e17229084fbe7c4923189bada5d8ddf3a8a86acf200dc13e4822f670d22fb",
    ),
    (
        "v3.3.14",
        "74fe2e5b57b1ca652078c262e057b563efc4dcd317d734479185c2623177aea8",
    ),
    (
        "v3.3.19",
        "383632a950f78e58b2354ad4dbe519d5d307b13d8b90562a0fc1352f50faf668",
    ),
];

// --- The test command ---

/// cargo-nextest, installed by `cargo xtask test` when none is present.
pub const NEXTEST_VERSION: &str = "0.9.114";

// --- The local lab ---

pub const KUBERNETES_VERSION: &str = "v1.34.4";
pub const ARGOCD_VERSION: &str = "v3.3.10";

/// Stamped into every Kubernetes binary: kubeadm checks the requested
/// version against its own.
const KUBERNETES_LDFLAGS: &str = "-s -w \
    -X k8s.io/component-base/version.gitVersion=v1.34.4 \
    -X k8s.io/component-base/version.gitMajor=1 \
    -X k8s.io/component-base/version.gitMinor=34 \
    -X k8s.io/component-base/version.gitTreeState=clean \
    -X k8s.io/component-base/version.buildDate=2026-01-01T00:00:00Z";

pub const KUBERNETES: Component = Component {
    name: "kubernetes",
    version: KUBERNETES_VERSION,
    tools: &[
        Tool::KubeApiserver,
        Tool::KubeControllerManager,
        Tool::KubeScheduler,
    ],
    accept: VersionReq::Exact("1.34.4"),
    // dl.k8s.io publishes a .sha256 next to each binary; no hash is pinned
    // here (dl.k8s.io is not reachable from the machines that wrote this
    // table), so the download is checked against that file. See
    // docs/tools.md.
    downloads: &[
        kubernetes_binary!(Tool::KubeApiserver, "kube-apiserver", "amd64"),
        kubernetes_binary!(
            Tool::KubeControllerManager,
            "kube-controller-manager",
            "amd64"
        ),
        kubernetes_binary!(Tool::KubeScheduler, "kube-scheduler", "amd64"),
        kubernetes_binary!(Tool::KubeApiserver, "kube-apiserver", "arm64"),
        kubernetes_binary!(
            Tool::KubeControllerManager,
            "kube-controller-manager",
            "arm64"
        ),
        kubernetes_binary!(Tool::KubeScheduler, "kube-scheduler", "arm64"),
    ],
    go: Some(GoRecipe::Wrapper {
        module: "k8s.io/kubernetes",
        local_replace_version: Some("v0.34.4"),
        packages: &[
            "k8s.io/kubernetes/cmd/kube-apiserver",
            "k8s.io/kubernetes/cmd/kube-controller-manager",
            "k8s.io/kubernetes/cmd/kube-scheduler",
        ],
        ldflags: KUBERNETES_LDFLAGS,
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
    // The release's `argocd-linux-<arch>` is the CLI goreleaser builds from
    // `./cmd`, the same multi-call program as the Go recipe below and the
    // image's argocd-repo-server and argocd-application-controller (it
    // dispatches on its name); checked against `cli_checksums.txt`.
    downloads: &[
        Download {
            arch: "amd64",
            tool: Tool::Argocd,
            url: "https://github.com/argoproj/argo-cd/releases/download/v3.3.10/argocd-linux-amd64",
            sha256: None,
            checksums: Checksums::SumFile(
                "https://github.com/argoproj/argo-cd/releases/download/v3.3.10/cli_checksums.txt",
            ),
            tar_member: None,
        },
        Download {
            arch: "arm64",
            tool: Tool::Argocd,
            url: "https://github.com/argoproj/argo-cd/releases/download/v3.3.10/argocd-linux-arm64",
            sha256: None,
            checksums: Checksums::SumFile(
                "https://github.com/argoproj/argo-cd/releases/download/v3.3.10/cli_checksums.txt",
            ),
            tar_member: None,
        },
    ],
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

/// Argo CD releases from v3.1.0 on (native `oci://` sources) that the Go
/// module proxy serves, oldest first, and what building them here gave
/// (Go 1.26, the Go module proxy only, a wrapper module as for
/// [`ARGOCD`]). `--argocd-version` takes these; the newest that builds is
/// [`ARGOCD_VERSION`].
pub const ARGOCD_RELEASES: &[ArgoRelease] = &[
    ArgoRelease::new("v3.1.0", Build::Builds),
    ArgoRelease::new("v3.1.8", Build::Builds),
    ArgoRelease::new("v3.1.9", Build::Builds),
    ArgoRelease::new("v3.1.16", Build::Builds),
    ArgoRelease::new("v3.2.0", Build::Builds),
    ArgoRelease::new("v3.2.1", Build::Builds),
    ArgoRelease::new("v3.2.2", Build::Builds),
    ArgoRelease::new("v3.2.3", Build::Builds),
    ArgoRelease::new("v3.2.5", Build::Builds),
    ArgoRelease::new("v3.2.6", Build::Builds),
    ArgoRelease::new("v3.2.11", Build::Builds),
    ArgoRelease::new(
        "v3.2.12",
        Build::Fails(
            "its controller/cache/info.go calls settings.ValidateExternalURL, which the module's own util/settings does not define (the published module does not compile)",
        ),
    ),
    ArgoRelease::new("v3.3.0", Build::Builds),
    ArgoRelease::new("v3.3.1", Build::Builds),
    ArgoRelease::new("v3.3.2", Build::Builds),
    ArgoRelease::new("v3.3.3", Build::Builds),
    ArgoRelease::new("v3.3.4", Build::Builds),
    ArgoRelease::new("v3.3.5", Build::Builds),
    ArgoRelease::new("v3.3.6", Build::Untried),
    ArgoRelease::new("v3.3.7", Build::Untried),
    ArgoRelease::new("v3.3.9", Build::Builds),
    ArgoRelease::new("v3.3.10", Build::Builds),
    ArgoRelease::new("v3.3.14", Build::Fails(GITOPS_ENGINE_DIVERGED)),
    ArgoRelease::new("v3.3.15", Build::Fails(GITOPS_ENGINE_DIVERGED)),
    ArgoRelease::new("v3.3.16", Build::Fails(GITOPS_ENGINE_DIVERGED)),
    ArgoRelease::new("v3.3.17", Build::Fails(GITOPS_ENGINE_DIVERGED)),
    ArgoRelease::new("v3.3.18", Build::Fails(GITOPS_ENGINE_DIVERGED)),
    ArgoRelease::new("v3.3.19", Build::Fails(GITOPS_ENGINE_DIVERGED)),
    ArgoRelease::new("v3.4.0", Build::Fails(GITOPS_ENGINE_IN_REPO)),
    ArgoRelease::new("v3.4.2", Build::Fails(GITOPS_ENGINE_IN_REPO)),
    ArgoRelease::new("v3.4.3", Build::Fails(GITOPS_ENGINE_IN_REPO)),
    ArgoRelease::new("v3.4.4", Build::Fails(GITOPS_ENGINE_IN_REPO)),
    ArgoRelease::new("v3.4.5", Build::Fails(GITOPS_ENGINE_IN_REPO)),
    ArgoRelease::new("v3.4.6", Build::Fails(GITOPS_ENGINE_IN_REPO)),
    ArgoRelease::new("v3.4.7", Build::Fails(GITOPS_ENGINE_IN_REPO)),
    ArgoRelease::new("v3.4.9", Build::Fails(GITOPS_ENGINE_IN_REPO)),
    ArgoRelease::new("v3.4.10", Build::Fails(GITOPS_ENGINE_IN_REPO)),
    ArgoRelease::new("v3.4.11", Build::Fails(GITOPS_ENGINE_IN_REPO)),
    ArgoRelease::new("v3.4.12", Build::Fails(GITOPS_ENGINE_IN_REPO)),
    ArgoRelease::new("v3.4.13", Build::Fails(GITOPS_ENGINE_IN_REPO)),
    ArgoRelease::new("v3.4.14", Build::Fails(GITOPS_ENGINE_IN_REPO)),
    ArgoRelease::new("v3.5.0", Build::Fails(GITOPS_ENGINE_IN_REPO)),
    ArgoRelease::new("v3.5.1", Build::Fails(GITOPS_ENGINE_IN_REPO)),
    ArgoRelease::new("v3.5.2", Build::Fails(GITOPS_ENGINE_IN_REPO)),
    ArgoRelease::new("v3.5.3", Build::Fails(GITOPS_ENGINE_IN_REPO)),
    ArgoRelease::new("v3.5.4", Build::Fails(GITOPS_ENGINE_IN_REPO)),
    ArgoRelease::new("v3.5.5", Build::Fails(GITOPS_ENGINE_IN_REPO)),
    ArgoRelease::new("v3.5.6", Build::Fails(GITOPS_ENGINE_IN_REPO)),
    ArgoRelease::new("v3.5.7", Build::Fails(GITOPS_ENGINE_IN_REPO)),
    ArgoRelease::new("v3.5.8", Build::Fails(GITOPS_ENGINE_IN_REPO)),
    ArgoRelease::new(
        "v3.6.0",
        Build::Fails(
            "its go.mod requires github.com/argoproj/argo-cd/gitops-engine/v3 (replaced by ./gitops-engine, which a module download does not hold), and the versions of that module the Go module proxy serves do not build",
        ),
    ),
    ArgoRelease::new(
        "v3.6.1",
        Build::Fails(
            "its go.mod requires github.com/argoproj/argo-cd/gitops-engine/v3 (replaced by ./gitops-engine, which a module download does not hold), and the versions of that module the Go module proxy serves do not build",
        ),
    ),
    ArgoRelease::new(
        "v3.6.2",
        Build::Fails(
            "its go.mod requires github.com/argoproj/argo-cd/gitops-engine/v3 (replaced by ./gitops-engine, which a module download does not hold), and the versions of that module the Go module proxy serves do not build",
        ),
    ),
];

/// Why late v3.3 releases do not build from the Go module proxy.
const GITOPS_ENGINE_DIVERGED: &str = "its go.mod replaces github.com/argoproj/gitops-engine with ./gitops-engine, a directory a module download does not hold, and the published pseudo-version it names has diverged from that copy (e.g. KubectlCmd has no ManageServerSideDiffDryRuns)";

/// Why v3.4 and v3.5 do not build from the Go module proxy.
const GITOPS_ENGINE_IN_REPO: &str = "its go.mod requires github.com/argoproj/argo-cd/gitops-engine (gitops-engine moved into the argo-cd repository) replaced by ./gitops-engine, a directory a module download does not hold, and the Go module proxy refuses that module's pseudo-version (403: this module version is not available); the published github.com/argoproj/gitops-engine cannot stand in (its packages import their internal packages by the old path)";

/// One Argo CD release and whether it builds here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArgoRelease {
    pub version: &'static str,
    pub build: Build,
}

impl ArgoRelease {
    const fn new(version: &'static str, build: Build) -> Self {
        ArgoRelease { version, build }
    }
}

/// What building a release from the Go module proxy gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Build {
    /// Built and ran the local lab.
    Builds,
    /// Not tried yet: the build is attempted when asked for.
    Untried,
    /// Does not build, and why.
    Fails(&'static str),
}

/// Why `--argocd-version` cannot take a version.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArgoVersionError {
    #[error(
        "Argo CD {version} is not a release this harness knows (v3.1.0 or later, as the Go module proxy serves them: {known})"
    )]
    Unknown { version: String, known: String },
    #[error("Argo CD {version} does not build from the Go module proxy: {why}")]
    DoesNotBuild { version: String, why: &'static str },
}

/// `v3.1.0` for `3.1.0` or `v3.1.0`.
fn with_v(version: &str) -> String {
    let trimmed = version.trim();
    if trimmed.starts_with('v') {
        trimmed.to_string()
    } else {
        format!("v{trimmed}")
    }
}

/// The release `version` names (`3.1.0` or `v3.1.0`), if the table has it
/// and it builds (or has not been tried).
pub fn argocd_release(version: &str) -> Result<&'static ArgoRelease, ArgoVersionError> {
    let wanted = with_v(version);
    let release = ARGOCD_RELEASES
        .iter()
        .find(|r| r.version == wanted)
        .ok_or_else(|| ArgoVersionError::Unknown {
            version: wanted.clone(),
            known: ARGOCD_RELEASES
                .iter()
                .filter(|r| !matches!(r.build, Build::Fails(_)))
                .map(|r| r.version)
                .collect::<Vec<_>>()
                .join(", "),
        })?;
    match release.build {
        Build::Fails(why) => Err(ArgoVersionError::DoesNotBuild {
            version: wanted,
            why,
        }),
        _ => Ok(release),
    }
}

/// The Argo CD binary and CRDs components of a release from
/// [`ARGOCD_RELEASES`]: [`ARGOCD`] and [`ARGOCD_CRDS`] for the default,
/// the same recipe at `version` for the others (made once per process).
pub fn argocd_components(
    version: &str,
) -> Result<(&'static Component, &'static Component), ArgoVersionError> {
    use std::collections::BTreeMap;
    use std::sync::{Mutex, OnceLock};
    let release = argocd_release(version)?;
    if release.version == ARGOCD_VERSION {
        return Ok((&ARGOCD, &ARGOCD_CRDS));
    }
    type Made = BTreeMap<&'static str, (&'static Component, &'static Component)>;
    static MADE: OnceLock<Mutex<Made>> = OnceLock::new();
    let mut made = MADE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let pair = made.entry(release.version).or_insert_with(|| {
        // Leaked once per release a process uses: Components are 'static.
        let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
        let v = release.version;
        let bare = leak(v.trim_start_matches('v').to_string());
        let binary: &'static Component = Box::leak(Box::new(Component {
            version: v,
            accept: VersionReq::Exact(bare),
            go: Some(GoRecipe::Wrapper {
                module: "github.com/argoproj/argo-cd/v3",
                local_replace_version: None,
                packages: &["github.com/argoproj/argo-cd/v3/cmd"],
                ldflags: leak(format!(
                    "-s -w -X github.com/argoproj/argo-cd/v3/common.version={bare}"
                )),
            }),
            release_page: leak(format!(
                "https://github.com/argoproj/argo-cd/releases/download/{v}/argocd-linux-amd64"
            )),
            downloads: Box::leak(
                ["amd64", "arm64"]
                    .map(|arch| Download {
                        arch,
                        tool: Tool::Argocd,
                        url: leak(format!(
                            "https://github.com/argoproj/argo-cd/releases/download/{v}/argocd-linux-{arch}"
                        )),
                        sha256: None,
                        checksums: Checksums::SumFile(leak(format!(
                            "https://github.com/argoproj/argo-cd/releases/download/{v}/cli_checksums.txt"
                        ))),
                        tar_member: None,
                    })
                    .into_iter()
                    .collect::<Vec<_>>()
                    .into_boxed_slice(),
            ),
            ..ARGOCD
        }));
        let crds: &'static Component = Box::leak(Box::new(Component {
            version: v,
            accept: VersionReq::Exact(bare),
            release_page: leak(format!(
                "https://github.com/argoproj/argo-cd/tree/{v}/manifests/crds"
            )),
            ..ARGOCD_CRDS
        }));
        (binary, crds)
    });
    Ok(*pair)
}

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

/// Each CRD of [`ARGOCD_CRD_FILES`] by the object's name, as it appears in
/// the release's `install.yaml`.
pub const ARGOCD_CRD_NAMES: &[(&str, &str)] = &[
    ("applications.argoproj.io", "application-crd.yaml"),
    ("appprojects.argoproj.io", "appproject-crd.yaml"),
    ("applicationsets.argoproj.io", "applicationset-crd.yaml"),
];

/// Where Argo CD publishes the manifest of a tag (pinned in
/// [`PINNED_INSTALL_SHA256`]).
pub fn argocd_install_url(version: &str) -> String {
    format!("https://raw.githubusercontent.com/argoproj/argo-cd/{version}/manifests/install.yaml")
}

/// The pinned SHA-256 of `version`'s `install.yaml`, if the table has it.
pub fn pinned_install_sha256(version: &str) -> Option<&'static str> {
    PINNED_INSTALL_SHA256
        .iter()
        .find(|(v, _)| *v == version)
        .map(|(_, sha)| *sha)
}

pub const KWOK: Component = Component {
    name: "kwok",
    version: "v0.7.0",
    tools: &[Tool::Kwok],
    accept: VersionReq::Exact("0.7.0"),
    // kwok's releases upload bare binaries with no checksum file
    // (hack/releases.sh), and no hash is pinned: built from Go modules.
    downloads: &[Download {
        arch: "amd64",
        tool: Tool::Kwok,
        url: "https://github.com/kubernetes-sigs/kwok/releases/download/v0.7.0/kwok-linux-amd64",
        sha256: None,
        checksums: Checksums::None,
        tar_member: None,
    }],
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

/// cosign is only for the signing interop tests (harness/testkit/tests/sign_*.rs):
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
/// the Helm interop test (harness/testkit/tests/helm_interop.rs) runs its CLI. Its
/// go.mod has no replace directives, but `go install` cannot stamp the
/// version (`helm version` would say `v3.19`): a wrapper module with
/// ldflags does.
pub const HELM: Component = Component {
    name: "helm",
    version: "v3.19.4",
    tools: &[Tool::Helm],
    accept: VersionReq::Exact("3.19.4"),
    downloads: &[
        Download {
            arch: "amd64",
            tool: Tool::Helm,
            url: "https://get.helm.sh/helm-v3.19.4-linux-amd64.tar.gz",
            sha256: None,
            checksums: Checksums::SumSibling(".sha256sum"),
            tar_member: Some("linux-amd64/helm"),
        },
        Download {
            arch: "arm64",
            tool: Tool::Helm,
            url: "https://get.helm.sh/helm-v3.19.4-linux-arm64.tar.gz",
            sha256: None,
            checksums: Checksums::SumSibling(".sha256sum"),
            tar_member: Some("linux-arm64/helm"),
        },
    ],
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

/// actionlint is only for the suite's check of the GitHub workflows
/// (harness/testkit/tests/ci_workflows.rs): not provisioned unless asked
/// for. Its go.mod has no replace directives, so a plain `go install`
/// builds it (and stamps the version from the module); under a minute
/// cold. The CI workflows key their Go and tool caches on this file, so a
/// new pin here is a new cache.
pub const ACTIONLINT: Component = Component {
    name: "actionlint",
    version: "v1.7.12",
    tools: &[Tool::Actionlint],
    accept: VersionReq::Exact("1.7.12"),
    downloads: &[],
    go: Some(GoRecipe::Install {
        package: "github.com/rhysd/actionlint/cmd/actionlint",
    }),
    apt: None,
    release_page: "https://github.com/rhysd/actionlint/releases/tag/v1.7.12",
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
    downloads: &[
        Download {
            arch: "amd64",
            tool: Tool::Etcd,
            url: "https://github.com/etcd-io/etcd/releases/download/v3.6.8/etcd-v3.6.8-linux-amd64.tar.gz",
            sha256: None,
            checksums: Checksums::SumFile(
                "https://github.com/etcd-io/etcd/releases/download/v3.6.8/SHA256SUMS",
            ),
            tar_member: Some("etcd-v3.6.8-linux-amd64/etcd"),
        },
        Download {
            arch: "arm64",
            tool: Tool::Etcd,
            url: "https://github.com/etcd-io/etcd/releases/download/v3.6.8/etcd-v3.6.8-linux-arm64.tar.gz",
            sha256: None,
            checksums: Checksums::SumFile(
                "https://github.com/etcd-io/etcd/releases/download/v3.6.8/SHA256SUMS",
            ),
            tar_member: Some("etcd-v3.6.8-linux-arm64/etcd"),
        },
    ],
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
        Tool::Kind => &KIND,
        Tool::Kubelet | Tool::Kubeadm | Tool::Kubectl | Tool::KubeProxy => &KUBERNETES_NODE,
        Tool::Crictl => &CRICTL,
        Tool::Coredns => &COREDNS,
        Tool::Actionlint => &ACTIONLINT,
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
    &KIND,
    &KUBERNETES_NODE,
    &CRICTL,
    &COREDNS,
    &ACTIONLINT,
];

#[cfg(test)]
mod tests {
    use super::*;

    /// Every release URL is HTTPS, names its component's version, and its
    /// checksum file (if any) comes from the same release.
    #[test]
    fn release_downloads_are_https_and_of_their_version() {
        let extra = argocd_components("v3.1.8").expect("v3.1.8").0;
        for component in ALL_COMPONENTS.iter().copied().chain([extra]) {
            for d in component.downloads {
                assert!(d.url.starts_with("https://"), "{}", d.url);
                assert!(
                    d.url.contains(component.version),
                    "{} does not name {}",
                    d.url,
                    component.version
                );
                assert!(
                    d.url.contains(&format!("linux-{}", d.arch))
                        || d.url.contains(&format!("linux/{}", d.arch)),
                    "{}",
                    d.url
                );
                if let Some(sums) = d.checksums.url_for(d.url) {
                    assert!(sums.starts_with("https://"), "{sums}");
                    assert!(sums.contains(component.version), "{sums}");
                }
                if let Some(member) = d.tar_member {
                    assert!(d.url.ends_with(".tar.gz"), "{}", d.url);
                    assert!(member.contains(d.arch), "{member}");
                }
                assert!(component.tools.contains(&d.tool), "{}", d.url);
            }
        }
    }

    /// The local lab's downloadable tools: each has a verifiable amd64
    /// artifact, except kwok (no checksum file published, nothing pinned).
    #[test]
    fn the_lab_binaries_have_verifiable_downloads_but_kwok() {
        for tool in [
            Tool::KubeApiserver,
            Tool::KubeControllerManager,
            Tool::KubeScheduler,
            Tool::Argocd,
            Tool::Helm,
        ] {
            let d = component_for(tool, EtcdSource::Go)
                .downloads_for(tool, "amd64")
                .unwrap_or_else(|| panic!("{tool} has no amd64 download"));
            assert!(d.verifiable(), "{tool}");
        }
        let etcd = ETCD_GO.downloads_for(Tool::Etcd, "amd64").expect("etcd");
        assert!(etcd.verifiable());
        let kwok = KWOK.downloads_for(Tool::Kwok, "amd64").expect("kwok");
        assert!(!kwok.verifiable());
        let other = argocd_components("v3.1.8").expect("v3.1.8").0;
        let d = other
            .downloads_for(Tool::Argocd, "amd64")
            .expect("argocd v3.1.8");
        assert!(d.url.ends_with("/v3.1.8/argocd-linux-amd64"), "{}", d.url);
    }
}
