//! The command line as a user runs it: exit codes of the contract, errors
//! with file:line:column, and Ctrl-C during a real run on the local lab
//! leaving nothing behind.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn xtask() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_xtask"));
    // RUST_LOG of whoever runs the suite would turn the log on.
    cmd.current_dir(repo_root())
        .env("CI", "true")
        .env_remove("RUST_LOG");
    cmd
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Draws SIGINT, SIGTERM and SIGKILL among five runs, one on the kept lab,
/// the SIGKILL late enough for the lab to be up (`soak::plan_runs`).
const SOAK_SEED: &str = "6";
const BAD: &str = "name: bad-one\nsteps:\n  - push: {files: {a.yaml: x}, repository: r, tags: [v1]}\n  - expect: {app: demo, sync: Synced, within: 2 minutes}\n";

#[test]
fn check_reports_file_line_column_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.yaml");
    std::fs::write(&file, BAD).unwrap();
    let out = xtask().arg("check").arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    // The bad duration is on line 4; the undefined app too.
    assert!(text.contains(&format!("{}:4:", file.display())), "{text}");

    let ok = xtask().args(["check", "scenarios"]).output().unwrap();
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
}

#[test]
fn e2e_with_bad_input_exits_2_before_any_lab_starts() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.yaml");
    std::fs::write(&file, BAD).unwrap();
    let started = Instant::now();
    let out = xtask()
        .args(["e2e", "--lab", "local"])
        .arg(&file)
        .env("OCI_E2E_LABS", dir.path().join("labs"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("nothing was run"), "{err}");
    assert!(
        !err.contains("DEBUG"),
        "no debug log without --verbose: {err}"
    );
    assert!(
        !dir.path().join("labs").exists(),
        "no lab directory was created"
    );
    // Not a timing assertion on the harness: a lab start would take far longer than loading a file.
    let _ = started;
}

#[test]
fn schema_is_json_with_the_step_kinds() {
    let out = xtask().arg("schema").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let schema: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let text = schema.to_string();
    for kind in ["push", "tag", "app", "sync", "refresh", "expect", "delete"] {
        assert!(
            text.contains(&format!("\"{kind}\"")),
            "schema mentions {kind}"
        );
    }
}

#[test]
fn dry_run_plans_touch_nothing() {
    let dir = tempfile::tempdir().unwrap();
    for lab in ["local", "kind"] {
        let out = xtask()
            .args(["lab", "up", "--dry-run", "--lab", lab])
            .env("OCI_E2E_LABS", dir.path())
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{lab}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let plan = String::from_utf8_lossy(&out.stdout);
        assert!(
            plan.contains("argocd") || plan.contains("Argo CD"),
            "{lab} plan: {plan}"
        );
    }
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "a dry run creates nothing"
    );
}

/// Every line of the log at `path`, which must exist, parsed: each one a
/// JSON object with the fields the contract names.
fn log_events(path: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("no log at {}: {e}", path.display()));
    assert!(!text.is_empty(), "{} is empty", path.display());
    text.lines()
        .enumerate()
        .map(|(n, line)| {
            let event: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{}:{}: not JSON ({e}): {line}", path.display(), n + 1));
            for field in ["timestamp", "level", "target", "fields"] {
                assert!(
                    event.get(field).is_some(),
                    "{}:{}: no {field}: {line}",
                    path.display(),
                    n + 1
                );
            }
            event
        })
        .collect()
}

fn message_is(event: &serde_json::Value, message: &str) -> bool {
    event["fields"]["message"] == message
}

/// Nothing of the log on stderr: no JSON event, no fmt-style level.
fn assert_no_log_lines(stderr: &str) {
    for line in stderr.lines() {
        assert!(
            !line.trim_start().starts_with("{\"timestamp\"")
                && !line.contains(" DEBUG ")
                && !line.contains(" TRACE "),
            "a log line on stderr: {line}"
        );
    }
}

