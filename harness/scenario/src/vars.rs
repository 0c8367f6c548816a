//! Values of `${...}` variables during one scenario run.

use std::collections::BTreeMap;

use super::plan::Template;
use super::template::{Segment, UndefinedVariable, VarRef, parse};

/// What the variables of one scenario run stand for: the lab registry (as
/// the harness and as Argo CD reach it), the run's repository paths, and
/// the digests bound by `as:` so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vars {
    registry: String,
    argo_registry: String,
    /// Every repository NAME maps to `<prefix>/NAME` (empty: NAME itself).
    repository_prefix: String,
    digests: BTreeMap<String, String>,
}

impl Vars {
    /// `registry` is the address as the host reaches it (`${lab.registry}`),
    /// and as Argo CD does; repositories keep their names.
    pub fn new(registry: String) -> Self {
        Self::for_lab(registry.clone(), registry, String::new())
    }

    /// The variables of a run on a lab: `registry` as the harness reaches
    /// it, `argo_registry` as Argo CD does, `repository_prefix` the run's
    /// (what the isolation puts before every repository name).
    pub fn for_lab(registry: String, argo_registry: String, repository_prefix: String) -> Self {
        Vars {
            registry,
            argo_registry,
            repository_prefix,
            digests: BTreeMap::new(),
        }
    }

    /// The run's path of repository `name` (`${repo:NAME}`).
    pub fn repository(&self, name: &str) -> String {
        if self.repository_prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}/{name}", self.repository_prefix)
        }
    }

    /// Bind `${name.digest}` (after a push step with `as: name`).
    pub fn bind_digest(&mut self, name: impl Into<String>, digest: impl Into<String>) {
        self.digests.insert(name.into(), digest.into());
    }

    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The digest bound to `name`, if its push step has run.
    pub fn digest(&self, name: &str) -> Option<&str> {
        self.digests.get(name).map(String::as_str)
    }

    /// Every bound digest, by name (for reports).
    pub fn digests(&self) -> &BTreeMap<String, String> {
        &self.digests
    }

    /// The value of `var`, if it has one at this point of the run.
    pub fn value(&self, var: &VarRef) -> Option<String> {
        match var {
            VarRef::LabRegistry => Some(self.registry.clone()),
            VarRef::LabArgoRegistry => Some(self.argo_registry.clone()),
            VarRef::Digest(name) => self.digest(name).map(str::to_owned),
            VarRef::Repo(name) => Some(self.repository(name)),
        }
    }
}

// Rendering lives with the values it needs: `template` parses and knows no
// values, `vars` depends on it, never the other way round.
impl Template {
    /// The text with every variable replaced by its value.
    pub fn render(&self, vars: &Vars) -> Result<String, UndefinedVariable> {
        let (segments, problems) = parse(&self.0);
        if let Some(problem) = problems.first() {
            let (start, end) = problem.range();
            return Err(UndefinedVariable {
                variable: self.0[start..end].to_string(),
            });
        }
        let mut rendered = String::with_capacity(self.0.len());
        for segment in segments {
            match segment {
                Segment::Text(text) => rendered.push_str(text),
                Segment::Var { var, .. } => match vars.value(&var) {
                    Some(value) => rendered.push_str(&value),
                    None => {
                        return Err(UndefinedVariable {
                            variable: var.to_string(),
                        });
                    }
                },
            }
        }
        Ok(rendered)
    }
}

/// Render every string leaf of `value` (not the keys) as a template; used for
/// `matches`, whose strings may hold variables.
pub fn render_json(
    value: &serde_json::Value,
    vars: &Vars,
) -> Result<serde_json::Value, UndefinedVariable> {
    use serde_json::Value;
    Ok(match value {
        Value::String(text) => Value::String(Template(text.clone()).render(vars)?),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|item| render_json(item, vars))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(key, item)| Ok((key.clone(), render_json(item, vars)?)))
                .collect::<Result<_, UndefinedVariable>>()?,
        ),
        other => other.clone(),
    })
}

