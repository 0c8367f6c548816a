//! The lab's seed: the etcd data of a cluster whose apiserver has written
//! its default objects (roles, priority classes, namespaces) and which
//! serves Argo CD's CRDs, made once per set of versions and copied into
//! each new lab's etcd directory.
//!
//! A fresh apiserver spends about 1.5 s writing its default roles and the
//! CRDs take 2.5–4 s to be served on two cores; from the seed, both are
//! already there when the apiserver is ready. Nothing lab-specific is in
//! it: no PKI (the apiserver's CA and keys are the lab's own, and nothing
//! in etcd holds them but `extension-apiserver-authentication`, which the
//! apiserver rewrites at each start), no Argo CD configuration (it names
//! the lab's registry), and no service accounts (the controller-manager,
//! which creates them, never ran: the lab's check that it works stays a
//! real one). `local_lab::a_seeded_lab_has_the_objects_of_a_fresh_one`
//! compares every object of a seeded lab with those of a fresh one.
//!
//! The seed's key is a hash of what goes into it: the etcd and
//! kube-apiserver binaries (path, size, modification time: the tool cache
//! names them by version, and a rebuild changes the time), the CRD files'
//! contents and [`SEED_FORMAT`]. Made in a directory of its own and renamed
//! into place, so two harnesses making it at once leave one whole seed.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest as _, Sha256};

use super::LocalLabConfig;
use super::components::{self, LocalBinaries};
use harness_core::process::Supervisor;
use harness_core::progress::Progress;

/// Bumped when what a seed holds, or how the lab uses it, changes.
pub const SEED_FORMAT: &str = "oci-e2e-lab-seed-1";

/// `OCI_E2E_LAB_SEED=off` starts every lab from an empty etcd.
pub const SEED_ENV: &str = "OCI_E2E_LAB_SEED";

/// Where seeds are kept (`<cache>/seeds`), or None when
/// `OCI_E2E_LAB_SEED=off` (or `0`, `false`) turns them off.
pub fn seeds_dir_from_env(cache_root: &Path) -> Option<PathBuf> {
    match std::env::var(SEED_ENV).ok().as_deref() {
        Some("off" | "0" | "false") => None,
        _ => Some(cache_root.join("seeds")),
    }
}

/// The key of the seed for these binaries and CRDs.
pub fn seed_key(bin: &LocalBinaries, crd_files: &[PathBuf]) -> anyhow::Result<String> {
    let mut hash = Sha256::new();
    hash.update(SEED_FORMAT.as_bytes());
    for binary in [&bin.etcd, &bin.kube_apiserver] {
        let meta = std::fs::metadata(binary)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", binary.display()))?;
        let mtime = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        hash.update(format!("{}\0{}\0{mtime}\0", binary.display(), meta.len()).as_bytes());
    }
    for file in crd_files {
        let bytes = std::fs::read(file)
            .map_err(|e| anyhow::anyhow!("cannot read Argo CD CRD {}: {e}", file.display()))?;
        hash.update(Sha256::digest(&bytes));
    }
    Ok(hex::encode(&hash.finalize()[..12]))
}

/// The seed's etcd directory for `cfg`, made first if there is none.
/// None when seeds are off. A seed that cannot be made is said, and the
/// lab starts from an empty etcd.
pub async fn ensure(cfg: &LocalLabConfig, progress: &Progress) -> Option<PathBuf> {
    let seeds = cfg.seeds.as_ref()?;
    let crd_files = components::crd_files(&cfg.binaries);
    let key = match seed_key(&cfg.binaries, &crd_files) {
        Ok(key) => key,
        Err(e) => {
            progress.warn(format!("no lab seed ({e:#}); starting from an empty etcd"));
            return None;
        }
    };
    let seed = seeds.join(&key).join("etcd");
    if seed.join("member").is_dir() {
        return Some(seed);
    }
    remove_abandoned_scratch(seeds);
    let task = progress.task(format!(
        "preparing the lab seed (once for these versions: default objects and Argo CD {} CRDs)",
        cfg.argocd_version
    ));
    match make(cfg, seeds, &key).await {
        Ok(()) => {
            task.done(seeds.join(&key).display().to_string());
            Some(seed)
        }
        Err(e) => {
            task.fail(format!("{e:#}; starting from an empty etcd"));
            None
        }
    }
}

/// Scratch directories of seeds whose making was killed (a SIGKILL leaves
/// them: its processes die with the harness, the directory stays). One
/// younger than ten minutes may be another harness's, at work.
fn remove_abandoned_scratch(seeds: &Path) {
    let Ok(entries) = std::fs::read_dir(seeds) else {
        return;
    };
    for entry in entries.flatten() {
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > Duration::from_secs(600));
        if old && entry.file_name().to_string_lossy().starts_with("making-") {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Starts etcd and the apiserver in a scratch directory, waits for the
/// default objects and the CRDs, stops both and renames the etcd data
/// into `<seeds>/<key>/etcd`.
async fn make(cfg: &LocalLabConfig, seeds: &Path, key: &str) -> anyhow::Result<()> {
    std::fs::create_dir_all(seeds)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", seeds.display()))?;
    let scratch = tempfile::Builder::new()
        .prefix(&format!("making-{key}-"))
        .tempdir_in(seeds)
        .map_err(|e| anyhow::anyhow!("cannot create a directory in {}: {e}", seeds.display()))?;
    let dir = scratch.path();
    let sup = Supervisor::new(false);
    let made = async {
        let cluster = components::start_control_plane(cfg, dir, &sup).await?;
        components::wait_apiserver_ready(&cluster, &sup, &[]).await?;
        super::bootstrap::install_argocd_crds(&cluster.client, &cfg.binaries.argocd_crds).await
    };
    let result = tokio::time::timeout(Duration::from_secs(120), made).await;
    sup.stop_all(Duration::from_secs(10)).await;
    match result {
        Err(_) => anyhow::bail!("not made within 120 s"),
        Ok(Err(e)) => return Err(e),
        Ok(Ok(())) => {}
    }
    // etcd preallocates its next WAL segment (64 MiB) as `*.tmp`: it
    // makes another when it needs one, and every lab would copy it.
    if let Ok(entries) = std::fs::read_dir(dir.join("etcd/member/wal")) {
        for entry in entries.flatten() {
            if entry.path().extension().is_some_and(|e| e == "tmp") {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
    let target = seeds.join(key);
    std::fs::create_dir_all(&target)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", target.display()))?;
    match std::fs::rename(dir.join("etcd"), target.join("etcd")) {
        Ok(()) => Ok(()),
        // Another harness made it meanwhile: theirs is as good.
        Err(_) if target.join("etcd").join("member").is_dir() => Ok(()),
        Err(e) => anyhow::bail!("cannot move the seed into {}: {e}", target.display()),
    }
}

/// Copies the seed's etcd data into a new lab's etcd directory.
pub fn plant(seed: &Path, etcd_dir: &Path) -> anyhow::Result<()> {
    copy_dir(seed, etcd_dir).map_err(|e| {
        anyhow::anyhow!(
            "cannot copy the lab seed {} to {}: {e}",
            seed.display(),
            etcd_dir.display()
        )
    })
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    // etcd refuses a data directory others can read.
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o700))
}
