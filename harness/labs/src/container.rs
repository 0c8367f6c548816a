//! Docker-API helpers (bollard) shared by the KIND lab and its tests:
//! finding an engine, registry containers, networks, `docker exec`.
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

fn podman_on_path() -> bool {
    std::process::Command::new("podman")
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Holds an exclusive `flock` on a file for as long as it lives; tests run
/// as separate processes (nextest) and must not start two services.
struct FileLock {
    _file: std::fs::File,
}

impl FileLock {
    fn acquire(path: &Path) -> Result<Self, ContainerError> {
        use std::os::fd::AsRawFd;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(io(format!("open lock file {}", path.display())))?;
        // SAFETY: flock on a file descriptor we own; released when it closes.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
        if rc != 0 {
            return Err(io(format!("lock {}", path.display()))(
                std::io::Error::last_os_error(),
            ));
        }
        Ok(Self { _file: file })
    }
}

/// Returns a DOCKER_HOST that answers, starting podman's Docker-compatible
/// service when needed: if no engine answers, podman is installed and we
/// are root, writes `/etc/containers/containers.conf` (when absent) and
/// starts `podman system service --time=60 unix:///run/podman/podman.sock`
/// detached. The idle timeout makes it exit by itself after the last use.
pub async fn ensure_podman_service() -> Result<String, ContainerError> {
    if let Ok(engine) = connect().await {
        return Ok(engine.host);
    }
    if !podman_on_path() {
        return Err(ContainerError::NoEngine {
            tried: format!(
                "{} (podman is not installed either)",
                candidate_hosts().join(", ")
            ),
        });
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err(ContainerError::Other(
            "no Docker engine answers and starting podman's system service needs root: run \
             `podman system service --time=0 unix:///run/podman/podman.sock &` as root and set \
             DOCKER_HOST=unix:///run/podman/podman.sock"
                .into(),
        ));
    }
    let run_dir = Path::new("/run/podman");
    std::fs::create_dir_all(run_dir).map_err(io("create /run/podman"))?;
    let _lock =
        tokio::task::spawn_blocking(|| FileLock::acquire(Path::new("/run/podman/oci-e2e.lock")))
            .await
            .map_err(|e| ContainerError::Other(format!("lock task failed: {e}")))??;
    // Another process may have started it while we waited for the lock.
    if let Ok(engine) = connect_to(PODMAN_SOCKET).await {
        return Ok(engine.host);
    }
    let conf = Path::new("/etc/containers/containers.conf");
    if !conf.exists() {
        std::fs::create_dir_all("/etc/containers").map_err(io("create /etc/containers"))?;
        std::fs::write(conf, PODMAN_CONTAINERS_CONF)
            .map_err(io(format!("write {}", conf.display())))?;
    }
    // A stale socket from a service that timed out keeps the new one from binding.
    let sock = Path::new("/run/podman/podman.sock");
    if sock.exists() {
        let _ = std::fs::remove_file(sock);
    }
    let log_path = run_dir.join("oci-e2e-service.log");
    let log =
        std::fs::File::create(&log_path).map_err(io(format!("create {}", log_path.display())))?;
    let log_err = log.try_clone().map_err(io("dup log file"))?;
    let mut cmd = std::process::Command::new("podman");
    cmd.args([
        "system",
        "service",
        &format!("--time={PODMAN_SERVICE_IDLE_SECS}"),
        PODMAN_SOCKET,
    ])
    .stdin(std::process::Stdio::null())
    .stdout(log)
    .stderr(log_err);
    // Its own session: the service must outlive the test process that
    // started it (other tests reuse it) and ends by its idle timeout.
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: setsid is async-signal-safe and touches no shared state.
        unsafe {
            cmd.pre_exec(|| {
                libc::setsid();
                Ok(())
            });
        }
    }
    let mut child = cmd.spawn().map_err(io("start `podman system service`"))?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(engine) = connect_to(PODMAN_SOCKET).await {
            // Reap it in the background so it does not become a zombie.
            std::thread::spawn(move || {
                let _ = child.wait();
            });
            return Ok(engine.host);
        }
        if let Ok(Some(status)) = child.try_wait() {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            return Err(ContainerError::Other(format!(
                "`podman system service` exited with {status}: {}",
                log.trim()
            )));
        }
        if tokio::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(ContainerError::Other(format!(
                "`podman system service` did not answer on {PODMAN_SOCKET} within 30s (log: {})",
                log_path.display()
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

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

/// A registry container as the KIND lab wants it (kind's recipe:
/// `docker run -d --restart=always -p 127.0.0.1:5001:5000 --network bridge
/// --name kind-registry registry:3`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryContainerSpec {
    pub name: String,
    pub image: String,
    /// Always an explicit IP: podman reports an empty host IP as `""`.
    pub host_ip: String,
    pub host_port: u16,
    pub container_port: u16,
    pub restart_always: bool,
    /// Network at creation (`bridge`); others are connected afterwards.
    pub network: Option<String>,
    pub env: Vec<String>,
    /// Command override (the test image has no default command).
    pub cmd: Option<Vec<String>>,
    pub labels: Vec<(String, String)>,
}

impl RegistryContainerSpec {
    /// `127.0.0.1:5001`.
    pub fn host_address(&self) -> String {
        format!("{}:{}", self.host_ip, self.host_port)
    }
}

/// What [`ensure_registry_container`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ensured {
    Created,
    /// It existed but was stopped; it was started.
    Started,
    /// It existed and was running.
    Reused,
}

impl std::fmt::Display for Ensured {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Ensured::Created => "created",
            Ensured::Started => "started (was stopped)",
            Ensured::Reused => "reused (already running)",
        })
    }
}

