//! Scenario files: the typed plan, loading with positions, lint, schema.

pub mod plan;

pub use plan::*;
