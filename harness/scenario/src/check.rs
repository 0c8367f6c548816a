//! `cargo xtask check`: validate scenario files without a lab.

use std::io::Write;
use std::path::PathBuf;

use super::load::load_run;

/// Print every problem in the scenarios under `paths`, then a one-line
/// summary; true when all of them are valid.
pub fn check_paths(paths: &[PathBuf], out: &mut dyn Write) -> bool {
    let run = load_run(paths);
    // A failed write (closed pipe) must not hide the verdict: the return
    // value still says whether the files are valid.
    for diagnostic in &run.diagnostics {
        let _ = writeln!(out, "{diagnostic}\n");
    }
    let files = match run.files.len() {
        1 => "1 file".to_string(),
        n => format!("{n} files"),
    };
    let verdict = match run.diagnostics.len() {
        0 => "no errors".to_string(),
        1 => "1 error".to_string(),
        n => format!("{n} errors"),
    };
    let _ = writeln!(out, "checked {files}: {verdict}");
    run.diagnostics.is_empty()
}
