//! Loading the 1.1 app and expect keys (`project`, `syncOptions`, `spec`,
//! `expect: {app, matches}`, `reconciles`): what the plan holds, and bad
//! input reported at file:line:column. What the engine makes of them is
//! pure too: the Application manifest and the refresh acknowledgement.

use harness_engine::argocd::{AppSpec, application_manifest, customize_manifest};
use harness_engine::expect::{AppWanted, judge_app_object, reconcile_ack};
use harness_scenario::{
    self as scenario, Action, App, Expect, ExpectTarget, ProjectRef, Reconciles, Scenario, Timing,
};
use serde_json::json;

mod common;

use common::assert_errors;

fn load(yaml: &str) -> Result<Scenario, Vec<String>> {
    common::load_scenario(yaml, |_| {})
}

fn app(scenario: &Scenario, index: usize) -> &App {
    match &scenario.steps[index].action {
        Action::App(app) => app,
        other => panic!("step {index} is {other:?}"),
    }
}

fn expect(scenario: &Scenario, index: usize) -> &Expect {
    match &scenario.steps[index].action {
        Action::Expect(expect) => expect,
        other => panic!("step {index} is {other:?}"),
    }
}

#[test]
fn app_project_sync_options_and_spec_reach_the_plan() {
    let scenario = load(
        "name: s
steps:
  - app:
      name: a
      repository: r
      revision: v1
      project: team
      syncOptions: [ServerSideApply=true, CreateNamespace=false]
      spec:
        source: {directory: {recurse: true}}
        ignoreDifferences: [{kind: ConfigMap, jsonPointers: [/data/x]}]
        info: [{name: registry, value: '${lab.argoRegistry}'}]
  - app: {name: b, repository: r, revision: v1}
",
    )
    .expect("valid");
    let a = app(&scenario, 0);
    assert_eq!(
        a.project,
        Some(ProjectRef {
            name: "team".into(),
            applied: false
        })
    );
    assert_eq!(
        a.sync_options,
        vec!["ServerSideApply=true", "CreateNamespace=false"]
    );
    let spec = a.spec.as_ref().expect("spec");
    assert_eq!(spec["source"]["directory"]["recurse"], json!(true));
    assert_eq!(spec["info"][0]["value"], json!("${lab.argoRegistry}"));
    let b = app(&scenario, 1);
    assert!(b.project.is_none() && b.sync_options.is_empty() && b.spec.is_none());
}

#[test]
fn expect_matches_on_an_app_and_reconciles_reach_the_plan() {
    let scenario = load(
        "name: s
steps:
  - app: {name: a, repository: r, revision: v1, namespace: shared}
  - expect: {app: a, matches: {status: {sourceType: Directory}}}
  - expect: {app: a, sync: Synced, reconciles: 2}
  - expect:
      resource: {apiVersion: v1, kind: ConfigMap, namespace: shared, name: c}
      absent: true
      reconciles: 1
  - app: {name: b, repository: r, revision: v1, namespace: shared}
  - expect:
      app: b
      resource: {apiVersion: v1, kind: ConfigMap, namespace: shared, name: c}
      reconciles: 3
",
    )
    .expect("valid");
    let ExpectTarget::App(wanted) = &expect(&scenario, 1).target else {
        panic!("an app expect");
    };
    assert_eq!(
        wanted.matches,
        Some(json!({"status": {"sourceType": "Directory"}}))
    );
    assert_eq!(
        expect(&scenario, 1).timing,
        Timing::Within(scenario::DEFAULT_WITHIN)
    );
    let reconciles = |index: usize| expect(&scenario, index).timing.clone();
    assert_eq!(
        reconciles(2),
        Timing::Reconciles(Reconciles {
            count: 2,
            app: "a".into()
        })
    );
    // The one app deploying to the resource's namespace (so far) is a.
    assert_eq!(
        reconciles(3),
        Timing::Reconciles(Reconciles {
            count: 1,
            app: "a".into()
        })
    );
    assert!(matches!(
        expect(&scenario, 3).target,
        ExpectTarget::Resource(_)
    ));
    // Named beside the resource.
    assert_eq!(
        reconciles(5),
        Timing::Reconciles(Reconciles {
            count: 3,
            app: "b".into()
        })
    );
}

