//! Step kinds: one file per operation key, all behind [`StepAction`].
//!
//! A step reads and writes the scenario run's [`StepContext`] (variables,
//! what it created) and returns a [`StepOutcome`] for the reports.

mod app;
mod apply;
mod attach;
mod delete;
mod expect;
mod fault;
mod push;
mod refresh;
mod sign;
mod sync;
mod tag;
mod verify;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::argocd::ArgoCd;
use crate::expect::Backoff;
use crate::isolation::Isolation;
use crate::lab::Lab;
use harness_oci::RegistryClient;
use harness_scenario::{Action, Template, UndefinedVariable, Vars};

/// Everything a step may use and change during one scenario run.
pub struct StepContext {
    pub lab: Arc<dyn Lab>,
    pub kube: kube::Client,
    pub argocd: ArgoCd,
    pub registry: RegistryClient,
    pub isolation: Isolation,
    pub vars: Vars,
    /// The scenario's name as written.
    pub scenario: String,
    /// When the current phase (steps, finally) must end.
    pub deadline: Instant,
    pub cancel: CancellationToken,
    pub backoff: Backoff,
    /// How long Argo CD has to acknowledge each refresh of `reconciles: N`.
    pub reconcile_budget: Duration,
    /// Applications (mapped names) this run created and has not deleted.
    pub apps: BTreeSet<String>,
    /// Destination namespaces (mapped) of the Applications this run created.
    pub namespaces: BTreeSet<String>,
    /// Repositories (mapped) this run pushed to or tagged in.
    pub repositories: BTreeSet<String>,
    /// Signing keys generated for this run, by the name the scenario gives them.
    pub signing_keys: std::collections::BTreeMap<String, harness_oci::sign::SigningKey>,
    /// Lab components a `fault` step stopped and none started again: the
    /// runner starts them after `finally`.
    pub stopped: BTreeSet<harness_scenario::LabComponent>,
    /// Objects `apply` steps put in Argo CD's namespace: deleted after the
    /// Applications at cleanup.
    pub applied: Vec<apply::Applied>,
}

impl StepContext {
    pub fn render(&self, template: &Template) -> Result<String, StepError> {
        template.render(&self.vars).map_err(StepError::from)
    }

    /// Time left before the phase's deadline, at most `cap`.
    pub fn budget(&self, cap: Duration) -> Duration {
        self.deadline
            .saturating_duration_since(Instant::now())
            .min(cap)
    }
}

pub use crate::outcome::StepDigest;
pub use apply::Applied;

/// What a successful step did, for progress and reports.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct StepOutcome {
    /// One line, e.g. `pushed sha256:... as v1`.
    pub summary: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub digests: Vec<StepDigest>,
    /// What an expect observed last (Application status, object subset).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed: Option<Value>,
}

impl StepOutcome {
    pub fn summary(text: impl Into<String>) -> Self {
        StepOutcome {
            summary: text.into(),
            ..Default::default()
        }
    }
}

/// Why a step did not succeed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StepError {
    /// The step ran and failed; `observed` is what an expect saw last.
    #[error("{message}")]
    Failed {
        message: String,
        observed: Option<Value>,
    },
    /// The run was cancelled (Ctrl-C) while the step ran.
    #[error("cancelled{}", detail.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    Cancelled {
        detail: Option<String>,
        observed: Option<Value>,
    },
    /// The phase's time budget ended while the step ran.
    #[error("{message}")]
    TimedOut { message: String },
}

impl StepError {
    pub fn failed(message: impl Into<String>) -> Self {
        StepError::Failed {
            message: message.into(),
            observed: None,
        }
    }

    pub fn observed(&self) -> Option<&Value> {
        match self {
            StepError::Failed { observed, .. } | StepError::Cancelled { observed, .. } => {
                observed.as_ref()
            }
            StepError::TimedOut { .. } => None,
        }
    }
}

impl From<UndefinedVariable> for StepError {
    fn from(error: UndefinedVariable) -> Self {
        StepError::failed(error.to_string())
    }
}

impl From<crate::argocd::ArgoError> for StepError {
    fn from(error: crate::argocd::ArgoError) -> Self {
        StepError::failed(error.to_string())
    }
}

impl From<harness_oci::OciError> for StepError {
    fn from(error: harness_oci::OciError) -> Self {
        StepError::failed(error.to_string())
    }
}

/// One operation of a scenario.
#[async_trait]
pub trait StepAction: Send + Sync {
    /// A short description for progress lines (`demo sync=Synced within 2m`).
    fn describe(&self) -> String;
    async fn run(&self, ctx: &mut StepContext) -> Result<StepOutcome, StepError>;
}

/// `action_of` from the scenario crate's list of step kinds
/// (`harness_scenario::with_step_kinds!`): each kind's plan is its own
/// `StepAction`, implemented in this module's file for that kind.
macro_rules! action_of {
    ($( $(#[doc = $doc:literal])* $key:ident : $file:ty as $schema:literal => $variant:ident($plan:ty) by $load:expr ;)*) => {
        /// The implementation of a step's operation.
        pub fn action_of(action: &Action) -> &dyn StepAction {
            match action {
                $( Action::$variant(step) => step, )*
            }
        }
    };
}

harness_scenario::with_step_kinds!(action_of);

/// Render a list of templates.
fn render_all(ctx: &StepContext, templates: &[Template]) -> Result<Vec<String>, StepError> {
    templates.iter().map(|t| ctx.render(t)).collect()
}

fn join_templates(templates: &[Template]) -> String {
    templates
        .iter()
        .map(|t| t.0.as_str())
        .collect::<Vec<_>>()
        .join(",")
}
