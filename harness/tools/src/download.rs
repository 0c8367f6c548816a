//! Official release downloads, verified against the SHA-256 pinned in the
//! versions table. On machines without internet the connection fails within
//! [`CONNECT_TIMEOUT`] and provisioning falls through to the next source.

use std::io::Write as _;
use std::path::Path;
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::ToolsError;

/// How long to wait for a release host before giving up on it.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// A whole download (binaries are up to ~150 MB).
pub const TOTAL_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// Downloads `url` to `dest`, checking its SHA-256 against `sha256` (hex).
/// When `tar_member` is given the download is a `.tar.gz` and `dest` gets
/// that member. `dest` is written only if the hash matches.
pub async fn fetch_verified(
    url: &str,
    sha256: &str,
    tar_member: Option<&str>,
    dest: &Path,
) -> Result<(), ToolsError> {
    harness_core::init_crypto();
    let fail = |detail: String| ToolsError::Download {
        url: url.to_owned(),
        detail,
    };
    let client = reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(TOTAL_TIMEOUT)
        .build()
        .map_err(|e| fail(format!("cannot create an HTTP client: {e}")))?;
    let mut response = client
        .get(url)
        .send()
        .await
        .map_err(|e| fail(error_chain(&e)))?;
    if !response.status().is_success() {
        return Err(fail(format!("HTTP {}", response.status())));
    }
    let partial = dest.with_extension("partial");
    let mut file = std::fs::File::create(&partial)
        .map_err(|e| ToolsError::io("write a download", &partial, e))?;
    let mut hasher = Sha256::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| fail(error_chain(&e)))? {
        hasher.update(&chunk);
        file.write_all(&chunk)
            .map_err(|e| ToolsError::io("write a download", &partial, e))?;
    }
    drop(file);
    let got = hex::encode(hasher.finalize());
    if !got.eq_ignore_ascii_case(sha256) {
        let _ = std::fs::remove_file(&partial);
        return Err(fail(format!(
            "SHA-256 mismatch: expected {sha256}, got {got}; the file was discarded"
        )));
    }
    match tar_member {
        None => std::fs::rename(&partial, dest)
            .map_err(|e| ToolsError::io("move a download into place", dest, e))?,
        Some(member) => {
            let result = extract_member(&partial, member, dest);
            let _ = std::fs::remove_file(&partial);
            result.map_err(|e| fail(format!("cannot extract {member}: {e}")))?;
        }
    }
    make_executable(dest).map_err(|e| ToolsError::io("make a download executable", dest, e))
}

fn extract_member(archive: &Path, member: &str, dest: &Path) -> std::io::Result<()> {
    let file = std::fs::File::open(archive)?;
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(file));
    for entry in tar.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.into_owned();
        let matches = path
            .to_str()
            .is_some_and(|p| p.trim_start_matches("./") == member);
        if matches {
            let mut out = std::fs::File::create(dest)?;
            std::io::copy(&mut entry, &mut out)?;
            return Ok(());
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::NotFound,
        format!("{member} is not in the archive"),
    ))
}

fn make_executable(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
}

/// The error with its causes ("error sending request: dns error: ...").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
