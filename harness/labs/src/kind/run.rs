//! Executing the KIND plan: bollard for the registry container, network
//! and node files, the `kind` binary for the cluster, kube-rs for the rest.

use std::collections::BTreeMap;
use std::fmt;
use std::process::Stdio;
use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use tokio::io::AsyncWriteExt;

use super::manifest::fetch_install_yaml;
use super::plan::{FIELD_MANAGER, KindAction, SETTINGS_FIELD_MANAGER};
use super::{KindError, KindLab, KindLabConfig, kind_binary};
use crate::container::{self, ContainerInfo, Engine};
use harness_core::poll::{Observation, PollOutcome};
use harness_core::progress::Progress;

pub(super) fn kube_err(what: impl Into<String>) -> impl FnOnce(kube::Error) -> KindError {
    let what = what.into();
    move |source| KindError::Kube { what, source }
}

async fn engine() -> Result<Engine, KindError> {
    container::ensure_engine().await.map_err(|e| match e {
        container::ContainerError::NoEngine { tried } => {
            KindError::NoEngine(format!("none answered ({tried})"))
        }
        other => KindError::Container(other),
    })
}

/// The engine as kind must be told about it: its address (DOCKER_HOST),
/// and whether it is podman. kind's own detection runs `docker -v` and
/// picks Docker whenever a `docker` CLI is installed, daemon or not, so on
/// podman the lab sets KIND_EXPERIMENTAL_PROVIDER=podman.
#[derive(Debug, Clone)]
pub(crate) struct KindEngine {
    host: String,
    podman: bool,
}

impl KindEngine {
    async fn of(engine: &Engine) -> Result<Self, KindError> {
        let podman = matches!(
            container::name_resolution(engine).await?,
            container::NameResolution::Podman { .. }
        );
        Ok(Self {
            host: engine.host.clone(),
            podman,
        })
    }
}

