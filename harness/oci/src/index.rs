//! OCI image indexes that bundle variants of an artifact: one manifest per
//! platform or per target (told apart by the entry's annotations). The
//! variants are pushed by digest first, then the index under its tags.
//! Packing is reproducible like the variants' (sorted keys, no timestamps).

use std::collections::BTreeMap;

use super::{MANIFEST_MEDIA_TYPE, OciError, PackedArtifact, PushOutcome, RegistryClient};
use harness_artifact::sha256_digest;

pub const INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";

/// An entry's `platform` (OCI image spec: Go's GOOS / GOARCH names).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OciPlatform {
    pub architecture: String,
    pub os: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

/// One variant of an index: a packed artifact and how the index describes it.
#[derive(Debug, Clone)]
pub struct IndexEntry {
    pub artifact: PackedArtifact,
    pub platform: Option<OciPlatform>,
    pub annotations: BTreeMap<String, String>,
}

/// The index JSON for `entries`, in order.
pub fn index_manifest(
    entries: &[IndexEntry],
    annotations: &BTreeMap<String, String>,
) -> Result<Vec<u8>, OciError> {
    if entries.is_empty() {
        return Err(OciError::Pack(
            "an index needs at least one manifest".into(),
        ));
    }
    let manifests: Vec<serde_json::Value> = entries
        .iter()
        .map(|entry| {
            let mut descriptor = serde_json::json!({
                "mediaType": MANIFEST_MEDIA_TYPE,
                "digest": entry.artifact.digest,
                "size": entry.artifact.manifest.len(),
            });
            if let Some(platform) = &entry.platform {
                descriptor["platform"] = serde_json::json!(platform);
            }
            if !entry.annotations.is_empty() {
                descriptor["annotations"] = serde_json::json!(entry.annotations);
            }
            descriptor
        })
        .collect();
    let mut index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": INDEX_MEDIA_TYPE,
        "manifests": manifests,
    });
    if !annotations.is_empty() {
        index["annotations"] = serde_json::json!(annotations);
    }
    serde_json::to_vec(&index).map_err(|e| OciError::Pack(format!("serializing the index: {e}")))
}

/// What pushing an index did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexPushOutcome {
    /// The index's digest.
    pub digest: String,
    /// Each variant's push, in order.
    pub variants: Vec<PushOutcome>,
}

/// Push every variant by digest (side by side), then the index under
/// `tags` (by digest only when `tags` is empty).
pub async fn push_index(
    client: &RegistryClient,
    repository: &str,
    entries: &[IndexEntry],
    annotations: &BTreeMap<String, String>,
    tags: &[String],
) -> Result<IndexPushOutcome, OciError> {
    let index = index_manifest(entries, annotations)?;
    let full = client.full_repository(repository)?;
    let artifacts: Vec<&PackedArtifact> = entries.iter().map(|e| &e.artifact).collect();
    // Every variant's blobs at once, each blob once (they share the
    // config), then the variants' manifests by digest, then the index.
    let variants = client.push_blobs(&full, &artifacts).await?;
    futures::future::try_join_all(artifacts.iter().map(|artifact| {
        client.push_manifest_bytes(repository, &artifact.manifest, MANIFEST_MEDIA_TYPE, &[])
    }))
    .await?;
    let digest = client
        .push_manifest_bytes(repository, &index, INDEX_MEDIA_TYPE, tags)
        .await?;
    debug_assert_eq!(digest, sha256_digest(&index));
    Ok(IndexPushOutcome { digest, variants })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ArtifactFiles, pack};

    #[test]
    fn index_lists_variants_with_platform_and_annotations() {
        let files: ArtifactFiles = [("a.yaml", "x: 1\n")].into_iter().collect();
        let artifact =
            pack(&files, crate::DEFAULT_LAYER_MEDIA_TYPE, &BTreeMap::new()).expect("pack");
        let entries = vec![
            IndexEntry {
                artifact: artifact.clone(),
                platform: Some(OciPlatform {
                    architecture: "amd64".into(),
                    os: "linux".into(),
                    variant: None,
                }),
                annotations: BTreeMap::new(),
            },
            IndexEntry {
                artifact: artifact.clone(),
                platform: None,
                annotations: BTreeMap::from([("target".into(), "prod".into())]),
            },
        ];
        let index = index_manifest(&entries, &BTreeMap::new()).expect("index");
        let value: serde_json::Value = serde_json::from_slice(&index).expect("json");
        assert_eq!(value["mediaType"], INDEX_MEDIA_TYPE);
        assert_eq!(value["manifests"][0]["digest"], artifact.digest.as_str());
        assert_eq!(value["manifests"][0]["size"], artifact.manifest.len());
        assert_eq!(value["manifests"][0]["platform"]["os"], "linux");
        assert_eq!(value["manifests"][1]["annotations"]["target"], "prod");
        assert!(value["manifests"][1].get("platform").is_none());
        assert_eq!(
            index_manifest(&entries, &BTreeMap::new()).expect("again"),
            index
        );
        assert!(index_manifest(&[], &BTreeMap::new()).is_err());
    }
}
