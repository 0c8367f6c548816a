//! OCI artifact formats, pure (no network, no async): reproducible
//! packing of files into one layer ([`pack`]), Helm charts packed as
//! `helm package` + `helm push` do it ([`helm`]), and the errors both
//! share ([`OciError`]). The registry client lives in `harness-oci`.

use std::collections::BTreeMap;

mod error;
pub mod helm;
pub mod pack;

pub use error::OciError;
pub use pack::{
    ARTIFACT_TYPE, DEFAULT_LAYER_MEDIA_TYPE, EMPTY_CONFIG, EMPTY_CONFIG_DIGEST, LAYER_TITLE,
    ORAS_CONTENT_DIGEST_ANNOTATION, ORAS_UNPACK_ANNOTATION, TITLE_ANNOTATION, gzip_deterministic,
    pack, sha256_digest, tar_files,
};

pub const EMPTY_CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";

/// Files to pack: path inside the artifact (forward slashes, relative) -> bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ArtifactFiles(pub BTreeMap<String, Vec<u8>>);

/// A packed artifact, ready to push: the same files always give the same bytes.
#[derive(Debug, Clone)]
pub struct PackedArtifact {
    pub layer: Vec<u8>,
    pub layer_digest: String,
    pub layer_media_type: String,
    pub config: Vec<u8>,
    pub config_digest: String,
    /// The manifest JSON exactly as pushed.
    pub manifest: Vec<u8>,
    /// `sha256:<hex>` of `manifest`.
    pub digest: String,
}
