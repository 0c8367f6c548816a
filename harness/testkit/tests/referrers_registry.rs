//! Referrers on a real registry without the referrers API (Debian's
//! distribution 2.8 answers 404): attaching maintains the OCI 1.1 fallback
//! tag `sha256-<hex>`, listing reads it, and the subject stays untouched.

use std::collections::BTreeMap;
use std::path::Path;

use harness_oci::referrers::{Attachment, ReferrersSupport, referrers_tag};
use harness_oci::{DEFAULT_LAYER_MEDIA_TYPE, RegistryClient, pack};
use harness_testkit::registry_process::{RegistryOptions, RegistryProcess};

mod common;

const SPDX: &str = "application/spdx+json";
const CYCLONEDX: &str = "application/vnd.cyclonedx+json";

async fn registry(dir: &Path) -> RegistryProcess {
    harness_core::init_crypto();
    RegistryProcess::start(RegistryOptions::new(dir))
        .await
        .expect("start docker-registry (apt-get install docker-registry)")
}

fn sbom(kind: &str) -> Attachment {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(match kind {
        SPDX => "../../fixtures/sbom/demo-app.spdx.json",
        _ => "../../fixtures/sbom/demo-app.cdx.json",
    });
    Attachment {
        artifact_type: kind.to_string(),
        media_type: kind.to_string(),
        content: std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
        annotations: BTreeMap::from([(
            "org.opencontainers.image.created".to_string(),
            "2026-01-01T00:00:00Z".to_string(),
        )]),
    }
}

#[tokio::test]
async fn attaching_on_a_registry_without_the_api_uses_the_fallback_tag() {
    let dir = tempfile::tempdir().unwrap();
    let registry = registry(dir.path()).await;
    let client = RegistryClient::new(registry.endpoint());
    let subject = common::push_subject(&client, "app").await;

    assert_eq!(
        client.referrers_support("app", &subject).await.unwrap(),
        ReferrersSupport::TagSchema
    );
    let none = client.referrers("app", &subject, None).await.unwrap();
    assert!(none.manifests.is_empty(), "{none:?}");

    let spdx = client
        .attach("app", &subject, &sbom(SPDX))
        .await
        .expect("attach");
    assert_eq!(spdx.via, ReferrersSupport::TagSchema);
    assert_eq!(spdx.subject, subject);
    let cdx = client
        .attach("app", &subject, &sbom(CYCLONEDX))
        .await
        .unwrap();
    // Attaching the same document again adds nothing.
    client.attach("app", &subject, &sbom(SPDX)).await.unwrap();

    let all = client.referrers("app", &subject, None).await.unwrap();
    assert_eq!(all.via, ReferrersSupport::TagSchema);
    let digests: Vec<&str> = all.manifests.iter().map(|d| d.digest.as_str()).collect();
    assert_eq!(digests, [spdx.digest.as_str(), cdx.digest.as_str()]);
    let only_spdx = client.referrers("app", &subject, Some(SPDX)).await.unwrap();
    assert_eq!(only_spdx.manifests.len(), 1);
    assert_eq!(only_spdx.manifests[0].artifact_type.as_deref(), Some(SPDX));
    assert_eq!(
        only_spdx.manifests[0].annotations["org.opencontainers.image.created"],
        "2026-01-01T00:00:00Z"
    );

    // The referrer's manifest names the subject and carries the document.
    let pulled = client.pull("app", &spdx.digest).await.unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(&pulled.manifest).unwrap();
    assert_eq!(manifest["subject"]["digest"], subject.as_str());
    assert_eq!(manifest["artifactType"], SPDX);
    assert_eq!(pulled.layers, vec![(SPDX.to_string(), sbom(SPDX).content)]);

    // The fallback tag is an index; the subject and its tag did not move.
    let tags = client.list_tags("app").await.unwrap();
    assert!(tags.contains(&referrers_tag(&subject).unwrap()), "{tags:?}");
    assert_eq!(client.resolve("app", "v1").await.unwrap(), subject);

    // Another subject has its own (empty) list.
    let other = client
        .push(
            "app",
            &pack(
                &[("a.yaml", "a: 1\n")].into_iter().collect(),
                DEFAULT_LAYER_MEDIA_TYPE,
                &BTreeMap::new(),
            )
            .unwrap(),
            &["v2".to_string()],
        )
        .await
        .unwrap()
        .digest;
    assert!(
        client
            .referrers("app", &other, None)
            .await
            .unwrap()
            .manifests
            .is_empty()
    );
}

#[tokio::test]
async fn attaching_to_a_missing_subject_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let registry = registry(dir.path()).await;
    let client = RegistryClient::new(registry.endpoint());
    let files = [("a.yaml", "a: 1\n")].into_iter().collect();
    let packed = pack(&files, DEFAULT_LAYER_MEDIA_TYPE, &BTreeMap::new()).unwrap();
    client
        .push("app", &packed, &["v1".to_string()])
        .await
        .unwrap();
    let absent = format!("sha256:{}", "1".repeat(64));
    let error = client
        .attach("app", &absent, &sbom(SPDX))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("not found") && error.contains(&absent),
        "{error}"
    );
}
