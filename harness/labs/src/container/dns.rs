//! Whether container names resolve on a user-defined network (the kind
//! network's `kind-registry:5000`): Docker, netavark, or CNI with dnsname.

use super::*;

/// Which network stack gives containers on a user-defined network their
/// names: the answer decides whether `kind-registry:5000` can resolve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameResolution {
    /// Docker's embedded DNS.
    Docker,
    /// podman with the named network backend (`netavark` or `cni`) and,
    /// for CNI, where the dnsname plugin was found (None: missing).
    Podman {
        backend: String,
        dnsname: Option<PathBuf>,
    },
}

impl NameResolution {
    /// Ok when names resolve; otherwise what to install or switch.
    pub fn check(&self) -> Result<(), ContainerError> {
        match self {
            NameResolution::Podman {
                backend,
                dnsname: None,
            } if backend == "cni" => Err(ContainerError::NameResolution(format!(
                "podman uses its CNI network backend and the dnsname CNI plugin is missing \
                     (looked in {}), so containers on the kind network cannot reach \
                     kind-registry by name: install it with `apt-get install \
                     golang-github-containernetworking-plugin-dnsname`, or switch podman to \
                     the netavark backend with aardvark-dns (`network_backend = \"netavark\"` \
                     in containers.conf)",
                CNI_PLUGIN_DIRS.join(", ")
            ))),
            _ => Ok(()),
        }
    }
}

/// The first CNI plugin directory that holds `dnsname`.
pub fn find_dnsname_plugin() -> Option<PathBuf> {
    CNI_PLUGIN_DIRS
        .iter()
        .map(|d| Path::new(d).join("dnsname"))
        .find(|p| p.is_file())
}

/// Asks the engine who it is and, for podman, which network backend it
/// runs (podman's own API, `GET /libpod/info`, through the same socket).
pub async fn name_resolution(engine: &Engine) -> Result<NameResolution, ContainerError> {
    let version = engine
        .docker
        .version()
        .await
        .map_err(api(format!("version of {}", engine.host)))?;
    let is_podman = version
        .components
        .unwrap_or_default()
        .iter()
        .any(|c| c.name.to_ascii_lowercase().contains("podman"));
    if !is_podman {
        return Ok(NameResolution::Docker);
    }
    let backend = podman_network_backend(&engine.host).await?;
    Ok(NameResolution::Podman {
        dnsname: if backend == "cni" {
            find_dnsname_plugin()
        } else {
            None
        },
        backend,
    })
}

async fn podman_network_backend(host: &str) -> Result<String, ContainerError> {
    let (status, body) = raw_get(host, "/v4.0.0/libpod/info")
        .await
        .map_err(|e| ContainerError::Other(format!("podman info on {host}: {e}")))?;
    if status != 200 {
        return Err(ContainerError::Other(format!(
            "podman info on {host} answered HTTP {status}"
        )));
    }
    let info: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| ContainerError::Other(format!("podman info on {host}: {e}")))?;
    Ok(info
        .pointer("/host/networkBackend")
        .and_then(|v| v.as_str())
        // podman before 4.0 knew only CNI.
        .unwrap_or("cni")
        .to_string())
}
