//! Registries that bend the spec, produced for real: Debian's registry
//! behind `harness_testkit::fault_proxy`, which changes one kind of answer.
//!
//! - A manifest PUT answered without `Location` (AWS ECR): oci-client 0.18
//!   panics on it for a PUT by digest; every push of the harness (by tag,
//!   by digest, image index, referrer, signature) goes through
//!   `RegistryClient::put_manifest`, which never reaches that path.
//! - 5xx answers and bodies cut short give errors that name the registry,
//!   the operation and what happened.

use std::collections::BTreeMap;
use std::path::Path;

use harness_oci::index::{IndexEntry, push_index};
use harness_oci::referrers::Attachment;
use harness_oci::sign::SigningKey;
use harness_oci::{
    DEFAULT_LAYER_MEDIA_TYPE, OciError, PackedArtifact, RegistryClient, RegistryEndpoint, pack,
};
use harness_testkit::fault_proxy::{Fault, FaultProxy};
use harness_testkit::registry_process::{RegistryOptions, RegistryProcess};
use hyper::Method;

async fn registry(dir: &Path) -> RegistryProcess {
    harness_core::init_crypto();
    RegistryProcess::start(RegistryOptions::new(dir))
        .await
        .expect("start docker-registry (apt-get install docker-registry)")
}

/// The registry's own endpoint (plain HTTP, no credentials), at the proxy.
fn through(proxy: &FaultProxy, registry: &RegistryProcess) -> RegistryEndpoint {
    RegistryEndpoint {
        address: proxy.address(),
        ..registry.endpoint()
    }
}

fn artifact(content: &str) -> PackedArtifact {
    let files = [(
        "cm.yaml",
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: x}}\ndata: {{v: {content:?}}}\n"
        ),
    )]
    .into_iter()
    .collect();
    pack(&files, DEFAULT_LAYER_MEDIA_TYPE, &BTreeMap::new()).unwrap()
}

/// The direct client (no proxy) must see `digest` under `reference`.
async fn assert_stored(direct: &RegistryClient, repository: &str, reference: &str, digest: &str) {
    assert_eq!(
        direct.resolve(repository, reference).await.unwrap(),
        digest,
        "{repository}@{reference} as the registry itself has it"
    );
}

#[tokio::test]
async fn oci_client_alone_panics_when_a_digest_put_has_no_location() {
    // The fault is real: without the harness's path, oci-client panics.
    let dir = tempfile::tempdir().unwrap();
    let registry = registry(dir.path()).await;
    let proxy = FaultProxy::start(&registry.endpoint().address, Fault::DropManifestLocation)
        .await
        .unwrap();
    let ours = RegistryClient::new(through(&proxy, &registry));
    let packed = artifact("raw");
    // Blobs and a tag first, through the harness (tag PUTs survive in oci-client).
    ours.push("raw", &packed, &["v1".into()]).await.unwrap();
    let fired_by_tag = proxy.fired();
    assert_eq!(fired_by_tag, 1, "the proxy dropped the tag PUT's Location");

    let address = proxy.address();
    let digest = packed.digest.clone();
    let manifest = packed.manifest.clone();
    let outcome = tokio::spawn(async move {
        let client = oci_client::Client::new(oci_client::client::ClientConfig {
            protocol: oci_client::client::ClientProtocol::Http,
            ..Default::default()
        });
        let reference = oci_client::Reference::with_digest(address, "raw".into(), digest);
        #[allow(clippy::disallowed_methods)]
        client
            .push_manifest_raw(
                &reference,
                manifest,
                "application/vnd.oci.image.manifest.v1+json"
                    .parse()
                    .unwrap(),
            )
            .await
    })
    .await;
    let error = outcome.expect_err("oci-client returned instead of panicking");
    assert!(error.is_panic(), "{error}");
    assert_eq!(proxy.fired(), fired_by_tag + 1);
}

