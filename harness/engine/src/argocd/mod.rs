//! Argo CD Applications through the Kubernetes API (there is no argocd-server
//! in the local lab, so the harness does what argocd-server would: it writes
//! Application objects and their `operation` field).

mod application;

use std::time::Duration;

use harness_core::poll::{self, Backoff, Observation, PollOutcome};
use kube::Client;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use serde_json::{Value, json};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub use application::*;

/// Delays between reads while waiting for an operation to finish or an
/// Application to go: 50 ms growing by half up to 500 ms.
const WAIT_BACKOFF: Backoff = Backoff {
    initial: Duration::from_millis(50),
    factor: 1.5,
    max: Duration::from_millis(500),
};

/// The field manager of every server-side apply the harness makes.
pub const FIELD_MANAGER: &str = "oci-e2e";

#[derive(Debug, thiserror::Error)]
pub enum ArgoError {
    #[error(
        "Application {name} does not exist in namespace {namespace}: an `app` step must create it first"
    )]
    NotFound { name: String, namespace: String },
    #[error("{action} Application {name}: {source}")]
    Api {
        action: &'static str,
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("listing the Applications labelled {selector}: {source}")]
    List {
        selector: String,
        #[source]
        source: kube::Error,
    },
    #[error(
        "Application {name} was still present {waited:?} after deletion (finalizers: {finalizers}); is the Argo CD application controller running? Its log is in the diagnostics"
    )]
    DeleteTimeout {
        name: String,
        waited: Duration,
        finalizers: String,
    },
    #[error(
        "cannot sync Application {name}: another operation is still in progress after {waited:?}; wait for it (expect operation: Succeeded) before syncing"
    )]
    OperationInProgress { name: String, waited: Duration },
}

/// The API resource of Applications.
pub fn application_resource() -> ApiResource {
    ApiResource {
        group: GROUP.into(),
        version: VERSION.into(),
        api_version: format!("{GROUP}/{VERSION}"),
        kind: KIND.into(),
        plural: PLURAL.into(),
    }
}

/// Applications in Argo CD's namespace.
#[derive(Clone)]
pub struct ArgoCd {
    api: Api<DynamicObject>,
    namespace: String,
}

