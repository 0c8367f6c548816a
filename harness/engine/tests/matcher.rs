//! The `matches:` subset matcher: table tests of the contract's rules, and
//! the failure report (paths and diff).

use harness_engine::expect::matcher::{check, matches, prune};
use serde_json::{Value, json};

/// (case, expected, actual, should match)
fn table() -> Vec<(&'static str, Value, Value, bool)> {
    vec![
        // Maps.
        ("equal maps", json!({"a": 1}), json!({"a": 1}), true),
        (
            "extra actual keys are fine",
            json!({"a": 1}),
            json!({"a": 1, "b": 2}),
            true,
        ),
        (
            "missing key",
            json!({"a": 1, "c": 3}),
            json!({"a": 1, "b": 2}),
            false,
        ),
        (
            "nested subset",
            json!({"data": {"version": "1.0.0"}}),
            json!({"data": {"version": "1.0.0", "x": "y"}, "kind": "ConfigMap"}),
            true,
        ),
        (
            "nested different value",
            json!({"data": {"version": "1.0.0"}}),
            json!({"data": {"version": "2.0.0"}}),
            false,
        ),
        (
            "deeply nested",
            json!({"a": {"b": {"c": {"d": true}}}}),
            json!({"a": {"b": {"c": {"d": true, "e": 1}}}}),
            true,
        ),
        (
            "empty map matches any map",
            json!({}),
            json!({"anything": [1, 2]}),
            true,
        ),
        ("empty map matches empty map", json!({}), json!({}), true),
        (
            "empty nested map matches a nested map",
            json!({"spec": {}}),
            json!({"spec": {"replicas": 3}}),
            true,
        ),
        (
            "empty nested map needs the key",
            json!({"spec": {}}),
            json!({"status": {}}),
            false,
        ),
        (
            "map does not match a list",
            json!({"a": {}}),
            json!({"a": []}),
            false,
        ),
        // Type strictness.
        (
            "string 1 is not number 1",
            json!({"n": "1"}),
            json!({"n": 1}),
            false,
        ),
        (
            "number 1 is not string 1",
            json!({"n": 1}),
            json!({"n": "1"}),
            false,
        ),
        (
            "string true is not boolean true",
            json!({"b": "true"}),
            json!({"b": true}),
            false,
        ),
        (
            "integer matches equal float",
            json!({"n": 1}),
            json!({"n": 1.0}),
            true,
        ),
        ("different numbers", json!({"n": 1}), json!({"n": 2}), false),
        ("negative numbers", json!({"n": -5}), json!({"n": -5}), true),
        (
            "large unsigned numbers",
            json!({"n": u64::MAX}),
            json!({"n": u64::MAX}),
            true,
        ),
        (
            "scalar does not match a map",
            json!({"a": "x"}),
            json!({"a": {"x": 1}}),
            false,
        ),
        // Null.
        (
            "null matches null",
            json!({"a": null}),
            json!({"a": null}),
            true,
        ),
        (
            "null needs the key present",
            json!({"a": null}),
            json!({}),
            false,
        ),
        (
            "null does not match a value",
            json!({"a": null}),
            json!({"a": 0}),
            false,
        ),
        (
            "a value does not match null",
            json!({"a": ""}),
            json!({"a": null}),
            false,
        ),
        // Lists.
        (
            "list subset, any order",
            json!({"l": [3, 1]}),
            json!({"l": [1, 2, 3]}),
            true,
        ),
        (
            "list element missing",
            json!({"l": [4]}),
            json!({"l": [1, 2, 3]}),
            false,
        ),
        (
            "empty list matches any list",
            json!({"l": []}),
            json!({"l": [1, 2]}),
            true,
        ),
        (
            "empty list matches empty list",
            json!({"l": []}),
            json!({"l": []}),
            true,
        ),
        (
            "empty list does not match a map",
            json!({"l": []}),
            json!({"l": {}}),
            false,
        ),
        (
            "list of maps by subset",
            json!({"ports": [{"port": 80}]}),
            json!({"ports": [{"port": 443, "name": "https"}, {"port": 80, "name": "http"}]}),
            true,
        ),
        (
            "list of maps, no element",
            json!({"ports": [{"port": 8080}]}),
            json!({"ports": [{"port": 443}, {"port": 80}]}),
            false,
        ),
        (
            "duplicates need distinct elements",
            json!({"l": [1, 1]}),
            json!({"l": [1, 2]}),
            false,
        ),
        (
            "duplicates with enough elements",
            json!({"l": [1, 1]}),
            json!({"l": [1, 2, 1]}),
            true,
        ),
        (
            "distinct elements: greedy would fail",
            json!({"l": [{"a": 1}, {"a": 1, "b": 2}]}),
            json!({"l": [{"a": 1, "b": 2}, {"a": 1}]}),
            true,
        ),
        (
            "distinct elements: both need the same one",
            json!({"l": [{"a": 1}, {"a": 1, "b": 2}]}),
            json!({"l": [{"a": 1, "b": 2}, {"a": 2}]}),
            false,
        ),
        (
            "augmenting path of length three",
            json!({"l": [{"a": 1}, {"b": 1}, {"a": 1, "b": 1, "c": 1}]}),
            json!({"l": [{"a": 1, "b": 1, "c": 1}, {"a": 1, "b": 1}, {"b": 1, "x": 0}]}),
            true,
        ),
        (
            "more expected than actual",
            json!({"l": [1, 2, 3]}),
            json!({"l": [1, 2]}),
            false,
        ),
        (
            "nested lists",
            json!({"l": [[2, 1]]}),
            json!({"l": [[0], [1, 2, 3]]}),
            true,
        ),
        (
            "list type strictness",
            json!({"l": ["1"]}),
            json!({"l": [1]}),
            false,
        ),
        (
            "list does not match a scalar",
            json!({"l": [1]}),
            json!({"l": 1}),
            false,
        ),
        // Top level.
        ("top-level scalar", json!("x"), json!("x"), true),
        (
            "top-level list",
            json!([{"k": "v"}]),
            json!([{"k": "v", "z": 1}]),
            true,
        ),
    ]
}

