//! One scenario run: steps until the first failure, `finally` always,
//! diagnostics when it failed, cleanup unless `keep`.

use std::collections::BTreeSet;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt as _;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use super::{RunOptions, cleanup, now_rfc3339};
use crate::argocd::ArgoCd;
use crate::isolation::Isolation;
use crate::lab::{FaultAction, Lab};
use crate::outcome::{Failure, ScenarioReport, ScenarioStatus, StepRecord, StepStatus};
use crate::steps::{StepContext, StepError, StepOutcome, action_of};
use harness_oci::RegistryClient;
use harness_scenario::{Action, Scenario, Step, Vars};

/// The attempt number in names (there are no retries yet).
const ATTEMPT: u32 = 1;
/// Extra time the phase deadline gives a step to report on its own
/// (an expect cuts its window at the deadline and explains what it saw).
const DEADLINE_GRACE: Duration = Duration::from_secs(2);

/// `registry` is the run's client (a clone: connections and the
/// registry's authentication are shared with the other scenarios).
pub(super) async fn run_scenario(
    lab: Arc<dyn Lab>,
    registry: RegistryClient,
    scenario: &Scenario,
    opts: &RunOptions,
) -> ScenarioReport {
    if let Some(why) = excluded_release(scenario, lab.argocd_version()) {
        opts.progress
            .info(format!("[{}] skipped: {why}", scenario.name));
        return ScenarioReport {
            status: ScenarioStatus::Skipped,
            failure: None,
            skipped: Some(why.clone()),
            log: vec![format!("skipped: {why}")],
            steps: skipped_records(&scenario.steps, &why),
            finally: skipped_records(&scenario.finally, &why),
            ..never_started(scenario, &opts.run_id)
        };
    }
    let started = now_rfc3339();
    let clock = Instant::now();
    let isolation = Isolation::for_scenario(&opts.run_id, scenario, opts.attempt);
    let kube = lab.kube();
    let mut ctx = StepContext {
        argocd: ArgoCd::new(kube.clone(), lab.argocd_namespace()),
        registry,
        vars: Vars::for_lab(
            lab.registry().address.clone(),
            lab.registry_for_argo().to_string(),
            isolation.repository_prefix().to_string(),
        ),
        kube,
        lab: lab.clone(),
        isolation: isolation.clone(),
        scenario: scenario.name.clone(),
        deadline: Instant::now() + scenario.timeout,
        cancel: opts.cancel.clone(),
        backoff: opts.backoff,
        reconcile_budget: opts.reconcile_budget,
        apps: BTreeSet::new(),
        namespaces: BTreeSet::new(),
        repositories: BTreeSet::new(),
        signing_keys: Default::default(),
        stopped: BTreeSet::new(),
        applied: Vec::new(),
    };
    let mut log = vec![format!(
        "scenario {} (names suffixed -{})",
        scenario.name,
        isolation.suffix()
    )];
    let prefix = format!("[{}]", scenario.name);
    tracing::debug!(
        scenario = %scenario.name,
        file = %scenario.file.display(),
        suffix = isolation.suffix(),
        steps = scenario.steps.len(),
        finally = scenario.finally.len(),
        "scenario starts"
    );

    let timeout_note = format!(
        "the scenario timeout ({}) ran out",
        humantime::format_duration(scenario.timeout)
    );
    let steps = run_phase(
        &mut ctx,
        clock,
        &scenario.steps,
        "step",
        &prefix,
        &timeout_note,
        opts,
        &mut log,
        true,
    )
    .await;

    // Diagnostics show the lab as the failure left it, before `finally`
    // (which usually deletes the Applications) changes it. Not after Ctrl-C:
    // the person is waiting.
    let steps_failed = steps
        .iter()
        .any(|s| matches!(s.outcome, StepStatus::Failed | StepStatus::TimedOut));
    let cancelled = steps.iter().any(|s| s.outcome == StepStatus::Cancelled);
    let mut diagnostics = None;
    if steps_failed && !cancelled {
        diagnostics = collect(lab.as_ref(), &ctx, scenario, opts, &prefix, &mut log).await;
    }

    // Components the steps left stopped come back before `finally`, whose
    // deletions need the application controller.
    let mut restore_problems = Vec::new();
    restore(
        lab.as_ref(),
        &mut ctx,
        "steps",
        &mut log,
        &mut restore_problems,
    )
    .await;

    // `finally` gets its own budget and is not stopped by Ctrl-C.
    ctx.deadline = Instant::now() + opts.finally_timeout;
    ctx.cancel = CancellationToken::new();
    let finally_note = format!(
        "the finally budget ({}) ran out",
        humantime::format_duration(opts.finally_timeout)
    );
    let finally = run_phase(
        &mut ctx,
        clock,
        &scenario.finally,
        "finally",
        &prefix,
        &finally_note,
        opts,
        &mut log,
        false,
    )
    .await;

    let failure = first_failure("steps", &steps).or_else(|| first_failure("finally", &finally));
    let status = match (&failure, cancelled) {
        (_, true) => ScenarioStatus::Cancelled,
        (Some(_), false) => ScenarioStatus::Failed,
        (None, false) => ScenarioStatus::Passed,
    };
    if status == ScenarioStatus::Failed && diagnostics.is_none() {
        diagnostics = collect(lab.as_ref(), &ctx, scenario, opts, &prefix, &mut log).await;
    }

    // What `finally` stopped comes back too, even with --keep: cleanup
    // needs the controller, and the lab outlives the scenario.
    restore(
        lab.as_ref(),
        &mut ctx,
        "finally",
        &mut log,
        &mut restore_problems,
    )
    .await;

    let mut cleanup_problems = if opts.keep {
        log.push(format!(
            "kept Applications {:?} and namespaces {:?} (--keep)",
            ctx.apps, ctx.namespaces
        ));
        vec![]
    } else {
        cleanup::clean(&ctx, opts.cleanup_timeout).await
    };
    cleanup_problems.splice(0..0, restore_problems);
    for problem in &cleanup_problems {
        opts.progress.warn(format!("{prefix} cleanup: {problem}"));
        log.push(format!("cleanup: {problem}"));
    }

    let duration = clock.elapsed();
    tracing::debug!(
        scenario = %scenario.name,
        suffix = isolation.suffix(),
        status = ?status,
        duration_ms = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX),
        "scenario ends"
    );
    match (&status, &failure) {
        (ScenarioStatus::Passed, _) => opts
            .progress
            .info(format!("{prefix} passed ({:.1}s)", duration.as_secs_f64())),
        (_, Some(failure)) => opts.progress.info(format!(
            "{prefix} {:?} ({:.1}s): {}",
            status,
            duration.as_secs_f64(),
            failure.headline()
        )),
        (_, None) => opts.progress.info(format!(
            "{prefix} {status:?} ({:.1}s)",
            duration.as_secs_f64()
        )),
    }
    ScenarioReport {
        name: scenario.name.clone(),
        file: scenario.file.clone(),
        status,
        suffix: isolation.suffix().to_string(),
        started,
        duration,
        failure,
        steps,
        finally,
        cleanup_problems,
        diagnostics,
        log,
        skipped: None,
    }
}

