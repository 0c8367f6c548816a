//! What `cargo xtask e2e` and `cargo xtask lab` do, as library calls:
//! load and select scenarios, bring a lab up, run, report, tear down —
//! including on Ctrl-C and when a lab component crashes.

pub mod bisect;
pub mod matrix;
pub mod soak;

use std::path::{Path, PathBuf};

use harness_core::progress::Progress;
use harness_engine::runner::{RunSummary, ScenarioReport, ScenarioStatus};
use harness_labs::LabKind;
use harness_labs::existing::ExistingLabConfig;
pub use harness_labs::local::registry::RegistrySecurity;
use harness_labs::session::{self, LabOptions};
use harness_scenario::Scenario;

/// Exit codes of the contract.
pub const EXIT_PASSED: u8 = 0;
pub const EXIT_FAILED: u8 = 1;
pub const EXIT_BAD_INPUT: u8 = 2;

#[derive(Debug, Clone)]
pub struct E2eOptions {
    pub paths: Vec<PathBuf>,
    pub lab: LabKind,
    pub report_dir: Option<PathBuf>,
    pub keep: bool,
    pub reuse: bool,
    /// Labels: a scenario runs when it has any of them (all when empty).
    pub select: Vec<String>,
    pub jobs: usize,
    /// Name filters: a scenario runs when its name matches any (all when
    /// empty). With `*` or `?` a glob on the whole name, else a substring.
    pub names: Vec<String>,
    /// Run only this shard of the selected scenarios.
    pub shard: Option<Shard>,
    /// Re-run failed scenarios up to this many times; one that then passes is flaky.
    pub retries: u32,
    /// Run every selected scenario this many times (flake hunting; at least 1).
    pub repeat: u32,
    /// The cluster and registry of `--lab existing`.
    pub existing: ExistingLabConfig,
    /// Cancels the run (the CLI's Ctrl-C): steps stop, `finally`, cleanup
    /// and the lab's shutdown still run.
    pub cancel: tokio_util::sync::CancellationToken,
    /// `--build-images`: the KIND lab runs the node and component images
    /// built here (docs/labs/kind.md) even where kind's could be pulled.
    pub build_images: bool,
    /// The KIND lab's configuration instead of the defaults and their
    /// `OCI_E2E_KIND_*` overrides (the test suite's own cluster).
    pub kind_config: Option<harness_labs::kind::KindLabConfig>,
    /// `--argocd-version`: the Argo CD releases to run on, one lab each
    /// (empty: the lab's default). More than one is a matrix.
    pub argocd_versions: Vec<String>,
    /// `--registry-auth`, `--registry-tls`: the local lab's registry
    /// wants a random user and password and/or serves HTTPS from a CA made
    /// for the lab (refused on other labs).
    pub registry: RegistrySecurity,
}

/// What a run ends with, for the CLI to print: the library itself neither
/// prints results nor exits (progress goes through [`Progress`]).
#[derive(Debug, Clone, Default)]
pub struct E2eOutcome {
    /// The exit code of the contract ([`EXIT_PASSED`], [`EXIT_FAILED`],
    /// [`EXIT_BAD_INPUT`]).
    pub code: u8,
    /// Lines for standard output, in order: a kept lab's usage, one line
    /// per scenario, the totals with the report folder.
    pub output: Vec<String>,
    /// Lines for standard error, after the output: bad input, a lab that
    /// could not start, a component that crashed.
    pub errors: Vec<String>,
    /// The run's summary, when scenarios ran.
    pub summary: Option<RunSummary>,
}

impl E2eOutcome {
    fn bad_input(errors: Vec<String>) -> Self {
        E2eOutcome {
            code: EXIT_BAD_INPUT,
            errors,
            ..Default::default()
        }
    }
}

/// One shard of a suite: `index` of `count`, 1-based (`--shard 2/4`).
///
/// The split is round-robin over the selected scenarios sorted by name:
/// the i-th name (0-based) goes to shard `i % count + 1`. Every scenario is
/// in exactly one shard and shard sizes differ by at most one, provided
/// every shard selects from the same files with the same filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl std::str::FromStr for Shard {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        let bad = || format!("--shard {text:?}: write K/N with 1 <= K <= N, e.g. --shard 2/4");
        let (k, n) = text.split_once('/').ok_or_else(bad)?;
        let index: usize = k.trim().parse().map_err(|_| bad())?;
        let count: usize = n.trim().parse().map_err(|_| bad())?;
        if index == 0 || count == 0 || index > count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// The scenarios of `shard`, in name order (see [`Shard`]).
