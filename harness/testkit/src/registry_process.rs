//! A real OCI registry (the CNCF distribution registry, Debian's
//! `docker-registry`) run as a child process: for tests and the local lab.
//!
//! It listens on loopback (by default) on a free port, stores blobs under a
//! data directory, allows deletes, and optionally requires htpasswd basic
//! auth. It is a child of a [`Supervisor`], the same owner the local lab's
//! components have: its own process group, killed when the
//! [`RegistryProcess`] is dropped, and `PR_SET_PDEATHSIG` so that it goes
//! even when the owner is killed.
//! PDEATHSIG follows the *thread* that spawned the child, so call
//! [`RegistryProcess::start`] from a long-lived thread (a runtime worker or
//! the main thread), not from inside `spawn_blocking`.

use std::fs;
use std::io::Read as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use harness_core::poll::{self, Backoff, Observation, PollOutcome};
use harness_core::process::{ChildInfo, SpawnSpec, Supervisor};
use tokio_util::sync::CancellationToken;

/// Checks every 50 ms: a registry process starts in well under a second.
const STEADY_50MS: Backoff = Backoff {
    initial: Duration::from_millis(50),
    factor: 1.0,
    max: Duration::from_millis(50),
};
/// Checks every 20 ms: reaping a signalled child is quick.
const STEADY_20MS: Backoff = Backoff {
    initial: Duration::from_millis(20),
    factor: 1.0,
    max: Duration::from_millis(20),
};

use harness_oci::{BasicAuth, RegistryEndpoint};

/// Where Debian's `docker-registry` package installs the registry.
pub const DEFAULT_REGISTRY_BINARY: &str = "/usr/bin/docker-registry";

/// How many times to pick another free port when the chosen one was taken
/// between choosing and binding.
const PORT_ATTEMPTS: usize = 3;

#[derive(Debug, thiserror::Error)]
pub enum RegistryProcessError {
    #[error(
        "registry binary {0} not found; install Debian's docker-registry package \
         (apt-get install docker-registry) or pass the path of a distribution registry binary"
    )]
    BinaryMissing(PathBuf),
    #[error("cannot prepare the registry in {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot find a free port on {host}: {source}")]
    NoFreePort {
        host: IpAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot hash the htpasswd password: {0}")]
    Htpasswd(String),
    #[error("cannot start {binary}: {source}")]
    Spawn {
        binary: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "registry {binary} exited ({status}) before it answered on {address}; its log {log}:\n{tail}"
    )]
    Exited {
        binary: PathBuf,
        status: String,
        address: String,
        log: PathBuf,
        tail: String,
    },
    #[error(
        "registry did not answer GET {url} within {timeout:?}; last error: {last}; \
         see its log {log}:\n{tail}"
    )]
    NotReady {
        url: String,
        timeout: Duration,
        last: String,
        log: PathBuf,
        tail: String,
    },
}

/// How to run the registry. Only `state_dir` is required; everything else
/// has a default under it.
#[derive(Debug, Clone)]
pub struct RegistryOptions {
    /// Registry binary (default [`DEFAULT_REGISTRY_BINARY`]).
    pub binary: PathBuf,
    /// Directory for the generated config, htpasswd file and, unless given
    /// otherwise, the data and the log.
    pub state_dir: PathBuf,
    /// Storage root (default `<state_dir>/data`); kept across restarts.
    pub data_dir: Option<PathBuf>,
    /// Log file, appended to (default `<state_dir>/registry.log`).
    pub log_path: Option<PathBuf>,
    /// Interface to listen on (default 127.0.0.1). With 0.0.0.0 the
    /// address handed out is still 127.0.0.1:PORT.
    pub host: IpAddr,
    /// Fixed port; `None` picks a free one.
    pub port: Option<u16>,
    /// Require these credentials (htpasswd, bcrypt).
    pub auth: Option<BasicAuth>,
    /// Serve HTTPS with this certificate instead of plain HTTP.
    pub tls: Option<RegistryTls>,
    /// How long to wait for `GET /v2/` to answer.
    pub startup_timeout: Duration,
}

impl RegistryOptions {
    pub fn new(state_dir: impl Into<PathBuf>) -> Self {
        Self {
            binary: PathBuf::from(DEFAULT_REGISTRY_BINARY),
            state_dir: state_dir.into(),
            data_dir: None,
            log_path: None,
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: None,
            auth: None,
            tls: None,
            startup_timeout: Duration::from_secs(30),
        }
    }

    pub fn with_binary(mut self, binary: impl Into<PathBuf>) -> Self {
        self.binary = binary.into();
        self
    }

