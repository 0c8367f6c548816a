//! Child processes of a lab: spawned with their output in a log file,
//! stopped in reverse order, and never left behind.
//!
//! Why each piece:
//! - Every child gets its own process group, so a Ctrl-C at the terminal
//!   reaches only the harness, which then stops the lab in order.
//! - Unless the lab is kept (`--keep`, `lab up`), each child asks the
//!   kernel for SIGKILL when the harness dies (PR_SET_PDEATHSIG), so even
//!   `kill -9` of the harness leaves nothing running.
//! - A child that exits while the lab is meant to be up is a crash: the
//!   supervisor cancels its `crashed` token with the tail of the log.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// How to start one component.
#[derive(Debug, Clone)]
pub struct SpawnSpec {
    /// Component name, e.g. `kube-apiserver`.
    pub name: String,
    pub program: PathBuf,
    pub args: Vec<OsString>,
    pub env: Vec<(String, String)>,
    /// stdout and stderr go here (appended).
    pub log: PathBuf,
    pub cwd: Option<PathBuf>,
    /// The port it serves on, when there is one (for the log).
    pub port: Option<u16>,
}

impl SpawnSpec {
    pub fn new(
        name: impl Into<String>,
        program: impl Into<PathBuf>,
        log: impl Into<PathBuf>,
    ) -> Self {
        Self {
            name: name.into(),
            program: program.into(),
            args: Vec::new(),
            env: Vec::new(),
            log: log.into(),
            cwd: None,
            port: None,
        }
    }
    pub fn arg(mut self, a: impl Into<OsString>) -> Self {
        self.args.push(a.into());
        self
    }
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }
    pub fn env(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        self.env.push((k.into(), v.into()));
        self
    }
    pub fn cwd(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cwd = Some(dir.into());
        self
    }
    /// The port it serves on (logged with the start).
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }
}

/// A started child.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ChildInfo {
    pub name: String,
    pub pid: u32,
    pub log: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("cannot start {name} ({program}): {source}")]
    Spawn {
        name: String,
        program: String,
        source: std::io::Error,
    },
    #[error("cannot open log file {path}: {source}")]
    Log {
        path: String,
        source: std::io::Error,
    },
}

struct Shared {
    children: Vec<ChildInfo>,
    /// How each child was started, by name, so that a fault step can start
    /// a stopped one again with the same ports and data.
    specs: std::collections::HashMap<String, SpawnSpec>,
    /// Children stopped on purpose (`stop_child`): their exit is no crash.
    stopped_on_purpose: std::collections::HashSet<u32>,
    stopping: bool,
    crash: Option<String>,
    /// pid -> how it exited, for every child that has.
    exited: std::collections::HashMap<u32, String>,
}

/// Owns the children of one lab.
#[derive(Clone)]
pub struct Supervisor {
    shared: Arc<Mutex<Shared>>,
    crashed: CancellationToken,
    /// Children outlive the harness (kept lab).
    detached: bool,
}

impl std::fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Supervisor")
            .field("children", &self.children())
            .field("detached", &self.detached)
            .finish()
    }
}

impl Supervisor {
    /// `detached`: children survive the harness (no PDEATHSIG); used for
    /// labs that are kept up after the command ends.
    pub fn new(detached: bool) -> Self {
        Self {
            shared: Arc::new(Mutex::new(Shared {
                children: Vec::new(),
                specs: std::collections::HashMap::new(),
                stopped_on_purpose: std::collections::HashSet::new(),
                stopping: false,
                crash: None,
                exited: std::collections::HashMap::new(),
            })),
            crashed: CancellationToken::new(),
            detached,
        }
    }

    /// Cancelled when a child exits while the lab should be up.
    pub fn crashed(&self) -> CancellationToken {
        self.crashed.clone()
    }

    /// What crashed, with the tail of its log.
    pub fn crash_report(&self) -> Option<String> {
        self.lock().crash.clone()
    }

