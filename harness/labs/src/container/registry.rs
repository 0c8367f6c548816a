//! Registry containers as the KIND lab wants them: created, reused,
//! restarted, inspected, removed.

use super::*;

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

/// Stops the container `name` (SIGTERM, SIGKILL after 10 s); its volumes
/// and network stay, for [`start_container`].
pub async fn stop_container(engine: &Engine, name: &str) -> Result<(), ContainerError> {
    let options = bollard::query_parameters::StopContainerOptionsBuilder::default()
        .t(10)
        .build();
    engine
        .docker
        .stop_container(name, Some(options))
        .await
        .map_err(api(format!("stop container {name}")))
}

/// Starts the stopped container `name` again.
pub async fn start_container(engine: &Engine, name: &str) -> Result<(), ContainerError> {
    engine
        .docker
        .start_container(
            name,
            None::<bollard::query_parameters::StartContainerOptions>,
        )
        .await
        .map_err(api(format!("start container {name}")))
}
