//! Fault steps on the KIND lab: Argo CD's components are scaled to zero
//! and back (their pods go, their Services and volumes stay); the registry
//! container is stopped and started (its data volume stays).

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use tokio_util::sync::CancellationToken;

use super::run::{kube_err, patch_workload, workload_pending};
use super::{KindError, KindLab, plan};
use crate::container;
use crate::{FaultAction, LabComponent};
use harness_core::poll::{self, Observation, PollOutcome};

/// How long a component has to go away or come back.
const FAULT_TIMEOUT: Duration = Duration::from_secs(180);

const BACKOFF: poll::Backoff = poll::Backoff {
    initial: Duration::from_millis(200),
    factor: 2.0,
    max: Duration::from_secs(2),
};

/// The workload behind an Argo CD component (as `kind/name`) and its pods'
/// `app.kubernetes.io/name`.
fn workload(component: LabComponent) -> Option<(&'static str, &'static str)> {
    match component {
        LabComponent::ArgocdRepoServer => {
            Some(("deployment/argocd-repo-server", "argocd-repo-server"))
        }
        LabComponent::ArgocdApplicationController => Some((
            "statefulset/argocd-application-controller",
            "argocd-application-controller",
        )),
        LabComponent::Redis => Some(("deployment/argocd-redis", "argocd-redis")),
        LabComponent::Registry => None,
    }
}

impl KindLab {
    pub(super) async fn fault_component(
        &self,
        component: LabComponent,
        action: FaultAction,
    ) -> Result<String, KindError> {
        let mut done = Vec::new();
        if matches!(action, FaultAction::Stop | FaultAction::Restart) {
            done.push(self.stop(component).await?);
        }
        if matches!(action, FaultAction::Start | FaultAction::Restart) {
            done.push(self.start(component).await?);
        }
        Ok(done.join(", "))
    }

    async fn stop(&self, component: LabComponent) -> Result<String, KindError> {
        let Some((workload, label)) = workload(component) else {
            let engine = container::connect().await?;
            container::stop_container(&engine, &self.cfg.registry_name).await?;
            return Ok(format!("stopped container {}", self.cfg.registry_name));
        };
        self.scale(workload, 0).await?;
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), super::ARGOCD_NAMESPACE);
        let selector = ListParams::default().labels(&format!("app.kubernetes.io/name={label}"));
        let outcome = poll::eventually_try(
            tokio::time::Instant::now() + FAULT_TIMEOUT,
            BACKOFF,
            &CancellationToken::new(),
            || async {
                let list = pods
                    .list(&selector)
                    .await
                    .map_err(kube_err(format!("list the pods of {workload}")))?;
                let left: Vec<String> = list
                    .items
                    .iter()
                    .filter_map(|p| p.metadata.name.clone())
                    .collect();
                Ok::<_, KindError>(if left.is_empty() {
                    Observation::holds(left)
                } else {
                    Observation::fails(left)
                })
            },
        )
        .await?;
        match outcome {
            PollOutcome::Held { .. } => Ok(format!("scaled {workload} to 0 (its pods are gone)")),
            PollOutcome::TimedOut { last, .. } => Err(KindError::Other(format!(
                "{workload} was scaled to 0 but its pods were still there after {}s: {}",
                FAULT_TIMEOUT.as_secs(),
                last.join(", ")
            ))),
            _ => Err(KindError::Other(format!(
                "waiting for the pods of {workload} to go ended early"
            ))),
        }
    }

    async fn start(&self, component: LabComponent) -> Result<String, KindError> {
        let started = tokio::time::Instant::now();
        let Some((workload, _)) = workload(component) else {
            let engine = container::connect().await?;
            container::start_container(&engine, &self.cfg.registry_name).await?;
            let url = format!("http://{}/v2/", plan::host_registry(&self.cfg));
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(2))
                .build()
                .map_err(|e| KindError::Other(format!("an HTTP client: {e}")))?;
            let outcome = poll::eventually(
                tokio::time::Instant::now() + FAULT_TIMEOUT,
                BACKOFF,
                &CancellationToken::new(),
                || async {
                    let ok = client
                        .get(&url)
                        .send()
                        .await
                        .is_ok_and(|r| r.status().is_success());
                    if ok {
                        Observation::holds(())
                    } else {
                        Observation::fails(())
                    }
                },
            )
            .await;
            return match outcome {
                PollOutcome::Held { .. } => Ok(format!(
                    "started container {}, answering in {:.1}s",
                    self.cfg.registry_name,
                    started.elapsed().as_secs_f64()
                )),
                _ => Err(KindError::Other(format!(
                    "container {} was started but {url} did not answer within {}s",
                    self.cfg.registry_name,
                    FAULT_TIMEOUT.as_secs()
                ))),
            };
        };
        self.scale(workload, 1).await?;
        let outcome = poll::eventually_try(
            tokio::time::Instant::now() + FAULT_TIMEOUT,
            BACKOFF,
            &CancellationToken::new(),
            || async {
                let pending =
                    workload_pending(&self.client, super::ARGOCD_NAMESPACE, workload).await?;
                Ok::<_, KindError>(match pending {
                    None => Observation::holds(String::new()),
                    Some(why) => Observation::fails(why),
                })
            },
        )
        .await?;
        match outcome {
            PollOutcome::Held { .. } => Ok(format!(
                "scaled {workload} to 1, ready in {:.1}s",
                started.elapsed().as_secs_f64()
            )),
            PollOutcome::TimedOut { last, .. } => Err(KindError::Other(format!(
                "{workload} was not ready {}s after scaling it to 1: {last}",
                FAULT_TIMEOUT.as_secs()
            ))),
            _ => Err(KindError::Other(format!(
                "waiting for {workload} to be ready ended early"
            ))),
        }
    }

    async fn scale(&self, workload: &str, replicas: i32) -> Result<(), KindError> {
        patch_workload(
            &self.client,
            super::ARGOCD_NAMESPACE,
            workload,
            &serde_json::json!({"spec": {"replicas": replicas}}),
            format!("scale {workload} to {replicas}"),
        )
        .await
    }
}
