//! The tool cache: location, entry layout, completeness and the lock.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use harness_tools::Tool;
use harness_tools::cache::{Cache, cache_root_from};
use harness_tools::versions::{self, EtcdSource, GoRecipe};

fn os(s: &str) -> Option<OsString> {
    Some(OsString::from(s))
}

#[test]
fn cache_root_prefers_override_then_xdg_then_home() {
    assert_eq!(
        cache_root_from(os("/o"), os("/x"), os("/h")),
        PathBuf::from("/o")
    );
    assert_eq!(
        cache_root_from(None, os("/x"), os("/h")),
        PathBuf::from("/x/oci-e2e")
    );
    assert_eq!(
        cache_root_from(os(""), os(""), os("/h")),
        PathBuf::from("/h/.cache/oci-e2e")
    );
    // The XDG spec says to ignore a relative XDG_CACHE_HOME.
    assert_eq!(
        cache_root_from(None, os("rel"), os("/h")),
        PathBuf::from("/h/.cache/oci-e2e")
    );
}

#[test]
fn entries_are_keyed_by_name_and_version() {
    let cache = Cache::new("/c");
    assert_eq!(versions::KUBERNETES.key(), "kubernetes-v1.34.4");
    assert_eq!(
        cache.binary_path(
            &versions::KUBERNETES.key(),
            Tool::KubeApiserver.binary_name()
        ),
        Path::new("/c/tools/kubernetes-v1.34.4/bin/kube-apiserver")
    );
    assert_eq!(versions::ARGOCD.key(), "argocd-v3.3.10");
    assert_eq!(
        versions::component_for(Tool::Etcd, EtcdSource::Go).key(),
        "etcd-v3.6.8"
    );
    assert_eq!(
        cache.log_path("kwok-v0.7.0"),
        Path::new("/c/tools/logs/kwok-v0.7.0.log")
    );

    let mut keys: Vec<String> = versions::ALL_COMPONENTS.iter().map(|c| c.key()).collect();
    keys.sort();
    let before = keys.len();
    keys.dedup();
    assert_eq!(keys.len(), before, "two components share a cache key");
}

#[test]
fn multi_package_builds_name_binaries_after_their_tools() {
    // `go build -o dir/ pkg...` names each binary after the package's last
    // path element: that must be the tool's binary name.
    for component in versions::ALL_COMPONENTS {
        if let Some(GoRecipe::Wrapper { packages, .. }) = &component.go
            && packages.len() > 1
        {
            let built: Vec<&str> = packages
                .iter()
                .filter_map(|p| p.rsplit('/').next())
                .collect();
            let tools: Vec<&str> = component.tools.iter().map(|t| t.binary_name()).collect();
            assert_eq!(built, tools, "{}", component.name);
        }
    }
}

/// Builds a fake entry's files in a staging dir the way a real build does.
fn stage(
    cache: &Cache,
    key: &str,
    lock: &harness_tools::cache::EntryLock,
) -> harness_tools::cache::Staging {
    let staging = cache.begin(key, lock).expect("begin");
    std::fs::write(staging.bin_dir().join("tool"), b"#!/bin/sh\n").expect("write");
    staging
}

#[test]
fn an_interrupted_build_is_not_taken_as_complete() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cache = Cache::new(dir.path());
    let key = "demo-v1.0.0";
    let lock = cache.lock_entry(key, |_| {}).expect("lock");

    // A build that died before commit (SIGKILL: no Drop ran) left its temp
    // dir, named after its process id, with binaries in it.
    let leftover = cache.tools_dir().join(format!(".tmp-{key}-4242"));
    std::fs::create_dir_all(leftover.join("bin")).expect("mkdir");
    std::fs::write(leftover.join("bin").join("tool"), b"#!/bin/sh\n").expect("write");
    assert!(leftover.exists());
    assert_eq!(cache.complete_entry(key), None);
    assert_eq!(cache.leftover_temp_dirs(key), vec![leftover.clone()]);

    // An entry directory without a manifest (e.g. copied by hand) is not
    // complete either.
    std::fs::create_dir_all(cache.entry_dir(key).join("bin")).expect("mkdir");
    std::fs::write(cache.binary_path(key, "tool"), b"x").expect("write");
    assert_eq!(cache.complete_entry(key), None);

    // The next build removes the leftovers and replaces the incomplete entry.
    let staging = stage(&cache, key, &lock);
    assert!(
        !leftover.exists(),
        "begin() must remove the interrupted build"
    );
    let manifest = cache
        .commit(
            staging,
            &lock,
            "demo",
            "v1.0.0",
            "test",
            &["bin/tool".to_owned()],
        )
        .expect("commit");
    assert_eq!(cache.complete_entry(key), Some(manifest.clone()));
    assert_eq!(manifest.files[0].size, 10);
    // `printf '#!/bin/sh\n' | sha256sum`
    assert_eq!(
        manifest.files[0].sha256,
        "a8076d3d28d21e02012b20eaf7dbf75409a6277134439025f282e368e3305abf"
    );
    assert!(cache.leftover_temp_dirs(key).is_empty());
    let entries: Vec<_> = std::fs::read_dir(cache.tools_dir())
        .expect("read")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".tmp-"))
        .collect();
    assert!(entries.is_empty(), "temp dirs left: {entries:?}");
}