/// Runs `kind <args>` against `engine`, feeding `stdin`.
async fn kind(
    engine: Option<&KindEngine>,
    args: &[&str],
    stdin: Option<&str>,
) -> Result<String, KindError> {
    let bin = kind_binary();
    tracing::debug!(kind = %bin.display(), ?args, "run kind");
    let mut cmd = tokio::process::Command::new(&bin);
    cmd.args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // If we are dropped mid-way (Ctrl-C), do not leave kind running.
        .kill_on_drop(true);
    if let Some(engine) = engine {
        cmd.env("DOCKER_HOST", &engine.host);
        if engine.podman {
            cmd.env("KIND_EXPERIMENTAL_PROVIDER", "podman");
        }
    }
    let command = format!("{} {}", bin.display(), args.join(" "));
    let mut child = cmd
        .spawn()
        .map_err(|e| KindError::NoKind(format!("`{command}`: {e}")))?;
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(input.as_bytes())
            .await
            .map_err(|source| KindError::Io {
                what: format!("write stdin of `{command}`"),
                source,
            })?;
        drop(pipe);
    }
    let out = child
        .wait_with_output()
        .await
        .map_err(|source| KindError::Io {
            what: format!("wait for `{command}`"),
            source,
        })?;
    if !out.status.success() {
        return Err(KindError::KindCommand {
            command,
            stderr: format!(
                "{} ({})",
                harness_core::command::stderr_tail(&out, 20),
                out.status
            ),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

async fn cluster_exists(engine_host: Option<&KindEngine>, name: &str) -> Result<bool, KindError> {
    let out = kind(engine_host, &["get", "clusters"], None).await?;
    Ok(out.lines().any(|l| l.trim() == name))
}

async fn cluster_nodes(
    engine_host: Option<&KindEngine>,
    name: &str,
) -> Result<Vec<String>, KindError> {
    let out = kind(engine_host, &["get", "nodes", "--name", name], None).await?;
    Ok(out
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect())
}

/// A client for the cluster from `kind get kubeconfig` (also written to
/// the state dir, for people who want kubectl on it).
pub async fn kube_client(cfg: &KindLabConfig) -> Result<kube::Client, KindError> {
    let host = match container::ensure_engine().await {
        Ok(engine) => Some(KindEngine::of(&engine).await?),
        Err(_) => None,
    };
    let yaml = kind(
        host.as_ref(),
        &["get", "kubeconfig", "--name", &cfg.cluster_name],
        None,
    )
    .await?;
    let state = cfg.state_dir();
    let path = state.join("kubeconfig");
    tokio::fs::create_dir_all(&state)
        .await
        .map_err(|source| KindError::Io {
            what: format!("create {}", state.display()),
            source,
        })?;
    // Owner-only: it holds the cluster's admin credentials.
    let write = async {
        let mut file = tokio::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)
            .await?;
        file.write_all(yaml.as_bytes()).await
    };
    write.await.map_err(|source| KindError::Io {
        what: format!("write {}", path.display()),
        source,
    })?;
    let kubeconfig = kube::config::Kubeconfig::from_yaml(&yaml).map_err(|e| {
        KindError::Other(format!(
            "kind's kubeconfig for {} is unreadable: {e}",
            cfg.cluster_name
        ))
    })?;
    let options = kube::config::KubeConfigOptions {
        context: Some(cfg.kube_context()),
        ..Default::default()
    };
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .map_err(|e| KindError::Other(format!("kubeconfig context {}: {e}", cfg.kube_context())))?;
    kube::Client::try_from(config).map_err(kube_err("create a client"))
}

/// Brings the lab up: executes [`super::plan`] action by action, reusing
/// whatever already exists (registry container, cluster, install). When
/// the node image cannot be had, the lab runs the offline images instead
/// ([`resolve_images`]).
pub async fn up(cfg: &KindLabConfig, progress: &Progress) -> Result<KindLab, KindError> {
    cfg.validate()?;
    let engine = engine().await?;
    let kind_engine = KindEngine::of(&engine).await?;
    ensure_kind(&cfg.cache_dir, progress).await?;
    let kind_version = super::kind_version().await.map_err(KindError::NoKind)?;
    // Other kind releases usually work with the pinned node image, but
    // that is not what nightly CI checks: say so.
    if !kind_version.contains(&format!("{} ", cfg.kind_version)) {
        progress.warn(format!(
            "`kind version` says {kind_version:?}; the lab is pinned to kind {}",
            cfg.kind_version
        ));
    }
    progress.info(format!(
        "lab kind: {} API at {}",
        if kind_engine.podman {
            "podman's Docker"
        } else {
            "Docker"
        },
        engine.host
    ));
    // Argo CD pulls from `kind-registry:5000` by name: check that names
    // resolve on the engine's networks before anything is created.
    container::name_resolution(&engine).await?.check()?;
    let cfg = &resolve_images(cfg, &engine, progress).await?;
    let plan = super::plan(cfg)?;
    let mut client: Option<kube::Client> = None;
    for action in &plan.actions {
        execute(cfg, &engine, &kind_engine, &mut client, action, progress).await?;
    }
    let client = match client {
        Some(c) => c,
        None => kube_client(cfg).await?,
    };
    Ok(KindLab::with_client(cfg, client))
}

/// Builds (or finds in the engine's store) everything `cfg`'s offline
/// lab runs: the registry image and the node and component images, so
/// that a later `up` only starts things. `cargo xtask test` calls it for
/// [`KindLabConfig::test_suite`] while the tests compile.
pub async fn prepare_offline_images(
    cfg: &KindLabConfig,
    progress: &Progress,
) -> Result<(), KindError> {
    let engine = engine().await?;
    let plan = super::plan(&cfg.with_offline_images())?;
    for action in &plan.actions {
        match action {
            KindAction::RegistryImage { .. } => {
                container::build_registry_image(&engine).await?;
            }
            KindAction::OfflineImages { .. } => {
                offline_images(&engine, cfg, action, progress).await?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// The verified install.yaml and the offline images of an
/// [`KindAction::OfflineImages`] action, built when missing.
async fn offline_images(
    engine: &Engine,
    cfg: &KindLabConfig,
    action: &KindAction,
    progress: &Progress,
) -> Result<(String, super::image::OfflineImages), KindError> {
    let KindAction::OfflineImages {
        mirror,
        argocd_version,
        install_url,
        install_sha256,
        install_cache_path,
        ..
    } = action
    else {
        return Err(KindError::Other(format!(
            "not an offline images action: {action}"
        )));
    };
    let install = fetch_install_yaml(
        install_url,
        argocd_version,
        install_sha256,
        install_cache_path,
    )
    .await?;
    let install = String::from_utf8_lossy(&install).into_owned();
    let images = super::image::ensure_images(
        engine,
        &cfg.cache_dir,
        mirror,
        argocd_version,
        &install,
        progress,
    )
    .await?;
    Ok((install, images))
}

/// kind's binary: `$KIND`, PATH, or the tool cache; built from the Go
/// module proxy into the cache when none of them has it.
async fn ensure_kind(cache_dir: &std::path::Path, progress: &Progress) -> Result<(), KindError> {
    if super::kind_version().await.is_ok() {
        return Ok(());
    }
    let opts = harness_tools::ProvisionOptions {
        tools: [harness_tools::Tool::Kind].into_iter().collect(),
        cache_dir: cache_dir.to_path_buf(),
        ..Default::default()
    };
    harness_tools::provision(&opts, progress)
        .await
        .map_err(|e| KindError::NoKind(e.to_string()))?;
    Ok(())
}

/// The configuration `up` runs: `cfg` itself when its node image is
/// present or can be pulled, or when the offline images were asked for;
/// otherwise `cfg` with the offline images, said as a warning. Only kind's
/// own default node image falls back: a node image the user named that
/// cannot be had is an error.
pub async fn resolve_images(
    cfg: &KindLabConfig,
    engine: &Engine,
    progress: &Progress,
) -> Result<KindLabConfig, KindError> {
    if cfg.offline_images {
        return Ok(cfg.with_offline_images());
    }
    if container::image_exists(engine, &cfg.node_image).await? {
        return Ok(cfg.clone());
    }
    let task = progress.task(format!("pull {}", cfg.node_image));
    match container::pull_image(engine, &cfg.node_image, Duration::from_secs(120)).await {
        Ok(()) => {
            task.done("pulled");
            Ok(cfg.clone())
        }
        Err(e) if cfg.node_image == super::DEFAULT_NODE_IMAGE => {
            task.fail(e.to_string());
            progress.warn(
                "kind's node image cannot be pulled here: building the offline node and \
                 component images from Debian packages and Go modules instead (cached; a \
                 few minutes the first time, see docs/labs/kind.md); `--build-images` asks \
                 for them directly",
            );
            Ok(cfg.with_offline_images())
        }
        Err(e) => {
            task.fail(e.to_string());
            Err(KindError::Other(format!(
                "node image {} is not present and cannot be pulled ({e}); pull or load it, or \
                 drop OCI_E2E_KIND_NODE_IMAGE to use the offline images",
                cfg.node_image
            )))
        }
    }
}

async fn client_for<'a>(
    cfg: &KindLabConfig,
    client: &'a mut Option<kube::Client>,
) -> Result<&'a kube::Client, KindError> {
    if client.is_none() {
        *client = Some(kube_client(cfg).await?);
    }
    client
        .as_ref()
        .ok_or_else(|| KindError::Other("no Kubernetes client".into()))
}

async fn execute(
    cfg: &KindLabConfig,
    engine: &Engine,
    kind_engine: &KindEngine,
    client: &mut Option<kube::Client>,
    action: &KindAction,
    progress: &Progress,
) -> Result<(), KindError> {
    let host = Some(kind_engine);
    tracing::debug!(?action, "kind lab action");
    match action {
        KindAction::HostPrepare => prepare_host(progress).await?,
        KindAction::EnsureNetwork { name } => {
            let created = container::ensure_network(engine, name).await?;
            progress.info(format!(
                "network {name}: {}",
                if created { "created" } else { "exists" }
            ));
        }
        KindAction::RegistryImage { image } => {
            let task = progress.task(format!("registry image {image}"));
            match container::build_registry_image(engine).await {
                Ok(built) => task.done(format!("{built} ready")),
                Err(e) => {
                    task.fail(e.to_string());
                    return Err(e.into());
                }
            }
        }
        KindAction::OfflineImages { .. } => {
            let (install, images) = offline_images(engine, cfg, action, progress).await?;
            let unserved = super::image::unserved_images(&install, &images.components);
            if !unserved.is_empty() {
                progress.info(format!(
                    "offline images: not served (their workloads are scaled to zero): {}",
                    unserved.join(", ")
                ));
            }
            super::image::push_images(engine, &images, &super::host_registry(cfg), progress)
                .await?;
        }
        KindAction::NodeCni { node } => {
            let client = client_for(cfg, client).await?.clone();
            write_node_cni(engine, &client, node).await?;
            progress.info(format!("CNI config written on {node}"));
        }
        KindAction::RegistryContainer { spec } => {
            let task = progress.task(format!("registry container {}", spec.name));
            match container::ensure_registry_container(engine, spec).await {
                Ok(done) => task.done(format!(
                    "{done}, {} -> {}",
                    spec.host_address(),
                    spec.container_port
                )),
                Err(e) => {
                    task.fail(e.to_string());
                    return Err(e.into());
                }
            }
        }
        KindAction::CreateCluster { name, config, .. } => {
            let task = progress.task(format!("kind cluster {name}"));
            if cluster_exists(host, name).await? {
                task.done("reused (already exists)");
            } else {
                match kind(
                    host,
                    &["create", "cluster", "--name", name, "--config", "-"],
                    Some(config),
                )
                .await
                {
                    Ok(_) => task.done("created"),
                    Err(e) => {
                        task.fail(e.to_string());
                        return Err(e);
                    }
                }
            }
        }
        KindAction::NodeRegistryHosts {
            node,
            path,
            content,
        } => {
            let nodes = cluster_nodes(host, &cfg.cluster_name).await?;
            if !nodes.contains(node) {
                return Err(KindError::Other(format!(
                    "node {node} is not part of cluster {} (kind get nodes: {}): delete the cluster \
                     (`cargo xtask lab down --lab kind`) so it is created with the configured nodes",
                    cfg.cluster_name,
                    nodes.join(", ")
                )));
            }
            container::write_file_in_container(engine, node, path, content).await?;
            progress.info(format!("wrote {path} on {node}"));
        }
        KindAction::ConnectNetwork {
            network,
            container: name,
        } => {
            let connected = container::connect_network(engine, network, name).await?;
            progress.info(format!(
                "network {network}: {name} {}",
                if connected {
                    "connected"
                } else {
                    "already connected"
                }
            ));
        }
        _ => {
            let client = client_for(cfg, client).await?.clone();
            execute_in_cluster(&client, action, progress).await?;
        }
    }
    Ok(())
}

/// kind's podman provider bind-mounts `/lib/modules` (podman refuses a
/// missing source; these machines have no modules), and a node's systemd
/// and kubelet need more inotify instances than the default 128.
async fn prepare_host(progress: &Progress) -> Result<(), KindError> {
    let modules = std::path::Path::new("/lib/modules");
    if !modules.exists() {
        std::fs::create_dir_all(modules).map_err(|source| KindError::Io {
            what: "create /lib/modules (kind bind-mounts it into every node; run as root or \
                   create it once)"
                .into(),
            source,
        })?;
        progress.info("host: created the empty /lib/modules that kind bind-mounts into nodes");
    }
    for (key, want) in [
        ("fs/inotify/max_user_instances", 512u64),
        ("fs/inotify/max_user_watches", 524_288),
    ] {
        let path = std::path::Path::new("/proc/sys").join(key);
        let have: u64 = std::fs::read_to_string(&path)
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        if have >= want {
            continue;
        }
        let name = key.replace('/', ".");
        match std::fs::write(&path, want.to_string()) {
            Ok(()) => progress.info(format!(
                "host: raised {name} from {have} to {want} (kind's known issues; until reboot)"
            )),
            Err(e) => progress.warn(format!(
                "host: {name} is {have}, kind asks for {want}, and it cannot be raised ({e}): \
                 `sysctl -w {name}={want}` as root if nodes report \"too many open files\""
            )),
        }
    }
    Ok(())
}

/// The CNI config of one node: ptp (what kindnetd sets up) with
/// host-local addresses from the node's pod CIDR, masquerading off-node
/// traffic. With more nodes, each also routes the others' pod CIDRs
/// through their node addresses.
async fn write_node_cni(
    engine: &Engine,
    client: &kube::Client,
    node: &str,
) -> Result<(), KindError> {
    use k8s_openapi::api::core::v1::Node;
    let nodes: Api<Node> = Api::all(client.clone());
    let cidr_of = |n: &Node| n.spec.as_ref().and_then(|s| s.pod_cidr.clone());
    // kube-controller-manager assigns pod CIDRs shortly after the node
    // registers, which may be after `kind create cluster` returns.
    let has_cidr = |list: &[Node]| {
        list.iter()
            .find(|n| n.metadata.name.as_deref() == Some(node))
            .is_some_and(|n| cidr_of(n).is_some())
    };
    let outcome = harness_core::poll::eventually(
        tokio::time::Instant::now() + Duration::from_secs(120),
        harness_core::poll::Backoff::default(),
        &Default::default(),
        || async {
            match nodes.list(&Default::default()).await {
                Ok(list) if has_cidr(&list.items) => {
                    harness_core::poll::Observation::holds(Ok(list.items))
                }
                Ok(list) => harness_core::poll::Observation::fails(Ok(list.items)),
                Err(e) => harness_core::poll::Observation::fails(Err(e.to_string())),
            }
        },
    )
    .await;
    let list = match outcome {
        harness_core::poll::PollOutcome::Held {
            last: Ok(items), ..
        } => items,
        other => {
            return Err(KindError::Timeout {
                what: format!("node {node}'s pod CIDR (spec.podCIDR)"),
                timeout: Duration::from_secs(120),
                pending: match other {
                    harness_core::poll::PollOutcome::TimedOut { last: Err(e), .. } => e,
                    _ => "kube-controller-manager assigned none".into(),
                },
            });
        }
    };
    let list = k8s_openapi::List {
        items: list,
        ..Default::default()
    };
    let ip_of = |n: &Node| {
        n.status
            .as_ref()
            .and_then(|s| s.addresses.as_ref())
            .and_then(|a| a.iter().find(|a| a.type_ == "InternalIP"))
            .map(|a| a.address.clone())
    };
    let this = list
        .items
        .iter()
        .find(|n| n.metadata.name.as_deref() == Some(node))
        .ok_or_else(|| KindError::Other(format!("node {node} is not registered")))?;
    let cidr = cidr_of(this)
        .ok_or_else(|| KindError::Other(format!("node {node} has no spec.podCIDR yet")))?;
    let conflist = serde_json::json!({
        "cniVersion": "0.4.0",
        "name": "kind",
        "plugins": [
            {
                "type": "ptp",
                "ipMasq": true,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": cidr}]],
                    "routes": [{"dst": "0.0.0.0/0"}]
                },
                "mtu": 1500
            },
            {"type": "portmap", "capabilities": {"portMappings": true}}
        ]
    });
    let text = serde_json::to_string_pretty(&conflist).unwrap_or_default();
    container::write_file_in_container(engine, node, "/etc/cni/net.d/10-kind-ptp.conflist", &text)
        .await?;
    for peer in list
        .items
        .iter()
        .filter(|n| n.metadata.name.as_deref() != Some(node))
    {
        if let (Some(peer_cidr), Some(peer_ip)) = (cidr_of(peer), ip_of(peer)) {
            let out = container::exec(
                engine,
                node,
                &["ip", "route", "replace", &peer_cidr, "via", &peer_ip],
            )
            .await?;
            if out.exit_code != 0 {
                return Err(KindError::Other(format!(
                    "route {peer_cidr} via {peer_ip} on {node}: {}",
                    out.stderr.trim()
                )));
            }
        }
    }
    Ok(())
}

/// Runs the plan's in-cluster actions (ConfigMap, namespace, Argo CD
/// install and settings, repo-creds, readiness) against `client`, skipping
/// the host actions (registry container, kind, nodes, network). [`up`]
/// runs them against the kind cluster; any cluster works, which is how
/// they are tested on machines without Docker.
pub async fn provision_in_cluster(
    client: &kube::Client,
    plan: &super::KindPlan,
    progress: &Progress,
) -> Result<(), KindError> {
    for action in plan.actions.iter().filter(|a| a.in_cluster()) {
        execute_in_cluster(client, action, progress).await?;
    }
    Ok(())
}

async fn execute_in_cluster(
    client: &kube::Client,
    action: &KindAction,
    progress: &Progress,
) -> Result<(), KindError> {
    match action {
        KindAction::ConfigMap {
            namespace,
            name,
            data,
        } => {
            let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
            let cm = ConfigMap {
                metadata: kube::api::ObjectMeta {
                    name: Some(name.clone()),
                    namespace: Some(namespace.clone()),
                    ..Default::default()
                },
                data: Some(data.clone()),
                ..Default::default()
            };
            api.patch(
                name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&with_type_meta(&cm, "v1", "ConfigMap")),
            )
            .await
            .map_err(kube_err(format!("apply ConfigMap {namespace}/{name}")))?;
            progress.info(format!("applied ConfigMap {namespace}/{name}"));
        }
        KindAction::Namespace { name } => {
            let api: Api<Namespace> = Api::all(client.clone());
            let ns = Namespace {
                metadata: kube::api::ObjectMeta {
                    name: Some(name.clone()),
                    ..Default::default()
                },
                ..Default::default()
            };
            api.patch(
                name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&with_type_meta(&ns, "v1", "Namespace")),
            )
            .await
            .map_err(kube_err(format!("apply Namespace {name}")))?;
        }
        KindAction::InstallArgoCd {
            version,
            url,
            sha256,
            cache_path,
            namespace,
            ..
        } => {
            let task = progress.task(format!("Argo CD {version}"));
            let bytes = match fetch_install_yaml(url, version, sha256, cache_path).await {
                Ok(b) => b,
                Err(e) => {
                    task.fail(e.to_string());
                    return Err(e);
                }
            };
            task.update("verified install.yaml; applying");
            if let Err(e) = install_argocd(client, &bytes, cache_path, namespace).await {
                task.fail(e.to_string());
                return Err(e);
            }
            task.done("applied");
        }
        KindAction::ArgoCdSettings {
            namespace,
            configmap,
            data,
            restart,
        } => {
            let changed = apply_settings(client, namespace, configmap, data).await?;
            if changed {
                for workload in restart {
                    restart_workload(client, namespace, workload).await?;
                }
                progress.info(format!(
                    "{configmap} settings applied; restarted {}",
                    restart.join(", ")
                ));
            } else {
                progress.info(format!("{configmap} settings already in place"));
            }
        }
        KindAction::RepoCredsSecret {
            namespace,
            name,
            labels,
            string_data,
        } => {
            let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
            // `data`, not `stringData`: server-side apply tracks `data`.
            let secret = Secret {
                metadata: kube::api::ObjectMeta {
                    name: Some(name.clone()),
                    namespace: Some(namespace.clone()),
                    labels: Some(labels.clone()),
                    ..Default::default()
                },
                data: Some(
                    string_data
                        .iter()
                        .map(|(k, v)| (k.clone(), ByteString(v.clone().into_bytes())))
                        .collect(),
                ),
                ..Default::default()
            };
            api.patch(
                name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&with_type_meta(&secret, "v1", "Secret")),
            )
            .await
            .map_err(kube_err(format!("apply Secret {namespace}/{name}")))?;
            progress.info(format!("applied Secret {namespace}/{name}"));
        }
        KindAction::WaitReady {
            namespace,
            workloads,
            app_project,
            timeout,
        } => {
            let task = progress.task(format!("Argo CD ready in {namespace}"));
            match wait_ready(client, namespace, workloads, app_project, *timeout, &task).await {
                Ok(()) => task.done("ready"),
                Err(e) => {
                    task.fail(e.to_string());
                    return Err(e);
                }
            }
        }
        KindAction::CoreDnsInOrder {
            namespace,
            configmap,
        } => {
            let changed = coredns_in_order(client, namespace, configmap).await?;
            if changed {
                restart_workload(client, namespace, "deployment/coredns").await?;
                progress.info("CoreDNS asks the node's nameservers in order (restarted)");
            }
        }
        KindAction::ScaleToZero {
            namespace,
            workload,
            why,
        } => {
            patch_workload(
                client,
                namespace,
                workload,
                &serde_json::json!({"spec": {"replicas": 0}}),
                format!("scale {namespace}/{workload} to 0"),
            )
            .await?;
            progress.info(format!("left out {namespace}/{workload}: {why}"));
        }
        KindAction::HostPrepare
        | KindAction::EnsureNetwork { .. }
        | KindAction::RegistryImage { .. }
        | KindAction::OfflineImages { .. }
        | KindAction::RegistryContainer { .. }
        | KindAction::CreateCluster { .. }
        | KindAction::NodeRegistryHosts { .. }
        | KindAction::ConnectNetwork { .. }
        | KindAction::NodeCni { .. } => {
            return Err(KindError::Other(format!(
                "not an in-cluster action: {action}"
            )));
        }
    }
    Ok(())
}