    pub fn with_data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.data_dir = Some(dir.into());
        self
    }

    pub fn with_log_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.log_path = Some(path.into());
        self
    }

    pub fn with_host(mut self, host: IpAddr) -> Self {
        self.host = host;
        self
    }

    pub fn with_port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    pub fn with_auth(mut self, username: impl Into<String>, password: impl Into<String>) -> Self {
        self.auth = Some(BasicAuth {
            username: username.into(),
            password: password.into(),
        });
        self
    }

    pub fn with_tls(mut self, certificate: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.tls = Some(RegistryTls {
            certificate: certificate.into(),
            key: key.into(),
        });
        self
    }

    fn data_dir(&self) -> PathBuf {
        self.data_dir
            .clone()
            .unwrap_or_else(|| self.state_dir.join("data"))
    }

    fn log_path(&self) -> PathBuf {
        self.log_path
            .clone()
            .unwrap_or_else(|| self.state_dir.join("registry.log"))
    }
}

/// PEM files for a registry that serves HTTPS (the local lab's type).
pub use harness_labs::local::registry::ServingTls as RegistryTls;

/// A running registry; killed when dropped.
#[derive(Debug)]
pub struct RegistryProcess {
    supervisor: Supervisor,
    child: ChildInfo,
    port: u16,
    auth: Option<BasicAuth>,
    tls: bool,
    log_path: PathBuf,
    data_dir: PathBuf,
    config_path: PathBuf,
}

impl RegistryProcess {
    /// Write the config, start the registry and wait until it answers.
    pub async fn start(opts: RegistryOptions) -> Result<Self, RegistryProcessError> {
        if !opts.binary.is_file() {
            return Err(RegistryProcessError::BinaryMissing(opts.binary.clone()));
        }
        let io_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| RegistryProcessError::Io { path, source }
        };
        let data_dir = opts.data_dir();
        let log_path = opts.log_path();
        fs::create_dir_all(&opts.state_dir).map_err(io_err(&opts.state_dir))?;
        fs::create_dir_all(&data_dir).map_err(io_err(&data_dir))?;
        if let Some(parent) = log_path.parent() {
            fs::create_dir_all(parent).map_err(io_err(parent))?;
        }
        let htpasswd_path = match &opts.auth {
            Some(auth) => {
                let path = opts.state_dir.join("htpasswd");
                let line = harness_labs::local::registry::htpasswd_line(auth)
                    .map_err(RegistryProcessError::Htpasswd)?;
                fs::write(&path, line).map_err(io_err(&path))?;
                Some(path)
            }
            None => None,
        };

