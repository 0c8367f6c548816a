//! A local lab whose registry wants a user and password and serves HTTPS
//! from a CA made for the lab (`--registry-auth --registry-tls`), through
//! the real Argo CD: the registry really refuses anonymous and unverified
//! clients, Argo CD trusts the CA the way users configure it
//! (`argocd-tls-certs-cm`) and authenticates with a repo-creds Secret,
//! the seed scenarios pass, a repository Secret with a wrong password
//! shows Argo CD's authentication error, and the password appears in
//! nothing the run wrote: reports, diagnostics, component logs, progress
//! and trace-level logs.

mod common;

use std::io::Write as _;
use std::os::fd::AsRawFd as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use harness_core::progress::Progress;
use harness_engine::runner::{self, RunOptions, ScenarioStatus};
use harness_labs::LabKind;
use harness_labs::local::registry::RegistrySecurity;
use harness_labs::session::{self, LabOptions};

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// While alive, standard error (fd 2: progress lines, the trace log,
/// anything a library might print) goes to a file; restored on drop, so
/// assertion messages after it are seen.
struct StderrCapture {
    saved: i32,
}

impl StderrCapture {
    fn start(path: &Path) -> Self {
        let file = std::fs::File::create(path).expect("capture file");
        // SAFETY: dup/dup2 on valid descriptors; the saved one is restored in drop.
        let saved = unsafe { libc::dup(2) };
        assert!(saved >= 0, "dup(2)");
        let rc = unsafe { libc::dup2(file.as_raw_fd(), 2) };
        assert!(rc >= 0, "dup2");
        StderrCapture { saved }
    }
}

impl Drop for StderrCapture {
    fn drop(&mut self) {
        let _ = std::io::stderr().flush();
        // SAFETY: `saved` is the descriptor dup'ed in `start`.
        unsafe {
            libc::dup2(self.saved, 2);
            libc::close(self.saved);
        }
    }
}

