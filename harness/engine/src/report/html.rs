//! `report.html`: one self-contained page of a run, to look at rather than
//! read. The run's lab, Argo CD version and totals; per scenario a timeline
//! of its steps (a bar per step, placed at its start and as wide as its
//! duration), each step's outcome, message and digests; for a failure the
//! expected-vs-observed diff and, folded, what the diagnostics folder holds
//! (the Applications' status and conditions, the registry's tags and
//! digests, events, component log tails).
//!
//! No network and no script: inline CSS, `<details>` for folding. Every
//! piece of text from a run (names, messages, diffs, logs) goes through
//! [`esc`]. Stable hooks for tools and tests: `data-status` on the run and
//! each scenario, `data-outcome`, `data-phase` and `data-index` on each
//! step, `class="diff"` on a diff.

use std::collections::BTreeMap;
use std::fmt::{self, Display, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::outcome::{RunSummary, ScenarioReport, ScenarioStatus, StepRecord, StepStatus};

/// Writing into a `String` cannot fail; this keeps the page code free of
/// results that are never errors.
macro_rules! w {
    ($out:expr, $($arg:tt)*) => {{
        let _ = write!($out, $($arg)*);
    }};
}

/// Text made safe for HTML element content and quoted attribute values.
pub struct Escaped<'a>(&'a str);

impl Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        while let Some(at) = rest.find(['&', '<', '>', '"', '\'']) {
            f.write_str(&rest[..at])?;
            f.write_str(match rest.as_bytes()[at] {
                b'&' => "&amp;",
                b'<' => "&lt;",
                b'>' => "&gt;",
                b'"' => "&quot;",
                _ => "&#39;",
            })?;
            rest = &rest[at + 1..];
        }
        f.write_str(rest)
    }
}

/// The one escape function of the page: every text of a run goes through it.
pub fn esc(text: &str) -> Escaped<'_> {
    Escaped(text)
}

/// What a failed scenario's diagnostics folder holds (see
/// [`crate::diagnostics`]), read back for the page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiagnosticsFiles {
    /// `applications.yaml`.
    pub applications: Option<String>,
    /// `registry.txt`: tag -> digest per repository.
    pub registry: Option<String>,
    /// `events.txt`.
    pub events: Option<String>,
    /// `logs/<component>.log`, by component, sorted.
    pub logs: Vec<(String, String)>,
    /// `problems.txt`: what could not be collected.
    pub problems: Option<String>,
    /// Files that were there but could not be read.
    pub unreadable: Vec<String>,
}

impl DiagnosticsFiles {
    /// Reads `dir`; `None` when it is not there (a report moved without it).
    pub fn read(dir: &Path) -> Option<DiagnosticsFiles> {
        if !dir.is_dir() {
            return None;
        }
        let mut files = DiagnosticsFiles::default();
        let read = |name: &str, unreadable: &mut Vec<String>| {
            let path = dir.join(name);
            match std::fs::read(&path) {
                Ok(bytes) => Some(String::from_utf8_lossy(&bytes).into_owned()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => {
                    unreadable.push(format!("{}: {e}", path.display()));
                    None
                }
            }
        };
        let mut unreadable = Vec::new();
        files.applications = read("applications.yaml", &mut unreadable);
        files.registry = read("registry.txt", &mut unreadable);
        files.events = read("events.txt", &mut unreadable);
        files.problems = read("problems.txt", &mut unreadable);
        if let Ok(entries) = std::fs::read_dir(dir.join("logs")) {
            let mut names: Vec<String> = entries
                .flatten()
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| n.ends_with(".log"))
                .collect();
            names.sort();
            for name in names {
                if let Some(text) = read(&format!("logs/{name}"), &mut unreadable) {
                    let component = name.trim_end_matches(".log").to_string();
                    files.logs.push((component, text));
                }
            }
        }
        files.unreadable = unreadable;
        Some(files)
    }
}

/// The diagnostics folders `summary` names, read (those not found are left out).
pub fn read_diagnostics(summary: &RunSummary) -> BTreeMap<PathBuf, DiagnosticsFiles> {
    summary
        .scenarios
        .iter()
        .filter_map(|s| s.diagnostics.as_ref())
        .filter_map(|dir| DiagnosticsFiles::read(dir).map(|files| (dir.clone(), files)))
        .collect()
}

