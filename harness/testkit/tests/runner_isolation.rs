//! Per-scenario-run names: unique, stable, DNS-1123 valid, at most 63
//! characters, and only the scenario's own namespaces are mapped.

use std::collections::BTreeSet;

use harness_engine::isolation::{
    Isolation, MAX_NAME_LEN, SUFFIX_LEN, is_dns_label, label_value, suffix,
};

fn isolation() -> Isolation {
    Isolation::new(
        "20261129-105022-ab12",
        "latest-follows-digest",
        1,
        ["demo".to_string(), "shared".to_string()],
    )
}

#[test]
fn suffix_is_short_lowercase_and_stable() {
    let a = suffix("run-1", "scenario", 1);
    assert_eq!(a.len(), SUFFIX_LEN);
    assert!(
        a.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()),
        "{a}"
    );
    assert_eq!(
        a,
        suffix("run-1", "scenario", 1),
        "same inputs, same suffix"
    );
}

#[test]
fn suffix_differs_by_run_scenario_and_attempt() {
    let inputs = [
        ("run-1", "scenario", 1),
        ("run-2", "scenario", 1),
        ("run-1", "scenario-b", 1),
        ("run-1", "scenario", 2),
        // The separator keeps `ab`+`c` apart from `a`+`bc`.
        ("ab", "c", 1),
        ("a", "bc", 1),
    ];
    let suffixes: BTreeSet<String> = inputs.iter().map(|(r, s, a)| suffix(r, s, *a)).collect();
    assert_eq!(suffixes.len(), inputs.len(), "{suffixes:?}");
}

#[test]
fn names_are_mapped_with_the_suffix() {
    let iso = isolation();
    let s = iso.suffix().to_string();
    let table = [
        (iso.app("demo"), format!("demo-{s}")),
        (iso.namespace("demo"), format!("demo-{s}")),
        (iso.resource_namespace("demo"), format!("demo-{s}")),
        (iso.resource_namespace("shared"), format!("shared-{s}")),
        (
            iso.resource_namespace("kube-system"),
            "kube-system".to_string(),
        ),
        (iso.resource_namespace("argocd"), "argocd".to_string()),
        (
            iso.repository("demo-app"),
            format!("e2e-20261129-105022-ab12/latest-follows-digest-{s}/demo-app"),
        ),
        (
            iso.repository("team/demo-app"),
            format!("e2e-20261129-105022-ab12/latest-follows-digest-{s}/team/demo-app"),
        ),
    ];
    for (got, want) in table {
        assert_eq!(got, want);
    }
    assert_eq!(
        iso.namespaces(),
        BTreeSet::from([format!("demo-{s}"), format!("shared-{s}")])
    );
}

#[test]
fn long_names_are_cut_keeping_the_suffix_and_validity() {
    let iso = isolation();
    let s = iso.suffix().to_string();
    let table: &[(&str, &str)] = &[
        ("a", "plain short name"),
        (&"x".repeat(55), "fits exactly: 55 + 1 + 7 = 63"),
        (&"x".repeat(56), "one too long"),
        (&"y".repeat(200), "far too long"),
        (
            &format!("{}-tail", "z".repeat(54)),
            "the cut lands right after a dash",
        ),
        ("Demo_App.v1", "characters outside DNS-1123"),
        ("--weird--", "dashes at both ends"),
        ("", "empty"),
    ];
    for (name, case) in table {
        for mapped in [iso.app(name), iso.namespace(name)] {
            assert!(
                mapped.len() <= MAX_NAME_LEN,
                "{case}: {mapped} is {} long",
                mapped.len()
            );
            assert!(is_dns_label(&mapped), "{case}: {mapped} is not a DNS label");
            assert!(mapped.ends_with(&s), "{case}: {mapped} lost the suffix");
        }
    }
    assert_eq!(iso.app(&"x".repeat(55)), format!("{}-{s}", "x".repeat(55)));
    assert_eq!(iso.app(&"x".repeat(56)), format!("{}-{s}", "x".repeat(55)));
    assert_eq!(
        iso.app(&format!("{}-tail", "z".repeat(54))),
        format!("{}-{s}", "z".repeat(54))
    );
    assert_eq!(iso.app("Demo_App.v1"), format!("demo-app-v1-{s}"));
}

#[test]
fn repositories_stay_valid_for_odd_run_ids() {
    let iso = Isolation::new("Run 2026/11/29 #3", "a--b", 1, []);
    let repo = iso.repository("demo-app");
    assert!(repo.starts_with("e2e-run-2026-11-29-3/a-b-"), "{repo}");
    for component in repo.split('/') {
        assert!(
            !component.is_empty() && is_dns_label(component),
            "{repo}: component {component:?}"
        );
    }
}

#[test]
fn label_values_are_valid() {
    let table = [
        ("20261129-105022-ab12", "20261129-105022-ab12"),
        ("run with spaces", "run-with-spaces"),
        ("-leading.and.trailing_", "leading.and.trailing"),
    ];
    for (input, want) in table {
        assert_eq!(label_value(input), want);
    }
    assert_eq!(label_value(&"r".repeat(100)).len(), 63);
}

#[test]
fn different_runs_of_one_scenario_do_not_collide() {
    let a = Isolation::new("run-a", "s", 1, ["demo".to_string()]);
    let b = Isolation::new("run-b", "s", 1, ["demo".to_string()]);
    assert_ne!(a.app("demo"), b.app("demo"));
    assert_ne!(a.namespace("demo"), b.namespace("demo"));
    assert_ne!(a.repository("demo-app"), b.repository("demo-app"));
}

#[test]
fn a_scenario_maps_the_destination_namespaces_of_all_its_app_steps() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.yaml");
    std::fs::write(
        &path,
        r#"
name: two-apps
steps:
  - push: {files: {a.yaml: "x: 1"}, repository: demo-app, tags: [v1]}
  - app: {name: demo, repository: demo-app, revision: v1}
  - app: {name: other, repository: demo-app, revision: v1, namespace: shared}
finally:
  - app: {name: late, repository: demo-app, revision: v1, namespace: cleanup-ns}
"#,
    )
    .unwrap();
    let scenario = harness_scenario::load_file(&path).unwrap_or_else(|d| panic!("{d:?}"));
    let iso = Isolation::for_scenario("run", &scenario, 1);
    let s = iso.suffix().to_string();
    assert_eq!(
        iso.namespaces(),
        BTreeSet::from([
            format!("demo-{s}"),
            format!("shared-{s}"),
            format!("cleanup-ns-{s}")
        ])
    );
    assert_eq!(
        iso.resource_namespace("other"),
        "other",
        "an app name is not a namespace"
    );
    assert_eq!(iso, Isolation::for_scenario("run", &scenario, 1), "stable");
    assert_ne!(
        iso.suffix(),
        Isolation::for_scenario("run", &scenario, 2).suffix(),
        "attempts differ"
    );
}

/// `${repo:NAME}` names the same repository the push and app steps use:
/// the runner builds its variables from the isolation's prefix.
#[test]
fn repo_variable_is_the_mapped_repository() {
    let isolation =
        harness_engine::isolation::Isolation::new("run-1", "demo", 1, Vec::<String>::new());
    let vars = harness_scenario::Vars::for_lab(
        "127.0.0.1:5001".into(),
        "kind-registry:5000".into(),
        isolation.repository_prefix().to_string(),
    );
    for name in ["charts", "team/base-chart"] {
        assert_eq!(vars.repository(name), isolation.repository(name), "{name}");
    }
}
