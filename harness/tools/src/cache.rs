//! The tool cache: `<root>/tools/<name>-<version>/` entries, each complete
//! only once its `manifest.json` is in place.
//!
//! Invariants:
//! - An entry is built in `tools/.tmp-<key>-<pid>/` and renamed into place
//!   after the build succeeded, with the manifest written last. A build that
//!   was interrupted leaves only a temp dir, which is never read as an entry
//!   and is removed by the next process that takes the entry's lock.
//! - Whoever builds, replaces or cleans an entry holds its lock file
//!   (`tools/.locks/<key>.lock`, an advisory `flock`), so two processes
//!   provisioning at once build each entry once and never see half of one.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::ToolsError;

/// Environment variable that overrides the cache root.
pub const CACHE_ENV: &str = "OCI_E2E_CACHE";

/// `$OCI_E2E_CACHE`, else `$XDG_CACHE_HOME/oci-e2e`, else `~/.cache/oci-e2e`.
pub fn default_cache_root() -> PathBuf {
    cache_root_from(
        std::env::var_os(CACHE_ENV),
        std::env::var_os("XDG_CACHE_HOME"),
        std::env::var_os("HOME"),
    )
}

/// [`default_cache_root`] with the environment passed in (for tests).
pub fn cache_root_from(
    override_dir: Option<std::ffi::OsString>,
    xdg_cache_home: Option<std::ffi::OsString>,
    home: Option<std::ffi::OsString>,
) -> PathBuf {
    let non_empty = |v: Option<std::ffi::OsString>| v.filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(dir) = non_empty(override_dir) {
        return dir;
    }
    if let Some(xdg) = non_empty(xdg_cache_home).filter(|p| p.is_absolute()) {
        return xdg.join("oci-e2e");
    }
    match non_empty(home) {
        Some(home) => home.join(".cache").join("oci-e2e"),
        // No HOME at all (some CI sandboxes): still a stable place.
        None => std::env::temp_dir().join("oci-e2e-cache"),
    }
}

/// What `manifest.json` records about a complete entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub name: String,
    pub version: String,
    /// How the entry was made, e.g. `go build (wrapper module k8s.io/kubernetes@v1.34.4)`.
    pub source: String,
    /// RFC 3339, UTC.
    pub built_at: String,
    /// Files of the entry (paths relative to it) with their size and SHA-256.
    pub files: Vec<ManifestFile>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestFile {
    pub path: String,
    pub size: u64,
    pub sha256: String,
}

pub const MANIFEST: &str = "manifest.json";

/// The tool cache under one root directory.
#[derive(Debug, Clone)]
pub struct Cache {
    root: PathBuf,
}

impl Cache {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn tools_dir(&self) -> PathBuf {
        self.root.join("tools")
    }

    /// `tools/<key>`, e.g. `tools/kubernetes-v1.34.4`.
    pub fn entry_dir(&self, key: &str) -> PathBuf {
        self.tools_dir().join(key)
    }

    /// Where a binary of an entry lives: `tools/<key>/bin/<binary>`.
    pub fn binary_path(&self, key: &str, binary: &str) -> PathBuf {
        self.entry_dir(key).join("bin").join(binary)
    }

    /// The build log of an entry (kept outside the entry so a failed build's
    /// log survives): `tools/logs/<key>.log`.
    pub fn log_path(&self, key: &str) -> PathBuf {
        self.tools_dir().join("logs").join(format!("{key}.log"))
    }

    pub fn lock_path(&self, key: &str) -> PathBuf {
        self.tools_dir().join(".locks").join(format!("{key}.lock"))
    }

    fn tmp_prefix(key: &str) -> String {
        format!(".tmp-{key}-")
    }

    /// The manifest of a complete entry; `None` when the entry is missing or
    /// incomplete (no manifest, unreadable manifest, a file missing or of
    /// another size than recorded).
    pub fn complete_entry(&self, key: &str) -> Option<Manifest> {
        let dir = self.entry_dir(key);
        let text = fs::read_to_string(dir.join(MANIFEST)).ok()?;
        let manifest: Manifest = serde_json::from_str(&text).ok()?;
        let all_there = manifest.files.iter().all(|f| {
            fs::metadata(dir.join(&f.path))
                .map(|m| m.is_file() && m.len() == f.size)
                .unwrap_or(false)
        });
        all_there.then_some(manifest)
    }

    /// Takes the entry's lock, waiting for another process that holds it.
    /// `on_wait` is called once if the lock is busy (to tell the user why
    /// nothing happens).
    pub fn lock_entry(
        &self,
        key: &str,
        on_wait: impl FnOnce(&Path),
    ) -> Result<EntryLock, ToolsError> {
        let path = self.lock_path(key);
        let file = open_lock_file(&path)?;
        match fs4::FileExt::try_lock(&file) {
            Ok(()) => return Ok(EntryLock { _file: file, path }),
            Err(fs4::TryLockError::WouldBlock) => on_wait(&path),
            Err(fs4::TryLockError::Error(source)) => return Err(ToolsError::Lock { path, source }),
        }
        fs4::FileExt::lock(&file).map_err(|source| ToolsError::Lock {
            path: path.clone(),
            source,
        })?;
        Ok(EntryLock { _file: file, path })
    }

