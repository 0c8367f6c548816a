//! The existing lab's inputs (registry addresses, credentials from the
//! Docker config or the environment, the version from an image, the
//! scoped repo-creds secret) and the scale controls that need no lab:
//! shards, name filters and merging the reports of shards.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use harness_e2e::{Shard, filter_names, name_matches, shard};
use harness_engine::runner::{Failure, RunSummary, ScenarioReport, ScenarioStatus};
use harness_labs::existing::{
    ExistingLabError, PASSWORD_ENV, USERNAME_ENV, image_tag, registry_credentials,
    registry_for_argo, repo_creds_secret, secret_name, split_registry,
};
use harness_labs::{BasicAuth, RegistryEndpoint};
use harness_scenario::Scenario;

fn no_env(_: &str) -> Option<String> {
    None
}

fn docker_config(dir: &Path, json: &str) -> PathBuf {
    let path = dir.join("config.json");
    std::fs::write(&path, json).unwrap();
    path
}

fn basic(user: &str, pass: &str) -> Option<BasicAuth> {
    Some(BasicAuth {
        username: user.into(),
        password: pass.into(),
    })
}

#[test]
fn registry_addresses_split_into_host_and_prefix() {
    assert_eq!(
        split_registry("registry", "ghcr.io/acme/e2e").unwrap(),
        ("ghcr.io".into(), "acme/e2e".into())
    );
    assert_eq!(
        split_registry("registry", "127.0.0.1:5000/").unwrap(),
        ("127.0.0.1:5000".into(), String::new())
    );
    for (bad, why) in [
        ("https://ghcr.io/acme", "scheme"),
        ("", "empty"),
        ("host:port", "port"),
        ("ghcr.io/Acme", "lowercase"),
        ("ghcr.io/a//b", "lowercase"),
        ("bad host", "character"),
    ] {
        let message = split_registry("registry", bad).unwrap_err().to_string();
        assert!(message.contains(why), "{bad:?}: {message}");
        assert!(message.contains("host[:port][/prefix]"), "{message}");
    }
}

#[test]
fn argo_address_defaults_to_the_push_address_and_keeps_the_prefix() {
    assert_eq!(
        registry_for_argo("localhost:5001/team", None).unwrap(),
        "localhost:5001/team"
    );
    assert_eq!(
        registry_for_argo("localhost:5001/team", Some("kind-registry:5000")).unwrap(),
        "kind-registry:5000/team",
        "no prefix given: the push prefix"
    );
    assert_eq!(
        registry_for_argo("localhost:5001/team", Some("mirror.internal/other")).unwrap(),
        "mirror.internal/other"
    );
    let message = registry_for_argo("a:1", Some("http://b"))
        .unwrap_err()
        .to_string();
    assert!(message.contains("--registry-from-argo"), "{message}");
}

#[test]
fn credentials_come_from_docker_config_auths() {
    let dir = tempfile::tempdir().unwrap();
    // base64("alice:s3cr:et") — a password may contain ':'.
    let path = docker_config(
        dir.path(),
        r#"{"auths": {
            "https://registry.example.com/v1/": {"auth": "YWxpY2U6czNjcjpldA=="},
            "other.example.com:5000": {"username": "bob", "password": "pw"}
        }}"#,
    );
    assert_eq!(
        registry_credentials("registry.example.com", Some(&path), no_env).unwrap(),
        basic("alice", "s3cr:et")
    );
    assert_eq!(
        registry_credentials("other.example.com:5000", Some(&path), no_env).unwrap(),
        basic("bob", "pw")
    );
    assert_eq!(
        registry_credentials("anonymous.example.com", Some(&path), no_env).unwrap(),
        None,
        "no entry: anonymous"
    );
    assert_eq!(
        registry_credentials(
            "x.example.com",
            Some(&dir.path().join("missing.json")),
            no_env
        )
        .unwrap(),
        None,
        "no Docker config: anonymous"
    );
}

#[test]
fn the_environment_wins_and_must_be_complete() {
    let dir = tempfile::tempdir().unwrap();
    let path = docker_config(
        dir.path(),
        r#"{"auths": {"r.example.com": {"auth": "YWxpY2U6cHc="}}}"#,
    );
    let env = |name: &str| match name {
        USERNAME_ENV => Some("ci".to_string()),
        PASSWORD_ENV => Some("token".to_string()),
        _ => None,
    };
    assert_eq!(
        registry_credentials("r.example.com", Some(&path), env).unwrap(),
        basic("ci", "token")
    );
    let half = |name: &str| (name == USERNAME_ENV).then(|| "ci".to_string());
    let message = registry_credentials("r.example.com", Some(&path), half)
        .unwrap_err()
        .to_string();
    assert!(
        message.contains(PASSWORD_ENV) && message.contains("both"),
        "{message}"
    );
}

