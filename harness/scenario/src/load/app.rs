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
        scope.apps.insert(name.clone());
        App {
            name,
            repository,
            revision,
            path,
            namespace,
            sync,
            helm,
            require_signature,
        }
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
