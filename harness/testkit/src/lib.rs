//! Test support: real registries as child processes for the tests
//! ([`registry_process`]). The integration test suite lives in `tests/`
//! beside this crate and uses every other crate of the harness.

pub mod registry_process;