/// What the engine says about a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerInfo {
    pub id: String,
    pub image: String,
    pub running: bool,
    pub status: String,
    /// Networks it is attached to.
    pub networks: Vec<String>,
    /// `host_ip:host_port` bindings of `<port>/tcp`, keyed by container port.
    pub published: HashMap<u16, Vec<String>>,
    pub restart_policy: Option<String>,
}

/// Inspects a container; `None` when it does not exist.
///
/// Reads the inspect JSON itself rather than through bollard's typed
/// model: podman 4.3 reports states (`stopped`) that the model rejects.
pub async fn inspect_container(
    engine: &Engine,
    name: &str,
) -> Result<Option<ContainerInfo>, ContainerError> {
    let (status, body) = raw_get(&engine.host, &format!("/containers/{name}/json"))
        .await
        .map_err(|e| ContainerError::Other(format!("inspect container {name}: {e}")))?;
    if status == 404 {
        return Ok(None);
    }
    if status != 200 {
        return Err(ContainerError::Other(format!(
            "inspect container {name}: HTTP {status}: {}",
            String::from_utf8_lossy(&body).trim()
        )));
    }
    let v: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| ContainerError::Other(format!("inspect container {name}: bad JSON: {e}")))?;
    Ok(Some(container_info(&v)))
}

