//! The OCI layer against a real registry process (Debian's docker-registry,
//! started per test on a free loopback port): packing is reproducible,
//! pushes skip blobs the registry has, re-tagging uploads nothing, and each
//! failure comes back as the typed error that says what to do.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::Path;

use harness_labs::{BasicAuth, RegistryEndpoint};
use harness_oci::{
    ARTIFACT_TYPE, ArtifactFiles, DEFAULT_LAYER_MEDIA_TYPE, EMPTY_CONFIG_DIGEST,
    EMPTY_CONFIG_MEDIA_TYPE, MANIFEST_MEDIA_TYPE, OciError, RegistryClient, Symlinks, pack,
};
use harness_testkit::registry_process::{RegistryOptions, RegistryProcess};

/// Pinned digest of [`golden_files`] packed with the default media type and
/// no annotations. If packing changes (tar headers, gzip, manifest JSON),
/// this changes and every digest users pinned changes with it: update it
/// only on purpose.
const GOLDEN_DIGEST: &str =
    "sha256:1de18c5bca4f523e7cf7924ee6cb4f31babeb28d47c359513f3b82b6c1faf350";

fn golden_files() -> ArtifactFiles {
    [
        (
            "configmap.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: demo-config\ndata:\n  version: \"1.0.0\"\n",
        ),
        ("nested/service.yaml", "apiVersion: v1\nkind: Service\nmetadata:\n  name: demo\n"),
    ]
    .into_iter()
    .collect()
}

fn files(version: &str) -> ArtifactFiles {
    [(
        "configmap.yaml",
        format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: demo\ndata:\n  version: {version:?}\n"),
    )]
    .into_iter()
    .collect()
}

fn packed(files: &ArtifactFiles) -> harness_oci::PackedArtifact {
    pack(files, DEFAULT_LAYER_MEDIA_TYPE, &BTreeMap::new()).expect("pack")
}

fn tags(list: &[&str]) -> Vec<String> {
    list.iter().map(|t| t.to_string()).collect()
}

async fn registry(dir: &Path) -> RegistryProcess {
    harness_core::init_crypto();
    RegistryProcess::start(RegistryOptions::new(dir))
        .await
        .expect("start docker-registry (apt-get install docker-registry)")
}

/// One entry of a layer, as a tar reader sees it.
struct LayerEntry {
    path: String,
    kind: tar::EntryType,
    mode: u32,
    mtime: u64,
    uid: u64,
    gid: u64,
    user: String,
    group: String,
    content: Vec<u8>,
}

fn layer_entries(layer: &[u8]) -> Vec<LayerEntry> {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(layer));
    let mut out = Vec::new();
    for entry in archive.entries().expect("tar entries") {
        let mut entry = entry.expect("tar entry");
        let header = entry.header().clone();
        let mut content = Vec::new();
        entry.read_to_end(&mut content).expect("entry content");
        let text = |field: std::io::Result<Option<&str>>| {
            field.expect("header field").unwrap_or("").to_string()
        };
        out.push(LayerEntry {
            path: entry.path().expect("path").to_string_lossy().into_owned(),
            kind: header.entry_type(),
            mode: header.mode().expect("mode"),
            mtime: header.mtime().expect("mtime"),
            uid: header.uid().expect("uid"),
            gid: header.gid().expect("gid"),
            user: text(header.username().map_err(std::io::Error::other)),
            group: text(header.groupname().map_err(std::io::Error::other)),
            content,
        });
    }
    out
}

#[test]
fn packing_is_reproducible_and_pinned() {
    let first = packed(&golden_files());
    let again = packed(&golden_files());
    assert_eq!(first.digest, again.digest);
    assert_eq!(first.layers, again.layers);
    assert_eq!(first.manifest, again.manifest);

    // Same files given in the opposite order.
    let reversed: ArtifactFiles = golden_files().files.into_iter().rev().collect();
    assert_eq!(packed(&reversed).digest, first.digest);

    // A one-byte change gives another digest.
    let mut changed = golden_files();
    changed.insert("configmap.yaml", "changed");
    assert_ne!(packed(&changed).digest, first.digest);

    assert_eq!(
        first.digest,
        GOLDEN_DIGEST,
        "packing changed: manifest is {}",
        String::from_utf8_lossy(&first.manifest)
    );
}