pub fn shard(mut scenarios: Vec<Scenario>, shard: Shard) -> Vec<Scenario> {
    scenarios.sort_by(|a, b| a.name.cmp(&b.name));
    scenarios
        .into_iter()
        .enumerate()
        .filter(|(i, _)| i % shard.count + 1 == shard.index)
        .map(|(_, s)| s)
        .collect()
}

/// Whether `name` matches a `--name` filter: a glob (`*` any run of
/// characters, `?` one) on the whole name when the pattern has either,
/// otherwise a substring.
pub fn name_matches(name: &str, pattern: &str) -> bool {
    if !pattern.contains(['*', '?']) {
        return name.contains(pattern);
    }
    fn glob(name: &[char], pattern: &[char]) -> bool {
        match pattern.split_first() {
            None => name.is_empty(),
            Some(('*', rest)) => (0..=name.len()).any(|skip| glob(&name[skip..], rest)),
            Some(('?', rest)) => !name.is_empty() && glob(&name[1..], rest),
            Some((c, rest)) => name.first() == Some(c) && glob(&name[1..], rest),
        }
    }
    let name: Vec<char> = name.chars().collect();
    let pattern: Vec<char> = pattern.chars().collect();
    glob(&name, &pattern)
}

/// Keeps the scenarios whose name matches any of `patterns` (all when empty).
pub fn filter_names(scenarios: Vec<Scenario>, patterns: &[String]) -> Vec<Scenario> {
    if patterns.is_empty() {
        return scenarios;
    }
    scenarios
        .into_iter()
        .filter(|s| patterns.iter().any(|p| name_matches(&s.name, p)))
        .collect()
}

/// `cargo xtask lab up|down|status [--dry-run]`: what was asked.
#[derive(Debug, Clone)]
pub struct LabCommand {
    pub kind: LabKind,
    /// `lab up` (else `down` or, with neither, `status`).
    pub up: bool,
    pub down: bool,
    pub dry_run: bool,
    pub build_images: bool,
    pub argocd_version: Option<String>,
    pub registry: RegistrySecurity,
}

/// `cargo xtask lab up|down|status [--dry-run]`.
pub async fn lab_command(cmd: LabCommand, progress: &Progress) -> anyhow::Result<String> {
    let LabCommand {
        kind,
        up,
        down,
        dry_run,
        build_images,
        argocd_version,
        registry,
    } = cmd;
    let argocd_version = argocd_version.as_deref();
    let mut opts = LabOptions::new(kind);
    opts.keep = true;
    if registry.any() {
        if !up {
            anyhow::bail!("{} apply to `lab up` only", registry.flags().join(" and "));
        }
        session::check_registry_security(kind, registry).map_err(|e| anyhow::anyhow!(e))?;
        opts.registry = registry;
    }
    if let Some(version) = argocd_version {
        if !up {
            anyhow::bail!("--argocd-version applies to `lab up` only");
        }
        if kind == LabKind::Existing {
            anyhow::bail!(
                "--argocd-version does not apply to --lab existing: its Argo CD is the one installed there"
            );
        }
        let release = harness_tools::versions::argocd_release(version)?;
        opts.argocd_version = release.version.to_string();
    }
    if kind == LabKind::Kind {
        opts.kind_config = harness_labs::kind::KindLabConfig::from_env()?;
        if build_images {
            opts.kind_config = opts.kind_config.with_offline_images();
        }
        if argocd_version.is_some() {
            opts.kind_config.argocd_version = opts.argocd_version.clone();
        }
    } else if build_images {
        anyhow::bail!("--build-images applies to --lab kind only");
    }
    // What to print on standard output (the CLI prints it).
    let text = match kind {
        LabKind::Local => {
            let root = session::labs_root();
            if up && dry_run {
                harness_labs::local::plan_text(&root)
            } else if up {
                let lab = session::start(&opts, progress).await?;
                format!("{}\n", lab.usage())
            } else if down {
                let done = harness_labs::local::down(&root, progress).await?;
                if done.is_empty() {
                    "no local lab was running\n".to_string()
                } else {
                    done.iter().map(|line| format!("{line}\n")).collect()
                }
            } else {
                harness_labs::local::status_text(&harness_labs::local::status(&root))
            }
        }
        LabKind::Kind => {
            let cfg = &opts.kind_config;
            if up && dry_run {
                harness_labs::kind::plan(cfg)?.to_string()
            } else if up {
                let lab = session::start(&opts, progress).await?;
                format!("{}\n", lab.usage())
            } else if down {
                harness_labs::kind::down(cfg, progress).await?;
                String::new()
            } else {
                harness_labs::kind::status(cfg).await.to_string()
            }
        }
        LabKind::Existing => {
            anyhow::bail!(
                "the harness neither starts nor stops an existing cluster: run scenarios on it with `cargo xtask e2e --lab existing --registry HOST[/PREFIX]` (see docs/labs/existing.md)"
            )
        }
    };
    Ok(text)
}

