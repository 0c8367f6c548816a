//! Command lines and readiness checks of the local lab's components.

use std::path::{Path, PathBuf};
use std::time::Duration;

use kube::Client;
use kube::config::{KubeConfigOptions, Kubeconfig};

use super::{LabState, LocalLabConfig, bootstrap, certs, registry};
use crate::RegistryEndpoint;
use harness_core::process::{SpawnSpec, Supervisor, free_port, tail_file};
use harness_core::progress::Progress;

/// Where each binary of the local lab is.
#[derive(Debug, Clone)]
pub struct LocalBinaries {
    pub etcd: PathBuf,
    pub kube_apiserver: PathBuf,
    pub kube_controller_manager: PathBuf,
    pub kube_scheduler: PathBuf,
    pub kwok: PathBuf,
    pub registry: PathBuf,
    pub redis: PathBuf,
    pub argocd: PathBuf,
    /// Argo CD's `manifests/crds` of the same version.
    pub argocd_crds: PathBuf,
    /// `helm`, put first on the repo-server's PATH (it renders Helm charts
    /// with `helm template`); without it chart apps fail to generate.
    pub helm: Option<PathBuf>,
}

/// Builds a kube client from a kubeconfig file.
pub async fn client_for(kubeconfig: &Path) -> anyhow::Result<Client> {
    harness_core::init_crypto();
    let kc = Kubeconfig::read_from(kubeconfig)
        .map_err(|e| anyhow::anyhow!("cannot read kubeconfig {}: {e}", kubeconfig.display()))?;
    let config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await?;
    Ok(Client::try_from(config)?)
}

/// Waits (the harness's one polling loop) until `check` holds or
/// `timeout` passes; a crash of any lab component ends the wait at once.
/// On timeout the error names the component and shows the tail of its log.
async fn wait_ready<F, Fut>(
    component: &str,
    log: &Path,
    timeout: Duration,
    sup: &Supervisor,
    mut check: F,
) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    use harness_core::poll::{self, Observation, PollOutcome};
    use tracing::Instrument as _;
    let deadline = tokio::time::Instant::now() + timeout;
    let crashed = sup.crashed();
    let outcome = poll::eventually(deadline, READINESS_BACKOFF, &crashed, || {
        let probe = check();
        async move {
            if probe.await {
                Observation::holds(())
            } else {
                Observation::fails(())
            }
        }
    })
    .instrument(tracing::debug_span!("readiness", component))
    .await;
    match outcome {
        PollOutcome::Held { .. } => Ok(()),
        PollOutcome::Cancelled { .. } => anyhow::bail!(
            "{}",
            sup.crash_report()
                .unwrap_or_else(|| format!("{component} crashed"))
        ),
        _ => anyhow::bail!(
            "{component} was not ready after {}s; last lines of {}:\n{}",
            timeout.as_secs(),
            log.display(),
            tail_file(log, 25)
        ),
    }
}

/// Readiness probes are cheap local requests (a health URL, a GET of one
/// object): probed every 50 ms at most, a component is seen ready at most
/// that late, and each step of the start waits on the one before it.
const READINESS_BACKOFF: harness_core::poll::Backoff = harness_core::poll::Backoff {
    initial: Duration::from_millis(10),
    factor: 2.0,
    max: Duration::from_millis(50),
};

/// When each component of a starting lab was started and became ready.
struct Timeline {
    started: std::time::Instant,
    phases: std::sync::Mutex<Vec<super::StartupPhase>>,
}