/// A typed object as JSON with apiVersion/kind set (k8s-openapi leaves
/// them out of `Serialize` for typed structs' Default).
fn with_type_meta<T: serde::Serialize>(
    obj: &T,
    api_version: &str,
    kind: &str,
) -> serde_json::Value {
    let mut v = serde_json::to_value(obj).unwrap_or(serde_json::Value::Null);
    if let Some(map) = v.as_object_mut() {
        map.insert("apiVersion".into(), api_version.into());
        map.insert("kind".into(), kind.into());
    }
    v
}

async fn install_argocd(
    client: &kube::Client,
    bytes: &[u8],
    origin: &std::path::Path,
    namespace: &str,
) -> Result<(), KindError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|e| KindError::Other(format!("{} is not UTF-8: {e}", origin.display())))?;
    let docs = crate::kubeutil::parse_documents(text, &origin.display().to_string())
        .map_err(|e| KindError::Other(e.to_string()))?;
    let (crds, rest): (Vec<_>, Vec<_>) = docs
        .into_iter()
        .partition(|d| d["kind"].as_str() == Some("CustomResourceDefinition"));
    crate::kubeutil::apply_documents(client, &crds, namespace)
        .await
        .map_err(|e| KindError::Other(format!("applying Argo CD CRDs: {e:#}")))?;
    crate::kubeutil::wait_crds_served(client, &crds, Duration::from_secs(120))
        .await
        .map_err(|e| KindError::Other(format!("Argo CD CRDs: {e:#}")))?;
    crate::kubeutil::apply_documents(client, &rest, namespace)
        .await
        .map_err(|e| KindError::Other(format!("applying Argo CD install.yaml: {e:#}")))?;
    Ok(())
}