/// The page of `summary`; `diagnostics` holds what the scenarios'
/// diagnostics folders contain, by folder.
pub fn html_report(
    summary: &RunSummary,
    diagnostics: &BTreeMap<PathBuf, DiagnosticsFiles>,
) -> String {
    let mut out = String::with_capacity(16 * 1024);
    let status = if summary.all_passed() {
        "passed"
    } else {
        "failed"
    };
    w!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>oci-e2e {}: {} passed, {} failed</title>\n<style>\n{STYLE}</style>\n</head>\n",
        esc(&summary.run_id),
        summary.passed,
        summary.failed
    );
    out.push_str("<body>\n");
    header(&mut out, summary, status);
    overview(&mut out, summary);
    out.push_str("<main>\n");
    for (index, scenario) in summary.scenarios.iter().enumerate() {
        let files = scenario
            .diagnostics
            .as_ref()
            .and_then(|dir| diagnostics.get(dir));
        scenario_section(&mut out, index, scenario, files);
    }
    out.push_str("</main>\n</body>\n</html>\n");
    out
}

fn header(out: &mut String, summary: &RunSummary, status: &str) {
    w!(
        out,
        "<header id=\"run\" data-status=\"{status}\">\n<h1>oci-e2e run <code>{}</code> \
         <span class=\"pill\" data-status=\"{status}\">{status}</span></h1>\n<dl class=\"facts\">\n",
        esc(&summary.run_id)
    );
    let mut fact = |name: &str, value: &str| {
        w!(out, "<dt>{}</dt><dd>{}</dd>\n", esc(name), esc(value));
    };
    fact("lab", &summary.lab);
    fact("Argo CD", &summary.argocd_version);
    fact("started", &summary.started);
    fact("finished", &summary.finished);
    fact("duration", &human(summary.duration));
    if let Some(shard) = &summary.shard {
        fact("shard", shard);
    }
    out.push_str("</dl>\n<ul class=\"totals\">\n");
    let totals = [
        ("passed", summary.passed),
        ("failed", summary.failed),
        ("cancelled", summary.cancelled),
        ("flaky", summary.flaky),
        ("skipped", summary.skipped),
    ];
    for (name, count) in totals {
        if count > 0 || matches!(name, "passed" | "failed") {
            w!(
                out,
                "<li class=\"pill\" data-status=\"{name}\" data-count=\"{count}\">{count} {name}</li>\n"
            );
        }
    }
    out.push_str("</ul>\n");
    if !summary.report_problems.is_empty() {
        out.push_str("<div class=\"problems\"><h2>Problems writing the reports</h2><ul>\n");
        for problem in &summary.report_problems {
            w!(out, "<li>{}</li>\n", esc(problem));
        }
        out.push_str("</ul></div>\n");
    }
    out.push_str("</header>\n");
}

/// The table of scenarios at the top, each linking to its section.
fn overview(out: &mut String, summary: &RunSummary) {
    if summary.scenarios.is_empty() {
        out.push_str("<p class=\"note\">No scenario ran.</p>\n");
        return;
    }
    out.push_str(
        "<nav>\n<table class=\"overview\">\n<thead><tr><th>scenario</th><th>status</th>\
         <th>duration</th><th>what happened</th></tr></thead>\n<tbody>\n",
    );
    for (index, scenario) in summary.scenarios.iter().enumerate() {
        let status = scenario_status(scenario.status);
        let what = scenario
            .failure
            .as_ref()
            .map(|f| first_line(&f.headline()).to_string())
            .or_else(|| scenario.skipped.clone())
            .unwrap_or_default();
        w!(
            out,
            "<tr data-status=\"{status}\"><td><a href=\"#scenario-{index}\">{}</a></td>\
             <td><span class=\"pill\" data-status=\"{status}\">{status}</span></td>\
             <td class=\"num\">{}</td><td>{}</td></tr>\n",
            esc(&scenario.name),
            human(scenario.duration),
            esc(&what)
        );
    }
    out.push_str("</tbody>\n</table>\n</nav>\n");
}

