//! Interop with the real `helm` CLI (v3.19.4, the version Argo CD v3.3.10
//! ships; provisioned through harness_tools: built once into the tool
//! cache). A chart pushed by `helm package` + `helm push` and the same
//! chart pushed by the harness have the same media types, the same config
//! fields and the same layer content (file list, order and bytes after
//! gunzip). Digests differ: helm's archive carries the packing time as
//! mtimes and in the gzip header, the harness's uses 0 (reproducible).
//! And `helm template` renders the chart the harness pushed.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use harness_core::progress::Progress;
use harness_oci::RegistryClient;
use harness_oci::helm::{self, Chart, HELM_CHART_LAYER_MEDIA_TYPE, HELM_CONFIG_MEDIA_TYPE};
use harness_testkit::registry_process::{RegistryOptions, RegistryProcess};
use harness_tools::{self as tools, ProvisionOptions, Tool};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/helm-demo/0.1.0")
}

async fn helm_binary() -> PathBuf {
    let opts = ProvisionOptions {
        tools: [Tool::Helm].into_iter().collect(),
        ..ProvisionOptions::default()
    };
    let toolbox = tools::provision(&opts, &Progress::new())
        .await
        .unwrap_or_else(|e| panic!("helm must be provisionable (Go on PATH): {e}"));
    toolbox.path(Tool::Helm).to_path_buf()
}

/// Run helm with a private HOME and config (no user registry logins).
async fn helm_cli(binary: &Path, home: &Path, args: &[&str]) -> String {
    let mut command = tokio::process::Command::new(binary);
    command
        .args(args)
        .current_dir(home)
        .env("HOME", home)
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_DATA_HOME", home.join("data"))
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(120), command.output())
        .await
        .expect("helm finishes within 2 minutes")
        .expect("helm runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "helm {args:?} failed:\n{text}");
    text
}

/// What a pushed chart consists of, digests aside.
#[derive(Debug, PartialEq)]
struct ChartArtifact {
    config_media_type: String,
    layer_media_types: Vec<String>,
    config: serde_json::Value,
    /// (path, mode, bytes) of every tar entry, in archive order.
    entries: Vec<(String, u32, Vec<u8>)>,
}

async fn fetch(
    client: &RegistryClient,
    address: &str,
    repository: &str,
    tag: &str,
) -> ChartArtifact {
    let pulled = client.pull(repository, tag).await.expect("pull the chart");
    let manifest: serde_json::Value =
        serde_json::from_slice(&pulled.manifest).expect("manifest JSON");
    let config_digest = manifest["config"]["digest"]
        .as_str()
        .expect("config digest");
    let config_bytes = reqwest::get(format!(
        "http://{address}/v2/{repository}/blobs/{config_digest}"
    ))
    .await
    .expect("GET the config blob")
    .bytes()
    .await
    .expect("config blob body");
    let (_, layer) = &pulled.layers[0];
    let mut tar_bytes = Vec::new();
    flate2::read::GzDecoder::new(&layer[..])
        .read_to_end(&mut tar_bytes)
        .expect("the layer is gzip");
    let mut archive = tar::Archive::new(&tar_bytes[..]);
    let entries = archive
        .entries()
        .expect("the layer is a tar")
        .map(|entry| {
            let mut entry = entry.expect("tar entry");
            let path = entry.path().expect("entry path").display().to_string();
            let mode = entry.header().mode().expect("entry mode");
            let mut data = Vec::new();
            entry.read_to_end(&mut data).expect("entry data");
            (path, mode, data)
        })
        .collect();
    ChartArtifact {
        config_media_type: manifest["config"]["mediaType"]
            .as_str()
            .unwrap_or("")
            .into(),
        layer_media_types: pulled.layers.iter().map(|(m, _)| m.clone()).collect(),
        config: serde_json::from_slice(&config_bytes).expect("config JSON"),
        entries,
    }
}

#[tokio::test]
async fn harness_push_matches_helm_push_and_helm_renders_it() {
    harness_core::init_crypto();
    let helm_bin = helm_binary().await;
    let dir = tempfile::tempdir().expect("temporary directory");
    let registry = RegistryProcess::start(RegistryOptions::new(dir.path().join("registry")))
        .await
        .expect("start docker-registry");
    let address = registry.address();
    let client = RegistryClient::new(registry.endpoint());

    // helm's way: package, then push under <repo>/<chart name>:<version>.
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).expect("output directory");
    helm_cli(
        &helm_bin,
        dir.path(),
        &[
            "package",
            fixture().to_str().unwrap(),
            "-d",
            out.to_str().unwrap(),
        ],
    )
    .await;
    let package = out.join("helm-demo-0.1.0.tgz");
    helm_cli(
        &helm_bin,
        dir.path(),
        &[
            "push",
            package.to_str().unwrap(),
            &format!("oci://{address}/by-helm"),
            "--plain-http",
        ],
    )
    .await;

    // The harness's way, as `push: {chart: ...}` does it.
    let chart = Chart::from_dir(&fixture()).expect("read the fixture chart");
    let packed = helm::pack_chart(&chart, &BTreeMap::new()).expect("pack the chart");
    client
        .push("by-harness/helm-demo", &packed, &[chart.metadata.tag()])
        .await
        .expect("push the chart");

    let by_helm = fetch(&client, &address, "by-helm/helm-demo", "0.1.0").await;
    let by_harness = fetch(&client, &address, "by-harness/helm-demo", "0.1.0").await;
    assert_eq!(by_helm.config_media_type, HELM_CONFIG_MEDIA_TYPE);
    assert_eq!(by_helm.layer_media_types, [HELM_CHART_LAYER_MEDIA_TYPE]);
    // Sanity: the comparison below compares real content.
    assert!(
        by_helm
            .entries
            .iter()
            .any(|(path, _, _)| path == "helm-demo/templates/configmap.yaml"),
        "{:?}",
        by_helm.entries.iter().map(|e| &e.0).collect::<Vec<_>>()
    );
    assert_eq!(by_harness.config_media_type, by_helm.config_media_type);
    assert_eq!(by_harness.layer_media_types, by_helm.layer_media_types);
    assert_eq!(by_harness.config, by_helm.config, "config fields differ");
    let names = |a: &ChartArtifact| a.entries.iter().map(|e| e.0.clone()).collect::<Vec<_>>();
    assert_eq!(names(&by_harness), names(&by_helm), "file lists differ");
    for ((path, mode, ours), (_, helm_mode, theirs)) in
        by_harness.entries.iter().zip(&by_helm.entries)
    {
        assert_eq!(mode, helm_mode, "mode of {path}");
        assert_eq!(
            String::from_utf8_lossy(ours),
            String::from_utf8_lossy(theirs),
            "content of {path}"
        );
    }

    // helm itself reads what the harness pushed.
    let rendered = helm_cli(
        &helm_bin,
        dir.path(),
        &[
            "template",
            "demo",
            &format!("oci://{address}/by-harness/helm-demo"),
            "--version",
            "0.1.0",
            "--plain-http",
            "--set",
            "greeting=from-cli",
        ],
    )
    .await;
    assert!(rendered.contains("name: demo-config"), "{rendered}");
    assert!(rendered.contains("greeting: \"from-cli\""), "{rendered}");
    assert!(rendered.contains("chartVersion: \"0.1.0\""), "{rendered}");
    registry.stop().await.expect("stop the registry");
}
