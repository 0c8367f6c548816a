//! `cargo xtask soak`: run a scenario subset many times through the real
//! command line, interrupt each run at a random moment with SIGINT, SIGTERM
//! or SIGKILL, and count what each run left behind: processes, listening
//! ports, containers, lab directories and (on a kept lab) Applications,
//! AppProjects and namespaces. Any leftover fails the soak.
//!
//! Two kinds of run, picked by the seeded random generator:
//! - **own lab**: `e2e --lab local` starts and owns its lab. SIGINT and
//!   SIGTERM must leave nothing; after SIGKILL the lab's processes must die
//!   with the harness (PDEATHSIG) and its directory must be reclaimed by
//!   `lab down`, which has to say so.
//! - **kept lab**: `e2e --lab local --reuse` on a lab the soak started with
//!   `lab up`; SIGINT and SIGTERM must leave none of the run's objects in
//!   that cluster (what `--lab existing` users rely on). A SIGKILLed harness
//!   cannot clean a cluster it does not own, so kept-lab runs are never
//!   SIGKILLed.
//!
//! The harness is the program given ([`SoakOptions::program`], the CLI's own
//! executable); every lab lives under [`SoakOptions::work_dir`], which is
//! also how leftovers are recognised (a process or container that names it).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use harness_core::poll::{self, Backoff, Observation};
use harness_core::progress::Progress;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::process::{Child, Command};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// The subset a soak runs when none is given: short scenarios with
/// `finally` steps, Applications and more than one push.
pub const DEFAULT_SCENARIOS: &[&str] = &[
    "scenarios/pinned-digest.yaml",
    "scenarios/latest-follows-digest.yaml",
    "scenarios/tagged-release.yaml",
];

/// How long leftovers may take to go after the harness exited (the kernel
/// reaps PDEATHSIG children, the apiserver finishes namespace deletions).
const SETTLE: Duration = Duration::from_secs(60);
/// How long an interrupted run may take to stop (`finally` and cleanup run).
const STOP_WITHIN: Duration = Duration::from_secs(300);

#[derive(Debug, Clone)]
pub struct SoakOptions {
    /// The harness's command line program (`cargo xtask`'s executable).
    pub program: PathBuf,
    pub runs: u32,
    pub seed: u64,
    pub scenarios: Vec<PathBuf>,
    /// Labs, reports and run logs go here; it must not be shared.
    pub work_dir: PathBuf,
    /// Interrupts fall uniformly in `[0, max_delay]` after the start.
    pub max_delay: Duration,
    /// Also run on a kept lab (`--reuse`), where the run's Argo CD objects
    /// are counted.
    pub kept_lab: bool,
    pub cancel: CancellationToken,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Interrupt {
    Int,
    Term,
    Kill,
}

impl Interrupt {
    fn signal(self) -> i32 {
        match self {
            Interrupt::Int => libc::SIGINT,
            Interrupt::Term => libc::SIGTERM,
            Interrupt::Kill => libc::SIGKILL,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Interrupt::Int => "SIGINT",
            Interrupt::Term => "SIGTERM",
            Interrupt::Kill => "SIGKILL",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Mode {
    OwnLab,
    KeptLab,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::OwnLab => "own lab",
            Mode::KeptLab => "kept lab",
        }
    }
}

/// One run's plan: drawn from the seed before anything runs, so a seed
/// names the same sequence of interrupts on every machine.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RunPlan {
    pub interrupt: Interrupt,
    pub mode: Mode,
    pub delay: Duration,
}

/// The runs a seed stands for.
pub fn plan_runs(runs: u32, seed: u64, max_delay: Duration, kept_lab: bool) -> Vec<RunPlan> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..runs)
        .map(|_| {
            let interrupt = match rng.random_range(0..3) {
                0 => Interrupt::Int,
                1 => Interrupt::Term,
                _ => Interrupt::Kill,
            };
            let mode = if kept_lab && interrupt != Interrupt::Kill && rng.random_bool(0.5) {
                Mode::KeptLab
            } else {
                Mode::OwnLab
            };
            let delay = max_delay.mul_f64(rng.random_range(0.0..=1.0));
            RunPlan {
                interrupt,
                mode,
                delay,
            }
        })
        .collect()
}

