//! Load-time rules that depend on step order: which `${NAME.digest}` and
//! which apps are defined where, in `steps` and in `finally`, and the
//! defaults the plan fills in.

use std::path::PathBuf;
use std::time::Duration;

use harness_scenario::{
    self as scenario, Action, DEFAULT_LAYER_MEDIA_TYPE, DEFAULT_SCENARIO_TIMEOUT, DEFAULT_WITHIN,
    ExpectTarget, PushContent, ResourceCheck, Scenario, SyncPolicy, Template, Timing, VarRef, Vars,
};

struct ScenarioFile {
    _directory: tempfile::TempDir,
    path: PathBuf,
}

fn write(yaml: &str) -> ScenarioFile {
    let directory = tempfile::tempdir().expect("temporary directory");
    let path = directory.path().join("scenario.yaml");
    std::fs::write(&path, yaml).expect("write scenario");
    ScenarioFile {
        _directory: directory,
        path,
    }
}

fn load(yaml: &str) -> Result<Scenario, Vec<String>> {
    let file = write(yaml);
    scenario::load_file(&file.path).map_err(|diagnostics| {
        diagnostics
            .iter()
            .map(|d| {
                let location = d.location.as_ref().expect("located");
                format!("{}:{}: {}", location.line, location.column, d.message)
            })
            .collect()
    })
}

