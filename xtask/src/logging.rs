//! The structured log of `--verbose` and `RUST_LOG`: every `tracing` event
//! the filter lets through, as one JSON object a line (timestamp, level,
//! target, fields, the current span and the span list), in `harness.log`
//! of the run's folder. Progress output is untouched: the log never goes
//! to stderr.
//!
//! The folder is known only part-way through a run (`e2e` names its report
//! folder after loading the scenarios; the library says so with the
//! [`harness_core::log::run_folder`] event). Until then events are kept in
//! memory, and written first when the file opens; a command that never
//! names a folder writes to its fallback place at the end.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use harness_core::log::RUN_FOLDER_TARGET;
use tracing_subscriber::filter::{EnvFilter, filter_fn};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt as _};
use tracing_subscriber::util::SubscriberInitExt as _;

/// The log's file name in a run's folder.
pub const LOG_FILE: &str = "harness.log";

/// What `--verbose` logs when `RUST_LOG` says nothing: the harness's
/// crates at debug, and kube's client (one `HTTP` span per apiserver
/// request: method, URL, status).
pub const VERBOSE_FILTER: &str = "harness_core=debug,harness_engine=debug,harness_labs=debug,\
     harness_tools=debug,harness_e2e=debug,harness_oci=debug,harness_capture=debug,\
     harness_bench=debug,xtask=debug,kube_client=debug";

/// Where events go: memory until a file is named, then that file.
enum Sink {
    Buffer(Vec<u8>),
    File {
        file: std::fs::File,
        path: PathBuf,
    },
    /// The file could not be written: events are dropped, the end says why.
    Failed {
        path: PathBuf,
        error: String,
    },
}

/// A `MakeWriter` that buffers until [`RunLog::open`] names the file, then
/// writes there (what was buffered first). Cloning shares the one sink.
#[derive(Clone)]
pub struct RunLog {
    sink: Arc<Mutex<Sink>>,
}

impl Default for RunLog {
    fn default() -> Self {
        RunLog {
            sink: Arc::new(Mutex::new(Sink::Buffer(Vec::new()))),
        }
    }
}

impl RunLog {
    fn lock(&self) -> MutexGuard<'_, Sink> {
        self.sink.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes to `path` from now on (its folder is created), starting with
    /// what was buffered. The first file named wins: later calls (a nested
    /// folder, the fallback) change nothing.
    pub fn open(&self, path: &Path) {
        let mut sink = self.lock();
        let Sink::Buffer(buffered) = &mut *sink else {
            return;
        };
        let buffered = std::mem::take(buffered);
        let opened = path
            .parent()
            .filter(|dir| !dir.as_os_str().is_empty())
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::File::create(path))
            .and_then(|mut file| file.write_all(&buffered).map(|()| file));
        *sink = match opened {
            Ok(file) => Sink::File {
                file,
                path: path.to_path_buf(),
            },
            Err(e) => Sink::Failed {
                path: path.to_path_buf(),
                error: e.to_string(),
            },
        };
    }

    /// The end of the command: opens `fallback` if no folder was named,
    /// and says where the log is (the line the CLI prints).
    pub fn finish(&self, fallback: &Path) -> String {
        self.open(fallback);
        match &*self.lock() {
            Sink::File { path, .. } => format!("log: {}", path.display()),
            Sink::Failed { path, error } => {
                format!("log: cannot write {}: {error}", path.display())
            }
            Sink::Buffer(_) => "log: not written".to_string(),
        }
    }

    /// The file being written, once there is one.
    #[cfg(test)]
    fn path(&self) -> Option<PathBuf> {
        match &*self.lock() {
            Sink::File { path, .. } => Some(path.clone()),
            _ => None,
        }
    }
}

/// One event's writer. The JSON formatter hands it each event whole in one
/// `write`, which is written whole under the lock, so lines of events from
/// different threads never interleave.
pub struct RunLogWriter<'a> {
    log: &'a RunLog,
}

impl Write for RunLogWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match &mut *self.log.lock() {
            Sink::Buffer(buffer) => buffer.extend_from_slice(buf),
            Sink::File { file, .. } => file.write_all(buf)?,
            Sink::Failed { .. } => {}
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match &mut *self.log.lock() {
            Sink::File { file, .. } => file.flush(),
            _ => Ok(()),
        }
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for RunLog {
    type Writer = RunLogWriter<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        RunLogWriter { log: self }
    }
}

/// Opens the log in the folder the [`harness_core::log::run_folder`]
/// event names.
struct RunFolder {
    log: RunLog,
}

impl<S: tracing::Subscriber> Layer<S> for RunFolder {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        struct Path(Option<String>);
        impl tracing::field::Visit for Path {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                if field.name() == "path" {
                    self.0 = Some(format!("{value:?}"));
                }
            }
            fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
                if field.name() == "path" {
                    self.0 = Some(value.to_string());
                }
            }
        }
        let mut path = Path(None);
        event.record(&mut path);
        if let Some(dir) = path.0 {
            self.log.open(&std::path::Path::new(&dir).join(LOG_FILE));
        }
    }
}

