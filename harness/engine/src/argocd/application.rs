//! The Application objects the harness writes, and the status it reads
//! back. Pure functions: no cluster needed.

use std::collections::BTreeMap;

use serde_json::{Value, json};

pub const GROUP: &str = "argoproj.io";
pub const VERSION: &str = "v1alpha1";
pub const KIND: &str = "Application";
pub const PLURAL: &str = "applications";
/// Makes deleting an Application delete what it deployed.
pub const RESOURCES_FINALIZER: &str = "resources-finalizer.argocd.argoproj.io";
pub const REFRESH_ANNOTATION: &str = "argocd.argoproj.io/refresh";
pub const RUN_ID_LABEL: &str = "oci-e2e.dev/run-id";
pub const SCENARIO_LABEL: &str = "oci-e2e.dev/scenario";
/// The in-cluster destination (with `ARGOCD_FAKE_IN_CLUSTER` it is the lab's kubeconfig).
pub const IN_CLUSTER: &str = "https://kubernetes.default.svc";
/// `initiatedBy.username` of sync operations the harness starts.
pub const INITIATED_BY: &str = "oci-e2e";

/// What an `app` step asks for, with every name already mapped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppSpec {
    pub name: String,
    /// `oci://host:port/repository`.
    pub repo_url: String,
    pub target_revision: String,
    pub path: String,
    pub destination_namespace: String,
    /// Automated sync with prune and self-heal.
    pub auto_sync: bool,
    pub labels: BTreeMap<String, String>,
}

/// The Application to server-side apply in `namespace`.
pub fn application_manifest(spec: &AppSpec, namespace: &str) -> Value {
    let mut sync_policy = json!({ "syncOptions": ["CreateNamespace=true"] });
    if spec.auto_sync {
        sync_policy["automated"] = json!({ "prune": true, "selfHeal": true });
    }
    json!({
        "apiVersion": format!("{GROUP}/{VERSION}"),
        "kind": KIND,
        "metadata": {
            "name": spec.name,
            "namespace": namespace,
            "labels": spec.labels,
            "finalizers": [RESOURCES_FINALIZER],
        },
        "spec": {
            "project": "default",
            "source": {
                "repoURL": spec.repo_url,
                "targetRevision": spec.target_revision,
                "path": spec.path,
            },
            "destination": {
                "server": IN_CLUSTER,
                "namespace": spec.destination_namespace,
            },
            "syncPolicy": sync_policy,
        },
    })
}

/// `manifest` with the options of an `app` step beyond [`AppSpec`]: its
/// project, more sync options (after `CreateNamespace=true`, which an
/// option `CreateNamespace=...` replaces), then `extra` merged into the
/// spec as a JSON merge patch (RFC 7386). With a non-empty `spec.sources`
/// the single `source` is dropped: Argo CD ignores it then.
pub fn customize_manifest(
    manifest: &mut Value,
    project: Option<&str>,
    sync_options: &[String],
    extra: Option<&Value>,
) {
    if let Some(project) = project {
        manifest["spec"]["project"] = json!(project);
    }
    if !sync_options.is_empty() {
        let option_name = |o: &str| o.split_once('=').map_or(o, |(n, _)| n).to_string();
        let given: Vec<String> = sync_options.iter().map(|o| option_name(o)).collect();
        let mut options: Vec<Value> = manifest["spec"]["syncPolicy"]["syncOptions"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|o| !given.contains(&option_name(o.as_str().unwrap_or_default())))
            .collect();
        options.extend(sync_options.iter().map(|o| json!(o)));
        manifest["spec"]["syncPolicy"]["syncOptions"] = Value::Array(options);
    }
    if let Some(extra) = extra {
        json_patch::merge(&mut manifest["spec"], extra);
    }
    if manifest["spec"]["sources"]
        .as_array()
        .is_some_and(|s| !s.is_empty())
        && let Some(spec) = manifest["spec"].as_object_mut()
    {
        spec.remove("source");
    }
}

/// The merge patch that starts a sync, as argocd-server writes it:
/// argocd-server copies `spec.syncPolicy.syncOptions` into the operation,
/// and the controller reads them only from there (without them
/// `CreateNamespace=true` is ignored and the sync fails on a missing
/// namespace).
pub fn sync_operation_patch(revision: &str, sync_options: &[String]) -> Value {
    json!({
        "operation": {
            "initiatedBy": { "username": INITIATED_BY },
            "sync": { "prune": true, "revision": revision, "syncOptions": sync_options },
        }
    })
}

/// The merge patch that asks the controller for a refresh.
pub fn refresh_patch(hard: bool) -> Value {
    json!({ "metadata": { "annotations": { REFRESH_ANNOTATION: if hard { "hard" } else { "normal" } } } })
}

/// One entry of `status.conditions`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AppCondition {
    #[serde(rename = "type")]
    pub kind: String,
    pub message: String,
}

/// The parts of an Application's status that expectations look at.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AppStatus {
    /// `status.sync.status`: Synced | OutOfSync | Unknown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sync: Option<String>,
    /// `status.health.status`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health: Option<String>,
    /// `status.sync.revision`: the resolved manifest digest for OCI sources.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// `status.operationState.phase`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation_phase: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation_message: Option<String>,
    /// `spec.source.targetRevision`, for context in reports.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_revision: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<AppCondition>,
    /// An operation (e.g. a sync) is requested or running (`.operation` set).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub operation_pending: bool,
}

impl AppStatus {
    /// Reads the status from a whole Application object (as JSON).
    pub fn from_object(object: &Value) -> Self {
        let text = |pointer: &str| {
            object
                .pointer(pointer)
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        let conditions = object
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .map(|list| {
                list.iter()
                    .map(|condition| AppCondition {
                        kind: condition["type"].as_str().unwrap_or_default().to_string(),
                        message: condition["message"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        AppStatus {
            sync: text("/status/sync/status"),
            health: text("/status/health/status"),
            revision: text("/status/sync/revision"),
            operation_phase: text("/status/operationState/phase"),
            operation_message: text("/status/operationState/message"),
            target_revision: text("/spec/source/targetRevision"),
            conditions,
            operation_pending: object.get("operation").is_some_and(|op| !op.is_null()),
        }
    }

    /// One line for progress and failure messages:
    /// `sync=Synced health=Healthy revision=sha256:... operation=Succeeded`.
    pub fn summary(&self) -> String {
        let mut parts = vec![
            format!("sync={}", self.sync.as_deref().unwrap_or("<none>")),
            format!("health={}", self.health.as_deref().unwrap_or("<none>")),
            format!("revision={}", self.revision.as_deref().unwrap_or("<none>")),
        ];
        match (&self.operation_phase, &self.operation_message) {
            (Some(phase), Some(message)) if !message.is_empty() => {
                parts.push(format!("operation={phase} ({message})"))
            }
            (Some(phase), _) => parts.push(format!("operation={phase}")),
            _ => parts.push("operation=<none>".into()),
        }
        for condition in &self.conditions {
            parts.push(format!(
                "condition {}: {}",
                condition.kind, condition.message
            ));
        }
        parts.join(" ")
    }
}
