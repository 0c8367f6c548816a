//! Runs scenarios against a lab: in parallel up to `jobs`, each isolated by
//! its own names, steps in order until the first failure, `finally` always,
//! then diagnostics (on failure), cleanup and reports.

mod cleanup;
mod scenario_run;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::expect::Backoff;
pub use crate::isolation::Isolation;
use crate::lab::Lab;
pub use crate::outcome::*;
use harness_core::progress::Progress;
use harness_oci::RegistryClient;
use harness_scenario::Scenario;

/// How to run.
#[derive(Clone)]
pub struct RunOptions {
    /// Names this run's objects (see [`new_run_id`]).
    pub run_id: String,
    /// Scenarios running at once (at least 1).
    pub jobs: usize,
    /// Where JUnit XML, the JSON summary and diagnostics go (created).
    pub report_dir: PathBuf,
    /// Leave what the scenarios created in the lab (for a look afterwards).
    pub keep: bool,
    pub progress: Progress,
    /// Cancel (Ctrl-C): steps stop, `finally` and cleanup still run.
    pub cancel: CancellationToken,
    /// Budget of a scenario's `finally` steps together.
    pub finally_timeout: Duration,
    /// How long cleanup waits for each Application to be deleted.
    pub cleanup_timeout: Duration,
    /// Delays between probes of an expect.
    pub backoff: Backoff,
    /// How long Argo CD has to acknowledge each refresh of `reconciles: N`
    /// (the contract's [`harness_scenario::RECONCILE_BUDGET`]; tests that
    /// stop the controller on purpose shorten it).
    pub reconcile_budget: Duration,
    /// Which attempt of the scenarios this is (1 first; retries and
    /// repetitions count up): part of every isolated name.
    pub attempt: u32,
}

impl RunOptions {
    pub fn new(run_id: impl Into<String>, report_dir: impl Into<PathBuf>) -> Self {
        RunOptions {
            run_id: run_id.into(),
            jobs: 1,
            report_dir: report_dir.into(),
            keep: false,
            progress: Progress::new(),
            cancel: CancellationToken::new(),
            finally_timeout: Duration::from_secs(120),
            cleanup_timeout: Duration::from_secs(90),
            backoff: Backoff::default(),
            reconcile_budget: harness_scenario::RECONCILE_BUDGET,
            attempt: 1,
        }
    }
}

/// A new run id: `YYYYMMDD-HHMMSS-xxxx` (UTC, 4 random base-36 characters).
pub fn new_run_id() -> String {
    const ALPHABET: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let now = OffsetDateTime::now_utc();
    let random: String = (0..4)
        .map(|_| ALPHABET[rand::random_range(0..36)] as char)
        .collect();
    format!(
        "{:04}{:02}{:02}-{:02}{:02}{:02}-{random}",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    )
}

pub fn now_rfc3339() -> String {
    OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .unwrap_or_default()
}

/// Run `scenarios` on `lab` and write the reports to `opts.report_dir`.
/// Never fails: every problem ends up in the summary.
pub async fn run(lab: Arc<dyn Lab>, scenarios: Vec<Scenario>, opts: RunOptions) -> RunSummary {
    let started = now_rfc3339();
    let clock = tokio::time::Instant::now();
    let opts = Arc::new(opts);
    let semaphore = Arc::new(Semaphore::new(opts.jobs.max(1)));
    let scenarios: Vec<Arc<Scenario>> = scenarios.into_iter().map(Arc::new).collect();
    // One client for the whole run: every scenario's steps share its
    // connections and what it learnt of the registry's authentication
    // (clones share both).
    let registry = RegistryClient::new(lab.registry().clone());
    let mut tasks = JoinSet::new();
    let mut task_index = std::collections::HashMap::new();
    for (index, scenario) in scenarios.iter().enumerate() {
        let (lab, opts, semaphore, scenario, registry) = (
            lab.clone(),
            opts.clone(),
            semaphore.clone(),
            scenario.clone(),
            registry.clone(),
        );
        // A scenario that stops lab components would break the others
        // running beside it: it takes every slot, so it runs alone.
        let slots = if scenario.disrupts_lab() {
            opts.jobs.max(1) as u32
        } else {
            1
        };
        let handle = tasks.spawn(async move {
            let _permit = semaphore.acquire_many_owned(slots).await;
            if opts.cancel.is_cancelled() {
                return (index, scenario_run::never_started(&scenario, &opts.run_id));
            }
            // Every event of the scenario (steps, requests, waits) carries its name.
            // (Not a field `name`: the JSON log's span objects have their own.)
            let span = tracing::debug_span!(
                "scenario",
                scenario = %scenario.name,
                attempt = opts.attempt
            );
            let report = scenario_run::run_scenario(lab, registry, &scenario, &opts)
                .instrument(span)
                .await;
            (index, report)
        });
        task_index.insert(handle.id(), index);
    }
    let mut reports: Vec<Option<ScenarioReport>> = vec![None; scenarios.len()];
    while let Some(joined) = tasks.join_next_with_id().await {
        match joined {
            Ok((_, (index, report))) => reports[index] = Some(report),
            Err(error) => {
                // A panic is a bug in the harness; report it on the scenario, keep going.
                if let Some(&index) = task_index.get(&error.id()) {
                    reports[index] = Some(scenario_run::crashed(
                        &scenarios[index],
                        &opts.run_id,
                        &error.to_string(),
                    ));
                }
            }
        }
    }
    let mut summary = RunSummary {
        run_id: opts.run_id.clone(),
        lab: lab.kind().to_string(),
        argocd_version: lab.argocd_version().to_string(),
        started,
        finished: now_rfc3339(),
        duration: clock.elapsed(),
        passed: 0,
        failed: 0,
        cancelled: 0,
        flaky: 0,
        skipped: 0,
        shard: None,
        scenarios: reports.into_iter().flatten().collect(),
        report_problems: vec![],
    };
    summary.count();
    if let Err(problem) = crate::report::write_reports(&summary, &opts.report_dir) {
        opts.progress.warn(format!(
            "writing the reports to {}: {problem}",
            opts.report_dir.display()
        ));
        summary.report_problems.push(problem.to_string());
    }
    summary
}
