//! OCI artifact formats, pure (no network, no async): reproducible
//! packing of files into one layer ([`pack`]) or of any layers and config
//! ([`pack_manifest`]), Helm charts packed as
//! `helm package` + `helm push` do it ([`helm`]), and the errors both
//! share ([`OciError`]). The registry client lives in `harness-oci`.

use std::collections::BTreeMap;

mod error;
pub mod helm;
pub mod pack;

pub use error::OciError;
pub use pack::{
    ARTIFACT_TYPE, DEFAULT_LAYER_MEDIA_TYPE, EMPTY_CONFIG, EMPTY_CONFIG_DIGEST, LAYER_TITLE,
    LayerSpec, ManifestSpec, ORAS_CONTENT_DIGEST_ANNOTATION, ORAS_UNPACK_ANNOTATION,
    PACK_CACHE_BYTES, PackCache, PackCacheStats, TITLE_ANNOTATION, files_layer,
    files_layer_uncached, gzip_deterministic, layer_key, pack, pack_manifest, sha256_digest,
    tar_files,
};

pub const EMPTY_CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";

/// Files to pack, paths inside the artifact (forward slashes, relative):
/// regular files with their bytes, and symlinks with their target as
/// written (packed as tar symlink entries, as `oras push` packs them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ArtifactFiles {
    pub files: BTreeMap<String, Vec<u8>>,
    pub symlinks: BTreeMap<String, String>,
}

/// What packing a directory does with the symlinks in it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Symlinks {
    /// A symlink stays a symlink (a tar symlink entry with its target as
    /// written), wherever it points: what `oras push` does.
    #[default]
    Keep,
    /// The link's target is packed as a regular file (or directory);
    /// links leaving the directory are refused.
    Follow,
}

/// One blob of a manifest: its media type, bytes and digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    pub media_type: String,
    pub bytes: Vec<u8>,
    /// `sha256:<hex>` of `bytes`.
    pub digest: String,
}

impl Blob {
    pub fn new(media_type: impl Into<String>, bytes: Vec<u8>) -> Self {
        let digest = sha256_digest(&bytes);
        Blob {
            media_type: media_type.into(),
            bytes,
            digest,
        }
    }
}

/// A packed artifact, ready to push: the same files always give the same bytes.
#[derive(Debug, Clone)]
pub struct PackedArtifact {
    pub config: Blob,
    /// In the manifest's order.
    pub layers: Vec<Blob>,
    /// The manifest JSON exactly as pushed.
    pub manifest: Vec<u8>,
    /// `sha256:<hex>` of `manifest`.
    pub digest: String,
}
