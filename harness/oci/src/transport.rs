//! The push path's own requests, for registries that need no token
//! exchange (anonymous or HTTP basic auth, as every lab's registry is).
//!
//! oci-client asks `GET /v2/` before every request to an anonymous
//! registry (it caches tokens, and an anonymous registry gives none) and
//! uploads every blob as POST, PATCH, PUT. A push of two small blobs and a
//! tag was eighteen requests one after the other (HEAD, POST, PATCH and PUT
//! per blob and the manifest PUT, each after its own `GET /v2/`); it is now
//! eight, seven once the client knows the registry, the blobs side by
//! side (`tests/push_requests.rs` holds the exact list). Here the
//! client asks `GET /v2/` once ([`Transport::access`], kept for the
//! client's life, shared by its clones), checks blobs with one HEAD each,
//! uploads a blob of up to [`MONOLITHIC_MAX`] bytes as POST then one PUT
//! with the digest (larger ones in PATCH chunks of [`CHUNK`] bytes), and
//! puts manifests with one PUT. A registry that asks for a token (a
//! `Bearer` challenge: ghcr.io, Docker Hub) is left to oci-client, whose
//! token exchange and cache serve it as before.
//!
//! Failures come back as oci-client errors (`RequestError` for transport
//! failures, `RegistryError` or `ServerError` for answers), so that
//! `RegistryClient::classify` words them as it words every other request.

use oci_client::errors::{OciDistributionError, OciEnvelope};
use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, LOCATION, WWW_AUTHENTICATE};
use reqwest::{StatusCode, Url};

use crate::{BasicAuth, RegistryEndpoint};

/// Blobs up to this size go up in one PUT; larger ones in chunks.
pub const MONOLITHIC_MAX: usize = 16 << 20;
/// The size of one PATCH of a chunked upload.
pub const CHUNK: usize = 16 << 20;

type Answer<T> = Result<T, OciDistributionError>;

/// What `GET /v2/` said about the registry's authentication.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Answered without a challenge. Credentials, when the endpoint has
    /// some, still go with every request (a registry may read anonymously
    /// and want them for pushes).
    Anonymous,
    /// A `Basic` challenge (or a 401 without one): every request carries
    /// the endpoint's credentials (none: the registry refuses, and the
    /// error says anonymous access was used).
    Basic,
    /// A token challenge (`Bearer`), or an answer no registry gives (a
    /// 404, say): oci-client does the requests. (A 5xx is an error, asked
    /// again next time.)
    Token,
}

/// Raw HTTP to one registry, shared by a client and its clones.
pub(crate) struct Transport {
    /// The HTTP client, or why it could not be built.
    http: Result<reqwest::Client, String>,
    /// `scheme://host[:port]`.
    base: Url,
    auth: Option<BasicAuth>,
    access: tokio::sync::OnceCell<Access>,
}

impl Transport {
    pub(crate) fn new(endpoint: &RegistryEndpoint) -> Self {
        let http = endpoint.http_client_builder().and_then(|builder| {
            builder
                .connect_timeout(std::time::Duration::from_secs(10))
                .read_timeout(std::time::Duration::from_secs(120))
                // The upload's Location is followed by hand (credentials
                // only to the registry itself).
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .map_err(|e| e.to_string())
        });
        let base = format!("{}://{}", endpoint.scheme(), endpoint.host());
        let (http, base) = match Url::parse(&base) {
            Ok(url) => (http, url),
            Err(e) => (
                Err(format!("{base} is not a URL: {e}")),
                Url::parse("http://invalid.invalid").expect("a constant URL"),
            ),
        };
        Transport {
            http,
            base,
            auth: endpoint.auth.clone(),
            access: tokio::sync::OnceCell::new(),
        }
    }

    /// Why the HTTP client could not be built, if it could not.
    pub(crate) fn setup_error(&self) -> Option<&str> {
        self.http.as_ref().err().map(String::as_str)
    }

    fn http(&self) -> Answer<&reqwest::Client> {
        // `RegistryClient` reports a setup error before any request.
        self.http
            .as_ref()
            .map_err(|e| OciDistributionError::GenericError(Some(e.clone())))
    }

    /// The access the probe found, if it was asked already.
    pub(crate) fn known_access(&self) -> Option<Access> {
        self.access.get().copied()
    }

    /// The registry's access, asked once (`GET /v2/` without credentials)
    /// and kept; a probe that fails is asked again next time.
    pub(crate) async fn access(&self) -> Answer<Access> {
        self.access
            .get_or_try_init(|| async {
                let url = self.url("/v2/");
                let answer = self.http()?.get(url).send().await?;
                let status = answer.status();
                if status.is_server_error() {
                    // Not kept: the next push asks again.
                    return Err(failure(answer, &self.url("/v2/")).await);
                }
                let challenge = answer
                    .headers()
                    .get(WWW_AUTHENTICATE)
                    .and_then(|v| v.to_str().ok())
                    .map(|v| v.trim().to_ascii_lowercase());
                drain(answer).await?;
                Ok(match (status, challenge) {
                    (s, _) if s.is_success() => Access::Anonymous,
                    (StatusCode::UNAUTHORIZED, Some(c)) if c.starts_with("bearer") => Access::Token,
                    (StatusCode::UNAUTHORIZED, _) => Access::Basic,
                    _ => Access::Token,
                })
            })
            .await
            .copied()
    }

    fn url(&self, path: &str) -> Url {
        let mut url = self.base.clone();
        url.set_path(path);
        url
    }