impl Timeline {
    fn new() -> Self {
        Self {
            started: std::time::Instant::now(),
            phases: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// Now, as an offset from the lab's start.
    fn now(&self) -> Duration {
        self.started.elapsed()
    }

    /// `name` was started at `started` and is ready now.
    fn record(&self, name: &str, started: Duration) {
        let ready = self.now();
        let mut phases = self.phases.lock().unwrap_or_else(|e| e.into_inner());
        phases.push(super::StartupPhase {
            name: name.to_string(),
            started_ms: started.as_millis() as u64,
            ready_ms: ready.as_millis() as u64,
        });
    }

    fn phases(&self) -> Vec<super::StartupPhase> {
        let mut phases = self
            .phases
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        phases.sort_by_key(|p| (p.ready_ms, p.started_ms));
        phases
    }
}

/// The apiserver's readiness check that stays last once everything else
/// is ready: it writes the default roles and bindings (about 1.5 s on a
/// fresh etcd). Nothing the lab starts needs them (every component
/// authenticates as `system:masters`, which RBAC allows before any role
/// exists), so the rest starts without waiting for it, and the lab is not
/// ready until it passes too.
const RBAC_BOOTSTRAP_CHECK: &str = "poststarthook/rbac/bootstrap-roles";

/// The apiserver says `ok` on `/readyz`, leaving out the checks named.
async fn apiserver_ready(client: &Client, exclude: &[&str]) -> bool {
    let query: Vec<String> = exclude.iter().map(|c| format!("exclude={c}")).collect();
    let path = if query.is_empty() {
        "/readyz".to_string()
    } else {
        format!("/readyz?{}", query.join("&"))
    };
    match http::Request::get(path).body(Vec::new()) {
        Ok(req) => client
            .request_text(req)
            .await
            .is_ok_and(|t| t.trim() == "ok"),
        Err(_) => false,
    }
}

async fn http_ok(url: &str) -> bool {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build();
    match client {
        Ok(c) => c
            .get(url)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success()),
        Err(_) => false,
    }
}

/// The registry answers `GET /v2/` over the scheme and trust it is
/// configured with: 2xx, or 401 when it wants credentials.
async fn registry_answers(endpoint: &RegistryEndpoint, url: &str) -> bool {
    let Ok(builder) = endpoint.http_client_builder() else {
        return false;
    };
    match builder.timeout(Duration::from_secs(2)).build() {
        Ok(c) => c.get(url).send().await.is_ok_and(|r| {
            r.status().is_success() || r.status() == reqwest::StatusCode::UNAUTHORIZED
        }),
        Err(_) => false,
    }
}

/// The lab registry's endpoint and the files that make it so.
struct SecuredRegistry {
    endpoint: RegistryEndpoint,
    htpasswd: Option<PathBuf>,
    tls: Option<registry::ServingTls>,
    ca_file: Option<PathBuf>,
    credentials_file: Option<PathBuf>,
}

/// `--registry-tls`: a CA of the registry's own and its serving
/// certificate under `<lab>/registry-tls/`; `--registry-auth`: a random
/// user and password, the htpasswd file (bcrypt) and the credentials file
/// under `<lab>/registry-auth/`.
fn secure_registry(
    security: registry::RegistrySecurity,
    dir: &Path,
    address: &str,
) -> anyhow::Result<SecuredRegistry> {
    let mut secured = SecuredRegistry {
        endpoint: RegistryEndpoint {
            address: address.to_string(),
            plain_http: !security.tls,
            ..RegistryEndpoint::default()
        },
        htpasswd: None,
        tls: None,
        ca_file: None,
        credentials_file: None,
    };
    if security.tls {
        let pki = certs::generate_registry(&dir.join("registry-tls"))?;
        secured.endpoint.ca_pem = Some(std::fs::read_to_string(&pki.ca_cert)?);
        secured.tls = Some(registry::ServingTls {
            certificate: pki.cert,
            key: pki.key,
        });
        secured.ca_file = Some(pki.ca_cert);
    }
    if security.auth {
        let auth_dir = dir.join("registry-auth");
        std::fs::create_dir_all(&auth_dir)?;
        let auth = registry::generate_credentials();
        let htpasswd = auth_dir.join("htpasswd");
        std::fs::write(
            &htpasswd,
            registry::htpasswd_line(&auth).map_err(|e| anyhow::anyhow!("htpasswd: {e}"))?,
        )?;
        let credentials = auth_dir.join("credentials.json");
        registry::save_credentials(&credentials, &auth)?;
        secured.endpoint.auth = Some(auth);
        secured.htpasswd = Some(htpasswd);
        secured.credentials_file = Some(credentials);
    }
    Ok(secured)
}

/// `plain HTTP, anonymous` / `HTTPS (lab CA), user oci-e2e-x`: never the password.
pub fn security_text(endpoint: &RegistryEndpoint) -> String {
    let transport = if endpoint.plain_http {
        "plain HTTP"
    } else {
        "HTTPS, lab CA"
    };
    match &endpoint.auth {
        Some(auth) => format!("{transport}, htpasswd user {}", auth.username),
        None => format!("{transport}, anonymous"),
    }
}

async fn redis_pong(port: u16) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut s) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
        return false;
    };
    if s.write_all(b"PING\r\n").await.is_err() {
        return false;
    }
    let mut buf = [0u8; 16];
    matches!(tokio::time::timeout(Duration::from_secs(1), s.read(&mut buf)).await, Ok(Ok(n)) if buf[..n].starts_with(b"+PONG"))
}