pub use harness_capture::CaptureOptions;

/// `cargo xtask capture`: which Application, on which lab, written where.
#[derive(Debug, Clone)]
pub struct CaptureCommand {
    pub lab: LabKind,
    pub existing: harness_labs::existing::ExistingLabConfig,
    pub capture: harness_capture::CaptureOptions,
}

/// Captures an Application of a running lab (the local or kind lab that is
/// up, or `--lab existing`); returns the scenario text when it goes to
/// standard output, else what was written.
pub async fn capture_command(cmd: CaptureCommand, progress: &Progress) -> anyhow::Result<String> {
    let mut opts = LabOptions::new(cmd.lab);
    opts.reuse = true;
    opts.existing = cmd.existing;
    if cmd.lab == LabKind::Kind {
        opts.kind_config = harness_labs::kind::KindLabConfig::from_env()?;
    }
    let lab = session::start(&opts, progress).await.map_err(|e| {
        anyhow::anyhow!(
            "{e:#}\ncapture reads a lab that is up: one a run kept (`cargo xtask e2e --keep`), `cargo xtask lab up`, or `--lab existing`"
        )
    })?;
    let task = progress.task(format!("capturing Application {}", cmd.capture.app));
    let captured = harness_capture::capture(lab.lab().as_ref(), &cmd.capture).await;
    let captured = match captured {
        Ok(captured) => {
            task.done(format!(
                "scenario {}{}",
                captured.name,
                if captured.notes.is_empty() {
                    String::new()
                } else {
                    format!(" ({} note(s) at the top of the file)", captured.notes.len())
                }
            ));
            captured
        }
        Err(e) => {
            task.fail(e.to_string());
            return Err(e.into());
        }
    };
    let output = cmd.capture.output.as_deref();
    captured.write(output).map_err(|e| {
        anyhow::anyhow!(
            "writing {}: {e}",
            output.map_or("the fixtures".to_string(), |o| o.display().to_string())
        )
    })?;
    Ok(match output {
        Some(path) => {
            let mut text = format!("wrote {}", path.display());
            for (dir, _) in &captured.fixture_dirs {
                text.push_str(&format!(" and {}", dir.display()));
            }
            format!("{text}\nreplay it: cargo xtask e2e {}\n", path.display())
        }
        None => captured.text,
    })
}

/// Keeps the scenarios that carry any of `labels` (all when empty).
pub fn select(
    scenarios: Vec<harness_scenario::Scenario>,
    labels: &[String],
) -> Vec<harness_scenario::Scenario> {
    if labels.is_empty() {
        return scenarios;
    }
    scenarios
        .into_iter()
        .filter(|s| s.labels.iter().any(|l| labels.contains(l)))
        .collect()
}

