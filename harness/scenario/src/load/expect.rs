//! `expect`: targets, matchers, resource checks, timing windows, referrers.

use super::*;

impl Loader<'_> {
    pub(super) fn expect(
        &mut self,
        expect: &Located<ExpectFile>,
        scope: &Scope,
        definitions: &Definitions,
        timeout: Duration,
    ) -> Expect {
        let body = expect.value();
        let timing = self.timing(body, timeout);
        if let Some(referrers) = &body.referrers {
            let target = self.referrers_expectation(expect, referrers, scope, definitions);
            if let (Timing::Reconciles(_), Some(reconciles)) = (&timing, &body.reconciles) {
                self.error(
                    reconciles.location(),
                    "`reconciles` counts an Application's reconciliations; the referrers are the registry's: use `within` or `for`",
                );
            }
            return Expect { target, timing };
        }
        let app_keys: Vec<&str> = [
            ("sync", body.sync.is_some()),
            ("health", body.health.is_some()),
            ("revision", body.revision.is_some()),
            ("operation", body.operation.is_some()),
            ("condition", body.condition.is_some()),
        ]
        .into_iter()
        .filter_map(|(key, present)| present.then_some(key))
        .collect();
        let target = match (&body.app, &body.resource) {
            (Some(app), None) => {
                if let Some(absent) = &body.absent {
                    self.error(
                        absent.location(),
                        "`absent` applies to a `resource`, not an `app`: check the objects in a separate expect with `resource:`",
                    );
                }
                if app_keys.is_empty() && body.matches.is_none() {
                    self.error(
                        expect.location(),
                        format!(
                            "this expect on app `{}` checks nothing: add sync, health, revision, operation, condition or matches",
                            app.value()
                        ),
                    );
                }
                let matches = body.matches.as_ref().map(|matches| {
                    self.matches_value(
                        matches,
                        scope,
                        definitions,
                        "{status: {sourceType: Directory}}",
                    )
                });
                ExpectTarget::App(AppExpectation {
                    matches,
                    app: self.known_app(app, scope, definitions),
                    sync: body.sync.as_ref().map(|s| *s.value()),
                    health: body.health.as_ref().map(|h| *h.value()),
                    revision: body.revision.as_ref().map(|revision| {
                        let template = self.template(revision, scope, definitions);
                        if let Some(literal) = template.as_literal()
                            && !names::is_digest(&literal)
                        {
                            // status.sync.revision of an OCI source is always the resolved digest.
                            self.error(
                                revision.location(),
                                format!(
                                    "`revision: {literal}` can never match: an OCI app's status.sync.revision is the resolved digest, write `${{NAME.digest}}` (NAME from a push step's `as:`)"
                                ),
                            );
                        }
                        template
                    }),
                    operation: body.operation.as_ref().map(|o| *o.value()),
                    condition: body.condition.as_ref().map(|condition| {
                        let condition = condition.value();
                        if condition.kind.value().trim().is_empty() {
                            self.error(
                                condition.kind.location(),
                                "condition `type` is empty: give one like `ComparisonError`",
                            );
                        }
                        ConditionExpectation {
                            r#type: condition.kind.value().clone(),
                            message: condition
                                .message
                                .as_ref()
                                .map(|m| self.template(m, scope, definitions)),
                        }
                    }),
                })
            }
            (None, Some(resource)) => {
                if !app_keys.is_empty() {
                    self.error(
                        expect.location(),
                        format!(
                            "{} to an `app`, not a `resource`: check the Application in a separate expect with `app:`",
                            keys_apply(&app_keys)
                        ),
                    );
                }
                ExpectTarget::Resource(self.resource_expectation(
                    body,
                    resource,
                    scope,
                    definitions,
                ))
            }
            (Some(app), Some(resource)) if body.reconciles.is_some() => {
                // `app` beside `resource` names whose reconciliations count.
                if !app_keys.is_empty() {
                    self.error(
                        expect.location(),
                        format!(
                            "{} to an `app`, and this expect checks a `resource` (its `app` only names whose reconciliations count): check the Application in a separate expect",
                            keys_apply(&app_keys)
                        ),
                    );
                }
                self.known_app(app, scope, definitions);
                ExpectTarget::Resource(self.resource_expectation(
                    body,
                    resource,
                    scope,
                    definitions,
                ))
            }
            (Some(_), Some(resource)) => {
                self.error(
                    expect.location(),
                    "this expect has both `app` and `resource`: an expect checks one thing, split it into two (with `reconciles`, `app` beside `resource` names the Application whose reconciliations count)",
                );
                ExpectTarget::Resource(self.resource_expectation(
                    body,
                    resource,
                    scope,
                    definitions,
                ))
            }
            (None, None) => {
                self.error(
                    expect.location(),
                    "expect needs `app:` (an Application's status), `resource:` (a Kubernetes object) or `referrers:` (what is attached to a manifest)",
                );
                ExpectTarget::Resource(ResourceExpectation {
                    resource: ResourceRef {
                        api_version: String::new(),
                        kind: String::new(),
                        namespace: None,
                        name: String::new(),
                    },
                    check: ResourceCheck::Exists,
                })
            }
        };
        let timing = match timing {
            Timing::Reconciles(Reconciles { count, .. }) => {
                let app = self.reconciling_app(expect, &target, scope);
                Timing::Reconciles(Reconciles { count, app })
            }
            other => other,
        };
        Expect { target, timing }
    }

    /// The Application whose reconciliations `reconciles:` counts: the
    /// expect's own app, the app named beside a resource, or the one app
    /// deploying to the resource's namespace.
    fn reconciling_app(
        &mut self,
        expect: &Located<ExpectFile>,
        target: &ExpectTarget,
        scope: &Scope,
    ) -> String {
        let body = expect.value();
        if let Some(app) = &body.app {
            return app.value().clone();
        }
        let ExpectTarget::Resource(resource) = target else {
            return String::new();
        };
        let at = body
            .reconciles
            .as_ref()
            .map(|r| r.location())
            .unwrap_or_else(|| expect.location());
        let Some(namespace) = &resource.resource.namespace else {
            self.error(
                at,
                "`reconciles` on a cluster-scoped resource: name the Application whose reconciliations count with `app:` beside `resource:`",
            );
            return String::new();
        };
        let deploying: Vec<&String> = scope
            .app_namespaces
            .iter()
            .filter(|(_, ns)| *ns == namespace)
            .map(|(app, _)| app)
            .collect();
        match deploying.as_slice() {
            [app] => (*app).clone(),
            [] => {
                self.error(
                    at,
                    format!(
                        "`reconciles`: no earlier app deploys to namespace `{namespace}`; name the Application whose reconciliations count with `app:` beside `resource:`"
                    ),
                );
                String::new()
            }
            several => {
                let names: Vec<String> = several.iter().map(|a| format!("`{a}`")).collect();
                self.error(
                    at,
                    format!(
                        "`reconciles`: apps {} all deploy to namespace `{namespace}`; say which one's reconciliations count with `app:` beside `resource:`",
                        names.join(", ")
                    ),
                );
                String::new()
            }
        }
    }

    /// A `matches` map (object or Application), its templates checked.
    fn matches_value(
        &mut self,
        matches: &Located<serde_json::Value>,
        scope: &Scope,
        definitions: &Definitions,
        example: &str,
    ) -> serde_json::Value {
        if !matches.value().is_object() {
            self.error(
                matches.location(),
                format!("`matches` must be a map of fields to compare, like `{example}`"),
            );
        }
        self.json_templates(matches, matches.value(), scope, definitions);
        matches.value().clone()
    }

    pub(super) fn resource_expectation(
        &mut self,
        body: &ExpectFile,
        resource: &Located<crate::file::ResourceRefFile>,
        scope: &Scope,
        definitions: &Definitions,
    ) -> ResourceExpectation {
        let reference = resource.value();
        for (key, value) in [
            ("apiVersion", &reference.api_version),
            ("kind", &reference.kind),
            ("name", &reference.name),
        ] {
            if value.value().trim().is_empty() {
                self.error(value.location(), format!("resource `{key}` is empty"));
            }
        }
        if let Some(namespace) = &reference.namespace {
            let name = namespace.value();
            if let Some(problem) = names::dns_label_problem(name, "namespace") {
                self.error(namespace.location(), problem);
            } else if !definitions.namespaces.contains(name)
                && let Some(close) = definitions
                    .namespaces
                    .iter()
                    .find(|known| names::edit_distance(known, name) <= 2)
            {
                // Only app namespaces are made unique per run; a near miss
                // would be looked up as written and, e.g., always be absent.
                self.error(
                    namespace.location(),
                    format!(
                        "namespace `{name}` is no app's destination namespace: did you mean `{close}`? (namespaces other than the apps' are used as written)"
                    ),
                );
            }
        }
        let absent = body.absent.as_ref().is_some_and(|a| *a.value());
        let check = match (&body.matches, absent) {
            (Some(_), true) => {
                if let Some(absent) = &body.absent {
                    self.error(
                        absent.location(),
                        "`absent: true` with `matches`: an absent object has nothing to match, drop one of them",
                    );
                }
                ResourceCheck::Absent
            }
            (None, true) => ResourceCheck::Absent,
            (Some(matches), false) => ResourceCheck::Matches(self.matches_value(
                matches,
                scope,
                definitions,
                "{data: {version: \"1.0.0\"}}",
            )),
            (None, false) => ResourceCheck::Exists,
        };
        ResourceExpectation {
            resource: ResourceRef {
                api_version: reference.api_version.value().clone(),
                kind: reference.kind.value().clone(),
                namespace: reference.namespace.as_ref().map(|n| n.value().clone()),
                name: reference.name.value().clone(),
            },
            check,
        }
    }

    pub(super) fn timing(&mut self, body: &ExpectFile, timeout: Duration) -> Timing {
        if let (Some(_), Some(hold_for)) = (&body.within, &body.hold_for) {
            self.error(
                hold_for.location(),
                "`within` and `for` together: `within` waits until the condition holds, `for` checks it holds all along; keep one",
            );
        }
        if let Some(reconciles) = &body.reconciles {
            for (key, present) in [
                ("within", body.within.is_some()),
                ("for", body.hold_for.is_some()),
            ] {
                if present {
                    self.error(
                        reconciles.location(),
                        format!(
                            "`reconciles` and `{key}` together: `reconciles` holds through the next reconciliations of the app, each with its own 1m budget; keep one"
                        ),
                    );
                }
            }
            let count = *reconciles.value();
            if count == 0 {
                self.error(
                    reconciles.location(),
                    "`reconciles: 0` waits for no reconciliation: give 1 or more (2 shows Argo CD looked again twice)",
                );
            } else if count > MAX_RECONCILES {
                self.error(
                    reconciles.location(),
                    format!("`reconciles: {count}` is more than {MAX_RECONCILES}: each one is a refresh Argo CD must answer; 1 to 3 make the point"),
                );
            }
            return Timing::Reconciles(Reconciles {
                count,
                app: String::new(),
            });
        }
        let (key, text, timing): (&str, _, fn(Duration) -> Timing) =
            match (&body.within, &body.hold_for) {
                (_, Some(hold_for)) if body.within.is_none() => ("for", hold_for, Timing::For),
                (Some(within), _) => ("within", within, Timing::Within),
                _ => return Timing::Within(DEFAULT_WITHIN),
            };
        let Some(duration) = self.duration(text) else {
            return timing(DEFAULT_WITHIN);
        };
        if duration > timeout {
            self.error(
                text.location(),
                format!(
                    "`{key}: {}` is longer than the scenario's timeout ({}): shorten it or raise `timeout:`",
                    text.value().0,
                    humantime::format_duration(timeout)
                ),
            );
        }
        timing(duration)
    }

    pub(super) fn referrers_expectation(
        &mut self,
        expect: &Located<ExpectFile>,
        referrers: &Located<ReferrersFile>,
        scope: &Scope,
        definitions: &Definitions,
    ) -> ExpectTarget {
        let body = expect.value();
        let others: Vec<&str> = [
            ("app", body.app.is_some()),
            ("resource", body.resource.is_some()),
            ("sync", body.sync.is_some()),
            ("health", body.health.is_some()),
            ("revision", body.revision.is_some()),
            ("operation", body.operation.is_some()),
            ("condition", body.condition.is_some()),
            ("matches", body.matches.is_some()),
            ("absent", body.absent.is_some()),
        ]
        .into_iter()
        .filter_map(|(key, present)| present.then_some(key))
        .collect();
        if !others.is_empty() {
            self.error(
                expect.location(),
                format!(
                    "this expect checks `referrers` and also has {}: an expect checks one thing, split it",
                    others.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ")
                ),
            );
        }
        let wanted = referrers.value();
        ExpectTarget::Referrers(ReferrersExpectation {
            repository: self.pushed_repository(&wanted.repository, scope, "referrers"),
            subject: self.digest_template(&wanted.subject, scope, definitions, "`subject`"),
            artifact_type: wanted
                .artifact_type
                .as_ref()
                .map(|t| self.media_type(t, "artifactType")),
            count: *wanted.count.value(),
        })
    }
}