/// What was found after a run (or at the end of the soak).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Leftovers {
    /// pid and command line of processes naming the work directory.
    pub processes: Vec<(u32, String)>,
    /// Listening TCP ports held by such processes.
    pub ports: Vec<u16>,
    /// Containers (name) whose command or mounts name the work directory.
    pub containers: Vec<String>,
    /// Lab directories that should be gone.
    pub lab_dirs: Vec<PathBuf>,
    /// Argo CD objects and namespaces of runs left in the kept lab.
    pub objects: Vec<String>,
}

impl Leftovers {
    pub fn is_empty(&self) -> bool {
        self.processes.is_empty()
            && self.ports.is_empty()
            && self.containers.is_empty()
            && self.lab_dirs.is_empty()
            && self.objects.is_empty()
    }

    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if !self.processes.is_empty() {
            let list: Vec<String> = self
                .processes
                .iter()
                .map(|(pid, cmd)| format!("{pid} {}", cut(cmd, 100)))
                .collect();
            parts.push(format!("processes: {}", list.join("; ")));
        }
        if !self.ports.is_empty() {
            let list: Vec<String> = self.ports.iter().map(u16::to_string).collect();
            parts.push(format!("listening ports: {}", list.join(", ")));
        }
        if !self.containers.is_empty() {
            parts.push(format!("containers: {}", self.containers.join(", ")));
        }
        if !self.lab_dirs.is_empty() {
            let list: Vec<String> = self
                .lab_dirs
                .iter()
                .map(|p| p.display().to_string())
                .collect();
            parts.push(format!("lab directories: {}", list.join(", ")));
        }
        if !self.objects.is_empty() {
            parts.push(format!("objects: {}", self.objects.join(", ")));
        }
        if parts.is_empty() {
            "nothing left".into()
        } else {
            parts.join(" | ")
        }
    }
}