#[test]
fn manifest_is_oci_1_1_with_the_empty_config_and_caller_annotations() {
    let annotations = BTreeMap::from([(
        "org.opencontainers.image.version".to_string(),
        "1.0.0".to_string(),
    )]);
    let artifact = pack(&golden_files(), DEFAULT_LAYER_MEDIA_TYPE, &annotations).expect("pack");
    let manifest: serde_json::Value =
        serde_json::from_slice(&artifact.manifest).expect("manifest JSON");
    assert_eq!(manifest["schemaVersion"], 2);
    assert_eq!(manifest["mediaType"], MANIFEST_MEDIA_TYPE);
    assert_eq!(manifest["artifactType"], ARTIFACT_TYPE);
    assert_eq!(manifest["config"]["mediaType"], EMPTY_CONFIG_MEDIA_TYPE);
    assert_eq!(manifest["config"]["digest"], EMPTY_CONFIG_DIGEST);
    assert_eq!(manifest["config"]["size"], 2);
    assert_eq!(artifact.config.bytes, b"{}");
    let layers = manifest["layers"].as_array().expect("layers");
    assert_eq!(layers.len(), 1);
    assert_eq!(layers[0]["mediaType"], DEFAULT_LAYER_MEDIA_TYPE);
    assert_eq!(layers[0]["digest"], artifact.layers[0].digest.as_str());
    assert_eq!(layers[0]["size"], artifact.layers[0].bytes.len());
    // As oras sets them, so that `oras pull` unpacks the files into `.`.
    let layer_annotations = &layers[0]["annotations"];
    assert_eq!(layer_annotations["org.opencontainers.image.title"], ".");
    assert_eq!(layer_annotations["io.deis.oras.content.unpack"], "true");
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(artifact.layers[0].bytes.as_slice())
        .read_to_end(&mut tar)
        .expect("gunzip");
    assert_eq!(
        layer_annotations["io.deis.oras.content.digest"],
        harness_oci::sha256_digest(&tar)
    );
    assert_eq!(
        manifest["annotations"]["org.opencontainers.image.version"],
        "1.0.0"
    );
}

#[test]
fn layer_lists_files_at_the_root_with_fixed_metadata() {
    let artifact = packed(&golden_files());
    let entries = layer_entries(&artifact.layers[0].bytes);
    let names: Vec<&str> = entries.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(names, ["configmap.yaml", "nested/", "nested/service.yaml"]);
    for e in &entries {
        let path = &e.path;
        assert_eq!((e.mtime, e.uid, e.gid), (0, 0, 0), "{path}");
        assert_eq!((e.user.as_str(), e.group.as_str()), ("", ""), "{path}");
        if e.kind.is_dir() {
            assert_eq!(e.mode, 0o755, "{path}");
        } else {
            assert!(e.kind.is_file(), "{path}");
            assert_eq!(e.mode, 0o644, "{path}");
            assert_eq!(
                e.content.as_slice(),
                golden_files().files[path.as_str()].as_slice(),
                "{path}"
            );
        }
    }
}

#[test]
fn media_type_override_keeps_gzip_bytes() {
    let tar_type = "application/vnd.oci.image.layer.v1.tar";
    let artifact = pack(&golden_files(), tar_type, &BTreeMap::new()).expect("pack");
    assert_eq!(&artifact.layers[0].bytes[..2], &[0x1f, 0x8b]);
    assert_eq!(
        artifact.layers[0].bytes,
        packed(&golden_files()).layers[0].bytes
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&artifact.manifest).expect("manifest JSON");
    assert_eq!(manifest["layers"][0]["mediaType"], tar_type);
}

#[test]
fn pack_of_a_directory_equals_pack_of_the_same_inline_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("configmap.yaml"),
        &golden_files().files["configmap.yaml"],
    )
    .expect("write");
    std::fs::create_dir(dir.path().join("nested")).expect("mkdir");
    std::fs::write(
        dir.path().join("nested/service.yaml"),
        &golden_files().files["nested/service.yaml"],
    )
    .expect("write");
    // An empty directory adds nothing: only files make the artifact.
    std::fs::create_dir(dir.path().join("empty")).expect("mkdir");
    let from_dir = ArtifactFiles::from_dir(dir.path(), Symlinks::Keep).expect("from_dir");
    assert_eq!(from_dir, golden_files());
    assert_eq!(packed(&from_dir).digest, packed(&golden_files()).digest);
}