/// The cheap paths, no lab: a run that stops at a bad `--argocd-version`
/// after it has its folder logs there as JSON (also to the default folder,
/// named only part-way through, from memory); without `--verbose` and
/// `RUST_LOG` nothing is written and stderr is as before; `RUST_LOG` alone
/// writes the log; a run with a registry password set never logs it.
#[test]
fn verbose_writes_json_lines_to_the_run_folder_and_nothing_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let labs = dir.path().join("labs");
    let bad_version = |report: Option<&Path>| {
        let mut cmd = xtask();
        cmd.args([
            "e2e",
            "--lab",
            "local",
            "--argocd-version",
            "v0.0.1",
            "scenarios/latest-follows-digest.yaml",
        ])
        .env("OCI_E2E_LABS", &labs);
        if let Some(report) = report {
            cmd.arg("--report").arg(report);
        }
        cmd
    };

    // --report given: the log opens there at once.
    let report = dir.path().join("report");
    let out = bad_version(Some(&report))
        .arg("--verbose")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    let log = report.join("harness.log");
    assert_eq!(
        err.lines().last(),
        Some(format!("log: {}", log.display()).as_str()),
        "{err}"
    );
    assert_no_log_lines(&err);
    let events = log_events(&log);
    assert!(
        events
            .iter()
            .any(|e| message_is(e, "run folder")
                && e["fields"]["path"] == report.display().to_string()),
        "{events:?}"
    );
    assert!(
        events.iter().any(|e| message_is(e, "run starts")),
        "{events:?}"
    );

    // The default folder (target/e2e/<run-id>/), named part-way through.
    let out = bad_version(None).arg("-v").output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    let named = err
        .lines()
        .last()
        .and_then(|l| l.strip_prefix("log: "))
        .unwrap_or_else(|| panic!("no log line: {err}"));
    let named = repo_root().join(named);
    assert!(
        named.starts_with(repo_root().join("target/e2e")) && named.ends_with("harness.log"),
        "{}",
        named.display()
    );
    let events = log_events(&named);
    // Logged before the folder was known: the run's first events.
    assert!(message_is(&events[0], "run folder"), "{events:?}");
    std::fs::remove_dir_all(named.parent().unwrap()).unwrap();

    // Neither --verbose nor RUST_LOG: no log, stderr as it was.
    let quiet = dir.path().join("quiet");
    let out = bad_version(Some(&quiet)).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        !quiet.join("harness.log").exists(),
        "a log without --verbose"
    );
    assert!(!err.contains("log: "), "{err}");
    assert_no_log_lines(&err);
    assert!(err.contains("--argocd-version"), "{err}");

    // RUST_LOG alone writes the log, with what it chose.
    let chosen = dir.path().join("chosen");
    let out = bad_version(Some(&chosen))
        .env("RUST_LOG", "harness_e2e=debug")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let events = log_events(&chosen.join("harness.log"));
    assert!(
        events
            .iter()
            .all(|e| e["target"] == "harness_e2e" || e["target"] == "harness_run_folder"),
        "{events:?}"
    );

    // --lab existing with a password, against a cluster that is not
    // there: kube's client is logged, the password never.
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: \"https://127.0.0.1:9\", insecure-skip-tls-verify: true}}]\nusers: [{name: u, user: {token: not-a-real-token}}]\ncontexts: [{name: c, context: {cluster: c, user: u}}]\ncurrent-context: c\n",
    )
    .unwrap();
    let existing = dir.path().join("existing");
    let out = xtask()
        .args(["-v", "e2e", "--lab", "existing", "--plain-http"])
        .args(["--registry", "127.0.0.1:9", "--kubeconfig"])
        .arg(&kubeconfig)
        .arg("--report")
        .arg(&existing)
        .arg("scenarios/latest-follows-digest.yaml")
        .env("OCI_E2E_REGISTRY_USERNAME", "e2e-user")
        .env("OCI_E2E_REGISTRY_PASSWORD", PASSWORD)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    let log = existing.join("harness.log");
    let events = log_events(&log);
    assert!(
        events.iter().any(|e| e["target"]
            .as_str()
            .is_some_and(|t| t.starts_with("kube_client"))),
        "kube's requests are logged: {events:?}"
    );
    assert_never_logged(&log, &["not-a-real-token"]);
}

