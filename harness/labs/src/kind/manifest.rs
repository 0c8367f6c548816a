//! Argo CD's `install.yaml`: URL per version, pinned SHA-256 per version,
//! and a download-once cache that refuses bytes that do not match.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::KindError;

pub use harness_tools::versions::PINNED_INSTALL_SHA256;

/// The pinned checksum for `version`, if the table has it.
pub fn pinned_install_sha256(version: &str) -> Option<&'static str> {
    PINNED_INSTALL_SHA256
        .iter()
        .find(|(v, _)| *v == version)
        .map(|(_, sha)| *sha)
}

/// Where Argo CD publishes the manifest of a tag.
pub fn argocd_install_url(version: &str) -> String {
    format!("https://raw.githubusercontent.com/argoproj/argo-cd/{version}/manifests/install.yaml")
}

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
    let response = reqwest::Client::new()
        .get(url)
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(|e| KindError::Download {
            url: url.to_string(),
            message: e.to_string(),
        })?;
    let bytes = response
        .bytes()
        .await
        .map_err(|e| KindError::Download {
            url: url.to_string(),
            message: e.to_string(),
        })?
        .to_vec();
    verify(&bytes, expected, url, version)?;
    store(cache_path, &bytes).await?;
    Ok(bytes)
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
