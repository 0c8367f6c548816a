//! The KIND lab's dry-run plan: pinned by a snapshot, and checked point by
//! point against kind's documented local-registry recipe
//! (https://kind.sigs.k8s.io/docs/user/local-registry/, the script
//! site/static/examples/kind-with-registry.sh at kind v0.31/v0.32).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use harness_labs::kind::{self, KindAction, KindError, KindLabConfig, KindPlan};

/// The default configuration with a fixed cache dir, so the snapshot does
/// not depend on $HOME.
fn cfg() -> KindLabConfig {
    KindLabConfig {
        cache_dir: PathBuf::from("/home/user/.cache/oci-e2e"),
        ..KindLabConfig::default()
    }
}

fn plan() -> KindPlan {
    kind::plan(&cfg()).expect("the default configuration has a plan")
}

#[test]
fn dry_run_plan_snapshot() {
    insta::assert_snapshot!("kind_plan_default", plan().to_string());
}

#[test]
fn dry_run_plan_with_workers_snapshot() {
    let cfg = KindLabConfig {
        workers: 2,
        ..cfg()
    };
    let plan = kind::plan(&cfg).expect("plan");
    insta::assert_snapshot!("kind_plan_two_workers", plan.to_string());
}

/// Position of the first action matching `pred`.
fn position(plan: &KindPlan, what: &str, pred: impl Fn(&KindAction) -> bool) -> usize {
    plan.actions
        .iter()
        .position(pred)
        .unwrap_or_else(|| panic!("the plan has no {what} action:\n{plan}"))
}

// The recipe, as kind documents it (values copied from kind-with-registry.sh).
const RECIPE_REG_NAME: &str = "kind-registry";
const RECIPE_REG_PORT: u16 = 5001;
const RECIPE_RUN_PUBLISH: &str = "127.0.0.1:5001"; // -p "127.0.0.1:${reg_port}:5000"
const RECIPE_CONTAINER_PORT: u16 = 5000;
const RECIPE_IMAGE: &str = "registry:3";
const RECIPE_RUN_NETWORK: &str = "bridge"; // --network bridge
const RECIPE_CONTAINERD_PATCH: &str =
    "[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"/etc/containerd/certs.d\"";
const RECIPE_REGISTRY_DIR: &str = "/etc/containerd/certs.d/localhost:5001";
const RECIPE_HOSTS_TOML: &str = "[host.\"http://kind-registry:5000\"]\n";
const RECIPE_NETWORK: &str = "kind";
const RECIPE_CM_NAMESPACE: &str = "kube-public";
const RECIPE_CM_NAME: &str = "local-registry-hosting";
const RECIPE_CM_KEY: &str = "localRegistryHosting.v1";
const RECIPE_CM_HOST: &str = "localhost:5001";
const RECIPE_CM_HELP: &str = "https://kind.sigs.k8s.io/docs/user/local-registry/";

#[test]
fn step_1_registry_container_matches_docker_run_of_the_recipe() {
    let plan = plan();
    // Only the host's preparation (/lib/modules, inotify) comes first.
    assert_eq!(plan.actions[0], KindAction::HostPrepare, "{plan}");
    let KindAction::RegistryContainer { spec } = &plan.actions[1] else {
        panic!("step 1 of the recipe must be the registry container:\n{plan}");
    };
    assert_eq!(spec.name, RECIPE_REG_NAME);
    assert_eq!(spec.image, RECIPE_IMAGE);
    assert_eq!(spec.host_address(), RECIPE_RUN_PUBLISH);
    assert_eq!(spec.host_port, RECIPE_REG_PORT);
    assert_eq!(spec.container_port, RECIPE_CONTAINER_PORT);
    assert!(spec.restart_always, "--restart=always");
    assert_eq!(spec.network.as_deref(), Some(RECIPE_RUN_NETWORK));
}

