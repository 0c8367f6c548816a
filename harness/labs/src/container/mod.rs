//! Docker-API helpers (bollard) shared by the KIND lab and its tests, one
//! concern a file: finding an engine (here), podman's service (`podman`),
//! whether names resolve on a network (`dns`), registry containers
//! (`registry`), networks (`network`), `docker exec` (`exec`), images and
//! the test registry image (`image`), and the one raw GET for what
//! bollard's models cannot read (`raw`). Everything is re-exported here.
//!
//! The same code paths run against Docker (nightly CI, developer laptops)
//! and against podman's Docker-compatible service (these machines, see
//! `ensure_podman_service`). Podman 4.3 caveats handled here: published
//! ports always bind an explicit host IP, and callers connect to that IP.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bollard::Docker;
use bollard::errors::Error as BollardError;
use bollard::exec::{CreateExecOptions, StartExecResults};
use bollard::models::{
    ContainerCreateBody, HostConfig, NetworkConnectRequest, NetworkCreateRequest, PortBinding,
    RestartPolicy, RestartPolicyNameEnum,
};
use bollard::query_parameters::{CreateContainerOptionsBuilder, RemoveContainerOptionsBuilder};
use futures::StreamExt;

mod dns;
mod exec;
mod image;
mod network;
mod podman;
mod raw;
mod registry;

pub use dns::*;
pub use exec::*;
pub use image::*;
pub use network::*;
pub(crate) use podman::FileLock;
pub use podman::*;
use raw::raw_get;
pub use registry::*;

/// Docker's usual socket.
pub const DOCKER_SOCKET: &str = "unix:///var/run/docker.sock";
/// The rootful podman service socket `ensure_podman_service` starts.
pub const PODMAN_SOCKET: &str = "unix:///run/podman/podman.sock";
/// Idle timeout of the podman service we start: it exits by itself once
/// nothing has talked to it for this long, so no service lingers.
pub const PODMAN_SERVICE_IDLE_SECS: u32 = 60;
/// The registry test image `build_registry_image` produces.
pub const TEST_REGISTRY_IMAGE: &str = "localhost/oci-e2e-registry:2.8";

/// The CNI plugin that makes container names resolve on a user-defined
/// network under podman's CNI backend (Debian package
/// `golang-github-containernetworking-plugin-dnsname`, which podman only
/// recommends). Docker and podman's netavark backend (with aardvark-dns)
/// resolve names without it.
pub const DNSNAME_PLUGIN: &str = "/usr/lib/cni/dnsname";

/// Directories podman searches for CNI plugins (containers.conf's default
/// `cni_plugin_dirs`).
const CNI_PLUGIN_DIRS: &[&str] = &[
    "/usr/local/libexec/cni",
    "/usr/libexec/cni",
    "/usr/local/lib/cni",
    "/usr/lib/cni",
    "/opt/cni/bin",
];

/// What podman needs on these machines (see docs machine.md): runc, not
/// crun (mixed cgroups); ulimits below the hard limits.
const PODMAN_CONTAINERS_CONF: &str = "[containers]
default_ulimits = [\"nofile=20000:20000\", \"nproc=32768:32768\"]
[engine]
runtime = \"runc\"
cgroup_manager = \"cgroupfs\"
events_logger = \"file\"
";

#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error(
        "no Docker engine answered (tried {tried}): start Docker (or `podman system service \
         unix:///run/podman/podman.sock` and set DOCKER_HOST), or use `--lab local`"
    )]
    NoEngine { tried: String },
    #[error("Docker API: {what}: {source}")]
    Api {
        what: String,
        #[source]
        source: BollardError,
    },
    #[error(
        "container {name} exists but publishes {found} instead of {wanted}: remove it \
         (`docker rm -f {name}`) or configure the lab to use its port"
    )]
    PortMismatch {
        name: String,
        found: String,
        wanted: String,
    },
    #[error("`{command}` in container {container} exited with {code}: {stderr}")]
    ExecFailed {
        container: String,
        command: String,
        code: i64,
        stderr: String,
    },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("container name resolution: {0}")]
    NameResolution(String),
    #[error("{0}")]
    Other(String),
}

