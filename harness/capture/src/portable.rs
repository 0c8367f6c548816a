//! Text from one lab made valid on any lab: the registry addresses and the
//! run's repository paths become `${lab.argoRegistry}`, `${lab.registry}`
//! and `${repo:NAME}`, a literal `${` becomes `$${`; and what stays
//! run-specific (run-unique names, digests of this push) is cut out of
//! condition messages, which are matched as substrings.

/// What is specific to the lab and run an Application was captured on.
#[derive(Debug, Clone)]
pub struct Origin {
    /// The registry as Argo CD reaches it (`host:port[/prefix]`).
    pub argo_registry: String,
    /// The registry as the harness reaches it.
    pub registry: String,
    /// The scenario run's repository prefix (`e2e-<run>/<scenario>-<suffix>`)
    /// when the Application was made by a harness run.
    pub run_prefix: Option<String>,
    /// Names that exist only in this run (Application, namespaces, project).
    pub run_names: Vec<String>,
    /// The run suffix of those names: any name holding it is cut too.
    pub suffix: Option<String>,
}

/// Characters of an OCI repository path.
fn is_repository_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-' | '/')
}

impl Origin {
    /// `text` as a scenario template that means the same on any lab.
    pub fn template(&self, text: &str) -> String {
        let escaped = text.replace("${", "$${");
        let mut out = escaped;
        for (address, variable) in [
            (&self.argo_registry, "${lab.argoRegistry}"),
            (&self.registry, "${lab.registry}"),
        ] {
            if address.is_empty() {
                continue;
            }
            let base = match &self.run_prefix {
                Some(prefix) => format!("{address}/{prefix}/"),
                None => format!("{address}/"),
            };
            out = replace_repositories(&out, &base, variable);
            out = out.replace(address.as_str(), variable);
        }
        out
    }

    /// The longest part of a condition message that holds nothing
    /// run-specific, or `None` when too little is left to be worth matching.
    pub fn message_fragment(&self, message: &str) -> Option<String> {
        let text = self.template(message);
        let mut cuts: Vec<String> = self
            .run_names
            .iter()
            .filter(|n| !n.is_empty())
            .cloned()
            .collect();
        if let Some(prefix) = &self.run_prefix {
            cuts.push(prefix.clone());
        }
        if let Some(suffix) = &self.suffix {
            cuts.extend(names_holding(&text, suffix));
        }
        cuts.sort_by_key(|c| std::cmp::Reverse(c.len()));
        let mut pieces = vec![text];
        for cut in &cuts {
            pieces = pieces
                .iter()
                .flat_map(|p| {
                    p.split(cut.as_str())
                        .map(str::to_string)
                        .collect::<Vec<_>>()
                })
                .collect();
        }
        // Digests change when the artifact is pushed again.
        pieces = pieces.iter().flat_map(|p| split_digests(p)).collect();
        pieces
            .into_iter()
            .map(|p| trim_fragment(&p))
            .filter(|p| p.chars().count() >= 12)
            .max_by_key(|p| p.chars().count())
    }
}

/// The words of `text` (names: `[a-z0-9.-]`) that hold `suffix`.
fn names_holding(text: &str, suffix: &str) -> Vec<String> {
    let is_name = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-';
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(at) = text[from..].find(suffix) {
        let at = from + at;
        let start = text[..at]
            .char_indices()
            .rev()
            .take_while(|(_, c)| is_name(*c))
            .last()
            .map_or(at, |(i, _)| i);
        let end = at
            + suffix.len()
            + text[at + suffix.len()..]
                .chars()
                .take_while(|c| is_name(*c))
                .map(char::len_utf8)
                .sum::<usize>();
        found.push(text[start..end].to_string());
        from = end;
    }
    found
}

/// Every `<base><repo path>` becomes `<variable>/${repo:<repo path>}`.
fn replace_repositories(text: &str, base: &str, variable: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(base) {
        out.push_str(&rest[..at]);
        let after = &rest[at + base.len()..];
        let len: usize = after
            .chars()
            .take_while(|c| is_repository_char(*c))
            .map(char::len_utf8)
            .sum();
        let path = after[..len].trim_end_matches(['/', '.', '-', '_']);
        if path.is_empty() {
            out.push_str(&rest[at..at + base.len()]);
            rest = after;
            continue;
        }
        out.push_str(variable);
        out.push_str("/${repo:");
        out.push_str(path);
        out.push('}');
        rest = &after[path.len()..];
    }
    out.push_str(rest);
    out
}

/// Split around `sha256:<64 hex>`.
fn split_digests(text: &str) -> Vec<String> {
    let mut pieces = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("sha256:") {
        let hex = &rest[at + 7..];
        let len = hex.chars().take_while(|c| c.is_ascii_hexdigit()).count();
        pieces.push(rest[..at].to_string());
        rest = &hex[len..];
    }
    pieces.push(rest.to_string());
    pieces
}

/// Without the separators a cut leaves at its ends, and without a `${`
/// a cut may have split (a template must stay whole).
fn trim_fragment(piece: &str) -> String {
    let mut piece = piece.to_string();
    // An unclosed `${repo:...` at the end, or a `}` of one at the start.
    if let Some(open) = piece.rfind("${")
        && !piece[open..].contains('}')
    {
        piece.truncate(open);
    }
    if let Some(close) = piece.find('}')
        && !piece[..close].contains("${")
    {
        piece = piece[close + 1..].to_string();
    }
    piece
        .trim_matches(|c: char| c.is_whitespace() || "/:@\"'`,".contains(c))
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin() -> Origin {
        Origin {
            argo_registry: "kind-registry:5000".into(),
            registry: "localhost:5001".into(),
            run_prefix: Some("e2e-20261204-1/helm-dep-abc1234".into()),
            run_names: vec!["umbrella-abc1234".into()],
            suffix: Some("abc1234".into()),
        }
    }

    #[test]
    fn repositories_and_registries_become_variables() {
        let text = "repository: oci://kind-registry:5000/e2e-20261204-1/helm-dep-abc1234/charts\nhost: localhost:5001 and ${HOME}";
        assert_eq!(
            origin().template(text),
            "repository: oci://${lab.argoRegistry}/${repo:charts}\nhost: ${lab.registry} and $${HOME}"
        );
    }

    #[test]
    fn message_fragments_leave_out_run_names_and_digests() {
        let message = "Failed to load target state: rpc error: could not download oci://kind-registry:5000/e2e-20261204-1/helm-dep-abc1234/charts/helm-demo: failed to perform \"FetchReference\" on source: kind-registry:5000/e2e-20261204-1/helm-dep-abc1234/charts/helm-demo:0.2.0: not found";
        assert_eq!(
            origin().message_fragment(message).as_deref(),
            Some(
                "Failed to load target state: rpc error: could not download oci://${lab.argoRegistry}/${repo:charts/helm-demo}: failed to perform \"FetchReference\" on source: ${lab.argoRegistry}/${repo:charts/helm-demo}:0.2.0: not found"
            )
        );
        let message = "application repo oci://kind-registry:5000/x is not permitted in project 'team-abc1234'";
        assert_eq!(
            origin().message_fragment(message).as_deref(),
            Some("application repo oci://${lab.argoRegistry}/x is not permitted in project")
        );
        assert_eq!(
            origin()
                .message_fragment("manifest sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef has 2 content layers")
                .as_deref(),
            Some("has 2 content layers")
        );
        assert_eq!(origin().message_fragment("umbrella-abc1234"), None);
    }
}
