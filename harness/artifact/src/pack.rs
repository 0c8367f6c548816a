//! Reproducible packing: the same files give the same bytes, hence the same
//! digests, on any machine and at any time.
//!
//! Layer layout (what `oras push REF ./` gives, checked against oras 1.3,
//! minus the real mtimes and the `created` annotation that make oras's
//! digests change on every push):
//! - files at the root of the layer, paths relative with forward slashes;
//! - an entry for every subdirectory (`sub/`, mode 0755) before its files,
//!   none for the root itself; Argo CD creates parents anyway, but plain
//!   `tar` and oras expect the entries;
//! - entries sorted by path (a directory sorts right before its contents);
//!   unlike oras there is no `.` entry for the root (Argo CD skips it, and
//!   `oras pull` unpacks without it);
//! - GNU headers (long paths use the GNU long-name entry), mtime 0, uid and
//!   gid 0, empty user and group names, mode 0644 for files;
//! - a symlink is a symlink entry (mode 0777) with its target as written,
//!   wherever it points, as oras packs it (`Symlinks::Keep`);
//! - gzip with a fixed header (no mtime, no file name, OS byte 255 as Go
//!   writes it) around deflate level 6 from `miniz_oxide` used directly, so
//!   that the bytes do not depend on which backend some other crate enables
//!   in `flate2`.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use crate::{
    ArtifactFiles, Blob, EMPTY_CONFIG_MEDIA_TYPE, MANIFEST_MEDIA_TYPE, OciError, PackedArtifact,
    Symlinks,
};

/// The empty config blob: `{}`.
pub const EMPTY_CONFIG: &[u8] = b"{}";
/// `sha256` of [`EMPTY_CONFIG`], as the OCI image spec lists it.
pub const EMPTY_CONFIG_DIGEST: &str =
    "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
/// The layer media type Argo CD accepts by default and oras uses for a directory.
pub const DEFAULT_LAYER_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// The artifact type oras sets when the config is empty and none is given
/// (OCI 1.1: `artifactType` is required when the config is the empty one).
pub const ARTIFACT_TYPE: &str = "application/vnd.unknown.artifact.v1";
/// Annotation naming a layer. Argo CD ignores the layer annotations (it
/// extracts every tar/tar+gzip content layer into the app's root); they are
/// set as `oras push REF ./` sets them so that `oras pull` unpacks the
/// artifact into the current directory, as it does for oras's own pushes.
pub const TITLE_ANNOTATION: &str = "org.opencontainers.image.title";
/// The layer's title: the directory `.` that oras would unpack it into.
pub const LAYER_TITLE: &str = ".";
/// oras: unpack this layer (a tar+gzip of a directory) on pull.
pub const ORAS_UNPACK_ANNOTATION: &str = "io.deis.oras.content.unpack";
/// oras: digest of the uncompressed tar, checked when unpacking.
pub const ORAS_CONTENT_DIGEST_ANNOTATION: &str = "io.deis.oras.content.digest";

const FILE_MODE: u32 = 0o644;
const DIR_MODE: u32 = 0o755;
/// A symlink's mode as Linux reports it (`lrwxrwxrwx`), which oras copies.
const LINK_MODE: u32 = 0o777;
const GZIP_LEVEL: u8 = 6;
/// Above this many tar bytes the layer is compressed at level 1.
const LARGE_LAYER_BYTES: usize = 8 << 20;
/// "unknown" OS in the gzip header, what Go's compress/gzip writes.
const GZIP_OS_UNKNOWN: u8 = 255;

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

