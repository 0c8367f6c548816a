//! `cargo xtask bisect FILE --good V1 --bad V2`: the Argo CD release where a
//! scenario's outcome changes, by binary search over the releases between
//! the two (the version table's, or `--releases`), one lab per release
//! tried.

use std::path::PathBuf;

use harness_core::progress::Progress;
use harness_engine::runner::{RunSummary, ScenarioStatus};
use harness_labs::LabKind;
use harness_labs::existing::ExistingLabConfig;
use harness_tools::versions::{self, Build};

use crate::{E2eOptions, E2eOutcome, EXIT_PASSED, run_on_lab};

#[derive(Debug, Clone)]
pub struct BisectOptions {
    pub file: PathBuf,
    pub good: String,
    pub bad: String,
    /// Candidates instead of every release between `good` and `bad`.
    pub releases: Vec<String>,
    pub lab: LabKind,
    pub report_dir: Option<PathBuf>,
    pub cancel: tokio_util::sync::CancellationToken,
}

/// What one release did with the scenario.
#[derive(Debug, Clone)]
enum Verdict {
    Good,
    /// The failing step's one-line reason.
    Bad(String),
}

fn verdict(summary: &RunSummary) -> Result<Verdict, String> {
    let scenario = summary
        .scenarios
        .first()
        .ok_or_else(|| "the run reported no scenario".to_string())?;
    match scenario.status {
        ScenarioStatus::Passed | ScenarioStatus::Flaky => Ok(Verdict::Good),
        ScenarioStatus::Failed => Ok(Verdict::Bad(
            scenario
                .failure
                .as_ref()
                .map(crate::matrix::failure_line)
                .unwrap_or_else(|| "failed".into()),
        )),
        ScenarioStatus::Skipped => Err(format!(
            "the scenario was skipped ({}): bisect needs it to run on every release it tries",
            scenario.skipped.clone().unwrap_or_default()
        )),
        ScenarioStatus::Cancelled => Err("cancelled".into()),
    }
}