/// Adds `policy sequential` to the Corefile's `forward . /etc/resolv.conf`
/// block; `true` when it changed the ConfigMap.
async fn coredns_in_order(
    client: &kube::Client,
    namespace: &str,
    configmap: &str,
) -> Result<bool, KindError> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    // A cluster without CoreDNS (any cluster `provision_in_cluster` is
    // pointed at) has nothing to change.
    let Some(cm) = api
        .get_opt(configmap)
        .await
        .map_err(kube_err(format!("read ConfigMap {namespace}/{configmap}")))?
    else {
        return Ok(false);
    };
    let corefile = cm
        .data
        .as_ref()
        .and_then(|d| d.get("Corefile"))
        .cloned()
        .unwrap_or_default();
    let Some(updated) = sequential_forward(&corefile) else {
        return Ok(false);
    };
    let patch = serde_json::json!({"data": {"Corefile": updated}});
    api.patch(configmap, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(kube_err(format!("patch ConfigMap {namespace}/{configmap}")))?;
    Ok(true)
}

/// The Corefile with `policy sequential` in its `forward . /etc/resolv.conf`
/// block, or `None` when it has it already or has no such block.
pub fn sequential_forward(corefile: &str) -> Option<String> {
    if corefile.contains("policy sequential") {
        return None;
    }
    let marker = "forward . /etc/resolv.conf {";
    let at = corefile.find(marker)?;
    let line_start = corefile[..at].rfind('\n').map(|i| i + 1).unwrap_or(0);
    let indent = &corefile[line_start..at];
    let end = at + marker.len();
    Some(format!(
        "{}\n{indent}   policy sequential{}",
        &corefile[..end],
        &corefile[end..]
    ))
}

