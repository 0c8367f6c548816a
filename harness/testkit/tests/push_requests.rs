//! What a push costs, as a real registry (Debian's docker-registry) sees
//! it through a recorder in front of it (`common::request_recorder`): the
//! exact requests of a first push (one `GET /v2/` per client, a HEAD per
//! blob, POST and one PUT per missing blob, the manifest), of a re-push of
//! unchanged content (HEADs and the manifest: nothing packed again, nothing
//! uploaded), anonymous and with basic auth, and through the engine, where
//! a whole run shares one client and the packer's cache.

use std::collections::BTreeMap;
use std::path::Path;

use harness_core::progress::Progress;
use harness_engine::runner::{self, RunOptions, ScenarioStatus, StepStatus};
use harness_oci::{
    ArtifactFiles, DEFAULT_LAYER_MEDIA_TYPE, PackCache, PackedArtifact, RegistryClient,
    RegistryEndpoint, Symlinks, pack_manifest,
};
use harness_testkit::registry_process::{RegistryOptions, RegistryProcess};

mod common;
use common::RegistryOnlyLab;
use common::request_recorder::RequestRecorder;

fn write_app(dir: &Path) {
    std::fs::create_dir_all(dir.join("nested")).unwrap();
    std::fs::write(
        dir.join("configmap.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app}\ndata: {version: \"1\"}\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("nested/service.yaml"),
        "apiVersion: v1\nkind: Service\nmetadata: {name: app}\n",
    )
    .unwrap();
}

/// Reads `dir` and packs it as a push step does, through `cache`.
fn pack_dir(dir: &Path, cache: &PackCache) -> PackedArtifact {
    let files = ArtifactFiles::from_dir(dir, Symlinks::Keep).unwrap();
    let layer = cache.files_layer(&files, DEFAULT_LAYER_MEDIA_TYPE).unwrap();
    pack_manifest(harness_oci::ManifestSpec {
        config: None,
        artifact_type: None,
        layers: vec![layer],
        annotations: BTreeMap::new(),
    })
    .unwrap()
}

fn names(artifact: &PackedArtifact) -> [(&str, &str); 2] {
    [
        (artifact.config.digest.as_str(), "CONFIG"),
        (artifact.layers[0].digest.as_str(), "LAYER"),
    ]
}

fn sorted(mut lines: Vec<String>) -> Vec<String> {
    lines.sort();
    lines
}

fn position(lines: &[String], line: &str) -> usize {
    lines
        .iter()
        .position(|l| l == line)
        .unwrap_or_else(|| panic!("no {line:?} in {lines:#?}"))
}

/// The requests of a first push of one layer and the empty config as
/// `repository:v1`, probe first when `probe`; blobs side by side, so the
/// middle is checked as a set plus each blob's HEAD before its upload.
fn assert_first_push(lines: &[String], repository: &str, probe: bool) {
    let blobs = [
        format!("HEAD /v2/{repository}/blobs/CONFIG"),
        format!("HEAD /v2/{repository}/blobs/LAYER"),
        format!("POST /v2/{repository}/blobs/uploads/"),
        format!("POST /v2/{repository}/blobs/uploads/"),
        format!("PUT /v2/{repository}/blobs/uploads/<upload>?digest=CONFIG"),
        format!("PUT /v2/{repository}/blobs/uploads/<upload>?digest=LAYER"),
    ];
    let mut expected = Vec::new();
    if probe {
        expected.push("GET /v2/".to_string());
    }
    expected.extend(sorted(blobs.to_vec()));
    expected.push(format!("PUT /v2/{repository}/manifests/v1"));
    let start = usize::from(probe);
    let end = lines.len().saturating_sub(1);
    let mut seen: Vec<String> = lines[..start].to_vec();
    seen.extend(sorted(lines[start.min(end)..end].to_vec()));
    seen.extend(lines.last().cloned());
    assert_eq!(seen, expected, "as they came: {lines:#?}");
    for blob in ["CONFIG", "LAYER"] {
        assert!(
            position(lines, &format!("HEAD /v2/{repository}/blobs/{blob}"))
                < position(
                    lines,
                    &format!("PUT /v2/{repository}/blobs/uploads/<upload>?digest={blob}")
                ),
            "{blob} uploaded before it was checked: {lines:#?}"
        );
    }
}

/// The requests of a re-push of unchanged content: a HEAD per blob (in
/// either order) and the manifest.
fn assert_re_push(lines: &[String], repository: &str) {
    assert_eq!(lines.len(), 3, "{lines:#?}");
    assert_eq!(
        sorted(lines[..2].to_vec()),
        vec![
            format!("HEAD /v2/{repository}/blobs/CONFIG"),
            format!("HEAD /v2/{repository}/blobs/LAYER"),
        ],
        "{lines:#?}"
    );
    assert_eq!(lines[2], format!("PUT /v2/{repository}/manifests/v1"));
}

async fn push_twice(endpoint: RegistryEndpoint, recorder: &RequestRecorder) {
    let source = tempfile::tempdir().unwrap();
    write_app(source.path());
    let cache = PackCache::new(1 << 20);
    let client = RegistryClient::new(endpoint);

    let first = pack_dir(source.path(), &cache);
    let outcome = client.push("demo", &first, &["v1".into()]).await.unwrap();
    assert_eq!((outcome.blobs_uploaded, outcome.blobs_skipped), (2, 0));
    assert_first_push(&recorder.take_lines(&names(&first)), "demo", true);
    assert_eq!((cache.stats().misses, cache.stats().hits), (1, 0));

    // The same folder read again: the packer finds it in its cache (no tar,
    // no gzip), the registry has every blob, and the client asks nothing
    // it already knows (no second GET /v2/).
    let again = pack_dir(source.path(), &cache);
    assert_eq!(again.digest, first.digest);
    assert_eq!((cache.stats().misses, cache.stats().hits), (1, 1));
    let outcome = client.push("demo", &again, &["v1".into()]).await.unwrap();
    assert_eq!((outcome.blobs_uploaded, outcome.blobs_skipped), (0, 2));
    assert_re_push(&recorder.take_lines(&names(&again)), "demo");

    // A clone is the same client: still no probe.
    let clone = client.clone();
    clone.push("demo", &again, &["v1".into()]).await.unwrap();
    assert_re_push(&recorder.take_lines(&names(&again)), "demo");

    // Connections are kept: two blobs side by side need two, no more.
    assert!(
        recorder.connections() <= 2,
        "{} connections for three pushes",
        recorder.connections()
    );
    assert_eq!(
        client.resolve("demo", "v1").await.unwrap(),
        first.digest,
        "the registry holds the push"
    );
}

#[tokio::test]
async fn an_anonymous_push_is_one_probe_then_head_post_put_per_blob_and_a_re_push_uploads_nothing()
{
    harness_core::init_crypto();
    let dir = tempfile::tempdir().unwrap();
    let registry = RegistryProcess::start(RegistryOptions::new(dir.path()))
        .await
        .expect("start docker-registry (apt-get install docker-registry)");
    let recorder = RequestRecorder::start(&registry.endpoint().address)
        .await
        .unwrap();
    let endpoint = RegistryEndpoint {
        address: recorder.address(),
        ..registry.endpoint()
    };
    push_twice(endpoint, &recorder).await;
}

#[tokio::test]
async fn with_basic_auth_the_one_probe_learns_the_challenge_and_the_requests_are_the_same() {
    harness_core::init_crypto();
    let dir = tempfile::tempdir().unwrap();
    let registry =
        RegistryProcess::start(RegistryOptions::new(dir.path()).with_auth("alice", "pa55word"))
            .await
            .expect("start docker-registry with htpasswd");
    let recorder = RequestRecorder::start(&registry.endpoint().address)
        .await
        .unwrap();
    let endpoint = RegistryEndpoint {
        address: recorder.address(),
        ..registry.endpoint()
    };
    assert!(endpoint.auth.is_some());
    push_twice(endpoint.clone(), &recorder).await;

    // Without credentials the same path is refused, and says so.
    let anonymous = RegistryClient::new(RegistryEndpoint {
        auth: None,
        ..endpoint
    });
    let source = tempfile::tempdir().unwrap();
    write_app(source.path());
    let error = anonymous
        .push(
            "demo",
            &pack_dir(source.path(), &PackCache::new(0)),
            &["v1".into()],
        )
        .await
        .expect_err("anonymous push to an htpasswd registry");
    assert!(
        matches!(
            error,
            harness_oci::OciError::Unauthorized { status: 401, .. }
        ),
        "{error:?}"
    );
}

const PUSH_TWICE: &str = r#"
steps:
  - push: {source: ./app, repository: app, tags: [v1]}
  - name: the same folder again, unchanged
    push: {source: ./app, repository: app, tags: [v1]}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_shares_one_client_and_unchanged_folders_are_packed_once() {
    harness_core::init_crypto();
    let dir = tempfile::tempdir().unwrap();
    let registry = RegistryProcess::start(RegistryOptions::new(dir.path().join("registry")))
        .await
        .expect("start docker-registry");
    let recorder = RequestRecorder::start(&registry.endpoint().address)
        .await
        .unwrap();
    let endpoint = RegistryEndpoint {
        address: recorder.address(),
        ..registry.endpoint()
    };
    let lab = RegistryOnlyLab::with_endpoint(registry, endpoint);
    write_app(&dir.path().join("app"));
    let scenarios = ["one", "two"]
        .iter()
        .map(|name| {
            let path = dir.path().join(format!("{name}.yaml"));
            std::fs::write(&path, format!("name: {name}\n{PUSH_TWICE}")).unwrap();
            harness_scenario::load_file(&path).expect("the scenario loads")
        })
        .collect();
    let mut opts = RunOptions::new("push-requests", dir.path().join("report"));
    opts.progress = Progress::quiet();
    opts.jobs = 2;
    let before = PackCache::global().stats();
    let summary = runner::run(lab, scenarios, opts).await;

    let mut digests = Vec::new();
    for scenario in &summary.scenarios {
        assert_eq!(scenario.status, ScenarioStatus::Passed, "{scenario:#?}");
        let uploads: Vec<_> = scenario
            .steps
            .iter()
            .map(|step| {
                assert_eq!(step.outcome, StepStatus::Passed);
                let pushed = &step.digests[0];
                digests.push(pushed.digest.clone());
                (pushed.blobs_uploaded, pushed.blobs_skipped)
            })
            .collect();
        assert_eq!(uploads, vec![(Some(2), Some(0)), (Some(0), Some(2))]);
    }
    digests.dedup();
    assert_eq!(digests.len(), 1, "one content, one digest");

    // Four pushes of one folder: packed once, found three times.
    let after = PackCache::global().stats();
    assert_eq!(after.misses - before.misses, 1, "{after:?}");
    assert_eq!(after.hits - before.hits, 3, "{after:?}");

    // One probe for the whole run, then per scenario a first push (2 HEAD,
    // 2 POST, 2 PUT, the manifest) and a re-push (2 HEAD, the manifest).
    let lines: Vec<String> = recorder.requests().into_iter().map(|r| r.line).collect();
    assert_eq!(
        lines.iter().filter(|l| *l == "GET /v2/").count(),
        1,
        "{lines:#?}"
    );
    assert_eq!(lines[0], "GET /v2/");
    assert_eq!(lines.len(), 1 + 2 * (7 + 3), "{lines:#?}");
    let count = |prefix: &str| lines.iter().filter(|l| l.starts_with(prefix)).count();
    assert_eq!(count("HEAD "), 8, "{lines:#?}");
    assert_eq!(count("POST "), 4, "{lines:#?}");
    assert_eq!(count("PUT ") - count("PUT /v2/e2e-"), 0);
    assert_eq!(
        lines.iter().filter(|l| l.contains("/manifests/v1")).count(),
        4
    );
}

#[tokio::test]
async fn a_blob_over_the_monolithic_size_goes_up_in_chunks_and_comes_back_whole() {
    harness_core::init_crypto();
    let dir = tempfile::tempdir().unwrap();
    let registry = RegistryProcess::start(RegistryOptions::new(dir.path()))
        .await
        .expect("start docker-registry");
    let recorder = RequestRecorder::start(&registry.endpoint().address)
        .await
        .unwrap();
    let client = RegistryClient::new(RegistryEndpoint {
        address: recorder.address(),
        ..registry.endpoint()
    });
    // Two whole chunks and one byte: three PATCHes.
    let size = 2 * harness_oci::CHUNK + 1;
    assert!(size > harness_oci::MONOLITHIC_MAX);
    let bytes: Vec<u8> = (0..size as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let artifact = pack_manifest(harness_oci::ManifestSpec {
        config: None,
        artifact_type: None,
        layers: vec![harness_oci::LayerSpec {
            blob: harness_oci::Blob::new("application/octet-stream", bytes),
            annotations: BTreeMap::new(),
        }],
        annotations: BTreeMap::new(),
    })
    .unwrap();
    client.push("big", &artifact, &["v1".into()]).await.unwrap();
    let lines = recorder.take_lines(&names(&artifact));
    let layer: Vec<&String> = lines
        .iter()
        .filter(|l| !l.contains("CONFIG") && l.contains("/blobs/"))
        .collect();
    // The config's POST is among the POSTs; the layer's requests are the
    // HEAD, the PATCHes and the closing PUT.
    assert_eq!(
        layer
            .iter()
            .filter(|l| !l.starts_with("POST"))
            .map(|l| l.as_str())
            .collect::<Vec<_>>(),
        vec![
            "HEAD /v2/big/blobs/LAYER",
            "PATCH /v2/big/blobs/uploads/<upload>",
            "PATCH /v2/big/blobs/uploads/<upload>",
            "PATCH /v2/big/blobs/uploads/<upload>",
            "PUT /v2/big/blobs/uploads/<upload>?digest=LAYER",
        ],
        "{lines:#?}"
    );
    let pulled = client.pull("big", "v1").await.unwrap();
    assert_eq!(pulled.layers[0].1, artifact.layers[0].bytes);
}

#[tokio::test]
async fn an_index_uploads_the_shared_config_once_and_its_variants_before_itself() {
    harness_core::init_crypto();
    let dir = tempfile::tempdir().unwrap();
    let registry = RegistryProcess::start(RegistryOptions::new(dir.path()))
        .await
        .expect("start docker-registry");
    let recorder = RequestRecorder::start(&registry.endpoint().address)
        .await
        .unwrap();
    let client = RegistryClient::new(RegistryEndpoint {
        address: recorder.address(),
        ..registry.endpoint()
    });
    let cache = PackCache::new(1 << 20);
    let variant = |target: &str| {
        let files: ArtifactFiles = [("cm.yaml", format!("kind: ConfigMap\ndata: {target}\n"))]
            .into_iter()
            .collect();
        harness_oci::index::IndexEntry {
            artifact: pack_manifest(harness_oci::ManifestSpec {
                config: None,
                artifact_type: None,
                layers: vec![cache.files_layer(&files, DEFAULT_LAYER_MEDIA_TYPE).unwrap()],
                annotations: BTreeMap::new(),
            })
            .unwrap(),
            platform: None,
            annotations: BTreeMap::from([("target".to_string(), target.to_string())]),
        }
    };
    let entries = vec![variant("dev"), variant("prod")];
    let pushed = harness_oci::index::push_index(
        &client,
        "multi",
        &entries,
        &BTreeMap::new(),
        &["v1".into()],
    )
    .await
    .unwrap();
    let counts: Vec<_> = pushed
        .variants
        .iter()
        .map(|v| (v.blobs_uploaded, v.blobs_skipped))
        .collect();
    assert_eq!(counts, vec![(2, 0), (1, 1)], "the config counts once");

    let (dev, prod) = (&entries[0].artifact, &entries[1].artifact);
    let lines = recorder.take_lines(&[
        (dev.config.digest.as_str(), "CONFIG"),
        (dev.layers[0].digest.as_str(), "DEV"),
        (prod.layers[0].digest.as_str(), "PROD"),
        (dev.digest.as_str(), "DEV-MANIFEST"),
        (prod.digest.as_str(), "PROD-MANIFEST"),
    ]);
    let mut expected = vec!["GET /v2/".to_string()];
    let mut blobs = Vec::new();
    for blob in ["CONFIG", "DEV", "PROD"] {
        blobs.push(format!("HEAD /v2/multi/blobs/{blob}"));
        blobs.push("POST /v2/multi/blobs/uploads/".to_string());
        blobs.push(format!(
            "PUT /v2/multi/blobs/uploads/<upload>?digest={blob}"
        ));
    }
    expected.extend(sorted(blobs));
    expected.extend(sorted(vec![
        "PUT /v2/multi/manifests/DEV-MANIFEST".to_string(),
        "PUT /v2/multi/manifests/PROD-MANIFEST".to_string(),
    ]));
    expected.push("PUT /v2/multi/manifests/v1".to_string());
    let mut seen = vec![lines[0].clone()];
    seen.extend(sorted(lines[1..10].to_vec()));
    seen.extend(sorted(lines[10..12].to_vec()));
    seen.extend(lines[12..].iter().cloned());
    assert_eq!(seen, expected, "as they came: {lines:#?}");
}