fn cut(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

/// One run as it happened.
#[derive(Debug, Clone)]
pub struct RunRecord {
    pub plan: RunPlan,
    /// False when the run ended before its interrupt was due.
    pub interrupted: bool,
    /// How it exited: a code, or the signal that ended it.
    pub exit: String,
    /// The lab's processes and listening ports at the interrupt (what the
    /// leftover count is measured against).
    pub lab_processes_at_interrupt: usize,
    pub lab_ports_at_interrupt: usize,
    /// `lab down` reclaiming a SIGKILLed run's directory, as it said.
    pub reclaimed: Option<String>,
    pub left: Leftovers,
    /// What went wrong besides leftovers (a run that would not stop, an
    /// exit code outside the contract, a reclaim that said nothing).
    pub problems: Vec<String>,
    pub log: PathBuf,
}

impl RunRecord {
    pub fn clean(&self) -> bool {
        self.left.is_empty() && self.problems.is_empty()
    }
}

/// What the soak ends with, for the CLI to print.
#[derive(Debug, Clone)]
pub struct SoakOutcome {
    pub code: u8,
    pub output: Vec<String>,
    pub errors: Vec<String>,
    pub runs: Vec<RunRecord>,
}

/// Runs the soak. Never returns early on a dirty run: every run is
/// counted, then the summary says which left what.
pub async fn run(opts: SoakOptions, progress: &Progress) -> SoakOutcome {
    match soak(&opts, progress).await {
        Ok((runs, end)) => summarize(&opts, runs, end),
        Err(e) => SoakOutcome {
            code: crate::EXIT_BAD_INPUT,
            output: Vec::new(),
            errors: vec![format!("error: the soak could not run: {e:#}")],
            runs: Vec::new(),
        },
    }
}

fn summarize(opts: &SoakOptions, runs: Vec<RunRecord>, end: Leftovers) -> SoakOutcome {
    let mut output = Vec::new();
    let mut by: BTreeMap<(Interrupt, Mode), (u32, u32, u32)> = BTreeMap::new();
    for r in &runs {
        let e = by.entry((r.plan.interrupt, r.plan.mode)).or_default();
        e.0 += 1;
        if r.interrupted {
            e.1 += 1;
        }
        if !r.clean() {
            e.2 += 1;
        }
    }
    output.push(format!(
        "soak: {} run(s), seed {}, interrupts within {:.0} s",
        runs.len(),
        opts.seed,
        opts.max_delay.as_secs_f64()
    ));
    output.push("| signal | lab | runs | interrupted | left something |".into());
    output.push("|---|---|---|---|---|".into());
    for ((interrupt, mode), (n, hit, dirty)) in &by {
        output.push(format!(
            "| {} | {} | {n} | {hit} | {dirty} |",
            interrupt.name(),
            mode.name()
        ));
    }
    let dirty: Vec<&RunRecord> = runs.iter().filter(|r| !r.clean()).collect();
    let mut errors = Vec::new();
    for (i, r) in runs.iter().enumerate() {
        if !r.clean() {
            let mut what = r.problems.clone();
            if !r.left.is_empty() {
                what.push(r.left.describe());
            }
            errors.push(format!(
                "run {}: {} after {:.1} s ({}): {} (log: {})",
                i + 1,
                r.plan.interrupt.name(),
                r.plan.delay.as_secs_f64(),
                r.plan.mode.name(),
                what.join("; "),
                r.log.display()
            ));
        }
    }
    if !end.is_empty() {
        errors.push(format!("at the end of the soak: {}", end.describe()));
    }
    let cancelled = opts.cancel.is_cancelled();
    let code = if dirty.is_empty() && end.is_empty() && !cancelled {
        crate::EXIT_PASSED
    } else {
        crate::EXIT_FAILED
    };
    output.push(format!(
        "leftovers: {} of {} run(s) left something{}",
        dirty.len(),
        runs.len(),
        if cancelled {
            " (the soak was interrupted: not a pass)"
        } else {
            ""
        }
    ));
    SoakOutcome {
        code,
        output,
        errors,
        runs,
    }
}

async fn soak(
    opts: &SoakOptions,
    progress: &Progress,
) -> anyhow::Result<(Vec<RunRecord>, Leftovers)> {
    if opts.runs == 0 {
        anyhow::bail!("--runs must be at least 1");
    }
    for s in &opts.scenarios {
        if !s.exists() {
            anyhow::bail!("{}: no such scenario file or folder", s.display());
        }
    }
    std::fs::create_dir_all(&opts.work_dir)
        .with_context(|| format!("creating {}", opts.work_dir.display()))?;
    let work = std::fs::canonicalize(&opts.work_dir)?;
    let own_root = work.join("labs");
    let kept_root = work.join("kept-labs");
    let logs = work.join("runs");
    std::fs::create_dir_all(&logs)?;
    let plans = plan_runs(opts.runs, opts.seed, opts.max_delay, opts.kept_lab);

    let mut kept = None;
    if plans.iter().any(|p| p.mode == Mode::KeptLab) {
        let task = progress.task("starting the kept lab (lab up --lab local)");
        match start_kept_lab(opts, &kept_root, &logs).await {
            Ok(lab) => {
                task.done("");
                kept = Some(lab);
            }
            Err(e) => {
                task.fail(format!("{e:#}"));
                return Err(e);
            }
        }
    }

    let mut records = Vec::new();
    for (i, plan) in plans.iter().enumerate() {
        if opts.cancel.is_cancelled() {
            break;
        }
        let record = one_run(
            opts,
            i,
            *plan,
            &work,
            &own_root,
            &kept_root,
            kept.as_ref(),
            &logs,
        )
        .await;
        progress.info(format!(
            "run {}/{}: {} after {:.1} s ({}): {}, {} (lab at the interrupt: {} processes, {} ports){}",
            i + 1,
            plans.len(),
            plan.interrupt.name(),
            plan.delay.as_secs_f64(),
            plan.mode.name(),
            if record.interrupted {
                format!("exit {}", record.exit)
            } else {
                format!("ended before the interrupt, exit {}", record.exit)
            },
            if record.clean() {
                "nothing left".to_string()
            } else {
                let mut what = record.problems.clone();
                what.push(record.left.describe());
                what.join("; ")
            },
            record.lab_processes_at_interrupt,
            record.lab_ports_at_interrupt,
            record
                .reclaimed
                .as_deref()
                .map(|r| format!("; lab down: {r}"))
                .unwrap_or_default()
        ));
        records.push(record);
    }

    // The kept lab goes, and then nothing at all may name the work dir.
    if kept.is_some() {
        let task = progress.task("stopping the kept lab (lab down --lab local)");
        match cli(
            opts,
            &kept_root,
            &["lab", "down", "--lab", "local"],
            &logs.join("kept-lab-down.log"),
        )
        .await
        {
            Ok((0, _)) => task.done(""),
            Ok((code, said)) => task.fail(format!("exit {code}: {}", cut(&said, 400))),
            Err(e) => task.fail(format!("{e:#}")),
        }
    }
    let end = settle(
        &work,
        &[own_root.as_path(), kept_root.as_path()],
        None,
        &CancellationToken::new(),
    )
    .await;
    Ok((records, end))
}

/// The lab `lab up` left running for the kept-lab runs, and what was in
/// its cluster before any run.
struct KeptLab {
    kube: kube::Client,
    argocd_namespace: String,
    before: Vec<String>,
    dir: PathBuf,
}

async fn start_kept_lab(opts: &SoakOptions, root: &Path, logs: &Path) -> anyhow::Result<KeptLab> {
    let (code, said) = cli(
        opts,
        root,
        &["lab", "up", "--lab", "local"],
        &logs.join("kept-lab-up.log"),
    )
    .await?;
    if code != 0 {
        anyhow::bail!("lab up exited {code}: {}", cut(&said, 2000));
    }
    let lab = harness_labs::local::LocalLab::reuse(root).await?;
    let kube = harness_engine::lab::Lab::kube(&lab);
    let argocd_namespace = harness_engine::lab::Lab::argocd_namespace(&lab).to_string();
    let dir = lab.state().dir.clone();
    let before = run_objects(&kube, &argocd_namespace).await?;
    Ok(KeptLab {
        kube,
        argocd_namespace,
        before,
        dir,
    })
}

/// Runs the harness to completion with the labs under `labs`; its exit
/// code and everything it printed (also written to `log`).
async fn cli(
    opts: &SoakOptions,
    labs: &Path,
    args: &[&str],
    log: &Path,
) -> anyhow::Result<(i32, String)> {
    let out = Command::new(&opts.program)
        .args(args)
        .env("OCI_E2E_LABS", labs)
        .stdin(Stdio::null())
        .output()
        .await
        .with_context(|| format!("running {}", opts.program.display()))?;
    let said =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    std::fs::write(log, &said)?;
    Ok((out.status.code().unwrap_or(-1), said))
}

#[allow(clippy::too_many_arguments)]
async fn one_run(
    opts: &SoakOptions,
    index: usize,
    plan: RunPlan,
    work: &Path,
    own_root: &Path,
    kept_root: &Path,
    kept: Option<&KeptLab>,
    logs: &Path,
) -> RunRecord {
    let log = logs.join(format!("run-{:03}.log", index + 1));
    let mut record = RunRecord {
        plan,
        interrupted: false,
        exit: String::new(),
        lab_processes_at_interrupt: 0,
        lab_ports_at_interrupt: 0,
        reclaimed: None,
        left: Leftovers::default(),
        problems: Vec::new(),
        log: log.clone(),
    };
    let labs = match plan.mode {
        Mode::OwnLab => own_root,
        Mode::KeptLab => kept_root,
    };
    let report = work.join("reports").join(format!("run-{:03}", index + 1));
    let mut cmd = Command::new(&opts.program);
    cmd.args(["e2e", "--lab", "local", "--report"])
        .arg(&report)
        .args(&opts.scenarios)
        .env("OCI_E2E_LABS", labs)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    if plan.mode == Mode::KeptLab {
        cmd.arg("--reuse");
    }
    let file = match std::fs::File::create(&log).and_then(|f| Ok((f.try_clone()?, f))) {
        Ok(f) => f,
        Err(e) => {
            record
                .problems
                .push(format!("cannot write {}: {e}", log.display()));
            return record;
        }
    };
    cmd.stdout(file.0).stderr(file.1);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            record
                .problems
                .push(format!("cannot start {}: {e}", opts.program.display()));
            return record;
        }
    };
    // The harness's own processes, not the kept lab's.
    let ours = |p: &(u32, String)| kept.is_none_or(|k| !p.1.contains(&*k.dir.to_string_lossy()));
    tokio::select! {
        status = child.wait() => {
            record.exit = describe_exit(status.ok());
        }
        _ = tokio::time::sleep(plan.delay) => {
            let at = snapshot(work);
            record.lab_processes_at_interrupt = at.processes.iter().filter(|p| ours(p)).count();
            record.lab_ports_at_interrupt = at.ports.len();
            record.interrupted = true;
            signal(&child, plan.interrupt);
            record.exit = match wait_within(&mut child, STOP_WITHIN).await {
                Some(status) => describe_exit(Some(status)),
                None => {
                    record.problems.push(format!(
                        "still running {} s after {}: killed",
                        STOP_WITHIN.as_secs(),
                        plan.interrupt.name()
                    ));
                    let _ = child.kill().await;
                    describe_exit(child.wait().await.ok())
                }
            };
            check_exit(&mut record);
        }
        _ = opts.cancel.cancelled() => {
            signal(&child, Interrupt::Int);
            let _ = wait_within(&mut child, STOP_WITHIN).await;
            record.exit = "the soak was interrupted".into();
        }
    }

    // A SIGKILLed harness leaves its lab directory by design; `lab down`
    // (or the next run) reclaims it and says so. Its processes must die
    // with it: they are counted before `lab down`, which would kill strays.
    let mut before_down = Vec::new();
    if plan.interrupt == Interrupt::Kill && record.interrupted {
        before_down = settle(work, &[], kept, &opts.cancel).await.processes;
        let down_log = logs.join(format!("run-{:03}-lab-down.log", index + 1));
        match cli(
            opts,
            own_root,
            &["lab", "down", "--lab", "local"],
            &down_log,
        )
        .await
        {
            Ok((0, said)) => {
                if said.contains("removed") || said.contains("reclaimed") {
                    record.reclaimed = Some(first_line_with(&said, &["removed", "reclaimed"]));
                } else if record.lab_processes_at_interrupt > 0 {
                    record.problems.push(format!(
                        "lab down did not say it reclaimed the killed run's lab: {}",
                        cut(&said, 300)
                    ));
                }
            }
            Ok((code, said)) => record
                .problems
                .push(format!("lab down exited {code}: {}", cut(&said, 300))),
            Err(e) => record.problems.push(format!("lab down: {e:#}")),
        }
    }
    // The kept lab's own directory stays; only the own-lab root must be empty.
    let mut left = settle(work, &[own_root], kept, &opts.cancel).await;
    for p in before_down {
        if !left.processes.iter().any(|q| q.0 == p.0) {
            left.processes.push(p);
        }
    }
    record.left = left;
    record
}