/// Applies the settings keys; `true` when any value changed.
async fn apply_settings(
    client: &kube::Client,
    namespace: &str,
    configmap: &str,
    data: &BTreeMap<String, String>,
) -> Result<bool, KindError> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let current = api
        .get_opt(configmap)
        .await
        .map_err(kube_err(format!("read ConfigMap {namespace}/{configmap}")))?
        .and_then(|cm| cm.data)
        .unwrap_or_default();
    if data.iter().all(|(k, v)| current.get(k) == Some(v)) {
        return Ok(false);
    }
    let patch = serde_json::json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": configmap, "namespace": namespace},
        "data": data,
    });
    api.patch(
        configmap,
        &PatchParams::apply(SETTINGS_FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await
    .map_err(kube_err(format!(
        "apply settings to ConfigMap {namespace}/{configmap}"
    )))?;
    Ok(true)
}

/// `kubectl rollout restart kind/name`: a new pod-template annotation.
async fn restart_workload(
    client: &kube::Client,
    namespace: &str,
    workload: &str,
) -> Result<(), KindError> {
    let now = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let patch = serde_json::json!({
        "spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": now}}}}
    });
    patch_workload(
        client,
        namespace,
        workload,
        &patch,
        format!("restart {workload}"),
    )
    .await
}

