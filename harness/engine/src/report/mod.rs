//! Reports of a run: JUnit XML (one testsuite per run, one testcase per
//! scenario), a JSON summary, a self-contained HTML page, and diagnostics
//! folders for failed scenarios.

pub mod html;
mod json;
mod junit;
pub mod merge;

use std::path::{Path, PathBuf};

pub use html::{DiagnosticsFiles, html_report, read_diagnostics};
pub use json::json_summary;
pub use junit::junit_xml;
pub use merge::{MergeError, MergeOutcome, merge_reports};

use crate::outcome::RunSummary;

/// File names inside the report directory.
pub const JUNIT_FILE: &str = "junit.xml";
pub const SUMMARY_FILE: &str = "summary.json";
pub const HTML_FILE: &str = "report.html";

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(
        "writing {path}: {source}; check that the directory is writable (or pick another with --report)"
    )]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("rendering the JUnit XML: {0}")]
    Junit(String),
    #[error("rendering the JSON summary: {0}")]
    Json(#[from] serde_json::Error),
}

pub(crate) fn write_file(path: &Path, contents: impl AsRef<[u8]>) -> Result<(), ReportError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|source| ReportError::Io {
            path: parent.to_path_buf(),
            source,
        })?;
    }
    std::fs::write(path, contents).map_err(|source| ReportError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Write `junit.xml`, `summary.json` and `report.html` into `dir`
/// (created); the page shows what the diagnostics folders hold by then.
pub fn write_reports(summary: &RunSummary, dir: &Path) -> Result<(), ReportError> {
    write_file(&dir.join(JUNIT_FILE), junit_xml(summary)?)?;
    write_file(&dir.join(SUMMARY_FILE), json_summary(summary)?)?;
    let diagnostics = read_diagnostics(summary);
    write_file(&dir.join(HTML_FILE), html_report(summary, &diagnostics))?;
    Ok(())
}
