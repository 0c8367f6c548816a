//! Errors about scenario files, shown the way compilers show them:
//! `file:line:col: error: message`, then the source line and a caret.

use std::fmt;

use super::plan::Location;

/// One problem found in a scenario file (or in the paths given to a run).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Where it is; `None` for problems that are not inside a file
    /// (a path that does not exist, a directory without scenarios).
    pub location: Option<Location>,
    /// What is wrong and, where it helps, what to write instead.
    pub message: String,
    /// The source line the location points into, with the caret's extent.
    pub snippet: Option<Snippet>,
}

/// The line of source a diagnostic points into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snippet {
    /// The whole line, without its line break.
    pub line_text: String,
    /// How many characters the caret underlines (at least 1).
    pub caret_len: usize,
}

impl Diagnostic {
    /// A problem that has no place in a file.
    pub fn without_location(message: impl Into<String>) -> Self {
        Diagnostic {
            location: None,
            message: message.into(),
            snippet: None,
        }
    }

    /// A problem at `location`; `source` is the file's text, used for the
    /// snippet; `caret_len` is how many characters to underline.
    pub fn at(
        location: Location,
        source: &str,
        caret_len: usize,
        message: impl Into<String>,
    ) -> Self {
        let snippet = source_line(source, location.line).map(|line_text| {
            let column = location.column.max(1) as usize;
            let line_chars = line_text.chars().count();
            // Underline within the line only; a caret past the end marks
            // "here, at the end" (e.g. unexpected end of input).
            let room = line_chars.saturating_sub(column - 1).max(1);
            Snippet {
                line_text: line_text.to_string(),
                caret_len: caret_len.clamp(1, room),
            }
        });
        Diagnostic {
            location: Some(location),
            message: message.into(),
            snippet,
        }
    }
}

fn source_line(source: &str, line: u32) -> Option<&str> {
    let index = (line as usize).checked_sub(1)?;
    yaml_lines(source).nth(index)
}

/// The lines of `source` as YAML counts them (and as the parser's
/// positions do): a line ends at `\r\n`, `\n` or a lone `\r`.
pub(crate) fn yaml_lines(source: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(source);
    std::iter::from_fn(move || {
        let text = rest?;
        match text.find(['\r', '\n']) {
            Some(end) => {
                let next = if text[end..].starts_with("\r\n") {
                    end + 2
                } else {
                    end + 1
                };
                rest = Some(&text[next..]).filter(|r| !r.is_empty());
                Some(&text[..end])
            }
            None => {
                rest = None;
                (!text.is_empty()).then_some(text)
            }
        }
    })
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.location {
            Some(location) => write!(f, "{location}: error: {}", self.message)?,
            None => write!(f, "error: {}", self.message)?,
        }
        if let (Some(location), Some(snippet)) = (&self.location, &self.snippet) {
            let number = location.line.to_string();
            let gutter = " ".repeat(number.len());
            // Keep tabs as tabs so the caret lines up under them.
            let pad: String = snippet
                .line_text
                .chars()
                .take(location.column.saturating_sub(1) as usize)
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            write!(
                f,
                "\n{gutter} |\n{number} | {}\n{gutter} | {pad}{}",
                snippet.line_text,
                "^".repeat(snippet.caret_len)
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostic {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn location(line: u32, column: u32) -> Location {
        Location {
            file: PathBuf::from("s.yaml"),
            line,
            column,
        }
    }

    #[test]
    fn renders_line_and_caret_under_the_span() {
        let source = "name: foo\nsteps:\n  - app: {name: a, sync: manul}\n";
        let diagnostic = Diagnostic::at(location(3, 26), source, 5, "unknown variant `manul`");
        assert_eq!(
            diagnostic.to_string(),
            "s.yaml:3:26: error: unknown variant `manul`\n  |\n3 |   - app: {name: a, sync: manul}\n  |                          ^^^^^"
        );
    }

    #[test]
    fn caret_stays_on_the_line() {
        let source = "abc\n";
        let diagnostic = Diagnostic::at(location(1, 3), source, 40, "m");
        assert_eq!(diagnostic.snippet.map(|s| s.caret_len), Some(1));
        let past_end = Diagnostic::at(location(1, 9), source, 0, "m");
        assert_eq!(past_end.snippet.map(|s| s.caret_len), Some(1));
    }

    #[test]
    fn lines_end_as_yaml_ends_them() {
        let lines: Vec<&str> = yaml_lines("a\r\nb\rc\n\nd").collect();
        assert_eq!(lines, ["a", "b", "c", "", "d"]);
        assert_eq!(yaml_lines("a\n").count(), 1);
        assert_eq!(yaml_lines("").count(), 0);
        let source = "name: a\rsteps: x\r";
        let diagnostic = Diagnostic::at(location(2, 8), source, 1, "m");
        assert_eq!(diagnostic.snippet.unwrap().line_text, "steps: x");
    }

    #[test]
    fn no_location_means_no_snippet() {
        assert_eq!(
            Diagnostic::without_location("no scenario files in x/").to_string(),
            "error: no scenario files in x/"
        );
    }
}