#[test]
fn finally_sees_bindings_of_steps_and_of_earlier_finally_steps() {
    let scenario = load(
        "name: s
steps:
  - push: {files: {a.yaml: x}, repository: r, as: v1}
  - app: {name: demo, repository: r, revision: latest}
finally:
  - push: {files: {a.yaml: y}, repository: r, as: cleanup}
  - tag: {repository: r, from: \"${v1.digest}\", tags: [old]}
  - tag: {repository: r, from: \"${cleanup.digest}\", tags: [gone]}
  - delete: {app: demo}
",
    )
    .expect("valid");
    assert_eq!(scenario.finally.len(), 4);
}

#[test]
fn finally_does_not_see_later_finally_bindings() {
    let errors = load(
        "name: s
steps:
  - push: {files: {a.yaml: x}, repository: r}
finally:
  - tag: {repository: r, from: \"${later.digest}\", tags: [old]}
  - push: {files: {a.yaml: y}, repository: r, as: later}
",
    )
    .expect_err("later binding");
    assert_eq!(
        errors,
        [
            "5:33: undefined variable `${later.digest}`: the push step with `as: later` (line 6) comes after this use"
        ]
    );
}

#[test]
fn a_push_cannot_use_its_own_digest() {
    let errors = load(
        "name: s
steps:
  - push: {files: {a.yaml: \"${v1.digest}\"}, repository: r, as: v1}
",
    )
    .expect_err("own digest");
    assert_eq!(
        errors,
        [
            "3:29: undefined variable `${v1.digest}`: the push step with `as: v1` (line 3) comes after this use"
        ]
    );
}

#[test]
fn apps_from_steps_are_known_in_finally() {
    let scenario = load(
        "name: s
steps:
  - app: {name: demo, repository: r, revision: latest}
finally:
  - refresh: {app: demo, hard: true}
  - delete: {app: demo}
",
    )
    .expect("valid");
    assert!(matches!(&scenario.finally[0].action, Action::Refresh(r) if r.app == "demo" && r.hard));
}

#[test]
fn defaults_are_filled_in() {
    let scenario = load(
        "name: s
steps:
  - push: {files: {a.yaml: x}, repository: r}
  - app: {name: demo, repository: r, revision: latest}
  - expect: {app: demo, sync: Synced}
  - expect: {resource: {apiVersion: v1, kind: ConfigMap, namespace: demo, name: c}}
  - refresh: {app: demo}
",
    )
    .expect("valid");
    assert_eq!(scenario.timeout, DEFAULT_SCENARIO_TIMEOUT);
    assert!(
        scenario.labels.is_empty() && scenario.finally.is_empty() && scenario.description.is_none()
    );
    let Action::Push(push) = &scenario.steps[0].action else {
        panic!("push")
    };
    assert_eq!(push.layer_media_type, DEFAULT_LAYER_MEDIA_TYPE);
    assert!(push.tags.is_empty() && push.bind.is_none() && push.annotations.is_empty());
    assert!(
        matches!(&push.content, PushContent::Files(files) if files["a.yaml"] == harness_scenario::InlineFile::Text(Template("x".into())))
    );
    let Action::App(app) = &scenario.steps[1].action else {
        panic!("app")
    };
    assert_eq!(
        (app.path.as_str(), app.namespace.as_str(), app.sync),
        (".", "demo", SyncPolicy::Auto)
    );
    let Action::Expect(expect) = &scenario.steps[2].action else {
        panic!("expect")
    };
    assert_eq!(expect.timing, Timing::Within(DEFAULT_WITHIN));
    let Action::Expect(expect) = &scenario.steps[3].action else {
        panic!("expect")
    };
    assert!(
        matches!(&expect.target, ExpectTarget::Resource(r) if matches!(r.check, ResourceCheck::Exists))
    );
    assert!(matches!(&scenario.steps[4].action, Action::Refresh(r) if !r.hard));
    // Steps remember where they are (the first key of the step's map).
    let lines: Vec<(u32, u32)> = scenario
        .steps
        .iter()
        .map(|s| (s.location.line, s.location.column))
        .collect();
    assert_eq!(lines, [(3, 5), (4, 5), (5, 5), (6, 5), (7, 5)]);
}

#[test]
fn durations_and_timing() {
    let scenario = load(
        "name: s
timeout: 10m
steps:
  - app: {name: demo, repository: r, revision: latest}
  - expect: {app: demo, sync: Synced, within: 1m30s}
  - expect: {app: demo, sync: Synced, for: 500ms}
",
    )
    .expect("valid");
    assert_eq!(scenario.timeout, Duration::from_secs(600));
    let timings: Vec<Timing> = scenario
        .steps
        .iter()
        .filter_map(|s| match &s.action {
            Action::Expect(e) => Some(e.timing.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        timings,
        [
            Timing::Within(Duration::from_secs(90)),
            Timing::For(Duration::from_millis(500))
        ]
    );
}

#[test]
fn waiting_longer_than_the_scenario_may_run_is_an_error() {
    let errors = load(
        "name: s
timeout: 1m
steps:
  - app: {name: demo, repository: r, revision: latest}
  - expect: {app: demo, sync: Synced, within: 2m}
",
    )
    .expect_err("within > timeout");
    assert_eq!(
        errors,
        [
            "5:47: `within: 2m` is longer than the scenario's timeout (1m): shorten it or raise `timeout:`"
        ]
    );
}

#[test]
fn loaded_templates_render_with_run_values() {
    let scenario = load(
        "name: s
steps:
  - push: {files: {a.yaml: x}, repository: r, as: v1}
  - app: {name: demo, repository: r, revision: \"${v1.digest}\"}
  - expect:
      resource: {apiVersion: v1, kind: ConfigMap, namespace: demo, name: c}
      matches: {data: {image: \"${lab.registry}/r@${v1.digest}\", n: 1, quoted: \"1\"}}
",
    )
    .expect("valid");
    let mut vars = Vars::new("127.0.0.1:5001".into());
    let Action::App(app) = &scenario.steps[1].action else {
        panic!("app")
    };
    assert_eq!(
        app.revision.variables().collect::<Vec<_>>(),
        [VarRef::Digest("v1".into())]
    );
    assert!(
        app.revision.render(&vars).is_err(),
        "v1 is not bound before its push ran"
    );
    vars.bind_digest("v1", "sha256:0123");
    assert_eq!(app.revision.render(&vars).as_deref(), Ok("sha256:0123"));
    let Action::Expect(expect) = &scenario.steps[2].action else {
        panic!("expect")
    };
    let ExpectTarget::Resource(resource) = &expect.target else {
        panic!("resource")
    };
    let ResourceCheck::Matches(expected) = &resource.check else {
        panic!("matches")
    };
    // YAML scalars keep their types: 1 is a number, "1" a string.
    assert_eq!(
        scenario::render_json(expected, &vars),
        Ok(
            serde_json::json!({"data": {"image": "127.0.0.1:5001/r@sha256:0123", "n": 1, "quoted": "1"}})
        )
    );
}

#[test]
fn yaml_1_1_booleans_are_not_booleans() {
    let errors = load(
        "name: s
steps:
  - app: {name: demo, repository: r, revision: latest}
  - refresh: {app: demo, hard: yes}
",
    )
    .expect_err("yes is not a boolean");
    assert_eq!(errors.len(), 1);
    assert!(errors[0].starts_with("4:32: "), "{errors:?}");
}

#[test]
fn revision_digest_without_algorithm() {
    let hex = "a".repeat(64);
    let errors = load(&format!(
        "name: s
steps:
  - app: {{name: demo, repository: r, revision: {hex}}}
"
    ))
    .expect_err("bare digest");
    assert_eq!(
        errors,
        [format!(
            "3:48: revision looks like a digest without its algorithm: write `sha256:{hex}`"
        )]
    );
}

#[test]
fn files_names_stay_inside_the_artifact() {
    let errors = load(
        "name: s
steps:
  - push:
      repository: r
      files:
        ok.yaml: x
        ../escape.yaml: y
        /abs.yaml: z
",
    )
    .expect_err("bad file names");
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(
        errors[0].starts_with("7:9: file name `../escape.yaml`"),
        "{errors:?}"
    );
    assert!(
        errors[1].starts_with("8:9: file name `/abs.yaml`"),
        "{errors:?}"
    );
}
