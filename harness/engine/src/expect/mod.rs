//! The expect engine: polls an Application's status or a Kubernetes object
//! until an expectation holds (`within`) or checks that it keeps holding
//! (`for`), and explains failures with the last observed values.

pub mod matcher;
pub use harness_core::poll;

use std::time::Duration;

use kube::Client;
use kube::api::{Api, DynamicObject};
use kube::discovery::{ApiCapabilities, ApiResource, Scope};
use serde_json::{Value, json};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::argocd::{AppStatus, ArgoCd};
use harness_scenario::{HealthStatus, OperationPhase, SyncStatus, Timing};
pub use matcher::{MatchReport, Mismatch};
pub use poll::{Backoff, Observation, PollOutcome};

/// An Application expectation with variables rendered and the name mapped.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AppWanted {
    pub app: String,
    pub sync: Option<SyncStatus>,
    pub health: Option<HealthStatus>,
    pub revision: Option<String>,
    pub operation: Option<OperationPhase>,
    /// Condition type and an optional message substring.
    pub condition: Option<(String, Option<String>)>,
    /// Subset match of the whole Application object, variables rendered.
    pub matches: Option<Value>,
}

/// What differs between `wanted` and `status`, one line per field; empty
/// when the expectation holds.
pub fn app_mismatches(wanted: &AppWanted, status: &AppStatus) -> Vec<String> {
    fn field(out: &mut Vec<String>, name: &str, want: Option<String>, have: &Option<String>) {
        if let Some(want) = want
            && have.as_deref() != Some(want.as_str())
        {
            let found = have
                .as_deref()
                .map_or("nothing".to_string(), |h| format!("{h:?}"));
            out.push(format!("{name}: expected {want:?}, found {found}"));
        }
    }
    let mut out = Vec::new();
    field(
        &mut out,
        "sync",
        wanted.sync.map(|s| s.to_string()),
        &status.sync,
    );
    field(
        &mut out,
        "health",
        wanted.health.map(|h| h.to_string()),
        &status.health,
    );
    field(
        &mut out,
        "revision",
        wanted.revision.clone(),
        &status.revision,
    );
    field(
        &mut out,
        "operation",
        wanted.operation.map(|o| o.to_string()),
        &status.operation_phase,
    );
    if let Some((kind, message)) = &wanted.condition {
        let same_type: Vec<_> = status
            .conditions
            .iter()
            .filter(|c| &c.kind == kind)
            .collect();
        let found = same_type.iter().any(|c| {
            message
                .as_ref()
                .is_none_or(|m| c.message.contains(m.as_str()))
        });
        if !found {
            let what = match message {
                Some(m) => format!("a condition {kind} with a message containing {m:?}"),
                None => format!("a condition {kind}"),
            };
            let have = if status.conditions.is_empty() {
                "no conditions".to_string()
            } else {
                status
                    .conditions
                    .iter()
                    .map(|c| format!("{}: {:?}", c.kind, c.message))
                    .collect::<Vec<_>>()
                    .join("; ")
            };
            out.push(format!("condition: expected {what}, found {have}"));
        }
    }
    out
}

/// A resource expectation with its namespace mapped and variables rendered.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ResourceWanted {
    pub api_version: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
    pub check: ResourceCheckWanted,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ResourceCheckWanted {
    Exists,
    Matches(Value),
    Absent,
}

impl ResourceWanted {
    /// `ConfigMap demo-x1y2z3a/demo-config`.
    pub fn display_name(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{} {ns}/{}", self.kind, self.name),
            None => format!("{} {}", self.kind, self.name),
        }
    }
}

/// What one probe of an expectation saw.
#[derive(Debug, Clone, PartialEq)]
pub struct Seen {
    /// One line: the observed status or presence.
    pub summary: String,
    /// Why it does not hold (empty when it holds).
    pub problems: Vec<String>,
    /// For `matches`: the diff of expected against observed.
    pub diff: Option<String>,
    /// Machine-readable observation for the JSON summary.
    pub observed: Value,
}