/// `cargo xtask e2e`: what to print and the exit code of the contract.
pub async fn run(opts: E2eOptions, progress: &Progress) -> E2eOutcome {
    use harness_engine::runner;

    // Bad input is found before any lab starts.
    let scenarios = match harness_scenario::load_paths(&opts.paths) {
        Ok(s) => s,
        Err(diagnostics) => {
            let mut errors: Vec<String> = diagnostics.iter().map(|d| d.to_string()).collect();
            errors.push(format!(
                "{} error(s) in the scenario files; nothing was run",
                diagnostics.len()
            ));
            return E2eOutcome::bad_input(errors);
        }
    };
    let total = scenarios.len();
    let scenarios = select(scenarios, &opts.select);
    if scenarios.is_empty() {
        return E2eOutcome::bad_input(vec![format!(
            "error: none of the {total} scenario(s) has a label among --select {}",
            opts.select.join(", ")
        )]);
    }
    let labelled = scenarios.len();
    let scenarios = filter_names(scenarios, &opts.names);
    if scenarios.is_empty() {
        return E2eOutcome::bad_input(vec![format!(
            "error: none of the {labelled} selected scenario(s) has a name matching --name {} (a pattern with * or ? is a glob on the whole name, otherwise a substring)",
            opts.names.join(", ")
        )]);
    }
    let selected = scenarios.len();
    let scenarios = match opts.shard {
        Some(s) => shard(scenarios, s),
        None => scenarios,
    };

    let run_id = runner::new_run_id();
    let report_dir = opts
        .report_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from("target/e2e").join(&run_id));
    // From here on the log (with `--verbose`) goes to the run's folder.
    harness_core::log::run_folder(&report_dir);
    tracing::debug!(
        run_id = %run_id,
        lab = opts.lab.as_str(),
        scenarios = scenarios.len(),
        jobs = opts.jobs,
        retries = opts.retries,
        repeat = opts.repeat,
        "run starts"
    );
    if scenarios.is_empty() {
        // More shards than scenarios: this shard has nothing to do, which is not a failure.
        let shard = opts.shard.map(|s| s.to_string()).unwrap_or_default();
        let output = vec![
            format!(
                "shard {shard} has no scenarios ({selected} selected over more shards than that); report: {}",
                report_dir.display()
            ),
            format!(
                "report: {}",
                report_dir.join(harness_engine::report::HTML_FILE).display()
            ),
        ];
        let summary = empty_summary(&run_id, opts.lab.as_str(), opts.shard);
        let errors = match harness_engine::report::write_reports(&summary, &report_dir) {
            Ok(()) => vec![],
            Err(e) => vec![format!("error: {e}")],
        };
        return E2eOutcome {
            code: EXIT_PASSED,
            output,
            errors,
            summary: Some(summary),
        };
    }
    let shard_note = opts
        .shard
        .map(|s| format!(" (shard {s} of {selected})"))
        .unwrap_or_default();
    progress.info(format!(
        "run {run_id}: {} scenario(s){shard_note} on the {} lab, report in {}",
        scenarios.len(),
        opts.lab,
        report_dir.display()
    ));

    if let Err(e) = session::check_registry_security(opts.lab, opts.registry) {
        return E2eOutcome::bad_input(vec![format!("error: {e}")]);
    }
    if opts.lab == LabKind::Existing && !opts.argocd_versions.is_empty() {
        return E2eOutcome::bad_input(vec![
            "error: --argocd-version does not apply to --lab existing: its Argo CD is the one installed there".into(),
        ]);
    }
    for version in &opts.argocd_versions {
        if let Err(e) = harness_tools::versions::argocd_release(version) {
            return E2eOutcome::bad_input(vec![format!("error: --argocd-version: {e}")]);
        }
    }
    if opts.argocd_versions.len() > 1 {
        return matrix::run(&opts, scenarios, &run_id, &report_dir, progress).await;
    }
    let version = opts.argocd_versions.first().map(String::as_str);
    run_on_lab(&opts, version, scenarios, run_id, &report_dir, progress).await
}

