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
pub fn files_layer(files: &ArtifactFiles, media_type: &str) -> Result<LayerSpec, OciError> {
    if media_type.trim().is_empty() {
        return Err(OciError::Pack("the layer media type is empty".into()));
    }
    let tar = tar_files(files)?;
    let tar_digest = sha256_digest(&tar);
    Ok(LayerSpec {
        blob: Blob::new(media_type, gzip_deterministic(&tar)),
        annotations: BTreeMap::from([
            (ORAS_CONTENT_DIGEST_ANNOTATION.to_string(), tar_digest),
            (ORAS_UNPACK_ANNOTATION.to_string(), "true".to_string()),
            (TITLE_ANNOTATION.to_string(), LAYER_TITLE.to_string()),
        ]),
    })
}

/// Pack `files` into one tar+gzip layer with the empty config. The layer is
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