/// A password no log may contain (and what it looks like base64-encoded,
/// alone and as `user:password`, as a Secret or an Authorization header
/// would carry it).
const PASSWORD: &str = "pw-8d1c3f-never-in-a-log";

fn assert_never_logged(log: &Path, also: &[&str]) {
    use base64::Engine as _;
    let text = std::fs::read_to_string(log).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD;
    let forms = [
        PASSWORD.to_string(),
        b64.encode(PASSWORD),
        b64.encode(format!("e2e-user:{PASSWORD}")),
    ];
    for secret in forms.iter().map(String::as_str).chain(also.iter().copied()) {
        assert!(
            !text.contains(secret),
            "{} contains a secret ({secret})",
            log.display()
        );
    }
}

/// The whole log on a real local lab: a `--verbose` run's folder holds
/// `harness.log`, every line JSON, with a registry request, an apiserver
/// request (ours and kube's), a process start and a wait; then a run on
/// that lab as `--lab existing` with a registry password and
/// `--create-repo-creds` (the password travels to the registry and into a
/// Secret) never logs the password, even at `RUST_LOG=trace`; the same
/// run without `--verbose` writes no log and prints no log line.
#[test]
fn verbose_run_logs_every_kind_of_event_as_json_and_never_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let labs = dir.path().join("labs");
    // Whatever happens, the kept lab goes.
    struct Down(PathBuf);
    impl Drop for Down {
        fn drop(&mut self) {
            let _ = xtask()
                .args(["lab", "down", "--lab", "local"])
                .env("OCI_E2E_LABS", &self.0)
                .output();
        }
    }
    let _down = Down(labs.clone());
    let scenario = "scenarios/latest-follows-digest.yaml";

    let own = dir.path().join("own");
    let out = xtask()
        .args(["--verbose", "e2e", "--lab", "local", "--keep", scenario])
        .arg("--report")
        .arg(&own)
        .env("OCI_E2E_LABS", &labs)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let log = own.join("harness.log");
    assert_eq!(
        err.lines().last(),
        Some(format!("log: {}", log.display()).as_str()),
        "{err}"
    );
    assert_no_log_lines(&err);
    let events = log_events(&log);
    let has = |what: &str, pred: &dyn Fn(&serde_json::Value) -> bool| {
        assert!(
            events.iter().any(pred),
            "no {what} in {} ({} events)",
            log.display(),
            events.len()
        );
    };
    has("registry request", &|e| {
        message_is(e, "registry request")
            && e["fields"]["op"] == "uploading a blob"
            && e["fields"]["digest"]
                .as_str()
                .is_some_and(|d| d.starts_with("sha256:"))
            && e["fields"]["duration_ms"].is_u64()
            && e["fields"]["status"] == "ok"
    });
    has("apiserver request", &|e| {
        message_is(e, "apiserver request")
            && e["fields"]["verb"] == "apply"
            && e["fields"]["kind"] == "Application"
            && e["fields"]["namespace"] == "argocd"
    });
    has("kube client request", &|e| {
        e["target"]
            .as_str()
            .is_some_and(|t| t.starts_with("kube_client"))
            && e["span"]["name"] == "HTTP"
    });
    has("process start", &|e| {
        message_is(e, "started child process")
            && e["fields"]["name"] == "etcd"
            && e["fields"]["pid"].is_u64()
            && e["fields"]["port"].is_u64()
    });
    has("wait", &|e| {
        message_is(e, "wait ends")
            && e["fields"]["outcome"] == "held"
            && e["fields"]["attempts"].is_u64()
            && e["fields"]["caller"].is_string()
    });
    has("readiness wait in its span", &|e| {
        message_is(e, "wait starts") && e["span"]["component"] == "kube-apiserver"
    });
    has("step with its span context", &|e| {
        message_is(e, "registry request")
            && e["spans"][0]["name"] == "scenario"
            && e["spans"][0]["scenario"] == "latest-follows-digest"
            && e["span"]["name"] == "step"
            && e["span"]["kind"] == "push"
    });
    has("step ends", &|e| {
        message_is(e, "step ends") && e["fields"]["status"] == "ok"
    });

    // The kept lab as someone else's cluster, with a password.
    let pointer = std::fs::read_to_string(labs.join("local.current")).unwrap();
    let state: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(Path::new(pointer.trim()).join("lab.json")).unwrap(),
    )
    .unwrap();
    let existing = |report: &Path, verbose: bool| {
        let mut cmd = xtask();
        if verbose {
            // Everything any crate logs through tracing, not only the
            // harness's debug events.
            cmd.arg("--verbose").env("RUST_LOG", "trace");
        }
        let out = cmd
            .args([
                "e2e",
                "--lab",
                "existing",
                "--plain-http",
                "--create-repo-creds",
            ])
            .arg("--kubeconfig")
            .arg(state["kubeconfig"].as_str().unwrap())
            .arg("--registry")
            .arg(state["registry"].as_str().unwrap())
            .arg("--report")
            .arg(report)
            .arg(scenario)
            .env("OCI_E2E_LABS", &labs)
            .env("DOCKER_CONFIG", dir.path().join("no-docker-config"))
            .env("OCI_E2E_REGISTRY_USERNAME", "e2e-user")
            .env("OCI_E2E_REGISTRY_PASSWORD", PASSWORD)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(0), "{err}");
        err
    };
    let with_password = dir.path().join("existing");
    existing(&with_password, true);
    let log = with_password.join("harness.log");
    let events = log_events(&log);
    assert!(
        events.iter().any(|e| message_is(e, "apiserver request")
            && e["fields"]["verb"] == "create"
            && e["fields"]["kind"] == "Secret"),
        "the repo-creds secret's creation is logged"
    );
    assert!(
        events.iter().any(|e| message_is(e, "registry request")),
        "registry requests with credentials are logged"
    );
    assert_never_logged(&log, &[]);

    let quiet = dir.path().join("quiet");
    let err = existing(&quiet, false);
    assert!(!quiet.join("harness.log").exists());
    assert!(quiet.join("summary.json").exists());
    assert!(!err.contains("log: "), "{err}");
    assert_no_log_lines(&err);
}