/// Runs `scenarios` on one lab (Argo CD `argocd_version`, or the lab's
/// default), reports to `report_dir`, and says what to print.
pub async fn run_on_lab(
    opts: &E2eOptions,
    argocd_version: Option<&str>,
    scenarios: Vec<Scenario>,
    run_id: String,
    report_dir: &std::path::Path,
    progress: &Progress,
) -> E2eOutcome {
    use harness_engine::runner::RunOptions;
    let cancel = opts.cancel.clone();

    let mut lab_opts = LabOptions::new(opts.lab);
    if let Some(version) = argocd_version {
        lab_opts.argocd_version = version.to_string();
    }
    if opts.lab == LabKind::Kind {
        let configured = match &opts.kind_config {
            Some(cfg) => Ok(cfg.clone()),
            None => harness_labs::kind::KindLabConfig::from_env(),
        };
        match configured {
            Ok(cfg) if opts.build_images => lab_opts.kind_config = cfg.with_offline_images(),
            Ok(cfg) => lab_opts.kind_config = cfg,
            Err(e) => return E2eOutcome::bad_input(vec![format!("error: {e}")]),
        }
        if let Some(version) = argocd_version {
            lab_opts.kind_config.argocd_version = version.to_string();
        }
    } else if opts.build_images {
        return E2eOutcome::bad_input(vec![
            "error: --build-images applies to --lab kind only".to_string(),
        ]);
    }
    lab_opts.keep = opts.keep;
    lab_opts.reuse = opts.reuse;
    lab_opts.registry = opts.registry;
    lab_opts.existing = ExistingLabConfig {
        run_id: Some(run_id.clone()),
        ..opts.existing.clone()
    };
    let lab = tokio::select! {
        lab = session::start(&lab_opts, progress) => match lab {
            Ok(lab) => lab,
            Err(e) => {
                return E2eOutcome::bad_input(vec![format!(
                    "error: the {} lab could not start: {e:#}",
                    opts.lab
                )]);
            }
        },
        _ = cancel.cancelled() => {
            return E2eOutcome::bad_input(vec!["interrupted while the lab was starting".into()]);
        }
    };

    // A crashed lab component cancels the run too.
    if let Some(crashed) = lab.crashed() {
        let cancel = cancel.clone();
        tokio::spawn(async move {
            crashed.cancelled().await;
            cancel.cancel();
        });
    }

    let mut run_opts = RunOptions::new(run_id, report_dir);
    run_opts.jobs = opts.jobs.max(1);
    run_opts.keep = opts.keep;
    run_opts.progress = progress.clone();
    run_opts.cancel = cancel.clone();
    let summary = run_attempts(
        lab.lab(),
        scenarios,
        &run_opts,
        opts.retries,
        opts.repeat.max(1),
        opts.shard,
    )
    .await;

    let crash = lab.crash_report();
    let failed = !summary.all_passed();
    let mut output = Vec::new();
    if opts.keep && crash.is_none() {
        output.push(lab.usage());
    }
    let logs = failed.then(|| report_dir.join("lab-logs"));
    if let Err(e) = lab.shutdown(&lab_opts, progress, logs.as_deref()).await {
        progress.warn(format!("stopping the lab: {e:#}"));
    }

    for s in &summary.scenarios {
        let line = match &s.failure {
            Some(f) => format!(
                "{:<10} {} ({:.1}s): {}",
                format!("{:?}", s.status).to_uppercase(),
                s.name,
                s.duration.as_secs_f64(),
                f.headline()
            ),
            None => format!(
                "{:<10} {} ({:.1}s)",
                format!("{:?}", s.status).to_uppercase(),
                s.name,
                s.duration.as_secs_f64()
            ),
        };
        output.push(line);
    }
    if opts.repeat > 1 {
        output.extend(repeat_tally(&summary, opts.repeat));
    }
    let flaky = if summary.flaky > 0 {
        format!(
            "{} flaky (failed, then passed on a retry: see the report), ",
            summary.flaky
        )
    } else {
        String::new()
    };
    output.push(format!(
        "{} passed, {flaky}{} failed, {} cancelled in {:.1}s; report: {}",
        summary.passed,
        summary.failed,
        summary.cancelled,
        summary.duration.as_secs_f64(),
        report_dir.display()
    ));
    // The last line: the page to open.
    output.push(format!(
        "report: {}",
        report_dir.join(harness_engine::report::HTML_FILE).display()
    ));
    let (code, errors) = match crash {
        Some(crash) => (
            EXIT_BAD_INPUT,
            vec![format!(
                "error: a lab component crashed during the run:\n{crash}"
            )],
        ),
        None if summary.all_passed() => (EXIT_PASSED, vec![]),
        None => (EXIT_FAILED, vec![]),
    };
    E2eOutcome {
        code,
        output,
        errors,
        summary: Some(summary),
    }
}

/// The summary of a shard that has no scenarios.
fn empty_summary(run_id: &str, lab: &str, shard: Option<Shard>) -> RunSummary {
    let now = harness_engine::runner::now_rfc3339();
    RunSummary {
        run_id: run_id.to_string(),
        lab: lab.to_string(),
        argocd_version: "unknown".into(),
        started: now.clone(),
        finished: now,
        duration: std::time::Duration::ZERO,
        passed: 0,
        failed: 0,
        cancelled: 0,
        flaky: 0,
        skipped: 0,
        shard: shard.map(|s| s.to_string()),
        scenarios: vec![],
        report_problems: vec![],
    }
}

