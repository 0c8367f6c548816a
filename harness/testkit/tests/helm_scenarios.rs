//! Loading `push: {chart: ...}`, `push: {index: ...}` and `app: {helm: ...}`:
//! what the plan holds, and bad input reported at file:line:column.

use std::path::Path;

use harness_scenario::{self as scenario, Action, HelmValues, PushContent, Scenario, Template};

/// A scenario file next to a chart directory `chart/` holding `chart_yaml`
/// (no Chart.yaml when `None`).
fn load(yaml: &str, chart_yaml: Option<&str>) -> Result<Scenario, Vec<String>> {
    let directory = tempfile::tempdir().expect("temporary directory");
    let chart = directory.path().join("chart");
    std::fs::create_dir_all(chart.join("templates")).expect("chart directory");
    std::fs::write(chart.join("templates/cm.yaml"), "kind: ConfigMap\n").expect("template");
    if let Some(text) = chart_yaml {
        std::fs::write(chart.join("Chart.yaml"), text).expect("Chart.yaml");
    }
    let path = directory.path().join("scenario.yaml");
    std::fs::write(&path, yaml).expect("write scenario");
    scenario::load_file(Path::new(&path)).map_err(|diagnostics| {
        diagnostics
            .iter()
            .map(|d| {
                let location = d.location.as_ref().expect("located");
                format!("{}:{}: {}", location.line, location.column, d.message)
            })
            .collect()
    })
}

const CHART: &str = "apiVersion: v2\nname: demo\nversion: 1.2.3+build.4\n";

#[test]
fn a_chart_push_is_tagged_with_its_version_and_more_tags_add_to_it() {
    let scenario = load(
        "name: s
steps:
  - push: {chart: chart, repository: charts/demo, tags: [stable], as: c1}
  - app:
      name: demo
      repository: charts/demo
      revision: ^1.0.0
      helm:
        releaseName: rel
        values: {greeting: '${c1.digest}'}
        parameters: [{name: a.b, value: '1', forceString: true}]
",
        Some(CHART),
    )
    .expect("valid");
    let Action::Push(push) = &scenario.steps[0].action else {
        panic!("a push");
    };
    let PushContent::Chart(chart) = &push.content else {
        panic!("a chart: {:?}", push.content);
    };
    assert_eq!(
        (chart.name.as_str(), chart.version.as_str()),
        ("demo", "1.2.3+build.4")
    );
    // `helm push` writes `+` as `_` in the tag.
    assert_eq!(
        push.tags,
        [Template("1.2.3_build.4".into()), Template("stable".into())]
    );
    let Action::App(app) = &scenario.steps[1].action else {
        panic!("an app");
    };
    let helm = app.helm.as_ref().expect("helm options");
    assert_eq!(helm.release_name.as_deref(), Some("rel"));
    assert!(matches!(&helm.values, Some(HelmValues::Object(v)) if v["greeting"] == "${c1.digest}"));
    assert!(helm.parameters[0].force_string);
}

#[test]
fn a_missing_chart_yaml_is_reported_at_the_chart_key() {
    let errors = load(
        "name: s
steps:
  - push: {chart: chart, repository: charts/demo}
",
        None,
    )
    .expect_err("no Chart.yaml");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].starts_with("3:19: "), "{errors:?}");
    assert!(errors[0].contains("has no Chart.yaml"), "{errors:?}");
}

#[test]
fn an_invalid_chart_version_is_reported_at_the_chart_key() {
    let errors = load(
        "name: s
steps:
  - push:
      chart: chart
      repository: charts/demo
",
        Some("apiVersion: v2\nname: demo\nversion: one\n"),
    )
    .expect_err("bad version");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].starts_with("4:14: "), "{errors:?}");
    assert!(errors[0].contains("not a SemVer 2 version"), "{errors:?}");
}