#[test]
fn a_truncated_binary_makes_the_entry_incomplete() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cache = Cache::new(dir.path());
    let key = "demo-v2.0.0";
    let lock = cache.lock_entry(key, |_| {}).expect("lock");
    let staging = stage(&cache, key, &lock);
    cache
        .commit(
            staging,
            &lock,
            "demo",
            "v2.0.0",
            "test",
            &["bin/tool".to_owned()],
        )
        .expect("commit");
    assert!(cache.complete_entry(key).is_some());
    std::fs::write(cache.binary_path(key, "tool"), b"#!").expect("truncate");
    assert_eq!(cache.complete_entry(key), None);
}

#[test]
fn a_failed_build_leaves_no_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cache = Cache::new(dir.path());
    let lock = cache.lock_entry("demo-v3", |_| {}).expect("lock");
    let staging = stage(&cache, "demo-v3", &lock);
    let path = staging.dir().to_owned();
    drop(staging);
    assert!(!path.exists());
    assert!(!cache.entry_dir("demo-v3").exists());
}

#[test]
fn the_lock_excludes_a_second_holder_until_released() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cache = Cache::new(dir.path());
    let first = cache.lock_entry("demo-v1", |_| {}).expect("lock");
    // flock locks belong to the open file, so a second open in this process
    // conflicts exactly as a second process would.
    assert!(cache.try_lock_entry("demo-v1").expect("try").is_none());
    // Other entries are independent.
    assert!(cache.try_lock_entry("other-v1").expect("try").is_some());

    // A blocking waiter is told it waits, and gets the lock once released.
    let (told_tx, told_rx) = std::sync::mpsc::channel();
    let cache2 = cache.clone();
    let waiter = std::thread::spawn(move || {
        cache2
            .lock_entry("demo-v1", |path| {
                let _ = told_tx.send(path.to_owned());
            })
            .map(|_| ())
    });
    let told = told_rx.recv().expect("the waiter reports that it waits");
    assert_eq!(told, cache.lock_path("demo-v1"));
    drop(first);
    waiter
        .join()
        .expect("join")
        .expect("the waiter gets the lock");
    assert!(cache.try_lock_entry("demo-v1").expect("try").is_some());
}

/// The protocol `provision` follows for one entry: look, lock, look again,
/// build, commit. Two provisioners at once: the second waits for the first
/// and then uses its entry instead of building again.
#[test]
fn a_waiting_provisioner_uses_the_entry_the_first_one_built() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::mpsc::{Receiver, Sender, channel};

    fn provision_entry(
        cache: &Cache,
        builds: &AtomicUsize,
        on_wait: impl FnOnce(),
        while_building: impl FnOnce(),
    ) -> harness_tools::cache::Manifest {
        let key = "demo-v4";
        if let Some(m) = cache.complete_entry(key) {
            return m;
        }
        let lock = cache.lock_entry(key, |_| on_wait()).expect("lock");
        if let Some(m) = cache.complete_entry(key) {
            return m;
        }
        builds.fetch_add(1, Ordering::SeqCst);
        let staging = stage(cache, key, &lock);
        while_building();
        cache
            .commit(
                staging,
                &lock,
                "demo",
                "v4",
                "test",
                &["bin/tool".to_owned()],
            )
            .expect("commit")
    }

    let dir = tempfile::tempdir().expect("tempdir");
    let cache = Cache::new(dir.path());
    let builds = Arc::new(AtomicUsize::new(0));
    let (building_tx, building_rx): (Sender<()>, Receiver<()>) = channel();
    let (waiting_tx, waiting_rx): (Sender<()>, Receiver<()>) = channel();

    let first = {
        let (cache, builds) = (cache.clone(), builds.clone());
        std::thread::spawn(move || {
            provision_entry(
                &cache,
                &builds,
                || panic!("the first must not wait"),
                || {
                    building_tx.send(()).expect("send");
                    // Finish only once the second is blocked on the lock.
                    waiting_rx.recv().expect("the second waits");
                },
            )
        })
    };
    building_rx.recv().expect("the first is building");
    let second = {
        let (cache, builds) = (cache.clone(), builds.clone());
        std::thread::spawn(move || {
            provision_entry(
                &cache,
                &builds,
                move || waiting_tx.send(()).expect("send"),
                || panic!("the second must not build"),
            )
        })
    };
    let m1 = first.join().expect("first");
    let m2 = second.join().expect("second");
    assert_eq!(
        builds.load(Ordering::SeqCst),
        1,
        "the entry must be built once"
    );
    assert_eq!(m1, m2);
    assert_eq!(cache.complete_entry("demo-v4"), Some(m1));
}
