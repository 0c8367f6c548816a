//! Cosign-compatible signatures, offline: an ECDSA P-256 key pair, the
//! simple-signing payload, and the signature manifest at the tag cosign
//! looks for (`sha256-<hex>.sig`), as sigstore/cosign's
//! specs/SIGNATURE_SPEC.md describes. No Fulcio certificate, no Rekor entry:
//! verify such signatures with `cosign verify --key cosign.pub
//! --insecure-ignore-tlog=true`.
//!
//! Argo CD does not verify OCI signatures (argo-cd #22609); [`RegistryClient::verify_signature`]
//! is the gate a pipeline runs before pointing an Application at a digest.
//!
//! Why RustCrypto's `p256` and not the `sigstore` crate: sigstore 0.15
//! refuses to build without an OpenSSL or aws-lc-rs backend (a second
//! crypto library next to the ring the rest of the harness uses, and a
//! long C build on 2 cores), and its `cosign` module needs the Fulcio,
//! Rekor and OAuth clients that an offline harness never calls. The part
//! used here is small: ECDSA P-256 over SHA-256, the key as PEM
//! SubjectPublicKeyInfo (the format of `cosign.pub`), a JSON payload.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use p256::ecdsa::signature::{Signer as _, Verifier as _};
use p256::pkcs8::{DecodePublicKey as _, EncodePublicKey as _, LineEnding};
use serde::{Deserialize, Serialize};

use super::{MANIFEST_MEDIA_TYPE, OciError, ReferenceKind, RegistryClient, parse_reference};
use harness_artifact::sha256_digest;

/// Media type of cosign's payload layer.
pub const SIMPLE_SIGNING_MEDIA_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// Layer annotation holding the base64 signature of the payload.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// `critical.type` of a cosign signature payload.
pub const COSIGN_SIGNATURE_TYPE: &str = "cosign container image signature";
/// Config media type of cosign's signature manifests.
pub const IMAGE_CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";

/// Problems with keys given by the user.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(
        "not an ECDSA P-256 public key in PEM (`-----BEGIN PUBLIC KEY-----`, as in cosign.pub): {0}; \
         make one with `cosign generate-key-pair`"
    )]
    PublicKeyPem(String),
}

/// A private key generated for one run (never written anywhere).
#[derive(Clone)]
pub struct SigningKey(p256::ecdsa::SigningKey);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({})", self.public_key().fingerprint())
    }
}

impl SigningKey {
    /// A new random P-256 key.
    pub fn generate() -> Self {
        loop {
            let bytes: [u8; 32] = rand::random();
            // Fails only for zero or values above the group order (~2^-32).
            if let Ok(key) = p256::ecdsa::SigningKey::from_bytes(&bytes.into()) {
                return SigningKey(key);
            }
        }
    }

    pub fn public_key(&self) -> PublicKey {
        PublicKey(*self.0.verifying_key())
    }

    /// ASN.1 DER ECDSA signature of SHA-256(`payload`), as cosign writes it.
    pub fn sign(&self, payload: &[u8]) -> Vec<u8> {
        let signature: p256::ecdsa::Signature = self.0.sign(payload);
        signature.to_der().as_bytes().to_vec()
    }
}

/// A public key that verifies signatures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey(p256::ecdsa::VerifyingKey);

impl PublicKey {
    /// Read a `-----BEGIN PUBLIC KEY-----` PEM, e.g. cosign.pub.
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        p256::ecdsa::VerifyingKey::from_public_key_pem(pem.trim())
            .map(PublicKey)
            .map_err(|e| KeyError::PublicKeyPem(e.to_string()))
    }

    /// The key as cosign.pub holds it.
    pub fn to_pem(&self) -> String {
        self.0
            .to_public_key_pem(LineEnding::LF)
            .unwrap_or_else(|e| format!("(cannot encode the key: {e})"))
    }

    /// `sha256:` of the DER key, shortened: names a key in messages.
    pub fn fingerprint(&self) -> String {
        let der = self
            .0
            .to_public_key_der()
            .map(|d| d.as_bytes().to_vec())
            .unwrap_or_default();
        sha256_digest(&der)[..19].to_string()
    }

    /// Whether `signature` (DER, or the fixed 64-byte form) signs `payload`.
    pub fn verifies(&self, payload: &[u8], signature: &[u8]) -> bool {
        let parsed = p256::ecdsa::Signature::from_der(signature)
            .or_else(|_| p256::ecdsa::Signature::from_slice(signature));
        parsed.is_ok_and(|sig| self.0.verify(payload, &sig).is_ok())
    }
}

/// The tag cosign stores signatures of `digest` under: `sha256-<hex>.sig`.
pub fn signature_tag(digest: &str) -> Result<String, OciError> {
    match parse_reference(digest)? {
        ReferenceKind::Digest(digest) => Ok(format!("{}.sig", digest.replacen(':', "-", 1))),
        ReferenceKind::Tag(tag) => Err(OciError::InvalidReference {
            reference: tag,
            reason:
                "signatures are made for a manifest digest (`sha256:...`); resolve the tag first"
                    .into(),
        }),
    }
}