/// A merge patch of `workload` (`deployment/NAME` or `statefulset/NAME`;
/// a bare name is a Deployment); `what` names the change in errors.
pub(super) async fn patch_workload(
    client: &kube::Client,
    namespace: &str,
    workload: &str,
    patch: &serde_json::Value,
    what: String,
) -> Result<(), KindError> {
    let params = PatchParams::default();
    let (kind, name) = workload.split_once('/').unwrap_or(("deployment", workload));
    match kind {
        "statefulset" => {
            let api: Api<StatefulSet> = Api::namespaced(client.clone(), namespace);
            api.patch(name, &params, &Patch::Merge(patch))
                .await
                .map_err(kube_err(what))?;
        }
        _ => {
            let api: Api<Deployment> = Api::namespaced(client.clone(), namespace);
            api.patch(name, &params, &Patch::Merge(patch))
                .await
                .map_err(kube_err(what))?;
        }
    }
    Ok(())
}

/// Why a workload is not ready yet, or `None` when it is.
pub(super) async fn workload_pending(
    client: &kube::Client,
    namespace: &str,
    workload: &str,
) -> Result<Option<String>, KindError> {
    let (kind, name) = workload.split_once('/').unwrap_or(("deployment", workload));
    let what = format!("read {workload}");
    match kind {
        "statefulset" => {
            let api: Api<StatefulSet> = Api::namespaced(client.clone(), namespace);
            let Some(sts) = api.get_opt(name).await.map_err(kube_err(what))? else {
                return Ok(Some(format!("{workload}: not found")));
            };
            let want = sts.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
            let generation = sts.metadata.generation.unwrap_or(0);
            let st = sts.status.unwrap_or_default();
            let rolled = st.update_revision.is_none() || st.update_revision == st.current_revision;
            let ready = st.ready_replicas.unwrap_or(0);
            if st.observed_generation.unwrap_or(0) >= generation
                && rolled
                && ready >= want
                && st.replicas <= want
            {
                Ok(None)
            } else {
                Ok(Some(format!(
                    "{workload}: {ready}/{want} ready{}",
                    if rolled { "" } else { ", rolling out" }
                )))
            }
        }
        _ => {
            let api: Api<Deployment> = Api::namespaced(client.clone(), namespace);
            let Some(dep) = api.get_opt(name).await.map_err(kube_err(what))? else {
                return Ok(Some(format!("{workload}: not found")));
            };
            let want = dep.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
            let generation = dep.metadata.generation.unwrap_or(0);
            let st = dep.status.unwrap_or_default();
            let ready = st.ready_replicas.unwrap_or(0);
            let updated = st.updated_replicas.unwrap_or(0);
            let total = st.replicas.unwrap_or(0);
            if st.observed_generation.unwrap_or(0) >= generation
                && ready >= want
                && updated >= want
                && total <= want
            {
                Ok(None)
            } else {
                Ok(Some(format!(
                    "{workload}: {ready}/{want} ready, {updated} updated, {total} total"
                )))
            }
        }
    }
}