/// Waits until the component `name`, started again by a fault step, is
/// ready by the probe `url` recorded at start-up (`http://...` answers
/// 2xx, `redis://host:port` answers PING).
pub async fn wait_ready_again(
    name: &str,
    url: &str,
    log: &Path,
    sup: &Supervisor,
    registry: &RegistryEndpoint,
) -> anyhow::Result<()> {
    let timeout = Duration::from_secs(60);
    if name == "registry" {
        wait_ready(name, log, timeout, sup, || registry_answers(registry, url)).await
    } else if let Some(port) = url
        .strip_prefix("redis://127.0.0.1:")
        .and_then(|p| p.parse::<u16>().ok())
    {
        wait_ready(name, log, timeout, sup, || redis_pong(port)).await
    } else {
        wait_ready(name, log, timeout, sup, || http_ok(url)).await
    }
}

/// etcd and the apiserver of a lab (or of a seed being made), started.
pub(super) struct ControlPlane {
    pub pki: certs::Pki,
    pub kubeconfig: PathBuf,
    pub server: String,
    pub etcd_url: String,
    pub etcd_port: u16,
    pub client: Client,
}

/// A fresh PKI and admin kubeconfig in `dir`, then etcd (data in
/// `dir/etcd`, which may hold a seed) and the apiserver, both spawned at
/// once; ready is for the caller to wait for.
pub(super) async fn start_control_plane(
    cfg: &LocalLabConfig,
    dir: &Path,
    sup: &Supervisor,
) -> anyhow::Result<ControlPlane> {
    let bin = &cfg.binaries;
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs)?;
    let log = |name: &str| logs.join(format!("{name}.log"));
    let p = |path: &Path| path.display().to_string();

    let pki = certs::generate(&dir.join("pki"))?;
    let api_port = free_port()?;
    let server = format!("https://127.0.0.1:{api_port}");
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(&kubeconfig, certs::kubeconfig(&pki, &server, None))?;

    let (etcd_port, etcd_peer) = (free_port()?, free_port()?);
    let etcd_url = format!("http://127.0.0.1:{etcd_port}");
    let peer_url = format!("http://127.0.0.1:{etcd_peer}");
    sup.spawn(
        SpawnSpec::new("etcd", &bin.etcd, log("etcd"))
            .port(etcd_port)
            .args([
                "--name".into(),
                "oci-e2e".into(),
                format!("--data-dir={}", dir.join("etcd").display()),
                format!("--listen-client-urls={etcd_url}"),
                format!("--advertise-client-urls={etcd_url}"),
                format!("--listen-peer-urls={peer_url}"),
                // A seeded etcd keeps the peer address of the etcd that
                // made the seed; with one member nothing ever dials it.
                format!("--initial-advertise-peer-urls={peer_url}"),
                format!("--initial-cluster=oci-e2e={peer_url}"),
                // One member elects itself after one election timeout when it
                // restarts from data (a seed): 1 s by default. Nothing can
                // compete with it, so short timeouts are safe.
                "--heartbeat-interval=10".into(),
                "--election-timeout=100".into(),
                "--log-level=warn".into(),
            ]),
    )?;
    sup.spawn(
        SpawnSpec::new("kube-apiserver", &bin.kube_apiserver, log("kube-apiserver"))
            .port(api_port)
            .args([
                format!("--etcd-servers={etcd_url}"),
                format!("--secure-port={api_port}"),
                "--bind-address=127.0.0.1".into(),
                "--advertise-address=127.0.0.1".into(),
                format!("--tls-cert-file={}", p(&pki.apiserver_cert)),
                format!("--tls-private-key-file={}", p(&pki.apiserver_key)),
                format!("--client-ca-file={}", p(&pki.ca_cert)),
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local".into(),
                format!("--service-account-key-file={}", p(&pki.sa_pub)),
                format!("--service-account-signing-key-file={}", p(&pki.sa_key)),
                "--service-cluster-ip-range=10.0.0.0/24".into(),
                "--authorization-mode=RBAC".into(),
                // The only endpoint is 127.0.0.1, which Endpoints reject.
                "--endpoint-reconciler-type=none".into(),
                format!("--cert-dir={}", p(&dir.join("pki/apiserver"))),
                "--v=1".into(),
            ]),
    )?;
    let client = client_for(&kubeconfig).await?;
    Ok(ControlPlane {
        pki,
        kubeconfig,
        server,
        etcd_url,
        etcd_port,
        client,
    })
}