#[test]
fn bad_app_keys_are_reported_where_they_are_written() {
    let errors = load(
        "name: s
steps:
  - app: {name: a, repository: r, revision: v1, project: Team_1}
  - app: {name: b, repository: r, revision: v1, syncOptions: [ServerSideApply]}
  - app: {name: c, repository: r, revision: v1, syncOptions: [ServerSideaply=true]}
  - app: {name: d, repository: r, revision: v1, syncOptions: [PruneLast=false]}
  - app: {name: e, repository: r, revision: v1, spec: [x]}
  - app: {name: f, repository: r, revision: v1, spec: {destination: {namespace: x}}}
  - app: {name: g, repository: r, revision: v1, spec: {source: {repoURL: x}}}
  - app: {name: h, repository: r, revision: v1, sync: manual, spec: {syncPolicy: {automated: {}}}}
  - app: {name: i, repository: r, revision: v1, spec: {sources: []}}
  - app: {name: j, repository: r, revision: v1, spec: {info: ['${nope.digest}']}}
  - app: {name: k, repository: r, revision: v1, spec: {syncPolicy: {syncOptions: [Validate=false]}}}
",
    )
    .expect_err("invalid");
    assert_errors(
        &errors,
        &[
            ("3:58: ", "project name"),
            ("4:63: ", "sync option `ServerSideApply` has no value"),
            ("5:63: ", "did you mean `ServerSideApply`?"),
            ("6:63: ", "`PruneLast` takes `true`, not `false`"),
            ("7:55: ", "`spec` must be a map"),
            ("8:56: ", "`spec.destination` is the harness's to set"),
            ("9:65: ", "`spec.source.repoURL` is the harness's to set"),
            ("10:69: ", "`spec.syncPolicy.automated` with `sync: manual`"),
            ("11:55: ", "`spec.sources` must be a non-empty list"),
            ("12:64: ", "nope"),
            (
                "13:69: ",
                "`spec.syncPolicy.syncOptions` is the harness's to set",
            ),
        ],
    );
}

#[test]
fn bad_expect_keys_are_reported_where_they_are_written() {
    let errors = load(
        "name: s
steps:
  - app: {name: a, repository: r, revision: v1}
  - push: {files: {a.yaml: x}, repository: r, as: v1}
  - expect: {app: a, matches: [x]}
  - expect: {app: a, sync: Synced, absent: true}
  - expect: {app: a, sync: Synced, reconciles: 0}
  - expect: {app: a, sync: Synced, reconciles: 2, for: 10s}
  - expect: {app: a, sync: Synced, reconciles: 21}
  - expect:
      resource: {apiVersion: v1, kind: ConfigMap, namespace: elsewhere, name: c}
      reconciles: 1
  - expect:
      app: a
      sync: Synced
      resource: {apiVersion: v1, kind: ConfigMap, namespace: a, name: c}
      reconciles: 1
  - expect: {referrers: {repository: r, subject: '${v1.digest}', count: 0}, reconciles: 1}
  - expect: {app: a, resource: {apiVersion: v1, kind: ConfigMap, namespace: a, name: c}}
",
    )
    .expect_err("invalid");
    assert_errors(
        &errors,
        &[
            ("5:31: ", "`matches` must be a map"),
            ("6:44: ", "`absent` applies to a `resource`"),
            ("7:48: ", "`reconciles: 0` waits for no reconciliation"),
            ("8:48: ", "`reconciles` and `for` together"),
            ("9:48: ", "`reconciles: 21` is more than 20"),
            ("12:19: ", "no earlier app deploys to namespace `elsewhere`"),
            (
                "14:7: ",
                "`sync` applies to an `app`, and this expect checks a `resource`",
            ),
            (
                "18:89: ",
                "`reconciles` counts an Application's reconciliations",
            ),
            ("19:13: ", "both `app` and `resource`"),
        ],
    );
}

fn app_spec() -> AppSpec {
    AppSpec {
        name: "a-x1".into(),
        repo_url: "oci://registry/r".into(),
        target_revision: "v1".into(),
        path: ".".into(),
        destination_namespace: "a-x1".into(),
        auto_sync: true,
        labels: Default::default(),
    }
}

