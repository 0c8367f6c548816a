//! The scenario suite on one lab, sequentially and in parallel.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use harness_core::progress::Progress;
use harness_engine::lab::Lab;
use harness_engine::runner::{self, RunOptions, RunSummary, StepRecord};
use harness_scenario::{Action, Scenario, Timing};

/// Argo CD's own e2e tests (test/e2e in argoproj/argo-cd) take about this
/// long each for a comparable test (create an app, sync, assert): a
/// reference figure, not measured here.
pub const ARGOCD_E2E_REFERENCE: &str = "5–10 s per test";

#[derive(Debug, Clone, Serialize)]
pub struct SuiteResult {
    pub reference: String,
    pub runs: Vec<SuiteRun>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SuiteRun {
    pub jobs: usize,
    pub wall_seconds: f64,
    pub passed: usize,
    pub failed: usize,
    pub cancelled: usize,
    pub scenarios: Vec<ScenarioTime>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ScenarioTime {
    pub name: String,
    pub status: String,
    pub seconds: f64,
    /// Time the scenario spends in `for:` windows: waiting by design.
    pub fixed_window_seconds: f64,
    /// `seconds − fixed_window_seconds`: what compares with a test that has
    /// no such window.
    pub active_seconds: f64,
    /// The slowest step, e.g. `expect (7.30 s)`.
    pub slowest_step: String,
    /// Every `delete` step's duration (Argo CD's deletion plus the harness's
    /// polling of it).
    pub delete_seconds: Vec<f64>,
}

/// Sum of the `for:` windows of a scenario's steps.
pub fn fixed_windows(scenario: &Scenario) -> Duration {
    scenario
        .steps
        .iter()
        .chain(&scenario.finally)
        .filter_map(|s| match &s.action {
            Action::Expect(e) => match e.timing {
                Timing::For(d) => Some(d),
                Timing::Within(_) | Timing::Reconciles(_) => None,
            },
            _ => None,
        })
        .sum()
}

fn slowest(steps: &[StepRecord]) -> String {
    steps
        .iter()
        .max_by(|a, b| a.duration.cmp(&b.duration))
        .map(|s| format!("{} {} ({:.2} s)", s.kind, s.index, s.duration.as_secs_f64()))
        .unwrap_or_default()
}

pub fn scenario_times(summary: &RunSummary, scenarios: &[Scenario]) -> Vec<ScenarioTime> {
    summary
        .scenarios
        .iter()
        .map(|report| {
            let fixed = scenarios
                .iter()
                .find(|s| s.name == report.name)
                .map(fixed_windows)
                .unwrap_or_default()
                .as_secs_f64();
            let seconds = report.duration.as_secs_f64();
            let all: Vec<StepRecord> = report
                .steps
                .iter()
                .chain(&report.finally)
                .cloned()
                .collect();
            ScenarioTime {
                name: report.name.clone(),
                status: format!("{:?}", report.status).to_lowercase(),
                seconds,
                fixed_window_seconds: fixed,
                active_seconds: (seconds - fixed).max(0.0),
                slowest_step: slowest(&all),
                delete_seconds: all
                    .iter()
                    .filter(|s| s.kind == "delete")
                    .map(|s| s.duration.as_secs_f64())
                    .collect(),
            }
        })
        .collect()
}

/// Runs every scenario once per entry of `jobs`, on `lab`.
pub async fn run_suite(
    lab: Arc<dyn Lab>,
    scenarios_dir: &Path,
    jobs: &[usize],
    report_root: &Path,
    progress: &Progress,
    problems: &mut Vec<String>,
) -> anyhow::Result<SuiteResult> {
    let scenarios = harness_scenario::load_paths(&[scenarios_dir.to_path_buf()]).map_err(|d| {
        let first = d.first().map(ToString::to_string).unwrap_or_default();
        anyhow::anyhow!(
            "{} error(s) in the scenario files under {} (first: {first}); run `cargo xtask check {}`",
            d.len(),
            scenarios_dir.display(),
            scenarios_dir.display()
        )
    })?;
    let mut runs = vec![];
    for &j in jobs {
        let run_id = runner::new_run_id();
        let report_dir = report_root.join(format!("suite-jobs{j}"));
        let task = progress.task(format!(
            "suite: {} scenario(s) with --jobs {j}",
            scenarios.len()
        ));
        let mut opts = RunOptions::new(run_id, &report_dir);
        opts.jobs = j.max(1);
        opts.progress = Progress::quiet();
        let summary = runner::run(lab.clone(), scenarios.clone(), opts).await;
        let line = format!(
            "{:.1} s, {} passed, {} failed (report {})",
            summary.duration.as_secs_f64(),
            summary.passed,
            summary.failed,
            report_dir.display()
        );
        if summary.all_passed() {
            task.done(line);
        } else {
            task.fail(line);
            for s in summary.scenarios.iter().filter(|s| s.failure.is_some()) {
                if let Some(f) = &s.failure {
                    problems.push(format!(
                        "suite --jobs {j}: {} failed: {}",
                        s.name,
                        f.headline()
                    ));
                }
            }
        }
        runs.push(SuiteRun {
            jobs: j,
            wall_seconds: summary.duration.as_secs_f64(),
            passed: summary.passed,
            failed: summary.failed,
            cancelled: summary.cancelled,
            scenarios: scenario_times(&summary, &scenarios),
        });
    }
    Ok(SuiteResult {
        reference: ARGOCD_E2E_REFERENCE.into(),
        runs,
    })
}