impl ArtifactFiles {
    /// Every file under `dir`, recursively, with paths relative to it.
    /// `Symlinks::Keep` packs each symlink as a link with its target as
    /// written (a link to a directory is not descended into), as `oras push`
    /// does; `Symlinks::Follow` packs the target's content when it stays
    /// inside `dir` and refuses links leaving it.
    pub fn from_dir(dir: &Path, symlinks: Symlinks) -> Result<Self, OciError> {
        let root = fs::canonicalize(dir).map_err(|source| OciError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let meta = fs::metadata(&root).map_err(|source| OciError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        if !meta.is_dir() {
            return Err(OciError::Io {
                path: dir.to_path_buf(),
                source: std::io::Error::other("not a directory"),
            });
        }
        let mut files = ArtifactFiles::default();
        let mut ancestors = vec![root.clone()];
        collect_dir(&root, &root, "", symlinks, &mut ancestors, &mut files)?;
        Ok(files)
    }

    /// Add (or replace) one regular file.
    pub fn insert(&mut self, path: impl Into<String>, content: impl Into<Vec<u8>>) {
        let path = path.into();
        self.symlinks.remove(&path);
        self.files.insert(path, content.into());
    }

    /// Add (or replace) one symlink, its target as written.
    pub fn insert_symlink(&mut self, path: impl Into<String>, target: impl Into<String>) {
        let path = path.into();
        self.files.remove(&path);
        self.symlinks.insert(path, target.into());
    }

    /// No file and no symlink.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty() && self.symlinks.is_empty()
    }
}

impl From<BTreeMap<String, Vec<u8>>> for ArtifactFiles {
    fn from(files: BTreeMap<String, Vec<u8>>) -> Self {
        ArtifactFiles {
            files,
            symlinks: BTreeMap::new(),
        }
    }
}

impl<K: Into<String>, V: Into<Vec<u8>>> FromIterator<(K, V)> for ArtifactFiles {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        iter.into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect::<BTreeMap<_, _>>()
            .into()
    }
}

/// Walk `dir` (already canonical, inside `root`), adding files under the
/// artifact path `prefix`. `ancestors` holds the canonical directories being
/// walked, to refuse a symlink loop instead of recursing forever.
fn collect_dir(
    root: &Path,
    dir: &Path,
    prefix: &str,
    symlinks: Symlinks,
    ancestors: &mut Vec<PathBuf>,
    files: &mut ArtifactFiles,
) -> Result<(), OciError> {
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| OciError::Io { path, source }
    };
    let mut entries: Vec<_> = fs::read_dir(dir)
        .map_err(io_err(dir))?
        .collect::<Result<_, _>>()
        .map_err(io_err(dir))?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let name = entry
            .file_name()
            .into_string()
            .map_err(|raw| OciError::InvalidPath {
                path: format!("{prefix}{}", raw.to_string_lossy()),
                reason: "the file name is not valid UTF-8".into(),
            })?;
        let artifact_path = format!("{prefix}{name}");
        let file_type = entry.file_type().map_err(io_err(&path))?;
        if file_type.is_symlink() && symlinks == Symlinks::Keep {
            let target = fs::read_link(&path).map_err(io_err(&path))?;
            let target =
                target
                    .into_os_string()
                    .into_string()
                    .map_err(|raw| OciError::InvalidPath {
                        path: artifact_path.clone(),
                        reason: format!(
                            "the symlink's target {} is not valid UTF-8",
                            raw.to_string_lossy()
                        ),
                    })?;
            files.symlinks.insert(artifact_path, target);
            continue;
        }
        let (target, meta) = if file_type.is_symlink() {
            let target = fs::canonicalize(&path).map_err(|source| OciError::Io {
                path: path.clone(),
                source: std::io::Error::new(
                    source.kind(),
                    format!("cannot resolve symlink: {source}"),
                ),
            })?;
            if !target.starts_with(root) {
                return Err(OciError::SymlinkOutsideRoot {
                    link: path,
                    target,
                    root: root.to_path_buf(),
                });
            }
            let meta = fs::metadata(&target).map_err(io_err(&target))?;
            (target, meta)
        } else {
            let meta = entry.metadata().map_err(io_err(&path))?;
            (path.clone(), meta)
        };
        if meta.is_dir() {
            if ancestors.contains(&target) {
                return Err(OciError::InvalidPath {
                    path: artifact_path,
                    reason: format!("symlink loop back to {}", target.display()),
                });
            }
            ancestors.push(target.clone());
            collect_dir(
                root,
                &target,
                &format!("{artifact_path}/"),
                symlinks,
                ancestors,
                files,
            )?;
            ancestors.pop();
        } else if meta.is_file() {
            let content = fs::read(&target).map_err(io_err(&path))?;
            files.files.insert(artifact_path, content);
        } else {
            return Err(OciError::InvalidPath {
                path: artifact_path,
                reason: format!(
                    "{} is neither a regular file nor a directory (socket, fifo or device)",
                    path.display()
                ),
            });
        }
    }
    Ok(())
}

