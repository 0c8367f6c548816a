//! Diagnostics of a failed scenario, collected before cleanup:
//!
//! - `applications.yaml`: its Application objects (managedFields dropped);
//! - `events.txt`: events in its namespaces, and those in Argo CD's namespace
//!   about its Applications;
//! - `logs/<component>.log`: the tail of each Argo CD component's log;
//! - `registry.txt`: what the registry holds for its repositories (tag -> digest);
//! - `problems.txt`: what could not be collected, if anything.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::core::v1::Event;
use kube::api::{Api, ListParams};
use serde_json::Value;

use crate::argocd::ArgoCd;
use crate::isolation::{Isolation, label_value};
use crate::lab::Lab;
use crate::report::{ReportError, write_file};
use harness_oci::RegistryClient;

/// Lines of each component log to keep.
pub const LOG_LINES: usize = 200;
/// Bound on each part of the collection, so a sick lab cannot hang a run.
const PART_TIMEOUT: Duration = Duration::from_secs(30);

/// What belongs to one scenario run (names already mapped).
#[derive(Debug, Clone)]
pub struct DiagnosticsTarget {
    pub scenario: String,
    pub isolation: Isolation,
    pub apps: BTreeSet<String>,
    pub namespaces: BTreeSet<String>,
    pub repositories: BTreeSet<String>,
}

/// Write the diagnostics of `target` into `dir`. Parts that cannot be
/// collected are listed in `problems.txt`; only failing to write is an error.
pub async fn collect_diagnostics(
    lab: &dyn Lab,
    argocd: &ArgoCd,
    registry: &RegistryClient,
    target: &DiagnosticsTarget,
    dir: &Path,
) -> Result<(), ReportError> {
    let mut problems = Vec::new();

    let apps = bounded("Applications", applications(argocd, target), &mut problems).await;
    let app_names: BTreeSet<String> = apps
        .as_ref()
        .map(|list| {
            list.iter()
                .filter_map(|a| {
                    a.pointer("/metadata/name")
                        .and_then(Value::as_str)
                        .map(String::from)
                })
                .collect()
        })
        .unwrap_or_default();
    if let Some(apps) = apps {
        let documents: Vec<String> = apps
            .iter()
            .map(|app| serde_saphyr::to_string(app).unwrap_or_else(|e| format!("# {e}\n")))
            .collect();
        let text = if documents.is_empty() {
            "# no Applications\n".to_string()
        } else {
            documents.join("---\n")
        };
        write_file(&dir.join("applications.yaml"), text)?;
    }

    let all_apps: BTreeSet<String> = target.apps.union(&app_names).cloned().collect();
    if let Some(events) = bounded(
        "events",
        events(lab, argocd.namespace(), &target.namespaces, &all_apps),
        &mut problems,
    )
    .await
    {
        write_file(&dir.join("events.txt"), events)?;
    }

    match tokio::time::timeout(PART_TIMEOUT, lab.component_logs(LOG_LINES)).await {
        Ok(logs) => {
            for log in logs {
                write_file(
                    &dir.join("logs")
                        .join(format!("{}.log", file_name(&log.component))),
                    log.tail,
                )?;
            }
        }
        Err(_) => problems.push(format!("component logs: no answer within {PART_TIMEOUT:?}")),
    }

    if let Some(text) = bounded(
        "registry contents",
        registry_contents(registry, &target.repositories),
        &mut problems,
    )
    .await
    {
        write_file(&dir.join("registry.txt"), text)?;
    }

    if !problems.is_empty() {
        write_file(&dir.join("problems.txt"), problems.join("\n") + "\n")?;
    }
    Ok(())
}

async fn bounded<T>(
    what: &str,
    work: impl std::future::Future<Output = Result<T, String>>,
    problems: &mut Vec<String>,
) -> Option<T> {
    match tokio::time::timeout(PART_TIMEOUT, work).await {
        Ok(Ok(value)) => Some(value),
        Ok(Err(problem)) => {
            problems.push(format!("{what}: {problem}"));
            None
        }
        Err(_) => {
            problems.push(format!("{what}: no answer within {PART_TIMEOUT:?}"));
            None
        }
    }
}

