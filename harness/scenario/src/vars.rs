//! Values of `${...}` variables during one scenario run.

use std::collections::BTreeMap;

use super::plan::Template;
use super::template::{UndefinedVariable, VarRef};

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
