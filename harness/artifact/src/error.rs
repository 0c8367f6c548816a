//! Errors of packing and of registry operations. Each message names the
//! thing at fault and says what to check next; none ever contains a password.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum OciError {
    /// A file or directory to pack could not be read.
    #[error("cannot read {path}: {source}; check that it exists and is readable")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A symlink in a packed directory points outside of it (Argo CD
    /// rejects such links, and packing would leak files from elsewhere).
    #[error(
        "symlink {link} points to {target}, outside of the directory being packed ({root}); \
         replace it with a copy of the file or point it inside the directory"
    )]
    SymlinkOutsideRoot {
        link: PathBuf,
        target: PathBuf,
        root: PathBuf,
    },

    /// A path inside the artifact that cannot be packed as given.
    #[error(
        "invalid file path {path:?} in the artifact: {reason}; use a relative path with forward slashes"
    )]
    InvalidPath { path: String, reason: String },

    /// Building the layer or the manifest failed, or a packed artifact is
    /// inconsistent (its digest does not match its manifest).
    #[error("cannot pack the artifact: {0}")]
    Pack(String),

    /// A repository name the registry would refuse.
    #[error(
        "invalid repository name {repository:?}: {reason}; use lowercase path components \
         [a-z0-9] separated by '.', '_', '-' or '/'"
    )]
    InvalidRepository { repository: String, reason: String },

    /// A tag or digest that is neither (e.g. a digest without `sha256:`).
    #[error("invalid reference {reference:?}: {reason}")]
    InvalidReference { reference: String, reason: String },

    /// The HTTP client for the registry could not be built.
    #[error("cannot set up a client for registry {address}: {detail}")]
    ClientSetup { address: String, detail: String },

    /// Nothing answers at the registry address (refused, timed out, TLS
    /// handshake failed...).
    #[error(
        "registry {address} is unreachable ({detail}); check that it is running and listening \
         there, e.g. `curl {scheme}://{address}/v2/`{hint}"
    )]
    Unreachable {
        address: String,
        scheme: &'static str,
        detail: String,
        hint: String,
    },

    /// 401/403: the registry refused the credentials (or their absence).
    #[error(
        "registry {address} refused access to repository {repository} (HTTP {status}) \
         with {credentials}; check the registry's username and password"
    )]
    Unauthorized {
        address: String,
        repository: String,
        status: u16,
        /// `anonymous` or `user "NAME"`; never the password.
        credentials: String,
    },

    /// The manifest (tag or digest) does not exist in the repository.
    #[error(
        "manifest {repository}:{reference} not found in registry {address}; push it first, \
         or check the tag or digest"
    )]
    ManifestNotFound {
        address: String,
        repository: String,
        reference: String,
    },

    /// The registry knows no tags for the repository: it does not exist,
    /// or (distribution 2.8) it holds only untagged manifests.
    #[error(
        "repository {repository} not found in registry {address} (or it has only untagged \
         manifests); check the name, or push with a tag first"
    )]
    RepositoryNotFound { address: String, repository: String },

    /// What the registry returned is not a manifest this harness handles.
    #[error("manifest {repository}:{reference} in registry {address} cannot be used: {detail}")]
    InvalidManifest {
        address: String,
        repository: String,
        reference: String,
        detail: String,
    },

    /// Any other registry failure, with the operation that failed.
    #[error("registry {address}: {operation} failed: {detail}")]
    Registry {
        address: String,
        operation: String,
        detail: String,
    },
}
