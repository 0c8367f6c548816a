//! The KIND lab's provisioning plan: every action `up` takes, in order,
//! as data. `lab up --lab kind --dry-run` prints it (the `Display` impl)
//! and `up` executes the same values, so what is printed is what is done.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use super::KindLabConfig;
use super::manifest::{argocd_install_url, pinned_install_sha256};
use crate::container::RegistryContainerSpec;

/// The kind cluster config template (`kind/cluster.yaml.tmpl`).
pub const CLUSTER_TEMPLATE: &str = include_str!("../../../../kind/cluster.yaml.tmpl");
/// What the offline node image adds to the cluster config.
pub const CLUSTER_OFFLINE: &str = include_str!("../../../../kind/node/cluster-offline.yaml");
/// The Argo CD component the offline lab has no image for.
pub const OFFLINE_LEFT_OUT: &str = "deployment/argocd-dex-server";

/// containerd's per-registry config directory inside a node.
pub const CERTS_D: &str = "/etc/containerd/certs.d";
/// The network kind puts its nodes on.
pub const KIND_NETWORK: &str = "kind";
/// kind's local-registry page (the KEP-1755 `help` field).
pub const LOCAL_REGISTRY_HELP: &str = "https://kind.sigs.k8s.io/docs/user/local-registry/";
/// Field manager of everything the lab applies server-side.
pub const FIELD_MANAGER: &str = "oci-e2e";
/// Field manager of the lab's Argo CD settings, kept apart from the
/// install so re-applying install.yaml never takes them back.
pub const SETTINGS_FIELD_MANAGER: &str = "oci-e2e-settings";
/// Name of the repo-creds Secret for the lab registry.
pub const REPO_CREDS_SECRET: &str = "oci-e2e-lab-registry";

/// The whole plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KindPlan {
    pub cluster_name: String,
    /// The kind release the node image and config are pinned for.
    pub kind_version: String,
    pub argocd_version: String,
    pub actions: Vec<KindAction>,
}

/// One provisioning action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KindAction {
    /// What kind's podman provider needs from the host: `/lib/modules`
    /// (it bind-mounts it; podman refuses a missing source) and inotify
    /// instances for the node's systemd and kubelet (kind's known issues
    /// page asks for 512). Each is changed only when short, and said.
    HostPrepare,
    /// Create the network unless it exists (the offline lab puts the
    /// registry on it before the cluster, whose nodes pull through it).
    EnsureNetwork { name: String },
    /// Build the registry image from Debian's docker-registry (once).
    RegistryImage { image: String },
    /// Build (once, cached by key) the offline node and component images,
    /// then push the component images into the lab registry.
    OfflineImages {
        node_image: String,
        mirror: String,
        argocd_version: String,
        install_url: String,
        install_sha256: String,
        install_cache_path: PathBuf,
    },
    /// Create the registry container, or reuse it (start it if stopped).
    RegistryContainer { spec: RegistryContainerSpec },
    /// `kind create cluster --config <config>` unless `kind get clusters`
    /// lists `name`.
    CreateCluster {
        name: String,
        node_image: String,
        config: String,
    },
    /// Write containerd's hosts.toml for the registry on one node.
    NodeRegistryHosts {
        node: String,
        path: String,
        content: String,
    },
    /// `docker network connect <network> <container>` unless connected.
    ConnectNetwork { network: String, container: String },
    /// Write the ptp + host-local CNI config on a node (offline image: no
    /// kindnetd), from the node's `spec.podCIDR`.
    NodeCni { node: String },
    /// Server-side apply a ConfigMap.
    ConfigMap {
        namespace: String,
        name: String,
        data: BTreeMap<String, String>,
    },
    /// Create the namespace Argo CD runs in.
    Namespace { name: String },
    /// Download (once, cached) and verify install.yaml, then apply it
    /// server-side into `namespace`.
    InstallArgoCd {
        version: String,
        url: String,
        sha256: String,
        cache_path: PathBuf,
        namespace: String,
        field_manager: String,
    },
    /// Settings in argocd-cm, then a rollout restart of the workloads that
    /// read them at start-up.
    ArgoCdSettings {
        namespace: String,
        configmap: String,
        data: BTreeMap<String, String>,
        restart: Vec<String>,
    },
    /// A repo-creds Secret: a credential template matching every
    /// repository under `url`.
    RepoCredsSecret {
        namespace: String,
        name: String,
        labels: BTreeMap<String, String>,
        string_data: BTreeMap<String, String>,
    },
    /// CoreDNS asks the node's nameservers in order instead of at random.
    /// On podman a node's resolv.conf lists the network's dnsname server
    /// (which knows `kind-registry`) and then the host's (which does not):
    /// at random, Argo CD's registry lookups fail now and then with "no
    /// such host". Docker nodes list one server; the change is harmless.
    CoreDnsInOrder {
        namespace: String,
        configmap: String,
    },
    /// Scale a Deployment to zero replicas: a component the offline lab
    /// has no image for and the scenarios do not use.
    ScaleToZero {
        namespace: String,
        workload: String,
        why: String,
    },
    /// Wait until the workloads are ready and the AppProject exists.
    WaitReady {
        namespace: String,
        workloads: Vec<String>,
        app_project: String,
        timeout: Duration,
    },
}

