//! `provision` end to end for what is cheap: the Debian-backed tools for
//! real, and the decisions (wrong version on PATH, interrupted cache entry,
//! missing tool) with Go builds and apt switched off. Never builds anything.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::Path;

use harness_core::progress::Progress;
use harness_tools::versions::{self, EtcdSource};
use harness_tools::{MissingTool, ProvisionOptions, Tool, ToolSource, ToolsError, provision};

fn options(cache: &Path, tools: &[Tool], search_path: OsString) -> ProvisionOptions {
    ProvisionOptions {
        tools: tools.iter().copied().collect::<BTreeSet<_>>(),
        cache_dir: cache.to_owned(),
        allow_download: true,
        download: Default::default(),
        allow_build: false,
        allow_apt: false,
        etcd: EtcdSource::Debian,
        search_path: Some(search_path),
        argocd_version: versions::ARGOCD_VERSION.to_string(),
    }
}

fn missing(result: Result<harness_tools::Toolbox, ToolsError>) -> (Vec<MissingTool>, String) {
    match result {
        Err(ToolsError::Missing(m)) => {
            let msg = ToolsError::Missing(m.clone()).to_string();
            (m, msg)
        }
        Err(other) => panic!("expected a missing-tool error, got: {other}"),
        Ok(tb) => panic!(
            "expected a missing-tool error, got tools:\n{}",
            tb.render_report()
        ),
    }
}

#[tokio::test]
async fn debian_tools_on_path_are_used_as_they_are() {
    let installed = [
        "/usr/bin/etcd",
        "/usr/bin/docker-registry",
        "/usr/bin/redis-server",
    ];
    // `cargo xtask test` installs these; their absence fails the test
    // rather than passing a check that did not run.
    if let Some(absent) = installed.iter().find(|p| !Path::new(p).exists()) {
        panic!(
            "{absent} is not installed; run `cargo xtask test` or `apt-get install -y etcd-server docker-registry redis-server`"
        );
    }
    let cache = tempfile::tempdir().expect("tempdir");
    let path = std::env::var_os("PATH").unwrap_or_default();
    let opts = options(
        cache.path(),
        &[Tool::Etcd, Tool::Registry, Tool::Redis],
        path,
    );
    let toolbox = provision(&opts, &Progress::quiet())
        .await
        .expect("provision the Debian tools");

    assert_eq!(
        toolbox.path(Tool::Registry),
        Path::new("/usr/bin/docker-registry")
    );
    let report = toolbox.report();
    assert_eq!(report.len(), 3);
    for r in &report {
        assert_eq!(r.source, ToolSource::Path, "{r:?}");
        assert!(r.path.is_file(), "{r:?}");
        let component = versions::component_for(r.tool, EtcdSource::Debian);
        assert!(component.accept.matches(&r.version), "{r:?}");
    }
    assert_eq!(toolbox.get(Tool::KubeApiserver), None);
    // Nothing to cache for PATH tools.
    assert!(!cache.path().join("tools").join("etcd-3.4").exists());
}

#[tokio::test]
async fn a_tool_on_path_at_another_version_is_not_used() {
    // With the Go-built etcd pinned, Debian's etcd 3.4 is the wrong version.
    assert!(
        Path::new("/usr/bin/etcd").exists(),
        "/usr/bin/etcd is not installed; run `cargo xtask test` or `apt-get install -y etcd-server`"
    );
    let cache = tempfile::tempdir().expect("tempdir");
    let mut opts = options(cache.path(), &[Tool::Etcd], OsString::from("/usr/bin"));
    opts.etcd = EtcdSource::Go;
    let (missing, msg) = missing(provision(&opts, &Progress::quiet()).await);
    assert_eq!(missing.len(), 1);
    assert_eq!(missing[0].tool, Tool::Etcd);
    assert_eq!(missing[0].wanted, "3.6.8");
    assert!(
        msg.contains("/usr/bin/etcd is version 3.4.23, not 3.6.8"),
        "{msg}"
    );
}