fn scenario_section(
    out: &mut String,
    index: usize,
    scenario: &ScenarioReport,
    files: Option<&DiagnosticsFiles>,
) {
    let status = scenario_status(scenario.status);
    w!(
        out,
        "<section class=\"scenario\" id=\"scenario-{index}\" data-scenario=\"{}\" data-status=\"{status}\">\n\
         <h2>{} <span class=\"pill\" data-status=\"{status}\">{status}</span></h2>\n\
         <p class=\"meta\"><code>{}</code> · names suffixed <code>-{}</code>",
        esc(&scenario.name),
        esc(&scenario.name),
        esc(&scenario.file.display().to_string()),
        esc(&scenario.suffix)
    );
    if !scenario.started.is_empty() {
        w!(out, " · started {}", esc(&scenario.started));
    }
    w!(out, " · {}</p>\n", human(scenario.duration));
    if let Some(failure) = &scenario.failure {
        let label = if scenario.status == ScenarioStatus::Flaky {
            "failed attempt"
        } else {
            "failure"
        };
        w!(
            out,
            "<p class=\"failure\"><strong>{label}:</strong> {}</p>\n",
            esc(first_line(&failure.headline()))
        );
    }
    if let Some(why) = &scenario.skipped {
        w!(out, "<p class=\"note\">not run: {}</p>\n", esc(why));
    }

    let scale = timeline_scale(scenario);
    for (phase, steps) in [("steps", &scenario.steps), ("finally", &scenario.finally)] {
        if steps.is_empty() {
            continue;
        }
        w!(
            out,
            "<h3>{phase}</h3>\n<ol class=\"timeline\" data-phase=\"{phase}\">\n"
        );
        for (step, left) in steps.iter().zip(placements(steps, scenario, phase)) {
            step_item(out, index, phase, step, left, scale);
        }
        out.push_str("</ol>\n");
    }

    if !scenario.cleanup_problems.is_empty() {
        out.push_str("<div class=\"problems\"><h3>Cleanup problems</h3><ul>\n");
        for problem in &scenario.cleanup_problems {
            w!(out, "<li>{}</li>\n", esc(problem));
        }
        out.push_str("</ul></div>\n");
    }
    if let Some(dir) = &scenario.diagnostics {
        diagnostics_block(out, dir, files);
    }
    if !scenario.log.is_empty() {
        w!(
            out,
            "<details class=\"log\"><summary>step log ({} lines)</summary><pre>{}</pre></details>\n",
            scenario.log.len(),
            esc(&scenario.log.join("\n"))
        );
    }
    out.push_str("</section>\n");
}

/// The length of a scenario's timeline: its duration, or the end of its
/// last step when that is later (a report put together from attempts).
fn timeline_scale(scenario: &ScenarioReport) -> Duration {
    let mut end = Duration::ZERO;
    let mut cumulative = Duration::ZERO;
    for step in scenario.steps.iter().chain(&scenario.finally) {
        cumulative += step.duration;
        end = end.max(step.started_after.unwrap_or(cumulative - step.duration) + step.duration);
    }
    end.max(scenario.duration)
}

/// Each step's start on the timeline: where it started, or (for a report
/// without start times) after the steps before it.
fn placements(steps: &[StepRecord], scenario: &ScenarioReport, phase: &str) -> Vec<Duration> {
    let mut cursor = if phase == "finally" {
        scenario.steps.iter().map(|s| s.duration).sum()
    } else {
        Duration::ZERO
    };
    steps
        .iter()
        .map(|step| {
            let left = step.started_after.unwrap_or(cursor);
            cursor = left + step.duration;
            left
        })
        .collect()
}

fn percent(part: Duration, whole: Duration) -> f64 {
    if whole.is_zero() {
        0.0
    } else {
        (part.as_secs_f64() / whole.as_secs_f64() * 100.0).clamp(0.0, 100.0)
    }
}