#[test]
fn step_2_cluster_config_enables_the_containerd_config_path() {
    let plan = plan();
    let i = position(&plan, "create cluster", |a| {
        matches!(a, KindAction::CreateCluster { .. })
    });
    assert_eq!(
        i, 2,
        "the cluster comes right after the registry, as in the recipe"
    );
    let KindAction::CreateCluster {
        name,
        node_image,
        config,
    } = &plan.actions[i]
    else {
        unreachable!()
    };
    assert_eq!(name, "oci-e2e");
    assert!(!config.contains("{{"), "unrendered placeholder:\n{config}");
    // The rendered config is valid YAML with the fields kind reads.
    let doc: serde_json::Value =
        serde_saphyr::from_str(config).expect("rendered kind config parses");
    assert_eq!(doc["kind"], "Cluster");
    assert_eq!(doc["apiVersion"], "kind.x-k8s.io/v1alpha4");
    assert_eq!(doc["name"], "oci-e2e");
    assert_eq!(doc["nodes"][0]["role"], "control-plane");
    assert_eq!(doc["nodes"][0]["image"].as_str(), Some(node_image.as_str()));
    assert_eq!(doc["nodes"].as_array().map(Vec::len), Some(1));
    let patch = doc["containerdConfigPatches"][0]
        .as_str()
        .expect("one containerd patch");
    assert_eq!(patch, RECIPE_CONTAINERD_PATCH);
}

#[test]
fn step_3_each_node_gets_the_hosts_toml_of_the_recipe() {
    let cfg = KindLabConfig {
        workers: 2,
        ..cfg()
    };
    let plan = kind::plan(&cfg).expect("plan");
    let files: Vec<(&str, &str, &str)> = plan
        .actions
        .iter()
        .filter_map(|a| match a {
            KindAction::NodeRegistryHosts {
                node,
                path,
                content,
            } => Some((node.as_str(), path.as_str(), content.as_str())),
            _ => None,
        })
        .collect();
    let nodes: Vec<&str> = files.iter().map(|f| f.0).collect();
    // kind names nodes <cluster>-control-plane, <cluster>-worker, <cluster>-worker2.
    assert_eq!(
        nodes,
        ["oci-e2e-control-plane", "oci-e2e-worker", "oci-e2e-worker2"]
    );
    for (node, path, content) in files {
        assert_eq!(
            path,
            format!("{RECIPE_REGISTRY_DIR}/hosts.toml"),
            "node {node}"
        );
        assert_eq!(content, RECIPE_HOSTS_TOML, "node {node}");
    }
    let cluster = position(&plan, "create cluster", |a| {
        matches!(a, KindAction::CreateCluster { .. })
    });
    let first_hosts = position(&plan, "hosts.toml", |a| {
        matches!(a, KindAction::NodeRegistryHosts { .. })
    });
    assert!(
        first_hosts > cluster,
        "nodes exist only after the cluster is created"
    );
}

#[test]
fn step_4_registry_joins_the_kind_network() {
    let plan = plan();
    let i = position(&plan, "network connect", |a| {
        matches!(a, KindAction::ConnectNetwork { .. })
    });
    let KindAction::ConnectNetwork { network, container } = &plan.actions[i] else {
        unreachable!()
    };
    assert_eq!(network, RECIPE_NETWORK);
    assert_eq!(container, RECIPE_REG_NAME);
    let cluster = position(&plan, "create cluster", |a| {
        matches!(a, KindAction::CreateCluster { .. })
    });
    assert!(
        i > cluster,
        "the kind network exists only after the cluster is created"
    );
}

#[test]
fn step_5_local_registry_hosting_configmap_has_the_kep_1755_fields() {
    let plan = plan();
    let i = position(
        &plan,
        "local-registry-hosting",
        |a| matches!(a, KindAction::ConfigMap { name, .. } if name == RECIPE_CM_NAME),
    );
    let KindAction::ConfigMap {
        namespace, data, ..
    } = &plan.actions[i]
    else {
        unreachable!()
    };
    assert_eq!(namespace, RECIPE_CM_NAMESPACE);
    assert_eq!(data.keys().collect::<Vec<_>>(), [RECIPE_CM_KEY]);
    let hosting: BTreeMap<String, String> =
        serde_saphyr::from_str(&data[RECIPE_CM_KEY]).expect("KEP-1755 YAML");
    assert_eq!(hosting["host"], RECIPE_CM_HOST);
    assert_eq!(hosting["help"], RECIPE_CM_HELP);
    // The fields the recipe leaves out but KEP-1755 defines: both name the
    // registry on the kind network.
    assert_eq!(hosting["hostFromContainerRuntime"], "kind-registry:5000");
    assert_eq!(hosting["hostFromClusterNetwork"], "kind-registry:5000");
    assert_eq!(hosting.len(), 4, "{hosting:?}");
}

