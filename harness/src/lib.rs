//! The end-to-end harness for GitOps delivery of OCI artifacts with Argo CD.
//!
//! See ARCHITECTURE.md at the repository root for the bird's-eye view.

pub mod argocd;
pub mod bench;
pub mod container;
pub mod e2e;
pub mod expect;
pub mod kubeutil;
pub mod lab;
pub mod oci;
pub mod process;
pub mod progress;
pub mod registry_process;
pub mod report;
pub mod runner;
pub mod scenario;
pub mod steps;
pub mod tools;

/// Install the process-wide rustls crypto provider (ring). kube and
/// reqwest would otherwise disagree about which one to use and panic.
/// Idempotent; call it first thing in every binary and test.
pub fn init_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