fn step_item(
    out: &mut String,
    scenario: usize,
    phase: &str,
    step: &StepRecord,
    left: Duration,
    scale: Duration,
) {
    let outcome = step_status(step.outcome);
    let ran = step.started_after.is_some() || step.outcome != StepStatus::Skipped;
    w!(
        out,
        "<li class=\"step\" id=\"scenario-{scenario}-{phase}-{}\" data-phase=\"{phase}\" \
         data-index=\"{}\" data-outcome=\"{outcome}\">\n<div class=\"row\">\
         <span class=\"index\">{}</span><span class=\"kind\">{}</span>\
         <span class=\"description\">{}<br><small>{}</small></span>\
         <span class=\"track\">",
        step.index,
        step.index,
        step.index,
        esc(&step.kind),
        esc(&step.description),
        esc(&step.location.to_string()),
    );
    if ran {
        let start = percent(left, scale);
        let width = percent(step.duration, scale).min(100.0 - start);
        w!(
            out,
            "<span class=\"bar\" data-outcome=\"{outcome}\" style=\"left:{start:.2}%;width:{width:.2}%\"></span>"
        );
    }
    w!(
        out,
        "</span><span class=\"duration\">{}</span>\
         <span class=\"pill\" data-status=\"{outcome}\">{}</span></div>\n",
        if ran {
            human(step.duration)
        } else {
            "–".to_string()
        },
        outcome_label(step.outcome)
    );
    message_block(out, step);
    if !step.digests.is_empty() {
        out.push_str(
            "<table class=\"digests\"><thead><tr><th>repository</th><th>digest</th>\
             <th>tags</th><th>as</th><th>blobs uploaded / skipped</th></tr></thead><tbody>\n",
        );
        for digest in &step.digests {
            let blobs = match (digest.blobs_uploaded, digest.blobs_skipped) {
                (None, None) => String::new(),
                (up, skip) => format!(
                    "{} / {}",
                    up.map(|n| n.to_string()).unwrap_or_else(|| "–".into()),
                    skip.map(|n| n.to_string()).unwrap_or_else(|| "–".into())
                ),
            };
            w!(
                out,
                "<tr><td><code>{}</code></td><td><code class=\"digest\">{}</code></td>\
                 <td>{}</td><td>{}</td><td class=\"num\">{}</td></tr>\n",
                esc(&digest.repository),
                esc(&digest.digest),
                esc(&digest.tags.join(", ")),
                esc(digest.binding.as_deref().unwrap_or("")),
                blobs
            );
        }
        out.push_str("</tbody></table>\n");
    }
    if let Some(observed) = &step.observed {
        let text = serde_json::to_string_pretty(observed).unwrap_or_else(|e| e.to_string());
        let open = if failed(step.outcome) { " open" } else { "" };
        w!(
            out,
            "<details class=\"observed\"{open}><summary>observed</summary><pre>{}</pre></details>\n",
            esc(&text)
        );
    }
    out.push_str("</li>\n");
}

/// The step's message: its first line; the rest of it (what failed) as
/// text, and a unified diff (`--- expected` / `+++ observed`) as a
/// coloured diff.
fn message_block(out: &mut String, step: &StepRecord) {
    let message = step.message.trim_end();
    if message.is_empty() {
        return;
    }
    let (text, diff) = split_diff(message);
    if !failed(step.outcome) && !text.contains('\n') && diff.is_none() {
        w!(out, "<p class=\"message\">{}</p>\n", esc(text));
        return;
    }
    w!(out, "<pre class=\"message\">{}</pre>\n", esc(text));
    if let Some(diff) = diff {
        out.push_str("<div class=\"diff-title\">expected vs observed</div>\n<pre class=\"diff\">");
        for line in diff.lines() {
            let class = if line.starts_with("---") || line.starts_with("+++") {
                "head"
            } else if line.starts_with("@@") {
                "hunk"
            } else if line.starts_with('-') {
                "del"
            } else if line.starts_with('+') {
                "add"
            } else {
                "same"
            };
            w!(out, "<span class=\"{class}\">{}</span>\n", esc(line));
        }
        out.push_str("</pre>\n");
    }
}