fn first_line_with(text: &str, words: &[&str]) -> String {
    text.lines()
        .find(|l| words.iter().any(|w| l.contains(w)))
        .map(|l| cut(l.trim(), 200))
        .unwrap_or_default()
}

/// The contract's codes for an interrupted run: 1 (cancelled, not a pass)
/// for SIGINT and SIGTERM, or 0/1 when the run ended on its own just then;
/// death by SIGKILL for SIGKILL.
fn check_exit(record: &mut RunRecord) {
    let ok = match record.plan.interrupt {
        Interrupt::Int | Interrupt::Term => {
            record.exit == "1" || record.exit == "0" || record.exit == "2"
        }
        Interrupt::Kill => record.exit == "SIGKILL",
    };
    if !ok {
        record.problems.push(format!(
            "exit {} after {} is outside the contract",
            record.exit,
            record.plan.interrupt.name()
        ));
    }
}

fn describe_exit(status: Option<std::process::ExitStatus>) -> String {
    use std::os::unix::process::ExitStatusExt;
    match status {
        None => "unknown".into(),
        Some(s) => match (s.code(), s.signal()) {
            (Some(code), _) => code.to_string(),
            (None, Some(libc::SIGKILL)) => "SIGKILL".into(),
            (None, Some(n)) => format!("signal {n}"),
            (None, None) => "unknown".into(),
        },
    }
}

