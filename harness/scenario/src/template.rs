//! `${...}` variables inside scenario strings.
//!
//! The forms: `${lab.registry}` (the registry as the harness reaches it),
//! `${lab.argoRegistry}` (as Argo CD reaches it), `${NAME.digest}` (NAME
//! from a push step's `as:`) and `${repo:NAME}` (the run's path of the
//! repository NAME as written, so `oci://${lab.argoRegistry}/${repo:charts}`
//! is what a Chart.yaml dependency or a values file names). `$${` writes a
//! literal `${` (for file contents that need one, e.g. a shell snippet in a
//! ConfigMap). A `$` not followed by `{` is just a dollar sign.

use std::fmt;

use super::plan::Template;

/// A variable a template refers to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub enum VarRef {
    /// `${lab.registry}`: the registry address as the host reaches it.
    LabRegistry,
    /// `${NAME.digest}`: the manifest digest bound by `as: NAME`.
    Digest(String),
    /// `${lab.argoRegistry}`: the registry as Argo CD reaches it
    /// (`host:port[/prefix]`).
    LabArgoRegistry,
    /// `${repo:NAME}`: the run's mapped path of repository NAME.
    Repo(String),
}

impl fmt::Display for VarRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VarRef::LabRegistry => f.write_str("${lab.registry}"),
            VarRef::Digest(name) => write!(f, "${{{name}.digest}}"),
            VarRef::LabArgoRegistry => f.write_str("${lab.argoRegistry}"),
            VarRef::Repo(name) => write!(f, "${{repo:{name}}}"),
        }
    }
}

/// Rendering met a variable that has no value (or a malformed `${`, which
/// loading rejects, so only hand-built templates get here).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("undefined variable `{variable}`: it has no value at this point of the run")]
pub struct UndefinedVariable {
    /// The reference as written, e.g. `${v2.digest}`.
    pub variable: String,
}

/// A piece of a parsed template; byte offsets index the template text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Segment<'a> {
    Text(&'a str),
    Var {
        var: VarRef,
        start: usize,
        end: usize,
    },
}

/// Something in a template that is not a variable although it starts like one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TemplateProblem {
    /// `${` whose name is not followed by `}` (`end`: where the name stops).
    Unclosed { start: usize, end: usize },
    /// `${something}` that is none of the forms.
    UnknownForm { start: usize, end: usize },
    /// `${repo:NAME}` whose NAME is not a repository name.
    BadRepository {
        start: usize,
        end: usize,
        why: String,
    },
}

impl TemplateProblem {
    /// Byte range of the problem within the template text.
    pub(crate) fn range(&self) -> (usize, usize) {
        match *self {
            TemplateProblem::Unclosed { start, end }
            | TemplateProblem::UnknownForm { start, end }
            | TemplateProblem::BadRepository { start, end, .. } => (start, end),
        }
    }

    pub(crate) fn message(&self, text: &str) -> String {
        const FORMS: &str = "the forms are `${NAME.digest}` (NAME from a push step's `as:`), `${repo:NAME}`, `${lab.registry}` and `${lab.argoRegistry}`; write `$${` for a literal `${`";
        match self {
            TemplateProblem::BadRepository { why, .. } => {
                format!("in `${{repo:...}}`: {why}")
            }
            _ => self.simple_message(text, FORMS),
        }
    }

    fn simple_message(&self, text: &str, forms: &str) -> String {
        match *self {
            TemplateProblem::Unclosed { start, end } => {
                format!(
                    "unclosed `${{`: `{}` is not followed by `}}`; {forms}",
                    &text[start..end]
                )
            }
            TemplateProblem::UnknownForm { start, end } => {
                format!("unknown variable `{}`: {forms}", &text[start..end])
            }
            TemplateProblem::BadRepository { .. } => String::new(),
        }
    }
}

/// Whether `name` can be used in `as:` (and so in `${name.digest}`).
pub(crate) fn is_binding_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && name != "lab"
}

/// Split a template into text and variables, and list what is malformed.
pub(crate) fn parse(text: &str) -> (Vec<Segment<'_>>, Vec<TemplateProblem>) {
    let mut segments = Vec::new();
    let mut problems = Vec::new();
    let mut position = 0;
    let mut text_start = 0;
    while let Some(found) = text[position..].find('$') {
        let dollar = position + found;
        let rest = &text[dollar..];
        if rest.starts_with("$${") {
            // Escape: keep one `$` of the two, then the `{` is plain text.
            if dollar > text_start {
                segments.push(Segment::Text(&text[text_start..dollar]));
            }
            segments.push(Segment::Text("${"));
            position = dollar + 3;
            text_start = position;
            continue;
        }
        if !rest.starts_with("${") {
            position = dollar + 1;
            continue;
        }
        // A name is letters, digits, `.`, `_`, `-`; anything else before the
        // `}` (a quote, a space, a line break) means the `}` is missing.
        // `${repo:NAME}` also takes the `:` and the `/` of repository paths.
        let repo_form = rest[2..].starts_with("repo:");
        let name_len = rest[2..]
            .bytes()
            .take_while(|b| {
                b.is_ascii_alphanumeric()
                    || matches!(b, b'.' | b'_' | b'-')
                    || (repo_form && matches!(b, b':' | b'/'))
            })
            .count();
        let close = 2 + name_len;
        if rest.as_bytes().get(close) != Some(&b'}') {
            problems.push(TemplateProblem::Unclosed {
                start: dollar,
                end: dollar + close,
            });
            position = dollar + close;
            continue;
        }
        let end = dollar + close + 1;
        let inner = &text[dollar + 2..dollar + close];
        if let Some(name) = inner.strip_prefix("repo:") {
            match super::names::repository_problem(name) {
                None => {
                    if dollar > text_start {
                        segments.push(Segment::Text(&text[text_start..dollar]));
                    }
                    segments.push(Segment::Var {
                        var: VarRef::Repo(name.to_string()),
                        start: dollar,
                        end,
                    });
                    text_start = end;
                }
                Some(why) => problems.push(TemplateProblem::BadRepository {
                    start: dollar,
                    end,
                    why,
                }),
            }
            position = end;
            continue;
        }
        let var = match inner.split_once('.') {
            Some(("lab", "registry")) => Some(VarRef::LabRegistry),
            Some(("lab", "argoRegistry")) => Some(VarRef::LabArgoRegistry),
            Some((name, "digest")) if is_binding_name(name) => {
                Some(VarRef::Digest(name.to_string()))
            }
            _ => None,
        };
        match var {
            Some(var) => {
                if dollar > text_start {
                    segments.push(Segment::Text(&text[text_start..dollar]));
                }
                segments.push(Segment::Var {
                    var,
                    start: dollar,
                    end,
                });
                text_start = end;
            }
            None => problems.push(TemplateProblem::UnknownForm { start: dollar, end }),
        }
        position = end;
    }
    if text_start < text.len() {
        segments.push(Segment::Text(&text[text_start..]));
    }
    (segments, problems)
}