/// A message and the unified diff the matcher appends to it, if any.
fn split_diff(message: &str) -> (&str, Option<&str>) {
    let starts = message.match_indices("--- expected").find(|(at, _)| {
        (*at == 0 || message.as_bytes()[at - 1] == b'\n')
            && message[*at..]
                .lines()
                .nth(1)
                .is_some_and(|l| l.starts_with("+++ observed"))
    });
    match starts {
        Some((at, _)) => (message[..at].trim_end(), Some(&message[at..])),
        None => (message, None),
    }
}

fn diagnostics_block(out: &mut String, dir: &Path, files: Option<&DiagnosticsFiles>) {
    w!(
        out,
        "<div class=\"diagnostics\">\n<h3>Diagnostics <small><code>{}</code></small></h3>\n",
        esc(&dir.display().to_string())
    );
    let Some(files) = files else {
        out.push_str("<p class=\"note\">The diagnostics folder was not found when this page was written.</p>\n</div>\n");
        return;
    };
    if let Some(yaml) = &files.applications {
        applications_table(out, yaml);
        fold(
            out,
            "applications.yaml",
            "Applications (applications.yaml)",
            yaml,
        );
    }
    if let Some(text) = &files.registry {
        fold(
            out,
            "registry",
            "the registry: tags and digests (registry.txt)",
            text,
        );
    }
    if let Some(text) = &files.events {
        fold(out, "events", "events (events.txt)", text);
    }
    for (component, tail) in &files.logs {
        let title = format!("log tail: {component} ({} lines)", tail.lines().count());
        fold(out, "log-tail", &title, tail);
    }
    if let Some(text) = &files.problems {
        fold(
            out,
            "problems",
            "what could not be collected (problems.txt)",
            text,
        );
    }
    for problem in &files.unreadable {
        w!(out, "<p class=\"note\">unreadable: {}</p>\n", esc(problem));
    }
    out.push_str("</div>\n");
}

fn fold(out: &mut String, class: &str, title: &str, text: &str) {
    w!(
        out,
        "<details class=\"{class}\"><summary>{}</summary><pre>{}</pre></details>\n",
        esc(title),
        esc(text.trim_end())
    );
}

/// Each Application's sync, health, revision, operation and conditions.
fn applications_table(out: &mut String, yaml: &str) {
    let Ok(documents) = harness_scenario::yaml::documents(yaml) else {
        out.push_str("<p class=\"note\">applications.yaml does not parse; it is shown as written below.</p>\n");
        return;
    };
    let apps: Vec<&Value> = documents.iter().filter(|d| d.is_object()).collect();
    if apps.is_empty() {
        out.push_str("<p class=\"note\">No Applications were found.</p>\n");
        return;
    }
    out.push_str(
        "<table class=\"applications\"><thead><tr><th>Application</th><th>sync</th>\
         <th>health</th><th>revision</th><th>operation</th><th>conditions</th></tr></thead><tbody>\n",
    );
    let text = |app: &Value, pointer: &str| -> String {
        app.pointer(pointer)
            .map(|v| match v {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            })
            .unwrap_or_default()
    };
    for app in apps {
        let revision = match app.pointer("/status/sync/revisions") {
            Some(Value::Array(list)) => list
                .iter()
                .map(|v| v.as_str().unwrap_or_default())
                .collect::<Vec<_>>()
                .join(", "),
            _ => text(app, "/status/sync/revision"),
        };
        let health = [
            text(app, "/status/health/status"),
            text(app, "/status/health/message"),
        ]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(": ");
        let operation = [
            text(app, "/status/operationState/phase"),
            text(app, "/status/operationState/message"),
        ]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(": ");
        w!(
            out,
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td><code class=\"digest\">{}</code></td><td>{}</td><td>",
            esc(&text(app, "/metadata/name")),
            esc(&text(app, "/status/sync/status")),
            esc(&health),
            esc(&revision),
            esc(&operation)
        );
        if let Some(Value::Array(conditions)) = app.pointer("/status/conditions") {
            out.push_str("<ul class=\"conditions\">");
            for condition in conditions {
                w!(
                    out,
                    "<li><strong>{}</strong>: {}</li>",
                    esc(&text(condition, "/type")),
                    esc(&text(condition, "/message"))
                );
            }
            out.push_str("</ul>");
        }
        out.push_str("</td></tr>\n");
    }
    out.push_str("</tbody></table>\n");
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}