/// Check that `path` is a plain relative path; returns its parent directories.
fn check_path(path: &str) -> Result<Vec<String>, OciError> {
    let invalid = |reason: &str| OciError::InvalidPath {
        path: path.to_string(),
        reason: reason.to_string(),
    };
    if path.is_empty() {
        return Err(invalid("the path is empty"));
    }
    if path.starts_with('/') {
        return Err(invalid("the path is absolute"));
    }
    if path.contains('\\') {
        return Err(invalid("the path contains a backslash"));
    }
    if path.contains('\0') {
        return Err(invalid("the path contains a NUL byte"));
    }
    let components: Vec<&str> = path.split('/').collect();
    for c in &components {
        match *c {
            "" => {
                return Err(invalid(
                    "the path has an empty component ('//' or a trailing '/')",
                ));
            }
            "." | ".." => return Err(invalid("the path has a '.' or '..' component")),
            _ => {}
        }
    }
    let mut parents = Vec::new();
    for i in 1..components.len() {
        parents.push(components[..i].join("/"));
    }
    Ok(parents)
}

/// The tar (uncompressed) of `files`, deterministic.
pub fn tar_files(files: &ArtifactFiles) -> Result<Vec<u8>, OciError> {
    let mut dirs = BTreeSet::new();
    for path in files.files.keys().chain(files.symlinks.keys()) {
        dirs.extend(check_path(path)?);
    }
    if let Some(both) = files.files.keys().find(|p| files.symlinks.contains_key(*p)) {
        return Err(OciError::InvalidPath {
            path: both.clone(),
            reason: "it is both a file and a symlink".into(),
        });
    }
    if let Some(clash) = dirs
        .iter()
        .find(|d| files.files.contains_key(*d) || files.symlinks.contains_key(*d))
    {
        return Err(OciError::InvalidPath {
            path: clash.clone(),
            reason: "it is both a file (or symlink) and the directory of other files".into(),
        });
    }
    if let Some((path, _)) = files
        .symlinks
        .iter()
        .find(|(_, target)| target.is_empty() || target.contains('\0'))
    {
        return Err(OciError::InvalidPath {
            path: path.clone(),
            reason: "the symlink's target is empty or holds a NUL byte".into(),
        });
    }
    enum TarEntry<'a> {
        Directory,
        File(&'a [u8]),
        Symlink(&'a str),
    }
    // Key `dir/` sorts right before `dir/anything`.
    let mut entries: BTreeMap<String, TarEntry> = BTreeMap::new();
    for d in dirs {
        entries.insert(format!("{d}/"), TarEntry::Directory);
    }
    for (path, content) in &files.files {
        entries.insert(path.clone(), TarEntry::File(content.as_slice()));
    }
    for (path, target) in &files.symlinks {
        entries.insert(path.clone(), TarEntry::Symlink(target.as_str()));
    }

    let pack_err = |e: std::io::Error| OciError::Pack(format!("writing the tar stream: {e}"));
    let mut builder = tar::Builder::new(Vec::new());
    for (path, entry) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        header.set_username("").map_err(pack_err)?;
        header.set_groupname("").map_err(pack_err)?;
        match entry {
            TarEntry::Directory => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(DIR_MODE);
                header.set_size(0);
                builder
                    .append_data(&mut header, &path, std::io::empty())
                    .map_err(pack_err)?;
            }
            TarEntry::File(bytes) => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(FILE_MODE);
                header.set_size(bytes.len() as u64);
                builder
                    .append_data(&mut header, &path, bytes)
                    .map_err(pack_err)?;
            }
            TarEntry::Symlink(target) => {
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_mode(LINK_MODE);
                header.set_size(0);
                builder
                    .append_link(&mut header, &path, target)
                    .map_err(pack_err)?;
            }
        }
    }
    builder.into_inner().map_err(pack_err)
}

/// gzip `data` with a fixed header and fixed compression.
pub fn gzip_deterministic(data: &[u8]) -> Vec<u8> {
    // Large layers compress fast rather than small: level 6 on 50 MiB costs
    // seconds (bench). Small layers keep level 6, so their digests, pinned
    // in tests and in users' expectations, do not change.
    let level = if data.len() > LARGE_LAYER_BYTES {
        1
    } else {
        GZIP_LEVEL
    };
    let deflated = miniz_oxide::deflate::compress_to_vec(data, level);
    let mut out = Vec::with_capacity(deflated.len() + 18);
    // ID1 ID2 CM=deflate FLG=0 MTIME=0 XFL=0 OS
    out.extend_from_slice(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, GZIP_OS_UNKNOWN]);
    out.extend_from_slice(&deflated);
    out.extend_from_slice(&crc32fast::hash(data).to_le_bytes());
    // ISIZE is the length modulo 2^32 by definition.
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct ManifestJson<'a> {
    schema_version: u32,
    media_type: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    artifact_type: Option<&'a str>,
    config: DescriptorJson<'a>,
    layers: Vec<DescriptorJson<'a>>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    annotations: &'a BTreeMap<String, String>,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct DescriptorJson<'a> {
    media_type: &'a str,
    digest: &'a str,
    size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    annotations: Option<&'a BTreeMap<String, String>>,
}

