//! The container half of the KIND lab, for real against a Docker API
//! (podman's service on these machines, started by
//! `ensure_podman_service`; Docker where there is one): the registry
//! container create / reuse / start / remove, its 127.0.0.1 binding,
//! networks, writing node files by exec, and a push through the published
//! port. Every test uses its own container and network names and a free
//! port, and a guard removes them even when the test fails.

use std::collections::BTreeMap;
use std::time::Duration;

use harness_labs::container::{self, ContainerError, Engine, Ensured, RegistryContainerSpec};
use harness_labs::kind::{self, KindLabConfig};
use harness_oci::RegistryEndpoint;
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage, ImageExt};

/// Removes containers and networks when dropped (also on panic). Drop
/// cannot await, so it runs the removals on a fresh runtime in a thread,
/// with its own connection to the engine.
struct Cleanup {
    host: String,
    containers: Vec<String>,
    networks: Vec<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let host = self.host.clone();
        let containers = std::mem::take(&mut self.containers);
        let networks = std::mem::take(&mut self.networks);
        let joined = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                eprintln!(
                    "cleanup: cannot build a runtime; remove {containers:?} {networks:?} by hand"
                );
                return;
            };
            rt.block_on(async move {
                let engine = match container::connect_to(&host).await {
                    Ok(e) => e,
                    Err(e) => {
                        eprintln!("cleanup: {e}; remove {containers:?} {networks:?} by hand");
                        return;
                    }
                };
                for c in &containers {
                    if let Err(e) = container::remove_container(&engine, c).await {
                        eprintln!("cleanup: container {c}: {e}");
                    }
                }
                for n in &networks {
                    if let Err(e) = container::remove_network(&engine, n).await {
                        eprintln!("cleanup: network {n}: {e}");
                    }
                }
            });
        })
        .join();
        if joined.is_err() {
            eprintln!("cleanup thread panicked");
        }
    }
}

/// An engine that answers (starting podman's service if needed) and the
/// test registry image. A missing engine fails the test with the reason.
async fn setup() -> (Engine, String) {
    harness_core::init_crypto();
    let host = match container::ensure_podman_service().await {
        Ok(h) => h,
        Err(e) => panic!("no Docker API for the KIND container tests: {e}"),
    };
    let engine = match container::connect_to(&host).await {
        Ok(e) => e,
        Err(e) => panic!("connect to {host}: {e}"),
    };
    let image = match container::build_registry_image(&engine).await {
        Ok(i) => i,
        Err(e) => panic!("build the test registry image: {e}"),
    };
    (engine, image)
}