        let mut last_error = None;
        let attempts = if opts.port.is_some() {
            1
        } else {
            PORT_ATTEMPTS
        };
        for _ in 0..attempts {
            let port = match opts.port {
                Some(port) => port,
                None => free_port(opts.host)?,
            };
            let config_path = opts.state_dir.join("config.yml");
            let config = harness_labs::local::registry::config_yaml(
                SocketAddr::new(opts.host, port),
                &data_dir,
                htpasswd_path.as_deref(),
                opts.tls.as_ref(),
            );
            fs::write(&config_path, config).map_err(io_err(&config_path))?;
            let log_start = fs::metadata(&log_path).map(|m| m.len()).unwrap_or(0);
            let supervisor = Supervisor::new(false);
            let child = spawn(&supervisor, &opts.binary, &config_path, &log_path)?;
            let mut process = RegistryProcess {
                supervisor,
                child,
                port,
                auth: opts.auth.clone(),
                tls: opts.tls.is_some(),
                log_path: log_path.clone(),
                data_dir: data_dir.clone(),
                config_path,
            };
            match process.wait_ready(&opts, log_start).await {
                Ok(()) => return Ok(process),
                Err(e @ RegistryProcessError::Exited { .. })
                    if opts.port.is_none() && e.to_string().contains("address already in use") =>
                {
                    last_error = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(
            last_error.unwrap_or_else(|| RegistryProcessError::NoFreePort {
                host: opts.host,
                source: std::io::Error::other("every attempt found the port taken"),
            }),
        )
    }

    async fn wait_ready(
        &mut self,
        opts: &RegistryOptions,
        log_start: u64,
    ) -> Result<(), RegistryProcessError> {
        harness_core::init_crypto();
        let url = format!("{}://{}/v2/", self.scheme(), self.address());
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .no_proxy()
            // The probe only asks whether it answers; the certificate is the
            // caller's business (usually self-signed).
            .danger_accept_invalid_certs(true)
            .build()
            .map_err(|e| RegistryProcessError::Spawn {
                binary: opts.binary.clone(),
                source: std::io::Error::other(format!("cannot build an HTTP client: {e}")),
            })?;
        let this = &*self;
        let outcome = poll::eventually_try(
            tokio::time::Instant::now() + opts.startup_timeout,
            STEADY_50MS,
            &CancellationToken::new(),
            || async {
                if let Some(status) = this.supervisor.exit_status(this.child.pid) {
                    return Err(RegistryProcessError::Exited {
                        binary: opts.binary.clone(),
                        status: status.to_string(),
                        address: this.address(),
                        log: this.log_path.clone(),
                        tail: log_tail(&this.log_path, log_start),
                    });
                }
                Ok(match http.get(&url).send().await {
                    // 401 is an answer too: the registry requires auth.
                    Ok(resp) if resp.status().is_success() || resp.status().as_u16() == 401 => {
                        Observation::holds(String::new())
                    }
                    Ok(resp) => Observation::fails(format!("HTTP {}", resp.status())),
                    Err(e) => Observation::fails(e.to_string()),
                })
            },
        )
        .await?;
        match outcome {
            PollOutcome::Held { .. } => Ok(()),
            other => Err(RegistryProcessError::NotReady {
                url: url.clone(),
                timeout: opts.startup_timeout,
                last: match other {
                    PollOutcome::TimedOut { last, .. } => last,
                    _ => "cancelled".into(),
                },
                log: self.log_path.clone(),
                tail: log_tail(&self.log_path, log_start),
            }),
        }
    }

    /// `127.0.0.1:PORT`, as the host reaches it.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `http` or `https`.
    pub fn scheme(&self) -> &'static str {
        if self.tls { "https" } else { "http" }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// How to reach it: plain HTTP, or HTTPS without verification (the
    /// lab's certificates are self-signed); with the htpasswd credentials
    /// when auth is on.
    pub fn endpoint(&self) -> RegistryEndpoint {
        RegistryEndpoint {
            address: self.address(),
            plain_http: !self.tls,
            insecure_tls: self.tls,
            ca_pem: None,
            auth: self.auth.clone(),
        }
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.is_running().then_some(self.child.pid)
    }

    /// Whether the process is still alive (it may have crashed; its log
    /// says why).
    pub fn is_running(&self) -> bool {
        self.supervisor.exit_status(self.child.pid).is_none()
            && harness_core::process::alive(self.child.pid)
    }

    /// Stop the registry (SIGTERM, SIGKILL after 2 s) and wait for it.
    pub async fn stop(self) -> Result<(), RegistryProcessError> {
        self.supervisor.stop_all(Duration::from_secs(2)).await;
        // Reaped by the supervisor, not left as a zombie.
        let reaped = poll::eventually(
            tokio::time::Instant::now() + Duration::from_secs(5),
            STEADY_20MS,
            &CancellationToken::new(),
            || async {
                Observation {
                    holds: self.supervisor.exit_status(self.child.pid).is_some(),
                    detail: (),
                }
            },
        )
        .await;
        if !reaped.is_success() {
            return Err(RegistryProcessError::Io {
                path: self.log_path.clone(),
                source: std::io::Error::other(format!(
                    "registry (pid {}) was signalled but not reaped within 5s",
                    self.child.pid
                )),
            });
        }
        Ok(())
    }
}

impl Drop for RegistryProcess {
    fn drop(&mut self) {
        // Stopped in order already (`stop`), or dropped: kill what is left.
        self.supervisor.kill_all_now();
    }
}

fn spawn(
    supervisor: &Supervisor,
    binary: &Path,
    config: &Path,
    log_path: &Path,
) -> Result<ChildInfo, RegistryProcessError> {
    let spec = SpawnSpec::new("registry", binary, log_path)
        .arg("serve")
        .arg(config);
    supervisor.spawn(spec).map_err(|e| match e {
        harness_core::process::ProcessError::Spawn { source, .. } => RegistryProcessError::Spawn {
            binary: binary.to_path_buf(),
            source,
        },
        harness_core::process::ProcessError::Log { source, .. } => RegistryProcessError::Io {
            path: log_path.to_path_buf(),
            source,
        },
    })
}

fn free_port(host: IpAddr) -> Result<u16, RegistryProcessError> {
    harness_core::process::free_port_on(host)
        .map_err(|source| RegistryProcessError::NoFreePort { host, source })
}

/// The last lines of the log written since `start` (this run only).
fn log_tail(path: &Path, start: u64) -> String {
    let mut text = String::new();
    if let Ok(mut file) = fs::File::open(path) {
        use std::io::Seek as _;
        let _ = file.seek(std::io::SeekFrom::Start(start));
        let _ = file.read_to_string(&mut text);
    }
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}