impl KindAction {
    /// True for actions done through the Kubernetes API (after the cluster
    /// exists); false for those on the host (containers, kind, networks).
    pub fn in_cluster(&self) -> bool {
        !matches!(
            self,
            KindAction::HostPrepare
                | KindAction::EnsureNetwork { .. }
                | KindAction::RegistryImage { .. }
                | KindAction::OfflineImages { .. }
                | KindAction::RegistryContainer { .. }
                | KindAction::CreateCluster { .. }
                | KindAction::NodeRegistryHosts { .. }
                | KindAction::ConnectNetwork { .. }
                | KindAction::NodeCni { .. }
        )
    }
}

/// Node container names kind gives a cluster's nodes.
pub fn node_names(cfg: &KindLabConfig) -> Vec<String> {
    let mut nodes = vec![format!("{}-control-plane", cfg.cluster_name)];
    for i in 1..=cfg.workers {
        // kind names them worker, worker2, worker3...
        let suffix = if i == 1 { String::new() } else { i.to_string() };
        nodes.push(format!("{}-worker{suffix}", cfg.cluster_name));
    }
    nodes
}

/// The rendered kind cluster config.
pub fn render_cluster_config(cfg: &KindLabConfig) -> String {
    let mut nodes = format!("- role: control-plane\n  image: {}", cfg.node_image);
    for _ in 0..cfg.workers {
        nodes.push_str(&format!("\n- role: worker\n  image: {}", cfg.node_image));
    }
    // The template's comment lines document it; the rendered config is the
    // rest, so the plan shows exactly what kind is given.
    let body: String = CLUSTER_TEMPLATE
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect();
    let offline = if cfg.offline_images {
        CLUSTER_OFFLINE
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| format!("{l}\n"))
            .collect::<String>()
            .replace("{{etcd_tag}}", &super::image::etcd_image_tag())
    } else {
        String::new()
    };
    body.replace("{{cluster_name}}", &cfg.cluster_name)
        .replace("{{nodes}}", &nodes)
        .replace("{{offline}}\n", &offline)
        .replace("{{offline}}", &offline)
}

/// `localhost:5001`: where the host pushes.
pub fn host_registry(cfg: &KindLabConfig) -> String {
    format!("localhost:{}", cfg.registry_host_port)
}

/// `kind-registry:5000`: the registry on the kind network (nodes' containerd
/// through hosts.toml, pods such as Argo CD's repo-server directly).
pub fn network_registry(cfg: &KindLabConfig) -> String {
    format!("{}:{}", cfg.registry_name, super::REGISTRY_CONTAINER_PORT)
}

/// The KEP-1755 document kind's recipe publishes, with every field.
pub fn local_registry_hosting(cfg: &KindLabConfig) -> String {
    format!(
        "host: \"{}\"\nhostFromContainerRuntime: \"{}\"\nhostFromClusterNetwork: \"{}\"\nhelp: \"{}\"\n",
        host_registry(cfg),
        network_registry(cfg),
        network_registry(cfg),
        LOCAL_REGISTRY_HELP
    )
}