fn lab_processes(labs: &Path) -> Vec<(u32, String)> {
    harness_processes(labs)
}

/// A `cargo xtask e2e` running in the background, with its stderr read line
/// by line (what a user watches).
struct LiveRun {
    child: std::process::Child,
    lines: std::io::Lines<BufReader<std::process::ChildStderr>>,
    seen: Vec<String>,
}

impl LiveRun {
    /// `xtask <args> --report <dir>/report` with the labs under `labs`.
    fn start(args: &[&std::ffi::OsStr], dir: &Path, labs: &Path) -> LiveRun {
        let mut child = xtask()
            .args(args)
            .arg("--report")
            .arg(dir.join("report"))
            .env("OCI_E2E_LABS", labs)
            .stderr(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        LiveRun {
            child,
            lines: BufReader::new(stderr).lines(),
            seen: Vec::new(),
        }
    }

    /// Reads until a line contains `text` (at most 5 minutes of lines).
    fn wait_for(&mut self, text: &str) {
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let line = self
                .lines
                .next()
                .unwrap_or_else(|| panic!("xtask ended before {text:?}:\n{}", self.seen.join("\n")))
                .unwrap();
            self.seen.push(line.clone());
            if line.contains(text) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "no {text:?} after 5 minutes:\n{}",
                self.seen.join("\n")
            );
        }
    }

    fn signal(&self, signal: i32) {
        unsafe {
            libc::kill(self.child.id() as i32, signal);
        }
    }

    /// Waits for the end: how it exited and everything it printed.
    fn finish(mut self) -> (std::process::ExitStatus, String) {
        let rest: Vec<String> = self.lines.by_ref().map_while(Result::ok).collect();
        let status = self.child.wait().unwrap();
        self.seen.extend(rest);
        (status, self.seen.join("\n"))
    }
}

