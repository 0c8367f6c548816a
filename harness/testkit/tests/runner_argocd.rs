//! What the harness writes to Argo CD (Application, sync operation, refresh)
//! and how it reads and judges an Application's status. No cluster needed.

use std::collections::BTreeMap;

use harness_engine::argocd::{
    AppSpec, AppStatus, application_manifest, refresh_patch, sync_operation_patch,
};
use harness_engine::expect::{
    AppWanted, ResourceCheckWanted, ResourceWanted, app_mismatches, judge_app, judge_resource,
};
use harness_scenario::{HealthStatus, OperationPhase, SyncStatus};
use serde_json::json;

fn spec(auto_sync: bool) -> AppSpec {
    AppSpec {
        name: "demo-k3x9q2a".into(),
        repo_url: "oci://127.0.0.1:5000/e2e-run/s-k3x9q2a/demo-app".into(),
        target_revision: "latest".into(),
        path: ".".into(),
        destination_namespace: "demo-k3x9q2a".into(),
        auto_sync,
        labels: BTreeMap::from([
            ("oci-e2e.dev/run-id".to_string(), "run".to_string()),
            ("oci-e2e.dev/scenario".to_string(), "s".to_string()),
        ]),
    }
}

#[test]
fn automated_application() {
    insta::assert_json_snapshot!(application_manifest(&spec(true), "argocd"));
}

#[test]
fn manual_application_has_no_automated_policy() {
    let manifest = application_manifest(&spec(false), "argocd");
    assert_eq!(
        manifest["spec"]["syncPolicy"],
        json!({"syncOptions": ["CreateNamespace=true"]})
    );
}

#[test]
fn sync_and_refresh_patches() {
    assert_eq!(
        sync_operation_patch("sha256:abc", &["CreateNamespace=true".to_string()]),
        json!({"operation": {
            "initiatedBy": {"username": "oci-e2e"},
            "sync": {"prune": true, "revision": "sha256:abc", "syncOptions": ["CreateNamespace=true"]}
        }})
    );
    assert_eq!(
        refresh_patch(true),
        json!({"metadata": {"annotations": {"argocd.argoproj.io/refresh": "hard"}}})
    );
    assert_eq!(
        refresh_patch(false),
        json!({"metadata": {"annotations": {"argocd.argoproj.io/refresh": "normal"}}})
    );
}

fn observed_application() -> serde_json::Value {
    json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": "demo-k3x9q2a", "namespace": "argocd"},
        "spec": {"source": {"repoURL": "oci://r/x", "targetRevision": "v1.0.0", "path": "."}},
        "status": {
            "sync": {"status": "Synced", "revision": "sha256:1111"},
            "health": {"status": "Healthy"},
            "operationState": {"phase": "Succeeded", "message": "successfully synced (all tasks run)"},
            "conditions": [{"type": "SyncError", "message": "Failed to sync: manifest unknown", "lastTransitionTime": "2026-11-29T10:00:00Z"}]
        }
    })
}

#[test]
fn status_is_read_from_the_object() {
    let status = AppStatus::from_object(&observed_application());
    assert_eq!(status.sync.as_deref(), Some("Synced"));
    assert_eq!(status.health.as_deref(), Some("Healthy"));
    assert_eq!(status.revision.as_deref(), Some("sha256:1111"));
    assert_eq!(status.operation_phase.as_deref(), Some("Succeeded"));
    assert_eq!(status.target_revision.as_deref(), Some("v1.0.0"));
    assert_eq!(status.conditions.len(), 1);
    assert!(!status.operation_pending);
    assert_eq!(
        status.summary(),
        "sync=Synced health=Healthy revision=sha256:1111 operation=Succeeded (successfully synced (all tasks run)) condition SyncError: Failed to sync: manifest unknown"
    );
    let fresh =
        AppStatus::from_object(&json!({"metadata": {"name": "x"}, "operation": {"sync": {}}}));
    assert_eq!(
        fresh.summary(),
        "sync=<none> health=<none> revision=<none> operation=<none>"
    );
    assert!(fresh.operation_pending);
}

fn wanted() -> AppWanted {
    AppWanted {
        app: "demo-k3x9q2a".into(),
        sync: None,
        health: None,
        revision: None,
        operation: None,
        condition: None,
        matches: None,
    }
}