#[tokio::test]
async fn a_missing_debian_tool_names_the_apt_command() {
    let cache = tempfile::tempdir().expect("tempdir");
    let empty = tempfile::tempdir().expect("tempdir");
    let opts = options(
        cache.path(),
        &[Tool::Redis, Tool::Etcd],
        empty.path().as_os_str().to_owned(),
    );
    let (missing, msg) = missing(provision(&opts, &Progress::quiet()).await);
    let tools: Vec<Tool> = missing.iter().map(|m| m.tool).collect();
    assert_eq!(tools, [Tool::Etcd, Tool::Redis]);
    assert!(msg.contains("redis 7.x is not available."), "{msg}");
    assert!(msg.contains("apt-get install -y redis-server`"), "{msg}");
    assert!(msg.contains("apt-get install -y etcd-server`"), "{msg}");
    assert!(msg.contains("OCI_E2E_ETCD=go"), "{msg}");
    assert!(msg.contains("PATH: no redis-server"), "{msg}");
}

#[tokio::test]
async fn a_missing_go_built_tool_says_to_install_go() {
    let cache = tempfile::tempdir().expect("tempdir");
    let empty = tempfile::tempdir().expect("tempdir");
    let mut opts = options(
        cache.path(),
        &[Tool::KubeApiserver, Tool::KubeScheduler],
        empty.path().as_os_str().to_owned(),
    );
    // Allowed, but there is no `go` on this search path.
    opts.allow_build = true;
    let (missing, msg) = missing(provision(&opts, &Progress::quiet()).await);
    assert_eq!(missing.len(), 2);
    assert!(
        msg.contains("kube-apiserver 1.34.4 is not available."),
        "{msg}"
    );
    assert!(msg.contains("go build: `go` is not on PATH"), "{msg}");
    assert!(msg.contains("install Go 1.26 (https://go.dev/dl)"), "{msg}");
    assert!(msg.contains(versions::KUBERNETES.release_page), "{msg}");
    // Nothing was half-built.
    assert!(
        !cache
            .path()
            .join("tools")
            .join("kubernetes-v1.34.4")
            .exists()
    );
}

#[tokio::test]
async fn an_interrupted_build_in_the_cache_is_not_used() {
    let cache = tempfile::tempdir().expect("tempdir");
    let tools = cache.path().join("tools");
    // What a killed build leaves: a temp dir with binaries, and (say from a
    // hand copy) an entry without manifest.
    let tmp_bin = tools.join(".tmp-kwok-v0.7.0-4242").join("bin");
    std::fs::create_dir_all(&tmp_bin).expect("mkdir");
    std::fs::copy("/bin/true", tmp_bin.join("kwok")).expect("copy");
    let entry_bin = tools.join("kwok-v0.7.0").join("bin");
    std::fs::create_dir_all(&entry_bin).expect("mkdir");
    std::fs::copy("/bin/true", entry_bin.join("kwok")).expect("copy");

    // Only `go` on the search path (builds are off): the fix is then to run
    // the provisioning command; without Go, to install it.
    let empty = tempfile::tempdir().expect("tempdir");
    let go = harness_tools::gobuild::find_go(&std::env::var_os("PATH").unwrap_or_default());
    let search = match go.as_deref().and_then(Path::parent) {
        Some(dir) => dir.as_os_str().to_owned(),
        None => empty.path().as_os_str().to_owned(),
    };
    let opts = options(cache.path(), &[Tool::Kwok], search);
    let (_, msg) = missing(provision(&opts, &Progress::quiet()).await);
    assert!(msg.contains("cache: no complete entry"), "{msg}");
    if go.is_some() {
        assert!(
            msg.contains("run `cargo xtask tools` to build kwok v0.7.0"),
            "{msg}"
        );
    } else {
        assert!(msg.contains("install Go 1.26"), "{msg}");
    }
    // The leftovers are still not an entry.
    assert!(!tools.join("kwok-v0.7.0").join("manifest.json").exists());
}