/// A scenario that syncs an app and then waits for something that never
/// happens (2 minutes), with `finally` as given: something to interrupt.
fn waiting_scenario(dir: &Path, name: &str, finally: &str) -> PathBuf {
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(
        &path,
        format!(
            r#"name: {name}
steps:
  - push:
      files: {{cm.yaml: "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c}}\n"}}
      repository: waits
      tags: [v1]
      as: v1
  - app: {{name: waits, repository: waits, revision: v1}}
  - expect: {{app: waits, sync: Synced, revision: "${{v1.digest}}"}}
  - name: never true
    expect: {{app: waits, sync: OutOfSync, within: 2m}}
finally:
{finally}"#
        ),
    )
    .unwrap();
    path
}

/// After the harness exited: no process of the labs under `labs` (polled
/// with a deadline, since the kernel reaps them shortly after, never a
/// fixed sleep) and no lab directory.
fn assert_nothing_left(labs: &Path) {
    assert_no_lab_processes(labs);
    let dirs: Vec<_> = std::fs::read_dir(labs)
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default();
    assert!(dirs.is_empty(), "lab directories left: {dirs:?}");
}

/// No process of the labs under `labs`, 10 s after the harness exited at
/// the latest.
fn assert_no_lab_processes(labs: &Path) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !lab_processes(labs).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        lab_processes(labs).is_empty(),
        "left behind 10 s after the harness exited: {:?}",
        lab_processes(labs)
    );
}

/// Processes whose command line mentions `dir` (what `lab down` looks for).
fn harness_processes(dir: &Path) -> Vec<(u32, String)> {
    let needle = dir.to_string_lossy().into_owned();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(raw) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&raw).replace('\0', " ");
        let zombie = std::fs::read_to_string(entry.path().join("stat")).is_ok_and(|s| {
            s.rsplit_once(')')
                .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
        });
        if cmd.contains(&needle) && !zombie {
            found.push((pid, cmd));
        }
    }
    found
}

#[test]
fn ctrl_c_during_a_run_stops_everything() {
    interrupt_during_a_run_stops_everything(libc::SIGINT, "Ctrl-C");
}

/// What CI cancellation, `timeout` and container runtimes send: the same
/// orderly stop as Ctrl-C, `finally` and cleanup included.
#[test]
fn sigterm_during_a_run_stops_everything_like_ctrl_c() {
    interrupt_during_a_run_stops_everything(libc::SIGTERM, "SIGTERM");
}

