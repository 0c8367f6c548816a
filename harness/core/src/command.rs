//! Running a program to completion and turning its failure into an error
//! that says what ran, how it ended and the last lines it wrote: the one
//! helper every crate uses for `apt-get`, `go`, `kind` and the like.
//! Long-lived children belong to [`crate::process::Supervisor`] instead.

use std::process::{Output, Stdio};

/// A program that could not start, or ended badly.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{command}` failed: {detail}")]
pub struct CommandFailure {
    /// The command line as a person would type it.
    pub command: String,
    /// Why: the spawn error, or the exit status and the stderr tail.
    pub detail: String,
}

/// Runs `cmd` (stdin closed, output captured, killed if the future is
/// dropped) and returns its output whatever its exit status; only a
/// program that cannot start is an error.
pub async fn output(
    cmd: &mut tokio::process::Command,
    command: &str,
) -> Result<Output, CommandFailure> {
    tracing::debug!(command, "run");
    let started = std::time::Instant::now();
    let out = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| CommandFailure {
            command: command.to_string(),
            detail: e.to_string(),
        })?;
    tracing::debug!(
        command,
        status = %out.status,
        code = out.status.code(),
        duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        "ended"
    );
    Ok(out)
}

/// Like [`output`], and a non-zero exit is an error too, with the exit
/// status and the last `tail` lines of stderr.
pub async fn run(
    cmd: &mut tokio::process::Command,
    command: &str,
    tail: usize,
) -> Result<Output, CommandFailure> {
    let out = output(cmd, command).await?;
    if out.status.success() {
        return Ok(out);
    }
    Err(CommandFailure {
        command: command.to_string(),
        detail: format!("{}: {}", out.status, stderr_tail(&out, tail)),
    })
}

/// The last `lines` lines of a command's stderr, trimmed.
pub fn stderr_tail(out: &Output, lines: usize) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let all: Vec<&str> = stderr.trim_end().lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_failure_names_the_command_status_and_stderr_tail() {
        let mut cmd = tokio::process::Command::new("sh");
        cmd.args(["-c", "echo one >&2; echo two >&2; echo three >&2; exit 3"]);
        let err = run(&mut cmd, "sh -c ...", 2).await.expect_err("exit 3");
        assert_eq!(err.command, "sh -c ...");
        assert!(err.detail.contains("exit status: 3"), "{}", err.detail);
        assert!(err.detail.ends_with("two\nthree"), "{}", err.detail);
        assert!(!err.detail.contains("one"), "{}", err.detail);
    }

    #[tokio::test]
    async fn success_returns_the_output_and_a_missing_program_is_an_error() {
        let mut ok = tokio::process::Command::new("sh");
        ok.args(["-c", "printf hi"]);
        assert_eq!(run(&mut ok, "sh", 5).await.expect("runs").stdout, b"hi");
        let mut missing = tokio::process::Command::new("/nonexistent/oci-e2e-program");
        let err = output(&mut missing, "/nonexistent/oci-e2e-program")
            .await
            .expect_err("cannot start");
        assert!(err.detail.contains("No such file"), "{}", err.detail);
    }
}