fn api(what: impl Into<String>) -> impl FnOnce(BollardError) -> ContainerError {
    let what = what.into();
    move |source| ContainerError::Api { what, source }
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ContainerError {
    let what = what.into();
    move |source| ContainerError::Io { what, source }
}

/// True when the error is the engine saying "no such object".
pub fn is_not_found(err: &BollardError) -> bool {
    matches!(
        err,
        BollardError::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

/// A connected engine and the address it answered on.
#[derive(Clone, Debug)]
pub struct Engine {
    pub docker: Docker,
    /// e.g. `unix:///run/podman/podman.sock`; export as DOCKER_HOST for
    /// child processes (kind) so they talk to the same engine.
    pub host: String,
}

/// Candidate Docker API addresses, in order: `$DOCKER_HOST`, Docker's
/// socket, the rootful podman socket.
pub fn candidate_hosts() -> Vec<String> {
    let mut hosts = Vec::new();
    if let Ok(h) = std::env::var("DOCKER_HOST")
        && !h.is_empty()
    {
        hosts.push(h);
    }
    for h in [DOCKER_SOCKET, PODMAN_SOCKET] {
        if !hosts.iter().any(|x| x == h) {
            hosts.push(h.to_string());
        }
    }
    hosts
}

/// Connects to `host` and pings it.
pub async fn connect_to(host: &str) -> Result<Engine, ContainerError> {
    if let Some(path) = host.strip_prefix("unix://")
        && !Path::new(path).exists()
    {
        return Err(ContainerError::Other(format!("{path} does not exist")));
    }
    let docker = Docker::connect_with_host(host).map_err(api(format!("connect to {host}")))?;
    // A short deadline for the ping: a dead socket should fail fast.
    match tokio::time::timeout(Duration::from_secs(5), docker.ping()).await {
        Ok(Ok(_)) if host == PODMAN_SOCKET => {
            podman::keep_alive();
            Ok(Engine {
                docker,
                host: host.to_string(),
            })
        }
        Ok(Ok(_)) => Ok(Engine {
            docker,
            host: host.to_string(),
        }),
        Ok(Err(e)) => Err(api(format!("ping {host}"))(e)),
        Err(_) => Err(ContainerError::Other(format!(
            "{host} did not answer within 5s"
        ))),
    }
}

/// Containers (their names) whose command line or mounts name `needle`,
/// stopped ones too: what a soak counts as left by a run under that
/// directory. No engine answering: no container can exist.
pub async fn containers_naming(needle: &Path) -> Vec<String> {
    let Ok(engine) = connect().await else {
        return Vec::new();
    };
    let needle = needle.to_string_lossy().into_owned();
    let options = bollard::query_parameters::ListContainersOptionsBuilder::default()
        .all(true)
        .build();
    let list = match engine.docker.list_containers(Some(options)).await {
        Ok(list) => list,
        // Not knowing is not "none": the caller reports it as left.
        Err(e) => {
            return vec![format!(
                "(cannot list the containers of {}: {e})",
                engine.host
            )];
        }
    };
    list.into_iter()
        .filter(|c| {
            c.command
                .as_deref()
                .is_some_and(|cmd| cmd.contains(&needle))
                || c.mounts
                    .iter()
                    .flatten()
                    .any(|m| m.source.as_deref().is_some_and(|s| s.contains(&needle)))
        })
        .map(|c| {
            c.names
                .and_then(|n| n.first().cloned())
                .or(c.id)
                .unwrap_or_default()
        })
        .collect()
}

/// The first engine that answers among [`candidate_hosts`].
pub async fn connect() -> Result<Engine, ContainerError> {
    let mut tried = Vec::new();
    for host in candidate_hosts() {
        match connect_to(&host).await {
            Ok(engine) => return Ok(engine),
            Err(e) => tried.push(format!("{host}: {e}")),
        }
    }
    Err(ContainerError::NoEngine {
        tried: tried.join("; "),
    })
}