/// One layer of a manifest: its blob and the descriptor's annotations.
#[derive(Debug, Clone)]
pub struct LayerSpec {
    pub blob: Blob,
    pub annotations: BTreeMap<String, String>,
}

/// Everything a manifest holds, to be packed as it is.
#[derive(Debug, Clone)]
pub struct ManifestSpec {
    /// `None`: the canonical empty config `{}`.
    pub config: Option<Blob>,
    /// The manifest's `artifactType`; `None` with the empty config gives
    /// [`ARTIFACT_TYPE`] (OCI 1.1 asks for one then, and oras sets it), and
    /// with another config leaves the field out (as `oras push --config`).
    pub artifact_type: Option<String>,
    /// In order; at least one.
    pub layers: Vec<LayerSpec>,
    pub annotations: BTreeMap<String, String>,
}

/// The tar+gzip layer of `files` as `oras push` gives it, with the
/// annotations oras sets on it (title `.`, unpack, the tar's digest).
/// Unchanged content is packed once per process: see [`PackCache`] (this
/// goes through [`PackCache::global`]).
pub fn files_layer(files: &ArtifactFiles, media_type: &str) -> Result<LayerSpec, OciError> {
    PackCache::global().files_layer(files, media_type)
}

/// [`files_layer`] without the cache: always tars and compresses.
pub fn files_layer_uncached(
    files: &ArtifactFiles,
    media_type: &str,
) -> Result<LayerSpec, OciError> {
    if media_type.trim().is_empty() {
        return Err(OciError::Pack("the layer media type is empty".into()));
    }
    let tar = tar_files(files)?;
    let tar_digest = sha256_digest(&tar);
    Ok(layer_spec(
        Blob::new(media_type, gzip_deterministic(&tar)),
        tar_digest,
    ))
}

fn layer_spec(blob: Blob, tar_digest: String) -> LayerSpec {
    LayerSpec {
        blob,
        annotations: BTreeMap::from([
            (ORAS_CONTENT_DIGEST_ANNOTATION.to_string(), tar_digest),
            (ORAS_UNPACK_ANNOTATION.to_string(), "true".to_string()),
            (TITLE_ANNOTATION.to_string(), LAYER_TITLE.to_string()),
        ]),
    }
}

/// Names the bytes packing gives for given files: change it whenever the
/// layer of the same files changes (tar layout, metadata, gzip, levels,
/// annotations), so that no cache built by an older packer is trusted.
/// Part of every [`PackCache`] key.
const PACK_FORMAT: &[u8] = b"oci-e2e files layer v1: gnu tar, mtime 0, 0644/0755/0777, gzip os 255, level 6 (1 over 8 MiB)";

/// Compressed bytes the global cache keeps at most (least recently used
/// entries go first; a layer larger than this is never kept).
pub const PACK_CACHE_BYTES: usize = 512 << 20;

/// Layers already packed in this process, keyed by content: a scenario
/// suite pushes the same folders again and again (each scenario, each
/// retry, each re-push), and compressing 50 MiB costs far more than
/// reading and hashing it.
///
/// The key is the SHA-256 of: [`PACK_FORMAT`], the layer media type, and
/// for every entry in path order its kind and tar mode (file 0644,
/// symlink 0777), its path, and the SHA-256 of the file's bytes (or the
/// symlink's target). Names of the source folder, mtimes, inodes and the
/// like are not part of it: the same content anywhere gives the same key,
/// and any change to a byte, a path or a link gives another. The files are
/// the ones [`ArtifactFiles::from_dir`] read (each once); hashing them is the
/// one pass a hit costs. The value is the compressed layer and its tar's
/// digest; errors are never kept (an input that fails fails again).
pub struct PackCache {
    limit_bytes: usize,
    state: std::sync::Mutex<CacheState>,
}

#[derive(Default)]
struct CacheState {
    entries: std::collections::HashMap<[u8; 32], CachedLayer>,
    /// Keys being packed right now: a second packer of the same content
    /// waits for the first instead of compressing it too.
    packing: std::collections::HashMap<[u8; 32], std::sync::Arc<std::sync::Mutex<()>>>,
    bytes: usize,
    clock: u64,
    hits: u64,
    misses: u64,
}

