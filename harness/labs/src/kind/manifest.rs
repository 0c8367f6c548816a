//! Argo CD's `install.yaml`: URL per version, pinned SHA-256 per version,
//! and a download-once cache that refuses bytes that do not match.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::KindError;

pub use harness_tools::versions::PINNED_INSTALL_SHA256;

pub use harness_tools::versions::{argocd_install_url, pinned_install_sha256};

/// Lowercase hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Checks `bytes` against `expected`; the error says where they came from.
pub fn verify(bytes: &[u8], expected: &str, origin: &str, version: &str) -> Result<(), KindError> {
    let actual = sha256_hex(bytes);
    if actual != expected {
        return Err(KindError::ChecksumMismatch {
            origin: origin.to_string(),
            version: version.to_string(),
            expected: expected.to_string(),
            actual,
        });
    }
    Ok(())
}

/// Returns the verified install.yaml of `version`: from `cache_path` when
/// it is there and matches, else downloaded from `url`, verified, then
/// cached (written to a temporary file and renamed, so a cache file is
/// always complete). A cached file that does not match is replaced.
pub async fn fetch_install_yaml(
    url: &str,
    version: &str,
    expected: &str,
    cache_path: &Path,
) -> Result<Vec<u8>, KindError> {
    if let Ok(bytes) = tokio::fs::read(cache_path).await
        && verify(&bytes, expected, &cache_path.display().to_string(), version).is_ok()
    {
        return Ok(bytes);
    }
    let bytes = match download(url).await {
        Ok(bytes) => {
            verify(&bytes, expected, url, version)?;
            bytes
        }
        Err(download_error) => {
            // No internet (these machines): the same file ships in the Argo
            // CD Go module zip, which the Go module proxy serves.
            let (bytes, origin) =
                from_go_module(version)
                    .await
                    .map_err(|module_error| KindError::Download {
                        url: url.to_string(),
                        message: format!(
                            "{download_error}; and from the Go module: {module_error}"
                        ),
                    })?;
            verify(&bytes, expected, &origin, version)?;
            bytes
        }
    };
    store(cache_path, &bytes).await?;
    Ok(bytes)
}

async fn download(url: &str) -> Result<Vec<u8>, String> {
    let response = reqwest::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(10))
        .build()
        .map_err(|e| e.to_string())?
        .get(url)
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(|e| e.to_string())?;
    Ok(response.bytes().await.map_err(|e| e.to_string())?.to_vec())
}

/// `manifests/install.yaml` of `github.com/argoproj/argo-cd/v3@version`
/// from the Go module cache (downloaded through the Go module proxy when
/// absent), and where it was read.
pub async fn from_go_module(version: &str) -> Result<(Vec<u8>, String), String> {
    let module = format!("github.com/argoproj/argo-cd/v3@{version}");
    let dir = harness_tools::gobuild::module_dir("github.com/argoproj/argo-cd/v3", version)
        .await
        .map_err(|e| e.to_string())?;
    let path = dir.join("manifests/install.yaml");
    let bytes = tokio::fs::read(&path)
        .await
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok((bytes, format!("{} (Go module {module})", path.display())))
}

async fn store(cache_path: &Path, bytes: &[u8]) -> Result<(), KindError> {
    let io = |what: String| move |source| KindError::Io { what, source };
    let dir = cache_path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(io(format!("create {}", dir.display())))?;
    let tmp = dir.join(format!(".install.yaml.{}", std::process::id()));
    tokio::fs::write(&tmp, bytes)
        .await
        .map_err(io(format!("write {}", tmp.display())))?;
    tokio::fs::rename(&tmp, cache_path)
        .await
        .map_err(io(format!("rename into {}", cache_path.display())))?;
    Ok(())
}