    pub fn children(&self) -> Vec<ChildInfo> {
        self.lock().children.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn spawn(&self, spec: SpawnSpec) -> Result<ChildInfo, ProcessError> {
        if let Some(parent) = spec.log.parent() {
            let _ = std::fs::create_dir_all(parent);
        }
        let open_log = || {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&spec.log)
                .map_err(|source| ProcessError::Log {
                    path: spec.log.display().to_string(),
                    source,
                })
        };
        let (out, err) = (open_log()?, open_log()?);
        let mut cmd = tokio::process::Command::new(&spec.program);
        cmd.args(&spec.args)
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .process_group(0);
        if let Some(dir) = &spec.cwd {
            cmd.current_dir(dir);
        }
        if !self.detached {
            die_with_parent(cmd.as_std_mut());
        }
        let mut child = cmd.spawn().map_err(|source| ProcessError::Spawn {
            name: spec.name.clone(),
            program: spec.program.display().to_string(),
            source,
        })?;
        let pid = child.id().unwrap_or_default();
        let info = ChildInfo {
            name: spec.name.clone(),
            pid,
            log: spec.log.clone(),
        };
        {
            let mut shared = self.lock();
            shared.children.push(info.clone());
            shared.specs.insert(spec.name.clone(), spec.clone());
        }

        let this = self.clone();
        let name = spec.name.clone();
        let log = spec.log.clone();
        let started = std::time::Instant::now();
        tokio::spawn(async move {
            let status = child.wait().await;
            let (status, code) = match status {
                Ok(s) => (s.to_string(), s.code()),
                Err(e) => (format!("wait failed: {e}"), None),
            };
            let mut shared = this.lock();
            let on_purpose = shared.stopping || shared.stopped_on_purpose.contains(&pid);
            tracing::debug!(
                name = %name,
                pid,
                status = %status,
                code,
                on_purpose,
                ran_ms = crate::log::millis_since(started),
                "child process exited"
            );
            shared.exited.insert(pid, status.clone());
            if on_purpose {
                return;
            }
            let report = format!(
                "{name} (pid {pid}) exited unexpectedly ({status}); last lines of {}:\n{}",
                log.display(),
                tail_file(&log, 20)
            );
            if shared.crash.is_none() {
                shared.crash = Some(report);
            }
            drop(shared);
            this.crashed.cancel();
        });
        // The environment's names only: its values may be credentials.
        let env: Vec<&str> = spec.env.iter().map(|(k, _)| k.as_str()).collect();
        tracing::debug!(
            name = %info.name,
            pid = info.pid,
            program = %spec.program.display(),
            args = ?spec.args,
            port = spec.port,
            env = ?env,
            log = %spec.log.display(),
            detached = self.detached,
            "started child process"
        );
        Ok(info)
    }

    /// Stops the running child `name` on purpose (SIGTERM, SIGKILL after
    /// `grace`): its exit is not a crash, and it leaves the list of children
    /// until [`Supervisor::respawn`] starts it again. `None` when no child
    /// of that name runs.
    pub async fn stop_child(&self, name: &str, grace: Duration) -> Option<ChildInfo> {
        let child = {
            let mut shared = self.lock();
            let index = shared.children.iter().position(|c| c.name == name)?;
            let child = shared.children.remove(index);
            shared.stopped_on_purpose.insert(child.pid);
            child
        };
        terminate(child.pid, grace).await;
        Some(child)
    }

    /// Starts the child `name` again exactly as it was first started (same
    /// program, arguments, environment and log, appended to).
    pub fn respawn(&self, name: &str) -> Result<ChildInfo, ProcessError> {
        let spec = self.lock().specs.get(name).cloned();
        let spec = spec.ok_or_else(|| ProcessError::Spawn {
            name: name.to_string(),
            program: String::new(),
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "this supervisor never started it",
            ),
        })?;
        self.spawn(spec)
    }

    /// How the child `pid` exited (`exit status: 1`...), once it has; `None`
    /// while it runs.
    pub fn exit_status(&self, pid: u32) -> Option<String> {
        self.lock().exited.get(&pid).cloned()
    }

    /// Kills every child's process group at once (SIGKILL), without
    /// waiting: for `Drop` of an owner that was not stopped in order.
    pub fn kill_all_now(&self) {
        let children = {
            let mut shared = self.lock();
            shared.stopping = true;
            std::mem::take(&mut shared.children)
        };
        for child in &children {
            if child.pid != 0 {
                // SAFETY: plain kill(2) on process groups we started.
                unsafe {
                    libc::kill(-(child.pid as i32), libc::SIGKILL);
                }
            }
        }
    }

    /// Stops every child, last started first: SIGTERM to its process group,
    /// SIGKILL after `grace`.
    pub async fn stop_all(&self, grace: Duration) {
        let children = {
            let mut shared = self.lock();
            shared.stopping = true;
            std::mem::take(&mut shared.children)
        };
        for child in children.iter().rev() {
            terminate(child.pid, grace).await;
        }
    }
}

/// Makes the child of `cmd` die (SIGKILL) when this process dies, however
/// it dies: PR_SET_PDEATHSIG, then a check that the parent is still the
/// process that forked it (it may have died before prctl took effect; the
/// child would then have been re-parented, to init or to a subreaper, so
/// comparing with 1 is not enough). The one orphan check of the harness:
/// every child that must not outlive it goes through here.
pub fn die_with_parent(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: only async-signal-safe calls (prctl, getppid, _exit) run
    // between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            if libc::getppid() != parent {
                libc::_exit(1);
            }
            Ok(())
        });
    }
}

/// SIGTERM the process group of `pid`, SIGKILL it if still alive after `grace`.
pub async fn terminate(pid: u32, grace: Duration) {
    if pid == 0 {
        return;
    }
    let pgid = -(pid as i32);
    tracing::debug!(
        pid,
        grace_ms = u64::try_from(grace.as_millis()).unwrap_or(u64::MAX),
        "stopping process (SIGTERM)"
    );
    // SAFETY: plain syscalls on a pid/pgid we started.
    // The group for children we started; the pid itself for processes
    // found by `lab down` that may lead no group.
    unsafe {
        libc::kill(pgid, libc::SIGTERM);
        libc::kill(pid as i32, libc::SIGTERM);
    }
    let deadline = tokio::time::Instant::now() + grace;
    while tokio::time::Instant::now() < deadline {
        if !alive(pid) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tracing::debug!(pid, "process still running after its grace: SIGKILL");
    unsafe {
        libc::kill(pgid, libc::SIGKILL);
        libc::kill(pid as i32, libc::SIGKILL);
    }
    for _ in 0..40 {
        if !alive(pid) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// True while `pid` exists and is not a zombie.
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            // state is the field after the ")" that closes the command name.
            let state = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next());
            !matches!(state, Some("Z") | Some("X") | None)
        }
        Err(_) => false,
    }
}

