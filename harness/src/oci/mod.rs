//! OCI artifacts: reproducible packing of manifests into one layer, and a
//! registry client (push skipping existing blobs, re-tag, resolve, list,
//! pull) built on oci-client.
//!
//! - [`pack`] / [`ArtifactFiles::from_dir`]: see `pack.rs` for the exact,
//!   reproducible layer layout (files at the layer root, fixed metadata).
//! - [`RegistryClient`]: see `client.rs`; errors are [`OciError`] variants
//!   that name the registry, repository and reference, and the credentials
//!   used (never the password).

use std::collections::BTreeMap;

mod client;
mod error;
pub mod helm;
pub mod index;
mod pack;
pub mod referrers;
pub mod sign;

pub use client::{ReferenceKind, RegistryClient, check_repository, parse_reference};
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

/// What a push did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PushOutcome {
    pub digest: String,
    pub blobs_uploaded: usize,
    pub blobs_skipped: usize,
}

/// A manifest pulled back with its layers.
#[derive(Debug, Clone)]
pub struct PulledArtifact {
    pub digest: String,
    pub manifest: Vec<u8>,
    /// (media type, bytes) for each layer, in order.
    pub layers: Vec<(String, Vec<u8>)>,
}