    /// Takes the entry's lock only if it is free (`None` when another
    /// process holds it).
    pub fn try_lock_entry(&self, key: &str) -> Result<Option<EntryLock>, ToolsError> {
        let path = self.lock_path(key);
        let file = open_lock_file(&path)?;
        match fs4::FileExt::try_lock(&file) {
            Ok(()) => Ok(Some(EntryLock { _file: file, path })),
            Err(fs4::TryLockError::WouldBlock) => Ok(None),
            Err(fs4::TryLockError::Error(source)) => Err(ToolsError::Lock { path, source }),
        }
    }

    /// Starts building an entry: removes what earlier interrupted builds left
    /// and returns a fresh temp dir. Needs the entry's lock (so no live
    /// process owns those leftovers).
    pub fn begin(&self, key: &str, _lock: &EntryLock) -> Result<Staging, ToolsError> {
        let tools = self.tools_dir();
        fs::create_dir_all(&tools)
            .map_err(|e| ToolsError::io("create the tool cache", &tools, e))?;
        for stale in self.leftover_temp_dirs(key) {
            fs::remove_dir_all(&stale)
                .map_err(|e| ToolsError::io("remove an interrupted build", &stale, e))?;
        }
        let dir = tools.join(format!("{}{}", Self::tmp_prefix(key), std::process::id()));
        fs::create_dir_all(dir.join("bin"))
            .map_err(|e| ToolsError::io("create a build directory", &dir, e))?;
        Ok(Staging {
            dir,
            key: key.to_owned(),
            committed: false,
        })
    }

    /// Temp dirs of builds of `key` that never completed.
    pub fn leftover_temp_dirs(&self, key: &str) -> Vec<PathBuf> {
        let prefix = Self::tmp_prefix(key);
        let Ok(read) = fs::read_dir(self.tools_dir()) else {
            return Vec::new();
        };
        read.filter_map(Result::ok)
            .filter(|e| {
                e.file_name().to_str().is_some_and(|n| {
                    // `.tmp-<key>-<pid>`: the rest must be the pid, so that key
                    // `etcd-3.4` does not claim `.tmp-etcd-3.4.1-…`.
                    n.strip_prefix(&prefix)
                        .is_some_and(|pid| pid.bytes().all(|b| b.is_ascii_digit()))
                })
            })
            .map(|e| e.path())
            .collect()
    }

    /// Finishes a build: hashes `files` (relative to the staging dir), writes
    /// the manifest last, and renames the staging dir into place (replacing
    /// an incomplete entry of the same key).
    pub fn commit(
        &self,
        mut staging: Staging,
        _lock: &EntryLock,
        name: &str,
        version: &str,
        source: &str,
        files: &[String],
    ) -> Result<Manifest, ToolsError> {
        let mut recorded = Vec::new();
        for rel in files {
            let path = staging.dir.join(rel);
            let (size, sha256) =
                hash_file(&path).map_err(|e| ToolsError::io("hash a built file", &path, e))?;
            recorded.push(ManifestFile {
                path: rel.clone(),
                size,
                sha256,
            });
        }
        let manifest = Manifest {
            name: name.to_owned(),
            version: version.to_owned(),
            source: source.to_owned(),
            built_at: now_rfc3339(),
            files: recorded,
        };
        let text = serde_json::to_string_pretty(&manifest)
            .map_err(|e| ToolsError::io("write a manifest", &staging.dir, io::Error::other(e)))?;
        let manifest_path = staging.dir.join(MANIFEST);
        write_synced(&manifest_path, text.as_bytes())
            .map_err(|e| ToolsError::io("write a manifest", &manifest_path, e))?;

        let dest = self.entry_dir(&staging.key);
        if dest.exists() {
            // Incomplete (we hold the lock and found no complete entry).
            fs::remove_dir_all(&dest)
                .map_err(|e| ToolsError::io("remove an incomplete cache entry", &dest, e))?;
        }
        fs::rename(&staging.dir, &dest)
            .map_err(|e| ToolsError::io("move a finished build into the cache", &dest, e))?;
        staging.committed = true;
        Ok(manifest)
    }
}

/// Holds an entry's lock until dropped.
#[derive(Debug)]
pub struct EntryLock {
    _file: File,
    path: PathBuf,
}

impl EntryLock {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// A build in progress. Dropped without [`Cache::commit`], it removes its
/// directory (a failed build leaves nothing but its log).
#[derive(Debug)]
pub struct Staging {
    dir: PathBuf,
    key: String,
    committed: bool,
}

impl Staging {
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn bin_dir(&self) -> PathBuf {
        self.dir.join("bin")
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

fn open_lock_file(path: &Path) -> Result<File, ToolsError> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(|source| ToolsError::Lock {
            path: path.to_owned(),
            source,
        })?;
    }
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|source| ToolsError::Lock {
            path: path.to_owned(),
            source,
        })
}

/// Size and hex SHA-256 of a file.
pub fn hash_file(path: &Path) -> io::Result<(u64, String)> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        size += n as u64;
        hasher.update(&buf[..n]);
    }
    Ok((size, hex::encode(hasher.finalize())))
}

fn write_synced(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let mut file = File::create(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| "unknown".to_owned())
}