#[test]
fn subset_match_table() {
    let mut wrong = Vec::new();
    for (case, expected, actual, want) in table() {
        if matches(&expected, &actual) != want {
            wrong.push(format!(
                "{case}: expected {want} for {expected} against {actual}"
            ));
        }
        // `check` must agree with `matches`.
        if check(&expected, &actual).is_none() != want {
            wrong.push(format!("{case}: check() disagrees with matches()"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn report_names_failing_paths() {
    let expected = json!({
        "metadata": {"labels": {"app.kubernetes.io/name": "demo"}},
        "data": {"version": "1.0.0", "replicas": "1", "extra": "x"},
        "spec": {"ports": [{"port": 80}]}
    });
    let actual = json!({
        "metadata": {"name": "demo-config", "labels": {"app.kubernetes.io/name": "other"}},
        "data": {"version": "2.0.0", "replicas": 1},
        "spec": {"ports": [{"port": 443, "name": "https"}]}
    });
    let report = check(&expected, &actual).expect("should not match");
    let lines: Vec<String> = report.mismatches.iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        vec![
            r#"data.extra: expected "x", found nothing (no such key)"#,
            r#"data.replicas: expected "1" (string), found 1 (number)"#,
            r#"data.version: expected "1.0.0", found "2.0.0""#,
            r#"metadata.labels["app.kubernetes.io/name"]: expected "demo", found "other""#,
            "spec.ports: no element matches {port: 80}",
        ]
    );
}

#[test]
fn report_explains_distinctness() {
    let report = check(
        &json!({"l": [{"a": 1}, {"a": 1}]}),
        &json!({"l": [{"a": 1}]}),
    )
    .expect("should not match");
    assert_eq!(report.mismatches.len(), 1);
    assert!(
        report.mismatches[0]
            .problem
            .starts_with("no distinct element left for {a: 1}"),
        "{}",
        report.mismatches[0]
    );
}

#[test]
fn diff_shows_only_expected_keys() {
    let expected = json!({"data": {"version": "1.0.0"}});
    let actual = json!({"metadata": {"name": "demo-config", "uid": "123"}, "data": {"version": "2.0.0", "other": "x"}});
    let report = check(&expected, &actual).expect("should not match");
    insta::assert_snapshot!(report.diff, @r#"
    --- expected
    +++ observed
    @@ -1,2 +1,2 @@
     data:
    -  version: "1.0.0"
    +  version: "2.0.0"
    "#);
}

#[test]
fn prune_pairs_list_elements_with_their_match_or_the_closest() {
    let expected = json!({"ports": [{"port": 80, "protocol": "UDP"}, {"port": 443}]});
    let actual = json!({"ports": [
        {"port": 443, "protocol": "TCP", "name": "https"},
        {"port": 80, "protocol": "TCP", "name": "http"},
        {"port": 9090, "name": "metrics"}
    ]});
    let pruned = prune(&expected, &actual);
    assert_eq!(
        pruned,
        Some(json!({"ports": [{"port": 80, "protocol": "TCP"}, {"port": 443}]}))
    );
}

#[test]
fn missing_object_keys_are_left_out_of_the_pruned_copy() {
    assert_eq!(
        prune(&json!({"a": 1, "b": {"c": 2}}), &json!({"b": {"d": 3}})),
        Some(json!({"b": {}}))
    );
}