/// Judge an observed object (or its absence) against a resource check.
pub fn judge_resource(wanted: &ResourceWanted, object: Option<&Value>) -> Observation<Seen> {
    let what = wanted.display_name();
    match (&wanted.check, object) {
        (ResourceCheckWanted::Absent, None) => Observation::holds(seen(
            format!("{what} is absent"),
            vec![],
            json!({"present": false}),
        )),
        (ResourceCheckWanted::Absent, Some(_)) => Observation::fails(seen(
            format!("{what} exists"),
            vec![format!("{what} still exists")],
            json!({"present": true}),
        )),
        (_, None) => Observation::fails(seen(
            format!("{what} does not exist"),
            vec![format!("{what} does not exist")],
            json!({"present": false}),
        )),
        (ResourceCheckWanted::Exists, Some(_)) => Observation::holds(seen(
            format!("{what} exists"),
            vec![],
            json!({"present": true}),
        )),
        (ResourceCheckWanted::Matches(expected), Some(object)) => {
            let pruned = matcher::prune(expected, object).unwrap_or(Value::Null);
            match matcher::check(expected, object) {
                None => Observation::holds(seen(
                    format!("{what} matches"),
                    vec![],
                    json!({"present": true, "matched": pruned}),
                )),
                Some(report) => Observation::fails(Seen {
                    summary: format!("{what} does not match"),
                    problems: report.mismatches.iter().map(ToString::to_string).collect(),
                    diff: Some(report.diff),
                    observed: json!({"present": true, "matched": pruned}),
                }),
            }
        }
    }
}

/// An observation that could not be made (API error): retried, reported if it lasts.
fn unreadable(problem: String) -> Seen {
    seen(
        format!("could not read it: {problem}"),
        vec![],
        json!({"error": problem}),
    )
}

fn seen(summary: String, problems: Vec<String>, observed: Value) -> Seen {
    Seen {
        summary,
        problems,
        diff: None,
        observed,
    }
}

/// Judge an Application's status (or its absence).
pub fn judge_app(wanted: &AppWanted, status: Option<&AppStatus>) -> Observation<Seen> {
    let Some(status) = status else {
        return Observation::fails(seen(
            format!("Application {} does not exist", wanted.app),
            vec![format!("Application {} does not exist", wanted.app)],
            json!({"present": false}),
        ));
    };
    let problems = app_mismatches(wanted, status);
    let observed = serde_json::to_value(status).unwrap_or(Value::Null);
    Observation {
        holds: problems.is_empty(),
        detail: seen(status.summary(), problems, observed),
    }
}

/// Judge a whole Application object (or its absence): its status fields,
/// then `matches` against the object, with the matcher's diff.
pub fn judge_app_object(wanted: &AppWanted, object: Option<&Value>) -> Observation<Seen> {
    let Some(object) = object else {
        return judge_app(wanted, None);
    };
    let status = AppStatus::from_object(object);
    let mut judged = judge_app(wanted, Some(&status));
    if let Some(expected) = &wanted.matches {
        let pruned = matcher::prune(expected, object).unwrap_or(Value::Null);
        judged.detail.observed["matched"] = pruned;
        if let Some(report) = matcher::check(expected, object) {
            judged.holds = false;
            judged
                .detail
                .problems
                .extend(report.mismatches.iter().map(ToString::to_string));
            judged.detail.diff = Some(report.diff);
        }
    }
    judged
}

/// Where and how long to poll.
#[derive(Clone)]
pub struct PollPlan {
    pub timing: Timing,
    /// The scenario's deadline: no window runs past it.
    pub scenario_deadline: Instant,
    pub backoff: Backoff,
    pub cancel: CancellationToken,
}