#[tokio::test]
async fn every_push_survives_a_registry_that_answers_manifest_puts_without_location() {
    let dir = tempfile::tempdir().unwrap();
    let registry = registry(dir.path()).await;
    let proxy = FaultProxy::start(&registry.endpoint().address, Fault::DropManifestLocation)
        .await
        .unwrap();
    let ours = RegistryClient::new(through(&proxy, &registry));
    let direct = RegistryClient::new(registry.endpoint());

    // By digest only (`tags: []`).
    let untagged = artifact("by digest");
    let pushed = ours
        .push("app", &untagged, &[])
        .await
        .expect("push by digest");
    assert_eq!(pushed.digest, untagged.digest);
    assert_stored(&direct, "app", &untagged.digest, &untagged.digest).await;
    assert_eq!(proxy.fired(), 1);

    // By tag, and re-tagging.
    let tagged = artifact("by tag");
    ours.push("app", &tagged, &["v1".into()]).await.unwrap();
    ours.tag("app", "v1", &["latest".into()]).await.unwrap();
    assert_stored(&direct, "app", "latest", &tagged.digest).await;
    assert_eq!(proxy.fired(), 3);

    // An image index: its variants by digest, the index under a tag and
    // (no tags) by digest.
    let entries = vec![
        IndexEntry {
            artifact: artifact("amd64"),
            platform: None,
            annotations: BTreeMap::new(),
        },
        IndexEntry {
            artifact: artifact("arm64"),
            platform: None,
            annotations: BTreeMap::new(),
        },
    ];
    let index = push_index(&ours, "multi", &entries, &BTreeMap::new(), &["v2".into()])
        .await
        .expect("index push");
    for variant in &index.variants {
        assert_stored(&direct, "multi", &variant.digest, &variant.digest).await;
    }
    assert_stored(&direct, "multi", "v2", &index.digest).await;
    let by_digest = push_index(&ours, "multi", &entries, &BTreeMap::new(), &[])
        .await
        .expect("index push by digest");
    assert_stored(&direct, "multi", &by_digest.digest, &by_digest.digest).await;
    assert_eq!(proxy.fired(), 3 + 3 + 3);

    // A referrer (by digest, plus the fallback tag) and a signature (a tag).
    let before = proxy.fired();
    let attached = ours
        .attach(
            "app",
            &tagged.digest,
            &Attachment {
                artifact_type: "application/spdx+json".into(),
                media_type: "application/spdx+json".into(),
                content: br#"{"spdxVersion":"SPDX-2.3"}"#.to_vec(),
                annotations: BTreeMap::new(),
            },
        )
        .await
        .expect("attach");
    assert_stored(&direct, "app", &attached.digest, &attached.digest).await;
    assert!(
        proxy.fired() > before,
        "the referrer's PUT went through the fault"
    );
    let before = proxy.fired();
    let key = SigningKey::generate();
    ours.sign("app", &tagged.digest, &key).await.expect("sign");
    assert!(
        direct
            .verify_signature("app", &tagged.digest, &key.public_key())
            .await
            .unwrap()
            .is_verified()
    );
    assert!(
        proxy.fired() > before,
        "the signature's PUT went through the fault"
    );
}

#[tokio::test]
async fn a_5xx_answer_names_the_registry_the_operation_and_the_status() {
    let dir = tempfile::tempdir().unwrap();
    let registry = registry(dir.path()).await;
    let proxy = FaultProxy::start(
        &registry.endpoint().address,
        Fault::ServerError {
            method: Method::POST,
            path_contains: "/blobs/uploads/".into(),
            status: 503,
        },
    )
    .await
    .unwrap();
    let ours = RegistryClient::new(through(&proxy, &registry));
    let error = ours
        .push("app", &artifact("x"), &["v1".into()])
        .await
        .expect_err("a push whose uploads get 503 cannot succeed");
    let text = error.to_string();
    assert!(matches!(error, OciError::Registry { .. }), "{error:?}");
    assert!(text.contains(&proxy.address()), "{text}");
    assert!(text.contains("uploading a blob in app"), "{text}");
    assert!(text.contains("503"), "{text}");
    assert!(proxy.fired() >= 1);

    // The same registry, read through a proxy failing manifest reads.
    let direct = RegistryClient::new(registry.endpoint());
    let packed = artifact("y");
    direct.push("app", &packed, &["v1".into()]).await.unwrap();
    let proxy = FaultProxy::start(
        &registry.endpoint().address,
        Fault::ServerError {
            method: Method::GET,
            path_contains: "/manifests/".into(),
            status: 500,
        },
    )
    .await
    .unwrap();
    let ours = RegistryClient::new(through(&proxy, &registry));
    let error = ours
        .pull("app", "v1")
        .await
        .expect_err("500 on the manifest");
    let text = error.to_string();
    assert!(text.contains(&proxy.address()), "{text}");
    assert!(text.contains("app:v1"), "{text}");
    assert!(text.contains("500"), "{text}");
    assert!(proxy.fired() >= 1);
}

#[tokio::test]
async fn a_body_cut_short_is_an_error_that_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let registry = registry(dir.path()).await;
    let direct = RegistryClient::new(registry.endpoint());
    let packed = artifact("z");
    direct.push("app", &packed, &["v1".into()]).await.unwrap();
    for path in ["/manifests/", "/blobs/"] {
        let proxy = FaultProxy::start(
            &registry.endpoint().address,
            Fault::TruncatedBody {
                method: Method::GET,
                path_contains: path.into(),
            },
        )
        .await
        .unwrap();
        let ours = RegistryClient::new(through(&proxy, &registry));
        let error = ours
            .pull("app", "v1")
            .await
            .expect_err("a pull whose answer is cut short cannot succeed");
        let text = error.to_string();
        assert!(text.contains(&proxy.address()), "{path}: {text}");
        assert!(text.contains("cut short"), "{path}: {text}");
        assert!(proxy.fired() >= 1, "{path}");
    }
    // Control: the same pull without the fault works.
    assert_eq!(
        direct.pull("app", "v1").await.unwrap().digest,
        packed.digest
    );
}