#[test]
fn following_links_packs_their_content_and_rejects_links_leaving_the_directory() {
    let outside = tempfile::tempdir().expect("tempdir");
    std::fs::write(outside.path().join("secret.yaml"), "x").expect("write");
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("a.yaml"), "a").expect("write");
    // A link inside the directory is packed as the file it points to.
    std::os::unix::fs::symlink("a.yaml", dir.path().join("b.yaml")).expect("symlink");
    let files =
        ArtifactFiles::from_dir(dir.path(), Symlinks::Follow).expect("inside links are fine");
    assert_eq!(
        files.files.get("b.yaml").map(Vec::as_slice),
        Some(b"a".as_slice())
    );
    assert!(files.symlinks.is_empty());

    std::os::unix::fs::symlink(
        outside.path().join("secret.yaml"),
        dir.path().join("leak.yaml"),
    )
    .expect("symlink");
    let err = ArtifactFiles::from_dir(dir.path(), Symlinks::Follow).expect_err("outside link");
    assert!(matches!(err, OciError::SymlinkOutsideRoot { .. }), "{err}");
    assert!(err.to_string().contains("leak.yaml"), "{err}");

    let missing = dir.path().join("does-not-exist");
    let err = ArtifactFiles::from_dir(&missing, Symlinks::Keep).expect_err("missing dir");
    assert!(matches!(err, OciError::Io { .. }), "{err}");
    assert!(err.to_string().contains("does-not-exist"), "{err}");
}

/// As `oras push` packs a directory: each symlink a symlink entry with its
/// target as written, wherever it points (inside, outside, absolute,
/// dangling, to a directory); nothing is read through it.
#[test]
fn keeping_links_packs_symlink_entries_with_their_targets_as_written() {
    let outside = tempfile::tempdir().expect("tempdir");
    std::fs::write(outside.path().join("secret.yaml"), "secret").expect("write");
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("sub")).expect("mkdir");
    std::fs::write(dir.path().join("sub/a.yaml"), "a").expect("write");
    let link = |target: &str, name: &str| {
        std::os::unix::fs::symlink(target, dir.path().join(name)).expect("symlink")
    };
    link("sub/a.yaml", "inside.yaml");
    link("sub", "subdir");
    link("../nowhere/missing.yaml", "dangling.yaml");
    let absolute = outside.path().join("secret.yaml");
    link(absolute.to_str().unwrap(), "leak.yaml");

    let files = ArtifactFiles::from_dir(dir.path(), Symlinks::Keep).expect("links are kept");
    assert_eq!(files.files.keys().collect::<Vec<_>>(), ["sub/a.yaml"]);
    assert_eq!(files.symlinks["inside.yaml"], "sub/a.yaml");
    assert_eq!(files.symlinks["subdir"], "sub");
    assert_eq!(files.symlinks["dangling.yaml"], "../nowhere/missing.yaml");
    assert_eq!(files.symlinks["leak.yaml"], absolute.to_str().unwrap());

    let tar = harness_oci::tar_files(&files).expect("tar");
    let mut archive = tar::Archive::new(tar.as_slice());
    let mut links = Vec::new();
    for entry in archive.entries().expect("entries") {
        let mut entry = entry.expect("entry");
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        let mut content = String::new();
        std::io::Read::read_to_string(&mut entry, &mut content).unwrap();
        assert!(
            !content.contains("secret"),
            "{path} carries the target's bytes"
        );
        if entry.header().entry_type() == tar::EntryType::Symlink {
            assert_eq!(entry.header().mode().unwrap(), 0o777, "{path}");
            links.push((
                path,
                entry
                    .link_name()
                    .unwrap()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned(),
            ));
        }
    }
    links.sort();
    assert_eq!(
        links,
        [
            (
                "dangling.yaml".to_string(),
                "../nowhere/missing.yaml".to_string()
            ),
            ("inside.yaml".into(), "sub/a.yaml".into()),
            ("leak.yaml".into(), absolute.to_str().unwrap().into()),
            ("subdir".into(), "sub".into()),
        ]
    );

    // A path cannot be a file and a link, nor a link and a directory.
    let mut both = files.clone();
    both.symlinks.insert("sub/a.yaml".into(), "x".into());
    assert!(matches!(
        harness_oci::tar_files(&both),
        Err(OciError::InvalidPath { .. })
    ));
    let mut parent = ArtifactFiles::default();
    parent.insert("d", "a file first");
    parent.insert_symlink("d", "elsewhere");
    assert!(
        parent.files.is_empty(),
        "a link replaces the file at its path"
    );
    parent.insert("d/x.yaml", "x");
    let err = harness_oci::tar_files(&parent).expect_err("link as a directory");
    assert!(err.to_string().contains("\"d\""), "{err}");
}