#[test]
fn argo_cd_install_is_pinned_and_applied_server_side() {
    let plan = plan();
    let i = position(&plan, "install", |a| {
        matches!(a, KindAction::InstallArgoCd { .. })
    });
    let KindAction::InstallArgoCd {
        version,
        url,
        sha256,
        cache_path,
        namespace,
        field_manager,
    } = &plan.actions[i]
    else {
        unreachable!()
    };
    assert_eq!(version, harness_labs::ARGOCD_VERSION);
    assert_eq!(
        url,
        &format!(
            "https://raw.githubusercontent.com/argoproj/argo-cd/{version}/manifests/install.yaml"
        )
    );
    assert_eq!(Some(sha256.as_str()), kind::pinned_install_sha256(version));
    assert_eq!(sha256.len(), 64);
    assert!(
        sha256
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    );
    assert_eq!(
        cache_path,
        &PathBuf::from(format!(
            "/home/user/.cache/oci-e2e/argocd/{version}/install.yaml"
        ))
    );
    assert_eq!(namespace, "argocd");
    assert_eq!(field_manager, "oci-e2e");
    let ns = position(
        &plan,
        "namespace",
        |a| matches!(a, KindAction::Namespace { name } if name == "argocd"),
    );
    assert!(
        ns < i,
        "the namespace exists before install.yaml is applied into it"
    );
}

#[test]
fn argo_cd_reaches_the_registry_by_its_kind_network_name_over_http() {
    let plan = plan();
    let i = position(&plan, "repo-creds", |a| {
        matches!(a, KindAction::RepoCredsSecret { .. })
    });
    let KindAction::RepoCredsSecret {
        namespace,
        labels,
        string_data,
        ..
    } = &plan.actions[i]
    else {
        unreachable!()
    };
    assert_eq!(namespace, "argocd");
    assert_eq!(
        labels
            .get("argocd.argoproj.io/secret-type")
            .map(String::as_str),
        Some("repo-creds")
    );
    assert_eq!(string_data["url"], "oci://kind-registry:5000");
    assert_eq!(string_data["type"], "oci");
    assert_eq!(string_data["insecureOCIForceHttp"], "true");
    let install = position(&plan, "install", |a| {
        matches!(a, KindAction::InstallArgoCd { .. })
    });
    assert!(i > install);
}

#[test]
fn reconciliation_is_shortened_and_the_readers_restarted() {
    let plan = plan();
    let i = position(&plan, "settings", |a| {
        matches!(a, KindAction::ArgoCdSettings { .. })
    });
    let KindAction::ArgoCdSettings {
        configmap,
        data,
        restart,
        ..
    } = &plan.actions[i]
    else {
        unreachable!()
    };
    assert_eq!(configmap, "argocd-cm");
    let interval = humantime::parse_duration(&data["timeout.reconciliation"]).expect("a duration");
    assert!(
        interval <= Duration::from_secs(30),
        "{interval:?} is not short"
    );
    assert_eq!(data["timeout.reconciliation.jitter"], "0s");
    assert!(restart.contains(&"statefulset/argocd-application-controller".to_string()));
}

#[test]
fn plan_ends_waiting_for_argo_cd_components_and_the_default_project() {
    let plan = plan();
    let Some(KindAction::WaitReady {
        namespace,
        workloads,
        app_project,
        ..
    }) = plan.actions.last()
    else {
        panic!("the plan must end with the readiness wait:\n{plan}");
    };
    assert_eq!(namespace, "argocd");
    for w in [
        "deployment/argocd-redis",
        "deployment/argocd-repo-server",
        "statefulset/argocd-application-controller",
    ] {
        assert!(
            workloads.contains(&w.to_string()),
            "{w} missing from {workloads:?}"
        );
    }
    assert_eq!(app_project, "default");
}