/// How an expectation ended.
#[derive(Debug, Clone, PartialEq)]
pub struct ExpectResult {
    pub passed: bool,
    pub cancelled: bool,
    /// A one-line summary on success, the full explanation on failure.
    pub message: String,
    pub observed: Value,
    pub probes: u32,
}

/// An Application expectation under `plan` (`within` or `for`): probed
/// at the backoff's pace and, between probes, judged on every change a
/// watch on the Application sees, the moment Argo CD writes it. So the
/// time the harness adds over Argo CD's own is the watch's latency, not
/// half a backoff delay, and a `for` window also fails on a change undone
/// before the next probe.
pub async fn run_app_poll(
    subject: &str,
    plan: &PollPlan,
    argocd: &ArgoCd,
    wanted: &AppWanted,
) -> ExpectResult {
    let judged = wanted.clone();
    let crate::argocd::Watch {
        updates,
        watching: _watching,
    } = argocd.watch(&wanted.app, move |object| judge_app_object(&judged, object));
    run_poll_with(subject, plan, Some(updates), || probe_app(argocd, wanted)).await
}

/// Run `probe` under `plan` and explain the result.
pub async fn run_poll<F, Fut>(subject: &str, plan: &PollPlan, probe: F) -> ExpectResult
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Observation<Seen>>,
{
    run_poll_with(subject, plan, None, probe).await
}

/// [`run_poll`], also judging what `updates` brings between probes.
async fn run_poll_with<F, Fut>(
    subject: &str,
    plan: &PollPlan,
    updates: Option<tokio::sync::mpsc::UnboundedReceiver<Observation<Seen>>>,
    probe: F,
) -> ExpectResult
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Observation<Seen>>,
{
    let now = Instant::now();
    let (window, consistently) = match plan.timing {
        Timing::Within(d) => (d, false),
        Timing::For(d) => (d, true),
        // The step runs `run_reconciles` for these; as a plain wait they
        // would mean "holds now".
        Timing::Reconciles(_) => (Duration::ZERO, true),
    };
    let wanted_end = now + window;
    let end = wanted_end.min(plan.scenario_deadline);
    let cut_short = end < wanted_end;
    let outcome = match (consistently, updates) {
        (true, Some(updates)) => {
            poll::consistently_watched(end, plan.backoff, &plan.cancel, updates, probe).await
        }
        (false, Some(updates)) => {
            poll::eventually_watched(end, plan.backoff, &plan.cancel, updates, probe).await
        }
        (true, None) => poll::consistently(end, plan.backoff, &plan.cancel, probe).await,
        (false, None) => poll::eventually(end, plan.backoff, &plan.cancel, probe).await,
    };
    explain(subject, window, cut_short, outcome)
}

fn explain(
    subject: &str,
    window: Duration,
    cut_short: bool,
    outcome: PollOutcome<Seen>,
) -> ExpectResult {
    let window_text = humantime::format_duration(window).to_string();
    let cut = if cut_short {
        " (cut short by the scenario timeout)"
    } else {
        ""
    };
    let detail = seen_detail;
    let probes = outcome.probes();
    let counted = if probes == 1 {
        "1 probe".to_string()
    } else {
        format!("{probes} probes")
    };
    match outcome {
        PollOutcome::Held {
            last,
            probes,
            elapsed,
        } => ExpectResult {
            passed: true,
            cancelled: false,
            message: format!(
                "{} ({counted}, {:.1}s)",
                last.summary,
                elapsed.as_secs_f64()
            ),
            observed: last.observed,
            probes,
        },
        PollOutcome::TimedOut { last, elapsed, .. } => ExpectResult {
            passed: false,
            cancelled: false,
            message: format!(
                "{subject}: not met within {window_text}{cut} ({counted} over {:.1}s){}",
                elapsed.as_secs_f64(),
                detail(&last)
            ),
            observed: last.observed,
            probes,
        },
        PollOutcome::Broke { last, elapsed, .. } => ExpectResult {
            passed: false,
            cancelled: false,
            message: format!(
                "{subject}: stopped holding {:.1}s into the {window_text} window (probe {probes}){}",
                elapsed.as_secs_f64(),
                detail(&last)
            ),
            observed: last.observed,
            probes,
        },
        PollOutcome::Unanswered { last, elapsed, .. } => ExpectResult {
            passed: false,
            cancelled: false,
            message: format!(
                "{subject}: held for {:.1}s, then a probe did not answer by the end of the \
                 {window_text} window (probe {}), so holding to the end is not shown{}",
                elapsed.as_secs_f64(),
                probes + 1,
                detail(&last)
            ),
            observed: last.observed,
            probes,
        },
        PollOutcome::Cancelled { last, .. } => ExpectResult {
            passed: false,
            cancelled: true,
            message: format!(
                "{subject}: cancelled{}",
                last.as_ref().map(detail).unwrap_or_default()
            ),
            observed: last.map(|l| l.observed).unwrap_or(Value::Null),
            probes,
        },
    }
}