    /// Credentials go to the registry's own scheme, host and port only (an
    /// upload URL elsewhere, a storage redirect, gets none).
    fn request(&self, method: reqwest::Method, url: Url) -> Answer<reqwest::RequestBuilder> {
        let same_origin = url.scheme() == self.base.scheme()
            && url.host_str() == self.base.host_str()
            && url.port_or_known_default() == self.base.port_or_known_default();
        let builder = self.http()?.request(method, url);
        Ok(match &self.auth {
            Some(basic) if same_origin => {
                builder.basic_auth(&basic.username, Some(&basic.password))
            }
            _ => builder,
        })
    }

    /// `HEAD /v2/<name>/blobs/<digest>`: 200 has it, 404 has not.
    pub(crate) async fn blob_exists(&self, repository: &str, digest: &str) -> Answer<bool> {
        let url = self.url(&format!("/v2/{repository}/blobs/{digest}"));
        let answer = self
            .request(reqwest::Method::HEAD, url.clone())?
            .send()
            .await?;
        match answer.status() {
            s if s.is_success() => drain(answer).await.map(|()| true),
            StatusCode::NOT_FOUND => drain(answer).await.map(|()| false),
            _ => Err(failure(answer, &url).await),
        }
    }

    /// POST an upload, then one PUT with the digest (or PATCH chunks and
    /// a closing PUT for a blob over [`MONOLITHIC_MAX`]).
    pub(crate) async fn upload_blob(
        &self,
        repository: &str,
        digest: &str,
        bytes: Vec<u8>,
    ) -> Answer<()> {
        let url = self.url(&format!("/v2/{repository}/blobs/uploads/"));
        let answer = self
            .request(reqwest::Method::POST, url.clone())?
            .header(CONTENT_LENGTH, 0)
            .send()
            .await?;
        let mut location = location_of(answer, &url, StatusCode::ACCEPTED).await?;
        let body = if bytes.len() <= MONOLITHIC_MAX {
            bytes
        } else {
            let mut start = 0;
            while start < bytes.len() {
                let end = (start + CHUNK).min(bytes.len());
                let answer = self
                    .request(reqwest::Method::PATCH, location.clone())?
                    .header(CONTENT_TYPE, "application/octet-stream")
                    .header(CONTENT_RANGE, format!("{start}-{}", end - 1))
                    .header(CONTENT_LENGTH, end - start)
                    .body(bytes[start..end].to_vec())
                    .send()
                    .await?;
                location = location_of(answer, &location, StatusCode::ACCEPTED).await?;
                start = end;
            }
            Vec::new()
        };
        location.query_pairs_mut().append_pair("digest", digest);
        let answer = self
            .request(reqwest::Method::PUT, location.clone())?
            .header(CONTENT_TYPE, "application/octet-stream")
            .header(CONTENT_LENGTH, body.len())
            .body(body)
            .send()
            .await?;
        if answer.status() == StatusCode::CREATED {
            drain(answer).await
        } else {
            Err(failure(answer, &location).await)
        }
    }

    /// `PUT /v2/<name>/manifests/<reference>`. A missing `Location` in the
    /// answer is fine: nothing here reads it.
    pub(crate) async fn put_manifest(
        &self,
        repository: &str,
        reference: &str,
        manifest: Vec<u8>,
        content_type: reqwest::header::HeaderValue,
    ) -> Answer<()> {
        let url = self.url(&format!("/v2/{repository}/manifests/{reference}"));
        let answer = self
            .request(reqwest::Method::PUT, url.clone())?
            .header(CONTENT_TYPE, content_type)
            .header(CONTENT_LENGTH, manifest.len())
            .body(manifest)
            .send()
            .await?;
        if answer.status().is_success() {
            drain(answer).await
        } else {
            Err(failure(answer, &url).await)
        }
    }
}

/// The upload URL an answer gives (resolved against `url`), when its
/// status is `expected`.
async fn location_of(answer: reqwest::Response, url: &Url, expected: StatusCode) -> Answer<Url> {
    if answer.status() != expected {
        return Err(failure(answer, url).await);
    }
    let Some(value) = answer.headers().get(LOCATION) else {
        return Err(OciDistributionError::ServerError {
            code: answer.status().as_u16(),
            url: url.to_string(),
            message: "the registry's answer to an upload has no Location header".into(),
        });
    };
    let value = value.to_str().unwrap_or_default().to_string();
    let status = answer.status().as_u16();
    drain(answer).await?;
    url.join(&value)
        .map_err(|e| OciDistributionError::ServerError {
            code: status,
            url: url.to_string(),
            message: format!("the upload's Location {value:?} is not a URL: {e}"),
        })
}

/// Reads an answer to its end, so that its connection goes back to the
/// pool for the next request instead of being closed.
async fn drain(answer: reqwest::Response) -> Answer<()> {
    answer.bytes().await?;
    Ok(())
}

/// A registry's refusal: its error envelope when it sent one, else the
/// status and body.
async fn failure(answer: reqwest::Response, url: &Url) -> OciDistributionError {
    let code = answer.status().as_u16();
    let body = match answer.text().await {
        Ok(body) => body,
        Err(e) => return OciDistributionError::RequestError(e),
    };
    match serde_json::from_str::<OciEnvelope>(&body) {
        Ok(envelope) if !envelope.errors.is_empty() && code != 401 && code != 403 => {
            OciDistributionError::RegistryError {
                envelope,
                url: url.to_string(),
            }
        }
        _ => OciDistributionError::ServerError {
            code,
            url: url.to_string(),
            message: body,
        },
    }
}