struct CachedLayer {
    blob: Blob,
    tar_digest: String,
    last_used: u64,
}

impl CacheState {
    /// The kept layer of `key`, counted as a hit.
    fn hit(&mut self, key: &[u8; 32]) -> Option<LayerSpec> {
        self.clock += 1;
        let now = self.clock;
        let entry = self.entries.get_mut(key)?;
        entry.last_used = now;
        let spec = layer_spec(entry.blob.clone(), entry.tar_digest.clone());
        self.hits += 1;
        Some(spec)
    }
}

/// What a [`PackCache`] did so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct PackCacheStats {
    /// Layers served from the cache (nothing tarred or compressed).
    pub hits: u64,
    /// Layers packed (and kept, when they fit).
    pub misses: u64,
    pub entries: usize,
    /// Compressed bytes kept.
    pub bytes: usize,
}

impl PackCache {
    /// An empty cache keeping at most `limit_bytes` of compressed layers.
    pub fn new(limit_bytes: usize) -> Self {
        PackCache {
            limit_bytes,
            state: std::sync::Mutex::new(CacheState::default()),
        }
    }

    /// The process's cache, which [`files_layer`] and [`pack`] use.
    pub fn global() -> &'static PackCache {
        static GLOBAL: std::sync::OnceLock<PackCache> = std::sync::OnceLock::new();
        GLOBAL.get_or_init(|| PackCache::new(PACK_CACHE_BYTES))
    }

    /// The layer of `files` (as [`files_layer_uncached`] gives it), from
    /// the cache when the same content was packed before.
    pub fn files_layer(
        &self,
        files: &ArtifactFiles,
        media_type: &str,
    ) -> Result<LayerSpec, OciError> {
        let key = layer_key(files, media_type);
        let gate = {
            let mut state = self.lock();
            if let Some(spec) = state.hit(&key) {
                return Ok(spec);
            }
            state.packing.entry(key).or_default().clone()
        };
        // Packed outside the cache's lock (other content packs meanwhile),
        // under this key's: the same content is compressed once even when
        // scenarios side by side push it at the same moment.
        let _packing = gate
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(spec) = self.lock().hit(&key) {
            return Ok(spec);
        }
        let packed = files_layer_uncached(files, media_type);
        let mut state = self.lock();
        state.packing.remove(&key);
        let spec = packed?;
        let tar_digest = spec.annotations[ORAS_CONTENT_DIGEST_ANNOTATION].clone();
        state.misses += 1;
        let size = spec.blob.bytes.len();
        if size <= self.limit_bytes && !state.entries.contains_key(&key) {
            while state.bytes + size > self.limit_bytes {
                let Some(oldest) = state
                    .entries
                    .iter()
                    .min_by_key(|(_, e)| e.last_used)
                    .map(|(k, _)| *k)
                else {
                    break;
                };
                if let Some(gone) = state.entries.remove(&oldest) {
                    state.bytes -= gone.blob.bytes.len();
                }
            }
            state.clock += 1;
            let last_used = state.clock;
            state.bytes += size;
            state.entries.insert(
                key,
                CachedLayer {
                    blob: spec.blob.clone(),
                    tar_digest,
                    last_used,
                },
            );
        }
        Ok(spec)
    }

    pub fn stats(&self) -> PackCacheStats {
        let state = self.lock();
        PackCacheStats {
            hits: state.hits,
            misses: state.misses,
            entries: state.entries.len(),
            bytes: state.bytes,
        }
    }

    /// Forget every layer (the counts stay).
    pub fn clear(&self) {
        let mut state = self.lock();
        state.entries.clear();
        state.bytes = 0;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CacheState> {
        // A panic while holding the lock leaves the map consistent (every
        // change is one insert or remove): go on with it.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Above this many bytes in all, files are hashed on several threads.
const PARALLEL_HASH_BYTES: usize = 4 << 20;

/// The SHA-256 of each file's bytes, in path order: on up to four threads
/// when there is much to hash (the one pass a cache hit costs).
fn file_digests(files: &ArtifactFiles) -> Vec<(&str, [u8; 32])> {
    let all: Vec<(&str, &[u8])> = files
        .files
        .iter()
        .map(|(path, bytes)| (path.as_str(), bytes.as_slice()))
        .collect();
    let total: usize = all.iter().map(|(_, bytes)| bytes.len()).sum();
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(4)
        .min(all.len());
    if total < PARALLEL_HASH_BYTES || threads < 2 {
        return all.iter().map(digest_of).collect();
    }
    // Contiguous runs of about equal bytes, one per thread, joined in order.
    let share = total.div_ceil(threads);
    let mut runs: Vec<&[(&str, &[u8])]> = Vec::with_capacity(threads);
    let (mut start, mut bytes) = (0, 0);
    for (i, (_, content)) in all.iter().enumerate() {
        bytes += content.len();
        if bytes >= share && runs.len() + 1 < threads {
            runs.push(&all[start..=i]);
            (start, bytes) = (i + 1, 0);
        }
    }
    runs.push(&all[start..]);
    std::thread::scope(|scope| {
        let workers: Vec<_> = runs
            .into_iter()
            .map(|run| scope.spawn(move || run.iter().map(digest_of).collect::<Vec<_>>()))
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("hashing files does not panic"))
            .collect()
    })
}

fn digest_of<'a>((path, bytes): &(&'a str, &[u8])) -> (&'a str, [u8; 32]) {
    (path, Sha256::digest(bytes).into())
}

