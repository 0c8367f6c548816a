//! `cargo xtask bench`: what users wait for, measured on the local lab,
//! with the tools people use today alongside. A benchmark reports; it
//! never fails the test suite. A measurement that cannot be made is
//! recorded as a problem in the report and the rest goes on.
//!
//! Sections (each `iterations` times, min / median / p95):
//! 1. lab start: cold (tools cached, nothing running) to Argo CD ready,
//!    `--reuse` attach, and stop;
//! 2. push: small and large artifacts by the harness and by `oras push`,
//!    and a re-push of unchanged content;
//! 3. push to Synced, with the refresh annotation and polling only,
//!    against Argo CD's own floor (see `sync.rs`);
//! 4. the scenario suite with `--jobs 1` and `--jobs 4` (once each);
//! 5. footprint: peak resident memory of each lab process and the harness.
//!
//! Output: `<out>/bench.json` and `<out>/bench.md`.

pub mod push;
pub mod render;
pub mod stats;
pub mod suite;
pub mod sync;
pub mod system;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use harness_core::progress::Progress;
use harness_labs::LabKind;
use harness_labs::session::{self, LabOptions, RunningLab};
use harness_oci::RegistryClient;
use harness_tools::{self as tools, ProvisionOptions, Tool};
pub use stats::Stats;
pub use system::Machine;

/// A part of the benchmark that can be selected with `--only`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Section {
    Lab,
    Push,
    Sync,
    Suite,
}

impl Section {
    pub const ALL: [Section; 4] = [Section::Lab, Section::Push, Section::Sync, Section::Suite];

    pub fn name(self) -> &'static str {
        match self {
            Section::Lab => "lab",
            Section::Push => "push",
            Section::Sync => "sync",
            Section::Suite => "suite",
        }
    }
}

impl std::str::FromStr for Section {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Section::ALL
            .into_iter()
            .find(|x| x.name() == s)
            .ok_or_else(|| format!("unknown section {s:?}; choose from lab, push, sync, suite"))
    }
}

#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Samples per measurement (the suite runs once per `jobs` entry).
    pub iterations: usize,
    /// Argo CD reconciliation interval of the labs the bench starts.
    pub reconciliation: Duration,
    /// Size of the large artifact.
    pub large_mib: usize,
    pub scenarios: PathBuf,
    pub suite_jobs: Vec<usize>,
    /// Where bench.json, bench.md and the suite reports go.
    pub out_dir: PathBuf,
    pub sections: BTreeSet<Section>,
}