fn signal(child: &Child, interrupt: Interrupt) {
    if let Some(pid) = child.id() {
        // SAFETY: kill(2) on our own child's pid, which we have not reaped.
        unsafe {
            libc::kill(pid as i32, interrupt.signal());
        }
    }
}

async fn wait_within(child: &mut Child, within: Duration) -> Option<std::process::ExitStatus> {
    tokio::time::timeout(within, child.wait())
        .await
        .ok()
        .and_then(Result::ok)
}

/// Leftovers right now: processes naming `work`, their listening ports,
/// containers naming it, directories under each of `roots` (every entry
/// counts), and run objects in the kept lab beyond those before the soak.
async fn leftovers_now(work: &Path, roots: &[&Path], kept: Option<&KeptLab>) -> Leftovers {
    let mut left = snapshot(work);
    if let Some(k) = kept {
        left.processes
            .retain(|p| !p.1.contains(&*k.dir.to_string_lossy()));
        let mine: Vec<u32> = left.processes.iter().map(|p| p.0).collect();
        left.ports = listening_ports_of(&mine);
        match run_objects(&k.kube, &k.argocd_namespace).await {
            Ok(now) => {
                left.objects = now.into_iter().filter(|o| !k.before.contains(o)).collect();
            }
            Err(e) => left.objects = vec![format!("(cannot list the kept lab's objects: {e:#})")],
        }
    }
    left.containers = harness_labs::container::containers_naming(work).await;
    for root in roots {
        left.lab_dirs.extend(lab_dirs(root));
    }
    left
}