/// The [`PackCache`] key of `files` packed as a layer of `media_type`.
pub fn layer_key(files: &ArtifactFiles, media_type: &str) -> [u8; 32] {
    fn field(hasher: &mut Sha256, bytes: &[u8]) {
        hasher.update((bytes.len() as u64).to_be_bytes());
        hasher.update(bytes);
    }
    let mut hasher = Sha256::new();
    field(&mut hasher, PACK_FORMAT);
    field(&mut hasher, media_type.as_bytes());
    let mut entries: Vec<(&str, u8, u32, [u8; 32])> = file_digests(files)
        .into_iter()
        .map(|(path, digest)| (path, b'f', FILE_MODE, digest))
        .chain(files.symlinks.iter().map(|(path, target)| {
            (
                path.as_str(),
                b'l',
                LINK_MODE,
                Sha256::digest(target.as_bytes()).into(),
            )
        }))
        .collect();
    // A path in both maps stays twice (packing refuses it, uncached).
    entries.sort();
    hasher.update((entries.len() as u64).to_be_bytes());
    for (path, kind, mode, content) in entries {
        hasher.update([kind]);
        hasher.update(mode.to_be_bytes());
        field(&mut hasher, path.as_bytes());
        hasher.update(content);
    }
    hasher.finalize().into()
}

/// Pack `files` into one tar+gzip layer with the empty config (the layer
/// through [`PackCache::global`]: unchanged content is compressed once). The layer is
/// tar+gzip even when `layer_media_type` says otherwise (the override exists
/// to test what Argo CD rejects).
pub fn pack(
    files: &ArtifactFiles,
    layer_media_type: &str,
    annotations: &BTreeMap<String, String>,
) -> Result<PackedArtifact, OciError> {
    pack_manifest(ManifestSpec {
        config: None,
        artifact_type: None,
        layers: vec![files_layer(files, layer_media_type)?],
        annotations: annotations.clone(),
    })
}

