//! Version parsing of each tool's real `--version` output and matching
//! against the pins. The strings were captured from the Debian packages and
//! the Go builds on the project's machine.

use harness_tools::Tool;
use harness_tools::version::{parse_version, version_args};
use harness_tools::versions::{self, EtcdSource, VersionReq};

const ETCD_DEBIAN: &str = "etcd Version: 3.4.23\nGit SHA: Not provided (use ./build instead of go build)\nGo Version: go1.19.8\nGo OS/Arch: linux/amd64\n";
const ETCD_GO_BUILD: &str =
    "etcd Version: 3.6.8\nGit SHA: GitNotFound\nGo Version: go1.26.8\nGo OS/Arch: linux/amd64\n";
const KUBE: &str = "Kubernetes v1.34.4\n";
const KWOK: &str = "kwok version v0.7.0 go1.26.8 (linux/amd64)\n";
const REGISTRY_DEBIAN: &str = "/usr/bin/docker-registry github.com/docker/distribution 2.8.2+ds1\n";
const REDIS_DEBIAN: &str =
    "Redis server v=7.0.15 sha=00000000:0 malloc=jemalloc-5.3.0 bits=64 build=ae4d7c971a948f0\n";
const ARGOCD: &str = "argocd: v3.3.10+unknown\n";
const ORAS: &str = "Version:    1.3.0+unreleased\nGo version: go1.26.8\nOS/Arch:    linux/amd64\n";
const HELM: &str = "v3.19.4\n";
const ACTIONLINT: &str =
    "v1.7.12\ninstalled by building from source\nbuilt with go1.26.8 compiler for linux/amd64\n";

#[test]
fn parses_each_tools_real_version_output() {
    let cases: &[(Tool, &str, &str)] = &[
        (Tool::Etcd, ETCD_DEBIAN, "3.4.23"),
        (Tool::Etcd, ETCD_GO_BUILD, "3.6.8"),
        (Tool::KubeApiserver, KUBE, "1.34.4"),
        (Tool::KubeControllerManager, KUBE, "1.34.4"),
        (Tool::KubeScheduler, KUBE, "1.34.4"),
        (Tool::Kwok, KWOK, "0.7.0"),
        (Tool::Registry, REGISTRY_DEBIAN, "2.8.2"),
        (Tool::Redis, REDIS_DEBIAN, "7.0.15"),
        (Tool::Argocd, ARGOCD, "3.3.10"),
        (Tool::Oras, ORAS, "1.3.0"),
        (Tool::Helm, HELM, "3.19.4"),
        (Tool::Actionlint, ACTIONLINT, "1.7.12"),
    ];
    for (tool, output, want) in cases {
        assert_eq!(
            parse_version(*tool, output).as_deref(),
            Some(*want),
            "{tool}: {output:?}"
        );
    }
}

#[test]
fn rejects_output_of_another_program() {
    // kwok's error when asked `kwok version` (not its version command).
    let kwok_error = r#"{"level":"ERROR","msg":"Execute exit","err":"unknown command \"version\" for \"kwok\""}"#;
    assert_eq!(parse_version(Tool::Kwok, kwok_error), None);
    assert_eq!(
        parse_version(Tool::Oras, "Error: unknown flag: --version\n"),
        None
    );
    assert_eq!(parse_version(Tool::KubeApiserver, REDIS_DEBIAN), None);
    assert_eq!(parse_version(Tool::Redis, KUBE), None);
    assert_eq!(parse_version(Tool::Etcd, ""), None);
    // helm's bare "v3.19.4" is not actionlint's three-line answer.
    assert_eq!(parse_version(Tool::Actionlint, HELM), None);
}

#[test]
fn version_commands_match_what_each_tool_accepts() {
    // oras has no --version flag and argocd's needs --client to stay offline.
    assert_eq!(version_args(Tool::Oras), ["version"]);
    assert_eq!(
        version_args(Tool::Argocd),
        ["version", "--client", "--short"]
    );
    assert_eq!(version_args(Tool::Kwok), ["--version"]);
    // Go's flag package: one dash.
    assert_eq!(version_args(Tool::Actionlint), ["-version"]);
}

#[test]
fn pins_accept_their_own_builds_and_reject_others() {
    let etcd_debian = versions::component_for(Tool::Etcd, EtcdSource::Debian).accept;
    let etcd_go = versions::component_for(Tool::Etcd, EtcdSource::Go).accept;
    assert!(etcd_debian.matches("3.4.23"));
    assert!(!etcd_debian.matches("3.6.8"));
    assert!(etcd_go.matches("3.6.8"));
    assert!(
        !etcd_go.matches("3.4.23"),
        "Debian's etcd must not pass for the Go-built pin"
    );

    assert!(versions::KUBERNETES.accept.matches("v1.34.4"));
    assert!(!versions::KUBERNETES.accept.matches("1.34.3"));
    assert!(!versions::KUBERNETES.accept.matches("1.34.40"));
    assert!(versions::ARGOCD.accept.matches("v3.3.10+unknown"));
    assert!(!versions::ARGOCD.accept.matches("3.3.1"));
    assert!(versions::REGISTRY.accept.matches("2.8.2+ds1"));
    assert!(!versions::REGISTRY.accept.matches("2.80.0"));
    assert!(versions::REDIS.accept.matches("7.0.15"));
    assert!(!versions::REDIS.accept.matches("6.2.0"));
}

#[test]
fn series_and_exact_requirements() {
    assert!(VersionReq::Series("3.4").matches("3.4"));
    assert!(VersionReq::Series("3.4").matches("v3.4.0"));
    assert!(!VersionReq::Series("3.4").matches("3.40.1"));
    assert!(VersionReq::Exact("v0.7.0").matches("0.7.0"));
    assert!(!VersionReq::Exact("0.7.0").matches("0.7.0-rc1"));
}

#[test]
fn etcd_source_setting_values() {
    assert_eq!(EtcdSource::parse("go"), Some(EtcdSource::Go));
    assert_eq!(EtcdSource::parse(" Debian "), Some(EtcdSource::Debian));
    assert_eq!(EtcdSource::parse("gogo"), None);
    assert_eq!(EtcdSource::parse(""), None);
}
