//! JUnit XML, JSON summary and HTML page of a synthetic run (one passed,
//! one failed, one cancelled scenario), snapshot-tested with the fixture's
//! fixed times.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use common::report_fixture::{DIAGNOSTICS, diagnostics_files, page, summary, summary_with_diff};

#[test]
fn counts_and_exit_code() {
    let summary = summary();
    assert_eq!(
        (summary.passed, summary.failed, summary.cancelled),
        (1, 1, 1)
    );
    assert_eq!(summary.exit_code(), 1);
    let mut only_passed = summary.clone();
    only_passed.scenarios.truncate(1);
    assert_eq!(only_passed.exit_code(), 0);
    only_passed.scenarios.clear();
    assert_eq!(
        only_passed.exit_code(),
        1,
        "a run that ran nothing did not pass"
    );
}

#[test]
fn json_summary() {
    let text = harness_engine::report::json_summary(&summary()).unwrap();
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    // The fixture's times and durations are fixed, so they are part of the
    // snapshot: a duration written in the wrong unit, or a lost timestamp,
    // shows up here.
    insta::assert_json_snapshot!(value);
}

#[test]
fn junit_xml() {
    let xml = harness_engine::report::junit_xml(&summary()).unwrap();
    // Fixed times in the fixture: JUnit's seconds and timestamps are checked.
    insta::assert_snapshot!(xml);
}

#[test]
fn reports_are_written_to_a_new_directory() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("nested/report");
    harness_engine::report::write_reports(&summary(), &target).unwrap();
    let junit = std::fs::read_to_string(target.join(harness_engine::report::JUNIT_FILE)).unwrap();
    assert!(junit.contains("scenarios/latest.yaml:28:5"), "{junit}");
    let html = std::fs::read_to_string(target.join(harness_engine::report::HTML_FILE)).unwrap();
    assert!(html.contains("latest-follows-digest"), "{html}");
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(target.join(harness_engine::report::SUMMARY_FILE)).unwrap(),
    )
    .unwrap();
    assert_eq!(json["runId"], "20261129-100000-ab12");
}

#[test]
fn html_report() {
    let html = page(&summary_with_diff());
    // The head is the stylesheet: snapshot what the run put on the page.
    let body = &html[html.find("<body>").expect("a body")..];
    insta::assert_snapshot!(body);
    let head = &html[..html.find("<body>").unwrap()];
    assert!(head.contains("<style>"), "inline CSS");
    for external in ["<link", "<script", "src=", "@import", "url("] {
        assert!(!html.contains(external), "no {external} in the page");
    }
}

#[test]
fn html_report_marks_each_step_and_only_the_failed_one_failed() {
    let html = page(&summary_with_diff());
    let failed: Vec<&str> = html
        .match_indices("<li class=\"step\"")
        .map(|(at, _)| &html[at..at + html[at..].find('>').unwrap()])
        .filter(|tag| tag.contains("data-outcome=\"failed\""))
        .collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(
        failed[0].contains("id=\"scenario-1-steps-4\""),
        "{}",
        failed[0]
    );
    assert!(html.contains(
        "<section class=\"scenario\" id=\"scenario-0\" data-scenario=\"pinned-digest\" data-status=\"passed\">"
    ));
    // The diff's lines, marked as what was expected and what was found.
    assert!(
        html.contains("<span class=\"del\">-  version: 2.0.0</span>"),
        "{html}"
    );
    assert!(
        html.contains("<span class=\"add\">+  version: 1.0.0</span>"),
        "{html}"
    );
}

#[test]
fn html_report_escapes_everything_a_run_wrote() {
    let mut summary = summary_with_diff();
    let hostile = "<script>alert(\"x\")</script> & <img src=https://example.invalid/x.png>";
    summary.scenarios[0].name = format!("name {hostile}");
    summary.scenarios[1].steps[3].message =
        format!("{hostile}\n--- expected\n+++ observed\n-{hostile}");
    summary.scenarios[1].steps[0].digests[0].tags = vec![hostile.into()];
    summary.scenarios[1].log.push(hostile.into());
    let mut files = diagnostics_files();
    files.logs[0].1 = hostile.into();
    let html = harness_engine::report::html_report(
        &summary,
        &BTreeMap::from([(PathBuf::from(DIAGNOSTICS), files)]),
    );
    assert!(!html.contains("<script"), "{html}");
    // Only text: `src=` stays in it, but no tag opens around it.
    assert!(!html.contains("<img"), "{html}");
    assert!(html.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;img"));
    assert_eq!(
        html.matches("&lt;script&gt;").count(),
        // name: overview + data-scenario + heading; message; diff line;
        // tags; step log; log tail.
        3 + 1 + 1 + 1 + 1 + 1,
        "{html}"
    );
}

#[test]
fn html_report_reads_the_diagnostics_folder_it_names() {
    let dir = tempfile::tempdir().unwrap();
    let diagnostics = dir.path().join("diagnostics/latest-follows-digest");
    std::fs::create_dir_all(diagnostics.join("logs")).unwrap();
    std::fs::write(
        diagnostics.join("applications.yaml"),
        diagnostics_files().applications.unwrap(),
    )
    .unwrap();
    std::fs::write(
        diagnostics.join("registry.txt"),
        "registry 127.0.0.1:5000\n",
    )
    .unwrap();
    std::fs::write(
        diagnostics.join("logs/argocd-application-controller.log"),
        "level=info msg=\"the one line of the tail\"\n",
    )
    .unwrap();
    let mut summary = summary();
    summary.scenarios[1].diagnostics = Some(diagnostics.clone());
    // The cancelled scenario names a folder that is not there.
    summary.scenarios[2].diagnostics = Some(dir.path().join("diagnostics/gone"));
    let target = dir.path().join("report");
    harness_engine::report::write_reports(&summary, &target).unwrap();
    let html = std::fs::read_to_string(target.join(harness_engine::report::HTML_FILE)).unwrap();
    assert!(
        html.contains("log tail: argocd-application-controller (1 lines)"),
        "{html}"
    );
    assert!(html.contains("the one line of the tail"), "{html}");
    assert!(html.contains("<strong>ComparisonError</strong>: failed to load target state: &lt;unknown&gt; &amp; more"), "{html}");
    assert!(
        html.contains("The diagnostics folder was not found"),
        "{html}"
    );
}
