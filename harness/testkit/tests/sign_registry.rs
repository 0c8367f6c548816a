//! Signing and verifying against a real registry (Debian's docker-registry):
//! a signature verifies with its key, not with another key, not for another
//! digest, and an unsigned digest says so.

use std::collections::BTreeMap;
use std::path::Path;

use harness_oci::sign::{SigningKey, Verification, signature_tag};
use harness_oci::{ArtifactFiles, DEFAULT_LAYER_MEDIA_TYPE, RegistryClient, pack};
use harness_testkit::registry_process::{RegistryOptions, RegistryProcess};

async fn registry(dir: &Path) -> RegistryProcess {
    harness_core::init_crypto();
    RegistryProcess::start(RegistryOptions::new(dir))
        .await
        .expect("start docker-registry (apt-get install docker-registry)")
}

async fn push(client: &RegistryClient, repository: &str, version: &str) -> String {
    let files: ArtifactFiles = [(
        "configmap.yaml",
        format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: demo\ndata:\n  version: {version:?}\n"),
    )]
    .into_iter()
    .collect();
    let packed = pack(&files, DEFAULT_LAYER_MEDIA_TYPE, &BTreeMap::new()).expect("pack");
    client
        .push(repository, &packed, &[version.to_string()])
        .await
        .expect("push")
        .digest
}

#[tokio::test]
async fn signatures_verify_with_their_key_and_for_their_digest_only() {
    let dir = tempfile::tempdir().unwrap();
    let registry = registry(dir.path()).await;
    let client = RegistryClient::new(registry.endpoint());
    let v1 = push(&client, "signed", "1.0.0").await;
    let v2 = push(&client, "signed", "2.0.0").await;
    let key = SigningKey::generate();
    let other = SigningKey::generate();

    assert_eq!(
        client
            .verify_signature("signed", &v1, &key.public_key())
            .await
            .unwrap(),
        Verification::Unsigned
    );

    let signed = client.sign("signed", &v1, &key).await.expect("sign");
    assert_eq!(signed.tag, signature_tag(&v1).unwrap());
    assert_eq!(signed.signatures, 1);
    assert_eq!(
        client
            .verify_signature("signed", &v1, &key.public_key())
            .await
            .unwrap(),
        Verification::Verified { signatures: 1 }
    );
    // The signature tag points at the signature manifest, not at v1.
    assert_eq!(
        client.resolve("signed", &signed.tag).await.unwrap(),
        signed.signature_manifest
    );

    let wrong = client
        .verify_signature("signed", &v1, &other.public_key())
        .await
        .unwrap();
    match &wrong {
        Verification::NotVerified { reasons } => {
            assert_eq!(reasons.len(), 1, "{reasons:?}");
            assert!(
                reasons[0].contains("does not verify with key"),
                "{reasons:?}"
            );
        }
        other => panic!("a wrong key must not verify: {other:?}"),
    }
    assert_eq!(
        client
            .verify_signature("signed", &v2, &key.public_key())
            .await
            .unwrap(),
        Verification::Unsigned,
        "v1's signature says nothing about v2"
    );

    // A second key adds a signature next to the first; signing again with
    // the same key changes nothing.
    let again = client.sign("signed", &v1, &other).await.unwrap();
    assert_eq!(again.signatures, 2);
    assert_eq!(
        client.sign("signed", &v1, &other).await.unwrap().signatures,
        2
    );
    for k in [&key, &other] {
        assert!(
            client
                .verify_signature("signed", &v1, &k.public_key())
                .await
                .unwrap()
                .is_verified()
        );
    }
}

#[tokio::test]
async fn a_signature_copied_to_another_digest_does_not_verify() {
    let dir = tempfile::tempdir().unwrap();
    let registry = registry(dir.path()).await;
    let client = RegistryClient::new(registry.endpoint());
    let v1 = push(&client, "copied", "1.0.0").await;
    let v2 = push(&client, "copied", "2.0.0").await;
    let key = SigningKey::generate();
    let signed = client.sign("copied", &v1, &key).await.unwrap();
    // Put v1's signature manifest at v2's signature tag, as an attacker
    // with push access could.
    client
        .tag(
            "copied",
            &signed.signature_manifest,
            &[signature_tag(&v2).unwrap()],
        )
        .await
        .unwrap();
    match client
        .verify_signature("copied", &v2, &key.public_key())
        .await
        .unwrap()
    {
        Verification::NotVerified { reasons } => {
            assert!(
                reasons[0].contains(&format!("signs {v1}, not {v2}")),
                "{reasons:?}"
            )
        }
        other => panic!("a copied signature must not verify: {other:?}"),
    }
}

#[tokio::test]
async fn signing_a_digest_that_is_not_there_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let registry = registry(dir.path()).await;
    let client = RegistryClient::new(registry.endpoint());
    push(&client, "missing", "1.0.0").await;
    let absent = format!("sha256:{}", "0".repeat(64));
    let error = client
        .sign("missing", &absent, &SigningKey::generate())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("not found") && error.contains(&absent),
        "{error}"
    );
}
