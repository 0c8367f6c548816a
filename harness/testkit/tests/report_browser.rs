//! The HTML report of a real run, in a real browser. A local lab runs a
//! passing and a failing scenario through `harness_e2e::run` (what `cargo
//! xtask e2e` calls); the failing one expects a `<script>` element's text,
//! so the diff on the page carries markup a report must not execute.
//! Headless Chromium loads `report.html` from disk: the DOM it built marks
//! the failing step with its diff and the passing scenario as passed,
//! holds no script, and points at no network address; its screenshot is
//! kept under `target/test-artifacts/`. The same checks run on the page
//! of the report snapshots' fixed run, which needs no lab.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use harness_core::progress::Progress;
use harness_e2e::E2eOptions;
use harness_labs::LabKind;

const PASSES: &str = r#"name: report-passes
steps:
  - push:
      files:
        cm.yaml: |
          apiVersion: v1
          kind: ConfigMap
          metadata: {name: shown-config}
          data: {version: "1.0.0"}
      repository: shown
      tags: [v1]
      as: v1
  - app: {name: shown, repository: shown, revision: v1}
  - expect: {app: shown, sync: Synced, health: Healthy, revision: "${v1.digest}"}
finally:
  - delete: {app: shown}
"#;

/// Expects a value that is markup: the page must show it as text.
const FAILS: &str = r#"name: report-must-fail
steps:
  - push:
      files:
        cm.yaml: |
          apiVersion: v1
          kind: ConfigMap
          metadata: {name: wrong-config}
          data: {version: "1.0.0"}
      repository: wrong
      tags: [v1]
      as: v1
  - app: {name: wrong, repository: wrong, revision: v1}
  - expect: {app: wrong, sync: Synced, health: Healthy, revision: "${v1.digest}"}
  - expect:
      resource: {apiVersion: v1, kind: ConfigMap, namespace: wrong, name: wrong-config}
      matches: {data: {version: "<script>alert(1)</script>"}}
      within: 5s
finally:
  - delete: {app: wrong}
"#;

/// Headless Chromium with a new, empty profile and nothing that reaches out.
async fn chromium(profile: &Path, args: &[String]) -> std::process::Output {
    let mut command = tokio::process::Command::new("chromium");
    command
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(180), command.output())
        .await
        .expect("chromium answers within 3 minutes")
        .unwrap_or_else(|e| {
            panic!(
                "chromium cannot be started ({e}): install it with `apt-get install -y chromium` \
                 (`cargo xtask test` does)"
            )
        });
    assert!(
        output.status.success(),
        "chromium {args:?} failed: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// The element of `dom` that starts at the tag containing `marker`, up to
/// its closing `</tag>` (the sections and list items of the page do not nest
/// in themselves).
fn element<'a>(dom: &'a str, marker: &str, tag: &str) -> &'a str {
    let at = dom
        .find(marker)
        .unwrap_or_else(|| panic!("no {marker} in the DOM:\n{dom}"));
    let start = dom[..at]
        .rfind(&format!("<{tag}"))
        .expect("the opening tag");
    let close = format!("</{tag}>");
    let end = dom[at..].find(&close).expect("the closing tag") + at + close.len();
    &dom[start..end]
}

/// The opening tags of the steps in `html`.
fn step_tags(html: &str) -> Vec<&str> {
    html.match_indices("<li class=\"step\"")
        .map(|(at, _)| &html[at..at + html[at..].find('>').expect("a whole tag")])
        .collect()
}

/// Every `src=` and `href=` value in `dom`.
fn references(dom: &str) -> Vec<String> {
    let mut found = Vec::new();
    for attribute in [" src=\"", " href=\""] {
        for (at, _) in dom.match_indices(attribute) {
            let value = &dom[at + attribute.len()..];
            found.push(value[..value.find('"').unwrap_or(value.len())].to_string());
        }
    }
    found
}

