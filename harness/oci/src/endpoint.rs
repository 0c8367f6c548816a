//! Where a registry is and who the harness is there.

/// Credentials for a registry. `Debug` never shows the password: a
/// `{:?}` of an endpoint, a lab or an error cannot leak it.
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
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistryEndpoint {
    /// `host:port`, optionally followed by `/prefix` under which every
    /// repository is created (e.g. `ghcr.io/acme/e2e`).
    pub address: String,
    /// Speak plain HTTP instead of HTTPS.
    pub plain_http: bool,
    /// Skip TLS verification (only when asked: `--insecure-tls`).
    pub insecure_tls: bool,
    /// A CA certificate (PEM) trusted for this registry on top of the
    /// system's roots: a lab's own CA (`--registry-tls`).
    pub ca_pem: Option<String>,
    pub auth: Option<BasicAuth>,
}

impl RegistryEndpoint {
    /// `http` or `https`.
    pub fn scheme(&self) -> &'static str {
        if self.plain_http { "http" } else { "https" }
    }

    /// `host[:port]`, without the prefix.
    pub fn host(&self) -> &str {
        self.address
            .trim_end_matches('/')
            .split('/')
            .next()
            .unwrap_or_default()
    }

    /// An HTTP client builder that trusts the registry as the OCI client
    /// does: the endpoint's CA added to the roots, verification skipped
    /// only with `insecure_tls`. For the few raw requests (referrers,
    /// readiness probes, reachability checks).
    pub fn http_client_builder(&self) -> Result<reqwest::ClientBuilder, String> {
        let mut builder = reqwest::Client::builder().danger_accept_invalid_certs(self.insecure_tls);
        if let Some(pem) = &self.ca_pem {
            if !pem.contains("-----BEGIN CERTIFICATE-----") {
                return Err(
                    "the registry's CA certificate is not PEM (no BEGIN CERTIFICATE)".into(),
                );
            }
            let certificate = reqwest::Certificate::from_pem(pem.as_bytes())
                .map_err(|e| format!("the registry's CA certificate is not PEM: {e}"))?;
            builder = builder.tls_certs_merge([certificate]);
        }
        Ok(builder)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_password() {
        let endpoint = RegistryEndpoint {
            address: "127.0.0.1:5000".into(),
            auth: Some(BasicAuth {
                username: "alice".into(),
                password: "Pa55-w0rd-never-printed".into(),
            }),
            ..RegistryEndpoint::default()
        };
        let text = format!("{endpoint:?} {endpoint:#?}");
        assert!(!text.contains("Pa55-w0rd-never-printed"), "{text}");
        assert!(text.contains("alice"), "{text}");
        assert!(text.contains("<redacted>"), "{text}");
    }

    #[test]
    fn host_drops_the_prefix() {
        let endpoint = RegistryEndpoint {
            address: "ghcr.io/acme/e2e/".into(),
            ..RegistryEndpoint::default()
        };
        assert_eq!(endpoint.host(), "ghcr.io");
        assert_eq!(endpoint.scheme(), "https");
    }

    #[test]
    fn a_ca_that_is_not_pem_is_an_error() {
        let endpoint = RegistryEndpoint {
            address: "127.0.0.1:5000".into(),
            ca_pem: Some("not a certificate".into()),
            ..RegistryEndpoint::default()
        };
        let error = endpoint.http_client_builder().err().unwrap_or_default();
        assert!(error.contains("not PEM"), "{error}");
    }
}
