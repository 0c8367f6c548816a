//! OCI 1.1 referrers: artifacts (an SBOM, a signature...) whose manifest
//! names another manifest as its `subject`.
//!
//! Attaching pushes the artifact's manifest with `subject` set. A registry
//! with the referrers API (`GET /v2/<name>/referrers/<digest>` answers 200)
//! indexes it by itself. One without it (Debian's distribution 2.8 answers
//! 404) gets the fallback the distribution spec defines: an image index
//! under the tag `sha256-<hex>` of the subject, listing every referrer,
//! which the client keeps up to date (read, add, put back).
//!
//! Listing asks the API first and reads the fallback tag on a 404, so both
//! kinds of registry answer the same question the same way.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{
    EMPTY_CONFIG, EMPTY_CONFIG_DIGEST, EMPTY_CONFIG_MEDIA_TYPE, MANIFEST_MEDIA_TYPE, OciError,
    ReferenceKind, RegistryClient, parse_reference,
};
use harness_artifact::sha256_digest;

/// Media type of an image index (the referrers list and the fallback tag).
pub const INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";

/// How a registry keeps referrers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ReferrersSupport {
    /// The registry answers the referrers API and indexes `subject` itself.
    Api,
    /// No referrers API: the client maintains the `sha256-<hex>` tag index.
    TagSchema,
}

impl std::fmt::Display for ReferrersSupport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ReferrersSupport::Api => "the referrers API",
            ReferrersSupport::TagSchema => "the referrers tag schema (sha256-<hex> index)",
        })
    }
}

/// A descriptor in a referrers list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// An image index, as the referrers API and the fallback tag hold it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Index {
    schema_version: u32,
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Vec<Descriptor>,
}

/// A document to attach to a manifest.
#[derive(Debug, Clone)]
pub struct Attachment {
    /// The referrer's `artifactType`, e.g. `application/spdx+json`.
    pub artifact_type: String,
    /// Media type of the document's layer (usually the same as `artifact_type`).
    pub media_type: String,
    pub content: Vec<u8>,
    /// Annotations of the referrer's manifest (also copied into the index).
    pub annotations: BTreeMap<String, String>,
}

/// What attaching did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AttachOutcome {
    /// Digest of the referrer's manifest.
    pub digest: String,
    pub subject: String,
    pub via: ReferrersSupport,
}

/// The referrers of a manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Referrers {
    pub via: ReferrersSupport,
    pub manifests: Vec<Descriptor>,
}

/// The fallback tag of a subject digest: `sha256:<hex>` -> `sha256-<hex>`.
pub fn referrers_tag(subject: &str) -> Result<String, OciError> {
    match parse_reference(subject)? {
        ReferenceKind::Digest(digest) => Ok(digest.replacen(':', "-", 1)),
        ReferenceKind::Tag(tag) => Err(OciError::InvalidReference {
            reference: tag,
            reason: "a referrer's subject is a manifest digest (`sha256:...`), not a tag".into(),
        }),
    }
}

fn descriptor_of(media_type: &str, bytes: &[u8]) -> serde_json::Value {
    serde_json::json!({
        "mediaType": media_type,
        "digest": sha256_digest(bytes),
        "size": bytes.len(),
    })
}

impl RegistryClient {
    /// Upload a blob unless the registry has it. Returns whether it was uploaded.
    pub(crate) async fn push_blob_if_missing(
        &self,
        repository: &str,
        bytes: &[u8],
    ) -> Result<bool, OciError> {
        let full = self.full_repository(repository)?;
        let digest = sha256_digest(bytes);
        self.ensure_blob(&full, &digest, bytes).await
    }

    /// Put manifest bytes at a tag, or by their digest when `tag` is `None`.
    /// Returns the digest.
    pub(crate) async fn put_manifest_at(
        &self,
        repository: &str,
        manifest: &[u8],
        media_type: &str,
        tag: Option<&str>,
    ) -> Result<String, OciError> {
        let full = self.full_repository(repository)?;
        let digest = sha256_digest(manifest);
        let target = match tag {
            Some(tag) => ReferenceKind::Tag(tag.to_string()),
            None => ReferenceKind::Digest(digest.clone()),
        };
        let content_type = reqwest::header::HeaderValue::from_str(media_type).map_err(|e| {
            OciError::Pack(format!(
                "media type {media_type:?} is not a valid HTTP header value: {e}"
            ))
        })?;
        self.put_manifest(
            &full,
            &target,
            manifest.to_vec(),
            content_type,
            "pushing the manifest",
        )
        .await?;
        Ok(digest)
    }

    /// The manifest at a tag or digest, or `None` when there is none.
    pub(crate) async fn manifest_if_exists(
        &self,
        repository: &str,
        reference: &str,
    ) -> Result<Option<(Vec<u8>, String)>, OciError> {
        let full = self.full_repository(repository)?;
        let kind = parse_reference(reference)?;
        match self.fetch_manifest(&full, &kind).await {
            Ok(found) => Ok(Some(found)),
            Err(OciError::ManifestNotFound { .. }) => Ok(None),
            Err(other) => Err(other),
        }
    }