/// Every regular file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else if path.is_file() {
            out.push(path);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn seed_scenarios_pass_on_an_authenticated_tls_registry_and_no_password_leaks() {
    harness_core::init_crypto();
    let tmp = tempfile::tempdir().unwrap();
    let captured = tmp.path().join("stderr.txt");
    let capture = StderrCapture::start(&captured);
    // The most verbose log there is, for every crate (oci-client, kube,
    // hyper, reqwest included), into the captured stderr.
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let progress = Progress::lines();

    let mut opts = LabOptions::new(LabKind::Local);
    opts.registry = RegistrySecurity {
        auth: true,
        tls: true,
    };
    let lab = session::start(&opts, &progress)
        .await
        .expect("local lab with --registry-auth --registry-tls starts");
    let lab_dir = lab.lab().state_dir().expect("a local lab has a directory");
    let endpoint = lab.lab().registry().clone();

    // What the harness uses: HTTPS verified against the lab's CA, never
    // skipped, and credentials that are not trivial.
    assert!(
        !endpoint.plain_http && !endpoint.insecure_tls,
        "{endpoint:?}"
    );
    let ca = endpoint.ca_pem.clone().expect("the lab's CA");
    let auth = endpoint.auth.clone().expect("the lab's credentials");
    let password = auth.password.clone();
    assert!(
        password.len() >= 32
            && password.chars().any(|c| c.is_ascii_digit())
            && password.chars().any(|c| c.is_ascii_alphabetic())
            && !password.contains(&auth.username),
        "a non-trivial password (length {})",
        password.len()
    );
    let basic_header =
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", auth.username, password));

    // The registry really is secured.
    let v2 = format!("https://{}/v2/", endpoint.address);
    let trusting = endpoint
        .http_client_builder()
        .expect("client")
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    let anonymous = trusting
        .get(&v2)
        .send()
        .await
        .expect("HTTPS with the lab CA");
    assert_eq!(anonymous.status().as_u16(), 401, "anonymous GET /v2/");
    let challenge = anonymous
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(challenge.starts_with("Basic"), "{challenge}");
    let wrong = trusting
        .get(&v2)
        .basic_auth(&auth.username, Some("not-the-password"))
        .send()
        .await
        .expect("answer");
    assert_eq!(wrong.status().as_u16(), 401, "wrong password");
    let right = trusting
        .get(&v2)
        .basic_auth(&auth.username, Some(&password))
        .send()
        .await
        .expect("answer");
    assert_eq!(right.status().as_u16(), 200, "the lab's credentials");
    // Without the lab's CA the certificate is refused...
    let system_roots = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let refused = system_roots
        .get(&v2)
        .send()
        .await
        .expect_err("the lab's certificate is not trusted by the system roots");
    let mut chain = refused.to_string();
    let mut source = std::error::Error::source(&refused);
    while let Some(cause) = source {
        chain.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    assert!(chain.to_lowercase().contains("certificate"), "{chain}");
    // ...and it does not speak plain HTTP (Go's TLS server answers 400).
    let plain = system_roots
        .get(format!("http://{}/v2/", endpoint.address))
        .send()
        .await;
    assert!(
        plain.as_ref().map_or(true, |r| r.status().as_u16() == 400),
        "plain HTTP is not served: {plain:?}"
    );

    // Argo CD trusts the CA the documented way: argocd-tls-certs-cm, key
    // the host without port; the process repo-server reads it from the
    // directory that ConfigMap is projected into.
    let cms: kube::Api<k8s_openapi::api::core::v1::ConfigMap> =
        kube::Api::namespaced(lab.lab().kube(), "argocd");
    let tls_cm = cms
        .get("argocd-tls-certs-cm")
        .await
        .expect("argocd-tls-certs-cm");
    assert_eq!(
        tls_cm.data.unwrap_or_default().get("127.0.0.1"),
        Some(&ca),
        "the lab's CA under the registry's host name"
    );
    assert_eq!(
        std::fs::read_to_string(lab_dir.join("argocd-tls/127.0.0.1")).ok(),
        Some(ca.clone())
    );
    let secrets: kube::Api<k8s_openapi::api::core::v1::Secret> =
        kube::Api::namespaced(lab.lab().kube(), "argocd");
    let creds = secrets
        .get("oci-e2e-lab-registry")
        .await
        .expect("the lab's repo-creds Secret");
    let data = creds.data.unwrap_or_default();
    let value = |key: &str| {
        data.get(key)
            .map(|v| String::from_utf8_lossy(&v.0).to_string())
    };
    assert_eq!(value("username").as_deref(), Some(auth.username.as_str()));
    assert_eq!(value("password").as_deref(), Some(password.as_str()));
    assert_eq!(value("insecure"), None, "verification is not skipped");
    assert_eq!(value("insecureOCIForceHttp"), None, "HTTPS");

    // The seed scenarios, the wrong-credentials one, and one that fails
    // on purpose (so diagnostics are written and searched too).
    let mut scenarios = harness_scenario::load_paths(&[repo_root().join("scenarios")])
        .unwrap_or_else(|d| panic!("scenarios/ must load: {d:?}"));
    let seeds: Vec<String> = scenarios.iter().map(|s| s.name.clone()).collect();
    let wrong_credentials = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/registry-auth/wrong-credentials.yaml");
    scenarios.push(
        harness_scenario::load_file(&wrong_credentials)
            .unwrap_or_else(|d| panic!("wrong-credentials.yaml must load: {d:?}")),
    );
    let must_fail = tmp.path().join("must-fail.yaml");
    std::fs::write(&must_fail, common::WRONG_EXPECTATION).unwrap();
    scenarios.push(harness_scenario::load_file(&must_fail).expect("valid"));

    let report_dir = tmp.path().join("report");
    let mut run_opts = RunOptions::new(runner::new_run_id(), &report_dir);
    run_opts.jobs = 4;
    run_opts.progress = progress.clone();
    let summary = runner::run(lab.lab(), scenarios, run_opts).await;
    // The lab's logs, before the lab (and its directory) goes.
    let mut written: Vec<PathBuf> = files_under(&lab_dir.join("logs"));
    let kept_logs = tmp.path().join("kept-logs");
    for file in &written {
        let name = file.file_name().unwrap_or_default();
        std::fs::create_dir_all(&kept_logs).unwrap();
        std::fs::copy(file, kept_logs.join(name)).unwrap();
    }
    lab.shutdown(&opts, &progress, None)
        .await
        .expect("lab stops");
    drop(capture);

    let failures: Vec<String> = common::not_passed(&summary)
        .into_iter()
        .filter(|line| !line.starts_with("must-fail-wrong-data: "))
        .collect();
    assert!(
        failures.is_empty(),
        "on the authenticated TLS lab:\n{}",
        failures.join("\n")
    );
    for name in &seeds {
        assert!(
            summary.scenarios.iter().any(|s| &s.name == name),
            "{name} ran"
        );
    }
    let refused = summary
        .scenarios
        .iter()
        .find(|s| s.name == "registry-wrong-credentials")
        .expect("reported");
    assert_eq!(refused.status, ScenarioStatus::Passed);
    let bad = summary
        .scenarios
        .iter()
        .find(|s| s.name == "must-fail-wrong-data")
        .expect("reported");
    assert_eq!(bad.status, ScenarioStatus::Failed);
    assert!(bad.diagnostics.as_ref().is_some_and(|d| d.is_dir()));

    // Everything the run wrote: reports and diagnostics, the lab's
    // component logs, and all of standard error.
    written = files_under(&report_dir);
    written.extend(files_under(&kept_logs));
    written.push(captured.clone());
    let mut leaks = Vec::new();
    let mut bytes = 0;
    for file in &written {
        let text = String::from_utf8_lossy(&std::fs::read(file).unwrap()).to_string();
        bytes += text.len();
        for (what, needle) in [("password", &password), ("basic header", &basic_header)] {
            if text.contains(needle.as_str()) {
                leaks.push(format!("{what} in {}", file.display()));
            }
        }
    }
    assert!(leaks.is_empty(), "the registry password leaked: {leaks:?}");
    // The search covered real output: the trace log of the run, and the
    // registry's access log of authenticated requests by the lab's user.
    let stderr = std::fs::read_to_string(&captured).unwrap();
    assert!(
        stderr.contains("TRACE") && stderr.contains(&auth.username),
        "the captured output has the trace log and the lab's user ({} bytes)",
        stderr.len()
    );
    let registry_log = std::fs::read_to_string(kept_logs.join("registry.log")).unwrap();
    assert!(
        registry_log.contains(&auth.username),
        "the registry logged requests of the lab's user"
    );
    assert!(
        written.len() > 10 && bytes > 100_000,
        "{} files, {bytes} bytes searched",
        written.len()
    );
    assert!(!lab_dir.exists(), "the lab directory is gone");
}