#[test]
fn credential_helpers_and_broken_entries_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            r#"{"credHelpers": {"r.example.com": "ecr-login"}}"#,
            "docker-credential-ecr-login",
        ),
        (
            r#"{"auths": {"r.example.com": {}}, "credsStore": "desktop"}"#,
            "docker-credential-desktop",
        ),
        (
            r#"{"auths": {"r.example.com": {"auth": "%%%"}}}"#,
            "not base64",
        ),
        (
            r#"{"auths": {"r.example.com": {"auth": "bm9jb2xvbg=="}}}"#,
            "user:password",
        ),
        (r#"{"auths": "#, "not valid JSON"),
    ];
    for (json, expected) in cases {
        let path = docker_config(dir.path(), json);
        let error = registry_credentials("r.example.com", Some(&path), no_env).unwrap_err();
        assert!(matches!(error, ExistingLabError::Credentials(_)));
        let message = error.to_string();
        assert!(message.contains(expected), "{json}: {message}");
        assert!(
            message.contains(USERNAME_ENV),
            "says what to do instead: {message}"
        );
    }
}

#[test]
fn argocd_version_from_an_image_reference() {
    assert_eq!(
        image_tag("quay.io/argoproj/argocd:v3.3.10").as_deref(),
        Some("v3.3.10")
    );
    assert_eq!(
        image_tag("localhost:5000/argocd:v3.1.6@sha256:abcd").as_deref(),
        Some("v3.1.6")
    );
    assert_eq!(image_tag("localhost:5000/argocd"), None, "a port is no tag");
}

#[test]
fn repo_creds_secret_is_scoped_to_the_run_and_labelled() {
    let endpoint = RegistryEndpoint {
        address: "127.0.0.1:5000/team".into(),
        plain_http: true,
        insecure_tls: false,
        ca_pem: None,
        auth: basic("u", "p"),
    };
    let run_id = "20261129-120000-ab12";
    let secret = repo_creds_secret("argocd", run_id, "registry.internal:5000/team", &endpoint);
    let data = secret.string_data.clone().unwrap();
    assert_eq!(
        data["url"],
        "oci://registry.internal:5000/team/e2e-20261129-120000-ab12"
    );
    assert_eq!(data["type"], "oci");
    assert_eq!(data["insecureOCIForceHttp"], "true");
    assert_eq!(
        (data["username"].as_str(), data["password"].as_str()),
        ("u", "p")
    );
    assert!(!data.contains_key("insecure"));
    let labels = secret.metadata.labels.clone().unwrap();
    assert_eq!(labels["argocd.argoproj.io/secret-type"], "repo-creds");
    assert_eq!(labels["oci-e2e.dev/run-id"], run_id);
    assert_eq!(
        secret.metadata.name.as_deref(),
        Some(secret_name(run_id).as_str())
    );
    // Every repository of the run is under the secret's URL.
    let isolation = harness_engine::runner::Isolation::new(run_id, "some-scenario", 3, []);
    assert!(
        format!(
            "oci://registry.internal:5000/team/{}",
            isolation.repository("demo")
        )
        .starts_with(&data["url"])
    );
}

/// `count` valid scenarios named `s00`, `s01`, ... loaded from files.
fn scenarios(dir: &Path, count: usize) -> Vec<Scenario> {
    for i in 0..count {
        std::fs::write(
            dir.join(format!("s{i:02}.yaml")),
            format!(
                "name: s{i:02}\nsteps:\n  - push: {{files: {{a.yaml: \"x: 1\"}}, repository: r, tags: [v1]}}\n"
            ),
        )
        .unwrap();
    }
    harness_scenario::load_paths(&[dir.to_path_buf()]).unwrap_or_else(|d| panic!("{d:?}"))
}

