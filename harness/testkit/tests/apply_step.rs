//! `apply:` steps: what the loader accepts and refuses (with positions),
//! and on a real local lab that the AppProjects a scenario applies are
//! used by its apps under their run-unique names and deleted at its end.

mod common;

use std::path::PathBuf;

use harness_core::progress::Progress;
use harness_engine::runner::{self, RunOptions, ScenarioStatus};
use harness_labs::LabKind;
use harness_labs::session::{self, LabOptions};
use harness_scenario::{Action, ApplyObject, Placement};

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn applied_objects_are_placed_and_projects_named_by_apps_are_mapped() {
    let scenario = common::load_scenario(
        "name: s
steps:
  - apply:
      manifest: |
        apiVersion: argoproj.io/v1alpha1
        kind: AppProject
        metadata: {name: team}
        spec: {sourceRepos: ['*']}
        ---
        apiVersion: v1
        kind: Secret
        metadata: {name: creds, namespace: argocd}
        ---
        apiVersion: v1
        kind: ConfigMap
        metadata: {name: settings, namespace: demo}
  - app: {name: demo, repository: r, revision: v1, project: team}
  - app: {name: other, repository: r, revision: v1, project: default}
",
        |_| {},
    );
    let scenario = scenario.unwrap_or_else(|errors| panic!("{errors:#?}"));
    let Action::Apply(apply) = &scenario.steps[0].action else {
        panic!("an apply step")
    };
    let object = |kind: &str, name: &str, placement: Placement| ApplyObject {
        api_version: if kind == "AppProject" {
            "argoproj.io/v1alpha1"
        } else {
            "v1"
        }
        .into(),
        kind: kind.into(),
        name: name.into(),
        placement,
    };
    assert_eq!(
        apply.objects,
        vec![
            object("AppProject", "team", Placement::ArgoCd),
            object("Secret", "creds", Placement::ArgoCd),
            object(
                "ConfigMap",
                "settings",
                Placement::Destination("demo".into())
            ),
        ]
    );
    let project = |index: usize| match &scenario.steps[index].action {
        Action::App(app) => app.project.clone().expect("a project"),
        other => panic!("{other:?}"),
    };
    assert!(project(1).applied, "team is the scenario's, so mapped");
    assert!(!project(2).applied, "default is Argo CD's, used as written");
}

#[test]
fn objects_a_run_could_not_keep_to_itself_are_refused_where_written() {
    let errors = common::load_scenario(
        "name: s
steps:
  - app: {name: demo, repository: r, revision: v1}
  - apply:
      manifest: |
        apiVersion: v1
        kind: Namespace
        metadata: {name: mine}
        ---
        apiVersion: argoproj.io/v1alpha1
        kind: Application
        metadata: {name: sneaky}
        ---
        apiVersion: v1
        kind: ConfigMap
        metadata: {name: loose}
        ---
        apiVersion: v1
        kind: ConfigMap
        metadata: {name: far, namespace: kube-system}
        ---
        apiVersion: argoproj.io/v1alpha1
        kind: AppProject
        metadata: {name: p, namespace: demo}
        ---
        apiVersion: v1
        kind: ConfigMap
        metadata: {name: '${v1.digest}', namespace: demo}
  - apply: {manifest: 'kind: x', file: x.yaml}
  - apply: {file: missing.yaml}
  - apply: {manifest: 'a: [b'}
",
        |_| {},
    )
    .expect_err("invalid");
    common::assert_errors(
        &errors,
        &[
            ("7:15: ", "document 1 of 6: Namespace is cluster-scoped"),
            (
                "11:15: ",
                "document 2 of 6: Applications come from `app` steps",
            ),
            (
                "16:26: ",
                "document 3 of 6: ConfigMap loose has no `metadata.namespace`: give one of the apps' namespaces (its apps deploy to demo)",
            ),
            (
                "20:42: ",
                "document 4 of 6: namespace `kube-system` is not a destination namespace",
            ),
            (
                "24:40: ",
                "document 5 of 6: AppProjects live in Argo CD's namespace",
            ),
            ("28:27: ", "undefined variable `${v1.digest}`"),
            (
                "28:27: ",
                "document 6 of 6: `metadata.name` cannot hold `${...}`",
            ),
            ("29:12: ", "`apply` has both `manifest` and `file`"),
            ("30:19: ", "missing.yaml"),
            ("31:23: ", "not YAML"),
        ],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn applied_projects_are_used_by_their_apps_and_deleted_at_the_end() {
    harness_core::init_crypto();
    let progress = Progress::new();
    let scenario =
        harness_scenario::load_file(&repo_root().join("scenarios/app-project-source-repos.yaml"))
            .unwrap_or_else(|d| panic!("{d:?}"));
    let opts = LabOptions::new(LabKind::Local);
    let lab = session::start(&opts, &progress)
        .await
        .expect("local lab starts");
    let tmp = tempfile::tempdir().unwrap();
    let mut run_opts = RunOptions::new(runner::new_run_id(), tmp.path().join("report"));
    run_opts.progress = progress.clone();
    let summary = runner::run(lab.lab(), vec![scenario], run_opts).await;
    let left: Vec<String> = common::argo_object_names(lab.lab().as_ref(), "AppProject")
        .await
        .into_iter()
        .filter(|name| name != "default")
        .collect();
    lab.shutdown(&opts, &progress, None)
        .await
        .expect("lab stops");

    let report = &summary.scenarios[0];
    assert_eq!(
        report.status,
        ScenarioStatus::Passed,
        "{:?}",
        report.failure.as_ref().map(|f| f.headline())
    );
    let applied = &report.steps[1].message;
    let suffix = &report.suffix;
    assert!(
        applied.contains(&format!("AppProject argocd/permits-{suffix}"))
            && applied.contains(&format!("AppProject argocd/elsewhere-{suffix}")),
        "the projects got run-unique names: {applied}"
    );
    assert!(
        report.cleanup_problems.is_empty(),
        "{:?}",
        report.cleanup_problems
    );
    assert!(left.is_empty(), "AppProjects left behind: {left:?}");
}
