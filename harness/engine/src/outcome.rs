//! What a run produced: the data behind the JUnit XML, the JSON summary and
//! the exit code.

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use harness_scenario::Location;

/// Durations in reports are seconds with millisecond precision.
pub fn seconds<S: serde::Serializer>(
    duration: &Duration,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_f64((duration.as_millis() as f64) / 1000.0)
}

/// [`seconds`] for an optional duration (skip the field when it is `None`).
pub fn seconds_opt<S: serde::Serializer>(
    duration: &Option<Duration>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match duration {
        Some(duration) => seconds(duration, serializer),
        None => serializer.serialize_none(),
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunSummary {
    pub run_id: String,
    /// `local`, `kind` or `existing`.
    pub lab: String,
    pub argocd_version: String,
    /// RFC 3339, UTC.
    pub started: String,
    pub finished: String,
    #[serde(serialize_with = "seconds")]
    pub duration: Duration,
    pub passed: usize,
    pub failed: usize,
    pub cancelled: usize,
    /// Passed on a retry after failing (`--retries`): counted apart from `passed`.
    #[serde(skip_serializing_if = "is_zero")]
    pub flaky: usize,
    /// Not run: their `argocd:` excludes the lab's release.
    #[serde(skip_serializing_if = "is_zero")]
    pub skipped: usize,
    /// `K/N` when the run was one shard of a suite (`--shard`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
    pub scenarios: Vec<ScenarioReport>,
    /// Problems writing the reports themselves (the run's result stands).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub report_problems: Vec<String>,
}

impl RunSummary {
    /// Whether every scenario that ran passed, and at least one ran. A
    /// flaky scenario counts as passed here (it is reported as flaky); a
    /// skipped one never counts as passed, nor does it fail the run.
    pub fn all_passed(&self) -> bool {
        self.scenarios
            .iter()
            .any(|s| matches!(s.status, ScenarioStatus::Passed | ScenarioStatus::Flaky))
            && self.scenarios.iter().all(|s| {
                matches!(
                    s.status,
                    ScenarioStatus::Passed | ScenarioStatus::Flaky | ScenarioStatus::Skipped
                )
            })
    }

    /// The contract's exit code for the scenarios' results: 0 all passed, 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        if self.all_passed() { 0 } else { 1 }
    }

    /// Fill `passed` / `failed` / `cancelled` from the scenarios.
    pub fn count(&mut self) {
        let count = |status| self.scenarios.iter().filter(|s| s.status == status).count();
        self.passed = count(ScenarioStatus::Passed);
        self.failed = count(ScenarioStatus::Failed);
        self.cancelled = count(ScenarioStatus::Cancelled);
        self.flaky = count(ScenarioStatus::Flaky);
        self.skipped = count(ScenarioStatus::Skipped);
    }
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ScenarioStatus {
    Passed,
    Failed,
    /// Stopped by Ctrl-C (or never started because of it).
    Cancelled,
    /// Failed, then passed on a retry (`--retries`): `failure` holds what
    /// the failed attempt reported. Never a plain pass.
    Flaky,
    /// Not run on this lab: its `argocd:` constraint excludes the lab's
    /// release (`skipped` says so). Never a pass.
    Skipped,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScenarioReport {
    pub name: String,
    pub file: PathBuf,
    pub status: ScenarioStatus,
    /// The per-run suffix of its names (find its objects with it).
    pub suffix: String,
    /// RFC 3339, UTC; empty when it never started.
    pub started: String,
    #[serde(serialize_with = "seconds")]
    pub duration: Duration,
    /// The first step that failed, and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
    /// Why it was not run (`status: skipped`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    pub steps: Vec<StepRecord>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub finally: Vec<StepRecord>,
    /// Cleanup that did not work (objects may be left in the lab).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cleanup_problems: Vec<String>,
    /// Folder with the diagnostics of a failed scenario.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diagnostics: Option<PathBuf>,
    /// The step log (JUnit system-out).
    pub log: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Failure {
    /// `steps` or `finally` (empty when no step was to blame, e.g. a panic).
    pub phase: String,
    /// 1-based index within the phase.
    pub index: usize,
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
    pub message: String,
}

impl Failure {
    /// `step 3 (expect) at scenarios/x.yaml:12:5: <message>`.
    pub fn headline(&self) -> String {
        let place = self
            .location
            .as_ref()
            .map(|l| format!(" at {l}"))
            .unwrap_or_default();
        if self.phase.is_empty() {
            self.message.clone()
        } else {
            let phase = if self.phase == "finally" {
                "finally step"
            } else {
                "step"
            };
            format!(
                "{phase} {} ({}){place}: {}",
                self.index, self.kind, self.message
            )
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum StepStatus {
    Passed,
    Failed,
    TimedOut,
    Cancelled,
    /// Not run: an earlier step failed, the run was cancelled, or its
    /// `when:` excludes the lab's Argo CD release.
    Skipped,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StepRecord {
    /// 1-based within its phase.
    pub index: usize,
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub description: String,
    pub location: Location,
    /// When it started, after the start of its scenario; `None` when it
    /// never ran (skipped). Places the step on the report's timeline.
    #[serde(
        serialize_with = "seconds_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub started_after: Option<Duration>,
    #[serde(serialize_with = "seconds")]
    pub duration: Duration,
    pub outcome: StepStatus,
    /// What it did, or why it failed.
    pub message: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub digests: Vec<StepDigest>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed: Option<Value>,
}

/// A digest a step produced (push, tag).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StepDigest {
    /// The repository as the registry knows it (mapped).
    pub repository: String,
    pub digest: String,
    pub tags: Vec<String>,
    /// `as:` name, when the digest was bound to a variable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub binding: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blobs_uploaded: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blobs_skipped: Option<usize>,
}