fn app_project_resource() -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk(
        "argoproj.io",
        "v1alpha1",
        "AppProject",
    ))
}

async fn wait_ready(
    client: &kube::Client,
    namespace: &str,
    workloads: &[String],
    app_project: &str,
    timeout: Duration,
    task: &harness_core::progress::Task,
) -> Result<(), KindError> {
    let projects: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), namespace, &app_project_resource());
    let backoff = harness_core::poll::Backoff {
        initial: Duration::from_millis(500),
        factor: 2.0,
        max: Duration::from_secs(5),
    };
    let outcome = harness_core::poll::eventually_try(
        tokio::time::Instant::now() + timeout,
        backoff,
        &tokio_util::sync::CancellationToken::new(),
        || async {
            let mut pending = Vec::new();
            for w in workloads {
                if let Some(why) = workload_pending(client, namespace, w).await? {
                    pending.push(why);
                }
            }
            let project = projects
                .get_opt(app_project)
                .await
                .map_err(kube_err(format!(
                    "read AppProject {namespace}/{app_project}"
                )))?;
            if project.is_none() {
                pending.push(format!(
                    "appproject/{app_project}: not created yet (argocd-server creates it)"
                ));
            }
            if pending.is_empty() {
                return Ok(Observation::holds(pending));
            }
            // A container that keeps crashing or whose image cannot be pulled
            // will not get ready by waiting: say which, now.
            if let Some(stuck) = stuck_pod(client, namespace).await {
                return Err(KindError::Other(format!(
                    "Argo CD in namespace {namespace} will not get ready: {stuck} (inspect with \
                     `kubectl --context kind-<cluster> -n {namespace} describe pod` and `logs`)"
                )));
            }
            task.update(pending.join("; "));
            Ok(Observation::fails(pending))
        },
    )
    .await?;
    match outcome {
        PollOutcome::Held { .. } => Ok(()),
        other => {
            let pending = match other {
                PollOutcome::TimedOut { last, .. } => last.join("; "),
                _ => "cancelled".to_string(),
            };
            Err(KindError::Timeout {
                what: format!("Argo CD in namespace {namespace}"),
                timeout,
                pending: format!(
                    "{pending} (inspect with `kubectl --context kind-<cluster> -n {namespace} get pods`)"
                ),
            })
        }
    }
}

fn plan_network() -> &'static str {
    super::KIND_NETWORK
}

/// A pod of `namespace` stuck for good: a container in CrashLoopBackOff
/// after three restarts, or one whose image pull backs off.
async fn stuck_pod(client: &kube::Client, namespace: &str) -> Option<String> {
    use k8s_openapi::api::core::v1::Pod;
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let list = pods.list(&Default::default()).await.ok()?;
    for pod in list.items {
        let name = pod.metadata.name.clone().unwrap_or_default();
        // A pod of an old ReplicaSet that is going away does not count.
        if pod.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let status = pod.status.unwrap_or_default();
        let containers = status
            .init_container_statuses
            .unwrap_or_default()
            .into_iter()
            .chain(status.container_statuses.unwrap_or_default());
        for c in containers {
            let waiting = c.state.as_ref().and_then(|s| s.waiting.as_ref());
            let reason = waiting.and_then(|w| w.reason.as_deref()).unwrap_or("");
            let message = waiting.and_then(|w| w.message.as_deref()).unwrap_or("");
            if (reason == "CrashLoopBackOff" && c.restart_count >= 3)
                || reason == "ImagePullBackOff"
                || reason == "InvalidImageName"
            {
                let last = c
                    .last_state
                    .as_ref()
                    .and_then(|s| s.terminated.as_ref())
                    .map(|t| {
                        format!(
                            ", last exit {}{}",
                            t.exit_code,
                            t.message
                                .as_deref()
                                .map(|m| format!(": {}", m.trim()))
                                .unwrap_or_default()
                        )
                    })
                    .unwrap_or_default();
                return Some(format!(
                    "pod {name} container {} is in {reason} after {} restarts{last}{}",
                    c.name,
                    c.restart_count,
                    if message.is_empty() {
                        String::new()
                    } else {
                        format!(" ({message})")
                    }
                ));
            }
        }
    }
    None
}