fn artifacts() -> PathBuf {
    // target/tmp -> target/test-artifacts
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target directory")
        .join("test-artifacts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_report_of_a_real_failing_run_in_headless_chromium() {
    harness_core::init_crypto();
    let tmp = tempfile::tempdir().unwrap();
    let passes = tmp.path().join("passes.yaml");
    let fails = tmp.path().join("fails.yaml");
    std::fs::write(&passes, PASSES).unwrap();
    std::fs::write(&fails, FAILS).unwrap();
    let report = tmp.path().join("report");
    let opts = E2eOptions {
        paths: vec![passes, fails],
        lab: LabKind::Local,
        report_dir: Some(report.clone()),
        keep: false,
        reuse: false,
        select: vec![],
        jobs: 2,
        names: vec![],
        shard: None,
        retries: 0,
        repeat: 1,
        existing: Default::default(),
        cancel: Default::default(),
        build_images: false,
        kind_config: None,
        argocd_versions: vec![],
        registry: Default::default(),
    };
    let outcome = tokio::time::timeout(
        Duration::from_secs(900),
        harness_e2e::run(opts, &Progress::quiet()),
    )
    .await
    .expect("the run ends within 15 minutes");
    assert_eq!(
        outcome.code, 1,
        "one scenario fails on purpose: {:?} {:?}",
        outcome.output, outcome.errors
    );

    // The run's last line names the page.
    let page = report.join(harness_engine::report::HTML_FILE);
    assert_eq!(
        outcome.output.last(),
        Some(&format!("report: {}", page.display())),
        "{:?}",
        outcome.output
    );
    assert!(page.is_file(), "{} written", page.display());

    let dom = load_and_check(&page, "report-must-fail", 4, "report-passes", "report.png").await;
    // The expected value was markup: on a removed line of the diff, as text.
    let failing = element(&dom, "data-scenario=\"report-must-fail\"", "section");
    let diff = element(failing, "class=\"diff\"", "pre");
    assert!(
        ["'", "\"", ""].iter().any(|quote| diff.contains(&format!(
            "<span class=\"del\">-  version: {quote}&lt;script&gt;alert(1)&lt;/script&gt;{quote}</span>"
        ))),
        "the expected value, escaped, on a removed line: {diff}"
    );
    assert!(
        ["'", "\"", ""].iter().any(|quote| diff.contains(&format!(
            "<span class=\"add\">+  version: {quote}1.0.0{quote}</span>"
        ))),
        "the observed value on an added line: {diff}"
    );
    // Steps before it passed, and each has a bar on the timeline.
    for index in 1..=3 {
        let earlier = element(
            failing,
            &format!("data-phase=\"steps\" data-index=\"{index}\" "),
            "li",
        );
        assert!(earlier.contains("data-outcome=\"passed\""), "{earlier}");
        assert!(earlier.contains("class=\"bar\""), "{earlier}");
    }
    // Its diagnostics from the real lab: the Application's status, the
    // registry's tags and digests, log tails; the push step's digest.
    assert!(failing.contains("class=\"applications\""), "{failing}");
    assert!(
        failing.contains("the registry: tags and digests"),
        "{failing}"
    );
    assert!(failing.contains("log tail: "), "{failing}");
    assert!(
        failing.contains("<code class=\"digest\">sha256:"),
        "{failing}"
    );
    assert!(dom.contains("<dd>local</dd>"), "the lab is named");
}

#[tokio::test]
async fn the_page_of_the_fixed_run_in_headless_chromium() {
    let mut summary = common::report_fixture::summary_with_diff();
    // Markup in a step's message and in a log tail stays text.
    summary.scenarios[1].steps[1].message = "applied <script>alert(1)</script>".into();
    let mut files = common::report_fixture::diagnostics_files();
    files.logs[0]
        .1
        .push_str("msg=\"<script>alert(2)</script>\"\n");
    let html = harness_engine::report::html_report(
        &summary,
        &BTreeMap::from([(PathBuf::from(common::report_fixture::DIAGNOSTICS), files)]),
    );
    let tmp = tempfile::tempdir().unwrap();
    let page = tmp.path().join("report.html");
    std::fs::write(&page, html).unwrap();
    let dom = load_and_check(
        &page,
        "latest-follows-digest",
        4,
        "pinned-digest",
        "report-fixture.png",
    )
    .await;
    let failing = element(&dom, "data-scenario=\"latest-follows-digest\"", "section");
    let diff = element(failing, "class=\"diff\"", "pre");
    assert!(
        diff.contains("<span class=\"del\">-  version: 2.0.0</span>"),
        "{diff}"
    );
    assert!(
        diff.contains("<span class=\"add\">+  version: 1.0.0</span>"),
        "{diff}"
    );
    assert!(
        failing.contains("applied &lt;script&gt;alert(1)&lt;/script&gt;"),
        "{failing}"
    );
    assert!(
        failing.contains("&lt;script&gt;alert(2)&lt;/script&gt;"),
        "{failing}"
    );
    assert!(
        failing.contains("<strong>ComparisonError</strong>"),
        "{failing}"
    );
}

/// Loads `page` in headless Chromium and checks the DOM it built: the run
/// is marked failed; step `index` of `failing` is its one failed step, with
/// a diff; `passing` is marked passed and nothing in it failed; no script
/// element, no reference off the page. Keeps a screenshot named `png`
/// under `target/test-artifacts/`, with a copy of the page. Returns the DOM.
async fn load_and_check(
    page: &Path,
    failing: &str,
    index: usize,
    passing: &str,
    png: &str,
) -> String {
    let profile = tempfile::tempdir().unwrap();
    let url = format!("file://{}", page.display());
    let dom = chromium(profile.path(), &["--dump-dom".into(), url.clone()]).await;
    let dom = String::from_utf8(dom.stdout).expect("the DOM is UTF-8");
    assert!(dom.contains("</html>"), "a whole document:\n{dom}");

    assert!(
        element(&dom, "id=\"run\"", "header").contains("data-status=\"failed\""),
        "the run is marked failed:\n{dom}"
    );
    let section = element(&dom, &format!("data-scenario=\"{failing}\""), "section");
    assert!(section.contains("data-status=\"failed\""), "{section}");
    let failed: Vec<&str> = step_tags(section)
        .into_iter()
        .filter(|tag| tag.contains("data-outcome=\"failed\""))
        .collect();
    assert_eq!(failed.len(), 1, "one failed step in {failing}: {failed:?}");
    assert!(
        failed[0].contains(&format!("data-phase=\"steps\" data-index=\"{index}\" ")),
        "step {index} is the failed one: {failed:?}"
    );
    let step = element(section, "data-outcome=\"failed\"", "li");
    assert!(
        step.contains("class=\"diff\""),
        "the failed step has its diff: {step}"
    );

    let passed = element(&dom, &format!("data-scenario=\"{passing}\""), "section");
    assert!(passed.contains("data-status=\"passed\""), "{passed}");
    assert!(!step_tags(passed).is_empty(), "{passing} shows its steps");
    assert!(
        !passed.contains("\"failed\"") && !passed.contains("class=\"diff\""),
        "nothing of {passing} is marked failed: {passed}"
    );

    assert!(!dom.contains("<script"), "a script element:\n{dom}");
    assert!(dom.contains("&lt;script&gt;"), "the markup as text:\n{dom}");
    let external: Vec<String> = references(&dom)
        .into_iter()
        .filter(|r| !r.starts_with('#'))
        .collect();
    assert!(external.is_empty(), "references off the page: {external:?}");

    let dir = artifacts();
    std::fs::create_dir_all(&dir).unwrap();
    let png = dir.join(png);
    let _ = std::fs::remove_file(&png);
    chromium(
        profile.path(),
        &[
            format!("--screenshot={}", png.display()),
            "--window-size=1280,2000".into(),
            "--hide-scrollbars".into(),
            url,
        ],
    )
    .await;
    let image = std::fs::read(&png).expect("the screenshot is written");
    assert!(
        image.starts_with(b"\x89PNG\r\n\x1a\n") && image.len() > 10_000,
        "a PNG with something on it ({} bytes)",
        image.len()
    );
    let copy = png.with_extension("html");
    std::fs::copy(page, &copy).unwrap();
    println!("screenshot: {}\npage: {}", png.display(), copy.display());
    dom
}
