//! Removing what a scenario run created: its Applications (which cascade to
//! what they deployed), the objects `apply` put in Argo CD's namespace, and
//! then its destination namespaces.

use std::collections::BTreeSet;
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams};

use crate::argocd::ArgoCd;
use crate::steps::StepContext;

/// How long to wait after dropping a stuck Application's finalizers.
const AFTER_FINALIZERS: Duration = Duration::from_secs(10);

/// Delete the run's Applications, then its namespaces. Returns what did not work.
pub(super) async fn clean(ctx: &StepContext, wait: Duration) -> Vec<String> {
    let mut problems = Vec::new();
    // Complete: the `app` step records a name before applying it.
    let apps = &ctx.apps;
    // Deleting in parallel: each waits for Argo CD to prune its resources.
    let results =
        futures::future::join_all(apps.iter().map(|name| delete_app(&ctx.argocd, name, wait)))
            .await;
    problems.extend(results.into_iter().flatten());

    // Then what `apply` steps put beside Argo CD (projects the apps used).
    for applied in ctx.applied.iter().rev() {
        let api: Api<kube::api::DynamicObject> =
            Api::namespaced_with(ctx.kube.clone(), &applied.namespace, &applied.resource);
        let params = DeleteParams::default();
        let request = harness_core::log::apiserver(
            "delete",
            &applied.resource.kind,
            &applied.namespace,
            &applied.name,
            api.delete(&applied.name, &params),
        );
        match request.await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(error) => problems.push(format!(
                "deleting {} {}/{}: {error}",
                applied.resource.kind, applied.namespace, applied.name
            )),
        }
    }

    let namespaces: BTreeSet<String> = ctx
        .namespaces
        .union(&ctx.isolation.namespaces())
        .cloned()
        .collect();
    let api: Api<Namespace> = Api::all(ctx.kube.clone());
    for namespace in namespaces {
        // Not waited for: namespace finalization can take long and nothing
        // else in the run uses these names.
        let params = DeleteParams::background();
        let request = harness_core::log::apiserver(
            "delete",
            "Namespace",
            "",
            &namespace,
            api.delete(&namespace, &params),
        );
        match request.await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(error) => problems.push(format!("deleting namespace {namespace}: {error}")),
        }
    }
    problems
}

async fn delete_app(argocd: &ArgoCd, name: &str, wait: Duration) -> Option<String> {
    let first = match argocd.delete(name, wait).await {
        Ok(()) => return None,
        Err(error) => error,
    };
    // Last resort so nothing is left behind: drop the finalizer (what the
    // Application deployed goes with its namespace).
    if let Err(error) = argocd.remove_finalizers(name).await {
        return Some(format!(
            "{first}; removing its finalizers failed too: {error}"
        ));
    }
    match argocd.delete(name, AFTER_FINALIZERS).await {
        Ok(()) => Some(format!("{first}; removed its finalizers to delete it")),
        Err(error) => Some(format!(
            "{first}; still there after removing its finalizers: {error}"
        )),
    }
}