#[cfg(test)]
mod tests {
    /// Each text renders to its value, or fails naming the variable.
    fn check_renders(vars: &super::Vars, table: &[(&str, Result<&str, &str>)]) {
        for (text, expected) in table {
            let rendered = super::Template(text.to_string()).render(vars);
            match expected {
                Ok(value) => assert_eq!(rendered.as_deref(), Ok(*value), "{text}"),
                Err(variable) => assert_eq!(
                    rendered.map_err(|e| e.variable),
                    Err(variable.to_string()),
                    "{text}"
                ),
            }
        }
    }

    #[test]
    fn renders_with_bound_values() {
        let mut vars = Vars::new("127.0.0.1:5001".to_string());
        vars.bind_digest("v1", "sha256:aaa");
        let table: &[(&str, Result<&str, &str>)] = &[
            ("latest", Ok("latest")),
            ("${v1.digest}", Ok("sha256:aaa")),
            (
                "${lab.registry}/demo@${v1.digest}!",
                Ok("127.0.0.1:5001/demo@sha256:aaa!"),
            ),
            ("price: $5, $${v1.digest}", Ok("price: $5, ${v1.digest}")),
            ("$$", Ok("$$")),
            ("${v2.digest}", Err("${v2.digest}")),
            ("${v1.foo}", Err("${v1.foo}")),
            ("x ${v1.digest", Err("${v1.digest")),
        ];
        check_renders(&vars, table);
    }

    use super::*;
    use serde_json::json;

    #[test]
    fn lab_and_repository_variables_follow_the_lab_and_the_run() {
        let vars = Vars::for_lab(
            "127.0.0.1:5001".into(),
            "kind-registry:5000".into(),
            "e2e-run/demo-abc1234".into(),
        );
        let table: &[(&str, Result<&str, &str>)] = &[
            ("${lab.argoRegistry}", Ok("kind-registry:5000")),
            ("${lab.registry}", Ok("127.0.0.1:5001")),
            (
                "oci://${lab.argoRegistry}/${repo:charts}",
                Ok("oci://kind-registry:5000/e2e-run/demo-abc1234/charts"),
            ),
            (
                "${repo:team/base-chart}",
                Ok("e2e-run/demo-abc1234/team/base-chart"),
            ),
            ("${repo:Charts}", Err("${repo:Charts}")),
            ("${lab.argo}", Err("${lab.argo}")),
        ];
        check_renders(&vars, table);
        // Without a lab (check, plan): the names as written.
        let plain = Vars::new("reg:5000".into());
        assert_eq!(
            Template("${lab.argoRegistry}/${repo:charts}".into()).render(&plain),
            Ok("reg:5000/charts".to_string())
        );
    }

    #[test]
    fn renders_string_leaves_only() {
        let mut vars = Vars::new("reg:5000".into());
        vars.bind_digest("v1", "sha256:abc");
        let expected = json!({
            "data": {"digest": "${v1.digest}", "n": 1, "quoted": "1", "flag": true, "none": null},
            "list": ["${lab.registry}/x", {"${v1.digest}": "${v1.digest}"}]
        });
        let rendered = render_json(&expected, &vars);
        assert_eq!(
            rendered,
            Ok(json!({
                "data": {"digest": "sha256:abc", "n": 1, "quoted": "1", "flag": true, "none": null},
                "list": ["reg:5000/x", {"${v1.digest}": "sha256:abc"}]
            }))
        );
    }

    #[test]
    fn unbound_digest_is_an_error() {
        let vars = Vars::new("reg:5000".into());
        let rendered = render_json(&json!({"a": ["${v9.digest}"]}), &vars);
        assert_eq!(
            rendered,
            Err(UndefinedVariable {
                variable: "${v9.digest}".into()
            })
        );
    }
}