/// Probe an Application once.
pub async fn probe_app(argocd: &ArgoCd, wanted: &AppWanted) -> Observation<Seen> {
    match argocd.get_json(&wanted.app).await {
        Ok(object) => judge_app_object(wanted, object.as_ref()),
        Err(error) => Observation::fails(unreadable(error.to_string())),
    }
}

/// The Application whose reconciliations a `reconciles:` expect counts.
pub struct ReconcilePlan<'a> {
    pub argocd: &'a ArgoCd,
    /// The mapped name.
    pub app: String,
    pub count: u32,
    /// How long Argo CD has to acknowledge each refresh.
    pub budget: Duration,
}

/// Why Argo CD has not (yet) acknowledged a refresh requested at
/// `requested` (Unix seconds): `Ok(())` once the refresh annotation is gone
/// and `status.reconciledAt` is not earlier than the request.
/// `Err((final, why))`: `final` when it never will (the controller took the
/// refresh without comparing the app).
pub fn reconcile_ack(object: &Value, requested: i64) -> Result<(), (bool, String)> {
    let annotation = object
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(crate::argocd::REFRESH_ANNOTATION));
    if annotation.is_some_and(|a| !a.is_null()) {
        return Err((
            false,
            "the refresh annotation is still set: the application controller has not taken the refresh"
                .into(),
        ));
    }
    let reconciled_at = object
        .pointer("/status/reconciledAt")
        .and_then(Value::as_str);
    let parsed = reconciled_at.and_then(|text| {
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()
    });
    let requested_text = time::OffsetDateTime::from_unix_timestamp(requested)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| requested.to_string());
    match parsed {
        Some(at) if at.unix_timestamp() >= requested => Ok(()),
        _ => Err((
            true,
            format!(
                "the controller took the refresh without comparing the app (status.reconciledAt {} is before the request at {requested_text}); its conditions say why",
                reconciled_at.unwrap_or("is not set")
            ),
        )),
    }
}

/// How one round of `run_reconciles` stopped early.
enum RoundStop {
    /// The condition did not hold.
    Broke(Seen),
    /// Argo CD answered the refresh without a reconciliation.
    Dropped(Seen, String),
}