/// Polls [`leftovers_now`] until nothing is left, for at most [`SETTLE`];
/// what was left at the end otherwise.
async fn settle(
    work: &Path,
    roots: &[&Path],
    kept: Option<&KeptLab>,
    cancel: &CancellationToken,
) -> Leftovers {
    let backoff = Backoff {
        initial: Duration::from_millis(100),
        factor: 1.5,
        max: Duration::from_secs(2),
    };
    let outcome = poll::eventually(Instant::now() + SETTLE, backoff, cancel, || async move {
        let left = leftovers_now(work, roots, kept).await;
        if left.is_empty() {
            Observation::holds(left)
        } else {
            Observation::fails(left)
        }
    })
    .await;
    match outcome {
        poll::PollOutcome::Held { last, .. }
        | poll::PollOutcome::TimedOut { last, .. }
        | poll::PollOutcome::Broke { last, .. }
        | poll::PollOutcome::Unanswered { last, .. } => last,
        poll::PollOutcome::Cancelled { last, .. } => last.unwrap_or_default(),
    }
}

/// Processes naming `work` and the TCP ports they listen on.
fn snapshot(work: &Path) -> Leftovers {
    let processes = harness_core::process::find_by_cmdline(work);
    let pids: Vec<u32> = processes.iter().map(|p| p.0).collect();
    Leftovers {
        ports: listening_ports_of(&pids),
        processes,
        ..Leftovers::default()
    }
}

fn lab_dirs(root: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(root)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

/// Listening TCP sockets (IPv4 and IPv6) by inode → port.
fn listening_sockets() -> BTreeMap<u64, u16> {
    let mut found = BTreeMap::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
            if cols.len() < 10 || cols[3] != "0A" {
                continue;
            }
            let port = cols[1]
                .rsplit_once(':')
                .and_then(|(_, p)| u16::from_str_radix(p, 16).ok());
            if let (Some(port), Ok(inode)) = (port, cols[9].parse::<u64>()) {
                found.insert(inode, port);
            }
        }
    }
    found
}

/// The listening TCP ports held by `pids` (through their open sockets).
pub fn listening_ports_of(pids: &[u32]) -> Vec<u16> {
    if pids.is_empty() {
        return Vec::new();
    }
    let listening = listening_sockets();
    let mut ports = Vec::new();
    for pid in pids {
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            let Ok(target) = std::fs::read_link(fd.path()) else {
                continue;
            };
            let target = target.to_string_lossy();
            let Some(inode) = target
                .strip_prefix("socket:[")
                .and_then(|t| t.strip_suffix(']'))
                .and_then(|t| t.parse::<u64>().ok())
            else {
                continue;
            };
            if let Some(port) = listening.get(&inode) {
                ports.push(*port);
            }
        }
    }
    ports.sort_unstable();
    ports.dedup();
    ports
}

