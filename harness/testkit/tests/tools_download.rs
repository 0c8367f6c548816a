//! Release downloads against a real HTTPS server on loopback laid out like
//! the release hosts (harness_testkit::release_mirror): a pinned SHA-256 or
//! the release's own checksum file is enforced, a corrupted file or a
//! missing checksum file installs nothing, and provisioning a new machine's
//! lab binaries from such a mirror takes every one from its download.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Instant;

use harness_core::progress::Progress;
use harness_testkit::release_mirror::{
    DOWNLOADED, ReleaseMirror, mirror_path, publish_lab_releases, tar_gz,
};
use harness_tools::download::{DownloadOptions, Fetcher, Verified};
use harness_tools::versions::{self, Checksums, Download, EtcdSource};
use harness_tools::{ProvisionOptions, Tool, ToolSource, ToolsError, provision};
use sha2::{Digest, Sha256};

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

fn write(root: &Path, url: &str, bytes: &[u8]) {
    let path = mirror_path(root, url);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, bytes).expect("write");
}

/// A mirror of an empty tree in `dir`, and a fetcher that trusts its CA.
async fn mirror(dir: &Path) -> (ReleaseMirror, Fetcher, std::path::PathBuf) {
    let root = dir.join("root");
    std::fs::create_dir_all(&root).expect("root");
    let mirror = ReleaseMirror::start(&root, &dir.join("ca.pem"))
        .await
        .expect("start the mirror");
    let fetcher = Fetcher::new(&DownloadOptions {
        mirror: Some(mirror.url()),
        ca_file: Some(mirror.ca_file().to_path_buf()),
    })
    .expect("fetcher");
    (mirror, fetcher, root)
}

fn artifact(url: &'static str, sha256: Option<&'static str>, checksums: Checksums) -> Download {
    Download {
        arch: "amd64",
        tool: Tool::Kwok,
        url,
        sha256,
        checksums,
        tar_member: None,
    }
}

fn executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o111 == 0o111)
}

#[tokio::test]
async fn a_pinned_hash_verifies_without_a_checksum_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mirror, fetcher, root) = mirror(dir.path()).await;
    let body = b"#!/bin/sh\necho release\n";
    let url = "https://releases.example/v1/tool-linux-amd64";
    write(&root, url, body);
    let d = artifact(url, Some(leak(sha256(body))), Checksums::None);
    let dest = dir.path().join("tool");
    let verified = fetcher.fetch(&d, &dest).await.expect("download");
    assert_eq!(verified, Verified::Pinned);
    assert_eq!(std::fs::read(&dest).expect("read"), body);
    assert!(executable(&dest));
    assert_eq!(mirror.requests(), ["/releases.example/v1/tool-linux-amd64"]);
}

#[tokio::test]
async fn a_bare_sibling_checksum_file_verifies_the_download() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mirror, fetcher, root) = mirror(dir.path()).await;
    let body = b"kube-apiserver";
    let url = "https://dl.k8s.io/release/v1.34.4/bin/linux/amd64/kube-apiserver";
    write(&root, url, body);
    write(
        &root,
        &format!("{url}.sha256"),
        format!("{}\n", sha256(body)).as_bytes(),
    );
    let dest = dir.path().join("kube-apiserver");
    let verified = fetcher
        .fetch(&artifact(url, None, Checksums::BareSibling), &dest)
        .await
        .expect("download");
    assert_eq!(
        verified,
        Verified::ChecksumFile {
            url: format!("{url}.sha256")
        }
    );
    assert_eq!(
        verified.to_string(),
        format!("SHA-256 from the release's {url}.sha256")
    );
    assert_eq!(std::fs::read(&dest).expect("read"), body);
    assert_eq!(
        mirror.requests(),
        [
            "/dl.k8s.io/release/v1.34.4/bin/linux/amd64/kube-apiserver.sha256",
            "/dl.k8s.io/release/v1.34.4/bin/linux/amd64/kube-apiserver"
        ]
    );
}

#[tokio::test]
async fn a_member_is_extracted_from_a_tarball_the_release_sum_file_names() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_mirror, fetcher, root) = mirror(dir.path()).await;
    let tarball = tar_gz(&[
        ("etcd-v3.6.8-linux-amd64/README.md", b"readme"),
        ("etcd-v3.6.8-linux-amd64/etcd", b"ETCD"),
    ]);
    let url =
        "https://github.com/etcd-io/etcd/releases/download/v3.6.8/etcd-v3.6.8-linux-amd64.tar.gz";
    let sums = "https://github.com/etcd-io/etcd/releases/download/v3.6.8/SHA256SUMS";
    write(&root, url, &tarball);
    let other = sha256(b"arm64");
    write(
        &root,
        sums,
        format!(
            "{other}  etcd-v3.6.8-linux-arm64.tar.gz\n{}  etcd-v3.6.8-linux-amd64.tar.gz\n",
            sha256(&tarball)
        )
        .as_bytes(),
    );
    let d = Download {
        tar_member: Some("etcd-v3.6.8-linux-amd64/etcd"),
        tool: Tool::Etcd,
        ..artifact(url, None, Checksums::SumFile(sums))
    };
    let dest = dir.path().join("etcd");
    let verified = fetcher.fetch(&d, &dest).await.expect("download");
    assert_eq!(verified, Verified::ChecksumFile { url: sums.into() });
    assert_eq!(std::fs::read(&dest).expect("read"), b"ETCD");
    assert!(executable(&dest));
}