/// The fields we use from a container's inspect JSON.
fn container_info(v: &serde_json::Value) -> ContainerInfo {
    let str_of = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
    let mut networks: Vec<String> = v["NetworkSettings"]["Networks"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    networks.sort();
    // Configured bindings are authoritative for a stopped container;
    // NetworkSettings.Ports is only filled while it runs.
    let running_ports = &v["NetworkSettings"]["Ports"];
    let ports = match running_ports.as_object() {
        Some(m) if !m.is_empty() => running_ports,
        _ => &v["HostConfig"]["PortBindings"],
    };
    let mut published = HashMap::new();
    for (key, bindings) in ports.as_object().into_iter().flatten() {
        let Some(port) = key.strip_suffix("/tcp").and_then(|p| p.parse::<u16>().ok()) else {
            continue;
        };
        let addrs = bindings
            .as_array()
            .into_iter()
            .flatten()
            .map(|b| format!("{}:{}", str_of(&b["HostIp"]), str_of(&b["HostPort"])))
            .collect();
        published.insert(port, addrs);
    }
    let image = match v["Config"]["Image"].as_str() {
        Some(i) if !i.is_empty() => i.to_string(),
        _ => str_of(&v["Image"]),
    };
    ContainerInfo {
        id: str_of(&v["Id"]),
        image,
        running: v["State"]["Running"].as_bool().unwrap_or(false),
        status: str_of(&v["State"]["Status"]),
        networks,
        published,
        restart_policy: v["HostConfig"]["RestartPolicy"]["Name"]
            .as_str()
            .filter(|n| !n.is_empty())
            .map(String::from),
    }
}

/// `GET path` on a Docker API over HTTP/1.0 (no chunked bodies), for the
/// few answers bollard's typed models cannot read from podman.
async fn raw_get(host: &str, path: &str) -> Result<(u16, Vec<u8>), String> {
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

/// Creates the registry container, or reuses one of that name: a running
/// one is left alone, a stopped one is started. A container of that name
/// publishing another port is an error (we would push to the wrong place).
pub async fn ensure_registry_container(
    engine: &Engine,
    spec: &RegistryContainerSpec,
) -> Result<Ensured, ContainerError> {
    let docker = &engine.docker;
    if let Some(info) = inspect_container(engine, &spec.name).await? {
        let wanted = spec.host_address();
        let found = info
            .published
            .get(&spec.container_port)
            .cloned()
            .unwrap_or_default();
        // Any host IP on the same host port reaches it from 127.0.0.1 too.
        let port = spec.host_port.to_string();
        if !found
            .iter()
            .any(|a| a.rsplit_once(':').is_some_and(|(_, p)| p == port))
        {
            return Err(ContainerError::PortMismatch {
                name: spec.name.clone(),
                found: if found.is_empty() {
                    "no port".into()
                } else {
                    found.join(", ")
                },
                wanted: format!("{wanted} -> {}", spec.container_port),
            });
        }
        if info.running {
            return Ok(Ensured::Reused);
        }
        docker
            .start_container(
                &spec.name,
                None::<bollard::query_parameters::StartContainerOptions>,
            )
            .await
            .map_err(api(format!("start container {}", spec.name)))?;
        return Ok(Ensured::Started);
    }
    let port_key = format!("{}/tcp", spec.container_port);
    let host_config = HostConfig {
        port_bindings: Some(HashMap::from([(
            port_key.clone(),
            Some(vec![PortBinding {
                host_ip: Some(spec.host_ip.clone()),
                host_port: Some(spec.host_port.to_string()),
            }]),
        )])),
        restart_policy: spec.restart_always.then_some(RestartPolicy {
            name: Some(RestartPolicyNameEnum::ALWAYS),
            maximum_retry_count: None,
        }),
        network_mode: spec.network.clone(),
        ..Default::default()
    };
    let body = ContainerCreateBody {
        image: Some(spec.image.clone()),
        cmd: spec.cmd.clone(),
        env: (!spec.env.is_empty()).then(|| spec.env.clone()),
        exposed_ports: Some(vec![port_key]),
        labels: (!spec.labels.is_empty()).then(|| spec.labels.iter().cloned().collect()),
        host_config: Some(host_config),
        ..Default::default()
    };
    let options = CreateContainerOptionsBuilder::default()
        .name(&spec.name)
        .build();
    docker.create_container(Some(options), body).await.map_err(|e| match &e {
        BollardError::DockerResponseServerError { status_code: 404, .. } => ContainerError::Other(format!(
            "image {} is not available to the engine ({e}): pull it (`docker pull {}`) or configure another registry image",
            spec.image, spec.image
        )),
        _ => api(format!("create container {}", spec.name))(e),
    })?;
    if let Err(e) = docker
        .start_container(
            &spec.name,
            None::<bollard::query_parameters::StartContainerOptions>,
        )
        .await
    {
        // Do not leave a created-but-broken container behind.
        let _ = remove_container(engine, &spec.name).await;
        return Err(api(format!("start container {}", spec.name))(e));
    }
    Ok(Ensured::Created)
}

/// Force-removes a container; `false` when there was none.
pub async fn remove_container(engine: &Engine, name: &str) -> Result<bool, ContainerError> {
    let docker = &engine.docker;
    let options = RemoveContainerOptionsBuilder::default()
        .force(true)
        .v(true)
        .build();
    match docker.remove_container(name, Some(options)).await {
        Ok(()) => Ok(true),
        Err(e) if is_not_found(&e) => Ok(false),
        Err(e) => Err(api(format!("remove container {name}"))(e)),
    }
}

/// True when the network exists.
pub async fn network_exists(engine: &Engine, name: &str) -> Result<bool, ContainerError> {
    let docker = &engine.docker;
    match docker
        .inspect_network(
            name,
            None::<bollard::query_parameters::InspectNetworkOptions>,
        )
        .await
    {
        Ok(_) => Ok(true),
        Err(e) if is_not_found(&e) => Ok(false),
        Err(e) => Err(api(format!("inspect network {name}"))(e)),
    }
}

/// Creates a bridge network unless it exists; `true` when created.
pub async fn ensure_network(engine: &Engine, name: &str) -> Result<bool, ContainerError> {
    let docker = &engine.docker;
    if network_exists(engine, name).await? {
        return Ok(false);
    }
    let req = NetworkCreateRequest {
        name: name.to_string(),
        driver: Some("bridge".into()),
        ..Default::default()
    };
    docker
        .create_network(req)
        .await
        .map_err(api(format!("create network {name}")))?;
    Ok(true)
}

/// Removes a network; `false` when there was none.
pub async fn remove_network(engine: &Engine, name: &str) -> Result<bool, ContainerError> {
    let docker = &engine.docker;
    match docker.remove_network(name).await {
        Ok(()) => Ok(true),
        Err(e) if is_not_found(&e) => Ok(false),
        Err(e) => Err(api(format!("remove network {name}"))(e)),
    }
}

/// `docker network connect NETWORK CONTAINER` unless already connected;
/// `true` when it connected now.
pub async fn connect_network(
    engine: &Engine,
    network: &str,
    container: &str,
) -> Result<bool, ContainerError> {
    let docker = &engine.docker;
    let info = inspect_container(engine, container).await?.ok_or_else(|| {
        ContainerError::Other(format!(
            "container {container} does not exist; cannot connect it to {network}"
        ))
    })?;
    if info.networks.iter().any(|n| n == network) {
        return Ok(false);
    }
    let req = NetworkConnectRequest {
        container: container.to_string(),
        endpoint_config: None,
    };
    docker
        .connect_network(network, req)
        .await
        .map_err(api(format!(
            "connect container {container} to network {network}"
        )))?;
    Ok(true)
}

/// Output of a finished exec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    pub exit_code: i64,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `argv` in a running container and waits for it (`docker exec`).
pub async fn exec(
    engine: &Engine,
    container: &str,
    argv: &[&str],
) -> Result<ExecOutput, ContainerError> {
    let docker = &engine.docker;
    let created = docker
        .create_exec(
            container,
            CreateExecOptions {
                cmd: Some(argv.iter().map(|s| s.to_string()).collect::<Vec<_>>()),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                ..Default::default()
            },
        )
        .await
        .map_err(api(format!("exec in {container}")))?;
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    match docker
        .start_exec(&created.id, None)
        .await
        .map_err(api(format!("start exec in {container}")))?
    {
        StartExecResults::Attached { mut output, .. } => {
            while let Some(chunk) = output.next().await {
                match chunk.map_err(api(format!("read exec output from {container}")))? {
                    bollard::container::LogOutput::StdErr { message } => {
                        stderr.extend_from_slice(&message)
                    }
                    other => stdout.extend_from_slice(&other.into_bytes()),
                }
            }
        }
        StartExecResults::Detached => {}
    }
    // The stream ends when the process does; the exit code may lag a little.
    let mut exit_code = None;
    for _ in 0..50 {
        let inspect = docker
            .inspect_exec(&created.id)
            .await
            .map_err(api(format!("inspect exec in {container}")))?;
        if inspect.running != Some(true) {
            exit_code = inspect.exit_code;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(ExecOutput {
        exit_code: exit_code.unwrap_or(-1),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    })
}

/// Writes `content` to `path` inside a running container, creating the
/// parent directory (what kind's recipe does with `docker exec ... cp
/// /dev/stdin`). Content and path travel as argv, never through a shell
/// string, so nothing needs quoting.
pub async fn write_file_in_container(
    engine: &Engine,
    container: &str,
    path: &str,
    content: &str,
) -> Result<(), ContainerError> {
    let dir = Path::new(path)
        .parent()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|| "/".into());
    let script = "mkdir -p \"$1\" && printf '%s' \"$3\" > \"$2\"";
    let argv = ["sh", "-c", script, "sh", dir.as_str(), path, content];
    let out = exec(engine, container, &argv).await?;
    if out.exit_code != 0 {
        return Err(ContainerError::ExecFailed {
            container: container.into(),
            command: format!("write {path}"),
            code: out.exit_code,
            stderr: out.stderr.trim().to_string(),
        });
    }
    Ok(())
}

/// True when the engine has the image.
pub async fn image_exists(engine: &Engine, image: &str) -> Result<bool, ContainerError> {
    let docker = &engine.docker;
    match docker.inspect_image(image).await {
        Ok(_) => Ok(true),
        Err(e) if is_not_found(&e) => Ok(false),
        Err(e) => Err(api(format!("inspect image {image}"))(e)),
    }
}

/// Registry config for the test image: Debian's, minus htpasswd auth.
const TEST_REGISTRY_CONFIG: &str = "version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: /var/lib/registry
  delete:
    enabled: true
http:
  addr: :5000
";

/// Command the test registry image runs.
pub fn test_registry_cmd() -> Vec<String> {
    vec![
        "/usr/bin/docker-registry".into(),
        "serve".into(),
        "/etc/docker/registry/config.yml".into(),
    ]
}

fn shared_libraries(binary: &Path) -> Result<Vec<PathBuf>, ContainerError> {
    let out = std::process::Command::new("ldd")
        .arg(binary)
        .output()
        .map_err(io(format!("run ldd {}", binary.display())))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        // Statically linked binaries make ldd fail; they need nothing.
        return Ok(Vec::new());
    }
    Ok(text
        .lines()
        .filter_map(|line| {
            // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" or "/lib64/ld-linux-x86-64.so.2 (0x...)"
            let candidate = match line.split_once("=>") {
                Some((_, rhs)) => rhs.split_whitespace().next(),
                None => line.split_whitespace().next(),
            }?;
            candidate.starts_with('/').then(|| PathBuf::from(candidate))
        })
        .collect())
}

fn append_file(
    builder: &mut tar::Builder<std::fs::File>,
    path_in_image: &str,
    data: &[u8],
    mode: u32,
) -> Result<(), ContainerError> {
    let mut header = tar::Header::new_gnu();
    header.set_size(data.len() as u64);
    header.set_mode(mode);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    builder
        .append_data(&mut header, path_in_image.trim_start_matches('/'), data)
        .map_err(io(format!("add {path_in_image} to the rootfs tar")))
}

fn append_dir(
    builder: &mut tar::Builder<std::fs::File>,
    path_in_image: &str,
) -> Result<(), ContainerError> {
    let mut header = tar::Header::new_gnu();
    header.set_size(0);
    header.set_mode(0o755);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Directory);
    builder
        .append_data(
            &mut header,
            format!("{}/", path_in_image.trim_start_matches('/')),
            std::io::empty(),
        )
        .map_err(io(format!("add {path_in_image}/ to the rootfs tar")))
}

fn append_symlink(
    builder: &mut tar::Builder<std::fs::File>,
    path_in_image: &str,
    target: &str,
) -> Result<(), ContainerError> {
    let mut header = tar::Header::new_gnu();
    header.set_size(0);
    header.set_mode(0o777);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Symlink);
    builder
        .append_link(&mut header, path_in_image.trim_start_matches('/'), target)
        .map_err(io(format!("add symlink {path_in_image} to the rootfs tar")))
}