#[test]
fn configuration_is_reflected_in_the_plan() {
    let cfg = KindLabConfig {
        cluster_name: "other".into(),
        registry_name: "reg-x".into(),
        registry_host_port: 5999,
        registry_image: "localhost/oci-e2e-registry:2.8".into(),
        node_image: "kindest/node:v1.34.0".into(),
        ..cfg()
    };
    let text = kind::plan(&cfg).expect("plan").to_string();
    for expected in [
        "127.0.0.1:5999 -> 5000/tcp",
        "image:   localhost/oci-e2e-registry:2.8",
        "kind create cluster --name other",
        "image: kindest/node:v1.34.0",
        "/etc/containerd/certs.d/localhost:5999/hosts.toml",
        "[host.\"http://reg-x:5000\"]",
        "docker network connect kind reg-x",
        "oci://reg-x:5000",
        "node other-control-plane",
    ] {
        assert!(text.contains(expected), "{expected:?} not in plan:\n{text}");
    }
}

#[test]
fn an_unpinned_argo_cd_version_is_refused_with_the_fix() {
    let cfg = KindLabConfig {
        argocd_version: "v9.9.9".into(),
        ..cfg()
    };
    let err = kind::plan(&cfg).expect_err("no checksum is pinned for v9.9.9");
    assert!(matches!(err, KindError::UnpinnedArgoCd { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("v9.9.9")
            && msg.contains("v3.3.10")
            && msg.contains("harness/tools/src/versions.rs"),
        "{msg}"
    );
}

#[test]
fn invalid_configuration_is_refused_before_anything_runs() {
    let cases: Vec<(KindLabConfig, &str)> = vec![
        (
            KindLabConfig {
                cluster_name: "Bad_Name".into(),
                ..cfg()
            },
            "cluster name",
        ),
        (
            KindLabConfig {
                registry_host_ip: "localhost".into(),
                ..cfg()
            },
            "registry host IP",
        ),
        (
            KindLabConfig {
                registry_host_port: 0,
                ..cfg()
            },
            "registry host port",
        ),
        (
            KindLabConfig {
                node_image: "kindest/node v1".into(),
                ..cfg()
            },
            "node image",
        ),
        (
            KindLabConfig {
                reconciliation: Duration::from_millis(500),
                ..cfg()
            },
            "reconciliation interval",
        ),
        (
            KindLabConfig {
                registry_name: "-x".into(),
                ..cfg()
            },
            "registry container name",
        ),
    ];
    for (cfg, field) in cases {
        let err = kind::plan(&cfg).expect_err(field);
        assert!(
            matches!(err, KindError::InvalidConfig(_)),
            "{field}: {err:?}"
        );
        assert!(err.to_string().contains(field), "{field}: {err}");
    }
}

#[test]
fn every_pinned_checksum_is_well_formed_and_versions_are_unique() {
    let mut seen = std::collections::HashSet::new();
    for (version, sha) in kind::PINNED_INSTALL_SHA256 {
        assert!(
            version.starts_with("v3."),
            "{version}: native oci:// sources need v3.1+"
        );
        assert!(seen.insert(*version), "{version} pinned twice");
        assert_eq!(sha.len(), 64, "{version}");
        assert!(
            sha.chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)),
            "{version}: {sha}"
        );
    }
    assert!(kind::pinned_install_sha256(harness_labs::ARGOCD_VERSION).is_some());
}