/// `reconciles: N`: `probe` must hold now, then through N reconciliations
/// of the app, each requested with a refresh and acknowledged by Argo CD
/// (see [`reconcile_ack`]); each round reads the ack before judging the
/// condition, so the last judgement of a round sees the state Argo CD's
/// reconciliation left.
pub async fn run_reconciles<F, Fut>(
    subject: &str,
    plan: &PollPlan,
    reconcile: &ReconcilePlan<'_>,
    probe: F,
) -> ExpectResult
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Observation<Seen>>,
{
    let started = Instant::now();
    let count = reconcile.count;
    let app = reconcile.app.as_str();
    let argocd = reconcile.argocd;
    let mut probes = 1;
    let first = probe().await;
    let failed = |message: String, seen: Seen, probes: u32| ExpectResult {
        passed: false,
        cancelled: false,
        message: format!("{message}{}", seen_detail(&seen)),
        observed: seen.observed,
        probes,
    };
    if !first.holds {
        return failed(
            format!(
                "{subject}: does not hold before the {count} reconciliation(s) it must hold through"
            ),
            first.detail,
            probes,
        );
    }
    let mut last = first.detail;
    for round in 1..=count {
        if plan.cancel.is_cancelled() {
            break;
        }
        let requested = time::OffsetDateTime::now_utc().unix_timestamp();
        if let Err(error) = argocd.refresh(app, false).await {
            return failed(
                format!("{subject}: requesting reconciliation {round} of {count}: {error}"),
                last,
                probes,
            );
        }
        let wanted_end = Instant::now() + reconcile.budget;
        let end = wanted_end.min(plan.scenario_deadline);
        let outcome = poll::eventually_try(end, plan.backoff, &plan.cancel, || {
            let read = argocd.get_json(app);
            let seen = probe();
            async move {
                let ack = match read.await {
                    Ok(Some(object)) => reconcile_ack(&object, requested),
                    Ok(None) => Err((true, format!("Application {app} does not exist"))),
                    Err(error) => Err((false, format!("could not read it: {error}"))),
                };
                let Observation {
                    holds,
                    detail: seen,
                } = seen.await;
                if !holds {
                    return Err(RoundStop::Broke(seen));
                }
                match ack {
                    Err((true, why)) => Err(RoundStop::Dropped(seen, why)),
                    Err((false, why)) => Ok(Observation::fails((seen, why))),
                    Ok(()) => Ok(Observation::holds((seen, String::new()))),
                }
            }
        })
        .await;
        let elapsed = started.elapsed().as_secs_f64();
        match outcome {
            Err(RoundStop::Broke(seen)) => {
                return failed(
                    format!(
                        "{subject}: stopped holding {elapsed:.1}s in, during reconciliation {round} of {count}"
                    ),
                    seen,
                    probes + 1,
                );
            }
            Err(RoundStop::Dropped(seen, why)) => {
                return failed(
                    format!("{subject}: reconciliation {round} of {count} did not happen: {why}"),
                    seen,
                    probes + 1,
                );
            }
            Ok(PollOutcome::Held {
                last: (seen, _),
                probes: n,
                ..
            }) => {
                probes += n;
                last = seen;
            }
            Ok(PollOutcome::Cancelled {
                last: seen,
                probes: n,
                ..
            }) => {
                probes += n;
                if let Some((seen, _)) = seen {
                    last = seen;
                }
                break;
            }
            Ok(PollOutcome::TimedOut {
                last: (seen, why),
                probes: n,
                ..
            })
            | Ok(PollOutcome::Broke {
                last: (seen, why),
                probes: n,
                ..
            })
            | Ok(PollOutcome::Unanswered {
                last: (seen, why),
                probes: n,
                ..
            }) => {
                let cut = if end < wanted_end {
                    " (cut short by the scenario timeout)"
                } else {
                    ""
                };
                return failed(
                    format!(
                        "{subject}: Argo CD did not reconcile Application {app} within {} of refresh {round} of {count}{cut}: {why}; is the application controller running? (its log is in the diagnostics)",
                        humantime::format_duration(reconcile.budget)
                    ),
                    seen,
                    probes + n,
                );
            }
        }
    }
    if plan.cancel.is_cancelled() {
        return ExpectResult {
            passed: false,
            cancelled: true,
            message: format!("{subject}: cancelled{}", seen_detail(&last)),
            observed: last.observed,
            probes,
        };
    }
    ExpectResult {
        passed: true,
        cancelled: false,
        message: format!(
            "{} through {count} reconciliation(s) of {app} ({probes} probes, {:.1}s)",
            last.summary,
            started.elapsed().as_secs_f64()
        ),
        observed: last.observed,
        probes,
    }
}