/// The simple-signing payload cosign signs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SimpleSigning {
    pub critical: Critical,
    #[serde(default)]
    pub optional: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Critical {
    pub identity: Identity,
    pub image: Image,
    #[serde(rename = "type")]
    pub kind: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Identity {
    #[serde(rename = "docker-reference")]
    pub docker_reference: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Image {
    #[serde(rename = "docker-manifest-digest")]
    pub docker_manifest_digest: String,
}

/// The payload for `digest` of `docker_reference` (`registry/repository`).
pub fn simple_signing_payload(docker_reference: &str, digest: &str) -> Vec<u8> {
    let payload = SimpleSigning {
        critical: Critical {
            identity: Identity {
                docker_reference: docker_reference.to_string(),
            },
            image: Image {
                docker_manifest_digest: digest.to_string(),
            },
            kind: COSIGN_SIGNATURE_TYPE.to_string(),
        },
        optional: None,
    };
    serde_json::to_vec(&payload).unwrap_or_default()
}

/// What signing did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SignOutcome {
    /// Digest of the signature manifest.
    pub signature_manifest: String,
    pub tag: String,
    /// Signatures the manifest now holds (cosign appends to it).
    pub signatures: usize,
}

/// What verifying found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "result")]
pub enum Verification {
    /// At least one signature by the key signs this digest.
    Verified { signatures: usize },
    /// No signature manifest at `sha256-<hex>.sig` (or it holds no signatures).
    Unsigned,
    /// Signatures exist but none by this key for this digest; why, per signature.
    NotVerified { reasons: Vec<String> },
}

impl Verification {
    pub fn is_verified(&self) -> bool {
        matches!(self, Verification::Verified { .. })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SignatureManifest {
    schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    media_type: Option<String>,
    config: Layer,
    #[serde(default)]
    layers: Vec<Layer>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Layer {
    media_type: String,
    size: u64,
    digest: String,
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    annotations: std::collections::BTreeMap<String, String>,
}

/// The image config cosign writes for a signature manifest: layers are
/// uncompressed, so each diff_id is the layer digest.
fn signature_config(layers: &[Layer]) -> Vec<u8> {
    let created = "0001-01-01T00:00:00Z";
    serde_json::to_vec(&serde_json::json!({
        "architecture": "",
        "created": created,
        "history": layers.iter().map(|_| serde_json::json!({"created": created})).collect::<Vec<_>>(),
        "os": "",
        "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| l.digest.clone()).collect::<Vec<_>>()},
        "config": {},
    }))
    .unwrap_or_default()
}

impl RegistryClient {
    /// Sign the manifest `digest` of `repository` with `key` and store the
    /// signature where cosign looks for it, next to any signatures already
    /// there (the same payload signed twice by one key is kept once).
    pub async fn sign(
        &self,
        repository: &str,
        digest: &str,
        key: &SigningKey,
    ) -> Result<SignOutcome, OciError> {
        let tag = signature_tag(digest)?;
        let full = self.full_repository(repository)?;
        // The subject must exist: signing a typo would sign nothing useful.
        if self.manifest_if_exists(repository, digest).await?.is_none() {
            return Err(OciError::ManifestNotFound {
                address: self.endpoint().address.clone(),
                repository: full,
                reference: digest.to_string(),
            });
        }
        let registry = self.endpoint().address.trim_end_matches('/');
        let registry = registry.split('/').next().unwrap_or(registry);
        let payload = simple_signing_payload(&format!("{registry}/{full}"), digest);
        let signature = BASE64.encode(key.sign(&payload));
        let mut layers = match self.manifest_if_exists(repository, &tag).await? {
            Some((bytes, _)) => serde_json::from_slice::<SignatureManifest>(&bytes)
                .map(|m| m.layers)
                .map_err(|e| OciError::InvalidManifest {
                    address: self.endpoint().address.clone(),
                    repository: full.clone(),
                    reference: tag.clone(),
                    detail: format!("not a cosign signature manifest ({e}); delete the tag"),
                })?,
            None => Vec::new(),
        };
        let layer = Layer {
            media_type: SIMPLE_SIGNING_MEDIA_TYPE.to_string(),
            size: payload.len() as u64,
            digest: sha256_digest(&payload),
            annotations: [(SIGNATURE_ANNOTATION.to_string(), signature)].into(),
        };
        if !layers.contains(&layer) {
            layers.push(layer);
        }
        self.push_blob_if_missing(repository, &payload).await?;
        let config = signature_config(&layers);
        self.push_blob_if_missing(repository, &config).await?;
        let manifest = SignatureManifest {
            schema_version: 2,
            media_type: Some(MANIFEST_MEDIA_TYPE.to_string()),
            config: Layer {
                media_type: IMAGE_CONFIG_MEDIA_TYPE.to_string(),
                size: config.len() as u64,
                digest: sha256_digest(&config),
                annotations: Default::default(),
            },
            layers,
        };
        let bytes = serde_json::to_vec(&manifest)
            .map_err(|e| OciError::Pack(format!("cannot write the signature manifest: {e}")))?;
        let signature_manifest = self
            .put_manifest_at(repository, &bytes, MANIFEST_MEDIA_TYPE, Some(&tag))
            .await?;
        Ok(SignOutcome {
            signature_manifest,
            tag,
            signatures: manifest.layers.len(),
        })
    }

    /// Check the cosign signatures of manifest `digest` against `key`, as
    /// `cosign verify --key` does offline: some signature layer must verify
    /// with the key, and its payload must name this digest.
    pub async fn verify_signature(
        &self,
        repository: &str,
        digest: &str,
        key: &PublicKey,
    ) -> Result<Verification, OciError> {
        let tag = signature_tag(digest)?;
        let Some((bytes, _)) = self.manifest_if_exists(repository, &tag).await? else {
            return Ok(Verification::Unsigned);
        };
        let manifest: SignatureManifest =
            serde_json::from_slice(&bytes).map_err(|e| OciError::InvalidManifest {
                address: self.endpoint().address.clone(),
                repository: repository.to_string(),
                reference: tag.clone(),
                detail: format!("not a cosign signature manifest: {e}"),
            })?;
        let signed_layers: Vec<&Layer> = manifest
            .layers
            .iter()
            .filter(|l| l.annotations.contains_key(SIGNATURE_ANNOTATION))
            .collect();
        if signed_layers.is_empty() {
            return Ok(Verification::Unsigned);
        }
        let mut verified = 0;
        let mut reasons = Vec::new();
        for (index, layer) in signed_layers.iter().enumerate() {
            let which = format!("signature {} of {}", index + 1, signed_layers.len());
            let payload = self.blob(repository, &layer.digest).await?;
            let signature = match BASE64.decode(layer.annotations[SIGNATURE_ANNOTATION].trim()) {
                Ok(signature) => signature,
                Err(e) => {
                    reasons.push(format!("{which}: the signature is not base64 ({e})"));
                    continue;
                }
            };
            if !key.verifies(&payload, &signature) {
                reasons.push(format!(
                    "{which}: does not verify with key {} (made with another key, or altered)",
                    key.fingerprint()
                ));
                continue;
            }
            match serde_json::from_slice::<SimpleSigning>(&payload) {
                Ok(p) if p.critical.image.docker_manifest_digest != digest => reasons.push(format!(
                    "{which}: signs {}, not {digest} (a signature copied from another manifest)",
                    p.critical.image.docker_manifest_digest
                )),
                Ok(p) if p.critical.kind != COSIGN_SIGNATURE_TYPE => reasons.push(format!(
                    "{which}: payload type is {:?}, not {COSIGN_SIGNATURE_TYPE:?}",
                    p.critical.kind
                )),
                Ok(_) => verified += 1,
                Err(e) => reasons.push(format!(
                    "{which}: the payload is not a simple-signing document ({e})"
                )),
            }
        }
        Ok(if verified > 0 {
            Verification::Verified {
                signatures: verified,
            }
        } else {
            Verification::NotVerified { reasons }
        })
    }

    /// A blob's bytes, checked against its digest.
    async fn blob(&self, repository: &str, digest: &str) -> Result<Vec<u8>, OciError> {
        let full = self.full_repository(repository)?;
        let by_digest = self.reference(&full, &ReferenceKind::Digest(digest.to_string()));
        let descriptor = oci_client::manifest::OciDescriptor {
            digest: digest.to_string(),
            ..Default::default()
        };
        let op = super::client::Op {
            name: "downloading a signature payload",
            repository: &full,
            reference: Some(digest),
        };
        let mut bytes = Vec::new();
        let client = self.client().await?;
        let request = client.pull_blob(&by_digest, &descriptor, &mut bytes);
        self.send(&op, Some(digest), request).await?;
        let actual = sha256_digest(&bytes);
        if actual != digest {
            return Err(OciError::Registry {
                address: self.endpoint().address.clone(),
                operation: format!("downloading blob {digest} of {full}"),
                detail: format!("its content has digest {actual}; the registry may be corrupt"),
            });
        }
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_with_its_key_only() {
        let key = SigningKey::generate();
        let other = SigningKey::generate();
        let payload = simple_signing_payload("r/x", &format!("sha256:{}", "a".repeat(64)));
        let signature = key.sign(&payload);
        assert!(key.public_key().verifies(&payload, &signature));
        assert!(!other.public_key().verifies(&payload, &signature));
        assert!(!key.public_key().verifies(b"other payload", &signature));
    }

    #[test]
    fn public_keys_round_trip_through_pem() {
        let key = SigningKey::generate().public_key();
        let pem = key.to_pem();
        assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----"), "{pem}");
        assert_eq!(PublicKey::from_pem(&pem).ok(), Some(key));
        let error = PublicKey::from_pem("not a key").unwrap_err().to_string();
        assert!(error.contains("cosign generate-key-pair"), "{error}");
    }

    #[test]
    fn the_signature_tag_is_cosigns() {
        let hex = "0f".repeat(32);
        assert_eq!(
            signature_tag(&format!("sha256:{hex}")).ok(),
            Some(format!("sha256-{hex}.sig"))
        );
        assert!(signature_tag("latest").is_err());
    }
}
