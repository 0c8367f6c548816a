//! Merging the reports of several runs (the shards of one suite, run by
//! separate CI jobs) into one: `cargo xtask report merge DIR... --out DIR`.
//!
//! - `junit.xml`: every input's testsuites under one `<testsuites>` (each
//!   shard keeps its own testsuite with its run-id, shard, lab and Argo CD
//!   version properties); totals recomputed.
//! - `summary.json`: `{runs: [each input's summary], passed, flaky, failed,
//!   cancelled, scenarios}` with totals over the runs.
//!
//! A scenario name found in more than one input is reported back: shards
//! of one suite must cover each scenario once (same paths and filters).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use quick_junit::Report;
use serde_json::{Value, json};

use super::{JUNIT_FILE, SUMMARY_FILE, write_file};

#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("nothing to merge: give at least one report directory (or junit.xml file)")]
    NoInputs,
    #[error(
        "reading {path}: {source}; is it a report directory written by `cargo xtask e2e --report`?"
    )]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not JUnit XML this tool can read: {detail}")]
    Junit { path: PathBuf, detail: String },
    #[error("{path} is not a JSON summary: {detail}")]
    Summary { path: PathBuf, detail: String },
    #[error("writing the merged report: {0}")]
    Write(#[from] super::ReportError),
    #[error("rendering the merged JUnit XML: {0}")]
    Render(String),
}

/// What a merge produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergeOutcome {
    pub inputs: usize,
    pub suites: usize,
    pub tests: usize,
    pub failures: usize,
    pub errors: usize,
    /// Scenario (test case) names found in more than one input, with the inputs.
    pub duplicates: BTreeMap<String, Vec<PathBuf>>,
}

/// The junit.xml of an input: the file itself, or `<dir>/junit.xml`.
fn junit_path(input: &Path) -> PathBuf {
    if input.is_dir() {
        input.join(JUNIT_FILE)
    } else {
        input.to_path_buf()
    }
}

/// Merge the reports in `inputs` (report directories, or junit.xml files)
/// into `out` (created): `junit.xml`, and `summary.json` when every input
/// directory has one.
pub fn merge_reports(inputs: &[PathBuf], out: &Path) -> Result<MergeOutcome, MergeError> {
    if inputs.is_empty() {
        return Err(MergeError::NoInputs);
    }
    let mut merged = Report::new("oci-e2e");
    let mut time = std::time::Duration::ZERO;
    let mut seen: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    let mut summaries = Vec::new();
    for input in inputs {
        let path = junit_path(input);
        let text = std::fs::read_to_string(&path).map_err(|source| MergeError::Read {
            path: path.clone(),
            source,
        })?;
        let report = Report::deserialize_from_str(&text).map_err(|e| MergeError::Junit {
            path: path.clone(),
            detail: e.to_string(),
        })?;
        time += report.time.unwrap_or_default();
        for suite in report.test_suites {
            for case in &suite.test_cases {
                seen.entry(case.name.to_string())
                    .or_default()
                    .push(input.clone());
            }
            merged.add_test_suite(suite);
        }
        let summary_path = input.join(SUMMARY_FILE);
        if input.is_dir() && summary_path.exists() {
            let text =
                std::fs::read_to_string(&summary_path).map_err(|source| MergeError::Read {
                    path: summary_path.clone(),
                    source,
                })?;
            let value: Value = serde_json::from_str(&text).map_err(|e| MergeError::Summary {
                path: summary_path.clone(),
                detail: e.to_string(),
            })?;
            summaries.push(value);
        }
    }
    merged.set_time(time);
    let xml = merged
        .to_string()
        .map_err(|e| MergeError::Render(e.to_string()))?;
    write_file(&out.join(JUNIT_FILE), xml)?;

    if summaries.len() == inputs.len() {
        let total = |key: &str| -> u64 {
            summaries
                .iter()
                .map(|s| s.get(key).and_then(Value::as_u64).unwrap_or(0))
                .sum()
        };
        let scenarios: u64 = summaries
            .iter()
            .map(|s| {
                s.get("scenarios")
                    .and_then(Value::as_array)
                    .map_or(0, |a| a.len() as u64)
            })
            .sum();
        let combined = json!({
            "runs": summaries,
            "scenarios": scenarios,
            "passed": total("passed"),
            "flaky": total("flaky"),
            "failed": total("failed"),
            "cancelled": total("cancelled"),
        });
        let mut text = serde_json::to_string_pretty(&combined).map_err(super::ReportError::from)?;
        text.push('\n');
        write_file(&out.join(SUMMARY_FILE), text)?;
    }

    let duplicates = seen
        .into_iter()
        .filter(|(_, inputs)| inputs.len() > 1)
        .collect();
    Ok(MergeOutcome {
        inputs: inputs.len(),
        suites: merged.test_suites.len(),
        tests: merged.tests,
        failures: merged.failures,
        errors: merged.errors,
        duplicates,
    })
}