/// `layers:`: every layer in order with its own media type and exactly its
/// annotations, a raw config, the artifactType rule, each blob uploaded once.
#[test]
fn a_manifest_of_any_layers_and_config_is_packed_as_given() {
    use harness_oci::{Blob, LayerSpec, ManifestSpec, pack_manifest};
    let content = harness_oci::files_layer(&golden_files(), DEFAULT_LAYER_MEDIA_TYPE).unwrap();
    let raw = Blob::new("application/vnd.example.note", b"a note".to_vec());
    let two_layers = pack_manifest(ManifestSpec {
        config: Some(Blob::new("application/vnd.oci.empty.v1+json", Vec::new())),
        artifact_type: None,
        layers: vec![
            content.clone(),
            LayerSpec {
                blob: raw.clone(),
                annotations: BTreeMap::from([("k".to_string(), "v".to_string())]),
            },
        ],
        annotations: BTreeMap::new(),
    })
    .unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(&two_layers.manifest).unwrap();
    assert!(
        manifest.get("artifactType").is_none(),
        "a given config leaves artifactType out: {manifest}"
    );
    assert_eq!(manifest["config"]["size"], 0);
    assert_eq!(
        manifest["config"]["digest"],
        harness_oci::sha256_digest(b"")
    );
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 2);
    assert_eq!(layers[0]["digest"], content.blob.digest.as_str());
    assert_eq!(layers[1]["mediaType"], "application/vnd.example.note");
    assert_eq!(layers[1]["digest"], raw.digest.as_str());
    assert_eq!(layers[1]["annotations"], serde_json::json!({"k": "v"}));
    assert_eq!(two_layers.layers[1].bytes, b"a note");

    let typed = pack_manifest(ManifestSpec {
        config: None,
        artifact_type: Some("application/vnd.example.type".into()),
        layers: vec![content.clone()],
        annotations: BTreeMap::new(),
    })
    .unwrap();
    let typed: serde_json::Value = serde_json::from_slice(&typed.manifest).unwrap();
    assert_eq!(typed["artifactType"], "application/vnd.example.type");
    // The one-layer packing is this with oras's defaults: same digest.
    let plain = pack_manifest(ManifestSpec {
        config: None,
        artifact_type: None,
        layers: vec![content],
        annotations: BTreeMap::new(),
    })
    .unwrap();
    assert_eq!(plain.digest, packed(&golden_files()).digest);
    assert!(
        pack_manifest(ManifestSpec {
            config: None,
            artifact_type: None,
            layers: vec![],
            annotations: BTreeMap::new()
        })
        .is_err()
    );
}

#[tokio::test]
async fn push_then_pull_gives_back_the_same_bytes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let registry = registry(dir.path()).await;
    let client = RegistryClient::new(registry.endpoint());
    let artifact = packed(&files("1.0.0"));

    let outcome = client
        .push("demo-app", &artifact, &tags(&["v1.0.0"]))
        .await
        .expect("push");
    assert_eq!(outcome.digest, artifact.digest);
    assert_eq!((outcome.blobs_uploaded, outcome.blobs_skipped), (2, 0));

    for reference in ["v1.0.0", artifact.digest.as_str()] {
        let pulled = client.pull("demo-app", reference).await.expect("pull");
        assert_eq!(pulled.digest, artifact.digest);
        assert_eq!(pulled.manifest, artifact.manifest);
        assert_eq!(
            pulled.layers,
            vec![(
                DEFAULT_LAYER_MEDIA_TYPE.to_string(),
                artifact.layers[0].bytes.clone()
            )]
        );
    }
    assert!(registry.is_running());
    let pid = registry.pid().expect("pid while running");
    registry.stop().await.expect("stop");
    // The process is gone (reaped), not left behind.
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "registry {pid} still exists after stop"
    );
}

