//! What names in a scenario may look like. Each check returns `None` when
//! the name is fine, or a message that says what to write instead.

/// Application names and namespaces become Kubernetes names after the runner
/// makes them unique per run: it appends `-` and a 7-character suffix and
/// cuts longer names to the 63-character DNS label limit, which could make
/// two long names collide. 63 - 8 = 55 keeps every name whole.
pub const MAX_APP_NAME_LEN: usize = 55;

/// Scenario names and labels: `[a-z0-9-]+` (contract).
pub fn scenario_name_problem(name: &str, what: &str) -> Option<String> {
    if name.is_empty() {
        return Some(format!(
            "{what} is empty: use lowercase letters, digits and `-`, like `latest-follows-digest`"
        ));
    }
    let bad: Vec<char> = name
        .chars()
        .filter(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
        .collect();
    if bad.is_empty() {
        return None;
    }
    Some(format!(
        "{what} `{name}` has {}: use only lowercase letters, digits and `-` (e.g. `{}`)",
        describe_chars(&bad),
        suggest_dns(name)
    ))
}

/// Application names and namespaces: DNS labels (RFC 1123), with room for
/// the runner's per-run suffix.
pub fn dns_label_problem(name: &str, what: &str) -> Option<String> {
    if name.is_empty() {
        return Some(format!("{what} is empty: use a DNS label like `demo`"));
    }
    let bad: Vec<char> = name
        .chars()
        .filter(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
        .collect();
    if !bad.is_empty() {
        return Some(format!(
            "{what} `{name}` is not a DNS label: it has {}; use lowercase letters, digits and `-` (e.g. `{}`)",
            describe_chars(&bad),
            suggest_dns(name)
        ));
    }
    if name.starts_with('-') || name.ends_with('-') {
        return Some(format!(
            "{what} `{name}` is not a DNS label: it must start and end with a letter or digit"
        ));
    }
    if name.len() > MAX_APP_NAME_LEN {
        return Some(format!(
            "{what} `{name}` is {} characters long: keep it to {MAX_APP_NAME_LEN} (the runner adds an 8-character per-run suffix and Kubernetes allows 63)",
            name.len()
        ));
    }
    None
}

/// OCI repository names (distribution spec): lowercase path components of
/// letters and digits, separated inside by `.`, `_`, `__` or dashes, joined by `/`.
pub fn repository_problem(name: &str) -> Option<String> {
    const RULE: &str = "use lowercase letters and digits, with `.`, `_` or `-` between them and `/` between path components, like `demo-app` or `team/demo-app`";
    if name.is_empty() {
        return Some(format!("repository is empty: {RULE}"));
    }
    for component in name.split('/') {
        if !is_repository_component(component) {
            let why = if component.is_empty() {
                "an empty path component".to_string()
            } else if component.chars().any(|c| c.is_ascii_uppercase()) {
                "uppercase letters".to_string()
            } else if component.contains(':') || component.contains('@') {
                "a tag or digest in it (put tags in `tags:` / `revision:`)".to_string()
            } else {
                format!("the path component `{component}`")
            };
            return Some(format!(
                "repository `{name}` is not a valid OCI repository name: it has {why}; {RULE}"
            ));
        }
    }
    None
}

fn is_repository_component(component: &str) -> bool {
    // [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*
    let bytes = component.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if bytes.is_empty() || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut index = 0;
    while index < bytes.len() {
        if alnum(bytes[index]) {
            index += 1;
            continue;
        }
        let start = index;
        while index < bytes.len() && !alnum(bytes[index]) {
            index += 1;
        }
        let separator = &component[start..index];
        let dashes = separator.bytes().all(|b| b == b'-');
        if !(separator == "." || separator == "_" || separator == "__" || dashes) {
            return false;
        }
    }
    true
}

/// OCI tags: `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`.
pub fn tag_problem(tag: &str) -> Option<String> {
    const RULE: &str =
        "a tag is 1 to 128 letters, digits, `_`, `.` and `-`, not starting with `.` or `-`";
    let mut chars = tag.chars();
    let first_ok = matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric() || c == '_');
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if first_ok && rest_ok && tag.len() <= 128 {
        return None;
    }
    if tag.starts_with("sha256:") {
        return Some(format!(
            "`{tag}` is a digest, not a tag: tags cannot contain `:`"
        ));
    }
    Some(format!("invalid tag `{tag}`: {RULE}"))
}

/// `sha256:` followed by 64 lowercase hex digits.
pub fn is_digest(text: &str) -> bool {
    text.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// 64 hex digits without the `sha256:` prefix (Argo CD #23580 gives a
/// misleading error for these, so say it at load time).
pub fn is_bare_hex_digest(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

fn describe_chars(bad: &[char]) -> String {
    let mut unique: Vec<char> = Vec::new();
    for c in bad {
        if !unique.contains(c) {
            unique.push(*c);
        }
    }
    let (upper, other): (Vec<char>, Vec<char>) =
        unique.into_iter().partition(|c| c.is_ascii_uppercase());
    let listed: Vec<String> = other.iter().map(|c| format!("{c:?}")).collect();
    let other_text = format!(
        "{} {}",
        if other.len() == 1 {
            "the character"
        } else {
            "the characters"
        },
        listed.join(", ")
    );
    match (upper.is_empty(), other.is_empty()) {
        (false, true) => "uppercase letters".to_string(),
        (false, false) => format!("uppercase letters and {other_text}"),
        _ => other_text,
    }
}

/// A DNS-ish spelling of `name`, for "e.g." hints.
fn suggest_dns(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let trimmed = out.trim_matches('-');
    if trimmed.is_empty() {
        "demo".to_string()
    } else {
        trimmed.to_string()
    }
}

/// Levenshtein distance, for "did you mean" hints on app names.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenario_names() {
        assert_eq!(scenario_name_problem("latest-follows-digest", "name"), None);
        assert_eq!(scenario_name_problem("a1", "name"), None);
        let table = [
            ("Latest", "uppercase letters"),
            ("a_b", "the character '_'"),
            ("a b.c", "the characters ' ', '.'"),
            ("Smoke Test", "uppercase letters and the character ' '"),
            ("", "is empty"),
        ];
        for (name, reason) in table {
            let problem = scenario_name_problem(name, "name").unwrap_or_default();
            assert!(problem.contains(reason), "{name}: {problem}");
        }
        assert!(
            scenario_name_problem("My_Scenario", "name")
                .unwrap_or_default()
                .contains("e.g. `my-scenario`")
        );
    }

    #[test]
    fn dns_labels() {
        let longest = "a".repeat(MAX_APP_NAME_LEN);
        for good in ["demo", "a", "demo-2", "0a", &longest] {
            assert_eq!(dns_label_problem(good, "app name"), None, "{good}");
        }
        let table = [
            ("Demo", "uppercase"),
            ("demo_app", "'_'"),
            ("-demo", "start and end"),
            ("demo-", "start and end"),
            ("demo.app", "'.'"),
            ("", "empty"),
            (&"a".repeat(56), "keep it to 55"),
        ];
        for (name, reason) in table {
            let problem = dns_label_problem(name, "app name").unwrap_or_default();
            assert!(problem.contains(reason), "{name}: {problem}");
        }
    }

    #[test]
    fn repositories() {
        for good in ["demo-app", "team/demo-app", "a.b", "a__b", "a---b", "x0"] {
            assert_eq!(repository_problem(good), None, "{good}");
        }
        let table = [
            ("Demo", "uppercase"),
            ("demo:v1", "tag or digest"),
            ("a//b", "empty path component"),
            ("/a", "empty path component"),
            ("a_-b", "path component `a_-b`"),
            ("-a", "path component `-a`"),
            ("a.", "path component `a.`"),
            ("", "empty"),
        ];
        for (name, reason) in table {
            let problem = repository_problem(name).unwrap_or_default();
            assert!(problem.contains(reason), "{name}: {problem}");
        }
    }

    #[test]
    fn tags_and_digests() {
        for good in ["v1.0.0", "latest", "_x", "A-1"] {
            assert_eq!(tag_problem(good), None, "{good}");
        }
        assert!(tag_problem(".x").is_some());
        assert!(tag_problem("a/b").is_some());
        assert!(tag_problem(&"a".repeat(129)).is_some());
        let digest = format!("sha256:{}", "a".repeat(64));
        assert!(
            tag_problem(&digest)
                .unwrap_or_default()
                .contains("is a digest")
        );
        assert!(is_digest(&digest));
        assert!(!is_digest(&"a".repeat(64)));
        assert!(is_bare_hex_digest(&"a".repeat(64)));
        assert!(!is_bare_hex_digest(&digest));
    }

    #[test]
    fn distances() {
        assert_eq!(edit_distance("demo", "demo"), 0);
        assert_eq!(edit_distance("demo", "deom"), 2);
        assert_eq!(edit_distance("demo", "demoo"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
    }
}
