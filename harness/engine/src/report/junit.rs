//! JUnit XML: one testsuite per run, one testcase per scenario. A failed
//! scenario's message names the failing step and its `file:line:col`; its
//! system-out holds the step log.

use std::time::Duration;

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use super::ReportError;
use crate::outcome::{RunSummary, ScenarioReport, ScenarioStatus};

pub fn junit_xml(summary: &RunSummary) -> Result<String, ReportError> {
    let mut report = Report::new("oci-e2e");
    report.set_time(summary.duration);
    let mut suite = TestSuite::new(format!("oci-e2e {}", summary.run_id));
    suite.set_time(summary.duration);
    suite.add_property(("run-id", summary.run_id.as_str()));
    suite.add_property(("lab", summary.lab.as_str()));
    suite.add_property(("argocd-version", summary.argocd_version.as_str()));
    if let Some(shard) = &summary.shard {
        suite.add_property(("shard", shard.as_str()));
    }
    for scenario in &summary.scenarios {
        suite.add_test_case(test_case(scenario));
    }
    report.add_test_suite(suite);
    report
        .to_string()
        .map_err(|e| ReportError::Junit(e.to_string()))
}

fn test_case(scenario: &ScenarioReport) -> TestCase {
    let status = match scenario.status {
        ScenarioStatus::Passed => TestCaseStatus::success(),
        ScenarioStatus::Skipped => {
            let mut status = TestCaseStatus::skipped();
            status.set_message(scenario.skipped.clone().unwrap_or_default());
            status.set_type("skipped");
            status
        }
        // Passed on a retry: a success with the failed attempt as <flakyFailure>.
        ScenarioStatus::Flaky => {
            let mut status = TestCaseStatus::success();
            let headline = scenario
                .failure
                .as_ref()
                .map(|f| f.headline())
                .unwrap_or_else(|| "failed on an earlier attempt".to_string());
            let mut rerun = quick_junit::TestRerun::new(NonSuccessKind::Failure);
            rerun.set_message(headline.lines().next().unwrap_or_default().to_string());
            rerun.set_type("flaky");
            rerun.set_description(headline);
            status.add_rerun(rerun);
            status
        }
        ScenarioStatus::Failed | ScenarioStatus::Cancelled => {
            let kind = if scenario.status == ScenarioStatus::Failed {
                NonSuccessKind::Failure
            } else {
                NonSuccessKind::Error
            };
            let mut status = TestCaseStatus::non_success(kind);
            let headline = scenario
                .failure
                .as_ref()
                .map(|f| f.headline())
                .unwrap_or_else(|| "failed".to_string());
            status.set_message(headline.lines().next().unwrap_or_default().to_string());
            status.set_type(if scenario.status == ScenarioStatus::Failed {
                "failure"
            } else {
                "cancelled"
            });
            let mut description = headline.clone();
            if let Some(dir) = &scenario.diagnostics {
                description.push_str(&format!("\ndiagnostics: {}", dir.display()));
            }
            status.set_description(description);
            status
        }
    };
    let mut case = TestCase::new(scenario.name.as_str(), status);
    case.set_classname(scenario.file.display().to_string());
    case.set_time(round_millis(scenario.duration));
    case.set_system_out(scenario.log.join("\n"));
    if scenario.status == ScenarioStatus::Flaky {
        case.add_property(("flaky", "true"));
    }
    case
}

fn round_millis(duration: Duration) -> Duration {
    Duration::from_millis(duration.as_millis() as u64)
}