/// The filter of the log: `RUST_LOG` when set and not empty, else
/// [`VERBOSE_FILTER`] with `--verbose`; `None`: no log at all.
pub fn filter_spec(verbose: bool, rust_log: Option<&str>) -> Option<String> {
    match rust_log {
        Some(spec) if !spec.trim().is_empty() => Some(spec.to_string()),
        _ if verbose => Some(VERBOSE_FILTER.to_string()),
        _ => None,
    }
}

/// Installs the log's subscriber when `--verbose` or `RUST_LOG` asks for
/// one; without either nothing is installed and nothing is written.
pub fn init(verbose: bool) -> Option<RunLog> {
    let spec = filter_spec(verbose, std::env::var("RUST_LOG").ok().as_deref())?;
    let filter = EnvFilter::builder()
        .parse_lossy(spec)
        // The folder's own line, whatever RUST_LOG chose.
        .add_directive(
            format!("{RUN_FOLDER_TARGET}=info")
                .parse()
                .expect("a valid directive"),
        );
    let log = RunLog::default();
    let json = tracing_subscriber::fmt::layer()
        .json()
        .with_current_span(true)
        .with_span_list(true)
        .with_ansi(false)
        .with_writer(log.clone())
        .with_filter(filter);
    let folder = RunFolder { log: log.clone() }
        .with_filter(filter_fn(|meta| meta.target() == RUN_FOLDER_TARGET));
    tracing_subscriber::registry()
        .with(json)
        .with(folder)
        .try_init()
        .ok()?;
    Some(log)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::fmt::MakeWriter as _;

    fn write(log: &RunLog, line: &str) {
        log.make_writer().write_all(line.as_bytes()).unwrap();
    }

    #[test]
    fn events_before_the_file_are_kept_and_written_first() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run/nested/harness.log");
        let log = RunLog::default();
        write(&log, "one\n");
        write(&log, "two\n");
        assert!(
            !path.exists(),
            "nothing is written before the file is named"
        );
        log.open(&path);
        write(&log, "three\n");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "one\ntwo\nthree\n");
        assert_eq!(log.path().as_deref(), Some(path.as_path()));
    }

    #[test]
    fn the_first_file_named_wins_and_the_fallback_only_serves_when_none_was() {
        let dir = tempfile::tempdir().unwrap();
        let (first, second) = (dir.path().join("a.log"), dir.path().join("b.log"));
        let log = RunLog::default();
        write(&log, "x\n");
        log.open(&first);
        log.open(&second);
        write(&log, "y\n");
        assert_eq!(
            log.finish(&second),
            format!("log: {}", first.display()),
            "the fallback is not used once a file is open"
        );
        assert_eq!(std::fs::read_to_string(&first).unwrap(), "x\ny\n");
        assert!(!second.exists());

        let unnamed = RunLog::default();
        write(&unnamed, "z\n");
        let fallback = dir.path().join("fallback/harness.log");
        assert_eq!(
            unnamed.finish(&fallback),
            format!("log: {}", fallback.display())
        );
        assert_eq!(std::fs::read_to_string(&fallback).unwrap(), "z\n");
    }

    #[test]
    fn a_file_that_cannot_be_written_is_said_and_drops_events() {
        let dir = tempfile::tempdir().unwrap();
        // A file where the folder should be.
        let blocker = dir.path().join("blocker");
        std::fs::write(&blocker, "").unwrap();
        let log = RunLog::default();
        log.open(&blocker.join("harness.log"));
        write(&log, "lost\n");
        let said = log.finish(&dir.path().join("other.log"));
        assert!(said.starts_with("log: cannot write"), "{said}");
        assert!(!dir.path().join("other.log").exists());
    }

    #[test]
    fn lines_from_many_threads_never_interleave() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("harness.log");
        let log = RunLog::default();
        std::thread::scope(|scope| {
            for t in 0..4 {
                let log = log.clone();
                let path = path.clone();
                scope.spawn(move || {
                    for i in 0..200 {
                        let line = format!(
                            "{{\"thread\":{t},\"i\":{i},\"pad\":\"{}\"}}\n",
                            "x".repeat(300)
                        );
                        write(&log, &line);
                        if t == 0 && i == 100 {
                            log.open(&path);
                        }
                    }
                });
            }
        });
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 800);
        for line in lines {
            serde_json::from_str::<serde_json::Value>(line).expect("a whole JSON line");
        }
    }

    #[test]
    fn the_filter_is_rust_log_else_verbose_else_none() {
        assert_eq!(filter_spec(false, None), None);
        assert_eq!(filter_spec(false, Some("")), None);
        assert_eq!(filter_spec(false, Some("  ")), None);
        assert_eq!(
            filter_spec(false, Some("kube=trace")).as_deref(),
            Some("kube=trace")
        );
        assert_eq!(
            filter_spec(true, Some("harness_oci=trace")).as_deref(),
            Some("harness_oci=trace")
        );
        let verbose = filter_spec(true, None).unwrap();
        assert!(verbose.contains("kube_client=debug"), "{verbose}");
        assert!(verbose.contains("harness_core=debug"), "{verbose}");
    }
}