#[test]
fn app_expectation_table() {
    let status = AppStatus::from_object(&observed_application());
    let table: Vec<(&str, AppWanted, Vec<&str>)> = vec![
        ("nothing asked", wanted(), vec![]),
        (
            "sync holds",
            AppWanted {
                sync: Some(SyncStatus::Synced),
                ..wanted()
            },
            vec![],
        ),
        (
            "sync differs",
            AppWanted {
                sync: Some(SyncStatus::OutOfSync),
                ..wanted()
            },
            vec![r#"sync: expected "OutOfSync", found "Synced""#],
        ),
        (
            "health holds",
            AppWanted {
                health: Some(HealthStatus::Healthy),
                ..wanted()
            },
            vec![],
        ),
        (
            "revision exact",
            AppWanted {
                revision: Some("sha256:1111".into()),
                ..wanted()
            },
            vec![],
        ),
        (
            "revision prefix is not enough",
            AppWanted {
                revision: Some("sha256:11".into()),
                ..wanted()
            },
            vec![r#"revision: expected "sha256:11", found "sha256:1111""#],
        ),
        (
            "operation differs",
            AppWanted {
                operation: Some(OperationPhase::Failed),
                ..wanted()
            },
            vec![r#"operation: expected "Failed", found "Succeeded""#],
        ),
        (
            "condition type",
            AppWanted {
                condition: Some(("SyncError".into(), None)),
                ..wanted()
            },
            vec![],
        ),
        (
            "condition message substring",
            AppWanted {
                condition: Some(("SyncError".into(), Some("manifest unknown".into()))),
                ..wanted()
            },
            vec![],
        ),
        (
            "condition message absent",
            AppWanted {
                condition: Some(("SyncError".into(), Some("denied".into()))),
                ..wanted()
            },
            vec![
                r#"condition: expected a condition SyncError with a message containing "denied", found SyncError: "Failed to sync: manifest unknown""#,
            ],
        ),
        (
            "condition type absent",
            AppWanted {
                condition: Some(("ComparisonError".into(), None)),
                ..wanted()
            },
            vec![
                r#"condition: expected a condition ComparisonError, found SyncError: "Failed to sync: manifest unknown""#,
            ],
        ),
        (
            "several fields differ",
            AppWanted {
                sync: Some(SyncStatus::Unknown),
                health: Some(HealthStatus::Degraded),
                ..wanted()
            },
            vec![
                r#"sync: expected "Unknown", found "Synced""#,
                r#"health: expected "Degraded", found "Healthy""#,
            ],
        ),
    ];
    for (case, wanted, want) in table {
        assert_eq!(app_mismatches(&wanted, &status), want, "{case}");
    }
}

#[test]
fn missing_status_fields_say_nothing_was_found() {
    let status = AppStatus::default();
    assert_eq!(
        app_mismatches(
            &AppWanted {
                health: Some(HealthStatus::Healthy),
                ..wanted()
            },
            &status
        ),
        vec![r#"health: expected "Healthy", found nothing"#]
    );
    let missing = judge_app(&wanted(), None);
    assert!(!missing.holds);
    assert_eq!(
        missing.detail.summary,
        "Application demo-k3x9q2a does not exist"
    );
}

fn config_map_wanted(check: ResourceCheckWanted) -> ResourceWanted {
    ResourceWanted {
        api_version: "v1".into(),
        kind: "ConfigMap".into(),
        namespace: Some("demo-x".into()),
        name: "demo-config".into(),
        check,
    }
}

#[test]
fn resource_checks() {
    let object = json!({"metadata": {"name": "demo-config", "namespace": "demo-x"}, "data": {"version": "2.0.0"}});
    let table = [
        (
            "exists, present",
            ResourceCheckWanted::Exists,
            Some(&object),
            true,
        ),
        ("exists, missing", ResourceCheckWanted::Exists, None, false),
        ("absent, missing", ResourceCheckWanted::Absent, None, true),
        (
            "absent, present",
            ResourceCheckWanted::Absent,
            Some(&object),
            false,
        ),
        (
            "matches",
            ResourceCheckWanted::Matches(json!({"data": {"version": "2.0.0"}})),
            Some(&object),
            true,
        ),
        (
            "does not match",
            ResourceCheckWanted::Matches(json!({"data": {"version": "1.0.0"}})),
            Some(&object),
            false,
        ),
        (
            "matches, missing",
            ResourceCheckWanted::Matches(json!({})),
            None,
            false,
        ),
    ];
    for (case, check, object, want) in table {
        assert_eq!(
            judge_resource(&config_map_wanted(check), object).holds,
            want,
            "{case}"
        );
    }
    let failed = judge_resource(
        &config_map_wanted(ResourceCheckWanted::Matches(
            json!({"data": {"version": "1.0.0"}}),
        )),
        Some(&object),
    );
    assert_eq!(
        failed.detail.summary,
        "ConfigMap demo-x/demo-config does not match"
    );
    assert_eq!(
        failed.detail.problems,
        vec![r#"data.version: expected "1.0.0", found "2.0.0""#]
    );
    assert_eq!(
        failed.detail.observed,
        json!({"present": true, "matched": {"data": {"version": "2.0.0"}}})
    );
    assert!(
        failed
            .detail
            .diff
            .as_deref()
            .is_some_and(|d| d.contains("+  version: \"2.0.0\"")),
        "{:?}",
        failed.detail.diff
    );
}
