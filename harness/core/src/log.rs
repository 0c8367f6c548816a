//! The harness's structured log: names and helpers shared by every crate.
//! Library crates only emit `tracing` events; the CLI's subscriber writes
//! them (JSON lines, `harness.log` in the run's folder) when `--verbose` or
//! `RUST_LOG` asks for it.
//!
//! Field names are the same wherever an event comes from: `duration_ms`
//! for how long a request or wait took, `status` (`ok` or `error`) for how
//! it ended and `error` for why. Secrets (registry passwords, tokens,
//! Secret data) are never a field: events name objects and references,
//! never bodies or headers.

use std::fmt::Display;
use std::future::Future;
use std::path::Path;
use std::time::Instant;

/// The target of the one event that names the run's folder ([`run_folder`]):
/// the CLI's subscriber moves its log there. Not a module path, so no
/// `RUST_LOG` directive for the harness's crates turns it off by accident.
pub const RUN_FOLDER_TARGET: &str = "harness_run_folder";

/// Says where this run's files go (the report folder of `e2e`, `bisect`...):
/// the log is written there from now on, with what was logged before.
pub fn run_folder(dir: &Path) {
    tracing::info!(target: RUN_FOLDER_TARGET, path = %dir.display(), "run folder");
}

/// Milliseconds since `started`, for `duration_ms` fields.
pub fn millis_since(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Awaits one request of the harness to the Kubernetes API and logs it
/// when it ends (debug, "apiserver request"): `verb` (`apply`, `get`,
/// `patch`, `delete`, `list`, `create`...), the object's `kind`,
/// `namespace` (empty for cluster-scoped objects) and `name` (empty for a
/// list), `duration_ms`, `status` and the `error`, if any. kube's own
/// `HTTP` spans (target `kube_client`) add the method, URL and HTTP status.
pub async fn apiserver<T, E, F>(
    verb: &str,
    kind: &str,
    namespace: &str,
    name: &str,
    request: F,
) -> Result<T, E>
where
    F: Future<Output = Result<T, E>>,
    E: Display,
{
    let started = Instant::now();
    let result = request.await;
    let duration_ms = millis_since(started);
    match &result {
        Ok(_) => tracing::debug!(
            verb,
            kind,
            namespace,
            name,
            duration_ms,
            status = "ok",
            "apiserver request"
        ),
        Err(e) => tracing::debug!(
            verb,
            kind,
            namespace,
            name,
            duration_ms,
            status = "error",
            error = %e,
            "apiserver request"
        ),
    }
    result
}