/// The registry container as created.
pub fn registry_spec(cfg: &KindLabConfig) -> RegistryContainerSpec {
    RegistryContainerSpec {
        name: cfg.registry_name.clone(),
        image: cfg.registry_image.clone(),
        host_ip: cfg.registry_host_ip.clone(),
        host_port: cfg.registry_host_port,
        container_port: super::REGISTRY_CONTAINER_PORT,
        restart_always: true,
        // The offline lab's nodes pull their images from it while kind
        // creates them: it must be on their network first.
        network: Some(if cfg.offline_images {
            KIND_NETWORK.into()
        } else {
            "bridge".into()
        }),
        // Lets scenarios delete manifests; the registry's default is off.
        env: vec!["REGISTRY_STORAGE_DELETE_ENABLED=true".into()],
        cmd: None,
        labels: vec![("oci-e2e.lab".into(), format!("kind/{}", cfg.cluster_name))],
    }
}

/// Where the verified install.yaml of `version` is cached.
pub fn install_cache_path(cfg: &KindLabConfig) -> PathBuf {
    cfg.cache_dir
        .join("argocd")
        .join(&cfg.argocd_version)
        .join("install.yaml")
}

/// Builds the plan. Fails only for configuration it cannot act on
/// (invalid names, an Argo CD version without a pinned checksum).
pub fn plan(cfg: &KindLabConfig) -> Result<KindPlan, super::KindError> {
    cfg.validate()?;
    let sha256 = pinned_install_sha256(&cfg.argocd_version).ok_or_else(|| {
        super::KindError::UnpinnedArgoCd {
            version: cfg.argocd_version.clone(),
            known: super::manifest::PINNED_INSTALL_SHA256
                .iter()
                .map(|(v, _)| *v)
                .collect::<Vec<_>>()
                .join(", "),
        }
    })?;
    let ns = super::ARGOCD_NAMESPACE.to_string();
    let mut actions = vec![KindAction::HostPrepare];
    if cfg.offline_images {
        actions.push(KindAction::EnsureNetwork {
            name: KIND_NETWORK.into(),
        });
        if cfg.registry_image == crate::container::TEST_REGISTRY_IMAGE {
            actions.push(KindAction::RegistryImage {
                image: cfg.registry_image.clone(),
            });
        }
    }
    actions.push(KindAction::RegistryContainer {
        spec: registry_spec(cfg),
    });
    if cfg.offline_images {
        actions.push(KindAction::OfflineImages {
            node_image: cfg.node_image.clone(),
            mirror: network_registry(cfg),
            argocd_version: cfg.argocd_version.clone(),
            install_url: argocd_install_url(&cfg.argocd_version),
            install_sha256: sha256.to_string(),
            install_cache_path: install_cache_path(cfg),
        });
    }
    actions.push(KindAction::CreateCluster {
        name: cfg.cluster_name.clone(),
        node_image: cfg.node_image.clone(),
        config: render_cluster_config(cfg),
    });
    for node in node_names(cfg) {
        actions.push(KindAction::NodeRegistryHosts {
            node: node.clone(),
            path: format!("{CERTS_D}/{}/hosts.toml", host_registry(cfg)),
            content: format!("[host.\"http://{}\"]\n", network_registry(cfg)),
        });
        if cfg.offline_images {
            actions.push(KindAction::NodeCni { node });
        }
    }
    actions.push(KindAction::ConnectNetwork {
        network: KIND_NETWORK.into(),
        container: cfg.registry_name.clone(),
    });
    actions.push(KindAction::CoreDnsInOrder {
        namespace: "kube-system".into(),
        configmap: "coredns".into(),
    });
    actions.push(KindAction::ConfigMap {
        namespace: "kube-public".into(),
        name: "local-registry-hosting".into(),
        data: BTreeMap::from([(
            "localRegistryHosting.v1".into(),
            local_registry_hosting(cfg),
        )]),
    });
    actions.push(KindAction::Namespace { name: ns.clone() });
    actions.push(KindAction::InstallArgoCd {
        version: cfg.argocd_version.clone(),
        url: argocd_install_url(&cfg.argocd_version),
        sha256: sha256.to_string(),
        cache_path: install_cache_path(cfg),
        namespace: ns.clone(),
        field_manager: FIELD_MANAGER.into(),
    });
    if cfg.offline_images {
        actions.push(KindAction::ScaleToZero {
            namespace: ns.clone(),
            workload: OFFLINE_LEFT_OUT.into(),
            why: "the offline lab has no dex image; scenarios do not log in through SSO".into(),
        });
    }
    actions.push(KindAction::ArgoCdSettings {
        namespace: ns.clone(),
        configmap: "argocd-cm".into(),
        data: BTreeMap::from([
            // Tags that move are noticed within this interval (default 120s).
            (
                "timeout.reconciliation".into(),
                format!("{}s", cfg.reconciliation.as_secs()),
            ),
            // No random extra delay on top (default up to 60s).
            ("timeout.reconciliation.jitter".into(), "0s".into()),
        ]),
        restart: vec![
            "statefulset/argocd-application-controller".into(),
            "deployment/argocd-repo-server".into(),
        ],
    });
    actions.push(KindAction::RepoCredsSecret {
        namespace: ns.clone(),
        name: REPO_CREDS_SECRET.into(),
        labels: BTreeMap::from([("argocd.argoproj.io/secret-type".into(), "repo-creds".into())]),
        string_data: BTreeMap::from([
            ("url".into(), format!("oci://{}", network_registry(cfg))),
            // Without it Argo CD treats the credential as git (#29058).
            ("type".into(), "oci".into()),
            // Plain HTTP: Argo CD never falls back to it by itself.
            ("insecureOCIForceHttp".into(), "true".into()),
        ]),
    });
    actions.push(KindAction::WaitReady {
        namespace: ns,
        workloads: vec![
            "deployment/argocd-redis".into(),
            "deployment/argocd-repo-server".into(),
            "statefulset/argocd-application-controller".into(),
        ],
        app_project: "default".into(),
        timeout: cfg.ready_timeout,
    });
    Ok(KindPlan {
        cluster_name: cfg.cluster_name.clone(),
        kind_version: cfg.kind_version.clone(),
        argocd_version: cfg.argocd_version.clone(),
        actions,
    })
}