fn failed(outcome: StepStatus) -> bool {
    matches!(
        outcome,
        StepStatus::Failed | StepStatus::TimedOut | StepStatus::Cancelled
    )
}

fn scenario_status(status: ScenarioStatus) -> &'static str {
    match status {
        ScenarioStatus::Passed => "passed",
        ScenarioStatus::Failed => "failed",
        ScenarioStatus::Cancelled => "cancelled",
        ScenarioStatus::Flaky => "flaky",
        ScenarioStatus::Skipped => "skipped",
    }
}

fn step_status(status: StepStatus) -> &'static str {
    match status {
        StepStatus::Passed => "passed",
        StepStatus::Failed => "failed",
        StepStatus::TimedOut => "timedOut",
        StepStatus::Cancelled => "cancelled",
        StepStatus::Skipped => "skipped",
    }
}

fn outcome_label(status: StepStatus) -> &'static str {
    match status {
        StepStatus::TimedOut => "timed out",
        other => step_status(other),
    }
}

/// `850 ms`, `12.3 s`, `2 m 05 s`.
fn human(duration: Duration) -> String {
    let millis = duration.as_millis();
    if millis < 1000 {
        format!("{millis} ms")
    } else if millis < 60_000 {
        format!("{:.1} s", duration.as_secs_f64())
    } else {
        let secs = duration.as_secs();
        format!("{} m {:02} s", secs / 60, secs % 60)
    }
}