#[test]
fn the_manifest_takes_project_options_and_the_merged_spec() {
    let mut manifest = application_manifest(&app_spec(), "argocd");
    customize_manifest(
        &mut manifest,
        Some("team-x1"),
        &[
            "ServerSideApply=true".into(),
            "CreateNamespace=false".into(),
        ],
        Some(&json!({
            "source": {"directory": {"recurse": true}},
            "syncPolicy": {"automated": {"selfHeal": null, "allowEmpty": true}},
        })),
    );
    let spec = &manifest["spec"];
    assert_eq!(spec["project"], json!("team-x1"));
    assert_eq!(
        spec["syncPolicy"]["syncOptions"],
        json!(["ServerSideApply=true", "CreateNamespace=false"])
    );
    // Merged, not replaced: the harness's source and automation stay.
    assert_eq!(spec["source"]["repoURL"], json!("oci://registry/r"));
    assert_eq!(spec["source"]["directory"]["recurse"], json!(true));
    assert_eq!(
        spec["syncPolicy"]["automated"],
        json!({"prune": true, "allowEmpty": true})
    );
    assert_eq!(spec["destination"]["namespace"], json!("a-x1"));

    let mut multi = application_manifest(&app_spec(), "argocd");
    customize_manifest(
        &mut multi,
        None,
        &[],
        Some(
            &json!({"sources": [{"repoURL": "oci://registry/r", "targetRevision": "v1", "path": "."}]}),
        ),
    );
    assert!(multi["spec"].get("source").is_none(), "{multi:#}");
    assert_eq!(multi["spec"]["project"], json!("default"));
    assert_eq!(
        multi["spec"]["syncPolicy"]["syncOptions"],
        json!(["CreateNamespace=true"])
    );
}

#[test]
fn an_app_matches_the_whole_object_with_a_diff() {
    let object = json!({
        "metadata": {"name": "a"},
        "spec": {"source": {"targetRevision": "v1.0.0"}},
        "status": {"sync": {"status": "Synced"}, "sourceType": "Directory",
                   "resources": [{"kind": "ConfigMap", "name": "c"}, {"kind": "Secret", "name": "s"}]},
    });
    let wanted = |matches: serde_json::Value| AppWanted {
        app: "a".into(),
        sync: Some(harness_scenario::SyncStatus::Synced),
        health: None,
        revision: None,
        operation: None,
        condition: None,
        matches: Some(matches),
    };
    let held = judge_app_object(
        &wanted(json!({"spec": {"source": {"targetRevision": "v1.0.0"}},
                       "status": {"resources": [{"kind": "Secret"}]}})),
        Some(&object),
    );
    assert!(held.holds, "{:?}", held.detail);
    let broke = judge_app_object(
        &wanted(json!({"status": {"sourceType": "Helm"}})),
        Some(&object),
    );
    assert!(!broke.holds);
    assert!(
        broke
            .detail
            .problems
            .iter()
            .any(|p| p.contains("sourceType")),
        "{:?}",
        broke.detail.problems
    );
    assert!(
        broke
            .detail
            .diff
            .as_deref()
            .is_some_and(|d| d.contains("Helm"))
    );
    // Status fields still count beside `matches`.
    let mut out_of_sync = object.clone();
    out_of_sync["status"]["sync"]["status"] = json!("OutOfSync");
    assert!(!judge_app_object(&wanted(json!({})), Some(&out_of_sync)).holds);
    assert!(!judge_app_object(&wanted(json!({})), None).holds);
}

#[test]
fn a_refresh_is_acknowledged_only_by_a_later_reconciliation() {
    let requested = 1_796_300_000; // 2026-12-03T12:13:20Z
    let at = |time: &str, annotation: Option<&str>| {
        let mut object = json!({"metadata": {"annotations": {}}, "status": {"reconciledAt": time}});
        if let Some(value) = annotation {
            object["metadata"]["annotations"]["argocd.argoproj.io/refresh"] = json!(value);
        }
        object
    };
    assert_eq!(
        reconcile_ack(&at("2026-12-03T12:13:20Z", None), requested),
        Ok(())
    );
    assert_eq!(
        reconcile_ack(&at("2026-12-03T12:14:00Z", None), requested),
        Ok(())
    );
    // Still waiting for the controller: not final.
    let pending = reconcile_ack(&at("2026-12-03T12:14:00Z", Some("normal")), requested);
    assert!(matches!(pending, Err((false, _))), "{pending:?}");
    // Annotation taken, but no comparison since the request: final.
    let dropped = reconcile_ack(&at("2026-12-03T12:13:19Z", None), requested);
    assert!(
        matches!(&dropped, Err((true, why)) if why.contains("12:13:19Z")),
        "{dropped:?}"
    );
    let never = reconcile_ack(&json!({"metadata": {}, "status": {}}), requested);
    assert!(matches!(never, Err((true, _))), "{never:?}");
}
