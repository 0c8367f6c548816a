//! Push to Synced: from the end of a push that moves `latest` to the
//! Application reporting the new digest as Synced.
//!
//! Three clocks run on the same event, so the difference between them is
//! what the harness adds:
//! - the floor: a Kubernetes watch on the Application, which sees the
//!   status change the moment Argo CD writes it;
//! - the harness: the expect engine's own wait, exactly as an `expect`
//!   step runs it (`expect::run_app_poll`: a watch on the Application and
//!   probes at the runner's default backoff);
//! - polling alone, the same probes without the watch (what `expect` did
//!   before it watched), to show what the watch gains.
//!
//! Argo CD's own record, `status.operationState.finishedAt` (1 s
//! resolution), is kept as a cross-check of the floor.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use kube::api::{Api, DynamicObject, WatchEvent, WatchParams};
use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::stats::Stats;
use harness_core::progress::Progress;
use harness_engine::argocd::{AppSpec, AppStatus, ArgoCd, application_resource};
use harness_engine::expect::{self, AppWanted, Backoff, poll};
use harness_engine::lab::Lab;
use harness_oci::{ArtifactFiles, DEFAULT_LAYER_MEDIA_TYPE, RegistryClient, pack};
use harness_scenario::SyncStatus;

/// The backoff of the poller without a watch (the runner's default).
pub const TIGHT_BACKOFF: Backoff = Backoff {
    initial: Duration::from_millis(100),
    factor: 1.5,
    max: Duration::from_millis(500),
};

#[derive(Debug, Clone, Serialize)]
pub struct SyncResult {
    /// Argo CD's reconciliation interval in the lab.
    pub reconciliation_seconds: f64,
    /// The runner's default expect backoff.
    pub harness_backoff: String,
    pub tight_backoff: String,
    /// With the refresh annotation set right after the push.
    pub refresh: Option<SyncMode>,
    /// Waiting for Argo CD's own reconcile.
    pub polling: Option<SyncMode>,
    /// Deleting the Application (cascade), seconds from the delete call.
    pub delete: Option<DeleteTimes>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct DeleteTimes {
    /// When a watch saw the Application gone.
    pub floor: Option<Stats>,
    /// When `ArgoCd::delete` returned.
    pub harness: Option<Stats>,
}

/// Seconds from the end of the push, per iteration.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SyncMode {
    /// When a watch saw the Application Synced at the new digest.
    pub floor: Option<Stats>,
    /// When the harness's expect (default backoff) saw it.
    pub harness: Option<Stats>,
    /// harness − floor.
    pub overhead: Option<Stats>,
    /// When a poller with the tight backoff saw it.
    pub tight: Option<Stats>,
    /// tight − floor.
    pub tight_overhead: Option<Stats>,
    /// Argo CD's `operationState.finishedAt` − push end (1 s resolution).
    pub recorded_finish: Option<Stats>,
    /// Probes the harness's poller made, per iteration.
    pub harness_probes: Vec<u32>,
}

pub fn describe_backoff(b: &Backoff) -> String {
    format!(
        "{} ms ×{} up to {} ms",
        b.initial.as_millis(),
        b.factor,
        b.max.as_millis()
    )
}

/// One iteration's clocks, seconds after the push ended.
struct Sample {
    digest: String,
    floor: Option<f64>,
    harness: f64,
    harness_probes: u32,
    tight: f64,
    recorded_finish: Option<f64>,
}

pub struct SyncBench<'a> {
    pub lab: &'a dyn Lab,
    pub client: &'a RegistryClient,
    pub iterations: usize,
    pub reconciliation: Duration,
    /// Unique per bench run (repository, Application and namespace).
    pub name: String,
    pub progress: &'a Progress,
    pub problems: &'a mut Vec<String>,
}

fn files(version: &str) -> ArtifactFiles {
    let mut files = ArtifactFiles::default();
    files.insert(
        "configmap.yaml",
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bench-config\ndata:\n  version: \"{version}\"\n"
        ),
    );
    files
}

fn synced_at(object: &Value, digest: &str) -> bool {
    let status = AppStatus::from_object(object);
    status.sync.as_deref() == Some("Synced") && status.revision.as_deref() == Some(digest)
}

fn seconds_since(t: Instant, since: Instant) -> f64 {
    t.saturating_duration_since(since).as_secs_f64()
}