const STYLE: &str = r#":root { --passed: #1a7f37; --failed: #cf222e; --timedOut: #bc4c00; --cancelled: #6e7781; --skipped: #8c959f; --flaky: #9a6700; --line: #d0d7de; --soft: #f6f8fa; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1f2328; background: #fff; margin: 0 auto; padding: 1.5rem 2rem 3rem; max-width: 1280px; }
h1 { font-size: 1.5rem; margin: 0 0 .5rem; }
h2 { font-size: 1.2rem; margin: 0 0 .25rem; }
h3 { font-size: 1rem; margin: 1rem 0 .4rem; color: #57606a; }
code, pre { font: 12.5px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
pre { background: var(--soft); border: 1px solid var(--line); border-radius: 6px; padding: .5rem .75rem; margin: .4rem 0; overflow: auto; max-height: 36em; white-space: pre-wrap; word-break: break-word; }
a { color: #0969da; }
.pill { display: inline-block; padding: 0 .55em; border-radius: 1em; font-size: 12px; font-weight: 600; color: #fff; background: var(--skipped); vertical-align: middle; white-space: nowrap; }
.pill[data-status="passed"] { background: var(--passed); }
.pill[data-status="failed"] { background: var(--failed); }
.pill[data-status="timedOut"] { background: var(--timedOut); }
.pill[data-status="cancelled"] { background: var(--cancelled); }
.pill[data-status="flaky"] { background: var(--flaky); }
.facts { display: grid; grid-template-columns: max-content 1fr; gap: .1rem 1rem; margin: .5rem 0; }
.facts dt { color: #57606a; }
.facts dd { margin: 0; }
.totals { list-style: none; padding: 0; display: flex; gap: .5rem; font-size: 15px; }
.totals .pill { font-size: 14px; padding: .15em .8em; }
table { border-collapse: collapse; width: 100%; margin: .4rem 0; }
th, td { text-align: left; border-bottom: 1px solid var(--line); padding: .3rem .5rem; vertical-align: top; }
th { font-weight: 600; color: #57606a; background: var(--soft); }
td.num { text-align: right; white-space: nowrap; }
.overview { margin: 1rem 0 1.5rem; }
.scenario { border: 1px solid var(--line); border-left: 6px solid var(--skipped); border-radius: 6px; padding: .9rem 1.1rem; margin: 1rem 0; }
.scenario[data-status="passed"] { border-left-color: var(--passed); }
.scenario[data-status="failed"] { border-left-color: var(--failed); }
.scenario[data-status="cancelled"] { border-left-color: var(--cancelled); }
.scenario[data-status="flaky"] { border-left-color: var(--flaky); }
.meta { color: #57606a; margin: 0 0 .5rem; }
.failure { background: #ffebe9; border: 1px solid #ff818266; border-radius: 6px; padding: .4rem .7rem; }
.note { color: #57606a; font-style: italic; }
.timeline { list-style: none; padding: 0; margin: 0; }
.step { border-top: 1px solid var(--line); padding: .35rem 0; }
.step[data-outcome="failed"], .step[data-outcome="timedOut"] { background: #fff8f7; }
.step[data-outcome="skipped"] { color: #8c959f; }
.row { display: grid; grid-template-columns: 2rem 4.5rem minmax(12rem, 2fr) 3fr 5rem 6rem; gap: .6rem; align-items: center; }
.index { color: #57606a; text-align: right; }
.kind { font-weight: 600; }
.description small { color: #57606a; }
.track { position: relative; height: 14px; background: var(--soft); border: 1px solid var(--line); border-radius: 3px; }
.bar { position: absolute; top: 0; bottom: 0; min-width: 2px; border-radius: 2px; background: var(--skipped); }
.bar[data-outcome="passed"] { background: var(--passed); }
.bar[data-outcome="failed"] { background: var(--failed); }
.bar[data-outcome="timedOut"] { background: var(--timedOut); }
.bar[data-outcome="cancelled"] { background: var(--cancelled); }
.duration { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.step .message, .step .diff, .step .diff-title, .step details, .step .digests { margin-left: 7.1rem; width: auto; }
p.message { margin: .2rem 0 0 7.1rem; color: #57606a; }
.diff-title { font-weight: 600; color: #57606a; margin-top: .3rem; }
.diff span { display: inline-block; min-width: 100%; }
.diff .add { background: #dafbe1; }
.diff .del { background: #ffebe9; }
.diff .hunk { color: #8250df; }
.diff .head { color: #57606a; font-weight: 600; }
.digests { font-size: 12.5px; }
.digest { word-break: break-all; }
details { margin: .3rem 0; }
summary { cursor: pointer; color: #0969da; }
.diagnostics { margin-top: 1rem; border-top: 2px dashed var(--line); padding-top: .2rem; }
.conditions { margin: 0; padding-left: 1.1rem; }
.problems { background: #fff8c5; border: 1px solid #d4a72c66; border-radius: 6px; padding: .2rem .8rem; margin: .6rem 0; }
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_the_five_characters_and_nothing_else() {
        assert_eq!(
            esc("<a href=\"x\">Tom & 'Jerry'</a> ü").to_string(),
            "&lt;a href=&quot;x&quot;&gt;Tom &amp; &#39;Jerry&#39;&lt;/a&gt; ü"
        );
        assert_eq!(esc("plain").to_string(), "plain");
        assert_eq!(
            esc("&amp;").to_string(),
            "&amp;amp;",
            "escaped twice is escaped twice"
        );
    }

    #[test]
    fn finds_the_matchers_diff_only_at_a_line_start() {
        let message =
            "not met\n  last observed: x\n--- expected\n+++ observed\n@@ -1 +1 @@\n-a\n+b";
        let (text, diff) = split_diff(message);
        assert_eq!(text, "not met\n  last observed: x");
        assert_eq!(
            diff,
            Some("--- expected\n+++ observed\n@@ -1 +1 @@\n-a\n+b")
        );
        // Quoted in a message, or without its second header line: no diff.
        assert_eq!(split_diff("saw '--- expected' in a log").1, None);
        assert_eq!(split_diff("x\n--- expected\nno header").1, None);
    }

    #[test]
    fn durations_read_at_a_glance() {
        assert_eq!(human(Duration::from_millis(850)), "850 ms");
        assert_eq!(human(Duration::from_millis(12_345)), "12.3 s");
        assert_eq!(human(Duration::from_secs(125)), "2 m 05 s");
    }

    #[test]
    fn bars_stay_on_the_track() {
        assert_eq!(percent(Duration::from_secs(1), Duration::ZERO), 0.0);
        assert_eq!(
            percent(Duration::from_secs(1), Duration::from_secs(4)),
            25.0
        );
        assert_eq!(
            percent(Duration::from_secs(9), Duration::from_secs(4)),
            100.0
        );
    }
}
