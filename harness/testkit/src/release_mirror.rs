//! A real HTTPS server on loopback that serves a directory laid out like
//! the release hosts (`<root>/dl.k8s.io/release/v1.34.4/bin/linux/amd64/
//! kube-apiserver`, `<root>/github.com/etcd-io/etcd/releases/download/...`),
//! for the release-download tests: provisioning pointed at it with
//! `OCI_E2E_DOWNLOAD_MIRROR` fetches exactly what it would fetch from the
//! internet, over TLS verified against a CA made for the mirror
//! (`OCI_E2E_DOWNLOAD_CA`). A missing file answers 404.
//!
//! It records every path asked for ([`ReleaseMirror::requests`]), so a test
//! can show which checksum files were read.

use std::net::SocketAddr;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, SanType};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// A running mirror; stopped when dropped.
pub struct ReleaseMirror {
    address: SocketAddr,
    ca_file: PathBuf,
    requests: Arc<Mutex<Vec<String>>>,
    stop: CancellationToken,
}

impl ReleaseMirror {
    /// Serves `root` over HTTPS on a free loopback port; the mirror's CA
    /// certificate is written to `ca_file`.
    pub async fn start(root: &Path, ca_file: &Path) -> std::io::Result<Self> {
        harness_core::init_crypto();
        let (config, ca_pem) = tls_config().map_err(std::io::Error::other)?;
        std::fs::write(ca_file, ca_pem)?;
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = CancellationToken::new();
        let (token, root, seen) = (stop.clone(), root.to_path_buf(), requests.clone());
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    _ = token.cancelled() => break,
                    accepted = listener.accept() => accepted,
                };
                let Ok((tcp, _)) = accepted else { continue };
                let (acceptor, root, seen, token) =
                    (acceptor.clone(), root.clone(), seen.clone(), token.clone());
                tokio::spawn(async move {
                    // A client that does not trust the CA ends here.
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = hyper::service::service_fn(move |request: Request<_>| {
                        let (root, seen) = (root.clone(), seen.clone());
                        async move { Ok::<_, std::convert::Infallible>(answer(&root, &seen, request)) }
                    });
                    let connection = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), service);
                    tokio::select! {
                        _ = token.cancelled() => {}
                        _ = connection => {}
                    }
                });
            }
        });
        Ok(Self {
            address,
            ca_file: ca_file.to_path_buf(),
            requests,
            stop,
        })
    }

    /// `https://127.0.0.1:<port>`: the value for `OCI_E2E_DOWNLOAD_MIRROR`.
    pub fn url(&self) -> String {
        format!("https://{}", self.address)
    }

    /// The CA certificate (PEM): the value for `OCI_E2E_DOWNLOAD_CA`.
    pub fn ca_file(&self) -> &Path {
        &self.ca_file
    }

    /// The paths asked for so far, in order (`/dl.k8s.io/release/...`).
    pub fn requests(&self) -> Vec<String> {
        self.requests
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }
}

impl Drop for ReleaseMirror {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Where a release URL's file goes under a mirror root:
/// `https://dl.k8s.io/release/x` → `<root>/dl.k8s.io/release/x`.
pub fn mirror_path(root: &Path, url: &str) -> PathBuf {
    root.join(url.trim_start_matches("https://"))
}

fn answer<B>(root: &Path, seen: &Mutex<Vec<String>>, request: Request<B>) -> Response<Full<Bytes>> {
    let path = request.uri().path().to_string();
    seen.lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .push(path.clone());
    let relative = Path::new(path.trim_start_matches('/'));
    let safe = relative
        .components()
        .all(|c| matches!(c, Component::Normal(_)));
    let file = root.join(relative);
    match (safe, std::fs::read(&file)) {
        (true, Ok(bytes)) => Response::new(Full::new(Bytes::from(bytes))),
        _ => Response::builder()
            .status(StatusCode::NOT_FOUND)
            .body(Full::new(Bytes::from_static(b"not found\n")))
            .expect("a static response is valid"),
    }
}

/// A CA and a serving certificate for 127.0.0.1 signed by it.
fn tls_config() -> Result<(rustls::ServerConfig, String), Box<dyn std::error::Error + Send + Sync>>
{
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "oci-e2e release mirror CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf_key = KeyPair::generate()?;
    let mut leaf_params = CertificateParams::new(Vec::<String>::new())?;
    leaf_params.subject_alt_names = vec![SanType::IpAddress("127.0.0.1".parse()?)];
    let leaf = leaf_params.signed_by(&leaf_key, &issuer)?;
    let key = rustls::pki_types::PrivateKeyDer::try_from(leaf_key.serialize_der())?;
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![leaf.der().clone(), ca_cert.der().clone()], key)?;
    Ok((config, ca_cert.pem()))
}

