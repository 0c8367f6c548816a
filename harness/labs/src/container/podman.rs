//! podman as a Docker engine: its Docker-API service, started when no
//! engine answers (as root), with the settings these machines need.

use super::*;

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
pub(crate) struct FileLock {
    _file: std::fs::File,
}

impl FileLock {
    pub(crate) fn acquire(path: &Path) -> Result<Self, ContainerError> {
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

/// How often [`keep_alive`] pings podman's service: well inside its idle
/// timeout.
const KEEP_ALIVE_EVERY: Duration = Duration::from_secs(15);

/// Keeps podman's service from idling out while this process lives: once
/// a process has talked to it, a thread pings it (bollard's `/_ping`)
/// every 15 s until the process exits (one thread per process, however
/// often it is called). The engine is then there for the whole run (a KIND lab spends
/// minutes building images with the podman CLI or talking only to its
/// cluster), and the service still ends by itself one idle timeout after
/// the last harness process.
pub(crate) fn keep_alive() {
    static STARTED: std::sync::Once = std::sync::Once::new();
    STARTED.call_once(|| {
        let spawned = std::thread::Builder::new()
            .name("podman-keep-alive".into())
            .spawn(|| {
                // Its own small runtime: the thread outlives any caller's.
                let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    tracing::warn!("cannot keep podman's service alive: no runtime");
                    return;
                };
                loop {
                    std::thread::sleep(KEEP_ALIVE_EVERY);
                    runtime.block_on(async {
                        if let Ok(docker) = Docker::connect_with_host(PODMAN_SOCKET) {
                            let ping = docker.ping();
                            let _ = tokio::time::timeout(Duration::from_secs(5), ping).await;
                        }
                    });
                }
            });
        // Fails only when the process is out of threads; the next engine
        // use (`ensure_engine`) then starts the service again.
        if let Err(e) = spawned {
            tracing::warn!("cannot keep podman's service alive: {e}");
        }
    });
}

/// An engine that answers, starting podman's service when none does (see
/// [`ensure_podman_service`]). Long runs call it for every use rather
/// than keep one: the service we start exits after
/// [`PODMAN_SERVICE_IDLE_SECS`] without a request, and a KIND lab spends
/// minutes talking only to its cluster.
pub async fn ensure_engine() -> Result<Engine, ContainerError> {
    let host = ensure_podman_service().await?;
    connect_to(&host).await
}

/// Whether an engine answers, or podman's service could be started for
/// one (podman installed and we are root), without starting anything.
pub async fn engine_available() -> Result<(), ContainerError> {
    match connect().await {
        Ok(_) => Ok(()),
        // SAFETY: geteuid has no preconditions.
        Err(_) if podman_on_path() && unsafe { libc::geteuid() } == 0 => Ok(()),
        Err(e) => Err(e),
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
    let child = std::sync::Mutex::new(cmd.spawn().map_err(io("start `podman system service`"))?);
    let backoff = harness_core::poll::Backoff {
        initial: Duration::from_millis(100),
        factor: 1.0,
        max: Duration::from_millis(100),
    };
    let outcome = harness_core::poll::eventually_try(
        tokio::time::Instant::now() + Duration::from_secs(30),
        backoff,
        &tokio_util::sync::CancellationToken::new(),
        || async {
            if let Ok(engine) = connect_to(PODMAN_SOCKET).await {
                return Ok(harness_core::poll::Observation::holds(Some(engine.host)));
            }
            let exited = child.lock().map(|mut c| c.try_wait()).ok();
            if let Some(Ok(Some(status))) = exited {
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                return Err(ContainerError::Other(format!(
                    "`podman system service` exited with {status}: {}",
                    log.trim()
                )));
            }
            Ok(harness_core::poll::Observation::fails(None))
        },
    )
    .await?;
    let mut child = child
        .into_inner()
        .map_err(|_| ContainerError::Other("podman service handle poisoned".into()))?;
    match outcome {
        harness_core::poll::PollOutcome::Held {
            last: Some(host), ..
        } => {
            // Reap it in the background so it does not become a zombie.
            std::thread::spawn(move || {
                let _ = child.wait();
            });
            Ok(host)
        }
        _ => {
            let _ = child.kill();
            let _ = child.wait();
            Err(ContainerError::Other(format!(
                "`podman system service` did not answer on {PODMAN_SOCKET} within 30s (log: {})",
                log_path.display()
            )))
        }
    }
}
