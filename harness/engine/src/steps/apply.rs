//! `apply`: server-side apply of the objects a scenario writes, with the
//! names and namespaces the loader decided (see `Placement`). What goes to
//! Argo CD's namespace is recorded for cleanup; objects in destination
//! namespaces go with their namespace.

use async_trait::async_trait;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use serde_json::{Value, json};

use super::{StepAction, StepContext, StepError, StepOutcome};
use crate::argocd::FIELD_MANAGER;
use crate::argocd::RUN_ID_LABEL;
use harness_scenario::{Apply, Placement};

/// An object an `apply` step put in Argo CD's namespace.
#[derive(Debug, Clone)]
pub struct Applied {
    pub resource: kube::core::ApiResource,
    pub namespace: String,
    pub name: String,
}

#[async_trait]
impl StepAction for Apply {
    fn describe(&self) -> String {
        self.objects
            .iter()
            .map(|o| format!("{}/{}", o.kind, o.name))
            .collect::<Vec<_>>()
            .join(", ")
    }

    async fn run(&self, ctx: &mut StepContext) -> Result<StepOutcome, StepError> {
        let text = ctx.render(&self.manifest)?;
        let documents: Vec<Value> = harness_scenario::yaml::documents(&text).map_err(|error| {
            StepError::failed(format!("the rendered objects are not YAML: {error}"))
        })?;
        if documents.len() != self.objects.len() {
            return Err(StepError::failed(format!(
                "rendering changed the documents: {} at load time, {} now",
                self.objects.len(),
                documents.len()
            )));
        }
        let mut done = Vec::new();
        for (mut document, object) in documents.into_iter().zip(&self.objects) {
            let (namespace, name) = match &object.placement {
                Placement::ArgoCd => (
                    ctx.lab.argocd_namespace().to_string(),
                    ctx.isolation.argo_object(&object.name),
                ),
                Placement::Destination(namespace) => {
                    let mapped = ctx.isolation.namespace(namespace);
                    ensure_namespace(ctx, &mapped).await?;
                    (mapped, object.name.clone())
                }
            };
            document["metadata"]["name"] = json!(name);
            document["metadata"]["namespace"] = json!(namespace);
            document["metadata"]["labels"][RUN_ID_LABEL] = json!(ctx.isolation.run_label());
            let (resource, _) =
                crate::expect::discover(&ctx.kube, &object.api_version, &object.kind)
                    .await
                    .map_err(StepError::failed)?;
            let api: Api<DynamicObject> =
                Api::namespaced_with(ctx.kube.clone(), &namespace, &resource);
            if object.placement == Placement::ArgoCd {
                // Recorded before the request, so a half-done apply is cleaned up too.
                ctx.applied.push(Applied {
                    resource: resource.clone(),
                    namespace: namespace.clone(),
                    name: name.clone(),
                });
            }
            let (params, patch) = (
                PatchParams::apply(FIELD_MANAGER).force(),
                Patch::Apply(&document),
            );
            let request = api.patch(&name, &params, &patch);
            harness_core::log::apiserver("apply", &object.kind, &namespace, &name, request)
                .await
                .map_err(|error| {
                    StepError::failed(format!(
                        "applying {} {namespace}/{name}: {error}",
                        object.kind
                    ))
                })?;
            done.push(format!("{} {namespace}/{name}", object.kind));
        }
        Ok(StepOutcome::summary(format!("applied {}", done.join(", "))))
    }
}

/// Creates the mapped destination namespace `name` unless it exists (Argo
/// CD creates it at the first sync; an apply may come first).
async fn ensure_namespace(ctx: &mut StepContext, name: &str) -> Result<(), StepError> {
    let api: Api<Namespace> = Api::all(ctx.kube.clone());
    let namespace = json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": {RUN_ID_LABEL: ctx.isolation.run_label()}},
    });
    ctx.namespaces.insert(name.to_string());
    let (params, patch) = (PatchParams::apply(FIELD_MANAGER), Patch::Apply(&namespace));
    let request = api.patch(name, &params, &patch);
    harness_core::log::apiserver("apply", "Namespace", "", name, request)
        .await
        .map_err(|error| StepError::failed(format!("creating namespace {name}: {error}")))?;
    Ok(())
}