/// Writes the rootfs tar of the test registry image: static busybox (a
/// shell for `docker exec`), Debian's registry binary with its libc and
/// loader, and a config without htpasswd.
pub fn write_registry_rootfs(
    tar_path: &Path,
    registry_binary: &Path,
    busybox: &Path,
) -> Result<(), ContainerError> {
    let file =
        std::fs::File::create(tar_path).map_err(io(format!("create {}", tar_path.display())))?;
    let mut builder = tar::Builder::new(file);
    for dir in [
        "/bin",
        "/usr",
        "/usr/bin",
        "/etc",
        "/etc/docker",
        "/etc/docker/registry",
        "/var",
        "/var/lib",
        "/var/lib/registry",
        "/tmp",
    ] {
        append_dir(&mut builder, dir)?;
    }
    let busybox_bytes = std::fs::read(busybox).map_err(io(format!(
        "read {} (install busybox-static)",
        busybox.display()
    )))?;
    append_file(&mut builder, "/bin/busybox", &busybox_bytes, 0o755)?;
    for applet in ["sh", "mkdir", "cat", "printf", "ls", "rm", "wget"] {
        append_symlink(&mut builder, &format!("/bin/{applet}"), "busybox")?;
    }
    let registry_bytes = std::fs::read(registry_binary).map_err(io(format!(
        "read {} (install docker-registry)",
        registry_binary.display()
    )))?;
    append_file(
        &mut builder,
        "/usr/bin/docker-registry",
        &registry_bytes,
        0o755,
    )?;
    let mut dirs_done: Vec<String> = Vec::new();
    for lib in shared_libraries(registry_binary)? {
        // Follow symlinks (the loader is one): the image gets the bytes.
        let bytes = std::fs::read(&lib).map_err(io(format!("read {}", lib.display())))?;
        let mut parents: Vec<String> = Vec::new();
        let mut p = lib.parent();
        while let Some(dir) = p {
            if dir == Path::new("/") {
                break;
            }
            parents.push(dir.to_string_lossy().into_owned());
            p = dir.parent();
        }
        for dir in parents.into_iter().rev() {
            if !dirs_done.contains(&dir) {
                append_dir(&mut builder, &dir)?;
                dirs_done.push(dir);
            }
        }
        append_file(&mut builder, &lib.to_string_lossy(), &bytes, 0o755)?;
    }
    append_file(
        &mut builder,
        "/etc/docker/registry/config.yml",
        TEST_REGISTRY_CONFIG.as_bytes(),
        0o644,
    )?;
    builder
        .finish()
        .map_err(io(format!("finish {}", tar_path.display())))?;
    Ok(())
}