fn indented(f: &mut fmt::Formatter<'_>, prefix: &str, text: &str) -> fmt::Result {
    for line in text.trim_end_matches('\n').lines() {
        if line.is_empty() {
            writeln!(f, "{}", prefix.trim_end())?;
        } else {
            writeln!(f, "{prefix}{line}")?;
        }
    }
    Ok(())
}

fn map_lines(f: &mut fmt::Formatter<'_>, map: &BTreeMap<String, String>) -> fmt::Result {
    for (k, v) in map {
        if v.contains('\n') {
            writeln!(f, "       {k}: |")?;
            indented(f, "         ", v)?;
        } else {
            writeln!(f, "       {k}: {v:?}")?;
        }
    }
    Ok(())
}

impl fmt::Display for KindAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KindAction::HostPrepare => writeln!(
                f,
                "host: create /lib/modules if missing (kind bind-mounts it); raise \
                 fs.inotify.max_user_instances to 512 and max_user_watches to 524288 if lower"
            ),
            KindAction::EnsureNetwork { name } => {
                writeln!(f, "network {name} (create unless it exists)")
            }
            KindAction::RegistryImage { image } => writeln!(
                f,
                "registry image {image} (import of Debian's docker-registry, unless present)"
            ),
            KindAction::OfflineImages {
                node_image,
                mirror,
                argocd_version,
                ..
            } => {
                writeln!(
                    f,
                    "offline images (build unless present; recipe in kind/node and kind/images)"
                )?;
                writeln!(f, "       node image:  {node_image}")?;
                writeln!(
                    f,
                    "       components:  Kubernetes, etcd, CoreDNS, pause, Argo CD {argocd_version}, Redis"
                )?;
                writeln!(
                    f,
                    "       push:        into the lab registry; nodes pull them as {mirror} mirrors"
                )
            }
            KindAction::NodeCni { node } => writeln!(
                f,
                "CNI config on node {node}: ptp + host-local over its spec.podCIDR (no kindnetd offline)"
            ),
            KindAction::ScaleToZero {
                namespace,
                workload,
                why,
            } => writeln!(f, "scale {namespace}/{workload} to 0 ({why})"),
            KindAction::CoreDnsInOrder {
                namespace,
                configmap,
            } => writeln!(
                f,
                "ConfigMap {namespace}/{configmap}: `forward . /etc/resolv.conf` asks in order \
                 (policy sequential), then restart CoreDNS"
            ),
            KindAction::RegistryContainer { spec } => {
                writeln!(
                    f,
                    "registry container {} (create; reuse if running; start if stopped)",
                    spec.name
                )?;
                writeln!(f, "       image:   {}", spec.image)?;
                writeln!(
                    f,
                    "       publish: {} -> {}/tcp",
                    spec.host_address(),
                    spec.container_port
                )?;
                writeln!(
                    f,
                    "       network: {}",
                    spec.network.as_deref().unwrap_or("(engine default)")
                )?;
                writeln!(
                    f,
                    "       restart: {}",
                    if spec.restart_always { "always" } else { "no" }
                )?;
                for e in &spec.env {
                    writeln!(f, "       env:     {e}")?;
                }
                for (k, v) in &spec.labels {
                    writeln!(f, "       label:   {k}={v}")?;
                }
                Ok(())
            }
            KindAction::CreateCluster {
                name,
                node_image,
                config,
            } => {
                writeln!(
                    f,
                    "kind create cluster --name {name} --config - (skipped if `kind get clusters` lists {name})"
                )?;
                writeln!(f, "       node image: {node_image}")?;
                writeln!(f, "       config:")?;
                indented(f, "         | ", config)
            }
            KindAction::NodeRegistryHosts {
                node,
                path,
                content,
            } => {
                writeln!(f, "containerd registry host on node {node}")?;
                writeln!(f, "       file: {path}")?;
                indented(f, "         | ", content)
            }
            KindAction::ConnectNetwork { network, container } => {
                writeln!(
                    f,
                    "docker network connect {network} {container} (skipped if connected)"
                )
            }
            KindAction::ConfigMap {
                namespace,
                name,
                data,
            } => {
                writeln!(f, "ConfigMap {namespace}/{name} (server-side apply)")?;
                map_lines(f, data)
            }
            KindAction::Namespace { name } => writeln!(f, "Namespace {name} (server-side apply)"),
            KindAction::InstallArgoCd {
                version,
                url,
                sha256,
                cache_path,
                namespace,
                field_manager,
            } => {
                writeln!(
                    f,
                    "Argo CD {version} install.yaml into namespace {namespace}"
                )?;
                writeln!(f, "       url:    {url}")?;
                writeln!(f, "       sha256: {sha256}")?;
                writeln!(f, "       cache:  {}", cache_path.display())?;
                writeln!(
                    f,
                    "       apply:  server-side, field manager {field_manager}, CRDs first and waited for"
                )
            }
            KindAction::ArgoCdSettings {
                namespace,
                configmap,
                data,
                restart,
            } => {
                writeln!(
                    f,
                    "ConfigMap {namespace}/{configmap} settings (server-side apply, field manager {SETTINGS_FIELD_MANAGER})"
                )?;
                map_lines(f, data)?;
                writeln!(
                    f,
                    "       then restart (when changed): {}",
                    restart.join(", ")
                )
            }
            KindAction::RepoCredsSecret {
                namespace,
                name,
                labels,
                string_data,
            } => {
                writeln!(f, "Secret {namespace}/{name} (server-side apply)")?;
                for (k, v) in labels {
                    writeln!(f, "       label {k}: {v}")?;
                }
                map_lines(f, string_data)
            }
            KindAction::WaitReady {
                namespace,
                workloads,
                app_project,
                timeout,
            } => {
                writeln!(
                    f,
                    "wait up to {} in namespace {namespace}",
                    humantime::format_duration(*timeout)
                )?;
                for w in workloads {
                    writeln!(f, "       {w}: ready")?;
                }
                writeln!(f, "       appproject/{app_project}: exists")
            }
        }
    }
}

impl fmt::Display for KindPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "KIND lab plan: cluster {} (kind {}), Argo CD {}",
            self.cluster_name, self.kind_version, self.argocd_version
        )?;
        for (i, action) in self.actions.iter().enumerate() {
            write!(f, "{:>3}. {action}", i + 1)?;
        }
        Ok(())
    }
}