impl Template {
    /// The variables this template refers to, in order (repeats included).
    pub fn variables(&self) -> impl Iterator<Item = VarRef> + '_ {
        parse(&self.0)
            .0
            .into_iter()
            .filter_map(|segment| match segment {
                Segment::Var { var, .. } => Some(var),
                Segment::Text(_) => None,
            })
    }

    /// The text if it holds no variables (escapes resolved), else `None`.
    pub fn as_literal(&self) -> Option<String> {
        let (segments, problems) = parse(&self.0);
        if !problems.is_empty() {
            return None;
        }
        let mut literal = String::with_capacity(self.0.len());
        for segment in segments {
            match segment {
                Segment::Text(text) => literal.push_str(text),
                Segment::Var { .. } => return None,
            }
        }
        Some(literal)
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(name: &str) -> VarRef {
        VarRef::Digest(name.to_string())
    }

    #[test]
    fn finds_variables() {
        let table: &[(&str, &[VarRef])] = &[
            ("latest", &[]),
            ("${v1.digest}", &[digest("v1")]),
            (
                "${lab.registry}/demo@${v1.digest}",
                &[VarRef::LabRegistry, digest("v1")],
            ),
            (
                "a ${v1.digest} b ${v1.digest}",
                &[digest("v1"), digest("v1")],
            ),
            ("$${v1.digest}", &[]),
            ("$HOME and $ alone", &[]),
            ("${my_app-2.digest}", &[digest("my_app-2")]),
        ];
        for (text, expected) in table {
            let found: Vec<VarRef> = Template(text.to_string()).variables().collect();
            assert_eq!(&found, expected, "{text}");
        }
    }

    #[test]
    fn reports_malformed_references() {
        // text, then each problem's (start, end, message fragment)
        type Expected<'a> = &'a [(usize, usize, &'a str)];
        let table: &[(&str, Expected)] = &[
            ("${v1.foo}", &[(0, 9, "unknown variable `${v1.foo}`")]),
            ("x ${v1}", &[(2, 7, "unknown variable `${v1}`")]),
            (
                "${lab.registr}",
                &[(0, 14, "unknown variable `${lab.registr}`")],
            ),
            ("${1v.digest}", &[(0, 12, "unknown variable")]),
            ("${lab.digest}", &[(0, 13, "unknown variable")]),
            ("${}", &[(0, 3, "unknown variable `${}`")]),
            ("a ${v1.digest", &[(2, 13, "unclosed `${`")]),
            ("${v1.digest\n}", &[(0, 11, "unclosed `${`")]),
            (
                "${a.foo} ${b",
                &[(0, 8, "unknown variable"), (9, 12, "unclosed")],
            ),
            (
                "\"${v1.digest\", x: \"${HOME}\"",
                &[
                    (1, 12, "`${v1.digest` is not followed by `}`"),
                    (19, 26, "unknown variable `${HOME}`"),
                ],
            ),
            ("${a b}", &[(0, 3, "unclosed")]),
            ("end ${", &[(4, 6, "unclosed")]),
        ];
        for (text, expected) in table {
            let (_, problems) = parse(text);
            assert_eq!(problems.len(), expected.len(), "{text}: {problems:?}");
            for (problem, (start, end, message)) in problems.iter().zip(expected.iter()) {
                assert_eq!(problem.range(), (*start, *end), "{text}");
                assert!(
                    problem.message(text).contains(message),
                    "{text}: {}",
                    problem.message(text)
                );
            }
        }
    }

    #[test]
    fn literal_only_without_variables() {
        assert_eq!(
            Template("v1.0.0".into()).as_literal().as_deref(),
            Some("v1.0.0")
        );
        assert_eq!(
            Template("$${x}".into()).as_literal().as_deref(),
            Some("${x}")
        );
        assert_eq!(Template("${v1.digest}".into()).as_literal(), None);
    }

    #[test]
    fn binding_names() {
        for good in ["v1", "V2", "app_v1", "a-b"] {
            assert!(is_binding_name(good), "{good}");
        }
        for bad in ["", "1v", "-a", "a.b", "lab", "a b"] {
            assert!(!is_binding_name(bad), "{bad}");
        }
    }
}