/// Processes whose command line mentions `needle` (e.g. a lab's directory):
/// how `lab down` finds strays of a run that was killed.
pub fn find_by_cmdline(needle: &Path) -> Vec<(u32, String)> {
    let needle = needle.to_string_lossy().into_owned();
    let me = std::process::id();
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(raw) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = raw
            .split(|b| *b == 0)
            .map(String::from_utf8_lossy)
            .collect::<Vec<_>>()
            .join(" ");
        if cmdline.contains(&needle) && alive(pid) {
            found.push((pid, cmdline));
        }
    }
    found
}

/// The last `lines` lines of a file (best effort, for error messages).
pub fn tail_file(path: &Path, lines: usize) -> String {
    match std::fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}

/// A free TCP port on 127.0.0.1 for a server the caller starts right away.
pub fn free_port() -> std::io::Result<u16> {
    free_port_on(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST))
}

/// A free TCP port on `host`, chosen outside the kernel's ephemeral range.
///
/// A port the kernel hands out for `bind(0)` comes from the same range as
/// the source ports of outgoing connections, so between releasing it and
/// the server binding it, any connection on the machine (another test's
/// lab, a download) can take it: "address already in use". Ports below
/// that range are never handed out implicitly, so only another listener
/// can take them; the port is checked free by binding it, and a port this
/// process handed out once is not handed out again.
pub fn free_port_on(host: std::net::IpAddr) -> std::io::Result<u16> {
    use std::collections::BTreeSet;
    use std::sync::Mutex;
    static HANDED_OUT: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    let (low, high) = explicit_port_range();
    let mut handed = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(port) = pick_free_port(host, low..high, &mut handed) {
        return Ok(port);
    }
    // Nothing free below the ephemeral range (or no room for one): the
    // kernel's choice, with its small race.
    Ok(std::net::TcpListener::bind((host, 0))?.local_addr()?.port())
}

/// A random port of `range` that binds on `host` and is not in `handed`
/// (which it joins), or None after enough tries.
fn pick_free_port(
    host: std::net::IpAddr,
    range: std::ops::Range<u16>,
    handed: &mut std::collections::BTreeSet<u16>,
) -> Option<u16> {
    use std::hash::{BuildHasher, RandomState};
    if range.is_empty() {
        return None;
    }
    let random = RandomState::new();
    let span = u64::from(range.end - range.start);
    for attempt in 0u32..512 {
        let port = range.start + (random.hash_one((attempt, std::process::id())) % span) as u16;
        if !handed.contains(&port) && std::net::TcpListener::bind((host, port)).is_ok() {
            handed.insert(port);
            return Some(port);
        }
    }
    None
}

/// The ports [low, high) below the kernel's ephemeral range that
/// `free_port_on` picks from.
fn explicit_port_range() -> (u16, u16) {
    const LOW: u16 = 15000;
    let ephemeral_start = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    (LOW, ephemeral_start.max(LOW))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_are_below_the_ephemeral_range_bindable_and_never_repeated() {
        let (low, high) = explicit_port_range();
        assert!(
            low < high,
            "this machine leaves no room below its ephemeral range"
        );
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..200 {
            let port = free_port().expect("a free port");
            assert!(
                (low..high).contains(&port),
                "{port} is not in [{low}, {high})"
            );
            assert!(seen.insert(port), "{port} was handed out twice");
            std::net::TcpListener::bind(("127.0.0.1", port)).expect("the port is free");
        }
    }

    #[test]
    fn only_ports_free_and_not_handed_out_before_are_picked() {
        let localhost = std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
        let (low, _) = explicit_port_range();
        // Twenty ports of which every other one is held by a listener.
        let range = low + 1000..low + 1020;
        let held: Vec<_> = range
            .clone()
            .step_by(2)
            .filter_map(|p| std::net::TcpListener::bind(("127.0.0.1", p)).ok())
            .collect();
        let taken: std::collections::BTreeSet<u16> = held
            .iter()
            .map(|l| l.local_addr().unwrap().port())
            .collect();
        let mut handed = std::collections::BTreeSet::new();
        let mut picked = Vec::new();
        while let Some(port) = pick_free_port(localhost, range.clone(), &mut handed) {
            assert!(!taken.contains(&port), "{port} is held by a listener");
            assert!(!picked.contains(&port), "{port} was picked twice");
            picked.push(port);
        }
        // Every free port of the range, and then nothing.
        assert_eq!(picked.len(), range.len() - taken.len(), "picked {picked:?}");
        assert_eq!(pick_free_port(localhost, 0..0, &mut handed), None);
    }
}
