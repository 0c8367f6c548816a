//! Release downloads against a real local HTTP server: the pinned SHA-256 is
//! enforced, and an unreachable host fails (so provisioning falls through).

use std::net::SocketAddr;

use harness_tools::ToolsError;
use harness_tools::download::fetch_verified;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Serves `body` to every request until the test ends.
async fn serve(body: Vec<u8>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let body = body.clone();
            tokio::spawn(async move {
                let mut req = Vec::new();
                let mut buf = [0u8; 1024];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = sock.write_all(head.as_bytes()).await;
                let _ = sock.write_all(&body).await;
            });
        }
    });
    addr
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[tokio::test]
async fn a_download_with_the_pinned_hash_is_installed_executable() {
    let body = b"#!/bin/sh\necho release\n".to_vec();
    let addr = serve(body.clone()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let dest = dir.path().join("tool");
    fetch_verified(&format!("http://{addr}/tool"), &sha256(&body), None, &dest)
        .await
        .expect("download");
    assert_eq!(std::fs::read(&dest).expect("read"), body);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&dest).expect("meta").permissions().mode() & 0o111,
        0o111
    );
}

#[tokio::test]
async fn a_download_with_another_hash_is_discarded() {
    let addr = serve(b"tampered".to_vec()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let dest = dir.path().join("tool");
    let pinned = sha256(b"original");
    let err = fetch_verified(&format!("http://{addr}/tool"), &pinned, None, &dest)
        .await
        .expect_err("must fail");
    let msg = err.to_string();
    assert!(msg.contains("SHA-256 mismatch"), "{msg}");
    assert!(msg.contains(&pinned), "{msg}");
    assert!(!dest.exists());
    assert_eq!(
        std::fs::read_dir(dir.path()).expect("ls").count(),
        0,
        "no partial file may remain"
    );
}

#[tokio::test]
async fn a_member_is_extracted_from_a_verified_tarball() {
    let mut tarball = Vec::new();
    {
        let gz = flate2::write::GzEncoder::new(&mut tarball, flate2::Compression::fast());
        let mut tar = tar::Builder::new(gz);
        for (name, data) in [
            ("etcd-v3.6.8-linux-amd64/README.md", &b"readme"[..]),
            ("etcd-v3.6.8-linux-amd64/etcd", b"ETCD"),
        ] {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o755);
            header.set_cksum();
            tar.append_data(&mut header, name, data).expect("append");
        }
        tar.into_inner().expect("tar").finish().expect("gz");
    }
    let addr = serve(tarball.clone()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let dest = dir.path().join("etcd");
    fetch_verified(
        &format!("http://{addr}/etcd.tar.gz"),
        &sha256(&tarball),
        Some("etcd-v3.6.8-linux-amd64/etcd"),
        &dest,
    )
    .await
    .expect("download");
    assert_eq!(std::fs::read(&dest).expect("read"), b"ETCD");
}

#[tokio::test]
async fn an_unreachable_host_is_a_download_error() {
    // A port nobody listens on: bind, note the port, close.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("http://127.0.0.1:{port}/kube-apiserver");
    let err = fetch_verified(&url, &sha256(b""), None, &dir.path().join("x"))
        .await
        .expect_err("must fail");
    match err {
        ToolsError::Download { url: u, .. } => assert_eq!(u, url),
        other => panic!("expected a download error, got {other}"),
    }
}
