//! The JSON summary: the run, each scenario, each step with its outcome,
//! digests and observed status.

use super::ReportError;
use crate::outcome::RunSummary;

/// Pretty-printed JSON of the whole summary.
pub fn json_summary(summary: &RunSummary) -> Result<String, ReportError> {
    let mut text = serde_json::to_string_pretty(summary)?;
    text.push('\n');
    Ok(text)
}