#[test]
fn dependency_repositories_are_templates_checked_at_the_chart_key() {
    let chart = |repository: &str| {
        format!(
            "apiVersion: v2\nname: demo\nversion: 0.1.0\ndependencies:\n  - name: lib\n    version: 0.1.0\n    repository: {repository}\n"
        )
    };
    let scenario = load(
        "name: s
steps:
  - push: {chart: chart, repository: charts/demo}
",
        Some(&chart("oci://${lab.argoRegistry}/${repo:charts}")),
    )
    .expect("valid");
    let Action::Push(push) = &scenario.steps[0].action else {
        panic!("a push");
    };
    let PushContent::Chart(source) = &push.content else {
        panic!("a chart: {:?}", push.content);
    };
    assert_eq!(
        source.dependency_repositories,
        [Template("oci://${lab.argoRegistry}/${repo:charts}".into())]
    );

    // An unknown variable and a digest no push binds: both at `chart:`,
    // naming Chart.yaml and the dependency.
    for (repository, needle) in [
        (
            "oci://${lab.registy}/charts",
            "unknown variable `${lab.registy}`",
        ),
        ("oci://r/${v9.digest}", "undefined variable `${v9.digest}`"),
    ] {
        let errors = load(
            "name: s
steps:
  - push: {chart: chart, repository: charts/demo}
",
            Some(&chart(repository)),
        )
        .expect_err(repository);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].starts_with("3:19: "), "{errors:?}");
        assert!(
            errors[0].contains("Chart.yaml: dependency `lib`, `repository`: ")
                && errors[0].contains(needle),
            "{errors:?}"
        );
    }

    // Vendored subcharts are still refused, saying what to do instead.
    let errors = load(
        "name: s
steps:
  - push: {chart: chart, repository: charts/demo}
",
        Some("apiVersion: v2\nname: demo\nversion: 0.1.0\ndependencies:\n  - name: lib\n    version: 0.1.0\n"),
    )
    .expect_err("no repository");
    assert!(
        errors[0].starts_with("3:19: ")
            && errors[0].contains("dependency `lib` has no `repository`"),
        "{errors:?}"
    );
}

#[test]
fn chart_is_exclusive_with_the_other_contents_and_takes_no_layer_media_type() {
    let errors = load(
        "name: s
steps:
  - push: {chart: chart, source: chart, repository: charts/demo}
  - push: {chart: chart, repository: charts/demo, layerMediaType: a/b}
",
        Some(CHART),
    )
    .expect_err("invalid");
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(
        errors[0].starts_with("3:11: ") && errors[0].contains("`source`, `chart` together"),
        "{errors:?}"
    );
    assert!(
        errors[1].starts_with("4:67: ") && errors[1].contains("does not apply to `chart`"),
        "{errors:?}"
    );
}

#[test]
fn index_variants_bind_their_digests_for_later_steps_only() {
    let scenario = load(
        "name: s
steps:
  - push:
      repository: idx
      tags: [latest]
      as: idx
      index:
        manifests:
          - {files: {a.yaml: 'x: 1'}, platform: {os: linux, architecture: amd64}, as: amd}
          - {files: {a.yaml: 'x: 2'}, annotations: {target: prod}, as: prod}
  - app: {name: a, repository: idx, revision: '${prod.digest}'}
  - expect: {app: a, revision: '${amd.digest}'}
  - expect: {app: a, revision: '${idx.digest}'}
",
        None,
    )
    .expect("valid");
    let Action::Push(push) = &scenario.steps[0].action else {
        panic!("a push");
    };
    let PushContent::Index(variants) = &push.content else {
        panic!("an index");
    };
    assert_eq!(variants.len(), 2);
    assert_eq!(
        variants[0].platform.as_ref().map(|p| p.os.as_str()),
        Some("linux")
    );
    assert_eq!(variants[1].annotations["target"], Template("prod".into()));
    assert_eq!(variants[1].bind.as_deref(), Some("prod"));

    let errors = load(
        "name: s
steps:
  - push:
      repository: idx
      index:
        manifests:
          - {files: {a.yaml: 'x: ${prod.digest}'}, as: amd}
          - {files: {a.yaml: 'x: 2'}, platform: {os: Linux, architecture: amd64}, as: prod}
          - {platform: {os: linux, architecture: arm64}, as: amd}
",
        None,
    )
    .expect_err("invalid");
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with("7:34: ") && e.contains("undefined variable `${prod.digest}`")),
        "{errors:?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with("8:54: ") && e.contains("platform `os: Linux`")),
        "{errors:?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with("9:13: ") && e.contains("needs `source:`")),
        "{errors:?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with("9:62: ") && e.contains("`as: amd` is already used")),
        "{errors:?}"
    );
}

#[test]
fn helm_values_must_be_text_or_a_map() {
    let errors = load(
        "name: s
steps:
  - push: {chart: chart, repository: charts/demo}
  - app: {name: a, repository: charts/demo, revision: 1.2.3, helm: {values: [1, 2]}}
",
        Some(CHART),
    )
    .expect_err("invalid");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains("`values` is a YAML document as a string"),
        "{errors:?}"
    );
}