/// Deletes the cluster and removes the registry container. Absent parts
/// are fine (down is idempotent).
pub async fn down(cfg: &KindLabConfig, progress: &Progress) -> Result<(), KindError> {
    cfg.validate()?;
    let engine = engine().await?;
    super::kind_version().await.map_err(KindError::NoKind)?;
    let kind_engine = KindEngine::of(&engine).await?;
    let host = Some(&kind_engine);
    let task = progress.task(format!("kind cluster {}", cfg.cluster_name));
    if cluster_exists(host, &cfg.cluster_name).await? {
        match kind(
            host,
            &["delete", "cluster", "--name", &cfg.cluster_name],
            None,
        )
        .await
        {
            Ok(_) => task.done("deleted"),
            Err(e) => {
                task.fail(e.to_string());
                return Err(e);
            }
        }
    } else {
        task.done("not present");
    }
    let removed = container::remove_container(&engine, &cfg.registry_name).await?;
    progress.info(format!(
        "registry container {}: {}",
        cfg.registry_name,
        if removed { "removed" } else { "not present" }
    ));
    // The kind network outlives `kind delete cluster`; remove it unless
    // other containers (another cluster) still use it.
    match container::remove_network(&engine, plan_network()).await {
        Ok(true) => progress.info(format!("network {}: removed", plan_network())),
        Ok(false) => {}
        Err(e) => progress.warn(format!("network {} kept: {e}", plan_network())),
    }
    let kubeconfig = cfg.state_dir().join("kubeconfig");
    let _ = tokio::fs::remove_file(kubeconfig).await;
    Ok(())
}

/// What exists of the KIND lab.
#[derive(Debug, Clone)]
pub struct KindStatus {
    pub cluster_name: String,
    /// The Docker API address, or why none answered.
    pub engine: Result<String, String>,
    /// `kind version`, or why it cannot run.
    pub kind: Result<String, String>,
    pub registry: Option<ContainerInfo>,
    pub registry_name: String,
    pub cluster_exists: bool,
    pub nodes: Vec<String>,
    /// Workloads and AppProject not ready (empty: Argo CD is ready);
    /// `None` when the cluster could not be asked.
    pub argocd_pending: Option<Vec<String>>,
}

impl KindStatus {
    /// Everything is there and ready.
    pub fn is_up(&self) -> bool {
        self.registry.as_ref().is_some_and(|r| r.running)
            && self.cluster_exists
            && self.argocd_pending.as_ref().is_some_and(|p| p.is_empty())
    }
}

impl fmt::Display for KindStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "KIND lab {}: {}",
            self.cluster_name,
            if self.is_up() { "up" } else { "not up" }
        )?;
        match &self.engine {
            Ok(h) => writeln!(f, "  Docker API: {h}")?,
            Err(e) => writeln!(f, "  Docker API: unavailable ({e})")?,
        }
        match &self.kind {
            Ok(v) => writeln!(f, "  kind:       {v}")?,
            Err(e) => writeln!(f, "  kind:       unavailable ({e})")?,
        }
        match &self.registry {
            Some(r) => {
                let ports: Vec<String> = r
                    .published
                    .iter()
                    .map(|(p, a)| format!("{} -> {p}", a.join(",")))
                    .collect();
                writeln!(
                    f,
                    "  registry:   {} {} (image {}, {}, networks {})",
                    self.registry_name,
                    r.status,
                    r.image,
                    ports.join(", "),
                    r.networks.join(",")
                )?
            }
            None => writeln!(f, "  registry:   {} absent", self.registry_name)?,
        }
        if self.cluster_exists {
            writeln!(f, "  cluster:    exists, nodes {}", self.nodes.join(", "))?;
        } else {
            writeln!(f, "  cluster:    absent")?;
        }
        match &self.argocd_pending {
            Some(p) if p.is_empty() => writeln!(f, "  Argo CD:    ready"),
            Some(p) => writeln!(f, "  Argo CD:    not ready: {}", p.join("; ")),
            None => writeln!(f, "  Argo CD:    unknown (cluster not reachable)"),
        }
    }
}

/// Looks at what exists without changing anything.
pub async fn status(cfg: &KindLabConfig) -> KindStatus {
    let mut st = KindStatus {
        cluster_name: cfg.cluster_name.clone(),
        engine: Err("not checked".into()),
        kind: super::kind_version().await,
        registry: None,
        registry_name: cfg.registry_name.clone(),
        cluster_exists: false,
        nodes: Vec::new(),
        argocd_pending: None,
    };
    let engine: Option<Engine> = match engine().await {
        Ok(e) => {
            st.engine = Ok(e.host.clone());
            Some(e)
        }
        Err(e) => {
            st.engine = Err(e.to_string());
            None
        }
    };
    if let Some(engine) = &engine {
        st.registry = container::inspect_container(engine, &cfg.registry_name)
            .await
            .ok()
            .flatten();
    }
    if st.kind.is_ok() && engine.is_some() {
        let kind_engine = match &engine {
            Some(e) => KindEngine::of(e).await.ok(),
            None => None,
        };
        let host = kind_engine.as_ref();
        st.cluster_exists = cluster_exists(host, &cfg.cluster_name)
            .await
            .unwrap_or(false);
        if st.cluster_exists {
            st.nodes = cluster_nodes(host, &cfg.cluster_name)
                .await
                .unwrap_or_default();
            if let Ok(client) = kube_client(cfg).await {
                let workloads = [
                    "deployment/argocd-redis",
                    "deployment/argocd-repo-server",
                    "statefulset/argocd-application-controller",
                ];
                let mut pending = Vec::new();
                let mut reachable = true;
                for w in workloads {
                    match workload_pending(&client, super::ARGOCD_NAMESPACE, w).await {
                        Ok(Some(p)) => pending.push(p),
                        Ok(None) => {}
                        Err(_) => reachable = false,
                    }
                }
                if reachable {
                    st.argocd_pending = Some(pending);
                }
            }
        }
    }
    st
}