    /// Whether the registry answers the referrers API for this repository
    /// (200), or not (404). Any other answer is an error.
    pub async fn referrers_support(
        &self,
        repository: &str,
        subject: &str,
    ) -> Result<ReferrersSupport, OciError> {
        Ok(match self.referrers_api(repository, subject).await? {
            Some(_) => ReferrersSupport::Api,
            None => ReferrersSupport::TagSchema,
        })
    }

    /// `GET /v2/<name>/referrers/<digest>`: the index, or `None` on 404.
    /// (oci-client's `pull_referrers` falls back silently; callers here
    /// need to know which kind of registry answered.)
    async fn referrers_api(
        &self,
        repository: &str,
        subject: &str,
    ) -> Result<Option<Index>, OciError> {
        let full = self.full_repository(repository)?;
        referrers_tag(subject)?;
        let endpoint = self.endpoint();
        let scheme = if endpoint.plain_http { "http" } else { "https" };
        let host = endpoint
            .address
            .trim_end_matches('/')
            .split('/')
            .next()
            .unwrap_or_default();
        let url = format!("{scheme}://{host}/v2/{full}/referrers/{subject}");
        let failed = |detail: String| OciError::Registry {
            address: endpoint.address.clone(),
            operation: format!("listing the referrers of {full}@{subject}"),
            detail,
        };
        let http = endpoint
            .http_client_builder()
            .map_err(|detail| OciError::ClientSetup {
                address: endpoint.address.clone(),
                detail,
            })?
            .connect_timeout(std::time::Duration::from_secs(10))
            .timeout(std::time::Duration::from_secs(60))
            .build()
            .map_err(|e| OciError::ClientSetup {
                address: endpoint.address.clone(),
                detail: e.to_string(),
            })?;
        let mut request = http.get(&url).header("Accept", INDEX_MEDIA_TYPE);
        if let Some(auth) = &endpoint.auth {
            request = request.basic_auth(&auth.username, Some(&auth.password));
        }
        let started = std::time::Instant::now();
        let answer = request.send().await;
        tracing::debug!(
            op = "listing the referrers",
            registry = host,
            repository = %full,
            digest = subject,
            duration_ms = harness_core::log::millis_since(started),
            status = if answer.is_ok() { "ok" } else { "error" },
            http_status = answer.as_ref().ok().map(|r| r.status().as_u16()),
            "registry request"
        );
        let response = answer.map_err(|e| {
            failed(format!(
                "{e}; check that the registry is running at {}",
                endpoint.address
            ))
        })?;
        let status = response.status();
        match status.as_u16() {
            404 => Ok(None),
            200 => {
                let body = response.bytes().await.map_err(|e| failed(e.to_string()))?;
                let index: Index = serde_json::from_slice(&body)
                    .map_err(|e| failed(format!("the answer is not an image index: {e}")))?;
                Ok(Some(index))
            }
            401 | 403 => Err(OciError::Unauthorized {
                address: endpoint.address.clone(),
                repository: full,
                status: status.as_u16(),
                credentials: self.credentials(),
            }),
            other => Err(failed(format!("HTTP {other}"))),
        }
    }

