//! Bytes -> the scenario loader (`load_source`, what `load_file` runs after
//! reading the file). Never a panic; every failure is a diagnostic at a
//! `file:line:col` inside the text.
//!
//! The input is loaded as if it were a file in `scenarios/`, so the relative
//! paths the seeds name (`directory:`, `file:`, keys) resolve as they do for
//! the real files.

#![no_main]

use std::path::PathBuf;
use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;

static PATH: LazyLock<PathBuf> = LazyLock::new(|| {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scenarios/fuzz-input.yaml")
});

fuzz_target!(|data: &[u8]| {
    // Non-UTF-8 files stop at reading, before the loader; the loader gets text.
    let text = String::from_utf8_lossy(data);
    let Err(diagnostics) = harness_scenario::load_source(&PATH, &text) else {
        return;
    };
    assert!(!diagnostics.is_empty(), "an error without a diagnostic");
    // Lines as YAML ends them (`\r\n`, `\n`, a lone `\r`); a position may
    // be on the line after the last break (the end of the input).
    let breaks =
        text.matches('\n').count() + text.matches('\r').count() - text.matches("\r\n").count();
    let lines = breaks as u32 + 1;
    for diagnostic in &diagnostics {
        let rendered = diagnostic.to_string();
        let location = diagnostic
            .location
            .as_ref()
            .unwrap_or_else(|| panic!("a diagnostic without a position: {rendered}"));
        assert_eq!(location.file, *PATH, "{rendered}");
        assert!(
            location.line >= 1 && location.line <= lines + 1 && location.column >= 1,
            "position outside the file ({breaks} line breaks): {rendered}"
        );
        let prefix = format!(
            "{}:{}:{}: error: ",
            PATH.display(),
            location.line,
            location.column
        );
        assert!(rendered.starts_with(&prefix), "{rendered}");
    }
});
