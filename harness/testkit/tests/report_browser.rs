//! The HTML report of a real run, in a real browser. A local lab runs a
//! passing and a failing scenario through `harness_e2e::run` (what `cargo
//! xtask e2e` calls); the failing one expects a `<script>` element's text,
//! so the diff on the page carries markup a report must not execute.
//! Headless Chromium loads `report.html` from disk: the DOM it built marks
//! the failing step with its diff and the passing scenario as passed,
//! holds no script, and points at no network address; its screenshot is
//! kept under `target/test-artifacts/`.

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

    let profile = tempfile::tempdir().unwrap();
    let url = format!("file://{}", page.display());
    let dom = chromium(profile.path(), &["--dump-dom".into(), url.clone()]).await;
    let dom = String::from_utf8(dom.stdout).expect("the DOM is UTF-8");
    assert!(dom.contains("</html>"), "a whole document:\n{dom}");

    // The run is marked failed, with its lab.
    assert!(
        element(&dom, "id=\"run\"", "header").contains("data-status=\"failed\""),
        "{dom}"
    );
    assert!(dom.contains("<dd>local</dd>"), "the lab is named:\n{dom}");

    // The failing scenario: its 4th step failed, with the diff of what was
    // expected (the markup, as text) against what the cluster holds.
    let failing = element(&dom, "data-scenario=\"report-must-fail\"", "section");
    assert!(failing.contains("data-status=\"failed\""), "{failing}");
    let step = element(failing, "data-outcome=\"failed\"", "li");
    assert!(
        step.contains("data-index=\"4\"") && step.contains("data-phase=\"steps\""),
        "the 4th step is the failed one: {step}"
    );
    let diff = element(step, "class=\"diff\"", "pre");
    assert!(
        diff.contains(
            "<span class=\"del\">-  version: '&lt;script&gt;alert(1)&lt;/script&gt;'</span>"
        ) || diff.contains(
            "<span class=\"del\">-  version: \"&lt;script&gt;alert(1)&lt;/script&gt;\"</span>"
        ) || diff.contains(
            "<span class=\"del\">-  version: &lt;script&gt;alert(1)&lt;/script&gt;</span>"
        ),
        "the expected value, escaped, on a removed line: {diff}"
    );
    assert!(
        diff.contains("<span class=\"add\">+  version: 1.0.0</span>")
            || diff.contains("<span class=\"add\">+  version: '1.0.0'</span>")
            || diff.contains("<span class=\"add\">+  version: \"1.0.0\"</span>"),
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
    // Its diagnostics: the Application's status, folded files, log tails.
    assert!(failing.contains("class=\"applications\""), "{failing}");
    assert!(
        failing.contains("the registry: tags and digests"),
        "{failing}"
    );
    assert!(failing.contains("log tail: "), "{failing}");
    // The push step's digest.
    assert!(
        failing.contains("<code class=\"digest\">sha256:"),
        "{failing}"
    );

    // The passing scenario is not marked failed anywhere.
    let passing = element(&dom, "data-scenario=\"report-passes\"", "section");
    assert!(passing.contains("data-status=\"passed\""), "{passing}");
    assert!(
        !passing.contains("\"failed\"") && !passing.contains("class=\"diff\""),
        "{passing}"
    );

    // The markup stayed text: no script element, no network reference.
    assert!(!dom.contains("<script"), "a script element:\n{dom}");
    assert!(dom.contains("&lt;script&gt;"), "the markup as text:\n{dom}");
    let external: Vec<String> = references(&dom)
        .into_iter()
        .filter(|r| !r.starts_with('#'))
        .collect();
    assert!(external.is_empty(), "references off the page: {external:?}");

    // The screenshot, kept with the test's output.
    let dir = artifacts();
    std::fs::create_dir_all(&dir).unwrap();
    let png = dir.join("report.png");
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
    std::fs::copy(&page, dir.join("report.html")).unwrap();
    println!(
        "screenshot: {}\nreport: {}",
        png.display(),
        dir.join("report.html").display()
    );
}