/// Applications in Argo CD's namespace, and AppProjects and namespaces
/// carrying a run label, as `kind/name`.
async fn run_objects(kube: &kube::Client, argocd_namespace: &str) -> anyhow::Result<Vec<String>> {
    use kube::api::{Api, DynamicObject, ListParams};
    use kube::discovery::ApiResource;
    let label = ListParams::default().labels(harness_engine::argocd::RUN_ID_LABEL);
    let mut found = Vec::new();
    let apps: Api<DynamicObject> = Api::namespaced_with(
        kube.clone(),
        argocd_namespace,
        &harness_engine::argocd::application_resource(),
    );
    for a in apps.list(&ListParams::default()).await?.items {
        found.push(format!(
            "Application/{}",
            a.metadata.name.unwrap_or_default()
        ));
    }
    let projects = ApiResource {
        group: "argoproj.io".into(),
        version: "v1alpha1".into(),
        api_version: "argoproj.io/v1alpha1".into(),
        kind: "AppProject".into(),
        plural: "appprojects".into(),
    };
    let projects: Api<DynamicObject> =
        Api::namespaced_with(kube.clone(), argocd_namespace, &projects);
    for p in projects.list(&label).await?.items {
        found.push(format!(
            "AppProject/{}",
            p.metadata.name.unwrap_or_default()
        ));
    }
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(kube.clone());
    for n in namespaces.list(&label).await?.items {
        found.push(format!("Namespace/{}", n.metadata.name.unwrap_or_default()));
    }
    found.sort();
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_names_one_sequence_and_kept_runs_are_never_killed() {
        let a = plan_runs(200, 7, Duration::from_secs(20), true);
        let b = plan_runs(200, 7, Duration::from_secs(20), true);
        assert_eq!(a, b);
        assert_ne!(a, plan_runs(200, 8, Duration::from_secs(20), true));
        for i in [Interrupt::Int, Interrupt::Term, Interrupt::Kill] {
            assert!(
                a.iter().filter(|p| p.interrupt == i).count() > 30,
                "{i:?} drawn"
            );
        }
        assert!(a.iter().any(|p| p.mode == Mode::KeptLab));
        assert!(
            a.iter()
                .all(|p| !(p.mode == Mode::KeptLab && p.interrupt == Interrupt::Kill))
        );
        assert!(a.iter().all(|p| p.delay <= Duration::from_secs(20)));
        assert!(
            plan_runs(50, 7, Duration::from_secs(20), false)
                .iter()
                .all(|p| p.mode == Mode::OwnLab)
        );
    }

    /// xtask/tests/cli.rs's soak runs seed 6: all three signals, a kept-lab
    /// run, the SIGKILL late enough for the lab to be up.
    #[test]
    fn the_suite_seed_draws_what_its_test_needs() {
        let plan = plan_runs(5, 6, Duration::from_secs(14), true);
        let got: Vec<(Interrupt, Mode, u64)> = plan
            .iter()
            .map(|p| (p.interrupt, p.mode, p.delay.as_secs()))
            .collect();
        assert_eq!(
            got,
            vec![
                (Interrupt::Int, Mode::OwnLab, 12),
                (Interrupt::Kill, Mode::OwnLab, 12),
                (Interrupt::Term, Mode::KeptLab, 4),
                (Interrupt::Term, Mode::OwnLab, 11),
                (Interrupt::Int, Mode::OwnLab, 8),
            ]
        );
    }

    #[test]
    fn a_listening_socket_of_a_process_is_found_and_a_closed_one_is_not() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        assert!(listening_ports_of(&[std::process::id()]).contains(&port));
        drop(listener);
        assert!(!listening_ports_of(&[std::process::id()]).contains(&port));
        assert!(listening_ports_of(&[]).is_empty());
    }

    /// The counter sees real leftovers: a process naming the work
    /// directory, the port it listens on, and a lab directory; and it sees
    /// none once they are gone. A counter that finds nothing cannot pass.
    #[tokio::test]
    async fn leftovers_are_counted_and_then_gone() {
        let work = tempfile::tempdir().unwrap();
        let root = work.path().join("labs");
        std::fs::create_dir_all(root.join("lab-1")).unwrap();
        let script = "import socket,sys,time\ns=socket.socket()\ns.bind(('127.0.0.1',0))\ns.listen()\nprint(s.getsockname()[1],flush=True)\ntime.sleep(60)";
        let mut child = std::process::Command::new("python3")
            .args(["-c", script])
            .arg(work.path())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        let port: u16 = line.trim().parse().unwrap();
        let left = leftovers_now(work.path(), &[root.as_path()], None).await;
        assert_eq!(
            left.processes.iter().map(|p| p.0).collect::<Vec<_>>(),
            vec![child.id()]
        );
        assert_eq!(left.ports, vec![port]);
        assert_eq!(left.lab_dirs, vec![root.join("lab-1")]);
        assert!(!left.is_empty());
        assert!(left.describe().contains(&port.to_string()));

        child.kill().unwrap();
        child.wait().unwrap();
        std::fs::remove_dir(root.join("lab-1")).unwrap();
        let left = settle(
            work.path(),
            &[root.as_path()],
            None,
            &CancellationToken::new(),
        )
        .await;
        assert!(left.is_empty(), "{}", left.describe());
    }
}