#[tokio::test]
async fn second_push_skips_every_blob_and_digest_only_push_works() {
    let dir = tempfile::tempdir().expect("tempdir");
    let registry = registry(dir.path()).await;
    let client = RegistryClient::new(registry.endpoint());
    let v1 = packed(&files("1.0.0"));

    let first = client
        .push("demo", &v1, &tags(&["v1"]))
        .await
        .expect("first push");
    assert_eq!((first.blobs_uploaded, first.blobs_skipped), (2, 0));
    let second = client
        .push("demo", &v1, &tags(&["v1"]))
        .await
        .expect("second push");
    assert_eq!((second.blobs_uploaded, second.blobs_skipped), (0, 2));

    // New content: the shared empty config is skipped, the new layer uploaded.
    let v2 = packed(&files("2.0.0"));
    let third = client.push("demo", &v2, &[]).await.expect("push by digest");
    assert_eq!((third.blobs_uploaded, third.blobs_skipped), (1, 1));
    assert_eq!(
        client
            .resolve("demo", &v2.digest)
            .await
            .expect("resolve digest"),
        v2.digest
    );
    assert_eq!(client.list_tags("demo").await.expect("tags"), tags(&["v1"]));
}

#[tokio::test]
async fn retag_uploads_nothing_and_both_tags_resolve_to_one_digest() {
    let dir = tempfile::tempdir().expect("tempdir");
    let registry = registry(dir.path()).await;
    let client = RegistryClient::new(registry.endpoint());
    let artifact = packed(&files("1.0.0"));
    client
        .push("demo", &artifact, &tags(&["v1.0.0", "latest"]))
        .await
        .expect("push");

    let uploads_before = count_in_log(registry.log_path(), "/blobs/uploads/");
    assert!(
        uploads_before > 0,
        "the access log should show the push's uploads"
    );
    let digest = client
        .tag("demo", "v1.0.0", &tags(&["stable"]))
        .await
        .expect("tag from tag");
    assert_eq!(digest, artifact.digest);
    let digest = client
        .tag("demo", &artifact.digest, &tags(&["prod"]))
        .await
        .expect("tag from digest");
    assert_eq!(digest, artifact.digest);
    assert_eq!(
        count_in_log(registry.log_path(), "/blobs/uploads/"),
        uploads_before,
        "tagging must not upload"
    );

    for tag in ["v1.0.0", "stable", "prod"] {
        assert_eq!(
            client.resolve("demo", tag).await.expect("resolve"),
            artifact.digest,
            "{tag}"
        );
    }
    let mut listed = client.list_tags("demo").await.expect("list tags");
    listed.sort();
    assert_eq!(listed, tags(&["latest", "prod", "stable", "v1.0.0"]));

    // Moving a tag: `latest` follows the new push, `stable` stays.
    let v2 = packed(&files("2.0.0"));
    client
        .push("demo", &v2, &tags(&["latest"]))
        .await
        .expect("push v2");
    assert_eq!(
        client.resolve("demo", "latest").await.expect("resolve"),
        v2.digest
    );
    assert_eq!(
        client.resolve("demo", "stable").await.expect("resolve"),
        artifact.digest
    );
}

fn count_in_log(path: &Path, needle: &str) -> usize {
    std::fs::read_to_string(path)
        .expect("registry log")
        .lines()
        .filter(|l| l.contains(needle))
        .count()
}