/// The lab binaries a new machine downloads (`OCI_E2E_ETCD=go`, the
/// default): all but kwok, whose releases publish no checksums.
pub const DOWNLOADED: &[harness_tools::Tool] = &[
    harness_tools::Tool::Etcd,
    harness_tools::Tool::KubeApiserver,
    harness_tools::Tool::KubeControllerManager,
    harness_tools::Tool::KubeScheduler,
    harness_tools::Tool::Argocd,
    harness_tools::Tool::Helm,
];

/// A gzipped tarball of `members` (name, content), mode 0755.
pub fn tar_gz(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut tarball = Vec::new();
    {
        let gz = flate2::write::GzEncoder::new(&mut tarball, flate2::Compression::fast());
        let mut tar = tar::Builder::new(gz);
        for (name, data) in members {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o755);
            header.set_cksum();
            tar.append_data(&mut header, name, *data)
                .expect("appending to an in-memory tarball");
        }
        tar.into_inner()
            .expect("an in-memory tarball")
            .finish()
            .expect("an in-memory gzip stream");
    }
    tarball
}

/// Lays out under `root` the releases of [`DOWNLOADED`] as their hosts
/// publish them, made of the real binaries of this machine's tool cache
/// (provisioned, and built if missing): bare binaries with `.sha256` files
/// (Kubernetes), a binary and `cli_checksums.txt` (Argo CD), tarballs with
/// `SHA256SUMS` (etcd) or `.sha256sum` files (helm). Returns the bytes
/// published.
pub async fn publish_lab_releases(root: &Path) -> Result<u64, String> {
    use harness_tools::versions::{self, Checksums, EtcdSource};
    use sha2::{Digest, Sha256};
    let sha256 = |bytes: &[u8]| hex::encode(Sha256::digest(bytes));
    let write = |url: &str, bytes: &[u8]| -> Result<(), String> {
        let path = mirror_path(root, url);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        }
        std::fs::write(&path, bytes).map_err(|e| format!("{}: {e}", path.display()))
    };
    let opts = harness_tools::ProvisionOptions {
        tools: DOWNLOADED.iter().copied().collect(),
        etcd: EtcdSource::Go,
        ..harness_tools::ProvisionOptions::default()
    };
    let toolbox = harness_tools::provision(&opts, &harness_core::progress::Progress::new())
        .await
        .map_err(|e| e.to_string())?;
    let arch = harness_tools::go_arch();
    let mut sums: std::collections::BTreeMap<String, String> = Default::default();
    let mut total = 0;
    for &tool in DOWNLOADED {
        let component = versions::component_for(tool, EtcdSource::Go);
        let d = component
            .downloads_for(tool, arch)
            .ok_or_else(|| format!("{tool} has no download for {arch}"))?;
        let binary = std::fs::read(toolbox.path(tool)).map_err(|e| e.to_string())?;
        let published = match d.tar_member {
            Some(member) => tar_gz(&[(member, &binary)]),
            None => binary,
        };
        total += published.len() as u64;
        write(d.url, &published)?;
        let file_name = d.url.rsplit('/').next().unwrap_or(d.url);
        let line = format!("{}  {file_name}\n", sha256(&published));
        match d.checksums {
            Checksums::BareSibling => {
                write(&format!("{}.sha256", d.url), sha256(&published).as_bytes())?
            }
            Checksums::SumSibling(suffix) => write(&format!("{}{suffix}", d.url), line.as_bytes())?,
            Checksums::SumFile(file) => sums.entry(file.to_string()).or_default().push_str(&line),
            Checksums::None => return Err(format!("{tool}: a lab binary without checksums")),
        }
    }
    for (file, text) in sums {
        write(&file, text.as_bytes())?;
    }
    // The Argo CD CRDs come from the release's install.yaml, the same bytes
    // as in the Go module of the tag (its SHA-256 is pinned).
    let version = versions::ARGOCD_VERSION;
    let module = harness_tools::gobuild::module_dir("github.com/argoproj/argo-cd/v3", version)
        .await
        .map_err(|e| e.to_string())?;
    let install =
        std::fs::read(module.join("manifests/install.yaml")).map_err(|e| e.to_string())?;
    total += install.len() as u64;
    write(&versions::argocd_install_url(version), &install)?;
    Ok(total)
}