#[tokio::test]
async fn a_corrupted_file_is_discarded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_mirror, fetcher, root) = mirror(dir.path()).await;
    let url = "https://get.helm.sh/helm-v3.19.4-linux-amd64.tar.gz";
    write(&root, url, b"corrupted in transit");
    let published = sha256(b"the real tarball");
    write(
        &root,
        &format!("{url}.sha256sum"),
        format!("{published}  helm-v3.19.4-linux-amd64.tar.gz\n").as_bytes(),
    );
    let out = dir.path().join("out");
    std::fs::create_dir(&out).expect("mkdir");
    let dest = out.join("helm");
    let err = fetcher
        .fetch(
            &artifact(url, None, Checksums::SumSibling(".sha256sum")),
            &dest,
        )
        .await
        .expect_err("a corrupted file must fail");
    let msg = err.to_string();
    assert!(msg.contains("SHA-256 mismatch"), "{msg}");
    assert!(msg.contains(&published), "{msg}");
    assert!(!dest.exists());
    assert_eq!(
        std::fs::read_dir(&out).expect("ls").count(),
        0,
        "no partial file may remain"
    );
}

#[tokio::test]
async fn a_missing_checksum_file_installs_nothing_and_skips_the_artifact() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mirror, fetcher, root) = mirror(dir.path()).await;
    let url = "https://github.com/argoproj/argo-cd/releases/download/v3.3.10/argocd-linux-amd64";
    let sums = "https://github.com/argoproj/argo-cd/releases/download/v3.3.10/cli_checksums.txt";
    write(&root, url, b"argocd");
    let dest = dir.path().join("argocd");
    let err = fetcher
        .fetch(&artifact(url, None, Checksums::SumFile(sums)), &dest)
        .await
        .expect_err("no checksum file");
    let msg = err.to_string();
    assert!(msg.contains("checksum file"), "{msg}");
    assert!(msg.contains("404"), "{msg}");
    assert!(msg.contains("cli_checksums.txt"), "{msg}");
    assert!(!dest.exists());
    // The artifact itself was never fetched: nothing unverifiable is read.
    assert_eq!(
        mirror.requests(),
        ["/github.com/argoproj/argo-cd/releases/download/v3.3.10/cli_checksums.txt"]
    );

    // A checksum file that does not name the artifact is no better.
    write(
        &root,
        sums,
        format!("{}  argocd-linux-arm64\n", sha256(b"x")).as_bytes(),
    );
    let err = fetcher
        .fetch(&artifact(url, None, Checksums::SumFile(sums)), &dest)
        .await
        .expect_err("not listed");
    assert!(
        err.to_string()
            .contains("no SHA-256 for argocd-linux-amd64"),
        "{err}"
    );
    assert!(!dest.exists());
}

#[tokio::test]
async fn a_release_without_checksums_or_pin_is_not_downloaded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mirror, fetcher, root) = mirror(dir.path()).await;
    let url = "https://github.com/kubernetes-sigs/kwok/releases/download/v0.7.0/kwok-linux-amd64";
    write(&root, url, b"kwok");
    let err = fetcher
        .fetch(
            &artifact(url, None, Checksums::None),
            &dir.path().join("kwok"),
        )
        .await
        .expect_err("unverifiable");
    assert!(
        err.to_string().contains("publishes no checksum file"),
        "{err}"
    );
    assert!(mirror.requests().is_empty(), "{:?}", mirror.requests());
}

#[tokio::test]
async fn a_server_outside_the_trusted_cas_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mirror, _trusting, root) = mirror(dir.path()).await;
    let url = "https://releases.example/tool";
    write(&root, url, b"tool");
    let untrusting = Fetcher::new(&DownloadOptions {
        mirror: Some(mirror.url()),
        ca_file: None,
    })
    .expect("fetcher");
    let dest = dir.path().join("tool");
    let err = untrusting
        .fetch(
            &artifact(url, Some(leak(sha256(b"tool"))), Checksums::None),
            &dest,
        )
        .await
        .expect_err("untrusted certificate");
    assert!(matches!(err, ToolsError::Download { .. }), "{err:?}");
    assert!(
        err.to_string().to_lowercase().contains("certificate"),
        "{err}"
    );
    assert!(!dest.exists());
}

