//! Small kube-rs helpers shared by the labs: server-side apply of YAML
//! documents of any kind, and waiting for CRDs.

use std::time::Duration;

use kube::Client;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::discovery::{ApiCapabilities, ApiResource, Scope};

pub use harness_engine::argocd::FIELD_MANAGER;

/// Splits a multi-document YAML stream into JSON values, skipping empty
/// documents. `origin` names the source in errors.
pub fn parse_documents(yaml: &str, origin: &str) -> anyhow::Result<Vec<serde_json::Value>> {
    harness_scenario::yaml::documents(yaml)
        .map_err(|e| anyhow::anyhow!("{origin}: invalid YAML: {e}"))
}

/// Resolves apiVersion/kind to an API resource through discovery.
pub async fn resolve(
    client: &Client,
    api_version: &str,
    kind: &str,
) -> anyhow::Result<(ApiResource, ApiCapabilities)> {
    let (group, version) = match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    };
    let gvk = GroupVersionKind::gvk(group, version, kind);
    kube::discovery::pinned_kind(client, &gvk)
        .await
        .map_err(|e| anyhow::anyhow!("the cluster does not serve {api_version} {kind}: {e}"))
}

/// Server-side applies each document (force: the lab owns these objects).
/// Namespaced objects without a namespace go to `default_namespace`.
pub async fn apply_documents(
    client: &Client,
    docs: &[serde_json::Value],
    default_namespace: &str,
) -> anyhow::Result<()> {
    let params = PatchParams::apply(FIELD_MANAGER).force();
    for doc in docs {
        let (api, kind, namespace, name) = api_for(client, doc, default_namespace).await?;
        let patch = Patch::Apply(doc);
        let request = api.patch(name, &params, &patch);
        harness_core::log::apiserver("apply", kind, namespace, name, request)
            .await
            .map_err(|e| anyhow::anyhow!("applying {kind} {name}: {e}"))?;
    }
    Ok(())
}

/// Creates each document, all at once (a fresh cluster's objects: a
/// create is a fraction of the apiserver's work of a server-side apply
/// for large objects such as Argo CD's CRDs); one that already exists is
/// server-side applied instead, so the result is the same as
/// [`apply_documents`]. Namespaced objects without a namespace go to
/// `default_namespace`.
pub async fn create_documents(
    client: &Client,
    docs: &[serde_json::Value],
    default_namespace: &str,
) -> anyhow::Result<()> {
    let creates = docs.iter().map(|doc| async move {
        let (api, kind, namespace, name) = api_for(client, doc, default_namespace).await?;
        let object: DynamicObject = serde_json::from_value(doc.clone())
            .map_err(|e| anyhow::anyhow!("{kind} {name} is not a Kubernetes object: {e}"))?;
        let params = kube::api::PostParams::default();
        let request = api.create(&params, &object);
        match harness_core::log::apiserver("create", kind, namespace, name, request).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.code == 409 => {
                apply_documents(client, std::slice::from_ref(doc), default_namespace).await
            }
            Err(e) => Err(anyhow::anyhow!("creating {kind} {name}: {e}")),
        }
    });
    futures::future::try_join_all(creates).await?;
    Ok(())
}

/// The API of a document's kind, with its kind, namespace and name.
async fn api_for<'a>(
    client: &Client,
    doc: &'a serde_json::Value,
    default_namespace: &'a str,
) -> anyhow::Result<(Api<DynamicObject>, &'a str, &'a str, &'a str)> {
    let api_version = doc["apiVersion"].as_str().unwrap_or_default();
    let kind = doc["kind"].as_str().unwrap_or_default();
    let name = doc["metadata"]["name"].as_str().unwrap_or_default();
    if api_version.is_empty() || kind.is_empty() || name.is_empty() {
        anyhow::bail!(
            "a document lacks apiVersion, kind or metadata.name: {}",
            short(doc)
        );
    }
    let (ar, caps) = resolve(client, api_version, kind).await?;
    Ok(match caps.scope {
        Scope::Cluster => (Api::all_with(client.clone(), &ar), kind, "", name),
        Scope::Namespaced => {
            let ns = doc["metadata"]["namespace"]
                .as_str()
                .unwrap_or(default_namespace);
            (
                Api::namespaced_with(client.clone(), ns, &ar),
                kind,
                ns,
                name,
            )
        }
    })
}

/// Waits (the harness's one polling loop) until the apiserver serves
/// every CRD of `crds` (their documents): each served version of each
/// lists the CRD's plural in discovery, which the apiserver does once the
/// CRD is Established. Discovery is a few hundred bytes; the CRD itself
/// is what a watch or a GET would send on every change, and Argo CD's
/// Application CRD is about a megabyte. On timeout the error shows the
/// conditions of the CRDs not served yet.
pub async fn wait_crds_served(
    client: &Client,
    crds: &[serde_json::Value],
    timeout: Duration,
) -> anyhow::Result<()> {
    use harness_core::poll::{self, Backoff, Observation, PollOutcome};
    let wanted = served_resources(crds)?;
    let deadline = tokio::time::Instant::now() + timeout;
    let backoff = Backoff {
        initial: Duration::from_millis(10),
        factor: 2.0,
        max: Duration::from_millis(50),
    };
    let never = tokio_util::sync::CancellationToken::new();
    let outcome = poll::eventually(deadline, backoff, &never, || {
        let wanted = &wanted;
        async move {
            let mut missing = Vec::new();
            for (group_version, plurals) in wanted {
                match served_plurals(client, group_version).await {
                    Ok(served) => missing.extend(
                        plurals
                            .iter()
                            .filter(|p| !served.contains(*p))
                            .map(|p| format!("{p}.{group_version}")),
                    ),
                    Err(e) => missing.push(format!("{group_version} ({e})")),
                }
            }
            if missing.is_empty() {
                Observation::holds(String::new())
            } else {
                Observation::fails(missing.join(", "))
            }
        }
    })
    .await;
    match outcome {
        PollOutcome::Held { .. } => Ok(()),
        PollOutcome::TimedOut { last, .. } => {
            let conditions = crd_conditions(client, crds).await;
            anyhow::bail!("CRDs not served after {timeout:?}: {last}; {conditions}")
        }
        other => anyhow::bail!("waiting for CRDs: {other:?}"),
    }
}