impl SyncBench<'_> {
    pub async fn run(&mut self) -> anyhow::Result<SyncResult> {
        let argocd = ArgoCd::new(self.lab.kube(), self.lab.argocd_namespace());
        let task = self
            .progress
            .task("push to Synced: creating the Application");
        let first = pack(&files("0"), DEFAULT_LAYER_MEDIA_TYPE, &BTreeMap::new())?;
        self.client
            .push(&self.name, &first, &["latest".to_string()])
            .await?;
        let spec = AppSpec {
            name: self.name.clone(),
            repo_url: format!("oci://{}/{}", self.lab.registry_for_argo(), self.name),
            target_revision: "latest".into(),
            path: ".".into(),
            destination_namespace: self.name.clone(),
            auto_sync: true,
            labels: BTreeMap::new(),
        };
        argocd.apply_app(&spec).await?;
        if !self.wait_settled(&argocd, &first.digest).await {
            task.fail("not Synced within 2 minutes");
            anyhow::bail!(
                "the benchmark Application {} did not become Synced at {} within 2 minutes",
                self.name,
                first.digest
            );
        }
        task.done("");

        let mut result = SyncResult {
            reconciliation_seconds: self.reconciliation.as_secs_f64(),
            harness_backoff: describe_backoff(&Backoff::default()),
            tight_backoff: describe_backoff(&TIGHT_BACKOFF),
            refresh: None,
            polling: None,
            delete: None,
        };
        let mut last_digest = first.digest.clone();
        for refresh in [true, false] {
            let mode = if refresh { "refresh" } else { "polling" };
            let mut samples = vec![];
            for i in 0..self.iterations {
                let task = self.progress.task(format!(
                    "push to Synced ({mode}) {}/{}",
                    i + 1,
                    self.iterations
                ));
                match self.once(&argocd, refresh, &format!("{mode}-{i}")).await {
                    Ok(s) => {
                        last_digest = s.digest.clone();
                        task.done(format!(
                            "Argo CD {} s, harness {:.2} s ({} probes), tight poller {:.2} s",
                            s.floor.map_or("?".into(), |f| format!("{f:.2}")),
                            s.harness,
                            s.harness_probes,
                            s.tight
                        ));
                        samples.push(s);
                    }
                    Err(e) => {
                        task.fail(e.to_string());
                        self.problems
                            .push(format!("push to Synced ({mode}) {}: {e:#}", i + 1));
                    }
                }
            }
            let summary = summarize(&samples);
            if refresh {
                result.refresh = Some(summary);
            } else {
                result.polling = Some(summary);
            }
        }

        let (mut floors, mut returned) = (vec![], vec![]);
        for i in 0..self.iterations {
            if i > 0 {
                argocd.apply_app(&spec).await?;
                if !self.wait_settled(&argocd, &last_digest).await {
                    self.problems
                        .push("delete: the re-created Application did not become Synced".into());
                    break;
                }
            }
            let task =
                self.progress
                    .task(format!("delete Application {}/{}", i + 1, self.iterations));
            match self.delete_once(&argocd).await {
                Ok((floor, harness)) => {
                    task.done(format!(
                        "gone after {}, delete returned after {:.2} s",
                        floor.map_or("?".into(), |f| format!("{f:.2} s")),
                        harness
                    ));
                    floors.extend(floor);
                    returned.push(harness);
                }
                Err(e) => {
                    task.fail(e.to_string());
                    self.problems.push(format!("delete: {e:#}"));
                    break;
                }
            }
        }
        result.delete = Some(DeleteTimes {
            floor: Stats::from_samples(&floors),
            harness: Stats::from_samples(&returned),
        });
        Ok(result)
    }

    /// Deletes the Application; returns (seen gone by a watch, delete
    /// returned), seconds after the call.
    async fn delete_once(&self, argocd: &ArgoCd) -> anyhow::Result<(Option<f64>, f64)> {
        let api: Api<DynamicObject> = Api::namespaced_with(
            self.lab.kube(),
            self.lab.argocd_namespace(),
            &application_resource(),
        );
        let current = api.get(&self.name).await?;
        let version_now = current.metadata.resource_version.unwrap_or_default();
        let name = self.name.clone();
        let watch = tokio::spawn(async move {
            let params = WatchParams::default()
                .fields(&format!("metadata.name={name}"))
                .timeout(120);
            let mut stream = api.watch(&params, &version_now).await?.boxed();
            while let Some(event) = stream.try_next().await? {
                if let WatchEvent::Deleted(_) = event {
                    return Ok(Instant::now());
                }
            }
            anyhow::bail!("the watch ended before the Application was deleted")
        });
        let started = Instant::now();
        argocd.delete(&self.name, Duration::from_secs(60)).await?;
        let returned = started.elapsed().as_secs_f64();
        let floor = match tokio::time::timeout(Duration::from_secs(10), watch).await {
            Ok(Ok(Ok(at))) => Some(seconds_since(at, started)),
            _ => None,
        };
        Ok((floor, returned))
    }

    /// Synced at `digest` with no operation left running (so the next push
    /// starts from rest).
    async fn wait_settled(&self, argocd: &ArgoCd, digest: &str) -> bool {
        let deadline = Instant::now() + Duration::from_secs(120);
        while Instant::now() < deadline {
            if let Ok(Some(object)) = argocd.get_json(&self.name).await
                && synced_at(&object, digest)
                && !AppStatus::from_object(&object).operation_pending
            {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    }

    async fn once(&self, argocd: &ArgoCd, refresh: bool, version: &str) -> anyhow::Result<Sample> {
        // Packed before the clock starts: the event is the end of the push.
        let artifact = pack(&files(version), DEFAULT_LAYER_MEDIA_TYPE, &BTreeMap::new())?;
        let digest = artifact.digest.clone();

        // The watch starts from the object's current version, so no change
        // after it can be missed however late the stream connects.
        let api: Api<DynamicObject> = Api::namespaced_with(
            self.lab.kube(),
            self.lab.argocd_namespace(),
            &application_resource(),
        );
        let current = api.get(&self.name).await?;
        let version_now = current.metadata.resource_version.unwrap_or_default();
        let watch = {
            let (api, name, digest) = (api.clone(), self.name.clone(), digest.clone());
            tokio::spawn(async move {
                let params = WatchParams::default()
                    .fields(&format!("metadata.name={name}"))
                    .timeout(120);
                let mut stream = api.watch(&params, &version_now).await?.boxed();
                while let Some(event) = stream.try_next().await? {
                    if let WatchEvent::Modified(object) = event
                        && synced_at(&serde_json::to_value(&object)?, &digest)
                    {
                        return Ok(Instant::now());
                    }
                }
                anyhow::bail!("the watch ended before the Application was Synced")
            })
        };

        self.client
            .push(&self.name, &artifact, &["latest".to_string()])
            .await?;
        let pushed = Instant::now();
        let pushed_wall = OffsetDateTime::now_utc();
        if refresh {
            argocd.refresh(&self.name, false).await?;
        }

        let wanted = AppWanted {
            app: self.name.clone(),
            sync: Some(SyncStatus::Synced),
            health: None,
            revision: Some(digest.clone()),
            operation: None,
            condition: None,
            matches: None,
        };
        let deadline = Instant::now() + Duration::from_secs(120);
        let cancel = CancellationToken::new();
        let harness_wait = async {
            let plan = expect::PollPlan {
                timing: harness_scenario::Timing::Within(Duration::from_secs(120)),
                scenario_deadline: deadline,
                backoff: Backoff::default(),
                cancel: cancel.clone(),
            };
            let result = expect::run_app_poll(
                &format!("Application {}", self.name),
                &plan,
                argocd,
                &wanted,
            )
            .await;
            (result, Instant::now())
        };
        let polling_alone = async {
            let outcome = poll::eventually(deadline, TIGHT_BACKOFF, &cancel, || {
                expect::probe_app(argocd, &wanted)
            })
            .await;
            (outcome, Instant::now())
        };
        let ((harness, harness_at), (tight, tight_at)) = tokio::join!(harness_wait, polling_alone);
        if !harness.passed {
            anyhow::bail!(
                "not Synced at {digest} within 2 minutes: {}",
                harness.message
            );
        }
        let harness_probes = harness.probes;
        if !tight.is_success() {
            anyhow::bail!("polling alone did not see {digest} Synced");
        }
        let floor = match tokio::time::timeout(Duration::from_secs(10), watch).await {
            Ok(Ok(Ok(at))) => Some(seconds_since(at, pushed)),
            Ok(Ok(Err(e))) => anyhow::bail!("watching the Application: {e:#}"),
            _ => None,
        };
        let object = argocd.get_json(&self.name).await?.unwrap_or(Value::Null);
        let recorded_finish = object["status"]["operationState"]["finishedAt"]
            .as_str()
            .filter(|_| {
                object["status"]["operationState"]["syncResult"]["revision"].as_str()
                    == Some(digest.as_str())
            })
            .and_then(|s| OffsetDateTime::parse(s, &Rfc3339).ok())
            .map(|finished| (finished - pushed_wall).as_seconds_f64());
        self.wait_settled(argocd, &digest).await;
        Ok(Sample {
            digest,
            floor,
            harness: seconds_since(harness_at, pushed),
            harness_probes,
            tight: seconds_since(tight_at, pushed),
            recorded_finish,
        })
    }
}

fn summarize(samples: &[Sample]) -> SyncMode {
    let with_floor: Vec<&Sample> = samples.iter().filter(|s| s.floor.is_some()).collect();
    let floor = |s: &Sample| s.floor.unwrap_or(f64::NAN);
    SyncMode {
        floor: Stats::from_samples(&with_floor.iter().map(|s| floor(s)).collect::<Vec<_>>()),
        harness: Stats::from_samples(&samples.iter().map(|s| s.harness).collect::<Vec<_>>()),
        overhead: Stats::from_samples(
            &with_floor
                .iter()
                .map(|s| s.harness - floor(s))
                .collect::<Vec<_>>(),
        ),
        tight: Stats::from_samples(&samples.iter().map(|s| s.tight).collect::<Vec<_>>()),
        tight_overhead: Stats::from_samples(
            &with_floor
                .iter()
                .map(|s| s.tight - floor(s))
                .collect::<Vec<_>>(),
        ),
        recorded_finish: Stats::from_samples(
            &samples
                .iter()
                .filter_map(|s| s.recorded_finish)
                .collect::<Vec<_>>(),
        ),
        harness_probes: samples.iter().map(|s| s.harness_probes).collect(),
    }
}
