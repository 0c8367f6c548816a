//! Where a registry is and who the harness is there.

/// Credentials for a registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BasicAuth {
    pub username: String,
    pub password: String,
}

/// How to reach a registry from the machine running the harness.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryEndpoint {
    /// `host:port`, optionally followed by `/prefix` under which every
    /// repository is created (e.g. `ghcr.io/acme/e2e`).
    pub address: String,
    /// Speak plain HTTP instead of HTTPS.
    pub plain_http: bool,
    /// Skip TLS verification (self-signed lab registries).
    pub insecure_tls: bool,
    pub auth: Option<BasicAuth>,
}
