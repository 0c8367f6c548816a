//! One raw GET on the Docker API socket, for the answers bollard's typed
//! models reject (podman 4.3's container states) or do not cover (podman's
//! own `/libpod/info`).

use super::*;

/// `GET path` on a Docker API over HTTP/1.0 (no chunked bodies), for the
/// few answers bollard's typed models cannot read from podman.
pub(super) async fn raw_get(host: &str, path: &str) -> Result<(u16, Vec<u8>), String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    async fn exchange<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
        mut stream: S,
        path: &str,
    ) -> Result<Vec<u8>, String> {
        let request = format!("GET {path} HTTP/1.0\r\nHost: docker\r\n\r\n");
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| format!("write: {e}"))?;
        let mut response = Vec::new();
        stream
            .read_to_end(&mut response)
            .await
            .map_err(|e| format!("read: {e}"))?;
        Ok(response)
    }
    let path = path.replace(' ', "%20");
    let response = tokio::time::timeout(Duration::from_secs(30), async {
        if let Some(sock) = host.strip_prefix("unix://") {
            let stream = tokio::net::UnixStream::connect(sock)
                .await
                .map_err(|e| format!("{sock}: {e}"))?;
            exchange(stream, &path).await
        } else if let Some(addr) = host
            .strip_prefix("tcp://")
            .or_else(|| host.strip_prefix("http://"))
        {
            let addr = addr.trim_end_matches('/');
            let stream = tokio::net::TcpStream::connect(addr)
                .await
                .map_err(|e| format!("{addr}: {e}"))?;
            exchange(stream, &path).await
        } else {
            Err(format!(
                "{host}: only unix:// and tcp:// Docker hosts are supported"
            ))
        }
    })
    .await
    .map_err(|_| format!("{host} did not answer within 30s"))??;
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| "malformed HTTP response".to_string())?;
    let head = String::from_utf8_lossy(&response[..split]);
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| {
            format!(
                "malformed status line: {}",
                head.lines().next().unwrap_or("")
            )
        })?;
    Ok((status, response[split + 4..].to_vec()))
}
