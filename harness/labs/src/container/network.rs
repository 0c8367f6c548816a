//! Networks: create, find, connect, remove.

use super::*;

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