/// `cargo xtask bisect`: what to print and the exit code (0 found, 1 the
/// endpoints do not behave as given, 2 bad input or a lab failure).
pub async fn run(opts: BisectOptions, progress: &Progress) -> E2eOutcome {
    let scenario = match harness_scenario::load_file(&opts.file) {
        Ok(s) => s,
        Err(diagnostics) => {
            let mut errors: Vec<String> = diagnostics.iter().map(|d| d.to_string()).collect();
            errors.push("the scenario file has errors; nothing was run".into());
            return E2eOutcome::bad_input(errors);
        }
    };
    if opts.lab == LabKind::Existing {
        return E2eOutcome::bad_input(vec![
            "error: bisect starts a lab per release: use --lab local or --lab kind".into(),
        ]);
    }
    let release = |v: &str| versions::argocd_release(v).map(|r| r.version);
    let (good, bad) = match (release(&opts.good), release(&opts.bad)) {
        (Ok(g), Ok(b)) if g != b => (g, b),
        (Ok(_), Ok(_)) => {
            return E2eOutcome::bad_input(vec![
                "error: --good and --bad are the same release".into(),
            ]);
        }
        (Err(e), _) => return E2eOutcome::bad_input(vec![format!("error: --good: {e}")]),
        (_, Err(e)) => return E2eOutcome::bad_input(vec![format!("error: --bad: {e}")]),
    };
    let position = |v: &str| {
        versions::ARGOCD_RELEASES
            .iter()
            .position(|r| r.version == v)
    };
    let (g, b) = (position(good).unwrap_or(0), position(bad).unwrap_or(0));
    let (low, high) = (g.min(b), g.max(b));
    let mut candidates: Vec<&'static str> = Vec::new();
    for (i, r) in versions::ARGOCD_RELEASES.iter().enumerate() {
        let listed = opts.releases.is_empty()
            || opts
                .releases
                .iter()
                .any(|v| release(v).is_ok_and(|x| x == r.version));
        if (low..=high).contains(&i)
            && !matches!(r.build, Build::Fails(_))
            && (listed || r.version == good || r.version == bad)
        {
            candidates.push(r.version);
        }
    }
    for v in &opts.releases {
        if let Err(e) = release(v) {
            return E2eOutcome::bad_input(vec![format!("error: --releases: {e}")]);
        }
    }
    // Oldest first; `good_first` says which end passes.
    let good_first = g < b;
    let run_id = harness_engine::runner::new_run_id();
    let report_root = opts
        .report_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from("target/bisect").join(&run_id));
    harness_core::log::run_folder(&report_root);
    progress.info(format!(
        "bisect {}: {} candidate release(s) from {} to {}: {}",
        scenario.name,
        candidates.len(),
        candidates.first().copied().unwrap_or_default(),
        candidates.last().copied().unwrap_or_default(),
        candidates.join(", ")
    ));

    let e2e = E2eOptions {
        paths: vec![opts.file.clone()],
        lab: opts.lab,
        report_dir: None,
        keep: false,
        reuse: false,
        select: vec![],
        jobs: 1,
        names: vec![],
        shard: None,
        retries: 0,
        repeat: 1,
        existing: ExistingLabConfig::default(),
        cancel: opts.cancel.clone(),
        build_images: false,
        kind_config: None,
        argocd_versions: vec![],
        registry: Default::default(),
    };
    let mut tried: Vec<(String, Result<Verdict, String>)> = Vec::new();
    let try_release =
        async |version: &'static str, tried: &mut Vec<(String, Result<Verdict, String>)>| {
            if let Some((_, v)) = tried.iter().find(|(t, _)| t == version) {
                return v.clone();
            }
            let dir = report_root.join(format!("argocd-{version}"));
            let outcome = run_on_lab(
                &e2e,
                Some(version),
                vec![scenario.clone()],
                format!("{run_id}-{}", version.replace('.', "-")),
                &dir,
                progress,
            )
            .await;
            let result = match &outcome.summary {
                Some(summary) => verdict(summary),
                None => Err(outcome
                    .errors
                    .first()
                    .cloned()
                    .unwrap_or_else(|| "the lab did not start".into())),
            };
            progress.info(format!(
                "bisect: Argo CD {version}: {}",
                match &result {
                    Ok(Verdict::Good) => "good (passed)".to_string(),
                    Ok(Verdict::Bad(why)) => format!("bad ({why})"),
                    Err(e) => format!("could not be tried: {e}"),
                }
            ));
            tried.push((version.to_string(), result.clone()));
            result
        };

    // The endpoints must behave as given.
    for (version, want_good) in [(good, true), (bad, false)] {
        match try_release(version, &mut tried).await {
            Ok(Verdict::Good) if want_good => {}
            Ok(Verdict::Bad(_)) if !want_good => {}
            Ok(other) => {
                return E2eOutcome {
                    code: 1,
                    output: vec![format!(
                        "{version} was given as {} but the scenario {} there: nothing to bisect",
                        if want_good { "good" } else { "bad" },
                        match other {
                            Verdict::Good => "passed".to_string(),
                            Verdict::Bad(why) => format!("failed ({why})"),
                        }
                    )],
                    errors: vec![],
                    summary: None,
                };
            }
            Err(e) => {
                return E2eOutcome::bad_input(vec![format!("error: Argo CD {version}: {e}")]);
            }
        }
    }
    // Binary search for the boundary: `lo` behaves like the oldest end,
    // `hi` like the newest; releases that cannot be tried are dropped.
    let mut list = candidates.clone();
    let (mut lo, mut hi) = (0usize, list.len() - 1);
    let old_is_good = good_first;
    while hi - lo > 1 {
        if opts.cancel.is_cancelled() {
            return E2eOutcome::bad_input(vec!["interrupted".into()]);
        }
        let mid = lo + (hi - lo) / 2;
        match try_release(list[mid], &mut tried).await {
            Ok(v) => {
                let is_good = matches!(v, Verdict::Good);
                if is_good == old_is_good {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            Err(_) => {
                list.remove(mid);
                hi -= 1;
            }
        }
    }
    let (before, after) = (list[lo], list[hi]);
    let outcome_of = |v: &str| -> String {
        match tried.iter().find(|(t, _)| t == v).map(|(_, r)| r) {
            Some(Ok(Verdict::Good)) => "passed".into(),
            Some(Ok(Verdict::Bad(why))) => format!("failed at {why}"),
            Some(Err(e)) => format!("not tried: {e}"),
            None => "not tried".into(),
        }
    };
    let headline = if old_is_good {
        format!("first bad release: Argo CD {after} (the last good one before it: {before})")
    } else {
        format!(
            "first good release: Argo CD {after} (fixed there; the last bad one before it: {before})"
        )
    };
    let mut output = vec![headline];
    output.push(format!("  {before}: {}", outcome_of(before)));
    output.push(format!("  {after}: {}", outcome_of(after)));
    let skipped: Vec<&str> = candidates
        .iter()
        .filter(|c| !list.contains(c))
        .copied()
        .collect();
    if !skipped.is_empty() {
        output.push(format!(
            "  could not be tried (so the change may be in any of these too): {}",
            skipped.join(", ")
        ));
    }
    output.push(format!(
        "  tried {} release(s); reports under {}",
        tried.len(),
        report_root.display()
    ));
    E2eOutcome {
        code: EXIT_PASSED,
        output,
        errors: vec![],
        summary: None,
    }
}