/// The nightly workflow runs the KIND lab with the kind release the node
/// image is pinned for, and keeps its report even when scenarios fail.
#[test]
fn nightly_workflow_runs_the_kind_lab_with_the_pinned_kind() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../.github/workflows/nightly.yml"
    );
    let text = std::fs::read_to_string(path).expect("read .github/workflows/nightly.yml");
    let wf: serde_json::Value = serde_saphyr::from_str(&text).expect("nightly.yml parses");
    assert_eq!(
        wf["env"]["KIND_VERSION"].as_str(),
        Some(kind::KIND_VERSION),
        "kind version drifted"
    );
    assert!(
        wf["on"]["schedule"][0]["cron"].is_string(),
        "runs on a schedule"
    );
    assert!(
        wf["on"].get("workflow_dispatch").is_some(),
        "can be started by hand"
    );
    let job = &wf["jobs"]["e2e-kind"];
    assert_eq!(job["runs-on"], "ubuntu-latest");
    let steps = job["steps"].as_array().expect("steps");
    let runs = |needle: &str| {
        steps
            .iter()
            .any(|s| s["run"].as_str().is_some_and(|r| r.contains(needle)))
    };
    assert!(runs("kind@${KIND_VERSION}"), "installs the pinned kind");
    assert!(runs(
        "cargo xtask e2e --lab kind --report target/e2e/nightly"
    ));
    let upload = steps
        .iter()
        .find(|s| {
            s["uses"]
                .as_str()
                .is_some_and(|u| u.starts_with("actions/upload-artifact@"))
        })
        .expect("uploads the report");
    assert_eq!(upload["if"], "always()");
    assert_eq!(upload["with"]["path"], "target/e2e/nightly");
}

#[test]
fn environment_overrides_reach_the_plan_and_bad_values_are_named() {
    let env = std::collections::HashMap::from([
        ("OCI_E2E_KIND_CLUSTER", "nightly"),
        ("OCI_E2E_KIND_NODE_IMAGE", "kindest/node:v1.34.0"),
        ("OCI_E2E_KIND_WORKERS", "1"),
        (
            "OCI_E2E_KIND_REGISTRY_IMAGE",
            "localhost/oci-e2e-registry:2.8",
        ),
        ("OCI_E2E_KIND_REGISTRY_PORT", "5002"),
        ("OCI_E2E_ARGOCD_VERSION", "v3.3.19"),
    ]);
    let cfg =
        KindLabConfig::from_lookup(|k| env.get(k).map(|v| v.to_string())).expect("valid overrides");
    let text = kind::plan(&cfg).expect("plan").to_string();
    for expected in [
        "cluster nightly",
        "image: kindest/node:v1.34.0",
        "node nightly-worker",
        "image:   localhost/oci-e2e-registry:2.8",
        "127.0.0.1:5002 -> 5000/tcp",
        "argo-cd/v3.3.19/manifests/install.yaml",
    ] {
        assert!(text.contains(expected), "{expected:?} not in plan:\n{text}");
    }
    // Every documented variable is read.
    for (name, _) in kind::ENV_OVERRIDES {
        assert!(env.contains_key(name), "{name} untested");
    }
    // Unset or empty variables keep the defaults.
    assert_eq!(
        KindLabConfig::from_lookup(|_| Some(String::new())).expect("defaults"),
        KindLabConfig::default()
    );

    let err = KindLabConfig::from_lookup(|k| {
        (k == "OCI_E2E_KIND_REGISTRY_PORT").then(|| "50o1".to_string())
    })
    .expect_err("bad port");
    assert!(
        err.to_string()
            .contains("OCI_E2E_KIND_REGISTRY_PORT=\"50o1\""),
        "{err}"
    );
    let err = KindLabConfig::from_lookup(|k| {
        (k == "OCI_E2E_KIND_CLUSTER").then(|| "Nightly!".to_string())
    })
    .expect_err("bad cluster name");
    assert!(err.to_string().contains("cluster name"), "{err}");
}

