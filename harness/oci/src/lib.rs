//! OCI registries: a client (push skipping existing blobs, re-tag,
//! resolve, list, pull) built on oci-client, the endpoint and credentials
//! it talks to, image indexes, cosign-compatible signatures and OCI 1.1
//! referrers. The artifact formats themselves (packing, Helm) live in
//! `harness-artifact` and are re-exported here.
//!
//! - [`RegistryClient`]: see `client.rs`; errors are [`OciError`] variants
//!   that name the registry, repository and reference, and the credentials
//!   used (never the password).

mod client;
mod endpoint;
pub mod index;
pub mod referrers;
pub mod sign;
mod transport;

pub use client::{ReferenceKind, RegistryClient, check_repository, parse_reference};
pub use endpoint::{BasicAuth, RegistryEndpoint};
pub use harness_artifact::*;
pub use transport::{Access, CHUNK, MONOLITHIC_MAX};

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
    /// The config blob's bytes (empty when the manifest has no config).
    pub config: Vec<u8>,
    /// (media type, bytes) for each layer, in order.
    pub layers: Vec<(String, Vec<u8>)>,
}