/// The manifest of `spec`, its digest and its blobs.
pub fn pack_manifest(spec: ManifestSpec) -> Result<PackedArtifact, OciError> {
    if spec.layers.is_empty() {
        return Err(OciError::Pack("a manifest needs at least one layer".into()));
    }
    let annotation_keys = spec
        .annotations
        .keys()
        .chain(spec.layers.iter().flat_map(|l| l.annotations.keys()));
    for key in annotation_keys {
        if key.trim().is_empty() {
            return Err(OciError::Pack(format!("annotation key {key:?} is empty")));
        }
    }
    for blob in spec
        .config
        .iter()
        .chain(spec.layers.iter().map(|l| &l.blob))
    {
        if blob.media_type.trim().is_empty() {
            return Err(OciError::Pack("a blob's media type is empty".into()));
        }
    }
    let artifact_type = match (&spec.artifact_type, &spec.config) {
        (Some(given), _) => Some(given.as_str()),
        (None, None) => Some(ARTIFACT_TYPE),
        (None, Some(_)) => None,
    };
    let config = spec
        .config
        .clone()
        .unwrap_or_else(|| Blob::new(EMPTY_CONFIG_MEDIA_TYPE, EMPTY_CONFIG.to_vec()));
    let manifest = ManifestJson {
        schema_version: 2,
        media_type: MANIFEST_MEDIA_TYPE,
        artifact_type,
        config: DescriptorJson {
            media_type: &config.media_type,
            digest: &config.digest,
            size: config.bytes.len() as u64,
            annotations: None,
        },
        layers: spec
            .layers
            .iter()
            .map(|layer| DescriptorJson {
                media_type: &layer.blob.media_type,
                digest: &layer.blob.digest,
                size: layer.blob.bytes.len() as u64,
                annotations: (!layer.annotations.is_empty()).then_some(&layer.annotations),
            })
            .collect(),
        annotations: &spec.annotations,
    };
    let manifest = serde_json::to_vec(&manifest)
        .map_err(|e| OciError::Pack(format!("serializing the manifest: {e}")))?;
    let digest = sha256_digest(&manifest);
    Ok(PackedArtifact {
        config,
        layers: spec.layers.into_iter().map(|l| l.blob).collect(),
        manifest,
        digest,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_config_digest_matches_its_content() {
        assert_eq!(sha256_digest(EMPTY_CONFIG), EMPTY_CONFIG_DIGEST);
    }

    #[test]
    fn gzip_round_trips_and_has_a_fixed_header() {
        let data = b"hello hello hello hello".repeat(100);
        let gz = gzip_deterministic(&data);
        assert_eq!(&gz[..10], &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255]);
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut out)
            .expect("our gzip must decode");
        assert_eq!(out, data);
    }

    fn two_files(service: &str) -> ArtifactFiles {
        let mut files: ArtifactFiles = [("cm.yaml", "kind: ConfigMap\n"), ("svc.yaml", service)]
            .into_iter()
            .collect();
        files.insert_symlink("link.yaml", "cm.yaml");
        files
    }

    #[test]
    fn the_cache_gives_the_packed_bytes_again_and_counts_a_hit() {
        let cache = PackCache::new(1 << 20);
        let files = two_files("kind: Service\n");
        let first = cache
            .files_layer(&files, DEFAULT_LAYER_MEDIA_TYPE)
            .expect("pack");
        let uncached = files_layer_uncached(&files, DEFAULT_LAYER_MEDIA_TYPE).expect("pack");
        assert_eq!(first.blob, uncached.blob);
        assert_eq!(first.annotations, uncached.annotations);
        assert_eq!(
            (
                cache.stats().hits,
                cache.stats().misses,
                cache.stats().entries
            ),
            (0, 1, 1)
        );
        // The same content built anew (another read of the same folder).
        let again = cache
            .files_layer(&two_files("kind: Service\n"), DEFAULT_LAYER_MEDIA_TYPE)
            .expect("pack");
        assert_eq!(again.blob, uncached.blob);
        assert_eq!(again.annotations, uncached.annotations);
        assert_eq!((cache.stats().hits, cache.stats().misses), (1, 1));
    }

    #[test]
    fn any_change_of_content_path_kind_or_media_type_is_another_key() {
        let base = two_files("kind: Service\n");
        let key = layer_key(&base, DEFAULT_LAYER_MEDIA_TYPE);
        assert_eq!(key, layer_key(&base.clone(), DEFAULT_LAYER_MEDIA_TYPE));
        let mut changed = Vec::new();
        // One byte, same length.
        changed.push(two_files("kind: Servicf\n"));
        let mut renamed = base.clone();
        let content = renamed.files.remove("svc.yaml").expect("file");
        renamed.insert("svc2.yaml", content);
        changed.push(renamed);
        // A link and a file of the same text.
        let mut kind = base.clone();
        kind.insert("link.yaml", "cm.yaml");
        changed.push(kind);
        let mut target = base.clone();
        target.insert_symlink("link.yaml", "svc.yaml");
        changed.push(target);
        // Bytes moved from one file into the next: lengths are in the key.
        changed.push(
            [("a", "xy"), ("b", "z")]
                .into_iter()
                .collect::<ArtifactFiles>(),
        );
        let moved: ArtifactFiles = [("a", "x"), ("b", "yz")].into_iter().collect();
        assert_ne!(
            layer_key(&changed[4], DEFAULT_LAYER_MEDIA_TYPE),
            layer_key(&moved, DEFAULT_LAYER_MEDIA_TYPE)
        );
        for other in &changed[..4] {
            assert_ne!(layer_key(other, DEFAULT_LAYER_MEDIA_TYPE), key, "{other:?}");
        }
        assert_ne!(
            layer_key(&base, "application/vnd.oci.image.layer.v1.tar"),
            key
        );

        let cache = PackCache::new(1 << 20);
        let one = cache
            .files_layer(&base, DEFAULT_LAYER_MEDIA_TYPE)
            .expect("pack");
        let two = cache
            .files_layer(&changed[0], DEFAULT_LAYER_MEDIA_TYPE)
            .expect("pack");
        assert_ne!(one.blob.digest, two.blob.digest);
        assert_eq!((cache.stats().hits, cache.stats().misses), (0, 2));
    }

    #[test]
    fn the_same_content_packed_side_by_side_is_compressed_once() {
        let cache = PackCache::new(64 << 20);
        let text: String = (0..200_000).map(|i| format!("{i} ")).collect();
        let barrier = std::sync::Barrier::new(4);
        let digests: Vec<String> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..4)
                .map(|_| {
                    scope.spawn(|| {
                        let files: ArtifactFiles =
                            [("big.txt", text.as_str())].into_iter().collect();
                        barrier.wait();
                        cache
                            .files_layer(&files, DEFAULT_LAYER_MEDIA_TYPE)
                            .expect("pack")
                            .blob
                            .digest
                    })
                })
                .collect();
            workers
                .into_iter()
                .map(|w| w.join().expect("worker"))
                .collect()
        });
        assert!(digests.windows(2).all(|w| w[0] == w[1]), "{digests:?}");
        assert_eq!((cache.stats().misses, cache.stats().hits), (1, 3));
    }

    #[test]
    fn files_hashed_on_several_threads_give_the_one_thread_digests_in_order() {
        let files: ArtifactFiles = (0..9)
            .map(|i| (format!("f{i}"), vec![i as u8; (i + 1) << 19]))
            .collect();
        let total: usize = files.files.values().map(Vec::len).sum();
        assert!(total >= PARALLEL_HASH_BYTES);
        let expected: Vec<(&str, [u8; 32])> = files
            .files
            .iter()
            .map(|(path, bytes)| (path.as_str(), Sha256::digest(bytes).into()))
            .collect();
        assert_eq!(file_digests(&files), expected);
    }

    #[test]
    fn errors_are_not_kept_and_the_oldest_layer_goes_first() {
        let cache = PackCache::new(1 << 20);
        let bad: ArtifactFiles = [("../x", "x")].into_iter().collect();
        for _ in 0..2 {
            assert!(cache.files_layer(&bad, DEFAULT_LAYER_MEDIA_TYPE).is_err());
        }
        assert!(cache.files_layer(&two_files("s"), " ").is_err());
        assert_eq!(cache.stats().entries, 0);

        let a = two_files("a");
        let size = files_layer_uncached(&a, DEFAULT_LAYER_MEDIA_TYPE)
            .expect("pack")
            .blob
            .bytes
            .len();
        // Room for two layers of about this size.
        let cache = PackCache::new(size * 2 + size / 2);
        for content in ["a", "b"] {
            cache
                .files_layer(&two_files(content), DEFAULT_LAYER_MEDIA_TYPE)
                .expect("pack");
        }
        // `a` used last: `b` goes when `c` comes.
        cache
            .files_layer(&a, DEFAULT_LAYER_MEDIA_TYPE)
            .expect("pack");
        cache
            .files_layer(&two_files("c"), DEFAULT_LAYER_MEDIA_TYPE)
            .expect("pack");
        assert_eq!(cache.stats().entries, 2);
        assert!(cache.stats().bytes <= size * 2 + size / 2);
        let before = cache.stats();
        cache
            .files_layer(&a, DEFAULT_LAYER_MEDIA_TYPE)
            .expect("pack");
        cache
            .files_layer(&two_files("b"), DEFAULT_LAYER_MEDIA_TYPE)
            .expect("pack");
        assert_eq!(cache.stats().hits, before.hits + 1, "a kept");
        assert_eq!(cache.stats().misses, before.misses + 1, "b packed again");
        // Larger than the whole cache: packed, never kept.
        let tiny = PackCache::new(8);
        tiny.files_layer(&a, DEFAULT_LAYER_MEDIA_TYPE)
            .expect("pack");
        assert_eq!(tiny.stats().entries, 0);
    }

    #[test]
    fn bad_paths_are_rejected_with_the_path_named() {
        for bad in ["", "/abs.yaml", "a//b", "a/", "../x", "./x", "a\\b"] {
            let files: ArtifactFiles = [(bad, "x")].into_iter().collect();
            let err = tar_files(&files).expect_err(bad).to_string();
            assert!(err.contains(&format!("{bad:?}")), "{err}");
        }
        let clash: ArtifactFiles = [("a", "x"), ("a/b", "y")].into_iter().collect();
        assert!(matches!(
            tar_files(&clash),
            Err(OciError::InvalidPath { .. })
        ));
    }
}
