//! Where a registry is and who the harness is there.

/// Credentials for a registry. Its `Debug` shows the user, never the
/// password, so no log or error that formats it can leak it.
#[derive(Clone, PartialEq, Eq)]
pub struct BasicAuth {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BasicAuth")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_password() {
        let endpoint = RegistryEndpoint {
            address: "registry.example".into(),
            plain_http: false,
            insecure_tls: false,
            auth: Some(BasicAuth {
                username: "bob".into(),
                password: "hunter2".into(),
            }),
        };
        let shown = format!("{endpoint:?} {endpoint:#?}");
        assert!(shown.contains("bob"), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
    }
}
