//! Argo CD releases side by side, on real local labs: the matrix of the
//! default release and v3.1.0 over the version-aware scenarios (cells
//! asserted, `when:` steps seen running on one release and skipped on the
//! other), and bisect finding where accepting an extra non-content layer
//! began. v3.1.0 and v3.1.8 are built once into the tool cache by
//! `cargo xtask test`.

use std::path::PathBuf;

use harness_core::progress::Progress;
use harness_e2e::{E2eOptions, bisect};
use harness_labs::LabKind;
use harness_labs::existing::ExistingLabConfig;

const OLD: &str = "v3.1.0";
/// The first release after v3.1.6 the Go module proxy serves.
const FIRST_ACCEPTING: &str = "v3.1.8";
const DEFAULT: &str = harness_labs::ARGOCD_VERSION;
/// The releases bisect may try (built by `cargo xtask test`): the search
/// must look at the middle one to find the change there.
const BISECT_RELEASES: &[&str] = &[OLD, FIRST_ACCEPTING, DEFAULT];

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Only releases from v3.1.6 on: skipped on v3.1.0, never passed there.
const ONLY_NEWER: &str = r#"name: only-newer
argocd: ">=3.1.6"
steps:
  - push: {source: FIXTURES/demo-app/v1, repository: demo-app, tags: [v1], as: v1}
  - app: {name: newer, repository: demo-app, revision: v1}
  - expect: {app: newer, sync: Synced, revision: "${v1.digest}"}
finally:
  - delete: {app: newer}
"#;

/// An extra non-content layer, expected to deploy: true from v3.1.6 on.
const EXTRA_LAYER_DEPLOYS: &str = r#"name: extra-layer-deploys
steps:
  - push:
      repository: extra-layer
      tags: [v1]
      as: v1
      layers:
        - files:
            configmap.yaml: |
              apiVersion: v1
              kind: ConfigMap
              metadata: {name: content-layer}
              data: {from: the-content-layer}
        - content: "signed-by: release-bot\n"
          mediaType: application/vnd.example.provenance.v1
  - app: {name: extra, repository: extra-layer, revision: v1}
  - expect: {app: extra, sync: Synced, revision: "${v1.digest}", within: 45s}
finally:
  - delete: {app: extra}
"#;

fn options(paths: Vec<PathBuf>, versions: &[&str], report: PathBuf) -> E2eOptions {
    E2eOptions {
        paths,
        lab: LabKind::Local,
        report_dir: Some(report),
        keep: false,
        reuse: false,
        select: vec![],
        jobs: 4,
        names: vec![],
        shard: None,
        retries: 0,
        repeat: 1,
        existing: ExistingLabConfig::default(),
        cancel: Default::default(),
        build_images: false,
        kind_config: None,
        argocd_versions: versions.iter().map(|v| v.to_string()).collect(),
        registry: Default::default(),
    }
}

fn write(dir: &std::path::Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    let fixtures = repo_root().join("fixtures");
    std::fs::write(
        &path,
        text.replace("FIXTURES", &fixtures.display().to_string()),
    )
    .expect("write");
    path
}

