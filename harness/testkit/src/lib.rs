//! Test support: real registries as child processes for the tests
//! ([`registry_process`]), and a proxy in front of one for the faults a
//! spec-following registry never produces ([`fault_proxy`]). The integration test suite lives in `tests/`
//! beside this crate and uses every other crate of the harness.

pub mod fault_proxy;
pub mod pass_through;
pub mod registry_process;
pub mod release_mirror;