impl Default for BenchOptions {
    fn default() -> Self {
        BenchOptions {
            iterations: 3,
            reconciliation: Duration::from_secs(5),
            large_mib: 50,
            scenarios: PathBuf::from("scenarios"),
            suite_jobs: vec![1, 4],
            out_dir: PathBuf::from("target/bench"),
            sections: Section::ALL.into_iter().collect(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    pub iterations: usize,
    pub reconciliation_seconds: f64,
    pub large_mib: usize,
    pub suite_jobs: Vec<usize>,
    pub sections: Vec<Section>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ComponentVersion {
    pub component: String,
    pub version: String,
    pub source: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct LabStartResult {
    /// `session::start` of a new local lab, tools cached, to Argo CD ready.
    pub cold: Option<Stats>,
    /// `session::start` with `--reuse`: attach to a kept lab.
    pub reuse: Option<Stats>,
    /// Stopping a lab and removing its directory.
    pub stop: Option<Stats>,
    pub note: String,
    /// Per component of the cold starts: when it was started and when it
    /// was ready, in seconds from the start (the lab's own timeline).
    pub timeline: Vec<PhaseStats>,
}

/// One component's place in the cold starts' timelines.
#[derive(Debug, Clone, Serialize)]
pub struct PhaseStats {
    pub name: String,
    pub started: Option<Stats>,
    pub ready: Option<Stats>,
}

/// Medians per component over several starts' timelines, in the order of
/// their median readiness.
pub fn phase_stats(timelines: &[Vec<harness_labs::local::StartupPhase>]) -> Vec<PhaseStats> {
    let mut by_name: std::collections::BTreeMap<&str, (Vec<f64>, Vec<f64>)> = Default::default();
    for phase in timelines.iter().flatten() {
        let entry = by_name.entry(&phase.name).or_default();
        entry.0.push(phase.started_ms as f64 / 1000.0);
        entry.1.push(phase.ready_ms as f64 / 1000.0);
    }
    let mut out: Vec<PhaseStats> = by_name
        .into_iter()
        .map(|(name, (started, ready))| PhaseStats {
            name: name.to_string(),
            started: Stats::from_samples(&started),
            ready: Stats::from_samples(&ready),
        })
        .collect();
    out.sort_by(|a, b| {
        let key = |p: &PhaseStats| p.ready.as_ref().map_or(f64::MAX, |s| s.median);
        key(a).total_cmp(&key(b))
    });
    out
}

#[derive(Debug, Clone, Serialize)]
pub struct ProcessPeak {
    pub name: String,
    pub pid: u32,
    pub peak_rss_mib: f64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Footprint {
    /// Each process of the lab the push, sync and suite sections ran on,
    /// at the end of the bench.
    pub lab: Vec<ProcessPeak>,
    pub lab_total_mib: f64,
    /// The harness process before the push section (lab, sync, suite:
    /// what an e2e run needs).
    pub harness_before_push_mib: Option<f64>,
    /// The harness process at the end (includes the large artifact held
    /// in memory while packing).
    pub harness_peak_mib: Option<f64>,
}

/// Warnings in the lab's component logs that explain slow steps.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LabLogs {
    /// kwok.log lines saying the apiserver cannot serve watch progress
    /// requests (etcd without them): kwok then sees pods only when a watch
    /// restarts.
    pub kwok_watch_progress_warnings: usize,
}

/// Counts the log lines of `logs_dir` that explain slow steps.
pub fn scan_lab_logs(logs_dir: &Path) -> LabLogs {
    let kwok = std::fs::read_to_string(logs_dir.join("kwok.log")).unwrap_or_default();
    LabLogs {
        kwok_watch_progress_warnings: kwok
            .lines()
            .filter(|l| l.contains("RequestWatchProgress is disabled"))
            .count(),
    }
}

/// Where the harness adds time, with the evidence and the proposed change.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub title: String,
    pub evidence: String,
    pub proposal: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    pub started: String,
    pub wall_seconds: f64,
    pub settings: Settings,
    pub machine: Machine,
    pub versions: Vec<ComponentVersion>,
    pub lab_start: Option<LabStartResult>,
    pub push: Option<push::PushResult>,
    pub push_to_synced: Option<sync::SyncResult>,
    pub suite: Option<suite::SuiteResult>,
    pub footprint: Option<Footprint>,
    /// What the lab's own logs said during the bench.
    pub lab_logs: Option<LabLogs>,
    pub findings: Vec<Finding>,
    /// Measurements that could not be made, and why.
    pub problems: Vec<String>,
}

fn kib_to_mib(kib: u64) -> f64 {
    (kib as f64 / 1024.0 * 10.0).round() / 10.0
}

/// Runs the benchmark, writes `bench.json` and `bench.md` to
/// `opts.out_dir`, and returns the report. Errors only when no lab can be
/// started or the output cannot be written.
pub async fn run(opts: &BenchOptions, progress: &Progress) -> anyhow::Result<BenchReport> {
    let started_wall = harness_engine::runner::new_run_id();
    let started_at = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let clock = Instant::now();
    let machine = Machine::describe();
    let iterations = opts.iterations.max(1);
    let mut problems = vec![];
    std::fs::create_dir_all(&opts.out_dir)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", opts.out_dir.display()))?;

    // Tools first: a missing one is reported before any lab starts.
    let toolbox = tools::provision(&ProvisionOptions::default(), progress).await?;
    let mut versions: Vec<ComponentVersion> = toolbox
        .report()
        .into_iter()
        .map(|r| ComponentVersion {
            component: r.tool.to_string(),
            version: r.version,
            source: r.source.to_string(),
        })
        .collect();
    let oras = if opts.sections.contains(&Section::Push) {
        let oras_opts = ProvisionOptions {
            tools: [Tool::Oras].into_iter().collect(),
            ..ProvisionOptions::default()
        };
        match tools::provision(&oras_opts, progress).await {
            Ok(tb) => {
                versions.extend(tb.report().into_iter().map(|r| ComponentVersion {
                    component: r.tool.to_string(),
                    version: r.version,
                    source: r.source.to_string(),
                }));
                tb.get(Tool::Oras).map(Path::to_path_buf)
            }
            Err(e) => {
                problems.push(format!(
                    "oras could not be provisioned, so no comparison: {e}"
                ));
                None
            }
        }
    } else {
        None
    };
    versions.push(ComponentVersion {
        component: "harness".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        source: git_commit().unwrap_or_else(|| "this checkout".into()),
    });

    let mut lab_opts = LabOptions::new(LabKind::Local);
    lab_opts.reconciliation = opts.reconciliation;
    let (lab_start, main_lab) = if opts.sections.contains(&Section::Lab) {
        let (result, lab) = lab_starts(&lab_opts, iterations, progress, &mut problems).await;
        (Some(result), lab)
    } else {
        (None, None)
    };
    let main_lab = match main_lab {
        Some(lab) => lab,
        None => {
            let task = progress.task("starting the local lab for the benchmarks");
            match session::start(&lab_opts, &Progress::quiet()).await {
                Ok(lab) => {
                    task.done("");
                    lab
                }
                Err(e) => {
                    task.fail(format!("{e:#}"));
                    return Err(e.context("no local lab could be started for the benchmarks"));
                }
            }
        }
    };
    let lab = main_lab.lab();
    let client = RegistryClient::new(lab.registry().clone());
    // Unique names: a kept lab may hold earlier benches' repositories.
    let tag = started_wall.rsplit('-').next().unwrap_or("x").to_string();

    let push_to_synced = if opts.sections.contains(&Section::Sync) {
        let mut bench = sync::SyncBench {
            lab: lab.as_ref(),
            client: &client,
            iterations,
            reconciliation: opts.reconciliation,
            name: format!("bench-sync-{tag}"),
            progress,
            problems: &mut problems,
        };
        match bench.run().await {
            Ok(r) => Some(r),
            Err(e) => {
                problems.push(format!("push to Synced: {e:#}"));
                None
            }
        }
    } else {
        None
    };

    let suite = if opts.sections.contains(&Section::Suite) && lab_is_up(&main_lab, &mut problems) {
        match suite::run_suite(
            lab.clone(),
            &opts.scenarios,
            &opts.suite_jobs,
            &opts.out_dir,
            progress,
            &mut problems,
        )
        .await
        {
            Ok(r) => Some(r),
            Err(e) => {
                problems.push(format!("suite: {e:#}"));
                None
            }
        }
    } else {
        None
    };
    let harness_before_push = system::own_peak_rss_kib().map(kib_to_mib);

    let push = if opts.sections.contains(&Section::Push) && lab_is_up(&main_lab, &mut problems) {
        Some(
            push_section(
                &client,
                lab.registry(),
                oras.as_deref(),
                iterations,
                opts.large_mib,
                &format!("bench-{tag}"),
                progress,
                &mut problems,
            )
            .await,
        )
    } else {
        None
    };

    lab_is_up(&main_lab, &mut problems);
    let footprint = Some(footprint(&main_lab, harness_before_push));
    let lab_logs = lab.state_dir().map(|d| scan_lab_logs(&d.join("logs")));
    drop(lab);
    if let Err(e) = main_lab.shutdown(&lab_opts, progress, None).await {
        problems.push(format!("stopping the lab: {e:#}"));
    }

    let mut report = BenchReport {
        started: started_at,
        wall_seconds: clock.elapsed().as_secs_f64(),
        settings: Settings {
            iterations,
            reconciliation_seconds: opts.reconciliation.as_secs_f64(),
            large_mib: opts.large_mib,
            suite_jobs: opts.suite_jobs.clone(),
            sections: opts.sections.iter().copied().collect(),
        },
        machine,
        versions,
        lab_start,
        push,
        push_to_synced,
        suite,
        footprint,
        lab_logs,
        findings: vec![],
        problems,
    };
    report.findings = render::findings(&report);
    write_outputs(&report, &opts.out_dir)?;
    Ok(report)
}

/// False (and the crash recorded once) when a lab component has died: the
/// remaining sections would only measure connection errors. Another
/// process's `cargo xtask lab down` stops every local lab, for example.
fn lab_is_up(lab: &RunningLab, problems: &mut Vec<String>) -> bool {
    match lab.crash_report() {
        None => true,
        Some(report) => {
            let line = format!(
                "a lab component stopped during the bench, so the sections after it were skipped: {}",
                report.lines().next().unwrap_or_default()
            );
            if !problems.contains(&line) {
                problems.push(line);
            }
            false
        }
    }
}

/// Writes `bench.json` and `bench.md` into `dir`.
pub fn write_outputs(report: &BenchReport, dir: &Path) -> anyhow::Result<()> {
    let json = dir.join("bench.json");
    std::fs::write(&json, serde_json::to_vec_pretty(report)?)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", json.display()))?;
    let md = dir.join("bench.md");
    std::fs::write(&md, render::markdown(report))
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", md.display()))?;
    Ok(())
}

fn git_commit() -> Option<String> {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| format!("git {}", String::from_utf8_lossy(&out.stdout).trim()))
}

/// Cold starts, reuse attaches and stops. Returns the last lab started
/// (kept running for the other sections) when it can be used by them.
async fn lab_starts(
    lab_opts: &LabOptions,
    iterations: usize,
    progress: &Progress,
    problems: &mut Vec<String>,
) -> (LabStartResult, Option<RunningLab>) {
    let labs_root = session::labs_root();
    // A lab someone keeps up owns the `--reuse` pointer: measure attaching
    // to it rather than replace it with ours.
    let kept_by_someone = harness_labs::local::status(&labs_root).current.is_some();
    let (mut cold, mut reuse, mut stop) = (vec![], vec![], vec![]);
    let mut timelines = Vec::new();
    let mut main = None;
    let mut note = String::new();
    for i in 0..iterations {
        // The first lab is kept (detached) just long enough to measure
        // `--reuse`, then stopped; the last one serves the other sections.
        let detached = i == 0 && !kept_by_someone;
        let mut this = lab_opts.clone();
        this.keep = detached;
        let task = progress.task(format!("lab start (cold) {}/{iterations}", i + 1));
        let t = Instant::now();
        let lab = match session::start(&this, &Progress::quiet()).await {
            Ok(lab) => lab,
            Err(e) => {
                task.fail(format!("{e:#}"));
                problems.push(format!("lab start {}: {e:#}", i + 1));
                break;
            }
        };
        cold.push(t.elapsed());
        if let RunningLab::Local(local) = &lab {
            timelines.push(local.state().startup.clone());
        }
        task.done("Argo CD ready");
        if detached {
            measure_reuse(lab_opts, iterations, progress, problems, &mut reuse).await;
            let t = Instant::now();
            match stop_kept(lab).await {
                Ok(()) => stop.push(t.elapsed()),
                Err(e) => problems.push(format!("stopping the kept lab: {e:#}")),
            }
        } else if i + 1 == iterations {
            main = Some(lab);
        } else {
            let t = Instant::now();
            match lab.shutdown(&this, &Progress::quiet(), None).await {
                Ok(()) => stop.push(t.elapsed()),
                Err(e) => problems.push(format!("stopping lab {}: {e:#}", i + 1)),
            }
        }
    }
    if kept_by_someone {
        note = "`--reuse` measured against a lab that was already kept up (`cargo xtask lab up`)"
            .into();
        measure_reuse(lab_opts, iterations, progress, problems, &mut reuse).await;
    }
    (
        LabStartResult {
            cold: Stats::from_durations(&cold),
            reuse: Stats::from_durations(&reuse),
            stop: Stats::from_durations(&stop),
            note,
            timeline: phase_stats(&timelines),
        },
        main,
    )
}

async fn measure_reuse(
    lab_opts: &LabOptions,
    iterations: usize,
    progress: &Progress,
    problems: &mut Vec<String>,
    samples: &mut Vec<Duration>,
) {
    let mut attach = lab_opts.clone();
    attach.reuse = true;
    for j in 0..iterations {
        let task = progress.task(format!("lab start (--reuse) {}/{iterations}", j + 1));
        let t = Instant::now();
        match session::start(&attach, &Progress::quiet()).await {
            Ok(lab) => {
                samples.push(t.elapsed());
                task.done("");
                drop(lab);
            }
            Err(e) => {
                task.fail(format!("{e:#}"));
                problems.push(format!("lab --reuse: {e:#}"));
                return;
            }
        }
    }
}

/// Stops a lab started with `keep` (its children are detached).
async fn stop_kept(lab: RunningLab) -> anyhow::Result<()> {
    match lab {
        RunningLab::Local(local) => {
            let local = Arc::try_unwrap(local)
                .map_err(|_| anyhow::anyhow!("the kept lab is still in use"))?;
            local.shutdown(&session::labs_root(), None).await
        }
        RunningLab::Kind(_) | RunningLab::Existing(_) => Ok(()),
    }
}

#[allow(clippy::too_many_arguments)]
async fn push_section(
    client: &RegistryClient,
    registry: &harness_oci::RegistryEndpoint,
    oras: Option<&Path>,
    iterations: usize,
    large_mib: usize,
    prefix: &str,
    progress: &Progress,
    problems: &mut Vec<String>,
) -> push::PushResult {
    let mut result = push::PushResult::default();
    let mut bench = push::PushBench {
        client,
        registry,
        oras,
        iterations,
        prefix: prefix.to_string(),
        progress,
        problems,
    };
    match bench.pair("small", &push::small_files()).await {
        Ok(p) => result.small = Some(p),
        Err(e) => bench.problems.push(format!("push small: {e:#}")),
    }
    let large = push::large_files(large_mib << 20, 0x5eed);
    match bench.pair("large", &large).await {
        Ok(p) => result.large = Some(p),
        Err(e) => bench.problems.push(format!("push large: {e:#}")),
    }
    match bench.repush(&large).await {
        Ok((harness, oras, breakdown)) => {
            result.repush = harness;
            result.oras_repush = oras;
            result.large_pack_breakdown = breakdown;
        }
        Err(e) => bench.problems.push(format!("re-push: {e:#}")),
    }
    result
}

fn footprint(lab: &RunningLab, harness_before_push_mib: Option<f64>) -> Footprint {
    let children = match lab {
        RunningLab::Local(local) => local.state().children.clone(),
        RunningLab::Kind(_) | RunningLab::Existing(_) => vec![],
    };
    let lab: Vec<ProcessPeak> = children
        .iter()
        .filter_map(|c| {
            system::peak_rss_kib(c.pid).map(|kib| ProcessPeak {
                name: c.name.clone(),
                pid: c.pid,
                peak_rss_mib: kib_to_mib(kib),
            })
        })
        .collect();
    let total = (lab.iter().map(|p| p.peak_rss_mib).sum::<f64>() * 10.0).round() / 10.0;
    Footprint {
        lab,
        lab_total_mib: total,
        harness_before_push_mib,
        harness_peak_mib: system::own_peak_rss_kib().map(kib_to_mib),
    }
}
