//! Official release downloads over HTTPS, each verified before it is used:
//! against the SHA-256 pinned in the versions table where there is one,
//! otherwise against the checksum file the same release publishes (fetched
//! over HTTPS too). A file that matches neither is discarded; a release
//! that publishes no checksum file and has no pin is never downloaded.
//!
//! On machines without internet the connection fails within
//! [`CONNECT_TIMEOUT`] and provisioning falls through to the next source.
//! `OCI_E2E_DOWNLOAD_MIRROR` serves the same paths from elsewhere (a
//! mirror laid out as `<mirror>/<host>/<path>`), and `OCI_E2E_DOWNLOAD_CA`
//! names a PEM file of extra CA certificates to trust for it; see
//! docs/tools.md.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::ToolsError;
use super::versions::{Checksums, Download};

/// How long to wait for a release host before giving up on it.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// A whole download (binaries are up to ~150 MB).
pub const TOTAL_TIMEOUT: Duration = Duration::from_secs(15 * 60);
/// Checksum files are a few lines; anything larger is not one.
const MAX_CHECKSUM_FILE: usize = 1 << 20;

/// Environment variable: a mirror of the release hosts, `https://host[:port][/prefix]`.
pub const MIRROR_ENV: &str = "OCI_E2E_DOWNLOAD_MIRROR";
/// Environment variable: a PEM file of CA certificates to trust as well.
pub const CA_ENV: &str = "OCI_E2E_DOWNLOAD_CA";

/// Where release downloads come from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DownloadOptions {
    /// `https://mirror[:port][/prefix]`: `https://dl.k8s.io/release/x`
    /// is fetched as `<mirror>/dl.k8s.io/release/x`.
    pub mirror: Option<String>,
    /// Extra CA certificates (PEM) to trust, besides the system's.
    pub ca_file: Option<PathBuf>,
}

impl DownloadOptions {
    /// From `OCI_E2E_DOWNLOAD_MIRROR` and `OCI_E2E_DOWNLOAD_CA`.
    pub fn from_env() -> Self {
        let non_empty = |name| std::env::var(name).ok().filter(|v| !v.is_empty());
        Self {
            mirror: non_empty(MIRROR_ENV),
            ca_file: non_empty(CA_ENV).map(PathBuf::from),
        }
    }
}

/// How a download was verified (shown by `cargo xtask tools`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verified {
    /// Against the SHA-256 pinned in the versions table.
    Pinned,
    /// Against the checksum file the release publishes, at this URL.
    ChecksumFile { url: String },
}

impl std::fmt::Display for Verified {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Verified::Pinned => f.write_str("SHA-256 pinned in the versions table"),
            Verified::ChecksumFile { url } => write!(f, "SHA-256 from the release's {url}"),
        }
    }
}

/// An HTTPS client for release hosts (or their mirror).
#[derive(Debug, Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    mirror: Option<String>,
}