fn interrupt_during_a_run_stops_everything(signal: i32, named: &str) {
    let dir = tempfile::tempdir().unwrap();
    let labs = dir.path().join("labs");
    let mut run = LiveRun::start(
        &[
            "--verbose".as_ref(),
            "e2e".as_ref(),
            "--lab".as_ref(),
            "local".as_ref(),
            "scenarios/pinned-digest.yaml".as_ref(),
        ],
        dir.path(),
        &labs,
    );
    // Wait until the scenario runs (the lab is up), then interrupt.
    run.wait_for("[pinned-digest-ignores-latest] step 3/");
    assert!(
        !lab_processes(&labs).is_empty(),
        "the lab runs while the scenario does"
    );
    run.signal(signal);
    let (status, all) = run.finish();
    assert_eq!(
        status.code(),
        Some(1),
        "a cancelled run is not a pass:\n{all}"
    );
    assert!(all.contains(&format!("interrupted ({named})")), "{all}");
    // --verbose logged what the harness did to the run's folder, the
    // interrupted end included; stderr kept to the progress lines.
    let log = dir.path().join("report/harness.log");
    assert!(
        all.lines().last() == Some(format!("log: {}", log.display()).as_str()),
        "the last line names the log:\n{all}"
    );
    let events = log_events(&log);
    for (message, detail) in [
        ("started child process", "kube-apiserver"),
        ("child process exited", ""),
        ("step starts", ""),
        ("step ends", "cancelled"),
    ] {
        assert!(
            events
                .iter()
                .any(|e| message_is(e, message) && e.to_string().contains(detail)),
            "--verbose did not log {message:?} ({detail:?}) in {}",
            log.display()
        );
    }
    assert_no_log_lines(&all);
    // pinned-digest deletes its two apps (the pin and the control).
    assert!(
        all.contains("finally 1/2 delete") && all.contains("finally 2/2 delete"),
        "finally still ran:\n{all}"
    );
    assert_nothing_left(&labs);
}

/// A lab component that dies mid-run (here the registry, SIGKILLed)
/// cancels the run at once: exit 2 naming the component and its log, the
/// waiting expect does not sit out its window, and nothing is left.
#[test]
fn a_component_crashing_mid_run_cancels_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let labs = dir.path().join("labs");
    let scenario = waiting_scenario(dir.path(), "waits-for-ever", "  - delete: {app: waits}\n");
    let mut run = LiveRun::start(
        &[
            "e2e".as_ref(),
            "--lab".as_ref(),
            "local".as_ref(),
            scenario.as_ref(),
        ],
        dir.path(),
        &labs,
    );
    run.wait_for("[waits-for-ever] step 4/4 expect never true");
    let registry: Vec<u32> = lab_processes(&labs)
        .into_iter()
        .filter(|(_, cmd)| cmd.contains("registry.yml"))
        .map(|(pid, _)| pid)
        .collect();
    assert_eq!(registry.len(), 1, "the lab's registry: {registry:?}");
    let killed_at = Instant::now();
    unsafe {
        libc::kill(registry[0] as i32, libc::SIGKILL);
    }
    let (status, all) = run.finish();
    let ended_after = killed_at.elapsed();
    assert_eq!(status.code(), Some(2), "a crashed lab is exit 2:\n{all}");
    assert!(
        all.contains("a lab component crashed during the run")
            && all.contains(&format!(
                "registry (pid {}) exited unexpectedly",
                registry[0]
            )),
        "{all}"
    );
    // The expect's window is 2 minutes: the crash, not the window, ended it.
    assert!(
        ended_after < Duration::from_secs(100),
        "the run sat out the window ({ended_after:?}):\n{all}"
    );
    assert_nothing_left(&labs);
}

/// A second Ctrl-C while `finally` runs exits at once (130): the lab's
/// processes die with the harness (PDEATHSIG), and what is left on disk is
/// removed by `lab down`, which says so.
#[test]
fn a_second_ctrl_c_exits_at_once_and_lab_down_reclaims_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let labs = dir.path().join("labs");
    let scenario = waiting_scenario(
        dir.path(),
        "slow-finally",
        "  - name: a finally that takes its time\n    expect: {app: waits, sync: OutOfSync, within: 1m}\n",
    );
    let mut run = LiveRun::start(
        &[
            "e2e".as_ref(),
            "--lab".as_ref(),
            "local".as_ref(),
            scenario.as_ref(),
        ],
        dir.path(),
        &labs,
    );
    run.wait_for("[slow-finally] step 4/4 expect never true");
    run.signal(libc::SIGINT);
    run.wait_for("[slow-finally] finally 1/1 expect a finally that takes its time");
    run.signal(libc::SIGINT);
    let (status, all) = run.finish();
    assert_eq!(status.code(), Some(130), "{all}");
    assert!(
        all.contains("interrupted twice (Ctrl-C): exiting now"),
        "{all}"
    );
    // The lab's processes die with the harness; its directory stays.
    assert_no_lab_processes(&labs);
    let down = xtask()
        .args(["lab", "down", "--lab", "local"])
        .env("OCI_E2E_LABS", &labs)
        .output()
        .unwrap();
    let said =
        String::from_utf8_lossy(&down.stderr).into_owned() + &String::from_utf8_lossy(&down.stdout);
    assert!(down.status.success(), "{said}");
    assert!(
        said.contains("removed"),
        "lab down says what it removed: {said}"
    );
    assert_nothing_left(&labs);
}

