//! `app`, `refresh` and the Application names the other steps refer to.

use super::*;

impl Loader<'_> {
    pub(super) fn app(
        &mut self,
        app: &Located<AppFile>,
        scope: &mut Scope,
        definitions: &Definitions,
    ) -> App {
        let body = app.value();
        let name = body.name.value().clone();
        if let Some(problem) = names::dns_label_problem(&name, "app name") {
            self.error(body.name.location(), problem);
        }
        let repository = self.repository(&body.repository);
        let revision = self.template(&body.revision, scope, definitions);
        let revision_text = body.revision.value();
        if revision_text.trim().is_empty() {
            self.error(body.revision.location(), "`revision` is empty: give a tag, a digest like `${v1.digest}`, or a semver constraint like `^1.0.0`");
        } else if names::is_bare_hex_digest(revision_text) {
            self.error(
                body.revision.location(),
                format!("revision looks like a digest without its algorithm: write `sha256:{revision_text}`"),
            );
        } else if revision_text.starts_with("sha256:") && !names::is_digest(revision_text) {
            self.error(
                body.revision.location(),
                "a digest is `sha256:` and 64 lowercase hex digits; `${NAME.digest}` gives the digest of a push step with `as: NAME`",
            );
        }
        let path = match &body.path {
            Some(path) => {
                let text = path.value();
                let relative = !text.is_empty()
                    && Path::new(text)
                        .components()
                        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
                if !relative {
                    self.error(
                        path.location(),
                        format!("path `{text}` must be a directory inside the artifact, like `.` or `manifests`"),
                    );
                }
                text.clone()
            }
            None => ".".to_string(),
        };
        let namespace = match &body.namespace {
            Some(namespace) => {
                if let Some(problem) = names::dns_label_problem(namespace.value(), "namespace") {
                    self.error(namespace.location(), problem);
                }
                namespace.value().clone()
            }
            None => name.clone(),
        };
        let sync = match body.sync {
            Some(SyncPolicyFile::Manual) => SyncPolicy::Manual,
            Some(SyncPolicyFile::Auto) | None => SyncPolicy::Auto,
        };
        let helm = body
            .helm
            .as_ref()
            .map(|helm| self.helm(helm, scope, definitions));
        let require_signature = body
            .require_signature
            .as_ref()
            .map(|key| self.required_signature(key, &revision));
        let project = body.project.as_ref().map(|project| {
            let text = project.value();
            if let Some(problem) = names::dns_label_problem(text, "project name") {
                self.error(project.location(), problem);
            }
            ProjectRef {
                name: text.clone(),
                applied: scope.projects.contains(text),
            }
        });
        let sync_options = body
            .sync_options
            .as_ref()
            .map(|options| {
                options
                    .value()
                    .iter()
                    .map(|option| {
                        if let Some(problem) = sync_option_problem(option.value()) {
                            self.error(option.location(), problem);
                        }
                        option.value().clone()
                    })
                    .collect()
            })
            .unwrap_or_default();
        let spec = body
            .spec
            .as_ref()
            .map(|spec| self.app_spec(spec, body, scope, definitions));
        scope.apps.insert(name.clone());
        scope.app_namespaces.insert(name.clone(), namespace.clone());
        App {
            name,
            repository,
            revision,
            path,
            namespace,
            sync,
            helm,
            require_signature,
            project,
            sync_options,
            spec,
        }
    }

    /// `app.spec`: a map merged into the Application's spec; the keys the
    /// harness owns (isolation, the source it points at) are refused.
    fn app_spec(
        &mut self,
        spec: &Located<serde_json::Value>,
        body: &AppFile,
        scope: &Scope,
        definitions: &Definitions,
    ) -> serde_json::Value {
        let Some(fields) = spec.value().as_object() else {
            self.error(
                spec.location(),
                "`spec` must be a map merged into the Application's spec, like `{source: {directory: {recurse: true}}}`",
            );
            return spec.value().clone();
        };
        let owned: [(&[&str], &str); 6] = [
            (
                &["destination"],
                "the destination is the app's `namespace:` (mapped for the run) on the lab's cluster",
            ),
            (&["project"], "use the app's `project:` key"),
            (
                &["source", "repoURL"],
                "use `repository:` (the lab registry's repository, mapped for the run)",
            ),
            (&["source", "targetRevision"], "use `revision:`"),
            (&["source", "path"], "use `path:`"),
            (
                &["syncPolicy", "syncOptions"],
                "use the app's `syncOptions:` key",
            ),
        ];
        for (path, instead) in owned {
            let mut value = Some(spec.value());
            for key in path {
                value = value.and_then(|v| v.get(*key));
            }
            if value.is_some() {
                let last = path[path.len() - 1];
                let message = format!(
                    "`spec.{}` is the harness's to set: {instead}",
                    path.join(".")
                );
                match self.find_after(spec.location(), last) {
                    Some(offset) => self.error_at_offset(offset, last.chars().count(), message),
                    None => self.error(spec.location(), message),
                }
            }
        }
        if body.sync == Some(SyncPolicyFile::Manual)
            && fields
                .get("syncPolicy")
                .and_then(|p| p.get("automated"))
                .is_some_and(|a| !a.is_null())
        {
            self.error(
                spec.location(),
                "`spec.syncPolicy.automated` with `sync: manual`: a manual app has no automated sync; drop one of them",
            );
        }
        if let Some(sources) = fields.get("sources")
            && sources.as_array().is_none_or(|list| list.is_empty())
        {
            self.error(
                spec.location(),
                "`spec.sources` must be a non-empty list of sources, each with its `repoURL` (e.g. `oci://${lab.argoRegistry}/${repo:NAME}`)",
            );
        }
        self.json_templates(spec, spec.value(), scope, definitions);
        spec.value().clone()
    }

    pub(super) fn refresh(
        &mut self,
        refresh: &RefreshFile,
        scope: &Scope,
        definitions: &Definitions,
    ) -> Refresh {
        Refresh {
            app: self.known_app(&refresh.app, scope, definitions),
            hard: refresh.hard,
        }
    }

    pub(super) fn app_ref(
        &mut self,
        reference: &AppRefFile,
        scope: &Scope,
        definitions: &Definitions,
    ) -> String {
        self.known_app(&reference.app, scope, definitions)
    }

    /// An app name used by sync/refresh/expect/delete: an earlier `app` step
    /// must create it (this is what catches typos).
    pub(super) fn known_app(
        &mut self,
        app: &Located<String>,
        scope: &Scope,
        definitions: &Definitions,
    ) -> String {
        let name = app.value();
        if !scope.apps.contains(name) {
            let hint = if let Some(line) = definitions.apps.get(name) {
                format!("it is created by the app step at line {line}, after this step")
            } else if let Some(close) = scope
                .apps
                .iter()
                .find(|known| names::edit_distance(known, name) <= 2)
            {
                format!("did you mean `{close}`?")
            } else if scope.apps.is_empty() {
                "add an `app` step before this one".to_string()
            } else {
                let known: Vec<String> = scope.apps.iter().map(|a| format!("`{a}`")).collect();
                format!("apps so far: {}", known.join(", "))
            };
            self.error(
                app.location(),
                format!("no earlier `app` step creates app `{name}`: {hint}"),
            );
        }
        name.clone()
    }
}

