//! Per-scenario-run names, so scenarios running in parallel on one lab never
//! see each other's repositories, Applications or namespaces.
//!
//! Every name a scenario file writes (repository, Application, destination
//! namespace, and resource namespaces that are one of its destination
//! namespaces) is mapped through one [`Isolation`]; other names (e.g.
//! `kube-system`) are left alone.

use std::collections::BTreeSet;

use sha2::{Digest, Sha256};

use harness_scenario::{Action, Scenario};

/// Longest Kubernetes name we produce (DNS-1123 label).
pub const MAX_NAME_LEN: usize = 63;
/// Characters of the per-run suffix.
pub const SUFFIX_LEN: usize = 7;

/// The name mapping of one scenario run (one attempt).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Isolation {
    suffix: String,
    run_label: String,
    repository_prefix: String,
    /// Destination namespaces as written in the scenario's `app` steps.
    app_namespaces: BTreeSet<String>,
}

impl Isolation {
    /// The mapping for `scenario_name` in run `run_id`, attempt `attempt`;
    /// `app_namespaces` are the destination namespaces its `app` steps use.
    pub fn new(
        run_id: &str,
        scenario_name: &str,
        attempt: u32,
        app_namespaces: impl IntoIterator<Item = String>,
    ) -> Self {
        let suffix = suffix(run_id, scenario_name, attempt);
        let run_label = label_value(run_id);
        let scenario_component = repository_component(scenario_name, "scenario");
        Isolation {
            repository_prefix: format!(
                "{}/{scenario_component}-{suffix}",
                Self::run_repository_component(run_id)
            ),
            suffix,
            run_label,
            app_namespaces: app_namespaces.into_iter().collect(),
        }
    }

    /// The first path component of every repository of run `run_id`
    /// (`e2e-<run>`): what a registry cleanup of the whole run deletes.
    pub fn run_repository_component(run_id: &str) -> String {
        format!("e2e-{}", repository_component(run_id, "run"))
    }

    /// The mapping for a whole scenario: its destination namespaces are read
    /// from every `app` step (in `steps` and `finally`).
    pub fn for_scenario(run_id: &str, scenario: &Scenario, attempt: u32) -> Self {
        let namespaces = scenario
            .steps
            .iter()
            .chain(&scenario.finally)
            .filter_map(|step| match &step.action {
                Action::App(app) => Some(app.namespace.clone()),
                _ => None,
            });
        Self::new(run_id, &scenario.name, attempt, namespaces)
    }

    /// The short unique part, `[a-z0-9]{7}`.
    pub fn suffix(&self) -> &str {
        &self.suffix
    }

    /// The run id as a valid label value (for `oci-e2e.dev/run-id`).
    pub fn run_label(&self) -> &str {
        &self.run_label
    }

    /// `demo-app` -> `e2e-<run>/<scenario>-<suffix>/demo-app`.
    pub fn repository(&self, name: &str) -> String {
        format!("{}/{name}", self.repository_prefix)
    }

    /// Every mapped repository starts with this (`e2e-<run>/<scenario>-<suffix>`).
    pub fn repository_prefix(&self) -> &str {
        &self.repository_prefix
    }

    /// Application `demo` -> `demo-<suffix>`.
    pub fn app(&self, name: &str) -> String {
        self.with_suffix(name)
    }

    /// An object an `apply` step creates in Argo CD's namespace (an
    /// AppProject, a Secret): `team` -> `team-<suffix>`, wherever the file
    /// names it.
    pub fn argo_object(&self, name: &str) -> String {
        self.with_suffix(name)
    }

    /// Destination namespace `demo` -> `demo-<suffix>`.
    pub fn namespace(&self, name: &str) -> String {
        self.with_suffix(name)
    }

    /// The namespace of a resource expectation: mapped when it is one of the
    /// scenario's destination namespaces, untouched otherwise.
    pub fn resource_namespace(&self, name: &str) -> String {
        if self.app_namespaces.contains(name) {
            self.namespace(name)
        } else {
            name.to_string()
        }
    }

    /// The scenario's destination namespaces, mapped.
    pub fn namespaces(&self) -> BTreeSet<String> {
        self.app_namespaces
            .iter()
            .map(|ns| self.namespace(ns))
            .collect()
    }

    /// `<base>-<suffix>`, at most 63 characters: the base is cut (never the
    /// suffix) and stays DNS-1123 (lowercase alphanumerics and `-`, no `-`
    /// at either end).
    fn with_suffix(&self, base: &str) -> String {
        let room = MAX_NAME_LEN - 1 - self.suffix.len();
        let cleaned = dns_chars(base);
        let mut cut: String = cleaned.chars().take(room).collect();
        while cut.ends_with('-') {
            cut.pop();
        }
        if cut.is_empty() {
            self.suffix.clone()
        } else {
            format!("{cut}-{}", self.suffix)
        }
    }
}

/// `[a-z0-9]{SUFFIX_LEN}` from a hash of the run id, scenario name and
/// attempt: stable for one run (so logs and reruns of a report agree), different
/// across runs, scenarios and attempts.
pub fn suffix(run_id: &str, scenario_name: &str, attempt: u32) -> String {
    const ALPHABET: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut hasher = Sha256::new();
    hasher.update(run_id.as_bytes());
    hasher.update([0]);
    hasher.update(scenario_name.as_bytes());
    hasher.update([0]);
    hasher.update(attempt.to_be_bytes());
    let hash = hasher.finalize();
    // 8 bytes give 64 bits; 7 base-36 digits use ~36 of them.
    let mut number = u64::from_be_bytes([
        hash[0], hash[1], hash[2], hash[3], hash[4], hash[5], hash[6], hash[7],
    ]);
    let mut out = String::with_capacity(SUFFIX_LEN);
    for _ in 0..SUFFIX_LEN {
        out.push(ALPHABET[(number % 36) as usize] as char);
        number /= 36;
    }
    out
}

/// Lowercase; every run of characters outside `[a-z0-9]` becomes one `-`;
/// no `-` at the start.
fn dns_chars(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    out
}

/// One OCI repository path component (`[a-z0-9]+(-[a-z0-9]+)*`), at most 40 characters.
fn repository_component(text: &str, fallback: &str) -> String {
    let mut cut: String = dns_chars(text).chars().take(40).collect();
    while cut.ends_with('-') {
        cut.pop();
    }
    if cut.is_empty() {
        fallback.to_string()
    } else {
        cut
    }
}

/// A valid label value: `[a-z0-9A-Z._-]`, alphanumeric at both ends, ≤ 63.
pub fn label_value(text: &str) -> String {
    let mapped: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .take(MAX_NAME_LEN)
        .collect();
    mapped
        .trim_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_string()
}

/// Whether `name` is a DNS-1123 label.
pub fn is_dns_label(name: &str) -> bool {
    let bytes = name.as_bytes();
    let ok = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    !bytes.is_empty()
        && bytes.len() <= MAX_NAME_LEN
        && bytes.iter().all(|b| ok(b) || *b == b'-')
        && bytes.first().is_some_and(ok)
        && bytes.last().is_some_and(ok)
}
