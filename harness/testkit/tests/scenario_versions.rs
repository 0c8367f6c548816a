//! `argocd:` on a scenario and `when: {argocd: ...}` on a step: semver
//! constraints on the lab's Argo CD release, parsed at load time with
//! positioned errors, matched against release names as labs report them.

mod common;

use harness_scenario::ArgoConstraint;

#[test]
fn constraints_take_masterminds_and_semver_spellings() {
    for (text, inside, outside) in [
        (
            ">=3.1.6",
            &["v3.1.6", "3.3.10", "v3.6.1"][..],
            &["v3.1.0", "v3.1.5"][..],
        ),
        ("<3.1.6", &["v3.1.0", "v3.1.5"], &["v3.1.6", "v3.3.10"]),
        (
            ">=3.1.6 <3.3.1",
            &["v3.1.8", "v3.2.12", "v3.3.0"],
            &["v3.1.0", "v3.3.1", "v3.3.10"],
        ),
        (">= 3.1.6, < 3.3.1", &["v3.2.0"], &["v3.3.10"]),
        (">=v3.3.1", &["v3.3.10+unknown"], &["v3.3.0"]),
        ("3.3.x", &["v3.3.0", "v3.3.19"], &["v3.4.0"]),
        (
            ">=3.1.6 <3.2.7 || >=3.3.0 <3.3.1",
            &["v3.1.6", "v3.2.6", "v3.3.0"],
            &["v3.1.5", "v3.2.7", "v3.2.11", "v3.3.1", "v3.3.10"],
        ),
        (
            "<3.1.6||>=3.3.1",
            &["v3.1.0", "v3.3.10"],
            &["v3.1.6", "v3.3.0"],
        ),
    ] {
        let constraint = ArgoConstraint::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        for v in inside {
            assert_eq!(constraint.matches(v), Some(true), "{text} holds for {v}");
        }
        for v in outside {
            assert_eq!(constraint.matches(v), Some(false), "{text} excludes {v}");
        }
    }
    let any = ArgoConstraint::parse(">=3.1.0").expect("valid");
    assert_eq!(any.matches("unknown"), None, "not a version: cannot tell");
}

#[test]
fn bad_constraints_are_reported_at_their_keys() {
    let errors = common::load_scenario(
        r#"name: s
argocd: ">=three"
steps:
  - push: {files: {a.yaml: "kind: ConfigMap\n"}, repository: r, tags: [v1]}
  - when: {argocd: "<3.1.6 || >=three"}
    push: {files: {a.yaml: "kind: ConfigMap\n"}, repository: r, tags: [v2]}
  - when: {argocd: ">="}
    push: {files: {a.yaml: "kind: ConfigMap\n"}, repository: r, tags: [v3]}
"#,
        |_| {},
    )
    .expect_err("bad constraints");
    common::assert_errors(
        &errors,
        &[
            ("2:9: ", "`argocd`: `>=three` is not a semver constraint"),
            (
                "5:20: ",
                "`argocd`: in `>=three` of `<3.1.6 || >=three`: `>=three` is not a semver constraint",
            ),
            ("7:20: ", "ends with `>=` and no version"),
        ],
    );
    // `when` takes `argocd` only.
    let errors = common::load_scenario(
        r#"name: s
steps:
  - when: {version: "<3.1.6"}
    push: {files: {a.yaml: "kind: ConfigMap\n"}, repository: r, tags: [v4]}
"#,
        |_| {},
    )
    .expect_err("unknown key");
    common::assert_errors(
        &errors,
        &[("3:12: ", "unknown field `version`, expected one of argocd")],
    );
}

#[test]
fn the_plan_keeps_both_and_a_step_without_when_has_none() {
    let scenario = common::load_scenario(
        r#"name: s
argocd: ">=3.1.0"
steps:
  - push: {files: {a.yaml: "kind: ConfigMap\n"}, repository: r, tags: [v1]}
  - name: only on old releases
    when: {argocd: "<3.1.6"}
    push: {files: {a.yaml: "kind: ConfigMap\n"}, repository: r, tags: [v2]}
"#,
        |_| {},
    )
    .expect("valid");
    assert_eq!(
        scenario.argocd.as_ref().map(|c| c.text.as_str()),
        Some(">=3.1.0")
    );
    assert!(scenario.steps[0].when.is_none());
    let when = scenario.steps[1].when.as_ref().expect("a when");
    assert_eq!(when.argocd.text, "<3.1.6");
    assert_eq!(when.argocd.matches("v3.1.0"), Some(true));
    assert_eq!(when.argocd.matches("v3.3.10"), Some(false));
}