fn unique(prefix: &str) -> String {
    format!(
        "oci-e2e-test-{prefix}-{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    )
}

fn free_port() -> u16 {
    harness_core::process::free_port().expect("a free port on 127.0.0.1")
}

/// The registry container exactly as the KIND lab specifies it, with a
/// test name, port and image.
fn lab_spec(name: &str, port: u16, image: &str) -> RegistryContainerSpec {
    let cfg = KindLabConfig {
        registry_name: name.to_string(),
        registry_host_port: port,
        registry_image: image.to_string(),
        ..KindLabConfig::default()
    };
    kind::registry_spec(&cfg)
}

/// A container the test needs but does not test (a stand-in for a kind
/// node): the test registry image, named `name`, on `network` when given,
/// owned by testcontainers (removed when dropped, also on panic).
async fn bystander(image: &str, name: &str, network: Option<&str>) -> ContainerAsync<GenericImage> {
    let (repository, tag) = image.rsplit_once(':').expect("the image has a tag");
    // Ready once running: the tests wait for what they need themselves
    // (the registry in it logs nothing at its log level once it listens).
    let request = GenericImage::new(repository, tag).with_container_name(name);
    let request = match network {
        Some(network) => request.with_network(network),
        None => request,
    };
    request
        .start()
        .await
        .unwrap_or_else(|e| panic!("start {name} through testcontainers: {e}"))
}

/// Waits until the registry answers `GET /v2/` on 127.0.0.1:port.
async fn wait_registry(port: u16) {
    let url = format!("http://127.0.0.1:{port}/v2/");
    let client = reqwest::Client::new();
    let mut last = String::new();
    for _ in 0..100 {
        match client.get(&url).send().await {
            Ok(r) if r.status().is_success() => return,
            Ok(r) => last = format!("status {}", r.status()),
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("registry on {url} did not answer: {last}");
}

#[tokio::test]
async fn registry_container_is_created_reused_restarted_and_removed() {
    let (engine, image) = setup().await;
    let docker = &engine.docker;
    let name = unique("reg");
    let _cleanup = Cleanup {
        host: engine.host.clone(),
        containers: vec![name.clone()],
        networks: vec![],
    };
    let port = free_port();
    let spec = lab_spec(&name, port, &image);

    assert_eq!(
        container::ensure_registry_container(&engine, &spec)
            .await
            .expect("create"),
        Ensured::Created
    );
    let info = container::inspect_container(&engine, &name)
        .await
        .expect("inspect")
        .expect("exists");
    assert!(info.running, "{info:?}");
    assert_eq!(
        info.published.get(&5000),
        Some(&vec![format!("127.0.0.1:{port}")]),
        "{info:?}"
    );
    assert_eq!(info.restart_policy.as_deref(), Some("always"), "{info:?}");
    wait_registry(port).await;

    assert_eq!(
        container::ensure_registry_container(&engine, &spec)
            .await
            .expect("reuse"),
        Ensured::Reused
    );
    let again = container::inspect_container(&engine, &name)
        .await
        .expect("inspect")
        .expect("exists");
    assert_eq!(again.id, info.id, "reuse must not replace the container");

    docker
        .stop_container(
            &name,
            None::<bollard::query_parameters::StopContainerOptions>,
        )
        .await
        .expect("stop");
    let stopped = container::inspect_container(&engine, &name)
        .await
        .expect("inspect")
        .expect("exists");
    assert!(!stopped.running, "{stopped:?}");
    assert_eq!(
        container::ensure_registry_container(&engine, &spec)
            .await
            .expect("start"),
        Ensured::Started
    );
    let started = container::inspect_container(&engine, &name)
        .await
        .expect("inspect")
        .expect("exists");
    assert!(started.running && started.id == info.id, "{started:?}");
    wait_registry(port).await;

    assert!(
        container::remove_container(&engine, &name)
            .await
            .expect("remove")
    );
    assert_eq!(
        container::inspect_container(&engine, &name)
            .await
            .expect("inspect"),
        None
    );
    assert!(
        !container::remove_container(&engine, &name)
            .await
            .expect("remove again"),
        "already gone"
    );
}

#[tokio::test]
async fn published_port_listens_on_loopback_only() {
    let (engine, image) = setup().await;
    let name = unique("loop");
    let _cleanup = Cleanup {
        host: engine.host.clone(),
        containers: vec![name.clone()],
        networks: vec![],
    };
    let port = free_port();
    container::ensure_registry_container(&engine, &lab_spec(&name, port, &image))
        .await
        .expect("create");
    wait_registry(port).await;
    // Another local address of this machine must not reach it.
    let others: Vec<std::net::IpAddr> = local_non_loopback_ipv4();
    assert!(
        !others.is_empty(),
        "`hostname -I` lists no non-loopback address to check against"
    );
    for ip in others {
        let addr = std::net::SocketAddr::new(ip, port);
        let reached =
            std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok();
        assert!(
            !reached,
            "registry reachable on {addr}, but it must bind 127.0.0.1 only"
        );
    }
}

/// IPv4 addresses of this host's interfaces other than loopback (from
/// `hostname -I`, which lists them).
fn local_non_loopback_ipv4() -> Vec<std::net::IpAddr> {
    let out = std::process::Command::new("hostname").arg("-I").output();
    let text = out
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    text.split_whitespace()
        .filter_map(|s| s.parse::<std::net::IpAddr>().ok())
        .filter(|ip| ip.is_ipv4() && !ip.is_loopback())
        .collect()
}

#[tokio::test]
async fn a_container_of_that_name_on_another_port_is_refused() {
    let (engine, image) = setup().await;
    let name = unique("clash");
    let _cleanup = Cleanup {
        host: engine.host.clone(),
        containers: vec![name.clone()],
        networks: vec![],
    };
    let port = free_port();
    container::ensure_registry_container(&engine, &lab_spec(&name, port, &image))
        .await
        .expect("create");
    let other = lab_spec(&name, free_port(), &image);
    let err = container::ensure_registry_container(&engine, &other)
        .await
        .expect_err("port clash");
    assert!(
        matches!(err, ContainerError::PortMismatch { .. }),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains(&name) && msg.contains(&port.to_string()),
        "{msg}"
    );
}

#[tokio::test]
async fn a_missing_image_is_reported_with_the_fix() {
    let (engine, _image) = setup().await;
    let name = unique("noimg");
    let _cleanup = Cleanup {
        host: engine.host.clone(),
        containers: vec![name.clone()],
        networks: vec![],
    };
    let spec = lab_spec(&name, free_port(), "localhost/oci-e2e-no-such-image:0");
    let err = container::ensure_registry_container(&engine, &spec)
        .await
        .expect_err("no image");
    let msg = err.to_string();
    assert!(
        msg.contains("oci-e2e-no-such-image") && msg.contains("pull"),
        "{msg}"
    );
    assert_eq!(
        container::inspect_container(&engine, &name)
            .await
            .expect("inspect"),
        None
    );
}

/// The KIND lab's pre-flight check sees this engine as it is: podman
/// (which these machines run) with its network backend, and, on the CNI
/// backend, the dnsname plugin `cargo xtask test` installs; so the check
/// passes here, and names resolve (the test below proves they do).
#[tokio::test]
async fn name_resolution_check_reads_the_real_engine() {
    let (engine, _) = setup().await;
    let found = container::name_resolution(&engine)
        .await
        .expect("ask the engine for its network backend");
    match &found {
        container::NameResolution::Podman { backend, dnsname } => {
            assert!(
                backend == "cni" || backend == "netavark",
                "unexpected podman network backend {backend:?}"
            );
            if backend == "cni" {
                assert_eq!(
                    dnsname.as_deref(),
                    Some(std::path::Path::new(container::DNSNAME_PLUGIN)),
                    "the dnsname plugin is installed by the test command"
                );
            }
        }
        container::NameResolution::Docker => {}
    }
    found.check().expect("names resolve on this engine");
}

/// Without the plugin on the CNI backend the check refuses, naming the
/// package and the other backend; netavark and Docker need no plugin.
#[test]
fn name_resolution_check_names_the_missing_plugin() {
    let missing = container::NameResolution::Podman {
        backend: "cni".into(),
        dnsname: None,
    };
    let err = missing
        .check()
        .expect_err("CNI without dnsname cannot resolve names");
    let text = err.to_string();
    assert!(
        text.contains("golang-github-containernetworking-plugin-dnsname"),
        "{text}"
    );
    assert!(text.contains("netavark"), "{text}");
    assert!(text.contains("kind-registry"), "{text}");
    for fine in [
        container::NameResolution::Docker,
        container::NameResolution::Podman {
            backend: "netavark".into(),
            dnsname: None,
        },
        container::NameResolution::Podman {
            backend: "cni".into(),
            dnsname: Some(container::DNSNAME_PLUGIN.into()),
        },
    ] {
        assert!(fine.check().is_ok(), "{fine:?}");
    }
}

#[tokio::test]
async fn network_create_connect_and_name_resolution_like_the_kind_network() {
    let (engine, image) = setup().await;
    let network = unique("net");
    let registry = unique("netreg");
    let client = unique("node");
    let _cleanup = Cleanup {
        host: engine.host.clone(),
        containers: vec![registry.clone()],
        networks: vec![network.clone()],
    };
    assert!(
        container::ensure_network(&engine, &network)
            .await
            .expect("create network")
    );
    assert!(
        !container::ensure_network(&engine, &network)
            .await
            .expect("network exists"),
        "second call reuses"
    );

    // The registry starts on the default bridge, as in kind's recipe, and
    // joins the cluster network afterwards.
    let port = free_port();
    container::ensure_registry_container(&engine, &lab_spec(&registry, port, &image))
        .await
        .expect("registry");
    assert!(
        container::connect_network(&engine, &network, &registry)
            .await
            .expect("connect")
    );
    assert!(
        !container::connect_network(&engine, &network, &registry)
            .await
            .expect("reconnect"),
        "already connected"
    );
    let info = container::inspect_container(&engine, &registry)
        .await
        .expect("inspect")
        .expect("exists");
    assert!(info.networks.contains(&network), "{info:?}");

    // A "node" on that network reaches the registry by container name,
    // which is what hosts.toml's http://kind-registry:5000 relies on.
    // Declared after the cleanup guard: dropped (removed) first, before
    // the network it is on.
    let _node = bystander(&image, &client, Some(&network)).await;
    wait_registry(port).await;
    let url = format!("http://{registry}:5000/v2/");
    let mut last = None;
    for _ in 0..50 {
        let out = container::exec(&engine, &client, &["wget", "-q", "-O", "-", &url])
            .await
            .expect("exec wget");
        if out.exit_code == 0 {
            last = None;
            break;
        }
        last = Some(out);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        last.is_none(),
        "{url} not reachable from {client}: {last:?}"
    );
}

#[tokio::test]
async fn hosts_toml_is_written_into_a_node_container_as_planned() {
    let (engine, image) = setup().await;
    let node = unique("hosts");
    let _node = bystander(&image, &node, None).await;
    let plan = kind::plan(&KindLabConfig::default()).expect("plan");
    let (path, content) = plan
        .actions
        .iter()
        .find_map(|a| match a {
            kind::KindAction::NodeRegistryHosts { path, content, .. } => {
                Some((path.clone(), content.clone()))
            }
            _ => None,
        })
        .expect("the plan writes hosts.toml");
    container::write_file_in_container(&engine, &node, &path, &content)
        .await
        .expect("write hosts.toml");
    let out = container::exec(&engine, &node, &["cat", &path])
        .await
        .expect("cat");
    assert_eq!(out.exit_code, 0, "{out:?}");
    assert_eq!(out.stdout, content);
    // A failing write is an error naming the container, not a silent skip.
    let err = container::write_file_in_container(&engine, &node, "/proc/version/x/hosts.toml", "x")
        .await
        .expect_err("cannot write under /proc/version");
    assert!(
        matches!(err, ContainerError::ExecFailed { .. }) && err.to_string().contains(&node),
        "{err}"
    );
}

#[tokio::test]
async fn an_artifact_pushed_through_the_published_port_comes_back() {
    let (engine, image) = setup().await;
    let name = unique("push");
    let _cleanup = Cleanup {
        host: engine.host.clone(),
        containers: vec![name.clone()],
        networks: vec![],
    };
    let port = free_port();
    container::ensure_registry_container(&engine, &lab_spec(&name, port, &image))
        .await
        .expect("registry");
    wait_registry(port).await;

    // The endpoint as KindLab::registry() describes it, on the test port.
    let cfg = KindLabConfig {
        registry_host_port: port,
        ..KindLabConfig::default()
    };
    assert_eq!(kind::host_registry(&cfg), format!("localhost:{port}"));
    let endpoint = RegistryEndpoint {
        // podman: connect to 127.0.0.1 explicitly (localhost may try ::1 first).
        address: format!("127.0.0.1:{port}"),
        plain_http: true,
        insecure_tls: false,
        ca_pem: None,
        auth: None,
    };
    let files = harness_oci::ArtifactFiles::from(BTreeMap::from([(
        "configmap.yaml".to_string(),
        b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: demo}\ndata: {v: \"1\"}\n".to_vec(),
    )]));
    let artifact = harness_oci::pack(
        &files,
        "application/vnd.oci.image.layer.v1.tar+gzip",
        &BTreeMap::new(),
    )
    .expect("pack");
    let client = harness_oci::RegistryClient::new(endpoint);
    let pushed = client
        .push("demo-app", &artifact, &["v1".to_string()])
        .await
        .expect("push");
    assert_eq!(pushed.digest, artifact.digest);
    assert_eq!(
        client.resolve("demo-app", "v1").await.expect("resolve"),
        artifact.digest
    );
    let pulled = client.pull("demo-app", "v1").await.expect("pull");
    assert_eq!(pulled.digest, artifact.digest);
    assert_eq!(pulled.layers.len(), 1);
    assert_eq!(pulled.layers[0].1, artifact.layers[0].bytes);
}