/// The problems, last observation and diff of `seen`, one per line.
fn seen_detail(seen: &Seen) -> String {
    let mut text = String::new();
    for problem in &seen.problems {
        text.push_str(&format!("\n  {problem}"));
    }
    text.push_str(&format!("\n  last observed: {}", seen.summary));
    if let Some(diff) = &seen.diff {
        text.push('\n');
        text.push_str(diff.trim_end());
    }
    text
}

/// The API resource of `apiVersion` + `kind`, telling "not served" apart
/// from "cannot ask".
pub(crate) async fn discover(
    client: &Client,
    api_version: &str,
    kind: &str,
) -> Result<(ApiResource, ApiCapabilities), String> {
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let gvk = kube::core::GroupVersionKind::gvk(group, version, kind);
    match kube::discovery::pinned_kind(client, &gvk).await {
        Ok(found) => Ok(found),
        Err(kube::Error::Api(status)) if status.code == 404 => Err(format!(
            "the cluster does not serve {api_version} {kind} (yet): check apiVersion and kind, or that its CRD is installed"
        )),
        Err(kube::Error::Discovery(error)) => Err(format!(
            "the cluster does not serve {api_version} {kind} (yet): {error}"
        )),
        Err(error) => Err(format!(
            "asking the cluster about {api_version} {kind}: {error}"
        )),
    }
}

/// Resolves a resource's API once (discovery), then reads the object.
pub struct ResourceProbe {
    client: Client,
    wanted: ResourceWanted,
    /// Cached after the first successful discovery.
    resolved: std::sync::Mutex<Option<Api<DynamicObject>>>,
}

impl ResourceProbe {
    pub fn new(client: Client, wanted: ResourceWanted) -> Self {
        ResourceProbe {
            client,
            wanted,
            resolved: std::sync::Mutex::new(None),
        }
    }

    pub fn wanted(&self) -> &ResourceWanted {
        &self.wanted
    }

    pub async fn probe(&self) -> Observation<Seen> {
        match self.read().await {
            Ok(object) => judge_resource(&self.wanted, object.as_ref()),
            // Not fatal: a CRD may be served only once Argo CD has synced it.
            Err(problem) => Observation::fails(unreadable(problem)),
        }
    }

    async fn read(&self) -> Result<Option<Value>, String> {
        let cached = self.resolved.lock().ok().and_then(|guard| guard.clone());
        let api = match cached {
            Some(api) => api,
            None => {
                let (resource, capabilities) =
                    discover(&self.client, &self.wanted.api_version, &self.wanted.kind).await?;
                let api = match (capabilities.scope, &self.wanted.namespace) {
                    (Scope::Cluster, _) => Api::all_with(self.client.clone(), &resource),
                    (Scope::Namespaced, Some(ns)) => {
                        Api::namespaced_with(self.client.clone(), ns, &resource)
                    }
                    (Scope::Namespaced, None) => {
                        return Err(format!(
                            "{} is namespaced: give `resource.namespace` (e.g. the app's destination namespace)",
                            self.wanted.kind
                        ));
                    }
                };
                if let Ok(mut guard) = self.resolved.lock() {
                    *guard = Some(api.clone());
                }
                api
            }
        };
        let namespace = self.wanted.namespace.as_deref().unwrap_or_default();
        let request = api.get_opt(&self.wanted.name);
        let read = harness_core::log::apiserver(
            "get",
            &self.wanted.kind,
            namespace,
            &self.wanted.name,
            request,
        );
        match read.await {
            Ok(object) => Ok(object.map(|o| serde_json::to_value(o).unwrap_or(Value::Null))),
            Err(error) => Err(format!("reading {}: {error}", self.wanted.display_name())),
        }
    }
}