/// Runs `scenarios` `repeat` times; after each pass, re-runs the failed
/// ones up to `retries` times. Every pass and retry has its own attempt
/// number, hence its own names (isolation), and its own report folder:
/// `repeat-<k>/` (when repeating) and `retry-<n>/` inside it; the combined
/// report goes to `opts.report_dir`. A scenario that failed and then passed
/// on a retry is `flaky` (its `failure` is the failed attempt's); one that
/// failed every time keeps its last failure. With `repeat > 1` each
/// repetition is reported as `<name>#<k>`.
pub async fn run_attempts(
    lab: std::sync::Arc<dyn harness_engine::lab::Lab>,
    scenarios: Vec<Scenario>,
    opts: &harness_engine::runner::RunOptions,
    retries: u32,
    repeat: u32,
    shard: Option<Shard>,
) -> RunSummary {
    let clock = tokio::time::Instant::now();
    let mut attempt = opts.attempt.max(1) - 1;
    let mut combined: Vec<ScenarioReport> = Vec::new();
    let mut first: Option<RunSummary> = None;
    let mut problems = Vec::new();
    for repetition in 1..=repeat.max(1) {
        attempt += 1;
        let dir = if repeat > 1 {
            opts.report_dir.join(format!("repeat-{repetition}"))
        } else {
            opts.report_dir.clone()
        };
        if repeat > 1 {
            opts.progress.info(format!(
                "repetition {repetition}/{repeat} (attempt {attempt})"
            ));
        }
        let pass = harness_engine::runner::run(
            lab.clone(),
            scenarios.clone(),
            attempt_options(opts, attempt, &dir),
        )
        .await;
        problems.extend(pass.report_problems.iter().cloned());
        let mut results = pass.scenarios.clone();
        for retry in 1..=retries {
            let failed: Vec<String> = results
                .iter()
                .filter(|r| r.status == ScenarioStatus::Failed)
                .map(|r| r.name.clone())
                .collect();
            if failed.is_empty() || opts.cancel.is_cancelled() {
                break;
            }
            attempt += 1;
            opts.progress.info(format!(
                "retry {retry}/{retries} (attempt {attempt}): {}",
                failed.join(", ")
            ));
            let again: Vec<Scenario> = scenarios
                .iter()
                .filter(|s| failed.contains(&s.name))
                .cloned()
                .collect();
            let retried = harness_engine::runner::run(
                lab.clone(),
                again,
                attempt_options(opts, attempt, &dir.join(format!("retry-{retry}"))),
            )
            .await;
            problems.extend(retried.report_problems.iter().cloned());
            for new in retried.scenarios {
                if let Some(old) = results.iter_mut().find(|r| r.name == new.name) {
                    *old = combine_attempts(old, new, retry, attempt);
                }
            }
        }
        if repeat > 1 {
            for report in &mut results {
                report.name = format!("{}#{repetition}", report.name);
            }
        }
        combined.extend(results);
        first.get_or_insert(pass);
    }
    let first = first.unwrap_or_else(|| empty_summary(&opts.run_id, lab.kind(), shard));
    let mut summary = RunSummary {
        finished: harness_engine::runner::now_rfc3339(),
        duration: clock.elapsed(),
        shard: shard.map(|s| s.to_string()),
        scenarios: combined,
        report_problems: problems,
        ..first
    };
    summary.count();
    if let Err(problem) = harness_engine::report::write_reports(&summary, &opts.report_dir) {
        opts.progress.warn(format!(
            "writing the combined reports to {}: {problem}",
            opts.report_dir.display()
        ));
        summary.report_problems.push(problem.to_string());
    }
    summary
}

