//! `expect`: wait for an Application or object condition, or check that it
//! holds for a while.

use async_trait::async_trait;

use super::{StepAction, StepContext, StepError, StepOutcome};
use crate::expect::{
    self, AppWanted, ExpectResult, Observation, PollPlan, ReconcilePlan, ResourceCheckWanted,
    ResourceProbe, ResourceWanted, Seen,
};
use harness_scenario::render_json;
use harness_scenario::{Expect, ExpectTarget, ResourceCheck, Timing};

#[async_trait]
impl StepAction for Expect {
    fn describe(&self) -> String {
        let timing = match &self.timing {
            Timing::Within(d) => format!("within {}", humantime::format_duration(*d)),
            Timing::For(d) => format!("for {}", humantime::format_duration(*d)),
            Timing::Reconciles(r) => format!("through {} reconciliation(s) of {}", r.count, r.app),
        };
        match &self.target {
            ExpectTarget::App(app) => {
                let mut parts = vec![app.app.clone()];
                parts.extend(app.sync.map(|s| s.to_string()));
                parts.extend(app.health.map(|h| h.to_string()));
                parts.extend(app.revision.as_ref().map(|r| format!("revision={r}")));
                parts.extend(app.operation.map(|o| format!("operation={o}")));
                parts.extend(app.matches.as_ref().map(|_| "matches".to_string()));
                parts.extend(
                    app.condition
                        .as_ref()
                        .map(|c| format!("condition={}", c.r#type)),
                );
                parts.push(timing);
                parts.join(" ")
            }
            ExpectTarget::Resource(resource) => {
                let r = &resource.resource;
                let at = r
                    .namespace
                    .as_ref()
                    .map(|ns| format!("{ns}/"))
                    .unwrap_or_default();
                let check = match resource.check {
                    ResourceCheck::Exists => "exists",
                    ResourceCheck::Matches(_) => "matches",
                    ResourceCheck::Absent => "absent",
                };
                format!("{} {at}{} {check} {timing}", r.kind, r.name)
            }
            ExpectTarget::Referrers(r) => {
                let of_type = r
                    .artifact_type
                    .as_deref()
                    .map(|t| format!(" {t}"))
                    .unwrap_or_default();
                format!(
                    "{} referrer(s){of_type} of {}@{} {timing}",
                    r.count, r.repository, r.subject
                )
            }
        }
    }

    async fn run(&self, ctx: &mut StepContext) -> Result<StepOutcome, StepError> {
        let plan = PollPlan {
            timing: self.timing.clone(),
            scenario_deadline: ctx.deadline,
            backoff: ctx.backoff,
            cancel: ctx.cancel.clone(),
        };
        let result = match &self.target {
            ExpectTarget::App(app) => {
                let wanted = AppWanted {
                    app: ctx.isolation.app(&app.app),
                    sync: app.sync,
                    health: app.health,
                    revision: app.revision.as_ref().map(|r| ctx.render(r)).transpose()?,
                    operation: app.operation,
                    condition: match &app.condition {
                        Some(c) => Some((
                            c.r#type.clone(),
                            c.message.as_ref().map(|m| ctx.render(m)).transpose()?,
                        )),
                        None => None,
                    },
                    matches: app
                        .matches
                        .as_ref()
                        .map(|m| render_json(m, &ctx.vars))
                        .transpose()?,
                };
                let argocd = ctx.argocd.clone();
                let subject = format!("Application {}", wanted.app);
                match &plan.timing {
                    // A window: probes, and every change a watch sees.
                    Timing::Within(_) | Timing::For(_) => {
                        expect::run_app_poll(&subject, &plan, &argocd, &wanted).await
                    }
                    Timing::Reconciles(_) => {
                        wait(ctx, &subject, &plan, || expect::probe_app(&argocd, &wanted)).await
                    }
                }
            }
            ExpectTarget::Resource(resource) => {
                let r = &resource.resource;
                let check = match &resource.check {
                    ResourceCheck::Exists => ResourceCheckWanted::Exists,
                    ResourceCheck::Absent => ResourceCheckWanted::Absent,
                    ResourceCheck::Matches(value) => {
                        ResourceCheckWanted::Matches(render_json(value, &ctx.vars)?)
                    }
                };
                let wanted = ResourceWanted {
                    api_version: r.api_version.clone(),
                    kind: r.kind.clone(),
                    namespace: r
                        .namespace
                        .as_ref()
                        .map(|ns| ctx.isolation.resource_namespace(ns)),
                    name: r.name.clone(),
                    check,
                };
                let subject = wanted.display_name();
                let probe = ResourceProbe::new(ctx.kube.clone(), wanted);
                wait(ctx, &subject, &plan, || probe.probe()).await
            }
            ExpectTarget::Referrers(r) => {
                let repository = ctx.isolation.repository(&r.repository);
                let subject_digest = ctx.render(&r.subject)?;
                let registry = ctx.registry.clone();
                let subject = format!("referrers of {repository}@{subject_digest}");
                wait(ctx, &subject, &plan, || {
                    super::attach::probe_referrers(
                        &registry,
                        &repository,
                        &subject_digest,
                        r.artifact_type.as_deref(),
                        r.count,
                    )
                })
                .await
            }
        };
        if result.passed {
            Ok(StepOutcome {
                summary: result.message,
                digests: vec![],
                observed: Some(result.observed),
            })
        } else if result.cancelled {
            Err(StepError::Cancelled {
                detail: Some(result.message),
                observed: Some(result.observed),
            })
        } else {
            Err(StepError::Failed {
                message: result.message,
                observed: Some(result.observed),
            })
        }
    }
}

/// Wait as the expect's timing says: a window (`within`, `for`), or
/// through the next reconciliations of an app (`reconciles`).
async fn wait<F, Fut>(ctx: &StepContext, subject: &str, plan: &PollPlan, probe: F) -> ExpectResult
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Observation<Seen>>,
{
    match &plan.timing {
        Timing::Reconciles(reconciles) => {
            let reconcile = ReconcilePlan {
                argocd: &ctx.argocd,
                app: ctx.isolation.app(&reconciles.app),
                count: reconciles.count,
                budget: ctx.reconcile_budget,
            };
            expect::run_reconciles(subject, plan, &reconcile, probe).await
        }
        _ => expect::run_poll(subject, plan, probe).await,
    }
}