/// Waits until the apiserver is ready but for the checks in `exclude`.
pub(super) async fn wait_apiserver_ready(
    cluster: &ControlPlane,
    sup: &Supervisor,
    exclude: &[&str],
) -> anyhow::Result<()> {
    let log = cluster
        .kubeconfig
        .parent()
        .unwrap_or(Path::new("."))
        .join("logs/kube-apiserver.log");
    wait_ready("kube-apiserver", &log, Duration::from_secs(90), sup, || {
        apiserver_ready(&cluster.client, exclude)
    })
    .await
}

/// The CRD files of Argo CD the lab installs.
pub(super) fn crd_files(bin: &LocalBinaries) -> Vec<PathBuf> {
    bootstrap::CRD_FILES
        .iter()
        .map(|f| bin.argocd_crds.join(f))
        .collect()
}

/// Starts every component in order; returns the lab's state and a client.
pub async fn start_all(
    cfg: &LocalLabConfig,
    dir: &Path,
    id: &str,
    seed: Option<&Path>,
    sup: &Supervisor,
    progress: &Progress,
) -> anyhow::Result<(LabState, Client)> {
    let bin = &cfg.binaries;
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs)?;
    let log = |name: &str| logs.join(format!("{name}.log"));

    // Everything that needs nothing else starts at once: etcd, the
    // apiserver (it retries etcd until etcd answers), the registry and
    // redis. What needs the apiserver starts the moment it is ready, side
    // by side: the controller-manager and scheduler, kwok and its node,
    // Argo CD's CRDs and configuration, then Argo CD's two components.
    let timeline = Timeline::new();
    let p = |path: &Path| path.display().to_string();

    if let Some(seed) = seed {
        super::seed::plant(seed, &dir.join("etcd"))?;
        timeline.record("seed copied", Duration::ZERO);
    }
    let etcd_task = progress.task("starting etcd");
    let api_task = progress.task("starting kube-apiserver");
    let etcd_started = timeline.now();
    let api_started = etcd_started;
    let ControlPlane {
        pki,
        kubeconfig,
        server,
        etcd_url,
        etcd_port,
        client,
    } = start_control_plane(cfg, dir, sup).await?;
    let argo_kubeconfig = dir.join("kubeconfig-argocd");
    std::fs::write(
        &argo_kubeconfig,
        certs::kubeconfig(&pki, &server, Some(super::ARGOCD_NAMESPACE)),
    )?;

    let store_task = progress.task("starting registry and redis");
    let reg_port = free_port()?;
    let reg_config = dir.join("registry.yml");
    let registry = format!("127.0.0.1:{reg_port}");
    let endpoint = secure_registry(cfg.registry, dir, &registry)?;
    std::fs::write(
        &reg_config,
        registry::config_yaml(
            ([127, 0, 0, 1], reg_port).into(),
            &dir.join("registry"),
            endpoint.htpasswd.as_deref(),
            endpoint.tls.as_ref(),
        ),
    )?;
    let registry_started = timeline.now();
    sup.spawn(
        SpawnSpec::new("registry", &bin.registry, log("registry"))
            .port(reg_port)
            .args(["serve".into(), p(&reg_config)]),
    )?;
    let redis_port = free_port()?;
    let redis_dir = dir.join("redis");
    std::fs::create_dir_all(&redis_dir)?;
    let redis_started = timeline.now();
    sup.spawn(
        SpawnSpec::new("redis", &bin.redis, log("redis"))
            .port(redis_port)
            .args([
                "--port".into(),
                redis_port.to_string(),
                "--bind".into(),
                "127.0.0.1".into(),
                "--save".into(),
                "".into(),
                "--appendonly".into(),
                "no".into(),
                "--dir".into(),
                p(&redis_dir),
            ]),
    )?;
    let v2 = format!("{}://{registry}/v2/", endpoint.endpoint.scheme());

    // Argo CD's processes: their environment, ports and health URLs.
    let tls_data = dir.join("argocd-tls");
    let home = dir.join("home");
    let tmp = dir.join("tmp");
    std::fs::create_dir_all(&home)?;
    std::fs::create_dir_all(&tmp)?;
    // Argo CD's images ship helm next to argocd; here it comes from the
    // tool cache, ahead of whatever the host has.
    let search_path = match bin.helm.as_deref().and_then(Path::parent) {
        Some(helm_dir) => format!(
            "{}:{}",
            helm_dir.display(),
            std::env::var("PATH").unwrap_or_default()
        ),
        None => std::env::var("PATH").unwrap_or_default(),
    };
    // `helm dependency build` (a chart whose dependencies are OCI charts
    // in the lab registry) runs inside the repo-server with Go's TLS
    // defaults, not Argo CD's repository CAs: as users add their CA to the
    // repo-server's trust store, the lab hands it a bundle of the system's
    // roots and the lab's registry CA (SSL_CERT_FILE).
    let trust_bundle = match &endpoint.endpoint.ca_pem {
        Some(ca) => {
            let system =
                std::fs::read_to_string("/etc/ssl/certs/ca-certificates.crt").unwrap_or_default();
            let bundle = dir.join("argocd-trust-bundle.pem");
            std::fs::write(&bundle, format!("{system}\n{ca}\n"))?;
            Some(bundle)
        }
        None => None,
    };
    let argo = |component: &str| {
        let spec = SpawnSpec::new(component, &bin.argocd, log(component));
        let spec = match &trust_bundle {
            Some(bundle) => spec.env("SSL_CERT_FILE", p(bundle)),
            None => spec,
        };
        spec.env("PATH", &search_path)
            .env("ARGOCD_BINARY_NAME", component)
            .env("ARGOCD_FAKE_IN_CLUSTER", "true")
            .env("KUBECONFIG", p(&argo_kubeconfig))
            .env("HOME", p(&home))
            .env("TMPDIR", p(&tmp))
            // The repo-server's git ask-pass socket defaults to the fixed
            // /tmp/reposerver-ask-pass.sock: two labs at once (parallel
            // tests) failed with "address already in use". One per lab.
            .env("ARGOCD_ASK_PASS_SOCK", p(&tmp.join("askpass.sock")))
            .env("ARGOCD_GPG_ENABLED", "false")
            .env("ARGOCD_TLS_DATA_PATH", p(&tls_data))
            .env(
                "ARGOCD_RECONCILIATION_TIMEOUT",
                format!("{}s", cfg.reconciliation.as_secs().max(1)),
            )
            .env("ARGOCD_RECONCILIATION_JITTER", "0")
            .cwd(&home)
    };
    let (repo_port, repo_metrics, ctrl_metrics) = (free_port()?, free_port()?, free_port()?);
    let redis_addr = format!("127.0.0.1:{redis_port}");
    let repo_health = format!("http://127.0.0.1:{repo_metrics}/healthz");
    let ctrl_health = format!("http://127.0.0.1:{ctrl_metrics}/healthz");

    let etcd_ready = async {
        let health = format!("{etcd_url}/health");
        wait_ready("etcd", &log("etcd"), Duration::from_secs(30), sup, || {
            http_ok(&health)
        })
        .await?;
        timeline.record("etcd", etcd_started);
        etcd_task.done(format!("127.0.0.1:{etcd_port}"));
        anyhow::Ok(())
    };

    let stores_ready = async {
        let registry_ready = async {
            wait_ready(
                "registry",
                &log("registry"),
                Duration::from_secs(30),
                sup,
                || registry_answers(&endpoint.endpoint, &v2),
            )
            .await?;
            timeline.record("registry", registry_started);
            anyhow::Ok(())
        };
        let redis_ready = async {
            wait_ready("redis", &log("redis"), Duration::from_secs(30), sup, || {
                redis_pong(redis_port)
            })
            .await?;
            timeline.record("redis", redis_started);
            anyhow::Ok(())
        };
        tokio::try_join!(registry_ready, redis_ready)?;
        store_task.done(format!(
            "registry {registry} ({}), redis 127.0.0.1:{redis_port}",
            security_text(&endpoint.endpoint)
        ));
        anyhow::Ok(())
    };

    let cluster_ready = async {
        wait_ready(
            "kube-apiserver",
            &log("kube-apiserver"),
            Duration::from_secs(90),
            sup,
            || apiserver_ready(&client, &[RBAC_BOOTSTRAP_CHECK]),
        )
        .await?;
        timeline.record("kube-apiserver", api_started);
        api_task.done(server.clone());
        let rbac_ready = async {
            wait_ready(
                "kube-apiserver",
                &log("kube-apiserver"),
                Duration::from_secs(60),
                sup,
                || apiserver_ready(&client, &[]),
            )
            .await?;
            timeline.record("kube-apiserver (default roles)", api_started);
            anyhow::Ok(())
        };

        let controllers_ready = async {
            let controllers_task =
                progress.task("starting kube-controller-manager, kube-scheduler");
            let controllers_started = timeline.now();
            sup.spawn(
                SpawnSpec::new(
                    "kube-controller-manager",
                    &bin.kube_controller_manager,
                    log("kube-controller-manager"),
                )
                .args([
                    format!("--kubeconfig={}", p(&kubeconfig)),
                    "--leader-elect=false".into(),
                    format!("--service-account-private-key-file={}", p(&pki.sa_key)),
                    format!("--root-ca-file={}", p(&pki.ca_cert)),
                    "--use-service-account-credentials=false".into(),
                    "--bind-address=127.0.0.1".into(),
                    "--secure-port=0".into(),
                    // No cloud and no pod network: those controllers stay off.
                    // The node-lifecycle controller stays on: it lifts the
                    // `not-ready` taint once kwok reports the fake node Ready.
                    "--controllers=*,-nodeipam,-cloud-node-lifecycle,-service-lb-controller,-route"
                        .into(),
                    // But it must never take the node away: `--repeat 20`
                    // once saw kwok's heartbeat late past the default 50 s,
                    // the node marked NotReady and with it a new pod, which
                    // kwok never made ready again (deployment-healthy
                    // failed). kwok is supervised: if it dies, the run
                    // stops, so nothing is lost by trusting the node.
                    "--node-monitor-grace-period=1h".into(),
                    "--v=1".into(),
                ]),
            )?;
            sup.spawn(
                SpawnSpec::new("kube-scheduler", &bin.kube_scheduler, log("kube-scheduler")).args(
                    [
                        format!("--kubeconfig={}", p(&kubeconfig)),
                        "--leader-elect=false".into(),
                        "--bind-address=127.0.0.1".into(),
                        "--secure-port=0".into(),
                        "--v=1".into(),
                    ],
                ),
            )?;
            // The service-account controller creating `default` proves the
            // controller-manager works.
            let sas: kube::Api<k8s_openapi::api::core::v1::ServiceAccount> =
                kube::Api::namespaced(client.clone(), "default");
            wait_ready(
                "kube-controller-manager",
                &log("kube-controller-manager"),
                Duration::from_secs(60),
                sup,
                || {
                    let sas = sas.clone();
                    async move { matches!(sas.get_opt("default").await, Ok(Some(_))) }
                },
            )
            .await?;
            timeline.record("kube-controller-manager", controllers_started);
            controllers_task.done("");
            anyhow::Ok(())
        };

        let node_ready = async {
            let kwok_task = progress.task("starting kwok (fake nodes)");
            let kwok_started = timeline.now();
            sup.spawn(SpawnSpec::new("kwok", &bin.kwok, log("kwok")).args([
                format!("--kubeconfig={}", p(&kubeconfig)),
                "--manage-all-nodes=false".into(),
                "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake".into(),
                "--manage-nodes-with-label-selector=".into(),
                "--disregard-status-with-annotation-selector=kwok.x-k8s.io/status=custom".into(),
                "--disregard-status-with-label-selector=".into(),
                "--cidr=10.0.1.0/24".into(),
                "--node-ip=10.0.1.1".into(),
                format!("--server-address=127.0.0.1:{}", free_port()?),
            ]))?;

            bootstrap::create_fake_node(&client).await?;
            let nodes: kube::Api<k8s_openapi::api::core::v1::Node> = kube::Api::all(client.clone());
            wait_ready("kwok", &log("kwok"), Duration::from_secs(60), sup, || {
                let nodes = nodes.clone();
                async move {
                    nodes
                        .get_opt(bootstrap::FAKE_NODE)
                        .await
                        .ok()
                        .flatten()
                        .and_then(|n| n.status)
                        .and_then(|s| s.conditions)
                        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
                }
            })
            .await?;
            timeline.record("kwok", kwok_started);
            kwok_task.done(bootstrap::FAKE_NODE);
            anyhow::Ok(())
        };

        let config_ready = async {
            let config_task = progress.task(format!(
                "installing Argo CD {} CRDs and configuration",
                cfg.argocd_version
            ));
            let config_started = timeline.now();
            bootstrap::install_argocd(
                &client,
                &bin.argocd_crds,
                seed.is_some(),
                &endpoint.endpoint,
                cfg.reconciliation,
                &cfg.argocd_version,
            )
            .await?;
            // Argo CD's pods read repository CAs from the ConfigMap's
            // volume at /app/config/tls; the process repo-server reads
            // them from this directory (ARGOCD_TLS_DATA_PATH), filled from
            // the same ConfigMap.
            bootstrap::project_tls_certs(&client, &tls_data).await?;
            timeline.record("argocd-configuration", config_started);
            config_task.done("");
            anyhow::Ok(())
        };

        let argocd_ready = async {
            // Argo CD keeps its cache in redis: it starts once redis answers.
            wait_ready("redis", &log("redis"), Duration::from_secs(30), sup, || {
                redis_pong(redis_port)
            })
            .await?;

            let task = progress.task("starting argocd-repo-server, argocd-application-controller");
            let argocd_started = timeline.now();
            sup.spawn(argo("argocd-repo-server").port(repo_port).args([
                "--port".into(),
                repo_port.to_string(),
                "--metrics-port".into(),
                repo_metrics.to_string(),
                // Its default is every interface; the lab listens on loopback only.
                "--metrics-address".into(),
                "127.0.0.1".into(),
                "--address".into(),
                "127.0.0.1".into(),
                "--disable-tls".into(),
                "--redis".into(),
                redis_addr.clone(),
                "--loglevel".into(),
                "info".into(),
            ]))?;
            // The controller dials the repo-server when it first needs a
            // manifest, so both start together.
            sup.spawn(
                argo("argocd-application-controller")
                    .port(ctrl_metrics)
                    .args([
                        "--redis".into(),
                        redis_addr.clone(),
                        "--repo-server".into(),
                        format!("127.0.0.1:{repo_port}"),
                        "--repo-server-plaintext".into(),
                        "--metrics-port".into(),
                        ctrl_metrics.to_string(),
                        "--hydrator-enabled=false".into(),
                        "--loglevel".into(),
                        "info".into(),
                    ]),
            )?;
            let repo_ready = async {
                wait_ready(
                    "argocd-repo-server",
                    &log("argocd-repo-server"),
                    Duration::from_secs(60),
                    sup,
                    || http_ok(&repo_health),
                )
                .await?;
                timeline.record("argocd-repo-server", argocd_started);
                anyhow::Ok(())
            };
            let ctrl_ready = async {
                wait_ready(
                    "argocd-application-controller",
                    &log("argocd-application-controller"),
                    Duration::from_secs(60),
                    sup,
                    || http_ok(&ctrl_health),
                )
                .await?;
                timeline.record("argocd-application-controller", argocd_started);
                anyhow::Ok(())
            };
            tokio::try_join!(repo_ready, ctrl_ready)?;
            task.done("");
            anyhow::Ok(())
        };

        // The CRDs come first: serving them is the apiserver's heaviest
        // work of the start, and the controller-manager, scheduler and kwok
        // starting beside it on two cores made it take half again as long.
        let after_config = async {
            config_ready.await?;
            tokio::try_join!(controllers_ready, node_ready, argocd_ready)?;
            anyhow::Ok(())
        };
        tokio::try_join!(rbac_ready, after_config)?;
        anyhow::Ok(())
    };

    tokio::try_join!(etcd_ready, stores_ready, cluster_ready)?;

    let readiness = [
        ("registry", v2),
        ("redis", format!("redis://127.0.0.1:{redis_port}")),
        ("argocd-repo-server", repo_health),
        ("argocd-application-controller", ctrl_health),
    ]
    .into_iter()
    .map(|(name, url)| (name.to_string(), url))
    .collect();
    let state = LabState {
        startup: timeline.phases(),
        readiness,
        id: id.to_string(),
        dir: dir.to_path_buf(),
        kubeconfig,
        apiserver: server,
        registry,
        registry_ca: endpoint.ca_file,
        registry_credentials: endpoint.credentials_file,
        argocd_version: cfg.argocd_version.clone(),
        detached: cfg.detached,
        children: sup.children(),
    };
    Ok((state, client))
}

impl LocalBinaries {
    /// The binaries of a provisioned toolbox (which must hold the lab's tools).
    pub fn from_toolbox(tb: &harness_tools::Toolbox) -> anyhow::Result<Self> {
        use harness_tools::Tool;
        let get = |t: Tool| {
            tb.get(t)
                .map(Path::to_path_buf)
                .ok_or_else(|| anyhow::anyhow!("{t} was not provisioned; run `cargo xtask tools`"))
        };
        Ok(Self {
            etcd: get(Tool::Etcd)?,
            kube_apiserver: get(Tool::KubeApiserver)?,
            kube_controller_manager: get(Tool::KubeControllerManager)?,
            kube_scheduler: get(Tool::KubeScheduler)?,
            kwok: get(Tool::Kwok)?,
            registry: get(Tool::Registry)?,
            redis: get(Tool::Redis)?,
            argocd: get(Tool::Argocd)?,
            helm: tb.get(Tool::Helm).map(Path::to_path_buf),
            argocd_crds: tb
                .get_argocd_crds_dir()
                .map(Path::to_path_buf)
                .ok_or_else(|| {
                    anyhow::anyhow!("Argo CD CRDs were not provisioned; run `cargo xtask tools`")
                })?,
        })
    }
}