#[tokio::test]
async fn an_unreachable_host_is_a_download_error() {
    // A port nobody listens on: bind, note the port, close.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let fetcher = Fetcher::new(&DownloadOptions {
        mirror: Some(format!("https://127.0.0.1:{port}")),
        ca_file: None,
    })
    .expect("fetcher");
    let dir = tempfile::tempdir().expect("tempdir");
    let err = fetcher
        .fetch_verified(
            "https://dl.k8s.io/kube-apiserver",
            &sha256(b""),
            None,
            &dir.path().join("x"),
        )
        .await
        .expect_err("must fail");
    match err {
        ToolsError::Download { url, .. } => {
            assert_eq!(
                url,
                format!("https://127.0.0.1:{port}/dl.k8s.io/kube-apiserver")
            )
        }
        other => panic!("expected a download error, got {other}"),
    }
}

fn from_mirror(cache: &Path, mirror: &ReleaseMirror, empty_path: &Path) -> ProvisionOptions {
    ProvisionOptions {
        tools: DOWNLOADED.iter().copied().collect::<BTreeSet<_>>(),
        cache_dir: cache.to_path_buf(),
        allow_download: true,
        download: DownloadOptions {
            mirror: Some(mirror.url()),
            ca_file: Some(mirror.ca_file().to_path_buf()),
        },
        // Nothing but the downloads may provide them.
        allow_build: false,
        allow_apt: false,
        etcd: EtcdSource::Go,
        search_path: Some(empty_path.as_os_str().to_owned()),
        ..ProvisionOptions::default()
    }
}

#[tokio::test]
async fn a_new_machine_provisions_the_lab_binaries_from_release_downloads() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    publish_lab_releases(&root)
        .await
        .expect("publish the cached lab binaries (run `cargo xtask test` or `cargo xtask tools`)");
    let mirror = ReleaseMirror::start(&root, &dir.path().join("ca.pem"))
        .await
        .expect("mirror");
    let empty = dir.path().join("empty-path");
    std::fs::create_dir(&empty).expect("mkdir");
    let cache = dir.path().join("cache");
    let opts = from_mirror(&cache, &mirror, &empty);

    let started = Instant::now();
    let toolbox = provision(&opts, &Progress::new())
        .await
        .expect("provision from the mirror");
    let took = started.elapsed();
    let mut bytes = 0;
    for &tool in DOWNLOADED {
        let report = toolbox
            .report()
            .into_iter()
            .find(|r| r.tool == tool)
            .expect("reported");
        let d = versions::component_for(tool, EtcdSource::Go)
            .downloads_for(tool, harness_tools::go_arch())
            .expect("download");
        let expected = Verified::ChecksumFile {
            url: d.checksums.url_for(d.url).expect("checksum file"),
        };
        assert_eq!(
            report.source,
            ToolSource::Download {
                url: d.url.to_string(),
                verified: expected
            },
            "{tool}"
        );
        assert!(report.path.starts_with(&cache), "{}", report.path.display());
        bytes += std::fs::metadata(mirror_path(&root, d.url))
            .expect("size")
            .len();
    }
    eprintln!(
        "provisioned {} lab binaries ({} MB of release files) from the loopback HTTPS mirror in {:.1}s",
        DOWNLOADED.len(),
        bytes / 1_000_000,
        took.as_secs_f64()
    );
    // The CRDs came out of the release's install.yaml, verified against its pin.
    let crds = std::fs::read_to_string(
        cache
            .join("tools")
            .join(versions::ARGOCD_CRDS.key())
            .join("manifest.json"),
    )
    .expect("the CRDs' cache entry");
    assert!(
        crds.contains("release download https://raw.githubusercontent.com/argoproj/argo-cd/v3.3.10/manifests/install.yaml (SHA-256 pinned in the versions table)"),
        "{crds}"
    );
    assert_eq!(
        std::fs::read_dir(toolbox.argocd_crds_dir())
            .expect("crds")
            .count(),
        versions::ARGOCD_CRD_FILES.len()
    );
    // The same paths a machine with internet asks for, checksum files first.
    let asked = mirror.requests();
    for url in [
        "/dl.k8s.io/release/v1.34.4/bin/linux/amd64/kube-apiserver.sha256",
        "/github.com/argoproj/argo-cd/releases/download/v3.3.10/cli_checksums.txt",
        "/github.com/etcd-io/etcd/releases/download/v3.6.8/SHA256SUMS",
        "/get.helm.sh/helm-v3.19.4-linux-amd64.tar.gz.sha256sum",
    ] {
        assert!(asked.iter().any(|a| a == url), "{url} not in {asked:?}");
    }

    // A second run is a cache hit that remembers how the entry was made.
    let again = provision(&opts, &Progress::new()).await.expect("again");
    let report = again.render_report();
    assert!(
        report.contains("release download https://get.helm.sh/"),
        "{report}"
    );
    assert!(report.contains("SHA-256 from the release's"), "{report}");
    assert_eq!(
        mirror.requests().len(),
        asked.len(),
        "nothing fetched again"
    );
}

