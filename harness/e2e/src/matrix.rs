//! `--argocd-version a,b,c`: the selected scenarios on each Argo CD
//! release, one lab each, in order; every version's report in its own
//! folder, and one scenario × version table (Markdown, `matrix.md`).

use std::path::Path;

use harness_core::progress::Progress;
use harness_engine::runner::{RunSummary, ScenarioStatus};
use harness_scenario::Scenario;

use crate::{E2eOptions, E2eOutcome, EXIT_BAD_INPUT, EXIT_FAILED, EXIT_PASSED, run_on_lab};

/// The `--argocd-matrix` set: the first release with native OCI sources,
/// a v3.1 release after the v3.1.6 layer and symlink changes, the newest
/// v3.2 that builds, and the default (v3.4 and later do not build from the
/// Go module proxy: docs/argocd-versions.md).
pub const DEFAULT_MATRIX: &[&str] = &["v3.1.0", "v3.1.8", "v3.2.11", "v3.3.10"];

/// One cell of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cell {
    Passed,
    /// With the failing step's one-line reason.
    Failed(String),
    /// With why.
    Skipped(String),
    /// The version's lab did not start, or the run was cancelled.
    NotRun(String),
}

impl Cell {
    fn text(&self) -> String {
        let one_line = |s: &str| s.lines().next().unwrap_or_default().replace('|', "\\|");
        match self {
            Cell::Passed => "passed".into(),
            Cell::Failed(why) => format!("failed: {}", one_line(why)),
            Cell::Skipped(why) => format!("skipped: {}", one_line(why)),
            Cell::NotRun(why) => format!("not run: {}", one_line(why)),
        }
    }
}

/// A failure on one line: the step, the first line of its message, and
/// what Argo CD said (the observed condition's words, when there is one).
pub fn failure_line(failure: &harness_engine::outcome::Failure) -> String {
    let first = failure.message.lines().next().unwrap_or_default();
    let argo = failure
        .message
        .lines()
        .find(|l| l.trim_start().starts_with("last observed:"))
        .and_then(|l| l.find("condition ").map(|at| &l[at + "condition ".len()..]))
        .map(
            |condition| match (condition.split_once(':'), condition.rsplit_once("desc = ")) {
                (Some((kind, _)), Some((_, words))) => format!("{kind}: {words}"),
                _ => condition.to_string(),
            },
        );
    let step = if failure.index > 0 {
        format!(
            "{} {} ({}): ",
            if failure.phase == "finally" {
                "finally step"
            } else {
                "step"
            },
            failure.index,
            failure.kind
        )
    } else {
        String::new()
    };
    match argo {
        Some(words) => format!("{step}{first} (Argo CD: {words})"),
        None => format!("{step}{first}"),
    }
}

/// The cells of `summary` (one version's run) for `names`.
pub fn column(names: &[String], summary: Option<&RunSummary>, not_run: &str) -> Vec<Cell> {
    names
        .iter()
        .map(|name| {
            let Some(summary) = summary else {
                return Cell::NotRun(not_run.to_string());
            };
            match summary.scenarios.iter().find(|s| &s.name == name) {
                None => Cell::NotRun(not_run.to_string()),
                Some(s) => match s.status {
                    ScenarioStatus::Passed | ScenarioStatus::Flaky => Cell::Passed,
                    ScenarioStatus::Skipped => Cell::Skipped(s.skipped.clone().unwrap_or_default()),
                    ScenarioStatus::Cancelled => Cell::NotRun("cancelled".into()),
                    ScenarioStatus::Failed => Cell::Failed(
                        s.failure
                            .as_ref()
                            .map(failure_line)
                            .unwrap_or_else(|| "failed".into()),
                    ),
                },
            }
        })
        .collect()
}

/// The Markdown table: a row per scenario, a column per version.
pub fn table(names: &[String], versions: &[String], columns: &[Vec<Cell>]) -> String {
    let mut out = String::from("| scenario |");
    for v in versions {
        out.push_str(&format!(" Argo CD {v} |"));
    }
    out.push_str("\n|---|");
    for _ in versions {
        out.push_str("---|");
    }
    out.push('\n');
    for (row, name) in names.iter().enumerate() {
        out.push_str(&format!("| {name} |"));
        for column in columns {
            out.push_str(&format!(" {} |", column[row].text()));
        }
        out.push('\n');
    }
    out
}

/// Runs the matrix: each version of `opts.argocd_versions` in turn.
pub async fn run(
    opts: &E2eOptions,
    scenarios: Vec<Scenario>,
    run_id: &str,
    report_dir: &Path,
    progress: &Progress,
) -> E2eOutcome {
    let versions = opts.argocd_versions.clone();
    let mut names: Vec<String> = Vec::new();
    let mut columns = Vec::new();
    let mut errors = Vec::new();
    let mut lab_failed = false;
    for (index, version) in versions.iter().enumerate() {
        let dir = report_dir.join(format!("argocd-{version}"));
        if opts.cancel.is_cancelled() {
            columns.push(Err("the run was cancelled".to_string()));
            continue;
        }
        progress.info(format!(
            "matrix {}/{}: Argo CD {version}, report in {}",
            index + 1,
            versions.len(),
            dir.display()
        ));
        let outcome = run_on_lab(
            opts,
            Some(version),
            scenarios.clone(),
            format!("{run_id}-{}", version.replace('.', "-")),
            &dir,
            progress,
        )
        .await;
        errors.extend(outcome.errors.iter().cloned());
        match outcome.summary {
            Some(summary) => {
                // Rows as the runs report them (NAME#K with --repeat).
                for s in &summary.scenarios {
                    if !names.contains(&s.name) {
                        names.push(s.name.clone());
                    }
                }
                columns.push(Ok(summary));
            }
            None => {
                lab_failed = true;
                let why = outcome
                    .errors
                    .first()
                    .cloned()
                    .unwrap_or_else(|| "the lab did not start".into());
                columns.push(Err(why));
            }
        }
    }
    if names.is_empty() {
        names = scenarios.iter().map(|s| s.name.clone()).collect();
    }
    let cells: Vec<Vec<Cell>> = columns
        .iter()
        .map(|c| match c {
            Ok(summary) => column(&names, Some(summary), "not in this run"),
            Err(why) => column(&names, None, why),
        })
        .collect();
    let markdown = table(&names, &versions, &cells);
    let file = report_dir.join("matrix.md");
    let written = std::fs::create_dir_all(report_dir).and_then(|()| {
        std::fs::write(
            &file,
            format!("# Scenarios × Argo CD releases\n\n{markdown}"),
        )
    });
    if let Err(e) = written {
        errors.push(format!("error: writing {}: {e}", file.display()));
    }
    let failed = cells.iter().flatten().any(|c| matches!(c, Cell::Failed(_)));
    let mut output: Vec<String> = markdown.lines().map(str::to_string).collect();
    let count = |pred: fn(&Cell) -> bool| cells.iter().flatten().filter(|c| pred(c)).count();
    output.push(format!(
        "{} cell(s): {} passed, {} failed, {} skipped, {} not run; table: {}",
        names.len() * versions.len(),
        count(|c| matches!(c, Cell::Passed)),
        count(|c| matches!(c, Cell::Failed(_))),
        count(|c| matches!(c, Cell::Skipped(_))),
        count(|c| matches!(c, Cell::NotRun(_))),
        file.display()
    ));
    let code = if lab_failed {
        EXIT_BAD_INPUT
    } else if failed {
        EXIT_FAILED
    } else {
        EXIT_PASSED
    };
    E2eOutcome {
        code,
        output,
        errors,
        summary: None,
    }
}