#[tokio::test]
async fn missing_tag_and_bad_references_give_typed_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let registry = registry(dir.path()).await;
    let client = RegistryClient::new(registry.endpoint());
    client
        .push("demo", &packed(&files("1")), &tags(&["v1"]))
        .await
        .expect("push");

    let err = client.resolve("demo", "v9").await.expect_err("missing tag");
    assert!(matches!(err, OciError::ManifestNotFound { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("demo:v9"), "{message}");
    let err = client.pull("demo", "v9").await.expect_err("missing tag");
    assert!(matches!(err, OciError::ManifestNotFound { .. }), "{err:?}");
    let err = client
        .tag("demo", "v9", &tags(&["x"]))
        .await
        .expect_err("missing tag");
    assert!(matches!(err, OciError::ManifestNotFound { .. }), "{err:?}");
    let err = client
        .list_tags("never-pushed")
        .await
        .expect_err("missing repository");
    assert!(
        matches!(err, OciError::RepositoryNotFound { .. }),
        "{err:?}"
    );

    let bare_hex = "0123456789abcdef".repeat(4);
    let err = client
        .resolve("demo", &bare_hex)
        .await
        .expect_err("digest without sha256:");
    assert!(matches!(err, OciError::InvalidReference { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&format!("sha256:{bare_hex}")),
        "{err}"
    );
    let err = client
        .resolve("demo", "sha256:1234")
        .await
        .expect_err("short digest");
    assert!(matches!(err, OciError::InvalidReference { .. }), "{err:?}");
    let err = client
        .push("Demo", &packed(&files("1")), &[])
        .await
        .expect_err("uppercase repository");
    assert!(matches!(err, OciError::InvalidRepository { .. }), "{err:?}");
}

#[tokio::test]
async fn closed_port_is_reported_as_unreachable() {
    harness_core::init_crypto();
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let address = format!("127.0.0.1:{port}");
    let client = RegistryClient::new(RegistryEndpoint {
        address: address.clone(),
        plain_http: true,
        insecure_tls: false,
        ca_pem: None,
        auth: None,
    });
    let err = client
        .push("demo", &packed(&files("1")), &tags(&["v1"]))
        .await
        .expect_err("nothing listens");
    assert!(matches!(err, OciError::Unreachable { .. }), "{err:?}");
    assert!(err.to_string().contains(&address), "{err}");
    let err = client
        .resolve("demo", "v1")
        .await
        .expect_err("nothing listens");
    assert!(matches!(err, OciError::Unreachable { .. }), "{err:?}");
}

#[tokio::test]
async fn htpasswd_registry_refuses_wrong_credentials_and_accepts_right_ones() {
    let dir = tempfile::tempdir().expect("tempdir");
    harness_core::init_crypto();
    let registry = RegistryProcess::start(
        RegistryOptions::new(dir.path()).with_auth("alice", "right-password"),
    )
    .await
    .expect("start registry with htpasswd");
    let artifact = packed(&files("1"));
    let with = |auth: Option<BasicAuth>| {
        RegistryClient::new(RegistryEndpoint {
            auth,
            ..registry.endpoint()
        })
    };

    let err = with(None)
        .push("demo", &artifact, &tags(&["v1"]))
        .await
        .expect_err("anonymous");
    assert!(
        matches!(err, OciError::Unauthorized { status: 401, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("anonymous"), "{err}");

    let wrong = BasicAuth {
        username: "alice".into(),
        password: "wrong-password".into(),
    };
    let err = with(Some(wrong))
        .push("demo", &artifact, &tags(&["v1"]))
        .await
        .expect_err("wrong password");
    assert!(matches!(err, OciError::Unauthorized { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("alice") && !message.contains("wrong-password"),
        "{message}"
    );

    let right = with(registry.endpoint().auth);
    let outcome = right
        .push("demo", &artifact, &tags(&["v1"]))
        .await
        .expect("right credentials");
    assert_eq!(outcome.blobs_uploaded, 2);
    assert_eq!(
        right.resolve("demo", "v1").await.expect("resolve"),
        artifact.digest
    );

    let err = with(None)
        .resolve("demo", "v1")
        .await
        .expect_err("anonymous read");
    assert!(matches!(err, OciError::Unauthorized { .. }), "{err:?}");
}

#[tokio::test]
async fn endpoint_prefix_is_prepended_to_every_repository() {
    let dir = tempfile::tempdir().expect("tempdir");
    let registry = registry(dir.path()).await;
    let prefixed = RegistryClient::new(RegistryEndpoint {
        address: format!("{}/team/e2e", registry.address()),
        ..registry.endpoint()
    });
    let artifact = packed(&files("1"));
    prefixed
        .push("demo", &artifact, &tags(&["v1"]))
        .await
        .expect("push under prefix");
    let plain = RegistryClient::new(registry.endpoint());
    assert_eq!(
        plain
            .resolve("team/e2e/demo", "v1")
            .await
            .expect("resolve full name"),
        artifact.digest
    );
    assert_eq!(
        prefixed.list_tags("demo").await.expect("tags"),
        tags(&["v1"])
    );
}

/// Interop: another client (skopeo) reads back exactly the manifest pushed.
#[tokio::test]
async fn skopeo_reads_the_pushed_manifest() {
    // `cargo xtask test` installs skopeo; a missing one fails rather than
    // passing a check that did not run.
    assert!(
        std::process::Command::new("skopeo")
            .arg("--version")
            .output()
            .is_ok(),
        "skopeo is not installed: run `cargo xtask test` (it installs it) or `apt-get install skopeo`"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let registry = registry(dir.path()).await;
    let client = RegistryClient::new(registry.endpoint());
    let artifact = packed(&golden_files());
    client
        .push("interop", &artifact, &tags(&["v1"]))
        .await
        .expect("push");

    let output = tokio::process::Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", "--raw"])
        .arg(format!("docker://{}/interop:v1", registry.address()))
        .output()
        .await
        .expect("run skopeo");
    assert!(
        output.status.success(),
        "skopeo failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(output.stdout, artifact.manifest);
}

#[tokio::test]
async fn https_against_a_plain_http_registry_says_so() {
    let dir = tempfile::tempdir().expect("tempdir");
    let registry = registry(dir.path()).await;
    let client = RegistryClient::new(RegistryEndpoint {
        plain_http: false,
        ..registry.endpoint()
    });
    let err = client
        .resolve("demo", "v1")
        .await
        .expect_err("TLS to a plain HTTP port");
    assert!(matches!(err, OciError::Unreachable { .. }), "{err:?}");
    assert!(err.to_string().contains("plain_http"), "{err}");
}

#[tokio::test]
async fn registry_start_failures_name_the_cause() {
    let dir = tempfile::tempdir().expect("tempdir");
    let err = RegistryProcess::start(
        RegistryOptions::new(dir.path()).with_binary(dir.path().join("no-registry")),
    )
    .await
    .expect_err("missing binary");
    assert!(err.to_string().contains("no-registry"), "{err}");

    // A port somebody else holds: the registry exits, and its log says why.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let err = RegistryProcess::start(RegistryOptions::new(dir.path()).with_port(port))
        .await
        .expect_err("port in use");
    let message = err.to_string();
    assert!(message.contains("address already in use"), "{message}");
}

#[tokio::test]
async fn https_registry_with_a_self_signed_certificate_needs_insecure_tls() {
    let dir = tempfile::tempdir().expect("tempdir");
    let certified =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).expect("certificate");
    let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    std::fs::write(&cert, certified.cert.pem()).expect("write cert");
    std::fs::write(&key, certified.signing_key.serialize_pem()).expect("write key");
    harness_core::init_crypto();
    let registry = RegistryProcess::start(
        RegistryOptions::new(dir.path().join("state")).with_tls(&cert, &key),
    )
    .await
    .expect("start registry with TLS");
    let endpoint = registry.endpoint();
    assert!(!endpoint.plain_http && endpoint.insecure_tls);

    let artifact = packed(&files("1"));
    let insecure = RegistryClient::new(endpoint.clone());
    insecure
        .push("demo", &artifact, &tags(&["v1"]))
        .await
        .expect("push over HTTPS, unverified");
    assert_eq!(
        insecure.resolve("demo", "v1").await.expect("resolve"),
        artifact.digest
    );

    let verifying = RegistryClient::new(RegistryEndpoint {
        insecure_tls: false,
        ..endpoint
    });
    let err = verifying
        .resolve("demo", "v1")
        .await
        .expect_err("untrusted certificate");
    assert!(matches!(err, OciError::Unreachable { .. }), "{err:?}");
    assert!(err.to_string().contains("insecure_tls"), "{err}");
}

/// Interop: `oras pull` unpacks the artifact into the same files (the layer
/// annotations are oras's). oras comes from the tool cache (built from its
/// Go module once; `cargo xtask test` provisions it beforehand).
#[tokio::test]
async fn oras_pull_unpacks_the_same_files() {
    harness_core::init_crypto();
    let opts = harness_tools::ProvisionOptions {
        tools: [harness_tools::Tool::Oras].into_iter().collect(),
        ..Default::default()
    };
    let toolbox = harness_tools::provision(&opts, &harness_core::progress::Progress::new())
        .await
        .expect("provision oras (run `cargo xtask tools --with-oras`)");
    let oras = toolbox.path(harness_tools::Tool::Oras).to_path_buf();
    let dir = tempfile::tempdir().expect("tempdir");
    let registry = registry(&dir.path().join("registry")).await;
    let client = RegistryClient::new(registry.endpoint());
    // With a symlink entry too: oras unpacks it as the link it packs.
    let mut files = golden_files();
    files.insert_symlink("link.yaml", "nested/service.yaml");
    client
        .push("interop", &packed(&files), &tags(&["v1"]))
        .await
        .expect("push");

    let out = dir.path().join("pulled");
    std::fs::create_dir(&out).expect("mkdir");
    let output = tokio::process::Command::new(&oras)
        .args(["pull", "--plain-http"])
        .arg(format!("{}/interop:v1", registry.address()))
        .current_dir(&out)
        .output()
        .await
        .expect("run oras");
    assert!(
        output.status.success(),
        "oras pull failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        ArtifactFiles::from_dir(&out, Symlinks::Keep).expect("read pulled files"),
        files
    );
}

#[tokio::test]
async fn untagged_repository_has_no_tag_list() {
    let dir = tempfile::tempdir().expect("tempdir");
    let registry = registry(dir.path()).await;
    let client = RegistryClient::new(registry.endpoint());
    let artifact = packed(&files("1"));
    client
        .push("untagged", &artifact, &[])
        .await
        .expect("push by digest");
    assert_eq!(
        client
            .resolve("untagged", &artifact.digest)
            .await
            .expect("resolve"),
        artifact.digest
    );
    // Distribution 2.8 answers NAME_UNKNOWN for a repository without tags.
    let err = client.list_tags("untagged").await.expect_err("no tags");
    assert!(
        matches!(err, OciError::RepositoryNotFound { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("untagged manifests"), "{err}");
}

/// PDEATHSIG: when the owner is killed outright (no drop runs), the
/// registry goes with it. The owner is this same test run again in a child
/// process with `HARNESS_REGISTRY_OWNER_DIR` set: there it starts a
/// registry, reports its pid and waits to be killed (so no ignored helper
/// test shows up as "skipped" in the suite's counts).
#[tokio::test]
async fn registry_dies_with_its_owner() {
    use tokio::io::AsyncBufReadExt as _;
    if let Ok(dir) = std::env::var("HARNESS_REGISTRY_OWNER_DIR") {
        let registry = registry(Path::new(&dir)).await;
        println!("REGISTRY_PID {}", registry.pid().expect("pid"));
        tokio::time::sleep(std::time::Duration::from_secs(600)).await;
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let mut owner = tokio::process::Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", "registry_dies_with_its_owner", "--nocapture"])
        .env("HARNESS_REGISTRY_OWNER_DIR", dir.path())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start the owner process");
    let mut lines = tokio::io::BufReader::new(owner.stdout.take().expect("stdout")).lines();
    let mut registry_pid = None;
    while let Some(line) = lines.next_line().await.expect("read owner output") {
        if let Some(pid) = line.strip_prefix("REGISTRY_PID ") {
            registry_pid = Some(pid.trim().to_string());
            break;
        }
    }
    let pid = registry_pid.expect("the owner reports the registry pid");
    let stat = format!("/proc/{pid}/stat");
    assert!(
        Path::new(&stat).exists(),
        "registry {pid} should run while its owner does"
    );

    owner.kill().await.expect("kill the owner");
    // The kernel delivers SIGKILL to the registry when its owner dies; give
    // it a bounded moment to be scheduled.
    let gone = |s: &str| match std::fs::read_to_string(s) {
        Err(_) => true,
        // Field 3 is the state; a zombie waits for init to reap it.
        Ok(text) => {
            text.rsplit(')')
                .next()
                .and_then(|rest| rest.split_whitespace().next())
                == Some("Z")
        }
    };
    let mut waited = 0;
    while !gone(&stat) && waited < 100 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        waited += 1;
    }
    if !gone(&stat) {
        // Leave nothing behind, even when failing.
        if let Ok(pid) = pid.parse::<libc::pid_t>() {
            // SAFETY: plain kill(2) on the pid the owner reported.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        panic!("registry {pid} outlived its owner");
    }
}
