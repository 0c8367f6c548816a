//! Bad input never panics: every corpus file (`scenarios/*.yaml`,
//! `harness/testkit/tests/data/**`) and a few thousand seeded mutants of
//! them load to a valid plan or to diagnostics that each point at a
//! `file:line:col` inside the text. The fuzz target `scenario_load`
//! (harness/fuzz) does the same without bounds; this is its cheap,
//! reproducible part in the suite.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use harness_scenario::{Diagnostic, Scenario, load_source};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The fixed seed; set `MUTANT_SEED` to explore others (a failure prints
/// the seed that found it).
const SEED: u64 = 0x5CE7_A810;
/// Mutants per corpus file (about 60 files: a few thousand in all).
const MUTANTS_PER_FILE: usize = 70;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("list {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for entry in entries {
        if entry.is_dir() {
            files_under(&entry, out);
        } else {
            out.push(entry);
        }
    }
}

/// (good scenarios, bad examples), each sorted.
fn corpus() -> (Vec<PathBuf>, Vec<PathBuf>) {
    let mut good: Vec<PathBuf> = std::fs::read_dir(repo().join("scenarios"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    good.sort();
    let mut bad = Vec::new();
    files_under(&repo().join("harness/testkit/tests/data"), &mut bad);
    // Valid scenarios kept beside the bad examples (they are not for
    // scenarios/: they need a lab started with special flags).
    let (valid, bad): (Vec<PathBuf>, Vec<PathBuf>) = bad
        .into_iter()
        .partition(|p| p.ends_with("registry-auth/wrong-credentials.yaml"));
    good.extend(valid);
    // A walk that found nothing would pass vacuously.
    assert!(good.len() >= 20, "scenarios found: {}", good.len());
    assert!(bad.len() >= 20, "bad examples found: {}", bad.len());
    (good, bad)
}

/// Line breaks as YAML counts them: `\r\n`, `\n`, a lone `\r`.
fn line_breaks(text: &str) -> usize {
    text.matches('\n').count() + text.matches('\r').count() - text.matches("\r\n").count()
}

/// What one load gave: a plan, or diagnostics that were all checked.
enum Outcome {
    Valid,
    Invalid(Vec<Diagnostic>),
}

/// Load `text` as the file `path`; `Err` says how the invariant broke.
fn load_checked(path: &Path, text: &str) -> Result<Outcome, String> {
    let result = catch_unwind(AssertUnwindSafe(|| load_source(path, text))).map_err(|panic| {
        let message = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        format!("the loader panicked: {message}")
    })?;
    let diagnostics = match result {
        Ok(scenario) => return check_plan(path, &scenario).map(|()| Outcome::Valid),
        Err(diagnostics) => diagnostics,
    };
    if diagnostics.is_empty() {
        return Err("an error without a diagnostic".into());
    }
    let last_line = line_breaks(text) as u32 + 1;
    for diagnostic in &diagnostics {
        let rendered = diagnostic.to_string();
        let Some(location) = &diagnostic.location else {
            return Err(format!("a diagnostic without a position: {rendered}"));
        };
        if location.file != path {
            return Err(format!("a diagnostic in another file: {rendered}"));
        }
        if location.line < 1 || location.line > last_line || location.column < 1 {
            return Err(format!(
                "a position outside the text (line {last_line} is the last): {rendered}"
            ));
        }
        let prefix = format!(
            "{}:{}:{}: error: ",
            path.display(),
            location.line,
            location.column
        );
        if !rendered.starts_with(&prefix) {
            return Err(format!("rendered without `{prefix}`: {rendered}"));
        }
    }
    Ok(Outcome::Invalid(diagnostics))
}

fn check_plan(path: &Path, scenario: &Scenario) -> Result<(), String> {
    if scenario.file != path {
        return Err(format!("the plan names {}", scenario.file.display()));
    }
    if scenario.steps.is_empty() {
        return Err("a valid plan without steps".into());
    }
    Ok(())
}

/// Things YAML (and the scenario language) treat specially.
const SPECIALS: &[&str] = &[
    "&a ",
    "*a",
    "!!binary ",
    "!!str ",
    "!custom ",
    "? ",
    ": ",
    "- ",
    "<<: *a",
    "\t",
    "#",
    "\"",
    "'",
    "|",
    ">-",
    "{",
    "}",
    "[",
    "]",
    ",",
    "---\n",
    "...\n",
    "%YAML 1.2\n",
    "\0",
    "\r",
    "\u{feff}",
    "\u{202e}",
    "é",
    "🦀",
    "\u{85}",
    "\u{2028}",
    "${",
    "${a.digest}",
    "${lab.registry}",
    "}",
    "~",
    "null",
    "0x1F",
    "1e400",
    "-.inf",
    ".nan",
    "no",
    "yes",
    "2026-12-06",
    "%",
    "@",
    "`",
];

fn line_spans(text: &str) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut start = 0;
    for (i, b) in text.bytes().enumerate() {
        if b == b'\n' {
            spans.push((start, i + 1));
            start = i + 1;
        }
    }
    if start < text.len() {
        spans.push((start, text.len()));
    }
    spans
}

/// One random change to `bytes`.
fn mutate(rng: &mut StdRng, bytes: &mut Vec<u8>) {
    let len = bytes.len();
    let at = |rng: &mut StdRng| rng.random_range(0..=len);
    let text = String::from_utf8_lossy(bytes).into_owned();
    let lines = line_spans(&text);
    match rng.random_range(0..11) {
        // Flip one bit.
        0 if len > 0 => {
            let i = rng.random_range(0..len);
            bytes[i] ^= 1 << rng.random_range(0..8);
        }
        // Delete a short range.
        1 if len > 0 => {
            let start = rng.random_range(0..len);
            let end = (start + rng.random_range(1..16)).min(len);
            bytes.drain(start..end);
        }
        // Truncate.
        2 => bytes.truncate(at(rng)),
        // Duplicate a line.
        3 if !lines.is_empty() => {
            let (s, e) = lines[rng.random_range(0..lines.len())];
            let line = text.as_bytes()[s..e].to_vec();
            *bytes = text.into_bytes();
            bytes.splice(e..e, line);
        }
        // Swap two lines.
        4 if lines.len() >= 2 => {
            let a = rng.random_range(0..lines.len());
            let b = rng.random_range(0..lines.len());
            let (a, b) = (a.min(b), a.max(b));
            let mut parts: Vec<&str> = lines.iter().map(|(s, e)| &text[*s..*e]).collect();
            parts.swap(a, b);
            *bytes = parts.concat().into_bytes();
        }
        // Indent a line more, or less.
        5 if !lines.is_empty() => {
            let (s, _) = lines[rng.random_range(0..lines.len())];
            *bytes = text.into_bytes();
            if rng.random_bool(0.5) {
                let by = [" ", "  ", "\t", "    "][rng.random_range(0..4)];
                bytes.splice(s..s, by.bytes());
            } else if bytes.get(s) == Some(&b' ') {
                bytes.remove(s);
            }
        }
        // A very long line.
        6 => {
            let i = at(rng);
            let long = "x".repeat(rng.random_range(1_000..20_000));
            bytes.splice(i..i, long.into_bytes());
        }
        // Deep nesting, as a value or at the start.
        7 => {
            let depth = rng.random_range(50..3_000);
            let (open, close) = [("[", "]"), ("{a: ", "}"), ("- ", "")][rng.random_range(0..3)];
            let nested = format!("{}x{}", open.repeat(depth), close.repeat(depth));
            let i = if rng.random_bool(0.5) { 0 } else { at(rng) };
            bytes.splice(i..i, nested.into_bytes());
        }
        // Line endings: CRLF or lone CR everywhere.
        8 => {
            let ending = if rng.random_bool(0.5) { "\r\n" } else { "\r" };
            *bytes = text.replace('\n', ending).into_bytes();
        }
        // Replace a value: what follows a `: ` on some line.
        9 if !lines.is_empty() => {
            let (s, e) = lines[rng.random_range(0..lines.len())];
            if let Some(colon) = text[s..e].find(": ") {
                let value = s + colon + 2;
                let end = text[..e].trim_end_matches(['\n', '\r']).len().max(value);
                let special = SPECIALS[rng.random_range(0..SPECIALS.len())];
                *bytes = text.into_bytes();
                bytes.splice(value..end, special.bytes());
            }
        }
        // Insert a YAML special anywhere (or at a line's start).
        _ => {
            let special = SPECIALS[rng.random_range(0..SPECIALS.len())];
            let i = match lines.is_empty() || rng.random_bool(0.5) {
                true => at(rng),
                false => lines[rng.random_range(0..lines.len())].0,
            };
            bytes.splice(i..i, special.bytes());
        }
    }
}

#[test]
fn the_unmutated_corpus_loads_with_positions() {
    let (good, bad) = corpus();
    for path in &good {
        let text = std::fs::read_to_string(path).unwrap();
        match load_checked(path, &text) {
            Ok(Outcome::Valid) => {}
            Ok(Outcome::Invalid(d)) => panic!("{} does not load: {}", path.display(), d[0]),
            Err(problem) => panic!("{}: {problem}", path.display()),
        }
    }
    let mut invalid = 0;
    for path in &bad {
        let text = std::fs::read_to_string(path).unwrap();
        match load_checked(path, &text) {
            Ok(Outcome::Invalid(_)) => invalid += 1,
            // The duplicate-name pair is valid file by file; the clash is
            // between them.
            Ok(Outcome::Valid) => assert!(
                path.parent().unwrap().ends_with("duplicate-name"),
                "{} is a bad example but loads",
                path.display()
            ),
            Err(problem) => panic!("{}: {problem}", path.display()),
        }
    }
    assert!(
        invalid >= bad.len() - 2,
        "{invalid} of {} bad examples fail",
        bad.len()
    );
}

/// Where the errors are does not depend on the line endings: YAML ends a
/// line at `\r\n`, `\n` or a lone `\r`, and so do the positions the loader
/// computes itself (variables inside strings) and the snippets. A lone `\r`
/// once put errors on a line the snippet could not find (found by fuzzing).
#[test]
fn positions_do_not_depend_on_line_endings() {
    let (_, bad) = corpus();
    let positions = |path: &Path, text: &str| -> Vec<(u32, u32, String, Option<String>)> {
        match load_source(path, text) {
            Ok(_) => vec![],
            Err(diagnostics) => diagnostics
                .into_iter()
                .map(|d| {
                    let l = d.location.expect("a position");
                    (l.line, l.column, d.message, d.snippet.map(|s| s.line_text))
                })
                .collect(),
        }
    };
    let mut compared = 0;
    for path in &bad {
        let text = std::fs::read_to_string(path).unwrap();
        let lf = positions(path, &text);
        if lf.is_empty() {
            continue;
        }
        compared += 1;
        for ending in ["\r\n", "\r"] {
            let other = positions(path, &text.replace('\n', ending));
            assert_eq!(lf, other, "{} with {ending:?} line endings", path.display());
        }
    }
    assert!(compared >= 20, "compared {compared} files");
    // The case fuzzing found, small: an unknown key on the third line.
    let path = Path::new("cr.yaml");
    let found = positions(path, "name: a\rsteps:\r  - bogus: 1\r");
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!((found[0].0, found[0].1), (3, 5), "{found:?}");
    assert_eq!(found[0].3.as_deref(), Some("  - bogus: 1"));
}

#[test]
fn mutants_load_to_a_plan_or_a_positioned_error() {
    let seed = std::env::var("MUTANT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(SEED);
    let mut rng = StdRng::seed_from_u64(seed);
    let (good, bad) = corpus();
    let (mut valid, mut invalid) = (0usize, 0usize);
    let mut failures = Vec::new();
    for path in good.iter().chain(&bad) {
        let original = std::fs::read(path).unwrap();
        for n in 0..MUTANTS_PER_FILE {
            let mut bytes = original.clone();
            for _ in 0..rng.random_range(1..=3) {
                mutate(&mut rng, &mut bytes);
            }
            // Non-UTF-8 files stop at reading; the loader gets text.
            let text = String::from_utf8_lossy(&bytes);
            match load_checked(path, &text) {
                Ok(Outcome::Valid) => valid += 1,
                Ok(Outcome::Invalid(_)) => invalid += 1,
                Err(problem) => {
                    let shown: String = text.chars().take(600).collect();
                    failures.push(format!(
                        "{} mutant {n}: {problem}\n--- mutant (first 600 chars) ---\n{shown}\n---",
                        path.display()
                    ))
                }
            }
        }
    }
    let total = valid + invalid + failures.len();
    assert!(
        failures.is_empty(),
        "seed {seed:#x}: {} of {total} mutants broke the invariant; the first:\n{}",
        failures.len(),
        failures[0]
    );
    // Not vacuous: the mutants reach both outcomes.
    assert!(total >= 3_000, "seed {seed:#x}: only {total} mutants");
    assert!(
        invalid * 100 >= total * 30,
        "seed {seed:#x}: only {invalid} of {total} mutants were errors"
    );
    assert!(
        valid * 100 >= total,
        "seed {seed:#x}: only {valid} of {total} mutants were valid plans"
    );
    eprintln!("seed {seed:#x}: {total} mutants, {valid} valid, {invalid} errors");
}
