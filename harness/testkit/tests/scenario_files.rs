//! Scenario files as data: the shipped scenarios load into the plans pinned
//! in snapshots, and every malformed example gives the pinned diagnostics
//! (message and file:line:column). Paths are given relative to the harness
//! crate (the test's working directory), so snapshots do not depend on
//! where the repository is checked out.

use std::path::{Path, PathBuf};

use harness_scenario::{self as scenario, Action, Diagnostic, Scenario};

const SCENARIOS: &str = "../../scenarios";
const BAD: &str = "tests/data/scenarios-bad";

fn yaml_files(directory: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(directory)
        .unwrap_or_else(|e| panic!("cannot list {directory}: {e}"))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no YAML files in {directory}");
    files
}

fn stem(path: &Path) -> String {
    path.file_stem()
        .and_then(|s| s.to_str())
        .expect("UTF-8 file name")
        .to_string()
}

fn render(diagnostics: &[Diagnostic]) -> String {
    diagnostics
        .iter()
        .map(|d| format!("{d}\n"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn shipped_scenarios_pass_check() {
    let mut out = Vec::new();
    let valid = scenario::check_paths(&[PathBuf::from(SCENARIOS)], &mut out);
    let out = String::from_utf8(out).expect("UTF-8 output");
    assert!(valid, "{out}");
    let count = yaml_files(SCENARIOS).len();
    assert_eq!(out, format!("checked {count} files: no errors\n"));
}

#[test]
fn shipped_scenarios_plans() {
    for file in yaml_files(SCENARIOS) {
        let plan = scenario::load_file(&file).unwrap_or_else(|d| panic!("{}", render(&d)));
        insta::assert_yaml_snapshot!(format!("plan-{}", stem(&file)), plan);
    }
}

/// What the issue asks the seed scenarios to cover, checked on the plans so
/// a later edit cannot quietly drop it.
#[test]
fn shipped_scenarios_cover_the_seed_cases() {
    let scenarios = scenario::load_paths(&[PathBuf::from(SCENARIOS)])
        .unwrap_or_else(|d| panic!("{}", render(&d)));
    let names: Vec<&str> = scenarios.iter().map(|s| s.name.as_str()).collect();
    for wanted in [
        "tagged-release-deploys",
        "latest-follows-digest",
        "pinned-digest-ignores-latest",
        "manual-sync",
        "prune-removed-object",
        "semver-constraint",
        "deployment-healthy",
        "unsupported-layer-media-type",
    ] {
        assert!(
            names.contains(&wanted),
            "missing scenario {wanted}: {names:?}"
        );
    }
    for scenario in &scenarios {
        assert!(
            !scenario.labels.is_empty(),
            "{} has no labels",
            scenario.name
        );
        let apps: Vec<&str> = scenario
            .steps
            .iter()
            .filter_map(|step| match &step.action {
                Action::App(app) => Some(app.name.as_str()),
                _ => None,
            })
            .collect();
        for app in apps {
            let deleted = scenario
                .finally
                .iter()
                .any(|step| matches!(&step.action, Action::Delete(d) if d.app == app));
            assert!(
                deleted,
                "{}: app {app} is not deleted in finally",
                scenario.name
            );
        }
        assert!(
            uses_digest_variables(scenario),
            "{} uses no ${{NAME.digest}}",
            scenario.name
        );
    }
}

fn uses_digest_variables(scenario: &Scenario) -> bool {
    let text = serde_json::to_string(&scenario.steps).expect("plans serialize");
    text.contains(".digest}")
}

#[test]
fn malformed_examples_diagnostics() {
    for file in yaml_files(BAD) {
        let diagnostics = match scenario::load_file(&file) {
            Ok(_) => panic!("{} loaded without errors", file.display()),
            Err(diagnostics) => diagnostics,
        };
        for diagnostic in &diagnostics {
            let location = diagnostic
                .location
                .as_ref()
                .expect("a problem inside a file has a location");
            assert_eq!(location.file, file, "diagnostic names the file");
        }
        insta::assert_snapshot!(format!("bad-{}", stem(&file)), render(&diagnostics));
    }
}

#[test]
fn duplicate_scenario_names_across_files() {
    let directory = PathBuf::from(BAD).join("duplicate-name");
    // Each file is fine alone.
    for file in ["first.yaml", "second.yaml"] {
        assert!(scenario::load_file(&directory.join(file)).is_ok(), "{file}");
    }
    let diagnostics =
        scenario::load_paths(&[directory]).expect_err("duplicate names must be rejected");
    insta::assert_snapshot!("bad-duplicate-name", render(&diagnostics));
}

#[test]
fn paths_that_hold_no_scenarios() {
    let empty = tempfile::tempdir().expect("temporary directory");
    let missing = PathBuf::from("tests/data/no-such-directory");
    let diagnostics = scenario::load_paths(&[missing, empty.path().to_path_buf()])
        .expect_err("nothing to load is an error");
    let messages: Vec<String> = diagnostics.iter().map(|d| d.to_string()).collect();
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert_eq!(
        messages[0],
        "error: tests/data/no-such-directory does not exist: give a scenario file or a directory of them"
    );
    assert_eq!(
        messages[1],
        format!(
            "error: no scenario files (*.yaml, *.yml) in {}",
            empty.path().display()
        )
    );
}

#[test]
fn directories_are_searched_recursively_in_order() {
    let root = tempfile::tempdir().expect("temporary directory");
    let write = |relative: &str, name: &str| {
        let path = root.path().join(relative);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("create directories");
        let body =
            format!("name: {name}\nsteps:\n  - push: {{files: {{a.yaml: x}}, repository: r}}\n");
        std::fs::write(path, body).expect("write scenario");
    };
    write("b.yaml", "second");
    write("a/z.yml", "first");
    write("c/d/e.yaml", "third");
    write("notes.txt", "ignored");
    let scenarios = scenario::load_paths(&[root.path().to_path_buf(), root.path().join("b.yaml")])
        .unwrap_or_else(|d| panic!("{}", render(&d)));
    let names: Vec<&str> = scenarios.iter().map(|s| s.name.as_str()).collect();
    // b.yaml named twice loads once.
    assert_eq!(names, ["first", "second", "third"]);
}

#[test]
fn check_reports_every_problem_and_a_summary() {
    let mut out = Vec::new();
    let paths = [
        PathBuf::from(BAD).join("bad-duration.yaml"),
        PathBuf::from(BAD).join("within-and-for.yaml"),
    ];
    let valid = scenario::check_paths(&paths, &mut out);
    assert!(!valid);
    let out = String::from_utf8(out).expect("UTF-8 output");
    assert!(out.ends_with("checked 2 files: 6 errors\n"), "{out}");
    assert_eq!(out.matches(": error: ").count(), 6, "{out}");
}

#[test]
fn schema_describes_the_format() {
    let schema = scenario::json_schema();
    insta::assert_json_snapshot!("json-schema", schema);
    let definitions = &schema["$defs"];
    let step_kinds = definitions["Step"]["oneOf"].as_array().map(Vec::len);
    assert_eq!(
        step_kinds,
        Some(12),
        "a step has exactly one of twelve operation keys (push, tag, app, sync, refresh, expect, delete, sign, verify, attach, fault, apply)"
    );
    assert_eq!(schema["required"], serde_json::json!(["name", "steps"]));
    assert_eq!(schema["additionalProperties"], serde_json::json!(false));
    // The schema's step keys are the list in kinds.rs, in its order.
    let required: Vec<&str> = definitions["Step"]["oneOf"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|one| one["required"][0].as_str())
        .collect();
    assert_eq!(required, scenario::file::STEP_KINDS);
    for key in scenario::file::STEP_KINDS {
        assert!(
            definitions["Step"]["properties"][key].is_object(),
            "the schema describes `{key}`"
        );
    }
}

/// The schema is for editors, `check` is the authority; still, the two must
/// agree: every shipped scenario is valid under the schema, and the shape
/// errors a schema can express are rejected by it too.
#[test]
fn schema_agrees_with_the_loader() {
    let schema = scenario::json_schema();
    let validator = jsonschema::validator_for(&schema)
        .unwrap_or_else(|e| panic!("schema does not compile: {e}"));
    let as_json = |file: &Path| -> serde_json::Value {
        let text =
            std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
    };
    for file in yaml_files(SCENARIOS) {
        let errors: Vec<String> = validator
            .iter_errors(&as_json(&file))
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{}: {errors:?}", file.display());
    }
    for name in [
        "absent-with-matches",
        "bad-duration",
        "bad-names",
        "empty-steps",
        "expect-shape",
        "helm-and-index",
        "missing-key",
        "push-content",
        "step-operation-keys",
        "unknown-enum-value",
        "unknown-key",
        "within-and-for",
        "wrong-type",
    ] {
        let file = PathBuf::from(BAD).join(format!("{name}.yaml"));
        assert!(
            !validator.is_valid(&as_json(&file)),
            "the schema accepts {}",
            file.display()
        );
    }
}
