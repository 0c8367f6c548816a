//! Progress output for long work: a spinner on a terminal, plain
//! timestamped lines in CI (`CI=true`) or when stderr is not a TTY.
//!
//! Every module reports through [`Progress`] so the CLI decides once how
//! output looks.

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

/// True when output should be plain lines (CI or no TTY).
pub fn plain_output() -> bool {
    std::env::var("CI")
        .map(|v| !v.is_empty() && v != "false" && v != "0")
        .unwrap_or(false)
        || !std::io::stderr().is_terminal()
}

#[derive(Clone)]
pub struct Progress {
    inner: Arc<Inner>,
}

struct Inner {
    plain: bool,
    quiet: bool,
    started: Instant,
    /// One spinner per concurrent task (parallel scenarios), drawn together
    /// so they do not overwrite each other; lines print above them.
    multi: MultiProgress,
}

impl Default for Progress {
    fn default() -> Self {
        Self::new()
    }
}

impl Progress {
    /// Chooses spinner or plain lines from the environment.
    pub fn new() -> Self {
        Self::with(plain_output(), false)
    }

    /// Plain timestamped lines even on a terminal (`--verbose`: log lines
    /// and spinners would overwrite each other).
    pub fn lines() -> Self {
        Self::with(true, false)
    }

    /// Prints nothing (tests, `--quiet`).
    pub fn quiet() -> Self {
        Self::with(true, true)
    }

    fn with(plain: bool, quiet: bool) -> Self {
        Self {
            inner: Arc::new(Inner {
                plain,
                quiet,
                started: Instant::now(),
                multi: MultiProgress::new(),
            }),
        }
    }

    /// Prints a line above any spinners.
    fn line(&self, text: String) {
        // Plain output, or spinners that cannot print: straight to stderr.
        if self.inner.plain || self.inner.multi.println(&text).is_err() {
            eprintln!("{text}");
        }
    }

    /// A one-off line ("lab: local (no Docker engine found)").
    pub fn info(&self, msg: impl AsRef<str>) {
        if self.inner.quiet {
            return;
        }
        self.line(format!("{} {}", self.stamp(), msg.as_ref()));
    }

    /// A warning line.
    pub fn warn(&self, msg: impl AsRef<str>) {
        if self.inner.quiet {
            return;
        }
        self.line(format!("{} warning: {}", self.stamp(), msg.as_ref()));
    }

    /// Starts a task that may take a while; finish it with [`Task::done`]
    /// or [`Task::fail`]. Dropping it unfinished says it was abandoned.
    pub fn task(&self, msg: impl Into<String>) -> Task {
        let msg = msg.into();
        let bar = if self.inner.quiet {
            None
        } else if self.inner.plain {
            self.line(format!("{} {} ...", self.stamp(), msg));
            None
        } else {
            let bar = self.inner.multi.add(ProgressBar::new_spinner());
            bar.set_style(
                ProgressStyle::with_template("{spinner} {msg} [{elapsed}]")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.set_message(msg.clone());
            bar.enable_steady_tick(Duration::from_millis(120));
            Some(bar)
        };
        Task {
            progress: self.clone(),
            msg,
            bar,
            started: Instant::now(),
            finished: false,
        }
    }

    fn stamp(&self) -> String {
        let s = self.inner.started.elapsed().as_secs();
        format!("[{:>2}:{:02}]", s / 60, s % 60)
    }
}

/// A long piece of work in progress.
pub struct Task {
    progress: Progress,
    msg: String,
    bar: Option<ProgressBar>,
    started: Instant,
    finished: bool,
}

impl Task {
    /// Updates the message (e.g. "building argocd (3/5)").
    pub fn update(&self, detail: impl AsRef<str>) {
        match &self.bar {
            Some(bar) => bar.set_message(format!("{}: {}", self.msg, detail.as_ref())),
            None if !self.progress.inner.quiet => self.progress.line(format!(
                "{}   {}: {}",
                self.progress.stamp(),
                self.msg,
                detail.as_ref()
            )),
            None => {}
        }
    }

    pub fn done(mut self, result: impl AsRef<str>) {
        self.finish("ok", result.as_ref());
    }

    pub fn fail(mut self, why: impl AsRef<str>) {
        self.finish("FAILED", why.as_ref());
    }

    fn finish(&mut self, status: &str, detail: &str) {
        self.finished = true;
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
            self.progress.inner.multi.remove(&bar);
        }
        if self.progress.inner.quiet {
            return;
        }
        let took = self.started.elapsed();
        let sep = if detail.is_empty() { "" } else { ": " };
        self.progress.line(format!(
            "{} {} {status}{sep}{detail} ({:.1}s)",
            self.progress.stamp(),
            self.msg,
            took.as_secs_f64()
        ));
    }
}

impl Drop for Task {
    fn drop(&mut self) {
        if !self.finished {
            self.finish("abandoned", "");
        }
    }
}