/// `group/version` -> the plurals of `crds` served there.
fn served_resources(
    crds: &[serde_json::Value],
) -> anyhow::Result<std::collections::BTreeMap<String, Vec<String>>> {
    let mut wanted: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for crd in crds {
        let spec = &crd["spec"];
        let (Some(group), Some(plural)) =
            (spec["group"].as_str(), spec["names"]["plural"].as_str())
        else {
            anyhow::bail!(
                "a CRD lacks spec.group or spec.names.plural: {}",
                short(crd)
            );
        };
        let versions = spec["versions"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        let served: Vec<&str> = versions
            .iter()
            .filter(|v| v["served"].as_bool() == Some(true))
            .filter_map(|v| v["name"].as_str())
            .collect();
        if served.is_empty() {
            anyhow::bail!("CRD {plural}.{group} serves no version: {}", short(crd));
        }
        for version in served {
            wanted
                .entry(format!("{group}/{version}"))
                .or_default()
                .push(plural.to_string());
        }
    }
    Ok(wanted)
}

/// The resources discovery lists for `group/version` (none while the
/// group is not served: 404).
async fn served_plurals(client: &Client, group_version: &str) -> Result<Vec<String>, kube::Error> {
    let path = format!("/apis/{group_version}");
    let request = http::Request::get(&path)
        .body(Vec::new())
        .map_err(kube::Error::HttpError)?;
    match client
        .request::<k8s_openapi::apimachinery::pkg::apis::meta::v1::APIResourceList>(request)
        .await
    {
        Ok(list) => Ok(list.resources.into_iter().map(|r| r.name).collect()),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// Each CRD's conditions, for an error message.
async fn crd_conditions(client: &Client, crds: &[serde_json::Value]) -> String {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let mut out = Vec::new();
    for name in crds.iter().filter_map(|c| c["metadata"]["name"].as_str()) {
        let text = match api.get_opt(name).await {
            Ok(Some(crd)) => crd
                .status
                .and_then(|s| s.conditions)
                .unwrap_or_default()
                .iter()
                .map(|c| {
                    format!(
                        "{}={} ({})",
                        c.type_,
                        c.status,
                        c.message.as_deref().unwrap_or("")
                    )
                })
                .collect::<Vec<_>>()
                .join(", "),
            Ok(None) => "absent".into(),
            Err(e) => format!("cannot read it: {e}"),
        };
        out.push(format!("{name}: {text}"));
    }
    out.join("; ")
}

/// The value as JSON, cut to about 120 bytes for a message (at a character
/// boundary: a manifest may hold any UTF-8).
fn short(v: &serde_json::Value) -> String {
    let s = v.to_string();
    if s.len() <= 120 {
        return s;
    }
    let mut end = 120;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::short;

    #[test]
    fn short_cuts_multi_byte_text_at_a_character_boundary() {
        // 119 ASCII bytes, then a 3-byte character across byte 120.
        let text = format!("{}€€€", "a".repeat(118));
        let cut = short(&serde_json::Value::String(text.clone()));
        assert_eq!(cut, format!("\"{}...", "a".repeat(118)));
        let whole = serde_json::Value::String("ünïcödé".into());
        assert_eq!(short(&whole), "\"ünïcödé\"");
    }
}

#[cfg(test)]
mod crd_tests {
    use super::*;

    #[test]
    fn served_resources_are_every_served_version_of_each_crd() {
        let crd = |group: &str, plural: &str, versions: serde_json::Value| {
            serde_json::json!({
                "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
                "metadata": {"name": format!("{plural}.{group}")},
                "spec": {"group": group, "names": {"plural": plural}, "versions": versions}
            })
        };
        let crds = [
            crd(
                "argoproj.io",
                "applications",
                serde_json::json!([{"name": "v1alpha1", "served": true}]),
            ),
            crd(
                "argoproj.io",
                "appprojects",
                serde_json::json!([{"name": "v1alpha1", "served": true}]),
            ),
            crd(
                "example.com",
                "widgets",
                serde_json::json!([{"name": "v1", "served": true}, {"name": "v1beta1", "served": false}]),
            ),
        ];
        let wanted = served_resources(&crds).unwrap();
        assert_eq!(
            wanted.into_iter().collect::<Vec<_>>(),
            [
                (
                    "argoproj.io/v1alpha1".to_string(),
                    vec!["applications".to_string(), "appprojects".to_string()]
                ),
                ("example.com/v1".to_string(), vec!["widgets".to_string()]),
            ]
        );
        let none = crd(
            "example.com",
            "gadgets",
            serde_json::json!([{"name": "v1", "served": false}]),
        );
        let error = served_resources(&[none]).unwrap_err().to_string();
        assert!(
            error.contains("gadgets.example.com serves no version"),
            "{error}"
        );
        let error = served_resources(&[serde_json::json!({"kind": "CustomResourceDefinition"})])
            .unwrap_err()
            .to_string();
        assert!(error.contains("lacks spec.group"), "{error}");
    }
}