/// Starts every component a fault step of `phase` stopped and none started
/// again; what cannot be started is a problem of the scenario's cleanup.
async fn restore(
    lab: &dyn Lab,
    ctx: &mut StepContext,
    phase: &str,
    log: &mut Vec<String>,
    problems: &mut Vec<String>,
) {
    for component in std::mem::take(&mut ctx.stopped) {
        match lab.fault(component, FaultAction::Start).await {
            Ok(done) => log.push(format!("restored after the {phase}: {done}")),
            Err(why) => problems.push(format!(
                "could not start {component} again, which a fault step of the {phase} stopped: {why}"
            )),
        }
    }
}

/// Write the diagnostics of a failed scenario; the folder, if written.
async fn collect(
    lab: &dyn Lab,
    ctx: &StepContext,
    scenario: &Scenario,
    opts: &RunOptions,
    prefix: &str,
    log: &mut Vec<String>,
) -> Option<PathBuf> {
    let dir = opts.report_dir.join("diagnostics").join(&scenario.name);
    // Every Application the file names, also those a step already deleted.
    let mut apps: BTreeSet<String> = scenario
        .steps
        .iter()
        .chain(&scenario.finally)
        .filter_map(|step| match &step.action {
            Action::App(app) => Some(ctx.isolation.app(&app.name)),
            _ => None,
        })
        .collect();
    apps.extend(ctx.apps.iter().cloned());
    let target = crate::diagnostics::DiagnosticsTarget {
        scenario: scenario.name.clone(),
        isolation: ctx.isolation.clone(),
        apps,
        namespaces: ctx
            .namespaces
            .union(&ctx.isolation.namespaces())
            .cloned()
            .collect(),
        repositories: ctx.repositories.clone(),
    };
    match crate::diagnostics::collect_diagnostics(lab, &ctx.argocd, &ctx.registry, &target, &dir)
        .await
    {
        Ok(()) => {
            log.push(format!("diagnostics in {}", dir.display()));
            Some(dir)
        }
        Err(problem) => {
            opts.progress
                .warn(format!("{prefix} collecting diagnostics: {problem}"));
            log.push(format!("collecting diagnostics failed: {problem}"));
            None
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn run_phase(
    ctx: &mut StepContext,
    scenario_clock: Instant,
    steps: &[Step],
    label: &str,
    prefix: &str,
    timeout_note: &str,
    opts: &RunOptions,
    log: &mut Vec<String>,
    stop_at_failure: bool,
) -> Vec<StepRecord> {
    let total = steps.len();
    let mut records = Vec::with_capacity(total);
    let mut stopped: Option<&'static str> = None;
    for (n, step) in steps.iter().enumerate() {
        let index = n + 1;
        let action = action_of(&step.action);
        let description = match &step.name {
            Some(name) => format!("{name}: {}", action.describe()),
            None => action.describe(),
        };
        let headline = format!(
            "{label} {index}/{total} {} {description}",
            step.action.kind()
        );
        let mut record = StepRecord {
            index,
            kind: step.action.kind().to_string(),
            name: step.name.clone(),
            description: description.clone(),
            location: step.location.clone(),
            started_after: None,
            duration: Duration::ZERO,
            outcome: StepStatus::Skipped,
            message: String::new(),
            digests: vec![],
            observed: None,
        };
        if stopped.is_none() && ctx.cancel.is_cancelled() {
            stopped = Some("the run was cancelled");
        }
        if let Some(why) = stopped {
            record.message = format!("not run: {why}");
            log.push(format!("{headline}: skipped ({why})"));
            records.push(record);
            continue;
        }
        if let Some(why) = excluded_step(step, ctx.lab.argocd_version()) {
            opts.progress
                .info(format!("{prefix} {headline} skipped: {why}"));
            record.message = format!("not run: {why}");
            log.push(format!("{headline}: skipped ({why})"));
            records.push(record);
            continue;
        }
        let task = opts.progress.task(format!("{prefix} {headline}"));
        // The step's span: every request and wait it makes carries it.
        let span = tracing::debug_span!("step", phase = label, index, kind = step.action.kind());
        // Inside the span, so that the log's span and span list agree.
        span.in_scope(|| {
            tracing::debug!(
                scenario = %ctx.scenario,
                phase = label,
                index,
                total,
                kind = step.action.kind(),
                name = step.name.as_deref(),
                description = %description,
                location = %step.location,
                "step starts"
            )
        });
        let clock = Instant::now();
        record.started_after = Some(clock.duration_since(scenario_clock));
        let cancel = ctx.cancel.clone();
        let deadline = ctx.deadline;
        let result = tokio::select! {
            biased;
            // A panic in a step is a harness bug: it fails the step, and
            // `finally` and cleanup still run.
            result = AssertUnwindSafe(action.run(ctx)).catch_unwind().instrument(span.clone()) => result.unwrap_or_else(|panic| Err(panicked(panic.as_ref()))),
            _ = tokio::time::sleep_until(deadline + DEADLINE_GRACE) => Err(StepError::TimedOut { message: timeout_note.to_string() }),
            _ = cancel.cancelled() => Err(StepError::Cancelled { detail: None, observed: None }),
        };
        record.duration = clock.elapsed();
        let error = result.as_ref().err().map(|e| e.to_string());
        span.in_scope(|| {
            tracing::debug!(
                scenario = %ctx.scenario,
                phase = label,
                index,
                kind = step.action.kind(),
                status = if result.is_ok() { "ok" } else { "error" },
                duration_ms = u64::try_from(record.duration.as_millis()).unwrap_or(u64::MAX),
                error,
                "step ends"
            )
        });
        match result {
            Ok(StepOutcome {
                summary,
                digests,
                observed,
            }) => {
                task.done(&summary);
                log.push(format!(
                    "{headline}: ok ({:.1}s) {summary}",
                    record.duration.as_secs_f64()
                ));
                record.outcome = StepStatus::Passed;
                record.message = summary;
                record.digests = digests;
                record.observed = observed;
            }
            Err(error) => {
                let message = error.to_string();
                task.fail(message.lines().next().unwrap_or_default());
                log.push(format!(
                    "{headline}: FAILED ({:.1}s)\n{message}",
                    record.duration.as_secs_f64()
                ));
                record.observed = error.observed().cloned();
                record.outcome = match error {
                    StepError::Failed { .. } => StepStatus::Failed,
                    StepError::TimedOut { .. } => StepStatus::TimedOut,
                    StepError::Cancelled { .. } => StepStatus::Cancelled,
                };
                record.message = message;
                if stop_at_failure {
                    stopped = Some(match record.outcome {
                        StepStatus::Cancelled => "the run was cancelled",
                        StepStatus::TimedOut => "the scenario timed out",
                        _ => "an earlier step failed",
                    });
                }
            }
        }
        records.push(record);
    }
    records
}

fn panicked(panic: &(dyn std::any::Any + Send)) -> StepError {
    let what = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".to_string());
    StepError::failed(format!(
        "the harness crashed in this step ({what}); this is a bug in the harness: please report it with the scenario file"
    ))
}

fn first_failure(phase: &str, records: &[StepRecord]) -> Option<Failure> {
    records
        .iter()
        .find(|r| {
            matches!(
                r.outcome,
                StepStatus::Failed | StepStatus::TimedOut | StepStatus::Cancelled
            )
        })
        .map(|r| Failure {
            phase: phase.to_string(),
            index: r.index,
            kind: r.kind.clone(),
            location: Some(r.location.clone()),
            message: r.message.clone(),
        })
}

fn skipped_records(steps: &[Step], why: &str) -> Vec<StepRecord> {
    steps
        .iter()
        .enumerate()
        .map(|(n, step)| StepRecord {
            index: n + 1,
            kind: step.action.kind().to_string(),
            name: step.name.clone(),
            description: action_of(&step.action).describe(),
            location: step.location.clone(),
            started_after: None,
            duration: Duration::ZERO,
            outcome: StepStatus::Skipped,
            message: format!("not run: {why}"),
            digests: vec![],
            observed: None,
        })
        .collect()
}

/// Why `scenario` does not run on Argo CD `version` (its `argocd:`), if so.
fn excluded_release(scenario: &Scenario, version: &str) -> Option<String> {
    let constraint = scenario.argocd.as_ref()?;
    match constraint.matches(version) {
        Some(true) => None,
        Some(false) => Some(format!(
            "needs Argo CD {} (`argocd:`), the lab runs {version}",
            constraint.text
        )),
        None => Some(format!(
            "needs Argo CD {} (`argocd:`), and the lab's release `{version}` is not a version to compare",
            constraint.text
        )),
    }
}

/// Why a step does not run on Argo CD `version` (its `when:`), if so.
fn excluded_step(step: &Step, version: &str) -> Option<String> {
    let when = step.when.as_ref()?;
    match when.argocd.matches(version) {
        Some(true) => None,
        Some(false) => Some(format!(
            "`when: {{argocd: \"{}\"}}` and the lab runs {version}",
            when.argocd.text
        )),
        None => Some(format!(
            "`when: {{argocd: \"{}\"}}` and the lab's release `{version}` is not a version to compare",
            when.argocd.text
        )),
    }
}

/// The report of a scenario that Ctrl-C stopped before it started.
pub(super) fn never_started(scenario: &Scenario, run_id: &str) -> ScenarioReport {
    let why = "the run was cancelled before this scenario started";
    ScenarioReport {
        name: scenario.name.clone(),
        file: scenario.file.clone(),
        status: ScenarioStatus::Cancelled,
        suffix: Isolation::for_scenario(run_id, scenario, ATTEMPT)
            .suffix()
            .to_string(),
        started: String::new(),
        duration: Duration::ZERO,
        failure: Some(Failure {
            phase: String::new(),
            index: 0,
            kind: String::new(),
            location: None,
            message: why.into(),
        }),
        steps: skipped_records(&scenario.steps, why),
        finally: skipped_records(&scenario.finally, why),
        cleanup_problems: vec![],
        diagnostics: None,
        log: vec![why.to_string()],
        skipped: None,
    }
}

/// The report of a scenario whose task panicked (a harness bug).
pub(super) fn crashed(scenario: &Scenario, run_id: &str, panic: &str) -> ScenarioReport {
    let message = format!(
        "the harness crashed while running this scenario ({panic}); this is a bug in the harness, please report it with this file; objects with suffix -{} may be left in the lab",
        Isolation::for_scenario(run_id, scenario, ATTEMPT).suffix()
    );
    ScenarioReport {
        status: ScenarioStatus::Failed,
        failure: Some(Failure {
            phase: String::new(),
            index: 0,
            kind: String::new(),
            location: None,
            message: message.clone(),
        }),
        log: vec![message],
        ..never_started(scenario, run_id)
    }
}
