//! Values of `${...}` variables during one scenario run.

use std::collections::BTreeMap;

use super::plan::Template;
use super::template::{Segment, UndefinedVariable, VarRef, parse};

/// What the variables of one scenario run stand for: the lab registry and
/// the digests bound by `as:` so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vars {
    registry: String,
    digests: BTreeMap<String, String>,
}

impl Vars {
    /// `registry` is the address as the host reaches it (`${lab.registry}`).
    pub fn new(registry: String) -> Self {
        Vars {
            registry,
            digests: BTreeMap::new(),
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

    pub fn get(&self, var: &VarRef) -> Option<&str> {
        match var {
            VarRef::LabRegistry => Some(&self.registry),
            VarRef::Digest(name) => self.digest(name),
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
                Segment::Var { var, .. } => match vars.get(&var) {
                    Some(value) => rendered.push_str(value),
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
        for (text, expected) in table {
            let rendered = Template(text.to_string()).render(&vars);
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

    use super::*;
    use serde_json::json;

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
