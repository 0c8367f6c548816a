//! The local lab's PKI: one CA, the apiserver's serving certificate, an
//! admin client certificate (group system:masters) and the service-account
//! signing key pair; with `--registry-tls` a second CA of its own and the
//! registry's serving certificate. Generated fresh for every lab, ECDSA
//! P-256, valid for a week: a lab never outlives that.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use time::{Duration, OffsetDateTime};

/// Paths of the generated PEM files.
#[derive(Debug, Clone)]
pub struct Pki {
    pub ca_cert: PathBuf,
    pub apiserver_cert: PathBuf,
    pub apiserver_key: PathBuf,
    pub admin_cert: PathBuf,
    pub admin_key: PathBuf,
    pub sa_key: PathBuf,
    pub sa_pub: PathBuf,
}

fn params(cn: &str, org: Option<&str>) -> CertificateParams {
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    if let Some(org) = org {
        dn.push(DnType::OrganizationName, org);
    }
    p.distinguished_name = dn;
    let now = OffsetDateTime::now_utc();
    p.not_before = now - Duration::hours(1);
    p.not_after = now + Duration::days(7);
    p
}

/// A self-signed CA: its certificate and the issuer that signs with it.
fn new_ca(cn: &str) -> anyhow::Result<(rcgen::Certificate, Issuer<'static, KeyPair>)> {
    let ca_key = KeyPair::generate()?;
    let mut ca_params = params(cn, None);
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca_params.self_signed(&ca_key)?;
    Ok((ca_cert, Issuer::new(ca_params, ca_key)))
}

/// A serving certificate for these IP addresses and DNS names.
fn serving_cert(
    cn: &str,
    ips: &[&str],
    names: &[&str],
    issuer: &Issuer<'static, KeyPair>,
) -> anyhow::Result<(rcgen::Certificate, KeyPair)> {
    let key = KeyPair::generate()?;
    let mut server = params(cn, None);
    let mut sans = Vec::new();
    for ip in ips {
        sans.push(SanType::IpAddress(ip.parse()?));
    }
    for name in names {
        sans.push(SanType::DnsName((*name).try_into()?));
    }
    server.subject_alt_names = sans;
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    server.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    let cert = server.signed_by(&key, issuer)?;
    Ok((cert, key))
}

fn write_pem(dir: &Path, name: &str, pem: String) -> anyhow::Result<PathBuf> {
    let path = dir.join(name);
    std::fs::write(&path, pem)?;
    Ok(path)
}

/// The registry's PEM files (`--registry-tls`).
#[derive(Debug, Clone)]
pub struct RegistryPki {
    /// The lab registry's own CA: what the harness and Argo CD trust.
    pub ca_cert: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// A CA for the lab's registry alone (not the cluster's: trusting it
/// trusts nothing else) and a serving certificate for 127.0.0.1 and
/// localhost, written into `dir` (created).
pub fn generate_registry(dir: &Path) -> anyhow::Result<RegistryPki> {
    std::fs::create_dir_all(dir)?;
    let (ca_cert, issuer) = new_ca("oci-e2e-local-lab-registry-ca")?;
    let (cert, key) = serving_cert("oci-e2e-registry", &["127.0.0.1"], &["localhost"], &issuer)?;
    Ok(RegistryPki {
        ca_cert: write_pem(dir, "ca.crt", ca_cert.pem())?,
        cert: write_pem(dir, "registry.crt", cert.pem())?,
        key: write_pem(dir, "registry.key", key.serialize_pem())?,
    })
}

/// Writes a fresh PKI into `dir` (created).
pub fn generate(dir: &Path) -> anyhow::Result<Pki> {
    std::fs::create_dir_all(dir)?;
    let write = |name: &str, pem: String| write_pem(dir, name, pem);

    let (ca_cert, issuer) = new_ca("oci-e2e-local-lab-ca")?;
    let (server_cert, server_key) = serving_cert(
        "kube-apiserver",
        &["127.0.0.1", "10.0.0.1"],
        &[
            "localhost",
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
        ],
        &issuer,
    )?;

    let admin_key = KeyPair::generate()?;
    let mut admin = params("oci-e2e-admin", Some("system:masters"));
    admin.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    admin.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    let admin_cert = admin.signed_by(&admin_key, &issuer)?;

    let sa_key = KeyPair::generate()?;

    Ok(Pki {
        ca_cert: write("ca.crt", ca_cert.pem())?,
        apiserver_cert: write("apiserver.crt", server_cert.pem())?,
        apiserver_key: write("apiserver.key", server_key.serialize_pem())?,
        admin_cert: write("admin.crt", admin_cert.pem())?,
        admin_key: write("admin.key", admin_key.serialize_pem())?,
        sa_pub: write("sa.pub", sa_key.public_key_pem())?,
        sa_key: write("sa.key", sa_key.serialize_pem())?,
    })
}

/// A kubeconfig for the admin user, with `namespace` as the context's
/// default (Argo CD's processes read their namespace from it).
pub fn kubeconfig(pki: &Pki, server: &str, namespace: Option<&str>) -> String {
    let ns = namespace
        .map(|n| format!("\n    namespace: {n}"))
        .unwrap_or_default();
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: oci-e2e-local\n  cluster:\n    server: {server}\n    certificate-authority: {ca}\nusers:\n- name: admin\n  user:\n    client-certificate: {cert}\n    client-key: {key}\ncontexts:\n- name: oci-e2e-local\n  context:\n    cluster: oci-e2e-local\n    user: admin{ns}\ncurrent-context: oci-e2e-local\n",
        ca = pki.ca_cert.display(),
        cert = pki.admin_cert.display(),
        key = pki.admin_key.display(),
    )
}
