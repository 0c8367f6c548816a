//! `app`: create or update an Argo CD Application for an OCI source.

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde_json::json;

use super::{StepAction, StepContext, StepError, StepOutcome};
use crate::argocd::{AppSpec, RUN_ID_LABEL, SCENARIO_LABEL};
use crate::runner::isolation::label_value;
use crate::scenario::{App, SyncPolicy};

#[async_trait]
impl StepAction for App {
    fn describe(&self) -> String {
        let policy = match self.sync {
            SyncPolicy::Auto => "auto",
            SyncPolicy::Manual => "manual",
        };
        format!(
            "{} {}@{} -> {} ({policy})",
            self.name, self.repository, self.revision, self.namespace
        )
    }

    async fn run(&self, ctx: &mut StepContext) -> Result<StepOutcome, StepError> {
        let revision = ctx.render(&self.revision)?;
        let name = ctx.isolation.app(&self.name);
        let namespace = ctx.isolation.namespace(&self.namespace);
        let repository = ctx.isolation.repository(&self.repository);
        let repo_url = format!(
            "oci://{}/{repository}",
            ctx.lab.registry_for_argo().trim_end_matches('/')
        );
        let labels = BTreeMap::from([
            (
                RUN_ID_LABEL.to_string(),
                ctx.isolation.run_label().to_string(),
            ),
            (SCENARIO_LABEL.to_string(), label_value(&ctx.scenario)),
        ]);
        let spec = AppSpec {
            name: name.clone(),
            repo_url: repo_url.clone(),
            target_revision: revision.clone(),
            path: self.path.clone(),
            destination_namespace: namespace.clone(),
            auto_sync: self.sync == SyncPolicy::Auto,
            labels,
        };
        // Recorded before applying: a half-applied Application is cleaned up too.
        ctx.apps.insert(name.clone());
        ctx.namespaces.insert(namespace.clone());
        ctx.argocd.apply_app(&spec).await?;
        Ok(StepOutcome {
            summary: format!(
                "applied Application {name} ({repo_url} @ {revision}, namespace {namespace})"
            ),
            digests: vec![],
            observed: Some(
                json!({"application": name, "repoURL": repo_url, "targetRevision": revision, "namespace": namespace}),
            ),
        })
    }
}
