//! The lab registry's configuration (Debian's `docker-registry`,
//! distribution 2.8): the config file, and for `--registry-auth` a random
//! user and password per lab and the htpasswd file that holds only the
//! password's bcrypt hash. The test registries of the suite are written by
//! the same functions.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::BasicAuth;

/// How the lab's registry is secured (`--registry-auth`, `--registry-tls`).
/// Both off: plain HTTP, anonymous, as before.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RegistrySecurity {
    /// htpasswd basic auth with a random user and password per lab.
    pub auth: bool,
    /// HTTPS with a certificate from a CA generated for the lab.
    pub tls: bool,
}

impl RegistrySecurity {
    /// The flags as the user wrote them (for messages).
    pub fn flags(&self) -> Vec<&'static str> {
        let mut flags = Vec::new();
        if self.auth {
            flags.push("--registry-auth");
        }
        if self.tls {
            flags.push("--registry-tls");
        }
        flags
    }

    pub fn any(&self) -> bool {
        self.auth || self.tls
    }
}

/// The lab's registry user and password, new for every lab: the user
/// `oci-e2e-<6 random>`, the password 32 random letters and digits (190
/// bits). Never logged; `BasicAuth`'s `Debug` redacts it.
pub fn generate_credentials() -> BasicAuth {
    BasicAuth {
        username: format!("oci-e2e-{}", random_alphanumeric(6).to_ascii_lowercase()),
        password: random_alphanumeric(32),
    }
}

fn random_alphanumeric(len: usize) -> String {
    use rand::Rng;
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..len)
        .map(|_| char::from(CHARS[rng.random_range(0..CHARS.len())]))
        .collect()
}

/// One htpasswd line, bcrypt `$2y$` like Apache's `htpasswd -B` (the only
/// hash distribution accepts). Cost 5 keeps each authenticated request
/// fast; this guards lab and test registries only.
pub fn htpasswd_line(auth: &BasicAuth) -> Result<String, String> {
    if auth.username.is_empty() || auth.username.contains(':') || auth.username.contains('\n') {
        return Err(format!(
            "the username {:?} must be non-empty, without ':' or newlines",
            auth.username
        ));
    }
    let hash = bcrypt::hash_with_result(&auth.password, 5)
        .map_err(|e| format!("cannot hash the password: {e}"))?
        .format_for_version(bcrypt::Version::TwoY);
    Ok(format!("{}:{}\n", auth.username, hash))
}

/// PEM files of a registry that serves HTTPS.
#[derive(Debug, Clone)]
pub struct ServingTls {
    pub certificate: PathBuf,
    pub key: PathBuf,
}

/// The registry's config file. JSON is valid YAML, and serde_json quotes
/// paths correctly whatever they contain. Deletes are on (cleanup), the
/// upload purger off (it races with tests' restarts), the access log on.
pub fn config_yaml(
    addr: SocketAddr,
    data_dir: &Path,
    htpasswd: Option<&Path>,
    tls: Option<&ServingTls>,
) -> String {
    let mut config = serde_json::json!({
        "version": "0.1",
        "log": {"level": "info", "formatter": "text", "accesslog": {"disabled": false}},
        "storage": {
            "filesystem": {"rootdirectory": data_dir.to_string_lossy()},
            "delete": {"enabled": true},
            "maintenance": {"uploadpurging": {"enabled": false}},
        },
        "http": {"addr": addr.to_string()},
        "health": {"storagedriver": {"enabled": false}},
    });
    if let Some(path) = htpasswd {
        config["auth"] = serde_json::json!({
            "htpasswd": {"realm": "oci-e2e-registry", "path": path.to_string_lossy()}
        });
    }
    if let Some(tls) = tls {
        config["http"]["tls"] = serde_json::json!({
            "certificate": tls.certificate.to_string_lossy(),
            "key": tls.key.to_string_lossy(),
        });
    }
    format!("{config:#}\n")
}

/// Where a lab keeps its registry user and password: readable by the
/// owner only, in the lab directory (for `--reuse` and `capture`), never
/// under `logs/`.
pub fn save_credentials(path: &Path, auth: &BasicAuth) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let text = serde_json::to_vec(&serde_json::json!({
        "username": auth.username,
        "password": auth.password,
    }))?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    file.write_all(&text)?;
    Ok(())
}

pub fn load_credentials(path: &Path) -> anyhow::Result<BasicAuth> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        anyhow::anyhow!(
            "cannot read the lab registry's credentials {}: {e}",
            path.display()
        )
    })?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{} is corrupt: {e}", path.display()))?;
    let field = |name: &str| {
        value[name]
            .as_str()
            .map(String::from)
            .ok_or_else(|| anyhow::anyhow!("{} has no {name}", path.display()))
    };
    Ok(BasicAuth {
        username: field("username")?,
        password: field("password")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_random_and_strong() {
        let a = generate_credentials();
        let b = generate_credentials();
        assert_ne!(a.password, b.password);
        assert_ne!(a.username, b.username);
        assert_eq!(a.password.len(), 32);
        assert!(a.password.chars().all(|c| c.is_ascii_alphanumeric()));
        assert!(a.username.starts_with("oci-e2e-"));
        assert!(htpasswd_line(&a).is_ok());
    }

    #[test]
    fn htpasswd_line_verifies_and_refuses_bad_names() {
        let auth = BasicAuth {
            username: "alice".into(),
            password: "s3cret".into(),
        };
        let line = htpasswd_line(&auth).expect("hash");
        let (user, hash) = line.trim_end().split_once(':').expect("user:hash");
        assert_eq!(user, "alice");
        assert!(hash.starts_with("$2y$05$"), "{hash}");
        assert!(!line.contains("s3cret"));
        assert!(bcrypt::verify("s3cret", hash).expect("verify"));
        let bad = BasicAuth {
            username: "a:b".into(),
            password: "x".into(),
        };
        assert!(htpasswd_line(&bad).is_err());
    }

    #[test]
    fn config_has_storage_delete_auth_and_tls() {
        let yaml = config_yaml(
            "127.0.0.1:5000".parse().expect("addr"),
            Path::new("/tmp/d\"x"),
            Some(Path::new("/tmp/htpasswd")),
            Some(&ServingTls {
                certificate: "/tmp/r.crt".into(),
                key: "/tmp/r.key".into(),
            }),
        );
        let value: serde_json::Value = serde_json::from_str(&yaml).expect("config is JSON");
        assert_eq!(value["http"]["addr"], "127.0.0.1:5000");
        assert_eq!(value["storage"]["delete"]["enabled"], true);
        assert_eq!(value["storage"]["filesystem"]["rootdirectory"], "/tmp/d\"x");
        assert_eq!(value["auth"]["htpasswd"]["path"], "/tmp/htpasswd");
        assert_eq!(value["http"]["tls"]["certificate"], "/tmp/r.crt");
        assert_eq!(value["http"]["tls"]["key"], "/tmp/r.key");
    }

    #[test]
    fn credentials_file_round_trips_and_is_private() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("credentials.json");
        let auth = generate_credentials();
        save_credentials(&path, &auth).expect("save");
        assert_eq!(load_credentials(&path).expect("load"), auth);
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o077, 0, "{mode:o}");
    }
}