impl Fetcher {
    pub fn new(opts: &DownloadOptions) -> Result<Self, ToolsError> {
        harness_core::init_crypto();
        let mirror = match &opts.mirror {
            None => None,
            Some(m) if m.starts_with("https://") => Some(m.trim_end_matches('/').to_owned()),
            Some(m) => {
                return Err(ToolsError::InvalidSetting {
                    name: MIRROR_ENV,
                    value: m.clone(),
                    expected: "an https:// URL (release downloads are HTTPS only)",
                });
            }
        };
        let mut builder = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(TOTAL_TIMEOUT)
            .https_only(true);
        if let Some(path) = &opts.ca_file {
            let pem = std::fs::read(path)
                .map_err(|e| ToolsError::io(&format!("read {CA_ENV}"), path, e))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                ToolsError::Version(format!(
                    "{CA_ENV}={}: not a PEM file of certificates: {e}",
                    path.display()
                ))
            })?;
            if certs.is_empty() {
                return Err(ToolsError::Version(format!(
                    "{CA_ENV}={}: no certificate in the file",
                    path.display()
                )));
            }
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let client = builder.build().map_err(|e| ToolsError::Download {
            url: String::new(),
            detail: format!("cannot create an HTTPS client: {}", error_chain(&e)),
        })?;
        Ok(Self { client, mirror })
    }

    /// The URL actually fetched for a release URL (the mirror's, if set).
    pub fn resolve(&self, url: &str) -> String {
        match (&self.mirror, url.strip_prefix("https://")) {
            (Some(mirror), Some(rest)) => format!("{mirror}/{rest}"),
            _ => url.to_owned(),
        }
    }

    /// Downloads a release artifact into `dest` and verifies it: against
    /// its pin, otherwise against the release's checksum file. `dest` is
    /// written only when it matches.
    pub async fn fetch(&self, d: &Download, dest: &Path) -> Result<Verified, ToolsError> {
        let (expected, verified) = match d.sha256 {
            Some(pin) => (pin.to_ascii_lowercase(), Verified::Pinned),
            None => {
                let Some(sums_url) = d.checksums.url_for(d.url) else {
                    return Err(ToolsError::Download {
                        url: d.url.to_owned(),
                        detail: "the release publishes no checksum file and no SHA-256 is \
                                 pinned in the versions table, so it is not downloaded"
                            .into(),
                    });
                };
                let text = self.get_small(&sums_url).await?;
                let file_name = d.url.rsplit('/').next().unwrap_or(d.url);
                let hex = find_checksum(&text, d.checksums, file_name).ok_or_else(|| {
                    ToolsError::Download {
                        url: self.resolve(&sums_url),
                        detail: format!("no SHA-256 for {file_name} in the checksum file"),
                    }
                })?;
                (hex, Verified::ChecksumFile { url: sums_url })
            }
        };
        self.fetch_verified(d.url, &expected, d.tar_member, dest)
            .await?;
        Ok(verified)
    }

    /// A small file (up to a few MB, e.g. a manifest) from `url`, only if
    /// its SHA-256 is `sha256`.
    pub async fn fetch_bytes_verified(
        &self,
        url: &str,
        sha256: &str,
    ) -> Result<Vec<u8>, ToolsError> {
        let url = self.resolve(url);
        let response = self.get(&url).await?;
        let bytes = response.bytes().await.map_err(|e| ToolsError::Download {
            url: url.clone(),
            detail: error_chain(&e),
        })?;
        let got = hex::encode(Sha256::digest(&bytes));
        if !got.eq_ignore_ascii_case(sha256) {
            return Err(ToolsError::Download {
                url,
                detail: format!(
                    "SHA-256 mismatch: expected {sha256}, got {got}; the file was discarded"
                ),
            });
        }
        Ok(bytes.to_vec())
    }

    /// Downloads `url` to `dest`, checking its SHA-256 against `sha256`
    /// (hex). When `tar_member` is given the download is a `.tar.gz` and
    /// `dest` gets that member. `dest` is written only if the hash matches.
    pub async fn fetch_verified(
        &self,
        url: &str,
        sha256: &str,
        tar_member: Option<&str>,
        dest: &Path,
    ) -> Result<(), ToolsError> {
        let url = self.resolve(url);
        let fail = |detail: String| ToolsError::Download {
            url: url.clone(),
            detail,
        };
        let mut response = self.get(&url).await?;
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

    /// A GET that must answer 2xx.
    async fn get(&self, url: &str) -> Result<reqwest::Response, ToolsError> {
        let fail = |detail: String| ToolsError::Download {
            url: url.to_owned(),
            detail,
        };
        let response = self
            .client
            .get(url)
            .send()
            .await
            .map_err(|e| fail(error_chain(&e)))?;
        if !response.status().is_success() {
            return Err(fail(format!("HTTP {}", response.status())));
        }
        Ok(response)
    }

    /// A small text file (a checksum file), fetched through the mirror.
    async fn get_small(&self, url: &str) -> Result<String, ToolsError> {
        let url = self.resolve(url);
        let fail = |detail: String| ToolsError::Download {
            url: url.clone(),
            detail,
        };
        let mut response = self.get(&url).await.map_err(|e| match e {
            ToolsError::Download { url, detail } => ToolsError::Download {
                url,
                detail: format!("cannot fetch the release's checksum file: {detail}"),
            },
            other => other,
        })?;
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| fail(error_chain(&e)))? {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_CHECKSUM_FILE {
                return Err(fail(format!(
                    "the checksum file is larger than {MAX_CHECKSUM_FILE} bytes"
                )));
            }
        }
        String::from_utf8(body).map_err(|_| fail("the checksum file is not UTF-8 text".into()))
    }
}

