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
use harness_core::progress::Progress;

fn kube_err(what: impl Into<String>) -> impl FnOnce(kube::Error) -> KindError {
    let what = what.into();
    move |source| KindError::Kube { what, source }
}

async fn engine() -> Result<Engine, KindError> {
    container::connect().await.map_err(|e| match e {
        container::ContainerError::NoEngine { tried } => {
            KindError::NoEngine(format!("none answered ({tried})"))
        }
        other => KindError::Container(other),
    })
}

/// Runs `kind <args>` with the engine's DOCKER_HOST, feeding `stdin`.
async fn kind(
    engine_host: Option<&str>,
    args: &[&str],
    stdin: Option<&str>,
) -> Result<String, KindError> {
    let bin = kind_binary();
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
    if let Some(host) = engine_host {
        cmd.env("DOCKER_HOST", host);
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
        let stderr = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(20).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        return Err(KindError::KindCommand {
            command,
            stderr: format!("{} ({})", tail.join("\n"), out.status),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

async fn cluster_exists(engine_host: Option<&str>, name: &str) -> Result<bool, KindError> {
    let out = kind(engine_host, &["get", "clusters"], None).await?;
    Ok(out.lines().any(|l| l.trim() == name))
}

async fn cluster_nodes(engine_host: Option<&str>, name: &str) -> Result<Vec<String>, KindError> {
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
    let host = container::connect().await.ok().map(|e| e.host);
    let yaml = kind(
        host.as_deref(),
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
/// whatever already exists (registry container, cluster, install).
pub async fn up(cfg: &KindLabConfig, progress: &Progress) -> Result<KindLab, KindError> {
    let plan = super::plan(cfg)?;
    let engine = engine().await?;
    let kind_version = super::kind_version().await.map_err(KindError::NoKind)?;
    // Other kind releases usually work with the pinned node image, but
    // that is not what nightly CI checks: say so.
    if !kind_version.contains(&format!("{} ", cfg.kind_version)) {
        progress.warn(format!(
            "`kind version` says {kind_version:?}; the lab is pinned to kind {}",
            cfg.kind_version
        ));
    }
    progress.info(format!("lab kind: Docker API at {}", engine.host));
    // Argo CD pulls from `kind-registry:5000` by name: check that names
    // resolve on the engine's networks before anything is created.
    container::name_resolution(&engine).await?.check()?;
    let mut client: Option<kube::Client> = None;
    for action in &plan.actions {
        execute(cfg, &engine, &mut client, action, progress).await?;
    }
    let client = match client {
        Some(c) => c,
        None => kube_client(cfg).await?,
    };
    Ok(KindLab::with_client(cfg, client))
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
    client: &mut Option<kube::Client>,
    action: &KindAction,
    progress: &Progress,
) -> Result<(), KindError> {
    let host = Some(engine.host.as_str());
    match action {
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
        KindAction::RegistryContainer { .. }
        | KindAction::CreateCluster { .. }
        | KindAction::NodeRegistryHosts { .. }
        | KindAction::ConnectNetwork { .. } => {
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
    let crd_names: Vec<String> = crds
        .iter()
        .filter_map(|d| d["metadata"]["name"].as_str().map(String::from))
        .collect();
    crate::kubeutil::apply_documents(client, &crds, namespace)
        .await
        .map_err(|e| KindError::Other(format!("applying Argo CD CRDs: {e:#}")))?;
    crate::kubeutil::wait_crds_established(client, &crd_names, Duration::from_secs(120))
        .await
        .map_err(|e| KindError::Other(format!("Argo CD CRDs: {e:#}")))?;
    crate::kubeutil::apply_documents(client, &rest, namespace)
        .await
        .map_err(|e| KindError::Other(format!("applying Argo CD install.yaml: {e:#}")))?;
    Ok(())
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
    let params = PatchParams::default();
    let (kind, name) = workload.split_once('/').unwrap_or(("deployment", workload));
    let what = format!("restart {workload}");
    match kind {
        "statefulset" => {
            let api: Api<StatefulSet> = Api::namespaced(client.clone(), namespace);
            api.patch(name, &params, &Patch::Merge(&patch))
                .await
                .map_err(kube_err(what))?;
        }
        _ => {
            let api: Api<Deployment> = Api::namespaced(client.clone(), namespace);
            api.patch(name, &params, &Patch::Merge(&patch))
                .await
                .map_err(kube_err(what))?;
        }
    }
    Ok(())
}

/// Why a workload is not ready yet, or `None` when it is.
async fn workload_pending(
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
    let deadline = tokio::time::Instant::now() + timeout;
    let projects: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), namespace, &app_project_resource());
    let mut delay = Duration::from_millis(500);
    loop {
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
            return Ok(());
        }
        task.update(pending.join("; "));
        if tokio::time::Instant::now() + delay > deadline {
            return Err(KindError::Timeout {
                what: format!("Argo CD in namespace {namespace}"),
                timeout,
                pending: format!(
                    "{} (inspect with `kubectl --context kind-<cluster> -n {namespace} get pods`)",
                    pending.join("; ")
                ),
            });
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

/// Deletes the cluster and removes the registry container. Absent parts
/// are fine (down is idempotent).
pub async fn down(cfg: &KindLabConfig, progress: &Progress) -> Result<(), KindError> {
    cfg.validate()?;
    let engine = engine().await?;
    super::kind_version().await.map_err(KindError::NoKind)?;
    let host = Some(engine.host.as_str());
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
        let host = st.engine.as_ref().ok().map(String::as_str);
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
