//! Referrers on a real registry that has the OCI 1.1 referrers API
//! (go-containerregistry's registry with the API on, provisioned through
//! harness_tools): attaching leaves the indexing to the registry (no
//! `sha256-<hex>` fallback tag), and listing reads the API.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::Path;
use std::time::{Duration, Instant};

use harness_core::progress::Progress;
use harness_oci::RegistryClient;
use harness_oci::RegistryEndpoint;
use harness_oci::referrers::{Attachment, ReferrersSupport, referrers_tag};
use harness_tools::{self as tools, ProvisionOptions, Tool};

mod common;

const SPDX: &str = "application/spdx+json";

/// The registry process; killed when dropped.
struct ApiRegistry {
    _child: tokio::process::Child,
    address: String,
}

async fn start_registry() -> ApiRegistry {
    harness_core::init_crypto();
    let opts = ProvisionOptions {
        tools: [Tool::ReferrersRegistry].into_iter().collect(),
        ..ProvisionOptions::default()
    };
    let toolbox = tools::provision(&opts, &Progress::new())
        .await
        .unwrap_or_else(|e| {
            panic!("the referrers registry must be provisionable (Go on PATH): {e}")
        });
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let address = format!("127.0.0.1:{port}");
    let child = tokio::process::Command::new(toolbox.path(Tool::ReferrersRegistry))
        .args(["--address", &address])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start the referrers registry");
    let url = format!("http://{address}/v2/");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(response) = reqwest::get(&url).await
            && response.status().is_success()
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the registry did not answer {url}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    ApiRegistry {
        _child: child,
        address,
    }
}

#[tokio::test]
async fn attaching_on_a_registry_with_the_api_leaves_the_index_to_it() {
    let registry = start_registry().await;
    let client = RegistryClient::new(RegistryEndpoint {
        address: registry.address.clone(),
        plain_http: true,
        insecure_tls: false,
        ca_pem: None,
        auth: None,
    });
    let subject = common::push_subject(&client, "app").await;
    assert_eq!(
        client.referrers_support("app", &subject).await.unwrap(),
        ReferrersSupport::Api
    );
    assert!(
        client
            .referrers("app", &subject, None)
            .await
            .unwrap()
            .manifests
            .is_empty()
    );

    let sbom = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/sbom/demo-app.spdx.json"),
    )
    .unwrap();
    let attachment = Attachment {
        artifact_type: SPDX.to_string(),
        media_type: SPDX.to_string(),
        content: sbom,
        annotations: BTreeMap::new(),
    };
    let attached = client
        .attach("app", &subject, &attachment)
        .await
        .expect("attach");
    assert_eq!(attached.via, ReferrersSupport::Api);

    let listed = client.referrers("app", &subject, Some(SPDX)).await.unwrap();
    assert_eq!(listed.via, ReferrersSupport::Api);
    let digests: Vec<&str> = listed.manifests.iter().map(|d| d.digest.as_str()).collect();
    assert_eq!(digests, [attached.digest.as_str()]);
    assert_eq!(listed.manifests[0].artifact_type.as_deref(), Some(SPDX));
    assert!(
        client
            .referrers("app", &subject, Some("application/vnd.cyclonedx+json"))
            .await
            .unwrap()
            .manifests
            .is_empty()
    );
    // The registry indexed it: no fallback tag was written.
    let fallback = referrers_tag(&subject).unwrap();
    let tags = client.list_tags("app").await.unwrap();
    assert!(!tags.contains(&fallback), "{tags:?}");
    assert_eq!(client.resolve("app", "v1").await.unwrap(), subject);
}
