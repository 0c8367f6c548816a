//! The engine: runs scenario plans on any lab. It sees a lab only through
//! [`lab::Lab`] and names no lab kind.
//!
//! - [`runner`]: scenarios in parallel, steps until the first failure,
//!   `finally`, diagnostics, cleanup;
//! - [`steps`]: one module per step kind; [`expect`]: the matcher and the
//!   polling of expectations; [`argocd`]: Applications as dynamic objects;
//! - [`isolation`]: the run-unique names every object gets;
//! - [`outcome`]: what a run produced; [`report`]: outcomes into files
//!   (JUnit, JSON, merge of shards); [`diagnostics`]: what is collected
//!   from the lab when a scenario fails.

pub mod argocd;
pub mod diagnostics;
pub mod expect;
pub mod isolation;
pub mod lab;
pub mod outcome;
pub mod report;
pub mod runner;
pub mod steps;