/// The documents of a multi-document YAML `text` (an `install.yaml`)
/// that are the CustomResourceDefinitions named in `names`, by name, as
/// they are written there. `None` unless every name was found once.
pub fn crds_from_install_yaml<'a>(
    text: &'a str,
    names: &[&str],
) -> Option<std::collections::BTreeMap<String, &'a str>> {
    let mut found = std::collections::BTreeMap::new();
    for doc in text.split("\n---\n") {
        let doc = doc.strip_prefix("---\n").unwrap_or(doc);
        if !doc
            .lines()
            .any(|l| l.trim_end() == "kind: CustomResourceDefinition")
        {
            continue;
        }
        // `metadata.name`: the two-space-indented `name:` in the top-level
        // `metadata:` block (labels and the schema nest deeper).
        let mut in_metadata = false;
        let mut name = None;
        for line in doc.lines() {
            if !line.starts_with(' ') {
                in_metadata = line.trim_end() == "metadata:";
                continue;
            }
            if in_metadata && let Some(n) = line.strip_prefix("  name: ") {
                name = Some(n.trim().trim_matches('"').to_string());
                break;
            }
        }
        if let Some(name) = name.filter(|n| names.contains(&n.as_str()))
            && found.insert(name, doc).is_some()
        {
            return None;
        }
    }
    (found.len() == names.len()).then_some(found)
}

/// The lowercase hex SHA-256 for `file_name` in a checksum file's text.
/// `Checksums::BareSibling` files hold only the digest; the others are in
/// `sha256sum` format (`<hex>  <name>` or `<hex> *<name>`, one per line).
pub fn find_checksum(text: &str, kind: Checksums, file_name: &str) -> Option<String> {
    let is_hex = |s: &str| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit());
    match kind {
        Checksums::BareSibling => {
            let hex = text.trim();
            is_hex(hex).then(|| hex.to_ascii_lowercase())
        }
        Checksums::SumSibling(_) | Checksums::SumFile(_) => text.lines().find_map(|line| {
            let (hex, name) = line.trim().split_once(char::is_whitespace)?;
            let name = name.trim_start().trim_start_matches('*');
            let name = name.strip_prefix("./").unwrap_or(name);
            (is_hex(hex) && name == file_name).then(|| hex.to_ascii_lowercase())
        }),
        Checksums::None => None,
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "a3f1c0de0b5e4e2c2d6f1a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d";

    #[test]
    fn a_bare_checksum_file_is_its_digest() {
        assert_eq!(
            find_checksum(&format!("{A}\n"), Checksums::BareSibling, "x").as_deref(),
            Some(A)
        );
        assert_eq!(
            find_checksum("not hex\n", Checksums::BareSibling, "x"),
            None
        );
        assert_eq!(find_checksum(&A[..60], Checksums::BareSibling, "x"), None);
    }

    #[test]
    fn a_sum_file_is_searched_by_file_name() {
        let other = "0".repeat(64);
        let text = format!(
            "{other}  etcd-v3.6.8-linux-arm64.tar.gz\n{}  etcd-v3.6.8-linux-amd64.tar.gz\n",
            A.to_ascii_uppercase()
        );
        let kind = Checksums::SumFile("https://example/SHA256SUMS");
        assert_eq!(
            find_checksum(&text, kind, "etcd-v3.6.8-linux-amd64.tar.gz").as_deref(),
            Some(A)
        );
        assert_eq!(
            find_checksum(&text, kind, "etcd-v3.6.8-linux-arm64.tar.gz").as_deref(),
            Some(other.as_str())
        );
        assert_eq!(find_checksum(&text, kind, "etcd-v3.6.8-linux-amd64"), None);
        // Binary-mode marker and ./ prefixes, as some tools write them.
        let starred = format!("{A} *./helm-v3.19.4-linux-amd64.tar.gz\n");
        assert_eq!(
            find_checksum(
                &starred,
                Checksums::SumSibling(".sha256sum"),
                "helm-v3.19.4-linux-amd64.tar.gz"
            )
            .as_deref(),
            Some(A)
        );
    }

    #[test]
    fn a_mirror_keeps_host_and_path() {
        let fetcher = Fetcher::new(&DownloadOptions {
            mirror: Some("https://127.0.0.1:8443/releases/".into()),
            ca_file: None,
        })
        .expect("fetcher");
        assert_eq!(
            fetcher.resolve("https://dl.k8s.io/release/v1.34.4/bin/linux/amd64/kube-apiserver"),
            "https://127.0.0.1:8443/releases/dl.k8s.io/release/v1.34.4/bin/linux/amd64/kube-apiserver"
        );
        let direct = Fetcher::new(&DownloadOptions::default()).expect("fetcher");
        assert_eq!(
            direct.resolve("https://get.helm.sh/x"),
            "https://get.helm.sh/x"
        );
    }

    #[test]
    fn a_plain_http_mirror_is_refused() {
        let err = Fetcher::new(&DownloadOptions {
            mirror: Some("http://127.0.0.1:8080".into()),
            ca_file: None,
        })
        .expect_err("http mirror");
        assert!(err.to_string().contains("https://"), "{err}");
        assert!(err.to_string().contains(MIRROR_ENV), "{err}");
    }
}