/// With `--repeat N`: how many of the N repetitions each scenario failed
/// (failed, cancelled or flaky; skipped is not run), worst first, then a total line. A flake found
/// this way is a bug to fix, not a retry to add.
pub fn repeat_tally(summary: &RunSummary, repeat: u32) -> Vec<String> {
    let mut by: std::collections::BTreeMap<&str, (u32, u32)> = std::collections::BTreeMap::new();
    for s in &summary.scenarios {
        let name = s.name.rsplit_once('#').map_or(s.name.as_str(), |(n, _)| n);
        let e = by.entry(name).or_default();
        e.0 += 1;
        if matches!(
            s.status,
            ScenarioStatus::Failed | ScenarioStatus::Cancelled | ScenarioStatus::Flaky
        ) {
            e.1 += 1;
        }
    }
    let mut rows: Vec<(&str, (u32, u32))> = by.into_iter().collect();
    rows.sort_by(|a, b| b.1.1.cmp(&a.1.1).then(a.0.cmp(b.0)));
    let failing: Vec<String> = rows
        .iter()
        .filter(|(_, (_, failed))| *failed > 0)
        .map(|(name, (ran, failed))| format!("  {name}: failed {failed} of {ran}"))
        .collect();
    let total: u32 = rows.iter().map(|(_, (_, f))| f).sum();
    let mut lines = vec![format!(
        "failures by scenario over {repeat} repetitions: {total} failure(s) in {} scenario(s){}",
        failing.len(),
        if failing.is_empty() { "" } else { ":" }
    )];
    lines.extend(failing);
    lines
}

fn attempt_options(
    opts: &harness_engine::runner::RunOptions,
    attempt: u32,
    dir: &Path,
) -> harness_engine::runner::RunOptions {
    let mut options = opts.clone();
    options.attempt = attempt;
    options.report_dir = dir.to_path_buf();
    options
}

/// The report of a scenario after retry `retry` (attempt `attempt`):
/// `flaky` when the retry passed (keeping the failed attempt's failure and
/// diagnostics), else the retry's report; logs and durations add up.
pub fn combine_attempts(
    old: &ScenarioReport,
    new: ScenarioReport,
    retry: u32,
    attempt: u32,
) -> ScenarioReport {
    let mut log = old.log.clone();
    log.push(format!(
        "--- retry {retry} (attempt {attempt}, names suffixed -{}) ---",
        new.suffix
    ));
    log.extend(new.log.iter().cloned());
    let duration = old.duration + new.duration;
    match new.status {
        ScenarioStatus::Passed => {
            log.push(format!(
                "FLAKY: failed, then passed on retry {retry}; the failure is the failed attempt's"
            ));
            ScenarioReport {
                status: ScenarioStatus::Flaky,
                failure: old.failure.clone(),
                diagnostics: old.diagnostics.clone(),
                duration,
                log,
                ..new
            }
        }
        _ => ScenarioReport {
            duration,
            log,
            ..new
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(name: &str, status: ScenarioStatus) -> ScenarioReport {
        ScenarioReport {
            name: name.into(),
            file: PathBuf::from("s.yaml"),
            status,
            suffix: String::new(),
            started: String::new(),
            duration: std::time::Duration::ZERO,
            failure: None,
            skipped: None,
            steps: vec![],
            finally: vec![],
            cleanup_problems: vec![],
            diagnostics: None,
            log: vec![],
        }
    }

    #[test]
    fn repeat_tally_counts_failures_by_scenario_worst_first() {
        let mut summary = empty_summary("r", "local", None);
        for k in 1..=3 {
            summary
                .scenarios
                .push(report(&format!("steady#{k}"), ScenarioStatus::Passed));
            summary.scenarios.push(report(
                &format!("flaky-one#{k}"),
                if k == 2 {
                    ScenarioStatus::Failed
                } else {
                    ScenarioStatus::Passed
                },
            ));
            summary.scenarios.push(report(
                &format!("broken#{k}"),
                if k == 3 {
                    ScenarioStatus::Cancelled
                } else {
                    ScenarioStatus::Failed
                },
            ));
            summary
                .scenarios
                .push(report(&format!("not-here#{k}"), ScenarioStatus::Skipped));
        }
        assert_eq!(
            repeat_tally(&summary, 3),
            vec![
                "failures by scenario over 3 repetitions: 4 failure(s) in 2 scenario(s):",
                "  broken: failed 3 of 3",
                "  flaky-one: failed 1 of 3",
            ]
        );
        summary.scenarios.retain(|s| s.name.starts_with("steady"));
        assert_eq!(
            repeat_tally(&summary, 3),
            vec!["failures by scenario over 3 repetitions: 0 failure(s) in 0 scenario(s)"]
        );
    }
}
