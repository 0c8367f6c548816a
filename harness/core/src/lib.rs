//! The cross-cutting jobs every other crate of the harness shares:
//! owning child processes ([`process`]), running a program to completion
//! with a useful error ([`command`]), waiting for a condition
//! ([`poll`]: the one polling loop, for expectations and lab readiness
//! alike), showing progress on long work
//! ([`progress`]), the names and helpers of the structured log ([`log`]),
//! and choosing the one TLS crypto provider ([`init_crypto`]).

pub mod command;
pub mod log;
pub mod poll;
pub mod process;
pub mod progress;

/// Install the process-wide rustls crypto provider (ring). kube and
/// reqwest would otherwise disagree about which one to use and panic.
/// Idempotent; call it first thing in every binary and test.
pub fn init_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