#[tokio::test]
async fn a_corrupted_release_or_a_missing_checksum_file_provides_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    publish_lab_releases(&root)
        .await
        .expect("publish the cached lab binaries (run `cargo xtask test` or `cargo xtask tools`)");
    let arch = harness_tools::go_arch();
    // kube-scheduler corrupted on the way (its .sha256 is the real one's).
    let scheduler = versions::KUBERNETES
        .downloads_for(Tool::KubeScheduler, arch)
        .expect("scheduler");
    let mut bytes = std::fs::read(mirror_path(&root, scheduler.url)).expect("read");
    bytes[1000] ^= 0xff;
    write(&root, scheduler.url, &bytes);
    // helm's .sha256sum missing.
    let helm = versions::HELM
        .downloads_for(Tool::Helm, arch)
        .expect("helm");
    std::fs::remove_file(mirror_path(&root, &format!("{}.sha256sum", helm.url))).expect("rm");

    let mirror = ReleaseMirror::start(&root, &dir.path().join("ca.pem"))
        .await
        .expect("mirror");
    let empty = dir.path().join("empty-path");
    std::fs::create_dir(&empty).expect("mkdir");
    let cache = dir.path().join("cache");
    let mut opts = from_mirror(&cache, &mirror, &empty);
    opts.tools = [
        Tool::KubeApiserver,
        Tool::KubeControllerManager,
        Tool::KubeScheduler,
        Tool::Helm,
    ]
    .into_iter()
    .collect();
    let err = provision(&opts, &Progress::new())
        .await
        .expect_err("nothing verifiable");
    let ToolsError::Missing(missing) = &err else {
        panic!("expected missing tools, got {err}");
    };
    let names: BTreeSet<Tool> = missing.iter().map(|m| m.tool).collect();
    assert_eq!(names, opts.tools, "{err}");
    let msg = err.to_string();
    assert!(msg.contains("SHA-256 mismatch"), "{msg}");
    assert!(
        msg.contains("helm-v3.19.4-linux-amd64.tar.gz.sha256sum"),
        "{msg}"
    );
    assert!(msg.contains("HTTP 404"), "{msg}");
    // No cache entry was completed for either, and helm's tarball was
    // never fetched.
    let tools_dir = cache.join("tools");
    for key in [versions::KUBERNETES.key(), versions::HELM.key()] {
        assert!(
            !tools_dir.join(&key).join("manifest.json").exists(),
            "{key} must not be cached"
        );
    }
    let helm_path = format!("/{}", helm.url.trim_start_matches("https://"));
    assert!(
        !mirror.requests().contains(&helm_path),
        "{:?}",
        mirror.requests()
    );
}

/// The CRDs cut out of the pinned install.yaml are the objects of the
/// tag's `manifests/crds/` (compared as parsed YAML).
#[tokio::test]
async fn the_crds_of_the_install_yaml_are_those_of_the_module() {
    let version = versions::ARGOCD_VERSION;
    let module = harness_tools::gobuild::module_dir("github.com/argoproj/argo-cd/v3", version)
        .await
        .expect("the Argo CD module (the Go module proxy)");
    let install = std::fs::read(module.join("manifests/install.yaml")).expect("install.yaml");
    assert_eq!(
        Some(sha256(&install).as_str()),
        versions::pinned_install_sha256(version)
    );
    let text = String::from_utf8(install).expect("utf-8");
    let names: Vec<&str> = versions::ARGOCD_CRD_NAMES.iter().map(|(n, _)| *n).collect();
    let crds =
        harness_tools::download::crds_from_install_yaml(&text, &names).expect("every CRD once");
    for (name, file) in versions::ARGOCD_CRD_NAMES {
        let ours: serde_json::Value = serde_saphyr::from_str(crds[*name]).expect("parse ours");
        let theirs_text =
            std::fs::read_to_string(module.join("manifests/crds").join(file)).expect("crd file");
        let theirs: serde_json::Value = serde_saphyr::from_str(&theirs_text).expect("parse theirs");
        assert_eq!(ours["metadata"]["name"], *name);
        assert!(ours == theirs, "{name} differs from manifests/crds/{file}");
    }
    // Without one of them, nothing is taken.
    let without = text.replace("name: appprojects.argoproj.io", "name: renamed.example.io");
    assert!(harness_tools::download::crds_from_install_yaml(&without, &names).is_none());
}