/// The offline lab's plan: the registry is on the kind network and holds
/// the images before kind creates nodes that pull through it; each node
/// gets a CNI config; the cluster config says what differs.
#[test]
fn offline_plan_fills_the_registry_before_the_cluster_and_writes_cni_per_node() {
    let offline = KindLabConfig {
        workers: 1,
        ..cfg()
    }
    .with_offline_images();
    let plan = kind::plan(&offline).expect("plan");
    let at = |what: &str, f: &dyn Fn(&KindAction) -> bool| position(&plan, what, f);
    let network = at(
        "network",
        &|a| matches!(a, KindAction::EnsureNetwork { name } if name == "kind"),
    );
    let registry = at("registry", &|a| {
        matches!(a, KindAction::RegistryContainer { .. })
    });
    let images = at("images", &|a| matches!(a, KindAction::OfflineImages { .. }));
    let create = at("create", &|a| matches!(a, KindAction::CreateCluster { .. }));
    assert!(
        network < registry && registry < images && images < create,
        "{plan}"
    );
    let KindAction::RegistryContainer { spec } = &plan.actions[registry] else {
        unreachable!()
    };
    assert_eq!(
        spec.network.as_deref(),
        Some("kind"),
        "nodes pull through it while created"
    );
    assert_eq!(spec.image, harness_labs::container::TEST_REGISTRY_IMAGE);
    let cni: Vec<&str> = plan
        .actions
        .iter()
        .enumerate()
        .filter_map(|(i, a)| match a {
            KindAction::NodeCni { node } => {
                assert!(i > create, "CNI after the cluster exists");
                Some(node.as_str())
            }
            _ => None,
        })
        .collect();
    assert_eq!(cni, vec!["oci-e2e-control-plane", "oci-e2e-worker"]);
    let KindAction::CreateCluster {
        node_image, config, ..
    } = &plan.actions[create]
    else {
        unreachable!()
    };
    assert!(
        node_image.starts_with("localhost/oci-e2e/kind-node:v1.34.4-"),
        "{node_image}"
    );
    let doc: serde_json::Value = serde_saphyr::from_str(config).expect("config parses");
    assert_eq!(doc["networking"]["disableDefaultCNI"], true, "{config}");
    assert_eq!(doc["networking"]["kubeProxyMode"], "nftables", "{config}");
    let patch = doc["kubeadmConfigPatches"][0]
        .as_str()
        .expect("kubeadm patch");
    assert!(patch.contains("imageTag: \"3.6.8-0\""), "{patch}");
    assert_eq!(doc["nodes"][1]["image"].as_str(), Some(node_image.as_str()));
    assert!(plan.actions.iter().any(|a| matches!(
        a,
        KindAction::ScaleToZero { workload, .. } if workload == "deployment/argocd-dex-server"
    )));
    // The official plan has none of it.
    let official = plan_of(&cfg());
    assert!(!official.actions.iter().any(|a| matches!(
        a,
        KindAction::OfflineImages { .. }
            | KindAction::NodeCni { .. }
            | KindAction::ScaleToZero { .. }
    )));
    let KindAction::CreateCluster { config, .. } = official
        .actions
        .iter()
        .find(|a| matches!(a, KindAction::CreateCluster { .. }))
        .expect("create")
    else {
        unreachable!()
    };
    assert!(!config.contains("disableDefaultCNI"), "{config}");
}

#[test]
fn coredns_asks_in_order_once() {
    let corefile = ".:53 {\n    errors\n    forward . /etc/resolv.conf {\n       max_concurrent 1000\n    }\n    cache 30\n}\n";
    let once = kind::sequential_forward(corefile).expect("changed");
    assert_eq!(
        once,
        ".:53 {\n    errors\n    forward . /etc/resolv.conf {\n       policy sequential\n       max_concurrent 1000\n    }\n    cache 30\n}\n"
    );
    assert_eq!(kind::sequential_forward(&once), None, "idempotent");
    assert_eq!(
        kind::sequential_forward(".:53 {\n    errors\n}\n"),
        None,
        "no forward block"
    );
    assert!(
        plan_of(&cfg())
            .actions
            .iter()
            .any(|a| matches!(a, KindAction::CoreDnsInOrder { .. })),
        "every KIND lab (podman lists two nameservers in nodes)"
    );
}

fn plan_of(cfg: &KindLabConfig) -> kind::KindPlan {
    kind::plan(cfg).expect("plan")
}
