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
        let resource_keys: Vec<&str> = [
            ("matches", body.matches.is_some()),
            ("absent", body.absent.is_some()),
        ]
        .into_iter()
        .filter_map(|(key, present)| present.then_some(key))
        .collect();
        let target = match (&body.app, &body.resource) {
            (Some(app), None) => {
                if !resource_keys.is_empty() {
                    self.error(
                        expect.location(),
                        format!(
                            "{} to a `resource`, not an `app`: check the objects in a separate expect with `resource:`",
                            keys_apply(&resource_keys)
                        ),
                    );
                }
                if app_keys.is_empty() {
                    self.error(
                        expect.location(),
                        format!(
                            "this expect on app `{}` checks nothing: add sync, health, revision, operation or condition",
                            app.value()
                        ),
                    );
                }
                ExpectTarget::App(AppExpectation {
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
            (Some(_), Some(resource)) => {
                self.error(
                    expect.location(),
                    "this expect has both `app` and `resource`: an expect checks one thing, split it into two",
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
        Expect { target, timing }
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
            (Some(matches), false) => {
                if !matches.value().is_object() {
                    self.error(
                        matches.location(),
                        "`matches` must be a map of fields to compare, like `{data: {version: \"1.0.0\"}}`",
                    );
                }
                self.json_templates(matches, matches.value(), scope, definitions);
                ResourceCheck::Matches(matches.value().clone())
            }
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