/// The scenario's Applications: those it recorded and those carrying its labels.
async fn applications(argocd: &ArgoCd, target: &DiagnosticsTarget) -> Result<Vec<Value>, String> {
    let mut names = target.apps.clone();
    let labelled = argocd
        .list_for_scenario(target.isolation.run_label(), &label_value(&target.scenario))
        .await
        .map_err(|e| e.to_string())?;
    names.extend(labelled.into_iter().filter_map(|o| o.metadata.name));
    let mut apps = Vec::new();
    for name in names {
        if let Some(mut app) = argocd.get_json(&name).await.map_err(|e| e.to_string())? {
            if let Some(metadata) = app.get_mut("metadata").and_then(Value::as_object_mut) {
                metadata.remove("managedFields");
            }
            apps.push(app);
        }
    }
    Ok(apps)
}

/// Events as a table sorted by time: `TIME TYPE REASON OBJECT: MESSAGE`.
async fn events(
    lab: &dyn Lab,
    argocd_namespace: &str,
    namespaces: &BTreeSet<String>,
    apps: &BTreeSet<String>,
) -> Result<String, String> {
    let client = lab.kube();
    // (time, resourceVersion, line): events of one second keep the order they were written in.
    let mut rows: Vec<(String, u64, String)> = Vec::new();
    let mut scopes: Vec<(&str, bool)> = namespaces.iter().map(|ns| (ns.as_str(), false)).collect();
    scopes.push((argocd_namespace, true));
    for (namespace, only_apps) in scopes {
        let api: Api<Event> = Api::namespaced(client.clone(), namespace);
        let list = api
            .list(&ListParams::default())
            .await
            .map_err(|e| format!("listing events in {namespace}: {e}"))?;
        for event in list.items {
            let object = &event.involved_object;
            let name = object.name.clone().unwrap_or_default();
            if only_apps && !apps.contains(&name) {
                continue;
            }
            let json = serde_json::to_value(&event).unwrap_or(Value::Null);
            let time = [
                "/lastTimestamp",
                "/eventTime",
                "/firstTimestamp",
                "/metadata/creationTimestamp",
            ]
            .iter()
            .find_map(|p| json.pointer(p).and_then(Value::as_str))
            .unwrap_or("-")
            .to_string();
            let line = format!(
                "{time} {namespace} {} {} {}/{name}{}: {}",
                event.type_.as_deref().unwrap_or("-"),
                event.reason.as_deref().unwrap_or("-"),
                object.kind.as_deref().unwrap_or("-"),
                event
                    .count
                    .filter(|c| *c > 1)
                    .map(|c| format!(" (x{c})"))
                    .unwrap_or_default(),
                event.message.as_deref().unwrap_or("").trim(),
            );
            let version = event
                .metadata
                .resource_version
                .as_deref()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            rows.push((time, version, line));
        }
    }
    rows.sort();
    if rows.is_empty() {
        return Ok(format!(
            "# no events in {} (or about the scenario's Applications)\n",
            namespaces.iter().cloned().collect::<Vec<_>>().join(", ")
        ));
    }
    Ok(rows
        .into_iter()
        .map(|(_, _, line)| line)
        .collect::<Vec<_>>()
        .join("\n")
        + "\n")
}

/// `repository:` then `  tag -> digest` lines.
async fn registry_contents(
    registry: &RegistryClient,
    repositories: &BTreeSet<String>,
) -> Result<String, String> {
    let mut text = format!("registry {}\n", registry.endpoint().address);
    if repositories.is_empty() {
        text.push_str("# the scenario pushed nothing\n");
    }
    for repository in repositories {
        text.push_str(&format!("{repository}:\n"));
        match registry.list_tags(repository).await {
            Ok(tags) if tags.is_empty() => text.push_str("  (no tags)\n"),
            Ok(tags) => {
                for tag in tags {
                    match registry.resolve(repository, &tag).await {
                        Ok(digest) => text.push_str(&format!("  {tag} -> {digest}\n")),
                        Err(error) => text.push_str(&format!("  {tag} -> error: {error}\n")),
                    }
                }
            }
            Err(error) => text.push_str(&format!("  error listing tags: {error}\n")),
        }
    }
    Ok(text)
}

/// A component name safe as a file name.
fn file_name(component: &str) -> String {
    let name: String = component
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if name.is_empty() {
        "component".into()
    } else {
        name
    }
}
