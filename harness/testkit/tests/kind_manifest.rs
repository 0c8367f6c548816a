//! install.yaml download-once cache and checksum verification, against a
//! real HTTP server on 127.0.0.1 (a tiny one: it serves fixed bytes and
//! counts requests).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use harness_labs::kind::{KindError, fetch_install_yaml, sha256_hex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Serves `body` with 200 to every request; returns its URL and a hit counter.
async fn serve(body: &'static [u8]) -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local addr");
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf).await;
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes()).await;
            let _ = stream.write_all(body).await;
            let _ = stream.shutdown().await;
        }
    });
    (
        format!("http://{addr}/argo-cd/v0.0.0/manifests/install.yaml"),
        hits,
    )
}

const BODY: &[u8] = b"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: x\n";

#[tokio::test]
async fn downloads_once_then_serves_from_the_cache() {
    harness_core::init_crypto();
    let (url, hits) = serve(BODY).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let cache = dir.path().join("argocd/v0.0.0/install.yaml");
    let expected = sha256_hex(BODY);

    let first = fetch_install_yaml(&url, "v0.0.0", &expected, &cache)
        .await
        .expect("first fetch");
    assert_eq!(first, BODY);
    assert_eq!(std::fs::read(&cache).expect("cached"), BODY);
    let second = fetch_install_yaml(&url, "v0.0.0", &expected, &cache)
        .await
        .expect("second fetch");
    assert_eq!(second, BODY);
    assert_eq!(
        hits.load(Ordering::SeqCst),
        1,
        "the second fetch must come from the cache"
    );
}

#[tokio::test]
async fn a_download_that_does_not_match_the_pin_is_refused_and_not_cached() {
    harness_core::init_crypto();
    let (url, _) = serve(b"tampered").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let cache = dir.path().join("argocd/v0.0.0/install.yaml");
    let expected = sha256_hex(BODY);

    let err = fetch_install_yaml(&url, "v0.0.0", &expected, &cache)
        .await
        .expect_err("mismatch");
    let KindError::ChecksumMismatch {
        actual,
        expected: exp,
        ..
    } = &err
    else {
        panic!("expected a checksum mismatch, got {err:?}");
    };
    assert_eq!(actual, &sha256_hex(b"tampered"));
    assert_eq!(exp, &expected);
    let msg = err.to_string();
    assert!(msg.contains(&url) && msg.contains("v0.0.0"), "{msg}");
    assert!(!cache.exists(), "bad bytes must not be cached");
}

#[tokio::test]
async fn a_corrupted_cache_is_replaced_by_a_verified_download() {
    harness_core::init_crypto();
    let (url, hits) = serve(BODY).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let cache = dir.path().join("argocd/v0.0.0/install.yaml");
    std::fs::create_dir_all(cache.parent().expect("parent")).expect("mkdir");
    std::fs::write(&cache, b"half a file").expect("write");

    let got = fetch_install_yaml(&url, "v0.0.0", &sha256_hex(BODY), &cache)
        .await
        .expect("refetch");
    assert_eq!(got, BODY);
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    assert_eq!(std::fs::read(&cache).expect("cached"), BODY);
}

#[tokio::test]
async fn an_unreachable_url_names_the_url_and_the_fallback() {
    harness_core::init_crypto();
    // Port 1 on loopback: nothing listens there.
    let url = "http://127.0.0.1:1/install.yaml";
    let dir = tempfile::tempdir().expect("tempdir");
    let cache = dir.path().join("install.yaml");
    let err = fetch_install_yaml(url, "v0.0.0", &sha256_hex(BODY), &cache)
        .await
        .expect_err("unreachable");
    assert!(matches!(err, KindError::Download { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains(url) && msg.contains("--lab local"), "{msg}");
}