impl ArgoCd {
    pub fn new(client: Client, namespace: &str) -> Self {
        ArgoCd {
            api: Api::namespaced_with(client, namespace, &application_resource()),
            namespace: namespace.to_string(),
        }
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// Create or update the Application (server-side apply, forced).
    pub async fn apply_app(&self, spec: &AppSpec) -> Result<(), ArgoError> {
        self.apply_manifest(&spec.name, &application_manifest(spec, &self.namespace))
            .await
    }

    /// Create or update Application `name` from a whole manifest (from
    /// [`application_manifest`], then changed), server-side apply, forced.
    pub async fn apply_manifest(&self, name: &str, manifest: &Value) -> Result<(), ArgoError> {
        self.logged(
            "apply",
            name,
            self.api.patch(
                name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(manifest),
            ),
        )
        .await
        .map_err(|source| ArgoError::Api {
            action: "applying",
            name: name.to_string(),
            source,
        })?;
        Ok(())
    }

    /// The whole Application, if it exists.
    pub async fn get(&self, name: &str) -> Result<Option<DynamicObject>, ArgoError> {
        self.logged("get", name, self.api.get_opt(name))
            .await
            .map_err(|source| ArgoError::Api {
                action: "reading",
                name: name.into(),
                source,
            })
    }

    /// The Application as JSON, if it exists.
    pub async fn get_json(&self, name: &str) -> Result<Option<Value>, ArgoError> {
        Ok(self
            .get(name)
            .await?
            .map(|object| serde_json::to_value(object).unwrap_or(Value::Null)))
    }

    /// The status fields expectations use.
    pub async fn status(&self, name: &str) -> Result<Option<AppStatus>, ArgoError> {
        Ok(self
            .get_json(name)
            .await?
            .map(|object| AppStatus::from_object(&object)))
    }

    /// Start a sync to `spec.source.targetRevision`, as argocd-server does.
    /// Waits (up to `wait`) for an operation already in progress to finish.
    pub async fn sync(&self, name: &str, wait: Duration) -> Result<(), ArgoError> {
        let outcome = poll::eventually_try(
            Instant::now() + wait,
            WAIT_BACKOFF,
            &CancellationToken::new(),
            || async {
                let object = self
                    .get_json(name)
                    .await?
                    .ok_or_else(|| self.not_found(name))?;
                let pending = AppStatus::from_object(&object).operation_pending;
                Ok::<_, ArgoError>(Observation {
                    holds: !pending,
                    detail: object,
                })
            },
        )
        .await?;
        let PollOutcome::Held { last: object, .. } = outcome else {
            return Err(ArgoError::OperationInProgress {
                name: name.into(),
                waited: wait,
            });
        };
        let revision = AppStatus::from_object(&object)
            .target_revision
            .unwrap_or_default();
        let sync_options: Vec<String> = object["spec"]["syncPolicy"]["syncOptions"]
            .as_array()
            .map(|opts| {
                opts.iter()
                    .filter_map(|o| o.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        self.logged(
            "patch",
            name,
            self.api.patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(&sync_operation_patch(&revision, &sync_options)),
            ),
        )
        .await
        .map_err(|source| ArgoError::Api {
            action: "starting a sync of",
            name: name.into(),
            source,
        })?;
        Ok(())
    }

    /// Ask the controller to refresh (`hard` also regenerates manifests).
    pub async fn refresh(&self, name: &str, hard: bool) -> Result<(), ArgoError> {
        if self.get(name).await?.is_none() {
            return Err(self.not_found(name));
        }
        self.logged(
            "patch",
            name,
            self.api.patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(&refresh_patch(hard)),
            ),
        )
        .await
        .map_err(|source| ArgoError::Api {
            action: "refreshing",
            name: name.into(),
            source,
        })?;
        Ok(())
    }

    /// Delete the Application and wait (up to `wait`) until it is gone; the
    /// resources finalizer makes the controller delete what it deployed first.
    /// Deleting an Application that does not exist is fine.
    pub async fn delete(&self, name: &str, wait: Duration) -> Result<(), ArgoError> {
        match self
            .logged(
                "delete",
                name,
                self.api.delete(name, &DeleteParams::background()),
            )
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 404 => return Ok(()),
            Err(source) => {
                return Err(ArgoError::Api {
                    action: "deleting",
                    name: name.into(),
                    source,
                });
            }
        }
        let outcome = poll::eventually_try(
            Instant::now() + wait,
            WAIT_BACKOFF,
            &CancellationToken::new(),
            || async {
                Ok::<_, ArgoError>(match self.get(name).await? {
                    None => Observation::holds(None),
                    Some(object) => Observation::fails(object.metadata.finalizers),
                })
            },
        )
        .await?;
        match outcome {
            PollOutcome::Held { .. } => Ok(()),
            other => {
                let finalizers = match other {
                    PollOutcome::TimedOut { last, .. } => last.unwrap_or_default(),
                    _ => Vec::new(),
                };
                let finalizers = if finalizers.is_empty() {
                    "none".to_string()
                } else {
                    finalizers.join(", ")
                };
                Err(ArgoError::DeleteTimeout {
                    name: name.into(),
                    waited: wait,
                    finalizers,
                })
            }
        }
    }

    /// Drop the Application's finalizers so a stuck deletion completes
    /// (cleanup's last resort: what it deployed stays behind).
    pub async fn remove_finalizers(&self, name: &str) -> Result<(), ArgoError> {
        let patch = json!({ "metadata": { "finalizers": null } });
        match self
            .logged(
                "patch",
                name,
                self.api
                    .patch(name, &PatchParams::default(), &Patch::Merge(&patch)),
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
            Err(source) => Err(ArgoError::Api {
                action: "removing finalizers of",
                name: name.into(),
                source,
            }),
        }
    }

    /// Applications carrying the harness's labels for one scenario run.
    pub async fn list_for_scenario(
        &self,
        run_label: &str,
        scenario: &str,
    ) -> Result<Vec<DynamicObject>, ArgoError> {
        let selector = format!("{RUN_ID_LABEL}={run_label},{SCENARIO_LABEL}={scenario}");
        self.logged(
            "list",
            "",
            self.api.list(&ListParams::default().labels(&selector)),
        )
        .await
        .map(|list| list.items)
        .map_err(|source| ArgoError::List { selector, source })
    }

    /// Every change of Application `name` from now on, judged by `judge`
    /// (`None`: it does not exist) and sent the moment the apiserver tells
    /// of it: a list for the current version (itself judged and sent),
    /// then a watch from that version, resumed from the last version seen
    /// when the apiserver ends it and from a new list when that version is
    /// too old (410 Gone), so no change between two connections is missed.
    /// The watch stops when the returned [`Watch`] is dropped; its errors
    /// are logged and retried, and the poller it feeds probes meanwhile.
    pub fn watch<D, J>(&self, name: &str, judge: J) -> Watch<D>
    where
        D: Send + 'static,
        J: Fn(Option<&Value>) -> Observation<D> + Send + Sync + 'static,
    {
        let (tx, updates) = tokio::sync::mpsc::unbounded_channel();
        let task = tokio::spawn(watch_loop(self.api.clone(), name.to_string(), tx, judge));
        Watch {
            updates,
            watching: WatchTask(task),
        }
    }

    /// One request about Application `name` (empty for a list), logged.
    async fn logged<T>(
        &self,
        verb: &str,
        name: &str,
        request: impl std::future::Future<Output = Result<T, kube::Error>>,
    ) -> Result<T, kube::Error> {
        harness_core::log::apiserver(verb, KIND, &self.namespace, name, request).await
    }

    fn not_found(&self, name: &str) -> ArgoError {
        ArgoError::NotFound {
            name: name.into(),
            namespace: self.namespace.clone(),
        }
    }
}

/// Delay before a watch that failed connects again.
const WATCH_RETRY: Duration = Duration::from_millis(200);

/// The changes of one Application, judged, as long as `watching` lives.
pub struct Watch<D> {
    pub updates: tokio::sync::mpsc::UnboundedReceiver<Observation<D>>,
    pub watching: WatchTask,
}

/// The task that watches; dropping this stops it.
pub struct WatchTask(tokio::task::JoinHandle<()>);

impl Drop for WatchTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn watch_loop<D, J>(
    api: Api<DynamicObject>,
    name: String,
    tx: tokio::sync::mpsc::UnboundedSender<Observation<D>>,
    judge: J,
) where
    D: Send,
    J: Fn(Option<&Value>) -> Observation<D> + Sync,
{
    use futures::StreamExt as _;
    use kube::api::{WatchEvent, WatchParams};
    let fields = format!("metadata.name={name}");
    let send = |object: Option<&DynamicObject>| {
        let value = object.map(|o| serde_json::to_value(o).unwrap_or(Value::Null));
        tx.send(judge(value.as_ref())).is_ok()
    };
    let mut version: Option<String> = None;
    loop {
        let from = match version.take() {
            Some(version) => version,
            None => match api.list(&ListParams::default().fields(&fields)).await {
                Ok(list) => {
                    if !send(list.items.first()) {
                        return;
                    }
                    list.metadata.resource_version.unwrap_or_default()
                }
                Err(error) => {
                    tracing::debug!(app = name, %error, "watch: list failed; retrying");
                    tokio::time::sleep(WATCH_RETRY).await;
                    continue;
                }
            },
        };
        let params = WatchParams::default().fields(&fields).timeout(290);
        let stream = match api.watch(&params, &from).await {
            Ok(stream) => stream,
            Err(error) => {
                tracing::debug!(app = name, %error, "watch: cannot start; retrying");
                tokio::time::sleep(WATCH_RETRY).await;
                version = Some(from);
                continue;
            }
        };
        let mut stream = std::pin::pin!(stream);
        let mut resume = Some(from);
        while let Some(event) = stream.next().await {
            let sent = match event {
                Ok(WatchEvent::Added(object) | WatchEvent::Modified(object)) => {
                    resume = object.metadata.resource_version.clone();
                    send(Some(&object))
                }
                Ok(WatchEvent::Deleted(object)) => {
                    resume = object.metadata.resource_version.clone();
                    send(None)
                }
                Ok(WatchEvent::Bookmark(bookmark)) => {
                    resume = Some(bookmark.metadata.resource_version);
                    true
                }
                Ok(WatchEvent::Error(status)) => {
                    tracing::debug!(
                        app = name,
                        code = status.code,
                        message = status.message,
                        "watch: ended by the apiserver"
                    );
                    if status.code == 410 {
                        resume = None;
                    }
                    break;
                }
                Err(error) => {
                    tracing::debug!(app = name, %error, "watch: stream failed; resuming");
                    tokio::time::sleep(WATCH_RETRY).await;
                    break;
                }
            };
            if !sent {
                return;
            }
        }
        version = resume;
    }
}
