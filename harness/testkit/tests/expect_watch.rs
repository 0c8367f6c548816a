//! An Application `expect` watches as well as polls, on a real local lab:
//! a change that lasts a few milliseconds, undone long before the next
//! probe (500 ms apart at most), is still judged. A poller alone would
//! see it only by luck; the control windows show the same expectations
//! pass and fail as they should when nothing flips.

use std::collections::BTreeMap;
use std::time::Duration;

use harness_core::progress::Progress;
use harness_engine::argocd::{AppSpec, ArgoCd, application_manifest};
use harness_engine::expect::{self, AppWanted, Backoff, PollPlan};
use harness_labs::LabKind;
use harness_labs::session::{self, LabOptions};
use harness_scenario::Timing;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use serde_json::json;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

const APP: &str = "watched";

fn wanted(label: &str) -> AppWanted {
    AppWanted {
        app: APP.into(),
        sync: None,
        health: None,
        revision: None,
        operation: None,
        condition: None,
        matches: Some(json!({"metadata": {"labels": {"flip": label}}})),
    }
}

fn plan(timing: Timing) -> PollPlan {
    PollPlan {
        timing,
        scenario_deadline: Instant::now() + Duration::from_secs(60),
        backoff: Backoff::default(),
        cancel: CancellationToken::new(),
    }
}

/// After `after`, the label goes to `to` and straight back to `a`: two
/// patches, one right after the other.
fn flip(
    apps: Api<DynamicObject>,
    after: Duration,
    to: &'static str,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        tokio::time::sleep(after).await;
        for value in [to, "a"] {
            apps.patch(
                APP,
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"labels": {"flip": value}}})),
            )
            .await
            .expect("patch the label");
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_expect_sees_a_change_undone_before_the_next_probe() {
    harness_core::init_crypto();
    let progress = Progress::new();
    let opts = LabOptions::new(LabKind::Local);
    let lab = session::start(&opts, &progress)
        .await
        .expect("local lab starts");
    let kube = lab.lab().kube();
    let namespace = lab.lab().argocd_namespace().to_string();
    let argocd = ArgoCd::new(kube.clone(), &namespace);
    let apps: Api<DynamicObject> = Api::namespaced_with(
        kube,
        &namespace,
        &harness_engine::argocd::application_resource(),
    );
    let spec = AppSpec {
        name: APP.into(),
        repo_url: "oci://127.0.0.1:1/nothing".into(),
        target_revision: "latest".into(),
        path: ".".into(),
        destination_namespace: "watched".into(),
        auto_sync: false,
        labels: BTreeMap::from([("flip".to_string(), "a".to_string())]),
    };
    argocd
        .apply_manifest(APP, &application_manifest(&spec, &namespace))
        .await
        .expect("create the Application");

    // Controls: nothing flips, so `for` holds and `within` times out.
    let held = expect::run_app_poll(
        "Application watched",
        &plan(Timing::For(Duration::from_secs(2))),
        &argocd,
        &wanted("a"),
    )
    .await;
    let timed_out = expect::run_app_poll(
        "Application watched",
        &plan(Timing::Within(Duration::from_secs(2))),
        &argocd,
        &wanted("c"),
    )
    .await;

    // A flip to b and back, 1 s into a 3 s `for` window.
    let flipper = flip(apps.clone(), Duration::from_secs(1), "b");
    let broken = expect::run_app_poll(
        "Application watched",
        &plan(Timing::For(Duration::from_secs(3))),
        &argocd,
        &wanted("a"),
    )
    .await;
    flipper.await.expect("flip to b");

    // A flip to c and back, 1 s into a 3 s `within` window that wants c.
    let started = Instant::now();
    let flipper = flip(apps, Duration::from_secs(1), "c");
    let seen = expect::run_app_poll(
        "Application watched",
        &plan(Timing::Within(Duration::from_secs(3))),
        &argocd,
        &wanted("c"),
    )
    .await;
    let seen_after = started.elapsed();
    flipper.await.expect("flip to c");

    let _ = argocd.remove_finalizers(APP).await;
    let deleted = argocd.delete(APP, Duration::from_secs(30)).await;
    lab.shutdown(&opts, &progress, None)
        .await
        .expect("lab shuts down");
    deleted.expect("delete the Application");

    assert!(held.passed, "{}", held.message);
    assert!(
        !timed_out.passed && !timed_out.cancelled,
        "{}",
        timed_out.message
    );
    assert!(
        !broken.passed && !broken.cancelled,
        "a `for` window passed over a change to b: {}",
        broken.message
    );
    assert!(
        broken.message.contains("expected \"a\", found \"b\""),
        "{}",
        broken.message
    );
    assert!(seen.passed, "the change to c was missed: {}", seen.message);
    assert!(
        seen_after >= Duration::from_secs(1) && seen_after < Duration::from_secs(3),
        "{seen_after:?}"
    );
}
