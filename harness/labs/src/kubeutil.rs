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
    let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(yaml)
        .map_err(|e| anyhow::anyhow!("{origin}: invalid YAML: {e}"))?;
    Ok(docs.into_iter().filter(|d| !d.is_null()).collect())
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
        let (api, namespace): (Api<DynamicObject>, &str) = match caps.scope {
            Scope::Cluster => (Api::all_with(client.clone(), &ar), ""),
            Scope::Namespaced => {
                let ns = doc["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or(default_namespace);
                (Api::namespaced_with(client.clone(), ns, &ar), ns)
            }
        };
        let patch = Patch::Apply(doc);
        let request = api.patch(name, &params, &patch);
        harness_core::log::apiserver("apply", kind, namespace, name, request)
            .await
            .map_err(|e| anyhow::anyhow!("applying {kind} {name}: {e}"))?;
    }
    Ok(())
}

/// Waits (the harness's one polling loop) until every named CRD reports
/// Established; an API error is retried until the deadline and reported
/// if it is the last thing seen.
pub async fn wait_crds_established(
    client: &Client,
    names: &[String],
    timeout: Duration,
) -> anyhow::Result<()> {
    use harness_core::poll::{self, Backoff, Observation, PollOutcome};
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let deadline = tokio::time::Instant::now() + timeout;
    let backoff = Backoff {
        initial: Duration::from_millis(25),
        factor: 2.0,
        max: Duration::from_millis(200),
    };
    let never = tokio_util::sync::CancellationToken::new();
    for name in names {
        let outcome = poll::eventually(deadline, backoff, &never, || {
            let api = api.clone();
            async move {
                let request = api.get_opt(name);
                let read = harness_core::log::apiserver(
                    "get",
                    "CustomResourceDefinition",
                    "",
                    name,
                    request,
                );
                match read.await {
                    Ok(crd) => {
                        let established = crd
                            .and_then(|crd| crd.status)
                            .and_then(|s| s.conditions)
                            .is_some_and(|c| {
                                c.iter()
                                    .any(|c| c.type_ == "Established" && c.status == "True")
                            });
                        if established {
                            Observation::holds(String::new())
                        } else {
                            Observation::fails("not Established yet".to_string())
                        }
                    }
                    Err(e) => Observation::fails(format!("reading it failed: {e}")),
                }
            }
        })
        .await;
        match outcome {
            PollOutcome::Held { .. } => {}
            PollOutcome::TimedOut { last, .. } => {
                anyhow::bail!("CRD {name} not Established after {timeout:?}: {last}")
            }
            other => anyhow::bail!("waiting for CRD {name}: {other:?}"),
        }
    }
    Ok(())
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
