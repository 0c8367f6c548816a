//! Interop with the real `cosign` CLI (v2, provisioned through
//! harness_tools: built once into the tool cache, ~9 minutes cold):
//! a signature the harness makes verifies with `cosign verify --key`, and
//! one `cosign sign --key` makes verifies in the harness. Offline: no
//! Fulcio, no Rekor (`--tlog-upload=false`, `--insecure-ignore-tlog`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use harness_core::progress::Progress;
use harness_oci::RegistryClient;
use harness_oci::sign::{PublicKey, SigningKey, Verification};
use harness_testkit::registry_process::{RegistryOptions, RegistryProcess};
use harness_tools::{self as tools, ProvisionOptions, Tool};

mod common;

async fn cosign_binary() -> PathBuf {
    let opts = ProvisionOptions {
        tools: [Tool::Cosign].into_iter().collect(),
        ..ProvisionOptions::default()
    };
    let toolbox = tools::provision(&opts, &Progress::new())
        .await
        .unwrap_or_else(|e| panic!("cosign must be provisionable (Go on PATH): {e}"));
    toolbox.path(Tool::Cosign).to_path_buf()
}

/// Run cosign with a private HOME (no user config, no TUF cache).
async fn cosign(binary: &Path, home: &Path, args: &[&str]) -> (bool, String) {
    let mut command = tokio::process::Command::new(binary);
    command
        .args(args)
        .current_dir(home)
        .env("HOME", home)
        .env("TUF_ROOT", home.join("tuf"))
        .env("COSIGN_PASSWORD", "interop-test")
        .env("COSIGN_YES", "true")
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(120), command.output())
        .await
        .expect("cosign finishes within 2 minutes")
        .expect("cosign runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

async fn setup() -> (tempfile::TempDir, RegistryProcess, RegistryClient, String) {
    harness_core::init_crypto();
    let dir = tempfile::tempdir().unwrap();
    let registry = RegistryProcess::start(RegistryOptions::new(dir.path().join("registry")))
        .await
        .expect("start docker-registry");
    let client = RegistryClient::new(registry.endpoint());
    let digest = common::push_subject(&client, "interop").await;
    (dir, registry, client, digest)
}

const INSECURE: &[&str] = &["--allow-http-registry", "--allow-insecure-registry"];

#[tokio::test]
async fn cosign_verifies_what_the_harness_signs() {
    let cosign_bin = cosign_binary().await;
    let (dir, registry, client, digest) = setup().await;
    let key = SigningKey::generate();
    client.sign("interop", &digest, &key).await.expect("sign");
    let public = dir.path().join("harness.pub");
    std::fs::write(&public, key.public_key().to_pem()).unwrap();
    let image = format!("{}/interop@{digest}", registry.address());

    let mut args = vec![
        "verify",
        "--key",
        public.to_str().unwrap(),
        "--insecure-ignore-tlog=true",
    ];
    args.extend(INSECURE);
    args.push(&image);
    let (ok, output) = cosign(&cosign_bin, dir.path(), &args).await;
    assert!(
        ok,
        "cosign verify must accept the harness's signature:\n{output}"
    );
    assert!(output.contains(&digest), "{output}");

    // And cosign refuses it with another key: the check is real.
    let other = dir.path().join("other.pub");
    std::fs::write(&other, SigningKey::generate().public_key().to_pem()).unwrap();
    let mut args = vec![
        "verify",
        "--key",
        other.to_str().unwrap(),
        "--insecure-ignore-tlog=true",
    ];
    args.extend(INSECURE);
    args.push(&image);
    let (ok, output) = cosign(&cosign_bin, dir.path(), &args).await;
    assert!(!ok, "cosign verify must refuse another key:\n{output}");
}

#[tokio::test]
async fn the_harness_verifies_what_cosign_signs() {
    let cosign_bin = cosign_binary().await;
    let (dir, registry, client, digest) = setup().await;
    let (ok, output) = cosign(&cosign_bin, dir.path(), &["generate-key-pair"]).await;
    assert!(ok, "cosign generate-key-pair:\n{output}");
    let image = format!("{}/interop@{digest}", registry.address());
    let mut args = vec!["sign", "--key", "cosign.key", "--tlog-upload=false", "-y"];
    args.extend(INSECURE);
    args.push(&image);
    let (ok, output) = cosign(&cosign_bin, dir.path(), &args).await;
    assert!(ok, "cosign sign:\n{output}");

    let pem = std::fs::read_to_string(dir.path().join("cosign.pub")).unwrap();
    let cosign_key = PublicKey::from_pem(&pem).expect("cosign.pub is a P-256 PEM key");
    assert_eq!(
        client
            .verify_signature("interop", &digest, &cosign_key)
            .await
            .unwrap(),
        Verification::Verified { signatures: 1 }
    );
    assert!(matches!(
        client
            .verify_signature("interop", &digest, &SigningKey::generate().public_key())
            .await
            .unwrap(),
        Verification::NotVerified { .. }
    ));
}