    /// Attach `attachment` to the manifest `subject` (a digest in
    /// `repository`) as an OCI 1.1 referrer: an artifact manifest with the
    /// empty config, the document as its one layer and `subject` set.
    pub async fn attach(
        &self,
        repository: &str,
        subject: &str,
        attachment: &Attachment,
    ) -> Result<AttachOutcome, OciError> {
        let fallback_tag = referrers_tag(subject)?;
        // The subject's descriptor needs its media type and size.
        let Some((subject_manifest, subject_digest)) =
            self.manifest_if_exists(repository, subject).await?
        else {
            return Err(OciError::ManifestNotFound {
                address: self.endpoint().address.clone(),
                repository: self.full_repository(repository)?,
                reference: subject.to_string(),
            });
        };
        let subject_media_type = manifest_media_type(&subject_manifest);
        self.push_blob_if_missing(repository, EMPTY_CONFIG).await?;
        self.push_blob_if_missing(repository, &attachment.content)
            .await?;
        let mut manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST_MEDIA_TYPE,
            "artifactType": attachment.artifact_type,
            "config": {
                "mediaType": EMPTY_CONFIG_MEDIA_TYPE,
                "digest": EMPTY_CONFIG_DIGEST,
                "size": EMPTY_CONFIG.len(),
            },
            "layers": [descriptor_of(&attachment.media_type, &attachment.content)],
            "subject": descriptor_of(&subject_media_type, &subject_manifest),
        });
        if !attachment.annotations.is_empty() {
            manifest["annotations"] = serde_json::json!(attachment.annotations);
        }
        let bytes = serde_json::to_vec(&manifest)
            .map_err(|e| OciError::Pack(format!("cannot write the referrer manifest: {e}")))?;
        let digest = self
            .put_manifest_at(repository, &bytes, MANIFEST_MEDIA_TYPE, None)
            .await?;
        let via = self.referrers_support(repository, &subject_digest).await?;
        if via == ReferrersSupport::TagSchema {
            let mut index = match self.manifest_if_exists(repository, &fallback_tag).await? {
                Some((existing, _)) => serde_json::from_slice::<Index>(&existing).map_err(|e| {
                    OciError::InvalidManifest {
                        address: self.endpoint().address.clone(),
                        repository: repository.to_string(),
                        reference: fallback_tag.clone(),
                        detail: format!(
                            "the referrers fallback tag does not hold an image index ({e}); delete the tag so it can be rebuilt"
                        ),
                    }
                })?,
                None => Index {
                    schema_version: 2,
                    media_type: Some(INDEX_MEDIA_TYPE.to_string()),
                    manifests: Vec::new(),
                },
            };
            if !index.manifests.iter().any(|d| d.digest == digest) {
                index.manifests.push(Descriptor {
                    media_type: MANIFEST_MEDIA_TYPE.to_string(),
                    digest: digest.clone(),
                    size: bytes.len() as u64,
                    artifact_type: Some(attachment.artifact_type.clone()),
                    annotations: attachment.annotations.clone(),
                });
            }
            index.media_type = Some(INDEX_MEDIA_TYPE.to_string());
            let index_bytes = serde_json::to_vec(&index)
                .map_err(|e| OciError::Pack(format!("cannot write the referrers index: {e}")))?;
            self.put_manifest_at(
                repository,
                &index_bytes,
                INDEX_MEDIA_TYPE,
                Some(&fallback_tag),
            )
            .await?;
        }
        Ok(AttachOutcome {
            digest,
            subject: subject_digest,
            via,
        })
    }

    /// Registries written to the OCI 1.1 release candidates (e.g.
    /// go-containerregistry's) report the config's media type as a
    /// referrer's `artifactType`, which for artifacts is the empty config:
    /// read the referrer's manifest for its own `artifactType` then.
    async fn fill_artifact_type(
        &self,
        repository: &str,
        descriptor: &mut Descriptor,
    ) -> Result<(), OciError> {
        let reported = descriptor.artifact_type.as_deref();
        if reported.is_some() && reported != Some(EMPTY_CONFIG_MEDIA_TYPE) {
            return Ok(());
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct ArtifactType {
            artifact_type: Option<String>,
        }
        if let Some((bytes, _)) = self
            .manifest_if_exists(repository, &descriptor.digest)
            .await?
            && let Ok(ArtifactType {
                artifact_type: Some(artifact_type),
            }) = serde_json::from_slice(&bytes)
        {
            descriptor.artifact_type = Some(artifact_type);
        }
        Ok(())
    }

    /// The referrers of `subject` (a digest), optionally only those of one
    /// `artifactType`: from the API, or from the fallback tag on a registry
    /// without it (no tag: no referrers).
    pub async fn referrers(
        &self,
        repository: &str,
        subject: &str,
        artifact_type: Option<&str>,
    ) -> Result<Referrers, OciError> {
        let fallback_tag = referrers_tag(subject)?;
        let (via, mut manifests) = match self.referrers_api(repository, subject).await? {
            Some(index) => {
                let mut manifests = index.manifests;
                for descriptor in &mut manifests {
                    self.fill_artifact_type(repository, descriptor).await?;
                }
                (ReferrersSupport::Api, manifests)
            }
            None => {
                let manifests = match self.manifest_if_exists(repository, &fallback_tag).await? {
                    Some((bytes, _)) => serde_json::from_slice::<Index>(&bytes)
                        .map(|index| index.manifests)
                        .map_err(|e| OciError::InvalidManifest {
                            address: self.endpoint().address.clone(),
                            repository: repository.to_string(),
                            reference: fallback_tag.clone(),
                            detail: format!(
                                "the referrers fallback tag does not hold an image index: {e}"
                            ),
                        })?,
                    None => Vec::new(),
                };
                (ReferrersSupport::TagSchema, manifests)
            }
        };
        if let Some(wanted) = artifact_type {
            manifests.retain(|d| d.artifact_type.as_deref() == Some(wanted));
        }
        Ok(Referrers { via, manifests })
    }
}

/// The `mediaType` of a manifest; image manifests without one are OCI manifests.
fn manifest_media_type(manifest: &[u8]) -> String {
    #[derive(Deserialize)]
    struct MediaType {
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
    }
    serde_json::from_slice::<MediaType>(manifest)
        .ok()
        .and_then(|m| m.media_type)
        .unwrap_or_else(|| MANIFEST_MEDIA_TYPE.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fallback_tag_replaces_the_colon() {
        let hex = "ab".repeat(32);
        assert_eq!(
            referrers_tag(&format!("sha256:{hex}")).ok(),
            Some(format!("sha256-{hex}"))
        );
        assert!(referrers_tag("v1.0.0").is_err());
    }
}
