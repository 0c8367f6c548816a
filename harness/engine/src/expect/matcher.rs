//! Subset matching of an expected JSON value against an observed object
//! (the `matches:` rules of the scenario contract).
//!
//! - every expected key must be present with a matching value, recursively;
//! - scalars compare equal including their type (`"1"` does not match `1`;
//!   numbers compare by value, so `1` matches `1.0`);
//! - a list matches when each expected element matches a *distinct* element
//!   of the actual list, in any order (a maximum bipartite assignment, so the
//!   order of expected elements never decides the result);
//! - an empty map matches any map, an empty list any list.

use std::fmt::Write as _;

use serde_json::{Map, Value};

/// One reason a match failed, at a path like `spec.ports` or `data.version`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Mismatch {
    /// Where, from the root of the object (`""` for the root itself).
    pub path: String,
    pub problem: String,
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.problem)
        } else {
            write!(f, "{}: {}", self.path, self.problem)
        }
    }
}

/// Why a match failed: the failing paths and a diff.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MatchReport {
    pub mismatches: Vec<Mismatch>,
    /// Unified diff of the expected value against the observed object
    /// pruned to the expected keys (YAML).
    pub diff: String,
}

impl std::fmt::Display for MatchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for mismatch in &self.mismatches {
            writeln!(f, "  {mismatch}")?;
        }
        if !self.diff.is_empty() {
            write!(f, "{}", self.diff)?;
        }
        Ok(())
    }
}

/// Whether `actual` contains `expected` (contract rules).
pub fn matches(expected: &Value, actual: &Value) -> bool {
    match (expected, actual) {
        (Value::Object(want), Value::Object(have)) => want
            .iter()
            .all(|(key, value)| have.get(key).is_some_and(|found| matches(value, found))),
        (Value::Array(want), Value::Array(have)) => assign(want, have).iter().all(Option::is_some),
        (Value::Number(a), Value::Number(b)) => numbers_equal(a, b),
        (Value::Object(_) | Value::Array(_) | Value::Number(_), _) => false,
        (want, have) => want == have,
    }
}

/// `None` when `actual` contains `expected`, else what failed and a diff.
pub fn check(expected: &Value, actual: &Value) -> Option<MatchReport> {
    let mut mismatches = Vec::new();
    explain(expected, actual, "", &mut mismatches);
    if mismatches.is_empty() {
        return None;
    }
    let pruned = prune(expected, actual);
    Some(MatchReport {
        mismatches,
        diff: diff(expected, pruned.as_ref()),
    })
}

/// For each expected element, the index of the distinct actual element it
/// is assigned to, in a maximum assignment (Kuhn's augmenting paths).
fn assign(expected: &[Value], actual: &[Value]) -> Vec<Option<usize>> {
    let compatible: Vec<Vec<usize>> = expected
        .iter()
        .map(|want| {
            (0..actual.len())
                .filter(|&j| matches(want, &actual[j]))
                .collect()
        })
        .collect();
    let mut owner: Vec<Option<usize>> = vec![None; actual.len()];
    for i in 0..expected.len() {
        let mut visited = vec![false; actual.len()];
        augment(i, &compatible, &mut owner, &mut visited);
    }
    let mut assigned = vec![None; expected.len()];
    for (j, owner) in owner.iter().enumerate() {
        if let Some(i) = owner {
            assigned[*i] = Some(j);
        }
    }
    assigned
}

fn augment(
    i: usize,
    compatible: &[Vec<usize>],
    owner: &mut [Option<usize>],
    visited: &mut [bool],
) -> bool {
    for &j in &compatible[i] {
        if visited[j] {
            continue;
        }
        visited[j] = true;
        if owner[j].is_none_or(|other| augment(other, compatible, owner, visited)) {
            owner[j] = Some(i);
            return true;
        }
    }
    false
}

fn numbers_equal(a: &serde_json::Number, b: &serde_json::Number) -> bool {
    match (a.as_i64(), b.as_i64(), a.as_u64(), b.as_u64()) {
        (Some(x), Some(y), _, _) => x == y,
        (_, _, Some(x), Some(y)) => x == y,
        _ => a.as_f64().zip(b.as_f64()).is_some_and(|(x, y)| x == y),
    }
}