#[test]
fn shards_cover_every_scenario_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let all = scenarios(dir.path(), 11);
    let names: BTreeSet<String> = all.iter().map(|s| s.name.clone()).collect();
    assert_eq!(names.len(), 11);
    for count in 1..=13 {
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        let mut sizes = Vec::new();
        for index in 1..=count {
            let part = shard(all.clone(), Shard { index, count });
            // The same shard whatever order the files were found in.
            let mut reversed = all.clone();
            reversed.reverse();
            let again: Vec<String> = shard(reversed, Shard { index, count })
                .into_iter()
                .map(|s| s.name)
                .collect();
            let part: Vec<String> = part.into_iter().map(|s| s.name).collect();
            assert_eq!(part, again, "shard {index}/{count} is stable");
            sizes.push(part.len());
            for name in part {
                *seen.entry(name).or_default() += 1;
            }
        }
        assert_eq!(
            seen.keys().cloned().collect::<BTreeSet<_>>(),
            names,
            "{count} shards cover all"
        );
        assert!(
            seen.values().all(|n| *n == 1),
            "{count} shards: each scenario once: {seen:?}"
        );
        let (min, max) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
        assert!(max - min <= 1, "{count} shards balanced: {sizes:?}");
    }
}

#[test]
fn shard_flag_is_parsed_strictly() {
    assert_eq!("2/4".parse::<Shard>(), Ok(Shard { index: 2, count: 4 }));
    assert_eq!(Shard { index: 2, count: 4 }.to_string(), "2/4");
    for bad in ["0/4", "5/4", "1/0", "2", "a/b", "-1/3"] {
        let message = bad.parse::<Shard>().unwrap_err();
        assert!(message.contains("K/N"), "{bad}: {message}");
    }
}

#[test]
fn name_filters_are_substrings_or_globs() {
    assert!(name_matches("latest-follows-digest", "follows"));
    assert!(!name_matches("latest-follows-digest", "pinned"));
    assert!(name_matches("latest-follows-digest", "latest-*"));
    assert!(
        !name_matches("pinned-digest-ignores-latest", "latest-*"),
        "glob is anchored"
    );
    assert!(name_matches("semver-constraint", "semver-con?traint"));
    assert!(name_matches("a", "*"));
    assert!(!name_matches("ab", "?"));

    let dir = tempfile::tempdir().unwrap();
    let kept: Vec<String> = filter_names(scenarios(dir.path(), 12), &["s0*".into(), "11".into()])
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(
        kept,
        [
            "s00", "s01", "s02", "s03", "s04", "s05", "s06", "s07", "s08", "s09", "s11"
        ]
    );
}

fn report(name: &str, status: ScenarioStatus) -> ScenarioReport {
    let failure = (status != ScenarioStatus::Passed).then(|| Failure {
        phase: "steps".into(),
        index: 3,
        kind: "expect".into(),
        location: None,
        message: format!("{name} failed on attempt 1"),
    });
    ScenarioReport {
        name: name.into(),
        file: PathBuf::from(format!("scenarios/{name}.yaml")),
        status,
        suffix: "abcdefg".into(),
        started: "2026-11-29T12:00:00Z".into(),
        duration: Duration::from_secs(3),
        failure,
        steps: vec![],
        finally: vec![],
        cleanup_problems: vec![],
        diagnostics: None,
        log: vec![],
        skipped: None,
    }
}

fn run(run_id: &str, shard: &str, scenarios: Vec<ScenarioReport>) -> RunSummary {
    let mut summary = RunSummary {
        run_id: run_id.into(),
        lab: "existing".into(),
        argocd_version: "v3.3.10".into(),
        started: "2026-11-29T12:00:00Z".into(),
        finished: "2026-11-29T12:01:00Z".into(),
        duration: Duration::from_secs(60),
        passed: 0,
        failed: 0,
        cancelled: 0,
        flaky: 0,
        skipped: 0,
        shard: Some(shard.into()),
        scenarios,
        report_problems: vec![],
    };
    summary.count();
    summary
}

