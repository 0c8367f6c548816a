//! `app`: create or update an Argo CD Application for an OCI source.

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde_json::json;

use super::{StepAction, StepContext, StepError, StepOutcome};
use crate::argocd::{
    AppSpec, RUN_ID_LABEL, SCENARIO_LABEL, application_manifest, customize_manifest,
};
use crate::isolation::label_value;
use harness_scenario::{App, HelmOptions, HelmValues, SyncPolicy, render_json};

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
        // The signature gate: Argo CD cannot verify OCI signatures (#22609).
        let revision = match &self.require_signature {
            Some(key) => {
                super::sign::require_signature(ctx, &name, &repository, &revision, key).await?
            }
            None => revision,
        };
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
        let helm = match &self.helm {
            Some(helm) => Some(helm_source(ctx, helm)?),
            None => None,
        };
        let mut manifest = application_manifest(&spec, ctx.argocd.namespace());
        if let Some(helm) = helm {
            manifest["spec"]["source"]["helm"] = helm;
        }
        let project = self.project.as_ref().map(|project| {
            if project.applied {
                ctx.isolation.argo_object(&project.name)
            } else {
                project.name.clone()
            }
        });
        let extra = match &self.spec {
            Some(extra) => Some(render_json(extra, &ctx.vars)?),
            None => None,
        };
        customize_manifest(
            &mut manifest,
            project.as_deref(),
            &self.sync_options,
            extra.as_ref(),
        );
        ctx.argocd.apply_manifest(&name, &manifest).await?;
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

/// `spec.source.helm`: a values string goes to `values`, a map to
/// `valuesObject`; parameters as `--set` (or `--set-string`) pairs.
fn helm_source(ctx: &StepContext, helm: &HelmOptions) -> Result<serde_json::Value, StepError> {
    let mut source = json!({});
    if let Some(release_name) = &helm.release_name {
        source["releaseName"] = json!(release_name);
    }
    match &helm.values {
        Some(HelmValues::Text(text)) => source["values"] = json!(ctx.render(text)?),
        Some(HelmValues::Object(object)) => {
            source["valuesObject"] = render_json(object, &ctx.vars)?;
        }
        None => {}
    }
    if !helm.parameters.is_empty() {
        let parameters = helm
            .parameters
            .iter()
            .map(|p| {
                let mut parameter = json!({"name": p.name, "value": ctx.render(&p.value)?});
                if p.force_string {
                    parameter["forceString"] = json!(true);
                }
                Ok(parameter)
            })
            .collect::<Result<Vec<_>, StepError>>()?;
        source["parameters"] = json!(parameters);
    }
    Ok(source)
}