fn explain(expected: &Value, actual: &Value, path: &str, out: &mut Vec<Mismatch>) {
    let mut push = |problem: String| {
        out.push(Mismatch {
            path: path.to_string(),
            problem,
        })
    };
    match (expected, actual) {
        (Value::Object(want), Value::Object(have)) => {
            for (key, value) in want {
                let child = child_path(path, key);
                match have.get(key) {
                    Some(found) => explain(value, found, &child, out),
                    None => out.push(Mismatch {
                        path: child,
                        problem: format!(
                            "expected {}, found nothing (no such key)",
                            compact(value)
                        ),
                    }),
                }
            }
        }
        (Value::Array(want), Value::Array(have)) => {
            let assigned = assign(want, have);
            for (element, slot) in want.iter().zip(&assigned) {
                if slot.is_some() {
                    continue;
                }
                let any = have.iter().any(|candidate| matches(element, candidate));
                let problem = if any {
                    format!(
                        "no distinct element left for {}: the elements it matches are taken by other expected elements",
                        compact(element)
                    )
                } else {
                    format!("no element matches {}", compact(element))
                };
                out.push(Mismatch {
                    path: path.to_string(),
                    problem,
                });
            }
        }
        (want, have) if !matches(want, have) => {
            if kind_of(want) == kind_of(have) || (want.is_object() && have.is_object()) {
                push(format!(
                    "expected {}, found {}",
                    compact(want),
                    compact(have)
                ));
            } else {
                push(format!(
                    "expected {} ({}), found {} ({})",
                    compact(want),
                    kind_of(want),
                    compact(have),
                    kind_of(have)
                ));
            }
        }
        _ => {}
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "map",
    }
}

fn child_path(parent: &str, key: &str) -> String {
    let simple = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    match (parent.is_empty(), simple) {
        (true, true) => key.to_string(),
        (false, true) => format!("{parent}.{key}"),
        (_, false) => format!("{parent}[{}]", Value::String(key.to_string())),
    }
}

/// A one-line rendering: `{port: 80, name: "http"}`, strings JSON-quoted.
pub fn compact(value: &Value) -> String {
    let mut out = String::new();
    write_compact(value, &mut out);
    if out.chars().count() > 200 {
        let cut: String = out.chars().take(200).collect();
        return format!("{cut}...");
    }
    out
}

fn write_compact(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            out.push('{');
            for (n, (key, item)) in map.iter().enumerate() {
                if n > 0 {
                    out.push_str(", ");
                }
                let simple = !key.is_empty()
                    && key
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "_-./".contains(c));
                if simple {
                    out.push_str(key);
                } else {
                    out.push_str(&Value::String(key.clone()).to_string());
                }
                out.push_str(": ");
                write_compact(item, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (n, item) in items.iter().enumerate() {
                if n > 0 {
                    out.push_str(", ");
                }
                write_compact(item, out);
            }
            out.push(']');
        }
        other => {
            let _ = write!(out, "{other}");
        }
    }
}

/// `actual` cut down to the keys `expected` names, so a diff shows only what
/// was asked about. List elements are paired with their assigned actual
/// element (or, for an unassigned one, the closest free element) and kept in
/// the expected order; `None` when nothing corresponds.
pub fn prune(expected: &Value, actual: &Value) -> Option<Value> {
    match (expected, actual) {
        (Value::Object(want), Value::Object(have)) => {
            let mut kept = Map::new();
            for (key, value) in want {
                if let Some(found) = have.get(key).and_then(|found| prune(value, found)) {
                    kept.insert(key.clone(), found);
                }
            }
            Some(Value::Object(kept))
        }
        (Value::Array(want), Value::Array(have)) => {
            let assigned = assign(want, have);
            let mut free: Vec<bool> = vec![true; have.len()];
            for j in assigned.iter().flatten() {
                free[*j] = false;
            }
            let mut kept = Vec::new();
            for (element, slot) in want.iter().zip(&assigned) {
                let index = slot.or_else(|| closest(element, have, &free));
                if let Some(j) = index {
                    free[j] = false;
                    if let Some(found) = prune(element, &have[j]) {
                        kept.push(found);
                    }
                }
            }
            Some(Value::Array(kept))
        }
        (_, found) => Some(found.clone()),
    }
}

/// The free actual element with the fewest mismatches against `element`
/// (only same-kind elements count as candidates).
fn closest(element: &Value, actual: &[Value], free: &[bool]) -> Option<usize> {
    (0..actual.len())
        .filter(|&j| free[j] && kind_of(&actual[j]) == kind_of(element))
        .min_by_key(|&j| {
            let mut found = Vec::new();
            explain(element, &actual[j], "", &mut found);
            found.len()
        })
}

/// Unified diff (YAML) of what was expected against what was observed.
fn diff(expected: &Value, observed: Option<&Value>) -> String {
    let want = to_yaml(expected);
    let have = observed.map(to_yaml).unwrap_or_default();
    similar::TextDiff::from_lines(&want, &have)
        .unified_diff()
        .context_radius(3)
        .header("expected", "observed")
        .to_string()
}

fn to_yaml(value: &Value) -> String {
    let mut text = serde_saphyr::to_string(value).unwrap_or_else(|_| format!("{value:#}\n"));
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text
}