#[test]
fn capture_without_a_running_lab_or_with_foreign_flags_exits_2_saying_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let out = xtask()
        .args(["capture", "demo-ab12cd3", "--lab", "local", "-o"])
        .arg(dir.path().join("bug.yaml"))
        .env("OCI_E2E_LABS", dir.path().join("labs"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("capture reads a lab that is up") && err.contains("--keep"),
        "{err}"
    );
    assert!(!dir.path().join("bug.yaml").exists(), "nothing written");

    let out = xtask()
        .args([
            "capture",
            "demo",
            "--lab",
            "local",
            "--registry",
            "r.example",
        ])
        .env("OCI_E2E_LABS", dir.path().join("labs"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--registry apply only to --lab existing"),
        "{err}"
    );
}

/// The suite's soak: five runs of the real CLI interrupted at seeded
/// moments, with SIGINT, SIGTERM and SIGKILL and on a kept lab among them
/// (the seed is chosen for that), and nothing left behind after any. Not
/// vacuous: the scenario holds for a minute, so no run ends before its
/// interrupt however fast the lab starts (the default subset once did,
/// when the lab's seed made starts faster); most interrupts land while the
/// lab runs (its processes and ports are counted at that moment), and the
/// SIGKILLed run's directory is reclaimed by `lab down`, which says so.
#[test]
fn soak_of_five_interrupted_runs_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = xtask()
        .args([
            "soak",
            "--runs",
            "5",
            "--seed",
            SOAK_SEED,
            "--max-delay",
            "14",
            "xtask/tests/data/soak-holds.yaml",
        ])
        .arg("--out")
        .arg(dir.path().join("soak"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let all = format!("{stdout}\n{stderr}");
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(
        stdout.contains("leftovers: 0 of 5 run(s) left something"),
        "{all}"
    );
    let runs: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("run ") && l.contains("/5: "))
        .collect();
    assert_eq!(runs.len(), 5, "{all}");
    for signal in ["SIGINT", "SIGTERM", "SIGKILL"] {
        assert!(
            runs.iter().any(|l| l.contains(signal)),
            "{signal} drawn:\n{all}"
        );
    }
    assert!(runs.iter().any(|l| l.contains("(kept lab)")), "{all}");
    let lab_up = runs
        .iter()
        .filter(|l| !l.contains("(lab at the interrupt: 0 processes"))
        .count();
    assert!(lab_up >= 3, "interrupts while the lab ran: {lab_up}\n{all}");
    assert!(
        !runs
            .iter()
            .any(|l| l.contains("ended before the interrupt")),
        "every run is interrupted:\n{all}"
    );
    let killed = runs.iter().find(|l| l.contains("SIGKILL")).unwrap();
    assert!(
        killed.contains("exit SIGKILL") && killed.contains("lab down: "),
        "{killed}"
    );
    assert_no_lab_processes(dir.path());
}

/// SIGTERM while the lab is still starting: the half-started lab goes too,
/// directory included (the soak found one left when `up` was dropped).
#[test]
fn sigterm_while_the_lab_starts_leaves_no_directory() {
    let dir = tempfile::tempdir().unwrap();
    let labs = dir.path().join("labs");
    let mut run = LiveRun::start(
        &[
            "e2e".as_ref(),
            "--lab".as_ref(),
            "local".as_ref(),
            "scenarios/pinned-digest.yaml".as_ref(),
        ],
        dir.path(),
        &labs,
    );
    run.wait_for("starting registry and redis");
    assert!(
        std::fs::read_dir(&labs).unwrap().count() > 0,
        "the lab's directory exists while it starts"
    );
    run.signal(libc::SIGTERM);
    let (status, all) = run.finish();
    assert_ne!(status.code(), Some(0), "{all}");
    assert!(
        all.contains("interrupted while the lab was starting"),
        "{all}"
    );
    assert_nothing_left(&labs);
}

/// A fresh clone on a machine that can download: an empty tool cache, the
/// release hosts served by a real HTTPS mirror on loopback
/// (`OCI_E2E_DOWNLOAD_MIRROR`, its CA in `OCI_E2E_DOWNLOAD_CA`) holding
/// this machine's real binaries laid out as the releases publish them. The
/// run downloads and verifies Kubernetes, etcd, Argo CD and helm (never
/// building them), starts the local lab and passes a scenario; the time it
/// took is printed (README: "A first run where the internet is there").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_machine_downloads_the_lab_and_passes_its_first_scenario() {
    use harness_testkit::release_mirror::{DOWNLOADED, ReleaseMirror, publish_lab_releases};
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("mirror");
    let published = publish_lab_releases(&root)
        .await
        .expect("the cached lab binaries (run `cargo xtask test` or `cargo xtask tools`)");
    let mirror = ReleaseMirror::start(&root, &dir.path().join("ca.pem"))
        .await
        .unwrap();
    let cache = dir.path().join("cache");
    let mut cmd = xtask();
    cmd.args([
        "e2e",
        "--lab",
        "local",
        "scenarios/tagged-release.yaml",
        "--report",
    ])
    .arg(dir.path().join("report"))
    .env("OCI_E2E_CACHE", &cache)
    .env("OCI_E2E_LABS", dir.path().join("labs"))
    .env("OCI_E2E_ETCD", "go")
    .env("OCI_E2E_DOWNLOAD_MIRROR", mirror.url())
    .env("OCI_E2E_DOWNLOAD_CA", mirror.ca_file());
    let started = Instant::now();
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .unwrap();
    let took = started.elapsed();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(all.contains("1 passed, 0 failed"), "{all}");
    // Each downloaded component's cache entry says it was a verified
    // release download, not a build.
    for &tool in DOWNLOADED {
        let component =
            harness_tools::versions::component_for(tool, harness_tools::versions::EtcdSource::Go);
        let manifest = cache
            .join("tools")
            .join(component.key())
            .join("manifest.json");
        let text = std::fs::read_to_string(&manifest)
            .unwrap_or_else(|e| panic!("{}: {e}\n{all}", manifest.display()));
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        let source = json["source"].as_str().unwrap_or_default();
        assert!(
            source.starts_with("release download https://")
                && source.contains("SHA-256 from the release's https://"),
            "{tool}: {source}"
        );
    }
    let crds = cache
        .join("tools")
        .join(harness_tools::versions::ARGOCD_CRDS.key())
        .join("manifest.json");
    let crds = std::fs::read_to_string(&crds).unwrap_or_else(|e| panic!("{}: {e}", crds.display()));
    assert!(crds.contains("install.yaml (SHA-256 pinned"), "{crds}");
    let asked = mirror.requests();
    assert!(
        asked.iter().any(|p| p.ends_with("/kube-apiserver.sha256")),
        "{asked:?}"
    );
    eprintln!(
        "first run from release downloads: {:.0}s end to end ({} MB of release files over loopback HTTPS)",
        took.as_secs_f64(),
        published / 1_000_000
    );
    assert_nothing_left(&dir.path().join("labs"));
}