#[test]
fn flaky_is_reported_as_flaky_and_counts_as_passed_for_the_exit_code() {
    let summary = run(
        "r1",
        "1/2",
        vec![
            report("a", ScenarioStatus::Passed),
            report("b", ScenarioStatus::Flaky),
        ],
    );
    assert_eq!((summary.passed, summary.flaky, summary.failed), (1, 1, 0));
    assert_eq!(summary.exit_code(), 0);
    let json: serde_json::Value =
        serde_json::from_str(&harness_engine::report::json_summary(&summary).unwrap()).unwrap();
    assert_eq!(json["scenarios"][1]["status"], "flaky");
    assert_eq!(json["flaky"], 1);
    assert_eq!(json["shard"], "1/2");
    assert_eq!(json["lab"], "existing");
    assert_eq!(json["argocdVersion"], "v3.3.10");
    let xml = harness_engine::report::junit_xml(&summary).unwrap();
    assert!(xml.contains("<flakyFailure"), "{xml}");
    assert!(xml.contains("b failed on attempt 1"), "{xml}");
    assert!(
        xml.contains(r#"<property name="shard" value="1/2"/>"#),
        "{xml}"
    );
    assert!(
        xml.contains(r#"<property name="flaky" value="true"/>"#),
        "{xml}"
    );
}

#[test]
fn reports_of_shards_merge_into_one() {
    let dir = tempfile::tempdir().unwrap();
    let one = dir.path().join("shard-1");
    let two = dir.path().join("shard-2");
    harness_engine::report::write_reports(
        &run(
            "r1",
            "1/2",
            vec![
                report("a", ScenarioStatus::Passed),
                report("c", ScenarioStatus::Flaky),
            ],
        ),
        &one,
    )
    .unwrap();
    harness_engine::report::write_reports(
        &run(
            "r2",
            "2/2",
            vec![
                report("b", ScenarioStatus::Failed),
                report("d", ScenarioStatus::Passed),
            ],
        ),
        &two,
    )
    .unwrap();
    let out = dir.path().join("all");
    let outcome = harness_engine::report::merge_reports(&[one.clone(), two.clone()], &out).unwrap();
    assert_eq!(
        (
            outcome.inputs,
            outcome.suites,
            outcome.tests,
            outcome.failures
        ),
        (2, 2, 4, 1)
    );
    assert!(outcome.duplicates.is_empty());

    let merged = quick_junit::Report::deserialize_from_str(
        &std::fs::read_to_string(out.join("junit.xml")).unwrap(),
    )
    .unwrap();
    let cases: BTreeSet<String> = merged
        .test_suites
        .iter()
        .flat_map(|s| s.test_cases.iter().map(|c| c.name.to_string()))
        .collect();
    assert_eq!(
        cases,
        BTreeSet::from(["a", "b", "c", "d"].map(String::from))
    );
    assert_eq!((merged.tests, merged.failures), (4, 1));
    let text = std::fs::read_to_string(out.join("junit.xml")).unwrap();
    assert!(text.contains("<flakyFailure"), "flaky survives the merge");
    assert!(text.contains(r#"value="2/2""#));

    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["scenarios"], 4);
    assert_eq!(
        (&summary["passed"], &summary["flaky"], &summary["failed"]),
        (&2.into(), &1.into(), &1.into())
    );
    assert_eq!(summary["runs"][1]["runId"], "r2");

    // The same shard twice is flagged: shards must not overlap.
    let twice = harness_engine::report::merge_reports(&[one.clone(), one.clone()], &out).unwrap();
    assert_eq!(
        twice.duplicates.keys().cloned().collect::<Vec<_>>(),
        ["a", "c"]
    );
    let missing = harness_engine::report::merge_reports(&[dir.path().join("nope")], &out)
        .unwrap_err()
        .to_string();
    assert!(missing.contains("nope"), "{missing}");
}

#[test]
fn a_retry_that_passes_makes_the_scenario_flaky_never_passed() {
    let mut failed = report("a", ScenarioStatus::Failed);
    failed.diagnostics = Some(PathBuf::from("report/diagnostics/a"));
    failed.log = vec!["attempt 1 log".into()];
    let mut passed = report("a", ScenarioStatus::Passed);
    passed.suffix = "zzzzzzz".into();
    passed.log = vec!["attempt 2 log".into()];
    let combined = harness_e2e::combine_attempts(&failed, passed, 1, 2);
    assert_eq!(combined.status, ScenarioStatus::Flaky);
    assert_eq!(
        combined.failure.as_ref().map(|f| f.message.as_str()),
        Some("a failed on attempt 1"),
        "the failed attempt stays visible"
    );
    assert_eq!(combined.diagnostics, failed.diagnostics);
    assert_eq!(combined.suffix, "zzzzzzz", "the passing attempt's names");
    assert_eq!(combined.duration, Duration::from_secs(6));
    let log = combined.log.join("\n");
    assert!(
        log.contains("attempt 1 log") && log.contains("attempt 2 log"),
        "{log}"
    );
    assert!(log.contains("retry 1 (attempt 2"), "{log}");

    let mut again = report("a", ScenarioStatus::Failed);
    again.failure.as_mut().unwrap().message = "a failed on attempt 2".into();
    let still = harness_e2e::combine_attempts(&failed, again, 1, 2);
    assert_eq!(still.status, ScenarioStatus::Failed);
    assert_eq!(still.failure.unwrap().message, "a failed on attempt 2");
}
