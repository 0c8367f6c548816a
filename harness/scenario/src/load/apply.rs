//! `apply:` steps: which objects, and where each may go. Everything a run
//! applies must be isolated like the rest of it, so an object either goes
//! to Argo CD's namespace under a run-unique name (AppProjects, and Secrets
//! written for `argocd`), or into a destination namespace of the
//! scenario's apps (mapped with them). Anything else is refused here.

use serde_json::Value;

use super::*;
use crate::file::ApplyFile;

/// Kinds Kubernetes and Argo CD serve cluster-wide: an apply of one would
/// reach beyond the run.
const CLUSTER_SCOPED: &[&str] = &[
    "APIService",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "MutatingWebhookConfiguration",
    "Namespace",
    "Node",
    "PersistentVolume",
    "PriorityClass",
    "RuntimeClass",
    "StorageClass",
    "ValidatingAdmissionPolicy",
    "ValidatingWebhookConfiguration",
    "VolumeAttachment",
];

/// The namespace a file writes for Argo CD's own objects (the lab's may be
/// another; the runner puts them where Argo CD runs).
const ARGOCD_NAMESPACE: &str = "argocd";

impl Loader<'_> {
    pub(super) fn apply(
        &mut self,
        apply: &Located<ApplyFile>,
        scope: &mut Scope,
        definitions: &Definitions,
    ) -> Apply {
        let body = apply.value();
        let empty = Apply {
            manifest: Template(String::new()),
            objects: vec![],
            file: None,
        };
        let (text, inline, file) = match (&body.manifest, &body.file) {
            (Some(manifest), None) => (manifest.value().clone(), Some(manifest), None),
            (None, Some(file)) => {
                let base = self.file.parent().unwrap_or(Path::new(""));
                let path = base.join(file.value());
                match std::fs::read_to_string(&path) {
                    Ok(text) => (text, None, Some((file, path))),
                    Err(error) => {
                        self.error(
                            file.location(),
                            format!(
                                "cannot read {}: {error} (`file` is relative to the scenario file's directory)",
                                path.display()
                            ),
                        );
                        return empty;
                    }
                }
            }
            (Some(_), Some(_)) => {
                self.error(
                    apply.location(),
                    "`apply` has both `manifest` and `file`: give one",
                );
                return empty;
            }
            (None, None) => {
                self.error(
                    apply.location(),
                    "`apply` needs `manifest:` (YAML documents written inline) or `file:` (a YAML file beside the scenario)",
                );
                return empty;
            }
        };
        // Where a problem is reported: at the text that causes it when the
        // documents are inline, else at `file:` naming the file.
        let at = inline
            .or(file.as_ref().map(|(f, _)| *f))
            .expect("one of them");
        let context = match &file {
            Some((_, path)) => format!("{}: ", path.display()),
            None => String::new(),
        };
        let manifest = match inline {
            Some(manifest) => self.template(manifest, scope, definitions),
            None => {
                for (_, _, message) in self.template_problems(&text, scope, definitions) {
                    self.error(at.location(), format!("{context}{message}"));
                }
                Template(text.clone())
            }
        };
        let documents: Vec<Value> = match crate::yaml::documents(&text) {
            Ok(documents) => documents,
            Err(error) => {
                self.error(
                    at.location(),
                    format!("{context}the objects to apply are not YAML: {error}"),
                );
                return empty;
            }
        };
        if documents.is_empty() {
            self.error(
                at.location(),
                format!("{context}no objects to apply: write one or more YAML documents"),
            );
        }
        let mut objects = Vec::new();
        for (index, document) in documents.iter().enumerate() {
            let which = format!("{context}document {} of {}", index + 1, documents.len());
            match self.apply_object(document, definitions) {
                Ok(object) => {
                    if object.placement == Placement::ArgoCd && object.kind == "AppProject" {
                        scope.projects.insert(object.name.clone());
                    }
                    objects.push(object);
                }
                Err((needle, problem)) => {
                    let offset = inline.and_then(|m| {
                        needle
                            .as_deref()
                            .and_then(|n| self.find_in_value(m.location(), n, 0))
                    });
                    let message = format!("{which}: {problem}");
                    match (offset, needle) {
                        (Some(offset), Some(needle)) => {
                            self.error_at_offset(offset, needle.chars().count(), message)
                        }
                        _ => self.error(at.location(), message),
                    }
                }
            }
        }
        Apply {
            manifest,
            objects,
            file: file.map(|(_, path)| path),
        }
    }

    /// What one document is and where it goes, or (text to point at, why not).
    fn apply_object(
        &self,
        document: &Value,
        definitions: &Definitions,
    ) -> Result<ApplyObject, (Option<String>, String)> {
        let Some(fields) = document.as_object() else {
            return Err((
                None,
                "an object to apply is a map with apiVersion, kind and metadata".into(),
            ));
        };
        let text = |key: &str| fields.get(key).and_then(Value::as_str).map(str::to_string);
        let api_version =
            text("apiVersion").ok_or((None, "`apiVersion` is missing".to_string()))?;
        let kind = text("kind").ok_or((None, "`kind` is missing".to_string()))?;
        let metadata = fields.get("metadata");
        let name = metadata
            .and_then(|m| m.get("name"))
            .and_then(Value::as_str)
            .ok_or((Some(kind.clone()), format!("{kind} has no `metadata.name`")))?
            .to_string();
        let namespace = metadata
            .and_then(|m| m.get("namespace"))
            .and_then(Value::as_str)
            .map(str::to_string);
        for (what, value) in [("name", Some(&name)), ("namespace", namespace.as_ref())] {
            if value.is_some_and(|v| v.contains("${")) {
                return Err((
                    value.cloned(),
                    format!(
                        "`metadata.{what}` cannot hold `${{...}}`: the runner maps names itself"
                    ),
                ));
            }
        }
        if let Some(problem) =
            names::dns_label_problem(&name, "the object's name").filter(|_| !name.contains('.'))
        {
            return Err((Some(name), problem));
        }
        let group = api_version.split_once('/').map_or("", |(group, _)| group);
        if kind == "Application" && group == "argoproj.io" {
            return Err((
                Some(kind),
                "Applications come from `app` steps, which map their names, sources and destinations".into(),
            ));
        }
        if CLUSTER_SCOPED.contains(&kind.as_str()) {
            return Err((
                Some(kind.clone()),
                format!(
                    "{kind} is cluster-scoped: a run may only apply objects it can keep to itself (AppProjects, Secrets for Argo CD, objects in its apps' namespaces)"
                ),
            ));
        }
        let placement = match (kind.as_str(), group, namespace.as_deref()) {
            ("AppProject", "argoproj.io", None | Some(ARGOCD_NAMESPACE)) => Placement::ArgoCd,
            ("AppProject", "argoproj.io", Some(other)) => {
                return Err((
                    Some(other.to_string()),
                    format!(
                        "AppProjects live in Argo CD's namespace: leave `metadata.namespace` out (or write `{ARGOCD_NAMESPACE}`), not `{other}`"
                    ),
                ));
            }
            ("Secret", "", Some(ARGOCD_NAMESPACE)) => Placement::ArgoCd,
            (_, _, Some(namespace)) if definitions.namespaces.contains(namespace) => {
                Placement::Destination(namespace.to_string())
            }
            (_, _, namespace) => {
                let known: Vec<&str> = definitions.namespaces.iter().map(String::as_str).collect();
                let known = if known.is_empty() {
                    "this scenario has no `app` step".to_string()
                } else {
                    format!("its apps deploy to {}", known.join(", "))
                };
                return Err(match namespace {
                    Some(namespace) => (
                        Some(namespace.to_string()),
                        format!(
                            "namespace `{namespace}` is not a destination namespace of this scenario ({known}): an object there would not be isolated or cleaned up"
                        ),
                    ),
                    None => (
                        Some(name.clone()),
                        format!(
                            "{kind} {name} has no `metadata.namespace`: give one of the apps' namespaces ({known}), or `{ARGOCD_NAMESPACE}` for a Secret Argo CD reads"
                        ),
                    ),
                });
            }
        };
        Ok(ApplyObject {
            api_version,
            kind,
            name,
            placement,
        })
    }
}