fn steps_of(summary: &serde_json::Value, scenario: &str) -> Vec<(String, String)> {
    summary["scenarios"]
        .as_array()
        .expect("scenarios")
        .iter()
        .find(|s| s["name"] == scenario)
        .unwrap_or_else(|| panic!("{scenario} in {summary}"))["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap_or_default().to_string(),
                s["outcome"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_matrix_of_two_releases_fills_every_cell_and_when_steps_differ() {
    harness_core::init_crypto();
    let tmp = tempfile::tempdir().expect("temporary directory");
    let report = tmp.path().join("report");
    let paths = vec![
        repo_root().join("scenarios/layers-extra-blob-skipped.yaml"),
        repo_root().join("scenarios/layers-tar-gzip-suffix.yaml"),
        write(tmp.path(), "only-newer.yaml", ONLY_NEWER),
        write(tmp.path(), "extra-layer-deploys.yaml", EXTRA_LAYER_DEPLOYS),
    ];
    let outcome = harness_e2e::run(
        options(paths, &[OLD, DEFAULT], report.clone()),
        &Progress::new(),
    )
    .await;
    assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
    // One cell failed (the extra layer on v3.1.0): exit 1.
    assert_eq!(outcome.code, 1, "{}", outcome.output.join("\n"));
    let table = std::fs::read_to_string(report.join("matrix.md")).expect("matrix.md");
    let row = |name: &str| -> Vec<String> {
        let line = table
            .lines()
            .find(|l| l.starts_with(&format!("| {name} |")))
            .unwrap_or_else(|| panic!("a row for {name}:\n{table}"));
        line.trim_matches('|')
            .split(" | ")
            .skip(1)
            .map(|c| c.trim().trim_end_matches('|').trim().to_string())
            .collect()
    };
    assert!(
        table.contains(&format!("| scenario | Argo CD {OLD} | Argo CD {DEFAULT} |")),
        "{table}"
    );
    assert_eq!(
        row("layers-extra-blob-skipped"),
        ["passed", "passed"],
        "{table}"
    );
    assert_eq!(
        row("layers-tar-gzip-suffix"),
        ["passed", "passed"],
        "{table}"
    );
    let newer = row("only-newer");
    assert!(
        newer[0].starts_with("skipped: needs Argo CD >=3.1.6") && newer[0].contains(OLD),
        "{table}"
    );
    assert_eq!(newer[1], "passed", "{table}");
    let extra = row("extra-layer-deploys");
    assert!(
        extra[0].starts_with("failed: step 3 (expect): ")
            && extra[0]
                .ends_with("(Argo CD: ComparisonError: expected only a single oci layer, got 2)"),
        "the failing step and Argo CD's words: {table}"
    );
    assert_eq!(extra[1], "passed", "{table}");
    // The table is printed too.
    assert!(outcome.output.iter().any(|l| l.contains("| only-newer |")));

    // Each release has its own report, and the `when:` steps ran on one
    // release and were skipped on the other.
    let summary = |v: &str| -> serde_json::Value {
        let text = std::fs::read_to_string(report.join(format!("argocd-{v}/summary.json")))
            .unwrap_or_else(|e| panic!("summary of {v}: {e}"));
        serde_json::from_str(&text).expect("json")
    };
    let (old, new) = (summary(OLD), summary(DEFAULT));
    assert_eq!(old["argocdVersion"], OLD);
    assert_eq!(new["argocdVersion"], DEFAULT);
    let refused = "before v3.1.6 the manifest is refused for its second layer";
    let synced = "the extra layer is skipped, the content layer synced";
    let outcome_of = |steps: &[(String, String)], name: &str| {
        steps
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, o)| o.clone())
            .unwrap_or_default()
    };
    let old_steps = steps_of(&old, "layers-extra-blob-skipped");
    let new_steps = steps_of(&new, "layers-extra-blob-skipped");
    assert_eq!(
        (
            outcome_of(&old_steps, refused),
            outcome_of(&old_steps, synced)
        ),
        ("passed".to_string(), "skipped".to_string()),
        "{old_steps:?}"
    );
    assert_eq!(
        (
            outcome_of(&new_steps, refused),
            outcome_of(&new_steps, synced)
        ),
        ("skipped".to_string(), "passed".to_string()),
        "{new_steps:?}"
    );
    assert_eq!(old["skipped"], 1, "only-newer is skipped on {OLD}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bisect_finds_the_first_release_that_accepts_an_extra_layer() {
    harness_core::init_crypto();
    let tmp = tempfile::tempdir().expect("temporary directory");
    let file = write(tmp.path(), "extra-layer-deploys.yaml", EXTRA_LAYER_DEPLOYS);
    let outcome = bisect::run(
        bisect::BisectOptions {
            file,
            good: DEFAULT.into(),
            bad: OLD.into(),
            releases: BISECT_RELEASES.iter().map(|v| v.to_string()).collect(),
            lab: LabKind::Local,
            report_dir: Some(tmp.path().join("bisect")),
            cancel: Default::default(),
        },
        &Progress::new(),
    )
    .await;
    let text = outcome.output.join("\n");
    assert_eq!(outcome.code, 0, "{text}\n{:?}", outcome.errors);
    let first_good = FIRST_ACCEPTING;
    assert!(
        text.starts_with(&format!("first good release: Argo CD {first_good} ")),
        "{text}"
    );
    assert!(
        text.contains(&format!("  {OLD}: failed at step 3 (expect): "))
            && text.contains("(Argo CD: ComparisonError: expected only a single oci layer, got 2)"),
        "the bad side's failing step: {text}"
    );
    assert!(text.contains(&format!("  {first_good}: passed")), "{text}");
    assert!(
        text.contains("tried 3 release(s)"),
        "both ends and the middle: {text}"
    );

    // Endpoints that do not differ: nothing to bisect, said plainly.
    let same = bisect::run(
        bisect::BisectOptions {
            file: write(
                tmp.path(),
                "only-newer.yaml",
                ONLY_NEWER.replace("argocd: \">=3.1.6\"\n", "").as_str(),
            ),
            good: DEFAULT.into(),
            bad: OLD.into(),
            releases: BISECT_RELEASES.iter().map(|v| v.to_string()).collect(),
            lab: LabKind::Local,
            report_dir: Some(tmp.path().join("bisect-2")),
            cancel: Default::default(),
        },
        &Progress::new(),
    )
    .await;
    assert_eq!(same.code, 1, "{:?}", same.output);
    assert!(
        same.output[0].contains(&format!(
            "{OLD} was given as bad but the scenario passed there"
        )),
        "{:?}",
        same.output
    );
}