/// Builds (once) the small registry image tests use, since no image can be
/// pulled here: an import (`podman import`) of [`write_registry_rootfs`]. Skipped when
/// the image exists. Returns the image reference.
pub async fn build_registry_image(engine: &Engine) -> Result<String, ContainerError> {
    let docker = &engine.docker;
    if image_exists(engine, TEST_REGISTRY_IMAGE).await? {
        return Ok(TEST_REGISTRY_IMAGE.to_string());
    }
    // Tests run in parallel processes: one builds, the others wait and reuse.
    let lock_path = std::env::temp_dir().join("oci-e2e-registry-image.lock");
    let _lock = tokio::task::spawn_blocking(move || FileLock::acquire(&lock_path))
        .await
        .map_err(|e| ContainerError::Other(format!("lock task failed: {e}")))??;
    if image_exists(engine, TEST_REGISTRY_IMAGE).await? {
        return Ok(TEST_REGISTRY_IMAGE.to_string());
    }
    let dir = tempfile::tempdir().map_err(io("create a temporary directory"))?;
    let tar_path = dir.path().join("rootfs.tar");
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .map(Path::new)
        .find(|p| p.exists())
        .ok_or_else(|| {
            ContainerError::Other("busybox not found: `apt-get install busybox-static`".into())
        })?;
    let tar_for_task = tar_path.clone();
    let busybox = busybox.to_path_buf();
    tokio::task::spawn_blocking(move || {
        write_registry_rootfs(
            &tar_for_task,
            Path::new("/usr/bin/docker-registry"),
            &busybox,
        )
    })
    .await
    .map_err(|e| ContainerError::Other(format!("rootfs task failed: {e}")))??;
    // `podman import` / `docker import` through the API: POST
    // /images/create?fromSrc=- with the tar as body, so Docker and podman
    // engines both get the image.
    let tar = tokio::fs::read(&tar_path)
        .await
        .map_err(io(format!("read {}", tar_path.display())))?;
    let options = bollard::query_parameters::CreateImageOptions {
        from_src: Some("-".into()),
        // The tag inside `repo`: podman ignores the separate `tag` field
        // on imports; Docker accepts both forms.
        repo: Some(TEST_REGISTRY_IMAGE.into()),
        // Shell form with `exec`: podman splits a JSON-array change at its
        // commas, and `exec` keeps the registry as PID 1 for stop signals.
        changes: vec![format!("CMD exec {}", test_registry_cmd().join(" "))],
        ..Default::default()
    };
    let mut stream = docker.create_image(Some(options), Some(bollard::body_full(tar.into())), None);
    let mut failure = None;
    while let Some(item) = stream.next().await {
        if let Err(e) = item {
            failure = Some(e);
            break;
        }
    }
    if let Some(e) = failure {
        // Two processes may have raced to build it; theirs is as good.
        if image_exists(engine, TEST_REGISTRY_IMAGE).await? {
            return Ok(TEST_REGISTRY_IMAGE.to_string());
        }
        return Err(api(format!("import {TEST_REGISTRY_IMAGE}"))(e));
    }
    if !image_exists(engine, TEST_REGISTRY_IMAGE).await? {
        return Err(ContainerError::Other(format!(
            "the engine accepted the import but has no {TEST_REGISTRY_IMAGE} afterwards"
        )));
    }
    Ok(TEST_REGISTRY_IMAGE.to_string())
}
