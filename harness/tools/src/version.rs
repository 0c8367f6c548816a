//! Reading a tool's version from what it prints, and matching it against
//! the pinned [`VersionReq`].

use super::Tool;
use super::versions::VersionReq;

/// The arguments that make `tool` print its version and exit.
pub fn version_args(tool: Tool) -> &'static [&'static str] {
    match tool {
        Tool::Argocd => &["version", "--client", "--short"],
        Tool::Oras => &["version"],
        Tool::Cosign => &["version"],
        Tool::ReferrersRegistry => &["--version"],
        Tool::Helm => &["version", "--short"],
        Tool::Kwok => &["--version"],
        Tool::Kind => &["version"],
        Tool::Kubeadm => &["version", "-o", "short"],
        Tool::Kubectl => &["version", "--client"],
        Tool::Coredns => &["-version"],
        Tool::Actionlint => &["-version"],
        _ => &["--version"],
    }
}

/// Extracts the version from `tool`'s version output (stdout and stderr
/// together), normalised: no leading `v`, no `+build` suffix. `None` when
/// the output is not what that tool prints.
pub fn parse_version(tool: Tool, output: &str) -> Option<String> {
    let found = match tool {
        // "etcd Version: 3.4.23"
        Tool::Etcd => after_marker(output, "etcd Version:"),
        // "Kubernetes v1.34.4"
        Tool::KubeApiserver
        | Tool::KubeControllerManager
        | Tool::KubeScheduler
        | Tool::Kubelet
        | Tool::KubeProxy => after_marker(output, "Kubernetes "),
        // `kubeadm version -o short`: "v1.34.4"
        Tool::Kubeadm => output
            .lines()
            .map(str::trim)
            .find(|l| l.starts_with('v'))
            .map(str::to_owned),
        // `kubectl version --client`: "Client Version: v1.34.4"
        Tool::Kubectl => after_marker(output, "Client Version:"),
        // "kind v0.31.0 go1.26.8 linux/amd64"
        Tool::Kind => after_marker(output, "kind "),
        // "crictl version v1.34.0"
        Tool::Crictl => after_marker(output, "crictl version"),
        // "CoreDNS-1.12.1"
        Tool::Coredns => after_marker(output, "CoreDNS-"),
        // "kwok version v0.7.0 go1.26.8 (linux/amd64)"
        Tool::Kwok => after_marker(output, "kwok version"),
        // Debian: "/usr/bin/docker-registry github.com/docker/distribution 2.8.2+ds1"
        // upstream: "registry github.com/distribution/distribution/v3 v3.0.0"
        Tool::Registry => output.lines().find_map(|line| {
            let mut words = line.split_whitespace();
            let _program = words.next()?;
            let module = words.next()?;
            if !module.contains("distribution") {
                return None;
            }
            words.next().map(str::to_owned)
        }),
        // "Redis server v=7.0.15 sha=00000000:0 malloc=jemalloc-5.3.0 bits=64 build=..."
        Tool::Redis => output
            .lines()
            .filter(|l| l.contains("Redis server"))
            .flat_map(str::split_whitespace)
            .find_map(|w| w.strip_prefix("v=").map(str::to_owned)),
        // `argocd version --client --short`: "argocd: v3.3.10+unknown"
        Tool::Argocd => after_marker(output, "argocd:"),
        // "referrers-registry go-containerregistry v0.20.7"
        Tool::ReferrersRegistry => after_marker(output, "go-containerregistry"),
        // `cosign version`: "GitVersion:    v2.6.5"
        Tool::Cosign => output.lines().find_map(|l| {
            l.trim()
                .strip_prefix("GitVersion:")
                .map(|v| v.trim().to_owned())
        }),
        // `helm version --short`: "v3.19.4+g7cfb6e4" (or without the commit)
        Tool::Helm => output
            .lines()
            .map(str::trim)
            .find(|l| l.starts_with('v'))
            .map(str::to_owned),
        // `actionlint -version`: "v1.7.12" on the first line, then
        // "installed by building from source" and the Go version.
        Tool::Actionlint => {
            let mut lines = output.lines().map(str::trim);
            let first = lines.find(|l| !l.is_empty())?;
            let later = output.contains("installed by") || output.contains("built with");
            (first.starts_with('v') && later).then(|| first.to_owned())
        }
        // `oras version`: "Version:    1.3.0+unreleased"
        Tool::Oras => output.lines().find_map(|l| {
            l.trim()
                .strip_prefix("Version:")
                .map(|v| v.trim().to_owned())
        }),
    }?;
    let normalised = normalise(&found);
    looks_like_version(&normalised).then_some(normalised)
}

/// `v1.34.4+ds1` -> `1.34.4`.
pub fn normalise(version: &str) -> String {
    let v = version.trim();
    let v = v.strip_prefix('v').unwrap_or(v);
    let v = v.split('+').next().unwrap_or(v);
    v.to_owned()
}

impl VersionReq {
    /// Whether a (normalised or raw) version satisfies this requirement.
    pub fn matches(&self, version: &str) -> bool {
        let have = normalise(version);
        match self {
            VersionReq::Exact(want) => have == normalise(want),
            VersionReq::Series(prefix) => {
                let prefix = normalise(prefix);
                have == prefix || have.starts_with(&format!("{prefix}."))
            }
        }
    }
}

impl std::fmt::Display for VersionReq {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VersionReq::Exact(v) => write!(f, "{v}"),
            VersionReq::Series(v) => write!(f, "{v}.x"),
        }
    }
}

fn after_marker(output: &str, marker: &str) -> Option<String> {
    output.lines().find_map(|line| {
        let at = line.find(marker)?;
        line[at + marker.len()..]
            .split_whitespace()
            .next()
            .map(str::to_owned)
    })
}

fn looks_like_version(v: &str) -> bool {
    let mut parts = v.split('.');
    parts
        .next()
        .is_some_and(|major| !major.is_empty() && major.bytes().all(|b| b.is_ascii_digit()))
        && v.split('.').count() >= 2
}