/// Sync options Argo CD v3 knows, with the values each takes.
const SYNC_OPTIONS: &[(&str, &[&str])] = &[
    ("ApplyOutOfSyncOnly", &["true", "false"]),
    ("ClientSideApplyMigration", &["true", "false"]),
    ("CreateNamespace", &["true", "false"]),
    ("Delete", &["false", "confirm"]),
    ("FailOnSharedResource", &["true", "false"]),
    ("Force", &["true"]),
    ("Prune", &["false", "confirm"]),
    ("PruneLast", &["true"]),
    (
        "PrunePropagationPolicy",
        &["foreground", "background", "orphan"],
    ),
    ("Replace", &["true", "false"]),
    ("RespectIgnoreDifferences", &["true", "false"]),
    ("ServerSideApply", &["true", "false"]),
    ("SkipDryRunOnMissingResource", &["true"]),
    ("Validate", &["true", "false"]),
];

/// Why `option` is not a sync option Argo CD acts on (it ignores unknown
/// ones silently, so a typo would test nothing).
fn sync_option_problem(option: &str) -> Option<String> {
    let Some((name, value)) = option.split_once('=') else {
        return Some(format!(
            "sync option `{option}` has no value: write `Name=value`, like `ServerSideApply=true`"
        ));
    };
    let Some((_, values)) = SYNC_OPTIONS.iter().find(|(known, _)| *known == name) else {
        let hint = SYNC_OPTIONS
            .iter()
            .find(|(known, _)| {
                names::edit_distance(&known.to_lowercase(), &name.to_lowercase()) <= 2
            })
            .map(|(known, _)| format!("did you mean `{known}`?"))
            .unwrap_or_else(|| {
                let all: Vec<&str> = SYNC_OPTIONS.iter().map(|(k, _)| *k).collect();
                format!("known: {}", all.join(", "))
            });
        return Some(format!(
            "`{name}` is not a sync option Argo CD knows (it would ignore it): {hint}"
        ));
    };
    (!values.contains(&value)).then(|| {
        format!(
            "sync option `{name}` takes {}, not `{value}`",
            values
                .iter()
                .map(|v| format!("`{v}`"))
                .collect::<Vec<_>>()
                .join(" or ")
        )
    })
}
